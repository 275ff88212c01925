import { EtlError } from '../../etl/errors';
import { readJob } from '../../etl/job';
import { nodeJob } from '../../etl/remote/node-job';
import { checkRunSpec, parseRatios, parseRunSpec, withOverrides, type RunSpec } from '../../etl/remote/run-spec';
import { buildProgram } from '../../etl/cli';

const spec: RunSpec = {
  format: 1,
  node: { host: '192.5.87.10', port: 22, user: 'cc', privateKeyPath: '~/.ssh/id_ed25519', serverId: 'server-1', consoleCloud: 'kvm_tacc' },
  layout: {
    remoteName: 'chi_tacc',
    rcloneConfigPath: '/home/cc/.config/rclone/rclone.conf',
    mountPoint: '/mnt/object',
    mountService: 'rclone-object-mount.service',
    remoteDir: '/home/cc/chameleon-persist',
  },
  storage: {
    container: 'object-persist-p1',
    authUrl: 'https://chi.tacc.chameleoncloud.org:5000/v3',
    region: 'CHI@TACC',
    userId: 'u1',
    credentialId: 'c1',
  },
  dataset: {
    url: 'https://files.grouplens.org/datasets/movielens/ml-32m.zip',
    sha256: 'a'.repeat(64),
    allowUnverified: false,
    seed: 42,
    ratios: [0.7, 0.15, 0.15],
  },
};

const broken = (patch: (s: any) => void) => {
  const s = JSON.parse(JSON.stringify(spec));
  patch(s);
  return s;
};

describe('the run spec', () => {
  it('round-trips through JSON unchanged', () => {
    expect(parseRunSpec(JSON.stringify(spec), 'test')).toEqual(spec);
  });

  it.each([
    [
      'a line break in a value (it would inject a line into rclone.conf)',
      (s: any) => (s.storage.authUrl = 'https://a\nauth = https://evil'),
      /storage\.authUrl contains a line break/,
    ],
    [
      'a relative node path (nothing on the way expands ~)',
      (s: any) => (s.layout.rcloneConfigPath = '~/.config/rclone/rclone.conf'),
      /layout\.rcloneConfigPath is not an absolute path/,
    ],
    ['.. in a node path', (s: any) => (s.layout.remoteDir = '/home/cc/../root'), /layout\.remoteDir is not an absolute path/],
    [
      'a remote name that is not plain',
      (s: any) => (s.layout.remoteName = 'chi]x'),
      /layout\.remoteName is not a plain rclone remote name/,
    ],
    ['a checksum that is not SHA-256', (s: any) => (s.dataset.sha256 = 'abc'), /dataset\.sha256 is not a SHA-256/],
    ['ratios that do not add up to 1', (s: any) => (s.dataset.ratios = [0.7, 0.2, 0.2]), /dataset\.ratios must add up to 1/],
    ['both a URL and a source', (s: any) => (s.dataset.source = '/tmp/x.zip'), /dataset needs exactly one of url and source/],
    ['a field nobody reads', (s: any) => (s.node.password = 'x'), /Unrecognized key/],
    ['another format', (s: any) => (s.format = 2), /format Invalid literal value/],
    ['a port out of range', (s: any) => (s.node.port = 70000), /node\.port/],
  ])('refuses %s, naming the field', (_what, patch, message) => {
    expect(() => checkRunSpec(broken(patch), 'PERSIST_ETL_SPEC')).toThrow(EtlError);
    expect(() => checkRunSpec(broken(patch), 'PERSIST_ETL_SPEC')).toThrow(message);
  });

  it('refuses text that is not JSON, and says where it came from', () => {
    expect(() => parseRunSpec('{"format": 1', 'PERSIST_ETL_SPEC')).toThrow(/the run spec in PERSIST_ETL_SPEC is not JSON/);
  });
});

