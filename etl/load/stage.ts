import { DEFAULT_RCLONE_REMOTE } from '../rclone-remote';
import { Option, type Command } from 'commander';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { EtlError } from '../errors';
import { workLayout } from '../work-dir';
import type { Logger } from '../log';
import { TOOL, hashInputs, readManifest, writeJsonAtomic, writeManifest, type StageManifest } from '../manifest';
import type { Stage, StageContext, StageResult } from '../stage';
import { acquireContainerLock, clearOwnKilledLock, DEFAULT_LEASE_SECONDS } from './container-lock';
import { copyServerSide, deleteObjects, listPrefix, putJson, rcOf, readPointer, upload } from './container-ops';
import { rcloneEnvFromEtlEnv, secretsInRcloneConfig } from './credentials';
import { lineage, type ExtractRecord, type LocalObject, type TransformRecord } from './lineage';
import { humanBytes, type RcloneStats, type RcloneTarget } from './rclone';
import { RcloneError } from './rclone-errors';
import { startRcSession } from './rclone-rc';
import {
  DEFAULT_KEEP,
  EMPTY_POINTER,
  objectNames,
  POINTER_OBJECT,
  publish,
  retired,
  VERSION_MANIFEST,
  versionPrefix,
  versionProblems,
  withPending,
  type ExpectedObject,
  type ListedObject,
  type Pointer,
} from './versions';

export { datasetKey } from './lineage';

export interface LoadOptions {
  container?: string;
  remote: string;
  rcloneConfig?: string;
  rclone: string;
  transfers: string;
  checkers: string;
  fastList: boolean;
  /** How many published versions stay in the container (the current one included). */
  keep?: string;
  /** Gone: kept so that an old command line says what replaced it. */
  prune?: boolean;
  /** Create the container when it does not exist (default); --no-create-container refuses instead. */
  createContainer?: boolean;
  /** Remove the container's load lock left by a load that was killed on another machine. */
  breakLock?: boolean;
  /** Seconds the container lock lives without a renewal (tests shorten it). */
  lockLease?: string;
}

/** A version's manifest.json: what it holds (names, sizes, MD5s, SHA-256s) and where it came from. */
export interface VersionManifest {
  format: 1;
  datasetKey: string;
  publishedAt: string;
  container: string;
  tool: typeof TOOL;
  objects: { name: string; bytes: number; md5: string; sha256: string }[];
  lineage: { dataset: string | null; zipSha256: string | null; transformInput: { path: string; sha256: string } };
  extract: unknown;
  transform: unknown;
  load: { verified: true; verifiedAt: string; reusedObjects: number };
}

export type LoadResult = {
  datasetKey: string;
  container: string;
  /** Where the version is, under the container: datasets/<key>/. */
  version: string;
  objects: number;
  datasetBytes: number;
  /** What this run sent (a rerun after an interruption sends only what was missing). */
  uploadedBytes: number;
  uploadedObjects: number;
  /** Objects copied server-side from the previous version (same content): not sent again. */
  reusedObjects: number;
  /** Versions (and abandoned uploads) whose objects this run deleted. */
  retired: string[];
  seconds: number;
  uploadSeconds: number;
  /** uploadedBytes / uploadSeconds, in MB (10^6 bytes) per second. */
  mbPerSecond: number;
};

/** The RCLONE_* variables of an environment (rclone reads any flag as RCLONE_<FLAG>). */
function rcloneSettings(env: NodeJS.ProcessEnv): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter((kv): kv is [string, string] => kv[0].startsWith('RCLONE_') && kv[1] !== undefined));
}

