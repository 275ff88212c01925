#!/usr/bin/env node
// The rerun command: `npm run etl:remote -- <all|extract|transform|load> [--force]` runs the ETL (or one stage)
// on the deployed node, loading into the deployed container, without touching the infrastructure. The etl
// stack's provisioner runs this same file with --from-env, so a deploy and a rerun share one code path.
import { Command, Option } from 'commander';
import execa from 'execa';
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { EtlError, reportError } from './errors';
import { stderrLogger } from './log';
import { STAGE_NAMES, type StageName } from './stage';
import {
  coordinatesFromEnv,
  defaultNodeLayout,
  nodeFromOutputs,
  outputsFromState,
  resolveSecret,
  sshTarget,
  storageFromOutputs,
  type NodeCoordinates,
  type NodeLayout,
  type StorageCoordinates,
  type TfOutputs,
} from './remote/coordinates';
import { pinFromConsole, prepareKnownHostsDir } from './remote/host-keys';
import { runOnNode } from './remote/run-on-node';
import { SECRET_ENV_NAMES } from './remote/ssh';

const ROOT = resolve(__dirname, '..');
const expandHome = (p: string) => (p.startsWith('~/') ? join(homedir(), p.slice(2)) : p);
const MOUNT_SERVICE = 'rclone-object-mount.service';

interface Cli {
  force: boolean;
  mount: boolean;
  breakLock: boolean;
  fromEnv: boolean;
  stateDir: string;
  outputs?: string;
  nodeJson?: string;
  storageJson?: string;
  port?: string;
  bundle: string;
  sshWait: string;
  minFreeMb: string;
  remoteDir?: string;
  mountPoint?: string;
  rcloneConfig?: string;
  privateKey?: string;
  knownHosts?: string;
  url?: string;
  source?: string;
  sha256?: string;
  seed?: string;
  ratios?: string;
  transfers?: string;
  checkers?: string;
  keep?: string;
  consoleKeys: boolean;
  allowUnverified: boolean;
  consoleWait: string;
  kvmCloud?: string;
}

type EtlSettings = { datasetUrl: string; datasetSha256?: string; allowUnverified?: boolean; seed: number; trainRatio: number; validationRatio: number; evaluationRatio: number; remoteDir: string };

/** persist.config.yaml, when there is one: key path, ETL options and the remote dir default from it. */
async function optionalConfig(): Promise<{ privateKeyPath?: string; etl?: EtlSettings; kvmCloud?: string }> {
  if (!existsSync(join(ROOT, 'persist.config.yaml')) && !process.env.PERSIST_CONFIG_FILE) return {};
  const { loadConfigOrExit } = await import('../config');
  const c = loadConfigOrExit();
  return { privateKeyPath: c.ssh.privateKeyPath, etl: c.etl, kvmCloud: c.kvm.cloud };
}

function readJson<T>(file: string, what: string): T {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch (e) {
    throw new EtlError(`cannot read ${what} from ${file}: ${(e as Error).message}`);
  }
}

/** `{storage: <terraform output -json>, node: <terraform output -json>}` from a file, or each stack's state. */
function stackOutputs(o: Cli): { storage: () => TfOutputs; node: () => TfOutputs } {
  const file = o.outputs ?? process.env.PERSIST_ETL_OUTPUTS;
  if (file) {
    const all = readJson<{ storage?: TfOutputs; node?: TfOutputs }>(file, 'stack outputs');
    const pick = (k: 'storage' | 'node') => () => {
      if (!all[k]) throw new EtlError(`${file} has no '${k}' outputs`, 'Expected {"storage": {...}, "node": {...}} as printed by terraform output -json.');
      return all[k]!;
    };
    return { storage: pick('storage'), node: pick('node') };
  }
  return { storage: () => outputsFromState(o.stateDir, 'storage'), node: () => outputsFromState(o.stateDir, 'node') };
}

/**
 * One known_hosts per server: a new node on a reused floating IP has a new host key, and that is expected. Its
 * directory is created (0700) here, before the first contact: ssh does not create it and, when it cannot write
 * the file, connects anyway without remembering anything (waitForSsh now also checks the key was recorded).
 */
function knownHostsFor(node: NodeCoordinates): string | undefined {
  if (node.knownHostsPath) {
    prepareKnownHostsDir(node.knownHostsPath, { tighten: false }); // the user's own directory: only created if missing
    return node.knownHostsPath;
  }
  if (!node.instanceId) return undefined;
  const base = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  const path = join(base, 'chameleon-persist', `known_hosts-${node.instanceId.replace(/[^A-Za-z0-9_.-]/g, '_')}`);
  prepareKnownHostsDir(path, { tighten: true });
  return path;
}

