import { Testing, type TerraformStack } from 'cdktf';
import { etlTrigger } from '../../constructs/etl-trigger';
import { checkStack, loadFilteredSchema } from '../../scripts/schema-conformance';
import { EtlStack } from '../../stacks/etl-stack';
import { NodeStack } from '../../stacks/node-stack';
import { StorageStack } from '../../stacks/storage-stack';
import { SENTINEL_SECRET, testConfig } from '../infra/helpers';

function synthEtl(patch: Record<string, any> = {}, opts: { codeHash?: string; rerunNonce?: string; env?: Record<string, string> } = {}) {
  const config = testConfig(patch, opts.env ?? {});
  const app = Testing.app();
  const storage = new StorageStack(app, 'storage', { config });
  const node = new NodeStack(app, 'node', { config });
  const etl = new EtlStack(app, 'etl', { config, storage, node, codeHash: opts.codeHash ?? 'code-v1', rerunNonce: opts.rerunNonce });
  app.synth();
  const json = JSON.parse(Testing.synth(etl as TerraformStack)) as Record<string, any>;
  return { json, run: json.resource.terraform_data.etl_run, trigger: json.resource.terraform_data.etl_run.triggers_replace.inputs as string };
}

describe('the etl stack', () => {
  it('conforms to Terraform and the provider schema, and runs the same runner the rerun command uses', () => {
    const { json, run } = synthEtl();
    expect(checkStack(json, loadFilteredSchema())).toEqual([]);
    const p = run.provisioner[0]['local-exec'];
    expect(p.command).toBe('npx tsx etl/remote-cli.ts all --from-env');
    expect(p.working_dir).toBe('../../..');
    // The container and the node are part of the trigger: a new node or container reruns the ETL.
    expect(Object.keys(run.triggers_replace).sort()).toEqual(['container', 'inputs', 'node']);
    expect(run.triggers_replace.container).toMatch(/^\$\{data\.terraform_remote_state\..*storage.*containername\}$/);
    expect(run.triggers_replace.node).toMatch(/^\$\{data\.terraform_remote_state\..*node.*id\}$/);
  });

  it('carries no secret, even with a brought credential in the environment', () => {
    const { json } = synthEtl({}, { env: { PERSIST_APP_CREDENTIAL_ID: '0123456789abcdef0123456789abcdef', PERSIST_APP_CREDENTIAL_SECRET: SENTINEL_SECRET } });
    expect(JSON.stringify(json)).not.toContain(SENTINEL_SECRET);
    expect(JSON.stringify(json)).not.toMatch(/credential_secret/);
  });

  it('changes its trigger when the code, dataset, seed, ratios or the rerun nonce change', () => {
    const base = synthEtl().trigger;
    expect(synthEtl({}, { codeHash: 'code-v2' }).trigger).not.toBe(base);
    expect(synthEtl({ etl: { datasetUrl: 'https://example.org/ml-latest-small.zip' } }).trigger).not.toBe(base);
    expect(synthEtl({ etl: { seed: 7 } }).trigger).not.toBe(base);
    expect(synthEtl({ etl: { trainRatio: 0.8, validationRatio: 0.1, evaluationRatio: 0.1 } }).trigger).not.toBe(base);
    expect(synthEtl({}, { rerunNonce: '2026-11-25' }).trigger).not.toBe(base);
  });

  it('keeps its trigger when nothing the ETL depends on changes', () => {
    const base = synthEtl().trigger;
    expect(synthEtl().trigger).toBe(base);
    // The node's flavor, the SSH CIDR or the credential's expiry do not change what the ETL produces.
    expect(synthEtl({ node: { flavor: 'm1.large' } }).trigger).toBe(base);
    expect(synthEtl({ ssh: { allowedCidr: '198.51.100.0/24' } }).trigger).toBe(base);
    expect(synthEtl({ credential: { expiresAt: '2026-02-28' } }).trigger).toBe(base);
  });

  it('etlTrigger is a pure function of its inputs', () => {
    const config = testConfig();
    expect(etlTrigger({ config, codeHash: 'a' })).toBe(etlTrigger({ config, codeHash: 'a' }));
    expect(etlTrigger({ config, codeHash: 'a' })).not.toBe(etlTrigger({ config, codeHash: 'b' }));
  });
});