async function run(ctx: StageContext, o: LoadOptions): Promise<StageResult> {
  const { log } = ctx;
  const container = o.container;
  if (!container) throw new EtlError('load needs the container name', 'Pass --container object-persist-<teamId> (or set ETL_CONTAINER).');
  if (o.prune)
    log.warn('--prune is gone: versions beyond --keep are deleted after a publish, and objects this tool did not write are never deleted');
  const keep = Number(o.keep ?? DEFAULT_KEEP);
  if (!Number.isInteger(keep) || keep < 1 || keep > 100) throw new EtlError(`--keep '${o.keep}' is not a whole number from 1 to 100`);
  const lease = Number(o.lockLease ?? DEFAULT_LEASE_SECONDS);
  const transfers = Math.max(1, Number(o.transfers) || 32);
  const checkers = Math.max(1, Number(o.checkers) || 16);
  const layout = workLayout(ctx.workDir);
  const extract = await readManifest<ExtractRecord>(layout.manifests, 'extract');
  const transform = await readManifest<TransformRecord>(layout.manifests, 'transform');
  if (!transform || !existsSync(layout.output)) {
    throw new EtlError(`nothing to load: no transform output in ${layout.output}`, 'Run the transform stage first (or `all`).');
  }
  const startedAt = new Date();
  // ETL_LOAD_TRACE=1: one line per step with its start time (the bench's phase timings, the chaos test's phases).
  const t0 = performance.now();
  const environment = ctx.env ?? process.env;
  const trace = environment.ETL_LOAD_TRACE
    ? (what: string) => log.info(`load trace: +${Math.round(performance.now() - t0)} ms ${what}`)
    : undefined;

  const fromEnv = rcloneEnvFromEtlEnv(o.remote, environment);
  const configText = o.rcloneConfig && existsSync(o.rcloneConfig) ? readFileSync(o.rcloneConfig, 'utf8') : '';
  const base: RcloneTarget = {
    binary: o.rclone,
    remote: o.remote,
    configPath: o.rcloneConfig,
    // rclone's own settings of the stage's environment (RCLONE_<FLAG>) reach it with the remote's: the CLI's
    // environment is process.env anyway, a test's or a caller's context may carry others.
    env: { ...rcloneSettings(environment), ...fromEnv.env },
    secrets: [...fromEnv.secrets, ...secretsInRcloneConfig(configText)],
  };
  // rclone starts and logs in while the files' content identities are checked (a hash only for a changed file).
  const session = startRcSession(base, log, { trace, loginProbe: `${o.remote}:${container}/${POINTER_OBJECT}`, fastList: o.fastList });
  session.catch(() => undefined);
  let lin: Awaited<ReturnType<typeof lineage>>;
  try {
    trace?.('lineage (content identities)');
    lin = await lineage(layout.output, extract?.result, transform.result);
  } catch (e) {
    await session.then(
      (s) => s.close(),
      () => undefined,
    );
    throw e;
  }
  const rc = await session;
  try {
    return await publishVersion({
      ctx,
      o,
      container,
      keep,
      lease,
      transfers,
      checkers,
      layout,
      extract,
      transform,
      lin,
      startedAt,
      target: { ...base, rc },
      log,
    });
  } finally {
    trace?.('stop rclone');
    await rc.close();
  }
}

