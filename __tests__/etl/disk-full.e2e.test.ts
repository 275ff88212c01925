import execa from 'execa';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ZipFile } from 'yazl';
import { DISK_FULL_EXIT, EtlError, reportError } from '../../etl/errors';
import { SPACE_MARGIN_BYTES, declaredUncompressedBytes, spaceProblem } from '../../etl/extract/space';
import { memoryLogger } from '../../etl/log';

// Issue 10, item 7: a full disk is one clear error with one exit status (74), checked before the unzip and
// reported as such from any stage. Against real small filesystems: tmpfs mounts made (and unmounted) here.
const ROOT = join(__dirname, '..', '..');
const TSX = join(ROOT, 'node_modules', '.bin', 'tsx');
const CLI = join(ROOT, 'etl', 'cli.ts');
const work = mkdtempSync(join(tmpdir(), 'disk-full-'));
const mounts: string[] = [];

/** A fresh tmpfs of `size` (e.g. '1m'), unmounted after the file's tests. */
function tinyFs(name: string, size: string): string {
  const dir = join(work, name);
  mkdirSync(dir);
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', dir]);
  mounts.push(dir);
  return dir;
}
afterAll(() => {
  for (const m of mounts) execFileSync('umount', [m]);
  rmSync(work, { recursive: true, force: true });
});

async function zipOf(file: string, entries: Record<string, Buffer>): Promise<void> {
  const zip = new ZipFile();
  for (const [name, data] of Object.entries(entries)) zip.addBuffer(data, name);
  zip.end();
  const chunks: Buffer[] = [];
  for await (const c of zip.outputStream) chunks.push(c as Buffer);
  writeFileSync(file, Buffer.concat(chunks));
}

const etl = (args: string[]) => execa(TSX, [CLI, ...args], { cwd: ROOT, reject: false, env: { ETL_WORK_DIR: '' } });
const noStack = (text: string) => expect(text).not.toMatch(/internal error|^\s+at .+:\d+:\d+\)?$/m);

