/**
 * Every configuration field in one table: where it lives in `persist.config.yaml`, the environment variable
 * that overrides it, its default and what it means. The parser, the error messages and the reference table in
 * docs/infra.md all come from here (a test checks the docs list every field).
 */

export type FieldKind = 'string' | 'boolean' | 'number';

export interface FieldSpec {
  /** Dotted path in the YAML file, e.g. `ssh.allowedCidr`. */
  path: string;
  kind: FieldKind;
  /** Shown in the docs; `undefined` means required or derived (see `meaning`). */
  default?: string | number | boolean;
  meaning: string;
  /** How to fix a bad value; appended to every error about this field. */
  hint: string;
}

export const ENV_PREFIX = 'PERSIST_';

/** `ssh.allowedCidr` -> `PERSIST_SSH_ALLOWED_CIDR` */
export function envNameFor(path: string): string {
  return (
    ENV_PREFIX +
    path
      .split('.')
      .map((part) => part.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase())
      .join('_')
  );
}

/** Bring-your-own application credential: environment only, never read from (or written to) a file. */
export const BYO_CREDENTIAL_ID_ENV = 'PERSIST_APP_CREDENTIAL_ID';
export const BYO_CREDENTIAL_SECRET_ENV = 'PERSIST_APP_CREDENTIAL_SECRET';
/** Points the loader at another config file (default: persist.config.yaml in the project root). */
export const CONFIG_FILE_ENV = 'PERSIST_CONFIG_FILE';

export const CHI_TACC_AUTH_URL = 'https://chi.tacc.chameleoncloud.org:5000/v3';
export const DEFAULT_DATASET_URL = 'https://files.grouplens.org/datasets/movielens/ml-32m.zip';

