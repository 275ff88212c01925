/**
 * The transform's hot loops. Every function here is SELF-CONTAINED: it refers to nothing but its parameters,
 * its own locals and JavaScript/Node globals (Buffer, Math, Set, Map). That is what lets one implementation run
 * in the main thread and, through `Function.prototype.toString()`, in worker threads (see pool.ts), from the
 * single-file bundle, under tsx and under jest alike. Do not call imported helpers or module-level constants
 * from inside these functions: a worker would not have them.
 *
 * Byte-level rules (docs/etl.md lists what is accepted):
 *   row   = field "," field "," field "," field [CR] LF     (the last row may lack CR LF)
 *   field = digits | '"' digits '"'                          (rating may hold one '.', e.g. 3.5)
 *   a line that is empty or a lone CR is blank and skipped; anything else is an error naming the line.
 */

/** Where pass 1 stopped on bad input; the caller turns it into an EtlError with the file and global line. */
export interface LineFault {
  /** 1-based line within the range (blank lines count). */
  line: number;
  kind: 'field' | 'shape' | 'long';
  field: string;
  /** Up to 80 characters of the line. */
  text: string;
  /** The row ended (end of line or end of data) before its 4 fields. */
  early: boolean;
  /** The row ended at the end of the data without a newline: a cut-off file. */
  atEof: boolean;
}

/** Pass-1 state of one byte range: ids seen, rows, lines, and where pass 2's jobs may start. */
export interface ScanState {
  /** users[id] = 1 for each user id seen below the bitmap limit. */
  users: Uint8Array;
  items: Uint8Array;
  /** Ids at or above the bitmap limit (never in MovieLens). */
  bigUsers: Set<number>;
  bigItems: Set<number>;
  rows: number;
  lines: number;
  /** Pairs (file offset of a line start, rows before it within the range): the boundaries of pass-2 jobs. */
  checkpoints: number[];
  fault: LineFault | null;
}

export function newScanState(): ScanState {
  return {
    users: new Uint8Array(1 << 16),
    items: new Uint8Array(1 << 16),
    bigUsers: new Set(),
    bigItems: new Set(),
    rows: 0,
    lines: 0,
    checkpoints: [],
    fault: null,
  };
}

/**
 * Pass 1 over whole lines buf[start, end): validate each row's shape (4 fields, numeric), count rows and lines,
 * mark the user and item ids seen. Stops at the first bad line, recording it in `st.fault`. `end` may fall after
 * a last line without a newline; buf[end] must then be readable (the caller puts a 0 there).
 */
export function scanLines(buf: Uint8Array, start: number, end: number, st: ScanState): void {
  // Nothing in the row loop is captured by a closure: captured locals would live on the heap, not in registers.
  const LIMIT = 16777216; // ids below 2^24 go to the bitmaps (one byte per possible id), larger ones to Sets
  let users = st.users;
  let items = st.items;
  let rows = st.rows;
  let line = st.lines;
  let pos = start;
  let c = 0;
  let lineStart = start;
  let bad = ''; // the field that failed, 'shape' for a missing comma or newline, or '' while all is well
  let field = 0; // the field being read, for the message when a stray character follows its digits
  while (pos < end) {
    line++;
    lineStart = pos;
    c = buf[pos];
    if (c === 10) {
      pos++;
      continue;
    }
    if (c === 13 && (pos + 1 === end || buf[pos + 1] === 10)) {
      pos += 2;
      continue;
    }
    // field 1: userId
    field = 0;
    let q = c === 34;
    if (q) pos++;
    let u = 0;
    let from = pos;
    while (pos < end && (c = buf[pos] - 48) >= 0 && c <= 9) {
      u = u * 10 + c;
      pos++;
    }
    if (pos === from || u > 2147483647 || (q && buf[pos++] !== 34)) {
      bad = 'userId';
      break;
    }
    if (pos >= end || buf[pos] !== 44) {
      bad = 'shape';
      break;
    }
    pos++;
    // field 2: movieId
    field = 1;
    q = buf[pos] === 34;
    if (q) pos++;
    let m = 0;
    from = pos;
    while (pos < end && (c = buf[pos] - 48) >= 0 && c <= 9) {
      m = m * 10 + c;
      pos++;
    }
    if (pos === from || m > 2147483647 || (q && buf[pos++] !== 34)) {
      bad = 'movieId';
      break;
    }
    if (pos >= end || buf[pos] !== 44) {
      bad = 'shape';
      break;
    }
    pos++;
    // field 3: rating, digits with at most one '.' inside or after them
    field = 2;
    q = buf[pos] === 34;
    if (q) pos++;
    from = pos;
    while (pos < end && (c = buf[pos] - 48) >= 0 && c <= 9) pos++;
    if (pos < end && buf[pos] === 46) {
      pos++;
      while (pos < end && (c = buf[pos] - 48) >= 0 && c <= 9) pos++;
    }
    if (pos === from || buf[pos - 1] === 46 || (q && buf[pos++] !== 34)) {
      bad = 'rating';
      break;
    }
    if (pos >= end || buf[pos] !== 44) {
      bad = 'shape';
      break;
    }
    pos++;
    // field 4: timestamp
    field = 3;
    q = buf[pos] === 34;
    if (q) pos++;
    from = pos;
    while (pos < end && (c = buf[pos] - 48) >= 0 && c <= 9) pos++;
    if (pos === from || (q && buf[pos++] !== 34)) {
      bad = 'timestamp';
      break;
    }
    if (pos < end) {
      if (buf[pos] === 13) pos++;
      if (pos < end && buf[pos] !== 10) {
        bad = 'shape';
        break;
      }
      pos++;
    }
    if (u < LIMIT) {
      if (u >= users.length) users = growBitmap(users, u, LIMIT);
      users[u] = 1;
    } else st.bigUsers.add(u);
    if (m < LIMIT) {
      if (m >= items.length) items = growBitmap(items, m, LIMIT);
      items[m] = 1;
    } else st.bigItems.add(m);
    rows++;
  }
  st.rows = rows;
  st.lines = line;
  st.users = users;
  st.items = items;
  if (bad) {
    // a quoted field whose closing quote is missing has had pos moved past the offending byte
    let e = lineStart;
    while (e < end && buf[e] !== 10) e++;
    let text = Buffer.from(buf.buffer, buf.byteOffset + lineStart, Math.min(e, lineStart + 80) - lineStart).toString('utf8');
    if (text.endsWith('\r')) text = text.slice(0, -1);
    const early = bad === 'shape' && (pos >= end || buf[pos] === 10 || buf[pos] === 13);
    // a stray character right after a field's digits (1x,2,...) makes that field invalid
    if (bad === 'shape' && !early && !(field === 3 && buf[pos] === 44))
      bad = field === 0 ? 'userId' : field === 1 ? 'movieId' : field === 2 ? 'rating' : 'timestamp';
    const shape = bad === 'shape';
    st.fault = {
      line,
      kind: shape ? 'shape' : 'field',
      field: shape && !early ? 'extra' : shape ? '' : bad,
      text,
      early,
      atEof: shape && pos >= end,
    };
  }

  function growBitmap(bitmap: Uint8Array, id: number, limit: number): Uint8Array {
    let size = bitmap.length;
    while (size <= id) size *= 2;
    const next = new Uint8Array(Math.min(size, limit));
    next.set(bitmap);
    return next;
  }
}

