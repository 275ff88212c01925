import { EtlError } from '../errors';
import type { Logger } from '../log';
import type { RcloneStats, RcloneTarget } from './rclone';
import type { RcSession } from './rclone-rc';
import { RcloneError } from './rclone-errors';
import { nameProblem, parsePointer, POINTER_OBJECT, type ListedObject, type Pointer } from './versions';

/**
 * What the load does to the container, one rc call (or a few in parallel) each, through the load's one
 * `rclone rcd` (rclone-rc.ts). The order (and the lock around it) is the stage's (stage.ts); which objects and
 * what they must hold is versions.ts's.
 */

export function rcOf(target: RcloneTarget): RcSession {
  if (!target.rc) throw new Error('the load talks to the object store through its rclone rcd session: start one (startRcSession) first');
  return target.rc;
}

/** The container's state: does it exist, and what does its pointer say? */
export async function readPointer(
  target: RcloneTarget,
  root: string,
  o: { knownMissing?: boolean } = {},
): Promise<{ containerExists: boolean; pointer?: Pointer }> {
  const rc = rcOf(target);
  let text: string;
  try {
    // knownMissing: a HEAD a moment ago found no pointer (the login's); a GET would say the same.
    if (o.knownMissing) throw new RcloneError(new EtlError('no pointer'), 'object not found');
    text = await rc.cat(`${root}/${POINTER_OBJECT}`, 'read the dataset pointer');
  } catch (e) {
    if (!(e instanceof RcloneError && e.notFound)) throw e;
    // No pointer: an empty container, or none at all ("directory not found" when listing it).
    try {
      await rc.list(`${root}/${POINTER_OBJECT}`, 'see whether the container exists');
      return { containerExists: true };
    } catch (e2) {
      if (e2 instanceof RcloneError && e2.notFound) return { containerExists: false };
      throw e2;
    }
  }
  return { containerExists: true, pointer: parsePointer(text) };
}

/** Every object under `prefix`, with size and MD5 (Swift's ETag), from one listing: no object is read. */
export async function listPrefix(target: RcloneTarget, prefix: string): Promise<ListedObject[]> {
  try {
    return await rcOf(target).list(prefix, 'list the dataset version');
  } catch (e) {
    if (e instanceof RcloneError && e.notFound) return [];
    throw e;
  }
}

/** Writes a small JSON object in one PUT (Swift replaces an object atomically). */
export async function putJson(target: RcloneTarget, dest: string, value: unknown, what: string): Promise<void> {
  await rcOf(target).put(dest, `${JSON.stringify(value, null, 2)}\n`, what);
}

/** Uploads the files to `dest/<name>`; rclone checks each upload's MD5 against Swift's ETag. */
export async function upload(
  target: RcloneTarget,
  files: readonly { name: string; local: string }[],
  dest: string,
  parallel: number,
  what: string,
): Promise<RcloneStats> {
  if (files.length === 0) return { bytes: 0, transfers: 0, checks: 0, errors: 0, elapsedTime: 0 };
  for (const f of files) checkName(f.name);
  return rcOf(target).upload(files, dest, what, parallel);
}

/**
 * Server-side copies of `names` from one prefix to another: no data through this machine. Keystone's access rules
 * cannot allow Swift's COPY, so an access-ruled credential is refused (401/403): then false, and the caller
 * uploads instead.
 */
export async function copyServerSide(
  target: RcloneTarget,
  from: string,
  to: string,
  names: string[],
  parallel: number,
  log: Logger,
): Promise<boolean> {
  if (names.length === 0) return true;
  names.forEach(checkName);
  try {
    await rcOf(target).copy(names, from, to, 'copy unchanged objects (server-side)', parallel);
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
export async function deleteObjects(target: RcloneTarget, root: string, names: string[], parallel: number, what: string): Promise<void> {
  const rc = rcOf(target);
  names.forEach(checkName);
  let next = 0;
  const errors: unknown[] = [];
  const worker = async () => {
    while (next < names.length) {
      const n = names[next++];
      await rc.deleteFile(`${root}/${n}`, what).catch((e: unknown) => {
        if (!(e instanceof RcloneError && e.notFound)) errors.push(e);
      });
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(parallel, names.length)) }, worker));
  if (errors.length) throw errors[0];
}

/** Names travel as JSON strings in rc calls (no line-based list), but a name no listing can show is still refused. */
function checkName(n: string): void {
  const p = nameProblem(n);
  if (p) throw new Error(`refusing an object name that ${p}`);
}