async function publishVersion(a: {
  ctx: StageContext;
  o: LoadOptions;
  container: string;
  keep: number;
  lease: number;
  transfers: number;
  checkers: number;
  layout: ReturnType<typeof workLayout>;
  extract: StageManifest<ExtractRecord> | undefined;
  transform: StageManifest<TransformRecord>;
  lin: Awaited<ReturnType<typeof lineage>>;
  startedAt: Date;
  target: RcloneTarget;
  log: Logger;
}): Promise<StageResult> {
  const { ctx, o, container, keep, lease, transfers, checkers, layout, extract, transform, lin, startedAt, target, log } = a;
  const key = lin.key;
  const files = lin.objects;
  const datasetBytes = files.reduce((a, f) => a + f.bytes, 0);
  const inputsKey = hashInputs({ key, container, remote: o.remote });
  const root = `${o.remote}:${container}`;
  const prefix = versionPrefix(key);
  const vroot = `${root}/${prefix}`;
  const pointerObject = `${root}/${POINTER_OBJECT}`;
  const lockRecord = join(layout.manifests, 'load-lock.json');
  const publishedCopy = join(layout.manifests, 'published.json');
  const record = async (result: LoadResult) => {
    const m: StageManifest<LoadResult> = {
      stage: 'load',
      inputsKey,
      tool: TOOL,
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      result,
    };
    await writeManifest(layout.manifests, m);
  };
  const summaryOf = (over: Partial<LoadResult>): LoadResult => ({
    datasetKey: key,
    container,
    version: `${prefix}/`,
    objects: files.length,
    datasetBytes,
    uploadedBytes: 0,
    uploadedObjects: 0,
    reusedObjects: 0,
    retired: [],
    seconds: (Date.now() - startedAt.getTime()) / 1000,
    uploadSeconds: 0,
    mbPerSecond: 0,
    ...over,
  });

  // The login HEADed the pointer: when there was none, only whether the container exists is left to ask.
  const first = await readPointerOrExplain(target, root, container, { knownMissing: !rcOf(target).probeExisted });

  // The skip path proves the current version whole from one listing (sizes, MD5s against its manifest): a
  // version damaged behind the tool's back is repaired by a plain rerun, no --force needed.
  let checked: { pointer: Pointer; manifest: VersionManifest | undefined; listing: ListedObject[] } | undefined;
  if (!ctx.force && first.pointer?.current === key) {
    const [manifest, listing] = await Promise.all([versionManifest(target, root, key, publishedCopy), listPrefix(target, vroot)]);
    checked = { pointer: first.pointer, manifest, listing };
    const problems = manifest ? versionProblems(manifest.objects, listing) : ['its manifest.json is missing or unreadable'];
    if (problems.length === 0 && manifest) {
      await clearOwnKilledLock(target, root, container, { recordPath: lockRecord, log });
      const leftovers = first.pointer.pending.length + first.pointer.retiring.length;
      if (leftovers === 0) {
        await record(summaryOf({}));
        return skipped(
          container,
          key,
          `already published and verified (${files.length} objects match its manifest); nothing uploaded (--force to redo)`,
          files,
          datasetBytes,
        );
      }
      log.info(`dataset ${key} is published; cleaning up ${leftovers} abandoned upload(s) or old version(s) recorded in ${POINTER_OBJECT}`);
    } else {
      log.warn(
        `the current version ${key} in ${container} is damaged ` +
          `(${problems.slice(0, 3).join('; ')}${problems.length > 3 ? `; ${problems.length - 3} more` : ''}): repairing it`,
      );
    }
  }

  if (!first.containerExists) {
    if (o.createContainer === false) {
      throw new EtlError(
        `container '${container}' does not exist`,
        `Create it (openstack container create ${container}, or rclone mkdir ${root}), or drop --no-create-container.`,
      );
    }
    await rcOf(target).mkdir(root, `create container ${container}`);
    log.info(`container ${container} did not exist: created it`);
  }

  // What the load must know under the lock, read while the lock settles (reads only; dropped if the lock is not ours).
  const names = [...files.map((f) => f.name), VERSION_MANIFEST];
  const readState = async () => {
    // Read again under the lock, even right after creating the container: another load may have published
    // meanwhile, and its versions must stay recorded.
    const p0: Pointer = (await readPointerOrExplain(target, root, container)).pointer ?? EMPTY_POINTER;
    const published = p0.versions.find((v) => v.key === key);
    // The skip path's reads stand when the pointer did not change meanwhile: a published version's manifest
    // never changes, and its listing is read again after anything is written to it.
    const reuse = checked && JSON.stringify(checked.pointer) === JSON.stringify(p0) ? checked : undefined;
    const [had, listing, cur] = await Promise.all([
      published ? (reuse ? reuse.manifest : versionManifest(target, root, key, publishedCopy)) : undefined,
      published ? (reuse ? reuse.listing : listPrefix(target, vroot)) : undefined,
      p0.current && p0.current !== key ? versionManifest(target, root, p0.current, undefined) : undefined,
    ]);
    return { p0, published, had, listing, cur };
  };
  let state: Awaited<ReturnType<typeof readState>> | undefined;
  const lock = await acquireContainerLock(target, root, container, {
    breakLock: o.breakLock,
    log,
    recordPath: lockRecord,
    leaseSeconds: lease,
    whileSettling: async () => {
      state = await readState();
    },
  });
  try {
    const { p0, published, had, listing: hadListing, cur } = state!;
    // A version published before (a rerun, or back to an earlier seed) is used as it is when a listing proves it
    // whole; only a damaged one is written to, and only to restore what its manifest says.
    const intact = had && hadListing ? versionProblems(had.objects, hadListing).length === 0 : false;
    let p = p0;
    let stats: RcloneStats = { bytes: 0, transfers: 0, checks: 0, errors: 0, elapsedTime: 0 };
    let uploadSeconds = 0;
    const reused = new Map<string, string>();
    if (!intact) {
      // 1. Record the upload before writing any of it: a kill from here on leaves only recorded objects behind.
      p = withPending(p0, key, names, new Date().toISOString());
      if (p !== p0) {
        lock.assertHeld();
        await putJson(target, pointerObject, p, 'record the upload in the dataset pointer');
      }

      // 2. Objects whose content the current version already holds are copied server-side (the raw files and the
      //    id maps of a new seed): the 877 MB raw file is uploaded once per source zip, not once per seed. The
      //    rest is uploaded at the same time: both go into the version's own prefix, nothing of another version
      //    is touched, and the copy's fallback (an access-ruled credential cannot COPY) uploads what it refused.
      const same = cur
        ? files.filter((f) => cur.objects.some((c) => c.name === f.name && c.sha256 === f.sha256 && c.bytes === f.bytes))
        : [];
      const sameNames = new Set(same.map((f) => f.name));
      const rest = files.filter((f) => !sameNames.has(f.name));
      log.info(
        `uploading dataset ${key} to ${container}/${prefix}/: ${rest.length} files ` +
          `(${humanBytes(rest.reduce((a, f) => a + f.bytes, 0))}), ${same.length} copied server-side`,
      );
      const uploadStart = Date.now();
      lock.assertHeld();
      // 3. rclone checks each upload's MD5 against Swift's ETag and skips what an interrupted run already sent.
      const copying = same.length
        ? copyServerSide(
            target,
            `${root}/${versionPrefix(p.current!)}`,
            vroot,
            same.map((f) => f.name),
            checkers,
            log,
          ).then(async (ok) => {
            if (ok) {
              for (const f of same) reused.set(f.name, cur!.objects.find((c) => c.name === f.name)!.md5);
              log.info(
                `reused ${same.length} unchanged objects of version ${p.current} (server-side copy): ${same.map((f) => f.name).join(', ')}`,
              );
              return undefined;
            }
            lock.assertHeld();
            return upload(target, same, vroot, transfers, 'upload dataset version (instead of the refused copy)');
          })
        : Promise.resolve(undefined);
      // Both end before anything else happens (the lock is released only after every write has ended).
      const [up, cp] = await Promise.allSettled([upload(target, rest, vroot, transfers, 'upload dataset version'), copying]);
      if (up.status === 'rejected') throw up.reason;
      if (cp.status === 'rejected') throw cp.reason;
      const [sent, fallback] = [up.value, cp.value];
      stats = fallback ? { ...sent, bytes: sent.bytes + fallback.bytes, transfers: sent.transfers + fallback.transfers } : sent;
      uploadSeconds = (Date.now() - uploadStart) / 1000;

      // 4. Verify the version from one listing: every name, its size and MD5 (against the MD5s its manifest or
      //    the reused objects' version were verified with).
      const known = new Map(had?.objects.map((o) => [o.name, o.md5]) ?? reused);
      const expected: ExpectedObject[] = files.map((f) => ({ name: f.name, bytes: f.bytes, md5: known.get(f.name) }));
      let listing = await listPrefix(target, vroot);
      let problems = versionProblems(expected, listing);
      // Swift may list an object a moment after its PUT returned (the container update runs behind on a busy
      // store): objects that are only missing are looked for again before the version is called incomplete.
      for (let i = 0; problems.length && problems.every((p) => p.endsWith(': missing')) && i < 5; i++) {
        await new Promise((r) => setTimeout(r, 2000));
        listing = await listPrefix(target, vroot);
        problems = versionProblems(expected, listing);
      }
      if (problems.length) {
        throw new EtlError(
          `the uploaded version ${key} is not complete: ${problems.slice(0, 5).join('; ')}`,
          'Nothing was published; the current dataset is as it was. Rerun the load.',
        );
      }
      if (!had) {
        const md5 = new Map(listing.map((l) => [l.name, l.md5!]));
        const publishedAt = new Date().toISOString();
        const manifest: VersionManifest = {
          format: 1,
          datasetKey: key,
          publishedAt,
          container,
          tool: TOOL,
          objects: files.map((f) => ({ name: f.name, bytes: f.bytes, md5: md5.get(f.name)!, sha256: f.sha256 })),
          lineage: {
            dataset: lin.raw?.dataset ?? null,
            zipSha256: lin.raw?.zipSha256 ?? null,
            transformInput: { path: transform.result.input.path, sha256: transform.result.input.sha256 },
          },
          extract: extract?.result ?? null,
          transform: transform.result,
          load: { verified: true, verifiedAt: publishedAt, reusedObjects: reused.size },
        };
        await writeJsonAtomic(publishedCopy, manifest);
        lock.assertHeld();
        await putJson(target, `${vroot}/${VERSION_MANIFEST}`, manifest, 'write the version manifest');
      } else {
        log.info(`repaired version ${key}: its objects match its manifest again`);
      }
    } else {
      log.info(`version ${key} is already in ${container} and whole: switching to it`);
    }

    // 5. The switch: one object write. Readers see the old version or the new one, never a mix.
    if (p.current !== key || p.pending.length || p.retiring.length || published === undefined) {
      lock.assertHeld();
      p = publish(p, published ?? { key, publishedAt: new Date().toISOString(), objects: names }, keep);
      await putJson(target, pointerObject, p, 'publish the version (write the dataset pointer)');
      log.info(`published version ${key}: ${container}/${POINTER_OBJECT} now names ${prefix}/`);
    }

    // 6. Only now: delete versions beyond --keep and abandoned uploads, by the names the pointer recorded.
    const retiredKeys = await retire(target, root, pointerObject, p, lock.assertHeld, checkers, log);

    const uploadedBytes = stats.bytes;
    const result = summaryOf({
      uploadedBytes,
      uploadedObjects: stats.transfers,
      reusedObjects: reused.size,
      retired: retiredKeys,
      uploadSeconds,
      mbPerSecond: uploadedBytes / 1e6 / Math.max(uploadSeconds, 1e-3),
    });
    await record(result);
    const summary =
      `published ${files.length} objects (${humanBytes(datasetBytes)}) as version ${key} in ${container}: ` +
      `uploaded ${result.uploadedObjects} objects, ` +
      `${humanBytes(uploadedBytes)} in ${uploadSeconds.toFixed(1)} s (${result.mbPerSecond.toFixed(1)} MB/s), ` +
      `reused ${reused.size}; total ${result.seconds.toFixed(1)} s` +
      (retiredKeys.length ? `; deleted old versions ${retiredKeys.join(', ')}` : '');
    log.info(`summary: ${summary}`);
    return { stage: 'load', status: 'done', message: `dataset ${key}: ${summary}`, details: result };
  } finally {
    // The record of our token stays while the lock may still be there (the store unreachable at the end), so the
    // next load from this work dir knows the lock as its own and takes it over.
    if (await lock.release()) rmSync(lockRecord, { force: true });
  }
}

