import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TEST_RUN_PID_ENV } from './global-setup';
import { STAND_INS_DIR, STARTED_MARKER } from './global-teardown';

export const OPENSTACK_SCRIPT = join(__dirname, '..', '..', 'scripts', 'local-openstack.sh');
/** `PERSIST_TEST_OPENSTACK=<name>` gives a test run its own stand-in under .stand-ins/<name> (own ports too). */
export const OPENSTACK_STATE = join(STAND_INS_DIR, process.env.PERSIST_TEST_OPENSTACK || 'openstack');

export interface AppCredential {
  id: string;
  secret: string;
}

export interface OpenStackEnv {
  authUrl: string;
  region: string;
  projectId: string;
  projectName: string;
  userId: string;
  userName: string;
  password: string;
  swiftUrl: string;
  /** A second proxy on the same storage that fault-injection tests stop and start (openstackCommand). */
  faultSwiftUrl: string;
  appCredential: AppCredential;
  ruledCredential: AppCredential & { container: string };
}

/**
 * The jest process that runs the teardown, as the global setup (which runs in it) recorded it. The harness
 * registers it, so the teardown's `down` (whose parent it is) releases only its own use. Guessing it from
 * process.send was wrong in band: jest's in-band process has a send() too, so its parent (npm's `sh -c jest`)
 * was registered, and a `npm run test:vm` teardown left Keystone + Swift to the watchdog.
 */
export function testRunPid(): number {
  const recorded = Number(process.env[TEST_RUN_PID_ENV]);
  return Number.isInteger(recorded) && recorded > 0 ? recorded : process.pid;
}

function harness(args: string[], stdio: 'ignore' | 'inherit'): void {
  execFileSync('bash', [OPENSTACK_SCRIPT, ...args], {
    stdio: ['ignore', stdio, stdio],
    env: { ...process.env, LOCAL_OPENSTACK_RUN_PID: String(testRunPid()) },
  });
}

function running(): boolean {
  try {
    harness(['register', OPENSTACK_STATE], 'ignore');
    return true;
  } catch {
    return false;
  }
}

/**
 * Starts the local Keystone + Swift once per test run (the script serialises concurrent callers with flock,
 * so two workers calling this at once get one stand-in) and returns what a client needs. A stand-in started by
 * a test run carries the teardown's marker and a watchdog; one started by hand is used as it is and left running.
 */
export function ensureOpenStack(): OpenStackEnv {
  if (!running()) harness(['up', OPENSTACK_STATE], 'inherit');
  if (existsSync(join(OPENSTACK_STATE, 'tests-owned'))) writeFileSync(join(OPENSTACK_STATE, STARTED_MARKER), OPENSTACK_SCRIPT);
  const envPath = join(OPENSTACK_STATE, 'env.json');
  if (!existsSync(envPath)) throw new Error(`local OpenStack started but ${envPath} is missing`);
  return JSON.parse(readFileSync(envPath, 'utf8')) as OpenStackEnv;
}

/** Promise form of ensureOpenStack, for `beforeAll(async () => …)`. */
export async function ensureOpenStackAsync(): Promise<OpenStackEnv> {
  return ensureOpenStack();
}

/** Fault injection on the second proxy (env.faultSwiftUrl); the main proxy keeps serving other suites. */
export function openstackCommand(cmd: 'stop-proxy' | 'start-proxy' | 'restart-proxy'): void {
  execFileSync('bash', [OPENSTACK_SCRIPT, cmd, OPENSTACK_STATE], { stdio: 'ignore' });
}

/** A token for an application credential, straight from Keystone's API (no rclone involved). */
export async function appCredentialToken(env: OpenStackEnv, cred: AppCredential = env.appCredential): Promise<string> {
  const res = await fetch(`${env.authUrl}/auth/tokens`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ auth: { identity: { methods: ['application_credential'], application_credential: cred } } }),
  });
  if (res.status !== 201) throw new Error(`Keystone refused the credential: ${res.status}`);
  return res.headers.get('x-subject-token') ?? '';
}

/** A project-scoped token of the member user (password), as the deploying user has. */
export async function userToken(env: OpenStackEnv): Promise<string> {
  const res = await fetch(`${env.authUrl}/auth/tokens`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      auth: {
        identity: { methods: ['password'], password: { user: { id: env.userId, password: env.password } } },
        scope: { project: { id: env.projectId } },
      },
    }),
  });
  if (res.status !== 201) throw new Error(`Keystone refused the user's password: ${res.status}`);
  return res.headers.get('x-subject-token') ?? '';
}

