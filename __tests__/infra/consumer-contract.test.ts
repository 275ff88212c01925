import { DataResource, Testing, TerraformStack } from 'cdktf';
import { NodeStack } from '../../stacks/node-stack';
import { projectStateBackend } from '../../stacks/state-files';
import { StorageStack } from '../../stacks/storage-stack';
import { checkStack, loadFilteredSchema } from '../../testing/schema-conformance';
import { SENTINEL_SECRET, testConfig } from './helpers';

/**
 * The contract the etl stack relies on: a third stack can consume the public properties of `storage` and `node`
 * (cdktf turns them into outputs + terraform_remote_state), and the result still conforms to the schema.
 */
function consumer(env: Record<string, string> = {}) {
  const config = testConfig({}, env);
  const app = Testing.app();
  const storage = new StorageStack(app, 'storage', { config });
  const node = new NodeStack(app, 'node', { config });
  const etl = new TerraformStack(app, 'etl');
  projectStateBackend(etl);
  new DataResource(etl, 'run', {
    triggersReplace: [storage.containerName, node.instanceId],
    input: {
      host: node.floatingIp,
      user: node.sshUser,
      authUrl: storage.authUrl,
      region: storage.region,
      userId: storage.userId,
      credentialId: storage.credentialId,
      ...(storage.credentialSecret ? { secret: storage.credentialSecret } : {}),
    },
  });
  // Stacks resolve cross-stack references when the app synthesizes.
  app.synth();
  const read = (s: TerraformStack) => JSON.parse(Testing.synth(s)) as Record<string, any>;
  return { storage: read(storage), node: read(node), etl: read(etl), etlStack: etl };
}

describe('a consumer stack (like etl) of the storage and node properties', () => {
  test('references become remote-state lookups of the local state files; all three stacks conform', () => {
    const { storage, node, etl } = consumer();
    const remote = etl.data.terraform_remote_state;
    const paths = Object.values<any>(remote).map((r) => r.config.path).sort();
    expect(paths).toEqual(['../../../terraform.node.tfstate', '../../../terraform.storage.tfstate']);
    const schema = loadFilteredSchema();
    for (const stack of [storage, node, etl]) expect(checkStack(stack, schema)).toEqual([]);
  });

  test('the created secret travels as a sensitive cross-stack output', () => {
    const { storage } = consumer();
    const secretOutputs = Object.values<any>(storage.output).filter((o) =>
      String(o.value).includes('openstack_identity_application_credential_v3.rclone.secret'),
    );
    expect(secretOutputs.length).toBeGreaterThan(0);
    for (const o of secretOutputs) expect(o.sensitive).toBe(true);
  });

  test('with a bring-your-own credential the secret is nowhere in the three stacks', () => {
    const { storage, node, etl } = consumer({ PERSIST_APP_CREDENTIAL_ID: 'c'.repeat(32), PERSIST_APP_CREDENTIAL_SECRET: SENTINEL_SECRET });
    for (const stack of [storage, node, etl]) expect(JSON.stringify(stack)).not.toContain(SENTINEL_SECRET);
    expect(JSON.stringify(etl)).toContain('c'.repeat(32));
  });
});
