import { closeSync, fstatSync, openSync, readSync, writeSync } from 'node:fs';
import { basename } from 'node:path';
import { EtlError } from '../errors';
import { readHeader } from './header';
import { DenseIds, IdCollector } from './ids';
import type { SplitThresholds } from './split';

/**
 * The fast path: two streaming passes of a byte-level scanner over ratings.csv, memory bounded by the
 * chunk size plus one byte per possible id (not by rows). Pass 1 validates every row and collects the
 * distinct ids; pass 2 parses only the two id fields, jumps to the next line with memchr (Buffer.indexOf)
 * and writes `denseUser\tdenseItem\n` to the row's split. csv-parse reads the header (see header.ts) and is
 * the reference this is compared against, byte for byte.
 */

let CHUNK = 16 * 1024 * 1024;

/** Read-chunk size. Output never depends on it (tests run odd sizes to exercise every row-boundary case). */
export function setChunkBytes(bytes: number): void {
  CHUNK = bytes;
}
const MAX_LINE = 64 * 1024;
const NL = 10;
const CR = 13;
const COMMA = 44;
const QUOTE = 34;
const DOT = 46;

export interface ScanResult {
  bytes: number;
  rows: number;
  users: IdCollector;
  items: IdCollector;
  /** Byte offset where data rows start (after the header line). */
  dataStart: number;
}

export type Progress = (pass: 1 | 2, done: number, total: number) => void;

class LineError extends Error {
  constructor(readonly detail: string) {
    super(detail);
  }
}

/** Reads the file in chunks and calls `onLines(buf, start, end, eof)` with whole lines only. */
function forEachChunk(
  fd: number,
  from: number,
  onBytes: ((buf: Buffer, start: number, end: number) => void) | undefined,
  onLines: (buf: Buffer, start: number, end: number) => void,
): void {
  // +1: room for the sentinel after a last line that has no newline.
  const buf = Buffer.allocUnsafe(CHUNK + MAX_LINE + 1);
  let carry = 0;
  let position = from;
  for (;;) {
    const n = readSync(fd, buf, carry, CHUNK, position);
    position += n;
    if (onBytes && n > 0) onBytes(buf, carry, carry + n);
    const filled = carry + n;
    if (n === 0) {
      // A last line without a newline: a 0 byte after it ends every field scan, so nothing stale is read.
      buf[filled] = 0;
      if (filled > 0) onLines(buf, 0, filled);
      return;
    }
    const lastNl = buf.lastIndexOf(NL, filled - 1);
    if (lastNl < 0) {
      if (filled >= MAX_LINE) throw new LineError(`a line longer than ${MAX_LINE} bytes`);
      carry = filled;
      continue;
    }
    onLines(buf, 0, lastNl + 1);
    carry = filled - (lastNl + 1);
    if (carry > MAX_LINE) throw new LineError(`a line longer than ${MAX_LINE} bytes`);
    buf.copy(buf, 0, lastNl + 1, filled);
  }
}

function lineText(buf: Buffer, start: number, end: number): string {
  let e = buf.indexOf(NL, start);
  if (e < 0 || e > end) e = end;
  const text = buf.toString('utf8', start, Math.min(e, start + 80)).replace(/\r$/, '');
  return JSON.stringify(text);
}

