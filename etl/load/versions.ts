/**
 * The container's dataset versions, as pure functions: where a version lives, what the pointer says, which
 * versions a publish retires, and whether a listing proves a version complete.
 *
 * Why versions: replacing objects in place (even staged and verified first) leaves a window in which readers see
 * a mix of two datasets. A version is written under its own prefix and never overwritten once published; readers
 * switch only when the one small pointer object is written, which Swift does atomically (a reader gets the old
 * object or the new one, never half).
 *
 *   current.json                      the pointer: the current version, the retained ones, uploads under way
 *   datasets/<key>/training/…         one version, in the tutorial's layout (training/, validation/,
 *   datasets/<key>/manifest.json      evaluation/, maps/, raw/<dataset>/), its manifest written last
 */

export const POINTER_OBJECT = 'current.json';
export const VERSIONS_PREFIX = 'datasets';
export const VERSION_MANIFEST = 'manifest.json';
/** The current version and the one before it: a reader that opened files of the previous one keeps reading. */
export const DEFAULT_KEEP = 2;
export const POINTER_FORMAT = 1;

/** A version key is ours: 16 lowercase hex digits (datasetKey). Anything else under datasets/ is not touched. */
const KEY = /^[0-9a-f]{16}$/;

export function versionPrefix(key: string): string {
  if (!KEY.test(key)) throw new Error(`not a dataset version key: ${JSON.stringify(key)}`);
  return `${VERSIONS_PREFIX}/${key}`;
}

export interface VersionRecord {
  key: string;
  publishedAt: string;
  /** Every object of the version (relative to its prefix, manifest.json included): what retiring it deletes. */
  objects: string[];
}

export interface PendingRecord {
  key: string;
  since: string;
  /** The objects this upload writes (relative to the version prefix): what cleaning it up deletes. */
  objects: string[];
}

/** The one object readers follow. Every object the load ever deleted is named in here first. */
export interface Pointer {
  format: typeof POINTER_FORMAT;
  /** The version readers see; null until the first publish. */
  current: string | null;
  /** Newest first; current is versions[0]. */
  versions: VersionRecord[];
  /** Uploads started and not published (a killed load's leftovers), cleaned by the next publish. */
  pending: PendingRecord[];
  /** Versions beyond the retention count whose objects are being deleted (a kill between switch and delete). */
  retiring: VersionRecord[];
}

export const EMPTY_POINTER: Pointer = { format: POINTER_FORMAT, current: null, versions: [], pending: [], retiring: [] };

/**
 * Reads the pointer object's text. Returns undefined for no pointer (an empty text: nothing published), throws
 * for a pointer this code does not understand: guessing could delete a version a newer tool still uses.
 */
export function parsePointer(text: string): Pointer | undefined {
  if (!text.trim()) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new Error(`${POINTER_OBJECT} is not JSON`);
  }
  const o = v as Partial<Pointer>;
  if (!o || typeof o !== 'object' || o.format !== POINTER_FORMAT)
    throw new Error(`${POINTER_OBJECT} has format ${JSON.stringify(o?.format)}, this tool reads ${POINTER_FORMAT}`);
  const records = (x: unknown, what: string): VersionRecord[] => {
    if (!Array.isArray(x)) throw new Error(`${POINTER_OBJECT}: ${what} is not a list`);
    for (const r of x as VersionRecord[]) {
      if (!r || !KEY.test(String(r.key)) || !Array.isArray(r.objects) || r.objects.some((n) => typeof n !== 'string')) {
        throw new Error(`${POINTER_OBJECT}: a ${what} entry is malformed: ${JSON.stringify(r).slice(0, 120)}`);
      }
    }
    return x as VersionRecord[];
  };
  const versions = records(o.versions, 'versions');
  const pending = records(o.pending ?? [], 'pending') as unknown as PendingRecord[];
  const retiring = records(o.retiring ?? [], 'retiring');
  const current = o.current ?? null;
  if (current !== null && versions[0]?.key !== current) throw new Error(`${POINTER_OBJECT}: current ${current} is not the newest version`);
  return { format: POINTER_FORMAT, current, versions, pending, retiring };
}

/** The pointer once an upload of `key` has started: recorded first, so a kill leaves nothing unrecorded. */
export function withPending(p: Pointer, key: string, objects: string[], since: string): Pointer {
  if (p.versions.some((v) => v.key === key)) return p; // a published version being repaired: already recorded
  return { ...p, pending: [...p.pending.filter((x) => x.key !== key), { key, since, objects }] };
}

/**
 * The pointer that publishes `key`: it becomes current, the retained versions follow it, and what falls out
 * of the retention count (and every other pending upload) is moved to `retiring` for deletion after the switch.
 */
