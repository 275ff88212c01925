import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** cloud-init's own script (Debian's cloud-init 22.4), what cc_keys_to_console runs on a booting server. */
export const WRITE_SSH_KEY_FINGERPRINTS = '/usr/lib/cloud-init/write-ssh-key-fingerprints';

/**
 * What a server's console shows for these host public keys: cloud-init's write-ssh-key-fingerprints run for
 * real, with two changes that only make it runnable here: it reads the given files instead of
 * /etc/ssh/ssh_host_*key.pub, and `logger -s` does not fail for want of a syslog socket (there is no /dev/log in
 * this container; on a server the lines get the same `<14>date cloud-init:` prefix).
 */
export function cloudInitConsoleOutput(pubKeys: string[], { keyBlacklist = 'ssh-dss', fpBlacklist = '' } = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'console-keys-'));
  pubKeys.forEach((file, i) => copyFileSync(file, join(dir, `ssh_host_k${i}_key.pub`)));
  const script = readFileSync(WRITE_SSH_KEY_FINGERPRINTS, 'utf8')
    .replaceAll('/etc/ssh/ssh_host_', `${dir}/ssh_host_`)
    .replace('logger_opts="-s"', 'logger_opts="-s --socket-errors=off"');
  if (!script.includes('--socket-errors=off') || !script.includes(dir)) throw new Error('cloud-init script changed shape');
  writeFileSync(join(dir, 'write.sh'), script);
  const out = execFileSync('sh', [join(dir, 'write.sh'), fpBlacklist, keyBlacklist], { encoding: 'utf8' });
  // cc_keys_to_console writes the script's output to the console between cloud-init's own lines.
  return [
    "[   18.220391] cloud-init[871]: Cloud-init v. 22.4.2 running 'modules:final' at Tue, 01 Dec 2026 10:00:00 +0000. Up 18.10 seconds.",
    'ci-info: no authorized SSH keys fingerprints found for user cc.',
    out.trimEnd(),
    '[   19.001122] cloud-init[871]: Cloud-init v. 22.4.2 finished at Tue, 01 Dec 2026 10:00:01 +0000. Datasource DataSourceOpenStack.  Up 19.00 seconds',
    '',
  ].join('\n');
}

export function newKey(dir: string, name: string, type: 'ed25519' | 'rsa' | 'ecdsa' = 'ed25519'): string {
  const file = join(dir, name);
  execFileSync('ssh-keygen', ['-q', '-t', type, ...(type === 'rsa' ? ['-b', '2048'] : []), '-N', '', '-C', `root@${name}`, '-f', file]);
  return `${file}.pub`;
}