/** Pass 1: validate every row, count rows, collect distinct ids, checksum the file. */
export function scanRatings(path: string, progress?: Progress): ScanResult {
  const fd = openSync(path, 'r');
  try {
    const total = fstatSync(fd).size;
    const header = readHeader(fd, path);
    const users = new IdCollector();
    const items = new IdCollector();
    let rows = 0;
    let line = 1; // the header
    let done = header.raw.length;
    let lastReport = 0;
    const onLines = (buf: Buffer, start: number, end: number) => {
      let pos = start;
      while (pos < end) {
        line++;
        const lineStart = pos;
        let c = buf[pos];
        if (c === NL) {
          pos++;
          continue;
        }
        if (c === CR && (pos + 1 === end || buf[pos + 1] === NL)) {
          pos += 2;
          continue;
        }
        // field 1: userId
        let q = c === QUOTE;
        if (q) pos++;
        let u = 0;
        let digitsStart = pos;
        while (pos < end && (c = buf[pos] - 48) >= 0 && c <= 9) {
          u = u * 10 + c;
          pos++;
        }
        if (pos === digitsStart || u > 2147483647) throw fieldError(path, line, buf, lineStart, end, 'userId');
        if (q) {
          if (buf[pos] !== QUOTE) throw fieldError(path, line, buf, lineStart, end, 'userId');
          pos++;
        }
        if (buf[pos] !== COMMA) throw shapeError(path, line, buf, lineStart, end, pos);
        pos++;
        // field 2: movieId
        q = buf[pos] === QUOTE;
        if (q) pos++;
        let m = 0;
        digitsStart = pos;
        while (pos < end && (c = buf[pos] - 48) >= 0 && c <= 9) {
          m = m * 10 + c;
          pos++;
        }
        if (pos === digitsStart || m > 2147483647) throw fieldError(path, line, buf, lineStart, end, 'movieId');
        if (q) {
          if (buf[pos] !== QUOTE) throw fieldError(path, line, buf, lineStart, end, 'movieId');
          pos++;
        }
        if (buf[pos] !== COMMA) throw shapeError(path, line, buf, lineStart, end, pos);
        pos++;
        // field 3: rating, a decimal number
        q = buf[pos] === QUOTE;
        if (q) pos++;
        digitsStart = pos;
        while (pos < end && (c = buf[pos] - 48) >= 0 && c <= 9) pos++;
        if (buf[pos] === DOT) {
          pos++;
          while (pos < end && (c = buf[pos] - 48) >= 0 && c <= 9) pos++;
        }
        if (pos === digitsStart || buf[pos - 1] === DOT) throw fieldError(path, line, buf, lineStart, end, 'rating');
        if (q) {
          if (buf[pos] !== QUOTE) throw fieldError(path, line, buf, lineStart, end, 'rating');
          pos++;
        }
        if (buf[pos] !== COMMA) throw shapeError(path, line, buf, lineStart, end, pos);
        pos++;
        // field 4: timestamp
        q = buf[pos] === QUOTE;
        if (q) pos++;
        digitsStart = pos;
        while (pos < end && (c = buf[pos] - 48) >= 0 && c <= 9) pos++;
        if (pos === digitsStart) throw fieldError(path, line, buf, lineStart, end, 'timestamp');
        if (q) {
          if (buf[pos] !== QUOTE) throw fieldError(path, line, buf, lineStart, end, 'timestamp');
          pos++;
        }
        if (pos < end) {
          if (buf[pos] === CR) pos++;
          if (pos < end && buf[pos] !== NL) throw shapeError(path, line, buf, lineStart, end, pos);
          pos++;
        }
        users.add(u);
        items.add(m);
        rows++;
      }
      done += end - start;
      if (progress && done - lastReport > 64 * 1024 * 1024) {
        lastReport = done;
        progress(1, done, total);
      }
    };
    try {
      forEachChunk(fd, header.raw.length, undefined, onLines);
    } catch (e) {
      if (e instanceof LineError) throw new EtlError(`${basename(path)} line ${line + 1}: ${e.detail}`, 'Is this a ratings.csv?');
      throw e;
    }
    if (rows === 0) throw new EtlError(`${basename(path)} has a header but no ratings`, 'Check that the download or the file is complete.');
    return { bytes: total, rows, users, items, dataStart: header.raw.length };
  } finally {
    closeSync(fd);
  }
}

function fieldError(path: string, line: number, buf: Buffer, start: number, end: number, field: string): EtlError {
  return new EtlError(
    `${basename(path)} line ${line}: ${field} is not a valid number: ${lineText(buf, start, end)}`,
    'Each row must be userId,movieId,rating,timestamp with whole-number ids (the previous output was left untouched).',
  );
}

function shapeError(path: string, line: number, buf: Buffer, start: number, end: number, pos: number): EtlError {
  const atEnd = pos >= end || buf[pos] === NL || buf[pos] === CR;
  return new EtlError(
    `${basename(path)} line ${line}: ${atEnd ? 'too few fields (expected 4: userId,movieId,rating,timestamp)' : 'unexpected character'}: ${lineText(buf, start, end)}`,
    atEnd && pos >= end
      ? 'The file ends in the middle of a row: it looks truncated. Download or extract it again (the previous output was left untouched).'
      : 'Each row must be userId,movieId,rating,timestamp (the previous output was left untouched).',
  );
}

