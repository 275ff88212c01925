import execa from 'execa';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EtlError } from '../../etl/errors';
import { memoryLogger } from '../../etl/log';
import { knownHostsHas } from '../../etl/remote/host-keys';
import { runOnNode } from '../../etl/remote/run-on-node';
import { standInRunSpec } from '../../scripts/stand-in-spec';
import { cloudInitConsoleOutput, newKey } from '../support/cloud-init-console';

// The node's host key, through the runner as a user runs it (etl/remote-cli.ts), against an sshd of this test's
// own (scripts/local-node.sh with a private state dir, so its host key can be swapped for an impostor's on the
// same address and port without touching the shared stand-in). The run is made to stop at the preflight
// (--min-free-mb too high): whether rclone.conf reached the node tells whether the secret was sent.
const ROOT = join(__dirname, '..', '..');
const CLI = join(ROOT, 'etl', 'remote-cli.ts');
const TSX = join(ROOT, 'node_modules', '.bin', 'tsx');
const NODE_SCRIPT = join(ROOT, 'scripts', 'local-node.sh');
const SECRET = 'HOSTKEY-s3cret-never-on-an-impostor';

const work = mkdtempSync(join(tmpdir(), 'host-key-e2e-'));
const state = join(work, 'sshd');
const remoteDir = join(work, 'node-etl');
const rcloneConf = join(remoteDir, 'rclone.conf');
const fakeBin = join(work, 'bin');
let node: { host: string; port: number; user: string; privateKeyPath: string };

const up = (port?: number) =>
  execFileSync('bash', [NODE_SCRIPT, 'up', state], {
    env: { ...process.env, CHAMELEON_PERSIST_TEST_TMPDIR: '', ...(port ? { LOCAL_NODE_PORT: String(port) } : {}) },
    stdio: 'ignore',
  });
const down = () =>
  execFileSync('bash', [NODE_SCRIPT, 'down', state], { env: { ...process.env, CHAMELEON_PERSIST_TEST_TMPDIR: '' }, stdio: 'ignore' });

/** The node's host key replaced by another one: same address, same port, another machine as far as ssh can tell. */
function becomeImpostor() {
  down();
  rmSync(join(state, 'host_ed25519'));
  rmSync(join(state, 'host_ed25519.pub'));
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'impostor', '-f', join(state, 'host_ed25519')]);
  up(node.port);
  const again = JSON.parse(readFileSync(join(state, 'node.json'), 'utf8'));
  if (again.port !== node.port) throw new Error(`port ${node.port} was taken meanwhile`);
}

/** A stand-in `openstack` client: prints a console log (or fails), and records how it was called. */
function fakeOpenstack(body: string) {
  mkdirSync(fakeBin, { recursive: true });
  writeFileSync(join(fakeBin, 'openstack'), `#!/bin/sh\necho "$*" >>"${join(work, 'openstack-calls')}"\n${body}\n`, { mode: 0o755 });
}

async function cli(serverId: string, cache: string, extraEnv: Record<string, string> = {}) {
  const specFile = join(work, `spec-${serverId}.json`);
  const storage = { authUrl: 'http://127.0.0.1:1/v3', region: 'CHI@TACC', userId: 'u', appCredential: { id: 'c'.repeat(32) } };
  writeFileSync(
    specFile,
    JSON.stringify(
      standInRunSpec({ node, storage, container: 'object-persist-hostkey', remoteDir, source: join(work, 'none.zip'), serverId }),
    ),
  );
  const r = await execa(
    TSX,
    [CLI, 'all', '--spec', specFile, '--ssh-wait', '15', '--min-free-mb', '99999999', '--no-mount', '--console-wait', '5'],
    {
      cwd: ROOT,
      reject: false,
      env: {
        XDG_CACHE_HOME: cache,
        PATH: `${fakeBin}:${process.env.PATH}`,
        PERSIST_APP_CREDENTIAL_SECRET: SECRET,
        PERSIST_STATE_DIR: join(work, 'no-state'),
        ...extraEnv,
      },
    },
  );
  expect(r.stderr + r.stdout).not.toContain(SECRET);
  return r;
}

beforeAll(() => {
  up();
  // Without the stand-in's own knownHostsPath: the runner picks one per server id, as for a deployed node.
  const { host, port, user, privateKeyPath } = JSON.parse(readFileSync(join(state, 'node.json'), 'utf8'));
  node = { host, port, user, privateKeyPath };
});
afterAll(() => down());
beforeEach(() => rmSync(rcloneConf, { force: true }));

