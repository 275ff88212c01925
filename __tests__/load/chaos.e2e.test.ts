import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { prng } from '../../testing/movielens-fixture';
import { LOAD_LOCK_OBJECT } from '../../etl/load/container-lock';
import { ensureOpenStack, etlCredentialEnv, openstackCommand, type OpenStackEnv } from '../support/openstack';
import { readerView, type ReaderView } from '../support/versions';
import { expectedObjects, fakeWorkDir, recordManifests } from './workdir';

// The README's promise, attacked: SIGKILL of a replacing load's whole process group (node and its rclone
// children) at seeded random moments, Keystone gone mid-load, the Swift proxy stopped for 30 s mid-upload, and
// two loads from machines with the same hostname and pid. After each, a reader must see one whole version.
const ROOT = join(__dirname, '..', '..');
const BUNDLE = join(ROOT, 'dist', 'etl.js');
let env: OpenStackEnv;
let seq = 0;
const newContainer = () => `object-persist-chaos-${process.pid}-${++seq}`;

beforeAll(() => {
  env = ensureOpenStack();
});

interface Run {
  child: ChildProcess;
  done: Promise<{ code: number | null; output: string }>;
  /** What it printed so far. */
  output: () => string;
}

/** `node dist/etl.js load` as its own process group (detached), as the node's runner starts it. */
function startLoad(work: string, container: string, extraEnv: Record<string, string> = {}, wrap: string[] = []): Run {
  const args = [BUNDLE, 'load', '--work-dir', work, '--container', container, '--keep', '2'];
  const [cmd, ...rest] = wrap.length ? [...wrap, process.execPath, ...args] : [process.execPath, ...args];
  const child = spawn(cmd, rest, {
    detached: true,
    env: { ...process.env, ...etlCredentialEnv(env), ETL_LOAD_TRACE: '1', ...extraEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d));
  child.stderr!.on('data', (d: Buffer) => (output += d));
  const done = new Promise<{ code: number | null; output: string }>((resolve) => child.on('close', (code) => resolve({ code, output })));
  return { child, done, output: () => output };
}

/** The steps the load started so far, in order: its ETL_LOAD_TRACE lines without their times. */
function traceSteps(run: Run): string[] {
  return [...run.output().matchAll(/^load trace: \+\d+ ms (.+)$/gm)].map((m) => m[1]);
}

/**
 * What the load is doing right now: the last step it started, from its ETL_LOAD_TRACE lines (one `rclone rcd`
 * does every step, so its argv no longer tells them apart). A lock renewal runs beside the others: not a phase.
 */
function phaseOf(run: Run): string {
  const steps = traceSteps(run).filter((w) => !/renew the load lock/.test(w));
  const w = steps[steps.length - 1];
  if (!w) return 'node (before the first step)';
  const phases: [RegExp, string][] = [
    [/^lineage/, 'lineage'],
    [/^log in/, 'log in'],
    [/^take the load lock/, 'take lock'],
    [/^read the load lock/, 'read lock'],
    [/^remove the load lock/, 'release lock'],
    [/^(read the dataset pointer|see whether the container exists)/, 'read pointer'],
    [/^read the version manifest/, 'read version manifest'],
    [/^(record the upload in|publish the version|record the deletion in)/, 'write pointer'],
    [/^write the version manifest/, 'write version manifest'],
    [/^copy unchanged objects/, 'server-side copy'],
    [/^upload dataset version/, 'upload'],
    [/^list the dataset version/, 'verify listing'],
    [/^delete old versions/, 'delete old versions'],
    [/^create container/, 'create container'],
    [/^stop rclone/, 'stop rclone'],
  ];
  return phases.find(([re]) => re.test(w))?.[1] ?? w;
}

/**
 * Where the kills land: the start of each step of a replacing load (its ETL_LOAD_TRACE line), and the node
 * process before its first step. A replacing load of a new seed passes every one of them.
 */
const KILL_POINTS: { name: string; step: RegExp | null; required?: false; maxDelayMs?: number }[] = [
  { name: 'node start', step: null },
  { name: 'lineage', step: /lineage/ },
  { name: 'log in', step: /log in to the object store/ },
  { name: 'read pointer', step: /read the dataset pointer/ },
  { name: 'take lock', step: /take the load lock/ },
  { name: 'read lock', step: /read the load lock/ },
  { name: 'record upload', step: /record the upload in the dataset pointer/ },
  { name: 'server-side copy', step: /copy unchanged objects/ },
  { name: 'upload', step: /upload dataset version/ },
  { name: 'verify listing', step: /list the dataset version/ },
  { name: 'write version manifest', step: /write the version manifest/ },
  { name: 'publish (write pointer)', step: /publish the version/ },
  { name: 'delete old versions', step: /delete old versions/ },
  { name: 'record deletion', step: /record the deletion in the dataset pointer/ },
  // Tens of ms before the process exits: a short delay, so the kill lands while the lock is being removed.
  { name: 'release lock', step: /remove the load lock/, maxDelayMs: 10 },
  // The process exits milliseconds after this line (the lock is already gone): a kill lands in the exit or after
  // it, either is fine, so it is tried but not required to land while the load runs.
  { name: 'stop rclone', step: /stop rclone/, required: false },
];

/**
 * Resolves `delay` ms after the run printed the trace line of `step` (at once for `null`, the process start),
 * with the ms since its start; undefined when the run ended before reaching it. Pipes are written
 * synchronously on Linux, so a line is seen as the step starts.
 */
function killAt(run: Run, step: RegExp | null, delay: number): Promise<number | undefined> {
  const started = Date.now();
  let reached: number | undefined;
  return new Promise((resolve) => {
    const fire = () => {
      reached = Date.now() - started;
      setTimeout(() => resolve(reached), delay);
    };
    void run.done.then(() => resolve(reached));
    if (!step) {
      fire();
      return;
    }
    const seen = () => traceSteps(run).some((w) => step.test(w));
    const onData = () => {
      if (!seen()) return;
      run.child.stdout!.off('data', onData);
      run.child.stderr!.off('data', onData);
      fire();
    };
    run.child.stdout!.on('data', onData);
    run.child.stderr!.on('data', onData);
  });
}

function killGroup(run: Run): void {
  try {
    process.kill(-run.child.pid!, 'SIGKILL');
  } catch {
    // already ended
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Every published version the pointer still lists holds exactly the objects it was published with. */
function assertReadersSafe(view: ReaderView, published: Map<string, Map<string, string>>, where: string): void {
  expect({ where, problems: view.problems }).toEqual({ where, problems: [] });
  expect(view.pointer?.current).toBeTruthy();
  for (const v of view.pointer!.versions) {
    const want = published.get(v.key);
    expect({ where, known: Boolean(want) }).toEqual({ where, known: true });
    for (const [name, md5] of want!) expect({ where, name, md5: view.all.get(`datasets/${v.key}/${name}`) }).toEqual({ where, name, md5 });
  }
}

async function completeLoad(work: string, container: string): Promise<void> {
  const r = await startLoad(work, container).done;
  if (r.code !== 0) throw new Error(`load failed (${r.code}):\n${r.output}`);
}

describe('a published dataset is never half-replaced (chaos against the real Swift)', () => {
  it('SIGKILL of the load in every step of a replacing load (24 or more kills, each a seeded 0-40 ms into a step): after each, readers see one whole published version; then a rerun completes and nothing is left over', async () => {
    const container = newContainer();
    // Three seeds of one zip in one work dir (as on a node: the transform rewrites output/ for a new seed): each
    // replacing load copies the raw file and maps server-side, uploads three splits, verifies, writes the
    // manifest, switches the pointer and deletes the version beyond --keep 2. A load killed on this node is
    // taken over by the next one at once (its lock's token is recorded in the work dir).
    const raw = `userId,movieId,rating,timestamp\n${'1,3,4.0,100\n'.repeat(20000)}`;
    const work = await fakeWorkDir('chaos', 150_000, raw);
    const splits = ['training/movielens_t_train.txt', 'validation/movielens_t_val.txt', 'evaluation/movielens_t_eval.txt'];
    const seeds = [0, 1, 2].map((i) => splits.map(() => `seed ${i}\n${randomBytes(150_000).toString('base64')}\n`));
    const useSeed = async (i: number) => {
      splits.forEach((f, j) => writeFileSync(join(work, 'output', f), seeds[i][j]));
      await recordManifests(work, `chaos-${i}`);
      return expectedObjects(work);
    };
    const seedOf = new Map<string, number>();
    const published = new Map<string, Map<string, string>>();

    let expected = await useSeed(0);
    await completeLoad(work, container);
    let key = (await readerView(env, container)).pointer!.current!;
    published.set(key, expected);
    seedOf.set(key, 0);
    expected = await useSeed(1);
    await completeLoad(work, container);
    key = (await readerView(env, container)).pointer!.current!;
    published.set(key, expected);
    seedOf.set(key, 1);

    // Each kill waits for the load to start one step (its trace line), then a seeded 0-40 ms more: every step of
    // a replacing load gets killed in, however fast or slow the machine (kills spread over a measured duration
    // landed mostly in the login once loads got fast). Seeded: the same order and delays on every run.
    const random = prng(20261201);
    const order = [...KILL_POINTS, ...KILL_POINTS.slice(0, 24 - KILL_POINTS.length)]
      .map((p) => ({ p, r: random() }))
      .sort((a, b) => a.r - b.r)
      .map((x) => x.p);
    const rows: { i: number; point: string; ms: number; phase: string; current: string }[] = [];
    // The seed that was current before the current one: the next load uses the third, whose version the load that
    // published the current one deleted (beyond --keep 2), so it uploads and deletes, passing every step.
    let previousSeed = 0;
    for (const point of order) {
      // A point that a load did not reach (it found a leftover version to reuse, or ended first) is tried again.
      for (let attempt = 0; attempt < 3; attempt++) {
        const i = rows.length + 1;
        const current = (await readerView(env, container)).pointer!.current!;
        const currentSeed = seedOf.get(current)!;
        const target = [0, 1, 2].find((x) => x !== currentSeed && x !== previousSeed) ?? (currentSeed + 1) % 3;
        expected = await useSeed(target);
        const delay = Math.round(random() * (point.maxDelayMs ?? 40));
        const run = startLoad(work, container);
        const reached = await killAt(run, point.step, delay);
        const phase = phaseOf(run);
        killGroup(run);
        const { code } = await run.done;
        const view = await readerView(env, container);
        // A kill after the switch: the target is now the current version.
        if (view.pointer?.current !== current) {
          previousSeed = currentSeed;
          if (!published.has(view.pointer!.current!)) {
            published.set(view.pointer!.current!, expected);
            seedOf.set(view.pointer!.current!, target);
          }
        }
        assertReadersSafe(view, published, `kill ${i} at ${point.name} + ${delay} ms (${phase}, exit ${code})`);
        rows.push({
          i,
          point: reached === undefined ? `${point.name} (never reached)` : `${point.name} + ${delay} ms`,
          ms: reached ?? -1,
          phase: code === null ? phase : `${phase} (had ended: exit ${code})`,
          current: view.pointer!.current!.slice(0, 8),
        });
        if ((code === null && reached !== undefined) || point.required === false) break;
      }
    }
    // eslint-disable-next-line no-console
    console.log(
      `kill moments (trace step + delay, ms since start, the step it landed in):\n${rows
        .map(
          (r) =>
            `  #${String(r.i).padStart(2)} ${r.point.padEnd(40)} ${String(r.ms).padStart(6)} ms  ${r.phase.padEnd(36)} current ${r.current}`,
        )
        .join('\n')}`,
    );
    // Killed while running, in distinct steps: every point a replacing load passes was reached and killed in.
    const killedIn = new Set(
      rows.filter((r) => !/had ended|never reached/.test(`${r.phase} ${r.point}`)).map((r) => r.point.replace(/ \+ .*/, '')),
    );
    expect(KILL_POINTS.filter((p) => p.required !== false && !killedIn.has(p.name)).map((p) => p.name)).toEqual([]);

    // A rerun completes; the container holds exactly the retained versions and the pointer.
    const now = (await readerView(env, container)).pointer!.current!;
    await useSeed([0, 1, 2].find((x) => x !== seedOf.get(now))!);
    await completeLoad(work, container);
    const view = await readerView(env, container);
    expect(view.problems).toEqual([]);
    expect(view.pointer).toMatchObject({ pending: [], retiring: [] });
    expect(view.pointer!.versions).toHaveLength(2);
    const names = new Set(['current.json', ...view.pointer!.versions.flatMap((v) => v.objects.map((n) => `datasets/${v.key}/${n}`))]);
    expect([...view.all.keys()].sort()).toEqual([...names].sort());
    expect(view.all.has(LOAD_LOCK_OBJECT)).toBe(false);
  }, 900_000);

  it('Keystone gone: before the login the load fails and changes nothing; mid-load it needs no new login and publishes whole; readers see one whole version all along', async () => {
    const container = newContainer();
    const a = await fakeWorkDir('ks-a');
    await completeLoad(a, container);
    const before = await readerView(env, container);
    // Keystone as this load sees it: a TCP forwarder the test closes (the shared Keystone keeps serving others).
    const ks = new URL(env.authUrl);
    const sockets = new Set<Socket>();
    const forwarder: Server = createServer((c) => {
      const up = connect(Number(ks.port), ks.hostname);
      sockets.add(c).add(up);
      c.pipe(up).pipe(c);
      c.on('error', () => up.destroy());
      up.on('error', () => c.destroy());
    });
    await new Promise<void>((r) => forwarder.listen(0, '127.0.0.1', r));
    const port = (forwarder.address() as { port: number }).port;
    const authUrl = `http://127.0.0.1:${port}${ks.pathname}`;
    const b = await fakeWorkDir('ks-b', 3_000_000);

    // Mid-load: the load logged in once (its rclone rcd keeps the token), so Keystone going away once the upload
    // is under way stops nothing: the version is verified from a listing and published whole.
    const run = startLoad(b, container, { ETL_AUTH_URL: authUrl, RCLONE_BWLIMIT: '4M' });
    for (let i = 0; i < 400 && phaseOf(run) !== 'upload'; i++) await sleep(50);
    expect(phaseOf(run)).toBe('upload');
    forwarder.close();
    for (const s of sockets) s.destroy();
    // Whole, old or new (the upload may have ended by now): never a mix.
    const during = await readerView(env, container);
    expect(during.problems).toEqual([]);
    expect([before.current, expectedObjects(b)]).toContainEqual(during.current);
    const r = await run.done;
    expect({ code: r.code, tail: r.output.slice(-1500) }).toMatchObject({ code: 0 });
    const after = await readerView(env, container);
    expect(after.problems).toEqual([]);
    expect(after.current).toEqual(expectedObjects(b));

    // Before the login (the forwarder is closed now): the load fails, says why, and nothing changes.
    const c = await fakeWorkDir('ks-c');
    const failed = await startLoad(c, container, { ETL_AUTH_URL: authUrl }).done;
    expect(failed.code).toBe(1);
    expect(failed.output).toMatch(/unreachable/);
    const still = await readerView(env, container);
    expect(still.problems).toEqual([]);
    expect(still.all).toEqual(after.all);

    await completeLoad(c, container);
    expect((await readerView(env, container)).current).toEqual(expectedObjects(c));
  }, 300_000);

  it('the Swift proxy stopped for 30 s mid-upload: readers see the old version whole all along; the load or its rerun publishes', async () => {
    const container = newContainer();
    const a = await fakeWorkDir('px-a');
    await completeLoad(a, container);
    const before = await readerView(env, container);
    const b = await fakeWorkDir('px-b', 5_000_000);
    const run = startLoad(b, container, { ETL_STORAGE_URL: env.faultSwiftUrl, RCLONE_BWLIMIT: '4M' });
    for (let i = 0; i < 400 && phaseOf(run) !== 'upload'; i++) await sleep(50);
    openstackCommand('stop-proxy');
    try {
      for (let t = 0; t < 30; t += 3) {
        const v = await readerView(env, container);
        expect(v.problems).toEqual([]);
        expect(v.current).toEqual(before.current);
        await sleep(3000);
      }
    } finally {
      openstackCommand('start-proxy');
    }
    const r = await run.done;
    if (r.code !== 0) await completeLoad(b, container);
    const v = await readerView(env, container);
    expect(v.problems).toEqual([]);
    expect(v.current).toEqual(expectedObjects(b));
  }, 300_000);

  it('two loads from two machines with the same hostname and the same pid (separate UTS and PID namespaces): exactly one publishes, the other exits 75', async () => {
    const container = newContainer();
    await completeLoad(await fakeWorkDir('ns-a'), container);
    const c = await fakeWorkDir('ns-c', 200_000);
    const d = await fakeWorkDir('ns-d', 200_000);
    // Both are pid 1 of their own PID namespace and named persist-team-node: hostname + pid cannot tell them apart.
    const wrap = ['unshare', '--uts', '--pid', '--fork', '--kill-child', 'sh', '-c', 'hostname persist-team-node && exec "$@"', 'ns'];
    // Each holds the lock 8 s or more (800 KB at 100 KB/s), so the other's attempt lands while it is held even when
    // one login is seconds slower than the other's whole load (else both publish in turn, rightly).
    const slow = { RCLONE_BWLIMIT: '100k' };
    const runs = [startLoad(c, container, slow, wrap), startLoad(d, container, slow, wrap)];
    const results = await Promise.all(runs.map((r) => r.done));
    // On a mismatch the two outputs say why (a code alone does not).
    expect({ codes: results.map((r) => r.code).sort(), outputs: results.map((r) => r.output) }).toMatchObject({ codes: [0, 75] });
    const loser = results.find((r) => r.code === 75)!;
    expect(loser.output).toMatch(/another load into container .* is running \(pid 1 on persist-team-node since/);
    const winner = [c, d][results.findIndex((r) => r.code === 0)];
    const v = await readerView(env, container);
    expect(v.problems).toEqual([]);
    expect(v.current).toEqual(expectedObjects(winner));
    expect(v.all.has(LOAD_LOCK_OBJECT)).toBe(false);
  }, 300_000);
});
