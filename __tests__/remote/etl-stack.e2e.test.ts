import { App, Testing, type TerraformStack } from 'cdktf';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { etlTrigger, ETL_RUN_COMMAND } from '../../constructs/etl-run';
import { bundleSha256, sha256 } from '../../etl/remote/bundle';
import type { RunSpec } from '../../etl/remote/run-spec';
import { checkStack, loadFilteredSchema } from '../../testing/schema-conformance';
import { EtlStack } from '../../stacks/etl-stack';
import { NodeStack } from '../../stacks/node-stack';
import { StorageStack } from '../../stacks/storage-stack';
import { parseRunSpec } from '../../etl/remote/run-spec';
import { runSpecFromState } from '../../etl/remote/stack-state';
import { SENTINEL_SECRET, testConfig } from '../infra/helpers';
import { describeTerraform, terraformBinary } from '../support/terraform';

const ROOT = join(__dirname, '..', '..');
const GOLDEN_TRIGGER = execFileSync('sh', [
  '-c',
  `printf '%s' '{"code":"code-v1","datasetUrl":"https://files.grouplens.org/datasets/movielens/ml-32m.zip","datasetSha256":null,"seed":42,"ratios":[0.7,0.15,0.15],"container":"object-persist-proj99","remoteDir":"/home/cc/chameleon-persist"}' | sha256sum | cut -d' ' -f1`,
])
  .toString()
  .trim();

/** The static part of the test config's spec (the trigger does not read the apply-time values). */
function synthSpec(): RunSpec {
  return {
    format: 1,
    node: { host: 'h', port: 22, user: 'cc', privateKeyPath: '/k', serverId: 's', consoleCloud: 'kvm_tacc' },
    layout: {
      remoteName: 'chi_tacc',
      rcloneConfigPath: '/home/cc/.config/rclone/rclone.conf',
      mountPoint: '/mnt/object',
      mountService: 'rclone-object-mount.service',
      remoteDir: '/home/cc/chameleon-persist',
    },
    storage: {
      container: 'object-persist-proj99',
      authUrl: 'https://chi.tacc.chameleoncloud.org:5000/v3',
      region: 'CHI@TACC',
      credentialId: 'c',
    },
    dataset: {
      url: 'https://files.grouplens.org/datasets/movielens/ml-32m.zip',
      allowUnverified: false,
      seed: 42,
      ratios: [0.7, 0.15, 0.15],
    },
  };
}

function synthApp(patch: Record<string, any> = {}, opts: { codeHash?: string; env?: Record<string, string> } = {}) {
  const config = testConfig(patch, opts.env ?? {});
  const app = Testing.app();
  const storage = new StorageStack(app, 'storage', { config });
  const node = new NodeStack(app, 'node', { config });
  const etl = new EtlStack(app, 'etl', { config, storage, node, codeHash: opts.codeHash ?? 'code-v1' });
  app.synth();
  return { app, etl };
}

function synthEtl(patch: Record<string, any> = {}, opts: { codeHash?: string; env?: Record<string, string> } = {}) {
  const { etl } = synthApp(patch, opts);
  const json = JSON.parse(Testing.synth(etl as TerraformStack)) as Record<string, any>;
  return {
    json,
    run: json.resource.terraform_data.etl_run,
    trigger: json.resource.terraform_data.etl_run.triggers_replace.inputs as string,
  };
}

