import { EtlError } from '../errors';
import type { StageName } from '../stage';

/**
 * The shell commands the runner sends to the node over ssh, and the reading of what the node answers: pure
 * functions. Everything secret travels in stdin, never in these command lines.
 */

/** Single-quote for a POSIX shell. */
export function sh(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** A path that may start with ~/ (the login user's home), quoted so that ~ still expands. */
export function shPath(path: string): string {
  return path.startsWith('~/') ? `"$HOME"/${sh(path.slice(2))}` : sh(path);
}

export type CloudInitState = 'done' | 'degraded' | 'running' | 'error' | 'absent';

/**
 * `cloud-init status` output -> what to do. "not run" / "disabled" (no cloud-init boot, as on the stand-in)
 * count as absent; "degraded" (finished with recoverable warnings, e.g. a deprecated key) lets the run go on.
 */
export function cloudInitState(output: string, exitCode: number): CloudInitState {
  const m = /status:\s*(\S+)/.exec(output);
  const status = m?.[1] ?? '';
  if (status === 'running') return 'running';
  // cloud-init >= 23.4 prints "status: done" and exits 2 when it finished with recoverable errors.
  if (status === 'degraded' || /extended_status:\s*degraded/.test(output) || (status === 'done' && exitCode === 2)) return 'degraded';
  if (status === 'done') return 'done';
  if (status === 'error') return 'error';
  if (status === 'not' || status === 'disabled' || exitCode === 127 || output.trim() === '') return 'absent';
  return exitCode === 0 ? 'done' : 'error';
}

export { isStaleLocalOwner, lockOwner } from '../lock-owner';

/** Takes the node's lock atomically (mkdir); prints LOCKED and the owner when another run holds it. */
export function lockCommand(lockDir: string, owner: string): string {
  const d = shPath(lockDir);
  return (
    `mkdir -p "$(dirname ${d})" && if mkdir ${d} 2>/dev/null; then printf '%s\\n' ${sh(owner)} > ${d}/owner; echo ACQUIRED; ` +
    `else echo "LOCKED $(cat ${d}/owner 2>/dev/null)"; fi`
  );
}

export function unlockCommand(lockDir: string): string {
  return `rm -rf ${shPath(lockDir)}`;
}

/** Releases the lock only if `owner` still holds it (a run must not drop a lock someone else has taken since). */
export function unlockIfOwnerCommand(lockDir: string, owner: string): string {
  const d = shPath(lockDir);
  return `if [ "$(cat ${d}/owner 2>/dev/null)" = ${sh(owner)} ]; then rm -rf ${d}; fi`;
}

/** Writes stdin to `path` with mode 0600 from the first byte (umask), replacing any old file atomically. */
export function writeSecretFileCommand(path: string): string {
  const p = shPath(path);
  return `umask 077 && mkdir -p "$(dirname ${p})" && cat > ${p}.tmp && chmod 600 ${p}.tmp && mv ${p}.tmp ${p}`;
}

export function shipFileCommand(path: string): string {
  const p = shPath(path);
  return `mkdir -p "$(dirname ${p})" && cat > ${p}.tmp && mv ${p}.tmp ${p}`;
}

/** Prints one line per check; the runner turns a failing one into a message that says what to do. */
export function preflightCommand(dir: string, minFreeMb: number): string {
  const d = shPath(dir);
  return [
    `mkdir -p ${d}`,
    `echo "node $(node -p 'process.versions.node' 2>/dev/null || echo missing)"`,
    `echo "rclone $(command -v rclone >/dev/null && echo present || echo missing)"`,
    `echo "free_mb $(df -Pm ${d} | awk 'NR==2 {print $4}')"`,
    `echo "need_mb ${minFreeMb}"`,
  ].join(' && ');
}

export interface Preflight {
  nodeVersion?: string;
  rclone: boolean;
  freeMb: number;
}

export function parsePreflight(output: string): Preflight {
  const get = (k: string) => new RegExp(`^${k} (.*)$`, 'm').exec(output)?.[1]?.trim();
  const node = get('node');
  return {
    nodeVersion: node && node !== 'missing' ? node : undefined,
    rclone: get('rclone') === 'present',
    freeMb: Number(get('free_mb') ?? 0),
  };
}

export function checkPreflight(p: Preflight, minFreeMb: number, where: string): void {
  if (!p.nodeVersion || Number(p.nodeVersion.split('.')[0]) < 18) {
    throw new EtlError(
      `Node.js ${p.nodeVersion ?? 'is missing'} on ${where}; the ETL needs Node.js >= 18`,
      'cloud-init installs it; if cloud-init failed, see /var/log/cloud-init-output.log on the node, ' +
        'or run: sudo apt-get install -y nodejs',
    );
  }
  if (!p.rclone)
    throw new EtlError(
      `rclone is missing on ${where}`,
      'Install it on the node: sudo apt-get install -y rclone (Chameleon images ship it).',
    );
  if (p.freeMb < minFreeMb) {
    throw new EtlError(
      `only ${p.freeMb} MB free on ${where}; the ETL needs about ${minFreeMb} MB`,
      'Free space on the node (e.g. remove old work directories) or use a flavor with a larger disk.',
    );
  }
}

/**
 * Runs the ETL bundle on the node with the job on its stdin (`--job -`, etl/job.ts): the options travel as one
 * JSON value, never rebuilt as flags.
 */
export function etlCommand(i: { stage: StageName | 'all'; remoteDir: string }): string {
  // Plain `node`, no tty: progress lines arrive one per line and stream back as they are printed.
  const etl = `node etl.js ${sh(i.stage)} --job -`;
  // The ETL process holds an flock for as long as it (and the rclone processes it starts) lives. The runner's
  // mkdir lock is taken over when the run that made it was killed, but the killed run's ETL may still be
  // running on the node (no tty: nothing hangs it up at once); it must finish before another one starts.
  return (
    `cd ${shPath(i.remoteDir)} && if command -v flock >/dev/null; ` +
    `then exec flock -n -E ${ETL_BUSY_EXIT} ${ETL_FLOCK} ${etl}; else exec ${etl}; fi`
  );
}

/** The node's flock file (in the remote dir), held by a running ETL process. */
export const ETL_FLOCK = '.etl.flock';
/** flock's exit status when an ETL process of an earlier run still runs on the node (the ETL never uses it). */
export const ETL_BUSY_EXIT = 76;

/**
 * Mount the whole container read-only at the store mount point (node-view.ts): the cloud-init unit on a systemd
 * node; a plain rclone daemon elsewhere (the stand-in).
 *
 * On systemd, failed states are reset first (a unit that hit a start limit refuses to start), and the mount is
 * restarted only when it is down or rclone.conf changed since it was started (its SHA-256 is kept beside it in
 * `<rclone.conf>.mounted`): a restart breaks the FUSE mount under every running reader (a container bound to the
 * mount point gets "Transport endpoint is not connected"), and new objects show up without one after
 * --dir-cache-time. A restart that fails prints the unit's last journal lines to stderr.
 */
export function mountCommand(m: { remote: string; container: string; store: string; rcloneConfigPath: string; service: string }): string {
  const mp = shPath(m.store);
  const conf = shPath(m.rcloneConfigPath);
  const stamp = shPath(`${m.rcloneConfigPath}.mounted`);
  const svc = sh(m.service);
  const pathUnit = sh(m.service.replace(/\.service$/, '.path'));
  const systemd = [
    `sudo systemctl reset-failed ${svc} ${pathUnit} 2>/dev/null; want=$(sha256sum ${conf} | cut -d' ' -f1);`,
    `if systemctl is-active -q ${svc} && mountpoint -q ${mp} && [ "$(cat ${stamp} 2>/dev/null)" = "$want" ]; ` +
      `then echo 'mount: unchanged, not restarted' >&2;`,
    `else sudo systemctl restart ${svc} || { sudo journalctl -u ${svc} -n 12 --no-pager -o cat >&2; false; }; fi`,
    `&& (umask 077 && echo "$want" > ${stamp}) && sudo systemctl start ${pathUnit};`,
  ];
  return [
    `if [ -d /run/systemd/system ] && systemctl cat ${svc} >/dev/null 2>&1; then`,
    ...systemd,
    `else mkdir -p ${mp}; mountpoint -q ${mp} || rclone mount ${sh(`${m.remote}:${m.container}`)} ${mp} --read-only ` +
      `--allow-other --dir-cache-time 5s --daemon --config ${conf}; fi`,
    `&& for i in $(seq 50); do mountpoint -q ${mp} && break; sleep 0.2; done; mountpoint -q ${mp}`,
  ].join(' ');
}
