import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { PersistConfig } from '../config';
import { PROJECT_ROOT } from '../config';

/**
 * What decides whether the etl stack reruns: the ETL code, the dataset, the split options and an optional
 * nonce. Pure, so tests can show that it changes when (and only when) one of those changes. The container and
 * the node are tokens known only at apply time; the stack adds them to the trigger list itself.
 */
export function etlTrigger(input: { config: PersistConfig; codeHash: string; rerunNonce?: string }): string {
  const { etl } = input.config;
  const relevant = {
    code: input.codeHash,
    datasetUrl: etl.datasetUrl,
    datasetSha256: etl.datasetSha256 ?? null,
    seed: etl.seed,
    ratios: [etl.trainRatio, etl.validationRatio, etl.evaluationRatio],
    remoteDir: etl.remoteDir,
    rerun: input.rerunNonce ?? null,
  };
  return createHash('sha256').update(JSON.stringify(relevant)).digest('hex');
}

/** Hash of every source file the ETL bundle is built from (etl/ and the bundler script), in a fixed order. */
export function hashEtlSources(root: string = PROJECT_ROOT): string {
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts')) files.push(p);
    }
  };
  walk(join(root, 'etl'));
  files.push(join(root, 'scripts', 'build-etl.mjs'), join(root, 'package-lock.json'));
  const hash = createHash('sha256');
  for (const f of files.sort()) hash.update(relative(root, f)).update('\0').update(readFileSync(f)).update('\0');
  return hash.digest('hex');
}
