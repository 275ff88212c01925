import { App, Testing } from 'cdktf';
// Brings the type declarations of the matchers Testing.setupJest() registers (toHaveResourceWithProperties, …).
import 'cdktf/lib/testing/adapters/jest';
import { ComputeInstanceV2 } from '../../.gen/providers/openstack/compute-instance-v2';
import { ComputeKeypairV2 } from '../../.gen/providers/openstack/compute-keypair-v2';
import { DataOpenstackIdentityAuthScopeV3 } from '../../.gen/providers/openstack/data-openstack-identity-auth-scope-v3';
import { DataOpenstackNetworkingNetworkV2 } from '../../.gen/providers/openstack/data-openstack-networking-network-v2';
import { IdentityApplicationCredentialV3 } from '../../.gen/providers/openstack/identity-application-credential-v3';
import { NetworkingFloatingipAssociateV2 } from '../../.gen/providers/openstack/networking-floatingip-associate-v2';
import { NetworkingFloatingipV2 } from '../../.gen/providers/openstack/networking-floatingip-v2';
import { NetworkingPortV2 } from '../../.gen/providers/openstack/networking-port-v2';
import { NetworkingSecgroupRuleV2 } from '../../.gen/providers/openstack/networking-secgroup-rule-v2';
import { NetworkingSecgroupV2 } from '../../.gen/providers/openstack/networking-secgroup-v2';
import { ObjectstorageContainerV1 } from '../../.gen/providers/openstack/objectstorage-container-v1';
import { OpenstackProvider } from '../../.gen/providers/openstack/provider';
import { renderCloudConfig } from '../../cloud-init/render';
import type { PersistConfig } from '../../config';
import { NodeStack } from '../../stacks/node-stack';
import { StorageStack } from '../../stacks/storage-stack';
import { resolved } from '../support/constructs';
import { SENTINEL_SECRET, TEST_RESERVATION, testConfig } from './helpers';

Testing.setupJest();

type Json = Record<string, any>;

function synthStorage(config: PersistConfig): { stack: StorageStack; text: string; json: Json } {
  const app = Testing.app();
  const stack = new StorageStack(app, 'storage', { config });
  const text = Testing.synth(stack);
  return { stack, text, json: JSON.parse(text) };
}

function synthNode(config: PersistConfig): { stack: NodeStack; text: string; json: Json } {
  const app = Testing.app();
  const stack = new NodeStack(app, 'node', { config });
  const text = Testing.synth(stack);
  return { stack, text, json: JSON.parse(text) };
}

/** Every resource and data source body in a synthesized stack. */
function allBlocks(json: Json): Array<{ address: string; body: Json }> {
  const out: Array<{ address: string; body: Json }> = [];
  for (const kind of ['resource', 'data'] as const) {
    for (const [type, byName] of Object.entries<Json>(json[kind] ?? {})) {
      for (const [name, body] of Object.entries<Json>(byName)) {
        out.push({ address: `${kind === 'data' ? 'data.' : ''}${type}.${name}`, body });
      }
    }
  }
  return out;
}

describe('both stacks', () => {
  const config = testConfig();
  const stacks = { storage: synthStorage(config), node: synthNode(config) };

  test.each(Object.keys(stacks))('%s: required_providers pins terraform-provider-openstack/openstack to 3.x', (name) => {
    const { json } = stacks[name as keyof typeof stacks];
    expect(json.terraform.required_providers).toEqual({
      openstack: { source: 'terraform-provider-openstack/openstack', version: '~> 3.4' },
    });
  });

  test.each([
    ['storage', 'chi_tacc', 'chi_tacc', 'CHI@TACC'],
    ['node', 'kvm_tacc', 'kvm_tacc', 'KVM@TACC'],
  ])('%s: one aliased provider for its site, named by clouds.yaml entry and region', (name, alias, cloud, region) => {
    const { text, json } = stacks[name as keyof typeof stacks];
    expect(text).toHaveProviderWithProperties(OpenstackProvider, { alias, cloud, region });
    expect(json.provider.openstack).toHaveLength(1);
    // No block may fall back to an unconfigured default provider (it would read OS_* and could hit the other site).
    for (const { address, body } of allBlocks(json)) expect([address, body.provider]).toEqual([address, `openstack.${alias}`]);
  });

  test.each(Object.keys(stacks))('%s: local state in the project root, path independent of the machine', (name) => {
    const { json } = stacks[name as keyof typeof stacks];
    expect(json.terraform.backend).toEqual({ local: { path: `../../../terraform.${name}.tfstate` } });
  });

  test('the two sites can use other clouds.yaml entries and regions', () => {
    const custom = testConfig({ chi: { cloud: 'my-chi', region: 'R1' }, kvm: { cloud: 'my-kvm', region: 'R2' } });
    expect(synthStorage(custom).text).toHaveProviderWithProperties(OpenstackProvider, { cloud: 'my-chi', region: 'R1' });
    expect(synthNode(custom).text).toHaveProviderWithProperties(OpenstackProvider, { cloud: 'my-kvm', region: 'R2' });
  });

  test('the node stack does not reference anything of the storage stack', () => {
    // Destroying or replacing the node can then never plan a change to the container or the credential.
    const text = stacks.node.text;
    expect(text).not.toMatch(/objectstorage|application_credential|terraform_remote_state/);
    expect(stacks.node.json.data?.terraform_remote_state).toBeUndefined();
  });
});

