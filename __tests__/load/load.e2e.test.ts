import { execFileSync } from 'node:child_process';
import { copyFileSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { EtlError } from '../../etl/errors';
import { memoryLogger } from '../../etl/log';
import { LOAD_LOCK_OBJECT } from '../../etl/load/container-lock';
import { datasetKey, loadStage, type LoadOptions } from '../../etl/load/stage';
import {
  createAppCredential,
  ensureOpenStack,
  OPENSTACK_SCRIPT,
  OPENSTACK_STATE,
  etlCredentialEnv,
  getObject,
  hasObject,
  listContainer,
  openstackCommand,
  putObject,
  revokeAppCredential,
  type AppCredential,
  type OpenStackEnv,
} from '../support/openstack';
import { expectedObjects, fakeWorkDir } from './workdir';

// The load stage against a real Keystone + Swift on 127.0.0.1 (scripts/local-openstack.sh).
let env: OpenStackEnv;
const log = memoryLogger();
const errors: string[] = [];
const titles: string[] = [];
let containerSeq = 0;
const newContainer = () => `object-persist-load-${process.pid}-${++containerSeq}`;

beforeAll(() => {
  env = ensureOpenStack();
});

function options(container: string, extra: Partial<LoadOptions> = {}): LoadOptions {
  return { container, remote: 'chi_tacc', rclone: 'rclone', transfers: '32', checkers: '16', fastList: true, prune: false, ...extra };
}

async function load(workDir: string, o: LoadOptions, cred: AppCredential = env.appCredential, force = false, extraEnv: Record<string, string> = {}) {
  const saved = { ...process.env };
  Object.assign(process.env, etlCredentialEnv(env, cred), extraEnv);
  try {
    return await loadStage.run({ workDir, force, log }, o);
  } catch (e) {
    if (e instanceof EtlError) errors.push(`${e.message}\n${e.hint ?? ''}`);
    throw e;
  } finally {
    process.env = saved;
  }
}

/** The container's objects (without the manifest) as name -> MD5, through Swift's own API. */
async function containerHashes(container: string): Promise<Map<string, string>> {
  const listing = await listContainer(env, container);
  return new Map([...listing].filter(([name]) => name !== 'manifest.json').map(([name, o]) => [name, o.hash]));
}

describe('the harness (scripts/local-openstack.sh)', () => {
  it('writes env.json with mode 0600 and every field a client needs; `up` again is idempotent (restarts nothing) and prints no secret', () => {
    const envPath = join(OPENSTACK_STATE, 'env.json');
    expect(statSync(envPath).mode & 0o777).toBe(0o600);
    expect(env).toMatchObject({ region: 'CHI@TACC', projectName: 'persist-project', userName: 'persist-user', ruledCredential: { container: 'object-persist-ruled' } });
    for (const k of ['authUrl', 'projectId', 'userId', 'password', 'swiftUrl', 'faultSwiftUrl']) expect((env as unknown as Record<string, string>)[k]).toBeTruthy();
    for (const c of [env.appCredential, env.ruledCredential]) expect(c.id && c.secret).toBeTruthy();
    const before = execFileSync('bash', [OPENSTACK_SCRIPT, 'status', OPENSTACK_STATE], { encoding: 'utf8' });
    const out = execFileSync('bash', [OPENSTACK_SCRIPT, 'up', OPENSTACK_STATE], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    const status = execFileSync('bash', [OPENSTACK_SCRIPT, 'status', OPENSTACK_STATE], { encoding: 'utf8' });
    expect(status).toMatch(/keystone: running/);
    // Idempotent: nothing was restarted (every daemon keeps its pid), so `up` again costs no start-up time.
    // (The fault proxy aside: the fault test of this file stops and starts it.)
    const daemons = (text: string) => text.split('\n').filter((l) => !l.startsWith('fault-proxy'));
    expect(daemons(status)).toEqual(daemons(before));
    for (const secret of [env.appCredential.secret, env.ruledCredential.secret, env.password]) expect(out + status).not.toContain(secret);
  });
});

describe('load into a real Swift', () => {
  it('uploads splits, maps and raw data, verifies them, publishes the manifest last; a rerun uploads nothing', async () => {
    const container = newContainer();
    const work = await fakeWorkDir('full');
    const first = await load(work, options(container));
    expect(first.status).toBe('done');

    expect(await containerHashes(container)).toEqual(expectedObjects(work));
    const train = await getObject(env, container, 'training/movielens_t_train.txt');
    expect(train?.equals(readFileSync(join(work, 'output', 'training', 'movielens_t_train.txt')))).toBe(true);
    const manifest = JSON.parse(String(await getObject(env, container, 'manifest.json')));
    expect(manifest).toMatchObject({ datasetKey: first.details.datasetKey, container, load: { verified: true } });
    expect([...(await listContainer(env, container)).keys()].some((n) => n.startsWith('.incoming'))).toBe(false);

    const again = await load(work, options(container));
    expect(again.status).toBe('skipped');
    expect(again.details.uploadedBytes).toBe(0);
  });

  it('keeps the published dataset whole when the proxy dies mid-upload, and a rerun completes the new one', async () => {
    const container = newContainer();
    const v1 = await fakeWorkDir('v1');
    await load(v1, options(container));
    const v1Objects = await containerHashes(container);
    const v1Manifest = String(await getObject(env, container, 'manifest.json'));

    // v2: same names, new content (3 x ~27 MB), uploaded one at a time at 16 MB/s (rclone reads any flag from
    // RCLONE_<FLAG>): several seconds, so stopping the proxy always lands in the middle.
    const v2 = await fakeWorkDir('v2', 20_000_000);
    const slow = options(container, { transfers: '1', checkers: '1' });
    // Through the fault proxy: stopping it leaves the proxy the other suites use running.
    const run = load(v2, slow, env.appCredential, false, { ETL_STORAGE_URL: env.faultSwiftUrl, RCLONE_BWLIMIT: '16M', RCLONE_RETRIES: '1', RCLONE_LOW_LEVEL_RETRIES: '2' });
    const outcome = run.then(
      () => 'finished',
      (e: Error) => e,
    );
    // Kill the proxy as soon as the first new object has landed in the staging prefix (HEAD: container
    // listings can lag behind under load).
    const staged = ['evaluation/movielens_t_eval.txt', 'maps/items.tsv', 'maps/users.tsv'].map((f) => `.incoming/${datasetKey('extract-v2', 'transform-v2')}/${f}`);
    for (let i = 0; i < 1200; i++) {
      if ((await Promise.all(staged.map((n) => hasObject(env, container, n)))).some(Boolean)) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    // Process titles while rclone runs: the secret travels in rclone's environment, never its argv.
    titles.push(execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' }));
    expect(titles[titles.length - 1]).toMatch(/rclone copy/);
    openstackCommand('stop-proxy');
    let result: string | Error;
    try {
      result = await outcome;
    } finally {
      openstackCommand('start-proxy');
    }
    expect(result).toBeInstanceOf(EtlError);

    // Nothing published was touched: the same objects and the same manifest as before.
    const after = await containerHashes(container);
    for (const [name, hash] of v1Objects) expect([name, after.get(name)]).toEqual([name, hash]);
    expect(String(await getObject(env, container, 'manifest.json'))).toBe(v1Manifest);

    // The failed load could not remove its container lock with the proxy down. A rerun is a new process, which
    // takes over the lock of a dead pid of this machine (tested below); this test's process is still alive, so
    // the rerun breaks the lock as a user would after a run killed elsewhere.
    expect(String(await getObject(env, container, LOAD_LOCK_OBJECT))).toContain(`pid ${process.pid} on`);
    // The rerun resumes and publishes v2; the container ends identical to the source.
    const rerun = await load(v2, options(container, { breakLock: true }));
    expect(rerun.status).toBe('done');
    expect(await containerHashes(container)).toEqual(expectedObjects(v2));
    // It resumed: what had landed before the proxy died was not sent again.
    const v2Bytes = [...(await listContainer(env, container))].filter(([n]) => n !== 'manifest.json').reduce((a, [, o]) => a + o.bytes, 0);
    expect(rerun.details.uploadedBytes).toBeLessThan(v2Bytes);
    expect(rerun.details.uploadedBytes).toBeGreaterThan(0);
    const manifest = JSON.parse(String(await getObject(env, container, 'manifest.json')));
    expect(manifest.datasetKey).toBe(rerun.details.datasetKey);
  });

  it('new names go straight to their final place; only changed ones are staged, verified and promoted', async () => {
    const container = newContainer();
    const v1 = await fakeWorkDir('direct-v1');
    const first = await load(v1, options(container));
    // An empty container: nothing published to protect, nothing staged or copied.
    expect(first.details).toMatchObject({ promoted: 'none', uploadedObjects: expectedObjects(v1).size });
    expect(log.lines.some((l) => new RegExp(`to ${container}: ${expectedObjects(v1).size} new .*, 0 changed .*, 0 already there`).test(l))).toBe(true);

    // v2: the same files but for one changed split and one new map.
    const v2 = await fakeWorkDir('direct-v2');
    for (const f of ['training/movielens_t_train.txt', 'validation/movielens_t_val.txt', 'evaluation/movielens_t_eval.txt', 'maps/users.tsv', 'maps/items.tsv']) {
      if (f !== 'training/movielens_t_train.txt') copyFileSync(join(v1, 'output', f), join(v2, 'output', f));
    }
    writeFileSync(join(v2, 'output', 'maps', 'genres.tsv'), '5\t1\n');
    const second = await load(v2, options(container));
    expect(second.details).toMatchObject({ promoted: 'server-side', uploadedObjects: 2 });
    expect(log.lines.some((l) => new RegExp(`to ${container}: 1 new .*, 1 changed .*, ${expectedObjects(v2).size - 2} already there`).test(l))).toBe(true);
    expect(await containerHashes(container)).toEqual(expectedObjects(v2));
    expect([...(await listContainer(env, container)).keys()].some((n) => n.startsWith('.incoming'))).toBe(false);
  });

  it('--prune removes objects the new dataset no longer has, only after it is verified', async () => {
    const container = newContainer();
    const v1 = await fakeWorkDir('p1');
    await load(v1, options(container));
    const v2 = await fakeWorkDir('p2');
    // v2 has no items map: without --prune the old one stays, with --prune it goes.
    execFileSync('rm', [join(v2, 'output', 'maps', 'items.tsv')]);
    await load(v2, options(container));
    expect((await containerHashes(container)).has('maps/items.tsv')).toBe(true);
    const pruned = await load(v2, options(container, { prune: true }));
    // Already published and identical: verified in place, nothing uploaded, then only the extra object removed.
    expect(pruned.details).toMatchObject({ uploadedBytes: 0, prunedObjects: 1 });
    expect(await containerHashes(container)).toEqual(expectedObjects(v2));
    expect(log.lines.join('\n')).not.toMatch(/server-side copy was refused/);
  });

  it('a revoked credential stops the load with a clear 401 message and changes nothing', async () => {
    const container = newContainer();
    const cred = await createAppCredential(env, `revoked-${process.pid}`);
    await revokeAppCredential(env, cred);
    const work = await fakeWorkDir('revoked');
    await expect(load(work, options(container), cred)).rejects.toThrow(/refused the application credential/);
    expect((await listContainer(env, container)).size).toBe(0);
  });

  it('an expired credential is refused the same way', async () => {
    const cred = await createAppCredential(env, `expiring-${process.pid}`, new Date(Date.now() + 2500).toISOString().replace(/\.\d+Z$/, ''));
    await new Promise((r) => setTimeout(r, 3500));
    const work = await fakeWorkDir('expired');
    await expect(load(work, options(newContainer()), cred)).rejects.toThrow(/401/);
  });

  it('an access-ruled credential loads into its own container and is refused elsewhere', async () => {
    const own = env.ruledCredential.container;
    const work = await fakeWorkDir('ruled');
    // --prune: the container is shared by every run of this test, so stale objects must go.
    const ok = await load(work, options(own, { prune: true }), env.ruledCredential, true);
    expect(ok.status).toBe('done');
    expect(await containerHashes(own)).toEqual(expectedObjects(work));
    await expect(load(work, options(newContainer()), env.ruledCredential)).rejects.toThrow(/\(40[13]\)/);
  });

  describe('loads into one container take turns (its load lock)', () => {
    const names = async (container: string) => [...(await listContainer(env, container)).keys()].sort();

    it('a lock held by a load on another machine: refused with exit 75 and nothing written; --break-lock takes it', async () => {
      const container = newContainer();
      const work = await fakeWorkDir('locked');
      await load(work, options(container));
      const before = await containerHashes(container);
      const manifestBefore = String(await getObject(env, container, 'manifest.json'));
      await putObject(env, container, LOAD_LOCK_OBJECT, 'pid 4242 on other-node since 2026-11-25T06:00:00.000Z\n');
      const v2 = await fakeWorkDir('locked-v2');
      const refused = await load(v2, options(container)).then(
        () => undefined,
        (e: EtlError) => e,
      );
      expect(refused?.message).toMatch(/another load into container .* is running \(pid 4242 on other-node since/);
      expect(refused?.hint).toContain('--break-lock');
      expect(refused?.exitCode).toBe(75);
      expect(await containerHashes(container)).toEqual(new Map([...before, [LOAD_LOCK_OBJECT, expect.any(String)]]));
      expect(String(await getObject(env, container, 'manifest.json'))).toBe(manifestBefore);
      expect(String(await getObject(env, container, LOAD_LOCK_OBJECT))).toContain('other-node');

      const broken = await load(v2, options(container, { breakLock: true }));
      expect(broken.status).toBe('done');
      expect(log.lines.some((l) => /--break-lock: removing the load lock .*other-node/.test(l))).toBe(true);
      expect(await hasObject(env, container, LOAD_LOCK_OBJECT)).toBe(false);
    });

    it("a lock left by a killed load of this machine (its pid gone) is taken over; a load removes its own lock", async () => {
      const container = newContainer();
      const work = await fakeWorkDir('stale');
      await load(work, options(container));
      const dead = execFileSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).toString();
      await putObject(env, container, LOAD_LOCK_OBJECT, `pid ${dead} on ${hostname()} since 2026-11-25T06:00:00.000Z\n`);
      const again = await load(await fakeWorkDir('stale-v2'), options(container));
      expect(again.status).toBe('done');
      expect(log.lines.some((l) => l.includes(`removing a stale load lock on ${container} (pid ${dead} on`))).toBe(true);
      expect(await names(container)).not.toContain(LOAD_LOCK_OBJECT);
    });

    it('two loads of different datasets at once: one publishes, the other is refused, the container holds the winner whole', async () => {
      const container = newContainer();
      const a = await fakeWorkDir('race-a', 200_000);
      const saved = { ...process.env };
      Object.assign(process.env, etlCredentialEnv(env));
      let outcomes;
      try {
        // The container exists and holds a dataset first, so both reach the lock at about the same moment.
        await loadStage.run({ workDir: a, force: false, log }, options(container));
        const c = await fakeWorkDir('race-c', 200_000);
        const d = await fakeWorkDir('race-d', 200_000);
        outcomes = await Promise.allSettled([c, d].map((w) => loadStage.run({ workDir: w, force: false, log }, options(container))));
        const won = outcomes.findIndex((x) => x.status === 'fulfilled');
        expect(outcomes.filter((x) => x.status === 'fulfilled')).toHaveLength(1);
        const lost = outcomes[1 - won] as PromiseRejectedResult;
        expect(String(lost.reason.message)).toMatch(/another load into container/);
        const winner = [c, d][won];
        const manifest = JSON.parse(String(await getObject(env, container, 'manifest.json')));
        expect(manifest.transform).toEqual({ tag: won === 0 ? 'race-c' : 'race-d' });
        // Every object of the winner as it was uploaded (the first dataset had the same names).
        const objects = await containerHashes(container);
        for (const [name, hash] of expectedObjects(winner)) expect(objects.get(name)).toBe(hash);
        expect(objects.has(LOAD_LOCK_OBJECT)).toBe(false);
      } finally {
        process.env = saved;
      }
    });
  });

  afterAll(() => {
    // Everything the stage logged and every error it raised, in all the tests above.
    const everything = [...log.lines, ...errors, ...titles].join('\n');
    expect(everything.length).toBeGreaterThan(0);
    for (const secret of [env.appCredential.secret, env.ruledCredential.secret, env.password]) {
      expect(everything.includes(secret)).toBe(false);
    }
  });
});
