import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { DISK_FULL_EXIT, EtlError } from '../errors';
import { processAlive } from '../lock-owner';
import type { Logger } from '../log';
import type { StageName } from '../stage';
import {
  checkPreflight,
  cloudInitState,
  ETL_BUSY_EXIT,
  ETL_FLOCK,
  isStaleLocalOwner,
  lockOwner,
  etlCommand,
  lockCommand,
  mountCommand,
  parsePreflight,
  preflightCommand,
  shPath,
  shipFileCommand,
  unlockCommand,
  unlockIfOwnerCommand,
  writeSecretFileCommand,
} from './node-commands';
import { knownHostsHas } from './host-keys';
import { nodeJob, type RunChoices } from './node-job';
import { nodeView, viewSwitchCommand } from './node-view';
import { renderRcloneConf } from './rclone-conf';
import type { RunSpec } from './run-spec';
import { ssh, type SshResult, type SshTarget } from './ssh';

export interface RunOnNodeOptions {
  /** Everything the run needs to know about the deployment (etl/remote/run-spec.ts). */
  spec: RunSpec;
  /** The application credential's secret; it reaches the node only inside rclone.conf, through stdin. */
  secret: string;
  /** How to reach the node: the spec's node, with this machine's key path and known_hosts. */
  target: SshTarget;
  stage: StageName | 'all';
  run: RunChoices;
  bundlePath: string;
  /** Mount the container and point the mount point at the published version at the end of `all`/`load`. */
  mount: boolean;
  /** How long to wait for ssh to answer (a new server boots for a minute or two). */
  sshWaitSeconds: number;
  /** How long to wait for cloud-init to finish once the node answers (default 1800 s). */
  cloudInitWaitSeconds?: number;
  minFreeMb: number;
  log: Logger;
}

