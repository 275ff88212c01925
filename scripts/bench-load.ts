/**
 * The load benchmark (`npm run bench -- --load`): our load stage against the tutorial's plain
 * `rclone copy` into the same local Swift (scripts/local-openstack.sh), in one run, each in its own process.
 * The tutorial's copy is the floor: it neither verifies nor protects a published dataset; the ratios say
 * what the version prefix, the listing that verifies it, the lock and the pointer cost on top of it.
 */
import execa from 'execa';
import { createWriteStream, readdirSync, readFileSync, statSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { join, resolve } from 'node:path';
import { ZipFile } from 'yazl';
import { settleMs } from '../etl/load/container-lock';
import { rcloneEnvFromEtlEnv } from '../etl/load/credentials';
import { DEFAULT_RCLONE_REMOTE } from '../etl/rclone-remote';

const ROOT = resolve(__dirname, '..');
const OPENSTACK = join(ROOT, '.stand-ins', 'openstack');
const OPENSTACK_SCRIPT = join(ROOT, 'scripts', 'local-openstack.sh');
/** Rounds of each comparison (BENCH_LOAD_ROUNDS): the outputs-only contenders, and the first load with the raw file. */
const ROUNDS = Math.max(1, Number(process.env.BENCH_LOAD_ROUNDS) || 7);
const WHOLE_ROUNDS = Math.max(1, Math.ceil(ROUNDS / 2) + 1);
const RACE_PAIRS = 100;

interface StandIn {
  authUrl: string;
  swiftUrl: string;
  region: string;
  userId: string;
  appCredential: { id: string; secret: string };
}

function dirBytes(dir: string): number {
  let total = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    total += e.isDirectory() ? dirBytes(p) : statSync(p).size;
  }
  return total;
}

/** The steps of our loads (ETL_LOAD_TRACE lines: when each began), printed under the table. */
const traces: { name: string; steps: string[] }[] = [];

async function wall(cmd: string, args: readonly string[], env: Record<string, string>, traceAs?: string): Promise<number> {
  const t0 = performance.now();
  const r = await execa(cmd, args, { cwd: ROOT, env: traceAs ? { ...env, ETL_LOAD_TRACE: '1' } : env, extendEnv: true, reject: false });
  const seconds = (performance.now() - t0) / 1000;
  if (r.exitCode !== 0) throw new Error(`${cmd} ${args.slice(0, 3).join(' ')} … failed:\n${r.stderr.slice(-1500)}`);
  if (traceAs)
    traces.push({
      name: traceAs,
      steps: [...r.stderr.matchAll(/^load trace: (\+\d+ ms .+)$/gm)]
        .map((m) => m[1])
        .concat(`+${Math.round(seconds * 1000)} ms process ended (wall)`),
    });
  return seconds;
}

/** A MovieLens-shaped zip of the bench's input (stored, not deflated: the bench times the load, not unzip). */
async function benchZip(input: string, work: string): Promise<string> {
  const zip = join(work, 'ml-bench.zip');
  const z = new ZipFile();
  z.addFile(input, 'ml-bench/ratings.csv', { compress: false });
  z.end();
  await new Promise<void>((done, fail) => {
    z.outputStream.pipe(createWriteStream(zip)).on('close', done).on('error', fail);
  });
  return zip;
}

/**
 * Runs the contenders and returns the markdown lines of the table. A stand-in this run starts is stopped at its
 * end (it was left running); one that was running before (a developer's) stays up.
 */
export async function benchLoad(bundle: string, input: string, work: string): Promise<string[]> {
  const wasRunning = (await execa('bash', [OPENSTACK_SCRIPT, 'status', OPENSTACK], { reject: false })).exitCode === 0;
  try {
    return await runContenders(bundle, input, work);
  } finally {
    if (!wasRunning) await execa('bash', [OPENSTACK_SCRIPT, 'down', OPENSTACK], { stdio: 'inherit', reject: false });
  }
}

