import { classifyRcloneFailure } from '../../etl/load/rclone-errors';
import { redact } from '../../etl/redact';
import { rcloneEnvFromEtlEnv, secretsInRcloneConfig } from '../../etl/load/credentials';

// rclone's own wording for each failure, as seen against the local Keystone + Swift.
describe('classifyRcloneFailure', () => {
  const cases: [string, string, RegExp][] = [
    ['Failed to create file system for "chi_tacc:c": Authorization Failed', 'credential', /refused the application credential \(401\)/],
    ['HTTP Error: 401: 401 Unauthorized', 'credential', /401/],
    ['Failed to create file system for "chi_tacc:c": HTTP Error: 404: 404 NOT FOUND', 'deleted credential', /refused the application credential/],
    ['HTTP Error: 403: 403 Forbidden', 'forbidden', /forbids this request \(403\)/],
    ["Response didn't have storage url and auth token", 'region', /no object store in that region/],
    ['Post "http://127.0.0.1:5999/v3/auth/tokens": dial tcp 127.0.0.1:5999: connect: connection refused', 'unreachable', /unreachable/],
  ];
  it.each(cases)('%s -> %s', (stderr, _kind, expected) => {
    const e = classifyRcloneFailure(stderr, 'upload', 'chi_tacc');
    expect(e.message).toMatch(expected);
    expect(e.hint).toBeTruthy();
  });

  it('keeps the tail of an unknown failure and says that a rerun resumes', () => {
    const e = classifyRcloneFailure('line1\nsomething odd happened', 'upload', 'chi_tacc');
    expect(e.message).toContain('something odd happened');
    expect(e.hint).toMatch(/Rerun/);
  });

  it('tells "not found" apart from other failures', () => {
    expect(classifyRcloneFailure('Failed to cat: object not found', 'cat', 'r').notFound).toBe(true);
    expect(classifyRcloneFailure('Authorization Failed', 'cat', 'r').notFound).toBe(false);
  });
});

describe('secrets', () => {
  it('redacts every occurrence of every secret', () => {
    expect(redact('a s3cret-value b s3cret-value', ['s3cret-value'])).toBe('a *** b ***');
  });

  it('finds the secrets written in an rclone config', () => {
    const conf = '[chi_tacc]\ntype = swift\napplication_credential_id = abc\napplication_credential_secret = TOPSECRET\n';
    expect(secretsInRcloneConfig(conf)).toEqual(['TOPSECRET']);
  });

  it('passes credentials from ETL_* to rclone as its env config for the remote, and nothing without both', () => {
    const { env, secrets } = rcloneEnvFromEtlEnv('chi_tacc', {
      ETL_APP_CREDENTIAL_ID: 'id1',
      ETL_APP_CREDENTIAL_SECRET: 'sec1',
      ETL_AUTH_URL: 'http://k/v3',
      ETL_REGION: 'CHI@TACC',
    });
    expect(env).toEqual({
      RCLONE_CONFIG_CHI_TACC_TYPE: 'swift',
      RCLONE_CONFIG_CHI_TACC_APPLICATION_CREDENTIAL_ID: 'id1',
      RCLONE_CONFIG_CHI_TACC_APPLICATION_CREDENTIAL_SECRET: 'sec1',
      RCLONE_CONFIG_CHI_TACC_AUTH: 'http://k/v3',
      RCLONE_CONFIG_CHI_TACC_REGION: 'CHI@TACC',
    });
    expect(secrets).toEqual(['sec1']);
    expect(rcloneEnvFromEtlEnv('chi_tacc', { ETL_APP_CREDENTIAL_ID: 'id1' }).env).toEqual({});
  });

});