export interface RunOnNodeResult {
  exitCode: number;
  mountListing?: string[];
  /** The version the node's view shows after the run. */
  version?: string;
  bundleShipped: boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitForSsh(o: RunOnNodeOptions, where: string): Promise<void> {
  const deadline = Date.now() + o.sshWaitSeconds * 1000;
  const known = o.target.knownHostsPath;
  let last = '';
  for (let attempt = 1; ; attempt++) {
    const r = await ssh(o.target, 'true');
    if (r.exitCode === 0) {
      // ssh connects even when it cannot write known_hosts (it says so only at a hidden log level): then every
      // later connection is a first contact and a changed key goes unnoticed. Not remembered = not trusted.
      if (known && !(await knownHostsHas(known, o.target.host, o.target.port))) {
        throw new EtlError(
          `the host key of ${where} could not be recorded in ${known}, so a changed key could not be detected later; nothing ` +
            `was sent to the node`,
          `Make ${dirname(known)} an existing directory writable by you (mode 0700) with space left, or pass --known-hosts ` +
            `<file> in one, and rerun.`,
        );
      }
      return;
    }
    last = r.stderr.trim().split('\n').pop() ?? '';
    if (/Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED/i.test(r.stderr)) {
      throw new EtlError(
        `${where} presented a host key that differs from the one remembered for this server${known ? ` in ${known}` : ''} ` +
          '(pinned from its console log, or accepted on first contact); the connection was refused and nothing was sent to it',
        'Someone may be intercepting the connection, or the server was rebuilt with new keys. Compare with the key in the ' +
          "server's console log (openstack console log show <server id> | grep -A3 'BEGIN SSH HOST KEY'). Only if it shows the new key, " +
          `delete ${known ?? 'the old entry (ssh-keygen -R <address>)'} and rerun; otherwise do not connect: something else ` +
          `answers at this address.`,
      );
    }
    if (/Permission denied/i.test(last)) {
      throw new EtlError(
        `${where} refused the SSH key ${o.target.privateKeyPath} (${last})`,
        `Use the private key that matches the deployed keypair (ssh.privateKeyPath in persist.config.yaml); the user is ` +
          `'${o.target.user}'.`,
      );
    }
    if (Date.now() > deadline) break;
    o.log.progress(`  waiting for ssh on ${where} (attempt ${attempt}: ${last || 'no answer'})`);
    await sleep(Math.min(5000, 500 * attempt));
  }
  throw new EtlError(
    `cannot reach ${where} over SSH after ${o.sshWaitSeconds}s: ${last}`,
    `Check that the floating IP is associated (cdktf output node), that the security group allows port ${o.target.port} ` +
      `from your address (ssh.allowedCidr), and that the node booted (Chameleon GUI > Instances > console log).`,
  );
}

async function waitForCloudInit(o: RunOnNodeOptions, where: string): Promise<void> {
  const first = await ssh(o.target, 'cloud-init status 2>&1');
  let state = cloudInitState(first.stdout, first.exitCode);
  if (state === 'running') {
    o.log.info(`cloud-init is still setting up ${where}; waiting for it to finish`);
    const wait = o.cloudInitWaitSeconds ?? 1800;
    const waited = await ssh(o.target, `timeout ${wait} cloud-init status --wait >/dev/null 2>&1; cloud-init status 2>&1`);
    state = cloudInitState(waited.stdout, waited.exitCode);
    if (state === 'running') {
      throw new EtlError(
        `cloud-init is still running on ${where} after ${wait}s`,
        'Watch it on the node (tail -f /var/log/cloud-init-output.log) and rerun this command when it has finished.',
      );
    }
  }
  if (state === 'degraded') {
    o.log.warn(`cloud-init finished on ${where} with recoverable warnings (see: cloud-init status --long); continuing`);
  }
  if (state === 'error') {
    const tail = await ssh(
      o.target,
      'sudo -n tail -n 40 /var/log/cloud-init-output.log 2>/dev/null || tail -n 40 /var/log/cloud-init-output.log',
    );
    throw new EtlError(
      `cloud-init failed on ${where}:\n${tail.stdout.trimEnd()}`,
      'Fix the cause above, then recreate the node: cdktf deploy node (after cdktf destroy node), or finish the setup by hand over ssh.',
    );
  }
}

/**
 * Runs the lock command. Its output is ACQUIRED or LOCKED <owner>; anything else means the command itself
 * failed (ssh dropped, the remote dir not writable) and must not be reported as a lock held by someone.
 */
async function takeLock(o: RunOnNodeOptions, lockDir: string, owner: string, where: string): Promise<SshResult> {
  const lock = await ssh(o.target, lockCommand(lockDir, owner));
  if (!/^(ACQUIRED|LOCKED)/m.test(lock.stdout)) {
    const why = lock.stderr.trim() || `exit status ${lock.exitCode}`;
    throw new EtlError(
      `could not take the ETL lock ${lockDir} on ${where}: ${why}`,
      'Check that the node is reachable (ssh) and that its ETL directory is writable by the ssh user, then rerun.',
    );
  }
  return lock;
}

/**
 * The ETL stage of a deploy, and the rerun command: everything happens on the node, over SSH, under a lock.
 */
export async function runOnNode(o: RunOnNodeOptions): Promise<RunOnNodeResult> {
  const where = `${o.target.user}@${o.target.host}:${o.target.port}`;
  const { layout, storage } = o.spec;
  const remoteDir = layout.remoteDir;
  const secrets = [o.secret];
  const log = o.log;
  log.info(`connecting to ${where}`);
  await waitForSsh(o, where);
  await waitForCloudInit(o, where);

  const lockDir = `${remoteDir}/.lock`;
  if (o.run.breakLock) await ssh(o.target, unlockCommand(lockDir));
  const owner = lockOwner(process.pid, hostname(), new Date());
  let lock = await takeLock(o, lockDir, owner, where);
  if (!lock.stdout.includes('ACQUIRED')) {
    const holder = lock.stdout.replace(/^LOCKED\s*/, '').trim();
    // A run from this machine that was killed (Ctrl-C, a closed terminal) could not release its lock: when
    // its process is gone, the lock is stale and taken over. A run from another machine is never second-guessed.
    if (isStaleLocalOwner(holder, hostname(), processAlive)) {
      log.warn(`removing a stale lock on ${where} (${holder}: that process is no longer running)`);
      await ssh(o.target, unlockIfOwnerCommand(lockDir, holder));
      lock = await takeLock(o, lockDir, owner, where);
    }
  }
  if (!lock.stdout.includes('ACQUIRED')) {
    const holder = lock.stdout.replace(/^LOCKED\s*/, '').trim() || 'unknown';
    throw new EtlError(
      `another ETL run holds the lock on ${where} (${holder})`,
      `Wait for it to finish. If no run is active (it was killed on another machine), rerun with --break-lock.`,
      75,
    );
  }
  try {
    // Secrets only through stdin into a 0600 file: never in argv, user_data or logs.
    const rclone = {
      name: layout.remoteName,
      authUrl: storage.authUrl,
      region: storage.region,
      userId: storage.userId,
      credentialId: storage.credentialId,
      credentialSecret: o.secret,
    };
    const conf = await ssh(o.target, writeSecretFileCommand(layout.rcloneConfigPath), { input: renderRcloneConf(rclone), secrets });
    if (conf.exitCode !== 0) throw new EtlError(`could not write the rclone config on ${where}: ${conf.stderr.trim()}`);

    const bundle = readFileSync(o.bundlePath);
    const sha = createHash('sha256').update(bundle).digest('hex');
    const bundleRemote = `${remoteDir}/etl.js`;
    const have = await ssh(o.target, `sha256sum ${shPath(bundleRemote)} 2>/dev/null | cut -d' ' -f1`);
    const bundleShipped = have.stdout.trim() !== sha;
    if (bundleShipped) {
      log.info(`shipping the ETL bundle (${(bundle.length / 1024).toFixed(0)} KiB) to ${where}`);
      const shipped = await ssh(o.target, shipFileCommand(bundleRemote), { input: bundle });
      if (shipped.exitCode !== 0) throw new EtlError(`could not copy the ETL bundle to ${where}: ${shipped.stderr.trim()}`);
    }

    const pre = await ssh(o.target, preflightCommand(remoteDir, o.minFreeMb));
    checkPreflight(parsePreflight(pre.stdout), o.minFreeMb, where);

    log.info(`running 'etl ${o.stage}' on ${where}`);
    const tail: string[] = [];
    const run = await ssh(o.target, etlCommand({ stage: o.stage, remoteDir }), {
      input: JSON.stringify(nodeJob(o.spec, o.run)),
      onLine: (line) => {
        log.info(`  [node] ${line}`);
        tail.push(line);
        if (tail.length > 12) tail.shift();
      },
      secrets,
    });
    if (run.exitCode === ETL_BUSY_EXIT) {
      throw new EtlError(
        `an ETL process of an earlier, interrupted run is still running on ${where} (it holds ${remoteDir}/${ETL_FLOCK})`,
        `Wait for it to end (see: ps -ef | grep etl.js on the node), or stop it there, then rerun.`,
        75,
      );
    }
    if (run.exitCode !== 0) {
      const full = /No space left on device|ENOSPC/.test(run.stdout + run.stderr);
      throw new EtlError(
        full
          ? `the node ran out of disk space during 'etl ${o.stage}'`
          : `'etl ${o.stage}' failed on ${where} (exit ${run.exitCode}); its last lines:\n${tail.map((l) => `  ${l}`).join('\n')}`,
        full
          ? 'Free space on the node (df -h; old work directories under the ETL directory) or use a flavor with a larger ' +
              'disk, then rerun: finished stages are skipped. Readers still see the version the container pointed at before.'
          : 'Readers still see the version the container pointed at before (current.json is written only once a new version ' +
              'is whole). Fix the cause and rerun: finished stages are skipped.',
        // The node's own status where it means something to a caller: 75 (busy, retry later), 74 (disk full).
        run.exitCode === 75 ? 75 : full ? DISK_FULL_EXIT : 1,
      );
    }

    let mountListing: string[] | undefined;
    let version: string | undefined;
    if (o.mount && (o.stage === 'all' || o.stage === 'load')) {
      const view = nodeView(layout.mountPoint);
      const service = layout.mountService;
      const m = await ssh(
        o.target,
        mountCommand({
          remote: layout.remoteName,
          container: storage.container,
          store: view.store,
          rcloneConfigPath: layout.rcloneConfigPath,
          service,
        }),
        { secrets },
      );
      if (m.exitCode !== 0) {
        // On systemd the mount command prints the unit's last journal lines (rclone's own error) to stderr.
        const said = m.stderr
          .trim()
          .split('\n')
          .filter((l) => l.trim() && !/^mount: unchanged/.test(l))
          .slice(-12);
        throw new EtlError(
          `the data is in the container, but the read-only mount at ${view.store} ` +
            `did not come up${said.length ? `; the node said:\n${said.map((l) => `  ${l}`).join('\n')}` : ''}`,
          `Fix the cause shown (an expired credential: redeploy storage with a later credential.expiresAt), then rerun; on ` +
            `the node: systemctl status ${service}, journalctl -u ${service}.`,
        );
      }
      // Readers switch to the published version by one rename on the node; nothing is remounted.
      const s = await ssh(
        o.target,
        viewSwitchCommand(view, { remote: layout.remoteName, container: storage.container, rcloneConfigPath: layout.rcloneConfigPath }),
        { secrets },
      );
      const lines = s.stdout.split('\n').filter(Boolean);
      version = /^VERSION ([0-9a-f]{16})$/.exec(lines[0] ?? '')?.[1];
      mountListing = lines.slice(1);
      if (s.exitCode !== 0 || !version || !mountListing.includes('training')) {
        throw new EtlError(
          `the data is in the container, but ${layout.mountPoint} ` +
            `could not be pointed at it: ${s.stderr.trim().split('\n').pop() ?? `exit ${s.exitCode}`}`,
          `On the node: ls ${view.store} (the mount of the container) and ls -l ${layout.mountPoint}; ` +
            `then rerun: npm run etl:remote -- load.`,
        );
      }
      log.info(`${layout.mountPoint} shows version ${version} of ${storage.container} (read-only): ${mountListing.join(' ')}`);
    }
    return { exitCode: 0, mountListing, version, bundleShipped };
  } finally {
    await ssh(o.target, unlockIfOwnerCommand(lockDir, owner));
  }
}
