import { existsSync, renameSync, rmSync } from 'node:fs';

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
