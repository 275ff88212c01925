/**
 * `npm run demo`: the project's main job on local stand-ins, no Chameleon account needed. Starts a real Keystone +
 * Swift (playing CHI@TACC) and an sshd (playing the KVM@TACC node) on 127.0.0.1, then runs the same command as a
 * deploy's etl stack (ETL_RUN_COMMAND, with the spec in PERSIST_ETL_SPEC): ssh to the node, deliver rclone.conf,
 * ship the ETL bundle, extract -> transform -> load, mount the container read-only. `npm run demo -- --down` stops
 * the stand-ins.
 */
import { Command } from 'commander';
import execa from 'execa';
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { generateMovieLensZip } from '../testing/movielens-fixture';
import { reportError } from '../etl/errors';
import { stderrLogger } from '../etl/log';
import { rcloneEnvFromEtlEnv } from '../etl/load/credentials';
import { ETL_RUN_COMMAND } from '../constructs/etl-run';
import { DEFAULT_RCLONE_REMOTE } from '../etl/rclone-remote';
import { standInRunSpec, type StandInNode } from './stand-in-spec';

const ROOT = resolve(__dirname, '..');
const STAND_INS = join(ROOT, '.stand-ins');
const OPENSTACK = join(STAND_INS, 'openstack');
const NODE = join(STAND_INS, 'node');

interface OpenStackEnv {
  authUrl: string;
  region: string;
  userId: string;
  appCredential: { id: string; secret: string };
}
const REMOTE = DEFAULT_RCLONE_REMOTE;

const log = stderrLogger();
const step = (text: string) => log.info(`\n### ${text}`);
const timings: [string, number][] = [];
async function timed<T>(name: string, f: () => Promise<T>): Promise<T> {
  const t0 = Date.now();
  try {
    return await f();
  } finally {
    timings.push([name, (Date.now() - t0) / 1000]);
  }
}

async function sh(script: string, args: string[]) {
  await execa('bash', [join(ROOT, 'scripts', script), ...args], { stdio: 'inherit' });
}

async function down(): Promise<void> {
  step('stopping the stand-ins');
  // local-node.sh down unmounts every demo's mount under the node's directory.
  await sh('local-node.sh', ['down', NODE]);
  await sh('local-openstack.sh', ['down', OPENSTACK]);
}

/**
 * Where a demo lives: its container, its ETL directory on the node and its mount. The default is the user's;
 * the tests run under another name, so `npm test` never replaces or prunes the user's demo dataset.
 */
function demoPlace(name: string): { container: string; remoteDir: string; mountPoint: string } {
  if (!/^[a-z0-9][a-z0-9-]{0,40}$/.test(name)) throw new Error(`--name '${name}': use lower-case letters, digits and dashes`);
  const own = name === 'demo';
  return {
    container: `object-persist-${name}`,
    remoteDir: join(NODE, 'home', own ? 'chameleon-persist' : `chameleon-persist-${name}`),
    mountPoint: join(NODE, own ? 'mnt' : `mnt-${name}`),
  };
}

