import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Stand-ins started during this test run leave a marker `<stateDir>/.started-by-tests` holding the
 * script that stops them; stand-ins a developer started by hand have no marker and keep running.
 */
export const STAND_INS_DIR = join(__dirname, '..', '..', '.stand-ins');
export const STARTED_MARKER = '.started-by-tests';

export default async function globalTeardown(): Promise<void> {
  stopStandInsStartedByTests();
  // Last, once the stand-ins (and the mounts and sessions under them) are stopped: a process still writing
  // into the run's directory made the removal fail with ENOTEMPTY. Leftover temp files never fail a run.
  const runTmp = process.env.CHAMELEON_PERSIST_TEST_TMPDIR;
  if (runTmp) {
    try {
      rmSync(runTmp, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
    } catch (e) {
      process.stderr.write(`warning: could not remove the test run's temp dir ${runTmp}: ${(e as Error).message}\n`);
    }
  }
}

function stopStandInsStartedByTests(): void {
  if (!existsSync(STAND_INS_DIR)) return;
  for (const name of readdirSync(STAND_INS_DIR)) {
    const stateDir = join(STAND_INS_DIR, name);
    const marker = join(stateDir, STARTED_MARKER);
    if (!existsSync(marker)) continue;
    const script = readFileSync(marker, 'utf8').trim();
    try {
      execFileSync('bash', [script, 'down', stateDir], { stdio: 'inherit' });
    } finally {
      rmSync(marker, { force: true });
    }
  }
}
