import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { EtlError } from '../errors';
import { processAlive } from '../lock-owner';
import type { Logger } from '../log';
import { writeJsonAtomic } from '../manifest';
import { rcOf } from './container-ops';
import type { RcloneTarget } from './rclone';
import { RcloneError } from './rclone-errors';

/**
 * The container's load lock: one object, created only if absent, that expires by itself. Two loads into one
 * container (two nodes, or a node and a laptop) would otherwise interleave their pointer writes and deletions.
 *
 * - Exclusive: Swift honours `If-None-Match: *` on an object PUT (412 when it exists), sent by rclone's
 *   --header-upload. Swift checks it when a PUT arrives, so two PUTs in the same instant can both pass (80-97 of 100
 *   simultaneous pairs here): the lock is read back once the other one has surely landed (settleMs), and only the
 *   holder of the random token it then holds goes on.
 * - Stale by lease, not by hostname + pid (two nodes of a team share a hostname, and pids repeat across
 *   machines and namespaces): the object carries `X-Delete-After`, and Swift itself answers 404 for it, and lets a
 *   conditional PUT create it again, once the lease has run out, by its own clock. Nobody deletes somebody else's
 *   stale lock, so two loads cannot both "clean it up" (Swift ignores `If-Match` on DELETE and PUT, so a
 *   conditional delete is not to be had: load.e2e's "what the lock relies on in Swift"). The holder renews the lease while it works and writes nothing more once
 *   half a lease has passed without a confirmed renewal.
 * - A lock of a killed load from the same work dir is known by its token (recorded beside the work dir's
 *   manifests) and is taken over at once instead of after the lease.
 *
 * Unverified on Ceph RGW: If-None-Match on its Swift API, and X-Delete-After (RGW documents Swift object expiry).
 */
export const LOAD_LOCK_OBJECT = '.load-lock';

/** Exit status of a load refused because another one holds the container (EX_TEMPFAIL: try again later). */
export const LOCK_HELD_EXIT = 75;

export const DEFAULT_LEASE_SECONDS = 60;

/**
 * How long the lock settles before it is read back, given how long our own create took (ms, send to 201).
 *
 * A PUT that passed If-None-Match alongside ours had been checked before ours was written, so what is left of it
 * when ours returns is at most its own write: less than a whole PUT of the same tiny object on the same server at
 * the same moment, which is what ours just measured. Simultaneous pairs here (docs/benchmarks.md): the later one
 * answered at most 25 ms after the earlier, at a median PUT of 42 ms (two cores kept busy), 15 ms at 24 ms (quiet).
 * Four times our own, never under 200 ms (a scheduling hiccup of a busy machine), and never more than a quarter
 * of the lease (the renewals must still come in time). A fixed wait is too long on a quiet store and too short on
 * a slow one: on a store that answers in 2 s this one waits 8 s.
 */
export function settleMs(createMs: number, leaseSeconds: number): number {
  const ms = Number.isFinite(createMs) && createMs > 0 ? createMs : 0;
  return Math.round(Math.min(Math.max(4 * ms, 200), (leaseSeconds * 1000) / 4));
}

export interface ContainerLock {
  /** Throws (exit 75) unless a renewal was confirmed recently enough that the lease cannot have run out. */
  assertHeld(): void;
  /** Removes the lock if it is still ours; false when it is left (to expire, or because it is another's). */
  release(): Promise<boolean>;
}

/** What the lock object holds. */
export interface LockBody {
  token: string;
  host: string;
  pid: number;
  since: string;
  leaseSeconds: number;
}

export function describeHolder(b: LockBody | undefined): string {
  return b ? `pid ${b.pid} on ${b.host} since ${b.since}, lease ${b.leaseSeconds}s` : 'unknown holder';
}

export function parseLockBody(text: string): LockBody | undefined {
  try {
    const o = JSON.parse(text) as Partial<LockBody>;
    return o && typeof o.token === 'string' ? (o as LockBody) : undefined;
  } catch {
    return undefined;
  }
}

export function isPreconditionFailed(e: unknown): boolean {
  return e instanceof RcloneError && /\b412\b|precondition failed/i.test(e.output);
}

interface LocalRecord {
  token: string;
  pid: number;
  container: string;
}

export interface LockOptions {
  breakLock?: boolean;
  log: Logger;
  /** Where this work dir records the token of the lock it takes (so a killed run's lock is known as ours). */
  recordPath: string;
  leaseSeconds?: number;
  /** For tests: a fixed settle instead of the one measured (settleMs()). */
  settleMs?: number;
  /**
   * Reads to do while the lock settles (after it was created, before it is read back): they run under the lock
   * if it turns out ours, and their result is dropped if it does not. Nothing may be written in them.
   */
  whileSettling?: () => Promise<unknown>;
  /** For tests: what the lock says about who holds it. */
  host?: string;
}

