import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { generateRatingsCsv } from '../../testing/movielens-fixture';
import { EtlError } from '../../etl/errors';
import { memoryLogger } from '../../etl/log';
import { readManifest } from '../../etl/manifest';
import { setChunkBytes } from '../../etl/transform/fast';
import { mix32, parseRatios, splitOf, splitThresholds } from '../../etl/transform/split';
import { outputName, transformStage, type TransformOptions } from '../../etl/transform/stage';

const opts = (input: string, extra: Partial<TransformOptions> = {}): TransformOptions => ({
  input,
  name: 't',
  seed: '42',
  ratios: '0.7,0.15,0.15',
  engine: 'fast',
  threads: '1',
  ...extra,
});

/** Runs `fn` with a small read chunk, so that small files take the multi-threaded path with many jobs. */
async function withChunk<T>(bytes: number, fn: () => Promise<T>): Promise<T> {
  setChunkBytes(bytes);
  try {
    return await fn();
  } finally {
    setChunkBytes(8 * 1024 * 1024);
  }
}

async function transform(input: string, extra: Partial<TransformOptions> = {}, workDir = mkdtempSync(join(tmpdir(), 'tw-'))) {
  const result = await transformStage.run({ workDir, force: true, log: memoryLogger() }, opts(input, extra));
  return { workDir, result, files: outputFiles(join(workDir, 'output')) };
}

/** relative path -> sha256 of every output file */
function outputFiles(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out[relative(dir, p)] = createHash('sha256').update(readFileSync(p)).digest('hex');
    }
  };
  walk(dir);
  return out;
}

function csv(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'csv-'));
  writeFileSync(join(dir, 'ratings.csv'), text);
  return join(dir, 'ratings.csv');
}

describe('transform: the fast path equals the csv-parse reference, byte for byte', () => {
  it('on generated MovieLens-shaped data', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gen-'));
    generateRatingsCsv({ path: join(dir, 'ratings.csv'), rows: 150_000, seed: 11 });
    const fast = await transform(join(dir, 'ratings.csv'));
    const ref = await transform(join(dir, 'ratings.csv'), { engine: 'reference' });
    expect(fast.files).toEqual(ref.files);
    expect(Object.keys(fast.files).sort()).toEqual([
      'evaluation/t_eval.txt',
      'maps/items.tsv',
      'maps/users.tsv',
      'training/t_train.txt',
      'validation/t_val.txt',
    ]);
  });

  const edgeCases: [string, string][] = [
    ['CRLF line endings', 'userId,movieId,rating,timestamp\r\n1,10,4.0,100\r\n2,5,3.5,101\r\n1,5,1.0,102\r\n'],
    ['no newline after the last row', 'userId,movieId,rating,timestamp\n1,10,4.0,100\n2,5,3.5,101'],
    ['blank lines', 'userId,movieId,rating,timestamp\n\n1,10,4.0,100\n\r\n2,5,3.5,101\n\n'],
    ['quoted numeric fields', 'userId,movieId,rating,timestamp\n"1","10","4.0","100"\n2,"5",3.5,101\n'],
    ['a byte-order mark and a quoted header', '\ufeff"userId","movieId","rating","timestamp"\n1,10,4,100\n'],
    ['ratings written as 5, .5 and 3.25', 'userId,movieId,rating,timestamp\n1,10,5,100\n2,5,.5,101\n3,5,3.25,101\n'],
    ['leading zeros and id 0', 'userId,movieId,rating,timestamp\n007,0,4,100\n0,010,4,1\n'],
    ['sparse and huge ids (the Set path)', 'userId,movieId,rating,timestamp\n2000000000,99999999,5,1\n7,3,1,2\n2000000000,3,2,3\n'],
  ];
  it.each(edgeCases)('on %s', async (_name, text) => {
    const input = csv(text);
    const ref = await transform(input, { engine: 'reference' });
    expect((await transform(input)).files).toEqual(ref.files);
    // and on worker threads, with chunks so small that every row crosses a chunk boundary somewhere
    for (const chunk of [5, 13]) expect((await withChunk(chunk, () => transform(input, { threads: '3' }))).files).toEqual(ref.files);
  });

  it('numbers ids densely from 1 in ascending order of the original ids, and writes the maps', async () => {
    const { workDir } = await transform(csv('userId,movieId,rating,timestamp\n30,700,4,1\n10,500,4,1\n20,700,4,1\n'), { ratios: '1,0,0' });
    expect(readFileSync(join(workDir, 'output/maps/users.tsv'), 'utf8')).toBe('10\t1\n20\t2\n30\t3\n');
    expect(readFileSync(join(workDir, 'output/maps/items.tsv'), 'utf8')).toBe('500\t1\n700\t2\n');
    expect(readFileSync(join(workDir, 'output/training/t_train.txt'), 'utf8')).toBe('3\t2\n1\t1\n2\t2\n');
  });
});

