import { Testing, type TerraformStack } from 'cdktf';
import { EtlStack } from '../../stacks/etl-stack';
import { NodeStack } from '../../stacks/node-stack';
import { StorageStack } from '../../stacks/storage-stack';
import { checkStack, loadFilteredSchema } from '../../testing/schema-conformance';
import { SENTINEL_SECRET, testConfig } from './helpers';

/**
 * The contract between the three real stacks, as main.ts builds them: the etl stack consumes `storage` and
 * `node` through cdktf's cross-stack references (outputs + terraform_remote_state of the local state files),
 * every stack conforms to the provider schema, and the credential's secret never becomes an output. Light on
 * purpose: what the etl stack's run carries is tested in __tests__/remote/etl-stack.e2e.test.ts.
 */
function app(env: Record<string, string> = {}) {
  const config = testConfig({}, env);
  const a = Testing.app();
  const storage = new StorageStack(a, 'storage', { config });
  const node = new NodeStack(a, 'node', { config });
  const etl = new EtlStack(a, 'etl', { config, storage, node, codeHash: 'code-v1' });
  a.synth();
  const read = (s: TerraformStack) => JSON.parse(Testing.synth(s)) as Record<string, any>;
  return { storage: read(storage), node: read(node), etl: read(etl) };
}

describe('the etl stack as a consumer of storage and node', () => {
  test('references become remote-state lookups of the two local state files; all three stacks conform', () => {
    const { storage, node, etl } = app();
    const paths = Object.values<any>(etl.data.terraform_remote_state)
      .map((r) => [r.backend, r.config.path])
      .sort();
    expect(paths).toEqual([
      ['local', '../../../terraform.node.tfstate'],
      ['local', '../../../terraform.storage.tfstate'],
    ]);
    const schema = loadFilteredSchema();
    for (const stack of [storage, node, etl]) expect(checkStack(stack, schema)).toEqual([]);
  });

  test("the cross-stack outputs are the user id, the credential id, the server id and its address (the container name is the config's)", () => {
    const { storage, node } = app();
    const crossStack = (json: Record<string, any>) =>
      Object.entries<any>(json.output)
        .filter(([name]) => name.startsWith('cross-stack-output-'))
        .map(([, o]) => o.value)
        .sort();
    expect(crossStack(storage)).toEqual([
      '${data.openstack_identity_auth_scope_v3.current.user_id}',
      '${openstack_identity_application_credential_v3.rclone.id}',
    ]);
    expect(crossStack(node)).toEqual([
      '${openstack_compute_instance_v2.node.id}',
      '${openstack_networking_floatingip_v2.node_floating_ip.address}',
    ]);
    // terraform_remote_state copies every output into the etl state: the secret is none of them.
    expect(JSON.stringify(storage.output)).not.toMatch(/\.secret\b/);
  });

  test('with a bring-your-own credential the secret is nowhere in the three stacks, the id is', () => {
    const { storage, node, etl } = app({ PERSIST_APP_CREDENTIAL_ID: 'c'.repeat(32), PERSIST_APP_CREDENTIAL_SECRET: SENTINEL_SECRET });
    for (const stack of [storage, node, etl]) expect(JSON.stringify(stack)).not.toContain(SENTINEL_SECRET);
    expect(JSON.stringify(etl)).toContain('c'.repeat(32));
  });
});
