import execa from 'execa';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateMovieLensZip } from '../../testing/movielens-fixture';
import type { NodeCoordinates } from '../../etl/remote/coordinates';
import { ensureNode } from '../support/node';
import { ensureOpenStack, type OpenStackEnv } from '../support/openstack';
import { readerView } from '../support/versions';

// The user's rerun command (`npm run etl:remote -- <stage>`) and the etl stack's provisioner (`--from-env`), as
// processes, reading the stacks' outputs from terraform.<stack>.tfstate files shaped like a deploy leaves them.
const ROOT = join(__dirname, '..', '..');
const CLI = join(ROOT, 'etl', 'remote-cli.ts');
const TSX = join(ROOT, 'node_modules', '.bin', 'tsx');

let env: OpenStackEnv;
let node: NodeCoordinates;
let stateDir: string;
let remoteDir: string;
let zip: string;
const container = `object-persist-rerun-${process.pid}`;
const transcripts: string[] = [];

function tfState(outputs: Record<string, { value: string; sensitive?: boolean }>) {
  return JSON.stringify({ version: 4, terraform_version: '1.11.4', serial: 3, lineage: 'test', outputs: Object.fromEntries(Object.entries(outputs).map(([k, v]) => [k, { ...v, type: 'string' }])), resources: [] });
}

/** Flags that keep the stand-in run inside the test's temp dir (the stand-in's login user is this machine's). */
const placement = () => [
  '--port', String(node.port),
  '--private-key', node.privateKeyPath,
  '--known-hosts', node.knownHostsPath!,
  '--remote-dir', remoteDir,
  '--rclone-config', join(remoteDir, 'rclone.conf'),
  '--mount-point', join(remoteDir, 'mnt'),
  '--source', zip,
  '--ssh-wait', '20',
  '--min-free-mb', '50',
];

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
  writeFileSync(
    join(stateDir, 'terraform.storage.tfstate'),
    tfState({
      container_name: { value: container },
      auth_url: { value: env.authUrl },
      region: { value: env.region },
      user_id: { value: env.userId },
      credential_id: { value: env.appCredential.id },
      credential_secret: { value: env.appCredential.secret, sensitive: true },
    }),
  );
  writeFileSync(
    join(stateDir, 'terraform.node.tfstate'),
    tfState({ floating_ip: { value: node.host }, ssh_user: { value: node.user }, instance_id: { value: 'server-1' }, mount_point: { value: '/mnt/object' } }),
  );
});

afterAll(() => {
  execFileSync('sh', ['-c', `mountpoint -q ${join(remoteDir, 'mnt-store')} && fusermount3 -u ${join(remoteDir, 'mnt-store')} || true`]);
  // The secret came from the storage state; it must not appear in anything the commands printed.
  expect(transcripts.join('\n')).not.toContain(env.appCredential.secret);
});

describe('the rerun command (npm run etl:remote)', () => {
  it('runs every stage on the node from the deployed stacks\' outputs, secret from the storage state', async () => {
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
    const r = await cli(['all', '--from-env', '--known-hosts', node.knownHostsPath!, '--source', zip, '--ssh-wait', '20', '--min-free-mb', '50', '--no-mount'], {
      PERSIST_ETL_HOST: node.host,
      PERSIST_ETL_PORT: String(node.port),
      PERSIST_ETL_USER: node.user,
      PERSIST_ETL_PRIVATE_KEY: node.privateKeyPath,
      PERSIST_ETL_NODE_ID: 'server-1',
      PERSIST_ETL_CONTAINER: container,
      PERSIST_ETL_AUTH_URL: env.authUrl,
      PERSIST_ETL_REGION: env.region,
      PERSIST_ETL_USER_ID: env.userId,
      PERSIST_ETL_CREDENTIAL_ID: env.appCredential.id,
      PERSIST_ETL_RCLONE_CONFIG: join(remoteDir, 'rclone.conf'),
      PERSIST_ETL_REMOTE_DIR: remoteDir,
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
    expect(r.stderr).toMatch(/the 'node' stack is not deployed .*\n.*npx cdktf deploy node/);
  });

  it('says where the secret comes from when the credential was brought and the variable is unset', async () => {
    const byo = join(mkdtempSync(join(tmpdir(), 'byo-')), 'outputs.json');
    writeFileSync(
      byo,
      JSON.stringify({
        storage: { container_name: { value: container }, auth_url: { value: env.authUrl }, region: { value: env.region }, credential_id: { value: env.appCredential.id } },
        node: { floating_ip: { value: node.host }, ssh_user: { value: node.user } },
      }),
    );
    const r = await cli(['all', '--outputs', byo, ...placement()]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('PERSIST_APP_CREDENTIAL_SECRET is not set');
  });

  it('rejects an unknown stage', async () => {
    const r = await cli(['everything']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain("unknown stage 'everything'");
  });
});
