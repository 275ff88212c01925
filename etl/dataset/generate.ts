import { closeSync, createWriteStream, mkdirSync, openSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { ZipFile } from 'yazl';

/**
 * MovieLens-shaped synthetic ratings, seedable and fast: every user has at least 20 ratings with a heavy
 * tail, movie popularity is Zipf-like, movie ids are sparse (up to ~3.3x the number of movies, as in ml-32m
 * where 87,585 movies have ids up to 292,757), and rows are sorted by user, then movie.
 */
export interface GenerateOptions {
  rows: number;
  seed?: number;
}

export interface GenerateStats {
  rows: number;
  users: number;
  movies: number;
  bytes: number;
}

/** mulberry32: tiny, fast, good enough for synthetic data, and the same on every platform. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const RATINGS = ['0.5', '1.0', '1.5', '2.0', '2.5', '3.0', '3.5', '4.0', '4.5', '5.0'].map((r) => Buffer.from(r));
const RATING_WEIGHTS = [1, 3, 2, 7, 5, 20, 13, 27, 9, 13];

export function generateRatingsCsv(path: string, options: GenerateOptions): GenerateStats {
  const rows = Math.max(1, Math.floor(options.rows));
  const rand = prng(options.seed ?? 42);
  const movies = Math.max(40, Math.min(87_585, Math.round(rows / 365) + 40));
  // Sparse, sorted movie ids; popularity rank is a shuffle of them, so popular movies are spread over ids.
  const maxMovieId = Math.round(movies * 3.34);
  const idSet = new Set<number>();
  while (idSet.size < movies) idSet.add(1 + Math.floor(rand() * maxMovieId));
  const movieIds = Int32Array.from(idSet);
  for (let i = movieIds.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [movieIds[i], movieIds[j]] = [movieIds[j], movieIds[i]];
  }
  const cdf = new Float64Array(movies);
  let acc = 0;
  for (let r = 0; r < movies; r++) cdf[r] = acc += 1 / (r + 1) ** 0.9;
  for (let r = 0; r < movies; r++) cdf[r] /= acc;
  const ratingCdf: number[] = [];
  let w = 0;
  const wsum = RATING_WEIGHTS.reduce((a, b) => a + b, 0);
  for (const x of RATING_WEIGHTS) ratingCdf.push((w += x) / wsum);

  const pickMovie = () => {
    const x = rand();
    let lo = 0;
    let hi = movies - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cdf[mid] < x) lo = mid + 1;
      else hi = mid;
    }
    return movieIds[lo];
  };

  mkdirSync(dirname(path), { recursive: true });
  const fd = openSync(path, 'w');
  const out = Buffer.allocUnsafe(4 << 20);
  let pos = out.write('userId,movieId,rating,timestamp\n', 0, 'latin1');
  let bytes = 0;
  const flush = () => {
    writeSync(fd, out, 0, pos);
    bytes += pos;
    pos = 0;
  };
  const putInt = (n: number) => {
    const s = String(n);
    pos += out.write(s, pos, 'latin1');
  };
  let written = 0;
  let user = 0;
  const maxPerUser = Math.max(20, Math.floor(movies / 2));
  try {
    while (written < rows) {
      user++;
      // 20 + a Pareto tail (alpha 1.3): most users rate a few dozen movies, a few rate thousands.
      let k = 20 + Math.floor(15 * ((1 - rand()) ** (-1 / 1.3) - 1));
      k = Math.min(k, maxPerUser, rows - written);
      if (rows - written - k < 20 && rows - written - k > 0) k = Math.min(maxPerUser, rows - written);
      const chosen = new Set<number>();
      while (chosen.size < k) chosen.add(pickMovie());
      const sorted = Int32Array.from(chosen).sort();
      const t0 = 1_000_000_000 + Math.floor(rand() * 700_000_000);
      for (let i = 0; i < sorted.length; i++) {
        if (pos > out.length - 64) flush();
        putInt(user);
        out[pos++] = 44;
        putInt(sorted[i]);
        out[pos++] = 44;
        const x = rand();
        let ri = 0;
        while (ratingCdf[ri] < x) ri++;
        pos += RATINGS[ri].copy(out, pos);
        out[pos++] = 44;
        putInt(t0 + Math.floor(rand() * 5_000_000));
        out[pos++] = 10;
      }
      written += sorted.length;
    }
    flush();
  } finally {
    closeSync(fd);
  }
  return { rows: written, users: user, movies, bytes };
}

/** A MovieLens-style zip: `<name>/ratings.csv` and a small `<name>/README.txt`, like the real archives. */
export async function generateMovieLensZip(outPath: string, options: GenerateOptions & { name: string; workDir: string }): Promise<GenerateStats> {
  const csv = `${options.workDir}/${options.name}-ratings.csv`;
  const stats = generateRatingsCsv(csv, options);
  mkdirSync(dirname(outPath), { recursive: true });
  const zip = new ZipFile();
  zip.addBuffer(Buffer.from(`Synthetic MovieLens-shaped ratings: ${stats.rows} rows, seed ${options.seed ?? 42}.\n`), `${options.name}/README.txt`);
  zip.addFile(csv, `${options.name}/ratings.csv`, { compress: true });
  zip.end();
  await new Promise<void>((resolve, reject) => {
    const ws = createWriteStream(outPath);
    zip.outputStream.pipe(ws).on('close', () => resolve()).on('error', reject);
  });
  return stats;
}
