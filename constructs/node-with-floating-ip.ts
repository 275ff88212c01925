import { Construct } from 'constructs';
import type { TerraformProvider } from 'cdktf';
import { ComputeInstanceV2 } from '../.gen/providers/openstack/compute-instance-v2';
import { DataOpenstackNetworkingNetworkV2 } from '../.gen/providers/openstack/data-openstack-networking-network-v2';
import { NetworkingFloatingipAssociateV2 } from '../.gen/providers/openstack/networking-floatingip-associate-v2';
import { NetworkingFloatingipV2 } from '../.gen/providers/openstack/networking-floatingip-v2';
import { NetworkingPortV2 } from '../.gen/providers/openstack/networking-port-v2';
import { isResolved, reportErrors, textProblems } from './validation';

export interface NodeWithFloatingIpProps {
  /** Provider configuration of the site the server runs on. */
  readonly provider: TerraformProvider;
  /** Name of the server; the port is `<name>-port`. */
  readonly name: string;
  /** Glance image name, e.g. `CC-Ubuntu24.04`. */
  readonly image: string;
  /** Exactly one: a flavor name, or the reservation id of a lease (booted as `flavor_id`). */
  readonly flavor: { readonly name: string } | { readonly reservationId: string };
  /** Name of the Nova keypair the server boots with. */
  readonly keyPair: string;
  /** Name of the Neutron network the port is on. */
  readonly network: string;
  /** External network the floating IP is allocated from. */
  readonly floatingIpPool: string;
  /** Security groups of the port (at least one: without any, Neutron applies the project's default group). */
  readonly securityGroupIds: readonly string[];
  /** The server's user data (its cloud-config). */
  readonly userData: string;
  /**
   * Nova metadata of the server.
   * @default no metadata
   */
  readonly metadata?: Readonly<Record<string, string>>;
}

/** Nova refuses user data over 65535 bytes once base64-encoded (the column is a MEDIUMTEXT, the API a limit). */
const MAX_USER_DATA_BASE64 = 65535;

/**
 * A server on its own Neutron port (the security groups go on the port), with a floating IP associated to that
 * port. v3 of the provider removed the compute floating-IP resources; the association is a networking one.
 *
 * Props are checked at construction (tokens skipped) and problems reported as error annotations. Logical ids
 * are the stack's to pin; the construct leaves cdktf's defaults.
 */
export class NodeWithFloatingIp extends Construct {
  readonly network: DataOpenstackNetworkingNetworkV2;
  readonly port: NetworkingPortV2;
  readonly instance: ComputeInstanceV2;
  readonly floatingIp: NetworkingFloatingipV2;
  readonly association: NetworkingFloatingipAssociateV2;

  constructor(scope: Construct, id: string, props: NodeWithFloatingIpProps) {
    super(scope, id);
    reportErrors(this, validateNodeProps(props));
    const provider = props.provider;
    this.network = new DataOpenstackNetworkingNetworkV2(this, 'network', { provider, name: props.network });

    this.port = new NetworkingPortV2(this, 'port', {
      provider,
      name: `${props.name}-port`,
      networkId: this.network.id,
      adminStateUp: true,
      securityGroupIds: [...props.securityGroupIds],
    });

    this.instance = new ComputeInstanceV2(this, 'instance', {
      provider,
      name: props.name,
      imageName: props.image,
      ...('reservationId' in props.flavor ? { flavorId: props.flavor.reservationId } : { flavorName: props.flavor.name }),
      keyPair: props.keyPair,
      userData: props.userData,
      network: [{ port: this.port.id }],
      ...(props.metadata ? { metadata: { ...props.metadata } } : {}),
    });

    this.floatingIp = new NetworkingFloatingipV2(this, 'floating_ip', {
      provider,
      pool: props.floatingIpPool,
      description: `${props.name} (chameleon-persist)`,
    });

    this.association = new NetworkingFloatingipAssociateV2(this, 'association', {
      provider,
      floatingIp: this.floatingIp.address,
      portId: this.port.id,
      // Associate once the server holds the port, so the address answers as soon as it is an output.
      dependsOn: [this.instance],
    });
  }
}

/** Every problem with the props (empty when they are fine); tokens are not checked. Exported for tests. */
export function validateNodeProps(props: NodeWithFloatingIpProps): string[] {
  const p = [
    ...textProblems('name', props.name),
    ...textProblems('image', props.image, { allowSpaces: true }),
    ...textProblems('keyPair', props.keyPair, { allowSpaces: true }),
    ...textProblems('network', props.network, { allowSpaces: true }),
    ...textProblems('floatingIpPool', props.floatingIpPool, { allowSpaces: true }),
  ];
  const flavor = props.flavor as { name?: string; reservationId?: string };
  if ((flavor.name === undefined) === (flavor.reservationId === undefined)) p.push('flavor must have exactly one of name, reservationId');
  else if (flavor.name !== undefined) p.push(...textProblems('flavor.name', flavor.name, { allowSpaces: true }));
  else if (flavor.reservationId !== undefined) p.push(...textProblems('flavor.reservationId', flavor.reservationId));
  if (props.securityGroupIds.length === 0) p.push("securityGroupIds is empty: the port would get the project's default group");
  if (isResolved(props.userData)) {
    const size = Buffer.byteLength(props.userData, 'utf8');
    const encoded = Math.ceil(size / 3) * 4;
    if (encoded > MAX_USER_DATA_BASE64)
      p.push(`userData is ${size} bytes (${encoded} base64-encoded); Nova takes at most ${MAX_USER_DATA_BASE64} encoded`);
  }
  return p;
}
