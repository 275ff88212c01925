import { createHash } from 'node:crypto';
import { DataResource, Fn } from 'cdktf';
import { Construct } from 'constructs';
import { checkRunSpec, type RunSpec } from '../etl/remote/run-spec';

/**
 * What decides whether the ETL reruns through `cdktf deploy etl`, beside the node, the container and the
 * credential: the bundle's SHA-256 (the exact file the runner ships), the dataset, the split options and the
 * ETL directory. Pure, so tests can show that it changes when (and only when) one of those changes. The JSON
 * hashed is the one of earlier versions, field for field, so that upgrading reruns nothing.
 */
export function etlTrigger(input: { spec: RunSpec; codeHash: string }): string {
  const { dataset } = input.spec;
  const relevant = {
    code: input.codeHash,
    datasetUrl: dataset.url,
    datasetSha256: dataset.sha256 ?? null,
    seed: dataset.seed,
    ratios: dataset.ratios,
    container: input.spec.storage.container,
    remoteDir: input.spec.layout.remoteDir,
  };
  return createHash('sha256').update(JSON.stringify(relevant)).digest('hex');
}

export interface EtlRunProps {
  /**
   * Everything the run needs (etl/remote/run-spec.ts); values known only at apply time (the node's address and
   * server id, the credential id) are tokens. Holds no secret.
   */
  readonly spec: RunSpec;
  /** SHA-256 of the ETL bundle (etl/remote/bundle.ts bundleSha256). */
  readonly codeHash: string;
}

export const ETL_RUN_COMMAND = 'npx tsx etl/remote-cli.ts all --from-env';

/**
 * A `terraform_data` replaced exactly when the trigger map changes; its local-exec provisioner is the rerun
 * command itself (`etl/remote-cli.ts --from-env`), so a deploy and a rerun drive the same runner, with the run
 * spec as one JSON value (`PERSIST_ETL_SPEC`), resolved by Terraform's `jsonencode`.
 *
 * No secret goes into the provisioner: Terraform hides the whole output of a provisioner that has a sensitive
 * value, and the user would lose the ETL's progress. The runner reads the secret from the storage stack's state
 * (or PERSIST_APP_CREDENTIAL_SECRET) itself.
 */
export class EtlRun extends Construct {
  readonly trigger: string;
  /** The spec as Terraform resolves it: a JSON string at apply time (also the etl stack's `run_spec` output). */
  readonly specJson: string;
  readonly resource: DataResource;

  constructor(scope: Construct, id: string, props: EtlRunProps) {
    super(scope, id);
    // Tokens are strings without control characters, so they pass; every value known now is checked now.
    const spec = checkRunSpec(props.spec, `the etl stack (${this.node.path})`);
    this.trigger = etlTrigger({ spec, codeHash: props.codeHash });
    this.specJson = Fn.jsonencode(spec);
    this.resource = new DataResource(this, 'run', {
      // The credential id (never the secret) is part of the trigger: a new credential (a new
      // credential.expiresAt replaces it, and the old one is deleted) must reach the node's rclone.conf, or the
      // mount and every later load fail with 401.
      triggersReplace: {
        inputs: this.trigger,
        container: spec.storage.container,
        node: spec.node.serverId ?? spec.node.host,
        credential: spec.storage.credentialId,
      },
      provisioners: [
        {
          type: 'local-exec',
          // Terraform runs this in cdktf.out/stacks/<stack>; the runner lives at the project root.
          workingDir: '../../..',
          // Forcing: `cdktf destroy etl && cdktf deploy etl` replaces this resource (nothing real is deleted);
          // PERSIST_ETL_FORCE=1 in the deploying shell reaches the runner and reruns unchanged stages too.
          // (No nonce in the trigger: a nonce that must stay set on every later deploy is a trap.)
          command: ETL_RUN_COMMAND,
          environment: { PERSIST_ETL_SPEC: this.specJson },
        },
      ],
    });
  }
}
