import execa from 'execa';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateMovieLensZip } from '../../testing/movielens-fixture';
import { ensureOpenStack, listContainer, type OpenStackEnv } from '../support/openstack';
import { readerView } from '../support/versions';
import { createProject, readState, synthAndInit, writeConfig, type TestProject } from '../support/terraform-project';
import { CloudApi, ensureCloud, inNetns, ROOT, type LocalCloud } from './cloud-support';
import { Timings } from '../support/timings';

/**
 * The whole deploy as a user types it, against real OpenStack services on this machine (docs/local-cloud.md):
 * `npx cdktf deploy storage node etl` with the real terraform-provider-openstack 3.4.0, Keystone + Swift as
 * CHI@TACC, Debian 12's Nova, Neutron, Glance and Placement as KVM@TACC, the node a qemu (TCG) guest that gets its
 * user_data from Nova's metadata service. Every user command runs in the harness's "outside" namespace, the
 * only place that reaches the floating IPs; the root namespace never routes there.
 */
const HOUR = 3600_000;
const teamId = `cloud${process.pid}`;
const container = `object-persist-${teamId}`;
const KEYSTONE_STATE = join(ROOT, '.stand-ins', process.env.PERSIST_TEST_OPENSTACK || 'openstack');

let env: OpenStackEnv;
let cloud: LocalCloud;
let api: CloudApi;
let project: TestProject;
let dir: string;
let timings: Timings;
let zipSha256: string;
let config: Record<string, unknown>;
let firstServer: string;
let firstDeploy: string;
let replacedServer: string;
/** datasets/<key>/training/ of the published version, read once after the first deploy. */
let currentPrefix: string;

interface Server {
  id: string;
  status: string;
  flavor: { id?: string; original_name?: string };
  image: { id: string };
  key_name: string;
  security_groups?: { name: string }[];
}

const sshKey = () => join(dir, 'id_ed25519');
const outsideEnv = () => ({ ...project.env, XDG_CACHE_HOME: join(dir, 'cache') });