/** A fresh application credential for one test (e.g. to revoke it), deleted by `revoke`. */
export async function createAppCredential(env: OpenStackEnv, name: string, expiresAt?: string): Promise<AppCredential> {
  const token = await userToken(env);
  const res = await fetch(`${env.authUrl}/users/${env.userId}/application_credentials`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-auth-token': token },
    body: JSON.stringify({ application_credential: { name, expires_at: expiresAt ?? null } }),
  });
  if (res.status !== 201) throw new Error(`could not create application credential: ${res.status} ${await res.text()}`);
  const body = (await res.json()) as { application_credential: { id: string; secret: string } };
  return { id: body.application_credential.id, secret: body.application_credential.secret };
}

export async function revokeAppCredential(env: OpenStackEnv, cred: AppCredential): Promise<void> {
  const token = await userToken(env);
  const res = await fetch(`${env.authUrl}/users/${env.userId}/application_credentials/${cred.id}`, {
    method: 'DELETE',
    headers: { 'x-auth-token': token },
  });
  if (res.status !== 204) throw new Error(`could not revoke application credential: ${res.status}`);
}

/** Swift's own API: name -> { bytes, hash (MD5) } of every object in a container. */
export async function listContainer(env: OpenStackEnv, container: string): Promise<Map<string, { bytes: number; hash: string }>> {
  const token = await appCredentialToken(env);
  const out = new Map<string, { bytes: number; hash: string }>();
  let marker = '';
  for (;;) {
    const res = await fetch(`${env.swiftUrl}/${container}?format=json&marker=${encodeURIComponent(marker)}`, {
      headers: { 'x-auth-token': token },
    });
    if (res.status === 404) return out;
    const page = (await res.json()) as { name: string; bytes: number; hash: string }[];
    if (page.length === 0) return out;
    for (const o of page) out.set(o.name, { bytes: o.bytes, hash: o.hash });
    marker = page[page.length - 1].name;
  }
}

/** True when the object exists: a HEAD goes to the object server, with no container-listing lag. */
export async function hasObject(env: OpenStackEnv, container: string, name: string): Promise<boolean> {
  const token = await appCredentialToken(env);
  const res = await fetch(`${env.swiftUrl}/${container}/${name.split('/').map(encodeURIComponent).join('/')}`, {
    method: 'HEAD',
    headers: { 'x-auth-token': token },
  });
  return res.status === 200;
}

/** An object's size and MD5 from a HEAD (the object server: no container-listing lag), or undefined when absent. */
export async function headObject(env: OpenStackEnv, container: string, name: string): Promise<{ bytes: number; hash: string } | undefined> {
  const token = await appCredentialToken(env);
  const res = await fetch(`${env.swiftUrl}/${container}/${name.split('/').map(encodeURIComponent).join('/')}`, {
    method: 'HEAD',
    headers: { 'x-auth-token': token },
  });
  if (res.status === 404) return undefined;
  if (res.status !== 200) throw new Error(`HEAD ${container}/${name}: ${res.status}`);
  return { bytes: Number(res.headers.get('content-length')), hash: String(res.headers.get('etag')).replace(/"/g, '') };
}

export async function getObject(env: OpenStackEnv, container: string, name: string): Promise<Buffer | undefined> {
  const token = await appCredentialToken(env);
  const res = await fetch(`${env.swiftUrl}/${container}/${name.split('/').map(encodeURIComponent).join('/')}`, {
    headers: { 'x-auth-token': token },
  });
  if (res.status === 404) return undefined;
  return Buffer.from(await res.arrayBuffer());
}

export async function putObject(
  env: OpenStackEnv,
  container: string,
  name: string,
  body: Buffer | string,
  headers: Record<string, string> = {},
): Promise<void> {
  const token = await appCredentialToken(env);
  const res = await fetch(`${env.swiftUrl}/${container}/${name.split('/').map(encodeURIComponent).join('/')}`, {
    method: 'PUT',
    headers: { 'x-auth-token': token, ...headers },
    body,
  });
  if (res.status !== 201) throw new Error(`PUT ${container}/${name}: ${res.status}`);
}

export async function putContainer(env: OpenStackEnv, container: string): Promise<void> {
  const token = await appCredentialToken(env);
  const res = await fetch(`${env.swiftUrl}/${container}`, { method: 'PUT', headers: { 'x-auth-token': token } });
  if (res.status !== 201 && res.status !== 202) throw new Error(`PUT ${container}: ${res.status}`);
}

/** The ETL's credential environment for the load stage (rclone's env config, never argv). */
export function etlCredentialEnv(env: OpenStackEnv, cred: AppCredential = env.appCredential): Record<string, string> {
  return {
    ETL_APP_CREDENTIAL_ID: cred.id,
    ETL_APP_CREDENTIAL_SECRET: cred.secret,
    ETL_AUTH_URL: env.authUrl,
    ETL_REGION: env.region,
  };
}
