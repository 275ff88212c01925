import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CONTAINER_LAYOUT } from '../layout';
import type { Logger } from '../log';
import type { TOOL } from '../manifest';
import { LOAD_LOCK_OBJECT } from './container-lock';
import { rclone, type RcloneTarget } from './rclone';
import { RcloneError } from './rclone-errors';

/**
 * What the load does to the container, one rclone command each: read the published manifest, compare, promote
 * the staged dataset, prune. The order (and the lock around it) is the stage's (stage.ts).
 */

/** What the container's manifest.json says: the dataset that is complete and verified there. */
export interface PublishedManifest {
  datasetKey: string;
  publishedAt: string;
  container: string;
  tool: typeof TOOL;
  extract: unknown;
  transform: unknown;
  load: { objects: number; bytes: number; verified: true; verifiedAt: string; pruned: boolean };
}

export const STAGING_PREFIX = '.incoming';

/** A local directory and where its files go in the container. */
export interface Transfer {
  local: string;
  remote: string;
  /** The same place as a path under the container root ('' for the root itself). */
  prefix: string;
  /** The files under `local`, relative to it, with '/' separators. */
  names: string[];
}

/** Names under the container root that belong to the load itself, not to the dataset. */
const OWN_NAMES = [`/${STAGING_PREFIX}/**`, `/${CONTAINER_LAYOUT.manifest}`, `/${LOAD_LOCK_OBJECT}`];
const ownExcludes = OWN_NAMES.flatMap((x) => ['--exclude', x]);

/** What rclone check prints when files differ or are missing, as opposed to a failure (auth, network). */
const DIFFERENCES = /differences found|not found in|files? missing|hashes could not be checked|directory not found|sizes differ|md5 differ/i;

/** Local files of one transfer, by what the container holds under their final names. */
export interface Comparison {
  /** Same size and MD5: nothing to send. */
  same: string[];
  /** Not in the container: uploaded straight to the final name, since no published object is replaced. */
  missing: string[];
  /** A different object under that name: staged and verified before it replaces the published one. */
  differ: string[];
}

/**
 * Reads `rclone check --combined` output: `= name` same, `+ name` only local, `* name` different, `! name`
 * not comparable (treated as different: the staged path is the safe one), `- name` only in the container
 * (irrelevant here). Any other line means the format is not what this code knows, so nothing is guessed.
 */
export function parseCombined(text: string, localNames: readonly string[]): Comparison {
  const seen = new Map<string, keyof Comparison>();
  for (const line of text.split('\n')) {
    if (!line) continue;
    const kind = line.slice(0, 2);
    const name = line.slice(2);
    if (kind === '= ') seen.set(name, 'same');
    else if (kind === '+ ') seen.set(name, 'missing');
    else if (kind === '* ' || kind === '! ') seen.set(name, 'differ');
    else if (kind !== '- ') throw new Error(`unexpected line in rclone check --combined output: ${JSON.stringify(line)}`);
  }
  const out: Comparison = { same: [], missing: [], differ: [] };
  // A local file rclone did not report is not known to be safe to write in place.
  for (const name of localNames) out[seen.get(name) ?? 'differ'].push(name);
  return out;
}

/** Each local file of `t` against the object under its final name (sizes and MD5, which Swift keeps as ETags). */
export async function compareWithContainer(target: RcloneTarget, t: Transfer, common: string[], log: Logger): Promise<Comparison> {
  return withTempDir('load-compare-', async (dir) => {
    const out = join(dir, 'combined.txt');
    try {
      await rclone(target, ['check', t.local, t.remote, '--one-way', '--combined', out, ...common], 'compare with the container', log, { quiet: true });
    } catch (e) {
      if (!(e instanceof RcloneError && DIFFERENCES.test(e.output))) throw e;
    }
    return parseCombined(readFileSync(out, 'utf8'), t.names);
  });
}

