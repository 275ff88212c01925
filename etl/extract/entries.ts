import { basename } from 'node:path';
import { EtlError } from '../errors';

/**
 * Which entries of a zip make a dataset the transform can read, decided from the names alone before anything is
 * written. Pure, so each shape of archive a user may bring is a unit test.
 */
export interface DatasetEntries {
  /** The dataset's name: the zip's single top folder (ml-32m), else the zip's own name. */
  dataset: string;
  /** The entry the transform reads. */
  ratings: string;
  /** The file entries to extract (macOS resource forks left out). */
  files: string[];
}

const CONTROL = /[\x00-\x1f\x7f]/;
const SUPPORTED = 'ml-latest-small, ml-latest, ml-25m or ml-32m (ratings.csv with a userId,movieId,rating,timestamp header)';

/** macOS zips carry `__MACOSX/` and `._name` resource forks: metadata, never data. */
function isJunk(name: string): boolean {
  return name.startsWith('__MACOSX/') || basename(name).startsWith('._');
}

export function datasetEntries(entries: readonly string[], zipName: string): DatasetEntries {
  const controlled = entries.filter((e) => CONTROL.test(e));
  if (controlled.length) {
    throw new EtlError(
      `refusing the zip: entry names with control characters (${controlled
        .slice(0, 3)
        .map((e) => JSON.stringify(e))
        .join(', ')})`,
      'Such names break object listings and terminals; a genuine MovieLens zip has none. Get the archive again from the official source.',
    );
  }
  const files = entries.filter((e) => !e.endsWith('/') && !isJunk(e));
  const depth = (e: string) => e.split('/').length;
  const candidates = files.filter((e) => basename(e) === 'ratings.csv' && depth(e) <= 2);
  const holds = `it holds: ${files.slice(0, 12).join(', ')}${files.length > 12 ? `, … (${files.length} files)` : ''}`;
  if (candidates.length > 1) {
    throw new EtlError(
      `the zip holds ${candidates.length} candidate ratings files (${candidates.join(', ')}); expected exactly one ratings.csv`,
      `Pass a zip of one dataset (${SUPPORTED}).`,
    );
  }
  if (candidates.length === 0) {
    const near = (re: RegExp) => files.filter((e) => re.test(basename(e)));
    const why = near(/^ratings\.dat$/).length
      ? `it is an ml-1m/ml-10m archive (ratings.dat, '::'-separated), which this ETL does not read`
      : near(/^u\.data$/).length
        ? 'it is an ml-100k archive (u.data, tab-separated), which this ETL does not read'
        : files.some((e) => basename(e) === 'ratings.csv')
          ? `its ratings.csv is nested too deep (${files.find((e) => basename(e) === 'ratings.csv')}); expected ratings.csv ` +
            `at the top or in one top folder`
          : near(/^ratings\.csv$/i).length
            ? `its ratings file is named ${near(/^ratings\.csv$/i)[0]} (names are case-sensitive: expected ratings.csv)`
            : 'it has no ratings.csv';
    throw new EtlError(`${zipName} is not a dataset this ETL reads: ${why}; ${holds}`, `Use a MovieLens zip: ${SUPPORTED}.`);
  }
  const ratings = candidates[0];
  const top = ratings.includes('/') ? ratings.split('/')[0] : undefined;
  const dataset = top && files.every((e) => e.startsWith(`${top}/`)) ? top : basename(zipName).replace(/\.zip$/i, '');
  return { dataset, ratings, files };
}
