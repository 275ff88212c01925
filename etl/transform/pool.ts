import { Worker } from 'node:worker_threads';
import { newScanState, newSplitWork, scanLines, scanRange, splitRange } from './kernels';

/**
 * Worker threads for the two passes. The workers' code is the kernels' own source (Function.prototype.toString)
 * run with `eval: true`, so there is no second entry file: it works the same from the single-file bundle
 * (dist/etl.js), under tsx and under jest, and the main thread and the workers run the same implementation.
 */
function workerSource(): string {
  const fns = [newScanState, scanLines, scanRange, newSplitWork, splitRange];
  return `
'use strict';
// tsx (esbuild keepNames) wraps named functions in __name(); outside its module that helper must exist.
var __name = (f) => f;
const { parentPort } = require('node:worker_threads');
const fs = require('node:fs');
${fns.map((f) => f.toString()).join('\n')}
let tables = null;
let work = null;
parentPort.on('message', (msg) => {
  try {
    if (msg.type === 'scan') {
      const st = ${newScanState.name}();
      const fd = fs.openSync(msg.path, 'r');
      let pending = 0;
      try {
        ${scanRange.name}(fs.readSync, fd, msg.from, msg.to, msg.chunk, msg.maxLine, st, (bytes) => {
          pending += bytes;
          if (pending >= 64 * 1024 * 1024) {
            parentPort.postMessage({ type: 'progress', bytes: pending });
            pending = 0;
          }
        });
      } finally {
        fs.closeSync(fd);
      }
      if (pending) parentPort.postMessage({ type: 'progress', bytes: pending });
      parentPort.postMessage({ type: 'done', id: msg.id, value: st }, [st.users.buffer, st.items.buffer]);
    } else if (msg.type === 'tables') {
      tables = msg.tables;
      work = ${newSplitWork.name}(msg.maxJobBytes, msg.slots, true);
      // The output slots are shared memory: the main thread reads results in place.
      parentPort.postMessage({ type: 'done', id: msg.id, value: work.slots });
    } else if (msg.type === 'split') {
      const fd = fs.openSync(msg.path, 'r');
      let r;
      try {
        r = ${splitRange.name}(fs.readSync, fd, msg.from, msg.to, msg.firstRow, tables, work.input, work.slots[msg.slot]);
      } finally {
        fs.closeSync(fd);
      }
      parentPort.postMessage({ type: 'done', id: msg.id, value: r });
    }
  } catch (e) {
    parentPort.postMessage({ type: 'failed', id: msg.id, message: String((e && e.stack) || e) });
  }
});
`;
}

interface Pending {
  resolve(value: unknown): void;
  reject(error: Error): void;
}

export class WorkerPool {
  private readonly workers: Worker[] = [];
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private failure: Error | undefined;
  onProgress: ((bytes: number) => void) | undefined;

  constructor(readonly size: number) {
    const source = workerSource();
    for (let i = 0; i < size; i++) {
      const w = new Worker(source, { eval: true });
      w.on('message', (m: { type: string; id: number; value?: unknown; message?: string; bytes?: number }) => {
        if (m.type === 'progress') return this.onProgress?.(m.bytes!);
        const p = this.pending.get(m.id);
        this.pending.delete(m.id);
        if (m.type === 'failed') p?.reject(new Error(`transform worker: ${m.message}`));
        else p?.resolve(m.value);
      });
      w.on('error', (e) => this.fail(e));
      w.on('exit', (code) => code !== 0 && this.fail(new Error(`transform worker exited with code ${code}`)));
      this.workers.push(w);
    }
  }

  private fail(e: Error): void {
    this.failure ??= e;
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  /** Sends a request to worker `i`; a worker handles its requests in order. */
  request<T>(i: number, msg: Record<string, unknown>): Promise<T> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.workers[i].postMessage({ ...msg, id });
    });
  }

  async close(): Promise<void> {
    this.failure ??= new Error('pool closed');
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
