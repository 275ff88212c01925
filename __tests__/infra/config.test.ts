import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { ConfigError, FIELDS, checkCidr, envNameFor, formatIssues, loadConfig, parseConfig, type ConfigIssue } from '../../config';
import { NOW, TEST_PUBLIC_KEY_PATH, TEST_RESERVATION, rawWith, validRaw } from './helpers';

function errorsOf(raw: unknown, env: Record<string, string | undefined> = {}): ConfigIssue[] {
  const result = parseConfig(raw, env, NOW);
  if (result.ok) throw new Error('expected the config to be rejected');
  return result.errors;
}

function only(raw: unknown, env: Record<string, string | undefined> = {}): ConfigIssue {
  const errors = errorsOf(raw, env);
  expect(errors).toHaveLength(1);
  return errors[0]!;
}

describe('parseConfig: a valid config', () => {
  test('fills in every default', () => {
    const result = parseConfig(validRaw(), {}, NOW);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.config).toMatchObject({
      teamId: 'proj99',
      containerName: 'object-persist-proj99',
      chi: { cloud: 'chi_tacc', region: 'CHI@TACC', authUrl: 'https://chi.tacc.chameleoncloud.org:5000/v3' },
      kvm: { cloud: 'kvm_tacc', region: 'KVM@TACC' },
      credential: { expiresAt: '2025-11-30T23:59:59Z', accessRules: false },
      ssh: { user: 'cc', allowedCidr: '203.0.113.7/32', ethertype: 'IPv4', privateKeyPath: TEST_PUBLIC_KEY_PATH.slice(0, -4) },
      node: {
        image: 'CC-Ubuntu24.04',
        flavor: 'm1.medium',
        reservationId: TEST_RESERVATION,
        network: 'sharednet1',
        floatingIpPool: 'public',
      },
      storage: { allowDestroyNonEmptyContainer: false },
      etl: { seed: 42, trainRatio: 0.7, validationRatio: 0.15, evaluationRatio: 0.15, remoteDir: '/home/cc/chameleon-persist' },
    });
    expect(result.config.credential.existing).toBeUndefined();
    expect(result.warnings).toEqual([]);
  });

  test('every field default in the table is what the parser applies', () => {
    const result = parseConfig(validRaw(), {}, NOW);
    if (!result.ok) throw new Error('valid config rejected');
    for (const f of FIELDS.filter((f) => f.default !== undefined)) {
      const value = f.path.split('.').reduce<any>((node, part) => node?.[part], result.config);
      expect([f.path, value]).toEqual([f.path, f.default]);
    }
  });

  test('environment variables override the file, with types coerced', () => {
    const result = parseConfig(
      validRaw(),
      {
        PERSIST_TEAM_ID: 'team7',
        PERSIST_SSH_ALLOWED_CIDR: '2001:db8::/64',
        PERSIST_STORAGE_ALLOW_DESTROY_NON_EMPTY_CONTAINER: 'true',
        PERSIST_CREDENTIAL_ACCESS_RULES: 'yes',
        PERSIST_ETL_SEED: '7',
        PERSIST_KVM_CLOUD: 'my_kvm',
        PERSIST_CREDENTIAL_EXPIRES_AT: '2026-02-01T10:00:00-05:00',
      },
      NOW,
    );
    if (!result.ok) throw new Error(formatIssues(result.errors));
    expect(result.config.teamId).toBe('team7');
    expect(result.config.containerName).toBe('object-persist-team7');
    expect(result.config.ssh).toMatchObject({ allowedCidr: '2001:db8::/64', ethertype: 'IPv6' });
    expect(result.config.storage.allowDestroyNonEmptyContainer).toBe(true);
    expect(result.config.credential.accessRules).toBe(true);
    expect(result.config.etl.seed).toBe(7);
    expect(result.config.kvm.cloud).toBe('my_kvm');
    expect(result.config.credential.expiresAt).toBe('2026-02-01T15:00:00Z');
  });

  test('the environment alone can supply a whole config (no file)', () => {
    const result = parseConfig(
      undefined,
      {
        PERSIST_TEAM_ID: 'envonly',
        PERSIST_CREDENTIAL_EXPIRES_AT: '2026-03-01',
        PERSIST_SSH_KEYPAIR_NAME: 'my-key',
        PERSIST_SSH_PRIVATE_KEY_PATH: '~/.ssh/my-key',
        PERSIST_SSH_ALLOWED_CIDR: '198.51.100.0/24',
        PERSIST_NODE_RESERVATION_ID: TEST_RESERVATION,
        HOME: '/home/u',
      },
      NOW,
    );
    if (!result.ok) throw new Error(formatIssues(result.errors));
    expect(result.config.ssh).toMatchObject({ keypairName: 'my-key', privateKeyPath: '/home/u/.ssh/my-key' });
    expect(result.config.ssh.publicKeyPath).toBeUndefined();
  });

  test('blank YAML values (null) count as unset', () => {
    const result = parseConfig(rawWith({ ssh: { keypairName: undefined }, etl: { datasetSha256: undefined } }), {}, NOW);
    expect(result.ok).toBe(true);
    const withNulls = validRaw();
    withNulls.etl = { datasetSha256: null, seed: null };
    const r2 = parseConfig(withNulls, {}, NOW);
    expect(r2.ok && r2.config.etl.seed).toBe(42);
  });

  test('a flavor is enough where no reservation is required', () => {
    const result = parseConfig(rawWith({ kvm: { region: 'RegionOne' }, node: { reservationId: null, flavor: 'm1.large' } }), {}, NOW);
    expect(result.ok && result.config.node).toMatchObject({ flavor: 'm1.large' });
    expect(result.ok && result.config.node.reservationId).toBeUndefined();
  });

  test('bring your own credential: both variables give an existing credential, and the secret is not kept', () => {
    const result = parseConfig(
      validRaw(),
      { PERSIST_APP_CREDENTIAL_ID: 'a'.repeat(32), PERSIST_APP_CREDENTIAL_SECRET: 'very-secret-value' },
      NOW,
    );
    if (!result.ok) throw new Error(formatIssues(result.errors));
    expect(result.config.credential.existing).toEqual({ id: 'a'.repeat(32), secretEnv: 'PERSIST_APP_CREDENTIAL_SECRET' });
    expect(JSON.stringify(result.config)).not.toContain('very-secret-value');
  });

  test('warnings: unknown PERSIST_ variables, an open CIDR, a near expiry, the same cloud twice', () => {
    const result = parseConfig(
      rawWith({ ssh: { allowedCidr: '0.0.0.0/0' }, credential: { expiresAt: '2025-06-03' }, kvm: { cloud: 'chi_tacc' } }),
      { PERSIST_TEAMID: 'x' },
      NOW,
    );
    expect(result.ok).toBe(true);
    const text = result.warnings.join('\n');
    expect(text).toMatch(/PERSIST_TEAMID .*did you mean PERSIST_TEAM_ID/);
    expect(text).toMatch(/open to the whole Internet/);
    expect(text).toMatch(/less than 7 days/);
    expect(text).toMatch(/separate Keystones/);
  });
});

