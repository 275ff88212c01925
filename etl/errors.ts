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

export function isEtlError(e: unknown): e is EtlError {
  return e instanceof EtlError;
}

/**
 * Prints an error for the user and returns the exit code: an EtlError as its message and hint; anything else
 * as a bug (with its stack when `showStack`), exit 70, or as a plain failure, exit 1.
 */
export function reportError(e: unknown, log: Logger, showStack = false): number {
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