export function buildRemoteProgram(): Command {
  return new Command('etl-remote')
    .description('Run the ETL (or one stage) on the deployed node, loading into the deployed container')
    .argument('[stage]', `${STAGE_NAMES.join(' | ')} | all`, 'all')
    .option('--force', 'rerun stages even if their manifests say nothing changed', false)
    .option('--no-mount', 'do not (re)start the read-only mount at the end')
    .option('--break-lock', "remove locks left by a run that was killed: the node's run lock and the container's load lock", false)
    .option('--from-env', 'take node and storage from PERSIST_ETL_* variables (the etl stack does this)', false)
    .addOption(new Option('--state-dir <dir>', 'where the stacks\' terraform.<stack>.tfstate files are').env('PERSIST_STATE_DIR').default(ROOT))
    .addOption(new Option('--outputs <file>', '{"storage": ..., "node": ...} as printed by terraform output -json, instead of the states').env('PERSIST_ETL_OUTPUTS'))
    .option('--node-json <file>', 'node coordinates {host,port,user,privateKeyPath[,knownHostsPath]} instead of the node stack (stand-ins)')
    .option('--storage-json <file>', 'storage coordinates {container,authUrl,region,userId,credentialId} instead of the storage stack')
    .option('--port <n>', 'SSH port of the node (default 22)')
    .option('--bundle <file>', 'ETL bundle to ship (built if missing)', join(ROOT, 'dist', 'etl.js'))
    .option('--ssh-wait <seconds>', 'how long to wait for the node to answer SSH', '600')
    .option('--min-free-mb <mb>', 'free disk the node needs for the ETL', '3000')
    .option('--remote-dir <dir>', 'ETL directory on the node (default: etl.remoteDir of the config)')
    .option('--mount-point <dir>', 'read-only mount of the container on the node (default: the node stack\'s, /mnt/object)')
    .option('--rclone-config <path>', 'rclone config path on the node (default: ~/.config/rclone/rclone.conf of the login user)')
    .option('--private-key <path>', 'SSH private key (default: ssh.privateKeyPath of the config)')
    .option('--known-hosts <file>', 'known_hosts file for the node (default: one per server under ~/.cache/chameleon-persist)')
    .option('--url <url>', 'dataset zip URL (default: etl.datasetUrl of the config)')
    .option('--source <path>', 'dataset zip already on the node (no download)')
    .option('--sha256 <hex>', 'expected SHA-256 of the dataset zip (default: etl.datasetSha256 of the config)')
    .option('--seed <n>', 'split seed (default: etl.seed of the config)')
    .option('--ratios <a,b,c>', 'split ratios (default: from the config)')
    .option('--transfers <n>', 'parallel uploads of the load stage')
    .option('--checkers <n>', 'parallel checks of the load stage')
    .option('--keep <n>', 'published versions the load keeps in the container, the current one included (default 2)')
    .option('--allow-unverified', 'accept a dataset checked by its size only when no checksum is given or published (default: etl.allowUnverified)', false)
    .option('--no-console-keys', "do not pin the node's host key from its console log before the first contact (trust on first use)")
    .option('--console-wait <seconds>', 'how long to wait for cloud-init to print the host keys to the console', '900')
    .option('--kvm-cloud <name>', 'clouds.yaml entry the console log is read with (default: kvm.cloud of the config, else kvm_tacc)')
    .showHelpAfterError();
}

