import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { recoverInterrupted, replaceDir } from '../../etl/replace-dir';

// replaceDir and its crash recovery (etl/replace-dir.ts).
const deadPid = (): number => spawnSync('true').pid as number; // exited and reaped: no process has it now

function dirWith(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'replace-'));
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(join(dir, rel, '..'), { recursive: true });
    writeFileSync(join(dir, rel), text);
  }
  return dir;
}

describe('replaceDir / recoverInterrupted', () => {
  test('replaceDir puts the new directory in place and removes the old one', () => {
    const dir = dirWith({ 'out/a': 'old', 'fresh/a': 'new' });
    replaceDir(join(dir, 'fresh'), join(dir, 'out'));
    expect(readdirSync(dir)).toEqual(['out']);
    expect(readFileSync(join(dir, 'out', 'a'), 'utf8')).toBe('new');
  });

  test('killed between the two renames: the old directory is moved back', () => {
    const pid = deadPid();
    const dir = dirWith({ [`out.old-${pid}/a`]: 'old' });
    expect(recoverInterrupted(dir, 'out')).toEqual([`restored out from out.old-${pid} (a run was killed while replacing it)`]);
    expect(readFileSync(join(dir, 'out', 'a'), 'utf8')).toBe('old');
  });

  test("a dead run's tmp directory, and an old one beside a present target, are removed; a live one is kept", () => {
    const pid = deadPid();
    const dir = dirWith({
      'out/a': 'cur',
      [`out.tmp-${pid}/a`]: 'half',
      [`out.old-${pid}/a`]: 'old',
      [`out.tmp-${process.ppid}/a`]: 'live',
      [`outer.tmp-${pid}/a`]: 'other',
    });
    expect(recoverInterrupted(dir, 'out').sort()).toEqual([
      `removed out.old-${pid} (left by a run that was killed)`,
      `removed out.tmp-${pid} (left by a run that was killed)`,
    ]);
    expect(readdirSync(dir).sort()).toEqual(['out', `out.tmp-${process.ppid}`, `outer.tmp-${pid}`].sort());
    expect(existsSync(join(dir, 'out', 'a'))).toBe(true);
  });

  test('a missing parent is nothing to do', () => {
    expect(recoverInterrupted(join(tmpdir(), 'does-not-exist-replace-dir'), 'out')).toEqual([]);
  });
});
