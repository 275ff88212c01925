import execa from 'execa';
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
    '-p', String(t.port),
    '-i', t.privateKeyPath,
    '-o', 'BatchMode=yes',
    '-o', 'IdentitiesOnly=yes',
    '-o', 'StrictHostKeyChecking=accept-new',
    ...(t.knownHostsPath ? ['-o', `UserKnownHostsFile=${t.knownHostsPath}`] : []),
    '-o', `ConnectTimeout=${t.connectTimeoutSeconds ?? 10}`,
    '-o', 'ServerAliveInterval=15',
    '-o', 'LogLevel=ERROR',
    `${t.user}@${t.host}`,
  ];
}

/**
 * Variables that hold a secret and that ssh never needs: the bring-your-own credential, the provisioner's copy
 * of it, an OpenStack password. The runner reads the secret once and sends it to the node through stdin; a copy
 * left in ssh's environment (and that of any shell ssh starts, e.g. for a ProxyCommand) would be readable in
 * /proc/<pid>/environ for as long as the connection lives.
 */
export const SECRET_ENV_NAMES = ['PERSIST_APP_CREDENTIAL_SECRET', 'PERSIST_ETL_CREDENTIAL_SECRET', 'OS_APPLICATION_CREDENTIAL_SECRET', 'OS_PASSWORD'] as const;

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
 * Runs one command on the node. `input` goes to its stdin (how secrets and the bundle travel); `onLine`
 * receives output lines as they arrive, with `secrets` redacted.
 */
export async function ssh(
  t: SshTarget,
  command: string,
  options: { input?: string | Buffer; onLine?: (line: string) => void; secrets?: string[] } = {},
): Promise<SshResult> {
  const child = execa('ssh', [...sshArgs(t), command], {
    env: childEnv(),
    extendEnv: false,
    input: options.input,
    reject: false,
    stripFinalNewline: false,
    all: Boolean(options.onLine),
  });
  if (options.onLine) {
    let partial = '';
    child.all?.on('data', (chunk: Buffer) => {
      const lines = (partial + chunk.toString('utf8')).split('\n');
      partial = lines.pop() ?? '';
      for (const l of lines) options.onLine!(redact(l.replace(/\r$/, ''), options.secrets ?? []));
    });
    child.all?.on('end', () => {
      if (partial) options.onLine!(redact(partial, options.secrets ?? []));
    });
  }
  const r = await child;
  if ((r as { code?: string }).code === 'ENOENT') throw new EtlError('ssh was not found', 'Install the OpenSSH client (apt-get install openssh-client).');
  return {
    exitCode: r.exitCode ?? 255,
    stdout: redact(String(r.stdout ?? ''), options.secrets ?? []),
    stderr: redact(String(r.stderr ?? ''), options.secrets ?? []),
  };
}
