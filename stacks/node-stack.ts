import type { Construct } from 'constructs';
import { Annotations, TerraformOutput } from 'cdktf';
import { ComputeKeypairV2 } from '../.gen/providers/openstack/compute-keypair-v2';
import { defaultCloudInitOptions, MOUNT_SERVICE, nodeLayoutOf, renderCloudConfig, type NodeCloudInitOptions } from '../cloud-init/render';
import type { PersistConfig } from '../config';
import type { NodeLayout } from '../etl/remote/run-spec';
import { NodeWithFloatingIp } from '../constructs/node-with-floating-ip';
import { SshOnlySecurityGroup } from '../constructs/ssh-only-security-group';
import { StackWithPinnedAddresses } from './addresses';
import { KVM_PROVIDER_ALIAS, siteProvider } from './site-provider';
import { projectStateBackend } from './state-files';

export interface NodeStackProps {
  /** The validated configuration (config/loadConfig). */
  readonly config: PersistConfig;
}

/**
 * KVM@TACC: a node that mounts the container read-only at /mnt/object once it receives an rclone config.
 *
 * Nothing here refers to the storage stack: the container name comes from the configuration, so deploying,
 * replacing or destroying the node never plans a change to the container or the credential.
 */
export class NodeStack extends StackWithPinnedAddresses {
  /** Public address of the node (a token). */
  readonly floatingIp: string;
  /** Server id (a token); changes when the server is replaced. */
  readonly instanceId: string;
  readonly sshUser: string;
  readonly sshPrivateKeyPath: string;
  /** What the node's cloud-config was rendered from: rclone remote, config path, mount point, ETL dir. */
  readonly cloudInit: NodeCloudInitOptions;
  /** Where the node keeps things, as the run spec carries it to the runner (etl/remote/run-spec.ts). */
  readonly layout: NodeLayout;
  /** The exact `#cloud-config` text given to the server as user_data. */
  readonly userData: string;
  readonly server: NodeWithFloatingIp;

  constructor(scope: Construct, id: string, props: NodeStackProps) {
    super(scope, id);
    // The addresses of the first deploys, by construct path (see addresses.ts); __tests__/infra/addresses.test.ts
    // holds the whole list.
    const { config } = props;
    this.pinAddresses({
      ...(config.ssh.keypairName ? {} : { keypair: 'keypair' }),
      'ssh/group': 'ssh_only',
      'ssh/ssh': 'ssh_ingress',
      'node/network': 'network',
      'node/port': 'node_port',
      'node/instance': 'node',
      'node/floating_ip': 'node_floating_ip',
      'node/association': 'node_floating_ip_association',
    });
    projectStateBackend(this);
    const provider = siteProvider(this, KVM_PROVIDER_ALIAS, config.kvm.cloud, config.kvm.region);
    const name = `persist-${config.teamId}`;

    let keyPair: string;
    if (config.ssh.keypairName) {
      keyPair = config.ssh.keypairName;
    } else {
      if (!config.ssh.publicKey) {
        Annotations.of(this).addError('config.ssh.publicKey is empty; build the config with loadConfig(), which reads ssh.publicKeyPath');
      }
      const keypair = new ComputeKeypairV2(this, 'keypair', { provider, name, publicKey: config.ssh.publicKey ?? '' });
      keyPair = keypair.name;
    }

    const sg = new SshOnlySecurityGroup(this, 'ssh', {
      provider,
      name: `${name}-ssh`,
      allowedCidr: config.ssh.allowedCidr,
    });

    this.cloudInit = defaultCloudInitOptions(config.ssh.user, config.containerName, config.etl.remoteDir);
    this.layout = nodeLayoutOf(this.cloudInit);
    this.userData = renderCloudConfig(this.cloudInit);

    this.server = new NodeWithFloatingIp(this, 'node', {
      provider,
      name: `${name}-node`,
      image: config.node.image,
      flavor: config.node.reservationId ? { reservationId: config.node.reservationId } : { name: config.node.flavor },
      keyPair,
      network: config.node.network,
      floatingIpPool: config.node.floatingIpPool,
      securityGroupIds: [sg.group.id],
      userData: this.userData,
      metadata: { 'managed-by': 'chameleon-persist', team: config.teamId },
    });

    this.floatingIp = this.server.floatingIp.address;
    this.instanceId = this.server.instance.id;
    this.sshUser = config.ssh.user;
    this.sshPrivateKeyPath = config.ssh.privateKeyPath;

    new TerraformOutput(this, 'floating_ip', { value: this.floatingIp, description: 'Public address of the node' });
    new TerraformOutput(this, 'ssh_command', {
      value: `ssh -i ${this.sshPrivateKeyPath} ${this.sshUser}@${this.floatingIp}`,
      description: 'Log in to the node',
    });
    new TerraformOutput(this, 'instance_id', { value: this.instanceId, description: 'Server id' });
    new TerraformOutput(this, 'ssh_user', { value: this.sshUser, description: 'Login user' });
    new TerraformOutput(this, 'mount_point', {
      value: this.cloudInit.mountPoint,
      description: `Read-only mount of the container (${MOUNT_SERVICE}, starts once ${this.cloudInit.rcloneConfigPath} exists)`,
    });
  }
}