describe('storage stack', () => {
  test('container object-persist-<teamId>, not force-destroyed by default, at a pinned address', () => {
    const { text, json } = synthStorage(testConfig());
    expect(text).toHaveResourceWithProperties(ObjectstorageContainerV1, {
      name: 'object-persist-proj99',
      region: 'CHI@TACC',
      force_destroy: false,
    });
    expect(Object.keys(json.resource.openstack_objectstorage_container_v1)).toEqual(['container']);
    expect(json.resource.openstack_objectstorage_container_v1.container.lifecycle).toBeUndefined();
  });

  test('destroy order: the container goes before the credential, so a refused destroy keeps both', () => {
    const { json } = synthStorage(testConfig());
    expect(json.resource.openstack_objectstorage_container_v1.container.depends_on).toEqual([
      'openstack_identity_application_credential_v3.rclone',
    ]);
  });

  test('allowDestroyNonEmptyContainer: true turns on force_destroy', () => {
    const { text } = synthStorage(testConfig({ storage: { allowDestroyNonEmptyContainer: true } }));
    expect(text).toHaveResourceWithProperties(ObjectstorageContainerV1, { force_destroy: true });
  });

  test('application credential: restricted, expiring, no access rules unless asked', () => {
    const { text, json } = synthStorage(testConfig({ credential: { expiresAt: '2026-03-15T08:30:00+02:00' } }));
    expect(text).toHaveResourceWithProperties(IdentityApplicationCredentialV3, {
      name: 'persist-proj99-rclone',
      expires_at: '2026-03-15T06:30:00Z',
      unrestricted: false,
    });
    expect(json.resource.openstack_identity_application_credential_v3.rclone.access_rules).toBeUndefined();
  });

  test('access rules (opt-in): reading the container, reading and writing its objects, never its metadata', () => {
    const { json } = synthStorage(testConfig({ credential: { accessRules: true } }));
    const rules: Json[] = json.resource.openstack_identity_application_credential_v3.rclone.access_rules;
    const project = '${data.openstack_identity_auth_scope_v3.current.project_id}';
    const base = `/v1/AUTH_${project}/object-persist-proj99`;
    const set = (path: string) =>
      rules
        .filter((r) => r.path === path)
        .map((r) => r.method)
        .sort();
    for (const rule of rules) expect(rule.service).toBe('object-store');
    // PUT or POST on a container path sets its metadata, ACLs included (X-Container-Read: .r:* makes the
    // dataset world-readable): only GET and HEAD there, on the container and on its segments container.
    expect(set(base)).toEqual(['GET', 'HEAD']);
    expect(set(`${base}_segments`)).toEqual(['GET', 'HEAD']);
    expect(set(`${base}/**`)).toEqual(['DELETE', 'GET', 'HEAD', 'PUT']);
    expect(set(`${base}_segments/**`)).toEqual(['DELETE', 'GET', 'HEAD', 'PUT']);
    expect(rules).toHaveLength(12);
  });

  test('user id and project id come from openstack_identity_auth_scope_v3', () => {
    const { text, stack } = synthStorage(testConfig());
    expect(text).toHaveDataSourceWithProperties(DataOpenstackIdentityAuthScopeV3, { name: 'current' });
    expect(resolved(stack, stack.userId)).toBe('${data.openstack_identity_auth_scope_v3.current.user_id}');
    expect(resolved(stack, stack.projectId)).toBe('${data.openstack_identity_auth_scope_v3.current.project_id}');
  });

  test('outputs: names and values; the secret is not one (terraform_remote_state would copy it into the etl state)', () => {
    const { json } = synthStorage(testConfig());
    const outputs: Json = json.output;
    expect(Object.keys(outputs).sort()).toEqual(
      [
        'auth_url',
        'container_name',
        'credential_expires_at',
        'credential_id',
        'credential_source',
        'project_id',
        'region',
        'user_id',
      ].sort(),
    );
    expect(JSON.stringify(outputs)).not.toMatch(/secret/);
    for (const [name, o] of Object.entries<Json>(outputs)) expect([name, o.sensitive]).toEqual([name, false]);
    expect(outputs.container_name.value).toBe('${openstack_objectstorage_container_v1.container.name}');
    expect(outputs.auth_url.value).toBe('https://chi.tacc.chameleoncloud.org:5000/v3');
    expect(outputs.region.value).toBe('CHI@TACC');
    expect(outputs.user_id.value).toBe('${data.openstack_identity_auth_scope_v3.current.user_id}');
    expect(outputs.credential_id.value).toBe('${openstack_identity_application_credential_v3.rclone.id}');
    expect(outputs.credential_source.value).toBe('created');
  });

  test('public properties for the etl stack resolve to attributes of this stack', () => {
    const { stack } = synthStorage(testConfig());
    expect(resolved(stack, stack.containerName)).toBe('${openstack_objectstorage_container_v1.container.name}');
    expect(resolved(stack, stack.credentialId)).toBe('${openstack_identity_application_credential_v3.rclone.id}');
    expect(resolved(stack, stack.credentialSecret)).toBe('${openstack_identity_application_credential_v3.rclone.secret}');
    expect(stack.credentialSecretEnv).toBeUndefined();
    expect(stack.authUrl).toBe('https://chi.tacc.chameleoncloud.org:5000/v3');
    expect(stack.region).toBe('CHI@TACC');
    expect(stack.credentialSource).toBe('created');
  });

  describe('bring your own credential', () => {
    const id = 'f'.repeat(32);
    const env = { PERSIST_APP_CREDENTIAL_ID: id, PERSIST_APP_CREDENTIAL_SECRET: SENTINEL_SECRET };

    test('creates no credential and never puts the secret in the synthesized JSON', () => {
      const { text, json, stack } = synthStorage(testConfig({}, env));
      expect(text).not.toHaveResource(IdentityApplicationCredentialV3);
      expect(text).not.toContain(SENTINEL_SECRET);
      expect(json.output.credential_secret).toBeUndefined();
      expect(json.output.credential_id.value).toBe(id);
      expect(json.output.credential_source.value).toBe('existing');
      expect(stack.credentialSecret).toBeUndefined();
      expect(stack.credentialSecretEnv).toBe('PERSIST_APP_CREDENTIAL_SECRET');
      expect(stack.credentialId).toBe(id);
      expect(json.resource.openstack_objectstorage_container_v1.container.depends_on).toBeUndefined();
    });

    test('the container is still managed', () => {
      expect(synthStorage(testConfig({}, env)).text).toHaveResourceWithProperties(ObjectstorageContainerV1, {
        name: 'object-persist-proj99',
      });
    });
  });
});

