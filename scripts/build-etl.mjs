// Bundles the ETL CLI and its dependencies into one file that runs with plain `node` (>= 18) on the node,
// in the tests and in the demo: the same code everywhere, nothing to install on the node but rclone.
import { build } from 'esbuild';
import { statSync } from 'node:fs';

const outfile = process.argv[2] ?? 'dist/etl.js';
await build({
  entryPoints: ['etl/cli.ts'],
  outfile,
  bundle: true,
  platform: 'node',
  target: 'node18',
  format: 'cjs',
  // The transform's worker threads load this same file (see etl/transform), so it must stay one file.
  sourcemap: false,
  minify: false,
  legalComments: 'none',
  logLevel: 'warning',
});
process.stderr.write(`built ${outfile} (${(statSync(outfile).size / 1024).toFixed(0)} KiB)\n`);
