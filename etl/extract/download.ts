import { createHash } from 'node:crypto';
import { createReadStream, existsSync, renameSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { EtlError } from '../errors';
import type { Logger } from '../log';

export interface DownloadOptions {
  url: string;
  dest: string;
  retries: number;
  log: Logger;
  /** Base of the exponential backoff between attempts. */
  backoffMs?: number;
}

/** Exponential backoff with a cap: 0.5 s, 1 s, 2 s, ... up to 30 s. */
export function backoffDelay(attempt: number, baseMs = 500): number {
  return Math.min(30_000, baseMs * 2 ** attempt);
}

/** "MD5 (ml-32m.zip) = abc..." (BSD) or "abc...  ml-32m.zip" (coreutils) -> the hex digest. */
export function parseChecksumFile(text: string): string | undefined {
  const m = /([a-f0-9]{32,64})/i.exec(text);
  return m ? m[1].toLowerCase() : undefined;
}

export async function fileDigest(path: string, algorithm: 'md5' | 'sha256'): Promise<string> {
  const hash = createHash(algorithm);
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

function formatRate(bytes: number, seconds: number, total?: number, done?: number): string {
  const rate = bytes / Math.max(seconds, 1e-3);
  const eta = total && done !== undefined && rate > 0 ? ` ETA ${Math.max(0, (total - done) / rate).toFixed(0)}s` : '';
  return `${(rate / 1e6).toFixed(1)} MB/s${eta}`;
}

/**
 * Downloads `url` to `dest` through `dest.part`: an interrupted download resumes from where it stopped
 * (HTTP Range), transient failures are retried with backoff, and the size the server announced is checked
 * before the file takes its final name.
 */
export async function download(o: DownloadOptions): Promise<{ bytes: number; resumedFrom: number }> {
  const part = `${o.dest}.part`;
  let lastError: unknown;
  const firstOffset = existsSync(part) ? statSync(part).size : 0;
  for (let attempt = 0; attempt <= o.retries; attempt++) {
    if (attempt > 0) {
      const delay = backoffDelay(attempt - 1, o.backoffMs);
      o.log.warn(`download interrupted (${(lastError as Error).message}); retry ${attempt}/${o.retries} in ${(delay / 1000).toFixed(1)}s`);
      await new Promise((r) => setTimeout(r, delay));
    }
    const offset = existsSync(part) ? statSync(part).size : 0;
    try {
      const res = await fetch(o.url, { headers: offset > 0 ? { range: `bytes=${offset}-` } : {} });
      if (res.status === 416) {
        // The part file already holds everything.
        renameSync(part, o.dest);
        return { bytes: offset, resumedFrom: firstOffset };
      }
      if (res.status === 404 || res.status === 403 || res.status === 401) {
        throw new EtlError(`download of ${o.url} failed: HTTP ${res.status}`, 'Check --url, or give a local copy with --source.');
      }
      if (res.status !== 200 && res.status !== 206) throw new Error(`HTTP ${res.status}`);
      const resuming = res.status === 206;
      const start = resuming ? offset : 0;
      const length = Number(res.headers.get('content-length') ?? NaN);
      const total = Number.isFinite(length) ? start + length : undefined;
      if (resuming && offset > 0) o.log.info(`resuming download at ${(offset / 1e6).toFixed(1)} MB`);
      const fh = await open(part, resuming ? 'a' : 'w');
      let done = start;
      const t0 = Date.now();
      let lastReport = 0;
      try {
        if (!res.body) throw new Error('empty response');
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          await fh.write(chunk);
          done += chunk.length;
          const now = Date.now();
          if (now - lastReport > 1000) {
            lastReport = now;
            const pct = total ? ` ${((100 * done) / total).toFixed(0)}%` : '';
            o.log.progress(`  download${pct} ${(done / 1e6).toFixed(1)} MB ${formatRate(done - start, (now - t0) / 1000, total, done)}`);
          }
        }
      } finally {
        await fh.close();
      }
      if (total !== undefined && done !== total) throw new Error(`got ${done} of ${total} bytes`);
      renameSync(part, o.dest);
      return { bytes: done, resumedFrom: firstOffset };
    } catch (e) {
      if (e instanceof EtlError) throw e;
      lastError = e;
    }
  }
  throw new EtlError(
    `download of ${o.url} failed after ${o.retries + 1} attempts: ${(lastError as Error).message}`,
    'Rerun the same command to resume, or download the file yourself and pass --source <file>.',
  );
}

/** The checksum published beside the file (`<url>.md5`), if the server has one. */
export async function publishedMd5(url: string): Promise<string | undefined> {
  try {
    const res = await fetch(`${url}.md5`);
    if (res.status !== 200) return undefined;
    return parseChecksumFile(await res.text());
  } catch {
    return undefined;
  }
}