/** `npx cdktf …` in the outside namespace, as a user on a laptop types it. */
async function cdktfOutside(args: string[]) {
  const r = await inNetns(cloud.outsideNetns, 'npx', ['cdktf', ...args], {
    cwd: project.dir,
    env: outsideEnv(),
    extendEnv: false,
    timeout: 2 * HOUR,
    all: true,
  });
  const output = (r.all ?? '').replace(/\u001b\[[0-9;?]*[A-Za-z]/g, '');
  project.transcript.push(output);
  return { status: r.exitCode, output };
}

/** `npm run etl:remote -- …` in the outside namespace. */
async function etlRemoteOutside(args: string[], extraEnv: Record<string, string> = {}) {
  const r = await inNetns(cloud.outsideNetns, 'npm', ['run', '--silent', 'etl:remote', '--', ...args], {
    cwd: project.dir,
    env: { ...outsideEnv(), ...extraEnv },
    extendEnv: false,
    timeout: HOUR,
    all: true,
  });
  project.transcript.push(r.all ?? '');
  return r;
}

function nodeOutputs(): { floatingIp: string; serverId: string } {
  const o = readState(project, 'node').outputs;
  return { floatingIp: String(o.floating_ip!.value), serverId: String(o.instance_id!.value) };
}

/** ssh to the node from a namespace, with the key the config names (one known_hosts per server: a new server keeps the floating IP). */
function sshFrom(netns: string, command: string, knownHosts?: string, timeoutSeconds = 20) {
  const { floatingIp, serverId } = nodeOutputs();
  knownHosts ??= join(dir, `known_hosts-${serverId}`);
  return inNetns(
    netns,
    'ssh',
    [
      '-i',
      sshKey(),
      '-o',
      'BatchMode=yes',
      '-o',
      'StrictHostKeyChecking=accept-new',
      '-o',
      `UserKnownHostsFile=${knownHosts}`,
      '-o',
      `ConnectTimeout=${timeoutSeconds}`,
      `cc@${floatingIp}`,
      command,
    ],
    { timeout: 300_000 },
  );
}

async function serverById(id: string): Promise<{ status: number; server?: Server }> {
  const r = await api.get<{ server: Server }>('nova', `/servers/${id}`);
  return { status: r.status, server: r.body?.server };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cloud-test-'));
  mkdirSync(join(dir, 'cache'));
  mkdirSync(join(ROOT, '.stand-ins'), { recursive: true });
  timings = new Timings(join(ROOT, '.stand-ins', `cloud-timings-${process.pid}.jsonl`), 'cloud test');
  const image = await timings.time('image (build or cache)', () =>
    execa('bash', [join(ROOT, 'scripts', 'local-vm', 'image.sh')], { reject: false, timeout: HOUR }),
  );
  if (image.exitCode !== 0) throw new Error(`image build failed:\n${image.stderr}`);
  env = ensureOpenStack();
  cloud = await timings.time('local cloud up', () => ensureCloud(image.stdout.trim(), KEYSTONE_STATE));
  api = new CloudApi(env, cloud);

  // The dataset on the "web": the cloud's file server, which the node reaches at the same 127.0.0.1 URL.
  const zip = join(cloud.filesDir, `ml-${teamId}.zip`);
  await generateMovieLensZip({ outPath: zip, rows: 40_000, seed: 12, name: `ml-${teamId}`, workDir: dir });
  zipSha256 = createHash('sha256').update(readFileSync(zip)).digest('hex');
  await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'cloud-test', '-f', sshKey()]);

  config = {
    teamId,
    chi: { cloud: 'chi_tacc', region: env.region, authUrl: env.authUrl },
    kvm: { cloud: 'kvm_tacc', region: cloud.region },
    credential: { expiresAt: new Date(Date.now() + 30 * 86400_000).toISOString().slice(0, 10) },
    ssh: { publicKeyPath: `${sshKey()}.pub`, allowedCidr: `${cloud.outsideAddress}/32`, user: 'cc' },
    node: { image: 'CC-Ubuntu24.04', reservationId: cloud.reservationId, network: 'sharednet1', floatingIpPool: 'public' },
    etl: { datasetUrl: `${cloud.filesUrl}/ml-${teamId}.zip`, datasetSha256: zipSha256, seed: 42 },
  };
  project = createProject(dir, 'project', env, config, cloud.region);
  await synthAndInit(project, ['storage', 'node', 'etl']);
}, 2 * HOUR);

afterAll(async () => {
  if (project) {
    // Whatever the tests left: the node first, then the container's objects are the only thing kept on purpose.
    await cdktfOutside(['destroy', 'etl', 'node', '--auto-approve']).catch(() => undefined);
    // The secret came from the storage stack's state; nothing cdktf, Terraform or the runner printed holds it.
    const secret = readState(project, 'storage').outputs.credential_secret?.value;
    if (typeof secret === 'string') for (const t of project.transcript) expect(t).not.toContain(secret);
  }
  if (timings) process.stderr.write(`cloud test timings (s): ${JSON.stringify(timings.phases)}\n`);
  if (project) writeFileSync(join(ROOT, '.stand-ins', `cloud-logs-${process.pid}.txt`), project.transcript.join('\n'), { mode: 0o600 });
}, HOUR);