async function up(o: { rows: string; zip?: string; force: boolean; stage: string; name: string }): Promise<void> {
  const { container, remoteDir, mountPoint } = demoPlace(o.name);
  step('1/5 system packages (Keystone, Swift, rclone, fuse3, sshd, cloud-init; only what is missing)');
  await timed('packages', () => sh('system-deps.sh', []));

  step('2/5 stand-ins: Keystone + Swift as CHI@TACC, sshd as the node (reused when already running)');
  await timed('stand-ins', async () => {
    await sh('local-openstack.sh', ['up', OPENSTACK]);
    await sh('local-node.sh', ['up', NODE]);
  });
  const os = JSON.parse(readFileSync(join(OPENSTACK, 'env.json'), 'utf8')) as OpenStackEnv;
  const node = JSON.parse(readFileSync(join(NODE, 'node.json'), 'utf8')) as StandInNode;

  step('3/5 dataset');
  const rows = Number(o.rows);
  const zip = o.zip ? resolve(o.zip) : join(ROOT, '.work', 'demo', `ml-demo-${rows}.zip`);
  if (!existsSync(zip)) {
    if (o.zip) throw new Error(`${zip} does not exist`);
    // Only the zip is kept: its ratings.csv (877 MB at 32M rows) is removed once zipped.
    log.info(`generating a MovieLens-shaped zip with ${rows.toLocaleString('en-US')} ratings: ${zip}`);
    const onProgress = (phase: 'ratings' | 'zip', done: number, total?: number) =>
      log.progress(
        phase === 'ratings'
          ? `  ratings.csv: ${Math.round((100 * done) / (total ?? rows))}% (${done.toLocaleString('en-US')} rows)`
          : `  zipping: ${(done / 1e6).toFixed(0)} MB written`,
      );
    await timed('generate dataset', () => generateMovieLensZip({ outPath: zip, rows, seed: 42, name: `ml-demo-${rows}`, onProgress }));
  } else log.info(`using ${zip}`);

  step('4/5 the ETL on the node, exactly as `cdktf deploy etl` runs it');
  await timed('build ETL bundle', () => execa('node', [join(ROOT, 'scripts', 'build-etl.mjs')], { cwd: ROOT, stdio: 'inherit' }));
  // The deploy's own command with the spec the stacks would produce for the stand-ins (scripts/stand-in-spec.ts);
  // the flags are only what a stand-in needs: its known_hosts, no console log to pin the key from, short waits.
  // The stand-in node shares this machine's disk, so it reads the zip in place; a real node downloads it.
  const spec = standInRunSpec({ node, storage: os, container, remoteDir, mountPoint, source: zip });
  const [cmd, ...args] = ETL_RUN_COMMAND.split(' ');
  if (o.stage !== 'all') args.splice(args.indexOf('all'), 1, o.stage);
  await timed('ETL on the node', () =>
    execa(cmd, [...args, '--known-hosts', node.knownHostsPath, '--no-console-keys', '--ssh-wait', '30', '--min-free-mb', '100'], {
      cwd: ROOT,
      stdio: 'inherit',
      env: {
        PERSIST_ETL_SPEC: JSON.stringify(spec),
        PERSIST_APP_CREDENTIAL_SECRET: os.appCredential.secret,
        PERSIST_ETL_FORCE: o.force ? '1' : '',
      },
    }),
  );

  step(`5/5 what is in the container ${container} (through Swift's API, with rclone)`);
  const { env } = rcloneEnvFromEtlEnv(REMOTE, {
    ETL_APP_CREDENTIAL_ID: os.appCredential.id,
    ETL_APP_CREDENTIAL_SECRET: os.appCredential.secret,
    ETL_AUTH_URL: os.authUrl,
    ETL_REGION: os.region,
    ETL_USER_ID: os.userId,
  });
  const ls = await execa('rclone', ['lsl', `${REMOTE}:${container}`], { env: { ...process.env, ...env } });
  log.info(ls.stdout);
  const pointer = JSON.parse(
    (await execa('rclone', ['cat', `${REMOTE}:${container}/current.json`], { env: { ...process.env, ...env } })).stdout,
  ) as { current: string };
  const manifest = JSON.parse(
    (
      await execa('rclone', ['cat', `${REMOTE}:${container}/datasets/${pointer.current}/manifest.json`], {
        env: { ...process.env, ...env },
      })
    ).stdout,
  );
  const t = manifest.transform;
  log.info(
    `current.json names version ${pointer.current}; its manifest.json: ${t.rows.toLocaleString('en-US')} ratings, ` +
      `${t.users.toLocaleString('en-US')} users, ${t.items.toLocaleString('en-US')} items; ` +
      `training ${t.splits.training.toLocaleString('en-US')}, validation ${t.splits.validation.toLocaleString('en-US')}, ` +
      `evaluation ${t.splits.evaluation.toLocaleString('en-US')} (seed ${t.seed})`,
  );
  log.info(`\non the node, ${mountPoint} -> ${realpathSync(mountPoint)} (read-only):`);
  log.info((await execa('ls', ['-l', `${mountPoint}/`, join(mountPoint, 'training')])).stdout);

  log.info('\ntimings:');
  for (const [name, s] of timings) log.info(`  ${name.padEnd(18)} ${s.toFixed(1)} s`);
  log.info(`\nRun it again to see unchanged stages skipped. Stop the stand-ins with: npm run demo -- --down`);
}

async function main(): Promise<number> {
  const program = new Command('demo')
    .description('The whole pipeline on local stand-ins (Keystone + Swift as CHI@TACC, sshd as the node)')
    .option('--rows <n>', 'ratings in the generated MovieLens-shaped dataset', '1000000')
    .option('--zip <path>', 'use this MovieLens zip instead of a generated one')
    .option('--stage <stage>', 'run one stage: extract | transform | load | all', 'all')
    .option('--force', 'rerun stages even if unchanged', false)
    .option('--name <name>', 'another demo beside the default one: container object-persist-<name>, its own node dir and mount', 'demo')
    .option('--down', 'stop the stand-ins (by PID) and unmount', false);
  program.parse(process.argv);
  const o = program.opts<{ rows: string; zip?: string; stage: string; force: boolean; down: boolean; name: string }>();
  try {
    if (o.down) await down();
    else await up(o);
    return 0;
  } catch (e) {
    return reportError(e, log);
  }
}

main().then((code) => {
  process.exitCode = code;
});