describe('transform: reproducible', () => {
  it('the same input, seed and ratios give identical files; another seed gives another split of the same rows', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gen-'));
    generateRatingsCsv({ path: join(dir, 'ratings.csv'), rows: 50_000, seed: 5 });
    const a = await transform(join(dir, 'ratings.csv'));
    const b = await transform(join(dir, 'ratings.csv'));
    expect(a.files).toEqual(b.files);
    const c = await transform(join(dir, 'ratings.csv'), { seed: '43' });
    expect(c.files['training/t_train.txt']).not.toBe(a.files['training/t_train.txt']);
    expect(c.files['maps/users.tsv']).toBe(a.files['maps/users.tsv']);
  });

  it('does not depend on how the file is chunked: rows cut at any chunk boundary give identical bytes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gen-'));
    generateRatingsCsv({ path: join(dir, 'ratings.csv'), rows: 30_000, seed: 9 });
    const whole = await transform(join(dir, 'ratings.csv'));
    try {
      for (const bytes of [4093, 65_537 + 11, 1 << 20]) {
        setChunkBytes(bytes);
        expect((await transform(join(dir, 'ratings.csv'))).files).toEqual(whole.files);
      }
    } finally {
      setChunkBytes(8 * 1024 * 1024);
    }
  });

  it('does not depend on the number of threads', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gen-'));
    generateRatingsCsv({ path: join(dir, 'ratings.csv'), rows: 120_000, seed: 3 });
    const one = await transform(join(dir, 'ratings.csv'), { threads: '1' });
    expect(one.result.details).toMatchObject({ threads: 1 });
    for (const threads of [2, 3, 4]) {
      const many = await withChunk(64 * 1024 + 7, () => transform(join(dir, 'ratings.csv'), { threads: String(threads) }));
      expect(many.result.details).toMatchObject({ threads });
      expect(many.files).toEqual(one.files);
    }
  });

  it("a row's split depends only on seed and position, and the ratios are honoured", () => {
    const t = splitThresholds({ train: 0.7, validation: 0.15, evaluation: 0.15 }, 42);
    const counts = [0, 0, 0];
    for (let i = 0; i < 200_000; i++) counts[splitOf(i, t)]++;
    expect(counts[0] / 200_000).toBeCloseTo(0.7, 2);
    expect(counts[1] / 200_000).toBeCloseTo(0.15, 2);
    expect(splitOf(12345, t)).toBe(splitOf(12345, splitThresholds({ train: 0.7, validation: 0.15, evaluation: 0.15 }, 42)));
    // Known answers of murmur3's fmix32 (computed independently, e.g. in Python): fmix32(1) = 0x514e28b7.
    expect([0, 1, 2, 0xffffffff, 12345].map(mix32)).toEqual([0, 0x514e28b7, 821347078, 2180083513, 1011272156]);
    // The first rows of seed 42 at 70/15/15 (the golden test holds more).
    expect([0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map((i) => splitOf(i, t))).toEqual([0, 0, 0, 0, 0, 0, 0, 1, 0, 0]);
  });

  it('rejects ratios that are not three non-negative numbers adding up to 1', () => {
    expect(() => parseRatios('0.7,0.2,0.2')).toThrow(/add up to 1.1/);
    expect(() => parseRatios('0.7,0.3')).toThrow(/three non-negative numbers/);
    expect(() => parseRatios('0.7,-0.1,0.4')).toThrow(/three non-negative numbers/);
  });

  it('names outputs like the tutorial', () => {
    expect(outputName('ml-32m')).toBe('movielens_32m');
    expect(outputName('ml-latest-small')).toBe('movielens_latest_small');
  });
});

