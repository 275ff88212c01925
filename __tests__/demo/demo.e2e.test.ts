import execa from 'execa';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { ensureNode, NODE_STATE } from '../support/node';
import { ensureOpenStack } from '../support/openstack';
import { readerView } from '../support/versions';

// `npm run demo` as a user runs it (small dataset), checked through Swift's own API.
const ROOT = join(__dirname, '..', '..');
// Under its own name: `npm test` must not replace or prune the user's own demo dataset (object-persist-demo).
const NAME = 'demo-test';
const CONTAINER = `object-persist-${NAME}`;
const demo = (args: string[]) => execa('npx', ['tsx', 'scripts/demo.ts', '--name', NAME, ...args], { cwd: ROOT, all: true, reject: false });

describe('npm run demo', () => {
  // Started here first, so the test run's teardown stops them (the demo itself leaves them running).
  const env = ensureOpenStack();
  ensureNode();

  it('runs the whole pipeline on the stand-ins and the container holds splits, maps and the manifest', async () => {
    const r = await demo(['--rows', '20000', '--force']);
    expect(r.exitCode).toBe(0);
    expect(r.all).toMatch(new RegExp(`mnt-${NAME} shows version [0-9a-f]{16} of ${CONTAINER} \\(read-only\\)`));
    const view = await readerView(env, CONTAINER);
    expect(view.problems).toEqual([]);
    expect(view.manifest!.transform.rows).toBe(20000);
    for (const f of (view.manifest!.transform as unknown as { files: string[] }).files) expect(view.current.has(f)).toBe(true);
    expect(r.all).not.toContain(env.appCredential.secret);
  });

  afterAll(() => {
    execFileSync('sh', [
      '-c',
      `mountpoint -q ${join(NODE_STATE, `mnt-${NAME}-store`)} && fusermount3 -u ${join(NODE_STATE, `mnt-${NAME}-store`)} || true`,
    ]);
  });

  it('a second run reuses the stand-ins and skips every unchanged stage', async () => {
    const r = await demo(['--rows', '20000']);
    expect(r.exitCode).toBe(0);
    for (const stage of ['extract', 'transform', 'load']) expect(r.all).toContain(`<== ${stage}: skipped`);
  });
});
