import { App, TerraformStack, Testing, Token } from 'cdktf';
import { OpenstackProvider } from '../../.gen/providers/openstack/provider';
import { NodeWithFloatingIp, type NodeWithFloatingIpProps } from '../../constructs/node-with-floating-ip';
import { ethertypeOf, SshOnlySecurityGroup, type SshOnlySecurityGroupProps } from '../../constructs/ssh-only-security-group';
import { StackWithPinnedAddresses } from '../../stacks/addresses';
import { errorAnnotations } from '../support/constructs';

// The L2-style constructs: props validated at construction (tokens skipped), problems as error annotations
// that stop synth, and no pinned logical ids (two instances in one stack do not collide).
function stackWithProvider() {
  const app = Testing.app();
  const stack = new TerraformStack(app, 's');
  const provider = new OpenstackProvider(stack, 'p', { alias: 'kvm_tacc', cloud: 'kvm_tacc' });
  return { app, stack, provider };
}

function group(props: Partial<SshOnlySecurityGroupProps>) {
  const { app, stack, provider } = stackWithProvider();
  const sg = new SshOnlySecurityGroup(stack, 'ssh', { provider, name: 'g', allowedCidr: '203.0.113.7/32', ...props });
  return { app, stack, sg, json: JSON.parse(Testing.synth(stack)) as Record<string, any>, errors: errorAnnotations(stack) };
}

const rule = (json: Record<string, any>) => Object.values<any>(json.resource.openstack_networking_secgroup_rule_v2)[0];

describe('SshOnlySecurityGroup', () => {
  test('ethertypeOf: known answers', () => {
    expect(['203.0.113.7/32', '0.0.0.0/0', '2001:db8::/64', '::/0', '::ffff:192.0.2.1/128'].map(ethertypeOf)).toEqual([
      'IPv4',
      'IPv4',
      'IPv6',
      'IPv6',
      'IPv6',
    ]);
  });

  test('the ethertype comes from the CIDR: an IPv6 network gives an IPv6 rule, an IPv4 one an IPv4 rule', () => {
    expect(rule(group({ allowedCidr: '2001:db8::/64' }).json)).toMatchObject({ ethertype: 'IPv6', remote_ip_prefix: '2001:db8::/64' });
    expect(rule(group({ allowedCidr: '198.51.100.0/24' }).json)).toMatchObject({ ethertype: 'IPv4', remote_ip_prefix: '198.51.100.0/24' });
    expect(group({}).errors).toEqual([]);
  });

  test('an ethertype that contradicts the CIDR is an error, not an IPv4 rule for an IPv6 network', () => {
    const { errors } = group({ allowedCidr: '2001:db8::/64', ethertype: 'IPv4' });
    expect(errors).toEqual(['s/ssh: ethertype IPv4 does not match allowedCidr 2001:db8::/64 (an IPv6 network); leave ethertype out']);
  });

  test('a CIDR that is not one, a name with a template sequence: each reported', () => {
    expect(group({ allowedCidr: '203.0.113.7' }).errors).toEqual([
      's/ssh: allowedCidr: "203.0.113.7" is an address, not a network; write 203.0.113.7/32 for that one address',
    ]);
    expect(group({ name: 'x${file("/etc/hostname")}' }).errors).toEqual(['s/ssh: name contains a Terraform template sequence (${ or %{)']);
  });

  test('a token CIDR is not checked; its ethertype must then be given', () => {
    const token = Token.asString({ Ref: 'cidr' });
    expect(group({ allowedCidr: token }).errors).toEqual([
      's/ssh: allowedCidr is a token, so its ethertype cannot be derived; set ethertype',
    ]);
    const given = group({ allowedCidr: token, ethertype: 'IPv6' });
    expect(given.errors).toEqual([]);
    expect(given.sg.ethertype).toBe('IPv6');
  });

  test('two groups in one stack get two addresses (no logical id pinned inside)', () => {
    const { stack, provider } = stackWithProvider();
    new SshOnlySecurityGroup(stack, 'a', { provider, name: 'a', allowedCidr: '203.0.113.7/32' });
    new SshOnlySecurityGroup(stack, 'b', { provider, name: 'b', allowedCidr: '198.51.100.0/24' });
    const json = JSON.parse(Testing.synth(stack));
    expect(Object.keys(json.resource.openstack_networking_secgroup_v2)).toHaveLength(2);
    expect(Object.keys(json.resource.openstack_networking_secgroup_rule_v2)).toHaveLength(2);
  });

  test('an error annotation stops synth, naming the construct and the problem', () => {
    const app = new App({ outdir: Testing.app().outdir, skipValidation: false });
    const stack = new TerraformStack(app, 's');
    const provider = new OpenstackProvider(stack, 'p', { alias: 'kvm_tacc', cloud: 'kvm_tacc' });
    new SshOnlySecurityGroup(stack, 'ssh', { provider, name: 'g', allowedCidr: '2001:db8::/64', ethertype: 'IPv4' });
    expect(() => app.synth()).toThrow(
      /Encountered Annotations with level "ERROR"[\s\S]*s\/ssh[\s\S]*ethertype IPv4 does not match allowedCidr 2001:db8::\/64/,
    );
  });
});

