import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { contentId, type Fingerprint } from '../content-id';
import { EtlError } from '../errors';
import { hashInputs } from '../manifest';
import { nameProblem } from './versions';

/**
 * What the load publishes and why it belongs together: the transform's outputs and the raw files they were
 * made from, each with its content identity. The load refuses to pair one dataset's splits with another's raw
 * files (an extract of another zip after the transform, or a transform that failed and left older output).
 */

/** The parts of the extract manifest the load relies on. */
export interface ExtractRecord {
  dataset: string;
  stagingDir: string;
  zip?: { sha256: string };
  /** The file the transform reads, relative to stagingDir. */
  ratings?: string;
  files: { name: string; bytes: number; sha256: string; fingerprint?: Fingerprint }[];
}

/** The parts of the transform manifest the load relies on. */
export interface TransformRecord {
  dataset: string | null;
  input: { path: string; bytes: number; sha256: string };
  outputs: { path: string; bytes: number; sha256: string; fingerprint?: Fingerprint }[];
}

/** One object of a version: its name under the version prefix, the local file, its content identity. */
export interface LocalObject {
  name: string;
  local: string;
  bytes: number;
  sha256: string;
}

export interface Lineage {
  /** The raw dataset published under raw/<dataset>/, when the input came from the extract stage. */
  raw?: { dataset: string; dir: string; zipSha256?: string };
  objects: LocalObject[];
  /** Content-derived: the same zip and transform options give the same key on any machine and work dir. */
  key: string;
}

const RAW = 'raw';

export async function lineage(outputDir: string, extract: ExtractRecord | undefined, transform: TransformRecord): Promise<Lineage> {
  const objects: LocalObject[] = [];
  for (const o of transform.outputs ?? []) {
    const local = join(outputDir, o.path);
    if (!existsSync(local)) throw new EtlError(`${local} is missing`, 'Run the transform stage again (npm run etl -- transform --force).');
    const id = await contentId(local, o);
    if (id.sha256 !== o.sha256) {
      throw new EtlError(
        `${local} changed after the transform wrote it (SHA-256 ${id.sha256}, the transform recorded ${o.sha256})`,
        'Run the transform stage again (npm run etl -- transform --force).',
      );
    }
    objects.push({ name: o.path, local, bytes: id.bytes, sha256: id.sha256 });
  }
  if (objects.length === 0)
    throw new EtlError('the transform manifest lists no outputs', 'Run the transform stage again (npm run etl -- transform --force).');

  let raw: Lineage['raw'];
  if (transform.dataset) {
    if (!extract || extract.dataset !== transform.dataset) {
      throw new EtlError(
        `the splits were made from dataset ${transform.dataset}, but the staged dataset is ${extract?.dataset ?? 'none'}`,
        'Run the whole ETL again (npm run etl -- all), so the splits and the raw files come from one zip.',
      );
    }
    const ratings = join(extract.stagingDir, extract.ratings ?? 'ratings.csv');
    const staged = extract.files.find((f) => join(extract.stagingDir, f.name) === ratings);
    if (!staged || staged.sha256 !== transform.input.sha256) {
      throw new EtlError(
        `the splits were made from ${transform.input.path} (SHA-256 ${transform.input.sha256}), which is not the staged raw ` +
          `file ${ratings} (SHA-256 ${staged?.sha256 ?? 'unknown'})`,
        'Run the transform again on the staged dataset (npm run etl -- transform), or the whole ETL (all): the load ' +
          'publishes only splits made from the raw files it uploads.',
      );
    }
    for (const f of extract.files) {
      const local = join(extract.stagingDir, f.name);
      if (!existsSync(local)) throw new EtlError(`${local} is missing`, 'Run the extract stage again (npm run etl -- extract --force).');
      const id = await contentId(local, f);
      if (id.sha256 !== f.sha256) {
        throw new EtlError(
          `${local} changed after it was extracted (SHA-256 ${id.sha256}, the extract recorded ${f.sha256})`,
          'Run the extract stage again (npm run etl -- extract --force), then transform and load.',
        );
      }
      objects.push({ name: `${RAW}/${extract.dataset}/${f.name}`, local, bytes: id.bytes, sha256: id.sha256 });
    }
    raw = { dataset: extract.dataset, dir: extract.stagingDir, zipSha256: extract.zip?.sha256 };
  }
  for (const o of objects) {
    const p = nameProblem(o.name);
    if (p)
      throw new EtlError(
        `cannot publish the file ${JSON.stringify(o.name)}: its name ${p}`,
        'Rename it (object names may not hold control characters), or get a genuine MovieLens zip.',
      );
  }
  objects.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { raw, objects, key: datasetKey(objects) };
}

/** Deterministic and content-derived: what the version holds, by name and SHA-256. */
export function datasetKey(objects: readonly { name: string; sha256: string }[]): string {
  return hashInputs(objects.map((o) => [o.name, o.sha256])).slice(0, 16);
}
