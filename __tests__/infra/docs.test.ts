import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FIELDS, configReferenceTable, envNameFor } from '../../config';

const ROOT = join(__dirname, '..', '..');
const docs = readFileSync(join(ROOT, 'docs', 'infra.md'), 'utf8');
const example = readFileSync(join(ROOT, 'persist.config.example.yaml'), 'utf8');

describe('docs/infra.md and the example stay in sync with the configuration', () => {
  test('the reference table is exactly the one generated from config/fields.ts', () => {
    // Regenerate with: npx tsx config/reference.ts
    expect(docs).toContain(configReferenceTable());
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
