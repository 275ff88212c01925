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
  // One stand-in that fails to stop must not leave the others running: each is tried, the failures are reported
  // together at the end (a dependent one, the cloud, sorts before the Keystone it uses).
  const failures: string[] = [];
  for (const name of readdirSync(STAND_INS_DIR)) {
    const stateDir = join(STAND_INS_DIR, name);
    const marker = join(stateDir, STARTED_MARKER);
    if (!existsSync(marker)) continue;
    const script = readFileSync(marker, 'utf8').trim();
    try {
      execFileSync('bash', [script, 'down', stateDir], { stdio: 'inherit' });
    } catch (e) {
      failures.push(`${script} down ${stateDir}: ${(e as Error).message}`);
    } finally {
      rmSync(marker, { force: true });
    }
  }
  if (failures.length) throw new Error(`stopping the stand-ins this run started failed:\n${failures.join('\n')}`);
}
