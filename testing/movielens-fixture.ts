import { closeSync, createWriteStream, mkdirSync, openSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ZipFile } from 'yazl';

/**
 * Test and demo data, not part of the ETL (nothing under etl/ imports it; the bundle does not contain it).
 *
 * MovieLens-shaped synthetic ratings, seedable and fast (about 3 million rows a second): every user has at
 * least 20 ratings with a heavy (Pareto) tail, movie popularity is Zipf-like, movie ids are sparse (up to ~3.3x
 * the number of movies, as in ml-32m where 87,585 movies have ids up to 292,757), and rows are sorted by user,
 * then movie. The same rows and seed give the same bytes on every machine.
 */
export interface GenerateOptions {
  rows: number;
  seed?: number;
  /**
   * Called as the work advances (a 32M-row zip takes about 40 s): rows of ratings.csv written so far (of
   * `total`), then bytes of the zip written so far (no total: the compressed size is not known ahead).
   */
  onProgress?: (phase: 'ratings' | 'zip', done: number, total?: number) => void;
}

export interface GenerateStats {
  rows: number;
  users: number;
  movies: number;
  /** Bytes of ratings.csv. */
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

/**
 * Decimal digits of a non-negative integer below 2^31 written at buf[pos]; returns the position after them. The
 * transform's split kernel writes digits the same way with its own copy: kernels must be self-contained (worker
 * threads run their source text, etl/transform/pool.ts), so they cannot share a helper with this generator.
 */
function putUint(buf: Buffer, pos: number, n: number): number {
  const digits =
    n < 10
      ? 1
      : n < 100
        ? 2
        : n < 1000
          ? 3
          : n < 10000
            ? 4
            : n < 100000
              ? 5
              : n < 1000000
                ? 6
                : n < 10000000
                  ? 7
                  : n < 100000000
                    ? 8
                    : n < 1000000000
                      ? 9
                      : 10;
  let p = pos + digits;
  do {
    const q = (n / 10) | 0;
    buf[--p] = 48 + (n - q * 10);
    n = q;
  } while (n > 0);
  return pos + digits;
}

/** The sparse movie ids of a dataset of `rows` ratings, in popularity order (most rated first). */
function movieCatalog(rows: number, rand: () => number): Int32Array {
  const movies = Math.max(40, Math.min(87_585, Math.round(rows / 365) + 40));
  // Sparse ids; popularity rank is a shuffle of them, so popular movies are spread over the ids.
  const maxMovieId = Math.round(movies * 3.34);
  const idSet = new Set<number>();
  while (idSet.size < movies) idSet.add(1 + Math.floor(rand() * maxMovieId));
  const movieIds = Int32Array.from(idSet);
  for (let i = movieIds.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const x = movieIds[i];
    movieIds[i] = movieIds[j];
    movieIds[j] = x;
  }
  return movieIds;
}

/** Writes `ratings.csv` (userId,movieId,rating,timestamp) at `path`. */
export function generateRatingsCsv(options: GenerateOptions & { path: string }): GenerateStats {
  return writeRatings(options.path, options).stats;
}

function writeRatings(path: string, options: GenerateOptions): { stats: GenerateStats; movieIds: Int32Array } {
  const rows = Math.max(1, Math.floor(options.rows));
  const rand = prng(options.seed ?? 42);
  const movieIds = movieCatalog(rows, rand);
  const movies = movieIds.length;
  const cdf = new Float64Array(movies);
  let acc = 0;
  for (let r = 0; r < movies; r++) cdf[r] = acc += 1 / (r + 1) ** 0.9;
  for (let r = 0; r < movies; r++) cdf[r] /= acc;
  // guide[j] = the first rank whose cdf reaches j / G: the search for x starts between guide[j] and guide[j + 1].
  const G = 1 << 16;
  const guide = new Int32Array(G + 1);
  for (let j = 0, r = 0; j <= G; j++) {
    while (r < movies - 1 && cdf[r] < j / G) r++;
    guide[j] = r;
  }
  const ratingCdf: number[] = [];
  let w = 0;
  const wsum = RATING_WEIGHTS.reduce((x, y) => x + y, 0);
  for (const x of RATING_WEIGHTS) ratingCdf.push((w += x) / wsum);

  mkdirSync(dirname(path), { recursive: true });
  const fd = openSync(path, 'w');
  const out = Buffer.allocUnsafe(4 << 20);
  let pos = out.write('userId,movieId,rating,timestamp\n', 0, 'latin1');
  let bytes = 0;
  const flush = () => {
    writeSync(fd, out, 0, pos);
    bytes += pos;
    pos = 0;
    options.onProgress?.('ratings', written, rows);
  };
  let written = 0;
  let user = 0;
  const maxPerUser = Math.max(20, Math.floor(movies / 2));
  // stamp[rank] === user: this user already rated the movie of that rank (no Set per user).
  const stamp = new Int32Array(movies);
  const chosen = new Int32Array(maxPerUser);
  try {
    while (written < rows) {
      user++;
      // 20 + a Pareto tail (alpha 1.3): most users rate a few dozen movies, a few rate thousands.
      let k = 20 + Math.floor(15 * ((1 - rand()) ** (-1 / 1.3) - 1));
      k = Math.min(k, maxPerUser, rows - written);
      if (rows - written - k < 20 && rows - written - k > 0) k = Math.min(maxPerUser, rows - written);
      let n = 0;
      while (n < k) {
        // Zipf-like popularity: binary search of the rank in the cumulative distribution.
        const x = rand();
        const j = (x * G) | 0;
        let lo = guide[j];
        let hi = guide[j + 1];
        while (lo < hi) {
          const mid = (lo + hi) >>> 1;
          if (cdf[mid] < x) lo = mid + 1;
          else hi = mid;
        }
        if (stamp[lo] !== user) {
          stamp[lo] = user;
          chosen[n++] = movieIds[lo];
        }
      }
      const sorted = chosen.subarray(0, k).sort();
      const t0 = 1_000_000_000 + Math.floor(rand() * 700_000_000);
      for (let i = 0; i < k; i++) {
        if (pos > out.length - 64) flush();
        pos = putUint(out, pos, user);
        out[pos++] = 44;
        pos = putUint(out, pos, sorted[i]);
        out[pos++] = 44;
        const x = rand();
        let ri = 0;
        while (ratingCdf[ri] < x) ri++;
        const r = RATINGS[ri];
        out[pos++] = r[0];
        out[pos++] = r[1];
        out[pos++] = r[2];
        out[pos++] = 44;
        pos = putUint(out, pos, t0 + Math.floor(rand() * 5_000_000));
        out[pos++] = 10;
      }
      written += k;
    }
    flush();
  } finally {
    closeSync(fd);
  }
  return { stats: { rows: written, users: user, movies, bytes }, movieIds };
}

const GENRES = [
  'Action',
  'Adventure',
  'Animation',
  'Children',
  'Comedy',
  'Crime',
  'Documentary',
  'Drama',
  'Fantasy',
  'Horror',
  'Mystery',
  'Romance',
  'Sci-Fi',
  'Thriller',
  'War',
  'Western',
];

/** A small `movies.csv` (movieId,title,genres) for the movies of the ratings, ascending ids, quoted titles. */
function moviesCsv(movieIds: Int32Array, seed: number): Buffer {
  const rand = prng(seed ^ 0x5bd1e995);
  const ids = Int32Array.from(movieIds).sort();
  const lines = ['movieId,title,genres'];
  for (const id of ids) {
    const genres = [...new Set([GENRES[Math.floor(rand() * GENRES.length)], GENRES[Math.floor(rand() * GENRES.length)]])].join('|');
    lines.push(`${id},"Synthetic Movie ${id}, The (${1920 + Math.floor(rand() * 104)})",${genres}`);
  }
  return Buffer.from(`${lines.join('\n')}\n`);
}

export interface MovieLensZipOptions extends GenerateOptions {
  /** The zip to write. */
  outPath: string;
  /** Dataset name: the zip's top-level folder, e.g. `ml-demo` (the real archives use ml-32m). */
  name: string;
  /** Where ratings.csv is written before zipping (and kept); default: beside the zip, removed afterwards. */
  workDir?: string;
  /** Deflate ratings.csv (as the real archives do); default true. Off is much faster for big tests. */
  compress?: boolean;
}

export interface MovieLensZipStats extends GenerateStats {
  /** The zip written. */
  zipPath: string;
  zipBytes: number;
  /** Entries of the zip, e.g. ml-demo/ratings.csv. */
  entries: string[];
}

/**
 * A MovieLens-style zip: `<name>/ratings.csv`, `<name>/movies.csv` and `<name>/README.txt`, like the real
 * archives.
 */
export async function generateMovieLensZip(o: MovieLensZipOptions): Promise<MovieLensZipStats> {
  const seed = o.seed ?? 42;
  mkdirSync(dirname(o.outPath), { recursive: true });
  const csv = o.workDir ? join(o.workDir, `${o.name}-ratings.csv`) : `${o.outPath}.ratings-${process.pid}.csv`;
  const { stats, movieIds } = writeRatings(csv, { rows: o.rows, seed, onProgress: o.onProgress });
  const entries = [`${o.name}/README.txt`, `${o.name}/movies.csv`, `${o.name}/ratings.csv`];
  try {
    const zip = new ZipFile();
    zip.addBuffer(
      Buffer.from(
        `Synthetic MovieLens-shaped ratings (chameleon-persist generator): ${stats.rows} ratings, ${stats.users} ` +
          `users, ${stats.movies} movies, seed ${seed}.\n`,
      ),
      entries[0],
    );
    zip.addBuffer(moviesCsv(movieIds, seed), entries[1]);
    zip.addFile(csv, entries[2], { compress: o.compress ?? true });
    zip.end();
    const tmp = `${o.outPath}.tmp-${process.pid}`;
    await new Promise<void>((resolve, reject) => {
      const ws = createWriteStream(tmp);
      zip.outputStream.on('error', reject);
      let zipped = 0;
      zip.outputStream.on('data', (chunk: Buffer) => o.onProgress?.('zip', (zipped += chunk.length)));
      zip.outputStream
        .pipe(ws)
        .on('close', () => resolve())
        .on('error', reject);
    });
    renameSync(tmp, o.outPath);
  } finally {
    if (!o.workDir) rmSync(csv, { force: true });
  }
  return { ...stats, zipPath: o.outPath, zipBytes: statSync(o.outPath).size, entries };
}
