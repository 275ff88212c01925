/**
 * The load benchmark (`npm run bench -- --load`): our load stage against the tutorial's plain
 * `rclone copy` into the same local Swift (scripts/local-openstack.sh), in one run, each in its own process.
 * The tutorial's copy is the floor: it neither verifies nor protects a published dataset; the ratios say
 * what the version prefix, the listing that verifies it, the lock and the pointer cost on top of it.
 */
import execa from 'execa';
import { createWriteStream, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ZipFile } from 'yazl';
import { rcloneEnvFromEtlEnv } from '../etl/load/credentials';
import { DEFAULT_RCLONE_REMOTE } from '../etl/rclone-remote';

const ROOT = resolve(__dirname, '..');
const OPENSTACK = join(ROOT, '.stand-ins', 'openstack');

interface StandIn {
  authUrl: string;
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

/** Runs the contenders and returns the markdown lines of the table. */
export async function benchLoad(bundle: string, input: string, work: string): Promise<string[]> {
  process.stderr.write('load bench: starting the local Keystone + Swift (scripts/local-openstack.sh)\n');
  await execa('bash', [join(ROOT, 'scripts', 'system-deps.sh')], { stdio: 'inherit' });
  await execa('bash', [join(ROOT, 'scripts', 'local-openstack.sh'), 'up', OPENSTACK], { stdio: 'inherit' });
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
  const tag = `${process.pid}`;
  const containers = [`object-persist-bench-rclone-${tag}`, `object-persist-bench-ours-${tag}`];
  const tutorialFlags = ['--transfers', '32', '--checkers', '16', '--fast-list'];
  const load = (workDir: string, extra: string[] = []) =>
    ['node', [bundle, 'load', '--work-dir', workDir, '--container', containers[1], '--remote', DEFAULT_RCLONE_REMOTE, ...extra]] as const;

  const rows: { name: string; seconds: number; bytes: number; note: string }[] = [];
  try {
    process.stderr.write('load bench: running the contenders\n');
    await wall('rclone', ['mkdir', `${DEFAULT_RCLONE_REMOTE}:${containers[0]}`], rcloneEnv);
    rows.push({
      name: "tutorial's rclone copy, empty container",
      seconds: await wall('rclone', ['copy', join(a, 'output'), `${DEFAULT_RCLONE_REMOTE}:${containers[0]}`, ...tutorialFlags], rcloneEnv),
      bytes,
      note: 'no verification, no manifest, overwrites in place',
    });
    rows.push({
      name: 'ours, first load into an empty container',
      seconds: await wall(...load(a), etlEnv, 'first load'),
      bytes,
      note: 'lock, upload into datasets/<key>/, one listing verifies names, sizes, MD5s; manifest; pointer',
    });
    rows.push({
      name: 'ours, nothing changed (plain rerun)',
      seconds: await wall(...load(a), etlEnv, 'nothing changed'),
      bytes: 0,
      note: 'the skip path: pointer, version manifest (local copy), one listing; no lock',
    });
    const key = (
      JSON.parse(
        (await execa('rclone', ['cat', `${DEFAULT_RCLONE_REMOTE}:${containers[1]}/current.json`], { env: rcloneEnv, extendEnv: true }))
          .stdout,
      ) as { current: string }
    ).current;
    rows.push({
      name: 'one listing of the version (rclone lsjson --hash)',
      seconds: await wall(
        'rclone',
        ['lsjson', '-R', '--hash', '--files-only', `${DEFAULT_RCLONE_REMOTE}:${containers[1]}/datasets/${key}`],
        rcloneEnv,
      ),
      bytes: 0,
      note: 'what the skip path must cost at least',
    });
    rows.push({
      name: 'ours, same dataset again (--force)',
      seconds: await wall(...load(a, ['--force']), etlEnv),
      bytes: 0,
      note: 'under the lock: the version is whole, nothing sent or written',
    });
    rows.push({
      name: 'ours, new seed: the 3 splits change',
      seconds: await wall(...load(b), etlEnv, 'new seed'),
      bytes:
        dirBytes(join(b, 'output', 'training')) + dirBytes(join(b, 'output', 'validation')) + dirBytes(join(b, 'output', 'evaluation')),
      note: 'maps copied server-side from the current version, 3 splits uploaded; previous version kept',
    });
  } finally {
    for (const c of containers)
      await execa('rclone', ['purge', `${DEFAULT_RCLONE_REMOTE}:${c}`], { env: rcloneEnv, extendEnv: true, reject: false });
  }

  // The first load as a deploy does it: the extracted raw file is published too (raw/<dataset>/), so the tutorial's
  // copy gets the same bytes (staging/ and output/ in one rclone copy, one login).
  const whole: typeof rows = [];
  const c = join(work, 'load-c');
  const zip = await benchZip(input, work);
  await wall('node', [bundle, 'extract', '--work-dir', c, '--source', zip], {});
  await wall('node', [bundle, 'transform', '--work-dir', c, '--seed', '42'], {});
  const wholeBytes = dirBytes(join(c, 'output')) + dirBytes(join(c, 'staging'));
  const wholeContainers = [`object-persist-bench-rclone-whole-${tag}`, `object-persist-bench-ours-whole-${tag}`];
  try {
    await wall('rclone', ['mkdir', `${DEFAULT_RCLONE_REMOTE}:${wholeContainers[0]}`], rcloneEnv);
    whole.push({
      name: "tutorial's rclone copy of raw file + outputs, empty container",
      seconds: await wall(
        'rclone',
        [
          'copy',
          c,
          `${DEFAULT_RCLONE_REMOTE}:${wholeContainers[0]}`,
          '--include',
          '/output/**',
          '--include',
          '/staging/**',
          ...tutorialFlags,
        ],
        rcloneEnv,
      ),
      bytes: wholeBytes,
      note: 'no verification, no manifest, overwrites in place',
    });
    whole.push({
      name: 'ours, first load of raw file + outputs into an empty container',
      seconds: await wall(
        'node',
        [bundle, 'load', '--work-dir', c, '--container', wholeContainers[1], '--remote', DEFAULT_RCLONE_REMOTE],
        etlEnv,
        'first load, raw file included',
      ),
      bytes: wholeBytes,
      note: 'as above, with raw/<dataset>/ratings.csv: what `all` publishes',
    });
  } finally {
    for (const w of wholeContainers)
      await execa('rclone', ['purge', `${DEFAULT_RCLONE_REMOTE}:${w}`], { env: rcloneEnv, extendEnv: true, reject: false });
  }

  const table = (rs: typeof rows) => {
    const base = rs[0].seconds;
    return rs.map(
      (r) =>
        `| ${r.name} | ${r.seconds.toFixed(2)} | ${(r.bytes / 1e6).toFixed(0)} ` +
        `| ${r.bytes ? (r.bytes / 1e6 / r.seconds).toFixed(0) : '-'} | ${(r.seconds / base).toFixed(2)}x | ${r.note} |`,
    );
  };
  return [
    '',
    `load: the transform's outputs (${(bytes / 1e6).toFixed(0)} MB: splits and maps) into the local Swift (${os.authUrl})`,
    '',
    '| contender | wall s | MB sent | MB/s | time / tutorial | note |',
    '|---|---:|---:|---:|---:|---|',
    ...table(rows),
    '',
    `the first load with the raw file (${(wholeBytes / 1e6).toFixed(0)} MB: the extracted ratings.csv, splits and maps):`,
    '',
    '| contender | wall s | MB sent | MB/s | time / tutorial | note |',
    '|---|---:|---:|---:|---:|---|',
    ...table(whole),
    '',
    "steps of our loads (ETL_LOAD_TRACE: when each rc call began, from the stage's start; the process also starts node):",
    ...traces.flatMap((t) => ['', `${t.name}:`, ...t.steps.map((x) => `    ${x}`)]),
  ];
}
