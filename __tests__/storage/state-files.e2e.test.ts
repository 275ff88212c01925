import { App } from 'cdktf';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createdCredential, outputsFromState } from '../../etl/remote/stack-state';
import { protectStateFiles } from '../../stacks/state-files';
import { EtlStack } from '../../stacks/etl-stack';
import { NodeStack } from '../../stacks/node-stack';
import { StorageStack } from '../../stacks/storage-stack';
import { SENTINEL_SECRET, testConfig } from '../infra/helpers';
import { describeTerraform, terraform, terraformEnv } from '../support/terraform';
import { fileMode } from '../support/terraform-project';

// Where the secret lives at rest, and who can read it. The storage stack's state holds the created
// credential's secret; Terraform writes state with the umask (0644 here). Known answers: every state file and
// backup 0600, and the etl stack's state (which copies the storage stack's outputs) without the secret.

/** The app as main.ts builds it, synthesized into <dir>/cdktf.out, so the states belong in <dir>. */
function synthProject(dir: string) {
  const config = testConfig();
  const app = new App({ outdir: join(dir, 'cdktf.out'), skipValidation: true });
  const storage = new StorageStack(app, 'storage', { config });
  const node = new NodeStack(app, 'node', { config });
  new EtlStack(app, 'etl', { config, storage, node, codeHash: 'code-v1' });
  app.synth();
  const stack = (id: string) => JSON.parse(readFileSync(join(dir, 'cdktf.out', 'stacks', id, 'cdk.tf.json'), 'utf8'));
  return { app, storage: stack('storage'), etl: stack('etl') };
}

describe('state files are private (stacks/state-files.ts protectStateFiles, run by main.ts after every synth)', () => {
  it('creates each missing state file and backup empty with mode 0600, and makes cdktf.out 0700', () => {
    const dir = mkdtempSync(join(tmpdir(), 'state-modes-'));
    const { app } = synthProject(dir);
    expect(protectStateFiles(app)).toEqual([]);
    for (const id of ['storage', 'node', 'etl']) {
      for (const f of [`terraform.${id}.tfstate`, `terraform.${id}.tfstate.backup`]) {
        expect([f, fileMode(join(dir, f)), readFileSync(join(dir, f), 'utf8')]).toEqual([f, '0600', '']);
      }
      expect(fileMode(join(dir, 'cdktf.out', 'stacks', id))).toBe('0700');
    }
    expect(fileMode(join(dir, 'cdktf.out'))).toBe('0700');
  });

  it('tightens a group/other-readable state file and warns with what happened and what to do; keeps its content', () => {
    const dir = mkdtempSync(join(tmpdir(), 'state-open-'));
    const { app } = synthProject(dir);
    writeFileSync(join(dir, 'terraform.storage.tfstate'), '{"version":4}');
    chmodSync(join(dir, 'terraform.storage.tfstate'), 0o644);
    writeFileSync(join(dir, 'terraform.node.tfstate.backup'), '{}');
    chmodSync(join(dir, 'terraform.node.tfstate.backup'), 0o640);
    mkdirSync(join(dir, 'cdktf.out', 'stacks', 'storage'), { recursive: true });
    writeFileSync(join(dir, 'cdktf.out', 'stacks', 'storage', 'plan'), 'zip');
    chmodSync(join(dir, 'cdktf.out', 'stacks', 'storage', 'plan'), 0o644);
    const warnings = protectStateFiles(app);
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toMatch(
      /terraform\.storage\.tfstate was readable by group or others \(mode 0644\); it is now 0600\. It holds the application credential's secret: .*replace the credential \(set a later credential\.expiresAt, then npx cdktf deploy storage etl\)/,
    );
    expect(warnings[1]).toMatch(/terraform\.node\.tfstate\.backup was readable by group or others \(mode 0640\); it is now 0600\./);
    expect(warnings[1]).not.toMatch(/secret/);
    expect(fileMode(join(dir, 'terraform.storage.tfstate'))).toBe('0600');
    expect(readFileSync(join(dir, 'terraform.storage.tfstate'), 'utf8')).toBe('{"version":4}');
    expect(fileMode(join(dir, 'cdktf.out', 'stacks', 'storage', 'plan'))).toBe('0600');
    expect(protectStateFiles(app)).toEqual([]); // once fixed, quiet
  });

  it('an empty (pre-created) storage state reads as "not deployed", as a missing one does', () => {
    const dir = mkdtempSync(join(tmpdir(), 'state-empty-'));
    writeFileSync(join(dir, 'terraform.storage.tfstate'), '', { mode: 0o600 });
    expect(() => outputsFromState(dir, 'storage')).toThrow(/the 'storage' stack is not deployed/);
  });
});

