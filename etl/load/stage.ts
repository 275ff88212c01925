import { Option, type Command } from 'commander';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import { EtlError } from '../errors';
import { CONTAINER_LAYOUT, workLayout } from '../layout';
import { TOOL, hashInputs, readManifest, writeJsonAtomic, writeManifest, type StageManifest } from '../manifest';
import type { Stage, StageContext, StageResult } from '../stage';
import { acquireContainerLock, LOAD_LOCK_OBJECT } from './container-lock';
import { humanBytes, rclone, type RcloneStats, type RcloneTarget } from './rclone';
import { RcloneError } from './rclone-errors';

export interface LoadOptions {
  container?: string;
  remote: string;
  rcloneConfig?: string;
  rclone: string;
  transfers: string;
  checkers: string;
  fastList: boolean;
  prune: boolean;
  /** Create the container when it does not exist (default); --no-create-container refuses instead. */
  createContainer?: boolean;
  /** Remove the container's load lock left by a load that was killed on another machine. */
  breakLock?: boolean;
}

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

/** Credentials from the environment become rclone's own env config for this child only, never argv. */
export function rcloneEnvFromEtlEnv(remote: string, env: NodeJS.ProcessEnv): { env: Record<string, string>; secrets: string[] } {
  const id = env.ETL_APP_CREDENTIAL_ID;
  const secret = env.ETL_APP_CREDENTIAL_SECRET;
  if (!id || !secret) return { env: {}, secrets: [] };
  const prefix = `RCLONE_CONFIG_${remote.toUpperCase().replace(/[^A-Z0-9]/g, '_')}_`;
  const out: Record<string, string> = {
    [`${prefix}TYPE`]: 'swift',
    [`${prefix}APPLICATION_CREDENTIAL_ID`]: id,
    [`${prefix}APPLICATION_CREDENTIAL_SECRET`]: secret,
  };
  if (env.ETL_AUTH_URL) out[`${prefix}AUTH`] = env.ETL_AUTH_URL;
  if (env.ETL_REGION) out[`${prefix}REGION`] = env.ETL_REGION;
  if (env.ETL_USER_ID) out[`${prefix}USER_ID`] = env.ETL_USER_ID;
  // An object-store endpoint other than the one in Keystone's catalog (rclone's storage_url).
  if (env.ETL_STORAGE_URL) out[`${prefix}STORAGE_URL`] = env.ETL_STORAGE_URL;
  return { env: out, secrets: [secret] };
}

/** Secrets written in an rclone config file, so they can be redacted from rclone's own messages too. */
export function secretsInRcloneConfig(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*(application_credential_secret|key|password|secret_access_key)\s*=\s*(.+?)\s*$/.exec(line);
    if (m) out.push(m[2]);
  }
  return out;
}

/** Deterministic: the same extract and transform give the same key, so an interrupted upload resumes. */
export function datasetKey(extractKey: string, transformKey: string): string {
  return hashInputs({ extractKey, transformKey }).slice(0, 16);
}

const STAGING_PREFIX = '.incoming';

/** A local directory and where its files go in the container. */
interface Transfer {
  local: string;
  remote: string;
  /** The same place as a path under the container root ('' for the root itself). */
  prefix: string;
}

/** Names under the container root that belong to the load itself, not to the dataset. */
const OWN_NAMES = [`/${STAGING_PREFIX}/**`, `/${CONTAINER_LAYOUT.manifest}`, `/${LOAD_LOCK_OBJECT}`];
const ownExcludes = OWN_NAMES.flatMap((x) => ['--exclude', x]);

