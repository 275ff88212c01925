import type { Construct } from 'constructs';
import { TerraformOutput } from 'cdktf';
import { DataOpenstackIdentityAuthScopeV3 } from '../.gen/providers/openstack/data-openstack-identity-auth-scope-v3';
import type { IdentityApplicationCredentialV3 } from '../.gen/providers/openstack/identity-application-credential-v3';
import { ObjectstorageContainerV1 } from '../.gen/providers/openstack/objectstorage-container-v1';
import type { PersistConfig } from '../config';
import { ApplicationCredential, type AccessRule } from '../constructs/application-credential';
import { StackWithPinnedAddresses } from './addresses';
import { CHI_PROVIDER_ALIAS, siteProvider } from './site-provider';
import { projectStateBackend } from './state-files';

/**
 * Keystone access rules for rclone's credential (`credential.accessRules: true`): exactly what the load stage
 * (etl/load) and the read-only mount do, nothing on the container itself beyond reading it.
 *
 * - The container path: GET (listings: rclone ls/check/copy compare against it) and HEAD (rclone's `mkdir`
 *   checks that the container exists; the storage stack created it). No PUT and no POST there: either one
 *   sets container metadata, including the ACLs `X-Container-Read` / `X-Container-Write`, so a holder of the
 *   credential could make the dataset world-readable or writable. No DELETE: the container is the stack's.
 * - Objects (`<container>/**`): GET, HEAD (compare, verify, read the manifest and the load lock), PUT (uploads,
 *   the lock's conditional create), DELETE (staging cleanup, --prune, releasing the lock). No POST (object
 *   metadata): rclone copies with --checksum and never sets metadata afterwards (a rerun of an unchanged load
 *   is tested with these rules). Swift's COPY cannot be allowed by Keystone at all; the load falls back to
 *   uploading.
 * - `<container>_segments`: where rclone puts the parts of objects over 5 GiB. Reading and writing its objects
 *   are allowed, but not creating that container (again: PUT on a container path can set its ACLs). The
 *   dataset's objects are far below 5 GiB; for larger ones create `<container>_segments` once yourself.
 *
 * `projectId` may be a token (the auth scope's project id).
 */
export function containerAccessRules(projectId: string, container: string): AccessRule[] {
  const containerPath = `/v1/AUTH_${projectId}/${container}`;
  const segmentsPath = `${containerPath}_segments`;
  const rule = (method: AccessRule['method'], path: string): AccessRule => ({ service: 'object-store', method, path });
  return [
    ...(['GET', 'HEAD'] as const).flatMap((m) => [rule(m, containerPath), rule(m, segmentsPath)]),
    ...(['GET', 'HEAD', 'PUT', 'DELETE'] as const).flatMap((m) => [rule(m, `${containerPath}/**`), rule(m, `${segmentsPath}/**`)]),
  ];
}

export interface StorageStackProps {
  /** The validated configuration (config/loadConfig). */
  readonly config: PersistConfig;
}

/**
 * CHI@TACC: the persistent Swift container and the application credential rclone uses to reach it.
 *
 * With PERSIST_APP_CREDENTIAL_ID / PERSIST_APP_CREDENTIAL_SECRET set ("bring your own credential") no credential
 * is created and the secret is not part of this stack at all: `credentialSecret` is undefined and whoever needs
 * it (the ETL runner) reads it from the environment variable named by `credentialSecretEnv`.
 */
export class StorageStack extends StackWithPinnedAddresses {
  /** `object-persist-<teamId>`, as a reference to the container (a dependency on it). */
  readonly containerName: string;
  /** Keystone of CHI@TACC (rclone's `auth`). */
  readonly authUrl: string;
  /** CHI@TACC region (rclone's `region`). */
  readonly region: string;
  /** Id of the user deploying (rclone's `user_id`), from openstack_identity_auth_scope_v3. */
  readonly userId: string;
  readonly projectId: string;
  /** The created credential's id, or the id given in PERSIST_APP_CREDENTIAL_ID. */
  readonly credentialId: string;
  /**
   * The created credential's secret (a sensitive token resolved from the state; not an output, so no other
   * stack's state copies it), or undefined when the user brought their own: then it is only in the environment
   * variable `credentialSecretEnv`.
   */
  readonly credentialSecret: string | undefined;
  /** Set when the secret must be read from the environment (bring-your-own credential). */
  readonly credentialSecretEnv: string | undefined;
  readonly credentialSource: 'created' | 'existing';
  readonly container: ObjectstorageContainerV1;
  readonly credential: IdentityApplicationCredentialV3 | undefined;

