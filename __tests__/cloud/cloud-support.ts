import execa from 'execa';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type OpenStackEnv, userToken } from '../support/openstack';
import { STAND_INS_DIR, STARTED_MARKER } from '../support/global-teardown';

export const ROOT = join(__dirname, '..', '..');
export const CLOUD_SCRIPT = join(ROOT, 'scripts', 'local-cloud.sh');
export const CLOUD_STATE = join(STAND_INS_DIR, process.env.PERSIST_TEST_CLOUD || 'cloud');
const HOUR = 3600_000;

/** STATE_DIR/cloud.json, written by scripts/local-cloud/resources.py. */
export interface LocalCloud {
  region: string;
  imageId: string;
  imageRecipe: string | null;
  sharednet1: string;
  public: string;
  routerId: string;
  reservationId: string;
  projectId: string;
  /** The "laptop": the namespace whose address is the public gateway; every user command of the test runs here. */
  outsideNetns: string;
  outsideAddress: string;
  /** Another outside host, routed through outsideNetns: an address that ssh.allowedCidr does not cover. */
  farNetns: string;
  farAddress: string;
  /** Served at filesUrl (the root namespace's 127.0.0.1, and so the guest's, through the vendor data). */
  filesDir: string;
  filesUrl: string;
  ports: Record<string, number>;
}

/**
 * The local KVM@TACC up, with the VM test's Debian image as CC-Ubuntu24.04 (idempotent: a running cloud whose
 * config has not changed is left alone, in seconds). A cloud started here is stopped by the jest teardown.
 */
export async function ensureCloud(imageDir: string, keystoneState: string): Promise<LocalCloud> {
  const running = (await execa('bash', [CLOUD_SCRIPT, 'status', CLOUD_STATE], { reject: false })).exitCode === 0;
  const up = await execa('bash', [CLOUD_SCRIPT, 'up', CLOUD_STATE], {
    reject: false,
    timeout: HOUR,
    env: { CLOUD_IMAGE_DIR: imageDir, KEYSTONE_STATE: keystoneState },
  });
  if (up.exitCode !== 0) throw new Error(`local-cloud.sh up failed:\n${up.stderr.slice(-4000)}`);
  if (!running && !process.env.PERSIST_KEEP_CLOUD) writeFileSync(join(CLOUD_STATE, STARTED_MARKER), CLOUD_SCRIPT);
  const cloud = JSON.parse(readFileSync(join(CLOUD_STATE, 'cloud.json'), 'utf8')) as LocalCloud;
  cloud.ports = Object.fromEntries(
    readFileSync(join(CLOUD_STATE, 'ports.env'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => l.split('=') as [string, string])
      .map(([k, v]) => [k, Number(v)]),
  );
  return cloud;
}

/** A command run in a harness namespace, as a user would type it there (`ip netns exec` changes nothing else). */
export function inNetns(netns: string, file: string, args: string[], opts: execa.Options = {}) {
  return execa('ip', ['netns', 'exec', netns, file, ...args], { reject: false, ...opts });
}

/** A token of the member user, and the compute/network API of the local cloud with it. */
export class CloudApi {
  private token?: string;
  constructor(
    private readonly env: OpenStackEnv,
    private readonly cloud: LocalCloud,
  ) {}

  private async auth(): Promise<string> {
    this.token ??= await userToken(this.env);
    return this.token;
  }

  private base(service: 'nova' | 'neutron'): string {
    return service === 'nova'
      ? `http://127.0.0.1:${this.cloud.ports.NOVA_PORT}/v2.1`
      : `http://127.0.0.1:${this.cloud.ports.NEUTRON_PORT}/v2.0`;
  }

  /** One request; the JSON body of a 2xx answer that has one. */
  async call<T>(service: 'nova' | 'neutron', method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
    const res = await fetch(`${this.base(service)}${path}`, {
      method,
      headers: { 'x-auth-token': await this.auth(), 'content-type': 'application/json', 'openstack-api-version': 'compute 2.79' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: (res.ok && text ? JSON.parse(text) : undefined) as T };
  }

  get<T>(service: 'nova' | 'neutron', path: string) {
    return this.call<T>(service, 'GET', path);
  }
}
