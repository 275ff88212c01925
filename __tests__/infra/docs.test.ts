import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FIELDS, configReferenceTable, envNameFor } from '../../config';

const ROOT = join(__dirname, '..', '..');
const docs = readFileSync(join(ROOT, 'docs', 'infra.md'), 'utf8');
const example = readFileSync(join(ROOT, 'persist.config.example.yaml'), 'utf8');
const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');

describe('docs/infra.md and the example stay in sync with the configuration', () => {
  test('the reference table is exactly the one generated from config/fields.ts', () => {
    // Regenerate with: npx tsx config/reference.ts
    expect(docs).toContain(configReferenceTable());
  });

  test('the README carries the same generated table, and the commands it documents exist', () => {
    expect(readme).toContain(configReferenceTable());
    const scripts = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).scripts as Record<string, string>;
    for (const m of readme.matchAll(/npm run ([a-z0-9:]+)/g)) expect([m[1], m[1] in scripts]).toEqual([m[1], true]);
    // The README's test command is the one CI runs, and the apt step is in it, explicitly.
    const testCommand = 'npm ci && npm run setup && npm test && npm run test:vm';
    expect(readme).toContain(`| \`${testCommand}\` |`);
    expect(readFileSync(join(ROOT, '.ci', 'run'), 'utf8').split('\n')).toContain(testCommand);
    expect(scripts.setup).toBe('bash scripts/system-deps.sh');
    // No hidden install: the test scripts only check for the packages (system-deps.sh --check installs nothing).
    for (const name of ['pretest', 'test', 'pretest:e2e', 'test:e2e', 'pretest:unit', 'test:unit']) {
      expect([name, /system-deps\.sh(?! --check)/.test(scripts[name] ?? '')]).toEqual([name, false]);
    }
  });

  test('every field appears in the commented example', () => {
    for (const f of FIELDS) {
      const leaf = f.path.split('.').pop() as string;
      expect([f.path, new RegExp(`^\\s*#?\\s*${leaf}:`, 'm').test(example)]).toEqual([f.path, true]);
    }
  });

  test('the docs name the commands and the pitfalls', () => {
    for (const text of [
      'npx cdktf deploy storage node',
      'npx cdktf destroy node',
      'npx cdktf destroy storage',
      'rclone-object-mount.service',
      'PERSIST_APP_CREDENTIAL_SECRET',
      'not allowed for managing additional',
      'Unrestricted',
      envNameFor('teamId'),
    ]) {
      expect(docs).toContain(text);
    }
  });
});