describe('`npx cdktf deploy storage node etl` against a local KVM@TACC', () => {
  test('creates the container, credential, keypair, security group, port, server and floating IP; runs the ETL on the node', async () => {
    const r = await timings.time('deploy storage node etl (first)', () =>
      cdktfOutside(['deploy', 'storage', 'node', 'etl', '--auto-approve']),
    );
    firstDeploy = r.output;
    recordPhases('first node', r.output);
    expect(r.output).not.toMatch(/Error:/);
    expect(r.status).toBe(0);
    const { serverId } = nodeOutputs();
    firstServer = serverId;
    const { server } = await serverById(serverId);
    expect(server?.status).toBe('ACTIVE');
    // Booted as on Chameleon: flavor = the reservation's id, the image by name, our keypair.
    expect(server?.flavor.original_name).toBe(`reservation:${cloud.reservationId}`);
    expect(server?.image.id).toBe(cloud.imageId);
    expect(server?.key_name).toBe(`persist-${teamId}`);
  });

  test('the network side: one port on sharednet1 behind an SSH-only group, and the floating IP on it', async () => {
    const { floatingIp, serverId } = nodeOutputs();
    const ports = (
      await api.get<{ ports: { id: string; name: string; network_id: string; security_groups: string[] }[] }>(
        'neutron',
        `/ports?device_id=${serverId}`,
      )
    ).body.ports;
    expect(ports.map((p) => [p.network_id, p.name])).toEqual([[cloud.sharednet1, `persist-${teamId}-node-port`]]);
    const sgs = ports[0]!.security_groups;
    expect(sgs).toHaveLength(1);
    const rules = (
      await api.get<{
        security_group_rules: {
          direction: string;
          protocol: string | null;
          port_range_min: number | null;
          remote_ip_prefix: string | null;
        }[];
      }>('neutron', `/security-group-rules?security_group_id=${sgs[0]}&direction=ingress`)
    ).body.security_group_rules;
    expect(rules.map((x) => [x.protocol, x.port_range_min, x.remote_ip_prefix])).toEqual([['tcp', 22, `${cloud.outsideAddress}/32`]]);
    const fips = (
      await api.get<{ floatingips: { floating_ip_address: string; port_id: string }[] }>('neutron', `/floatingips?port_id=${ports[0]!.id}`)
    ).body.floatingips;
    expect(fips.map((f) => f.floating_ip_address)).toEqual([floatingIp]);
  });

  test("the guest got the synthesized user_data from Nova's metadata service, and cloud-init finished clean", async () => {
    const userData = JSON.parse(readFileSync(join(project.dir, 'cdktf.out', 'stacks', 'node', 'cdk.tf.json'), 'utf8'));
    const instance = Object.values(userData.resource.openstack_compute_instance_v2 as Record<string, { user_data: string }>)[0]!;
    const seen = await sshFrom(cloud.outsideNetns, 'sudo cat /var/lib/cloud/instance/user-data.txt | sha256sum; cloud-init status --long');
    expect(seen.exitCode).toBe(0);
    expect(seen.stdout.split(' ')[0]).toBe(createHash('sha256').update(instance.user_data).digest('hex'));
    expect(seen.stdout).toMatch(/^status: done$/m);
    expect(seen.stdout).toMatch(/DataSourceOpenStack/);
    // Where the boot's time went, by the guest's own clock: kernel start to cloud-init, cloud-init's stages.
    const clock = await sshFrom(cloud.outsideNetns, 'date -d "$(uptime -s)" +%s; sudo cat /var/lib/cloud/data/status.json');
    const [boot, ...json] = clock.stdout.split('\n');
    const stages = (JSON.parse(json.join('\n')) as { v1: Record<string, { start: number; finished: number }> }).v1;
    timings.record('first node: kernel start to cloud-init init-local', stages['init-local']!.start - Number(boot));
    timings.record(
      'first node: cloud-init, all stages (packages, setup script)',
      stages['modules-final']!.finished - stages['init-local']!.start,
    );
  });

  test("the runner pinned the node's host key from the server's console log before the first contact", () => {
    expect(firstDeploy).toContain(`pinned the host key of server ${firstServer} from its console log`);
  });

  test('the ETL loaded the dataset into the container, and the node shows it read-only at /mnt/object', async () => {
    const v = await readerView(env, container);
    expect(v.problems).toEqual([]);
    expect([...v.current.keys()].filter((k) => k.startsWith('training/')).length).toBeGreaterThan(0);
    const mount = await sshFrom(
      cloud.outsideNetns,
      "stat -c '%U %a' ~/.config/rclone/rclone.conf; findmnt -rn -o FSTYPE,OPTIONS --target /mnt/object/training; cat /mnt/object/manifest.json",
    );
    expect(mount.exitCode).toBe(0);
    expect(mount.stdout).toMatch(/^cc 600$/m); // the credential, delivered by the etl stack, readable by cc alone
    expect(mount.stdout).toMatch(/^fuse\.rclone ro,/m);
    expect(mount.stdout).toContain(zipSha256);
    currentPrefix = `datasets/${v.pointer!.current}/training/`;
  });

  test('a second deploy changes nothing', async () => {
    const before = await listContainer(env, container);
    const r = await timings.time('deploy storage node etl (unchanged)', () =>
      cdktfOutside(['deploy', 'storage', 'node', 'etl', '--auto-approve']),
    );
    expect(r.status).toBe(0);
    for (const stack of ['storage', 'node', 'etl'])
      expect(r.output).toMatch(new RegExp(`${stack}\\s+Apply complete! Resources: 0 added, 0 changed, 0 destroyed`));
    expect(r.output).not.toMatch(/Resources: [1-9]|[1-9]\d* (added|changed|destroyed)/);
    expect(nodeOutputs().serverId).toBe(firstServer);
    expect(await listContainer(env, container)).toEqual(before);
  });

  test('SSH from an address outside ssh.allowedCidr is dropped by the security group (and allowed once a rule admits it)', async () => {
    const far = await sshFrom(cloud.farNetns, 'true', join(dir, 'far_known_hosts'), 15);
    expect(far.exitCode).not.toBe(0);
    expect(far.stderr).toMatch(/timed out/);
    // The control: the same path works once the group admits the far address, so the group is what refused.
    const { serverId } = nodeOutputs();
    const port = (await api.get<{ ports: { security_groups: string[] }[] }>('neutron', `/ports?device_id=${serverId}`)).body.ports[0]!;
    const rule = await admitFar(port.security_groups[0]!);
    try {
      const ok = await waitForSsh(cloud.farNetns, join(dir, 'far_known_hosts'), 120);
      expect(ok).toBe(true);
    } finally {
      await api.call('neutron', 'DELETE', `/security-group-rules/${rule}`);
    }
  });

  test("the guest's way out is the harness's: Debian's archive through the proxy and the forwarded ports, nothing else", async () => {
    // From the guest: the archive proxy refuses any other host; the root namespace's own gateway is unreachable.
    const probe = [
      'import urllib.request as u, socket',
      'p = u.build_opener(u.ProxyHandler({"http": "PROXY"}))',
      'for url in ("http://deb.debian.org/debian/dists/bookworm/InRelease", "http://example.com/"):',
      '    try: print(url, p.open(url, timeout=30).status)',
      '    except Exception as e: print(url, getattr(e, "code", type(e).__name__))',
      's = socket.socket(); s.settimeout(5)',
      'try: s.connect(("192.0.2.1", 80)); print("gateway reached")',
      'except OSError as e: print("gateway", type(e).__name__)',
    ]
      .join('\n')
      .replace('PROXY', `http://${cloud.outsideAddress}:${cloud.ports.ARCHIVE_PORT}`);
    const r = await sshFrom(cloud.outsideNetns, `python3 - <<'EOF'\n${probe}\nEOF`);
    expect(r.stdout.trim().split('\n')).toEqual([
      'http://deb.debian.org/debian/dists/bookworm/InRelease 200',
      'http://example.com/ 403',
      expect.stringMatching(/^gateway (TimeoutError|timeout|OSError|ConnectionRefusedError)$/),
    ]);
    // From the outside: only the forwarded ports cross to the root namespace (Placement's does not).
    const ports = await inNetns(cloud.outsideNetns, 'bash', [
      '-c',
      `for p in ${cloud.ports.NOVA_PORT} ${cloud.ports.PLACEMENT_PORT}; do (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null && echo "$p open" || echo "$p closed"; done`,
    ]);
    expect(ports.stdout.trim().split('\n')).toEqual([`${cloud.ports.NOVA_PORT} open`, `${cloud.ports.PLACEMENT_PORT} closed`]);
  });

  test("a changed host key on the node is refused: the console log's key wins over whoever answers", async () => {
    const { serverId } = nodeOutputs();
    // The node's keys replaced (what an impostor at the floating IP would present).
    const swap = await sshFrom(
      cloud.outsideNetns,
      "sudo sh -c 'rm -f /etc/ssh/ssh_host_*; ssh-keygen -A >/dev/null; systemctl restart ssh'",
    );
    expect(swap.exitCode).toBe(0);
    const r = await etlRemoteOutside(['load', '--known-hosts', join(dir, 'fresh_known_hosts')]);
    expect(r.exitCode).not.toBe(0);
    expect(r.all).toContain(`pinned the host key of server ${serverId} from its console log`);
    expect(r.all).toContain(
      `presented a host key that differs from the one remembered for this server in ${join(dir, 'fresh_known_hosts')}`,
    );
    expect(r.all).toContain('the connection was refused and nothing was sent to it');
    expect(r.all).toContain("Compare with the key in the server's console log");
  });

  test('changing the cloud-config (etl.remoteDir) replaces the server; the data stays, and the new node finds it published', async () => {
    writeConfig(project, { ...config, etl: { ...(config.etl as object), remoteDir: '/home/cc/persist-etl' } });
    const plan = await cdktfOutside(['diff', 'node']);
    expect(plan.status).toBe(0);
    expect(plan.output).toContain('# openstack_compute_instance_v2.node (node/instance) must be replaced');
    expect(plan.output).toMatch(/user_data += "[0-9a-f]{40}" -> "[0-9a-f]{40}" # forces replacement/);
    const { output, before } = await redeployFindingTheData('cloud-config changed: server replaced', 'replaced node');
    expect(output).toMatch(/openstack_compute_instance_v2\.node \(node\/instance\): Destruction complete/);
    replacedServer = nodeOutputs().serverId;
    expect(replacedServer).not.toBe(firstServer);
    expect((await serverById(firstServer)).status).toBe(404);
    const seen = await sshFrom(cloud.outsideNetns, 'ls -d /home/cc/persist-etl && LC_ALL=C ls /mnt/object/training');
    expect(seen.exitCode).toBe(0);
    expect(seen.stdout.trim().split('\n').slice(1)).toEqual(trainingFiles(before));
  });

  test('`npx cdktf destroy etl node` removes the node and keeps every object of the container', async () => {
    const before = await listContainer(env, container);
    const { serverId, floatingIp } = nodeOutputs();
    const r = await timings.time('destroy etl node', () => cdktfOutside(['destroy', 'etl', 'node', '--auto-approve']));
    expect(r.status).toBe(0);
    expect((await serverById(serverId)).status).toBe(404);
    const ports = await api.get<{ ports: unknown[] }>('neutron', `/ports?device_id=${serverId}`);
    expect(ports.body.ports).toEqual([]);
    const named = await api.get<{ ports: unknown[] }>('neutron', `/ports?name=persist-${teamId}-node-port`);
    expect(named.body.ports).toEqual([]);
    const left = await api.get<{ floatingips: unknown[] }>('neutron', `/floatingips?floating_ip_address=${floatingIp}`);
    expect(left.body.floatingips).toEqual([]);
    const sgs = await api.get<{ security_groups: unknown[] }>('neutron', `/security-groups?name=persist-${teamId}-ssh`);
    expect(sgs.body.security_groups).toEqual([]);
    expect((await api.get('nova', `/os-keypairs/persist-${teamId}`)).status).toBe(404);
    expect(await listContainer(env, container)).toEqual(before);
  });

  // The README's deploy command: cdktf refuses `deploy node etl` without storage, which etl depends on (its
  // message says to name it); storage itself has no change.
  test('deploying again after the destroy brings up a new node, which finds the dataset already published and mounts it', async () => {
    const { before } = await redeployFindingTheData('after destroy etl node', 'new node');
    expect([firstServer, replacedServer]).not.toContain(nodeOutputs().serverId);
    const seen = await sshFrom(cloud.outsideNetns, 'LC_ALL=C ls /mnt/object/training');
    expect(seen.exitCode).toBe(0);
    expect(seen.stdout.trim().split('\n')).toEqual(trainingFiles(before));
  });
});

/**
 * The README's deploy command again, onto a node that is new: storage unchanged, the ETL finds the dataset
 * already published (nothing uploaded), and the container's listing is what it was before.
 */
async function redeployFindingTheData(why: string, label: string): Promise<{ output: string; before: Map<string, unknown> }> {
  const before = await listContainer(env, container);
  const r = await timings.time(`deploy storage node etl (${why})`, () =>
    cdktfOutside(['deploy', 'storage', 'node', 'etl', '--auto-approve']),
  );
  expect(r.status).toBe(0);
  recordPhases(label, r.output);
  expect(r.output).toMatch(/storage\s+Apply complete! Resources: 0 added, 0 changed, 0 destroyed/);
  expect(r.output).toMatch(/already published and verified .*nothing uploaded/);
  expect(await listContainer(env, container)).toEqual(before);
  return { output: r.output, before };
}

/** The file names under training/ of the current version, as the node's /mnt/object/training lists them. */
function trainingFiles(listing: Map<string, unknown>): string[] {
  const current = [...listing.keys()].find((k) => k === 'current.json');
  expect(current).toBe('current.json');
  return [...listing.keys()]
    .filter((k) => /^datasets\/[^/]+\/training\//.test(k) && k.startsWith(currentPrefix))
    .map((k) => k.slice(currentPrefix.length))
    .sort();
}

/**
 * Where a deploy's time went, from what it printed: Terraform's "Creation complete after" per resource, and the
 * runner's own stage lines (`[node] <== extract: done in 3.2s`).
 */
function recordPhases(label: string, output: string): void {
  const seconds = (m: string) =>
    m.split(/(?<=[hms])/).reduce((t, part) => t + Number.parseFloat(part) * ({ h: 3600, m: 60, s: 1 }[part.slice(-1)] ?? 0), 0);
  for (const m of output.matchAll(/(openstack_\w+|terraform_data)\.(\w+) \([^)]*\): Creation complete after ((?:\d+h)?(?:\d+m)?\d+s)/g))
    timings.record(`${label}: ${m[1]}.${m[2]}`, seconds(m[3]!));
  for (const m of output.matchAll(/\[node\] <== (\w+): \w+ in ([\d.]+)s/g)) timings.record(`${label}: ETL ${m[1]}`, Number(m[2]));
}

/** A rule admitting ssh from the far namespace's address, added through the network API as an admin of the project would. */
async function admitFar(sg: string): Promise<string> {
  const r = await api.call<{ security_group_rule: { id: string } }>('neutron', 'POST', '/security-group-rules', {
    security_group_rule: {
      security_group_id: sg,
      direction: 'ingress',
      protocol: 'tcp',
      port_range_min: 22,
      port_range_max: 22,
      remote_ip_prefix: `${cloud.farAddress}/32`,
    },
  });
  if (r.status !== 201) throw new Error(`adding the far address's rule: ${r.status}`);
  return r.body.security_group_rule.id;
}

async function waitForSsh(netns: string, knownHosts: string, seconds: number): Promise<boolean> {
  const end = Date.now() + seconds * 1000;
  while (Date.now() < end) {
    if ((await sshFrom(netns, 'true', knownHosts, 10)).exitCode === 0) return true;
    await new Promise((r) => setTimeout(r, 3000));
  }
  return false;
}
