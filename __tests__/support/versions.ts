import { parsePointer, type Pointer } from '../../etl/load/versions';
import { getObject, headObject, listContainer, type OpenStackEnv } from './openstack';

/**
 * What a reader of the container sees, through Swift's own API (no rclone): the pointer, and whether the
 * version it names is whole (every object of its manifest present with its size and MD5).
 */
export interface ReaderView {
  pointer?: Pointer;
  /** Object name (under the current version) -> MD5, manifest.json left out. */
  current: Map<string, string>;
  /** What is wrong with the current version; empty when it is whole. */
  problems: string[];
  /** Every object of the container: name -> MD5. */
  all: Map<string, string>;
  /** The current version's manifest.json, parsed. */
  manifest?: {
    datasetKey: string;
    objects: { name: string; bytes: number; md5: string }[];
    transform: { splits: Record<string, number>; rows: number; users: number; items: number };
  } & Record<string, unknown>;
}

/** One object of the current version, through Swift's API. */
export async function currentObject(env: OpenStackEnv, container: string, name: string): Promise<Buffer | undefined> {
  const v = await readerView(env, container);
  return v.pointer?.current ? getObject(env, container, `datasets/${v.pointer.current}/${name}`) : undefined;
}

export async function readerView(env: OpenStackEnv, container: string): Promise<ReaderView> {
  const listing = await listContainer(env, container);
  const all = new Map([...listing].map(([n, o]) => [n, o.hash]));
  const text = await getObject(env, container, 'current.json');
  const pointer = text ? parsePointer(String(text)) : undefined;
  const current = new Map<string, string>();
  const problems: string[] = [];
  let manifest: ReaderView['manifest'];
  // The same for every object of every version the pointer lists (what the chaos test compares).
  for (const v of pointer?.versions ?? []) {
    for (const name of v.objects) {
      const full = `datasets/${v.key}/${name}`;
      if (all.has(full)) continue;
      const o = await headObject(env, container, full);
      if (o) {
        all.set(full, o.hash);
        listing.set(full, o);
      }
    }
  }
  if (pointer?.current) {
    const prefix = `datasets/${pointer.current}/`;
    const manifestText = await getObject(env, container, `${prefix}manifest.json`);
    if (!manifestText) problems.push('the current version has no manifest.json');
    manifest = manifestText ? (JSON.parse(String(manifestText)) as ReaderView['manifest']) : undefined;
    if (manifest && manifest.datasetKey !== pointer.current) problems.push(`manifest.json names ${manifest.datasetKey}`);
    for (const o of manifest?.objects ?? []) {
      // Swift's container listing can lag a PUT (a container update it deferred on a busy server): an object the
      // listing lacks is looked up by name, as a reader that opens it would, before it counts as missing.
      const have = listing.get(prefix + o.name) ?? (await headObject(env, container, prefix + o.name));
      if (!have) problems.push(`${o.name}: missing`);
      else if (have.bytes !== o.bytes || have.hash !== o.md5) problems.push(`${o.name}: differs from its manifest`);
      else current.set(o.name, have.hash);
    }
    const listed = new Set((manifest?.objects ?? []).map((o) => o.name));
    for (const name of listing.keys()) {
      if (name.startsWith(prefix) && name !== `${prefix}manifest.json` && !listed.has(name.slice(prefix.length)))
        problems.push(`${name}: not in the manifest`);
    }
  }
  return { pointer, current, problems, all, manifest };
}
