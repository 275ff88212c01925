import { Option, type Command } from 'commander';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { EtlError } from '../errors';
import { CONTAINER_LAYOUT, workLayout } from '../layout';
import { TOOL, hashInputs, readManifest, writeJsonAtomic, writeManifest, type StageManifest } from '../manifest';
import type { Stage, StageContext, StageResult } from '../stage';
import { acquireContainerLock } from './container-lock';
import { compareWithContainer, promote, prune, readPublished, STAGING_PREFIX, withFileList, type Comparison, type PublishedManifest, type StagedChange, type Transfer } from './container-ops';
import { rcloneEnvFromEtlEnv, secretsInRcloneConfig } from './credentials';
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

/** Deterministic: the same extract and transform give the same key, so an interrupted upload resumes. */
export function datasetKey(extractKey: string, transformKey: string): string {
  return hashInputs({ extractKey, transformKey }).slice(0, 16);
}

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
  const places = [{ local: layout.output, remote: root, prefix: '' }];
  if (rawDir && rawDataset) {
    const prefix = `${CONTAINER_LAYOUT.raw}/${rawDataset}`;
    places.push({ local: rawDir, remote: `${root}/${prefix}`, prefix });
  }
  const listed = places.map((p) => ({ ...p, files: listFiles(p.local) }));
  const live: Transfer[] = listed.map(({ files, ...p }) => ({ ...p, names: files.map((f) => f.rel) }));
  const files = listed.flatMap((p) => p.files.map((f) => ({ name: p.prefix ? `${p.prefix}/${f.rel}` : f.rel, bytes: f.bytes })));
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
    const republish = !ctx.force && published?.datasetKey === key;
    // Published from another work dir (or our record is gone): the comparison below proves it is the same.
    if (republish) log.info(`dataset ${key} is already published in ${container}: checking it against the local files`);

    // 1. Compare each local file with the object under its final name. New names go straight to their final
    //    place: no published object is replaced, and the manifest (published last) is what marks a dataset
    //    complete. Changed names go to a staging prefix named after the dataset, so the published dataset stays
    //    whole until the new one is verified; an interrupted upload resumes (copy skips what is already there).
    const plan: (Comparison & { t: Transfer; staged: string })[] = [];
    for (const t of live) {
      plan.push({ t, staged: t.prefix ? `${incoming}/${t.prefix}` : incoming, ...(await compareWithContainer(target, t, common, log)) });
    }
    const count = (k: 'same' | 'missing' | 'differ') => plan.reduce((a, p) => a + p[k].length, 0);
    if (republish) {
      if (count('same') === files.length) {
        const pruned = o.prune ? await prune(target, root, files, common, log) : 0;
        await record({ datasetKey: key, container, objects: files.length, datasetBytes, uploadedBytes: 0, prunedObjects: pruned, seconds: 0, uploadSeconds: 0, mbPerSecond: 0 });
        return skipped(container, key, 'already published and identical to the local files; nothing uploaded', { objects: files.length, bytes: datasetBytes, pruned });
      }
      log.info('the published objects differ from the local files: uploading again');
    }
    log.info(
      `uploading dataset ${key} (${files.length} files, ${humanBytes(datasetBytes)}) to ${container}: ${count('missing')} new (to their final names), ` +
        `${count('differ')} changed (staged in ${STAGING_PREFIX}/${key}/ until verified), ${count('same')} already there`,
    );
    const uploadStart = Date.now();
    const totals: RcloneStats[] = [];
    for (const p of plan) {
      const what = p.t.prefix ? 'raw dataset' : 'splits and maps';
      if (p.missing.length) totals.push((await withFileList(p.missing, (list) => rclone(target, ['copy', p.t.local, p.t.remote, '--checksum', ...list, ...common], `upload new ${what}`, log, { progress: true }))).stats);
      if (p.differ.length) totals.push((await withFileList(p.differ, (list) => rclone(target, ['copy', p.t.local, p.staged, '--checksum', ...list, ...common], `stage changed ${what}`, log, { progress: true }))).stats);
    }
    const uploadSeconds = (Date.now() - uploadStart) / 1000;

    // 2. Verify what was uploaded against the local files (sizes and MD5, which Swift keeps as ETags).
    log.info('verifying the upload (sizes and MD5 checksums)');
    for (const p of plan) {
      const what = p.t.prefix ? 'raw dataset' : 'splits and maps';
      if (p.missing.length) await withFileList(p.missing, (list) => rclone(target, ['check', p.t.local, p.t.remote, '--one-way', ...list, ...common], `verify new ${what}`, log));
      if (p.differ.length) await withFileList(p.differ, (list) => rclone(target, ['check', p.t.local, p.staged, '--one-way', ...list, ...common], `verify staged ${what}`, log));
    }

    // 3. Promote the changed objects to their final names, then check them.
    const changes: StagedChange[] = plan.filter((p) => p.differ.length).map((p) => ({ transfer: p.t, staged: p.staged, names: p.differ }));
    let how: LoadResult['promoted'] = 'none';
    if (changes.length) {
      how = await promote(target, changes, common, log);
      log.info(how === 'server-side' ? 'verifying the promoted objects against the verified staged ones' : 'verifying the promoted objects against the local files');
      for (const c of changes) {
        // After a server-side copy, comparing with the verified staged objects needs only Swift's listings (MD5
        // ETags), no second pass of local hashing.
        const from = how === 'server-side' ? c.staged : c.transfer.local;
        await withFileList(c.names, (list) => rclone(target, ['check', from, c.transfer.remote, '--one-way', ...list, ...common], 'verify promoted objects', log));
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
    // Also what an interrupted earlier load staged; nothing may be staged at all (every object new or the same).
    await rclone(target, ['purge', `${root}/${STAGING_PREFIX}`], 'remove staging prefix', log, { quiet: true }).catch((e: unknown) => {
      if (!(e instanceof RcloneError && e.notFound)) throw e;
    });

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
  /** How changed objects reached their final names; 'none' when every object was new or unchanged. */
  promoted?: 'server-side' | 'upload' | 'none';
};

function skipped(container: string, key: string, why: string, facts: { objects: number; bytes: number; pruned?: number }): StageResult {
  return {
    stage: 'load',
    status: 'skipped',
    message: `dataset ${key} in ${container}: ${why}`,
    details: { container, datasetKey: key, objects: facts.objects, datasetBytes: facts.bytes, uploadedBytes: 0, prunedObjects: facts.pruned ?? 0 },
  };
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
