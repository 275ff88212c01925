import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { writeManifest } from '../../etl/manifest';
import { workLayout } from '../../etl/layout';

/**
 * A work directory as extract + transform leave it: output/ splits and maps, staging/<dataset>/, manifests.
 * `sizes` sets the size of each split file, so a test can make an upload long enough to interrupt.
 */
export async function fakeWorkDir(tag: string, sizes = 2000): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), `load-${tag}-`));
  const l = workLayout(dir);
  for (const [sub, name] of [['training', 'train'], ['validation', 'val'], ['evaluation', 'eval']]) {
    mkdirSync(join(l.output, sub), { recursive: true });
    writeFileSync(join(l.output, sub, `movielens_t_${name}.txt`), `${tag}\n${randomBytes(sizes).toString('base64')}\n`);
  }
  mkdirSync(join(l.output, 'maps'), { recursive: true });
  writeFileSync(join(l.output, 'maps', 'users.tsv'), `1\t1\n7\t2\n# ${tag}\n`);
  writeFileSync(join(l.output, 'maps', 'items.tsv'), `3\t1\n# ${tag}\n`);
  mkdirSync(join(l.staging, 'ml-t'), { recursive: true });
  writeFileSync(join(l.staging, 'ml-t', 'ratings.csv'), 'userId,movieId,rating,timestamp\n1,3,4.0,100\n');
  const stamp = { tool: { name: 't', version: '0' }, startedAt: '', finishedAt: '' };
  await writeManifest(l.manifests, { stage: 'extract', inputsKey: `extract-${tag}`, ...stamp, result: { dataset: 'ml-t' } });
  await writeManifest(l.manifests, { stage: 'transform', inputsKey: `transform-${tag}`, ...stamp, result: { tag } });
  return dir;
}

/** Object name -> MD5 of what the container should hold for this work dir (as load lays it out). */
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