async function runContenders(bundle: string, input: string, work: string): Promise<string[]> {
  process.stderr.write('load bench: starting the local Keystone + Swift (scripts/local-openstack.sh)\n');
  await execa('bash', [join(ROOT, 'scripts', 'system-deps.sh')], { stdio: 'inherit' });
  await execa('bash', [OPENSTACK_SCRIPT, 'up', OPENSTACK], { stdio: 'inherit' });
  const os = JSON.parse(readFileSync(join(OPENSTACK, 'env.json'), 'utf8')) as StandIn;
  const etlEnv = {
    ETL_APP_CREDENTIAL_ID: os.appCredential.id,
    ETL_APP_CREDENTIAL_SECRET: os.appCredential.secret,
    ETL_AUTH_URL: os.authUrl,
    ETL_REGION: os.region,
    ETL_USER_ID: os.userId,
  };
  const rcloneEnv = rcloneEnvFromEtlEnv(DEFAULT_RCLONE_REMOTE, etlEnv).env;

  // Two transformed datasets of the same input: seed 42, and seed 7 (the same maps, other splits).
  const [a, b] = [join(work, 'load-a'), join(work, 'load-b')];
  process.stderr.write('load bench: transforming the input twice (seeds 42 and 7)\n');
  await wall('node', [bundle, 'transform', '--input', input, '--work-dir', a, '--name', 'b', '--seed', '42'], {});
  await wall('node', [bundle, 'transform', '--input', input, '--work-dir', b, '--name', 'b', '--seed', '7'], {});
  const bytes = dirBytes(join(a, 'output'));
  const splitBytes =
    dirBytes(join(b, 'output', 'training')) + dirBytes(join(b, 'output', 'validation')) + dirBytes(join(b, 'output', 'evaluation'));
  const tag = `${process.pid}`;
  const tutorialFlags = ['--transfers', '32', '--checkers', '16', '--fast-list'];
  const remote = (c: string) => `${DEFAULT_RCLONE_REMOTE}:${c}`;
  const load = (workDir: string, container: string, extra: string[] = []) =>
    ['node', [bundle, 'load', '--work-dir', workDir, '--container', container, '--remote', DEFAULT_RCLONE_REMOTE, ...extra]] as const;
  // Containers made and not yet purged: a round purges its own, the `finally`s what is left (a failed round's, or
  // one whose purge failed: Swift refuses to delete a container whose listing still lags behind the deletions).
  const made = new Set<string>();
  const fresh = async (what: string, round: number) => {
    const c = `object-persist-bench-${what}-${tag}-${round}`;
    made.add(c);
    // Made before the clock starts, as the tutorial's GUI step and the deploy's storage stack make it: the load
    // creates one only when there is none, which a deploy never needs.
    await wall('rclone', ['mkdir', remote(c)], rcloneEnv);
    return c;
  };
  const purge = async (cs: Iterable<string>) => {
    for (const c of [...cs]) {
      const r = await execa('rclone', ['purge', remote(c)], { env: rcloneEnv, extendEnv: true, reject: false });
      if (r.exitCode === 0) made.delete(c);
    }
  };
  /** Both sides of round `r`, the tutorial's first in even rounds, ours first in odd ones: [tutorial, ours]. */
  const interleaved = async (r: number, tutorial: () => Promise<number>, ours: () => Promise<number>) => {
    if (r % 2 === 0) {
      const t = await tutorial();
      return [t, await ours()] as const;
    }
    const o = await ours();
    return [await tutorial(), o] as const;
  };
  // After a purge Swift's updaters still have work queued (their 10 s passes): the next round waits for them, so
  // that their work does not land on whichever contender runs first.
  const quiet = () => new Promise((r) => setTimeout(r, 10_000));

  // One run of each contender moves by ±0.5 s on this machine (3-4 s each): every comparison is made ROUNDS times,
  // the two sides interleaved (their order swapped every round, so a drift of the machine weighs on both), and
  // reported as the median of the rounds' ratios, each ours / the same round's tutorial copy.
  const rounds: Row[] = [];
  try {
    process.stderr.write(`load bench: running the contenders, ${ROUNDS} interleaved rounds\n`);
    for (let r = 0; r < ROUNDS; r++) {
      const [t, o] = [await fresh('rclone', r), await fresh('ours', r)];
      const trace = r === 0;
      const [tutorialS, firstS] = await interleaved(
        r,
        () => wall('rclone', ['copy', join(a, 'output'), remote(t), ...tutorialFlags], rcloneEnv),
        () => wall(...load(a, o), etlEnv, `first load, round ${r + 1}`),
      );
      const phases = phasesOf(traces.find((x) => x.name === `first load, round ${r + 1}`)!.steps);
      const unchanged = await wall(...load(a, o), etlEnv, trace ? 'nothing changed' : undefined);
      const key = (
        JSON.parse((await execa('rclone', ['cat', `${remote(o)}/current.json`], { env: rcloneEnv, extendEnv: true })).stdout) as {
          current: string;
        }
      ).current;
      const listing = await wall('rclone', ['lsjson', '-R', '--hash', '--files-only', `${remote(o)}/datasets/${key}`], rcloneEnv);
      const force = await wall(...load(a, o, ['--force']), etlEnv);
      const seed = await wall(...load(b, o), etlEnv, trace ? 'new seed' : undefined);
      rounds.push({ tutorial: tutorialS, first: firstS, unchanged, listing, force, seed, phases });
      process.stderr.write(
        `load bench: round ${r + 1}/${ROUNDS}: tutorial ${tutorialS.toFixed(2)} s, ours ${firstS.toFixed(2)} s ` +
          `(${(firstS / tutorialS).toFixed(2)}x; ${phaseLine(phases)})\n`,
      );
      await purge([t, o]);
      await quiet();
    }
  } finally {
    await purge(made);
  }

  // The first load as a deploy does it: the extracted raw file is published too (raw/<dataset>/), so the tutorial's
  // copy gets the same bytes (staging/ and output/ in one rclone copy, one login).
  const c = join(work, 'load-c');
  const zip = await benchZip(input, work);
  await wall('node', [bundle, 'extract', '--work-dir', c, '--source', zip], {});
  await wall('node', [bundle, 'transform', '--work-dir', c, '--seed', '42'], {});
  const wholeBytes = dirBytes(join(c, 'output')) + dirBytes(join(c, 'staging'));
  const whole: { tutorial: number; ours: number }[] = [];
  try {
    for (let r = 0; r < WHOLE_ROUNDS; r++) {
      const [t, o] = [await fresh('rclone-whole', r), await fresh('ours-whole', r)];
      const [tutorialS, oursS] = await interleaved(
        r,
        () => wall('rclone', ['copy', c, remote(t), '--include', '/output/**', '--include', '/staging/**', ...tutorialFlags], rcloneEnv),
        () => wall(...load(c, o), etlEnv, r === 0 ? 'first load, raw file included' : undefined),
      );
      whole.push({ tutorial: tutorialS, ours: oursS });
      await purge([t, o]);
      await quiet();
    }
  } finally {
    await purge(made);
  }

  const race = await lockRace(os, RACE_PAIRS);
  const tutorialOf = (i: number) => rounds[i].tutorial;
  const rows: { name: string; seconds: number[]; ratios: number[]; bytes: number; note: string }[] = [
    {
      name: "tutorial's rclone copy, empty container",
      seconds: rounds.map((x) => x.tutorial),
      ratios: rounds.map(() => 1),
      bytes,
      note: 'no verification, no manifest, overwrites in place',
    },
    ...(
      [
        [
          'ours, first load into an empty container',
          'first',
          bytes,
          'lock, upload into datasets/<key>/, one listing verifies names, sizes, MD5s; manifest; pointer',
        ],
        [
          'ours, nothing changed (plain rerun)',
          'unchanged',
          0,
          'the skip path: pointer, version manifest (local copy), one listing; no lock',
        ],
        ['one listing of the version (rclone lsjson --hash)', 'listing', 0, 'what the skip path must cost at least'],
        ['ours, same dataset again (--force)', 'force', 0, 'under the lock: the version is whole, nothing sent or written'],
        [
          'ours, new seed: the 3 splits change',
          'seed',
          splitBytes,
          'maps copied server-side from the current version, 3 splits uploaded; previous version kept',
        ],
      ] as const
    ).map(([name, k, by, note]) => ({
      name,
      seconds: rounds.map((x) => x[k]),
      ratios: rounds.map((x, i) => x[k] / tutorialOf(i)),
      bytes: by,
      note,
    })),
  ];
  const wholeRows: typeof rows = [
    {
      name: "tutorial's rclone copy of raw file + outputs, empty container",
      seconds: whole.map((x) => x.tutorial),
      ratios: whole.map(() => 1),
      bytes: wholeBytes,
      note: 'no verification, no manifest, overwrites in place',
    },
    {
      name: 'ours, first load of raw file + outputs into an empty container',
      seconds: whole.map((x) => x.ours),
      ratios: whole.map((x) => x.ours / x.tutorial),
      bytes: wholeBytes,
      note: 'as above, with raw/<dataset>/ratings.csv: what `all` publishes',
    },
  ];
  const unchangedBudget = rounds.map((x) => x.unchanged - x.listing);

  const table = (rs: typeof rows) =>
    rs.map((r) => {
      const s = median(r.seconds);
      const [lo, hi] = [Math.min(...r.ratios), Math.max(...r.ratios)];
      return (
        `| ${r.name} | ${s.toFixed(2)} | ${Math.min(...r.seconds).toFixed(2)}-${Math.max(...r.seconds).toFixed(2)} ` +
        `| ${(r.bytes / 1e6).toFixed(0)} | ${r.bytes ? (r.bytes / 1e6 / s).toFixed(0) : '-'} ` +
        `| ${median(r.ratios).toFixed(2)}x | ${lo.toFixed(2)}-${hi.toFixed(2)}x | ${r.note} |`
      );
    });
  const header = [
    '| contender | median s | range s | MB sent | MB/s | time / tutorial (median of rounds) | range of rounds | note |',
    '|---|---:|---:|---:|---:|---:|---:|---|',
  ];
  return [
    '',
    `load: the transform's outputs (${(bytes / 1e6).toFixed(0)} MB: splits and maps) into the local Swift (${os.authUrl}), ` +
      `${ROUNDS} interleaved rounds`,
    '',
    ...header,
    ...table(rows),
    '',
    `nothing changed, beyond its one listing: median ${median(unchangedBudget).toFixed(2)} s ` +
      `(range ${Math.min(...unchangedBudget).toFixed(2)}-${Math.max(...unchangedBudget).toFixed(2)} s; the target is at most 1 s)`,
    '',
    `the first load with the raw file (${(wholeBytes / 1e6).toFixed(0)} MB: the extracted ratings.csv, splits and maps), ` +
      `${WHOLE_ROUNDS} interleaved rounds:`,
    '',
    ...header,
    ...table(wholeRows),
    '',
    `the lock race (${race.pairs} pairs of conditional creates of one lock object sent at the same instant, straight to Swift): ` +
      `both passed If-None-Match in ${race.bothPassed}; where both passed, the later answered ${race.gapMedian.toFixed(1)} ms ` +
      `(median) / ${race.gapMax.toFixed(1)} ms (max) after the earlier; a create took ${race.createMedian.toFixed(1)} ms (median), ` +
      `so the load's settle would be ${settleMs(race.createMedian, 60)} ms (etl/load/container-lock.ts settleMs)`,
    '',
    "where our first loads' time went, per round (from ETL_LOAD_TRACE; ms): node's start before the stage, rclone's start " +
      'and the login, the steps before the upload (container, lock and its settle, pending record), the upload, the ' +
      "steps after it (listing, manifest, pointer, lock removal), rclone's stop and node's exit:",
    '',
    ...rounds.map((x, i) => `    first load, round ${i + 1}: ${phaseLine(x.phases)}`),
    '',
    "steps of our loads in round 1 (ETL_LOAD_TRACE: when each rc call began, from the stage's start; the process also starts node):",
    ...traces
      .filter((t) => !t.name.startsWith('first load, round') || t.name === 'first load, round 1')
      .flatMap((t) => ['', `${t.name}:`, ...t.steps.map((x) => `    ${x}`)]),
  ];
}

