import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import {
  MOUNT_PATH_UNIT,
  MOUNT_SERVICE,
  NOVA_USER_DATA_LIMIT,
  READY_MARKER,
  SETUP_SCRIPT,
  defaultCloudInitOptions,
  renderCloudConfig,
  type NodeCloudInitOptions,
} from '../../cloud-init/render';
import { SENTINEL_SECRET } from './helpers';

const options: NodeCloudInitOptions = defaultCloudInitOptions('cc', 'object-persist-proj99', '/home/cc/chameleon-persist');
const rendered = renderCloudConfig(options);
const doc = parse(rendered) as Record<string, any>;
const file = (path: string): string => {
  const entry = (doc.write_files as Array<Record<string, string>>).find((f) => f.path === path);
  if (!entry) throw new Error(`no write_files entry ${path}`);
  return entry.content as string;
};
const service = file(`/etc/systemd/system/${MOUNT_SERVICE}`);
const pathUnit = file(`/etc/systemd/system/${MOUNT_PATH_UNIT}`);
const script = file(SETUP_SCRIPT);

/** Debian's cloud-init; installed by scripts/system-deps.sh (npm test's pretest) and by .ci/run. */
function cloudInitBinary(): string {
  const found = spawnSync('sh', ['-c', 'command -v cloud-init'], { encoding: 'utf8' });
  const path = found.stdout.trim();
  if (found.status !== 0 || !path) {
    throw new Error(
      'cloud-init is not installed, so the rendered #cloud-config cannot be validated. Install it with ' +
        '`apt-get install -y --no-install-recommends cloud-init` (or run `bash scripts/system-deps.sh`).',
    );
  }
  return path;
}

