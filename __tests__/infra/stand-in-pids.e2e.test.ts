import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// A stand-in's pid file outlives its daemon; the kernel then recycles the PID for an unrelated process. The
// scripts must not take that process for the daemon (status, up) nor kill it (down). Here the "unrelated
// process" is a sleep started after the pid file was written.
const SCRIPTS = join(__dirname, '..', '..', 'scripts');
const children: ChildProcess[] = [];
afterAll(() => children.forEach((c) => c.kill()));

function sleeper(): number {
  const c = spawn('sleep', ['60'], { stdio: 'ignore' });
  children.push(c);
  return c.pid!;
}
const alive = (pid: number) => spawnSync('kill', ['-0', String(pid)]).status === 0;
const run = (script: string, cmd: string, dir: string) => spawnSync('bash', [join(SCRIPTS, script), cmd, dir], { encoding: 'utf8' });

/** A pid file naming `pid`, written a minute ago (before `pid` started) or now (after). */
function pidFile(path: string, pid: number, writtenBeforeStart: boolean): void {
  writeFileSync(path, `${pid}\n`);
  if (writtenBeforeStart) utimesSync(path, new Date(Date.now() - 60_000), new Date(Date.now() - 60_000));
}

describe('stand-in pid files and recycled PIDs', () => {
  it('local-node.sh: a recycled sshd PID is reported stopped and is not killed by down', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pids-node-'));
    const stranger = sleeper();
    pidFile(join(dir, 'sshd.pid'), stranger, true);
    const status = run('local-node.sh', 'status', dir);
    expect([status.status, status.stdout.trim()]).toEqual([1, 'sshd: stopped']);
    run('local-node.sh', 'down', dir);
    expect(alive(stranger)).toBe(true);
  });

  it('local-node.sh: the process it did start is running, and down stops it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pids-node-'));
    const own = sleeper();
    const exited = new Promise<string>((resolve) => children[children.length - 1].on('exit', (_code, signal) => resolve(String(signal))));
    pidFile(join(dir, 'sshd.pid'), own, false);
    writeFileSync(join(dir, 'port'), '2222\n');
    expect(run('local-node.sh', 'status', dir).stdout).toMatch(new RegExp(`sshd: running \\(pid ${own},`));
    run('local-node.sh', 'down', dir);
    expect(await exited).toBe('SIGTERM');
  });

  it('local-openstack.sh: a recycled daemon PID is stopped for status and spared by down; a recycled test-run PID does not keep it up', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pids-os-'));
    mkdirSync(join(dir, 'pids'));
    mkdirSync(join(dir, 'users'));
    const stranger = sleeper();
    pidFile(join(dir, 'pids', 'keystone.pid'), stranger, true);
    expect(run('local-openstack.sh', 'status', dir).stdout).toContain('keystone: stopped');
    // A registration of a test run whose PID now belongs to another process.
    const recycledRun = sleeper();
    pidFile(join(dir, 'users', String(recycledRun)), recycledRun, true);
    const down = run('local-openstack.sh', 'down', dir);
    expect(down.stderr).not.toContain('left running');
    expect(down.stderr).toContain('stopped');
    expect(alive(stranger)).toBe(true);
  });

  it('local-openstack.sh: a stamped daemon is known by its start in ticks since boot, so a wall clock stepped forward after it started does not make it a stranger (nor a stamp of another process with its PID a daemon)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pids-step-'));
    mkdirSync(join(dir, 'pids'));
    const own = sleeper();
    const file = join(dir, 'pids', 'keystone.pid');
    // Written, then stamped, as start_daemon does; then dated a minute before the process started: what the
    // process's start looks like against the file after the clock stepped forward by a minute.
    pidFile(file, own, false);
    expect(spawnSync('bash', ['-c', `. ${join(SCRIPTS, 'pids.sh')} && pid_stamp "$1"`, 'stamp', file]).status).toBe(0);
    utimesSync(file, new Date(Date.now() - 60_000), new Date(Date.now() - 60_000));
    expect(run('local-openstack.sh', 'status', dir).stdout).toContain(`keystone: running (pid ${own})`);
    // Without the stamp the same file is the recycled-PID case: stopped (what took every daemon for dead here).
    const stamp = readFileSync(`${file}.start`, 'utf8');
    rmSync(`${file}.start`);
    expect(run('local-openstack.sh', 'status', dir).stdout).toContain('keystone: stopped');
    // A stamp with this PID but another start: a recycled PID, stopped, and down spares it.
    writeFileSync(`${file}.start`, `${own} ${Number(stamp.split(' ')[1]) + 1}\n`);
    expect(run('local-openstack.sh', 'status', dir).stdout).toContain('keystone: stopped');
    run('local-openstack.sh', 'down', dir);
    expect(alive(own)).toBe(true);
  });
});
