import execa from 'execa';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ZipFile } from 'yazl';
import { EtlError } from '../../etl/errors';
import { checkDatasetUrl, download, parseChecksumFile, backoffDelay } from '../../etl/extract/download';
import { extractStage, type ExtractOptions, type ExtractResult } from '../../etl/extract/stage';
import { crc32, unsafeEntryReason } from '../../etl/extract/unzip';
import { memoryLogger } from '../../etl/log';

async function zipBuffer(entries: Record<string, string>): Promise<Buffer> {
  const zip = new ZipFile();
  for (const [name, text] of Object.entries(entries)) zip.addBuffer(Buffer.from(text), name);
  zip.end();
  const chunks: Buffer[] = [];
  for await (const c of zip.outputStream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** Serves `body` on 127.0.0.1 with Range support; the first `cuts` responses stop after `cutAfter` bytes. */
function serve(
  body: Buffer,
  opts: { cuts: number; cutAfter: number; md5?: string },
): Promise<{ url: string; server: Server; ranges: string[] }> {
  const ranges: string[] = [];
  let cuts = opts.cuts;
  const server = createServer((req, res) => {
    if (req.url?.endsWith('.md5')) {
      if (opts.md5) res.end(`MD5 (data.zip) = ${opts.md5}\n`);
      else res.writeHead(404).end();
      return;
    }
    const range = req.headers.range;
    ranges.push(range ?? 'none');
    const start = range ? Number(/bytes=(\d+)-/.exec(range)![1]) : 0;
    const part = body.subarray(start);
    res.writeHead(range ? 206 : 200, {
      'content-length': part.length,
      ...(range ? { 'content-range': `bytes ${start}-${body.length - 1}/${body.length}` } : {}),
    });
    if (cuts > 0) {
      cuts--;
      res.write(part.subarray(0, opts.cutAfter), () => res.socket?.destroy());
    } else res.end(part);
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/data.zip`, server, ranges }),
    ),
  );
}

describe('extract: download', () => {
  it('resumes an interrupted download with HTTP Range and ends with the exact bytes', async () => {
    const body = randomBytes(3_000_000);
    const { url, server, ranges } = await serve(body, { cuts: 2, cutAfter: 700_000 });
    try {
      const dest = join(mkdtempSync(join(tmpdir(), 'dl-')), 'data.zip');
      const log = memoryLogger();
      const r = await download({ url, dest, retries: 4, log, backoffMs: 10 });
      expect(readFileSync(dest).equals(body)).toBe(true);
      expect(existsSync(`${dest}.part`)).toBe(false);
      expect(ranges[0]).toBe('none');
      expect(ranges.slice(1).every((x) => x.startsWith('bytes='))).toBe(true);
      expect(r.bytes).toBe(body.length);
      expect(log.lines.some((l) => /retry 1\/4/.test(l))).toBe(true);
    } finally {
      server.close();
    }
  });

  it('gives up after the retries with a message that says how to resume', async () => {
    const { url, server } = await serve(randomBytes(100_000), { cuts: 10, cutAfter: 1000 });
    try {
      const dest = join(mkdtempSync(join(tmpdir(), 'dl-')), 'data.zip');
      await expect(download({ url, dest, retries: 1, log: memoryLogger(), backoffMs: 1 })).rejects.toThrow(/failed after 2 attempts/);
      expect(existsSync(`${dest}.part`)).toBe(true); // kept for the next run to resume
    } finally {
      server.close();
    }
  });

  it('drops a stalled connection after the idle timeout and resumes where it stopped', async () => {
    const body = randomBytes(1_000_000);
    let stalls = 1;
    const ranges: string[] = [];
    const server = createServer((req, res) => {
      ranges.push(req.headers.range ?? 'none');
      const start = req.headers.range ? Number(/bytes=(\d+)-/.exec(req.headers.range)![1]) : 0;
      res.writeHead(start ? 206 : 200, {
        'content-length': body.length - start,
        ...(start ? { 'content-range': `bytes ${start}-${body.length - 1}/${body.length}` } : {}),
      });
      if (stalls-- > 0)
        res.write(body.subarray(start, start + 300_000)); // ... and then nothing, connection open
      else res.end(body.subarray(start));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const dest = join(mkdtempSync(join(tmpdir(), 'dl-')), 'data.zip');
      const log = memoryLogger();
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/data.zip`;
      await download({ url, dest, retries: 2, log, backoffMs: 1, idleTimeoutMs: 300 });
      expect(readFileSync(dest).equals(body)).toBe(true);
      expect(ranges).toEqual(['none', 'bytes=300000-']);
      expect(log.lines.some((l) => /no data for 0.3s/.test(l))).toBe(true);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  it('starts over when the server answers a resume with other bytes than asked for', async () => {
    const body = randomBytes(500_000);
    let cuts = 1;
    const server = createServer((req, res) => {
      if (req.headers.range) {
        // a broken server: says 206 but sends from byte 10
        res.writeHead(206, { 'content-length': body.length - 10, 'content-range': `bytes 10-${body.length - 1}/${body.length}` });
        res.end(body.subarray(10));
        return;
      }
      res.writeHead(200, { 'content-length': body.length });
      if (cuts-- > 0) res.write(body.subarray(0, 100_000), () => res.socket?.destroy());
      else res.end(body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const dest = join(mkdtempSync(join(tmpdir(), 'dl-')), 'data.zip');
      const log = memoryLogger();
      await download({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/d.zip`, dest, retries: 3, log, backoffMs: 1 });
      expect(readFileSync(dest).equals(body)).toBe(true);
      expect(log.lines.some((l) => /answered a resume at byte 100000 with 'bytes 10-/.test(l))).toBe(true);
    } finally {
      server.close();
    }
  });

  it('backs off exponentially and reads both checksum file formats', () => {
    expect([0, 1, 2, 10].map((a) => backoffDelay(a))).toEqual([500, 1000, 2000, 30000]);
    expect(parseChecksumFile('MD5 (ml-32m.zip) = 6F1F4F6A8B1F0B1B2C3D4E5F60718293')).toBe('6f1f4f6a8b1f0b1b2c3d4e5f60718293');
    expect(parseChecksumFile('6f1f4f6a8b1f0b1b2c3d4e5f60718293  ml-32m.zip')).toBe('6f1f4f6a8b1f0b1b2c3d4e5f60718293');
  });
});

describe('extract: the stage', () => {
  const base = (extra: Partial<ExtractOptions>): ExtractOptions => ({ url: 'http://127.0.0.1:9/none.zip', retries: '2', ...extra });

  it('verifies the published MD5, unzips into staging/<dataset>, and skips an unchanged rerun', async () => {
    const zip = await zipBuffer({ 'ml-t/ratings.csv': 'userId,movieId,rating,timestamp\n1,2,3,4\n', 'ml-t/README.txt': 'hi' });
    const md5 = createHash('md5').update(zip).digest('hex');
    const { url, server } = await serve(zip, { cuts: 0, cutAfter: 0, md5 });
    try {
      const workDir = mkdtempSync(join(tmpdir(), 'ex-'));
      const ctx = { workDir, force: false, log: memoryLogger() };
      const r = await extractStage.run(ctx, base({ url }));
      expect(r.details).toMatchObject({
        dataset: 'ml-t',
        checksum: { algorithm: 'md5', expected: md5, from: 'published' },
        download: { status: 'downloaded' },
      });
      const sha = (t: string) => createHash('sha256').update(t).digest('hex');
      expect((r.details as unknown as ExtractResult).files.map(({ fingerprint: _f, ...f }) => f)).toEqual([
        { name: 'ratings.csv', bytes: 40, sha256: sha('userId,movieId,rating,timestamp\n1,2,3,4\n') },
        { name: 'README.txt', bytes: 2, sha256: sha('hi') },
      ]);
      expect(readFileSync(join(workDir, 'staging/ml-t/ratings.csv'), 'utf8')).toContain('1,2,3,4');
      // Progress for the long parts: the checksum pass, then each entry as it is unzipped.
      expect(ctx.log.lines).toEqual(
        expect.arrayContaining([expect.stringMatching(/^checksumming .*\.zip/), '  unzip ml-t/ratings.csv: 100% of 0 MB']),
      );
      expect((await extractStage.run(ctx, base({ url }))).status).toBe('skipped');
    } finally {
      server.close();
    }
  });

  it('refuses a zip whose checksum differs, and deletes the damaged download', async () => {
    const zip = await zipBuffer({ 'ml-t/ratings.csv': 'x' });
    const { url, server } = await serve(zip, { cuts: 0, cutAfter: 0 });
    try {
      const workDir = mkdtempSync(join(tmpdir(), 'ex-'));
      await expect(extractStage.run({ workDir, force: false, log: memoryLogger() }, base({ url, sha256: '0'.repeat(64) }))).rejects.toThrow(
        /sha256 is .* expected 0000/,
      );
      expect(readdirSync(join(workDir, 'downloads'), { recursive: true }).some((n) => String(n).endsWith('data.zip'))).toBe(false);
    } finally {
      server.close();
    }
  });

  it('refuses archive entries that would escape the staging directory, and writes nothing outside', async () => {
    // yazl will not write such a name, so the bytes are patched afterwards: "AA/" -> "../" (same length).
    const zip = await zipBuffer({ 'AA/evil.txt': 'pwned' });
    const evil = Buffer.from(zip.toString('latin1').split('AA/evil.txt').join('../evil.txt'), 'latin1');
    const dir = mkdtempSync(join(tmpdir(), 'slip-'));
    writeFileSync(join(dir, 'evil.zip'), evil);
    const workDir = join(dir, 'work');
    await expect(extractStage.run({ workDir, force: false, log: memoryLogger() }, base({ source: join(dir, 'evil.zip') }))).rejects.toThrow(
      /refusing zip entry '\.\.\/evil\.txt'/,
    );
    expect(existsSync(join(workDir, 'evil.txt'))).toBe(false);
    expect(existsSync(join(dir, 'evil.txt'))).toBe(false);
  });

  it('refuses a file whose bytes do not match the CRC-32 in the zip', async () => {
    const zip = new ZipFile();
    zip.addBuffer(Buffer.from('userId,movieId,rating,timestamp\n1,2,3,4\n'), 'ml-c/ratings.csv', { compress: false });
    zip.end();
    const chunks: Buffer[] = [];
    for await (const c of zip.outputStream) chunks.push(c as Buffer);
    const damaged = Buffer.from(Buffer.concat(chunks).toString('latin1').replace('1,2,3,4', '1,2,3,5'), 'latin1');
    const dir = mkdtempSync(join(tmpdir(), 'crc-'));
    writeFileSync(join(dir, 'ml-c.zip'), damaged);
    const workDir = join(dir, 'work');
    await expect(extractStage.run({ workDir, force: false, log: memoryLogger() }, base({ source: join(dir, 'ml-c.zip') }))).rejects.toThrow(
      /ml-c\/ratings\.csv is damaged \(CRC-32/,
    );
    expect(existsSync(join(workDir, 'staging', 'ml-c'))).toBe(false);
  });

  it('computes the CRC-32 of zip, incrementally (the fallback for Node without zlib.crc32 agrees with zlib)', () => {
    const data = randomBytes(10_000);
    for (const js of [false, true]) {
      expect(crc32(data, 0, js)).toBe(crc32(data.subarray(5000), crc32(data.subarray(0, 5000), 0, js), js));
      expect(crc32(Buffer.from('123456789'), 0, js)).toBe(0xcbf43926);
    }
    expect(crc32(data, 0, true)).toBe(crc32(data));
  });

  it.each([
    ['../x', "contains '..'"],
    ['a/../../x', "contains '..'"],
    ['/etc/passwd', 'is an absolute path'],
    ['C:/x', 'is an absolute path'],
    ['a\\..\\x', 'contains a backslash'],
  ])('names why %s is unsafe', (name, reason) => {
    expect(unsafeEntryReason(name)).toBe(reason);
  });

  it('accepts ordinary names', () => {
    expect(unsafeEntryReason('ml-32m/ratings.csv')).toBeUndefined();
  });

  it('a missing --source says what to give', async () => {
    await expect(
      extractStage.run(
        { workDir: mkdtempSync(join(tmpdir(), 'ex-')), force: false, log: memoryLogger() },
        base({ source: '/nonexistent/x.zip' }),
      ),
    ).rejects.toThrow(EtlError);
  });
});

// Issue 10, item 6: an https URL stays https, plain http needs a pinned SHA-256, and a missing checksum is an
// error unless the user accepts a size check only (--allow-unverified / etl.allowUnverified).
describe('extract: download integrity', () => {
  const base = (extra: Partial<ExtractOptions>): ExtractOptions => ({ url: 'http://127.0.0.1:9/none.zip', retries: '0', ...extra });
  const closedPort = async () => {
    const s = createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const port = (s.address() as AddressInfo).port;
    await new Promise((r) => s.close(r));
    return port;
  };

  it('refuses plain http to a host name without a pinned SHA-256, before connecting', async () => {
    const workDir = mkdtempSync(join(tmpdir(), 'ex-'));
    const url = `http://localhost:${await closedPort()}/ml-32m.zip`;
    const err = await extractStage.run({ workDir, force: false, log: memoryLogger() }, base({ url })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EtlError);
    expect((err as EtlError).message).toBe(
      `refusing to download ${url} over plain http without a pinned SHA-256: anyone on the network path could replace the zip (and its .md5)`,
    );
    expect((err as EtlError).hint).toMatch(/--sha256 <sha256sum of the zip> \(etl\.datasetSha256/);
    // With the SHA-256 pinned, or https, or a literal loopback address, the URL itself is acceptable.
    expect(() => checkDatasetUrl(url, 'a'.repeat(64))).not.toThrow();
    expect(() => checkDatasetUrl('https://files.grouplens.org/datasets/movielens/ml-32m.zip', undefined)).not.toThrow();
    expect(() => checkDatasetUrl('http://127.0.0.1:8000/x.zip', undefined)).not.toThrow();
    expect(() => checkDatasetUrl('ftp://example.org/x.zip', 'a'.repeat(64))).toThrow(/only https:\/\//);
  });

  it('no checksum given and none published: an error, unless --allow-unverified', async () => {
    const zip = await zipBuffer({ 'ml-u/ratings.csv': 'userId,movieId,rating,timestamp\n1,2,3,4\n' });
    const { url, server } = await serve(zip, { cuts: 0, cutAfter: 0 }); // .md5 answers 404
    try {
      const workDir = mkdtempSync(join(tmpdir(), 'ex-'));
      const err = await extractStage.run({ workDir, force: false, log: memoryLogger() }, base({ url })).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(EtlError);
      expect((err as EtlError).message).toBe(`cannot verify data.zip: no checksum given and none published at ${url}.md5 (HTTP 404)`);
      expect((err as EtlError).hint).toMatch(/--allow-unverified \(etl\.allowUnverified: true\)/);
      expect(existsSync(join(workDir, 'staging', 'ml-u'))).toBe(false);

      const log = memoryLogger();
      const r = await extractStage.run({ workDir, force: false, log }, base({ url, allowUnverified: true }));
      expect(r.status).toBe('done');
      expect(r.details).toMatchObject({ dataset: 'ml-u', checksum: null });
      expect(log.lines).toContain(
        `warning: no checksum published at ${url}.md5 (HTTP 404); only the size was verified (--allow-unverified)`,
      );
    } finally {
      server.close();
    }
  });

  it('refuses a redirect from https to http (and follows one that stays on https)', async () => {
    // A real TLS server on 127.0.0.1 with a certificate made here; the client runs in a child process so that
    // NODE_EXTRA_CA_CERTS (read at start-up only) makes fetch trust it.
    const dir = mkdtempSync(join(tmpdir(), 'tls-'));
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    const body = await zipBuffer({ 'ml-r/ratings.csv': 'x' });
    const plain: string[] = [];
    const http = createServer((req, res) => {
      plain.push(req.url ?? '');
      res.end(body);
    });
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    const httpUrl = `http://127.0.0.1:${(http.address() as AddressInfo).port}/data.zip`;
    const https = createHttpsServer({ key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) }, (req, res) => {
      if (req.url === '/down.zip') res.writeHead(302, { location: httpUrl }).end();
      else if (req.url === '/moved.zip') res.writeHead(301, { location: '/data.zip' }).end();
      else res.writeHead(200, { 'content-length': body.length }).end(body);
    });
    await new Promise<void>((r) => https.listen(0, '127.0.0.1', r));
    const httpsBase = `https://127.0.0.1:${(https.address() as AddressInfo).port}`;
    const client = join(dir, 'client.ts');
    writeFileSync(
      client,
      `import { download } from ${JSON.stringify(join(__dirname, '..', '..', 'etl', 'extract', 'download'))};
const noop = () => undefined;
download({ url: process.argv[2]!, dest: process.argv[3]!, retries: 0, log: { info: noop, warn: noop, progress: noop } })
  .then((r) => console.log(JSON.stringify({ ok: r.bytes })), (e) => console.log(JSON.stringify({ error: e.message, hint: e.hint })));
`,
    );
    const tsx = join(__dirname, '..', '..', 'node_modules', '.bin', 'tsx');
    const get = async (url: string) => {
      const r = await execa(tsx, [client, url, join(dir, `out-${Math.random()}.zip`)], {
        env: { NODE_EXTRA_CA_CERTS: join(dir, 'cert.pem') },
      });
      return JSON.parse(r.stdout.trim().split('\n').pop()!);
    };
    try {
      expect(await get(`${httpsBase}/moved.zip`)).toEqual({ ok: body.length });
      const refused = await get(`${httpsBase}/down.zip`);
      expect(refused.error).toBe(`refusing the redirect from ${httpsBase}/down.zip to ${httpUrl}: it leaves https for http`);
      expect(refused.hint).toMatch(/stays on https/);
      expect(plain).toEqual([]);
    } finally {
      https.close();
      http.close();
    }
  });
});
