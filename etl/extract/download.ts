import { createHash } from 'node:crypto';
import { createReadStream, existsSync, renameSync, rmSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { diskFullError, EtlError, isDiskFull } from '../errors';
import type { Logger } from '../log';
import { isLoopbackLiteral } from '../loopback';

export interface DownloadOptions {
  url: string;
  dest: string;
  retries: number;
  log: Logger;
  /** Base of the exponential backoff between attempts. */
  backoffMs?: number;
  /** A connection that delivers nothing for this long is dropped and the download resumed (default 60 s). */
  idleTimeoutMs?: number;
}

/**
 * Whether the dataset may be fetched from `url`. Over plain http anyone on the path can swap the zip, and the
 * `<url>.md5` next to it with it, so only a checksum the user pinned can vouch for it.
 */
export function checkDatasetUrl(url: string, pinnedSha256: string | undefined): void {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new EtlError(`--url ${url} is not a URL`, 'Give the https:// URL of the MovieLens zip, or a local copy with --source.');
  }
  if (u.protocol === 'https:') return;
  if (u.protocol !== 'http:')
    throw new EtlError(
      `--url ${url}: only https:// (or http:// with --sha256) is supported`,
      'Use the https:// URL of the zip, or --source for a local file.',
    );
  if (!pinnedSha256 && !isLoopbackLiteral(u)) {
    throw new EtlError(
      `refusing to download ${url} over plain http without a pinned SHA-256: anyone on the network path could replace the ` +
        `zip (and its .md5)`,
      'Use the https:// URL, or pin the file: --sha256 <sha256sum of the zip> (etl.datasetSha256 in persist.config.yaml).',
    );
  }
}

/**
 * fetch, following redirects itself (at most 10) so that an https URL cannot end on http: that hop would be
 * exactly the plain-http download the https URL was chosen to avoid.
 */
export async function fetchNoDowngrade(url: string, init: RequestInit = {}): Promise<{ res: Response; finalUrl: string }> {
  let current = new URL(url);
  for (let hop = 0; hop <= 10; hop++) {
    const res = await fetch(current, { ...init, redirect: 'manual' });
    const location = res.headers.get('location');
    if (![301, 302, 303, 307, 308].includes(res.status) || !location) return { res, finalUrl: current.toString() };
    await res.body?.cancel().catch(() => undefined);
    const next = new URL(location, current);
    if (current.protocol === 'https:' && next.protocol !== 'https:') {
      throw new EtlError(
        `refusing the redirect from ${current} to ${next}: it leaves https for ${next.protocol.replace(':', '')}`,
        'Use a URL that stays on https (the final one, if it is https), or a local copy with --source.',
      );
    }
    current = next;
  }
  throw new EtlError(`too many redirects from ${url}`, 'Use the final URL of the zip with --url.');
}

/** "bytes 100-999/1000" -> { start: 100, total: 1000 }; total undefined for "*". */
export function parseContentRange(header: string | null): { start: number; total?: number } | undefined {
  const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(header?.trim() ?? '');
  if (!m) return undefined;
  return { start: Number(m[1]), total: m[3] === '*' ? undefined : Number(m[3]) };
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
  return (await fileDigests(path))[algorithm];
}

/** SHA-256 and MD5 of a file in one read. */
export async function fileDigests(path: string): Promise<{ sha256: string; md5: string }> {
  const sha = createHash('sha256');
  const md5 = createHash('md5');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
    sha.update(chunk as Buffer);
    md5.update(chunk as Buffer);
  }
  return { sha256: sha.digest('hex'), md5: md5.digest('hex') };
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
    // Dropped when no byte arrives for idleTimeoutMs: a stalled connection is retried, not waited on forever.
    const abort = new AbortController();
    const idleMs = o.idleTimeoutMs ?? 60_000;
    let idle = setTimeout(() => abort.abort(new Error(`no data for ${idleMs / 1000}s`)), idleMs);
    const touch = () => {
      clearTimeout(idle);
      idle = setTimeout(() => abort.abort(new Error(`no data for ${idleMs / 1000}s`)), idleMs);
    };
    try {
      const { res } = await fetchNoDowngrade(o.url, { headers: offset > 0 ? { range: `bytes=${offset}-` } : {}, signal: abort.signal });
      if (res.status === 416) {
        // Nothing left to send: the part file holds everything, if its size is the file's ("bytes */<size>").
        const size = /\*\/(\d+)/.exec(res.headers.get('content-range') ?? '')?.[1];
        await res.body?.cancel().catch(() => undefined);
        if (size === undefined || Number(size) === offset) {
          renameSync(part, o.dest);
          return { bytes: offset, resumedFrom: firstOffset };
        }
        rmSync(part, { force: true });
        throw new Error(`the partial download (${offset} bytes) does not fit the file (${size} bytes); starting over`);
      }
      if (res.status === 404 || res.status === 403 || res.status === 401) {
        throw new EtlError(`download of ${o.url} failed: HTTP ${res.status}`, 'Check --url, or give a local copy with --source.');
      }
      if (res.status !== 200 && res.status !== 206) throw new Error(`HTTP ${res.status}`);
      const resuming = res.status === 206;
      const range = resuming ? parseContentRange(res.headers.get('content-range')) : undefined;
      if (resuming && range?.start !== offset) {
        // Not the bytes asked for: start over rather than splice a wrong range into the file.
        await res.body?.cancel().catch(() => undefined);
        rmSync(part, { force: true });
        throw new Error(`the server answered a resume at byte ${offset} with '${res.headers.get('content-range')}'`);
      }
      const start = resuming ? offset : 0;
      const length = Number(res.headers.get('content-length') ?? NaN);
      const total = range?.total ?? (Number.isFinite(length) ? start + length : undefined);
      if (resuming && offset > 0) o.log.info(`resuming download at ${(offset / 1e6).toFixed(1)} MB`);
      const fh = await open(part, resuming ? 'a' : 'w');
      let done = start;
      const t0 = Date.now();
      let lastReport = 0;
      try {
        if (!res.body) throw new Error('empty response');
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          touch();
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
      // A full disk does not clear up by retrying: say so now instead of after every backoff.
      if (isDiskFull(e)) throw diskFullError(`downloading ${o.url}`, part);
      lastError = abort.signal.aborted && abort.signal.reason instanceof Error ? abort.signal.reason : e;
    } finally {
      clearTimeout(idle);
    }
  }
  throw new EtlError(
    `download of ${o.url} failed after ${o.retries + 1} attempts: ${(lastError as Error).message}`,
    'Rerun the same command to resume, or download the file yourself and pass --source <file>.',
  );
}

/**
 * The checksum published beside the file (`<url>.md5`), or why there is none: the caller decides whether a
 * size check alone is acceptable (only when the user said so). A redirect off https is refused here too.
 */
export async function publishedMd5(url: string): Promise<{ md5: string } | { missing: string }> {
  try {
    const { res } = await fetchNoDowngrade(`${url}.md5`, { signal: AbortSignal.timeout(30_000) });
    if (res.status !== 200) {
      await res.body?.cancel().catch(() => undefined);
      return { missing: `HTTP ${res.status}` };
    }
    const md5 = parseChecksumFile(await res.text());
    return md5 && md5.length === 32 ? { md5 } : { missing: 'it holds no MD5 digest' };
  } catch (e) {
    if (e instanceof EtlError) throw e;
    return { missing: (e as Error).message };
  }
}
