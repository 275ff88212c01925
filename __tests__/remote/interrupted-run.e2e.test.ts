import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateMovieLensZip } from '../../testing/movielens-fixture';
import { EtlError } from '../../etl/errors';
import { memoryLogger } from '../../etl/log';
import type { StandInNode } from '../../scripts/stand-in-spec';
import { ETL_BUSY_EXIT, ETL_FLOCK, etlCommand } from '../../etl/remote/node-commands';
import { runOnNode, type RunOnNodeOptions } from '../../etl/remote/run-on-node';
import { ensureNode } from '../support/node';
import { standInRun } from '../support/run';

// A run killed on this machine leaves its mkdir lock behind, and the runner takes such a lock over (its pid is
// gone). The killed run's ETL process may still be running on the node, though: it holds an flock for its whole
// life, and a new run must wait for it instead of interleaving in the same work directory.
const ROOT = join(__dirname, '..', '..');
const BUNDLE = join(ROOT, 'dist', 'etl.js');
const SECRET = 'interrupted-run-secret-4f1c9a';
let node: StandInNode;
let dir: string;
let zip: string;
let holder: ChildProcess | undefined;
const log = memoryLogger();

beforeAll(async () => {
  node = ensureNode();
  if (!existsSync(BUNDLE)) execFileSync('node', [join(ROOT, 'scripts', 'build-etl.mjs')], { cwd: ROOT });
  dir = mkdtempSync(join(tmpdir(), 'interrupted-'));
  zip = join(dir, 'ml-busy.zip');
  await generateMovieLensZip({ outPath: zip, rows: 2_000, seed: 9, name: 'ml-busy', workDir: dir });
});

afterAll(() => {
  if (holder?.pid && holder.exitCode === null && holder.signalCode === null) process.kill(holder.pid);
  expect(log.lines.join('\n')).not.toContain(SECRET);
});

function options(remoteDir: string): RunOnNodeOptions {
  // extract alone never talks to the object store: a made-up credential is enough.
  const env = { authUrl: 'http://127.0.0.1:9/v3', region: 'CHI@TACC', userId: 'u1', appCredential: { id: 'c1', secret: SECRET } };
  return {
    ...standInRun({ node, env, container: 'object-persist-interrupted', remoteDir, source: zip, bundlePath: BUNDLE, log }),
    stage: 'extract',
    mount: false,
    minFreeMb: 10,
  };
}

const flockHeld = (file: string) => spawnSync('flock', ['-n', file, 'true']).status !== 0;

describe('an ETL process left on the node by an interrupted run', () => {
  it('runs every ETL under the flock, falling back to plain node where flock is missing', () => {
    const cmd = etlCommand({ stage: 'all', remoteDir: '/srv/etl' });
    expect(cmd).toContain(`exec flock -n -E ${ETL_BUSY_EXIT} ${ETL_FLOCK} node etl.js 'all'`);
    expect(cmd).toContain("else exec node etl.js 'all'");
  });

  it('makes the next run wait (exit 75, saying why) instead of interleaving, and releases the node lock', async () => {
    const o = options(join(dir, 'node-etl'));
    mkdirSync(o.spec.layout.remoteDir, { recursive: true });
    const flockFile = join(o.spec.layout.remoteDir, ETL_FLOCK);
    // The stand-in node is this machine: hold the flock as a surviving ETL process would.
    // One process (bash exec'ed into sleep) holds it, so stopping that pid releases it.
    holder = spawn('bash', ['-c', `exec 9>'${flockFile}' && flock 9 && exec sleep 60`], { stdio: 'ignore' });
    for (let i = 0; i < 50 && !flockHeld(flockFile); i++) await new Promise((r) => setTimeout(r, 100));
    expect(flockHeld(flockFile)).toBe(true);

    const err = await runOnNode(o).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EtlError);
    expect((err as EtlError).message).toMatch(/an ETL process of an earlier, interrupted run is still running on .*\.etl\.flock/);
    expect((err as EtlError).exitCode).toBe(75);
    expect(log.lines.some((l) => l.includes('==> extract'))).toBe(false);
    expect(existsSync(join(o.spec.layout.remoteDir, '.lock'))).toBe(false);
  });

  it('runs normally once that process has ended', async () => {
    const o = options(join(dir, 'node-etl'));
    process.kill(holder!.pid!);
    await new Promise((r) => holder!.once('exit', r));
    const result = await runOnNode(o);
    expect(result.exitCode).toBe(0);
    expect(log.lines.some((l) => l.includes('[node] <== extract: done'))).toBe(true);
    // The flock is released with the ETL process.
    expect(flockHeld(join(o.spec.layout.remoteDir, ETL_FLOCK))).toBe(false);
  });
});
