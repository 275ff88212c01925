import execa from 'execa';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateMovieLensZip } from '../../testing/movielens-fixture';
import type { RunSpec } from '../../etl/remote/run-spec';
import { standInRunSpec, type StandInNode } from '../../scripts/stand-in-spec';
import { ensureNode } from '../support/node';
import { ensureOpenStack, type OpenStackEnv } from '../support/openstack';
import { readerView } from '../support/versions';

// The user's rerun command (`npm run etl:remote -- <stage>`) and the etl stack's provisioner (`--from-env`), as
// processes, reading the stacks' outputs from terraform.<stack>.tfstate files shaped like a deploy leaves them.
const ROOT = join(__dirname, '..', '..');
const CLI = join(ROOT, 'etl', 'remote-cli.ts');
const TSX = join(ROOT, 'node_modules', '.bin', 'tsx');

let env: OpenStackEnv;
let node: StandInNode;
let deployed: RunSpec;
let stateDir: string;
let remoteDir: string;
let zip: string;
const container = `object-persist-rerun-${process.pid}`;
const transcripts: string[] = [];

function tfState(outputs: Record<string, { value: string; sensitive?: boolean }>) {
  return JSON.stringify({
    version: 4,
    terraform_version: '1.11.4',
    serial: 3,
    lineage: 'test',
    outputs: Object.fromEntries(Object.entries(outputs).map(([k, v]) => [k, { ...v, type: 'string' }])),
    resources: [],
  });
}

/** Flags for the stand-in: its known_hosts, the zip in place instead of the deployed URL, short waits. */
const placement = () => ['--known-hosts', node.knownHostsPath, '--source', zip, '--ssh-wait', '20', '--min-free-mb', '50'];

async function cli(args: string[], extraEnv: Record<string, string> = {}) {
  const r = await execa(TSX, [CLI, ...args], {
    cwd: ROOT,
    reject: false,
    env: { PERSIST_STATE_DIR: stateDir, PERSIST_APP_CREDENTIAL_SECRET: '', ...extraEnv },
  });
  transcripts.push(r.stderr, r.stdout);
  return r;
}

beforeAll(async () => {
  env = ensureOpenStack();
  node = ensureNode();
  const dir = mkdtempSync(join(tmpdir(), 'rerun-cli-'));
  stateDir = join(dir, 'project');
  remoteDir = join(dir, 'node-etl');
  mkdirSync(stateDir);
  zip = join(dir, 'ml-rerun.zip');
  await generateMovieLensZip({ outPath: zip, rows: 20_000, seed: 5, name: 'ml-rerun', workDir: dir });
  // As a deploy leaves them: the storage state with the created credential's secret, and the etl state whose
  // run_spec output is the spec the deploy ran with (a URL; the tests rerun with the zip in place, --source).
  writeFileSync(
    join(stateDir, 'terraform.storage.tfstate'),
    tfState({ credential_id: { value: env.appCredential.id }, credential_secret: { value: env.appCredential.secret, sensitive: true } }),
  );
  const spec = standInRunSpec({ node, storage: env, container, remoteDir, source: zip, serverId: 'server-1' });
  deployed = {
    ...spec,
    dataset: {
      url: 'https://files.grouplens.org/datasets/movielens/ml-32m.zip',
      allowUnverified: false,
      seed: 42,
      ratios: [0.7, 0.15, 0.15],
    },
  };
  writeFileSync(join(stateDir, 'terraform.etl.tfstate'), tfState({ run_spec: { value: JSON.stringify(deployed) } }));
});

afterAll(() => {
  execFileSync('sh', ['-c', `mountpoint -q ${join(remoteDir, 'mnt-store')} && fusermount3 -u ${join(remoteDir, 'mnt-store')} || true`]);
  // The secret came from the storage state; it must not appear in anything the commands printed.
  expect(transcripts.join('\n')).not.toContain(env.appCredential.secret);
});

describe('the rerun command (npm run etl:remote)', () => {
  it("runs every stage on the node with the etl stack's run spec, secret from the storage state", async () => {
    const r = await cli(['all', ...placement()]);
    expect(r.stderr).toContain('[node] ==> extract');
    expect(r.stderr).toContain('[node] <== load: done');
    expect(r.stderr).toContain(`done: the dataset is in container ${container}`);
    expect(r.exitCode).toBe(0);
    const view = await readerView(env, container);
    expect(view.problems).toEqual([]);
    expect([...view.current.keys()].some((k) => k.startsWith('training/'))).toBe(true);
  });

  it('one stage: `load` alone runs only load, and skips it when nothing changed', async () => {
    const r = await cli(['load', ...placement(), '--no-mount']);
    expect(r.exitCode).toBe(0);
    expect(r.stderr).toContain('<== load: skipped');
    expect(r.stderr).not.toContain('==> extract');
    expect(r.stderr).not.toContain('==> transform');
  });

  it('--force reruns an unchanged stage', async () => {
    const r = await cli(['transform', '--force', ...placement(), '--no-mount']);
    expect(r.exitCode).toBe(0);
    expect(r.stderr).toContain('<== transform: done');
  });

  it("the etl stack's provisioner path (--from-env, PERSIST_ETL_FORCE=1) reruns every stage", async () => {
    const before = (await readerView(env, container)).manifest!;
    const r = await cli(['all', '--from-env', ...placement(), '--no-mount'], {
      PERSIST_ETL_SPEC: JSON.stringify(deployed),
      PERSIST_ETL_FORCE: '1',
    });
    expect(r.exitCode).toBe(0);
    for (const stage of ['extract', 'transform', 'load']) expect(r.stderr).toContain(`<== ${stage}: done`);
    // Same inputs, same seed: the republished dataset is the same one.
    const after = (await readerView(env, container)).manifest!;
    expect(after.datasetKey).toBe(before.datasetKey);
    expect(after.transform.splits).toEqual(before.transform.splits);
  });

  it('says to deploy first when the stacks are not deployed', async () => {
    const r = await cli(['all', '--state-dir', mkdtempSync(join(tmpdir(), 'empty-'))]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/the 'etl' stack is not deployed .*\n.*npx cdktf deploy etl/);
  });

  it('says where the secret comes from when the credential was brought and the variable is unset', async () => {
    const byo = mkdtempSync(join(tmpdir(), 'byo-'));
    writeFileSync(join(byo, 'spec.json'), JSON.stringify(deployed));
    const r = await cli(['all', '--spec', join(byo, 'spec.json'), '--state-dir', byo, ...placement()]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('PERSIST_APP_CREDENTIAL_SECRET is not set');
  });

  it('refuses a spec with a line break in a value before contacting the node, naming the field', async () => {
    const bad = mkdtempSync(join(tmpdir(), 'bad-spec-'));
    writeFileSync(
      join(bad, 'spec.json'),
      JSON.stringify({ ...deployed, storage: { ...deployed.storage, region: 'CHI@TACC\nauth = http://evil' } }),
    );
    const r = await cli(['all', '--spec', join(bad, 'spec.json'), ...placement()]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('storage.region contains a line break or another control character');
    expect(r.stderr).not.toContain('connecting to');
  });

  it('rejects an unknown stage', async () => {
    const r = await cli(['everything']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain("unknown stage 'everything'");
  });
});
