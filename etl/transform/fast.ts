import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { basename } from 'node:path';
import { EtlError } from '../errors';
import { readHeader } from './header';
import { type DenseIds, IdCollector } from './ids';
import { newScanState, newSplitWork, scanRange, splitRange, type ScanState, type SplitTables } from './kernels';
import { WorkerPool } from './pool';
import type { SplitThresholds } from './split';

/**
 * The fast path: two passes of a byte-level scanner (kernels.ts) over ratings.csv, on `threads` cores.
 *
 *   pass 1  the data rows are cut into `threads` newline-aligned byte ranges, one per worker; each worker
 *           validates every row of its range, counts rows and lines, marks the ids it sees in bitmaps and notes
 *           a checkpoint (offset, row number) every chunk. The first bad line in file order is reported with
 *           its global line number; the bitmaps are OR-ed and numbered densely.
 *   pass 2  the checkpoints cut the file into chunk-sized jobs with known global first-row numbers; workers
 *           take jobs in turn and fill three output buffers each (shared memory), which the main thread writes
 *           in job order. A row's split is a hash of (seed, global row number), so the bytes written depend on
 *           neither the number of threads nor the chunk size.
 *
 * With one thread (or an input smaller than a chunk) the same kernels run in the main thread, no worker.
 * Memory: per thread one read chunk plus two sets of three output buffers of a chunk each, plus one byte per
 * possible user and item id in pass 1 and four in pass 2; never per row.
 */

let CHUNK = 4 * 1024 * 1024;
export const MAX_LINE = 64 * 1024;

/** Read-chunk size. Output never depends on it (tests run odd sizes to exercise every row-boundary case). */
export function setChunkBytes(bytes: number): void {
  CHUNK = bytes;
}

/** One thread per core, at most 4 (beyond that the disk, not the CPU, is the limit). */
export function defaultThreads(): number {
  const n = typeof availableParallelism === 'function' ? availableParallelism() : cpus().length;
  return Math.max(1, Math.min(4, n));
}

export type Progress = (pass: 1 | 2, done: number, total: number) => void;

/** Receives the output in order: `data` is the next piece of split `split` (0 training, 1 validation, 2 evaluation). */
export type SplitSink = (split: 0 | 1 | 2, data: Uint8Array) => void;

export interface FastResult {
  bytes: number;
  rows: number;
  users: DenseIds;
  items: DenseIds;
  counts: [number, number, number];
  threads: number;
  pass1Seconds: number;
  pass2Seconds: number;
}

interface Job {
  from: number;
  to: number;
  firstRow: number;
  rows: number;
}

type JobResult = { lengths: number[]; counts: number[]; rows: number };

/**
 * Cuts [from, size) into at most `n` ranges, each starting at a line start: a nominal cut moves forward to just
 * after the next newline. A cut that finds no newline within a line's length is dropped (its line is too long
 * anyway, and the scan reports that).
 */
function ranges(fd: number, from: number, size: number, n: number): [number, number][] {
  const cuts = [from];
  const probe = Buffer.allocUnsafe(MAX_LINE + 1);
  for (let k = 1; k < n; k++) {
    const nominal = from + Math.floor(((size - from) * k) / n);
    const got = readSync(fd, probe, 0, probe.length, nominal - 1);
    const nl = probe.subarray(0, got).indexOf(10);
    if (nl < 0) continue;
    const cut = nominal + nl;
    if (cut > cuts[cuts.length - 1] && cut < size) cuts.push(cut);
  }
  cuts.push(size);
  return cuts.slice(0, -1).map((c, i) => [c, cuts[i + 1]]);
}

function faultError(path: string, line: number, st: ScanState): EtlError {
  const f = st.fault!;
  const file = basename(path);
  const text = JSON.stringify(f.text);
  if (f.kind === 'long') return new EtlError(`${file} line ${line}: a line longer than ${MAX_LINE} bytes`, 'Is this a ratings.csv?');
  if (f.kind === 'field') {
    return new EtlError(
      `${file} line ${line}: ${f.field} is not a valid number: ${text}`,
      'Each row must be userId,movieId,rating,timestamp with whole-number ids (the previous output was left untouched).',
    );
  }
  const what = f.early
    ? 'too few fields (expected 4: userId,movieId,rating,timestamp)'
    : f.field === 'extra'
      ? 'too many fields (expected 4: userId,movieId,rating,timestamp)'
      : 'unexpected character';
  return new EtlError(
    `${file} line ${line}: ${what}: ${text}`,
    f.atEof
      ? 'The file ends in the middle of a row: it looks truncated. Download or extract it again (the previous output was left untouched).'
      : 'Each row must be userId,movieId,rating,timestamp (the previous output was left untouched).',
  );
}

function collector(seen: Uint8Array, big: Set<number>): IdCollector {
  const c = new IdCollector();
  c.seen = seen;
  c.big = big;
  return c;
}

