import { existsSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { processAlive } from './lock-owner';

/**
 * Where each stage reads and writes inside the ETL work directory. One place, so the stages, the remote
 * runner and the tests agree on it.
 *
 *   downloads/   extract: the dataset zip (and `<zip>.part` while a download is under way)
 *   staging/     extract: the unzipped dataset, e.g. staging/ml-32m/ratings.csv
 *   output/      transform: what load publishes (training/, validation/, evaluation/, maps/)
 *   manifests/   one JSON manifest per stage: what it produced and from which inputs
 */
export interface WorkLayout {
  root: string;
  downloads: string;
  staging: string;
  output: string;
  manifests: string;
}

export function workLayout(workDir: string): WorkLayout {
  return {
    root: workDir,
    downloads: join(workDir, 'downloads'),
    staging: join(workDir, 'staging'),
    output: join(workDir, 'output'),
    manifests: join(workDir, 'manifests'),
  };
}

/** Object-store layout: split directories at the container root, as the tutorial's training code expects. */
export const CONTAINER_LAYOUT = {
  training: 'training',
  validation: 'validation',
  evaluation: 'evaluation',
  maps: 'maps',
  raw: 'raw',
  /** Uploaded last: its presence marks the dataset in the container as complete and verified. */
  manifest: 'manifest.json',
} as const;

/**
 * Cleans up after a run that was killed while it replaced `<parent>/<name>` (see replace-dir.ts): a
 * `<name>.tmp-<pid>` of a process that no longer runs is removed, and a `<name>.old-<pid>` is moved back to
 * `<name>` if the kill came between the two renames (else removed). Directories of live processes are left
 * alone: another run may be working. Returns what was done, for the log.
 */
export function recoverInterrupted(parent: string, name: string): string[] {
  const done: string[] = [];
  let entries: string[];
  try {
    entries = readdirSync(parent);
  } catch {
    return done;
  }
  for (const entry of entries) {
    const m = new RegExp(`^${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.(tmp|old)-(\\d+)$`).exec(entry);
    if (!m || Number(m[2]) === process.pid || processAlive(Number(m[2]))) continue;
    const path = join(parent, entry);
    if (m[1] === 'old' && !existsSync(join(parent, name))) {
      renameSync(path, join(parent, name));
      done.push(`restored ${name} from ${entry} (a run was killed while replacing it)`);
    } else {
      rmSync(path, { recursive: true, force: true });
      done.push(`removed ${entry} (left by a run that was killed)`);
    }
  }
  return done;
}
