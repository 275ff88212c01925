import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { copyFileSync, mkdtempSync, readFileSync, readdirSync, utimesSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ZipFile } from 'yazl';
import { EtlError } from '../../etl/errors';
import { datasetEntries } from '../../etl/extract/entries';
import { extractStage, type ExtractOptions } from '../../etl/extract/stage';
import { memoryLogger } from '../../etl/log';
import { transformStage, type TransformOptions } from '../../etl/transform/stage';

async function zipFile(path: string, entries: Record<string, string>): Promise<string> {
  const zip = new ZipFile();
  for (const [name, text] of Object.entries(entries)) zip.addBuffer(Buffer.from(text), name);
  zip.end();
  const chunks: Buffer[] = [];
  for await (const c of zip.outputStream) chunks.push(c as Buffer);
  writeFileSync(path, Buffer.concat(chunks));
  return path;
}

const RATINGS = 'userId,movieId,rating,timestamp\n1,2,3.5,4\n7,2,4.0,5\n';
const extractOpts = (o: Partial<ExtractOptions>): ExtractOptions => ({ url: 'https://example.invalid/ml.zip', retries: '0', ...o });
const transformOpts: TransformOptions = { seed: '42', ratios: '0.7,0.15,0.15', engine: 'fast', threads: '1' };
const refusal = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    return e as EtlError;
  }
  return undefined;
};

describe('extract: which zips make a dataset (decided from the names, before anything is written)', () => {
  it('takes the one ratings.csv of a MovieLens zip, with the top folder as the dataset', () => {
    expect(datasetEntries(['ml-32m/', 'ml-32m/ratings.csv', 'ml-32m/movies.csv', 'ml-32m/README.txt'], 'ml-32m.zip')).toEqual({
      dataset: 'ml-32m',
      ratings: 'ml-32m/ratings.csv',
      files: ['ml-32m/ratings.csv', 'ml-32m/movies.csv', 'ml-32m/README.txt'],
    });
    expect(datasetEntries(['ratings.csv', 'movies.csv'], 'mine.zip')).toEqual({
      dataset: 'mine',
      ratings: 'ratings.csv',
      files: ['ratings.csv', 'movies.csv'],
    });
  });

  it("leaves macOS's __MACOSX/ and ._ resource forks out", () => {
    const r = datasetEntries(['ml-t/ratings.csv', '__MACOSX/ml-t/._ratings.csv', 'ml-t/._movies.csv', 'ml-t/movies.csv'], 't.zip');
    expect(r).toEqual({ dataset: 'ml-t', ratings: 'ml-t/ratings.csv', files: ['ml-t/ratings.csv', 'ml-t/movies.csv'] });
  });

  it.each([
    [
      ['ml-1m/ratings.dat', 'ml-1m/movies.dat'],
      /is not a dataset this ETL reads: it is an ml-1m\/ml-10m archive \(ratings\.dat, '::'-separated\), which this ETL does not read; it holds: ml-1m\/ratings\.dat, ml-1m\/movies\.dat/,
    ],
    [['ml-100k/u.data', 'ml-100k/u.item'], /it is an ml-100k archive \(u\.data, tab-separated\)/],
    [['ml-t/Ratings.csv'], /its ratings file is named ml-t\/Ratings\.csv \(names are case-sensitive: expected ratings\.csv\)/],
    [
      ['a/b/ratings.csv'],
      /its ratings\.csv is nested too deep \(a\/b\/ratings\.csv\); expected ratings\.csv at the top or in one top folder/,
    ],
    [['ml-t/movies.csv'], /it has no ratings\.csv; it holds: ml-t\/movies\.csv/],
    [['__MACOSX/ml-t/ratings.csv'], /it has no ratings\.csv/],
  ])('refuses %j with what it holds and what is expected', (names, message) => {
    const e = refusal(() => datasetEntries(names, 'x.zip'));
    expect(e).toBeInstanceOf(EtlError);
    expect(e!.message).toMatch(message);
    expect(e!.hint).toMatch(/ml-latest-small, ml-latest, ml-25m or ml-32m/);
  });

  it('refuses two candidates, naming both', () => {
    expect(refusal(() => datasetEntries(['a/ratings.csv', 'b/ratings.csv'], 'x.zip'))?.message).toBe(
      'the zip holds 2 candidate ratings files (a/ratings.csv, b/ratings.csv); expected exactly one ratings.csv',
    );
  });

  it('refuses entry names with control characters', () => {
    expect(refusal(() => datasetEntries(['ml-t/ratings.csv', 'ml-t/two\nlines.txt'], 'x.zip'))?.message).toBe(
      'refusing the zip: entry names with control characters ("ml-t/two\\nlines.txt")',
    );
    expect(refusal(() => datasetEntries(['ml-t/ratings.csv', 'ml-t/bell\u0007'], 'x.zip'))?.message).toMatch(/control characters/);
  });

  it('a failed extract (a zip of the wrong shape) leaves the staged dataset and its manifest as they were, and writes no __MACOSX', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'shapes-'));
    const workDir = join(dir, 'work');
    const log = memoryLogger();
    const good = await zipFile(join(dir, 'good.zip'), { 'ml-t/ratings.csv': RATINGS, '__MACOSX/ml-t/._ratings.csv': 'junk' });
    await extractStage.run({ workDir, force: false, log }, extractOpts({ source: good }));
    expect(readdirSync(join(workDir, 'staging'))).toEqual(['ml-t']);
    const manifest = readFileSync(join(workDir, 'manifests', 'extract.json'), 'utf8');
    const bad = await zipFile(join(dir, 'bad.zip'), { 'ml-1m/ratings.dat': '1::2::3::4\n' });
    await expect(extractStage.run({ workDir, force: false, log }, extractOpts({ source: bad }))).rejects.toThrow(/ml-1m\/ml-10m archive/);
    expect(readFileSync(join(workDir, 'staging', 'ml-t', 'ratings.csv'), 'utf8')).toBe(RATINGS);
    expect(readFileSync(join(workDir, 'manifests', 'extract.json'), 'utf8')).toBe(manifest);
    expect(readdirSync(workDir).filter((n) => n.includes('.tmp-'))).toEqual([]);
  });
});