describe("a rerun's overrides", () => {
  it('change only what they name', () => {
    expect(withOverrides(spec, {})).toEqual(spec);
    const o = withOverrides(spec, { seed: 7, ratios: [0.8, 0.1, 0.1], port: 2222, mountPoint: '/mnt/data' });
    expect(o).toEqual({
      ...spec,
      node: { ...spec.node, port: 2222 },
      layout: { ...spec.layout, mountPoint: '/mnt/data' },
      dataset: { ...spec.dataset, seed: 7, ratios: [0.8, 0.1, 0.1] },
    });
  });

  it("a zip on the node replaces the URL and the URL's checksum", () => {
    expect(withOverrides(spec, { source: '/data/ml.zip' }).dataset).toEqual({
      source: '/data/ml.zip',
      allowUnverified: false,
      seed: 42,
      ratios: [0.7, 0.15, 0.15],
    });
  });

  it("another URL drops the deployed URL's checksum; the same URL keeps it", () => {
    expect(withOverrides(spec, { url: 'https://example.org/ml.zip' }).dataset.sha256).toBeUndefined();
    expect(withOverrides(spec, { url: spec.dataset.url }).dataset.sha256).toBe('a'.repeat(64));
    expect(withOverrides(spec, { url: 'https://example.org/ml.zip', sha256: 'b'.repeat(64) }).dataset.sha256).toBe('b'.repeat(64));
  });

  it('are checked like the spec', () => {
    expect(() => withOverrides(spec, { seed: 1, ratios: [0.5, 0.5, 0.5] })).toThrow(/ratios must add up to 1/);
    expect(() => withOverrides(spec, { rcloneConfigPath: 'rclone.conf' })).toThrow(/not an absolute path/);
    expect(parseRatios('0.8, 0.1,0.1')).toEqual([0.8, 0.1, 0.1]);
    expect(() => parseRatios('0.8,0.2')).toThrow(/not three numbers/);
  });
});

describe("the node's job", () => {
  it('is the spec, by the names the stages parse (known answer)', () => {
    expect(nodeJob(spec, { force: true, breakLock: false, keep: 3 })).toEqual({
      format: 1,
      options: {
        workDir: '/home/cc/chameleon-persist/work',
        force: true,
        rcloneConfig: '/home/cc/.config/rclone/rclone.conf',
        container: 'object-persist-p1',
        remote: 'chi_tacc',
        url: 'https://files.grouplens.org/datasets/movielens/ml-32m.zip',
        source: undefined,
        sha256: 'a'.repeat(64),
        allowUnverified: undefined,
        seed: '42',
        ratios: '0.7,0.15,0.15',
        transfers: undefined,
        checkers: undefined,
        keep: '3',
        breakLock: undefined,
      },
    });
  });

  it('names only options the bundle has: every one of them is an option of `etl all`', () => {
    const all = buildProgram().commands.find((c) => c.name() === 'all')!;
    const known = all.options.map((o) => o.attributeName());
    const job = nodeJob(spec, { force: true, breakLock: true, transfers: 8, checkers: 4, keep: 2 });
    for (const k of Object.keys(job.options)) expect(known).toContain(k);
    expect(readJob('-', known, () => JSON.stringify(job))).toMatchObject({
      workDir: '/home/cc/chameleon-persist/work',
      seed: '42',
      breakLock: true,
    });
  });

  it.each([
    ['not JSON', '{', /is not JSON/],
    ['another shape', '{"options": {}}', /not a \{format: 1, options\} object/],
    [
      'an option the bundle lacks (runner and bundle of different versions)',
      '{"format": 1, "options": {"prune": true}}',
      /names an option this bundle does not have: prune/,
    ],
    ['a value of another type', '{"format": 1, "options": {"seed": 42}}', /seed is neither text nor true\/false/],
  ])('is refused by the node when it is %s', (_what, text, message) => {
    expect(() => readJob('-', ['seed', 'workDir'], () => text)).toThrow(message);
  });
});