export async function main(argv: string[]): Promise<number> {
  const log = stderrLogger();
  const program = buildRemoteProgram();
  program.parse(argv);
  const stage = program.processedArgs[0] as StageName | 'all';
  const o = program.opts<Cli>();
  if (stage !== 'all' && !STAGE_NAMES.includes(stage)) {
    log.info(`error: unknown stage '${stage}'; use ${STAGE_NAMES.join(', ')} or all`);
    return 2;
  }
  try {
    const config = await optionalConfig();
    const outputs = stackOutputs(o);
    let node: NodeCoordinates;
    let storage: StorageCoordinates;
    let layout: Partial<NodeLayout> = {};
    let force = o.force;
    if (o.fromEnv) {
      ({ node, storage, layout } = coordinatesFromEnv(process.env));
      node.privateKeyPath = expandHome(node.privateKeyPath);
      // The etl stack passes no secret (Terraform would hide the ETL's output): take it from the storage state.
      if (!process.env.PERSIST_APP_CREDENTIAL_SECRET) storage.credentialSecret = storageFromOutputs(outputs.storage()).credentialSecret;
      // `PERSIST_ETL_FORCE=1 npx cdktf deploy etl`: the deploying shell's environment reaches this process.
      if (/^(1|true|yes)$/i.test(process.env.PERSIST_ETL_FORCE ?? '')) force = true;
    } else {
      if (o.nodeJson) {
        node = readJson<NodeCoordinates>(o.nodeJson, 'node coordinates');
      } else {
        const nodeOutputs = outputs.node();
        node = nodeFromOutputs(nodeOutputs, expandHome(o.privateKey ?? config.privateKeyPath ?? '~/.ssh/id_ed25519'));
        const mp = nodeOutputs.mount_point?.value;
        if (typeof mp === 'string' && mp) layout.mountPoint = mp;
      }
      storage = o.storageJson ? readJson<StorageCoordinates>(o.storageJson, 'storage coordinates') : storageFromOutputs(outputs.storage());
    }
    if (o.privateKey) node.privateKeyPath = expandHome(o.privateKey);
    if (o.port) node.port = Number(o.port);
    if (o.knownHosts) node.knownHostsPath = o.knownHosts;
    node.knownHostsPath = knownHostsFor(node);
    const secret = resolveSecret(storage, process.env);
    // Read once; from here on it travels only through ssh's stdin. No child (ssh, the sh it may start, the
    // bundle build, the openstack client) inherits it in its environment. (ssh.ts also drops OS_PASSWORD & co.
    // for ssh; the openstack client may need those.)
    for (const name of SECRET_ENV_NAMES.filter((n) => n.startsWith('PERSIST_'))) delete process.env[name];
    if (node.knownHostsPath && node.instanceId && o.consoleKeys) {
      await pinFromConsole({
        host: node.host,
        port: node.port,
        knownHostsPath: node.knownHostsPath,
        serverId: node.instanceId,
        cloud: o.kvmCloud ?? config.kvmCloud ?? 'kvm_tacc',
        waitSeconds: Number(o.consoleWait),
        log,
      });
    } else if (!node.knownHostsPath || !node.instanceId) {
      log.info(`no server id for ${node.host}: its host key is accepted on first contact and remembered${node.knownHostsPath ? ` in ${node.knownHostsPath}` : ''}`);
    }

    const defaults = defaultNodeLayout(node.user, config.etl?.remoteDir);
    const remoteDir = o.remoteDir ?? layout.remoteDir ?? defaults.remoteDir;
    const rcloneConfigPath = o.rcloneConfig ?? layout.rcloneConfigPath ?? defaults.rcloneConfigPath;
    const mountPoint = o.mountPoint ?? layout.mountPoint ?? defaults.mountPoint;

    if (!existsSync(o.bundle)) {
      log.info('building the ETL bundle');
      await execa('node', [join(ROOT, 'scripts', 'build-etl.mjs'), o.bundle], { cwd: ROOT, stdio: 'inherit' });
    }
    const etl = config.etl;
    const etlOptions: Record<string, string | boolean | undefined> = {
      url: o.source ? undefined : (o.url ?? etl?.datasetUrl),
      source: o.source,
      sha256: o.sha256 ?? (o.source ? undefined : etl?.datasetSha256),
      allowUnverified: o.source ? undefined : o.allowUnverified || etl?.allowUnverified || undefined,
      seed: o.seed ?? (etl ? String(etl.seed) : undefined),
      ratios: o.ratios ?? (etl ? `${etl.trainRatio},${etl.validationRatio},${etl.evaluationRatio}` : undefined),
      transfers: o.transfers,
      checkers: o.checkers,
      keep: o.keep,
      breakLock: o.breakLock,
    };
    const result = await runOnNode({
      target: sshTarget(node),
      stage,
      force,
      etlOptions,
      container: storage.container,
      rclone: { name: 'chi_tacc', authUrl: storage.authUrl, region: storage.region, userId: storage.userId, credentialId: storage.credentialId, credentialSecret: secret },
      bundlePath: o.bundle,
      remoteDir,
      rcloneConfigPath,
      mount: o.mount ? { mountPoint, service: MOUNT_SERVICE } : undefined,
      sshWaitSeconds: Number(o.sshWait),
      minFreeMb: Number(o.minFreeMb),
      breakLock: o.breakLock,
      log,
    });
    log.info(
      `done: the dataset is in container ${storage.container} (${storage.region})` +
        (result.mountListing ? `, mounted read-only at ${mountPoint} on ${node.host}` : ''),
    );
    return 0;
  } catch (e) {
    return reportError(e, log);
  }
}

if (require.main === module) {
  main(process.argv).then((code) => {
    process.exitCode = code;
  });
}
