import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { memoryLogger } from '../../etl/log';
import { rclone } from '../../etl/load/rclone';
import { classifyRcloneFailure, RcloneError, rcloneExit } from '../../etl/load/rclone-errors';
import { redact } from '../../etl/redact';
import { rcloneEnvFromEtlEnv, secretsInRcloneConfig } from '../../etl/load/credentials';

// rclone's own wording for each failure, as seen against the local Keystone + Swift.
describe('classifyRcloneFailure', () => {
  const cases: [string, string, RegExp][] = [
    ['Failed to create file system for "chi_tacc:c": Authorization Failed', 'credential', /refused the application credential \(401\)/],
    ['HTTP Error: 401: 401 Unauthorized', 'credential', /401/],
    [
      'Failed to create file system for "chi_tacc:c": HTTP Error: 404: 404 NOT FOUND',
      'deleted credential',
      /refused the application credential/,
    ],
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

  it('uses rclone\'s exit status where the text does not say: 3 and 4 are "not found", 5 is temporary, 1 a refused command line', () => {
    // Text rclone prints for several causes; only the status tells them apart.
    const odd = 'Failed to copy: something happened';
    expect(classifyRcloneFailure(odd, 'cat', 'r', 3).notFound).toBe(true);
    expect(classifyRcloneFailure(odd, 'cat', 'r', 4).notFound).toBe(true);
    expect(classifyRcloneFailure(odd, 'cat', 'r', 2).notFound).toBe(false);
    expect(classifyRcloneFailure(odd, 'cat', 'r', 4).message).toBe('cat: not found (rclone exit 4):\nFailed to copy: something happened');
    const temporary = classifyRcloneFailure(odd, 'upload', 'r', 5);
    expect(temporary.message).toBe('upload failed with a temporary error (rclone exit 5):\nFailed to copy: something happened');
    expect(temporary.hint).toMatch(/^Rerun the same command in a moment/);
    expect(classifyRcloneFailure('unknown flag: --foo', 'upload', 'r', 1).message).toMatch(
      /^upload: rclone refused its command line \(rclone exit 1\)/,
    );
    expect(classifyRcloneFailure(odd, 'upload', 'r', 7)).toMatchObject({
      rcloneExit: 7,
      message: 'upload failed (rclone exit 7):\nFailed to copy: something happened',
    });
    // The text still decides first: a 401 with exit 7 is the credential, not "fatal".
    expect(classifyRcloneFailure('HTTP Error: 401: 401 Unauthorized', 'upload', 'r', 7).message).toMatch(
      /refused the application credential \(401\)/,
    );
    // A credential Keystone does not know (404 while creating the file system) is not "not found", whatever the status.
    expect(classifyRcloneFailure('Failed to create file system for "r:": HTTP Error: 404: 404 NOT FOUND', 'cat', 'r', 4).notFound).toBe(
      false,
    );
  });

  it('survives bad input: statuses rclone does not document, and no text at all', () => {
    for (const code of [-1, 11, 127, 255, 2.5, NaN, Infinity, null, undefined]) {
      const e = classifyRcloneFailure('', 'upload', 'r', code as number);
      expect({ code, exit: e.rcloneExit, notFound: e.notFound, message: e.message }).toEqual({
        code,
        exit: undefined,
        notFound: false,
        message: 'upload failed:\n(rclone printed nothing)',
      });
      expect(e.exitCode).toBe(1);
    }
    expect(rcloneExit('4')).toBeUndefined();
    expect(rcloneExit(0)).toBe(0);
    expect(rcloneExit(10)).toBe(10);
    // Not a string (a caller passing a Buffer or nothing): still an error with a message, not a crash.
    expect(classifyRcloneFailure(undefined as unknown as string, 'cat', 'r', 4).message).toBe(
      'cat: not found (rclone exit 4):\n(rclone printed nothing)',
    );
    expect(classifyRcloneFailure(Buffer.from('object not found') as unknown as string, 'cat', 'r').notFound).toBe(true);
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

describe('rclone (one process): its exit status and its stderr lines reach the classifier', () => {
  // A stand-in rclone: JSON log lines, a secret in one of them, a multi-byte name split across writes, a last
  // line without a newline, and exit 5 (rclone's "temporary error").
  const fake = (body: string) => {
    const dir = mkdtempSync(join(tmpdir(), 'fake-rclone-'));
    const bin = join(dir, 'rclone');
    writeFileSync(bin, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
    return bin;
  };

  it('exit 5 with text that names no cause: a temporary error, every line kept whole, the secret redacted', async () => {
    const bin = fake(
      [
        `printf '%s\\n' '{"level":"error","msg":"upload of caf\\u00e9 failed with TOPSECRET9"}' >&2`,
        `printf '{"level":"error","msg":"caf' >&2; sleep 0.2; printf '\\303\\251 again"}\\n' >&2`,
        `printf 'plain last line' >&2`,
        'exit 5',
      ].join('\n'),
    );
    const log = memoryLogger();
    const e = await rclone({ binary: bin, remote: 'r', env: {}, secrets: ['TOPSECRET9'] }, ['copy', 'a', 'r:b'], 'upload', log, {
      quiet: true,
    }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(RcloneError);
    const r = e as RcloneError;
    expect(r.rcloneExit).toBe(5);
    expect(r.output).toBe('upload of café failed with ***\ncafé again\nplain last line');
    expect(r.message).toBe(
      'upload failed with a temporary error (rclone exit 5):\nupload of café failed with ***\ncafé again\nplain last line',
    );
  });

  it('exit 4 with no text at all is "not found"; a status rclone does not document is none', async () => {
    const log = memoryLogger();
    const four = (await rclone({ binary: fake('exit 4'), remote: 'r', env: {}, secrets: [] }, ['cat', 'r:x'], 'cat', log).catch(
      (x: unknown) => x,
    )) as RcloneError;
    expect({ exit: four.rcloneExit, notFound: four.notFound }).toEqual({ exit: 4, notFound: true });
    const odd = (await rclone(
      { binary: fake('echo "segfault" >&2; exit 139'), remote: 'r', env: {}, secrets: [] },
      ['cat', 'r:x'],
      'cat',
      log,
    ).catch((x: unknown) => x)) as RcloneError;
    expect({ exit: odd.rcloneExit, notFound: odd.notFound, message: odd.message }).toEqual({
      exit: undefined,
      notFound: false,
      message: 'cat failed:\nsegfault',
    });
  });
});
