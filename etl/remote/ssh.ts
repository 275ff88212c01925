import execa from 'execa';
import { EtlError } from '../errors';
import { redact } from '../load/redact';

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
