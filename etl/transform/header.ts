import { parse } from 'csv-parse/sync';
import { readSync } from 'node:fs';
import { basename } from 'node:path';
import { EtlError } from '../errors';

export const EXPECTED_HEADER = ['userId', 'movieId', 'rating', 'timestamp'];

/**
 * Reads and checks the header line with csv-parse (it may be quoted, carry a BOM or end in CRLF). Returns the
 * header's raw bytes, so the scanner starts exactly after them.
 */
export function readHeader(fd: number, path: string): { raw: Buffer } {
  const probe = Buffer.alloc(4096);
  const n = readSync(fd, probe, 0, probe.length, 0);
  if (n === 0) throw new EtlError(`${basename(path)} is empty`, 'Download or extract the dataset again.');
  const nl = probe.indexOf(10);
  if (nl < 0 && n === probe.length)
    throw new EtlError(`${basename(path)} line 1: no header line`, `Expected the header ${EXPECTED_HEADER.join(',')}.`);
  const end = nl < 0 ? n : nl + 1;
  const raw = Buffer.from(probe.subarray(0, end));
  let fields: string[] = [];
  try {
    [fields = []] = parse(raw, { bom: true, relax_column_count: true }) as string[][];
  } catch {
    // falls through to the message below
  }
  if (fields.length !== 4 || fields.some((f, i) => f.trim() !== EXPECTED_HEADER[i])) {
    throw new EtlError(
      `${basename(path)} line 1: expected the header ${EXPECTED_HEADER.join(',')}, ` +
        `found ${JSON.stringify(raw.toString('utf8').trimEnd().slice(0, 80))}`,
      'Is this the ratings.csv of a MovieLens dataset? Pass the right file with --input.',
    );
  }
  return { raw };
}