async function run(ctx: StageContext, o: LoadOptions): Promise<StageResult> {
  const { log } = ctx;
  const container = o.container;
  if (!container) {
    throw new EtlError('load needs the container name', 'Pass --container object-persist-<teamId> (or set ETL_CONTAINER).');
  }
  const layout = workLayout(ctx.workDir);
  const extract = await readManifest<{ dataset?: string; stagingDir?: string }>(layout.manifests, 'extract');
  const transform = await readManifest<Record<string, unknown>>(layout.manifests, 'transform');
  if (!transform || !existsSync(layout.output)) {
    throw new EtlError(`nothing to load: no transform output in ${layout.output}`, 'Run the transform stage first (or `all`).');
  }
  const rawDataset = extract?.result.dataset;
  const rawDir = rawDataset && existsSync(join(layout.staging, rawDataset)) ? join(layout.staging, rawDataset) : undefined;
  const key = datasetKey(extract?.inputsKey ?? 'none', transform.inputsKey);
  const inputsKey = hashInputs({ key, container, remote: o.remote, prune: o.prune });

  const fromEnv = rcloneEnvFromEtlEnv(o.remote, process.env);
  const configText = o.rcloneConfig && existsSync(o.rcloneConfig) ? readFileSync(o.rcloneConfig, 'utf8') : '';
  const target: RcloneTarget = {
    binary: o.rclone,
    remote: o.remote,
    configPath: o.rcloneConfig,
    env: fromEnv.env,
    secrets: [...fromEnv.secrets, ...secretsInRcloneConfig(configText)],
  };
  const root = `${o.remote}:${container}`;
  const incoming = `${root}/${STAGING_PREFIX}/${key}`;
  const common = ['--transfers', o.transfers, '--checkers', o.checkers, ...(o.fastList ? ['--fast-list'] : [])];
  // Where each local directory goes: the splits and maps at the root (the tutorial's layout), raw under raw/.
  const live: Transfer[] = [{ local: layout.output, remote: root, prefix: '' }];
  if (rawDir && rawDataset) {
    const prefix = `${CONTAINER_LAYOUT.raw}/${rawDataset}`;
    live.push({ local: rawDir, remote: `${root}/${prefix}`, prefix });
  }
  const files = live.flatMap((t) => listFiles(t.local).map((f) => ({ name: t.prefix ? `${t.prefix}/${f.rel}` : f.rel, bytes: f.bytes })));
  const datasetBytes = files.reduce((a, f) => a + f.bytes, 0);
  const startedAt = new Date();

  const record = async (result: LoadResult) => {
    const m: StageManifest<LoadResult> = { stage: 'load', inputsKey, tool: TOOL, startedAt: startedAt.toISOString(), finishedAt: new Date().toISOString(), result };
    await writeManifest(layout.manifests, m);
  };

  // Skip only when the container's own manifest.json says this dataset is published there (reading needs no lock).
  const previous = await readManifest<LoadResult>(layout.manifests, 'load');
  const first = await readPublished(target, root, log);
  if (!ctx.force && first.manifest?.datasetKey === key && previous?.inputsKey === inputsKey) {
    return skipped(container, key, 'already published; nothing uploaded (--force to redo)', { objects: files.length, bytes: datasetBytes });
  }

  if (!first.containerExists) {
    if (o.createContainer === false) {
      throw new EtlError(
        `container '${container}' does not exist`,
        `Create it (openstack container create ${container}, or rclone mkdir ${root}), or drop --no-create-container.`,
      );
    }
    await rclone(target, ['mkdir', root, '--retries', '1', '--low-level-retries', '2'], `create container ${container}`, log);
    log.info(`container ${container} did not exist: created it`);
  }

  // Everything that writes to the container happens under its load lock; what is published is read again
  // under it, since another load may have finished meanwhile.
  const lock = await acquireContainerLock(target, root, container, { breakLock: o.breakLock, log });
  try {
    const published = first.containerExists ? (await readPublished(target, root, log)).manifest : undefined;
    if (!ctx.force && published?.datasetKey === key) {
      // Published from another work dir (or our record is gone): prove it is the same, by sizes and MD5, and
      // upload nothing if so.
      log.info(`dataset ${key} is already published in ${container}: checking it against the local files`);
      if (await matches(target, live, common, log)) {
        const pruned = o.prune ? await prune(target, root, files, common, log) : 0;
        await record({ datasetKey: key, container, objects: files.length, datasetBytes, uploadedBytes: 0, prunedObjects: pruned, seconds: 0, uploadSeconds: 0, mbPerSecond: 0 });
        return skipped(container, key, 'already published and identical to the local files; nothing uploaded', { objects: files.length, bytes: datasetBytes, pruned });
      }
      log.info('the published objects differ from the local files: uploading again');
    }

    // 1. Upload into a staging prefix named after the dataset: the published dataset stays whole until the new
    //    one is verified, and an interrupted upload resumes (copy skips what is already there, by size and MD5).
    log.info(`uploading dataset ${key} (${files.length} files, ${humanBytes(datasetBytes)}) to ${container}/${STAGING_PREFIX}/${key}/`);
    const totals: RcloneStats[] = [];
    for (const t of live) {
      const what = t.prefix ? 'upload raw dataset' : 'upload splits and maps';
      const dest = t.prefix ? `${incoming}/${t.prefix}` : incoming;
      totals.push((await rclone(target, ['copy', t.local, dest, '--checksum', ...common], what, log, { progress: true })).stats);
    }
    const uploadSeconds = (Date.now() - startedAt.getTime()) / 1000;

    // 2. Verify what was uploaded against the local files (sizes and MD5, which Swift keeps as ETags).
    log.info('verifying the upload (sizes and MD5 checksums)');
    for (const t of live) {
      const dest = t.prefix ? `${incoming}/${t.prefix}` : incoming;
      await rclone(target, ['check', t.local, dest, '--one-way', ...common], t.prefix ? 'verify raw dataset' : 'verify splits and maps', log);
    }

    // 3. Promote to the final names, then check the published objects.
    const how = await promote(target, incoming, root, live, common, log);
    if (how === 'server-side') {
      // The staged objects were verified against the local files; comparing the promoted ones with them needs
      // only Swift's listings (MD5 ETags), no second pass of local hashing.
      log.info('verifying the published objects against the verified staged ones');
      await rclone(target, ['check', incoming, root, '--one-way', ...ownExcludes, ...common], 'verify published dataset', log);
    } else {
      log.info('verifying the published objects against the local files');
      if (!(await matches(target, live, common, log))) {
        throw new EtlError('the published objects differ from the local files after the upload', 'Rerun the same command: verified uploads are not repeated.');
      }
    }

    // 4. Only now, with the new dataset verified in place: --prune removes what it no longer has.
    const pruned = o.prune ? await prune(target, root, files, common, log) : 0;

    // 5. Publish the manifest last: its presence says the dataset in the container is complete and verified.
    const uploadedBytes = totals.reduce((a, s) => a + s.bytes, 0);
    const uploadedObjects = totals.reduce((a, s) => a + s.transfers, 0);
    const manifest: PublishedManifest = {
      datasetKey: key,
      publishedAt: new Date().toISOString(),
      container,
      tool: TOOL,
      extract: extract?.result ?? null,
      transform: transform.result,
      load: { objects: files.length, bytes: datasetBytes, verified: true, verifiedAt: new Date().toISOString(), pruned: o.prune },
    };
    const localCopy = join(layout.manifests, 'published.json');
    await writeJsonAtomic(localCopy, manifest);
    await rclone(target, ['copyto', localCopy, `${root}/${CONTAINER_LAYOUT.manifest}`], 'publish manifest', log);
    await rclone(target, ['purge', `${root}/${STAGING_PREFIX}`], 'remove staging prefix', log);

    const seconds = (Date.now() - startedAt.getTime()) / 1000;
    const mbPerSecond = uploadedBytes / 1e6 / Math.max(uploadSeconds, 1e-3);
    const result: LoadResult = { datasetKey: key, container, objects: files.length, datasetBytes, uploadedBytes, uploadedObjects, prunedObjects: pruned, seconds, uploadSeconds, mbPerSecond, promoted: how };
    await record(result);
    const summary =
      `published ${files.length} objects (${humanBytes(datasetBytes)}) in ${container}: uploaded ${uploadedObjects} objects, ` +
      `${humanBytes(uploadedBytes)} in ${uploadSeconds.toFixed(1)} s (${mbPerSecond.toFixed(1)} MB/s); total ${seconds.toFixed(1)} s` +
      (o.prune ? `; pruned ${pruned}` : '');
    log.info(`summary: ${summary}`);
    return { stage: 'load', status: 'done', message: `dataset ${key}: ${summary}`, details: result };
  } finally {
    await lock.release();
  }
}

