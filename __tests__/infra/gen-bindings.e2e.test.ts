import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';

const ROOT = resolve(__dirname, '..', '..');

function tree(dir: string): Map<string, string> {
  const files = new Map<string, string>();
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else files.set(relative(dir, p), readFileSync(p, 'utf8'));
    }
  };
  walk(dir);
  return files;
}

describe('npm run gen:bindings', () => {
  test('regenerating gives exactly the committed bindings and filtered schema', () => {
    const out = mkdtempSync(join(tmpdir(), 'gen-bindings-'));
    const r = spawnSync('npx', ['tsx', 'scripts/gen-bindings.ts', out], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
    expect(`${r.stdout}${r.stderr}`).toMatch(/gen-bindings: 9 resources, 2 data sources/);
    expect(r.status).toBe(0);
    const generated = tree(out);
    const committed = tree(join(ROOT, '.gen'));
    expect([...generated.keys()].sort()).toEqual([...committed.keys()].sort());
    for (const [file, text] of generated) expect([file, text === committed.get(file)]).toEqual([file, true]);
  });
});
