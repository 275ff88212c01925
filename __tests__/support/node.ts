import { execFileSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { StandInNode } from '../../scripts/stand-in-spec';
import { STAND_INS_DIR, STARTED_MARKER } from './global-teardown';

export const NODE_SCRIPT = join(__dirname, '..', '..', 'scripts', 'local-node.sh');
export const NODE_STATE = join(STAND_INS_DIR, 'node');

/**
 * Starts the sshd stand-in once per test run (flock in the script) and says how to reach it. One started here
 * is stopped by the jest teardown (the marker), unless another run still holds a lease on it.
 */
export function ensureNode(): StandInNode {
  let running = true;
  try {
    execFileSync('bash', [NODE_SCRIPT, 'status', NODE_STATE], { stdio: 'ignore' });
  } catch {
    running = false;
  }
  if (!running) {
    execFileSync('bash', [NODE_SCRIPT, 'up', NODE_STATE], { stdio: ['ignore', 'inherit', 'inherit'] });
    writeFileSync(join(NODE_STATE, STARTED_MARKER), NODE_SCRIPT);
  }
  // A lease per test run: `local-node.sh down` from this run's teardown leaves the node running while another
  // run of the same checkout (its run directory still there) uses it.
  const run = process.env.CHAMELEON_PERSIST_TEST_TMPDIR;
  if (run) {
    mkdirSync(join(NODE_STATE, '.leases'), { recursive: true });
    writeFileSync(join(NODE_STATE, '.leases', basename(run)), run);
  }
  return JSON.parse(readFileSync(join(NODE_STATE, 'node.json'), 'utf8')) as StandInNode;
}

/**
 * The same sshd node reached with another key whose authorized_keys entry forces a PATH with stand-in commands
 * first (`command="..."`): a node where cloud-init failed, rclone is missing, the disk is full, ... through
 * the real ssh path. `fakes` maps a command name to a script body (null hides the real command). The entry is
 * removed by `remove()`.
 */
export function faultyNode(dir: string, fakes: Record<string, string | null>): StandInNode & { remove(): void } {
  const base = ensureNode();
  const bin = join(dir, 'bin');
  mkdirSync(bin, { recursive: true });
  const hidden = Object.entries(fakes)
    .filter(([, body]) => body === null)
    .map(([name]) => name);
  if (hidden.length > 0) {
    // A PATH of links to every command but the hidden ones.
    for (const d of ['/usr/local/bin', '/usr/bin']) {
      for (const name of readdirSync(d)) {
        if (!hidden.includes(name) && !(name in fakes) && !existsSync(join(bin, name))) symlinkSync(join(d, name), join(bin, name));
      }
    }
  }
  for (const [name, body] of Object.entries(fakes)) {
    if (body !== null) writeFileSync(join(bin, name), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  }
  const key = join(dir, 'id_ed25519');
  if (!existsSync(key)) execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `faulty-${dir}`, '-f', key]);
  const path = hidden.length > 0 ? bin : `${bin}:/usr/local/bin:/usr/bin:/bin`;
  const entry = `command="PATH=${path}; export PATH; eval \\"$SSH_ORIGINAL_COMMAND\\"" ${readFileSync(`${key}.pub`, 'utf8').trim()}`;
  const authorized = join(NODE_STATE, 'authorized_keys');
  appendFileSync(authorized, `${entry}\n`);
  return {
    ...base,
    privateKeyPath: key,
    remove: () =>
      writeFileSync(
        authorized,
        readFileSync(authorized, 'utf8')
          .split('\n')
          .filter((l) => l && l !== entry)
          .map((l) => `${l}\n`)
          .join(''),
      ),
  };
}
