import { statfsSync } from 'node:fs';
import yauzl from 'yauzl';
import { DISK_FULL_EXIT, EtlError } from '../errors';

/**
 * Room for the unzip, checked before the first byte is written: a zip whose entries inflate past the free space
 * used to fill the disk and then fail with ENOSPC (and a hint that the archive was damaged). The sizes are the
 * ones the zip's central directory declares; yauzl (validateEntrySizes) refuses an entry that inflates past its
 * declared size, so their sum bounds what the unzip can write.
 */

/** Headroom kept free beyond the entries themselves (filesystem overhead, the manifest, logs). */
export const SPACE_MARGIN_BYTES = 16 * 1024 * 1024;

const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;

/** Pure: the error to raise when `needed` bytes do not fit in `free` bytes at `dir`, else undefined. */
export function spaceProblem(
  needed: number,
  free: number,
  dir: string,
  zipPath: string,
  margin = SPACE_MARGIN_BYTES,
): EtlError | undefined {
  if (needed + margin <= free) return undefined;
  return new EtlError(
    `disk full: not enough space to unzip ${zipPath}: needed ${mb(needed)} (+ ${mb(margin)} headroom), free ${mb(free)} in ${dir}`,
    `Free at least ${mb(needed + margin - free)} there (df -h ${dir}; delete old work directories or downloads), or use ` +
      `--work-dir on a larger disk ` +
      '(on Chameleon: a flavor with a larger disk), then rerun.',
    DISK_FULL_EXIT,
  );
}

/**
 * Sum of the uncompressed sizes the zip declares for the entries `include` takes (all by default), from its
 * central directory only: nothing is inflated.
 */
export function declaredUncompressedBytes(zipPath: string, include?: (name: string) => boolean): Promise<number> {
  return new Promise((resolve, reject) => {
    yauzl.open(zipPath, { lazyEntries: true, strictFileNames: false, decodeStrings: true }, (err, zip) => {
      if (err || !zip) return reject(err);
      let total = 0;
      zip.on('entry', (e: yauzl.Entry) => {
        if (!include || include(e.fileName)) total += e.uncompressedSize;
        zip.readEntry();
      });
      zip.on('end', () => {
        zip.close();
        resolve(total);
      });
      zip.on('error', reject);
      zip.readEntry();
    });
  });
}

/** Bytes an unprivileged writer can still use on the filesystem holding `dir`. */
export function freeBytes(dir: string): number {
  const s = statfsSync(dir);
  return Number(s.bavail) * Number(s.bsize);
}

/** Throws the "needed X, free Y" error when the zip's declared content does not fit beside `dir`. */
export async function checkRoomToUnzip(
  zipPath: string,
  dir: string,
  include?: (name: string) => boolean,
  free: (dir: string) => number = freeBytes,
): Promise<void> {
  const problem = spaceProblem(await declaredUncompressedBytes(zipPath, include), free(dir), dir, zipPath);
  if (problem) throw problem;
}