describe('parseConfig: what injection checks still allow', () => {
  test('spaces inside OpenStack names and key paths, a $ without a brace', () => {
    const result = parseConfig(
      rawWith({ node: { image: 'Ubuntu 24.04 LTS', network: 'my net' }, ssh: { privateKeyPath: '/home/me/My Keys/id$1' } }),
      {},
      NOW,
    );
    if (!result.ok) throw new Error(formatIssues(result.errors));
    expect(result.config.node).toMatchObject({ image: 'Ubuntu 24.04 LTS', network: 'my net' });
    expect(result.config.ssh.privateKeyPath).toBe('/home/me/My Keys/id$1');
  });

  test('plain http is accepted with a pinned SHA-256 (and to a literal loopback address); allowUnverified is a boolean', () => {
    const pinned = parseConfig(
      rawWith({ etl: { datasetUrl: 'http://mirror.example/ml-32m.zip', datasetSha256: 'a'.repeat(64), allowUnverified: true } }),
      {},
      NOW,
    );
    expect(pinned.ok && pinned.config.etl).toMatchObject({ datasetUrl: 'http://mirror.example/ml-32m.zip', allowUnverified: true });
    expect(parseConfig(rawWith({ etl: { datasetUrl: 'http://127.0.0.1:8000/ml.zip' } }), {}, NOW).ok).toBe(true);
    // The stand-in Keystone: loopback only.
    expect(parseConfig(rawWith({ chi: { authUrl: 'http://127.0.0.1:5000/v3' } }), {}, NOW).ok).toBe(true);
    expect(parseConfig(rawWith({ chi: { authUrl: 'http://[::1]:5000/v3' } }), {}, NOW).ok).toBe(true);
    expect(only(rawWith({ etl: { allowUnverified: 'yes please' } })).problem).toMatch(/must be true or false/);
  });

  test('an IPv6 ssh.allowedCidr is accepted with a warning that SSH over the IPv4 floating IP stays closed', () => {
    const result = parseConfig(rawWith({ ssh: { allowedCidr: '2001:db8::/64' } }), {}, NOW);
    expect(result.ok).toBe(true);
    expect(result.warnings).toEqual([
      'ssh.allowedCidr is the IPv6 network 2001:db8::/64: the security group then allows SSH over IPv6 only, but the runner ' +
        'connects to the IPv4 floating IP, so SSH stays closed and the etl stage waits in vain. Use your IPv4 address instead ' +
        '(curl -4 -s ifconfig.me, then e.g. 203.0.113.7/32)',
    ]);
    expect(parseConfig(validRaw(), {}, NOW).warnings).toEqual([]);
  });
});

