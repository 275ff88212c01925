import { parseCombined } from '../../etl/load/container-ops';

describe('parseCombined: what the container holds under each local file name', () => {
  it('sorts rclone check --combined lines into same, new and changed', () => {
    const out = '= maps/users.tsv\n+ training/t.txt\n* maps/items.tsv\n! evaluation/e.txt\n- only/in/container.txt\n';
    expect(parseCombined(out, ['maps/users.tsv', 'training/t.txt', 'maps/items.tsv', 'evaluation/e.txt'])).toEqual({
      same: ['maps/users.tsv'],
      missing: ['training/t.txt'],
      // Not comparable is handled as changed: staged and verified before it replaces anything.
      differ: ['maps/items.tsv', 'evaluation/e.txt'],
    });
  });

  it('a local file rclone did not report is treated as changed, never written in place', () => {
    expect(parseCombined('+ a.txt\n', ['a.txt', 'b.txt'])).toEqual({ same: [], missing: ['a.txt'], differ: ['b.txt'] });
  });

  it('names with spaces survive', () => {
    expect(parseCombined('+ raw/ml x/README copy.txt\n', ['raw/ml x/README copy.txt']).missing).toEqual(['raw/ml x/README copy.txt']);
  });

  it('refuses output in a format it does not know', () => {
    expect(() => parseCombined('maps/users.tsv: OK\n', ['maps/users.tsv'])).toThrow(/unexpected line/);
    expect(() => parseCombined('?? x\n', ['x'])).toThrow(/unexpected line/);
  });
});
