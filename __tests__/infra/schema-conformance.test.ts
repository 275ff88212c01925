import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Testing } from 'cdktf';
import type { PersistConfig } from '../../config';
import { NodeStack } from '../../stacks/node-stack';
import { StorageStack } from '../../stacks/storage-stack';
import { checkStack, checkType, loadFilteredSchema, type Problem } from '../../testing/schema-conformance';
import { testConfig } from './helpers';

type Json = Record<string, any>;
const schema = loadFilteredSchema();

function synth(kind: 'storage' | 'node', config: PersistConfig): Json {
  const app = Testing.app();
  const stack = kind === 'storage' ? new StorageStack(app, kind, { config }) : new NodeStack(app, kind, { config });
  return JSON.parse(Testing.synth(stack));
}

const messages = (problems: Problem[]) => problems.map((p) => `${p.path}: ${p.message}`);

describe('the filtered schema', () => {
  test('is the 3.4.0 provider schema cut down, with the blocks the project uses', () => {
    const full = join(__dirname, '..', '..', '..', 'shared', 'openstack-provider', 'schema-3.4.0.json');
    const provider = schema.provider_schemas['registry.terraform.io/terraform-provider-openstack/openstack']!;
    expect(Object.keys(provider.resource_schemas ?? {})).toContain('openstack_networking_floatingip_associate_v2');
    expect(Object.keys(provider.resource_schemas ?? {})).not.toContain('openstack_compute_floatingip_associate_v2');
    let original: Json | undefined;
    try {
      original = JSON.parse(readFileSync(full, 'utf8'));
    } catch {
      return; // ../shared is optional in a clone; the committed copy is then the reference
    }
    const originalProvider = original!.provider_schemas['registry.terraform.io/terraform-provider-openstack/openstack'];
    for (const [type, s] of Object.entries(provider.resource_schemas ?? {})) expect(s).toEqual(originalProvider.resource_schemas[type]);
    for (const [type, s] of Object.entries(provider.data_source_schemas ?? {}))
      expect(s).toEqual(originalProvider.data_source_schemas[type]);
  });
});

describe('every synthesized stack conforms to the provider schema', () => {
  const variants: Array<[string, 'storage' | 'node', PersistConfig]> = [
    ['storage, created credential', 'storage', testConfig()],
    [
      'storage, access rules',
      'storage',
      testConfig({ credential: { accessRules: true }, storage: { allowDestroyNonEmptyContainer: true } }),
    ],
    [
      'storage, bring your own credential',
      'storage',
      testConfig({}, { PERSIST_APP_CREDENTIAL_ID: 'a'.repeat(32), PERSIST_APP_CREDENTIAL_SECRET: 'x' }),
    ],
    ['node, reservation + new keypair', 'node', testConfig()],
    [
      'node, flavor + existing keypair',
      'node',
      testConfig({
        kvm: { region: 'R' },
        node: { reservationId: null },
        ssh: { publicKeyPath: null, keypairName: 'k', privateKeyPath: '/k' },
      }),
    ],
    ['node, IPv6 CIDR', 'node', testConfig({ ssh: { allowedCidr: '2001:db8::/64' } })],
  ];
  test.each(variants)('%s', (_name, kind, config) => {
    expect(messages(checkStack(synth(kind, config), schema))).toEqual([]);
  });
});

