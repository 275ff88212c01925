import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { TEST_RUN_PID_ENV } from '../support/global-setup';

// The stand-ins register the test run that uses them (LOCAL_OPENSTACK_RUN_PID), and the jest teardown's `down`
// releases the run whose PID is its parent: the jest main process. When the registered PID was another one (in
// band it was npm's `sh -c jest`), the teardown left Keystone + Swift running for the watchdog to stop.
const ROOT = join(__dirname, '..', '..');

function jestRun(args: string[]): Promise<{ pid: number; output: string; code: number | null }> {
  const config = {
    rootDir: ROOT,
    roots: ['<rootDir>/__tests__/support/probes'],
    testMatch: ['**/*.probe.ts'],
    transform: { '^.+\\.ts$': ['ts-jest', { diagnostics: false }] },
    globalSetup: '<rootDir>/__tests__/support/global-setup.ts',
    testEnvironment: 'node',
  };
  const child = spawn(
    process.execPath,
    [join(ROOT, 'node_modules', 'jest', 'bin', 'jest.js'), '--config', JSON.stringify(config), ...args],
    {
      cwd: ROOT,
      // The outer run's PID must not leak in: the inner jest's own global setup records its own.
      env: { ...process.env, [TEST_RUN_PID_ENV]: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d));
  child.stderr.on('data', (d: Buffer) => (output += d));
  return new Promise((resolve) => child.on('close', (code) => resolve({ pid: child.pid!, output, code })));
}

describe('the test run the stand-ins register is the jest main process', () => {
  it('in band (npm run test:vm, test:cloud): the jest process itself, not its parent', async () => {
    const r = await jestRun(['--runInBand']);
    expect(r.code).toBe(0);
    expect(/registered run pid (\d+)/.exec(r.output)?.[1]).toBe(String(r.pid));
  }, 60_000);
});
