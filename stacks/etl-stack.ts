import { TerraformOutput } from 'cdktf';
import type { Construct } from 'constructs';
import { PROJECT_ROOT, type PersistConfig } from '../config';
import { EtlRun } from '../constructs/etl-run';
import { bundleSha256 } from '../etl/remote/bundle';
import { RUN_SPEC_FORMAT } from '../etl/remote/run-spec';
import { StackWithPinnedAddresses } from './addresses';
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
export class EtlStack extends StackWithPinnedAddresses {
  readonly run: EtlRun;

  constructor(scope: Construct, id: string, { config, storage, node, codeHash }: EtlStackProps) {
    super(scope, id);
    // The address every earlier version of this project used: a new one would rerun the ETL for nothing
    // (addresses.ts; __tests__/infra/addresses.test.ts holds the whole list).
    this.pinAddresses({ 'etl/run': 'etl_run' });
    projectStateBackend(this);
    const { etl } = config;
    this.run = new EtlRun(this, 'etl', {
      codeHash: codeHash ?? bundleSha256(PROJECT_ROOT),
      spec: {
        format: RUN_SPEC_FORMAT,
        node: {
          host: node.floatingIp,
          port: 22,
          user: node.sshUser,
          privateKeyPath: node.sshPrivateKeyPath,
          serverId: node.instanceId,
          consoleCloud: config.kvm.cloud,
        },
        layout: node.layout,
        // The name from the config, as the storage stack creates it; the credential id ties this stack to that one.
        storage: {
          container: config.containerName,
          authUrl: storage.authUrl,
          region: storage.region,
          userId: storage.userId,
          credentialId: storage.credentialId,
        },
        dataset: {
          url: etl.datasetUrl,
          ...(etl.datasetSha256 ? { sha256: etl.datasetSha256 } : {}),
          allowUnverified: etl.allowUnverified,
          seed: etl.seed,
          ratios: [etl.trainRatio, etl.validationRatio, etl.evaluationRatio],
        },
      },
    });
    new TerraformOutput(this, 'etl_trigger', {
      value: this.run.trigger,
      description: 'Hash of the ETL bundle, dataset and options of the last run',
    });
    new TerraformOutput(this, 'run_spec', {
      value: this.run.specJson,
      description: 'What the last run ran with (etl/remote/run-spec.ts); `npm run etl:remote` reruns with it',
    });
    new TerraformOutput(this, 'data_location', {
      value:
        `swift://${config.chi.region}/${config.containerName}: current.json names the current version, datasets/<key>/ ` +
        `holds it (training/, validation/, evaluation/, maps/, raw/, manifest.json); on the node: ${node.layout.mountPoint}`,
      description: 'Where the data is',
    });
    new TerraformOutput(this, 'rerun_command', {
      value: 'npm run etl:remote -- all   (one stage: extract | transform | load; add --force to redo unchanged stages)',
      description: 'Rerun the ETL on the node without touching the infrastructure',
    });
  }
}
