import { EtlError } from '../errors';

/**
 * Turns what rclone printed into an error the user can act on. Pure, so each failure mode is unit-tested
 * with rclone's real wording.
 */
export class RcloneError extends EtlError {
  constructor(
    base: EtlError,
    /** What rclone printed (secrets already redacted), for callers that must tell "not found" apart. */
    readonly output: string,
  ) {
    super(base.message, base.hint, base.exitCode);
  }

  get notFound(): boolean {
    // A 404 while rclone creates its file system is Keystone not knowing the credential, not a missing object.
    if (/failed to create file system/i.test(this.output)) return false;
    return /object not found|directory not found|not found \(404\)|\b404\b|container not found/i.test(this.output);
  }
}

export function classifyRcloneFailure(stderr: string, what: string, remote: string): RcloneError {
  return new RcloneError(classify(stderr, what, remote), stderr);
}

function classify(stderr: string, what: string, remote: string): EtlError {
  const s = stderr.toLowerCase();
  if (/\b401\b|unauthori[sz]ed|authentication failed|authorization failed|the request you have made requires authentication/.test(s)) {
    return new EtlError(
      `${what}: the object store refused the application credential (401)`,
      `The credential is wrong, expired or revoked. Create a new application credential at CHI@TACC ` +
        `(Identity > Application Credentials), then redeploy 'storage' or set PERSIST_APP_CREDENTIAL_ID/SECRET. ` +
        // The load cannot tell whether the credential has access rules, so the likeliest cause on Chameleon is named.
        `If credential.accessRules is true: Chameleon's object store (Ceph RGW) probably refuses every request of ` +
        `an access-ruled credential; set credential.accessRules: false and run npx cdktf deploy storage etl.`,
    );
  }
  if (s.includes('failed to create file system') && /\b404\b/.test(s)) {
    return new EtlError(
      `${what}: the object store refused the application credential (Keystone does not know it: 404)`,
      `The credential is wrong (an unknown id), expired, deleted or revoked. Create a new application credential at CHI@TACC ` +
        `(Identity > Application Credentials), then redeploy 'storage' or set PERSIST_APP_CREDENTIAL_ID/SECRET.`,
    );
  }
  if (/\b403\b|forbidden/.test(s)) {
    return new EtlError(
      `${what}: the object store forbids this request (403)`,
      `The credential cannot reach this container: with access rules it is limited to its own container; ` +
        `check the container name, or use a credential without access rules.`,
    );
  }
  if (s.includes("response didn't have storage url and auth token")) {
    return new EtlError(
      `${what}: Keystone accepted the credential but has no object store in that region`,
      `Check the region of remote '${remote}' (CHI@TACC for Chameleon's object store).`,
    );
  }
  if (/connection refused|no such host|i\/o timeout|network is unreachable|no route to host|connection reset|dial tcp/.test(s)) {
    return new EtlError(
      `${what}: the object store or Keystone is unreachable`,
      `Check the auth URL of remote '${remote}' and the network from this machine; rerun the same command ` +
        `afterwards: an interrupted upload resumes with what is missing.`,
    );
  }
  if (/didn't find section in config file|config file .* not found.*\n.*couldn't find/i.test(stderr) || s.includes("didn't find section")) {
    return new EtlError(
      `${what}: rclone has no remote named '${remote}'`,
      `Write an rclone config with a [${remote}] section (the ETL runner delivers one), or pass --rclone-config / --remote.`,
    );
  }
  const tail = stderr.trim().split('\n').slice(-5).join('\n');
  return new EtlError(`${what} failed:\n${tail}`, 'Rerun the same command: finished uploads are not repeated.');
}