/**
 * Pass 1 over the file range [from, to), which starts at a line start and ends after a newline or at the end
 * of the file. Reads `chunkBytes` at a time and hands whole lines to scanLines; records a checkpoint at the
 * start of every chunk's lines. `readSync` is fs.readSync (a parameter, so that this function stays
 * self-contained).
 */
export function scanRange(
  readSync: (fd: number, buf: Uint8Array, off: number, len: number, pos: number) => number,
  fd: number,
  from: number,
  to: number,
  chunkBytes: number,
  maxLine: number,
  st: ScanState,
  progress: ((bytes: number) => void) | null,
): void {
  const buf = Buffer.allocUnsafe(chunkBytes + maxLine + 1);
  let carry = 0;
  let position = from;
  let filledFrom = from; // file offset of buf[0]
  for (;;) {
    const want = Math.min(chunkBytes, to - position);
    const n = want > 0 ? readSync(fd, buf, carry, want, position) : 0;
    position += n;
    const filled = carry + n;
    if (n === 0) {
      if (filled > 0) {
        // The last line has no newline: a 0 after it ends every field scan.
        buf[filled] = 0;
        st.checkpoints.push(filledFrom, st.rows);
        scanLines(buf, 0, filled, st);
      }
      return;
    }
    const lastNl = buf.lastIndexOf(10, filled - 1);
    if (lastNl < 0) {
      if (filled >= maxLine) {
        st.fault = { line: st.lines + 1, kind: 'long', field: '', text: '', early: false, atEof: false };
        return;
      }
      carry = filled;
      continue;
    }
    st.checkpoints.push(filledFrom, st.rows);
    scanLines(buf, 0, lastNl + 1, st);
    if (st.fault) return;
    if (progress) progress(lastNl + 1);
    carry = filled - (lastNl + 1);
    if (carry > maxLine) {
      st.fault = { line: st.lines + 1, kind: 'long', field: '', text: '', early: false, atEof: false };
      return;
    }
    buf.copy(buf, 0, lastNl + 1, filled);
    filledFrom += lastNl + 1;
  }
}

/** What pass 2 needs to write a row: dense id tables and the split thresholds. */
export interface SplitTables {
  /** users[originalId] = dense id (0: never seen), for ids below the bitmap limit; usually a shared buffer. */
  users: Int32Array;
  items: Int32Array;
  bigUsers: Map<number, number> | null;
  bigItems: Map<number, number> | null;
  t1: number;
  t2: number;
  seedMix: number;
}

/**
 * Reusable buffers of one pass-2 thread: the input range, and `slots` sets of one output per split. With more
 * than one slot a worker can fill the next set while the main thread still writes the previous one; `shared`
 * puts the outputs in SharedArrayBuffers the main thread reads in place (no copy, no garbage per job).
 */
