import { hostname } from 'node:os';
import { EtlError } from '../errors';
import { isStaleLocalOwner, lockOwner, processAlive } from '../lock-owner';
import type { Logger } from '../log';
import { rclone, type RcloneTarget } from './rclone';
import { RcloneError } from './rclone-errors';

/**
 * The container's load lock: one object, created only if absent. Two loads into one container (two nodes, or
 * a node and a laptop) would otherwise interleave their promotes and prunes. The node's own lock (etl/remote)
 * cannot see a run from another machine; this one lives where the data is.
 *
 * Atomic without a lock service: Swift honours `If-None-Match: *` on an object PUT and answers 412 when the
 * object exists (checked against the local Swift; unverified on Ceph RGW), and rclone sends it with
 * --header-upload.
 */
export const LOAD_LOCK_OBJECT = '.load-lock';

/** Exit status of a load refused because another one holds the container (EX_TEMPFAIL: try again later). */
export const LOCK_HELD_EXIT = 75;

export interface ContainerLock {
  release(): Promise<void>;
}

const CONDITIONAL_CREATE = ['--header-upload', 'If-None-Match: *', '--retries', '1', '--low-level-retries', '1'];

export function isPreconditionFailed(e: unknown): boolean {
  return e instanceof RcloneError && /\b412\b|precondition failed/i.test(e.output);
}

export async function acquireContainerLock(
  target: RcloneTarget,
  root: string,
  container: string,
  o: { breakLock?: boolean; log: Logger; host?: string; alive?: (pid: number) => boolean; settleMs?: number },
): Promise<ContainerLock> {
  const host = o.host ?? hostname();
  const alive = o.alive ?? processAlive;
  const object = `${root}/${LOAD_LOCK_OBJECT}`;
  const owner = lockOwner(process.pid, host, new Date());
  const readHolder = async () => {
    try {
      return (await rclone(target, ['cat', object, '--retries', '1'], 'read the load lock', o.log, { stdout: true, quiet: true })).stdout.trim();
    } catch (e) {
      if (e instanceof RcloneError && e.notFound) return '';
      throw e;
    }
  };
  const remove = () => rclone(target, ['deletefile', object, '--retries', '1'], 'remove the load lock', o.log, { quiet: true }).catch((e: unknown) => {
    if (!(e instanceof RcloneError && e.notFound)) throw e;
  });
  const tryCreate = async () => {
    try {
      await rclone(target, ['rcat', object, ...CONDITIONAL_CREATE], 'take the load lock', o.log, { input: `${owner}\n`, quiet: true });
      return true;
    } catch (e) {
      if (isPreconditionFailed(e)) return false;
      throw e;
    }
  };

  const refuse = (holder: string) =>
    new EtlError(
      `another load into container ${container} is running (${holder || 'unknown holder'})`,
      `Wait for it to finish: loads into one container take turns. If no load is running (it was killed on ` +
        `another machine), rerun with --break-lock. The lock is the object ${LOAD_LOCK_OBJECT} in the container.`,
      LOCK_HELD_EXIT,
    );

  let holder = await readHolder();
  if (holder && o.breakLock) {
    o.log.warn(`--break-lock: removing the load lock on ${container} (${holder})`);
    await remove();
  } else if (holder && isStaleLocalOwner(holder, host, alive)) {
    // A load of this machine that was killed could not release it; its process is gone.
    o.log.warn(`removing a stale load lock on ${container} (${holder}: that process is no longer running)`);
    await remove();
  } else if (holder) {
    throw refuse(holder);
  }
  if (!(await tryCreate())) throw refuse(await readHolder());
  // Swift checks If-None-Match when a PUT arrives, so two PUTs in the same instant can both pass (and a store
  // that ignored the header would let any PUT pass): the lock is ours only if it still says so a moment later.
  await new Promise((r) => setTimeout(r, o.settleMs ?? 500));
  holder = await readHolder();
  if (holder !== owner) throw refuse(holder);
  return {
    async release() {
      // Only our own lock: after a --break-lock elsewhere another load may hold it now. A failure here must not
      // hide the error that ended the load (this runs in a finally).
      try {
        if ((await readHolder()) === owner) await remove();
      } catch (e) {
        o.log.warn(`could not remove the load lock on ${container} (${(e as Error).message.split('\n')[0]}); the next load from this machine takes it over`);
      }
    },
  };
}
