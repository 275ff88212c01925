import { parse } from 'csv-parse';
import { closeSync, createReadStream, openSync, writeFileSync, writeSync } from 'node:fs';
import { basename } from 'node:path';
import { EtlError } from '../errors';
import { EXPECTED_HEADER } from './header';
import { splitOf, type SplitThresholds } from './split';

/**
 * The straightforward implementation: csv-parse for every row, JavaScript Sets and Maps for the ids, the same
 * split rule. Slow (about 30x the fast path) but obviously right; tests require the fast path to produce
 * byte-identical files, and the benchmark measures the gap. Its memory grows with distinct ids (the Sets and
 * Maps), not with rows: output is written in batches as it goes.
 */
function parser(path: string, info: boolean) {
  return createReadStream(path).pipe(
    parse({ bom: true, skip_empty_lines: true, relax_quotes: false, record_delimiter: ['\r\n', '\n'], info }),
  );
}

/** Data records (the header checked and dropped). csv-parse's per-record `info` costs 2.7x, so it is not asked for. */
async function* records(path: string): AsyncGenerator<string[]> {
  let first = true;
  try {
    for await (const record of parser(path, false) as AsyncIterable<string[]>) {
      if (first) {
        first = false;
        if (record.join(',') !== EXPECTED_HEADER.join(','))
          throw new EtlError(`${basename(path)} line 1: expected the header ${EXPECTED_HEADER.join(',')}`);
        continue;
      }
      yield record;
    }
  } catch (e) {
    if (e instanceof EtlError) throw e;
    const line = (e as { lines?: number }).lines;
    throw new EtlError(
      `${basename(path)}${line ? ` line ${line}` : ''}: ${(e as Error).message}`,
      'Each row must be userId,movieId,rating,timestamp.',
    );
  }
  if (first) throw new EtlError(`${basename(path)} is empty`);
}

/** The line of data record `index` (0-based): parsed again, with line numbers, only when a record was refused. */
async function lineOf(path: string, index: number): Promise<number> {
  let i = -1; // the header
  for await (const { info } of parser(path, true) as AsyncIterable<{ info: { lines: number } }>) if (i++ === index) return info.lines;
  return 0;
}

const WHOLE = /^\d+$/;
const DECIMAL = /^(\d+|\d*\.\d+)$/;

/** Why a record is not a rating, or undefined. */
function fault(r: string[]): string | undefined {
  if (r.length !== 4) return `${r.length} fields, expected 4 (userId,movieId,rating,timestamp)`;
  const [u, m, rating, ts] = r;
  if (!WHOLE.test(u) || Number(u) > 2147483647) return `userId is not a valid number: ${JSON.stringify(u)}`;
  if (!WHOLE.test(m) || Number(m) > 2147483647) return `movieId is not a valid number: ${JSON.stringify(m)}`;
  if (!DECIMAL.test(rating)) return `rating is not a valid number: ${JSON.stringify(rating)}`;
  if (!WHOLE.test(ts)) return `timestamp is not a valid number: ${JSON.stringify(ts)}`;
  return undefined;
}

export interface ReferenceResult {
  rows: number;
  users: number;
  items: number;
  splitRows: [number, number, number];
}

export async function referenceTransform(
  path: string,
  t: SplitThresholds,
  outFiles: [string, string, string],
  mapFiles: { users: string; items: string },
): Promise<ReferenceResult> {
  const users = new Set<number>();
  const items = new Set<number>();
  let index = 0;
  for await (const record of records(path)) {
    const why = fault(record);
    if (why)
      throw new EtlError(
        `${basename(path)} line ${await lineOf(path, index)}: ${why}`,
        'Each row must be userId,movieId,rating,timestamp.',
      );
    users.add(Number(record[0]));
    items.add(Number(record[1]));
    index++;
  }
  if (users.size === 0) throw new EtlError(`${basename(path)} has a header but no ratings`);
  const dense = (ids: Set<number>) => new Map([...ids].sort((a, b) => a - b).map((id, i) => [id, i + 1]));
  const du = dense(users);
  const di = dense(items);
  const fds = outFiles.map((f) => openSync(f, 'w'));
  const parts: string[][] = [[], [], []];
  const counts: [number, number, number] = [0, 0, 0];
  const flush = (s: number) => {
    writeSync(fds[s], parts[s].join(''));
    parts[s] = [];
  };
  let row = 0;
  try {
    for await (const record of records(path)) {
      const s = splitOf(row++, t);
      parts[s].push(`${du.get(Number(record[0]))}\t${di.get(Number(record[1]))}\n`);
      counts[s]++;
      if (parts[s].length >= 65536) flush(s);
    }
    for (let s = 0; s < 3; s++) flush(s);
  } finally {
    fds.forEach((fd) => closeSync(fd));
  }
  writeFileSync(mapFiles.users, [...du].map(([o, d]) => `${o}\t${d}\n`).join(''));
  writeFileSync(mapFiles.items, [...di].map(([o, d]) => `${o}\t${d}\n`).join(''));
  return { rows: row, users: du.size, items: di.size, splitRows: counts };
}
