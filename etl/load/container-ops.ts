import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '../log';
import { rclone, type RcloneStats, type RcloneTarget } from './rclone';
import { RcloneError } from './rclone-errors';
import { fileListText, parseLsjson, parsePointer, POINTER_OBJECT, type ListedObject, type Pointer } from './versions';

/**
 * What the load does to the container, one rclone command each. The order (and the lock around it) is the
 * stage's (stage.ts); which objects and what they must hold is versions.ts's.
 */

/** The container's state: does it exist, and what does its pointer say? */
export async function readPointer(target: RcloneTarget, root: string, log: Logger): Promise<{ containerExists: boolean; pointer?: Pointer }> {
  let text: string;
  try {
    text = (await rclone(target, ['cat', `${root}/${POINTER_OBJECT}`, '--retries', '1', '--low-level-retries', '2'], 'read the dataset pointer', log, { stdout: true })).stdout;
  } catch (e) {
    // rclone cat of a missing object in an existing container prints nothing; a missing container is
    // "directory not found". Auth and network errors stop here.
    if (e instanceof RcloneError && e.notFound) return { containerExists: false };
    throw e;
  }
  return { containerExists: true, pointer: parsePointer(text) };
}

/** Every object under `prefix`, with size and MD5 (Swift's ETag), from one listing: no object is read. */
export async function listPrefix(target: RcloneTarget, prefix: string, common: string[], log: Logger): Promise<ListedObject[]> {
  try {
    const { stdout } = await rclone(target, ['lsjson', prefix, '-R', '--files-only', '--hash', '--no-mimetype', '--no-modtime', ...common], 'list the dataset version', log, { stdout: true });
    return parseLsjson(stdout);
  } catch (e) {
    if (e instanceof RcloneError && e.notFound) return [];
    throw e;
  }
}

/** Writes a small JSON object from a private temp file (Swift replaces an object atomically). */
export async function putJson(target: RcloneTarget, dest: string, value: unknown, what: string, log: Logger): Promise<void> {
  await withTempDir('load-put-', async (dir) => {
    const file = join(dir, 'object.json');
    writeFileSync(file, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o600 });
    await rclone(target, ['copyto', file, dest, '--retries', '3'], what, log);
  });
}

/** Uploads `names` (relative to `localDir`) to `dest`; rclone checks each upload's MD5 against Swift's ETag. */
export async function upload(target: RcloneTarget, localDir: string, dest: string, names: string[], common: string[], what: string, log: Logger): Promise<RcloneStats> {
  if (names.length === 0) return { bytes: 0, transfers: 0, checks: 0, errors: 0, elapsedTime: 0 };
  return withFileList(names, async (list) => (await rclone(target, ['copy', localDir, dest, '--checksum', ...list, ...common], what, log, { progress: true })).stats);
}

/**
 * Server-side copies of `names` from one prefix to another: no data through this machine. Keystone's access rules
 * cannot allow Swift's COPY, so an access-ruled credential is refused (401/403): then false, and the caller
 * uploads instead.
 */
export async function copyServerSide(target: RcloneTarget, from: string, to: string, names: string[], common: string[], log: Logger): Promise<boolean> {
  if (names.length === 0) return true;
  try {
    await withFileList(names, (list) => rclone(target, ['copy', from, to, '--checksum', ...list, '--retries', '1', '--low-level-retries', '1', ...common], 'copy unchanged objects (server-side)', log, { progress: true, quiet: true }));
    return true;
  } catch (e) {
    if (e instanceof RcloneError && /\b40[13]\b|unauthori[sz]ed|forbidden/i.test(e.output)) {
      log.warn('the object store refused the server-side copy (an access-ruled credential cannot use COPY); uploading those files instead');
      return false;
    }
    throw e;
  }
}

/** Deletes exactly these objects (full names under the root); ones already gone are fine. */
export async function deleteObjects(target: RcloneTarget, root: string, names: string[], common: string[], what: string, log: Logger): Promise<void> {
  if (names.length === 0) return;
  await withFileList(names, (list) => rclone(target, ['delete', root, ...list, ...common], what, log)).catch((e: unknown) => {
    if (!(e instanceof RcloneError && e.notFound)) throw e;
  });
}

/** rclone arguments that limit a command to these names (relative to its source), through a list file. */
export async function withFileList<T>(names: readonly string[], f: (args: string[]) => Promise<T>): Promise<T> {
  const text = fileListText(names);
  return withTempDir('load-list-', async (dir) => {
    const list = join(dir, 'files.txt');
    writeFileSync(list, text);
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
