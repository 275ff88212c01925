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
    /** rclone's exit status (docs: "Exit code"), when it is one rclone documents; else undefined. */
    readonly rcloneExit?: RcloneExit,
  ) {
    super(base.message, base.hint, base.exitCode);
  }

  get notFound(): boolean {
    // A 404 while rclone creates its file system is Keystone not knowing the credential, not a missing object.
    if (/failed to create file system/i.test(this.output)) return false;
    if (this.rcloneExit === RCLONE_EXIT.directoryNotFound || this.rcloneExit === RCLONE_EXIT.fileNotFound) return true;
    return /object not found|directory not found|not found \(404\)|\b404\b|container not found/i.test(this.output);
  }
}

/** rclone's documented exit statuses (rclone docs, "Exit code"). */
export const RCLONE_EXIT = {
  ok: 0,
  usage: 1,
  uncategorised: 2,
  directoryNotFound: 3,
  fileNotFound: 4,
  temporary: 5,
  lessSerious: 6,
  fatal: 7,
  transferLimit: 8,
  noTransfers: 9,
  durationLimit: 10,
} as const;
export type RcloneExit = (typeof RCLONE_EXIT)[keyof typeof RCLONE_EXIT];

/** A status rclone documents, or undefined for anything else (a signal's null, a negative, a wrapper's 127). */
export function rcloneExit(code: unknown): RcloneExit | undefined {
  return typeof code === 'number' && Number.isInteger(code) && code >= 0 && code <= 10 ? (code as RcloneExit) : undefined;
}

/**
 * What rclone printed and, when it was a process, its exit status. The text decides first (it names the cause);
 * the status decides what the text cannot: "not found" (3, 4), a temporary failure worth a rerun (5), a usage
 * error (1: this tool's bug or an rclone too old for a flag).
 */
export function classifyRcloneFailure(stderr: string, what: string, remote: string, exitCode?: number | null): RcloneError {
  const text = typeof stderr === 'string' ? stderr : String(stderr ?? '');
  const exit = rcloneExit(exitCode);
  return new RcloneError(classify(text, what, remote, exit), text, exit);
}

function classify(stderr: string, what: string, remote: string, exit: RcloneExit | undefined): EtlError {
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
  const tail = stderr.trim().split('\n').slice(-5).join('\n') || '(rclone printed nothing)';
  const status = exit === undefined ? '' : ` (rclone exit ${exit})`;
  if (exit === RCLONE_EXIT.usage) {
    return new EtlError(
      `${what}: rclone refused its command line${status}:\n${tail}`,
      `This rclone may be too old for a flag the load uses (rclone version; 1.60 or newer is needed), or it is a bug: please report it.`,
    );
  }
  if (exit === RCLONE_EXIT.directoryNotFound || exit === RCLONE_EXIT.fileNotFound) {
    return new EtlError(`${what}: not found${status}:\n${tail}`, `Check the container name and remote '${remote}'.`);
  }
  if (exit === RCLONE_EXIT.temporary) {
    return new EtlError(
      `${what} failed with a temporary error${status}:\n${tail}`,
      'Rerun the same command in a moment: finished uploads are not repeated.',
    );
  }
  return new EtlError(`${what} failed${status}:\n${tail}`, 'Rerun the same command: finished uploads are not repeated.');
}
