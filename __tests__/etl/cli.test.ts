import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { ZipFile } from 'yazl';
import { generateRatingsCsv } from '../../testing/movielens-fixture';
import { memoryLogger } from '../../etl/log';
import { transformStage } from '../../etl/transform/stage';

/**
 * The CLI as the node runs it: the single-file bundle under plain `node` (its worker threads load from that one
 * file), and under tsx as `npm run etl` does. The input is larger than a read chunk (4 MiB), so the worker-thread
 * path runs.
 */
const ROOT = resolve(__dirname, '..', '..');
const dir = mkdtempSync(join(tmpdir(), 'etl-cli-'));
const bundle = join(dir, 'etl.js');

function outputs(workDir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out[relative(join(workDir, 'output'), p)] = createHash('sha256').update(readFileSync(p)).digest('hex');
    }
  };
  walk(join(workDir, 'output'));
  return out;
}

let zipPath: string;
let expected: Record<string, string>;

beforeAll(async () => {
  // Built into this test's own directory: other runs in the checkout may be using dist/etl.js.
  execFileSync(process.execPath, [join(ROOT, 'scripts/build-etl.mjs'), bundle], { cwd: ROOT, stdio: 'pipe' });
  const csv = join(dir, 'ratings.csv');
  generateRatingsCsv({ path: csv, rows: 250_000, seed: 21 });
  zipPath = join(dir, 'ml-cli.zip');
  const zip = new ZipFile();
  zip.addFile(csv, 'ml-cli/ratings.csv');
  zip.addBuffer(Buffer.from('movieId,title,genres\n'), 'ml-cli/movies.csv');
  zip.end();
  await new Promise<void>((r) => zip.outputStream.pipe(createWriteStream(zipPath)).on('close', () => r()));
  // What one thread in this process writes: the bytes every other way of running must reproduce.
  const ref = join(dir, 'ref');
  await transformStage.run(
    { workDir: ref, force: true, log: memoryLogger() },
    { input: csv, name: 'movielens_cli', seed: '42', ratios: '0.7,0.15,0.15', engine: 'fast', threads: '1' },
  );
  expected = outputs(ref);
}, 120_000);

function run(cmd: string[], workDir: string, extra: string[] = []) {
  return spawnSync(cmd[0], [...cmd.slice(1), '--work-dir', workDir, ...extra], { cwd: ROOT, encoding: 'utf8' });
}

describe.each([
  ['the bundle under plain node', () => [process.execPath, bundle]],
  ['tsx etl/cli.ts (npm run etl)', () => [join(ROOT, 'node_modules/.bin/tsx'), 'etl/cli.ts']],
])('%s', (_name, cmd) => {
  it('extracts and transforms on two threads to the same bytes as one thread, prints a JSON summary, then skips an unchanged rerun', () => {
    const workDir = mkdtempSync(join(dir, 'w-'));
    const ex = run([...cmd(), 'extract', '--source', zipPath, '--json'], workDir);
    expect(ex.stderr).not.toMatch(/internal error/);
    expect(ex.status).toBe(0);
    expect(JSON.parse(ex.stdout).stages[0]).toMatchObject({ stage: 'extract', status: 'done', details: { dataset: 'ml-cli' } });
    const tr = run([...cmd(), 'transform', '--threads', '2', '--json'], workDir);
    expect(tr.status).toBe(0);
    const details = JSON.parse(tr.stdout).stages[0].details;
    expect(details).toMatchObject({ name: 'movielens_cli', dataset: 'ml-cli', threads: 2, rows: 250_000, seed: 42 });
    expect(outputs(workDir)).toEqual(expected);
    // the manifest's checksums are those of the files
    for (const f of details.outputs) expect(expected[f.path]).toBe(f.sha256);
    const again = run([...cmd(), 'transform', '--threads', '1', '--json'], workDir);
    expect(JSON.parse(again.stdout).stages[0].status).toBe('skipped');
  }, 120_000);

  it('fails with the file and line, no stack trace, a non-zero exit code, and the previous output untouched', () => {
    const workDir = mkdtempSync(join(dir, 'w-'));
    const good = join(dir, 'good.csv');
    writeFileSync(good, 'userId,movieId,rating,timestamp\n1,2,3,4\n');
    expect(run([...cmd(), 'transform', '--input', good], workDir).status).toBe(0);
    const before = outputs(workDir);
    const bad = join(dir, 'bad.csv');
    writeFileSync(bad, 'userId,movieId,rating,timestamp\n1,2,3,4\n1,two,3,4\n');
    const r = run([...cmd(), 'transform', '--input', bad, '--force'], workDir);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^error: bad\.csv line 3: movieId is not a valid number: "1,two,3,4"$/m);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(outputs(workDir)).toEqual(before);
  }, 60_000);
});

it('--help lists every option with its default', () => {
  const help = spawnSync(process.execPath, [bundle, 'all', '--help'], { encoding: 'utf8' }).stdout.replace(/\s+/g, ' ');
  for (const o of [
    '--url <url>',
    '--source <path>',
    '--sha256 <hex>',
    '--md5 <hex>',
    '--retries <n>',
    '--idle-timeout <seconds>',
    '--input <path>',
    '--name <name>',
    '--seed <n>',
    '--ratios',
    '--engine <engine>',
    '--threads <n>',
    '--work-dir <dir>',
    '--force',
    '--json',
  ]) {
    expect(help).toContain(o);
  }
  for (const d of [
    '(default: "42")',
    '(default: "0.7,0.15,0.15")',
    '(default: "auto")',
    'default: "fast")',
    '(default: "5")',
    '(default: "60")',
    '(default: "https://files.grouplens.org/datasets/movielens/ml-32m.zip"',
  ])
    expect(help).toContain(d);
});