/** Deletes what the pointer lists as retiring, then records that it is gone. */
async function retire(
  target: RcloneTarget,
  root: string,
  pointerObject: string,
  p: Pointer,
  assertHeld: () => void,
  parallel: number,
  l: Logger,
): Promise<string[]> {
  if (p.retiring.length === 0) return [];
  const keys = p.retiring.map((r) => r.key);
  l.info(`deleting ${keys.length} version(s) beyond the retention count or abandoned: ${keys.join(', ')}`);
  assertHeld();
  await deleteObjects(target, root, p.retiring.flatMap(objectNames), parallel, 'delete old versions');
  assertHeld();
  await putJson(target, pointerObject, retired(p), 'record the deletion in the dataset pointer');
  return keys;
}

async function readPointerOrExplain(target: RcloneTarget, root: string, container: string, o: { knownMissing?: boolean } = {}) {
  try {
    return await readPointer(target, root, o);
  } catch (e) {
    if (e instanceof EtlError) throw e;
    throw new EtlError(
      `cannot read ${container}/${POINTER_OBJECT}: ${(e as Error).message}`,
      'It was written by another tool or a newer version of this one; nothing was changed. Update chameleon-persist, or move ' +
        'that object aside.',
    );
  }
}

/** The manifest of a version: this work dir's copy when it is the same version, else the container's. */
async function versionManifest(
  target: RcloneTarget,
  root: string,
  key: string,
  localCopy: string | undefined,
): Promise<VersionManifest | undefined> {
  if (localCopy && existsSync(localCopy)) {
    try {
      const m = JSON.parse(readFileSync(localCopy, 'utf8')) as VersionManifest;
      if (m.datasetKey === key && m.format === 1) return m;
    } catch {
      // unreadable: read the container's
    }
  }
  try {
    const m = JSON.parse(
      await rcOf(target).cat(`${root}/${versionPrefix(key)}/${VERSION_MANIFEST}`, 'read the version manifest'),
    ) as VersionManifest;
    return m.datasetKey === key && Array.isArray(m.objects) ? m : undefined;
  } catch (e) {
    if (e instanceof RcloneError && e.notFound) return undefined;
    if (e instanceof SyntaxError) return undefined;
    throw e;
  }
}

