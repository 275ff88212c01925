import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createdCredential, outputsFromState } from '../../etl/remote/stack-state';
import { renderRcloneConf } from '../../etl/remote/rclone-conf';
import { TEST_PUBLIC_KEY_PATH, TEST_RESERVATION } from '../infra/helpers';
import {
  appCredentialToken,
  createAppCredential,
  ensureOpenStack,
  revokeAppCredential,
  userToken,
  type AppCredential,
  type OpenStackEnv,
} from '../support/openstack';
import { describeTerraform, terraform } from '../support/terraform';
import {
  cdktf,
  createProject,
  fileMode,
  filesUnder,
  readState,
  synthAndInit,
  writeConfig,
  type TestProject,
} from '../support/terraform-project';

// The storage stack applied by the real terraform-provider-openstack 3.4.0 against the local Keystone + Swift,
// through the commands a user types (`npx cdktf deploy storage`, `diff`, `destroy etl storage`) in a private
// copy of the project (its own cdktf.out and terraform.<stack>.tfstate). clouds.yaml logs in with the member
// user's password, as an unrestricted login must (docs/infra.md, credential pitfalls).

const TUTORIAL_CREDENTIAL = 'data-persist'; // what the manual tutorial tells a user to create
// Each cdktf command synthesizes, inits and plans: ~11 s on a quiet 2-core machine, up to a minute on a loaded one.
jest.setTimeout(600_000);

interface KeystoneCredential {
  id: string;
  name: string;
}

async function listCredentials(env: OpenStackEnv): Promise<KeystoneCredential[]> {
  const res = await fetch(`${env.authUrl}/users/${env.userId}/application_credentials`, {
    headers: { 'x-auth-token': await userToken(env) },
  });
  if (res.status !== 200) throw new Error(`list application credentials: ${res.status}`);
  return ((await res.json()) as { application_credentials: KeystoneCredential[] }).application_credentials;
}

async function swift(env: OpenStackEnv, method: string, path: string, body?: string): Promise<Response> {
  return fetch(`${env.swiftUrl}/${path}`, { method, headers: { 'x-auth-token': await userToken(env) }, body });
}

async function objectCount(env: OpenStackEnv, container: string): Promise<number | undefined> {
  const res = await swift(env, 'HEAD', container);
  return res.status === 404 ? undefined : Number(res.headers.get('x-container-object-count'));
}

/** Waits until Swift's container record says empty (the object updater runs every few seconds). */
async function waitEmpty(env: OpenStackEnv, container: string): Promise<void> {
  for (let i = 0; i < 60; i++) {
    if ((await objectCount(env, container)) === 0) return;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`${container} is still not empty`);
}

async function credentialWorks(env: OpenStackEnv, cred: AppCredential): Promise<boolean> {
  return appCredentialToken(env, cred).then(
    () => true,
    () => false,
  );
}

interface StorageCoordinates {
  container: string;
  authUrl: string;
  region: string;
  userId: string;
  credentialId: string;
  credentialSecret?: string;
}

/** What the runner reads (etl/remote/stack-state.ts), from the project's state, as `npm run etl:remote` does. */
function runnerCoordinates(p: TestProject): StorageCoordinates {
  const o = outputsFromState(p.dir, 'storage');
  const text = (name: string) => String(o[name]?.value ?? '');
  return {
    container: text('container_name'),
    authUrl: text('auth_url'),
    region: text('region'),
    userId: text('user_id'),
    credentialId: text('credential_id'),
    credentialSecret: createdCredential(p.dir)?.secret,
  };
}

function userConfig(env: OpenStackEnv, teamId: string, expiresAt: string): Record<string, unknown> {
  return {
    teamId,
    chi: { authUrl: env.authUrl, region: env.region },
    credential: { expiresAt },
    ssh: { publicKeyPath: TEST_PUBLIC_KEY_PATH, allowedCidr: '203.0.113.7/32' },
    node: { reservationId: TEST_RESERVATION },
  };
}

