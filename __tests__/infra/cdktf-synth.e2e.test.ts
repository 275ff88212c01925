import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { checkStack, loadFilteredSchema } from '../../testing/schema-conformance';
import { SENTINEL_SECRET, validConfigYaml } from './helpers';

/**
 * `npx cdktf synth` exactly as a user runs it (cdktf.json's app command, no `cdktf get`, no network), with the
 * configuration given through PERSIST_CONFIG_FILE and the output sent to a temporary directory so the working
 * tree stays untouched.
 */
const ROOT = resolve(__dirname, '..', '..');
const work = mkdtempSync(join(tmpdir(), 'persist-synth-'));

function cdktfSynth(configText: string, extraEnv: Record<string, string> = {}) {
  const configFile = join(work, `config-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(configFile, configText);
  const outDir = mkdtempSync(join(work, 'out-'));
  const env: Record<string, string | undefined> = {
    ...process.env,
    PERSIST_CONFIG_FILE: configFile,
    CHECKPOINT_DISABLE: '1', // no version check / telemetry call to checkpoint-api.hashicorp.com
    CI: '1',
    ...extraEnv,
  };
  for (const k of Object.keys(env)) if (k.startsWith('PERSIST_') && !(k in extraEnv) && k !== 'PERSIST_CONFIG_FILE') delete env[k];
  const r = spawnSync('npx', ['cdktf', 'synth', '--output', outDir], { cwd: ROOT, env, encoding: 'utf8', timeout: 170_000 });
  return { status: r.status, output: `${r.stdout}\n${r.stderr}`, outDir };
}

const validConfig = validConfigYaml();

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? filesUnder(join(dir, e.name)) : [join(dir, e.name)]));
}

describe('npx cdktf synth', () => {
  const byo = { PERSIST_APP_CREDENTIAL_ID: 'b'.repeat(32), PERSIST_APP_CREDENTIAL_SECRET: SENTINEL_SECRET };
  let run: ReturnType<typeof cdktfSynth>;
  beforeAll(() => {
    run = cdktfSynth(validConfig, byo);
  });

  test('succeeds and writes every stack', () => {
    if (run.status !== 0) throw new Error(`cdktf synth failed:\n${run.output}`);
    const manifest = JSON.parse(readFileSync(join(run.outDir, 'manifest.json'), 'utf8'));
    const stacks = Object.keys(manifest.stacks).sort();
    expect(stacks).toEqual(expect.arrayContaining(['node', 'storage']));
    for (const name of stacks) expect(existsSync(join(run.outDir, 'stacks', name, 'cdk.tf.json'))).toBe(true);
  });

  test('every synthesized stack conforms to the provider schema', () => {
    const schema = loadFilteredSchema();
    for (const name of readdirSync(join(run.outDir, 'stacks'))) {
      const stack = JSON.parse(readFileSync(join(run.outDir, 'stacks', name, 'cdk.tf.json'), 'utf8'));
      expect([name, checkStack(stack, schema)]).toEqual([name, []]);
    }
  });

  test('a bring-your-own secret from the environment is in no file written', () => {
    for (const f of filesUnder(run.outDir)) expect([f, readFileSync(f, 'utf8').includes(SENTINEL_SECRET)]).toEqual([f, false]);
    expect(run.output).not.toContain(SENTINEL_SECRET);
  });

  test('a bad configuration stops synth with the field, the problem and the fix, and no stack trace', () => {
    const bad = cdktfSynth('teamId: Bad Team\nssh:\n  allowedCidr: 10.0.0.1\nnode:\n  flavour: m1.large\n');
    expect(bad.status).not.toBe(0);
    expect(bad.output).toMatch(/teamId \(env PERSIST_TEAM_ID\): "Bad Team" must be/);
    expect(bad.output).toMatch(/credential\.expiresAt \(env PERSIST_CREDENTIAL_EXPIRES_AT\): is required/);
    expect(bad.output).toMatch(/ssh\.allowedCidr .*write 10\.0\.0\.1\/32/);
    expect(bad.output).toMatch(/node\.flavour: is not a known field\s+fix: did you mean node\.flavor\?/);
    expect(bad.output).toMatch(/fix: /);
    expect(bad.output).not.toMatch(/^\s+at .+\(.*:\d+:\d+\)$/m);
    expect(bad.output).not.toMatch(/ZodError|TypeError|\.ts:\d+:\d+/);
    expect(existsSync(join(bad.outDir, 'stacks'))).toBe(false);
  });
});