/** rclone arguments that limit a command to these names (relative to its source), through a list file. */
export async function withFileList<T>(names: readonly string[], f: (args: string[]) => Promise<T>): Promise<T> {
  return withTempDir('load-list-', async (dir) => {
    const list = join(dir, 'files.txt');
    writeFileSync(list, names.map((n) => `${n}\n`).join(''));
    return f(['--files-from-raw', list]);
  });
}

async function withTempDir<T>(prefix: string, f: (dir: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  try {
    return await f(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The changed files of one transfer, staged under `staged` (its place under the staging prefix). */
export interface StagedChange {
  transfer: Transfer;
  staged: string;
  names: string[];
}

/**
 * Server-side copies first: no data through this machine. Keystone's access rules cannot allow Swift's COPY
 * method (only GET HEAD PUT POST PATCH DELETE), so an access-ruled credential is refused there (401/403); then
 * the verified local files are uploaded again to their final names instead. Copy, never sync: nothing is
 * deleted here (rclone also refuses to sync into a remote that contains the source).
 */
export async function promote(target: RcloneTarget, changes: StagedChange[], common: string[], log: Logger): Promise<'server-side' | 'upload'> {
  log.info('promoting the verified changed objects to their final names (server-side copy)');
  try {
    for (const c of changes) {
      await withFileList(c.names, (list) =>
        rclone(target, ['copy', c.staged, c.transfer.remote, '--checksum', ...list, '--retries', '1', '--low-level-retries', '1', ...common], 'promote dataset', log, { progress: true }),
      );
    }
    return 'server-side';
  } catch (e) {
    if (!(e instanceof RcloneError) || !/\b40[13]\b|unauthori[sz]ed|forbidden/i.test(e.output)) throw e;
    log.warn('the object store refused the server-side copy (an access-ruled credential cannot use COPY); uploading the verified files to their final names');
  }
  for (const c of changes) {
    await withFileList(c.names, (list) =>
      rclone(target, ['copy', c.transfer.local, c.transfer.remote, '--checksum', ...list, ...common], 'promote dataset (upload)', log, { progress: true }),
    );
  }
  return 'upload';
}

/** Deletes every object under the root that the new dataset does not have (staging and manifest aside). */
export async function prune(target: RcloneTarget, root: string, files: { name: string }[], common: string[], log: Logger): Promise<number> {
  const { stdout } = await rclone(target, ['lsf', root, '-R', '--files-only', ...ownExcludes, ...common], 'list container for --prune', log, { stdout: true });
  const keep = new Set(files.map((f) => f.name));
  const extra = stdout.split('\n').filter((n) => n && !keep.has(n));
  if (extra.length === 0) {
    log.info('--prune: the container holds nothing beyond the new dataset');
    return 0;
  }
  log.info(`--prune: removing ${extra.length} objects the new dataset no longer has (e.g. ${extra.slice(0, 3).join(', ')})`);
  await withFileList(extra, (list) => rclone(target, ['delete', root, ...list, ...common], 'prune', log));
  return extra.length;
}

/** The container's state: does it exist, and which dataset does its manifest.json say is published? */
export async function readPublished(target: RcloneTarget, root: string, log: Logger): Promise<{ containerExists: boolean; manifest?: PublishedManifest }> {
  try {
    const { stdout } = await rclone(target, ['cat', `${root}/${CONTAINER_LAYOUT.manifest}`, '--retries', '1', '--low-level-retries', '2'], 'read published manifest', log, { stdout: true });
    try {
      return { containerExists: true, manifest: stdout.trim() ? (JSON.parse(stdout) as PublishedManifest) : undefined };
    } catch {
      return { containerExists: true }; // a manifest we cannot parse proves nothing
    }
  } catch (e) {
    // rclone cat of a missing object in an existing container prints nothing; a missing container is
    // "directory not found". Auth and network errors stop here.
    if (e instanceof RcloneError && e.notFound) return { containerExists: false };
    throw e;
  }
}