export type LoadResult = {
  datasetKey: string;
  container: string;
  /** Objects and bytes of the whole dataset as published. */
  objects: number;
  datasetBytes: number;
  /** What this run actually sent (a rerun after an interruption sends only what was missing). */
  uploadedBytes: number;
  uploadedObjects?: number;
  prunedObjects: number;
  seconds: number;
  uploadSeconds: number;
  /** uploadedBytes / uploadSeconds, in MB (10^6 bytes) per second. */
  mbPerSecond: number;
  promoted?: 'server-side' | 'upload';
};

function skipped(container: string, key: string, why: string, facts: { objects: number; bytes: number; pruned?: number }): StageResult {
  return {
    stage: 'load',
    status: 'skipped',
    message: `dataset ${key} in ${container}: ${why}`,
    details: { container, datasetKey: key, objects: facts.objects, datasetBytes: facts.bytes, uploadedBytes: 0, prunedObjects: facts.pruned ?? 0 },
  };
}

/** True when every local file is in the container under its final name with the same size and MD5. */
async function matches(target: RcloneTarget, live: Transfer[], common: string[], log: StageContext['log']): Promise<boolean> {
  for (const t of live) {
    const excludes = t.prefix ? [] : [...ownExcludes, '--exclude', `/${CONTAINER_LAYOUT.raw}/**`];
    try {
      await rclone(target, ['check', t.local, t.remote, '--one-way', ...excludes, ...common], 'check published dataset', log);
    } catch (e) {
      // rclone check exits non-zero for differences; anything else (auth, network) is a real failure.
      if (e instanceof RcloneError && /differences found|not found in|files? missing|hashes could not be checked|directory not found|sizes differ|md5 differ/i.test(e.output)) return false;
      throw e;
    }
  }
  return true;
}

