import { Construct } from 'constructs';
import type { TerraformProvider } from 'cdktf';
import { NetworkingSecgroupV2 } from '../.gen/providers/openstack/networking-secgroup-v2';
import { NetworkingSecgroupRuleV2 } from '../.gen/providers/openstack/networking-secgroup-rule-v2';
import { checkCidr } from '../config/cidr';
import { isResolved, reportErrors, textProblems } from './validation';

export interface SshOnlySecurityGroupProps {
  /** Provider configuration of the site the group lives on. */
  readonly provider: TerraformProvider;
  /** Neutron name of the group. */
  readonly name: string;
  /** The only source allowed in, e.g. `203.0.113.7/32` or `2001:db8::/64`. */
  readonly allowedCidr: string;
  /**
   * The rule's ethertype. Only needed when `allowedCidr` is a token; a known CIDR decides it, and a value that
   * disagrees with it is an error (an IPv6 network in an IPv4 rule is refused by Neutron, at apply time).
   * @default derived from `allowedCidr`: `IPv6` when it is an IPv6 network, else `IPv4`
   */
  readonly ethertype?: 'IPv4' | 'IPv6';
}

/** The ethertype of a CIDR: `IPv6` when its address is IPv6 (contains a colon), else `IPv4`. */
export function ethertypeOf(cidr: string): 'IPv4' | 'IPv6' {
  return cidr.includes(':') ? 'IPv6' : 'IPv4';
}

/**
 * A security group whose only ingress rule is TCP 22 from one CIDR. Neutron's default egress rules stay (the
 * node needs apt, the object store and the dataset mirror).
 *
 * Logical ids are the stack's to pin (`group`, `sshRule`); the construct leaves them to cdktf's defaults, so
 * two instances in one stack do not collide.
 */
export class SshOnlySecurityGroup extends Construct {
  readonly group: NetworkingSecgroupV2;
  readonly sshRule: NetworkingSecgroupRuleV2;
  /** The rule's ethertype, as synthesized. */
  readonly ethertype: 'IPv4' | 'IPv6';

  constructor(scope: Construct, id: string, props: SshOnlySecurityGroupProps) {
    super(scope, id);
    const problems = textProblems('name', props.name);
    let ethertype = props.ethertype;
    if (isResolved(props.allowedCidr)) {
      const cidrProblem = checkCidr(props.allowedCidr);
      if (cidrProblem) problems.push(`allowedCidr: ${cidrProblem}`);
      const derived = ethertypeOf(props.allowedCidr);
      if (ethertype !== undefined && ethertype !== derived) {
        problems.push(
          `ethertype ${ethertype} does not match allowedCidr ${props.allowedCidr} (an ${derived} network); leave ethertype out`,
        );
      }
      ethertype = derived;
    } else if (ethertype === undefined) {
      problems.push('allowedCidr is a token, so its ethertype cannot be derived; set ethertype');
    }
    reportErrors(this, problems);
    this.ethertype = ethertype ?? 'IPv4';

    this.group = new NetworkingSecgroupV2(this, 'group', {
      provider: props.provider,
      name: props.name,
      description: `SSH from ${props.allowedCidr} only (chameleon-persist)`,
    });
    this.sshRule = new NetworkingSecgroupRuleV2(this, 'ssh', {
      provider: props.provider,
      securityGroupId: this.group.id,
      direction: 'ingress',
      ethertype: this.ethertype,
      protocol: 'tcp',
      portRangeMin: 22,
      portRangeMax: 22,
      remoteIpPrefix: props.allowedCidr,
      description: 'SSH',
    });
  }
}
