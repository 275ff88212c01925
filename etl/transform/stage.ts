import { Option, type Command } from 'commander';
import { closeSync, existsSync, mkdirSync, openSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { EtlError } from '../errors';
import { workLayout } from '../layout';
import { replaceDir } from '../replace-dir';
import { TOOL, hashInputs, readManifest, writeManifest } from '../manifest';
import type { Stage, StageContext, StageResult } from '../stage';
import { scanRatings, writeSplits } from './fast';
import { sha256InWorker } from './hash-worker';
import { mapLines } from './ids';
import { referenceTransform } from './reference';
import { parseRatios, splitThresholds } from './split';

export interface TransformOptions {
  input?: string;
  name?: string;
  seed: string;
  ratios: string;
  engine: 'fast' | 'reference';
}

export interface TransformResult {
  name: string;
  input: { path: string; bytes: number; sha256?: string };
  rows: number;
  splits: { training: number; validation: number; evaluation: number };
  users: number;
  items: number;
  seed: number;
  ratios: { train: number; validation: number; evaluation: number };
  files: string[];
  timings: { scanSeconds: number; writeSeconds: number; totalSeconds: number };
}

/** "ml-32m" -> "movielens_32m", "ml-latest-small" -> "movielens_latest_small". */
export function outputName(dataset: string): string {
  return `movielens_${dataset.replace(/^ml-/, '').replace(/[^A-Za-z0-9]+/g, '_')}`;
}

export function splitFiles(name: string): [string, string, string] {
  return [`training/${name}_train.txt`, `validation/${name}_val.txt`, `evaluation/${name}_eval.txt`];
}

export const MAP_FILES = { users: 'maps/users.tsv', items: 'maps/items.tsv' };

async function run(ctx: StageContext, o: TransformOptions): Promise<StageResult> {
  const layout = workLayout(ctx.workDir);
  const extract = await readManifest<{ dataset?: string }>(layout.manifests, 'extract');
  const dataset = extract?.result.dataset;
  const input = o.input ?? (dataset ? join(layout.staging, dataset, 'ratings.csv') : undefined);
  if (!input) throw new EtlError('transform has no input', 'Run the extract stage first, or pass --input path/to/ratings.csv.');
  if (!existsSync(input)) throw new EtlError(`${input} does not exist`, 'Run the extract stage first, or pass --input path/to/ratings.csv.');
  const seed = Number(o.seed);
  if (!Number.isInteger(seed) || seed < 0 || seed > 4294967295) throw new EtlError(`--seed '${o.seed}' is not a whole number from 0 to 4294967295`);
  const ratios = parseRatios(o.ratios);
  const name = o.name ?? outputName(dataset ?? 'custom');
  const st = statSync(input);
  const inputsKey = hashInputs({ input, bytes: st.size, mtimeMs: st.mtimeMs, seed, ratios, name, tool: TOOL.version });
  const files = [...splitFiles(name), MAP_FILES.users, MAP_FILES.items];

  const previous = await readManifest<TransformResult>(layout.manifests, 'transform');
  if (!ctx.force && previous?.inputsKey === inputsKey && files.every((f) => existsSync(join(layout.output, f)))) {
    return { stage: 'transform', status: 'skipped', message: `${name}: input and options unchanged (--force to redo)`, details: { name } };
  }

  const startedAt = new Date();
  const tmp = `${layout.output}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  for (const d of ['training', 'validation', 'evaluation', 'maps']) mkdirSync(join(tmp, d), { recursive: true });
  const t = splitThresholds(ratios, seed);
  const t0 = performance.now();
  let result: Omit<TransformResult, "timings" | "name" | "seed" | "ratios" | "files">;
  let scanSeconds = 0;
  try {
    if (o.engine === 'reference') {
      const r = await referenceTransform(input, t, splitFiles(name).map((f) => join(tmp, f)) as [string, string, string], {
        users: join(tmp, MAP_FILES.users),
        items: join(tmp, MAP_FILES.items),
      });
      result = { input: { path: input, bytes: st.size }, rows: r.rows, splits: { training: r.splitRows[0], validation: r.splitRows[1], evaluation: r.splitRows[2] }, users: r.users, items: r.items };
    } else {
      const progress = (pass: 1 | 2, done: number, total: number) =>
        ctx.log.progress(`  transform pass ${pass}/2 (${pass === 1 ? 'validate, collect ids' : 'write splits'}): ${Math.round((100 * done) / total)}% of ${(total / 1e6).toFixed(0)} MB`);
      // The checksum is computed on the other core while this one scans.
      const checksum = sha256InWorker(input);
      checksum.catch(() => undefined); // awaited below; an early failure must not go unhandled meanwhile
      const scan = scanRatings(input, progress);
      scanSeconds = (performance.now() - t0) / 1000;
      const users = scan.users.densify();
      const items = scan.items.densify();
      writeFileSync(join(tmp, MAP_FILES.users), mapLines(users).join(''));
      writeFileSync(join(tmp, MAP_FILES.items), mapLines(items).join(''));
      const fds = splitFiles(name).map((f) => openSync(join(tmp, f), 'w')) as [number, number, number];
      let counts: [number, number, number];
      try {
        counts = writeSplits(input, scan, users, items, t, fds, progress);
      } finally {
        fds.forEach((fd) => closeSync(fd));
      }
      result = {
        input: { path: input, bytes: scan.bytes, sha256: await checksum },
        rows: scan.rows,
        splits: { training: counts[0], validation: counts[1], evaluation: counts[2] },
        users: users.count,
        items: items.count,
      };
    }
    replaceDir(tmp, layout.output);
  } catch (e) {
    // The previous output stays exactly as it was.
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  const total = (performance.now() - t0) / 1000;
  const full: TransformResult = { ...result, name, seed, ratios, files, timings: { scanSeconds, writeSeconds: total - scanSeconds, totalSeconds: total } };
  await writeManifest(layout.manifests, { stage: 'transform', inputsKey, tool: TOOL, startedAt: startedAt.toISOString(), finishedAt: new Date().toISOString(), result: full });
  const s = full.splits;
  return {
    stage: 'transform',
    status: 'done',
    message: `${full.rows.toLocaleString('en-US')} ratings, ${full.users.toLocaleString('en-US')} users, ${full.items.toLocaleString('en-US')} items -> ${s.training.toLocaleString('en-US')} / ${s.validation.toLocaleString('en-US')} / ${s.evaluation.toLocaleString('en-US')} (${total.toFixed(2)}s)`,
    details: full as unknown as Record<string, unknown>,
  };
}

export const transformStage: Stage<TransformOptions> = {
  name: 'transform',
  description: 'dense 1-based ids in ascending original order; reproducible seeded 70/15/15 split; id maps; manifest',
  addOptions: (cmd: Command) =>
    cmd
      .addOption(new Option('--input <path>', 'ratings.csv to transform (default: the extracted dataset)'))
      .addOption(new Option('--name <name>', 'output file prefix (default: movielens_<dataset>, e.g. movielens_32m)'))
      .addOption(new Option('--seed <n>', 'seed of the split').default('42'))
      .addOption(new Option('--ratios <train,val,eval>', 'split ratios, adding up to 1').default('0.7,0.15,0.15'))
      .addOption(new Option('--engine <engine>', 'fast byte scanner, or the csv-parse reference').choices(['fast', 'reference']).default('fast')),
  run,
};
