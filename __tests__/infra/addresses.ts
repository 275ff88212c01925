import { Testing, type TerraformStack } from 'cdktf';
import { EtlStack } from '../../stacks/etl-stack';
import { NodeStack } from '../../stacks/node-stack';
import { StorageStack } from '../../stacks/storage-stack';
import { TEST_PUBLIC_KEY_PATH, testConfig } from './helpers';

/**
 * Configurations that between them synthesize every block the three stacks can hold: a created keypair and
 * credential (default), a named keypair with a flavor and access rules, a brought credential, an IPv6 source.
 */
export const ADDRESS_VARIANTS: Record<string, { patch: Record<string, any>; env?: Record<string, string> }> = {
  default: { patch: {} },
  'keypair-name+flavor+access-rules': {
    patch: {
      ssh: { publicKeyPath: null, keypairName: 'my-key', privateKeyPath: TEST_PUBLIC_KEY_PATH.replace(/\.pub$/, '') },
      node: { reservationId: null, flavor: 'm1.large' },
      kvm: { region: 'KVM@LOCAL' },
      credential: { accessRules: true },
    },
  },
  'existing-credential': {
    patch: {},
    env: { PERSIST_APP_CREDENTIAL_ID: '0123456789abcdef0123456789abcdef', PERSIST_APP_CREDENTIAL_SECRET: 'not-a-real-secret' },
  },
  ipv6: { patch: { ssh: { allowedCidr: '2001:db8::/64' } } },
};

/**
 * Every Terraform address of the app's three stacks for one variant: resources (`type.name`), data sources
 * (`data.type.name`), outputs (`output.name`) and provider configurations (`provider.type.alias`), sorted, per
 * stack. These are what a state file is keyed by: a change here plans "destroy and create".
 */
export function synthesizedAddresses(variant: keyof typeof ADDRESS_VARIANTS): Record<string, string[]> {
  const { patch, env } = ADDRESS_VARIANTS[variant];
  const config = testConfig(patch, env ?? {});
  const app = Testing.app();
  const storage = new StorageStack(app, 'storage', { config });
  const node = new NodeStack(app, 'node', { config });
  const etl = new EtlStack(app, 'etl', { config, storage, node, codeHash: 'code-v1' });
  app.synth();
  const out: Record<string, string[]> = {};
  for (const stack of [storage, node, etl] as TerraformStack[]) {
    const json = JSON.parse(Testing.synth(stack)) as Record<string, any>;
    const addresses: string[] = [];
    for (const [type, byName] of Object.entries<Record<string, unknown>>(json.resource ?? {}))
      for (const name of Object.keys(byName)) addresses.push(`${type}.${name}`);
    for (const [type, byName] of Object.entries<Record<string, unknown>>(json.data ?? {}))
      for (const name of Object.keys(byName)) addresses.push(`data.${type}.${name}`);
    for (const name of Object.keys(json.output ?? {})) addresses.push(`output.${name}`);
    for (const [type, configs] of Object.entries<any[]>(json.provider ?? {}))
      for (const c of configs) addresses.push(`provider.${type}${c.alias ? `.${c.alias}` : ''}`);
    out[stack.node.id] = addresses.sort();
  }
  return out;
}