function skipped(container: string, key: string, why: string, files: LocalObject[], bytes: number): StageResult {
  return {
    stage: 'load',
    status: 'skipped',
    message: `dataset ${key} in ${container}: ${why}`,
    details: {
      container,
      datasetKey: key,
      version: `${versionPrefix(key)}/`,
      objects: files.length,
      datasetBytes: bytes,
      uploadedBytes: 0,
    },
  };
}

export const loadStage: Stage<LoadOptions> = {
  name: 'load',
  description: 'upload the dataset as a new immutable version (datasets/<key>/) with rclone, verify it, then switch current.json to it',
  addOptions: (cmd: Command) =>
    cmd
      .addOption(new Option('--container <name>', 'Swift container, object-persist-<teamId>').env('ETL_CONTAINER'))
      .addOption(
        new Option('--remote <name>', 'rclone remote for the object store').env('ETL_RCLONE_REMOTE').default(DEFAULT_RCLONE_REMOTE),
      )
      .addOption(new Option('--rclone-config <path>', "rclone config file (default: rclone's own, or RCLONE_CONFIG)"))
      .addOption(new Option('--rclone <path>', 'rclone binary').default('rclone'))
      .addOption(new Option('--transfers <n>', 'parallel uploads').default('32'))
      .addOption(new Option('--checkers <n>', 'parallel checks').default('16'))
      .addOption(new Option('--no-fast-list', 'list the container page by page instead of in one go'))
      .addOption(
        new Option('--keep <n>', 'published versions kept in the container, the current one included').default(String(DEFAULT_KEEP)),
      )
      .addOption(new Option('--prune').hideHelp().default(false))
      .addOption(new Option('--no-create-container', 'fail if the container does not exist instead of creating it'))
      .addOption(
        new Option('--break-lock', "remove the container's load lock left by a load that was killed on another machine").default(false),
      )
      .addOption(
        new Option('--lock-lease <seconds>', 'how long the container lock outlives its last renewal')
          .default(String(DEFAULT_LEASE_SECONDS))
          .hideHelp(),
      ),
  run,
};
