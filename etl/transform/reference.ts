import { parse } from 'csv-parse';
import { createReadStream, writeFileSync } from 'node:fs';
import { EtlError } from '../errors';
import { EXPECTED_HEADER } from './header';
import { splitOf, type SplitThresholds } from './split';

/**
 * The straightforward implementation: csv-parse for every row, JavaScript Sets and Maps for the ids, the same
 * split rule. Slow (about 30x the fast path) but obviously right; tests require the fast path to produce
 * byte-identical files, and the benchmark measures the gap.
 */
async function* records(path: string): AsyncGenerator<string[]> {
  const parser = createReadStream(path).pipe(parse({ bom: true, skip_empty_lines: true, relax_quotes: false, record_delimiter: ['\r\n', '\n'] }));
  let first = true;
  for await (const record of parser as AsyncIterable<string[]>) {
    if (first) {
      first = false;
      if (record.join(',') !== EXPECTED_HEADER.join(',')) throw new EtlError(`unexpected header ${record.join(',')}`);
      continue;
    }
    yield record;
  }
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
  for await (const r of records(path)) {
    if (r.length !== 4) throw new EtlError(`row with ${r.length} fields`);
    users.add(Number(r[0]));
    items.add(Number(r[1]));
  }
  const dense = (ids: Set<number>) => new Map([...ids].sort((a, b) => a - b).map((id, i) => [id, i + 1]));
  const du = dense(users);
  const di = dense(items);
  const parts: string[][] = [[], [], []];
  let row = 0;
  for await (const r of records(path)) {
    parts[splitOf(row++, t)].push(`${du.get(Number(r[0]))}\t${di.get(Number(r[1]))}\n`);
  }
  outFiles.forEach((f, i) => writeFileSync(f, parts[i].join('')));
  writeFileSync(mapFiles.users, [...du].map(([o, d]) => `${o}\t${d}\n`).join(''));
  writeFileSync(mapFiles.items, [...di].map(([o, d]) => `${o}\t${d}\n`).join(''));
  return { rows: row, users: du.size, items: di.size, splitRows: [parts[0].length, parts[1].length, parts[2].length] };
}
