import { App } from 'cdktf';
import execa from 'execa';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { stringify } from 'yaml';
import { loadConfig } from '../../config';
import { generateMovieLensZip } from '../../testing/movielens-fixture';
import type { StandInNode } from '../../scripts/stand-in-spec';
import { EtlStack } from '../../stacks/etl-stack';
import { NodeStack } from '../../stacks/node-stack';
import { StorageStack } from '../../stacks/storage-stack';
import { rawWith } from '../infra/helpers';
import { ensureNode } from '../support/node';
import { ensureOpenStack, type OpenStackEnv } from '../support/openstack';
import { describeTerraform, terraformBinary } from '../support/terraform';
import { readerView } from '../support/versions';

// `cdktf deploy etl` for real, short of Chameleon: Terraform applies the synthesized etl stack, and its local-exec
// provisioner runs the command a deploy runs (`npx tsx etl/remote-cli.ts all --from-env`, from the project root),
// which runs the ETL on the sshd node and loads the local Swift. Only what must differ on a stand-in is changed
// in the JSON: where the storage/node states are (stand-in states with the outputs a deploy leaves), and the
// node-side paths, login user and Keystone URL (the stand-in node is this machine, its user root).
const ROOT = join(__dirname, '..', '..');

describeTerraform('cdktf deploy etl runs the ETL on the node', {}, () => {
  const terraform = terraformBinary();
  let env: OpenStackEnv;
  let node: StandInNode;
  let dir: string;
  let stackDir: string;
  let remoteDir: string;
  let server: Server;
  const teamId = `deploy${process.pid}`;
  const container = `object-persist-${teamId}`;
  const transcript: string[] = [];

  // Asynchronous: the dataset's HTTP server lives in this process and must keep answering during the apply.
  const tf = async (...args: string[]) => {
    const r = await execa(terraform!, [`-chdir=${stackDir}`, ...args], {
      reject: false,
      env: {
        TF_IN_AUTOMATION: '1',
        TF_INPUT: '0',
        CHECKPOINT_DISABLE: '1',
        // What differs from a user's shell: the stand-in states and config, the node's SSH port, a fresh known_hosts.
        PERSIST_STATE_DIR: dir,
        PERSIST_CONFIG_FILE: join(dir, 'persist.config.yaml'),
        PERSIST_ETL_PORT: String(node.port),
        XDG_CACHE_HOME: join(dir, 'cache'),
        PERSIST_APP_CREDENTIAL_SECRET: '',
        PERSIST_ETL_FORCE: '',
      },
    });
    transcript.push(r.stdout, r.stderr);
    return { status: r.exitCode, stdout: r.stdout, stderr: r.stderr };
  };

  beforeAll(async () => {
    env = ensureOpenStack();
    node = ensureNode();
    if (!existsSync(join(ROOT, 'dist', 'etl.js'))) execFileSync('node', [join(ROOT, 'scripts', 'build-etl.mjs')], { cwd: ROOT });
    dir = mkdtempSync(join(tmpdir(), 'deploy-etl-'));
    remoteDir = join(dir, 'node-etl');

    // The dataset, served over HTTP as grouplens serves it (the config's datasetUrl and checksum).
    const zip = join(dir, 'ml-deploy.zip');
    await generateMovieLensZip({ outPath: zip, rows: 20_000, seed: 11, name: 'ml-deploy', workDir: dir });
    const zipBytes = readFileSync(zip);
    server = createServer((req, res) => {
      if (req.url !== '/ml-deploy.zip') return void res.writeHead(404).end();
      res.writeHead(200, { 'content-length': zipBytes.length, 'content-type': 'application/zip' }).end(zipBytes);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/ml-deploy.zip`;

    // persist.config.yaml, as a user writes it, with the stand-ins' Keystone and the stand-in node's login user.
    const configFile = join(dir, 'persist.config.yaml');
    const raw = rawWith({
      teamId,
      credential: { expiresAt: '2030-01-31' },
      chi: { authUrl: env.authUrl, region: env.region },
      ssh: { publicKeyPath: `${node.privateKeyPath}.pub`, privateKeyPath: node.privateKeyPath, user: node.user },
      etl: { datasetUrl: url, datasetSha256: createHash('sha256').update(zipBytes).digest('hex'), remoteDir },
    });
    writeFileSync(configFile, stringify(raw));
    const config = loadConfig({ file: configFile, env: {}, warn: () => undefined });

    const app = new App({ outdir: mkdtempSync(join(tmpdir(), 'deploy-synth-')), skipValidation: true });
    const storage = new StorageStack(app, 'storage', { config });
    const nodeStack = new NodeStack(app, 'node', { config });
    new EtlStack(app, 'etl', { config, storage, node: nodeStack });
    app.synth();
    const json = JSON.parse(readFileSync(join(app.outdir, 'stacks', 'etl', 'cdk.tf.json'), 'utf8'));

    // Stand-in states of the two stacks: the outputs the etl stack reads, and the ones the runner reads.
    const refs = new Set<string>(JSON.stringify(json).match(/cross-stack-reference-input-(storage|node)\.outputs\.[\w-]+/g) ?? []);
    const value = (ref: string): string => {
      if (/containername$/.test(ref)) return container;
      if (/application_credential.*id$/.test(ref)) return env.appCredential.id;
      if (/user_id$/.test(ref)) return env.userId;
      if (/floating.*address$/.test(ref)) return node.host;
      if (/instance.*id$/.test(ref)) return 'server-1';
      throw new Error(`unexpected cross-stack reference ${ref}`);
    };
    const states: Record<'storage' | 'node', Record<string, { value: string; sensitive?: boolean }>> = {
      storage: {
        container_name: { value: container },
        auth_url: { value: env.authUrl },
        region: { value: env.region },
        user_id: { value: env.userId },
        credential_id: { value: env.appCredential.id },
      },
      node: {
        floating_ip: { value: node.host },
        ssh_user: { value: node.user },
        instance_id: { value: 'server-1' },
        mount_point: { value: '/mnt/object' },
      },
    };
    for (const ref of refs) {
      const [, stack, name] = /cross-stack-reference-input-(storage|node)\.outputs\.(.+)$/.exec(ref)!;
      states[stack as 'storage' | 'node'][name] = { value: value(ref) };
    }
    // As the provider leaves it: the secret is not an output, only an attribute of the credential resource,
    // where the runner reads it.
    const credential = {
      mode: 'managed',
      type: 'openstack_identity_application_credential_v3',
      name: 'rclone',
      instances: [{ attributes: { id: env.appCredential.id, secret: env.appCredential.secret } }],
    };
    for (const stack of ['storage', 'node'] as const) {
      const outputs = Object.fromEntries(Object.entries(states[stack]).map(([k, v]) => [k, { ...v, type: 'string' }]));
      const resources = stack === 'storage' ? [credential] : [];
      writeFileSync(
        join(dir, `terraform.${stack}.tfstate`),
        JSON.stringify({ version: 4, terraform_version: '1.5.0', serial: 1, lineage: `stand-in-${stack}`, outputs, resources }),
      );
      json.data.terraform_remote_state[`cross-stack-reference-input-${stack}`].config.path = join(dir, `terraform.${stack}.tfstate`);
    }
    // The etl stack's own state goes to the test's directory, not to the checkout's terraform.etl.tfstate.
    json.terraform.backend.local.path = join(dir, 'terraform.etl.tfstate');
    // The stand-in node is this machine: its rclone.conf and mount go under the test's directory, not under
    // root's home and /mnt. Only those two values of the spec change; everything else is what the stacks made.
    const p = json.resource.terraform_data.etl_run.provisioner[0]['local-exec'];
    const home = node.user === 'root' ? '/root' : `/home/${node.user}`;
    const relocate = (expr: string) => {
      const out = expr
        .replace(`"rcloneConfigPath" = "${home}/.config/rclone/rclone.conf"`, `"rcloneConfigPath" = "${join(remoteDir, 'rclone.conf')}"`)
        .replace('"mountPoint" = "/mnt/object"', `"mountPoint" = "${join(remoteDir, 'mnt')}"`);
      expect(out.match(new RegExp(remoteDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'g'))).toHaveLength(3); // remoteDir, rclone.conf, mnt
      return out;
    };
    p.environment.PERSIST_ETL_SPEC = relocate(p.environment.PERSIST_ETL_SPEC);
    json.output.run_spec.value = relocate(json.output.run_spec.value);

    // cdktf.out/stacks/<stack> is three levels under the project root; this directory is too, so the
    // provisioner's working_dir (../../..) is the project root, as in a deploy.
    stackDir = join(ROOT, '.stand-ins', 'stacks', `etl-deploy-${process.pid}`);
    mkdirSync(stackDir, { recursive: true });
    writeFileSync(join(stackDir, 'cdk.tf.json'), JSON.stringify(json, null, 2));
    const init = await tf('init', '-input=false', '-no-color');
    if (init.status !== 0) throw new Error(init.stderr + init.stdout);
  });

  afterAll(() => {
    const mnt = join(remoteDir, 'mnt');
    execFileSync('sh', ['-c', `mountpoint -q '${mnt}-store' && fusermount3 -u '${mnt}-store' || true`]);
    server?.close();
    if (stackDir) {
      rmSync(stackDir, { recursive: true, force: true });
      if (readdirSync(dirname(stackDir)).length === 0) rmSync(dirname(stackDir), { recursive: true, force: true });
    }
    // The secret came from the storage state; Terraform showed every line the ETL printed, and none holds it.
    expect(transcript.join('\n')).not.toContain(env.appCredential.secret);
  });

  it('apply: the provisioner runs every stage on the node, streams its progress, loads Swift and mounts it', async () => {
    const r = await tf('apply', '-auto-approve', '-no-color');
    if (r.status !== 0) throw new Error(r.stderr + r.stdout);
    const out = r.stdout;
    // Terraform shows the ETL's progress (the provisioner carries no sensitive value, so it is not hidden).
    expect(out).toMatch(/terraform_data\.etl_run \(local-exec\): .*connecting to /);
    for (const stage of ['extract', 'transform', 'load'])
      expect(out).toMatch(new RegExp(`\\(local-exec\\):.*\\[node\\] <== ${stage}: done`));
    expect(out).toContain(`done: the dataset is in container ${container}`);
    expect(out).toMatch(/shows version [0-9a-f]{16} of .* \(read-only\): .*training/);
    const view = await readerView(env, container);
    expect(view.problems).toEqual([]);
    expect([...view.current.keys()].some((k) => k.startsWith('training/'))).toBe(true);
    expect(
      execFileSync('stat', ['-c', '%a', join(remoteDir, 'rclone.conf')])
        .toString()
        .trim(),
    ).toBe('600');
  }, 900_000); // a whole deploy of the ETL: minutes on a loaded machine

  it('a second deploy with nothing changed does not run it again', async () => {
    const r = await tf('plan', '-detailed-exitcode', '-no-color');
    expect(r.status).toBe(0);
  });

  it("the etl stack's state holds the storage stack's ids, never the secret the runner used", () => {
    const state = readFileSync(join(dir, 'terraform.etl.tfstate'), 'utf8');
    expect(state).toContain(env.appCredential.id);
    expect(state).not.toContain(env.appCredential.secret);
  });
});
