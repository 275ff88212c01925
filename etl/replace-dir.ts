import { existsSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { processAlive } from './lock-owner';

/**
 * Puts the finished directory `fresh` at `target`: a reader sees the old directory or the new one, never a
 * mix, and the old one is removed only once the new one is in place.
 */
export function replaceDir(fresh: string, target: string): void {
  const old = `${target}.old-${process.pid}`;
  if (existsSync(target)) renameSync(target, old);
  renameSync(fresh, target);
  rmSync(old, { recursive: true, force: true });
}

/**
 * Crash recovery for replaceDir: cleans up after a run that was killed while it built or replaced
 * `<parent>/<name>`. A `<name>.tmp-<pid>` of a process that no longer runs is removed, and a `<name>.old-<pid>`
 * is moved back to `<name>` if the kill came between the two renames (else removed). Directories of live processes are left
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
