import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { StageName } from './stage';

/**
 * What a stage produced and from which inputs. A stage whose `inputsKey` equals the one in its manifest
 * (and whose outputs are still there) is skipped on rerun.
 */
export interface StageManifest<R = Record<string, unknown>> {
  stage: StageName;
  /** Hash of everything that determines the stage's output: input checksums, options, tool version. */
  inputsKey: string;
  tool: { name: string; version: string };
  startedAt: string;
  finishedAt: string;
  result: R;
}

/** A stable hash of a JSON-able value: object keys are sorted, so key order never changes the key. */
export function hashInputs(value: unknown): string {
  return createHash('sha256').update(stableStringify(value)).digest('hex');
}

export function stableStringify(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(stableStringify).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableStringify(v)}`).join(',')}}`;
}

export function manifestPath(manifestsDir: string, stage: StageName): string {
  return join(manifestsDir, `${stage}.json`);
}

export async function readManifest<R>(manifestsDir: string, stage: StageName): Promise<StageManifest<R> | undefined> {
  try {
    return JSON.parse(await readFile(manifestPath(manifestsDir, stage), 'utf8')) as StageManifest<R>;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    // A manifest we cannot parse proves nothing: treat the stage as not done.
    if (e instanceof SyntaxError) return undefined;
    throw e;
  }
}

/** Written to a temporary name and renamed, so a reader never sees half a manifest. */
export async function writeManifest<R>(manifestsDir: string, manifest: StageManifest<R>): Promise<void> {
  const path = manifestPath(manifestsDir, manifest.stage);
  await writeJsonAtomic(path, manifest);
}

export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, `${JSON.stringify(value, null, 2)}\n`);
  await rename(tmp, path);
}

export const TOOL = { name: 'chameleon-persist-etl', version: '0.1.0' } as const;
