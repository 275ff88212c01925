import { Option, type Command } from 'commander';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { EtlError } from '../errors';
import { CONTAINER_LAYOUT, workLayout } from '../layout';
import { TOOL, hashInputs, readManifest, writeJsonAtomic, writeManifest, type StageManifest } from '../manifest';
import type { Stage, StageContext, StageResult } from '../stage';
import { formatStats, rclone, type RcloneStats, type RcloneTarget } from './rclone';
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
}

/** What the container's manifest.json says: the dataset that is complete and verified there. */
export interface PublishedManifest {
  datasetKey: string;
  publishedAt: string;
  container: string;
  tool: typeof TOOL;
  extract: unknown;
  transform: unknown;
  load: { objects: number; bytes: number; verified: true; pruned: boolean };
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
  const rawDir = rawDataset ? join(layout.staging, rawDataset) : undefined;
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

  // Skip only when both our record and the container agree that this dataset is published.
  const previous = await readManifest<{ datasetKey: string }>(layout.manifests, 'load');
  const published = await readPublished(target, root, log);
  if (!ctx.force && previous?.inputsKey === inputsKey && published?.datasetKey === key) {
    return {
      stage: 'load',
      status: 'skipped',
      message: `dataset ${key} is already published in ${container}; nothing uploaded (--force to redo)`,
      details: { container, datasetKey: key, uploadedBytes: 0 },
    };
  }

  const startedAt = new Date();
  // Swift creates containers idempotently; one that does not exist yet is made here rather than failing.
  await rclone(target, ['mkdir', root, '--retries', '1', '--low-level-retries', '2'], `container ${container}`, log);

  // 1. Upload into a staging prefix: the published dataset stays whole until the new one is verified.
  log.info(`uploading dataset ${key} to ${container}/${STAGING_PREFIX}/${key}/`);
  const totals: RcloneStats[] = [];
  const up = await rclone(target, ['copy', layout.output, incoming, '--checksum', ...common], 'upload splits and maps', log, { progress: true });
  totals.push(up.stats);
  if (rawDir && existsSync(rawDir)) {
    const upRaw = await rclone(
      target,
      ['copy', rawDir, `${incoming}/${CONTAINER_LAYOUT.raw}/${rawDataset}`, '--checksum', ...common],
      'upload raw dataset',
      log,
      { progress: true },
    );
    totals.push(upRaw.stats);
  }

  // 2. Verify what was uploaded against the local files (sizes and MD5, which Swift keeps as ETags).
  log.info('verifying the upload (sizes and MD5 checksums)');
  await rclone(target, ['check', layout.output, incoming, '--one-way', ...common], 'verify splits and maps', log);
  if (rawDir && existsSync(rawDir)) {
    await rclone(target, ['check', rawDir, `${incoming}/${CONTAINER_LAYOUT.raw}/${rawDataset}`, '--one-way', ...common], 'verify raw dataset', log);
  }

  // 3. Promote. With --prune, objects that the new dataset no longer has are deleted now, and only now,
  //    after the new one is verified.
  const live: Transfer[] = [{ local: layout.output, remote: root, excludes: [`/${CONTAINER_LAYOUT.raw}/**`, ...promoteExcludes] }];
  if (rawDir && existsSync(rawDir)) live.push({ local: rawDir, remote: `${root}/${CONTAINER_LAYOUT.raw}/${rawDataset}`, excludes: [] });
  const how = await promote(target, incoming, root, live, o, common, log);
  if (how === 'server-side') {
    // The staged objects were verified against the local files; comparing the promoted ones with them needs
    // only Swift's listings (MD5 ETags), no second pass of local hashing.
    log.info('verifying the published objects against the verified staged ones');
    await rclone(target, ['check', incoming, root, '--one-way', ...promoteExcludes.flatMap((x) => ['--exclude', x]), ...common], 'verify published dataset', log);
  } else {
    log.info('verifying the published objects against the local files');
    for (const t of live) {
      await rclone(target, ['check', t.local, t.remote, '--one-way', ...t.excludes.flatMap((x) => ['--exclude', x]), ...common], 'verify published dataset', log);
    }
  }

