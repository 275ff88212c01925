#!/usr/bin/env node
import { Command, Option } from 'commander';
import execa from 'execa';
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { reportError } from './errors';
import { stderrLogger } from './log';
import { STAGE_NAMES, type StageName } from './stage';
import {
  coordinatesFromEnv,
  nodeFromOutputs,
  resolveSecret,
  sshTarget,
  storageFromOutputs,
  type NodeCoordinates,
  type StorageCoordinates,
} from './remote/coordinates';
import { runOnNode } from './remote/run-on-node';

const ROOT = resolve(__dirname, '..');
const expandHome = (p: string) => (p.startsWith('~/') ? join(homedir(), p.slice(2)) : p);

interface Cli {
  force: boolean;
  mount: boolean;
  breakLock: boolean;
  fromEnv: boolean;
  nodeJson?: string;
  storageJson?: string;
  bundle: string;
  sshWait: string;
  minFreeMb: string;
  remoteDir?: string;
  mountPoint: string;
  rcloneConfig: string;
  privateKey?: string;
  url?: string;
  source?: string;
  seed?: string;
  ratios?: string;
}

async function terraformOutputs(stack: string): Promise<Record<string, { value: unknown }>> {
  const dir = join(ROOT, 'cdktf.out', 'stacks', stack);
  const r = await execa('terraform', [`-chdir=${dir}`, 'output', '-json'], { reject: false });
  if (r.exitCode !== 0) throw new Error(`could not read the outputs of the '${stack}' stack (is it deployed? npx cdktf deploy ${stack}): ${r.stderr.trim()}`);
  return JSON.parse(r.stdout) as Record<string, { value: unknown }>;
}

/** persist.config.yaml, when there is one: key path, ETL options and remote dir default from it. */
async function optionalConfig(): Promise<{ privateKeyPath?: string; etl?: { datasetUrl: string; seed: number; trainRatio: number; validationRatio: number; evaluationRatio: number; remoteDir: string } }> {
  if (!existsSync(join(ROOT, 'persist.config.yaml')) && !process.env.PERSIST_CONFIG_FILE) return {};
  const { loadConfigOrExit } = await import('../config');
  const c = loadConfigOrExit();
  return { privateKeyPath: c.ssh.privateKeyPath, etl: c.etl };
}

async function main(argv: string[]): Promise<number> {
  const log = stderrLogger();
  const program = new Command('etl-remote')
    .description('Run the ETL (or one stage) on the deployed node, loading into the deployed container')
    .argument('[stage]', `${STAGE_NAMES.join(' | ')} | all`, 'all')
    .option('--force', 'rerun stages even if their manifests say nothing changed', false)
    .option('--no-mount', 'do not (re)start the read-only mount at the end')
    .option('--break-lock', 'remove a lock left by a run that was killed', false)
    .option('--from-env', 'take node and storage from PERSIST_ETL_* variables (used by the etl stack)', false)
    .option('--node-json <file>', 'node coordinates {host,port,user,privateKeyPath} instead of the node stack (stand-ins)')
    .option('--storage-json <file>', 'storage coordinates {container,authUrl,region,userId,credentialId} instead of the storage stack')
    .option('--bundle <file>', 'ETL bundle to ship (built if missing)', join(ROOT, 'dist', 'etl.js'))
    .option('--ssh-wait <seconds>', 'how long to wait for the node to answer SSH', '600')
    .option('--min-free-mb <mb>', 'free disk the node needs for the ETL', '3000')
    .option('--remote-dir <dir>', 'ETL directory on the node (default: etl.remoteDir of the config, or ~/chameleon-persist)')
    .option('--mount-point <dir>', 'read-only mount of the container on the node', '/mnt/object')
    .option('--rclone-config <path>', 'rclone config path on the node', '~/.config/rclone/rclone.conf')
    .option('--private-key <path>', 'SSH private key (default: ssh.privateKeyPath of the config)')
    .addOption(new Option('--url <url>', 'dataset zip URL (default: etl.datasetUrl of the config)'))
    .addOption(new Option('--source <path>', 'dataset zip already on the node (no download)'))
    .option('--seed <n>', 'split seed (default: etl.seed of the config)')
    .option('--ratios <a,b,c>', 'split ratios (default: from the config)')
    .showHelpAfterError();
  program.parse(argv);
  const stage = program.processedArgs[0] as StageName | 'all';
  const o = program.opts<Cli>();
  if (stage !== 'all' && !STAGE_NAMES.includes(stage)) {
    log.info(`error: unknown stage '${stage}'; use ${STAGE_NAMES.join(', ')} or all`);
    return 2;
  }
  try {
    const config = await optionalConfig();
    let node: NodeCoordinates;
    let storage: StorageCoordinates;
    if (o.fromEnv) {
      ({ node, storage } = coordinatesFromEnv(process.env));
      node.privateKeyPath = expandHome(node.privateKeyPath);
      // The etl stack passes no secret (Terraform would hide the ETL's output): take it from the storage state.
      if (!process.env.PERSIST_APP_CREDENTIAL_SECRET) storage.credentialSecret = storageFromOutputs(await terraformOutputs('storage')).credentialSecret;
    } else {
      const key = o.privateKey ?? config.privateKeyPath;
      node = o.nodeJson
        ? (JSON.parse(readFileSync(o.nodeJson, 'utf8')) as NodeCoordinates)
        : nodeFromOutputs(await terraformOutputs('node'), expandHome(key ?? '~/.ssh/id_ed25519'));
      storage = o.storageJson ? (JSON.parse(readFileSync(o.storageJson, 'utf8')) as StorageCoordinates) : storageFromOutputs(await terraformOutputs('storage'));
    }
    if (o.privateKey) node.privateKeyPath = expandHome(o.privateKey);
    const secret = resolveSecret(storage, process.env);
    if (!existsSync(o.bundle)) {
      log.info('building the ETL bundle');
      await execa('node', [join(ROOT, 'scripts', 'build-etl.mjs'), o.bundle], { cwd: ROOT, stdio: 'inherit' });
    }
    const etl = config.etl;
    const etlOptions: Record<string, string | undefined> = {
      url: o.source ? undefined : (o.url ?? etl?.datasetUrl),
      source: o.source,
      seed: o.seed ?? (etl ? String(etl.seed) : undefined),
      ratios: o.ratios ?? (etl ? `${etl.trainRatio},${etl.validationRatio},${etl.evaluationRatio}` : undefined),
    };
    const result = await runOnNode({
      target: sshTarget(node),
      stage,
      force: o.force,
      etlOptions,
      container: storage.container,
      rclone: { name: 'chi_tacc', authUrl: storage.authUrl, region: storage.region, userId: storage.userId, credentialId: storage.credentialId, credentialSecret: secret },
      bundlePath: o.bundle,
      remoteDir: o.remoteDir ?? etl?.remoteDir ?? '~/chameleon-persist',
      rcloneConfigPath: o.rcloneConfig,
      mount: o.mount ? { mountPoint: o.mountPoint, service: 'rclone-object-mount.service' } : undefined,
      sshWaitSeconds: Number(o.sshWait),
      minFreeMb: Number(o.minFreeMb),
      breakLock: o.breakLock,
      log,
    });
    log.info(`done: the dataset is in container ${storage.container}${result.mountListing ? `, mounted read-only at ${o.mountPoint} on ${node.host}` : ''}`);
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
