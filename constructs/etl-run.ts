import { createHash } from 'node:crypto';
import { DataResource } from 'cdktf';
import { Construct } from 'constructs';
import type { PersistConfig } from '../config';

/**
 * What decides whether the ETL reruns through `cdktf deploy etl`: the bundle's SHA-256 (the exact file the
 * runner ships), the dataset, the split options, the container and the ETL directory.
 * Pure, so tests can show that it changes when (and only when) one of those changes. The node's server id is
 * known only at apply time; EtlRun adds it to the trigger map as a reference.
 */
export function etlTrigger(input: { config: PersistConfig; codeHash: string }): string {
  const { etl } = input.config;
  const relevant = {
    code: input.codeHash,
    datasetUrl: etl.datasetUrl,
    datasetSha256: etl.datasetSha256 ?? null,
    seed: etl.seed,
    ratios: [etl.trainRatio, etl.validationRatio, etl.evaluationRatio],
    container: input.config.containerName,
    remoteDir: etl.remoteDir,
  };
  return createHash('sha256').update(JSON.stringify(relevant)).digest('hex');
}

/** What the runner needs at apply time; tokens from the storage and node stacks. Nothing secret. */
export interface EtlRunTarget {
  host: string;
  user: string;
  privateKeyPath: string;
  /** Server id: a new server (new node) reruns the ETL. */
  nodeId: string;
  container: string;
  authUrl: string;
  region: string;
  userId?: string;
  /** Application credential id: a new credential reruns the ETL, which delivers it (the secret is not here). */
  credentialId: string;
  rcloneConfigPath: string;
  mountPoint: string;
  remoteDir: string;
}

export interface EtlRunProps {
  config: PersistConfig;
  target: EtlRunTarget;
  /** SHA-256 of the ETL bundle (etl/remote/bundle.ts bundleSha256). */
  codeHash: string;
}

export const ETL_RUN_COMMAND = 'npx tsx etl/remote-cli.ts all --from-env';

/**
 * A `terraform_data` replaced exactly when the trigger map changes; its local-exec provisioner is the rerun
 * command itself (`etl/remote-cli.ts --from-env`), so a deploy and a rerun drive the same runner.
 *
 * No secret goes into the provisioner: Terraform hides the whole output of a provisioner that has a sensitive
 * value, and the user would lose the ETL's progress. The runner reads the secret from the storage stack's state
 * (or PERSIST_APP_CREDENTIAL_SECRET) itself.
 */
export class EtlRun extends Construct {
  readonly trigger: string;
  readonly resource: DataResource;

  constructor(scope: Construct, id: string, props: EtlRunProps) {
    super(scope, id);
    const t = props.target;
    this.trigger = etlTrigger({ config: props.config, codeHash: props.codeHash });
    this.resource = new DataResource(this, 'run', {
      // The credential id (never the secret) is part of the trigger: a new credential (a new
      // credential.expiresAt replaces it, and the old one is deleted) must reach the node's rclone.conf, or the
      // mount and every later load fail with 401.
      triggersReplace: { inputs: this.trigger, container: t.container, node: t.nodeId, credential: t.credentialId },
      provisioners: [
        {
          type: 'local-exec',
          // Terraform runs this in cdktf.out/stacks/<stack>; the runner lives at the project root.
          workingDir: '../../..',
          // Forcing: `cdktf destroy etl && cdktf deploy etl` replaces this resource (nothing real is deleted);
          // PERSIST_ETL_FORCE=1 in the deploying shell reaches the runner and reruns unchanged stages too.
          // (No nonce in the trigger: a nonce that must stay set on every later deploy is a trap.)
          command: ETL_RUN_COMMAND,
          environment: {
            PERSIST_ETL_HOST: t.host,
            PERSIST_ETL_USER: t.user,
            PERSIST_ETL_PRIVATE_KEY: t.privateKeyPath,
            PERSIST_ETL_NODE_ID: t.nodeId,
            PERSIST_ETL_CONTAINER: t.container,
            PERSIST_ETL_AUTH_URL: t.authUrl,
            PERSIST_ETL_REGION: t.region,
            ...(t.userId ? { PERSIST_ETL_USER_ID: t.userId } : {}),
            PERSIST_ETL_CREDENTIAL_ID: t.credentialId,
            PERSIST_ETL_RCLONE_CONFIG: t.rcloneConfigPath,
            PERSIST_ETL_MOUNT_POINT: t.mountPoint,
            PERSIST_ETL_REMOTE_DIR: t.remoteDir,
          },
        },
      ],
    });
    this.resource.overrideLogicalId('etl_run');
  }
}