describe('extract: downloads keyed by URL', () => {
  let server: Server;
  let base: string;
  beforeAll(async () => {
    server = createServer(async (req, res) => {
      if (req.url?.endsWith('.md5')) return void res.writeHead(404).end();
      const body = readFileSync(join(tmpdir(), `keyed-${process.pid}-${req.url!.split('/')[1]}.zip`));
      res.writeHead(200, { 'content-length': body.length }).end(body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => server.close());

  it('a new URL whose file name equals the old one is downloaded anew, not taken for the old file', async () => {
    await zipFile(join(tmpdir(), `keyed-${process.pid}-a.zip`), { 'ml-t/ratings.csv': RATINGS });
    await zipFile(join(tmpdir(), `keyed-${process.pid}-b.zip`), { 'ml-t/ratings.csv': `${RATINGS}9,9,1.0,6\n` });
    const workDir = mkdtempSync(join(tmpdir(), 'keyed-'));
    const log = memoryLogger();
    // No checksum is published here (the point is which bytes are used): a size check is accepted explicitly.
    await extractStage.run({ workDir, force: false, log }, extractOpts({ url: `${base}/a/ml.zip`, allowUnverified: true }));
    await extractStage.run({ workDir, force: false, log }, extractOpts({ url: `${base}/b/ml.zip`, allowUnverified: true }));
    expect(readFileSync(join(workDir, 'staging', 'ml-t', 'ratings.csv'), 'utf8')).toBe(`${RATINGS}9,9,1.0,6\n`);
    expect(log.lines.filter((l) => l.startsWith('downloading'))).toHaveLength(2);
  });
});

describe('transform: unchanged means the same content', () => {
  it('two fresh work dirs with the same zip and options get the same transform key (no path or mtime in it)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tkey-'));
    const zip = await zipFile(join(dir, 'ml-t.zip'), { 'ml-t/ratings.csv': RATINGS });
    const keys: string[] = [];
    for (const w of ['one', 'two']) {
      const workDir = join(dir, w);
      await extractStage.run({ workDir, force: false, log: memoryLogger() }, extractOpts({ source: zip }));
      // A later mtime on the second node's copy: the content is what counts.
      if (w === 'two') utimesSync(join(workDir, 'staging', 'ml-t', 'ratings.csv'), new Date(), new Date(Date.now() + 60_000));
      await transformStage.run({ workDir, force: false, log: memoryLogger() }, transformOpts);
      keys.push(JSON.parse(readFileSync(join(workDir, 'manifests', 'transform.json'), 'utf8')).inputsKey);
    }
    expect(keys[0]).toMatch(/^[0-9a-f]{64}$/);
    expect(keys[1]).toBe(keys[0]);
  });

  it('an input edited with its mtime restored (cp -p) is seen: the transform runs again', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tcp-'));
    const zip = await zipFile(join(dir, 'ml-t.zip'), { 'ml-t/ratings.csv': RATINGS });
    const workDir = join(dir, 'work');
    const log = memoryLogger();
    await extractStage.run({ workDir, force: false, log }, extractOpts({ source: zip }));
    expect((await transformStage.run({ workDir, force: false, log }, transformOpts)).status).toBe('done');
    const input = join(workDir, 'staging', 'ml-t', 'ratings.csv');
    const edited = join(dir, 'edited.csv');
    writeFileSync(edited, RATINGS.replace('3.5', '1.0'));
    utimesSync(edited, statSync(input).atime, statSync(input).mtime);
    copyFileSync(edited, input);
    utimesSync(input, statSync(edited).atime, statSync(edited).mtime);
    expect(statSync(input).mtimeMs).toBe(statSync(edited).mtimeMs);
    expect((await transformStage.run({ workDir, force: false, log }, transformOpts)).status).toBe('done');
    expect((await transformStage.run({ workDir, force: false, log }, transformOpts)).status).toBe('skipped');
  });
});
