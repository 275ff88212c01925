import { Construct } from 'constructs';
import type { TerraformProvider } from 'cdktf';
import { NetworkingSecgroupV2 } from '../.gen/providers/openstack/networking-secgroup-v2';
import { NetworkingSecgroupRuleV2 } from '../.gen/providers/openstack/networking-secgroup-rule-v2';

export interface SshOnlySecurityGroupProps {
  provider: TerraformProvider;
  name: string;
  /** The only source allowed in, e.g. 203.0.113.7/32. */
  allowedCidr: string;
  ethertype: 'IPv4' | 'IPv6';
}

/**
 * A security group whose only ingress rule is TCP 22 from one CIDR. Neutron's default egress rules stay (the
 * node needs apt, the object store and the dataset mirror).
 */
export class SshOnlySecurityGroup extends Construct {
  readonly group: NetworkingSecgroupV2;
  readonly sshRule: NetworkingSecgroupRuleV2;

  constructor(scope: Construct, id: string, props: SshOnlySecurityGroupProps) {
    super(scope, id);
    this.group = new NetworkingSecgroupV2(this, 'group', {
      provider: props.provider,
      name: props.name,
      description: `SSH from ${props.allowedCidr} only (chameleon-persist)`,
    });
    this.group.overrideLogicalId('ssh_only');
    this.sshRule = new NetworkingSecgroupRuleV2(this, 'ssh', {
      provider: props.provider,
      securityGroupId: this.group.id,
      direction: 'ingress',
      ethertype: props.ethertype,
      protocol: 'tcp',
      portRangeMin: 22,
      portRangeMax: 22,
      remoteIpPrefix: props.allowedCidr,
      description: 'SSH',
    });
    this.sshRule.overrideLogicalId('ssh_ingress');
  }
}
