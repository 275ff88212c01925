import { Option, type Command } from 'commander';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { EtlError } from '../errors';
import { workLayout } from '../work-dir';
import { recoverInterrupted, replaceDir } from '../replace-dir';
import { TOOL, hashInputs, readManifest, writeManifest } from '../manifest';
import type { Stage, StageContext, StageResult } from '../stage';
import { defaultThreads, fastTransform, type FastResult } from './fast';
import { contentId, fingerprintOf, type Fingerprint } from '../content-id';
import { mapLines } from './ids';
import { referenceTransform } from './reference';
import { parseRatios, splitThresholds } from './split';

export interface TransformOptions {
  input?: string;
  name?: string;
  seed: string;
  ratios: string;
  engine: 'fast' | 'reference';
  threads: string;
}

/** One output file as the manifest describes it: path under output/, size, SHA-256 and lines. */
export interface OutputFile {
  path: string;
  bytes: number;
  sha256: string;
  rows: number;
  /** Lets a rerun and the load trust the SHA-256 without reading the file again (content-id.ts). */
  fingerprint?: Fingerprint;
}

/** How a row's split is decided, for a reader who wants to reproduce it without this code (see split.ts). */
export const SPLIT_RULE =
  'row i (0-based over data rows) -> h = fmix32(fmix32(i xor fmix32(seed xor 0x9e3779b9))) (murmur3 finalizer); training if ' +
  'h < round(train*2^32), validation if h < round((train+validation)*2^32), else evaluation';

export interface TransformResult {
  /** Output file prefix, e.g. movielens_32m. */
  name: string;
  /** The extracted dataset the input came from (e.g. ml-32m), or null for an --input of one's own. */
  dataset: string | null;
  input: { path: string; bytes: number; sha256: string; fingerprint?: Fingerprint };
  rows: number;
  splits: { training: number; validation: number; evaluation: number };
  users: number;
  items: number;
  seed: number;
  ratios: { train: number; validation: number; evaluation: number };
  split: string;
  engine: 'fast' | 'reference';
  /** Threads the fast path used (the output does not depend on it). */
  threads: number;
  /** Paths under output/: the three splits, then maps/users.tsv and maps/items.tsv. */
  files: string[];
  /** The same files with size, SHA-256 and line count (for the maps: distinct users or items). */
  outputs: OutputFile[];
  timings: { pass1Seconds: number; pass2Seconds: number; totalSeconds: number };
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
  for (const note of recoverInterrupted(ctx.workDir, 'output')) ctx.log.warn(note);
  const extract = await readManifest<{
    dataset?: string;
    stagingDir?: string;
    ratings?: string;
    files?: { name: string; sha256: string; fingerprint?: Fingerprint }[];
  }>(layout.manifests, 'extract');
  // An --input of one's own names its dataset by its folder when that looks like one (…/ml-25m/ratings.csv).
  const dataset = o.input ? /^ml-/.exec(basename(dirname(resolve(o.input))))?.input : extract?.result.dataset;
  const input =
    o.input ??
    (dataset ? join(extract?.result.stagingDir ?? join(layout.staging, dataset), extract?.result.ratings ?? 'ratings.csv') : undefined);
  if (!input) throw new EtlError('transform has no input', 'Run the extract stage first, or pass --input path/to/ratings.csv.');
  if (!existsSync(input))
    throw new EtlError(`${input} does not exist`, 'Run the extract stage first, or pass --input path/to/ratings.csv.');
  const seed = Number(o.seed);
  if (!Number.isInteger(seed) || seed < 0 || seed > 4294967295)
    throw new EtlError(`--seed '${o.seed}' is not a whole number from 0 to 4294967295`);
  const ratios = parseRatios(o.ratios);
  const name = o.name ?? outputName(dataset ?? 'custom');
  const threads = o.threads === 'auto' || o.threads === undefined ? defaultThreads() : Number(o.threads);
  if (!Number.isInteger(threads) || threads < 1 || threads > 64)
    throw new EtlError(`--threads '${o.threads}' is not 'auto' or a whole number from 1 to 64`);
  const st = statSync(input);
  const previous = await readManifest<TransformResult>(layout.manifests, 'transform');
  // Keyed by the input's content, not its path or mtime: two work dirs (two nodes) with the same zip and options
  // get the same key, and an edit that restored the mtime (cp -p) is still seen. The SHA-256 recorded by the
  // extract (or by the last transform) is reused while the file's fingerprint says it is unchanged.
  const stagedRecord = extract?.result.files?.find((f) => extract.result.stagingDir && join(extract.result.stagingDir, f.name) === input);
  const known = previous?.result.input?.path === input && previous.result.input.fingerprint ? previous.result.input : stagedRecord;
  const inputId = await contentId(input, known);
  const inputsKey = hashInputs({ inputSha256: inputId.sha256, bytes: st.size, seed, ratios, name, tool: TOOL.version });
  const files = [...splitFiles(name), MAP_FILES.users, MAP_FILES.items];

  const outputsIntact = async () => {
    for (const f of previous?.result.outputs ?? []) {
      const path = join(layout.output, f.path);
      if (!existsSync(path) || (await contentId(path, f)).sha256 !== f.sha256) return false;
    }
    return (previous?.result.outputs ?? []).length === files.length;
  };
  if (!ctx.force && previous?.inputsKey === inputsKey && (await outputsIntact())) {
    return { stage: 'transform', status: 'skipped', message: `${name}: input and options unchanged (--force to redo)`, details: { name } };
  }