describe('parseConfig: each bad value gives its own clear message', () => {
  const cases: Array<[string, Record<string, any>, Record<string, string>, string, RegExp, RegExp?]> = [
    ['missing team id', { teamId: null }, {}, 'teamId', /is required/, /teamId: proj99/],
    ['team id with a space', { teamId: 'Proj 9' }, {}, 'teamId', /"Proj 9" must be 1-48 lowercase/],
    ['missing expiry', { credential: { expiresAt: null } }, {}, 'credential.expiresAt', /is required/, /future date/],
    ['expiry in the past', { credential: { expiresAt: '2025-05-01' } }, {}, 'credential.expiresAt', /not in the future/],
    ['expiry not a date', { credential: { expiresAt: 'next year' } }, {}, 'credential.expiresAt', /is not a date/],
    ['expiry without zone', { credential: { expiresAt: '2026-01-01T10:00' } }, {}, 'credential.expiresAt', /no time zone/],
    ['expiry 31 February', { credential: { expiresAt: '2026-02-31' } }, {}, 'credential.expiresAt', /not a real date/],
    ['expiry as a number', { credential: { expiresAt: 20260101 } }, {}, 'credential.expiresAt', /must be text \(got number\)/],
    ['missing CIDR', { ssh: { allowedCidr: null } }, {}, 'ssh.allowedCidr', /is required/, /203\.0\.113\.7\/32/],
    ['CIDR is an address', { ssh: { allowedCidr: '203.0.113.7' } }, {}, 'ssh.allowedCidr', /write 203\.0\.113\.7\/32/],
    ['CIDR with host bits', { ssh: { allowedCidr: '10.1.2.3/16' } }, {}, 'ssh.allowedCidr', /network is 10\.1\.0\.0\/16/],
    ['CIDR garbage', { ssh: { allowedCidr: 'my laptop' } }, {}, 'ssh.allowedCidr', /not a CIDR/],
    ['CIDR prefix too long', { ssh: { allowedCidr: '10.0.0.0/33' } }, {}, 'ssh.allowedCidr', /must be 0-32/],
    ['no key at all', { ssh: { publicKeyPath: null } }, {}, 'ssh.publicKeyPath', /is required \(or ssh.keypairName\)/],
    ['both keys', { ssh: { keypairName: 'k' } }, {}, 'ssh.publicKeyPath', /both set/],
    [
      'keypair without private key',
      { ssh: { publicKeyPath: null, keypairName: 'k' } },
      {},
      'ssh.privateKeyPath',
      /required with ssh.keypairName/,
    ],
    [
      'KVM@TACC without reservation',
      { node: { reservationId: null } },
      {},
      'node.reservationId',
      /is required: KVM@TACC/,
      /reservation lease create/,
    ],
    ['reservation not a UUID', { node: { reservationId: 'my-lease' } }, {}, 'node.reservationId', /must be a reservation id/],
    [
      'bad boolean in file',
      { storage: { allowDestroyNonEmptyContainer: 'sure' } },
      {},
      'storage.allowDestroyNonEmptyContainer',
      /must be true or false/,
    ],
    [
      'bad boolean in env',
      {},
      { PERSIST_CREDENTIAL_ACCESS_RULES: 'maybe' },
      'credential.accessRules',
      /PERSIST_CREDENTIAL_ACCESS_RULES="maybe" must be true or false/,
    ],
    ['bad number in env', {}, { PERSIST_ETL_SEED: 'forty-two' }, 'etl.seed', /must be a number/],
    ['negative seed', { etl: { seed: -1 } }, {}, 'etl.seed', /must not be negative/],
    ['ratios not adding up', { etl: { trainRatio: 0.8 } }, {}, 'etl.trainRatio', /add up to 1\.1, not 1/],
    ['ratio out of range', { etl: { evaluationRatio: 1.5 } }, {}, 'etl.evaluationRatio', /must be less than 1/],
    ['dataset not a URL', { etl: { datasetUrl: 'movielens' } }, {}, 'etl.datasetUrl', /must be a URL/],
    ['dataset ftp URL', { etl: { datasetUrl: 'ftp://x.org/a.zip' } }, {}, 'etl.datasetUrl', /http/],
    ['bad sha256', { etl: { datasetSha256: 'abc' } }, {}, 'etl.datasetSha256', /64 hexadecimal/],
    ['relative remote dir', { etl: { remoteDir: 'chameleon' } }, {}, 'etl.remoteDir', /absolute path/],
    ['empty cloud name', { chi: { cloud: '  ' } }, {}, 'chi.cloud', /must not be empty/],
    ['auth URL not a URL', { chi: { authUrl: 'chi.tacc' } }, {}, 'chi.authUrl', /must be a URL/],
    ['ssh user invalid', { ssh: { user: 'Root User' } }, {}, 'ssh.user', /Linux user name/],
    ['misspelt field', { node: { flavour: 'm1.large' } }, {}, 'node.flavour', /is not a known field/, /did you mean node.flavor/],
    [
      'misplaced field',
      { ssh: { reservationId: TEST_RESERVATION } },
      {},
      'ssh.reservationId',
      /is not a known field/,
      /node.reservationId/,
    ],
    ['section not a mapping', { node: 'big' }, {}, 'node', /must be a mapping of fields \(got string\)/],
    [
      'secret in the file',
      { credential: { secret: 'x' } },
      {},
      'credential.secret',
      /secrets are never read from the configuration file/,
      /PERSIST_APP_CREDENTIAL_SECRET/,
    ],
    [
      'BYO id without secret',
      {},
      { PERSIST_APP_CREDENTIAL_ID: 'a'.repeat(32) },
      'PERSIST_APP_CREDENTIAL_SECRET',
      /is not set, but PERSIST_APP_CREDENTIAL_ID is/,
    ],
    [
      'BYO secret without id',
      {},
      { PERSIST_APP_CREDENTIAL_SECRET: 'x' },
      'PERSIST_APP_CREDENTIAL_ID',
      /is not set, but PERSIST_APP_CREDENTIAL_SECRET is/,
    ],
    // Injection (issue 10, item 5): control characters, whitespace where a field needs none, Terraform templates.
    [
      'newline in chi.region',
      { chi: { region: 'CHI@TACC\nauth = https://evil.example/v3' } },
      {},
      'chi.region',
      /^"CHI@TACC\\nauth = https:\/\/evil.example\/v3" contains a control character/,
    ],
    [
      'newline in chi.authUrl',
      { chi: { authUrl: 'https://chi.tacc.chameleoncloud.org:5000/v3\nauth = https://evil.example/v3' } },
      {},
      'chi.authUrl',
      /contains a control character \(a newline, tab or escape\)/,
    ],
    [
      'newline in chi.authUrl from env',
      {},
      { PERSIST_CHI_AUTH_URL: 'https://chi.tacc.chameleoncloud.org:5000/v3\rauth = https://evil.example/v3' },
      'chi.authUrl',
      /contains a control character/,
    ],
    ['tab in node.flavor', { node: { flavor: 'm1.\tmedium' } }, {}, 'node.flavor', /contains a control character/],
    ['escape in node.network', { node: { network: 'shared\u001b[2Jnet1' } }, {}, 'node.network', /contains a control character/],
    [
      'template in node.image',
      { node: { image: '${file("/etc/hostname")}' } },
      {},
      'node.image',
      /^"\$\{file\("\/etc\/hostname"\)\}" contains "\$\{" or "%\{", which Terraform would evaluate/,
    ],
    [
      'directive in node.floatingIpPool',
      { node: { floatingIpPool: '%{ if true }public%{ endif }' } },
      {},
      'node.floatingIpPool',
      /contains "\$\{" or "%\{"/,
    ],
    [
      'template in ssh.keypairName',
      { ssh: { publicKeyPath: null, keypairName: 'k${path.cwd}', privateKeyPath: '/k' } },
      {},
      'ssh.keypairName',
      /Terraform would evaluate/,
    ],
    [
      'template in ssh.privateKeyPath',
      { ssh: { privateKeyPath: '/home/${var.x}/.ssh/id' } },
      {},
      'ssh.privateKeyPath',
      /Terraform would evaluate/,
    ],
    [
      'template in etl.datasetUrl',
      { etl: { datasetUrl: 'https://example.org/${path.root}.zip' } },
      {},
      'etl.datasetUrl',
      /Terraform would evaluate/,
    ],
    ['space in chi.cloud', { chi: { cloud: 'chi tacc' } }, {}, 'chi.cloud', /must not contain spaces/],
    ['space in kvm.region', { kvm: { region: 'KVM TACC' } }, {}, 'kvm.region', /must not contain spaces/],
    [
      'remote dir with a space',
      { etl: { remoteDir: '/home/cc/my dir' } },
      {},
      'etl.remoteDir',
      /must be a plain absolute path/,
      /absolute path on the node/,
    ],
    ['remote dir with ..', { etl: { remoteDir: '/home/cc/../root' } }, {}, 'etl.remoteDir', /no "\.\."/],
    [
      'remote dir with a shell character',
      { etl: { remoteDir: '/home/cc/x;reboot' } },
      {},
      'etl.remoteDir',
      /written unquoted into the node's setup script/,
    ],
    ['remote dir with a trailing slash', { etl: { remoteDir: '/home/cc/etl/' } }, {}, 'etl.remoteDir', /trailing "\/"/],
    [
      'plain http dataset without a SHA-256',
      { etl: { datasetUrl: 'http://files.grouplens.org/datasets/movielens/ml-32m.zip' } },
      {},
      'etl.datasetUrl',
      /is plain http without etl\.datasetSha256: anyone on the network path could replace the zip/,
      /https:\/\/ URL, or pin the file with etl\.datasetSha256/,
    ],
    [
      'plain http Keystone (the credential would cross the network in clear text)',
      { chi: { authUrl: 'http://chi.tacc.chameleoncloud.org:5000/v3' } },
      {},
      'chi.authUrl',
      /is plain http: the node and the runner would send the application credential's secret in clear text/,
      /use the https:\/\/ URL .*only for a Keystone on this machine's loopback/,
    ],
    [
      'plain http Keystone named localhost (a name is resolved, so it is not a loopback literal)',
      { chi: { authUrl: 'http://localhost:5000/v3' } },
      {},
      'chi.authUrl',
      /is plain http/,
    ],
    [
      'BYO id malformed',
      {},
      { PERSIST_APP_CREDENTIAL_ID: 'not an id', PERSIST_APP_CREDENTIAL_SECRET: 'x' },
      'PERSIST_APP_CREDENTIAL_ID',
      /does not look like/,
    ],
  ];

  // Rows are wrapped: jest hands a `done` callback to a test function with more parameters than row values.
  test.each(cases.map((row) => ({ name: row[0], row })))('$name', ({ row }) => {
    const [, patch, env, field, problem, fix] = row;
    const error = only(rawWith(patch), env);
    expect(error.field).toBe(field);
    expect(error.problem).toMatch(problem);
    expect(error.fix.length).toBeGreaterThan(5);
    if (fix) expect(error.fix).toMatch(fix);
    if (FIELDS.some((f) => f.path === field)) expect(error.env).toBe(envNameFor(field));
  });

  test('a file that is not a mapping', () => {
    expect(only(['a', 'b']).problem).toMatch(/must be a YAML mapping/);
    expect(only('teamId=proj99').problem).toMatch(/must be a YAML mapping/);
  });

  test('all problems are reported at once, not one per run', () => {
    const errors = errorsOf({ teamId: 'BAD ID', ssh: { allowedCidr: 'x' }, node: { flavour: 1 } });
    expect(errors.map((e) => e.field).sort()).toEqual(['credential.expiresAt', 'node.flavour', 'ssh.allowedCidr', 'teamId'].sort());
  });

  test('formatIssues names field, env var, problem and fix on plain lines', () => {
    const text = formatIssues(errorsOf(rawWith({ ssh: { allowedCidr: '10.0.0.1' } })));
    expect(text).toBe(
      '  - ssh.allowedCidr (env PERSIST_SSH_ALLOWED_CIDR): "10.0.0.1" is an address, not a network; write 10.0.0.1/32 for that one address\n' +
        '    fix: set ssh.allowedCidr to a network such as 203.0.113.7/32 (your public address: `curl -s ifconfig.me`)',
    );
  });
});

