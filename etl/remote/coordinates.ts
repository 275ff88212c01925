import { EtlError } from '../errors';
import type { SshTarget } from './ssh';

/** Where the node is and what it loads into: from the deployed stacks, the provisioner's env, or files. */
export interface NodeCoordinates {
  host: string;
  port: number;
  user: string;
  privateKeyPath: string;
  knownHostsPath?: string;
}

export interface StorageCoordinates {
  container: string;
  authUrl: string;
  region: string;
  userId?: string;
  credentialId: string;
  credentialSecret?: string;
}

type TfOutputs = Record<string, { value: unknown; sensitive?: boolean }>;

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
  return { host: need(outputs, 'floating_ip', 'node'), port: 22, user: need(outputs, 'ssh_user', 'node'), privateKeyPath };
}

/** The etl stack's provisioner passes everything as PERSIST_ETL_* variables (the secret marked sensitive). */
export function coordinatesFromEnv(env: NodeJS.ProcessEnv): { node: NodeCoordinates; storage: StorageCoordinates } {
  const get = (k: string) => {
    const v = env[k];
    if (!v) throw new EtlError(`${k} is not set`, 'This mode is for the etl stack, which sets it; run without --from-env to read the deployed stacks.');
    return v;
  };
  return {
    node: { host: get('PERSIST_ETL_HOST'), port: Number(env.PERSIST_ETL_PORT ?? 22), user: get('PERSIST_ETL_USER'), privateKeyPath: get('PERSIST_ETL_PRIVATE_KEY') },
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
      'With your own credential, export PERSIST_APP_CREDENTIAL_SECRET (and PERSIST_APP_CREDENTIAL_ID) before running.',
    );
  }
  return secret;
}

export function sshTarget(n: NodeCoordinates): SshTarget {
  return { host: n.host, port: n.port, user: n.user, privateKeyPath: n.privateKeyPath, knownHostsPath: n.knownHostsPath };
}
