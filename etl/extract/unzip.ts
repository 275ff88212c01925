import { createWriteStream, mkdirSync } from 'node:fs';
import { dirname, isAbsolute, join, normalize, relative, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import yauzl from 'yauzl';
import { EtlError } from '../errors';

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

/** Extracts every file of the zip into `dir`, refusing unsafe entries before anything is written. */
export async function unzipInto(zipPath: string, dir: string): Promise<{ files: { name: string; bytes: number }[] }> {
  // yauzl's own name validation is switched off so that OUR message names the entry; the checks are ours.
  const zip = await new Promise<yauzl.ZipFile>((resolve, reject) =>
    yauzl.open(zipPath, { lazyEntries: true, validateEntrySizes: true, strictFileNames: false, decodeStrings: true }, (err, z) => (err ? reject(err) : resolve(z!))),
  ).catch((e: Error) => {
    throw new EtlError(`${zipPath} is not a readable zip: ${e.message}`, 'Delete it and run extract again to download it anew.');
  });
  const files: { name: string; bytes: number }[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      // yauzl refuses unsafe names itself too; say it in the same words as our own checks.
      zip.on('error', (e: Error) => {
        const m = /^(invalid relative path|absolute path): (.*)$/.exec(e.message);
        reject(m ? new EtlError(`refusing zip entry '${m[2]}': ${m[1]}`, 'The archive is not a genuine MovieLens zip; get it again from the official source.') : e);
      });
      zip.on('end', resolve);
      zip.on('entry', (entry: yauzl.Entry) => {
        const reason = unsafeEntryReason(entry.fileName);
        if (reason) return reject(new EtlError(`refusing zip entry '${entry.fileName}': it ${reason}`, 'The archive is not a genuine MovieLens zip; get it again from the official source.'));
        if (isSymlink(entry)) return reject(new EtlError(`refusing zip entry '${entry.fileName}': it is a symbolic link`, 'The archive is not a genuine MovieLens zip.'));
        const target = join(dir, entry.fileName);
        if (relative(dir, target).startsWith('..')) return reject(new EtlError(`refusing zip entry '${entry.fileName}'`));
        if (entry.fileName.endsWith('/')) {
          mkdirSync(target, { recursive: true });
          zip.readEntry();
          return undefined;
        }
        mkdirSync(dirname(target), { recursive: true });
        zip.openReadStream(entry, (err, stream) => {
          if (err || !stream) return reject(err);
          pipeline(stream, createWriteStream(target))
            .then(() => {
              files.push({ name: entry.fileName, bytes: entry.uncompressedSize });
              zip.readEntry();
            })
            .catch(reject);
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
