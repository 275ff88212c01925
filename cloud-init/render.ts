import { stringify } from 'yaml';
import { DEFAULT_RCLONE_REMOTE } from '../etl/rclone-remote';
import { nodeView } from '../etl/remote/node-view';
import type { NodeLayout } from '../etl/remote/run-spec';

/**
 * The node's `#cloud-config`, rendered from typed options by a pure function.
 *
 * No secret ever goes in here: user_data is readable by every process on the VM through the metadata service,
 * and changing it replaces the server. The rclone config (with the application credential) is delivered later
 * over SSH to `rcloneConfigPath`; the mount unit waits for it.
 */
export interface NodeCloudInitOptions {
  /** Login user of the image; owns the mount point, the rclone config and the ETL directory. */
  user: string;
  /** Name of the rclone remote in rclone.conf (`[chi_tacc]`). */
  remoteName: string;
  /** Swift container mounted read-only. */
  containerName: string;
  /** Where the rclone config is delivered (mode 0600, owner `user`). */
  rcloneConfigPath: string;
  /** Where readers find the current dataset version (a link; the container itself is mounted beside it, node-view.ts). */
  mountPoint: string;
  /** Where the ETL bundle is shipped later; created empty, owned by `user`. */
  etlDir: string;
  /** Lowest acceptable Node.js major version for the ETL bundle. */
  minNodeMajor: number;
}

export const MOUNT_SERVICE = 'rclone-object-mount.service';
export const MOUNT_PATH_UNIT = 'rclone-object-mount.path';
export const SETUP_SCRIPT = '/usr/local/sbin/chameleon-persist-setup';
/** Written last by the setup script; `cloud-init status --wait` is the other way to wait for the node. */
export const READY_MARKER = '/var/lib/chameleon-persist/cloud-init.done';
/** Installed by cloud-init's packages module (Ubuntu archive). */
export const NODE_PACKAGES = ['fuse3'] as const;
/**
 * Command -> Ubuntu package, installed by the setup script only when the command is missing: Chameleon images
 * may already ship some of them (rclone always; Docker CE on some images, which docker.io would conflict with).
 * See docs/infra.md for why the Ubuntu archive and not NodeSource or Docker's own repository.
 */
export const INSTALL_IF_MISSING: Readonly<Record<string, string>> = { rclone: 'rclone', docker: 'docker.io', node: 'nodejs' };
/** Nova refuses user_data above 65,535 bytes once base64-encoded. */
export const NOVA_USER_DATA_LIMIT = 65_535;

export function defaultCloudInitOptions(user: string, containerName: string, etlDir: string): NodeCloudInitOptions {
  const home = user === 'root' ? '/root' : `/home/${user}`;
  return {
    user,
    remoteName: DEFAULT_RCLONE_REMOTE,
    containerName,
    rcloneConfigPath: `${home}/.config/rclone/rclone.conf`,
    mountPoint: '/mnt/object',
    etlDir,
    minNodeMajor: 18,
  };
}

/** Where a node set up by this cloud-config keeps things: the run spec's layout (etl/remote/run-spec.ts). */
export function nodeLayoutOf(o: NodeCloudInitOptions): NodeLayout {
  return {
    remoteName: o.remoteName,
    rcloneConfigPath: o.rcloneConfigPath,
    mountPoint: o.mountPoint,
    mountService: MOUNT_SERVICE,
    remoteDir: o.etlDir,
  };
}

const SAFE_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;
const SAFE_PATH = /^(\/[A-Za-z0-9_.@-]+)+$/;

function check(options: NodeCloudInitOptions): void {
  const problems: string[] = [];
  const name = (k: keyof NodeCloudInitOptions) => {
    if (!SAFE_NAME.test(String(options[k]))) problems.push(`${k} ${JSON.stringify(options[k])} is not a plain name`);
  };
  const path = (k: keyof NodeCloudInitOptions) => {
    const v = String(options[k]);
    if (!SAFE_PATH.test(v) || v.split('/').includes('..')) problems.push(`${k} ${JSON.stringify(v)} is not a plain absolute path`);
  };
  name('user');
  name('remoteName');
  name('containerName');
  path('rcloneConfigPath');
  path('mountPoint');
  path('etlDir');
  if (!Number.isInteger(options.minNodeMajor) || options.minNodeMajor < 1) problems.push('minNodeMajor must be a positive integer');
  // These values go into shell and unit files unquoted; refuse anything that would need quoting.
  if (problems.length > 0) throw new Error(`renderCloudConfig: ${problems.join('; ')}`);
}

export function mountServiceUnit(o: NodeCloudInitOptions): string {
  const remote = `${o.remoteName}:${o.containerName}`;
  // The whole container is mounted at the store; the tutorial's path shows its current version (node-view.ts).
  const store = nodeView(o.mountPoint).store;
  return `[Unit]
Description=Read-only rclone mount of ${remote} at ${store} (${o.mountPoint} shows its current dataset version)
Documentation=https://rclone.org/commands/rclone_mount/
Wants=network-online.target
After=network-online.target
# Skipped (not failed) until the rclone config has been delivered over SSH; ${MOUNT_PATH_UNIT} starts it then.
ConditionPathExists=${o.rcloneConfigPath}
# Never give up: an expired credential or an unreachable Keystone at boot must not leave the mount (and the .path
# unit, which fails with unit-start-limit-hit when its service hits a start limit) dead until someone runs
# reset-failed. 0 turns the start rate limit off, with the same meaning on systemd 252 (Debian 12) and 255
# (Ubuntu 24.04). A fixed RestartSec, because RestartSteps=/RestartMaxDelaySec= (backoff) need systemd >= 254.
StartLimitIntervalSec=0

[Service]
Type=notify
User=${o.user}
Group=${o.user}
# A mount left behind by a crash answers "Transport endpoint is not connected"; clear it first, and only then
# (findmnt reads the mount table without touching the dead mount), so a healthy start logs no failure.
ExecStartPre=/bin/sh -c 'if findmnt -rn --mountpoint ${store} >/dev/null; then exec /bin/fusermount3 -uz ${store}; fi'
# --dir-cache-time 10s: a version the runner has just published is listed within seconds, without a remount.
ExecStart=/usr/bin/env rclone mount ${remote} ${store} --config ${o.rcloneConfigPath} --read-only --allow-other --dir-cache-time 10s --vfs-cache-mode off
ExecStop=/bin/fusermount3 -uz ${store}
# Also after a clean exit (someone ran fusermount3 -u): the mount is meant to be there. To unmount, stop the
# .path unit first, or it starts this again: sudo systemctl stop ${MOUNT_PATH_UNIT} ${MOUNT_SERVICE}
Restart=always
RestartSec=10

[Install]
WantedBy=multi-user.target
`;
}

