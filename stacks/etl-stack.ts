import { TerraformOutput, TerraformStack } from 'cdktf';
import type { Construct } from 'constructs';
import { PROJECT_ROOT, type PersistConfig } from '../config';
import { EtlRun } from '../constructs/etl-run';
import { bundleSha256 } from '../etl/remote/bundle';
import { projectStateBackend } from './state-files';
import type { NodeStack } from './node-stack';
import type { StorageStack } from './storage-stack';

export interface EtlStackProps {
  config: PersistConfig;
  storage: StorageStack;
  node: NodeStack;
  /** SHA-256 of the ETL bundle; built in memory from etl/ when not given (tests pass their own). */
  codeHash?: string;
}

/**
 * Runs the ETL on the node (constructs/etl-run.ts): `cdktf deploy etl` reruns it exactly when the ETL bundle,
 * the dataset, the split options, the container or the node change. Destroying this stack deletes nothing real.
 */
export class EtlStack extends TerraformStack {
  readonly run: EtlRun;

  constructor(scope: Construct, id: string, { config, storage, node, codeHash }: EtlStackProps) {
    super(scope, id);
    projectStateBackend(this);
    this.run = new EtlRun(this, 'etl', {
      config,
      codeHash: codeHash ?? bundleSha256(PROJECT_ROOT),
      target: {
        host: node.floatingIp,
        user: node.sshUser,
        privateKeyPath: node.sshPrivateKeyPath,
        nodeId: node.instanceId,
        container: storage.containerName,
        authUrl: storage.authUrl,
        region: storage.region,
        userId: storage.userId,
        credentialId: storage.credentialId,
        rcloneConfigPath: node.cloudInit.rcloneConfigPath,
        mountPoint: node.cloudInit.mountPoint,
        remoteDir: node.cloudInit.etlDir,
      },
    });
    new TerraformOutput(this, 'etl_trigger', { value: this.run.trigger, description: 'Hash of the ETL bundle, dataset and options of the last run' });
    new TerraformOutput(this, 'data_location', {
      value: `swift://${config.chi.region}/${config.containerName}: current.json names the current version, datasets/<key>/ holds it (training/, validation/, evaluation/, maps/, raw/, manifest.json); on the node: ${node.cloudInit.mountPoint}`,
      description: 'Where the data is',
    });
    new TerraformOutput(this, 'rerun_command', {
      value: 'npm run etl:remote -- all   (one stage: extract | transform | load; add --force to redo unchanged stages)',
      description: 'Rerun the ETL on the node without touching the infrastructure',
    });
  }
}