describe('spaceProblem (pure)', () => {
  test('fits: nothing to say', () => {
    expect(spaceProblem(1_000_000, 1_000_000 + SPACE_MARGIN_BYTES, '/w', 'a.zip')).toBeUndefined();
  });
  test('does not fit: needed, free, where and what to do', () => {
    const e = spaceProblem(900_000_000, 500_000_000, '/home/cc/work/staging.tmp-1', 'ml-32m.zip', 10_000_000)!;
    expect(e).toBeInstanceOf(EtlError);
    expect(e.exitCode).toBe(DISK_FULL_EXIT);
    expect(e.message).toBe(
      'disk full: not enough space to unzip ml-32m.zip: needed 900.0 MB (+ 10.0 MB headroom), free 500.0 MB in /home/cc/work/staging.tmp-1',
    );
    expect(e.hint).toMatch(/^Free at least 410\.0 MB there \(df -h \/home\/cc\/work\/staging\.tmp-1; .*--work-dir on a larger disk/);
  });
});

describe('a full disk, for real (tmpfs)', () => {
  test('extract: a zip that would inflate past the free space is refused before anything is written', async () => {
    const fs = tinyFs('extract', '24m');
    const zip = join(work, 'bomb.zip');
    // 30 MB of zeros, a few KB compressed: what a zip bomb (or ml-32m on a small disk) looks like to the check.
    await zipOf(zip, { 'ml-big/ratings.csv': Buffer.alloc(30_000_000), 'ml-big/README.txt': Buffer.from('hi') });
    expect(await declaredUncompressedBytes(zip)).toBe(30_000_002);
    const r = await etl(['extract', '--source', zip, '--work-dir', join(fs, 'work')]);
    expect(r.exitCode).toBe(DISK_FULL_EXIT);
    expect(r.stderr).toMatch(
      new RegExp(
        `error: disk full: not enough space to unzip ${zip}: needed 30\\.0 MB \\(\\+ 16\\.8 MB headroom\\), free 2[45]\\.\\d MB in ${fs}/work/staging\\.tmp-\\d+`,
      ),
    );
    expect(r.stderr).toMatch(/Free at least \d+\.\d MB there/);
    noStack(r.stderr);
    expect(execFileSync('df', ['--output=used', '-B1', fs], { encoding: 'utf8' }).split('\n')[1]!.trim()).toBe('0');

    // One that fits is extracted as before.
    const small = join(work, 'small.zip');
    await zipOf(small, { 'ml-s/ratings.csv': Buffer.from('userId,movieId,rating,timestamp\n1,2,3,4\n') });
    const ok = await etl(['extract', '--source', small, '--work-dir', join(fs, 'work')]);
    expect(ok.exitCode).toBe(0);
    expect(readdirSync(join(fs, 'work', 'staging', 'ml-s'))).toEqual(['ratings.csv']);
  });

  test('transform: ENOSPC while writing the splits is "disk full", exit 74, no stack trace', async () => {
    const fs = tinyFs('transform', '1m');
    const input = join(work, 'ratings.csv');
    const rows = Array.from({ length: 150_000 }, (_, i) => `${(i % 5000) + 1},${(i % 977) + 1},3.5,${1_000_000 + i}\n`);
    writeFileSync(input, `userId,movieId,rating,timestamp\n${rows.join('')}`);
    const r = await etl(['transform', '--input', input, '--work-dir', join(fs, 'work')]);
    expect(r.stderr).toContain(
      `error: disk full: no space left on device (ENOSPC) while running the transform stage (${join(fs, 'work')})`,
    );
    expect(r.stderr).toContain(`Free space on that filesystem (df -h ${join(fs, 'work')})`);
    noStack(r.stderr);
    expect(r.exitCode).toBe(DISK_FULL_EXIT);
  });

  test('extract: ENOSPC while downloading stops at once (no retries), exit 74', async () => {
    const fs = tinyFs('download', '1m');
    const body = Buffer.alloc(3_000_000, 7);
    const sha = createHash('sha256').update(body).digest('hex');
    let requests = 0;
    const server = createServer((_req, res) => {
      requests++;
      res.writeHead(200, { 'content-length': body.length }).end(body);
    });
    await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/ml.zip`;
      const r = await etl(['extract', '--url', url, '--sha256', sha, '--retries', '3', '--work-dir', join(fs, 'work')]);
      expect(r.stderr).toContain(`error: disk full: no space left on device (ENOSPC) while downloading ${url} (`);
      expect(r.stderr).toMatch(new RegExp(`\\(${join(fs, 'work', 'downloads')}/[0-9a-f]{12}/ml\\.zip\\.part\\)`));
      noStack(r.stderr);
      expect(r.exitCode).toBe(DISK_FULL_EXIT);
      expect(requests).toBe(1);
    } finally {
      server.close();
    }
  });
});

describe('reportError: ENOSPC from anywhere (load writes its lists and manifests with plain fs calls)', () => {
  test('a raw ENOSPC error, and one whose code was lost crossing a worker thread', () => {
    const raw = Object.assign(new Error("ENOSPC: no space left on device, write '/home/cc/work/manifests/load.json.tmp'"), {
      code: 'ENOSPC',
      path: '/home/cc/work/manifests/load.json.tmp',
    });
    for (const e of [raw, new Error("Error: ENOSPC: no space left on device, write '/home/cc/work/manifests/load.json.tmp'")]) {
      const log = memoryLogger();
      expect(reportError(e, log, true)).toBe(DISK_FULL_EXIT);
      expect(log.lines[0]).toBe('error: disk full: no space left on device (ENOSPC) while writing (/home/cc/work/manifests/load.json.tmp)');
      expect(log.lines.join('\n')).not.toMatch(/internal error|\n\s+at /);
    }
  });
});
