import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The jest main process's PID (the one that runs the teardown), for workers and in-band tests alike. */
export const TEST_RUN_PID_ENV = 'CHAMELEON_PERSIST_TEST_RUN_PID';

/**
 * Every temporary file of a test run (ours, cdktf's Testing outdirs, rclone's) lands in one directory that the
 * teardown removes: workers inherit TMPDIR from this process, and os.tmpdir() honours it.
 */
export default async function globalSetup(): Promise<void> {
  const runDir = mkdtempSync(join(tmpdir(), 'chameleon-persist-tests-'));
  process.env.CHAMELEON_PERSIST_TEST_TMPDIR = runDir;
  process.env.TMPDIR = runDir;
  process.env[TEST_RUN_PID_ENV] = String(process.pid);
}
