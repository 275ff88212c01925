/**
 * Distinct ids in a bitmap indexed by id (one byte each), for ids below SMALL_LIMIT; larger ids (rare, never in
 * MovieLens) go to a Set. Memory grows with the largest id below the limit (at most 16 MiB here and 64 MiB for
 * the dense table) and with the number of distinct larger ids, never with rows. The scanner (kernels.ts) fills
 * the same structure and uses the same limit.
 */
export const SMALL_LIMIT = 1 << 24;

export class IdCollector {
  seen = new Uint8Array(1 << 16);
  big = new Set<number>();

  add(id: number): void {
    if (id < SMALL_LIMIT) {
      if (id >= this.seen.length) this.grow(id);
      this.seen[id] = 1;
    } else {
      this.big.add(id);
    }
  }

  private grow(id: number): void {
    let size = this.seen.length;
    while (size <= id) size *= 2;
    const next = new Uint8Array(Math.min(size, SMALL_LIMIT));
    next.set(this.seen);
    this.seen = next;
  }

  /** Dense 1-based ids in ascending order of the original ids, as the tutorial numbers them. */
  densify(shared = false): DenseIds {
    // The table needs to reach only the largest id seen; `shared` puts it where worker threads can read it.
    let length = this.seen.length;
    while (length > 0 && !this.seen[length - 1]) length--;
    const small = shared ? new Int32Array(new SharedArrayBuffer(4 * Math.max(1, length))) : new Int32Array(Math.max(1, length));
    let next = 0;
    for (let id = 0; id < length; id++) if (this.seen[id]) small[id] = ++next;
    const big = new Map<number, number>();
    for (const id of [...this.big].sort((a, b) => a - b)) big.set(id, ++next);
    return { small, big, count: next };
  }

  merge(other: IdCollector): void {
    if (other.seen.length > this.seen.length) this.grow(other.seen.length - 1);
    const s = this.seen;
    const o = other.seen;
    for (let i = 0; i < o.length; i++) s[i] |= o[i];
    for (const id of other.big) this.big.add(id);
  }
}

export interface DenseIds {
  small: Int32Array;
  big: Map<number, number>;
  count: number;
}

/** `original<TAB>dense` lines, ascending. */
export function mapLines(ids: DenseIds): string[] {
  const out: string[] = [];
  for (let id = 0; id < ids.small.length; id++) if (ids.small[id]) out.push(`${id}\t${ids.small[id]}\n`);
  for (const [id, dense] of ids.big) out.push(`${id}\t${dense}\n`);
  return out;
}
