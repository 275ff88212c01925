import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EtlError } from '../../etl/errors';
import { memoryLogger } from '../../etl/log';
import { standInRunSpec } from '../../scripts/stand-in-spec';
import { runOnNode, type RunOnNodeOptions } from '../../etl/remote/run-on-node';
import { faultyNode, NODE_SCRIPT, NODE_STATE } from '../support/node';
import { standInTarget } from '../support/run';

// Nodes that are not ready, reached through the real ssh path: the sshd stand-in with a key whose forced
// command puts stand-in commands first on PATH. Each failure stops before anything is loaded, and says what
// to do. No object store is involved: the runner must stop before it needs one.
const ROOT = join(__dirname, '..', '..');
const SECRET = 'failures-test-secret-0a1b2c3d';

async function failure(fakes: Record<string, string | null>, extra: Partial<RunOnNodeOptions> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'faulty-node-'));
  const node = faultyNode(dir, fakes);
  const log = memoryLogger();
  try {
    await runOnNode({
      spec: standInRunSpec({
        node,
        storage: { authUrl: 'http://127.0.0.1:9/v3', region: 'CHI@TACC', userId: 'u', appCredential: { id: 'id' } },
        container: 'object-persist-never',
        remoteDir: join(dir, 'etl'),
        source: join(dir, 'none.zip'),
      }),
      secret: SECRET,
      target: standInTarget(node),
      stage: 'all',
      run: { force: false, breakLock: false },
      mount: false,
      bundlePath: join(ROOT, 'dist', 'etl.js'),
      sshWaitSeconds: 10,
      cloudInitWaitSeconds: 5,
      minFreeMb: 50,
      log,
      ...extra,
    });
  } catch (e) {
    if (!(e instanceof EtlError)) throw e;
    const text = `${e.message}\n${e.hint ?? ''}`;
    expect([text, ...log.lines].join('\n')).not.toContain(SECRET);
    return { text, log: log.lines, dir, exitCode: e.exitCode };
  } finally {
    node.remove();
  }
  throw new Error('the run did not fail');
}

describe('a node that is not ready', () => {
  it('cloud-init failed: the error shows the tail of its log and says to recreate the node', async () => {
    const f = await failure({
      'cloud-init': 'echo "status: error"; exit 1',
      sudo: 'echo "E: Unable to locate package nodejs"; echo "Cloud-init v. 24.1 finished at Tue, 25 Nov 2025. Datasource DataSourceOpenStack. Up 95.2 seconds"',
    });
    expect(f.text).toMatch(/cloud-init failed on .*:\n.*Unable to locate package nodejs/);
    expect(f.text).toContain('cdktf deploy node');
  });

  it('cloud-init still running: waits for it, then goes on when it finishes', async () => {
    // Running on the first look, done after `status --wait`. The run then fails later (no object store), but
    // past the wait.
    const f = await failure({
      'cloud-init':
        'd=$(dirname "$0"); if [ "$2" = "--wait" ]; then sleep 1; touch "$d/.done"; exit 0; fi; if [ -e "$d/.done" ]; then echo "status: done"; else echo "status: running"; fi',
      rclone: null,
    });
    expect(f.log.some((l) => /cloud-init is still setting up/.test(l))).toBe(true);
    expect(f.text).toMatch(/rclone is missing/);
  });

  it('cloud-init that never finishes: stops after the wait and says how to watch it', async () => {
    const f = await failure(
      { 'cloud-init': 'if [ "$2" = "--wait" ]; then sleep 30; fi; echo "status: running"' },
      { cloudInitWaitSeconds: 1 },
    );
    expect(f.text).toMatch(/cloud-init is still running on .* after 1s/);
    expect(f.text).toContain('tail -f /var/log/cloud-init-output.log');
  });

  it('rclone missing: named, with how to install it, and the lock is released', async () => {
    const f = await failure({ rclone: null });
    expect(f.text).toMatch(/rclone is missing on .*\n.*apt-get install -y rclone/);
    expect(existsSync(join(f.dir, 'etl', '.lock'))).toBe(false);
  });

  it('a lock that cannot be taken (remote dir not writable) is not reported as a run holding it', async () => {
    const f = await failure({ mkdir: 'echo "mkdir: cannot create directory: Permission denied" >&2; exit 1' });
    expect(f.text).toMatch(/could not take the ETL lock .*: mkdir: cannot create directory: Permission denied/);
    expect(f.text).not.toContain('another ETL run');
  });

  it('disk full: says how much is free and what is needed', async () => {
    const f = await failure({
      df: 'printf "Filesystem 1048576-blocks Used Available Capacity Mounted on\\n/dev/vda1 20000 19990 10 100%% /\\n"',
    });
    expect(f.text).toMatch(/only 10 MB free on .*needs about 50 MB/);
  });

  it('the disk fills up during a stage: the runner says so and exits 74, as the ETL itself does', async () => {
    // Node 20 for the preflight; the ETL then stops as the bundle does on ENOSPC (etl/errors.ts, exit 74).
    const f = await failure({
      node: 'if [ "$1" = -p ]; then echo 20.11.1; else echo "error: disk full: No space left on device (writing work/output)" >&2; exit 74; fi',
    });
    expect(f.text).toMatch(/^the node ran out of disk space during 'etl all'/);
    expect(f.text).toContain('Readers still see the version');
    expect(f.exitCode).toBe(74);
  });

  it('Node.js too old: names the version and the fix', async () => {
    const f = await failure({ node: 'echo 16.20.2' });
    expect(f.text).toMatch(/Node.js 16.20.2 on .*>= 18/);
  });
});

describe('the shared sshd stand-in', () => {
  it('a second `up` from a parallel test file keeps the keys other tests added to the running node', () => {
    const dir = mkdtempSync(join(tmpdir(), 'faulty-node-'));
    const node = faultyNode(dir, { rclone: null });
    try {
      const key = readFileSync(`${node.privateKeyPath}.pub`, 'utf8').trim();
      execFileSync('bash', [NODE_SCRIPT, 'up', NODE_STATE], { stdio: 'ignore' });
      expect(readFileSync(join(NODE_STATE, 'authorized_keys'), 'utf8')).toContain(key);
    } finally {
      node.remove();
    }
  });
});
