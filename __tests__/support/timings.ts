import { appendFileSync, writeFileSync } from 'node:fs';

/**
 * The phases of a long test (the VM test's boot, the cloud test's deploys): each kept in `phases`, appended to a
 * JSON-lines file as it ends (so a run cut short still leaves what it measured), and printed on stderr.
 */
export class Timings {
  readonly phases: Record<string, number> = {};
  private readonly t0 = Date.now();
  private last = Date.now();
  /** `label` starts each printed line ("vm test", "cloud test"). */
  constructor(
    private readonly file: string,
    private readonly label: string,
  ) {
    writeFileSync(file, '', { mode: 0o600 });
  }
  /** A duration measured elsewhere (cloud-init analyze, a log line). */
  record(phase: string, seconds: number): number {
    const s = Math.round(seconds * 10) / 10;
    this.phases[phase] = s;
    appendFileSync(this.file, `${JSON.stringify({ phase, seconds: s, at: new Date().toISOString() })}\n`);
    process.stderr.write(`${this.label}: ${phase}: ${s}s\n`);
    return s;
  }
  /** Seconds since the previous mark (or since `since`, a `now()`), recorded under `phase`. */
  mark(phase: string, since?: number): number {
    const now = Date.now();
    const s = this.record(phase, (now - (since ?? this.last)) / 1000);
    this.last = now;
    return s;
  }
  /** Runs fn and records how long it took. */
  async time<T>(phase: string, fn: () => Promise<T>): Promise<T> {
    const t0 = Date.now();
    try {
      return await fn();
    } finally {
      this.record(phase, (Date.now() - t0) / 1000);
    }
  }
  now(): number {
    return Date.now();
  }
  /** Whole seconds since this was made. */
  total(): number {
    return Math.round((Date.now() - this.t0) / 1000);
  }
}
