import { Construct } from 'constructs';
import type { TerraformProvider } from 'cdktf';
import { ComputeInstanceV2 } from '../.gen/providers/openstack/compute-instance-v2';
import { DataOpenstackNetworkingNetworkV2 } from '../.gen/providers/openstack/data-openstack-networking-network-v2';
import { NetworkingFloatingipAssociateV2 } from '../.gen/providers/openstack/networking-floatingip-associate-v2';
import { NetworkingFloatingipV2 } from '../.gen/providers/openstack/networking-floatingip-v2';
import { NetworkingPortV2 } from '../.gen/providers/openstack/networking-port-v2';

export interface NodeWithFloatingIpProps {
  provider: TerraformProvider;
  name: string;
  image: string;
  /** Exactly one: a flavor name, or the reservation id of a lease (booted as `flavor_id`). */
  flavor: { name: string } | { reservationId: string };
  keyPair: string;
  network: string;
  floatingIpPool: string;
  securityGroupIds: string[];
  userData: string;
  metadata?: Record<string, string>;
}

/**
 * A server on its own Neutron port (the security groups go on the port), with a floating IP associated to that
 * port. v3 of the provider removed the compute floating-IP resources; the association is a networking one.
 */
export class NodeWithFloatingIp extends Construct {
  readonly network: DataOpenstackNetworkingNetworkV2;
  readonly port: NetworkingPortV2;
  readonly instance: ComputeInstanceV2;
  readonly floatingIp: NetworkingFloatingipV2;
  readonly association: NetworkingFloatingipAssociateV2;

  constructor(scope: Construct, id: string, props: NodeWithFloatingIpProps) {
    super(scope, id);
    const provider = props.provider;
    this.network = new DataOpenstackNetworkingNetworkV2(this, 'network', { provider, name: props.network });
    this.network.overrideLogicalId('network');

    this.port = new NetworkingPortV2(this, 'port', {
      provider,
      name: `${props.name}-port`,
      networkId: this.network.id,
      adminStateUp: true,
      securityGroupIds: props.securityGroupIds,
    });
    this.port.overrideLogicalId('node_port');

    this.instance = new ComputeInstanceV2(this, 'instance', {
      provider,
      name: props.name,
      imageName: props.image,
      ...('reservationId' in props.flavor
        ? { flavorId: props.flavor.reservationId }
        : { flavorName: props.flavor.name }),
      keyPair: props.keyPair,
      userData: props.userData,
      network: [{ port: this.port.id }],
      metadata: props.metadata,
    });
    this.instance.overrideLogicalId('node');

    this.floatingIp = new NetworkingFloatingipV2(this, 'floating_ip', {
      provider,
      pool: props.floatingIpPool,
      description: `${props.name} (chameleon-persist)`,
    });
    this.floatingIp.overrideLogicalId('node_floating_ip');

    this.association = new NetworkingFloatingipAssociateV2(this, 'association', {
      provider,
      floatingIp: this.floatingIp.address,
      portId: this.port.id,
      // Associate once the server holds the port, so the address answers as soon as it is an output.
      dependsOn: [this.instance],
    });
    this.association.overrideLogicalId('node_floating_ip_association');
  }
}