/** Buffered writer of `a\tb\n` lines, digits written by hand (no string per row). */
class TsvWriter {
  private readonly buf = Buffer.allocUnsafe(1 << 20);
  private pos = 0;
  lines = 0;
  constructor(private readonly fd: number) {}

  pair(a: number, b: number): void {
    if (this.pos > this.buf.length - 32) this.flush();
    this.pos = writeUint(this.buf, this.pos, a);
    this.buf[this.pos++] = 9;
    this.pos = writeUint(this.buf, this.pos, b);
    this.buf[this.pos++] = NL;
    this.lines++;
  }

  flush(): void {
    let off = 0;
    while (off < this.pos) off += writeSync(this.fd, this.buf, off, this.pos - off);
    this.pos = 0;
  }
}

/** n is a dense id: a positive int32, so `| 0` division is exact. */
function writeUint(buf: Buffer, pos: number, n: number): number {
  const digits = n < 10 ? 1 : n < 100 ? 2 : n < 1000 ? 3 : n < 10000 ? 4 : n < 100000 ? 5 : n < 1000000 ? 6 : n < 10000000 ? 7 : n < 100000000 ? 8 : n < 1000000000 ? 9 : 10;
  let p = pos + digits;
  do {
    const q = (n / 10) | 0;
    buf[--p] = 48 + (n - q * 10);
    n = q;
  } while (n > 0);
  return pos + digits;
}

/** Pass 2: write every row's dense ids to its split. Returns rows per split. */
export function writeSplits(
  path: string,
  scan: ScanResult,
  users: DenseIds,
  items: DenseIds,
  thresholds: SplitThresholds,
  outFds: [number, number, number],
  progress?: Progress,
): [number, number, number] {
  const fd = openSync(path, 'r');
  const writers = outFds.map((f) => new TsvWriter(f)) as [TsvWriter, TsvWriter, TsvWriter];
  const [w0, w1, w2] = writers;
  try {
    let row = 0;
    let done = scan.dataStart;
    let lastReport = 0;
    const uSmall = users.small;
    const iSmall = items.small;
    const uLimit = uSmall.length;
    const iLimit = iSmall.length;
    const { t1, t2, seedMix } = thresholds;
    forEachChunk(fd, scan.dataStart, undefined, (buf, start, end) => {
      let pos = start;
      let c = 0;
      while (pos < end) {
        c = buf[pos];
        if (c === NL || c === CR) {
          pos++;
          continue;
        }
        if (c === QUOTE) pos++;
        let u = 0;
        while ((c = buf[pos] - 48) >= 0 && c <= 9) {
          u = u * 10 + c;
          pos++;
        }
        if (buf[pos] === QUOTE) pos++;
        pos++; // comma
        if (buf[pos] === QUOTE) pos++;
        let m = 0;
        while ((c = buf[pos] - 48) >= 0 && c <= 9) {
          m = m * 10 + c;
          pos++;
        }
        // The rest of the row is ~15 bytes: a JS loop beats a call into Buffer.indexOf per row.
        while (pos < end && buf[pos] !== NL) pos++;
        pos++;
        const du = u < uLimit ? uSmall[u] : users.big.get(u)!;
        const dm = m < iLimit ? iSmall[m] : items.big.get(m)!;
        // splitOf(row, thresholds), inlined: this loop runs once per rating.
        let h = (row >>> 0) ^ seedMix;
        h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
        h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
        h = (h ^ (h >>> 16)) ^ (row > 0xffffffff ? Math.floor(row / 4294967296) : 0);
        h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
        h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
        h = (h ^ (h >>> 16)) >>> 0;
        (h < t1 ? w0 : h < t2 ? w1 : w2).pair(du, dm);
        row++;
      }
      done += end - start;
      if (progress && done - lastReport > 64 * 1024 * 1024) {
        lastReport = done;
        progress(2, done, scan.bytes);
      }
    });
    for (const w of writers) w.flush();
    if (row !== scan.rows) throw new Error(`pass 2 saw ${row} rows, pass 1 ${scan.rows}: the file changed while it was read`);
    return [writers[0].lines, writers[1].lines, writers[2].lines];
  } finally {
    closeSync(fd);
  }
}
