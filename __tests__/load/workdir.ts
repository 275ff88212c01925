import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fingerprintOf } from '../../etl/content-id';
import { writeManifest } from '../../etl/manifest';
import { workLayout } from '../../etl/work-dir';

export const OUTPUTS = [
  'evaluation/movielens_t_eval.txt',
  'maps/items.tsv',
  'maps/users.tsv',
  'training/movielens_t_train.txt',
  'validation/movielens_t_val.txt',
];

/**
 * A work directory as extract + transform leave it: output/ splits and maps, staging/ml-t/, and manifests that
 * record each file's SHA-256 and fingerprint, with the transform's input = the staged ratings.csv.
 * `sizes` sets the size of each split file, so a test can make an upload long enough to interrupt. `raw` sets
 * the staged ratings.csv (the same raw text for two tags = two seeds of one zip).
 */
export async function fakeWorkDir(tag: string, sizes = 2000, raw = 'userId,movieId,rating,timestamp\n1,3,4.0,100\n'): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), `load-${tag}-`));
  const l = workLayout(dir);
  for (const [sub, name] of [
    ['training', 'train'],
    ['validation', 'val'],
    ['evaluation', 'eval'],
  ]) {
    mkdirSync(join(l.output, sub), { recursive: true });
    writeFileSync(join(l.output, sub, `movielens_t_${name}.txt`), `${tag}\n${randomBytes(sizes).toString('base64')}\n`);
  }
  mkdirSync(join(l.output, 'maps'), { recursive: true });
  writeFileSync(join(l.output, 'maps', 'users.tsv'), `1\t1\n7\t2\n`);
  writeFileSync(join(l.output, 'maps', 'items.tsv'), `3\t1\n`);
  const staging = join(l.staging, 'ml-t');
  mkdirSync(staging, { recursive: true });
  writeFileSync(join(staging, 'ratings.csv'), raw);
  await recordManifests(dir, tag);
  return dir;
}

/** (Re)writes the extract and transform manifests from the files as they are now. */
export async function recordManifests(dir: string, tag: string): Promise<void> {
  const l = workLayout(dir);
  const staging = join(l.staging, 'ml-t');
  const stamp = { tool: { name: 't', version: '0' }, startedAt: '', finishedAt: '' };
  const rec = (base: string, name: string) => ({
    bytes: readFileSync(join(base, name)).length,
    sha256: sha256(join(base, name)),
    fingerprint: fingerprintOf(join(base, name)),
  });
  const files = readdirSync(staging).map((name) => ({ name, ...rec(staging, name) }));
  await writeManifest(l.manifests, {
    stage: 'extract',
    inputsKey: `extract-${tag}`,
    ...stamp,
    result: { dataset: 'ml-t', stagingDir: staging, ratings: 'ratings.csv', zip: { sha256: 'z' }, files },
  });
  const ratings = files.find((f) => f.name === 'ratings.csv')!;
  await writeManifest(l.manifests, {
    stage: 'transform',
    inputsKey: `transform-${tag}`,
    ...stamp,
    result: {
      tag,
      dataset: 'ml-t',
      input: { path: join(staging, 'ratings.csv'), bytes: ratings.bytes, sha256: ratings.sha256 },
      outputs: OUTPUTS.map((path) => ({ path, ...rec(l.output, path), rows: 1 })),
    },
  });
}

/** Object name (under the version prefix) -> MD5 of what the version should hold for this work dir. */
export function expectedObjects(workDir: string): Map<string, string> {
  const l = workLayout(workDir);
  const out = new Map<string, string>();
  const add = (base: string, prefix: string) => {
    const stack = [base];
    while (stack.length) {
      const dir = stack.pop()!;
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        const p = join(dir, e.name);
        if (e.isDirectory()) stack.push(p);
        else out.set(prefix + relative(base, p), md5(p));
      }
    }
  };
  add(l.output, '');
  add(join(l.staging, 'ml-t'), 'raw/ml-t/');
  return out;
}

export function md5(path: string): string {
  return createHash('md5').update(readFileSync(path)).digest('hex');
}

export function sha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}
