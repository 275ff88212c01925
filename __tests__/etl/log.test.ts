import { stderrLogger } from '../../etl/log';

function sink(isTTY: boolean) {
  const out: string[] = [];
  return { out, stream: { isTTY, write: (s: string) => out.push(s) > 0 } };
}

describe('progress output', () => {
  it('off a terminal, progress is thinned to one line per interval, and messages are never dropped', () => {
    let t = 0;
    const { out, stream } = sink(false);
    const log = stderrLogger(stream, { plainIntervalMs: 1000, now: () => t });
    for (let i = 0; i <= 100; i++) {
      t = i * 50; // 5 s of progress, a line every 50 ms
      log.progress(`pass 1: ${i}%`);
    }
    log.info('done');
    expect(out).toEqual(['pass 1: 0%\n', 'pass 1: 20%\n', 'pass 1: 40%\n', 'pass 1: 60%\n', 'pass 1: 80%\n', 'pass 1: 100%\n', 'done\n']);
  });

  it('on a terminal, every update redraws one line, ended before the next message', () => {
    const { out, stream } = sink(true);
    const log = stderrLogger(stream);
    log.progress('a 1%');
    log.progress('a 2%');
    log.warn('careful');
    expect(out.join('')).toBe('\r\x1b[2Ka 1%\r\x1b[2Ka 2%\nwarning: careful\n');
  });
});
