import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { EtlError } from '../errors';
import { parseRunSpec, type RunSpec } from './run-spec';

// What the deployed stacks left in their local states (`terraform.<stack>.tfstate`, the project root by default,
// stacks/state-files.ts): the run spec of the last `cdktf deploy etl`, and the created credential's secret.

export type TfOutputs = Record<string, { value: unknown; sensitive?: boolean }>;

/** Where the storage stack keeps the created credential (its pinned address, stacks/storage-stack.ts). */
export const CREDENTIAL_RESOURCE = { type: 'openstack_identity_application_credential_v3', name: 'rclone' } as const;

interface StateFile {
  outputs?: TfOutputs;
  resources?: { mode?: string; type?: string; name?: string; instances?: { attributes?: Record<string, unknown> }[] }[];
}

/**
 * The outputs of a deployed stack, read from its local state `terraform.<stack>.tfstate` (the project root by
 * default, stacks/state-files.ts): the same values `terraform output -json` prints, without needing Terraform or an
 * initialised cdktf.out.
 *
 * For the storage stack, plus `credential_secret` (sensitive): the created credential's secret is deliberately
 * not an output (the etl stack's terraform_remote_state would copy it into terraform.etl.tfstate), so it is
 * read from the credential resource's attributes in this state. A state written before that change still has
 * the output, which is used as is. An empty file (synth creates each state file empty, mode 0600, so that
 * Terraform keeps that mode) is a stack not deployed yet.
 */
export function outputsFromState(stateDir: string, stack: string): TfOutputs {
  const file = stateFile(stateDir, stack);
  const state = readState(file);
  if (state === undefined) {
    const why = existsSync(file) ? `${file} is empty` : `no ${file}`;
    throw new EtlError(`the '${stack}' stack is not deployed (${why})`, `Deploy it first: npx cdktf deploy ${stack}`);
  }
  return outputsOf(state, file, stack);
}

const stateFile = (stateDir: string, stack: string) => join(stateDir, `terraform.${stack}.tfstate`);

/** The parsed state, or undefined when the stack is not deployed (no file, or the empty one synth creates). */
function readState(file: string): StateFile | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new EtlError(`cannot read ${file}: ${(e as Error).message}`);
  }
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text) as StateFile;
  } catch (e) {
    throw new EtlError(`cannot read ${file}: ${(e as Error).message}`);
  }
}

function outputsOf(state: StateFile, file: string, stack: string): TfOutputs {
  const outputs = { ...(state.outputs ?? {}) };
  if (Object.keys(outputs).length === 0) {
    // Also what a destroy leaves when Swift refused to delete the non-empty container: Terraform dropped the
    // outputs, the container and the credential are still there, and a deploy brings the outputs back.
    throw new EtlError(
      `the '${stack}' stack has no outputs in ${file} (destroyed, or a destroy that was refused?)`,
      `Deploy it: npx cdktf deploy ${stack}`,
    );
  }
  if (stack === 'storage' && outputs.credential_secret === undefined) {
    const secret = credentialSecretFromState(state);
    if (secret !== undefined) outputs.credential_secret = { value: secret, sensitive: true };
  }
  return outputs;
}

/** The created credential's secret from the storage state's resources, if the stack created one. */
function credentialSecretFromState(state: StateFile): string | undefined {
  const r = (state.resources ?? []).find(
    (x) => (x.mode ?? 'managed') === 'managed' && x.type === CREDENTIAL_RESOURCE.type && x.name === CREDENTIAL_RESOURCE.name,
  );
  const secret = r?.instances?.[0]?.attributes?.secret;
  return typeof secret === 'string' && secret ? secret : undefined;
}

/** The run spec the last `cdktf deploy etl` ran with: the etl stack's `run_spec` output (constructs/etl-run.ts). */
export function runSpecFromState(stateDir: string): RunSpec {
  const outputs = outputsFromState(stateDir, 'etl');
  const value = outputs.run_spec?.value;
  if (typeof value !== 'string' || !value) {
    throw new EtlError(
      `the 'etl' stack in ${stateFile(stateDir, 'etl')} has no run_spec output (deployed by an older version of this project?)`,
      'Deploy it again: npx cdktf deploy etl (the ETL is rerun only where something changed).',
    );
  }
  return parseRunSpec(value, `the etl stack's run_spec output (${stateFile(stateDir, 'etl')})`);
}

/**
 * The application credential the storage stack created, from its state: id and secret. Undefined when the
 * storage stack is not deployed here or created none (bring your own).
 */
export function createdCredential(stateDir: string): { id?: string; secret: string } | undefined {
  const file = stateFile(stateDir, 'storage');
  const state = readState(file);
  if (state === undefined) return undefined;
  const outputs = outputsOf(state, file, 'storage');
  const secret = outputs.credential_secret?.value;
  if (typeof secret !== 'string' || !secret) return undefined;
  const id = outputs.credential_id?.value;
  return { id: typeof id === 'string' ? id : undefined, secret };
}

/**
 * The secret of the spec's credential: the created one's from the storage state when its id is the spec's, else
 * the bring-your-own variable. Never from a command-line flag.
 */
export function resolveSecret(credentialId: string, created: { id?: string; secret: string } | undefined, env: NodeJS.ProcessEnv): string {
  if (created && (created.id === undefined || created.id === credentialId)) return created.secret;
  const secret = env.PERSIST_APP_CREDENTIAL_SECRET;
  if (!secret) {
    throw new EtlError(
      `no secret for the application credential ${credentialId}: the storage stack's state holds none for it and ` +
        `PERSIST_APP_CREDENTIAL_SECRET is not set`,
      'With your own credential, export PERSIST_APP_CREDENTIAL_SECRET (and PERSIST_APP_CREDENTIAL_ID) before running; with a ' +
        'created one, run from the project that deployed the storage stack (or set PERSIST_STATE_DIR to it).',
    );
  }
  return secret;
}
