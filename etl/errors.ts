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
