import { applyEnv, bringYourOwnCredential } from '../../config/env-overlay';
import type { ConfigIssue } from '../../config/issues';
import type { PersistConfig } from '../../config';
import { testConfig } from './helpers';

// The environment overlay on its own (config/env-overlay.ts): PERSIST_* variables onto the parsed file.
function overlay(file: Record<string, unknown>, env: Record<string, string | undefined>) {
  const errors: ConfigIssue[] = [];
  const warnings: string[] = [];
  const target = structuredClone(file);
  applyEnv(target, env, errors, warnings);
  return { target, errors, warnings };
}

describe('applyEnv', () => {
  test('sets fields by their variables, coerced to the field kind; blank values are "not set"', () => {
    const { target, errors, warnings } = overlay(
      { teamId: 'a', etl: { seed: 1 } },
      { PERSIST_TEAM_ID: ' b ', PERSIST_ETL_SEED: '7', PERSIST_ETL_ALLOW_UNVERIFIED: 'yes', PERSIST_NODE_IMAGE: '  ', PATH: '/bin' },
    );
    expect(target).toEqual({ teamId: 'b', etl: { seed: 7, allowUnverified: true } });
    expect([errors, warnings]).toEqual([[], []]);
  });

  test('a value that does not coerce is an error naming the variable; an unknown PERSIST_ name a warning with a suggestion', () => {
    const { errors, warnings } = overlay({}, { PERSIST_ETL_SEED: 'seven', PERSIST_ETL_ALLOW_UNVERIFIED: 'maybe', PERSIST_TEAMID: 'x' });
    expect(errors.map((e) => [e.field, e.env, e.problem]).sort()).toEqual(
      [
        ['etl.allowUnverified', 'PERSIST_ETL_ALLOW_UNVERIFIED', 'PERSIST_ETL_ALLOW_UNVERIFIED="maybe" must be true or false'],
        ['etl.seed', 'PERSIST_ETL_SEED', 'PERSIST_ETL_SEED="seven" must be a number'],
      ].sort(),
    );
    expect(warnings).toEqual(['PERSIST_TEAMID is not a configuration variable and is ignored (did you mean PERSIST_TEAM_ID?)']);
  });

  test('a section that is not a mapping is an error, not overwritten', () => {
    const { target, errors } = overlay({ etl: 'oops' }, { PERSIST_ETL_SEED: '7' });
    expect(target).toEqual({ etl: 'oops' });
    expect(errors.map((e) => [e.field, e.problem])).toEqual([['etl', 'must be a mapping of fields (got string "oops")']]);
  });
});

describe('bringYourOwnCredential', () => {
  const run = (env: Record<string, string>) => {
    const errors: ConfigIssue[] = [];
    return { id: bringYourOwnCredential(env, errors), errors: errors.map((e) => `${e.field}: ${e.problem}`) };
  };
  test('both set: the id; neither: none; half or a malformed id: an error', () => {
    expect(run({ PERSIST_APP_CREDENTIAL_ID: 'a'.repeat(32), PERSIST_APP_CREDENTIAL_SECRET: 's' })).toEqual({
      id: 'a'.repeat(32),
      errors: [],
    });
    expect(run({})).toEqual({ id: undefined, errors: [] });
    expect(run({ PERSIST_APP_CREDENTIAL_SECRET: 's' }).errors).toEqual([
      'PERSIST_APP_CREDENTIAL_ID: is not set, but PERSIST_APP_CREDENTIAL_SECRET is',
    ]);
    expect(run({ PERSIST_APP_CREDENTIAL_ID: 'a'.repeat(32) }).errors).toEqual([
      'PERSIST_APP_CREDENTIAL_SECRET: is not set, but PERSIST_APP_CREDENTIAL_ID is',
    ]);
    expect(run({ PERSIST_APP_CREDENTIAL_ID: 'a b', PERSIST_APP_CREDENTIAL_SECRET: 's' }).errors).toEqual([
      'PERSIST_APP_CREDENTIAL_ID: does not look like an application credential id',
    ]);
  });
});

describe('PersistConfig, inferred from the schema', () => {
  test('the fields other code reads keep their names and types', () => {
    const c: PersistConfig = testConfig({
      etl: { datasetSha256: 'A'.repeat(64) },
      node: { reservationId: '1B2C3D4E-0000-4000-8000-123456789ABC' },
    });
    const read: [number, string, string, string, string, string, 'IPv4' | 'IPv6'] = [
      c.etl.seed,
      c.etl.remoteDir,
      c.kvm.cloud,
      c.ssh.privateKeyPath,
      c.containerName,
      c.chi.authUrl,
      c.ssh.ethertype,
    ];
    expect(read).toEqual([
      42,
      '/home/cc/chameleon-persist',
      'kvm_tacc',
      expect.stringMatching(/test_ed25519$/),
      'object-persist-proj99',
      'https://chi.tacc.chameleoncloud.org:5000/v3',
      'IPv4',
    ]);
    // Lower-cased by the schema.
    expect([c.etl.datasetSha256, c.node.reservationId]).toEqual(['a'.repeat(64), '1b2c3d4e-0000-4000-8000-123456789abc']);
  });
});