  constructor(scope: Construct, id: string, props: StorageStackProps) {
    super(scope, id);
    // Fixed addresses in the state (see addresses.ts): refactoring must never look like "delete this container
    // (or the credential), create another one".
    const { config } = props;
    this.pinAddresses({
      auth_scope: 'current',
      container: 'container',
      ...(config.credential.existing ? {} : { 'rclone/resource': 'rclone' }),
    });
    projectStateBackend(this);
    const provider = siteProvider(this, CHI_PROVIDER_ALIAS, config.chi.cloud, config.chi.region);

    const scopeInfo = new DataOpenstackIdentityAuthScopeV3(this, 'auth_scope', { provider, name: 'current' });

    const existing = config.credential.existing;
    const credential = new ApplicationCredential(
      this,
      'rclone',
      existing
        ? { kind: 'existing', id: existing.id, secretEnv: existing.secretEnv }
        : {
            kind: 'created',
            provider,
            name: `persist-${config.teamId}-rclone`,
            description: `rclone access to ${config.containerName} (chameleon-persist storage stack)`,
            expiresAt: config.credential.expiresAt,
            ...(config.credential.accessRules ? { accessRules: containerAccessRules(scopeInfo.projectId, config.containerName) } : {}),
          },
    );
    this.credential = credential.resource;
    this.credentialId = credential.credentialId;
    this.credentialSecret = credential.secret;
    this.credentialSecretEnv = credential.secretEnv;
    this.credentialSource = credential.source;

    this.container = new ObjectstorageContainerV1(this, 'container', {
      provider,
      name: config.containerName,
      region: config.chi.region,
      // false (default): Swift refuses to delete a container that still holds objects, so `cdktf destroy
      // storage` fails at this resource and the data stays. true: destroy deletes every object first.
      forceDestroy: config.storage.allowDestroyNonEmptyContainer,
      metadata: { 'managed-by': 'chameleon-persist', team: config.teamId },
      // Only for the order of a destroy: Terraform deletes the container before the credential, so when Swift
      // refuses to delete a non-empty container the destroy stops there and the credential is kept too.
      ...(this.credential ? { dependsOn: [this.credential] } : {}),
    });

    this.containerName = this.container.name;
    this.authUrl = config.chi.authUrl;
    this.region = config.chi.region;
    this.userId = scopeInfo.userId;
    this.projectId = scopeInfo.projectId;

    const out = (name: string, value: string, description: string, sensitive = false) =>
      new TerraformOutput(this, name, { value, description, sensitive });
    out('container_name', this.containerName, 'Swift container holding the dataset');
    out('auth_url', this.authUrl, "Keystone URL of CHI@TACC (rclone's auth)");
    out('region', this.region, "Region of the object store (rclone's region)");
    out('user_id', this.userId, "Id of the deploying user (rclone's user_id)");
    out('project_id', this.projectId, 'Project the container belongs to');
    out('credential_id', this.credentialId, "Application credential id (rclone's application_credential_id)");
    out('credential_source', this.credentialSource, 'created by this stack, or existing (PERSIST_APP_CREDENTIAL_ID)');
    out('credential_expires_at', config.credential.expiresAt, 'When the application credential expires');
    // No `credential_secret` output: the etl stack reads this stack through terraform_remote_state, which copies
    // every output into terraform.etl.tfstate, so an output would put the secret in a second state file (and its
    // backup). The secret stays in this stack's resource attributes; the ETL runner reads it from there
    // (etl/remote/stack-state.ts createdCredential).
  }
}
