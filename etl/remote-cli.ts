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
import { pinFromConsole, prepareKnownHostsDir } from './remote/host-keys';
import { runOnNode } from './remote/run-on-node';
import { parseRatios, parseRunSpec, withOverrides, type RunOverrides, type RunSpec } from './remote/run-spec';
import { SECRET_ENV_NAMES } from './remote/ssh';
import { createdCredential, resolveSecret, runSpecFromState } from './remote/stack-state';

const ROOT = resolve(__dirname, '..');
const expandHome = (p: string) => (p.startsWith('~/') ? join(homedir(), p.slice(2)) : p);

interface Cli {
  force: boolean;
  mount: boolean;
  breakLock: boolean;
  fromEnv: boolean;
  spec?: string;
  stateDir: string;
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

/**
 * The run spec (etl/remote/run-spec.ts): the provisioner's PERSIST_ETL_SPEC, a file, or the etl stack's
 * `run_spec` output in its state (what the last `cdktf deploy etl` ran with). persist.config.yaml is not read:
 * a changed config takes effect with `cdktf deploy etl`, or for one rerun with the flags.
 */
function deployedSpec(o: Cli): RunSpec {
  if (o.fromEnv) {
    const value = process.env.PERSIST_ETL_SPEC;
    if (!value)
      throw new EtlError(
        'PERSIST_ETL_SPEC is not set',
        "This mode is for the etl stack, which sets it; run without --from-env to use the deployed etl stack's state.",
      );
    return parseRunSpec(value, 'PERSIST_ETL_SPEC');
  }
  if (o.spec) {
    let value: string;
    try {
      value = readFileSync(o.spec, 'utf8');
    } catch (e) {
      throw new EtlError(`cannot read the run spec ${o.spec}: ${(e as Error).message}`);
    }
    return parseRunSpec(value, o.spec);
  }
  return runSpecFromState(o.stateDir);
}

function integer(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new EtlError(`${flag} ${JSON.stringify(value)} is not a whole number`);
  return n;
}

/** The command line's changes to the spec for this run. */
function overrides(o: Cli): RunOverrides {
  return {
    port: integer(o.port, '--port'),
    privateKeyPath: o.privateKey,
    consoleCloud: o.kvmCloud,
    remoteDir: o.remoteDir,
    mountPoint: o.mountPoint,
    rcloneConfigPath: o.rcloneConfig,
    url: o.url,
    source: o.source,
    sha256: o.sha256,
    allowUnverified: o.allowUnverified || undefined,
    seed: integer(o.seed, '--seed'),
    ratios: o.ratios === undefined ? undefined : parseRatios(o.ratios),
  };
}

/**
 * One known_hosts per server: a new node on a reused floating IP has a new host key, and that is expected. Its
 * directory is created (0700) here, before the first contact: ssh does not create it and, when it cannot write
 * the file, connects anyway without remembering anything (waitForSsh now also checks the key was recorded).
 */
function knownHostsFor(serverId: string | undefined, given: string | undefined): string | undefined {
  if (given) {
    prepareKnownHostsDir(given, { tighten: false }); // the user's own directory: only created if missing
    return given;
  }
  if (!serverId) return undefined;
  const base = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  const path = join(base, 'chameleon-persist', `known_hosts-${serverId.replace(/[^A-Za-z0-9_.-]/g, '_')}`);
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
    .option('--from-env', 'take the run spec from PERSIST_ETL_SPEC (the etl stack does this)', false)
    .option('--spec <file>', "a run spec (etl/remote/run-spec.ts) instead of the deployed etl stack's")
    .addOption(
      new Option('--state-dir <dir>', "where the stacks' terraform.<stack>.tfstate files are").env('PERSIST_STATE_DIR').default(ROOT),
    )
    .addOption(new Option('--port <n>', "SSH port of the node (default: the spec's, 22)").env('PERSIST_ETL_PORT'))
    .option('--bundle <file>', 'ETL bundle to ship (built if missing)', join(ROOT, 'dist', 'etl.js'))
    .option('--ssh-wait <seconds>', 'how long to wait for the node to answer SSH', '600')
    .option('--min-free-mb <mb>', 'free disk the node needs for the ETL', '3000')
    .option('--remote-dir <dir>', "ETL directory on the node (default: the spec's, etl.remoteDir at deploy)")
    .option('--mount-point <dir>', "where readers find the current version on the node (default: the spec's, /mnt/object)")
    .option(
      '--rclone-config <path>',
      "rclone config path on the node (default: the spec's, ~/.config/rclone/rclone.conf of the login user)",
    )
    .option('--private-key <path>', "SSH private key (default: the spec's, ssh.privateKeyPath at deploy)")
    .option('--known-hosts <file>', 'known_hosts file for the node (default: one per server under ~/.cache/chameleon-persist)')
    .option('--url <url>', "dataset zip URL (default: the spec's, etl.datasetUrl at deploy)")
    .option('--source <path>', 'dataset zip already on the node, an absolute path (no download)')
    .option('--sha256 <hex>', "expected SHA-256 of the dataset zip (default: the spec's, etl.datasetSha256 at deploy)")
    .option('--seed <n>', "split seed (default: the spec's, etl.seed at deploy)")
    .option('--ratios <a,b,c>', "split ratios (default: the spec's)")
    .option('--transfers <n>', 'parallel uploads of the load stage')
    .option('--checkers <n>', 'parallel checks of the load stage')
    .option('--keep <n>', 'published versions the load keeps in the container, the current one included (default 2)')
    .option(
      '--allow-unverified',
      "accept a dataset checked by its size only when no checksum is given or published (default: the spec's, etl.allowUnverified)",
      false,
    )
    .option('--no-console-keys', "do not pin the node's host key from its console log before the first contact (trust on first use)")
    .option('--console-wait <seconds>', 'how long to wait for cloud-init to print the host keys to the console', '900')
    .option('--kvm-cloud <name>', "clouds.yaml entry the console log is read with (default: the spec's, kvm.cloud at deploy)")
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
    const spec = withOverrides(deployedSpec(o), overrides(o));
    let force = o.force;
    // `PERSIST_ETL_FORCE=1 npx cdktf deploy etl`: the deploying shell's environment reaches this process.
    if (o.fromEnv && /^(1|true|yes)$/i.test(process.env.PERSIST_ETL_FORCE ?? '')) force = true;
    const secret = resolveSecret(spec.storage.credentialId, createdCredential(o.stateDir), process.env);
    // Read once; from here on it travels only through ssh's stdin. No child (ssh, the sh it may start, the
    // bundle build, the openstack client) inherits it in its environment. (ssh.ts also drops OS_PASSWORD & co.
    // for ssh; the openstack client may need those.)
    for (const name of SECRET_ENV_NAMES.filter((n) => n.startsWith('PERSIST_'))) delete process.env[name];
    const node = spec.node;
    const knownHostsPath = knownHostsFor(node.serverId, o.knownHosts);
    if (knownHostsPath && node.serverId && o.consoleKeys) {
      await pinFromConsole({
        host: node.host,
        port: node.port,
        knownHostsPath,
        serverId: node.serverId,
        cloud: node.consoleCloud,
        waitSeconds: Number(o.consoleWait),
        log,
      });
    } else if (!knownHostsPath || !node.serverId) {
      log.info(
        `no server id for ${node.host}: ` +
          `its host key is accepted on first contact and remembered${knownHostsPath ? ` in ${knownHostsPath}` : ''}`,
      );
    }

    if (!existsSync(o.bundle)) {
      log.info('building the ETL bundle');
      await execa('node', [join(ROOT, 'scripts', 'build-etl.mjs'), o.bundle], { cwd: ROOT, stdio: 'inherit' });
    }
    const result = await runOnNode({
      spec,
      secret,
      target: { host: node.host, port: node.port, user: node.user, privateKeyPath: expandHome(node.privateKeyPath), knownHostsPath },
      stage,
      run: {
        force,
        breakLock: o.breakLock,
        transfers: integer(o.transfers, '--transfers'),
        checkers: integer(o.checkers, '--checkers'),
        keep: integer(o.keep, '--keep'),
      },
      bundlePath: o.bundle,
      mount: o.mount,
      sshWaitSeconds: Number(o.sshWait),
      minFreeMb: Number(o.minFreeMb),
      log,
    });
    log.info(
      `done: the dataset is in container ${spec.storage.container} (${spec.storage.region})` +
        (result.mountListing ? `, mounted read-only at ${spec.layout.mountPoint} on ${node.host}` : ''),
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
