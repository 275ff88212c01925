import execa from 'execa';
import { createInterface } from 'node:readline';
import { EtlError } from '../errors';
import { redact } from '../redact';

export interface SshTarget {
  host: string;
  port: number;
  user: string;
  privateKeyPath: string;
  /** Where the node's host key is remembered; first contact accepts it (the node is new on every deploy). */
  knownHostsPath?: string;
  connectTimeoutSeconds?: number;
}

export function sshArgs(t: SshTarget): string[] {
  return [
    '-p',
    String(t.port),
    '-i',
    t.privateKeyPath,
    '-o',
    'BatchMode=yes',
    '-o',
    'IdentitiesOnly=yes',
    '-o',
    'StrictHostKeyChecking=accept-new',
    ...(t.knownHostsPath ? ['-o', `UserKnownHostsFile=${t.knownHostsPath}`] : []),
    '-o',
    `ConnectTimeout=${t.connectTimeoutSeconds ?? 10}`,
    '-o',
    'ServerAliveInterval=15',
    '-o',
    'LogLevel=ERROR',
    `${t.user}@${t.host}`,
  ];
}

/**
 * Variables that hold a secret and that ssh never needs: the bring-your-own credential, the provisioner's copy
 * of it, an OpenStack password. The runner reads the secret once and sends it to the node through stdin; a copy
 * left in ssh's environment (and that of any shell ssh starts, e.g. for a ProxyCommand) would be readable in
 * /proc/<pid>/environ for as long as the connection lives.
 */
export const SECRET_ENV_NAMES = [
  'PERSIST_APP_CREDENTIAL_SECRET',
  'PERSIST_ETL_CREDENTIAL_SECRET',
  'OS_APPLICATION_CREDENTIAL_SECRET',
  'OS_PASSWORD',
] as const;

/** The environment for a child of the runner: this process's, without the secrets. */
export function childEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { ...env };
  for (const name of SECRET_ENV_NAMES) delete out[name];
  return out;
}

export interface SshResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/**
 * ssh's own failure to set up a connection to an sshd that is there but slow (a node busy with cloud-init's
 * installs, a loaded host): the command never ran, so running it again is safe. "Connection refused" (no sshd
 * yet) is not one: waitForSsh handles a node that is still booting.
 */
export function isTransientSshFailure(exitCode: number, stderr: string): boolean {
  return (
    exitCode === 255 &&
    /Connection timed out during banner exchange|kex_exchange_identification|Connection reset by peer|Connection closed by \S+ port \d+\s*$/m.test(
      stderr,
    )
  );
}

/**
 * Runs one command on the node. `input` goes to its stdin (how secrets and the bundle travel); `onLine`
 * receives output lines as they arrive, with `secrets` redacted. A connection that failed before the command
 * ran (isTransientSshFailure) is tried again, up to `retries` times.
 */
export async function ssh(
  t: SshTarget,
  command: string,
  options: { input?: string | Buffer; onLine?: (line: string) => void; secrets?: string[]; retries?: number } = {},
): Promise<SshResult> {
  const retries = options.retries ?? 2;
  for (let attempt = 0; ; attempt++) {
    let sawOutput = false;
    const r = await sshOnce(t, command, { ...options, onLine: options.onLine && ((l) => ((sawOutput = true), options.onLine!(l))) });
    if (attempt >= retries || sawOutput || !isTransientSshFailure(r.exitCode, r.stderr)) return r;
    await new Promise((res) => setTimeout(res, 2000 * (attempt + 1)));
  }
}

async function sshOnce(
  t: SshTarget,
  command: string,
  options: { input?: string | Buffer; onLine?: (line: string) => void; secrets?: string[] },
): Promise<SshResult> {
  const child = execa('ssh', [...sshArgs(t), command], {
    env: childEnv(),
    extendEnv: false,
    input: options.input,
    reject: false,
    stripFinalNewline: false,
    all: Boolean(options.onLine),
  });
  let closed: Promise<unknown> | undefined;
  if (options.onLine) {
    const lines = createInterface({ input: child.all!, crlfDelay: Infinity });
    lines.on('line', (l) => options.onLine!(redact(l, options.secrets ?? [])));
    // The last line (one without a newline) comes with the stream's end: the caller reads the tail after this.
    closed = new Promise((res) => lines.once('close', res));
  }
  const r = await child;
  await closed;
  if ((r as { code?: string }).code === 'ENOENT')
    throw new EtlError('ssh was not found', 'Install the OpenSSH client (apt-get install openssh-client).');
  return {
    exitCode: r.exitCode ?? 255,
    stdout: redact(String(r.stdout ?? ''), options.secrets ?? []),
    stderr: redact(String(r.stderr ?? ''), options.secrets ?? []),
  };
}
