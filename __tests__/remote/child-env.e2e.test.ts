import execa from 'execa';
import { readdirSync, readFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ssh } from '../../etl/remote/ssh';
import { standInRunSpec } from '../../scripts/stand-in-spec';

// Issue 10, item 8: a secret from PERSIST_APP_CREDENTIAL_SECRET must not sit in the environment of the runner's
// children (readable in /proc/<pid>/environ while they live). Read there, from the real processes.
const ROOT = join(__dirname, '..', '..');
const SENTINEL = 'ENV-S3CRET-must-not-reach-children-4b1d';

/** A TCP "node" that accepts and never speaks: ssh waits for its banner, long enough to be inspected. */
async function silentNode(): Promise<{ server: Server; port: number; close(): void }> {
  const sockets: Socket[] = [];
  const server = createServer((s) => void sockets.push(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as { port: number }).port, close: () => (sockets.forEach((s) => s.destroy()), server.close()) };
}

const ppidOf = (pid: string) =>
  Number(
    readFileSync(`/proc/${pid}/stat`, 'utf8')
      .replace(/^.*\) /, '')
      .split(' ')[1],
  );
const commOf = (pid: string) => readFileSync(`/proc/${pid}/comm`, 'utf8').trim();

/** Descendants of `root` named `comm`, polled until one shows up. */
async function findDescendant(root: number, comm: string, timeoutMs = 30_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const parent = new Map<number, number>();
    const names = new Map<number, string>();
    for (const d of readdirSync('/proc')) {
      if (!/^\d+$/.test(d)) continue;
      try {
        parent.set(Number(d), ppidOf(d));
        names.set(Number(d), commOf(d));
      } catch {
        /* ended meanwhile */
      }
    }
    for (const [pid, name] of names) {
      if (name !== comm) continue;
      for (let p = parent.get(pid); p; p = parent.get(p)) if (p === root) return pid;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no ${comm} under ${root}`);
}

const environ = (pid: number) => readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');

describe("the secret is not in the environment of the runner's children", () => {
  it("ssh.ts: the ssh child gets this process's environment minus the secrets", async () => {
    const node = await silentNode();
    const saved = process.env.PERSIST_APP_CREDENTIAL_SECRET;
    process.env.PERSIST_APP_CREDENTIAL_SECRET = SENTINEL;
    process.env.OS_PASSWORD = SENTINEL;
    try {
      const run = ssh(
        { host: '127.0.0.1', port: node.port, user: 'nobody', privateKeyPath: '/nonexistent', connectTimeoutSeconds: 8 },
        'true',
      );
      const pid = await findDescendant(process.pid, 'ssh');
      const env = environ(pid);
      expect(env.some((v) => v.startsWith('PATH='))).toBe(true); // the environ was read, and is the inherited one
      expect(env.filter((v) => v.includes(SENTINEL))).toEqual([]);
      node.close();
      await run;
    } finally {
      if (saved === undefined) delete process.env.PERSIST_APP_CREDENTIAL_SECRET;
      else process.env.PERSIST_APP_CREDENTIAL_SECRET = saved;
      delete process.env.OS_PASSWORD;
      node.close();
    }
  });

  it('etl:remote: the secret given by PERSIST_APP_CREDENTIAL_SECRET is in no child of the runner', async () => {
    const node = await silentNode();
    const dir = mkdtempSync(join(tmpdir(), 'child-env-'));
    // Bring-your-own credential: no storage state here, so the secret must come from the environment.
    const spec = standInRunSpec({
      node: { host: '127.0.0.1', port: node.port, user: 'cc', privateKeyPath: '/nonexistent' },
      storage: { authUrl: 'http://127.0.0.1:1/v3', region: 'CHI@TACC', userId: 'u', appCredential: { id: 'c'.repeat(32) } },
      container: 'object-persist-env',
      remoteDir: join(dir, 'node-etl'),
      source: join(dir, 'none.zip'),
    });
    writeFileSync(join(dir, 'spec.json'), JSON.stringify(spec));
    const child = execa(
      join(ROOT, 'node_modules', '.bin', 'tsx'),
      [
        join(ROOT, 'etl', 'remote-cli.ts'),
        'all',
        '--spec',
        join(dir, 'spec.json'),
        '--known-hosts',
        join(dir, 'known_hosts'),
        '--ssh-wait',
        '1',
      ],
      {
        cwd: ROOT,
        reject: false,
        env: { PERSIST_APP_CREDENTIAL_SECRET: SENTINEL, PERSIST_STATE_DIR: dir },
      },
    );
    try {
      const pid = await findDescendant(child.pid!, 'ssh');
      expect(environ(pid).filter((v) => v.includes(SENTINEL))).toEqual([]);
    } finally {
      node.close();
      await child;
    }
    expect(child.exitCode).not.toBe(0);
  });
});
