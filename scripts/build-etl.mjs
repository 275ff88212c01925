// Bundles the ETL CLI and its dependencies into one file that runs with plain `node` (>= 18) on the node,
// in the tests and in the demo: the same code everywhere, nothing to install on the node but rclone.
// The options live in etl/bundle-options.json, which etl/remote/bundle.ts also builds with to hash the bundle
// for the etl stack's trigger. The transform's worker threads load this same file (see etl/transform), so it
// must stay one file.
import { build } from 'esbuild';
import { readFileSync, statSync } from 'node:fs';

const options = JSON.parse(readFileSync(new URL('../etl/bundle-options.json', import.meta.url), 'utf8'));
const outfile = process.argv[2] ?? 'dist/etl.js';
await build({ ...options, outfile });
process.stderr.write(`built ${outfile} (${(statSync(outfile).size / 1024).toFixed(0)} KiB)\n`);
