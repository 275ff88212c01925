/**
 * The node stack's user_data, synthesized as `cdktf synth` does, written to a file: what the VM's NoCloud seed
 * carries byte for byte. Usage: npx tsx scripts/local-vm/user-data.ts <teamId> <out-file>
 */
import { Testing } from 'cdktf';
import { writeFileSync } from 'node:fs';
import { testConfig } from '../../__tests__/infra/helpers';
import { NodeStack } from '../../stacks/node-stack';
import type { NodeCloudInitOptions } from '../../cloud-init/render';
import type { NodeLayout } from '../../etl/remote/run-spec';

export interface SynthesizedNode {
  /** openstack_compute_instance_v2.node.user_data of the synthesized JSON. */
  userData: string;
  /** What it was rendered from (login user, rclone config path, mount point, ETL dir). */
  cloudInit: NodeCloudInitOptions;
  /** The layout the etl stack's run spec carries for this node. */
  layout: NodeLayout;
  containerName: string;
}

export function synthesizedNode(teamId: string): SynthesizedNode {
  const config = testConfig({ teamId });
  const stack = new NodeStack(Testing.app(), 'node', { config });
  const json = JSON.parse(Testing.synth(stack)) as { resource: { openstack_compute_instance_v2: { node: { user_data: string } } } };
  return {
    userData: json.resource.openstack_compute_instance_v2.node.user_data,
    cloudInit: stack.cloudInit,
    layout: stack.layout,
    containerName: config.containerName,
  };
}

if (require.main === module) {
  const [teamId, out] = process.argv.slice(2);
  if (!teamId || !out) {
    process.stderr.write('usage: npx tsx scripts/local-vm/user-data.ts <teamId> <out-file>\n');
    process.exit(2);
  }
  writeFileSync(out, synthesizedNode(teamId).userData);
}
