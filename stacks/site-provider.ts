import type { TerraformStack } from 'cdktf';
import { OpenstackProvider } from '../.gen/providers/openstack/provider';

/** Aliases of the provider configurations; every OpenStack block of a stack names one explicitly. */
export const CHI_PROVIDER_ALIAS = 'chi_tacc';
export const KVM_PROVIDER_ALIAS = 'kvm_tacc';

/**
 * An OpenStack provider configuration for one Chameleon site, chosen by its clouds.yaml entry. It is aliased
 * so that each block says which site it lives on: CHI@TACC and KVM@TACC have separate Keystones, and a block
 * that silently fell back to a default (OS_* variables) provider could be created on the wrong site.
 */
export function siteProvider(stack: TerraformStack, alias: string, cloud: string, region: string): OpenstackProvider {
  return new OpenstackProvider(stack, `openstack_${alias}`, { alias, cloud, region });
}
