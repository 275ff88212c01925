import { Option, type Command } from 'commander';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { EtlError } from '../errors';
import { workLayout } from '../work-dir';
import { recoverInterrupted, replaceDir } from '../replace-dir';
import { TOOL, hashInputs, readManifest, writeManifest } from '../manifest';
import type { Stage, StageContext, StageResult } from '../stage';
import { createHash } from 'node:crypto';
import { contentId, fingerprintOf, type Fingerprint } from '../content-id';
import { checkDatasetUrl, download, fileDigests, publishedMd5 } from './download';
import { datasetEntries } from './entries';
import { listEntries, unzipInto, type ExtractedFile } from './unzip';

export const DEFAULT_URL = 'https://files.grouplens.org/datasets/movielens/ml-32m.zip';

export interface ExtractOptions {
  url: string;
  source?: string;
  sha256?: string;
  md5?: string;
  retries: string;
  idleTimeout?: string;
  /** The user accepts a download verified by its size only, when no checksum is given or published. */
  allowUnverified?: boolean;
}

export interface ExtractResult {
  dataset: string;
  origin: string;
  zip: { path: string; bytes: number; sha256: string };
  checksum: { algorithm: 'sha256' | 'md5'; expected: string; from: 'option' | 'published' } | null;
  /** Absolute path of staging/<dataset>/; load uploads it to raw/<dataset>/. */
  stagingDir: string;
  /** The file the transform reads, relative to stagingDir (ratings.csv). */
  ratings: string;
  /** Every file in stagingDir (path relative to it), with its size, SHA-256 (each matched the zip's CRC-32) and
   * the fingerprint that lets a rerun trust that SHA-256 without reading the file again (content-id.ts). */
  files: { name: string; bytes: number; sha256: string; fingerprint: Fingerprint }[];
  /** How the zip was obtained: downloaded (and from which byte a resume started), reused, or a local file. */
  download: { status: 'downloaded' | 'reused' | 'local'; resumedFrom: number };
  timings: { downloadSeconds: number; verifySeconds: number; unzipSeconds: number; totalSeconds: number };
}

/** A local zip: the file itself, or the one zip in a directory (the one named like --url if several). */
export function resolveSource(source: string, url: string): string {
  if (!existsSync(source))
    throw new EtlError(`--source ${source} does not exist`, 'Give the path of a MovieLens zip, or of a directory holding one.');
  if (!statSync(source).isDirectory()) return source;
  const zips = readdirSync(source).filter((f) => f.endsWith('.zip'));
  const named = zips.find((f) => f === basename(url));
  if (named) return join(source, named);
  if (zips.length === 1) return join(source, zips[0]);
  throw new EtlError(
    zips.length ? `--source ${source} holds several zips (${zips.join(', ')})` : `--source ${source} holds no .zip file`,
    'Pass the zip file itself with --source.',
  );
}

/** Every staged file still holds what the extract recorded (by content: the fingerprint pre-check, else a hash). */
async function stagedIntact(r: ExtractResult): Promise<boolean> {
  if (!existsSync(r.stagingDir) || !Array.isArray(r.files) || !r.ratings) return false;
  for (const f of r.files) {
    const path = join(r.stagingDir, f.name);
    if (!existsSync(path) || statSync(path).size !== f.bytes) return false;
    if ((await contentId(path, f)).sha256 !== f.sha256) return false;
  }
  return true;
}