  // 4. Publish the manifest last: its presence says the dataset in the container is complete and verified.
  const bytes = totals.reduce((a, s) => a + s.bytes, 0);
  const objects = countFiles(layout.output) + (rawDir && existsSync(rawDir) ? countFiles(rawDir) : 0);
  const manifest: PublishedManifest = {
    datasetKey: key,
    publishedAt: new Date().toISOString(),
    container,
    tool: TOOL,
    extract: extract?.result ?? null,
    transform: transform.result,
    load: { objects, bytes, verified: true, pruned: o.prune },
  };
  const localCopy = join(layout.manifests, 'published.json');
  await writeJsonAtomic(localCopy, manifest);
  await rclone(target, ['copyto', localCopy, `${root}/${CONTAINER_LAYOUT.manifest}`], 'publish manifest', log);
  await rclone(target, ['purge', `${root}/${STAGING_PREFIX}`], 'remove staging prefix', log);

  const seconds = (Date.now() - startedAt.getTime()) / 1000;
  const result = { datasetKey: key, container, objects, uploadedBytes: bytes, seconds, mbPerSecond: bytes / 1e6 / Math.max(seconds, 1e-3) };
  const record: StageManifest<typeof result> = {
    stage: 'load',
    inputsKey,
    tool: TOOL,
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    result,
  };
  await writeManifest(layout.manifests, record);
  const upTotal = totals.reduce<RcloneStats>(
    (a, s) => ({ bytes: a.bytes + s.bytes, transfers: a.transfers + s.transfers, checks: a.checks + s.checks, errors: a.errors + s.errors, elapsedTime: a.elapsedTime + s.elapsedTime }),
    { bytes: 0, transfers: 0, checks: 0, errors: 0, elapsedTime: 0 },
  );
  return {
    stage: 'load',
    status: 'done',
    message: `published dataset ${key} in ${container}: ${objects} objects; uploaded ${formatStats(upTotal)}`,
    details: result,
  };
}

interface Transfer {
  local: string;
  remote: string;
  excludes: string[];
}

const promoteExcludes = [`/${STAGING_PREFIX}/**`, `/${CONTAINER_LAYOUT.manifest}`];

/**
 * Server-side copies first: no data through this machine. Keystone's access rules cannot allow Swift's COPY
 * method (only GET HEAD PUT POST PATCH DELETE), so an access-ruled credential is refused there; then the
 * verified local files are uploaded again to their final names instead.
 */
async function promote(target: RcloneTarget, incoming: string, root: string, live: Transfer[], o: LoadOptions, common: string[], log: StageContext['log']): Promise<'server-side' | 'upload'> {
  const verb = o.prune ? 'sync' : 'copy';
  const excludes = promoteExcludes.flatMap((x) => ['--exclude', x]);
  log.info(o.prune ? 'promoting (server-side) and pruning objects the new dataset no longer has' : 'promoting (server-side copy)');
  try {
    await rclone(target, [verb, incoming, root, '--checksum', ...excludes, '--retries', '1', '--low-level-retries', '1', ...common], 'promote dataset', log, { progress: true });
    return 'server-side';
  } catch (e) {
    if (!(e instanceof RcloneError)) throw e;
    log.warn('server-side copy was refused (an access-ruled credential cannot use COPY); uploading the verified files to their final names');
  }
  for (const t of live) {
    await rclone(target, [verb, t.local, t.remote, '--checksum', ...t.excludes.flatMap((x) => ['--exclude', x]), ...common], 'promote dataset (upload)', log, { progress: true });
  }
  // The server-side sync above would also have removed raw datasets other than this one: do the same here.
  if (o.prune && live.length > 1) {
    const rawRoot = `${root}/${CONTAINER_LAYOUT.raw}`;
    const current = live[1].remote.slice(rawRoot.length + 1);
    await rclone(target, ['delete', rawRoot, '--exclude', `/${current}/**`, ...common], 'prune other raw datasets', log);
  }
  return 'upload';
}

async function readPublished(target: RcloneTarget, root: string, log: StageContext['log']): Promise<PublishedManifest | undefined> {
  try {
    const { stdout } = await rclone(target, ['cat', `${root}/${CONTAINER_LAYOUT.manifest}`, '--retries', '1', '--low-level-retries', '2'], 'read published manifest', log, { stdout: true });
    return stdout.trim() ? (JSON.parse(stdout) as PublishedManifest) : undefined;
  } catch (e) {
    // A missing container or manifest means "nothing published yet"; auth and network errors stop here.
    if (e instanceof RcloneError && e.notFound) return undefined;
    if (e instanceof SyntaxError) return undefined;
    throw e;
  }
}

function countFiles(dir: string): number {
  let n = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    n += entry.isDirectory() ? countFiles(join(dir, entry.name)) : 1;
  }
  return n;
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
      .addOption(new Option('--prune', 'after the new dataset is verified, delete objects it no longer has').default(false)),
  run,
};