/** A date `days` from now, as a user writes credential.expiresAt (within the 6-month warning). */
function daysAhead(days: number): string {
  return new Date(Date.now() + days * 86_400_000).toISOString().slice(0, 10);
}

const timings: string[] = [];
async function timed<T>(what: string, f: () => Promise<T>): Promise<T> {
  const t0 = Date.now();
  try {
    return await f();
  } finally {
    timings.push(`${what}: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }
}

let work: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'storage-e2e-'));
});
afterAll(() => {
  if (timings.length) process.stdout.write(`storage stack e2e timings:\n  ${timings.join('\n  ')}\n`);
  if (work) rmSync(work, { recursive: true, force: true });
});

describeTerraform('npx cdktf deploy / diff / destroy of the storage stack', { provider: true }, () => {
  let env: OpenStackEnv;
  let p: TestProject;
  let tutorial: AppCredential & { created: boolean };
  const teamId = `st${process.pid}`;
  const container = `object-persist-${teamId}`;
  const credentialName = `persist-${teamId}-rclone`;
  const secrets: string[] = [];
  let first: StorageCoordinates;
  let second: StorageCoordinates;

  beforeAll(async () => {
    env = ensureOpenStack();
    // The tutorial's own credential, as a user who followed it has: the stack must neither collide with it
    // nor touch it.
    const existing = (await listCredentials(env)).find((c) => c.name === TUTORIAL_CREDENTIAL);
    tutorial = existing
      ? { id: existing.id, secret: '', created: false }
      : { ...(await createAppCredential(env, TUTORIAL_CREDENTIAL)), created: true };
    p = createProject(work, 'project', env, userConfig(env, teamId, daysAhead(90)));
    await timed('synth + terraform init (mirror)', () => synthAndInit(p, ['storage', 'etl']));
  });

  afterAll(async () => {
    // Leave the stand-in as found, whatever failed above.
    if ((await objectCount(env, container).catch(() => undefined)) !== undefined) {
      for (const name of ['keep.txt', 'rclone-check.txt']) await swift(env, 'DELETE', `${container}/${name}`).catch(() => undefined);
      await waitEmpty(env, container).catch(() => undefined);
      await swift(env, 'DELETE', container).catch(() => undefined);
    }
    for (const c of await listCredentials(env).catch(() => [])) {
      if (c.name === credentialName || (c.name === TUTORIAL_CREDENTIAL && tutorial?.created))
        await revokeAppCredential(env, { id: c.id, secret: '' }).catch(() => undefined);
    }
    // Terraform and cdktf printed outputs and plans; not one secret among them.
    const all = p?.transcript.join('\n') ?? '';
    for (const s of secrets) expect(all.includes(s)).toBe(false);
  });

  it('deploy creates the container and a working credential; every state file is 0600, cdktf.out 0700', async () => {
    const r = await timed('cdktf deploy storage (create)', () => cdktf(p, ['deploy', 'storage', '--auto-approve']));
    if (r.status !== 0) throw new Error(r.output);
    expect(r.output).toMatch(/Apply complete! Resources: 2 added, 0 changed, 0 destroyed/);

    const head = await swift(env, 'HEAD', container);
    expect(head.status).toBe(204);
    expect(head.headers.get('x-container-meta-managed-by')).toBe('chameleon-persist');
    const creds = await listCredentials(env);
    expect(creds.filter((c) => c.name === credentialName)).toHaveLength(1);
    // No collision with the tutorial's credential, which is still there, unchanged.
    expect(creds.filter((c) => c.name === TUTORIAL_CREDENTIAL).map((c) => c.id)).toEqual([tutorial.id]);

    first = runnerCoordinates(p);
    expect(first).toMatchObject({ container, authUrl: env.authUrl, region: env.region, userId: env.userId });
    expect(first.credentialId).toBe(creds.find((c) => c.name === credentialName)!.id);
    secrets.push(first.credentialSecret!);

    // rclone, with the rclone.conf the runner writes onto the node, uploads into the container and lists it.
    const conf = join(p.dir, 'rclone.conf');
    writeFileSync(
      conf,
      renderRcloneConf({
        name: 'chi_tacc',
        authUrl: first.authUrl,
        region: first.region,
        userId: first.userId,
        credentialId: first.credentialId,
        credentialSecret: first.credentialSecret!,
      }),
      { mode: 0o600 },
    );
    writeFileSync(join(p.dir, 'rclone-check.txt'), "written by rclone with the stack's credential\n");
    execFileSync('rclone', ['--config', conf, 'copyto', join(p.dir, 'rclone-check.txt'), `chi_tacc:${container}/rclone-check.txt`], {
      stdio: 'pipe',
    });
    expect(execFileSync('rclone', ['--config', conf, 'lsf', `chi_tacc:${container}`], { encoding: 'utf8' })).toContain('rclone-check.txt');
    rmSync(conf);

    // The secret is only in the storage state (not an output), and that file is private.
    const state = readState(p, 'storage');
    expect(Object.keys(state.outputs)).not.toContain('credential_secret');
    expect(JSON.stringify(state.outputs)).not.toContain(first.credentialSecret);
    for (const f of ['terraform.storage.tfstate', 'terraform.storage.tfstate.backup', 'terraform.etl.tfstate', 'terraform.node.tfstate']) {
      expect([f, fileMode(join(p.dir, f))]).toEqual([f, '0600']);
    }
    for (const d of ['cdktf.out', 'cdktf.out/stacks', 'cdktf.out/stacks/storage'])
      expect([d, fileMode(join(p.dir, d))]).toEqual([d, '0700']);
  });

  it('diff right after, and a plain terraform plan of the synthesized JSON: no changes', async () => {
    const r = await timed('cdktf diff storage', () => cdktf(p, ['diff', 'storage']));
    if (r.status !== 0) throw new Error(r.output);
    expect(r.output).toContain('No changes. Your infrastructure matches the configuration.');
    // Plain Terraform on the synthesized JSON (the way out of CDKTF, archived since 0.21.0): the same answer.
    const plain = terraform(join(p.dir, 'cdktf.out', 'stacks', 'storage'), ['plan', '-detailed-exitcode', '-no-color'], p.env);
    p.transcript.push(plain.stdout, plain.stderr);
    if (plain.status !== 0) throw new Error(plain.stderr + plain.stdout);
    expect(plain.stdout).toContain('No changes.');
    // The plan cdktf leaves holds the whole state, secret included: it sits in a 0700 directory.
    expect(fileMode(join(p.dir, 'cdktf.out', 'stacks', 'storage'))).toBe('0700');
  });

  it('a new credential.expiresAt replaces the credential, and a real plan of the etl stack reruns it; no secret in the etl state', async () => {
    // The etl stack deployed with the first credential: a stand-in node state (its outputs), and the
    // provisioner swapped for `true` (the runner itself is exercised by __tests__/remote/deploy-etl.e2e.test.ts).
    const etlDir = join(p.dir, 'cdktf.out', 'stacks', 'etl');
    const etlJson = JSON.parse(readFileSync(join(etlDir, 'cdk.tf.json'), 'utf8'));
    const nodeOutputs = [...new Set<string>(JSON.stringify(etlJson).match(/cross-stack-reference-input-node\.outputs\.[\w-]+/g) ?? [])].map(
      (m) => m.split('.outputs.')[1]!,
    );
    expect(nodeOutputs.length).toBeGreaterThan(0);
    const outputs = Object.fromEntries(
      nodeOutputs.map((n) => [n, { value: /address/.test(n) ? '192.5.87.10' : /id$/.test(n) ? 'server-1' : `${n}-value`, type: 'string' }]),
    );
    writeFileSync(
      join(p.dir, 'terraform.node.tfstate'),
      JSON.stringify({ version: 4, terraform_version: '1.5.0', serial: 1, lineage: 'stand-in-node', outputs, resources: [] }),
    );
    etlJson.resource.terraform_data.etl_run.provisioner[0]['local-exec'].command = 'true';
    writeFileSync(join(etlDir, 'cdk.tf.json'), JSON.stringify(etlJson));
    const applied = terraform(etlDir, ['apply', '-auto-approve', '-no-color'], p.env);
    p.transcript.push(applied.stdout, applied.stderr);
    if (applied.status !== 0) throw new Error(applied.stderr + applied.stdout);

    writeConfig(p, userConfig(env, teamId, daysAhead(120)));
    const r = await timed('cdktf deploy storage (new expiresAt)', () => cdktf(p, ['deploy', 'storage', '--auto-approve']));
    if (r.status !== 0) throw new Error(r.output);
    expect(r.output).toMatch(/Resources: 1 added, 0 changed, 1 destroyed/); // the credential, replaced
    second = runnerCoordinates(p);
    secrets.push(second.credentialSecret!);
    expect(second.credentialId).not.toBe(first.credentialId);
    expect(await credentialWorks(env, { id: second.credentialId, secret: second.credentialSecret! })).toBe(true);
    expect(await credentialWorks(env, { id: first.credentialId, secret: first.credentialSecret! })).toBe(false); // deleted
    expect(readState(p, 'storage').resources.find((x) => x.type === 'openstack_objectstorage_container_v1')).toBeDefined();

    // The deploy re-synthesized the etl stack (the real provisioner again); Terraform plans to run it again.
    const plan = terraform(etlDir, ['plan', '-detailed-exitcode', '-no-color'], p.env);
    p.transcript.push(plan.stdout, plan.stderr);
    if (plan.status !== 2) throw new Error(`expected a plan with changes (exit 2), got ${plan.status}:\n${plan.stderr}${plan.stdout}`);
    expect(plan.stdout).toMatch(/terraform_data\.etl_run must be replaced/);
    expect(plan.stdout).toContain(`"${first.credentialId}" -> "${second.credentialId}"`);

    // terraform_remote_state copied the storage outputs into the etl state: ids, never a secret.
    for (const f of ['terraform.etl.tfstate', 'terraform.etl.tfstate.backup']) {
      const text = readFileSync(join(p.dir, f), 'utf8');
      for (const s of secrets) expect([f, text.includes(s)]).toEqual([f, false]);
      expect([f, fileMode(join(p.dir, f))]).toEqual([f, '0600']);
    }
    expect(readFileSync(join(p.dir, 'terraform.etl.tfstate'), 'utf8')).toContain(first.credentialId);
  });

  it('destroy etl storage is refused while the container holds data: the data, the credential and the state stay', async () => {
    expect((await swift(env, 'PUT', `${container}/keep.txt`, 'precious\n')).status).toBe(201);
    const r = await timed('cdktf destroy etl storage (refused)', () => cdktf(p, ['destroy', 'etl', 'storage', '--auto-approve']));
    expect(r.status).not.toBe(0);
    expect(r.output).toMatch(/error deleting objectstorage_container_v1 .*got 409/);

    expect(await (await swift(env, 'GET', `${container}/keep.txt`)).text()).toBe('precious\n');
    expect(await credentialWorks(env, { id: second.credentialId, secret: second.credentialSecret! })).toBe(true);
    const state = readState(p, 'storage');
    expect(state.resources.map((x) => x.type).sort()).toEqual([
      'openstack_identity_application_credential_v3',
      'openstack_objectstorage_container_v1',
    ]);
    // Terraform drops the outputs before the refused delete; a deploy puts them back and changes nothing.
    const again = await timed('cdktf deploy storage (after the refusal)', () => cdktf(p, ['deploy', 'storage', '--auto-approve']));
    if (again.status !== 0) throw new Error(again.output);
    expect(again.output).toMatch(/Resources: 0 added, 0 changed, 0 destroyed/);
    expect(runnerCoordinates(p)).toEqual(second);
  });

  it('once the container is empty the destroy goes through, and the tutorial credential is untouched', async () => {
    for (const name of ['keep.txt', 'rclone-check.txt']) expect((await swift(env, 'DELETE', `${container}/${name}`)).status).toBe(204);
    await waitEmpty(env, container);
    const r = await timed('cdktf destroy etl storage (empty)', () => cdktf(p, ['destroy', 'etl', 'storage', '--auto-approve']));
    if (r.status !== 0) throw new Error(r.output);
    expect(r.output).toMatch(/Destroy complete! Resources: 2 destroyed/);
    expect((await swift(env, 'HEAD', container)).status).toBe(404);
    const creds = await listCredentials(env);
    expect(creds.filter((c) => c.name === credentialName)).toEqual([]);
    expect(creds.filter((c) => c.name === TUTORIAL_CREDENTIAL).map((c) => c.id)).toEqual([tutorial.id]);
    for (const f of ['terraform.storage.tfstate', 'terraform.storage.tfstate.backup'])
      expect([f, fileMode(join(p.dir, f))]).toEqual([f, '0600']);
  });
});

describeTerraform('bring your own credential through the real provider', { provider: true }, () => {
  let env: OpenStackEnv;
  let p: TestProject;
  let own: AppCredential;
  const teamId = `byo${process.pid}`;
  const container = `object-persist-${teamId}`;

  beforeAll(async () => {
    env = ensureOpenStack();
    own = await createAppCredential(env, `byo-${process.pid}`);
    p = createProject(work, 'byo', env, userConfig(env, teamId, daysAhead(60)));
    Object.assign(p.env, { PERSIST_APP_CREDENTIAL_ID: own.id, PERSIST_APP_CREDENTIAL_SECRET: own.secret });
    await synthAndInit(p, ['storage', 'etl']);
  });

  afterAll(async () => {
    if ((await objectCount(env, container).catch(() => undefined)) !== undefined)
      await swift(env, 'DELETE', container).catch(() => undefined);
    if (own) await revokeAppCredential(env, own).catch(() => undefined);
    expect(p?.transcript.join('\n').includes(own.secret)).toBe(false);
  });

  it('deploy creates only the container; the secret is in no file the project wrote; destroy leaves the credential', async () => {
    const r = await timed('cdktf deploy storage (bring your own)', () => cdktf(p, ['deploy', 'storage', '--auto-approve']));
    if (r.status !== 0) throw new Error(r.output);
    expect(r.output).toMatch(/Resources: 1 added, 0 changed, 0 destroyed/);
    // Nothing created: the only credential the stack could create is persist-<teamId>-rclone. (Not the whole
    // list: other suites create and revoke credentials of the same user meanwhile.)
    const creds = await listCredentials(env);
    expect(creds.filter((c) => c.name.startsWith(`persist-${teamId}`))).toEqual([]);
    expect(creds.filter((c) => c.id === own.id)).toHaveLength(1);
    expect(readState(p, 'storage').resources.map((x) => x.type)).toEqual(['openstack_objectstorage_container_v1']);
    const coords = runnerCoordinates(p);
    expect(coords).toMatchObject({ container, credentialId: own.id });
    expect(coords.credentialSecret).toBeUndefined(); // the runner takes it from PERSIST_APP_CREDENTIAL_SECRET

    const d = await cdktf(p, ['diff', 'storage']);
    expect(d.output).toContain('No changes.');
    const files = filesUnder(p.dir);
    expect(files.some((f) => f.endsWith('terraform.storage.tfstate'))).toBe(true);
    expect(files.some((f) => f.endsWith(join('stacks', 'storage', 'plan')))).toBe(true);
    for (const f of files) {
      // Plans are zip files: look inside them too.
      const text = f.endsWith('plan') ? execFileSync('unzip', ['-p', f]).toString('utf8') : readFileSync(f, 'utf8');
      expect([f, text.includes(own.secret)]).toEqual([f, false]);
    }

    const gone = await cdktf(p, ['destroy', 'etl', 'storage', '--auto-approve']);
    if (gone.status !== 0) throw new Error(gone.output);
    expect((await swift(env, 'HEAD', container)).status).toBe(404);
    expect(await credentialWorks(env, own)).toBe(true);
    expect(existsSync(join(p.dir, 'terraform.storage.tfstate'))).toBe(true);
  });
});
