import { EtlError } from '../errors';

export interface RcloneRemote {
  /** The remote's name in rclone.conf (the run spec's layout.remoteName). */
  name: string;
  authUrl: string;
  region: string;
  userId?: string;
  credentialId: string;
  credentialSecret: string;
}

/**
 * The rclone config a Chameleon user writes by hand in the tutorial, for one remote. A value with a line break
 * would add a line of its own (`auth = <another Keystone>` wins over ours): the config check refuses such values
 * already, and this refuses them again whatever path they came by (a state file, an outputs file, the env).
 */
export function renderRcloneConf(r: RcloneRemote): string {
  const fields: Array<[string, string | undefined]> = [
    ['remote name', r.name],
    ['user id', r.userId],
    ['application credential id', r.credentialId],
    ['application credential secret', r.credentialSecret],
    ['Keystone URL (auth)', r.authUrl],
    ['region', r.region],
  ];
  for (const [what, value] of fields) {
    // The value itself is not shown: one of them is the secret.
    if (value !== undefined && /[\p{Cc}\u2028\u2029]/u.test(value)) {
      throw new EtlError(
        `the ${what} for rclone.conf contains a line break or another control character; it would inject lines into ` +
          `rclone.conf, so nothing was written`,
        "Check where it comes from: chi.authUrl / chi.region in persist.config.yaml, the storage stack's outputs " +
          '(terraform.storage.tfstate or --outputs), or PERSIST_APP_CREDENTIAL_*; remove the line break and rerun.',
      );
    }
  }
  if (/[[\]]/.test(r.name))
    throw new EtlError(
      `the rclone remote name ${JSON.stringify(r.name)} contains "[" or "]"`,
      'Use a plain name of letters, digits, _ . and -.',
    );
  const lines = [
    `[${r.name}]`,
    'type = swift',
    ...(r.userId ? [`user_id = ${r.userId}`] : []),
    `application_credential_id = ${r.credentialId}`,
    `application_credential_secret = ${r.credentialSecret}`,
    `auth = ${r.authUrl}`,
    `region = ${r.region}`,
  ];
  return `${lines.join('\n')}\n`;
}