export async function fastTransform(
  path: string,
  thresholds: SplitThresholds,
  sink: SplitSink,
  threads: number,
  progress?: Progress,
): Promise<FastResult> {
  const fd = openSync(path, 'r');
  let pool: WorkerPool | undefined;
  try {
    const size = fstatSync(fd).size;
    const dataStart = readHeader(fd, path).raw.length;
    const chunk = CHUNK;
    const parallel = threads > 1 && size - dataStart > chunk;
    if (parallel) pool = new WorkerPool(threads);
    const t0 = performance.now();

    // Pass 1: validate, count, collect ids, note checkpoints; one range per thread.
    const parts = ranges(fd, dataStart, size, parallel ? threads : 1);
    let scanned = dataStart;
    const report1 = (bytes: number) => {
      scanned += bytes;
      progress?.(1, scanned, size);
    };
    let states: ScanState[];
    if (pool) {
      pool.onProgress = report1;
      states = await Promise.all(
        parts.map(([from, to], i) => pool!.request<ScanState>(i % threads, { type: 'scan', path, from, to, chunk, maxLine: MAX_LINE })),
      );
    } else {
      states = parts.map(([from, to]) => {
        const st = newScanState();
        scanRange(readSync, fd, from, to, chunk, MAX_LINE, st, report1);
        return st;
      });
    }
    let line = 1; // the header
    let rows = 0;
    const users = new IdCollector();
    const items = new IdCollector();
    const jobs: Job[] = [];
    for (const st of states) {
      if (st.fault) throw faultError(path, line + st.fault.line, st);
      line += st.lines;
      const cp = st.checkpoints;
      for (let i = 0; i < cp.length; i += 2) jobs.push({ from: cp[i], to: 0, firstRow: rows + cp[i + 1], rows: 0 });
      rows += st.rows;
      users.merge(collector(st.users, st.bigUsers));
      items.merge(collector(st.items, st.bigItems));
    }
    states.length = 0;
    for (let i = 0; i < jobs.length; i++) {
      jobs[i].to = i + 1 < jobs.length ? jobs[i + 1].from : size;
      jobs[i].rows = (i + 1 < jobs.length ? jobs[i + 1].firstRow : rows) - jobs[i].firstRow;
    }
    if (rows === 0) throw new EtlError(`${basename(path)} has a header but no ratings`, 'Check that the download or the file is complete.');
    const du = users.densify(true);
    const di = items.densify(true);
    const pass1Seconds = (performance.now() - t0) / 1000;

    // Pass 2: write each row's dense ids to its split, in file order.
    const tables: SplitTables = {
      users: du.small,
      items: di.small,
      bigUsers: du.big.size ? du.big : null,
      bigItems: di.big.size ? di.big : null,
      t1: thresholds.t1,
      t2: thresholds.t2,
      seedMix: thresholds.seedMix,
    };
    const maxJobBytes = Math.max(0, ...jobs.map((j) => j.to - j.from));
    const counts: [number, number, number] = [0, 0, 0];
    let written = dataStart;
    const emit = (job: Job, r: JobResult, outs: Uint8Array[]) => {
      if (r.rows !== job.rows)
        throw new EtlError(`${basename(path)} changed while it was read`, 'Run the transform again once nothing writes to the file.');
      for (let s = 0; s < 3; s++) {
        if (r.lengths[s] > 0) sink(s as 0 | 1 | 2, outs[s].subarray(0, r.lengths[s]));
        counts[s] += r.counts[s];
      }
      written += job.to - job.from;
      progress?.(2, written, size);
    };
    if (pool) {
      const p = pool;
      // Job j goes to worker j % threads, into its output slot (j / threads) % SLOTS. Job j + window (same worker,
      // same slot) is sent only once job j has been written, so a slot is never overwritten while it is read,
      // and memory stays bounded however far one worker runs ahead.
      const SLOTS = 2;
      const window = SLOTS * threads;
      const slots = await Promise.all(
        Array.from({ length: threads }, (_, i) => p.request<Uint8Array[][]>(i, { type: 'tables', tables, maxJobBytes, slots: SLOTS })),
      );
      const results = new Map<number, Promise<JobResult>>();
      const send = (j: number) => {
        const job = jobs[j];
        const promise = p.request<JobResult>(j % threads, {
          type: 'split',
          path,
          from: job.from,
          to: job.to,
          firstRow: job.firstRow,
          slot: Math.floor(j / threads) % SLOTS,
        });
        promise.catch(() => undefined); // awaited in order below; a failure meanwhile must not go unhandled
        results.set(j, promise);
      };
      for (let j = 0; j < Math.min(window, jobs.length); j++) send(j);
      for (let j = 0; j < jobs.length; j++) {
        const r = await results.get(j)!;
        results.delete(j);
        emit(jobs[j], r, slots[j % threads][Math.floor(j / threads) % SLOTS]);
        if (j + window < jobs.length) send(j + window);
      }
    } else {
      const work = newSplitWork(maxJobBytes, 1, false);
      for (const job of jobs)
        emit(job, splitRange(readSync, fd, job.from, job.to, job.firstRow, tables, work.input, work.slots[0]), work.slots[0]);
    }
    return {
      bytes: size,
      rows,
      users: du,
      items: di,
      counts,
      threads: pool ? threads : 1,
      pass1Seconds,
      pass2Seconds: (performance.now() - t0) / 1000 - pass1Seconds,
    };
  } finally {
    closeSync(fd);
    await pool?.close();
  }
}