export interface SplitWork {
  input: Buffer;
  slots: [Buffer, Buffer, Buffer][];
}

export function newSplitWork(maxJobBytes: number, slots: number, shared: boolean): SplitWork {
  // An output row (dense ids, tab, newline) is never longer than its input row (original ids, 3 commas, a
  // rating and a timestamp of at least one digit each; a dense id has at most one digit more than the
  // original), so an output buffer as large as the input range cannot overflow: no bounds check per row.
  const size = maxJobBytes + 64;
  const b = () => (shared ? Buffer.from(new SharedArrayBuffer(size)) : Buffer.allocUnsafe(size));
  const sets: [Buffer, Buffer, Buffer][] = [];
  for (let i = 0; i < slots; i++) sets.push([b(), b(), b()]);
  return { input: Buffer.allocUnsafe(maxJobBytes + 1), slots: sets };
}

/**
 * Pass 2 over the file range [from, to) whose first row has the global index `firstRow`: parse the two ids,
 * skip the rest of the row, and append `denseUser\tdenseItem\n` to the row's split. The split is a hash of
 * (seed, global row index) — the same as splitOf() in split.ts — so no row's fate depends on which thread or
 * chunk handled it. Returns bytes written per split and rows seen.
 */
export function splitRange(
  readSync: (fd: number, buf: Uint8Array, off: number, len: number, pos: number) => number,
  fd: number,
  from: number,
  to: number,
  firstRow: number,
  tables: SplitTables,
  input: Buffer,
  outs: [Buffer, Buffer, Buffer],
): { lengths: [number, number, number]; counts: [number, number, number]; rows: number } {
  const len = to - from;
  const buf = input;
  let got = 0;
  while (got < len) {
    const n = readSync(fd, buf, got, len - got, from + got);
    if (n <= 0) break;
    got += n;
  }
  if (got < len) return { lengths: [0, 0, 0], counts: [0, 0, 0], rows: -1 };
  buf[len] = 0; // ends the scan of a last line without a newline
  const o0 = outs[0];
  const o1 = outs[1];
  const o2 = outs[2];
  let p0 = 0;
  let p1 = 0;
  let p2 = 0;
  let n0 = 0;
  let n1 = 0;
  let n2 = 0;
  const uSmall = tables.users;
  const iSmall = tables.items;
  const uLimit = uSmall.length;
  const iLimit = iSmall.length;
  const uBig = tables.bigUsers;
  const iBig = tables.bigItems;
  const t1 = tables.t1;
  const t2 = tables.t2;
  const seedMix = tables.seedMix;
  const put = (o: Buffer, p: number, n: number) => {
    const d =
      n < 10
        ? 1
        : n < 100
          ? 2
          : n < 1000
            ? 3
            : n < 10000
              ? 4
              : n < 100000
                ? 5
                : n < 1000000
                  ? 6
                  : n < 10000000
                    ? 7
                    : n < 100000000
                      ? 8
                      : n < 1000000000
                        ? 9
                        : 10;
    let e = p + d;
    do {
      const q = (n / 10) | 0;
      o[--e] = 48 + (n - q * 10);
      n = q;
    } while (n > 0);
    return p + d;
  };
  let row = firstRow;
  let pos = 0;
  let c = 0;
  while (pos < len) {
    c = buf[pos];
    if (c === 10 || c === 13) {
      pos++;
      continue;
    }
    if (c === 34) pos++;
    let u = 0;
    while ((c = buf[pos] - 48) >= 0 && c <= 9) {
      u = u * 10 + c;
      pos++;
    }
    if (buf[pos] === 34) pos++;
    pos++; // comma
    if (buf[pos] === 34) pos++;
    let m = 0;
    while ((c = buf[pos] - 48) >= 0 && c <= 9) {
      m = m * 10 + c;
      pos++;
    }
    // The rest of the row is ~15 bytes: a JS loop beats a call into Buffer.indexOf per row.
    while (pos < len && buf[pos] !== 10) pos++;
    pos++;
    const du = u < uLimit ? uSmall[u] : uBig!.get(u)!;
    const dm = m < iLimit ? iSmall[m] : iBig!.get(m)!;
    // splitOf(row) of split.ts, inlined: murmur3's finalizer, twice, over (row, seed).
    let h = (row >>> 0) ^ seedMix;
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
    h = h ^ (h >>> 16) ^ (row > 0xffffffff ? Math.floor(row / 4294967296) : 0);
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
    h = (h ^ (h >>> 16)) >>> 0;
    if (h < t1) {
      p0 = put(o0, p0, du);
      o0[p0++] = 9;
      p0 = put(o0, p0, dm);
      o0[p0++] = 10;
      n0++;
    } else if (h < t2) {
      p1 = put(o1, p1, du);
      o1[p1++] = 9;
      p1 = put(o1, p1, dm);
      o1[p1++] = 10;
      n1++;
    } else {
      p2 = put(o2, p2, du);
      o2[p2++] = 9;
      p2 = put(o2, p2, dm);
      o2[p2++] = 10;
      n2++;
    }
    row++;
  }
  return { lengths: [p0, p1, p2], counts: [n0, n1, n2], rows: row - firstRow };
}