describe('what terraform validate would reject fails the check', () => {
  const base = synth('node', testConfig());
  const storage = synth('storage', testConfig());
  const mutate = (from: Json, change: (s: Json) => void): Json => {
    const copy = structuredClone(from);
    change(copy);
    return copy;
  };
  const server = (s: Json) => s.resource.openstack_compute_instance_v2.node;
  const expectProblem = (stack: Json, pathPart: string, message: RegExp) => {
    const problems = checkStack(stack, schema);
    expect(problems.length).toBeGreaterThan(0);
    expect(problems).toContainEqual({ path: expect.stringContaining(pathPart), message: expect.stringMatching(message) });
  };

  test('the unmodified stack passes (control)', () => expect(checkStack(base, schema)).toEqual([]));

  test('an unknown attribute', () => {
    expectProblem(
      mutate(base, (s) => (server(s).floating_ip = '1.2.3.4')),
      'node.floating_ip',
      /unsupported argument "floating_ip"/,
    );
  });

  test('a misspelt attribute, with a suggestion', () => {
    expectProblem(
      mutate(base, (s) => (server(s).keypair = 'k')),
      'node.keypair',
      /unsupported argument "keypair" \(did you mean "key_pair"\?\)/,
    );
  });

  test('an unknown attribute inside a nested block', () => {
    expectProblem(
      mutate(base, (s) => (server(s).network[0].floating = true)),
      'network[0].floating',
      /unsupported argument/,
    );
  });

  test('a missing required attribute', () => {
    expectProblem(
      mutate(base, (s) => delete server(s).name),
      'openstack_compute_instance_v2.node.name',
      /"name" is required/,
    );
    expectProblem(
      mutate(base, (s) => delete s.resource.openstack_networking_floatingip_associate_v2.node_floating_ip_association.port_id),
      'port_id',
      /"port_id" is required/,
    );
  });

  test('a computed-only attribute set', () => {
    expectProblem(
      mutate(base, (s) => (server(s).access_ip_v4 = '10.0.0.5')),
      'access_ip_v4',
      /read-only \(computed\)/,
    );
  });

  test('a wrong type: text where a number is required', () => {
    expectProblem(
      mutate(base, (s) => (s.resource.openstack_networking_secgroup_rule_v2.ssh_ingress.port_range_min = 'ssh')),
      'port_range_min',
      /a number is required, got string "ssh"/,
    );
  });

  test('a wrong type: text where a bool is required', () => {
    expectProblem(
      mutate(storage, (s) => (s.resource.openstack_objectstorage_container_v1.container.force_destroy = 'no')),
      'force_destroy',
      /a bool is required/,
    );
  });

  test('a wrong type: a string where a set of strings is required, and a map of non-strings', () => {
    expectProblem(
      mutate(base, (s) => (s.resource.openstack_networking_port_v2.node_port.security_group_ids = 'sg-1')),
      'security_group_ids',
      /a set is required/,
    );
    expectProblem(
      mutate(base, (s) => (server(s).metadata = { a: { b: 1 } })),
      'metadata',
      /element "a": a string is required/,
    );
  });

  test('wrong nesting: a block given as a plain value', () => {
    expectProblem(
      mutate(base, (s) => (server(s).network = 'sharednet1')),
      'node.network',
      /is a block, not an argument/,
    );
  });

  test('wrong nesting: an attribute written as a block is still an attribute of the wrong type', () => {
    expectProblem(
      mutate(base, (s) => (server(s).key_pair = { name: 'k' })),
      'key_pair',
      /a string is required, got an object/,
    );
  });

  test('wrong nesting: too many blocks of a single / max_items block', () => {
    expectProblem(
      mutate(base, (s) => (server(s).timeouts = [{ create: '10m' }, { create: '20m' }])),
      'timeouts',
      /too many "timeouts" blocks: no more than 1/,
    );
    expectProblem(
      mutate(base, (s) => (server(s).vendor_options = [{ ignore_resize_confirmation: true }, { ignore_resize_confirmation: false }])),
      'vendor_options',
      /no more than 1/,
    );
  });

  test('wrong nesting: a block item that is not an object', () => {
    expectProblem(
      mutate(base, (s) => (server(s).network = ['port-1'])),
      'network[0]',
      /must be an object/,
    );
  });

  test('an unknown resource type (removed in provider v3)', () => {
    expectProblem(
      mutate(base, (s) => (s.resource.openstack_compute_floatingip_associate_v2 = { x: { floating_ip: '1.2.3.4', instance_id: 'i' } })),
      'openstack_compute_floatingip_associate_v2.x',
      /resource type "openstack_compute_floatingip_associate_v2" is not in the provider schema/,
    );
  });

  test('an unknown data source (there is no container data source)', () => {
    expectProblem(
      mutate(storage, (s) => (s.data.openstack_objectstorage_container_v1 = { c: { name: 'x' } })),
      'data.openstack_objectstorage_container_v1.c',
      /data source "openstack_objectstorage_container_v1" is not in the provider schema/,
    );
  });

  test('an unknown provider argument', () => {
    expectProblem(
      mutate(base, (s) => (s.provider.openstack[0].clouds = 'x')),
      'provider.openstack[0].clouds',
      /unsupported argument/,
    );
  });

  test('a provider alias that is not declared', () => {
    expectProblem(
      mutate(base, (s) => (server(s).provider = 'openstack.chi_tacc')),
      'node.provider',
      /no provider "openstack" configuration with alias "chi_tacc"/,
    );
  });

  test('bad meta-arguments', () => {
    expectProblem(
      mutate(base, (s) => (server(s).lifecycle = { prevent_destroy: 'yes' })),
      'lifecycle.prevent_destroy',
      /true or false/,
    );
    expectProblem(
      mutate(base, (s) => (server(s).lifecycle = { keep: true })),
      'lifecycle.keep',
      /unsupported lifecycle argument/,
    );
    expectProblem(
      mutate(base, (s) => (server(s).count = 'two')),
      'node.count',
      /whole number/,
    );
    expectProblem(
      mutate(base, (s) => (server(s).depends_on = 'x')),
      'depends_on',
      /list of references/,
    );
  });

  test('allowed meta-arguments pass', () => {
    const ok = mutate(base, (s) => {
      server(s).lifecycle = { prevent_destroy: true, ignore_changes: ['user_data'], create_before_destroy: false };
      server(s).count = 1;
      server(s).depends_on = ['openstack_networking_port_v2.node_port'];
      server(s).provisioner = [{ 'local-exec': { command: 'true' } }];
      server(s).connection = { type: 'ssh', host: 'x' };
    });
    expect(messages(checkStack(ok, schema))).toEqual([]);
  });

  test('a reference to an undeclared resource or an unknown attribute', () => {
    expectProblem(
      mutate(base, (s) => (s.output.floating_ip.value = '${openstack_networking_floatingip_v2.other.address}')),
      'output.floating_ip.value',
      /undeclared resource openstack_networking_floatingip_v2.other/,
    );
    expectProblem(
      mutate(base, (s) => (s.output.floating_ip.value = '${openstack_networking_floatingip_v2.node_floating_ip.ip}')),
      'output.floating_ip.value',
      /has no attribute "ip"/,
    );
  });

  test('a dynamic block is checked against its block type', () => {
    const withDynamic = mutate(base, (s) => {
      delete server(s).network;
      server(s).dynamic = { network: { for_each: '${var.ports}', content: { port: '${network.value}' } } };
    });
    expect(messages(checkStack(withDynamic, schema))).toEqual([]);
    expectProblem(
      mutate(withDynamic, (s) => (server(s).dynamic.network.content.bogus = 1)),
      'dynamic.network.content.bogus',
      /unsupported argument/,
    );
    expectProblem(
      mutate(base, (s) => (server(s).dynamic = { nets: { for_each: [], content: {} } })),
      'dynamic.nets',
      /no such block type/,
    );
  });

  test("Terraform's built-in terraform_data and terraform_remote_state are known", () => {
    const ok = mutate(base, (s) => {
      s.resource.terraform_data = {
        etl: { triggers_replace: ['a'], input: { x: 1 }, provisioner: [{ 'local-exec': { command: 'echo' } }] },
      };
      s.data = { ...s.data, terraform_remote_state: { storage: { backend: 'local', config: { path: 'x' } } } };
    });
    expect(messages(checkStack(ok, schema))).toEqual([]);
    expectProblem(
      mutate(ok, (s) => (s.resource.terraform_data.etl.output = 'x')),
      'terraform_data.etl.output',
      /read-only/,
    );
    expectProblem(
      mutate(ok, (s) => delete s.data.terraform_remote_state.storage.backend),
      'backend',
      /required/,
    );
  });
});

describe('checkType', () => {
  test.each<[unknown, any, boolean]>([
    ['x', 'string', true],
    [5, 'string', true], // Terraform converts numbers and bools to strings
    [{}, 'string', false],
    [22, 'number', true],
    ['22', 'number', true],
    ['twenty', 'number', false],
    [true, 'bool', true],
    ['true', 'bool', true],
    [1, 'bool', false],
    [['a'], ['list', 'string'], true],
    ['a', ['list', 'string'], false],
    [[{}], ['set', 'string'], false],
    [{ a: 'b' }, ['map', 'string'], true],
    [['a'], ['map', 'string'], false],
    [{ role_id: 'a', role_name: 'b' }, ['object', { role_id: 'string', role_name: 'string' }], true],
    [{ role_id: 'a' }, ['object', { role_id: 'string', role_name: 'string' }], false],
    ['${var.anything}', ['list', ['map', 'number']], true], // an expression is accepted for any type
    ['prefix-${local.x}', 'number', true],
    [{ x: [1] }, 'dynamic', true],
  ])('%j as %j -> %s', (value, type, ok) => {
    expect(checkType(value, type) === undefined).toBe(ok);
  });
});
