import { App } from 'cdktf';
import { loadConfigOrExit } from './config';
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