  const startedAt = new Date();
  const tmp = `${layout.output}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  for (const d of ['training', 'validation', 'evaluation', 'maps']) mkdirSync(join(tmp, d), { recursive: true });
  const t = splitThresholds(ratios, seed);
  const t0 = performance.now();
  let result: Omit<TransformResult, 'timings' | 'name' | 'dataset' | 'seed' | 'ratios' | 'files' | 'outputs' | 'engine' | 'split'>;
  let outputs: OutputFile[];
  let pass1Seconds = 0;
  let pass2Seconds = 0;
  try {
    if (o.engine === 'reference') {
      const r = await referenceTransform(input, t, splitFiles(name).map((f) => join(tmp, f)) as [string, string, string], {
        users: join(tmp, MAP_FILES.users),
        items: join(tmp, MAP_FILES.items),
      });
      const rowsOf = [r.splitRows[0], r.splitRows[1], r.splitRows[2], r.users, r.items];
      outputs = files.map((f, i) => {
        const bytes = readFileSync(join(tmp, f));
        return { path: f, bytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex'), rows: rowsOf[i] };
      });
      result = {
        input: { path: input, bytes: st.size, sha256: inputId.sha256, fingerprint: inputId.fingerprint },
        rows: r.rows,
        splits: { training: r.splitRows[0], validation: r.splitRows[1], evaluation: r.splitRows[2] },
        users: r.users,
        items: r.items,
        threads: 1,
      };
    } else {
      const progress = (pass: 1 | 2, done: number, total: number) =>
        ctx.log.progress(
          `  transform pass ${pass}/2 (${pass === 1 ? 'validate, collect ids' : 'write splits'}): ` +
            `${Math.round((100 * done) / total)}% of ${(total / 1e6).toFixed(0)} MB`,
        );
      const writers = splitFiles(name).map((f) => ({ path: f, fd: openSync(join(tmp, f), 'w'), hash: createHash('sha256'), bytes: 0 }));
      let fast: FastResult;
      try {
        fast = await fastTransform(
          input,
          t,
          (split, data) => {
            const w = writers[split];
            let off = 0;
            while (off < data.length) off += writeSync(w.fd, data, off, data.length - off);
            w.hash.update(data);
            w.bytes += data.length;
          },
          threads,
          progress,
        );
      } finally {
        writers.forEach((w) => closeSync(w.fd));
      }
      pass1Seconds = fast.pass1Seconds;
      pass2Seconds = fast.pass2Seconds;
      const maps = [fast.users, fast.items].map((ids, i) => {
        const text = Buffer.from(mapLines(ids).join(''));
        writeFileSync(join(tmp, i === 0 ? MAP_FILES.users : MAP_FILES.items), text);
        return {
          path: i === 0 ? MAP_FILES.users : MAP_FILES.items,
          bytes: text.length,
          sha256: createHash('sha256').update(text).digest('hex'),
          rows: ids.count,
        };
      });
      outputs = [...writers.map((w, i) => ({ path: w.path, bytes: w.bytes, sha256: w.hash.digest('hex'), rows: fast.counts[i] })), ...maps];
      result = {
        input: { path: input, bytes: fast.bytes, sha256: inputId.sha256, fingerprint: inputId.fingerprint },
        rows: fast.rows,
        splits: { training: fast.counts[0], validation: fast.counts[1], evaluation: fast.counts[2] },
        users: fast.users.count,
        items: fast.items.count,
        threads: fast.threads,
      };
    }
    replaceDir(tmp, layout.output);
    outputs = outputs.map((f) => ({ ...f, fingerprint: fingerprintOf(join(layout.output, f.path)) }));
  } catch (e) {
    // The previous output stays exactly as it was.
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  const total = (performance.now() - t0) / 1000;
  const full: TransformResult = {
    ...result,
    name,
    dataset: dataset ?? null,
    seed,
    ratios,
    split: SPLIT_RULE,
    engine: o.engine,
    files,
    outputs,
    timings: { pass1Seconds, pass2Seconds, totalSeconds: total },
  };
  await writeManifest(layout.manifests, {
    stage: 'transform',
    inputsKey,
    tool: TOOL,
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    result: full,
  });
  const s = full.splits;
  return {
    stage: 'transform',
    status: 'done',
    message:
      `${full.rows.toLocaleString('en-US')} ratings, ${full.users.toLocaleString('en-US')} users, ` +
      `${full.items.toLocaleString('en-US')} items -> ${s.training.toLocaleString('en-US')} / ` +
      `${s.validation.toLocaleString('en-US')} / ${s.evaluation.toLocaleString('en-US')} (${total.toFixed(2)}s)`,
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
      .addOption(
        new Option('--engine <engine>', 'fast byte scanner, or the csv-parse reference').choices(['fast', 'reference']).default('fast'),
      )
      .addOption(
        new Option(
          '--threads <n>',
          "worker threads of the fast engine ('auto': one per core, at most 4); the output does not depend on it",
        ).default('auto'),
      ),
  run,
};