describe('the etl stack', () => {
  it('conforms to Terraform and the provider schema, and runs the same runner the rerun command uses', () => {
    const { json, run } = synthEtl();
    expect(checkStack(json, loadFilteredSchema())).toEqual([]);
    const p = run.provisioner[0]['local-exec'];
    expect(p.command).toBe(ETL_RUN_COMMAND);
    expect(p.command).toBe('npx tsx etl/remote-cli.ts all --from-env');
    expect(p.working_dir).toBe('../../..');
    // One value carries the run's facts: the spec, resolved by Terraform (its resolved value is checked below,
    // under Terraform); the same expression is the stack's run_spec output, which a rerun reads.
    expect(Object.keys(p.environment)).toEqual(['PERSIST_ETL_SPEC']);
    expect(p.environment.PERSIST_ETL_SPEC).toMatch(
      /^\$\{jsonencode\(\{"format" = 1, "node" = \{"host" = data\.terraform_remote_state\.cross-stack-reference-input-node\.outputs\./,
    );
    expect(json.output.run_spec.value).toBe(p.environment.PERSIST_ETL_SPEC);
    // The node's cloud-init layout, as the node stack rendered it, is in it.
    expect(p.environment.PERSIST_ETL_SPEC).toContain(
      '"layout" = {"remoteName" = "chi_tacc", "rcloneConfigPath" = "/home/cc/.config/rclone/rclone.conf", "mountPoint" = "/mnt/object", "mountService" = "rclone-object-mount.service", "remoteDir" = "/home/cc/chameleon-persist"}',
    );
    // The container, the node and the credential are part of the trigger: a new node or container reruns the
    // ETL, and so does a new credential (its id, never its secret), which the run delivers to the node.
    expect(Object.keys(run.triggers_replace).sort()).toEqual(['container', 'credential', 'inputs', 'node']);
    expect(run.triggers_replace.credential).toMatch(/^\$\{data\.terraform_remote_state\..*storage.*credential.*id\}$/);
    expect(run.triggers_replace.container).toBe('object-persist-proj99');
    expect(run.triggers_replace.node).toMatch(/^\$\{data\.terraform_remote_state\..*node.*id\}$/);
    expect(json.output.data_location.value).toContain('object-persist-proj99');
  });

  it('carries no secret, even with a brought credential in the environment', () => {
    const { json } = synthEtl(
      {},
      { env: { PERSIST_APP_CREDENTIAL_ID: '0123456789abcdef0123456789abcdef', PERSIST_APP_CREDENTIAL_SECRET: SENTINEL_SECRET } },
    );
    expect(JSON.stringify(json)).not.toContain(SENTINEL_SECRET);
    expect(JSON.stringify(json)).not.toMatch(/credential_secret/i);
  });

  it('changes its trigger when the bundle, dataset, seed, ratios or container change', () => {
    const base = synthEtl().trigger;
    expect(synthEtl({}, { codeHash: 'code-v2' }).trigger).not.toBe(base);
    expect(synthEtl({ etl: { datasetUrl: 'https://example.org/ml-latest-small.zip' } }).trigger).not.toBe(base);
    expect(synthEtl({ etl: { datasetSha256: 'a'.repeat(64) } }).trigger).not.toBe(base);
    expect(synthEtl({ etl: { seed: 7 } }).trigger).not.toBe(base);
    expect(synthEtl({ etl: { trainRatio: 0.8, validationRatio: 0.1, evaluationRatio: 0.1 } }).trigger).not.toBe(base);
    expect(synthEtl({ teamId: 'proj98' }).trigger).not.toBe(base); // container object-persist-proj98
  });

  it('keeps its trigger when nothing the ETL depends on changes', () => {
    const base = synthEtl().trigger;
    expect(synthEtl().trigger).toBe(base);
    // The node's flavor, the SSH CIDR or the credential's expiry do not change what the ETL produces.
    expect(synthEtl({ node: { flavor: 'm1.large' } }).trigger).toBe(base);
    expect(synthEtl({ ssh: { allowedCidr: '198.51.100.0/24' } }).trigger).toBe(base);
    expect(synthEtl({ credential: { expiresAt: '2026-02-28' } }).trigger).toBe(base);
  });

  it('etlTrigger hashes what earlier versions hashed, so an upgrade reruns nothing (known answer)', () => {
    // The JSON the trigger of every earlier version hashed for the test config, written out by hand:
    // echo -n '{"code":"code-v1","datasetUrl":"https://files.grouplens.org/datasets/movielens/ml-32m.zip","datasetSha256":null,"seed":42,"ratios":[0.7,0.15,0.15],"container":"object-persist-proj99","remoteDir":"/home/cc/chameleon-persist"}' | sha256sum
    expect(synthEtl().trigger).toBe(GOLDEN_TRIGGER);
  });

  it('the code hash is the SHA-256 of the bundle npm run build:etl writes, which the runner compares before shipping', () => {
    const out = join(mkdtempSync(join(tmpdir(), 'bundle-')), 'etl.js');
    execFileSync('node', [join(ROOT, 'scripts', 'build-etl.mjs'), out], { cwd: ROOT, stdio: 'ignore' });
    expect(bundleSha256(ROOT)).toBe(sha256(readFileSync(out)));
    // Without codeHash the stack computes it itself.
    const config = testConfig();
    const app = Testing.app();
    const etl = new EtlStack(app, 'etl', {
      config,
      storage: new StorageStack(app, 'storage', { config }),
      node: new NodeStack(app, 'node', { config }),
    });
    expect(etl.run.trigger).toBe(etlTrigger({ spec: synthSpec(), codeHash: sha256(readFileSync(out)) }));
  });
});

// What `cdktf deploy etl` does with the synthesized JSON, checked by Terraform itself: the states of storage and
// node are stand-in files holding their outputs; the provisioner is swapped for one that records each run.
describeTerraform('cdktf deploy etl reruns exactly when it should', {}, () => {
  const terraform = terraformBinary();
  let dir: string;
  let stackDir: string;
  let refs: { storage: Record<string, string>; node: Record<string, string> };

  const tf = (...args: string[]) =>
    spawnSync(terraform!, [`-chdir=${stackDir}`, ...args], {
      encoding: 'utf8',
      env: { ...process.env, TF_IN_AUTOMATION: '1', TF_INPUT: '0', CHECKPOINT_DISABLE: '1' },
    });
  const planChanges = () => {
    const r = tf('plan', '-detailed-exitcode', '-no-color');
    if (r.status === 1) throw new Error(r.stderr + r.stdout);
    return r.status === 2;
  };
  /** Whether the plan reruns the ETL (replaces etl_run), whatever else (an output) it changes. */
  const planReruns = () => {
    const r = tf('plan', '-no-color');
    if (r.status !== 0) throw new Error(r.stderr + r.stdout);
    return /terraform_data\.etl_run (must be replaced|will be created)/.test(r.stdout);
  };
  const apply = () => {
    const r = tf('apply', '-auto-approve', '-no-color');
    if (r.status !== 0) throw new Error(r.stderr + r.stdout);
  };
  const runs = () => readFileSync(join(dir, 'runs.log'), 'utf8').split('\n').filter(Boolean);
  /** What each run got, in short: the spec parsed and checked as the runner does. */
  const lastRun = () => {
    const spec = parseRunSpec(runs()[runs().length - 1], 'runs.log');
    return `run node=${spec.node.serverId} host=${spec.node.host} container=${spec.storage.container}`;
  };

  /** A stand-in state for a deployed stack: only its outputs matter to the etl stack's remote-state reads. */
  function writeState(stack: 'storage' | 'node', values: Record<string, string>) {
    const outputs = Object.fromEntries(
      Object.entries(refs[stack]).map(([key, name]) => [name, { value: values[key] ?? `${key}-value`, type: 'string' }]),
    );
    writeFileSync(
      join(dir, `terraform.${stack}.tfstate`),
      JSON.stringify({ version: 4, terraform_version: '1.5.0', serial: Date.now(), lineage: `stand-in-${stack}`, outputs, resources: [] }),
    );
  }

  /** Synthesizes the etl stack into dir/cdktf.out/stacks/etl (so ../../../ is dir, as at the project root). */
  function synthInto(patch: Record<string, any> = {}, codeHash = 'code-v1') {
    const config = testConfig(patch);
    const app = new App({ outdir: mkdtempSync(join(tmpdir(), 'etl-synth-')), skipValidation: true });
    const storage = new StorageStack(app, 'storage', { config });
    const node = new NodeStack(app, 'node', { config });
    new EtlStack(app, 'etl', { config, storage, node, codeHash });
    app.synth();
    const json = JSON.parse(readFileSync(join(app.outdir, 'stacks', 'etl', 'cdk.tf.json'), 'utf8'));
    const run = json.resource.terraform_data.etl_run;
    // Records the spec the runner would get, as Terraform resolved it.
    run.provisioner[0]['local-exec'].command = `printf '%s\\n' "$PERSIST_ETL_SPEC" >> ${join(dir, 'runs.log')}`;
    // The outputs of storage and node that the etl stack reads, by what they stand for.
    const find = (stack: string, re: RegExp) => {
      const all = JSON.stringify(json).match(new RegExp(`cross-stack-reference-input-${stack}\\.outputs\\.([\\w-]+)`, 'g')) ?? [];
      const names = [...new Set(all.map((m) => m.split('.outputs.')[1]))];
      return names.find((n) => re.test(n)) ?? '';
    };
    refs = {
      storage: { credentialId: find('storage', /credential.*id$/), userId: find('storage', /user_id$/) },
      node: { id: find('node', /instance.*id$/), host: find('node', /floating.*address$/) },
    };
    mkdirSync(stackDir, { recursive: true });
    writeFileSync(join(stackDir, 'cdk.tf.json'), JSON.stringify(json, null, 2));
  }

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'etl-tf-'));
    stackDir = join(dir, 'cdktf.out', 'stacks', 'etl');
    writeFileSync(join(dir, 'runs.log'), '');
    synthInto();
    for (const v of Object.values({ ...refs.storage, ...refs.node })) expect(v).not.toBe('');
    writeState('storage', { credentialId: 'credential-1', userId: 'user-1' });
    writeState('node', { id: 'server-1', host: '192.5.87.10' });
    const init = tf('init', '-input=false', '-no-color');
    if (init.status !== 0) throw new Error(init.stderr + init.stdout);
  });

  it('the first deploy runs the ETL on the deployed node, with the whole spec resolved (known answer)', () => {
    apply();
    expect(runs()).toHaveLength(1);
    expect(JSON.parse(runs()[0])).toEqual({
      format: 1,
      node: {
        host: '192.5.87.10',
        port: 22,
        user: 'cc',
        privateKeyPath: testConfig().ssh.privateKeyPath,
        serverId: 'server-1',
        consoleCloud: 'kvm_tacc',
      },
      layout: {
        remoteName: 'chi_tacc',
        rcloneConfigPath: '/home/cc/.config/rclone/rclone.conf',
        mountPoint: '/mnt/object',
        mountService: 'rclone-object-mount.service',
        remoteDir: '/home/cc/chameleon-persist',
      },
      storage: {
        container: 'object-persist-proj99',
        authUrl: 'https://chi.tacc.chameleoncloud.org:5000/v3',
        region: 'CHI@TACC',
        userId: 'user-1',
        credentialId: 'credential-1',
      },
      dataset: {
        url: 'https://files.grouplens.org/datasets/movielens/ml-32m.zip',
        allowUnverified: false,
        seed: 42,
        ratios: [0.7, 0.15, 0.15],
      },
    });
    // And the stack records it, for `npm run etl:remote`: the same value, read as the runner reads it.
    expect(runSpecFromState(dir)).toEqual(JSON.parse(runs()[0]));
  });

  it('a deploy with nothing changed does not rerun it', () => {
    synthInto();
    expect(planChanges()).toBe(false);
  });

  it('a new floating IP on the same server does not rerun it, and the recorded spec follows it (for the next rerun)', () => {
    writeState('node', { id: 'server-1', host: '192.5.87.99' });
    expect(planReruns()).toBe(false);
    const before = runs().length;
    apply();
    expect(runs()).toHaveLength(before);
    expect(runSpecFromState(dir).node.host).toBe('192.5.87.99');
    expect(planChanges()).toBe(false);
  });

  it('a new node (server id) reruns it', () => {
    writeState('node', { id: 'server-2', host: '192.5.87.99' });
    expect(planChanges()).toBe(true);
    apply();
    expect(lastRun()).toBe('run node=server-2 host=192.5.87.99 container=object-persist-proj99');
    expect(planChanges()).toBe(false);
  });

  it('a new bundle, dataset or split option reruns it', () => {
    synthInto({}, 'code-v2');
    expect(planChanges()).toBe(true);
    synthInto({ etl: { seed: 7 } });
    expect(planChanges()).toBe(true);
    synthInto({ etl: { datasetUrl: 'https://example.org/ml-latest-small.zip' } });
    expect(planChanges()).toBe(true);
    synthInto();
    expect(planChanges()).toBe(false);
  });

  it('another container (another teamId) reruns it', () => {
    synthInto({ teamId: 'proj98' });
    expect(planChanges()).toBe(true);
    synthInto();
    expect(planChanges()).toBe(false);
  });

  it('a new credential (credential.expiresAt changed: the storage stack replaced it) reruns it', () => {
    writeState('storage', { credentialId: 'credential-2', userId: 'user-1' });
    expect(planChanges()).toBe(true);
    apply();
    expect(planChanges()).toBe(false);
  });

  it('cdktf destroy etl + deploy etl forces a rerun and deletes nothing else', () => {
    const before = runs().length;
    const d = tf('destroy', '-auto-approve', '-no-color');
    expect(d.status).toBe(0);
    expect(d.stdout).toMatch(/1 destroyed/);
    apply();
    expect(runs()).toHaveLength(before + 1);
  });
});
