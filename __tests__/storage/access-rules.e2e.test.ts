import { readerView } from '../support/versions';
import { Testing } from 'cdktf';
import { utimesSync } from 'node:fs';
import { join } from 'node:path';
import { EtlError } from '../../etl/errors';
import { workLayout } from '../../etl/work-dir';
import { memoryLogger } from '../../etl/log';
import { loadStage, type LoadOptions } from '../../etl/load/stage';
import { StorageStack } from '../../stacks/storage-stack';
import { testConfig } from '../infra/helpers';
import { expectedObjects, fakeWorkDir } from '../load/workdir';
import {
  appCredentialToken,
  ensureOpenStack,
  etlCredentialEnv,
  listContainer,
  revokeAppCredential,
  userToken,
  type AppCredential,
  type OpenStackEnv,
} from '../support/openstack';

// The storage stack's OWN access rules (credential.accessRules: true), taken from its synthesized JSON, on a
// credential of the real local Keystone, used against the real Swift (whose auth middleware enforces access
// rules, service_type = object-store). Known answers: the load stage works with them (first load, an
// unchanged rerun, a replacing load with --prune), and the credential cannot change the container's ACLs.

// Three loads through rclone against the stand-in: about 30 s on a quiet machine, 2 min on a loaded one.
jest.setTimeout(600_000);

type Rule = { service: string; method: string; path: string };

function stackRules(teamId: string, projectId: string): Rule[] {
  const app = Testing.app();
  const stack = new StorageStack(app, 'storage', { config: testConfig({ teamId, credential: { accessRules: true } }) });
  const json = JSON.parse(Testing.synth(stack));
  const rules: Rule[] = json.resource.openstack_identity_application_credential_v3.rclone.access_rules;
  // The one token in them is the project id of the auth scope; Keystone gets the value the provider would send.
  return rules.map((r) => ({ ...r, path: r.path.replace('${data.openstack_identity_auth_scope_v3.current.project_id}', projectId) }));
}

async function createRuledCredential(env: OpenStackEnv, name: string, rules: Rule[]): Promise<AppCredential> {
  const res = await fetch(`${env.authUrl}/users/${env.userId}/application_credentials`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-auth-token': await userToken(env) },
    body: JSON.stringify({ application_credential: { name, access_rules: rules } }),
  });
  if (res.status !== 201) throw new Error(`create ruled credential: ${res.status} ${await res.text()}`);
  const c = ((await res.json()) as { application_credential: AppCredential }).application_credential;
  return { id: c.id, secret: c.secret };
}

