import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, writeFileSync, existsSync, mkdtempSync, openSync, readFileSync, readSync, readlinkSync, realpathSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateMovieLensZip } from '../../testing/movielens-fixture';
import { EtlError } from '../../etl/errors';
import { memoryLogger } from '../../etl/log';
import type { StandInNode } from '../../scripts/stand-in-spec';
import { runOnNode, type RunOnNodeOptions } from '../../etl/remote/run-on-node';
import { ssh } from '../../etl/remote/ssh';
import { ensureNode } from '../support/node';
import { standInRun, standInTarget } from '../support/run';
import { nodeView } from '../../etl/remote/node-view';
import { createAppCredential, ensureOpenStack, listContainer, revokeAppCredential, type OpenStackEnv } from '../support/openstack';
import { currentObject, readerView } from '../support/versions';

// The ETL stage of a deploy, driven through the same runner, against an sshd "node" and a real Keystone + Swift.
const ROOT = join(__dirname, '..', '..');
// Each test may make the first publish of its tag (a whole ETL through ssh): minutes on a loaded machine.
jest.setTimeout(600_000);
const BUNDLE = join(ROOT, 'dist', 'etl.js');
let env: OpenStackEnv;
let node: StandInNode;
let zipDir: string;
const log = memoryLogger();
const errors: string[] = [];

beforeAll(async () => {
  env = ensureOpenStack();
  node = ensureNode();
  if (!existsSync(BUNDLE)) execFileSync('node', [join(ROOT, 'scripts', 'build-etl.mjs')], { cwd: ROOT });
  zipDir = mkdtempSync(join(tmpdir(), 'zips-'));
  await generateMovieLensZip({ outPath: join(zipDir, 'ml-e2e.zip'), rows: 60_000, seed: 3, name: 'ml-e2e', workDir: zipDir });
});

function options(tag: string, extra: Partial<RunOnNodeOptions> = {}): RunOnNodeOptions {
  const container = `object-persist-e2e-${tag}-${process.pid}`;
  return {
    ...standInRun({
      node,
      env,
      container,
      remoteDir: join(tmpdir(), `node-${tag}`),
      source: join(zipDir, 'ml-e2e.zip'),
      bundlePath: BUNDLE,
      log,
    }),
    ...extra,
  };
}

const rcloneConf = (o: RunOnNodeOptions) => o.spec.layout.rcloneConfigPath;
const containerOf = (o: RunOnNodeOptions) => o.spec.storage.container;
const mountPoint = (o: RunOnNodeOptions) => o.spec.layout.mountPoint;
const remoteDirOf = (o: RunOnNodeOptions) => o.spec.layout.remoteDir;

async function run(o: RunOnNodeOptions) {
  try {
    return await runOnNode(o);
  } catch (e) {
    if (e instanceof EtlError) errors.push(`${e.message}\n${e.hint ?? ''}`);
    throw e;
  }
}

const unmount = (dir: string) => execFileSync('sh', ['-c', `mountpoint -q ${dir} && fusermount3 -u ${dir} || true`]);

/**
 * Each test states what it needs instead of relying on the tests before it (any one can run alone, in any
 * order: `npx jest run-on-node -t '<name>'`, or `--randomize`). `published(tag)` is the first full run on the
 * node for that tag (its own remote directory, container and mount), done once and shared: the tests that only
 * read or rerun use 'main'; those that change the published dataset get a tag of their own.
 */
const firstRuns = new Map<string, ReturnType<typeof runOnNode>>();
function published(tag: string): ReturnType<typeof runOnNode> {
  if (!firstRuns.has(tag)) firstRuns.set(tag, run(options(tag)));
  return firstRuns.get(tag)!;
}

/** Runs `body` with a node lock of `owner` in place; the lock is removed afterwards whatever happens. */
async function withLock<T>(opts: RunOnNodeOptions, owner: string, body: () => Promise<T>): Promise<T> {
  const lockDir = join(remoteDirOf(opts), '.lock');
  await ssh(opts.target, `mkdir -p ${lockDir} && echo '${owner}' > ${lockDir}/owner`);
  try {
    return await body();
  } finally {
    await ssh(opts.target, `rm -rf ${lockDir}`);
  }
}

