import { createHash } from 'node:crypto';
import { createWriteStream, mkdirSync } from 'node:fs';
import { dirname, isAbsolute, join, normalize, relative, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import yauzl from 'yauzl';
import { diskFullError, EtlError, isDiskFull } from '../errors';
import { checkRoomToUnzip } from './space';

/** One file taken from the zip: its name in the zip, size, SHA-256 (for the manifest) and the CRC-32 it matched. */
export interface ExtractedFile {
  name: string;
  bytes: number;
  sha256: string;
}

let CRC_TABLE: Int32Array | undefined;
/** CRC-32 (zip's), incremental: zlib's native one where Node has it (>= 20.15), else a table-driven one. */
export function crc32(data: Uint8Array, crc = 0, forceJs = false): number {
  const native = (zlib as unknown as { crc32?: (d: Uint8Array, v: number) => number }).crc32;
  if (native && !forceJs) return native(data, crc);
  if (!CRC_TABLE) {
    CRC_TABLE = new Int32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      CRC_TABLE[n] = c;
    }
  }
  let c = ~crc;
  for (let i = 0; i < data.length; i++) c = CRC_TABLE[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

/**
 * Why an entry name may not be extracted, or undefined when it is safe: absolute paths, drive letters,
 * backslashes and `..` segments could write outside the staging directory ("zip slip").
 */
export function unsafeEntryReason(name: string): string | undefined {
  if (name.includes('\\')) return 'contains a backslash';
  if (isAbsolute(name) || /^[A-Za-z]:/.test(name)) return 'is an absolute path';
  if (name.split('/').includes('..')) return "contains '..'";
  const target = normalize(join('/staging', name));
  if (!target.startsWith(`/staging${sep}`) && target !== '/staging') return 'escapes the staging directory';
  return undefined;
}

function isSymlink(entry: yauzl.Entry): boolean {
  // Unix mode in the high 16 bits of the external attributes: S_IFLNK = 0o120000.
  return ((entry.externalFileAttributes >>> 16) & 0o170000) === 0o120000;
}

/**
 * Extracts every file of the zip into `dir`, refusing unsafe entries before anything is written, and checks each
 * file's CRC-32 against the zip's (yauzl checks sizes, not CRCs), so a damaged local archive is caught even when
 * no checksum of the zip was given.
 */
export async function unzipInto(
  zipPath: string,
  dir: string,
  /** Bytes of one entry written so far, of its size: for a progress line (ml-32m's ratings.csv is 877 MB). */
  onProgress?: (entry: string, done: number, total: number) => void,
  /** Entries to extract (datasetEntries); others are passed over. Default: all. */
  include?: (name: string) => boolean,
): Promise<{ files: ExtractedFile[] }> {
  // yauzl's own name validation is switched off so that OUR message names the entry; the checks are ours.
  const zip = await new Promise<yauzl.ZipFile>((resolve, reject) =>
    yauzl.open(zipPath, { lazyEntries: true, validateEntrySizes: true, strictFileNames: false, decodeStrings: true }, (err, z) =>
      err ? reject(err) : resolve(z!),
    ),
  ).catch((e: Error) => {
    throw new EtlError(`${zipPath} is not a readable zip: ${e.message}`, 'Delete it and run extract again to download it anew.');
  });
  const files: ExtractedFile[] = [];
  try {
    await checkRoomToUnzip(zipPath, dir, include); // "needed X, free Y" before the first byte is written (space.ts)
    await new Promise<void>((resolve, reject) => {
      // yauzl refuses unsafe names itself too; say it in the same words as our own checks.
      zip.on('error', (e: Error) => reject(entryError(e)));
      zip.on('end', resolve);
      zip.on('entry', (entry: yauzl.Entry) => {
        const reason = unsafeEntryReason(entry.fileName);
        if (reason)
          return reject(
            new EtlError(
              `refusing zip entry '${entry.fileName}': it ${reason}`,
              'The archive is not a genuine MovieLens zip; get it again from the official source.',
            ),
          );
        if (isSymlink(entry))
          return reject(
            new EtlError(`refusing zip entry '${entry.fileName}': it is a symbolic link`, 'The archive is not a genuine MovieLens zip.'),
          );
        const target = join(dir, entry.fileName);
        if (relative(dir, target).startsWith('..')) return reject(new EtlError(`refusing zip entry '${entry.fileName}'`));
        if (entry.fileName.endsWith('/') || (include && !include(entry.fileName))) {
          if (!include) mkdirSync(target, { recursive: true });
          zip.readEntry();
          return undefined;
        }
        mkdirSync(dirname(target), { recursive: true });
        zip.openReadStream(entry, (err, stream) => {
          if (err || !stream) return reject(err);
          const hash = createHash('sha256');
          let crc = 0;
          let done = 0;
          pipeline(
            stream,
            async function* (source: AsyncIterable<Buffer>) {
              for await (const chunk of source) {
                hash.update(chunk);
                crc = crc32(chunk, crc);
                onProgress?.(entry.fileName, (done += chunk.length), entry.uncompressedSize);
                yield chunk;
              }
            },
            createWriteStream(target),
          )
            .then(() => {
              if (crc !== entry.crc32) {
                throw new EtlError(
                  `${zipPath}: ${entry.fileName} is damaged (CRC-32 ${crc.toString(16).padStart(8, '0')}, the zip ` +
                    `says ${entry.crc32.toString(16).padStart(8, '0')})`,
                  'Delete the archive and get it again.',
                );
              }
              files.push({ name: entry.fileName, bytes: entry.uncompressedSize, sha256: hash.digest('hex') });
              zip.readEntry();
            })
            .catch((e: Error) =>
              reject(
                e instanceof EtlError
                  ? e
                  : isDiskFull(e)
                    ? diskFullError(`extracting ${entry.fileName}`, target)
                    : new EtlError(
                        `${zipPath}: cannot extract ${entry.fileName}: ${e.message}`,
                        'The archive is damaged or truncated: delete it and get it again.',
                      ),
              ),
            );
        });
        return undefined;
      });
      zip.readEntry();
    });
  } finally {
    zip.close();
  }
  return { files };
}

/** The zip's entry names, from its central directory alone: what to check before anything is written. */
export async function listEntries(zipPath: string): Promise<{ names: string[]; uncompressedBytes: number }> {
  const zip = await new Promise<yauzl.ZipFile>((resolve, reject) =>
    yauzl.open(zipPath, { lazyEntries: true, strictFileNames: false, decodeStrings: true }, (err, z) => (err ? reject(err) : resolve(z!))),
  ).catch((e: Error) => {
    throw new EtlError(`${zipPath} is not a readable zip: ${e.message}`, 'Delete it and run extract again to download it anew.');
  });
  const names: string[] = [];
  let uncompressedBytes = 0;
  try {
    await new Promise<void>((resolve, reject) => {
      zip.on('error', (e: Error) => reject(entryError(e)));
      zip.on('end', resolve);
      zip.on('entry', (entry: yauzl.Entry) => {
        names.push(entry.fileName);
        uncompressedBytes += entry.uncompressedSize;
        zip.readEntry();
      });
      zip.readEntry();
    });
  } finally {
    zip.close();
  }
  return { names, uncompressedBytes };
}

/** yauzl refuses unsafe names itself too; say it in the same words as our own checks. */
function entryError(e: Error): Error {
  const m = /^(invalid relative path|absolute path): (.*)$/.exec(e.message);
  return m
    ? new EtlError(
        `refusing zip entry '${m[2]}': ${m[1]}`,
        'The archive is not a genuine MovieLens zip; get it again from the official source.',
      )
    : e;
}