export function mountPathUnit(o: NodeCloudInitOptions): string {
  return `[Unit]
Description=Start ${MOUNT_SERVICE} once ${o.rcloneConfigPath} exists

[Path]
PathExists=${o.rcloneConfigPath}
Unit=${MOUNT_SERVICE}

[Install]
WantedBy=multi-user.target
`;
}

export function setupScript(o: NodeCloudInitOptions): string {
  const view = nodeView(o.mountPoint);
  const configDir = o.rcloneConfigPath.slice(0, o.rcloneConfigPath.lastIndexOf('/'));
  return `#!/bin/bash
# chameleon-persist node setup: run once by cloud-init (runcmd) after the packages module installed
# ${NODE_PACKAGES.join(', ')}. Safe to run again. A failure here makes \`cloud-init status --wait\` exit non-zero.
set -euo pipefail
log() { echo "chameleon-persist-setup: $*"; }
export DEBIAN_FRONTEND=noninteractive
# needrestart (preinstalled on CC-Ubuntu24.04) would restart ssh, journald and cloud-final itself in the middle of
# cloud-init: list only, and not even that from apt's hook.
export NEEDRESTART_MODE=l NEEDRESTART_SUSPEND=1
# Without Recommends: on Debian docker.io alone pulls 45 more packages (git, perl, criu...). Waits for the dpkg
# lock (unattended-upgrades runs at first boot too) instead of failing at once.
apt_install() { apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "$@"; }

# Only what the image lacks: Chameleon images ship a current rclone (its own install script exits 3 when rclone is
# already current, which would abort this script), and some ship Docker CE, which docker.io would conflict with.
${Object.entries(INSTALL_IF_MISSING)
  .map(([cmd, pkg]) => `command -v ${cmd} >/dev/null || apt_install ${pkg}`)
  .join('\n')}

for cmd in ${[...Object.keys(INSTALL_IF_MISSING), 'fusermount3'].join(' ')}; do
  command -v "$cmd" >/dev/null || { log "$cmd is missing after package installation"; exit 1; }
done
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt ${o.minNodeMajor} ]; then
  log "Node.js $(node --version) is older than ${o.minNodeMajor}; the ETL stage needs an image such as CC-Ubuntu24.04"
  exit 1
fi

# --allow-other (so root and containers can read the mount made by ${o.user}) needs user_allow_other.
grep -qx 'user_allow_other' /etc/fuse.conf 2>/dev/null || echo 'user_allow_other' >> /etc/fuse.conf

install -d -o ${o.user} -g ${o.user} -m 0755 ${view.store}
# ${o.mountPoint} is a link to a link the runner switches (by rename, as ${o.user}) to the current version.
install -d -o ${o.user} -g ${o.user} -m 0755 ${view.currentLink.slice(0, view.currentLink.lastIndexOf('/'))}
[ -L ${o.mountPoint} ] || { rmdir ${o.mountPoint} 2>/dev/null || true; ln -s ${view.currentLink} ${o.mountPoint}; }
install -d -o ${o.user} -g ${o.user} -m 0755 ${o.etlDir}
runuser -u ${o.user} -- mkdir -p ${configDir}
chmod 0700 ${configDir}
usermod -aG docker ${o.user}

systemctl daemon-reload
systemctl enable --now docker.service
systemctl enable ${MOUNT_SERVICE}
systemctl enable --now ${MOUNT_PATH_UNIT}

install -d -m 0755 ${READY_MARKER.slice(0, READY_MARKER.lastIndexOf('/'))}
date -u +%Y-%m-%dT%H:%M:%SZ > ${READY_MARKER}
log "done: $(rclone version | awk 'NR == 1'), node $(node --version), $(docker --version)"
`;
}

/** The complete `#cloud-config` document for the node. Pure: same options, same bytes. */
export function renderCloudConfig(options: NodeCloudInitOptions): string {
  check(options);
  const doc = {
    package_update: true,
    package_upgrade: false,
    packages: [...NODE_PACKAGES],
    write_files: [
      { path: `/etc/systemd/system/${MOUNT_SERVICE}`, owner: 'root:root', permissions: '0644', content: mountServiceUnit(options) },
      { path: `/etc/systemd/system/${MOUNT_PATH_UNIT}`, owner: 'root:root', permissions: '0644', content: mountPathUnit(options) },
      { path: SETUP_SCRIPT, owner: 'root:root', permissions: '0755', content: setupScript(options) },
    ],
    runcmd: [[SETUP_SCRIPT]],
  };
  return `#cloud-config\n${stringify(doc, { lineWidth: 0 })}`;
}