describe('checkCidr', () => {
  test.each([
    ['203.0.113.7/32', undefined],
    ['0.0.0.0/0', undefined],
    ['2001:db8::/32', undefined],
    ['2001:db8::1/128', undefined],
    ['::ffff:10.0.0.0/104', undefined],
  ])('%s is accepted', (cidr, expected) => expect(checkCidr(cidr)).toBe(expected));

  test.each([
    ['2001:db8::1/64', /network is 2001:db8::\/64/],
    ['2001:db8::/129', /must be 0-128/],
    ['300.1.1.1/32', /not an IPv4 or IPv6 address/],
    ['10.0.0.0/abc', /must be 0-32/],
  ])('%s is refused', (cidr, message) => expect(checkCidr(cidr)).toMatch(message));
});

describe('loadConfig (file + env + public key)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'persist-config-'));
  const write = (name: string, text: string) => {
    const file = join(dir, name);
    writeFileSync(file, text);
    return file;
  };
  const load = (file: string, env: Record<string, string> = {}) => {
    const warnings: string[] = [];
    const config = loadConfig({ file, env, now: NOW, warn: (w) => warnings.push(w) });
    return { config, warnings };
  };
  const failure = (file: string, env: Record<string, string> = {}): ConfigError => {
    try {
      load(file, env);
    } catch (e) {
      if (e instanceof ConfigError) return e;
      throw e;
    }
    throw new Error('expected a ConfigError');
  };

  test('the shipped example parses, once the required values are filled in', () => {
    const example = parse(readFileSync(join(__dirname, '..', '..', 'persist.config.example.yaml'), 'utf8'));
    const result = parseConfig(example, {}, NOW);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    // The example leaves exactly the personal values blank (the reservation is checked once the fields parse).
    expect(result.errors.map((e) => e.field).sort()).toEqual(['credential.expiresAt', 'ssh.allowedCidr', 'teamId']);
    const personal = {
      PERSIST_TEAM_ID: 'proj99',
      PERSIST_CREDENTIAL_EXPIRES_AT: '2026-01-31',
      PERSIST_SSH_ALLOWED_CIDR: '203.0.113.7/32',
    };
    const noLease = parseConfig(example, personal, NOW);
    expect(!noLease.ok && noLease.errors.map((e) => e.field)).toEqual(['node.reservationId']);
    const filled = parseConfig(
      example,
      {
        PERSIST_TEAM_ID: 'proj99',
        PERSIST_CREDENTIAL_EXPIRES_AT: '2026-01-31',
        PERSIST_SSH_ALLOWED_CIDR: '203.0.113.7/32',
        PERSIST_NODE_RESERVATION_ID: TEST_RESERVATION,
      },
      NOW,
    );
    expect(filled.ok).toBe(true);
  });

  test('reads the public key, resolves relative paths against the config file', () => {
    write('id_test.pub', readFileSync(TEST_PUBLIC_KEY_PATH, 'utf8'));
    const file = write(
      'ok.yaml',
      `teamId: proj99\ncredential:\n  expiresAt: "2026-01-31"\nssh:\n  publicKeyPath: id_test.pub\n  allowedCidr: 203.0.113.7/32\nnode:\n  reservationId: ${TEST_RESERVATION}\n`,
    );
    const { config, warnings } = load(file);
    expect(config.ssh.publicKeyPath).toBe(join(dir, 'id_test.pub'));
    expect(config.ssh.privateKeyPath).toBe(join(dir, 'id_test'));
    expect(config.ssh.publicKey).toMatch(/^ssh-ed25519 AAAA/);
    expect(warnings.join('\n')).toMatch(/ssh.privateKeyPath .* does not exist/);
  });

  test('a missing public key file', () => {
    const file = write(
      'nokey.yaml',
      `teamId: p\ncredential: {expiresAt: "2026-01-31"}\nssh: {publicKeyPath: nope.pub, allowedCidr: 10.0.0.0/8}\nnode: {reservationId: ${TEST_RESERVATION}}\n`,
    );
    const e = failure(file);
    expect(e.issues).toEqual([
      expect.objectContaining({ field: 'ssh.publicKeyPath', problem: expect.stringMatching(/nope.pub does not exist/) }),
    ]);
    expect(e.issues[0]!.fix).toMatch(/ssh-keygen/);
  });

  test('a private key given as the public key', () => {
    write('oops.pub', '-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----\n');
    const file = write(
      'priv.yaml',
      `teamId: p\ncredential: {expiresAt: "2026-01-31"}\nssh: {publicKeyPath: oops.pub, allowedCidr: 10.0.0.0/8}\nnode: {reservationId: ${TEST_RESERVATION}}\n`,
    );
    expect(failure(file).issues[0]!.problem).toMatch(/is a PRIVATE key/);
  });

  test('a public key whose comment holds a Terraform template', () => {
    const [type, blob] = readFileSync(TEST_PUBLIC_KEY_PATH, 'utf8').trim().split(' ');
    write('tpl.pub', `${type} ${blob} me@\${file("/etc/passwd")}\n`);
    const file = write(
      'tpl.yaml',
      `teamId: p\ncredential: {expiresAt: "2026-01-31"}\nssh: {publicKeyPath: tpl.pub, allowedCidr: 10.0.0.0/8}\nnode: {reservationId: ${TEST_RESERVATION}}\n`,
    );
    const e = failure(file);
    expect(e.issues[0]!.problem).toMatch(/tpl\.pub's comment contains "\$\{", "%\{" or a control character/);
    expect(e.issues[0]!.fix).toMatch(/ssh-keygen -c -C/);
  });

  test('invalid YAML names the line', () => {
    const file = write('broken.yaml', 'teamId: proj99\nssh:\n  allowedCidr: [unclosed\n');
    const e = failure(file);
    expect(e.issues[0]!.problem).toMatch(/is not valid YAML/);
    expect(e.message).toMatch(/line \d+/);
  });

  test('no file and no environment: says to copy the example', () => {
    const e = failure(join(dir, 'absent.yaml'));
    expect(e.issues[0]!.fix).toMatch(/cp persist.config.example.yaml persist.config.yaml/);
    expect(e.issues.map((i) => i.field)).toContain('teamId');
  });

  test('the ConfigError message is the full, printable report', () => {
    const e = failure(write('bad.yaml', 'teamId: BAD\n'));
    expect(e.message).toMatch(/problems in the configuration:/);
    expect(e.message).toMatch(/- teamId \(env PERSIST_TEAM_ID\): "BAD" must be/);
    expect(e.message).toMatch(/fix: /);
  });
});
