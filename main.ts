import { App } from 'cdktf';
import { loadConfigOrExit } from './config';
import { NodeStack } from './stacks/node-stack';
import { StorageStack } from './stacks/storage-stack';

// persist.config.yaml + PERSIST_* overrides, validated before anything is built (see docs/infra.md).
const config = loadConfigOrExit();
const app = new App();

new StorageStack(app, 'storage', { config }); // CHI@TACC: container + application credential
new NodeStack(app, 'node', { config }); // KVM@TACC: keypair, SSH-only security group, server, floating IP

app.synth();
