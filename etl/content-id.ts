import { statSync } from 'node:fs';
import { sha256InWorker } from './transform/hash-worker';

/**
 * A file's content identity (size + SHA-256), and a cheap pre-check that tells when a recorded identity can be
 * trusted without reading the file again. mtime alone is not enough: `cp -p` restores it after changing the
 * content. The change time cannot be set from user space, and every write or `cp -p` moves it, so size + mtime +
 * ctime + inode unchanged means the recorded hash still holds.
 */
export interface Fingerprint {
  bytes: number;
  mtimeMs: number;
  ctimeMs: number;
  ino: number;
}

export interface ContentId {
  bytes: number;
  sha256: string;
  fingerprint: Fingerprint;
}

export function fingerprintOf(path: string): Fingerprint {
  const s = statSync(path);
  return { bytes: s.size, mtimeMs: s.mtimeMs, ctimeMs: s.ctimeMs, ino: s.ino };
}

export function sameFingerprint(a: Fingerprint | undefined, b: Fingerprint): boolean {
  return Boolean(a) && a!.bytes === b.bytes && a!.mtimeMs === b.mtimeMs && a!.ctimeMs === b.ctimeMs && a!.ino === b.ino;
}

/** The identity of `path`, reusing `known` when its fingerprint still matches, else hashing the file. */
export async function contentId(
  path: string,
  known?: { sha256?: string; fingerprint?: Fingerprint },
): Promise<ContentId & { rehashed: boolean }> {
  const fingerprint = fingerprintOf(path);
  if (known?.sha256 && sameFingerprint(known.fingerprint, fingerprint))
    return { bytes: fingerprint.bytes, sha256: known.sha256, fingerprint, rehashed: false };
  const sha256 = await sha256InWorker(path);
  // A file that changed while it was read has no single identity.
  if (!sameFingerprint(fingerprint, fingerprintOf(path))) throw new Error(`${path} changed while it was being checksummed`);
  return { bytes: fingerprint.bytes, sha256, fingerprint, rehashed: true };
}