async function run(ctx: StageContext, o: ExtractOptions): Promise<StageResult> {
  const layout = workLayout(ctx.workDir);
  const retries = Number(o.retries);
  if (!Number.isInteger(retries) || retries < 0) throw new EtlError(`--retries '${o.retries}' is not a whole number`);
  const idleTimeout = Number(o.idleTimeout ?? '60');
  if (!(idleTimeout > 0)) throw new EtlError(`--idle-timeout '${o.idleTimeout}' is not a positive number of seconds`);
  const localZip = o.source ? resolveSource(o.source, o.url) : undefined;
  const origin = localZip ?? o.url;
  const localStamp = localZip ? { bytes: statSync(localZip).size, mtimeMs: statSync(localZip).mtimeMs } : undefined;
  const inputsKey = hashInputs({ origin, localStamp, sha256: o.sha256, md5: o.md5, tool: TOOL.version });

  const previous = await readManifest<ExtractResult>(layout.manifests, 'extract');
  for (const note of recoverInterrupted(ctx.workDir, 'staging')) ctx.log.warn(note);
  if (previous?.result.dataset) for (const note of recoverInterrupted(layout.staging, previous.result.dataset)) ctx.log.warn(note);
  const unchanged = previous?.inputsKey === inputsKey && existsSync(previous.result.zip.path) && (await stagedIntact(previous.result));
  if (!ctx.force && unchanged) {
    return {
      stage: 'extract',
      status: 'skipped',
      message: `${previous.result.dataset} already extracted from ${origin} (--force to redo)`,
      details: { dataset: previous.result.dataset },
    };
  }
  const startedAt = new Date();
  const t0 = performance.now();
  let zipPath: string;
  let fetched: ExtractResult['download'] = { status: 'local', resumedFrom: 0 };
  if (localZip) {
    zipPath = localZip;
    ctx.log.info(`using local archive ${localZip}`);
  } else {
    mkdirSync(layout.downloads, { recursive: true });
    // Keyed by the whole URL: another URL whose file name is the same (a mirror, another release) is another file.
    zipPath = join(
      layout.downloads,
      createHash('sha256').update(o.url).digest('hex').slice(0, 12),
      basename(new URL(o.url).pathname) || 'dataset.zip',
    );
    mkdirSync(dirname(zipPath), { recursive: true });
    checkDatasetUrl(o.url, o.sha256);
    if (ctx.force || !existsSync(zipPath)) {
      ctx.log.info(`downloading ${o.url}`);
      const d = await download({ url: o.url, dest: zipPath, retries, log: ctx.log, idleTimeoutMs: idleTimeout * 1000 });
      fetched = { status: 'downloaded', resumedFrom: d.resumedFrom };
    } else {
      fetched = { status: 'reused', resumedFrom: 0 };
      ctx.log.info(`reusing ${zipPath} (verified below; --force downloads it again)`);
    }
  }
  const t1 = performance.now();

  // Integrity: the size was checked by the download; the checksum is the one given, or the one published.
  ctx.log.info(`checksumming ${basename(zipPath)} (${(statSync(zipPath).size / 1e6).toFixed(0)} MB)`);
  const digests = await fileDigests(zipPath);
  const sha256 = digests.sha256;
  let checksum: ExtractResult['checksum'] = null;
  if (o.sha256) checksum = { algorithm: 'sha256', expected: o.sha256.toLowerCase(), from: 'option' };
  else if (o.md5) checksum = { algorithm: 'md5', expected: o.md5.toLowerCase(), from: 'option' };
  else if (!localZip) {
    const published = await publishedMd5(o.url);
    if ('md5' in published) checksum = { algorithm: 'md5', expected: published.md5, from: 'published' };
    else if (o.allowUnverified)
      ctx.log.warn(`no checksum published at ${o.url}.md5 (${published.missing}); only the size was verified (--allow-unverified)`);
    else {
      throw new EtlError(
        `cannot verify ${basename(zipPath)}: no checksum given and none published at ${o.url}.md5 (${published.missing})`,
        'Pin it: --sha256 <sha256sum of the zip> (etl.datasetSha256 in persist.config.yaml); or accept a size check only ' +
          'with --allow-unverified (etl.allowUnverified: true).',
      );
    }
  }
  if (checksum) {
    const actual = digests[checksum.algorithm];
    if (actual !== checksum.expected) {
      if (!localZip) rmSync(zipPath, { force: true });
      throw new EtlError(
        `${basename(zipPath)}: ${checksum.algorithm} is ${actual}, expected ${checksum.expected} (${checksum.from})`,
        localZip
          ? 'The local archive is damaged or another file: get it again.'
          : 'The damaged download was deleted: rerun extract to fetch it again.',
      );
    }
    ctx.log.info(`${checksum.algorithm} verified`);
  }

  const t2 = performance.now();
  // Unzip beside the staging directory, then move the dataset into place: never a half-extracted dataset.
  // Which entries make the dataset, decided from the zip's directory before anything is written: a zip of the
  // wrong shape leaves the staged dataset as it was.
  const chosen = datasetEntries((await listEntries(zipPath)).names, basename(zipPath));
  const tmp = `${layout.staging}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  const wanted = new Set(chosen.files);
  let files: ExtractedFile[];
  const dataset = chosen.dataset;
  const under = chosen.files.every((f) => f.startsWith(`${dataset}/`));
  try {
    ({ files } = await unzipInto(
      zipPath,
      tmp,
      (entry, done, total) =>
        ctx.log.progress(`  unzip ${entry}: ${Math.round((100 * done) / Math.max(total, 1))}% of ${(total / 1e6).toFixed(0)} MB`),
      (name) => wanted.has(name),
    ));
    mkdirSync(layout.staging, { recursive: true });
    for (const note of recoverInterrupted(layout.staging, dataset)) ctx.log.warn(note);
    replaceDir(under ? join(tmp, dataset) : tmp, join(layout.staging, dataset));
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  const stagingDir = join(layout.staging, dataset);
  const rel = (name: string) => (under ? name.slice(dataset.length + 1) : name);
  const result: ExtractResult = {
    dataset,
    origin,
    zip: { path: zipPath, bytes: statSync(zipPath).size, sha256 },
    checksum,
    stagingDir,
    ratings: rel(chosen.ratings),
    files: files.map((f) => ({
      name: rel(f.name),
      bytes: f.bytes,
      sha256: f.sha256,
      fingerprint: fingerprintOf(join(stagingDir, rel(f.name))),
    })),
    download: fetched,
    timings: {
      downloadSeconds: (t1 - t0) / 1000,
      verifySeconds: (t2 - t1) / 1000,
      unzipSeconds: (performance.now() - t2) / 1000,
      totalSeconds: (performance.now() - t0) / 1000,
    },
  };
  await writeManifest(layout.manifests, {
    stage: 'extract',
    inputsKey,
    tool: TOOL,
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    result,
  });
  const total = files.reduce((a, f) => a + f.bytes, 0);
  return {
    stage: 'extract',
    status: 'done',
    message: `${dataset}: ${files.length} files, ${(total / 1e6).toFixed(1)} MB in ${result.stagingDir}`,
    details: result as unknown as Record<string, unknown>,
  };
}

export const extractStage: Stage<ExtractOptions> = {
  name: 'extract',
  description: 'download the MovieLens zip (resumable, verified) or take a local one, and unzip it safely into staging/',
  addOptions: (cmd: Command) =>
    cmd
      .addOption(new Option('--url <url>', 'dataset zip to download').env('ETL_DATASET_URL').default(DEFAULT_URL))
      .addOption(new Option('--source <path>', 'local zip, or a directory holding it (no download)').env('ETL_DATASET_SOURCE'))
      .addOption(new Option('--sha256 <hex>', 'expected SHA-256 of the zip'))
      .addOption(new Option('--md5 <hex>', 'expected MD5 of the zip (default: the one published at <url>.md5, if any)'))
      .addOption(new Option('--retries <n>', 'download attempts after the first').default('5'))
      .addOption(new Option('--idle-timeout <seconds>', 'drop and resume a download that receives nothing for this long').default('60'))
      .addOption(
        new Option('--allow-unverified', 'accept a download checked by its size only when no checksum is given or published at <url>.md5'),
      ),
  run,
};
