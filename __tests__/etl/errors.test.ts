import { EtlError, reportError } from '../../etl/errors';
import { memoryLogger } from '../../etl/log';

describe('reportError', () => {
  it('prints a user error as message and hint, without a stack, and returns its exit code', () => {
    const log = memoryLogger();
    expect(reportError(new EtlError('the node is locked', 'wait, or --break-lock', 75), log)).toBe(75);
    expect(log.lines).toEqual(['error: the node is locked', '  wait, or --break-lock']);
  });

  it('prints a bug with its stack (exit 70) where asked, else as a plain failure (exit 1)', () => {
    const log = memoryLogger();
    expect(reportError(new TypeError('boom'), log, true)).toBe(70);
    expect(log.lines[0]).toMatch(/^internal error: TypeError: boom\n\s+at /);
    expect(reportError(new Error('no such file'), log)).toBe(1);
    expect(log.lines[1]).toBe('error: no such file');
  });
});