function schemaCheck(text: string): { status: number | null; output: string } {
  const dir = mkdtempSync(join(tmpdir(), 'cloud-config-'));
  const path = join(dir, 'user-data.yaml');
  writeFileSync(path, text);
  const r = spawnSync(cloudInitBinary(), ['schema', '--config-file', path], { encoding: 'utf8' });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

describe("validated by cloud-init's own schema", () => {
  test('cloud-init schema --config-file accepts the rendered config', () => {
    const r = schemaCheck(rendered);
    expect(r.output).toMatch(/Valid cloud-config/);
    expect(r.status).toBe(0);
  });

  test('the validator really rejects a broken config (control)', () => {
    const broken = rendered.replace('packages:\n', 'packages: 5\nunused:\n');
    expect(schemaCheck(broken).status).not.toBe(0);
    const noPath = `#cloud-config\nwrite_files:\n  - content: hello\n`;
    expect(schemaCheck(noPath).status).not.toBe(0);
  });

  test('cloud-init version is the one the docs describe (22.x or later)', () => {
    const version = execFileSync(cloudInitBinary(), ['--version'], { encoding: 'utf8' }).trim();
    expect(cloudInitMajor(version)).toBeGreaterThanOrEqual(22);
  });

  test('cloudInitMajor reads the version line (known answers, and a line without a version)', () => {
    expect(cloudInitMajor('/usr/bin/cloud-init 22.4.2')).toBe(22);
    expect(cloudInitMajor('/usr/bin/cloud-init 21.4')).toBe(21);
    expect(cloudInitMajor('cloud-init 24.1.3-0ubuntu1~22.04.1')).toBe(24);
    expect(cloudInitMajor('no version here')).toBeNaN();
  });
});

describe('the keys we rely on (this cloud-init version does not report unknown top-level keys)', () => {
  test('starts with #cloud-config and has exactly the expected top-level keys', () => {
    expect(rendered.startsWith('#cloud-config\n')).toBe(true);
    expect(Object.keys(doc).sort()).toEqual(['package_update', 'package_upgrade', 'packages', 'runcmd', 'write_files']);
  });

  test('installs fuse3; rclone, Docker and Node.js from the Ubuntu archive only if the image lacks them', () => {
    expect(doc.package_update).toBe(true);
    expect(doc.packages).toEqual(['fuse3']);
    expect(script).toContain('apt_install() { apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "$@"; }');
    // needrestart (CC-Ubuntu24.04 ships it) must not restart ssh or cloud-final in the middle of cloud-init.
    expect(script).toMatch(/^export NEEDRESTART_MODE=l NEEDRESTART_SUSPEND=1$/m);
    expect(script.indexOf('NEEDRESTART_MODE=l')).toBeLessThan(script.indexOf('apt_install rclone'));
    expect(script).toContain('command -v rclone >/dev/null || apt_install rclone');
    expect(script).toContain('command -v docker >/dev/null || apt_install docker.io');
    expect(script).toContain('command -v node >/dev/null || apt_install nodejs');
    expect(script).toMatch(/for cmd in rclone docker node fusermount3; do\n.*command -v "\$cmd" >\/dev\/null \|\| \{ log .*exit 1; \}/);
    expect(rendered).not.toMatch(/rclone\.org\/install\.sh|curl .*\| *(sudo )?bash|nodesource|download\.docker\.com/);
  });

  test('checks Node.js is at least 18', () => {
    expect(script).toMatch(/node_major=.*process\.versions\.node/);
    expect(script).toContain('if [ "$node_major" -lt 18 ]');
  });

  test('enables user_allow_other in /etc/fuse.conf, idempotently', () => {
    expect(script).toContain("grep -qx 'user_allow_other' /etc/fuse.conf 2>/dev/null || echo 'user_allow_other' >> /etc/fuse.conf");
  });

  test('creates the store mount point and the view link directory owned by cc, /mnt/object as a link to the view, the ETL directory and the private rclone config directory', () => {
    expect(script).toContain('install -d -o cc -g cc -m 0755 /mnt/object-store');
    expect(script).toContain('install -d -o cc -g cc -m 0755 /mnt/.object-view');
    expect(script).toContain(
      '[ -L /mnt/object ] || { rmdir /mnt/object 2>/dev/null || true; ln -s /mnt/.object-view/current /mnt/object; }',
    );
    expect(script).toContain('install -d -o cc -g cc -m 0755 /home/cc/chameleon-persist');
    expect(script).toContain('runuser -u cc -- mkdir -p /home/cc/.config/rclone');
    expect(script).toContain('chmod 0700 /home/cc/.config/rclone');
    expect(script).toContain('usermod -aG docker cc');
  });

  test('the mount service: read-only, --allow-other, as cc, restarts forever, waits for the config', () => {
    expect(service).toContain('ExecStart=/usr/bin/env rclone mount chi_tacc:object-persist-proj99 /mnt/object-store --config');
    expect(service).toContain(' --dir-cache-time 10s');
    expect(service).toContain('--config /home/cc/.config/rclone/rclone.conf');
    expect(service).toMatch(/ --read-only/);
    expect(service).toMatch(/ --allow-other/);
    expect(service).toMatch(/^User=cc$/m);
    expect(service).toMatch(/^Restart=always$/m);
    expect(service).toMatch(/^RestartSec=10$/m);
    // No start rate limit: a start limit would kill the service and, with it, the .path unit (unit-start-limit-hit).
    expect(service).toMatch(/^StartLimitIntervalSec=0$/m);
    expect(service).not.toMatch(/^StartLimitBurst=/m);
    // Backoff keys systemd 252 (Debian 12) does not know would only log "Unknown key name".
    expect(service).not.toMatch(/^Restart(Steps|MaxDelaySec)=/m);
    expect(service).toMatch(/^Type=notify$/m);
    // Without the config the unit is skipped, not failed: the boot stays clean.
    expect(service).toMatch(/^ConditionPathExists=\/home\/cc\/\.config\/rclone\/rclone\.conf$/m);
    expect(service).toMatch(/^WantedBy=multi-user.target$/m);
    expect(service).toMatch(/^ExecStop=\/bin\/fusermount3 -uz \/mnt\/object-store$/m);
    // A stale mount is cleared only when there is one: no FAILURE line in systemctl status on a healthy start.
    expect(service).toContain(
      "ExecStartPre=/bin/sh -c 'if findmnt -rn --mountpoint /mnt/object-store >/dev/null; then exec /bin/fusermount3 -uz /mnt/object-store; fi'",
    );
    expect(service).not.toMatch(/^ExecStartPre=-/m);
  });

  test('the stale-mount clean-up succeeds on a clean start, and unmounts only a mounted point', () => {
    const pre = /^ExecStartPre=\/bin\/sh -c '(.*)'$/m.exec(service)?.[1];
    expect(pre).toBeDefined();
    const dir = mkdtempSync(join(tmpdir(), 'mnt-'));
    // Not mounted: nothing to clear, exit 0 (the old `-/bin/fusermount3 -uz` "failed" here on every start).
    const clean = spawnSync('sh', ['-c', pre!.replaceAll('/mnt/object-store', dir)], { encoding: 'utf8' });
    expect([clean.status, clean.stderr]).toEqual([0, '']);
    // Mounted (a tmpfs, in a private mount namespace of its own): the guard lets fusermount3 clear it.
    const script = `mount -t tmpfs none ${dir} && findmnt -rn --mountpoint ${dir} >/dev/null && echo mounted; (${pre!.replaceAll('/mnt/object-store', dir)}); findmnt -rn --mountpoint ${dir} >/dev/null || echo cleared`;
    const mounted = spawnSync('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script], { encoding: 'utf8' });
    expect(mounted.stdout).toBe('mounted\ncleared\n');
  });

  test('the path unit starts the mount when the config arrives', () => {
    expect(pathUnit).toMatch(/^PathExists=\/home\/cc\/\.config\/rclone\/rclone\.conf$/m);
    expect(pathUnit).toMatch(new RegExp(`^Unit=${MOUNT_SERVICE.replace('.', '\\.')}$`, 'm'));
    expect(pathUnit).toMatch(/^WantedBy=multi-user.target$/m);
  });

  test('units are enabled (survive reboots) and the setup script runs from runcmd', () => {
    expect(script).toContain(`systemctl enable ${MOUNT_SERVICE}`);
    expect(script).toContain(`systemctl enable --now ${MOUNT_PATH_UNIT}`);
    expect(script).toContain('systemctl enable --now docker.service');
    expect(doc.runcmd).toEqual([[SETUP_SCRIPT]]);
    expect(script.startsWith('#!/bin/bash\n')).toBe(true);
    expect(script).toContain('set -euo pipefail');
    expect(script).toContain(`> ${READY_MARKER}`);
  });

  test('the setup script is valid bash', () => {
    const r = spawnSync('bash', ['-n'], { input: script, encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  test('write_files are root-owned with explicit modes (cc may not exist yet when they are written)', () => {
    for (const f of doc.write_files as Array<Record<string, string>>) {
      expect(f.owner).toBe('root:root');
      expect(f.permissions).toMatch(/^0[0-7]{3}$/);
    }
  });
});

describe('no secrets, small, deterministic', () => {
  test('the options type has no place for a secret, and nothing secret-like is rendered', () => {
    expect(Object.keys(options).sort()).toEqual(
      ['containerName', 'etlDir', 'minNodeMajor', 'mountPoint', 'rcloneConfigPath', 'remoteName', 'user'].sort(),
    );
    expect(rendered).not.toMatch(/application_credential_secret|secret\s*=|password/i);
    expect(rendered).not.toContain(SENTINEL_SECRET);
    // The rclone config is delivered later over SSH, never written by cloud-init.
    expect((doc.write_files as Array<Record<string, string>>).map((f) => f.path)).not.toContain(options.rcloneConfigPath);
  });

  test(`far below Nova's ${NOVA_USER_DATA_LIMIT}-byte user_data limit (base64-encoded)`, () => {
    const encoded = Buffer.from(rendered, 'utf8').toString('base64').length;
    expect(encoded).toBeLessThan(NOVA_USER_DATA_LIMIT);
    // Keep a wide margin: a quarter of the limit.
    expect(encoded).toBeLessThan(NOVA_USER_DATA_LIMIT / 4);
  });

  test('same options, same bytes (a change would replace the server)', () => {
    expect(renderCloudConfig({ ...options })).toBe(rendered);
  });

  test('other options are rendered through', () => {
    const other = renderCloudConfig({
      ...options,
      user: 'ubuntu',
      remoteName: 'store',
      containerName: 'object-persist-x',
      rcloneConfigPath: '/home/ubuntu/.rclone.conf',
      mountPoint: '/data',
      minNodeMajor: 20,
    });
    expect(other).toContain('rclone mount store:object-persist-x /data-store --config /home/ubuntu/.rclone.conf');
    expect(other).toContain('User=ubuntu');
    expect(other).toContain('if findmnt -rn --mountpoint /data-store >/dev/null; then exec /bin/fusermount3 -uz /data-store; fi');
    expect(other).toContain('-lt 20 ]');
    expect(other).toContain('runuser -u ubuntu -- mkdir -p /home/ubuntu');
  });

  test.each<[Partial<NodeCloudInitOptions>, RegExp]>([
    [{ user: 'cc; rm -rf /' }, /user .* is not a plain name/],
    [{ containerName: 'a b' }, /containerName/],
    [{ mountPoint: 'relative/dir' }, /mountPoint .* is not a plain absolute path/],
    [{ rcloneConfigPath: '/home/cc/../etc/passwd' }, /rcloneConfigPath/],
    [{ etlDir: '/home/cc/$(id)' }, /etlDir/],
    [{ minNodeMajor: 0 }, /minNodeMajor/],
  ])('refuses options that would need shell quoting: %j', (patch, message) => {
    expect(() => renderCloudConfig({ ...options, ...patch })).toThrow(message);
  });
});

/** The major version from `cloud-init --version` (`/usr/bin/cloud-init 22.4.2` -> 22); NaN when there is none. */
function cloudInitMajor(versionLine: string): number {
  const m = /(?:^|\s)(\d+)\.\d+/.exec(versionLine);
  return m ? Number(m[1]) : NaN;
}
