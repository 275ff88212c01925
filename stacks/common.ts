import { relative, resolve } from 'node:path';
import { LocalBackend, TerraformStack } from 'cdktf';
import { OpenstackProvider } from '../.gen/providers/openstack/provider';
import { PROJECT_ROOT } from '../config';

/**
 * State of every stack lives in the project root as `terraform.<stack>.tfstate` (gitignored), next to
 * persist.config.yaml, so `cdktf.out` can be deleted and regenerated at any time without losing track of what
 * exists. The path is written relative to the directory Terraform runs in (cdktf.out/stacks/<stack>), so the
 * synthesized JSON is the same on every machine.
 */
export function projectStateBackend(stack: TerraformStack, projectRoot: string = PROJECT_ROOT): LocalBackend {
  const id = stack.node.id;
  const workingDir = resolve(projectRoot, 'cdktf.out', 'stacks', id);
  return new LocalBackend(stack, { path: relative(workingDir, resolve(projectRoot, `terraform.${id}.tfstate`)) });
}

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
