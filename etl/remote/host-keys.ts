import { createHash } from 'node:crypto';
import execa from 'execa';
import { appendFileSync, chmodSync, existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { EtlError } from '../errors';
import type { Logger } from '../log';

/**
 * The node's SSH host key, pinned before the first contact where the cloud allows it.
 *
 * cloud-init's keys-to-console module (cc_keys_to_console, /usr/lib/cloud-init/write-ssh-key-fingerprints)
 * prints the host keys and their fingerprints to the server's console, and Nova returns that console log
 * (`openstack console log show`). A key read there came from the server itself, not from whoever answers on
 * the network, so it beats trust-on-first-use. The shape it prints (cloud-init 22.4; the fingerprints go
 * through `logger -s`, so each carries a syslog prefix; the keys are echoed as they are):
 *
 *   <14>Dec  1 10:08:52 cloud-init: -----BEGIN SSH HOST KEY FINGERPRINTS-----
 *   <14>Dec  1 10:08:52 cloud-init: 256 SHA256:m6Uu...OQc root@node1 (ED25519)
 *   <14>Dec  1 10:08:52 cloud-init: -----END SSH HOST KEY FINGERPRINTS-----
 *   -----BEGIN SSH HOST KEY KEYS-----
 *   ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIP8K... root@node1
 *   -----END SSH HOST KEY KEYS-----
 */

export interface HostKey {
  type: string;
  /** The base64 key blob, as in a known_hosts line. */
  blob: string;
  /** `SHA256:<base64, no padding>`, as `ssh-keygen -l` prints it. */
  fingerprint: string;
}

export type ConsoleKeys = { ok: true; keys: HostKey[]; fingerprints: string[] } | { ok: false; problem: string };

const KEY_TYPES =
  /(ssh-ed25519|ssh-rsa|ssh-dss|ecdsa-sha2-nistp(?:256|384|521)|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com)\s+([A-Za-z0-9+/]+={0,2})(?:\s|$)/;
const FINGERPRINT = /\b\d{3,5} (SHA256:[A-Za-z0-9+/]{43})\b/;

/** `SHA256:...` of a key blob, the way ssh-keygen -l prints it. */
export function fingerprintOf(blob: string): string {
  return `SHA256:${createHash('sha256').update(Buffer.from(blob, 'base64')).digest('base64').replace(/=+$/, '')}`;
}

/**
 * A key line is believed only if its blob is an SSH public key of the type the line names (the blob starts
 * with that type as an SSH string): a console interleaves kernel messages with cloud-init's output, and a
 * truncated or garbled line must not become a pinned key.
 */
function parseKeyLine(line: string): HostKey | undefined {
  const m = KEY_TYPES.exec(line);
  if (!m) return undefined;
  const [, type, blob] = m as unknown as [string, string, string];
  const bytes = Buffer.from(blob, 'base64');
  if (bytes.toString('base64') !== blob || bytes.length < 4) return undefined;
  const len = bytes.readUInt32BE(0);
  if (len !== type.length || bytes.subarray(4, 4 + len).toString('latin1') !== type) return undefined;
  return { type, blob, fingerprint: fingerprintOf(blob) };
}

/** Lines between `-----BEGIN <what>-----` and `-----END <what>-----`, for each such block (prefixes allowed). */
function blocks(lines: string[], what: string): string[][] {
  const found: string[][] = [];
  let current: string[] | undefined;
  for (const line of lines) {
    if (line.includes(`-----BEGIN ${what}-----`)) current = [];
    else if (line.includes(`-----END ${what}-----`)) {
      if (current) found.push(current);
      current = undefined;
    } else current?.push(line);
  }
  return found;
}

/**
 * Pure: the host keys a server's console log shows. Every key-lines block must agree (a rebuilt server
 * prints another set; which one answers is then unknown) and every key must match the fingerprints block
 * when there is one. A log without the keys block is not an error of the log: `keys` is empty, and the
 * caller decides (wait for cloud-init to print them, or fall back).
 */
export function parseConsoleHostKeys(consoleText: string): ConsoleKeys {
  const lines = consoleText.split(/\r?\n|\r/);
  const keyBlocks = blocks(lines, 'SSH HOST KEY KEYS').map((b) => b.map(parseKeyLine).filter((k): k is HostKey => Boolean(k)));
  const fingerprints = [
    ...new Set(
      blocks(lines, 'SSH HOST KEY FINGERPRINTS').flatMap((b) =>
        b.map((l) => FINGERPRINT.exec(l)?.[1]).filter((f): f is string => Boolean(f)),
      ),
    ),
  ];
  const nonEmpty = keyBlocks.filter((b) => b.length > 0);
  if (keyBlocks.length > 0 && nonEmpty.length === 0) {
    return { ok: false, problem: 'the console log has an SSH host key block, but no valid key in it (truncated or garbled)' };
  }
  const sets = [
    ...new Set(
      nonEmpty.map((b) =>
        b
          .map((k) => k.fingerprint)
          .sort()
          .join(' '),
      ),
    ),
  ];
  if (sets.length > 1) {
    return { ok: false, problem: 'the console log shows different SSH host keys at different times (was the server rebuilt?)' };
  }
  const keys = nonEmpty[0] ?? [];
  if (fingerprints.length > 0) {
    const stray = keys.filter((k) => !fingerprints.includes(k.fingerprint));
    if (stray.length > 0) {
      return {
        ok: false,
        problem: `the console log's host key ${stray[0]!.type} does not match its fingerprints block (${stray[0]!.fingerprint})`,
      };
    }
  }
  return { ok: true, keys, fingerprints };
}

/** How ssh names a host in known_hosts: the address for port 22, `[address]:port` otherwise. */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

/** Pure: known_hosts lines pinning `keys` for host:port. */
export function knownHostsLines(host: string, port: number, keys: readonly HostKey[]): string[] {
  return keys.map((k) => `${knownHostsName(host, port)} ${k.type} ${k.blob}`);
}

/**
 * The known_hosts file's directory must exist before ssh first contacts the node: ssh does not create it, says
 * so only at a log level the runner hides, and connects anyway, so every connection was a "first contact" and a
 * changed key was never noticed. 0700: another local user must not be able to plant a key in it.
 */
export function prepareKnownHostsDir(path: string, { tighten }: { tighten: boolean }): void {
  const dir = dirname(path);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    // mkdir's mode is filtered by the umask; an existing directory of ours keeps whatever mode it had.
    if (tighten && (statSync(dir).mode & 0o077) !== 0) chmodSync(dir, 0o700);
  } catch (e) {
    throw new EtlError(
      `cannot create the directory for the node's known_hosts file ${path}: ${(e as Error).message}`,
      'Make it writable (or set XDG_CACHE_HOME, or pass --known-hosts <file> in a writable directory) and rerun; the runner ' +
        'does not connect without remembering the host key.',
    );
  }
}