export function publish(p: Pointer, version: VersionRecord, keep: number): Pointer {
  if (!Number.isInteger(keep) || keep < 1) throw new Error(`keep must be a whole number >= 1, not ${keep}`);
  const others = p.versions.filter((v) => v.key !== version.key);
  const versions = [version, ...others].slice(0, keep);
  const kept = new Set(versions.map((v) => v.key));
  const dropped = others.filter((v) => !kept.has(v.key));
  const abandoned = p.pending
    .filter((x) => x.key !== version.key && !kept.has(x.key))
    .map((x) => ({ key: x.key, publishedAt: '', objects: x.objects }));
  const retiring = mergeRecords([...p.retiring.filter((r) => !kept.has(r.key)), ...dropped, ...abandoned]);
  return { format: POINTER_FORMAT, current: version.key, versions, pending: [], retiring };
}

/** The pointer once the retiring versions' objects are gone. */
export function retired(p: Pointer): Pointer {
  return { ...p, retiring: [] };
}

function mergeRecords(rs: VersionRecord[]): VersionRecord[] {
  const byKey = new Map<string, VersionRecord>();
  for (const r of rs) {
    const had = byKey.get(r.key);
    byKey.set(r.key, had ? { ...had, objects: [...new Set([...had.objects, ...r.objects])] } : r);
  }
  return [...byKey.values()];
}

/** Full object names (from the container root) of a record: what deleting it touches, and nothing else. */
export function objectNames(r: { key: string; objects: string[] }): string[] {
  const prefix = versionPrefix(r.key);
  return r.objects.map((n) => `${prefix}/${n}`);
}

/** An object as a listing shows it (rclone lsjson: Path relative to the listed prefix, Size, Hashes.md5). */
export interface ListedObject {
  name: string;
  bytes: number;
  md5?: string;
}

export interface ExpectedObject {
  name: string;
  bytes: number;
  /** Known when the object's content was proven before (a version manifest); else any MD5 is taken. */
  md5?: string;
}

/**
 * What is wrong with a version, judged from a listing of its prefix: every expected object present, with its
 * size, with an MD5, and with the expected MD5 where one is known. Pure; an empty list means complete.
 */
export function versionProblems(expected: readonly ExpectedObject[], listing: readonly ListedObject[]): string[] {
  const have = new Map(listing.map((o) => [o.name, o]));
  const problems: string[] = [];
  for (const e of expected) {
    const o = have.get(e.name);
    if (!o) problems.push(`${e.name}: missing`);
    else if (o.bytes !== e.bytes) problems.push(`${e.name}: ${o.bytes} bytes, expected ${e.bytes}`);
    else if (!o.md5) problems.push(`${e.name}: no MD5 in the listing`);
    else if (e.md5 && o.md5 !== e.md5) problems.push(`${e.name}: MD5 ${o.md5}, expected ${e.md5}`);
  }
  return problems;
}

/** rclone lsjson output -> listed objects. Names come as JSON strings, so any byte in a name round-trips. */
export function parseLsjson(text: string): ListedObject[] {
  const rows = JSON.parse(text || '[]') as { Path: string; Size: number; IsDir?: boolean; Hashes?: { md5?: string; MD5?: string } }[];
  if (!Array.isArray(rows)) throw new Error('rclone lsjson did not print a list');
  return rows.filter((r) => !r.IsDir).map((r) => ({ name: r.Path, bytes: r.Size, md5: r.Hashes?.md5 ?? r.Hashes?.MD5 }));
}

/** Control characters break line-based lists (rclone --files-from-raw) and terminals: refused in every name. */
const CONTROL = /[\x00-\x1f\x7f]/;

export function nameProblem(name: string): string | undefined {
  if (CONTROL.test(name)) return `contains a control character (${JSON.stringify(name)})`;
  if (!name || name.startsWith('/') || name.split('/').some((s) => s === '' || s === '.' || s === '..'))
    return `is not a plain relative path (${JSON.stringify(name)})`;
  return undefined;
}

/**
 * The text of an rclone --files-from-raw list, after proving that it reads back as exactly these names: a name
 * with a line break would otherwise become two names, and rclone would check neither.
 */
export function fileListText(names: readonly string[]): string {
  for (const n of names) {
    const p = nameProblem(n);
    if (p) throw new Error(`refusing to list ${p}`);
  }
  const text = names.map((n) => `${n}\n`).join('');
  const back = text.split('\n').slice(0, -1);
  if (back.length !== names.length || back.some((n, i) => n !== names[i])) throw new Error('a file list does not read back as its names');
  return text;
}
