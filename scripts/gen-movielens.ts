/**
 * `npx tsx scripts/gen-movielens.ts --rows 1000000 --out .work/gen/ml-synth.zip [--name ml-synth] [--seed 42]`:
 * a MovieLens-shaped dataset (see testing/movielens-fixture.ts), as a zip like the real archives (`<name>/ratings.csv`,
 * movies.csv, README.txt) for `npm run etl -- extract --source <zip>`, or with `--csv` as a bare ratings.csv.
 */
import { Command } from 'commander';
import { basename } from 'node:path';
import { generateMovieLensZip, generateRatingsCsv } from '../testing/movielens-fixture';

async function main(): Promise<void> {
  const o = new Command('gen-movielens')
    .description('generate a MovieLens-shaped dataset (seedable, realistic skew, sorted by user then movie)')
    .option('--rows <n>', 'ratings to generate (ml-32m has 32,000,204)', '1000000')
    .option('--seed <n>', 'seed: the same rows and seed give the same bytes', '42')
    .option('--out <path>', 'zip to write (or the csv, with --csv)', '.work/gen/ml-synth.zip')
    .option('--name <name>', "dataset name, the zip's top folder (default: the zip's name without .zip)")
    .option('--csv', 'write a bare ratings.csv instead of a zip', false)
    .option('--no-compress', 'store ratings.csv in the zip without deflating it (faster)')
    .parse(process.argv)
    .opts<{ rows: string; seed: string; out: string; name?: string; csv: boolean; compress: boolean }>();
  const rows = Number(o.rows.replace(/_/g, ''));
  const seed = Number(o.seed);
  if (!Number.isInteger(rows) || rows < 1) throw new Error(`--rows '${o.rows}' is not a positive whole number`);
  if (!Number.isInteger(seed) || seed < 0) throw new Error(`--seed '${o.seed}' is not a whole number`);
  const started = performance.now();
  const stats = o.csv
    ? generateRatingsCsv({ path: o.out, rows, seed })
    : await generateMovieLensZip({
        rows,
        seed,
        outPath: o.out,
        name: o.name ?? basename(o.out).replace(/\.zip$/i, ''),
        compress: o.compress,
      });
  const seconds = (performance.now() - started) / 1000;
  process.stderr.write(`wrote ${o.out} in ${seconds.toFixed(1)}s\n`);
  process.stdout.write(`${JSON.stringify({ ...stats, seconds: Number(seconds.toFixed(2)) })}\n`);
}

main().catch((e) => {
  process.stderr.write(`gen-movielens: ${(e as Error).message}\n`);
  process.exitCode = 1;
});