describe('the ETL on the node (sshd stand-in + local Swift)', () => {
  const o = () => options('main');

  it('delivers the config (0600), ships the bundle, runs every stage, loads Swift and mounts it read-only', async () => {
    const opts = o();
    const result = await published('main');
    expect(result.bundleShipped).toBe(true);
    expect(result.mountListing).toEqual(expect.arrayContaining(['training', 'validation', 'evaluation', 'maps', 'manifest.json']));

    const mode = execFileSync('stat', ['-c', '%a', rcloneConf(opts)])
      .toString()
      .trim();
    expect(mode).toBe('600');

    const view = await readerView(env, containerOf(opts));
    expect(view.problems).toEqual([]);
    expect(result.version).toBe(view.pointer?.current);
    const keys = [...view.current.keys()].sort();
    // The published version, and the raw files of the zip (whatever the generator puts in it) under raw/<name>/.
    expect(keys.filter((k) => !k.startsWith('raw/'))).toEqual(
      [
        'evaluation/movielens_e2e_eval.txt',
        'maps/items.tsv',
        'maps/users.tsv',
        'training/movielens_e2e_train.txt',
        'validation/movielens_e2e_val.txt',
      ].sort(),
    );
    expect(keys).toContain('raw/ml-e2e/ratings.csv');
    expect(keys.filter((k) => k.startsWith('raw/')).every((k) => k.startsWith('raw/ml-e2e/'))).toBe(true);
    const s = view.manifest!.transform.splits;
    expect(s.training + s.validation + s.evaluation).toBe(60_000);
    const train = String(await currentObject(env, containerOf(opts), 'training/movielens_e2e_train.txt'));
    expect(train.split('\n').filter(Boolean)).toHaveLength(s.training);
    // What the node's view shows is what Swift holds: the current version, through the read-only mount.
    expect(readFileSync(join(mountPoint(opts), 'training', 'movielens_e2e_train.txt'), 'utf8')).toBe(train);
    expect(realpathSync(mountPoint(opts))).toBe(join(nodeView(mountPoint(opts)).store, 'datasets', result.version!));
    expect(log.lines.some((l) => l.includes('[node] ==> transform'))).toBe(true);
  });

  it('a rerun with nothing changed ships nothing, skips every stage and uploads nothing', async () => {
    await published('main');
    const before = log.lines.length;
    const result = await run(o());
    expect(result.bundleShipped).toBe(false);
    const lines = log.lines.slice(before);
    for (const stage of ['extract', 'transform', 'load']) expect(lines.some((l) => l.includes(`<== ${stage}: skipped`))).toBe(true);
    expect(lines.some((l) => /uploading dataset/.test(l))).toBe(false);
  });

  it('a new version switches the view by one rename: a file opened before keeps reading the old version, a new open reads the new one', async () => {
    const opts = options('switch');
    await published('switch');
    const file = join(mountPoint(opts), 'training', 'movielens_e2e_train.txt');
    const oldText = readFileSync(file, 'utf8');
    const oldVersion = realpathSync(mountPoint(opts));
    const fd = openSync(file, 'r');
    try {
      const result = await run({ ...opts, spec: { ...opts.spec, dataset: { ...opts.spec.dataset, seed: 7 } } });
      expect(realpathSync(mountPoint(opts))).toBe(join(nodeView(mountPoint(opts)).store, 'datasets', result.version!));
      expect(realpathSync(mountPoint(opts))).not.toBe(oldVersion);
      const newText = readFileSync(file, 'utf8');
      expect(newText).toBe(String(await currentObject(env, containerOf(opts), 'training/movielens_e2e_train.txt')));
      expect(newText).not.toBe(oldText);
      // The reader that opened the old version mid-epoch reads it to the end, unchanged.
      const buf = Buffer.alloc(Buffer.byteLength(oldText) + 1);
      let n = 0;
      for (let r: number; (r = readSync(fd, buf, n, buf.length - n, n)) > 0; ) n += r;
      expect(buf.subarray(0, n).toString('utf8')).toBe(oldText);
      // The link the runner switches, and the tutorial's path pointing at it.
      expect(readlinkSync(mountPoint(opts))).toBe(nodeView(mountPoint(opts)).currentLink);
    } finally {
      closeSync(fd);
    }
  });

  it('reruns one stage alone when asked, with --force', async () => {
    await published('force');
    const before = log.lines.length;
    await run({ ...options('force'), stage: 'transform', run: { force: true, breakLock: false } });
    const lines = log.lines.slice(before);
    expect(lines.some((l) => l.includes('<== transform: done'))).toBe(true);
    expect(lines.some((l) => l.includes('==> extract') || l.includes('==> load'))).toBe(false);
  });

  it('an expired or revoked credential fails the load, says so, and leaves the published dataset intact', async () => {
    const opts = o();
    await published('main');
    const before = await listContainer(env, containerOf(opts));
    const cred = await createAppCredential(env, `e2e-revoked-${process.pid}`);
    await revokeAppCredential(env, cred);
    const spec = { ...opts.spec, storage: { ...opts.spec.storage, credentialId: cred.id } };
    const err = await run({
      ...opts,
      spec,
      secret: cred.secret,
      stage: 'load',
      run: { force: true, breakLock: false },
      mount: false,
    }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(EtlError);
    expect(String((err as EtlError).message)).toMatch(/refused the application credential/);
    expect(String((err as EtlError).hint)).toMatch(/Readers still see the version the container pointed at before/);
    expect(await listContainer(env, containerOf(opts))).toEqual(before);
    expect(log.lines.concat(errors).join('\n')).not.toContain(cred.secret);
  });

  it('refuses a second run while another holds the node, and --break-lock clears a stale lock', async () => {
    const opts = o();
    await published('main');
    const lockDir = join(remoteDirOf(opts), '.lock');
    await withLock(opts, 'pid 999 on other-host since 2026-01-01', async () => {
      await expect(run(opts)).rejects.toThrow(/another ETL run holds the lock .*pid 999 on other-host/);
      const again = await run({ ...opts, run: { force: false, breakLock: true }, mount: false });
      expect(again.exitCode).toBe(0);
      expect(existsSync(lockDir)).toBe(false);
    });
  });

  it('takes over a lock left by a killed run of this machine (its process is gone), with a warning', async () => {
    const opts = { ...o(), mount: false };
    await published('main');
    const lockDir = join(remoteDirOf(opts), '.lock');
    const dead = spawnSync('true').pid!; // a pid that has exited
    await withLock(opts, `pid ${dead} on ${hostname()} since 2026-01-01T00:00:00.000Z`, async () => {
      const before = log.lines.length;
      expect((await run(opts)).exitCode).toBe(0);
      expect(log.lines.slice(before).some((l) => /warning: removing a stale lock .*pid \d+ on .*no longer running/.test(l))).toBe(true);
      expect(existsSync(lockDir)).toBe(false);
    });
  });

  it('two runs started at once: exactly one gets the node', async () => {
    const opts = { ...o(), mount: false };
    await published('main'); // so both runs are quick skips, and the race is only over the lock
    const results = await Promise.allSettled([run(opts), run(opts)]);
    const refused = results.filter((r) => r.status === 'rejected');
    expect(refused).toHaveLength(1);
    expect(String((refused[0] as PromiseRejectedResult).reason.message)).toMatch(/holds the lock/);
  });

  it('an unreachable node fails within the wait, naming floating IP, security group and key', async () => {
    const started = Date.now();
    const target = { ...standInTarget(node), port: 1, connectTimeoutSeconds: 2 };
    const err = await run({ ...options('unreachable'), target, sshWaitSeconds: 3 }).catch((e: unknown) => e);
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(err).toBeInstanceOf(EtlError);
    expect((err as EtlError).message).toMatch(/cannot reach .* over SSH/);
    expect(`${(err as EtlError).message}\n${(err as EtlError).hint ?? ''}`).toMatch(/floating IP.*security group/s);
  });

  it('a wrong key is named as such', async () => {
    const keyDir = mkdtempSync(join(tmpdir(), 'key-'));
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(keyDir, 'k')]);
    const target = { ...standInTarget(node), privateKeyPath: join(keyDir, 'k') };
    await expect(run({ ...options('badkey'), target })).rejects.toThrow(/refused the SSH key/);
  });

  afterAll(() => {
    for (const tag of firstRuns.keys()) unmount(nodeView(mountPoint(options(tag))).store);
    if (process.env.RUN_ON_NODE_TEST_LOG) writeFileSync(process.env.RUN_ON_NODE_TEST_LOG, log.lines.join('\n'));
    const everything = [...log.lines, ...errors].join('\n');
    expect(everything.length).toBeGreaterThan(0);
    expect(everything.includes(env.appCredential.secret)).toBe(false);
  });
});
