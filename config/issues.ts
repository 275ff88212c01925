import { envNameFor, FIELD_BY_PATH } from './fields';

/** One thing wrong with the configuration, phrased for the user. */
export interface ConfigIssue {
  /** Dotted path in persist.config.yaml, or an environment variable name for env-only settings. */
  field: string;
  /** The environment variable that sets it, when there is one. */
  env?: string;
  problem: string;
  fix: string;
}

/** No control characters (a newline, tab or escape) and no Unicode line separators. */
export const NO_CONTROL = /^[^\p{Cc}\u2028\u2029]*$/u;

/** A value as a report shows it: quoted, or JSON-escaped when it holds a newline or an escape (one line). */
export function shown(value: string): string {
  return NO_CONTROL.test(value) ? `"${value}"` : JSON.stringify(value);
}

/** An issue of a field of the table, with its environment variable and its fix from the table unless given. */
export function issue(path: string, problem: string, fix?: string): ConfigIssue {
  const spec = FIELD_BY_PATH.get(path);
  return { field: path, env: spec ? envNameFor(path) : undefined, problem, fix: fix ?? spec?.hint ?? '' };
}

/** What a YAML value is, for messages: `null`, `a list`, `a mapping`, `number 3`. */
export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  return typeof v === 'object' ? 'a mapping' : `${typeof v} ${JSON.stringify(v)}`;
}
