import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { EtlError } from '../errors';
import type { SshTarget } from './ssh';

/** Where the node is and what it loads into: from the deployed stacks, the provisioner's env, or files. */
export interface NodeCoordinates {
  host: string;
  port: number;
  user: string;
  privateKeyPath: string;
  knownHostsPath?: string;
  /** Server id, when known: each server gets its own known_hosts (a new node may reuse the floating IP). */
  instanceId?: string;
}

/** Where the node's cloud-init put things; from the node stack's outputs or options, else these defaults. */
export interface NodeLayout {
  rcloneConfigPath: string;
  mountPoint: string;
  remoteDir: string;
}

export interface StorageCoordinates {
  container: string;
  authUrl: string;
  region: string;
  userId?: string;
  credentialId: string;
  credentialSecret?: string;
}

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
  const file = join(stateDir, `terraform.${stack}.tfstate`);
  if (!existsSync(file)) {
    throw new EtlError(`the '${stack}' stack is not deployed (no ${file})`, `Deploy it first: npx cdktf deploy ${stack}`);
  }
  let state: StateFile;
  try {
    const text = readFileSync(file, 'utf8');
    if (text.trim() === '') {
      throw new EtlError(`the '${stack}' stack is not deployed (${file} is empty)`, `Deploy it first: npx cdktf deploy ${stack}`);
    }
    state = JSON.parse(text) as StateFile;
  } catch (e) {
    if (e instanceof EtlError) throw e;
    throw new EtlError(`cannot read ${file}: ${(e as Error).message}`);
  }
  const outputs = { ...(state.outputs ?? {}) };
  if (Object.keys(outputs).length === 0) {
    // Also what a destroy leaves when Swift refused to delete the non-empty container: Terraform dropped the
    // outputs, the container and the credential are still there, and a deploy brings the outputs back.
    throw new EtlError(`the '${stack}' stack has no outputs in ${file} (destroyed, or a destroy that was refused?)`, `Deploy it: npx cdktf deploy ${stack}`);
  }
  if (stack === 'storage' && outputs.credential_secret === undefined) {
    const secret = credentialSecretFromState(state);
    if (secret !== undefined) outputs.credential_secret = { value: secret, sensitive: true };
  }
  return outputs;
}

/** The created credential's secret from the storage state's resources, if the stack created one. */
function credentialSecretFromState(state: StateFile): string | undefined {
  const r = (state.resources ?? []).find((x) => (x.mode ?? 'managed') === 'managed' && x.type === CREDENTIAL_RESOURCE.type && x.name === CREDENTIAL_RESOURCE.name);
  const secret = r?.instances?.[0]?.attributes?.secret;
  return typeof secret === 'string' && secret ? secret : undefined;
}

function need(outputs: TfOutputs, name: string, stack: string): string {
  const v = outputs[name]?.value;
  if (typeof v !== 'string' || !v) {
    throw new EtlError(`the '${stack}' stack has no output '${name}'`, `Deploy it first: npx cdktf deploy ${stack}`);
  }
  return v;
}

/** `terraform output -json` of the storage stack -> coordinates (the secret only when the stack made one). */
export function storageFromOutputs(outputs: TfOutputs): StorageCoordinates {
  const secret = outputs.credential_secret?.value;
  return {
    container: need(outputs, 'container_name', 'storage'),
    authUrl: need(outputs, 'auth_url', 'storage'),
    region: need(outputs, 'region', 'storage'),
    userId: typeof outputs.user_id?.value === 'string' ? (outputs.user_id.value as string) : undefined,
    credentialId: need(outputs, 'credential_id', 'storage'),
    credentialSecret: typeof secret === 'string' ? secret : undefined,
  };
}

export function nodeFromOutputs(outputs: TfOutputs, privateKeyPath: string): NodeCoordinates {
  const id = outputs.instance_id?.value;
  return {
    host: need(outputs, 'floating_ip', 'node'),
    port: 22,
    user: need(outputs, 'ssh_user', 'node'),
    privateKeyPath,
    ...(typeof id === 'string' && id ? { instanceId: id } : {}),
  };
}

/** The node's layout: cloud-init's paths for its login user (cloud-init/render.ts defaultCloudInitOptions). */
export function defaultNodeLayout(user: string, remoteDir?: string): NodeLayout {
  const home = user === 'root' ? '/root' : `/home/${user}`;
  return { rcloneConfigPath: `${home}/.config/rclone/rclone.conf`, mountPoint: '/mnt/object', remoteDir: remoteDir ?? `${home}/chameleon-persist` };
}

/** The etl stack's provisioner passes everything as PERSIST_ETL_* variables (the secret marked sensitive). */
export function coordinatesFromEnv(env: NodeJS.ProcessEnv): { node: NodeCoordinates; storage: StorageCoordinates; layout: Partial<NodeLayout> } {
  const get = (k: string) => {
    const v = env[k];
    if (!v) throw new EtlError(`${k} is not set`, 'This mode is for the etl stack, which sets it; run without --from-env to read the deployed stacks.');
    return v;
  };
  return {
    node: {
      host: get('PERSIST_ETL_HOST'),
      port: Number(env.PERSIST_ETL_PORT ?? 22),
      user: get('PERSIST_ETL_USER'),
      privateKeyPath: get('PERSIST_ETL_PRIVATE_KEY'),
      ...(env.PERSIST_ETL_NODE_ID ? { instanceId: env.PERSIST_ETL_NODE_ID } : {}),
    },
    layout: {
      ...(env.PERSIST_ETL_RCLONE_CONFIG ? { rcloneConfigPath: env.PERSIST_ETL_RCLONE_CONFIG } : {}),
      ...(env.PERSIST_ETL_MOUNT_POINT ? { mountPoint: env.PERSIST_ETL_MOUNT_POINT } : {}),
      ...(env.PERSIST_ETL_REMOTE_DIR ? { remoteDir: env.PERSIST_ETL_REMOTE_DIR } : {}),
    },
    storage: {
      container: get('PERSIST_ETL_CONTAINER'),
      authUrl: get('PERSIST_ETL_AUTH_URL'),
      region: get('PERSIST_ETL_REGION'),
      userId: env.PERSIST_ETL_USER_ID || undefined,
      credentialId: get('PERSIST_ETL_CREDENTIAL_ID'),
      credentialSecret: env.PERSIST_ETL_CREDENTIAL_SECRET || undefined,
    },
  };
}

/** The secret: from the stack's state, else the bring-your-own variable. Never from a command-line flag. */
export function resolveSecret(storage: StorageCoordinates, env: NodeJS.ProcessEnv): string {
  const secret = storage.credentialSecret ?? env.PERSIST_APP_CREDENTIAL_SECRET;
  if (!secret) {
    throw new EtlError(
      'no application credential secret: the storage stack did not create one and PERSIST_APP_CREDENTIAL_SECRET is not set',
      'With your own credential, export PERSIST_APP_CREDENTIAL_SECRET (and PERSIST_APP_CREDENTIAL_ID) before running. ' +
        'With --outputs: `terraform output` does not carry the secret (it is not an output, so that no other state copies it); ' +
        'run without --outputs so it is read from terraform.storage.tfstate, or export PERSIST_APP_CREDENTIAL_SECRET.',
    );
  }
  return secret;
}

export function sshTarget(n: NodeCoordinates): SshTarget {
  return { host: n.host, port: n.port, user: n.user, privateKeyPath: n.privateKeyPath, knownHostsPath: n.knownHostsPath };
}