/** Whether `file` already holds a key for host:port (ssh-keygen -F understands hashed entries too). */
export async function knownHostsHas(file: string, host: string, port: number): Promise<boolean> {
  if (!existsSync(file)) return false;
  const r = await execa('ssh-keygen', ['-F', knownHostsName(host, port), '-f', file], { reject: false });
  return r.exitCode === 0 && r.stdout.trim() !== '';
}

export type ConsoleFetch = { ok: true; text: string } | { ok: false; why: string };

/**
 * Thin: the server's console log through the compute API, with the user's clouds.yaml entry (the openstack
 * client handles every auth type clouds.yaml can hold). The environment is passed on except the bring-your-own
 * secret, which the client does not need.
 */
export async function fetchConsoleLog(cloud: string, serverId: string, env: NodeJS.ProcessEnv = process.env): Promise<ConsoleFetch> {
  // OS_PASSWORD etc. may be what clouds.yaml's entry relies on, so only the runner's own secrets are dropped.
  const { PERSIST_APP_CREDENTIAL_SECRET: _a, PERSIST_ETL_CREDENTIAL_SECRET: _b, ...rest } = env;
  const child = execa('openstack', ['--os-cloud', cloud, 'console', 'log', 'show', serverId], {
    reject: false,
    env: rest,
    extendEnv: false,
  });
  // Our own timer, cleared in every case: execa's `timeout` stays armed when the spawn itself fails (no client
  // installed) and kept the runner alive for its whole length after the run had ended.
  const timer = setTimeout(() => child.kill('SIGTERM'), 60_000);
  let r: Awaited<typeof child>;
  try {
    r = await child;
  } finally {
    clearTimeout(timer);
  }
  if ((r as { code?: string }).code === 'ENOENT')
    return { ok: false, why: 'the openstack client is not installed (pip install python-openstackclient)' };
  if (r.exitCode !== 0) return { ok: false, why: (r.stderr || r.stdout).trim().split('\n').pop() || `openstack exited with ${r.exitCode}` };
  return { ok: true, text: r.stdout };
}

export interface PinOptions {
  host: string;
  port: number;
  knownHostsPath: string;
  serverId: string;
  cloud: string;
  log: Logger;
  /** How long to wait for cloud-init to print the keys (it does so at the end of the boot). */
  waitSeconds?: number;
  fetch?: (cloud: string, serverId: string) => Promise<ConsoleFetch>;
  sleep?: (ms: number) => Promise<void>;
}

