/**
 * Checks every synthesized stack against the provider schema, as `terraform validate` would, without the
 * provider binary (testing/schema-conformance.ts). Exit 1 on problems, 2 when there is no synth output.
 *
 *   npx tsx scripts/check-schema.ts [cdktf.out]
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { checkStack, loadFilteredSchema } from '../testing/schema-conformance';

const outDir = resolve(process.argv[2] ?? 'cdktf.out');
const stacksDir = join(outDir, 'stacks');
if (!existsSync(stacksDir)) {
  console.error(`schema-conformance: ${stacksDir} does not exist; run \`npx cdktf synth\` first`);
  process.exit(2);
}
const schema = loadFilteredSchema();
let failed = 0;
for (const name of readdirSync(stacksDir)) {
  const file = join(stacksDir, name, 'cdk.tf.json');
  if (!existsSync(file)) continue;
  const problems = checkStack(JSON.parse(readFileSync(file, 'utf8')), schema);
  console.log(`${name}: ${problems.length === 0 ? 'ok' : `${problems.length} problem(s)`}`);
  for (const p of problems) console.log(`  ${p.path}: ${p.message}`);
  if (problems.length > 0) failed++;
}
process.exitCode = failed > 0 ? 1 : 0;