/**
 * Server-side copies first: no data through this machine. Keystone's access rules cannot allow Swift's COPY
 * method (only GET HEAD PUT POST PATCH DELETE), so an access-ruled credential is refused there (401/403); then
 * the verified local files are uploaded again to their final names instead. Copy, never sync: nothing is
 * deleted here (rclone also refuses to sync into a remote that contains the source).
 */
async function promote(target: RcloneTarget, incoming: string, root: string, live: Transfer[], common: string[], log: StageContext['log']): Promise<'server-side' | 'upload'> {
  log.info('promoting the verified dataset to its final names (server-side copy)');
  try {
    await rclone(target, ['copy', incoming, root, '--checksum', ...ownExcludes, '--retries', '1', '--low-level-retries', '1', ...common], 'promote dataset', log, { progress: true });
    return 'server-side';
  } catch (e) {
    if (!(e instanceof RcloneError) || !/\b40[13]\b|unauthori[sz]ed|forbidden/i.test(e.output)) throw e;
    log.warn('the object store refused the server-side copy (an access-ruled credential cannot use COPY); uploading the verified files to their final names');
  }
  for (const t of live) {
    const excludes = t.prefix ? [] : [...ownExcludes, '--exclude', `/${CONTAINER_LAYOUT.raw}/**`];
    await rclone(target, ['copy', t.local, t.remote, '--checksum', ...excludes, ...common], 'promote dataset (upload)', log, { progress: true });
  }
  return 'upload';
}

/** Deletes every object under the root that the new dataset does not have (staging and manifest aside). */
async function prune(target: RcloneTarget, root: string, files: { name: string }[], common: string[], log: StageContext['log']): Promise<number> {
  const { stdout } = await rclone(target, ['lsf', root, '-R', '--files-only', ...ownExcludes, ...common], 'list container for --prune', log, { stdout: true });
  const keep = new Set(files.map((f) => f.name));
  const extra = stdout.split('\n').filter((n) => n && !keep.has(n));
  if (extra.length === 0) {
    log.info('--prune: the container holds nothing beyond the new dataset');
    return 0;
  }
  log.info(`--prune: removing ${extra.length} objects the new dataset no longer has (e.g. ${extra.slice(0, 3).join(', ')})`);
  const dir = mkdtempSync(join(tmpdir(), 'load-prune-'));
  try {
    const list = join(dir, 'delete.txt');
    writeFileSync(list, `${extra.join('\n')}\n`);
    await rclone(target, ['delete', root, '--files-from-raw', list, ...common], 'prune', log);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return extra.length;
}

/** The container's state: does it exist, and which dataset does its manifest.json say is published? */
async function readPublished(target: RcloneTarget, root: string, log: StageContext['log']): Promise<{ containerExists: boolean; manifest?: PublishedManifest }> {
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

function listFiles(dir: string, base = dir): { rel: string; bytes: number }[] {
  const out: { rel: string; bytes: number }[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...listFiles(p, base));
    else out.push({ rel: relative(base, p).split(sep).join('/'), bytes: statSync(p).size });
  }
  return out.sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
}

export const loadStage: Stage<LoadOptions> = {
  name: 'load',
  description: 'upload splits, id maps and the raw dataset into the container with rclone; verify; publish manifest.json last',
  addOptions: (cmd: Command) =>
    cmd
      .addOption(new Option('--container <name>', 'Swift container, object-persist-<teamId>').env('ETL_CONTAINER'))
      .addOption(new Option('--remote <name>', 'rclone remote for the object store').env('ETL_RCLONE_REMOTE').default('chi_tacc'))
      .addOption(new Option('--rclone-config <path>', "rclone config file (default: rclone's own, or RCLONE_CONFIG)"))
      .addOption(new Option('--rclone <path>', 'rclone binary').default('rclone'))
      .addOption(new Option('--transfers <n>', 'parallel uploads').default('32'))
      .addOption(new Option('--checkers <n>', 'parallel checks').default('16'))
      .addOption(new Option('--no-fast-list', 'list the container page by page instead of in one go'))
      .addOption(new Option('--prune', 'after the new dataset is verified, delete objects it no longer has').default(false))
      .addOption(new Option('--no-create-container', 'fail if the container does not exist instead of creating it'))
      .addOption(new Option('--break-lock', "remove the container's load lock left by a load that was killed on another machine").default(false)),
  run,
};