export type PinResult = 'already-known' | 'pinned' | 'tofu';

/**
 * Before the first contact: pin the keys from the console log into the known_hosts file. When the log cannot
 * be read or shows no usable keys, say so and leave the first contact to trust-on-first-use.
 */
export async function pinFromConsole(o: PinOptions): Promise<PinResult> {
  if (await knownHostsHas(o.knownHostsPath, o.host, o.port)) return 'already-known';
  const fetch = o.fetch ?? fetchConsoleLog;
  const sleep = o.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const deadline = Date.now() + (o.waitSeconds ?? 900) * 1000;
  const tofu = (why: string): PinResult => {
    o.log.warn(
      `cannot pin the host key of server ${o.serverId} from its console log: ${why}. ` +
        `Trusting the key the node presents on first contact (TOFU) and remembering it in ${o.knownHostsPath}; ` +
        `to check it yourself: openstack --os-cloud ${o.cloud} console log show ${o.serverId} | grep -A3 'BEGIN SSH HOST KEY'`,
    );
    return 'tofu';
  };
  for (let attempt = 1; ; attempt++) {
    const got = await fetch(o.cloud, o.serverId);
    if (!got.ok) return tofu(`the console log is not readable (${got.why})`);
    const parsed = parseConsoleHostKeys(got.text);
    if (!parsed.ok) return tofu(parsed.problem);
    if (parsed.keys.length === 0 && parsed.fingerprints.length > 0) return pinByFingerprint(o, parsed.fingerprints);
    if (parsed.keys.length > 0) {
      appendFileSync(
        o.knownHostsPath,
        knownHostsLines(o.host, o.port, parsed.keys)
          .map((l) => `${l}\n`)
          .join(''),
        { mode: 0o600 },
      );
      o.log.info(
        `pinned the host key of server ${o.serverId} from its console log ` +
          `(${parsed.keys.map((k) => `${k.type} ${k.fingerprint}`).join(', ')})`,
      );
      return 'pinned';
    }
    // cloud-init prints the keys at the end of its final stage; before that the log is readable but has none.
    if (/Cloud-init v\. \S+ finished/.test(got.text))
      return tofu('cloud-init finished without printing the host keys (ssh.emit_keys_to_console off?)');
    if (Date.now() > deadline) return tofu(`no host keys in it after ${o.waitSeconds ?? 900}s`);
    o.log.progress(`  waiting for cloud-init to print the host keys to the console of ${o.serverId} (attempt ${attempt})`);
    await sleep(10_000);
  }
}

/**
 * An image may print only the fingerprints (ssh_key_console_blacklist): then the keys come from the network
 * (ssh-keyscan) and only those whose fingerprint the console shows are pinned. A node presenting none of them
 * is refused: the console is the server's own word, so something else answers at this address.
 */
async function pinByFingerprint(o: PinOptions, fingerprints: string[]): Promise<PinResult> {
  const scan = await execa('ssh-keyscan', ['-T', '10', '-p', String(o.port), o.host], { reject: false });
  const offered = scan.stdout
    .split('\n')
    .filter((l) => !l.startsWith('#'))
    .map(parseKeyLine)
    .filter((k): k is HostKey => Boolean(k));
  if (offered.length === 0) {
    o.log.warn(
      `the console log of server ${o.serverId} shows only host key fingerprints and ${o.host}:${o.port} did not answer ssh-keyscan yet; ` +
        `trusting the key presented on first contact (TOFU), remembered in ${o.knownHostsPath}`,
    );
    return 'tofu';
  }
  const good = offered.filter((k) => fingerprints.includes(k.fingerprint));
  if (good.length === 0) {
    throw new EtlError(
      `${o.host}:${o.port} presents host keys (${offered.map((k) => k.fingerprint).join(', ')}) that are not the ones ` +
        `server ${o.serverId} printed to its console (${fingerprints.join(', ')}); nothing was sent to it`,
      'Something other than your server answers at this address (or the floating IP points elsewhere): ' +
        'check `npx cdktf output node` and the console log, and do not rerun until they agree.',
    );
  }
  appendFileSync(
    o.knownHostsPath,
    knownHostsLines(o.host, o.port, good)
      .map((l) => `${l}\n`)
      .join(''),
    { mode: 0o600 },
  );
  o.log.info(
    `pinned the host key of server ${o.serverId} by the fingerprints in its console log (${good.map((k) => k.fingerprint).join(', ')})`,
  );
  return 'pinned';
}
