import { defaultCloudInitOptions, nodeLayoutOf } from '../cloud-init/render';
import { RUN_SPEC_FORMAT, type RunSpec } from '../etl/remote/run-spec';

/** The stand-in node (scripts/local-node.sh's node.json): an sshd on 127.0.0.1, this machine's user. */
export interface StandInNode {
  host: string;
  port: number;
  user: string;
  privateKeyPath: string;
  knownHostsPath: string;
}

/** The stand-in Keystone + Swift (scripts/local-openstack.sh's env.json), the part a run needs. */
export interface StandInStorage {
  authUrl: string;
  region: string;
  userId: string;
  appCredential: { id: string };
}

/**
 * The run spec the stacks would produce for the stand-ins (etl/remote/run-spec.ts): the layout a cloud-config
 * for this user makes, moved under `remoteDir` (the stand-in node is this machine, so nothing goes to its real
 * home or /mnt), and the dataset read in place from `source` (the stand-in shares this machine's disk).
 */
export function standInRunSpec(p: {
  node: Pick<StandInNode, 'host' | 'port' | 'user' | 'privateKeyPath'>;
  storage: StandInStorage;
  container: string;
  remoteDir: string;
  mountPoint?: string;
  source: string;
  seed?: number;
  serverId?: string;
}): RunSpec {
  const layout = nodeLayoutOf({
    ...defaultCloudInitOptions(p.node.user, p.container, p.remoteDir),
    rcloneConfigPath: `${p.remoteDir}/rclone.conf`,
    mountPoint: p.mountPoint ?? `${p.remoteDir}/mnt`,
  });
  return {
    format: RUN_SPEC_FORMAT,
    node: {
      host: p.node.host,
      port: p.node.port,
      user: p.node.user,
      privateKeyPath: p.node.privateKeyPath,
      consoleCloud: 'kvm_tacc',
      ...(p.serverId ? { serverId: p.serverId } : {}),
    },
    layout,
    storage: {
      container: p.container,
      authUrl: p.storage.authUrl,
      region: p.storage.region,
      userId: p.storage.userId,
      credentialId: p.storage.appCredential.id,
    },
    dataset: { source: p.source, allowUnverified: false, seed: p.seed ?? 42, ratios: [0.7, 0.15, 0.15] },
  };
}