describe('node stack', () => {
  test('keypair from the public key file', () => {
    const config = testConfig();
    const { text } = synthNode(config);
    expect(text).toHaveResourceWithProperties(ComputeKeypairV2, { name: 'persist-proj99', public_key: config.ssh.publicKey });
    expect(text).toHaveResourceWithProperties(ComputeInstanceV2, {
      key_pair: '${openstack_compute_keypair_v2.keypair.name}',
    });
  });

  test('an existing keypair by name: no keypair resource', () => {
    const { text } = synthNode(testConfig({ ssh: { publicKeyPath: null, keypairName: 'mine', privateKeyPath: '/k' } }));
    expect(text).not.toHaveResource(ComputeKeypairV2);
    expect(text).toHaveResourceWithProperties(ComputeInstanceV2, { key_pair: 'mine' });
  });

  test('security group: SSH (tcp/22) ingress from the configured CIDR only', () => {
    const { text, json } = synthNode(testConfig({ ssh: { allowedCidr: '198.51.100.0/24' } }));
    expect(text).toHaveResourceWithProperties(NetworkingSecgroupV2, { name: 'persist-proj99-ssh' });
    const rules = Object.values<Json>(json.resource.openstack_networking_secgroup_rule_v2);
    expect(rules).toHaveLength(1);
    expect(rules[0]).toMatchObject({
      direction: 'ingress',
      ethertype: 'IPv4',
      protocol: 'tcp',
      port_range_min: 22,
      port_range_max: 22,
      remote_ip_prefix: '198.51.100.0/24',
      security_group_id: '${openstack_networking_secgroup_v2.ssh_only.id}',
    });
  });

  test('an IPv6 CIDR gives an IPv6 rule', () => {
    const { text } = synthNode(testConfig({ ssh: { allowedCidr: '2001:db8::/48' } }));
    expect(text).toHaveResourceWithProperties(NetworkingSecgroupRuleV2, { ethertype: 'IPv6', remote_ip_prefix: '2001:db8::/48' });
  });

  test('port on the configured network carries the security group; the server uses the port', () => {
    const { text } = synthNode(testConfig({ node: { network: 'mynet' } }));
    expect(text).toHaveDataSourceWithProperties(DataOpenstackNetworkingNetworkV2, { name: 'mynet' });
    expect(text).toHaveResourceWithProperties(NetworkingPortV2, {
      network_id: '${data.openstack_networking_network_v2.network.id}',
      security_group_ids: ['${openstack_networking_secgroup_v2.ssh_only.id}'],
    });
    expect(text).toHaveResourceWithProperties(ComputeInstanceV2, {
      name: 'persist-proj99-node',
      image_name: 'CC-Ubuntu24.04',
      network: [{ port: '${openstack_networking_port_v2.node_port.id}' }],
    });
  });

  test('with a reservation: flavor_id = reservation id, no flavor_name', () => {
    const { json } = synthNode(testConfig());
    const server = json.resource.openstack_compute_instance_v2.node;
    expect(server.flavor_id).toBe(TEST_RESERVATION);
    expect(server.flavor_name).toBeUndefined();
  });

  test('without a reservation (another region): flavor_name, no flavor_id', () => {
    const { json } = synthNode(testConfig({ kvm: { region: 'RegionOne' }, node: { reservationId: null, flavor: 'm1.large' } }));
    const server = json.resource.openstack_compute_instance_v2.node;
    expect(server.flavor_name).toBe('m1.large');
    expect(server.flavor_id).toBeUndefined();
  });

  test('floating IP from the pool, associated to the port (networking resource, not the removed compute one)', () => {
    const { text, json } = synthNode(testConfig({ node: { floatingIpPool: 'ext' } }));
    expect(text).toHaveResourceWithProperties(NetworkingFloatingipV2, { pool: 'ext' });
    expect(text).toHaveResourceWithProperties(NetworkingFloatingipAssociateV2, {
      floating_ip: '${openstack_networking_floatingip_v2.node_floating_ip.address}',
      port_id: '${openstack_networking_port_v2.node_port.id}',
    });
    expect(JSON.stringify(json)).not.toMatch(/openstack_compute_floatingip/);
  });

  test('user_data is the rendered cloud-config, and holds no secret even when one is in the environment', () => {
    const config = testConfig({}, { PERSIST_APP_CREDENTIAL_ID: 'e'.repeat(32), PERSIST_APP_CREDENTIAL_SECRET: SENTINEL_SECRET });
    const { text, json, stack } = synthNode(config);
    const userData: string = json.resource.openstack_compute_instance_v2.node.user_data;
    expect(userData).toBe(stack.userData);
    expect(userData).toBe(renderCloudConfig(stack.cloudInit));
    expect(userData.startsWith('#cloud-config\n')).toBe(true);
    expect(userData).toContain('chi_tacc:object-persist-proj99');
    expect(text).not.toContain(SENTINEL_SECRET);
  });

  test('user_data does not change with settings that do not concern the node (no needless server replacement)', () => {
    const a = synthNode(testConfig()).stack.userData;
    const b = synthNode(testConfig({ credential: { expiresAt: '2026-04-01', accessRules: true }, etl: { seed: 9 } })).stack.userData;
    expect(b).toBe(a);
  });

  test('outputs: floating IP and an ssh cc@… command; properties for the etl stack', () => {
    const { json, stack } = synthNode(testConfig());
    const ip = '${openstack_networking_floatingip_v2.node_floating_ip.address}';
    expect(json.output.floating_ip.value).toBe(ip);
    expect(json.output.ssh_command.value).toMatch(
      /^ssh -i \S+test_ed25519 cc@\$\{openstack_networking_floatingip_v2\.node_floating_ip\.address\}$/,
    );
    expect(json.output.instance_id.value).toBe('${openstack_compute_instance_v2.node.id}');
    expect(stack.sshUser).toBe('cc');
    expect(resolved(stack, stack.floatingIp)).toBe('${openstack_networking_floatingip_v2.node_floating_ip.address}');
    expect(resolved(stack, stack.instanceId)).toBe('${openstack_compute_instance_v2.node.id}');
    expect(stack.layout).toEqual({
      remoteName: 'chi_tacc',
      rcloneConfigPath: '/home/cc/.config/rclone/rclone.conf',
      mountPoint: '/mnt/object',
      mountService: 'rclone-object-mount.service',
      remoteDir: '/home/cc/chameleon-persist',
    });
    expect(stack.cloudInit).toMatchObject({
      remoteName: 'chi_tacc',
      mountPoint: '/mnt/object',
      rcloneConfigPath: '/home/cc/.config/rclone/rclone.conf',
    });
  });

  test('the stack refuses a config whose public key was not read', () => {
    const config = testConfig();
    delete config.ssh.publicKey;
    const app = new App({ outdir: Testing.app().outdir });
    new NodeStack(app, 'node', { config });
    expect(() => app.synth()).toThrow(
      /Encountered Annotations with level "ERROR"[\s\S]*config\.ssh\.publicKey is empty; build the config with loadConfig\(\)/,
    );
  });
});