describe('the node host key (runner against a real sshd)', () => {
  it('first contact creates the missing cache dir 0700 and records the key; the same server with another key is refused and gets nothing', async () => {
    fakeOpenstack('echo "Cloud kvm_tacc was not found." >&2; exit 1');
    const cache = join(work, 'cache-1'); // does not exist
    const first = await cli('server-a', cache);
    expect(first.stderr).toMatch(
      /warning: cannot pin the host key of server server-a from its console log: the console log is not readable \(Cloud kvm_tacc was not found\.\)/,
    );
    expect(first.stderr).toMatch(/only \d+ MB free/); // got as far as the preflight: the node was reached
    expect(existsSync(rcloneConf)).toBe(true);
    const dir = join(cache, 'chameleon-persist');
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    const known = join(dir, 'known_hosts-server-a');
    expect(await knownHostsHas(known, node.host, node.port)).toBe(true);

    becomeImpostor();
    rmSync(rcloneConf);
    const second = await cli('server-a', cache);
    expect(second.exitCode).toBe(1);
    expect(second.stderr).toContain(
      `error: ${node.user}@${node.host}:${node.port} presented a host key that differs from the one remembered for this server in ${known}`,
    );
    expect(second.stderr).toContain('nothing was sent to it');
    expect(second.stderr).toMatch(
      /Someone may be intercepting the connection.*Only if it shows the new key, delete .*known_hosts-server-a and rerun/,
    );
    expect(existsSync(rcloneConf)).toBe(false);
    expect(readFileSync(join(work, 'openstack-calls'), 'utf8')).toContain('--os-cloud kvm_tacc console log show server-a');
  });

  it('a key pinned from the console log: the node that shows it is let in, without the TOFU warning', async () => {
    const hostPub = join(state, 'host_ed25519.pub');
    const consoleFile = join(work, 'console-good.txt');
    writeFileSync(consoleFile, cloudInitConsoleOutput([hostPub]));
    fakeOpenstack(`cat "${consoleFile}"`);
    const cache = join(work, 'cache-2');
    const r = await cli('server-b', cache);
    expect(r.stderr).toContain('pinned the host key of server server-b from its console log (ssh-ed25519 SHA256:');
    expect(r.stderr).not.toContain('TOFU');
    expect(r.stderr).toMatch(/only \d+ MB free/);
    expect(existsSync(rcloneConf)).toBe(true);
    const [type, blob] = readFileSync(hostPub, 'utf8').split(' ');
    expect(readFileSync(join(cache, 'chameleon-persist', 'known_hosts-server-b'), 'utf8')).toContain(
      `[${node.host}]:${node.port} ${type} ${blob}\n`,
    );
  });

  it('a node whose key is not the one its console log shows is refused before anything is sent', async () => {
    const consoleFile = join(work, 'console-other.txt');
    writeFileSync(consoleFile, cloudInitConsoleOutput([newKey(work, 'real-server-key')]));
    fakeOpenstack(`cat "${consoleFile}"`);
    const r = await cli('server-c', join(work, 'cache-3'));
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('pinned the host key of server server-c');
    expect(r.stderr).toContain('presented a host key that differs from the one remembered for this server');
    expect(existsSync(rcloneConf)).toBe(false);
  });

  it('a console with fingerprints only: the key is checked against them (a match is pinned, another key refused)', async () => {
    const good = join(work, 'console-fp.txt');
    writeFileSync(good, cloudInitConsoleOutput([join(state, 'host_ed25519.pub')], { keyBlacklist: 'ssh-ed25519' }));
    fakeOpenstack(`cat "${good}"`);
    const ok = await cli('server-d', join(work, 'cache-4'));
    expect(ok.stderr).toContain('pinned the host key of server server-d by the fingerprints in its console log');
    expect(existsSync(rcloneConf)).toBe(true);
    rmSync(rcloneConf);

    const bad = join(work, 'console-fp-bad.txt');
    writeFileSync(bad, cloudInitConsoleOutput([newKey(work, 'fp-other')], { keyBlacklist: 'ssh-ed25519' }));
    fakeOpenstack(`cat "${bad}"`);
    const refused = await cli('server-e', join(work, 'cache-5'));
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toMatch(/presents host keys \(SHA256:.*\) that are not the ones server server-e printed to its console/);
    expect(existsSync(rcloneConf)).toBe(false);
  });

  it('the real openstack client without a clouds.yaml entry: falls back to TOFU, saying so', async () => {
    rmSync(join(fakeBin, 'openstack'), { force: true });
    const r = await cli('server-f', join(work, 'cache-6'), { OS_CLIENT_CONFIG_FILE: join(work, 'no-clouds.yaml'), HOME: work });
    expect(r.stderr).toMatch(
      /warning: cannot pin the host key of server server-f from its console log: the console log is not readable \((Cloud kvm_tacc was not found|the openstack client is not installed)/,
    );
    expect(r.stderr).toContain('(TOFU)');
    expect(existsSync(rcloneConf)).toBe(true);
  });

  it('a key ssh could not record stops the run before anything is sent (runOnNode, known_hosts in a missing dir)', async () => {
    const known = join(work, 'no-such-dir', 'known_hosts');
    const err = await runOnNode({
      spec: {
        ...standInRunSpec({
          node,
          storage: { authUrl: 'http://127.0.0.1:1/v3', region: 'CHI@TACC', userId: 'u', appCredential: { id: 'c'.repeat(32) } },
          container: 'object-persist-hostkey',
          remoteDir,
          source: join(work, 'none.zip'),
        }),
      },
      secret: SECRET,
      target: { ...node, knownHostsPath: known },
      stage: 'all',
      run: { force: false, breakLock: false },
      mount: false,
      bundlePath: join(ROOT, 'package.json'),
      sshWaitSeconds: 10,
      minFreeMb: 1,
      log: memoryLogger(),
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EtlError);
    expect((err as EtlError).message).toBe(
      `the host key of ${node.user}@${node.host}:${node.port} could not be recorded in ${known}, so a changed key could not be detected later; nothing was sent to the node`,
    );
    expect((err as EtlError).hint).toMatch(/writable by you \(mode 0700\)/);
    expect(existsSync(rcloneConf)).toBe(false);
  });
});
