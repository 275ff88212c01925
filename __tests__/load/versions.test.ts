import { datasetKey } from '../../etl/load/lineage';
import {
  EMPTY_POINTER,
  fileListText,
  nameProblem,
  objectNames,
  parseLsjson,
  parsePointer,
  publish,
  retired,
  versionPrefix,
  versionProblems,
  withPending,
  type Pointer,
} from '../../etl/load/versions';

const K = (c: string) => c.repeat(16);
const rec = (key: string, at = '2026-12-01T00:00:00Z') => ({ key, publishedAt: at, objects: ['training/t.txt', 'manifest.json'] });

describe('dataset versions (pure)', () => {
  it("the dataset key is a known function of the objects' names and SHA-256s (golden value)", () => {
    // sha256 of [["a","01"],["b","02"]] as stable JSON, first 16 hex digits.
    expect(
      datasetKey([
        { name: 'a', sha256: '01' },
        { name: 'b', sha256: '02' },
      ]),
    ).toBe('9ea10cdcceba4ffa');
    expect(
      datasetKey([
        { name: 'a', sha256: '01' },
        { name: 'b', sha256: '03' },
      ]),
    ).not.toBe('9ea10cdcceba4ffa');
  });

  it('publishing makes the new version current, keeps the previous one, and retires what falls beyond --keep', () => {
    let p: Pointer = EMPTY_POINTER;
    p = withPending(p, K('a'), ['x'], 't0');
    expect(p.pending).toEqual([{ key: K('a'), since: 't0', objects: ['x'] }]);
    p = publish(p, rec(K('a')), 2);
    expect(p).toMatchObject({ current: K('a'), pending: [], retiring: [] });
    p = publish(withPending(p, K('b'), ['y'], 't1'), rec(K('b')), 2);
    expect(p.versions.map((v) => v.key)).toEqual([K('b'), K('a')]);
    expect(p.retiring).toEqual([]);
    p = publish(p, rec(K('c')), 2);
    expect(p.versions.map((v) => v.key)).toEqual([K('c'), K('b')]);
    expect(p.retiring.map((r) => r.key)).toEqual([K('a')]);
    expect(objectNames(p.retiring[0])).toEqual([`datasets/${K('a')}/training/t.txt`, `datasets/${K('a')}/manifest.json`]);
    expect(retired(p).retiring).toEqual([]);
  });

  it('an abandoned upload (pending, never published) is retired by the next publish; a pending key that is published is not', () => {
    let p = publish(EMPTY_POINTER, rec(K('a')), 2);
    p = withPending(p, K('d'), ['d1'], 't');
    p = withPending(p, K('b'), ['b1'], 't');
    p = publish(p, rec(K('b')), 2);
    expect(p.pending).toEqual([]);
    expect(p.retiring).toEqual([{ key: K('d'), publishedAt: '', objects: ['d1'] }]);
  });

  it('a published version being repaired is not recorded as pending again', () => {
    const p = publish(EMPTY_POINTER, rec(K('a')), 2);
    expect(withPending(p, K('a'), ['x'], 't')).toBe(p);
  });

  it('refuses --keep below 1 and keys that are not ours', () => {
    expect(() => publish(EMPTY_POINTER, rec(K('a')), 0)).toThrow(/keep must be a whole number >= 1/);
    expect(() => versionPrefix('../x')).toThrow(/not a dataset version key/);
  });

  it('reads its own pointer and refuses one it does not understand, instead of guessing what to delete', () => {
    const p = publish(EMPTY_POINTER, rec(K('a')), 2);
    expect(parsePointer(JSON.stringify(p))).toEqual(p);
    expect(parsePointer('')).toBeUndefined();
    expect(() => parsePointer('{')).toThrow('current.json is not JSON');
    expect(() => parsePointer(JSON.stringify({ ...p, format: 2 }))).toThrow('current.json has format 2, this tool reads 1');
    expect(() => parsePointer(JSON.stringify({ ...p, versions: [{ key: '../etc', objects: [] }] }))).toThrow(
      /a versions entry is malformed/,
    );
    expect(() => parsePointer(JSON.stringify({ ...p, current: K('f') }))).toThrow(/current f+ is not the newest version/);
    expect(() => parsePointer(JSON.stringify({ ...p, versions: 'x' }))).toThrow(/versions is not a list/);
  });

  it('a version is complete only when every object is listed with its size and MD5', () => {
    const expected = [
      { name: 'a', bytes: 1, md5: 'm1' },
      { name: 'b', bytes: 2 },
      { name: 'c', bytes: 3 },
      { name: 'd', bytes: 4 },
    ];
    const listing = [
      { name: 'a', bytes: 1, md5: 'mX' },
      { name: 'b', bytes: 2, md5: 'm2' },
      { name: 'c', bytes: 30, md5: 'm3' },
      { name: 'e', bytes: 5, md5: 'm5' },
    ];
    expect(versionProblems(expected, listing)).toEqual(['a: MD5 mX, expected m1', 'c: 30 bytes, expected 3', 'd: missing']);
    expect(versionProblems([{ name: 'b', bytes: 2 }], [{ name: 'b', bytes: 2 }])).toEqual(['b: no MD5 in the listing']);
    expect(versionProblems(expected.slice(1, 2), listing)).toEqual([]);
  });

  it('reads rclone lsjson, names with any byte intact', () => {
    const text = JSON.stringify([
      { Path: 'a b/c\u00e9.txt', Name: 'c\u00e9.txt', Size: 3, IsDir: false, Hashes: { md5: 'm' } },
      { Path: 'a b', Name: 'a b', Size: -1, IsDir: true },
    ]);
    expect(parseLsjson(text)).toEqual([{ name: 'a b/c\u00e9.txt', bytes: 3, md5: 'm' }]);
    expect(parseLsjson('')).toEqual([]);
    expect(() => parseLsjson('{"not":"a list"}')).toThrow(/did not print a list/);
  });

  it('never writes a name to a line-based list that would not read back as itself', () => {
    expect(fileListText(['a', 'b c/d'])).toBe('a\nb c/d\n');
    expect(() => fileListText(['a\nb'])).toThrow('refusing to list contains a control character ("a\\nb")');
    expect(() => fileListText(['a\rb'])).toThrow(/control character/);
    expect(nameProblem('x\u007f')).toMatch(/control character/);
    expect(nameProblem('../x')).toMatch(/not a plain relative path/);
    expect(nameProblem('a//b')).toMatch(/not a plain relative path/);
    expect(nameProblem('training/x.txt')).toBeUndefined();
  });
});
