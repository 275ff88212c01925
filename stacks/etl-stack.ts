import { DataResource, TerraformOutput, TerraformStack } from 'cdktf';
import type { Construct } from 'constructs';
import type { PersistConfig } from '../config';
import { etlTrigger, hashEtlSources } from '../constructs/etl-trigger';
import { projectStateBackend } from './common';
import type { NodeStack } from './node-stack';
import type { StorageStack } from './storage-stack';

export interface EtlStackProps {
  config: PersistConfig;
  storage: StorageStack;
  node: NodeStack;
  /** Hash of the ETL code; computed from etl/ when not given (tests pass their own). */
  codeHash?: string;
  /** Any value: changing it reruns the ETL (PERSIST_ETL_RERUN). */
  rerunNonce?: string;
}

/**
 * Runs the ETL on the node: a `terraform_data` whose replacement (and so its local-exec provisioner, the same
 * runner that `npm run etl:remote` uses) is triggered exactly when the ETL code, the dataset, the split options,
 * the container or the node change. Deleting this stack deletes nothing real.
 */
export class EtlStack extends TerraformStack {
  constructor(scope: Construct, id: string, { config, storage, node, codeHash, rerunNonce }: EtlStackProps) {
    super(scope, id);
    projectStateBackend(this);
    const trigger = etlTrigger({ config, codeHash: codeHash ?? hashEtlSources(), rerunNonce: rerunNonce ?? process.env.PERSIST_ETL_RERUN });
    const run = new DataResource(this, 'etl_run', {
      triggersReplace: { inputs: trigger, container: storage.containerName, node: node.instanceId },
      provisioners: [
        {
          type: 'local-exec',
          // Terraform runs this in cdktf.out/stacks/etl; the runner lives at the project root.
          workingDir: '../../..',
          command: 'npx tsx etl/remote-cli.ts all --from-env',
          // No secret here: Terraform would hide the provisioner's whole output (the ETL's progress). The runner
          // reads the secret from the storage stack's state, or from PERSIST_APP_CREDENTIAL_SECRET.
          environment: {
            PERSIST_ETL_HOST: node.floatingIp,
            PERSIST_ETL_USER: node.sshUser,
            PERSIST_ETL_PRIVATE_KEY: config.ssh.privateKeyPath,
            PERSIST_ETL_CONTAINER: storage.containerName,
            PERSIST_ETL_AUTH_URL: storage.authUrl,
            PERSIST_ETL_REGION: storage.region,
            PERSIST_ETL_USER_ID: storage.userId,
            PERSIST_ETL_CREDENTIAL_ID: storage.credentialId,
          },
        },
      ],
    });
    run.overrideLogicalId('etl_run');
    new TerraformOutput(this, 'etl_trigger', { value: trigger, description: 'Hash of the ETL code, dataset and options of the last run' });
    new TerraformOutput(this, 'data_location', {
      value: `swift://${config.chi.region}/${config.containerName} (training/, validation/, evaluation/, maps/, raw/, manifest.json); on the node: /mnt/object`,
      description: 'Where the data is',
    });
  }
}
