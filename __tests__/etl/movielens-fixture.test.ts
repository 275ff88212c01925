import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import yauzl from 'yauzl';
import { generateMovieLensZip, generateRatingsCsv } from '../../testing/movielens-fixture';

function zipEntries(path: string): Promise<Map<string, Buffer>> {
  return new Promise((resolve, reject) => {
    yauzl.open(path, { lazyEntries: true }, (err, zip) => {
      if (err || !zip) return reject(err);
      const out = new Map<string, Buffer>();
      zip.on('entry', (entry: yauzl.Entry) => {
        zip.openReadStream(entry, (e, stream) => {
          if (e || !stream) return reject(e);
          const parts: Buffer[] = [];
          stream.on('data', (d: Buffer) => parts.push(d));
          stream.on('end', () => {
            out.set(entry.fileName, Buffer.concat(parts));
            zip.readEntry();
          });
        });
      });
      zip.on('end', () => resolve(out));
      zip.on('error', reject);
      zip.readEntry();
    });
  });
}

describe('MovieLens-shaped generator', () => {
  it('is seedable, MovieLens-shaped and sorted by user then movie', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gen-'));
    const a = generateRatingsCsv({ path: join(dir, 'a.csv'), rows: 40_000, seed: 7 });
    const b = generateRatingsCsv({ path: join(dir, 'b.csv'), rows: 40_000, seed: 7 });
    generateRatingsCsv({ path: join(dir, 'c.csv'), rows: 40_000, seed: 8 });
    expect(readFileSync(join(dir, 'a.csv'))).toEqual(readFileSync(join(dir, 'b.csv')));
    expect(readFileSync(join(dir, 'a.csv'))).not.toEqual(readFileSync(join(dir, 'c.csv')));
    expect(a).toEqual(b);
    expect(a.rows).toBe(40_000);

    const lines = readFileSync(join(dir, 'a.csv'), 'utf8').trimEnd().split('\n');
    expect(lines[0]).toBe('userId,movieId,rating,timestamp');
    expect(lines).toHaveLength(40_001);
    const perUser = new Map<number, number>();
    const perMovie = new Map<number, number>();
    let prev: [number, number] = [0, 0];
    const bad: string[] = [];
    for (const line of lines.slice(1)) {
      const [u, m] = line.split(',').map(Number);
      if (!/^\d+,\d+,[0-5]\.[05],\d{10}$/.test(line) || !(u > prev[0] || (u === prev[0] && m > prev[1]))) bad.push(line);
      prev = [u, m];
      perUser.set(u, (perUser.get(u) ?? 0) + 1);
      perMovie.set(m, (perMovie.get(m) ?? 0) + 1);
    }
    expect(bad).toEqual([]);
    expect(perUser.size).toBe(a.users);
    expect(Math.min(...perUser.values())).toBeGreaterThanOrEqual(20);
    // heavy tail: the busiest user rates far more than the median one (capped at half the movies)
    const counts = [...perUser.values()].sort((x, y) => x - y);
    expect(counts[counts.length - 1]).toBeGreaterThan(2 * counts[counts.length >> 1]);
    // Zipf-like: the most popular movie is rated far more often than the median movie (each user rates a movie once); ids are sparse
    const pop = [...perMovie.values()].sort((x, y) => x - y);
    expect(pop[pop.length - 1]).toBeGreaterThan(4 * pop[pop.length >> 1]);
    expect(Math.max(...perMovie.keys())).toBeGreaterThan(2 * a.movies);
  });

  it('writes a MovieLens-style zip: <name>/ratings.csv, movies.csv, README.txt', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'genzip-'));
    const stats = await generateMovieLensZip({ rows: 5_000, seed: 3, outPath: join(dir, 'ml-tiny.zip'), name: 'ml-tiny' });
    expect(stats).toMatchObject({
      rows: 5_000,
      zipPath: join(dir, 'ml-tiny.zip'),
      entries: ['ml-tiny/README.txt', 'ml-tiny/movies.csv', 'ml-tiny/ratings.csv'],
    });
    const entries = await zipEntries(join(dir, 'ml-tiny.zip'));
    expect([...entries.keys()].sort()).toEqual(['ml-tiny/README.txt', 'ml-tiny/movies.csv', 'ml-tiny/ratings.csv']);
    generateRatingsCsv({ path: join(dir, 'same.csv'), rows: 5_000, seed: 3 });
    expect(entries.get('ml-tiny/ratings.csv')).toEqual(readFileSync(join(dir, 'same.csv')));
    const movies = entries.get('ml-tiny/movies.csv')!.toString().trimEnd().split('\n');
    expect(movies[0]).toBe('movieId,title,genres');
    expect(movies).toHaveLength(stats.movies + 1);
    // with workDir the csv is kept there, next to the zip
    const old = await generateMovieLensZip({ outPath: join(dir, 'old.zip'), rows: 5_000, seed: 3, name: 'ml-old', workDir: dir });
    expect(old.rows).toBe(5_000);
    expect(readFileSync(join(dir, 'ml-old-ratings.csv'))).toEqual(readFileSync(join(dir, 'same.csv')));
  });

  it('reports progress: rows of ratings.csv up to all of them, then the zip bytes up to its size; same content as without', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'genprog-'));
    const seen: { phase: string; done: number; total?: number }[] = [];
    // 250k rows (~6 MB): more than one 4 MiB buffer of ratings.csv, so progress comes before the end.
    const stats = await generateMovieLensZip({
      rows: 250_000,
      seed: 5,
      outPath: join(dir, 'p.zip'),
      name: 'ml-p',
      onProgress: (phase, done, total) => seen.push({ phase, done, total }),
    });
    const ratings = seen.filter((p) => p.phase === 'ratings');
    const zip = seen.filter((p) => p.phase === 'zip');
    expect(ratings.length).toBeGreaterThan(1);
    expect(ratings.every((p, i) => p.total === 250_000 && (i === 0 || p.done >= ratings[i - 1].done))).toBe(true);
    expect(ratings[ratings.length - 1].done).toBe(250_000);
    expect(seen.findIndex((p) => p.phase === 'zip')).toBeGreaterThan(seen.lastIndexOf(ratings[ratings.length - 1]) - 1);
    expect(zip[zip.length - 1].done).toBe(stats.zipBytes);
    const plain = await generateMovieLensZip({ rows: 250_000, seed: 5, outPath: join(dir, 'q.zip'), name: 'ml-p' });
    // (The zips differ only in their entries' timestamps.)
    const digest = async (zipPath: string) =>
      [...(await zipEntries(zipPath))].map(([name, data]) => `${name} ${createHash('sha256').update(data).digest('hex')}`);
    expect(await digest(plain.zipPath)).toEqual(await digest(stats.zipPath));
  });
});