describe('transform: bad input stops with the file and line, and leaves the previous output untouched', () => {
  const bad: [string, string, RegExp][] = [
    ['missing header', '1,10,4.0,100\n', /ratings\.csv line 1: expected the header userId,movieId,rating,timestamp/],
    ['wrong header', 'user,item,rating,ts\n1,2,3,4\n', /line 1: expected the header/],
    [
      'non-numeric id',
      'userId,movieId,rating,timestamp\n1,10,4.0,100\nabc,10,4.0,100\n',
      /ratings\.csv line 3: userId is not a valid number: "abc,10,4.0,100"/,
    ],
    ['non-numeric rating', 'userId,movieId,rating,timestamp\n1,10,good,100\n', /line 2: rating is not a valid number/],
    ['too few fields', 'userId,movieId,rating,timestamp\n1,10,4.0,100\n2,11\n3,12,4.0,100\n', /line 3: too few fields/],
    ['too many fields', 'userId,movieId,rating,timestamp\n1,10,4.0,100,9\n', /line 2: too many fields/],
    ['a negative id', 'userId,movieId,rating,timestamp\n1,-10,4.0,100\n', /line 2: movieId is not a valid number/],
    ['an unclosed quote', 'userId,movieId,rating,timestamp\n"1,10,4.0,100\n', /line 2: userId is not a valid number/],
    ['a truncated file', 'userId,movieId,rating,timestamp\n1,10,4.0,100\n2,11,4', /line 3: too few fields.*\n?.*|truncated/],
    ['an empty file', '', /is empty/],
  ];
  it.each(bad)('%s', async (_name, text, message) => {
    const good = csv('userId,movieId,rating,timestamp\n1,10,4.0,100\n');
    const { workDir, files } = await transform(good);
    const input = csv(text);
    let error: unknown;
    try {
      await transformStage.run({ workDir, force: true, log: memoryLogger() }, opts(input));
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(EtlError);
    expect(`${(error as EtlError).message}\n${(error as EtlError).hint}`).toMatch(message);
    expect(outputFiles(join(workDir, 'output'))).toEqual(files);
    expect(readdirSync(workDir).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });

  it.each(bad)('the csv-parse reference refuses it too, naming the file and the same line: %s', async (_name, text, message) => {
    const e = await transform(csv(text), { engine: 'reference' }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(EtlError);
    expect((e as EtlError).message).toMatch(/^ratings\.csv (line \d+|is empty)/);
    const line = /line (\d+)/.exec(message.source)?.[1];
    if (line) expect((e as EtlError).message).toContain(`line ${line}:`);
  });

  it('the worker threads report the same line as one thread does, wherever the bad row falls', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gen-'));
    generateRatingsCsv({ path: join(dir, 'ratings.csv'), rows: 20_000, seed: 4 });
    const lines = readFileSync(join(dir, 'ratings.csv'), 'utf8').split('\n');
    lines[15_000] = lines[15_000].replace(/^(\d+),/, '$1x,'); // late in the file: the second range's
    writeFileSync(join(dir, 'bad.csv'), lines.join('\n'));
    for (const threads of ['1', '3']) {
      const e = await withChunk(4099, () => transform(join(dir, 'bad.csv'), { threads })).catch((x: unknown) => x);
      expect((e as EtlError).message).toMatch(/^bad\.csv line 15001: userId is not a valid number: "\d+x,/);
    }
  });

  it('says a cut-off last row looks truncated', async () => {
    await expect(transform(csv('userId,movieId,rating,timestamp\n1,10,4.0,100\n2,11,4'))).rejects.toThrow(/line 3: too few fields/);
    const input = csv('userId,movieId,rating,timestamp\n1,10,4.0,100\n2,11,4');
    const e = await transform(input).catch((x: EtlError) => x);
    expect((e as EtlError).hint).toMatch(/looks truncated/);
  });
});

describe('transform: idempotent reruns', () => {
  it('after a run killed between the two renames, the next one puts the previous output back and removes the leftovers', async () => {
    const input = csv('userId,movieId,rating,timestamp\n1,10,4.0,100\n2,5,3.5,101\n');
    const workDir = mkdtempSync(join(tmpdir(), 'kill-'));
    const log = memoryLogger();
    await transformStage.run({ workDir, force: false, log }, opts(input));
    const before = outputFiles(join(workDir, 'output'));
    const dead = spawnSync(process.execPath, ['-e', '0']).pid; // a pid that no longer runs
    renameSync(join(workDir, 'output'), join(workDir, `output.old-${dead}`));
    mkdirSync(join(workDir, `output.tmp-${dead}`, 'training'), { recursive: true });
    writeFileSync(join(workDir, `output.tmp-${dead}`, 'training', 'half.txt'), '1\t');
    expect((await transformStage.run({ workDir, force: false, log }, opts(input))).status).toBe('skipped');
    expect(outputFiles(join(workDir, 'output'))).toEqual(before);
    expect(readdirSync(workDir).sort()).toEqual(['manifests', 'output']);
    expect(log.lines.filter((l) => l.startsWith('warning:'))).toEqual([
      expect.stringMatching(/restored output from output\.old-\d+|removed output\.tmp-\d+/),
      expect.stringMatching(/restored output from output\.old-\d+|removed output\.tmp-\d+/),
    ]);
  });

  it('skips when input and options are unchanged, reruns with --force or new options', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'idem-'));
    mkdirSync(join(dir, 'w'));
    const input = csv('userId,movieId,rating,timestamp\n1,10,4.0,100\n2,5,3.5,101\n');
    const ctx = { workDir: join(dir, 'w'), force: false, log: memoryLogger() };
    expect((await transformStage.run(ctx, opts(input))).status).toBe('done');
    expect((await transformStage.run(ctx, opts(input))).status).toBe('skipped');
    expect((await transformStage.run({ ...ctx, force: true }, opts(input))).status).toBe('done');
    expect((await transformStage.run(ctx, opts(input, { seed: '7' }))).status).toBe('done');
    const m = await readManifest<{ rows: number; seed: number; input: { sha256: string } }>(join(dir, 'w', 'manifests'), 'transform');
    expect(m?.result).toMatchObject({ rows: 2, seed: 7 });
    expect(m?.result.input.sha256).toMatch(/^[0-9a-f]{64}$/);
  });
});