/**
 * Pairs of `If-None-Match: *` creates of one new object, sent at the same instant on two kept-alive connections:
 * how often Swift lets both pass, and how long after the earlier answer the later one came (it has landed by then),
 * against how long one create takes: what the load lock's settle must cover.
 */
async function lockRace(os: StandIn, pairs: number) {
  const auth = await fetch(`${os.authUrl}/auth/tokens`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      auth: {
        identity: {
          methods: ['application_credential'],
          application_credential: { id: os.appCredential.id, secret: os.appCredential.secret },
        },
      },
    }),
  });
  const token = auth.headers.get('x-subject-token');
  if (!auth.ok || !token) throw new Error(`lock race: Keystone refused the bench's credential (HTTP ${auth.status})`);
  const base = new URL(`${os.swiftUrl}/object-persist-bench-race-${process.pid}`);
  const agents = [new Agent({ keepAlive: true }), new Agent({ keepAlive: true })];
  const send = (agent: Agent, method: string, path: string, body?: string, headers: Record<string, string> = {}) =>
    new Promise<{ status: number; at: number }>((done, fail) => {
      const r = request(
        {
          host: base.hostname,
          port: base.port,
          path: `${base.pathname}${path}`,
          method,
          agent,
          headers: { 'x-auth-token': token, ...headers, ...(body === undefined ? {} : { 'content-length': Buffer.byteLength(body) }) },
        },
        (res) => {
          res.resume();
          res.on('end', () => done({ status: res.statusCode ?? 0, at: performance.now() }));
        },
      );
      r.on('error', fail);
      r.end(body);
    });
  const gaps: number[] = [];
  const creates: number[] = [];
  try {
    await send(agents[0], 'PUT', '');
    for (let i = 0; i < pairs; i++) {
      await Promise.all(agents.map((a) => send(a, 'HEAD', '')));
      const t0 = performance.now();
      const lock = { 'if-none-match': '*', 'x-delete-after': '60' };
      const [a, b] = await Promise.all(agents.map((g, k) => send(g, 'PUT', `/lock-${i}`, `{"token":"${k}"}\n`, lock)));
      creates.push(Math.min(a.at, b.at) - t0);
      if (a.status === 201 && b.status === 201) gaps.push(Math.abs(a.at - b.at));
    }
    for (let i = 0; i < pairs; i++) await send(agents[0], 'DELETE', `/lock-${i}`);
    await send(agents[0], 'DELETE', '');
  } finally {
    for (const a of agents) a.destroy();
  }
  return {
    pairs,
    bothPassed: gaps.length,
    gapMedian: gaps.length ? median(gaps) : 0,
    gapMax: gaps.length ? Math.max(...gaps) : 0,
    createMedian: median(creates),
  };
}

