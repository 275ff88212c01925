import { App } from 'cdktf';
import { loadConfigOrExit } from './config';
import { protectStateFiles } from './stacks/state-files';
import { EtlStack } from './stacks/etl-stack';
import { NodeStack } from './stacks/node-stack';
import { StorageStack } from './stacks/storage-stack';

// persist.config.yaml + PERSIST_* overrides, validated before anything is built (see docs/infra.md).
const config = loadConfigOrExit();
const app = new App();

const storage = new StorageStack(app, 'storage', { config }); // CHI@TACC: container + application credential
const node = new NodeStack(app, 'node', { config }); // KVM@TACC: keypair, SSH-only security group, server, floating IP
new EtlStack(app, 'etl', { config, storage, node }); // on the node: extract -> transform -> load, mount read-only

app.synth();
// Terraform writes state with the umask (0644): pre-create each state file 0600 so Terraform keeps that mode,
// and tighten any that is already group/other readable (stacks/state-files.ts). cdktf synthesizes before every
// deploy, diff and destroy, so this runs before Terraform writes anything.
for (const w of protectStateFiles(app)) process.stdout.write(`warning: ${w}\n`);
