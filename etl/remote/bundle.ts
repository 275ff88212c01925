import type { BuildOptions } from 'esbuild';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import bundleOptions from '../bundle-options.json';

/**
 * The ETL bundle's identity. `scripts/build-etl.mjs` writes dist/etl.js with the options in
 * etl/bundle-options.json; building with the same options in memory here gives the same bytes (a test checks
 * it), so the etl stack's trigger is the SHA-256 of the very file the runner ships, and the runner's "ship only
 * if the node's sha256 differs" compares the same number. Only what the bundle contains counts: editing the
 * runner, the tests or the docs does not rerun the ETL.
 */
export const ETL_BUILD_OPTIONS = bundleOptions as BuildOptions;

export function sha256(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** SHA-256 of the bundle `npm run build:etl` would write, built in memory (about 50 ms). */
export function bundleSha256(projectRoot: string): string {
  // Loaded lazily: esbuild is a build-time dependency, needed only where the stack is synthesized.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { buildSync } = require('esbuild') as typeof import('esbuild');
  const r = buildSync({ ...ETL_BUILD_OPTIONS, absWorkingDir: projectRoot, outfile: join(projectRoot, 'dist', 'etl.js'), write: false });
  const out = r.outputFiles?.[0];
  if (!out) throw new Error('esbuild produced no ETL bundle');
  return sha256(out.contents);
}
