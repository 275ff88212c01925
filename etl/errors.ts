import type { Logger } from './log';

/**
 * An error the user can act on. The CLI prints `message` and `hint` without a stack trace and exits with
 * `exitCode`; anything else is a bug and is printed with its stack.
 */
export class EtlError extends Error {
  constructor(
    message: string,
    readonly hint?: string,
    readonly exitCode: number = 1,
  ) {
    super(message);
    this.name = 'EtlError';
  }
}

/**
 * The exit status of a full disk, whatever stage hit it (sysexits' EX_IOERR; 75 is "locked by another run").
 * Documented in README (Troubleshooting) and docs/etl.md.
 */
export const DISK_FULL_EXIT = 74;

/** ENOSPC, as Node reports it (a code), or as text once it crossed a worker thread or another wrapper. */
export function isDiskFull(e: unknown): boolean {
  if (!e || typeof e !== 'object') return false;
  const { code, message } = e as { code?: unknown; message?: unknown };
  return code === 'ENOSPC' || (typeof message === 'string' && /ENOSPC|No space left on device/.test(message));
}

/** One message for a full disk, from any stage: what happened, where, and what to do. */
export function diskFullError(doing: string, path?: string): EtlError {
  return new EtlError(
    `disk full: no space left on device (ENOSPC) while ${doing}${path ? ` (${path})` : ''}`,
    `Free space on that filesystem (df -h${path ? ` ${path}` : ''}): delete old work directories or downloads, or use ` +
      `--work-dir on a larger disk ` +
      '(on Chameleon: a flavor with a larger disk). Then rerun: finished stages are skipped, and the published dataset is untouched.',
    DISK_FULL_EXIT,
  );
}

export function isEtlError(e: unknown): e is EtlError {
  return e instanceof EtlError;
}

/**
 * Prints an error for the user and returns the exit code: an EtlError as its message and hint; anything else
 * as a bug (with its stack when `showStack`), exit 70, or as a plain failure, exit 1.
 */
export function reportError(e: unknown, log: Logger, showStack = false): number {
  // A full disk is the user's to fix, not a bug: never "internal error" and a stack trace, wherever it came from.
  if (isDiskFull(e) && !(isEtlError(e) && e.exitCode === DISK_FULL_EXIT)) e = diskFullError('writing', diskFullPath(e));
  if (isEtlError(e)) {
    log.info(`error: ${e.message}`);
    if (e.hint) log.info(`  ${e.hint}`);
    return e.exitCode;
  }
  if (showStack) {
    log.info(`internal error: ${(e as Error).stack ?? String(e)}`);
    return 70;
  }
  log.info(`error: ${(e as Error).message ?? String(e)}`);
  return 1;
}

/** The path Node names in an ENOSPC error (`ENOSPC: no space left on device, write '...'`), if any. */
function diskFullPath(e: unknown): string | undefined {
  const path = (e as { path?: unknown }).path;
  if (typeof path === 'string') return path;
  return /ENOSPC[^']*'([^']+)'/.exec(String((e as { message?: unknown }).message ?? ''))?.[1];
}