interface Row {
  tutorial: number;
  first: number;
  unchanged: number;
  listing: number;
  force: number;
  seed: number;
  phases: LoadPhases;
}

/** A load's trace cut into its phases, in ms (see the bench's output for what each holds). */
interface LoadPhases {
  login: number;
  before: number;
  upload: number;
  after: number;
  exit: number;
}

/**
 * `steps`: the trace lines as the bench keeps them (`+<ms> ms <what>`, the last one the process's wall end). The
 * stage's clock starts after node did: what the wall has beyond the last step and the start is node's start and exit.
 */
function phasesOf(steps: readonly string[]): LoadPhases {
  const at = steps.map((x) => {
    const m = /^\+(\d+) ms (.*)$/.exec(x);
    if (!m) throw new Error(`not a trace line: ${x}`);
    return { ms: Number(m[1]), what: m[2] };
  });
  const first = (re: RegExp) => {
    const i = at.findIndex((x) => re.test(x.what));
    if (i < 0) throw new Error(`the trace has no step matching ${re}`);
    return i;
  };
  const login = first(/^log in to the object store$/);
  const up = first(/^upload dataset version$/);
  const upEnd = first(/^upload dataset version: stats$/);
  const stop = first(/^stop rclone$/);
  const end = at[at.length - 1].ms;
  return {
    login: at[login + 1].ms - at[login].ms,
    before: at[up].ms - at[login + 1].ms,
    upload: at[upEnd].ms - at[up].ms,
    after: at[stop].ms - at[upEnd].ms,
    exit: end - at[stop].ms,
  };
}

function phaseLine(p: LoadPhases): string {
  return `login ${p.login}, before ${p.before}, upload ${p.upload}, after ${p.after}, stop+exit+node start ${p.exit}`;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((p, q) => p - q);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