async function asUser(env: OpenStackEnv, method: string, path: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${env.swiftUrl}/${path}`, { method, headers: { 'x-auth-token': await userToken(env), ...headers } });
}

describe("the storage stack's access rules against the real Keystone + Swift", () => {
  let env: OpenStackEnv;
  const log = memoryLogger();
  const teamId = `ar${process.pid}`;
  const container = `object-persist-${teamId}`;
  const made: AppCredential[] = [];
  let ruled: AppCredential;

  const options = (extra: Partial<LoadOptions> = {}): LoadOptions => ({
    container,
    remote: 'chi_tacc',
    rclone: 'rclone',
    transfers: '8',
    checkers: '8',
    fastList: true,
    prune: false,
    ...extra,
  });
  async function load(workDir: string, o: LoadOptions, force = false) {
    try {
      return await loadStage.run({ workDir, force, log, env: { ...process.env, ...etlCredentialEnv(env, ruled) } }, o);
    } catch (e) {
      if (e instanceof EtlError) throw new Error(`${e.message}\n${e.hint ?? ''}\n${log.lines.slice(-15).join('\n')}`);
      throw e;
    }
  }
  /** What a reader sees: the current version's objects, after checking it is whole. */
  const hashes = async () => {
    const v = await readerView(env, container);
    expect(v.problems).toEqual([]);
    return v.current;
  };

  beforeAll(async () => {
    env = ensureOpenStack();
    // The storage stack creates the container; here the deploying user does, as the provider would.
    expect([201, 202]).toContain((await asUser(env, 'PUT', container)).status);
    ruled = await createRuledCredential(env, `persist-${teamId}-rclone`, stackRules(teamId, env.projectId));
    made.push(ruled);
  });

  afterAll(async () => {
    for (const c of made) await revokeAppCredential(env, c).catch(() => undefined);
    for (const name of (await listContainer(env, container).catch(() => new Map())).keys())
      await asUser(env, 'DELETE', `${container}/${name}`).catch(() => undefined);
    for (let i = 0; i < 20 && (await asUser(env, 'DELETE', container)).status === 409; i++) await new Promise((r) => setTimeout(r, 500));
  });

  it('the load stage works with them: a first load (lock, version, manifest, pointer), an unchanged rerun, a replacing load', async () => {
    const a = await fakeWorkDir('rules-a');
    expect((await load(a, options())).status).toBe('done');
    expect(await hashes()).toEqual(expectedObjects(a));

    // Unchanged bytes, new modification times (a re-transform): nothing needs metadata updates (no POST).
    const later = new Date(Date.now() + 60_000);
    for (const f of expectedObjects(a).keys()) {
      const local = f.startsWith('raw/') ? join(workLayout(a).staging, f.slice(4)) : join(workLayout(a).output, f);
      try {
        utimesSync(local, later, later);
      } catch {
        /* a name outside output/ and staging/: leave it */
      }
    }
    expect((await load(a, options(), true)).status).toBe('done');
    expect(await hashes()).toEqual(expectedObjects(a));

    // A new version: the unchanged maps would be copied server-side, but COPY is refused to a ruled credential,
    // so the load uploads them; the previous version stays (--keep 2).
    const b = await fakeWorkDir('rules-b');
    expect((await load(b, options(), true)).status).toBe('done');
    expect(await hashes()).toEqual(expectedObjects(b));
    expect((await readerView(env, container)).pointer?.versions).toHaveLength(2);
  });

  it('the credential cannot make the container world-readable or writable, nor reach another container', async () => {
    const token = await appCredentialToken(env, ruled);
    const attempt = (method: string, path: string, headers: Record<string, string> = {}) =>
      fetch(`${env.swiftUrl}/${path}`, { method, headers: { 'x-auth-token': token, ...headers } }).then((r) => r.status);
    expect(await attempt('GET', container)).toBe(200); // its own container: readable
    expect(await attempt('POST', container, { 'x-container-read': '.r:*,.rlistings' })).toBe(401);
    expect(await attempt('POST', container, { 'x-container-write': '*:*' })).toBe(401);
    expect(await attempt('PUT', container, { 'x-container-read': '.r:*,.rlistings' })).toBe(401);
    expect(await attempt('DELETE', container)).toBe(401);
    expect(await attempt('PUT', `${container}_segments`, { 'x-container-read': '.r:*' })).toBe(401);
    expect(await attempt('GET', `${env.ruledCredential.container}`)).toBe(401); // someone else's container
    const head = await asUser(env, 'HEAD', container);
    expect(head.headers.get('x-container-read')).toBeNull();
    expect(head.headers.get('x-container-write')).toBeNull();
  });

  it('control: with POST on the container path (the rules before this fix) the same request makes it world-readable', async () => {
    const loose = stackRules(teamId, env.projectId).concat({
      service: 'object-store',
      method: 'POST',
      path: `/v1/AUTH_${env.projectId}/${container}`,
    });
    const cred = await createRuledCredential(env, `loose-${process.pid}`, loose);
    made.push(cred);
    const token = await appCredentialToken(env, cred);
    const r = await fetch(`${env.swiftUrl}/${container}`, {
      method: 'POST',
      headers: { 'x-auth-token': token, 'x-container-read': '.r:*,.rlistings' },
    });
    expect(r.status).toBe(204);
    expect((await asUser(env, 'HEAD', container)).headers.get('x-container-read')).toBe('.r:*,.rlistings');
    // Anyone could now list it without a token.
    expect((await fetch(`${env.swiftUrl}/${container}`)).status).toBe(200);
    await asUser(env, 'POST', container, { 'x-remove-container-read': 'x' });
    expect((await asUser(env, 'HEAD', container)).headers.get('x-container-read')).toBeNull();
  });
});
