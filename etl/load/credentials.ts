/**
 * The load's credentials: the application credential from ETL_* variables becomes rclone's own environment
 * config for its child process only (never argv), and every secret rclone could echo is known for redaction.
 */
/** Credentials from the environment become rclone's own env config for this child only, never argv. */
export function rcloneEnvFromEtlEnv(remote: string, env: NodeJS.ProcessEnv): { env: Record<string, string>; secrets: string[] } {
  const id = env.ETL_APP_CREDENTIAL_ID;
  const secret = env.ETL_APP_CREDENTIAL_SECRET;
  if (!id || !secret) return { env: {}, secrets: [] };
  const prefix = `RCLONE_CONFIG_${remote.toUpperCase().replace(/[^A-Z0-9]/g, '_')}_`;
  const out: Record<string, string> = {
    [`${prefix}TYPE`]: 'swift',
    [`${prefix}APPLICATION_CREDENTIAL_ID`]: id,
    [`${prefix}APPLICATION_CREDENTIAL_SECRET`]: secret,
  };
  if (env.ETL_AUTH_URL) out[`${prefix}AUTH`] = env.ETL_AUTH_URL;
  if (env.ETL_REGION) out[`${prefix}REGION`] = env.ETL_REGION;
  if (env.ETL_USER_ID) out[`${prefix}USER_ID`] = env.ETL_USER_ID;
  // An object-store endpoint other than the one in Keystone's catalog (rclone's storage_url).
  if (env.ETL_STORAGE_URL) out[`${prefix}STORAGE_URL`] = env.ETL_STORAGE_URL;
  return { env: out, secrets: [secret] };
}

/** Secrets written in an rclone config file, so they can be redacted from rclone's own messages too. */
export function secretsInRcloneConfig(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*(application_credential_secret|key|password|secret_access_key)\s*=\s*(.+?)\s*$/.exec(line);
    if (m) out.push(m[2]);
  }
  return out;
}