/** The lock object's text, or undefined when there is none (Swift answers 404 once its lease ran out). */
async function readLock(target: RcloneTarget, object: string): Promise<LockBody | undefined> {
  try {
    const text = await rcOf(target).cat(object, 'read the load lock');
    return text.trim() ? (parseLockBody(text) ?? { token: '?', host: '?', pid: 0, since: '?', leaseSeconds: 0 }) : undefined;
  } catch (e) {
    if (e instanceof RcloneError && e.notFound) return undefined;
    throw e;
  }
}

async function removeLock(target: RcloneTarget, object: string): Promise<void> {
  await rcOf(target)
    .deleteFile(object, 'remove the load lock')
    .catch((e: unknown) => {
      if (!(e instanceof RcloneError && e.notFound)) throw e;
    });
}

function readRecord(recordPath: string): LocalRecord | 'unreadable' | undefined {
  let text: string;
  try {
    text = readFileSync(recordPath, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const r = JSON.parse(text) as LocalRecord;
    return r && typeof r.token === 'string' && typeof r.pid === 'number' ? r : 'unreadable';
  } catch {
    return 'unreadable';
  }
}

/**
 * The one rule for "a lock that a killed load of this work dir left": the work dir's record names its token,
 * this container, and a pid that is neither alive nor ours (ours: a new process that happens to get the killed
 * one's pid has taken no lock yet, but might in another namespace share it with a live load). Then the lock is
 * removed at once instead of after its lease, and the record with it. A record that no longer matches the
 * container's lock (gone, or another's) is dropped; one of a live load is left alone.
 *
 * Used by the skip path (a skip clears it) and by acquireContainerLock (a load takes it over). `holder`: the lock
 * as just read, when the caller has it. Returns true when it removed the lock.
 */
export async function clearOwnKilledLock(
  target: RcloneTarget,
  root: string,
  container: string,
  o: { recordPath: string; log: Logger; holder?: LockBody | null; takingOver?: boolean },
): Promise<boolean> {
  const rec = readRecord(o.recordPath);
  if (rec === undefined) return false;
  if (rec === 'unreadable') {
    rmSync(o.recordPath, { force: true });
    return false;
  }
  if (rec.container !== container) return false;
  if (rec.pid === process.pid || processAlive(rec.pid)) return false;
  const object = `${root}/${LOAD_LOCK_OBJECT}`;
  let holder: LockBody | undefined;
  try {
    holder = o.holder === undefined ? await readLock(target, object) : (o.holder ?? undefined);
  } catch {
    // Unknown whether it is still ours: keep the record, so a later load can still take the lock over.
    return false;
  }
  if (holder?.token !== rec.token) {
    rmSync(o.recordPath, { force: true });
    return false;
  }
  o.log.warn(
    `${o.takingOver ? 'taking over' : 'removing'} the load lock on ${container} left by a killed load of this work dir ` +
      `(${describeHolder(holder)})`,
  );
  await removeLock(target, object);
  rmSync(o.recordPath, { force: true });
  return true;
}

export async function acquireContainerLock(target: RcloneTarget, root: string, container: string, o: LockOptions): Promise<ContainerLock> {
  const lease = o.leaseSeconds ?? DEFAULT_LEASE_SECONDS;
  if (!(lease >= 10)) throw new EtlError(`--lock-lease must be at least 10 s, not ${lease}`);
  const object = `${root}/${LOAD_LOCK_OBJECT}`;
  const body: LockBody = {
    token: randomBytes(16).toString('hex'),
    host: o.host ?? hostname(),
    pid: process.pid,
    since: new Date().toISOString(),
    leaseSeconds: lease,
  };
  const text = `${JSON.stringify(body)}\n`;
  const rc = rcOf(target);
  const expiry = { 'X-Delete-After': String(lease) };

  const read = () => readLock(target, object);
  const remove = () => removeLock(target, object);
  const create = async (): Promise<boolean> => {
    try {
      await rc.put(object, text, 'take the load lock', { headers: { 'If-None-Match': '*', ...expiry }, lowLevelRetries: 1 });
      return true;
    } catch (e) {
      if (isPreconditionFailed(e)) return false;
      throw e;
    }
  };
  const refuse = (holder: LockBody | undefined, how?: string) =>
    new EtlError(
      `another load into container ${container} is running (${describeHolder(holder)}${how ? `; ${how}` : ''})`,
      `Wait for it to finish: loads into one container take turns. A lock of a load that was killed expires by itself ` +
        `${lease} s after its last renewal; to remove it at once, rerun with --break-lock. The lock is the ` +
        `object ${LOAD_LOCK_OBJECT} in the container.`,
      LOCK_HELD_EXIT,
    );

  if (o.breakLock) {
    const holder = await read();
    if (holder) o.log.warn(`--break-lock: removing the load lock on ${container} (${describeHolder(holder)})`);
    await remove();
  }
  // A lock that a killed load of this work dir left is taken over before ours is recorded (the record names it).
  if (!o.breakLock) await clearOwnKilledLock(target, root, container, { recordPath: o.recordPath, log: o.log, takingOver: true });
  // Recorded before it is taken: a load killed between the PUT and the record would leave a lock that nobody
  // knows as its own, and every load would be refused until the lease ran out.
  await writeJsonAtomic(o.recordPath, { token: body.token, pid: process.pid, container } satisfies LocalRecord).catch((e: unknown) => {
    throw new EtlError(
      `cannot record the load lock in ${o.recordPath} (${(e as Error).message}); nothing was taken or written`,
      `Make ${dirname(o.recordPath)} writable (and ${o.recordPath} a file, if it exists), then rerun.`,
    );
  });
  // The lease runs from when Swift received the PUT that created (or last renewed) the lock, which is after the
  // moment we sent it: timing from the send is the safe side.
  let sent = 0;
  let took = 0;
  const timedCreate = async () => {
    sent = performance.now();
    const ok = await create();
    took = performance.now() - sent;
    return ok;
  };
  if (!(await timedCreate())) {
    // Held, or held a moment ago and expired since (then a second try may take it).
    const holder = await read();
    if (holder || !(await timedCreate())) {
      const rec = readRecord(o.recordPath);
      if (typeof rec === 'object' && rec.token === body.token) rmSync(o.recordPath, { force: true });
      throw refuse(holder ?? (await read()));
    }
  }
  let confirmed = sent;
  // Reads the caller needs anyway run while the lock settles: the wait costs nothing then.
  const meanwhile = o.whileSettling?.();
  meanwhile?.catch(() => undefined);
  await new Promise((r) => setTimeout(r, o.settleMs ?? settleMs(took, lease)));
  const now = await read();
  if (now?.token !== body.token) {
    // Both creates passed: the other one landed after ours and is the lock now.
    throw refuse(now, 'created in the same instant as ours; it holds the lock');
  }
  try {
    await meanwhile;
  } catch (e) {
    // Ours, and nothing was written under it: removed at once, not left to its lease.
    await remove().then(
      () => rmSync(o.recordPath, { force: true }),
      () => undefined,
    );
    throw e;
  }

  // While less than half the lease has passed since the last confirmed write, the lock cannot have expired, so no
  // other load can hold it and a plain overwrite renews it safely (no read first: one rclone process per renewal).
  // Past half the lease it is not renewed again, and every later write is refused: the lock may have passed on.
  const safe = (lease * 1000) / 2;
  let lost: string | undefined;
  let renewing = false;
  const timer = setInterval(
    () => {
      if (renewing || lost) return;
      const started = performance.now();
      if (started - confirmed >= safe) {
        lost = `its lease was last renewed ${((started - confirmed) / 1000).toFixed(0)} s ago (lease ${lease} s)`;
        return;
      }
      renewing = true;
      rc.put(object, text, 'renew the load lock', { headers: expiry, lowLevelRetries: 1 })
        .then(() => {
          confirmed = started;
        })
        .catch((e: unknown) =>
          o.log.warn(`could not renew the load lock on ${container} (${(e as Error).message.split('\n')[0]}); retrying`),
        )
        .finally(() => {
          renewing = false;
        });
    },
    (lease * 1000) / 8,
  );
  timer.unref();

  const assertHeld = () => {
    const age = performance.now() - confirmed;
    const why = lost ?? (age >= safe ? `its lease was last renewed ${(age / 1000).toFixed(0)} s ago (lease ${lease} s)` : undefined);
    if (why) {
      throw new EtlError(
        `lost the load lock on container ${container}: ${why}; nothing more is written`,
        'The current dataset is as it was. Rerun the load: what was uploaded is reused.',
        LOCK_HELD_EXIT,
      );
    }
  };
  return {
    assertHeld,
    async release() {
      clearInterval(timer);
      // Surely ours (a recent confirmed write): remove it. Not sure (renewals ran late on a busy machine): remove
      // it only if it still holds our token, which Swift shows only while our lease runs; else leave it to expire.
      try {
        let ours = true;
        try {
          assertHeld();
        } catch {
          ours = (await read())?.token === body.token;
        }
        if (ours) {
          await remove();
          return true;
        }
        o.log.warn(`left the load lock on ${container} alone: it is no longer ours`);
        return false;
      } catch (e) {
        o.log.warn(
          `left the load lock on ${container} to expire (${(e as Error).message.split('\n')[0]}); the next load from this ` +
            `work dir takes it over`,
        );
        return false;
      }
    },
  };
}