describeTerraform('terraform apply of the etl stack keeps the secret out of its state, and every file 0600', {}, () => {
  it('applies twice (state + backup), with the storage state shaped as the real provider leaves it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'state-etl-'));
    const { app, storage, etl } = synthProject(dir);
    protectStateFiles(app); // what main.ts does after synth

    // The storage state a deploy leaves: every output the storage stack declares, and the credential's
    // attributes (secret included) under its resource.
    const value = (name: string) =>
      /credential.*id/.test(name) ? 'cred-1' : /container/.test(name) ? 'object-persist-proj99' : `${name}-value`;
    const outputs = Object.fromEntries(
      Object.entries<{ sensitive?: boolean }>(storage.output).map(([n, o]) => [
        n,
        { value: /secret/.test(n) ? SENTINEL_SECRET : value(n), type: 'string', ...(o.sensitive ? { sensitive: true } : {}) },
      ]),
    );
    const credential = {
      mode: 'managed',
      type: 'openstack_identity_application_credential_v3',
      name: 'rclone',
      provider: 'provider["registry.terraform.io/terraform-provider-openstack/openstack"].chi_tacc',
      instances: [
        {
          schema_version: 0,
          attributes: { id: 'cred-1', name: 'persist-proj99-rclone', secret: SENTINEL_SECRET },
          sensitive_attributes: [[{ type: 'get_attr', value: 'secret' }]],
        },
      ],
    };
    writeFileSync(
      join(dir, 'terraform.storage.tfstate'),
      JSON.stringify({ version: 4, terraform_version: '1.11.4', serial: 1, lineage: 'storage', outputs, resources: [credential] }),
    );
    const nodeRefs = [...new Set<string>(JSON.stringify(etl).match(/cross-stack-reference-input-node\.outputs\.[\w-]+/g) ?? [])].map(
      (m) => m.split('.outputs.')[1]!,
    );
    writeFileSync(
      join(dir, 'terraform.node.tfstate'),
      JSON.stringify({
        version: 4,
        terraform_version: '1.11.4',
        serial: 1,
        lineage: 'node',
        outputs: Object.fromEntries(nodeRefs.map((n) => [n, { value: `${n}-value`, type: 'string' }])),
        resources: [],
      }),
    );

    const etlDir = join(dir, 'cdktf.out', 'stacks', 'etl');
    const withCommand = (cmd: string) => {
      etl.resource.terraform_data.etl_run.provisioner[0]['local-exec'].command = cmd;
      etl.resource.terraform_data.etl_run.triggers_replace.inputs = cmd; // a new trigger: the second apply replaces it
      writeFileSync(join(etlDir, 'cdk.tf.json'), JSON.stringify(etl));
    };
    const env = terraformEnv(dir);
    withCommand('true');
    const init = terraform(etlDir, ['init', '-input=false', '-no-color'], env);
    if (init.status !== 0) throw new Error(init.stderr + init.stdout);
    for (const cmd of ['true', 'true # again']) {
      withCommand(cmd);
      const r = terraform(etlDir, ['apply', '-auto-approve', '-no-color'], env);
      if (r.status !== 0) throw new Error(r.stderr + r.stdout);
    }

    for (const f of ['terraform.etl.tfstate', 'terraform.etl.tfstate.backup']) {
      const text = readFileSync(join(dir, f), 'utf8');
      expect(text).toContain('cred-1'); // the remote state was read: ids are there
      expect([f, text.includes(SENTINEL_SECRET)]).toEqual([f, false]);
      expect([f, fileMode(join(dir, f))]).toEqual([f, '0600']);
    }
    expect(existsSync(join(dir, 'terraform.etl.tfstate.backup'))).toBe(true);
    // The runner still finds the secret, in the storage stack's own state.
    expect(createdCredential(dir)?.secret).toBe(SENTINEL_SECRET);
  });
});