describe('NodeWithFloatingIp', () => {
  const base = (provider: OpenstackProvider): NodeWithFloatingIpProps => ({
    provider,
    name: 'n',
    image: 'CC-Ubuntu24.04',
    flavor: { name: 'm1.medium' },
    keyPair: 'k',
    network: 'sharednet1',
    floatingIpPool: 'public',
    securityGroupIds: ['sg'],
    userData: '#cloud-config\n',
  });

  test('valid props: no errors; a token security group id is fine', () => {
    const { stack, provider } = stackWithProvider();
    new NodeWithFloatingIp(stack, 'node', { ...base(provider), securityGroupIds: [Token.asString({ Ref: 'sg' })] });
    expect(errorAnnotations(stack)).toEqual([]);
  });

  test('wrong props: every problem reported', () => {
    const { stack, provider } = stackWithProvider();
    new NodeWithFloatingIp(stack, 'node', {
      ...base(provider),
      name: '',
      image: 'a\nb',
      flavor: { name: 'm1', reservationId: 'r' } as unknown as NodeWithFloatingIpProps['flavor'],
      securityGroupIds: [],
      userData: 'x'.repeat(50_000),
    });
    expect(errorAnnotations(stack)).toEqual([
      's/node: name is empty',
      's/node: image contains control characters',
      's/node: flavor must have exactly one of name, reservationId',
      "s/node: securityGroupIds is empty: the port would get the project's default group",
      's/node: userData is 50000 bytes (66668 base64-encoded); Nova takes at most 65535 encoded',
    ]);
  });

  test('two nodes in one stack get two addresses each', () => {
    const { stack, provider } = stackWithProvider();
    new NodeWithFloatingIp(stack, 'a', base(provider));
    new NodeWithFloatingIp(stack, 'b', { ...base(provider), name: 'b' });
    const json = JSON.parse(Testing.synth(stack));
    for (const type of [
      'openstack_compute_instance_v2',
      'openstack_networking_port_v2',
      'openstack_networking_floatingip_v2',
      'openstack_networking_floatingip_associate_v2',
    ]) {
      expect([type, Object.keys(json.resource[type]).length]).toEqual([type, 2]);
    }
  });
});

describe('StackWithPinnedAddresses', () => {
  class Pinned extends StackWithPinnedAddresses {
    constructor(scope: App, table: Record<string, string>) {
      super(scope, 'pinned');
      this.pinAddresses(table);
      const provider = new OpenstackProvider(this, 'p', { alias: 'kvm_tacc', cloud: 'kvm_tacc' });
      // The rule refers to the group inside the construct: an overrideLogicalId afterwards would be ignored.
      new SshOnlySecurityGroup(this, 'ssh', { provider, name: 'g', allowedCidr: '203.0.113.7/32' });
    }
  }

  test('the table pins blocks inside constructs, even ones referenced there', () => {
    const stack = new Pinned(Testing.app(), { 'ssh/group': 'ssh_only', 'ssh/ssh': 'ssh_ingress' });
    const json = JSON.parse(Testing.synth(stack));
    expect(Object.keys(json.resource.openstack_networking_secgroup_v2)).toEqual(['ssh_only']);
    expect(json.resource.openstack_networking_secgroup_rule_v2.ssh_ingress.security_group_id).toBe(
      '${openstack_networking_secgroup_v2.ssh_only.id}',
    );
  });

  test('a pinned path that names no block fails synth (a renamed construct would otherwise get a new address)', () => {
    const app = new App({ outdir: Testing.app().outdir });
    new Pinned(app, { 'ssh/group': 'ssh_only', 'ssh/grop': 'typo' });
    expect(() => app.synth()).toThrow(/pinned address 'typo' is for 'ssh\/grop', which is no block of this stack/);
  });
});