export const FIELDS: readonly FieldSpec[] = [
  {
    path: 'teamId',
    kind: 'string',
    meaning: 'Your team or project id; names the container `object-persist-<teamId>` and every resource.',
    hint: 'use 1-48 lowercase letters, digits, "-" or "_", starting with a letter or digit, e.g. teamId: proj99',
  },
  {
    path: 'chi.cloud',
    kind: 'string',
    default: 'chi_tacc',
    meaning: 'The `clouds.yaml` entry that logs in to CHI@TACC (object store, application credential).',
    hint: 'use the name of the CHI@TACC entry under `clouds:` in your clouds.yaml',
  },
  {
    path: 'chi.region',
    kind: 'string',
    default: 'CHI@TACC',
    meaning: 'Region of the object store; also written to rclone.conf.',
    hint: 'CHI@TACC for Chameleon; the region_name of the CHI@TACC entry in clouds.yaml',
  },
  {
    path: 'chi.authUrl',
    kind: 'string',
    default: CHI_TACC_AUTH_URL,
    meaning:
      'Keystone URL of CHI@TACC, written to rclone.conf (`auth`). Must match the clouds.yaml entry. https; plain http only ' +
      'to a loopback address (a local test Keystone).',
    hint: `an https:// URL ending in /v3, e.g. ${CHI_TACC_AUTH_URL}`,
  },
  {
    path: 'kvm.cloud',
    kind: 'string',
    default: 'kvm_tacc',
    meaning: 'The `clouds.yaml` entry that logs in to KVM@TACC (the node). A separate Keystone from CHI@TACC.',
    hint: 'use the name of the KVM@TACC entry under `clouds:` in your clouds.yaml',
  },
  {
    path: 'kvm.region',
    kind: 'string',
    default: 'KVM@TACC',
    meaning: 'Region of the node.',
    hint: 'KVM@TACC for Chameleon; the region_name of the KVM@TACC entry in clouds.yaml',
  },
  {
    path: 'credential.expiresAt',
    kind: 'string',
    meaning:
      'Required. When the application credential expires: a date (`2026-05-31`, meaning 23:59:59 UTC that day) ' +
      'or an ISO 8601 time with a zone (`2026-05-31T12:00:00Z`). Must be in the future.',
    hint: 'set credential.expiresAt to a future date such as 2026-05-31 (quote it in YAML) or PERSIST_CREDENTIAL_EXPIRES_AT',
  },
  {
    path: 'credential.accessRules',
    kind: 'boolean',
    default: false,
    meaning:
      'Opt-in: limit the created credential to `object-store` requests on the container (Keystone access rules). ' +
      'Not verified on Chameleon.',
    hint: 'true or false',
  },
  {
    path: 'ssh.publicKeyPath',
    kind: 'string',
    meaning: 'Public key uploaded as a new keypair `persist-<teamId>`. Set this or `ssh.keypairName`, not both. `~` is expanded.',
    hint: 'set ssh.publicKeyPath to a .pub file (e.g. ~/.ssh/id_ed25519.pub), or ssh.keypairName to an existing KVM@TACC keypair',
  },
  {
    path: 'ssh.keypairName',
    kind: 'string',
    meaning: 'Name of an existing KVM@TACC keypair to use instead of uploading `ssh.publicKeyPath`.',
    hint: 'the name shown by `openstack --os-cloud kvm_tacc keypair list`',
  },
  {
    path: 'ssh.privateKeyPath',
    kind: 'string',
    meaning: 'Private key the ETL stage logs in with. Default: `ssh.publicKeyPath` without `.pub`; required with `ssh.keypairName`.',
    hint: 'set ssh.privateKeyPath to the private half of the node keypair, e.g. ~/.ssh/id_ed25519',
  },
  {
    path: 'ssh.user',
    kind: 'string',
    default: 'cc',
    meaning: 'Login user of the image (`cc` on Chameleon images); owns the mount and the rclone config.',
    hint: 'a Linux user name such as cc',
  },
  {
    path: 'ssh.allowedCidr',
    kind: 'string',
    meaning: 'Required. The only source network allowed to reach SSH (port 22) on the node, e.g. your address /32.',
    hint: 'set ssh.allowedCidr to a network such as 203.0.113.7/32 (your public address: `curl -s ifconfig.me`)',
  },
  {
    path: 'node.image',
    kind: 'string',
    default: 'CC-Ubuntu24.04',
    meaning: 'Image name. The cloud-config assumes Ubuntu 24.04 (its `nodejs` package is 18.x).',
    hint: 'an image name from `openstack --os-cloud kvm_tacc image list`, e.g. CC-Ubuntu24.04',
  },
  {
    path: 'node.flavor',
    kind: 'string',
    default: 'm1.medium',
    meaning: 'Flavor name, used only when `node.reservationId` is not set (sites without reservations).',
    hint: 'a flavor name such as m1.small, m1.medium or m1.large',
  },
  {
    path: 'node.reservationId',
    kind: 'string',
    meaning:
      'Reservation id of a KVM@TACC lease (`resource_type=flavor:instance`); the server boots with ' +
      '`flavor_id = <reservation id>`. Required when `kvm.region` is KVM@TACC.',
    hint:
      'create a lease (`openstack --os-cloud kvm_tacc reservation lease create --reservation ' +
      'resource_type=flavor:instance,flavor_id=<m1.medium id>,amount=1 --start-date now --end-date "<date>" my-lease`) ' +
      'and set node.reservationId to the id under `reservations` in `openstack reservation lease show my-lease`',
  },
  {
    path: 'node.network',
    kind: 'string',
    default: 'sharednet1',
    meaning: 'Network the node port is created on.',
    hint: 'a network name from `openstack --os-cloud kvm_tacc network list`, e.g. sharednet1',
  },
  {
    path: 'node.floatingIpPool',
    kind: 'string',
    default: 'public',
    meaning: 'External network the floating IP is allocated from.',
    hint: 'the external network name, `public` on Chameleon',
  },
  {
    path: 'storage.allowDestroyNonEmptyContainer',
    kind: 'boolean',
    default: false,
    meaning:
      'If true, `cdktf destroy storage` deletes the container WITH ITS DATA (Terraform `force_destroy`). ' +
      'If false, destroying a non-empty container fails and the data stays.',
    hint: 'true or false; leave false unless you really want destroy to delete the dataset',
  },
  {
    path: 'etl.datasetUrl',
    kind: 'string',
    default: DEFAULT_DATASET_URL,
    meaning: 'MovieLens zip the ETL downloads (on the node).',
    hint: 'an http(s) URL of a MovieLens zip, e.g. https://files.grouplens.org/datasets/movielens/ml-latest-small.zip',
  },
  {
    path: 'etl.datasetSha256',
    kind: 'string',
    meaning: 'Optional SHA-256 of the zip; the download is rejected when it differs.',
    hint: '64 hexadecimal characters (`sha256sum file.zip`), or leave it unset',
  },
  {
    path: 'etl.allowUnverified',
    kind: 'boolean',
    default: false,
    meaning:
      'If true, a dataset with no `etl.datasetSha256` and no `<url>.md5` published beside it is accepted on its size ' +
      'alone. If false, the extract stage stops there.',
    hint: 'true or false; better: pin the zip with etl.datasetSha256 (sha256sum file.zip)',
  },
  {
    path: 'etl.seed',
    kind: 'number',
    default: 42,
    meaning: 'Seed of the train/validation/evaluation split (same seed, same split).',
    hint: 'a non-negative integer',
  },
  {
    path: 'etl.trainRatio',
    kind: 'number',
    default: 0.7,
    meaning: 'Share of ratings in `training/`.',
    hint: 'a number between 0 and 1; the three ratios must add up to 1',
  },
  {
    path: 'etl.validationRatio',
    kind: 'number',
    default: 0.15,
    meaning: 'Share of ratings in `validation/`.',
    hint: 'a number between 0 and 1; the three ratios must add up to 1',
  },
  {
    path: 'etl.evaluationRatio',
    kind: 'number',
    default: 0.15,
    meaning: 'Share of ratings in `evaluation/`.',
    hint: 'a number between 0 and 1; the three ratios must add up to 1',
  },
  {
    path: 'etl.remoteDir',
    kind: 'string',
    default: '/home/cc/chameleon-persist',
    meaning: 'Directory on the node the ETL bundle is shipped to and runs in.',
    hint: 'an absolute path on the node, e.g. /home/cc/chameleon-persist',
  },
];

export const FIELD_BY_PATH: ReadonlyMap<string, FieldSpec> = new Map(FIELDS.map((f) => [f.path, f]));
