import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mountCommand } from '../../etl/remote/node-commands';

/**
 * The runner's mount step on a systemd node (issue 14, items 1 and 2), fast: the real shell command, in a private
 * mount namespace where /run/systemd/system exists, with systemctl, sudo, mountpoint and journalctl replaced by
 * stand-ins that log their calls. The VM test (npm run test:vm) runs the same command against real systemd.
 */
const SERVICE = 'rclone-object-mount.service';

interface World {
  active: boolean;
  mounted: boolean;
  restartFails?: boolean;
}

function setUp(): { dir: string; home: string; bin: string; calls: string } {
  const dir = mkdtempSync(join(tmpdir(), 'mount-command-'));
  const home = join(dir, 'home');
  const bin = join(dir, 'bin');
  mkdirSync(join(home, '.config', 'rclone'), { recursive: true });
  mkdirSync(join(home, 'mnt', 'training'), { recursive: true });
  mkdirSync(bin);
  const calls = join(dir, 'calls');
  const tool = (name: string, body: string) => {
    writeFileSync(join(bin, name), `#!/bin/sh\n${body}\n`);
    chmodSync(join(bin, name), 0o755);
  };
  tool('sudo', 'exec "$@"');
  tool(
    'systemctl',
    `echo "systemctl $*" >> ${calls}
case "$1" in
  cat) exit 0 ;;
  is-active) [ "$WORLD_ACTIVE" = 1 ] ;;
  restart) [ "$WORLD_RESTART_FAILS" != 1 ] ;;
  *) exit 0 ;;
esac`,
  );
  tool('mountpoint', `[ "$WORLD_MOUNTED" = 1 ]`);
  tool('journalctl', `echo "journalctl $*" >> ${calls}; echo 'Failed to create file system for "chi_tacc:c": Authorization Failed'`);
  return { dir, home, bin, calls };
}

function run(t: ReturnType<typeof setUp>, world: World): { status: number | null; stdout: string; stderr: string; calls: string[] } {
  writeFileSync(t.calls, '');
  const cmd = mountCommand({
    remote: 'chi_tacc',
    container: 'c',
    store: '~/mnt',
    rcloneConfigPath: '~/.config/rclone/rclone.conf',
    service: SERVICE,
  });
  const r = spawnSync(
    'unshare',
    ['--mount', '--propagation', 'private', 'sh', '-c', 'mount -t tmpfs none /run && mkdir -p /run/systemd/system && exec sh -c "$0"', cmd],
    {
      encoding: 'utf8',
      env: {
        PATH: `${t.bin}:${process.env.PATH}`,
        HOME: t.home,
        WORLD_ACTIVE: world.active ? '1' : '0',
        WORLD_MOUNTED: world.mounted ? '1' : '0',
        WORLD_RESTART_FAILS: world.restartFails ? '1' : '0',
      },
    },
  );
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, calls: readFileSync(t.calls, 'utf8').split('\n').filter(Boolean) };
}

const conf = (t: ReturnType<typeof setUp>, text: string) =>
  writeFileSync(join(t.home, '.config', 'rclone', 'rclone.conf'), text, { mode: 0o600 });

describe("the runner's mount step on a systemd node", () => {
  const t = setUp();

  test('first run: resets failed units, restarts the mount, starts the .path unit, records the config it mounted with', () => {
    conf(t, '[chi_tacc]\napplication_credential_secret = one\n');
    const r = run(t, { active: true, mounted: true });
    expect(r.status).toBe(0);
    expect(r.calls.slice(0, 2)).toEqual([`systemctl cat ${SERVICE}`, `systemctl reset-failed ${SERVICE} rclone-object-mount.path`]);
    expect(r.calls).toContain(`systemctl restart ${SERVICE}`);
    expect(r.calls[r.calls.length - 1]).toBe('systemctl start rclone-object-mount.path');
    const stamp = join(t.home, '.config', 'rclone', 'rclone.conf.mounted');
    expect(readFileSync(stamp, 'utf8')).toMatch(/^[0-9a-f]{64}\n$/);
  });

  test('same config and the mount up: not restarted (running readers keep their mount)', () => {
    const r = run(t, { active: true, mounted: true });
    expect(r.status).toBe(0);
    expect(r.calls).not.toContain(`systemctl restart ${SERVICE}`);
    expect(r.calls[1]).toMatch(/^systemctl reset-failed/);
    expect(r.stderr).toContain('mount: unchanged, not restarted');
  });

  test('the mount down (service inactive, or the mount point not mounted): restarted', () => {
    expect(run(t, { active: false, mounted: true }).calls).toContain(`systemctl restart ${SERVICE}`);
    expect(run(t, { active: true, mounted: false }).calls).toContain(`systemctl restart ${SERVICE}`);
  });

  test('rclone.conf changed (a new credential): restarted', () => {
    conf(t, '[chi_tacc]\napplication_credential_secret = two\n');
    const r = run(t, { active: true, mounted: true });
    expect(r.calls).toContain(`systemctl restart ${SERVICE}`);
    expect(run(t, { active: true, mounted: true }).calls).not.toContain(`systemctl restart ${SERVICE}`);
  });

  test('a restart that fails: non-zero, the journal quoted on stderr, the config not recorded as mounted', () => {
    conf(t, '[chi_tacc]\napplication_credential_secret = three\n');
    const stamp = join(t.home, '.config', 'rclone', 'rclone.conf.mounted');
    const before = readFileSync(stamp, 'utf8');
    const r = run(t, { active: false, mounted: false, restartFails: true });
    expect(r.stdout.split('\n')).not.toContain('mount: unchanged, not restarted');
    expect(r.stderr).toContain('Authorization Failed');
    expect(r.calls).toContain(`journalctl -u ${SERVICE} -n 12 --no-pager -o cat`);
    expect(r.calls).not.toContain('systemctl start rclone-object-mount.path');
    expect(readFileSync(stamp, 'utf8')).toBe(before);
    expect(r.calls.filter((c) => c.startsWith('systemctl restart')).length).toBe(1);
  });
});
