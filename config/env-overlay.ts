import {
  BYO_CREDENTIAL_ID_ENV,
  BYO_CREDENTIAL_SECRET_ENV,
  CONFIG_FILE_ENV,
  ENV_PREFIX,
  FIELDS,
  envNameFor,
  type FieldSpec,
} from './fields';
import { describe, shown, type ConfigIssue } from './issues';
import { closest } from './suggest';

/**
 * The environment overlay: `PERSIST_*` variables set fields of the file (the table in fields.ts names each
 * one), text coerced to the field's kind, and the bring-your-own credential read from
 * PERSIST_APP_CREDENTIAL_ID / PERSIST_APP_CREDENTIAL_SECRET. Pure: the environment is a parameter.
 */

/**
 * Writes every set `PERSIST_*` field variable into `target` (the parsed file), coerced to the field's kind;
 * a value that does not coerce is an error, an unknown `PERSIST_*` name a warning (with the closest known one).
 */
export function applyEnv(
  target: Record<string, unknown>,
  env: Record<string, string | undefined>,
  errors: ConfigIssue[],
  warnings: string[],
): void {
  const known = new Set<string>([BYO_CREDENTIAL_ID_ENV, BYO_CREDENTIAL_SECRET_ENV, CONFIG_FILE_ENV]);
  for (const spec of FIELDS) {
    const name = envNameFor(spec.path);
    known.add(name);
    const value = env[name];
    if (value === undefined || value.trim() === '') continue;
    const coerced = coerce(spec, value.trim());
    if (coerced.ok) setPath(target, spec.path, coerced.value, errors);
    else errors.push({ field: spec.path, env: name, problem: `${name}=${shown(value)} ${coerced.problem}`, fix: spec.hint });
  }
  const envNames = [...known];
  for (const name of Object.keys(env)) {
    if (name.startsWith(ENV_PREFIX) && !known.has(name)) {
      const suggestion = closest(name, envNames);
      warnings.push(`${name} is not a configuration variable and is ignored${suggestion ? ` (did you mean ${suggestion}?)` : ''}`);
    }
  }
}

function coerce(spec: FieldSpec, value: string): { ok: true; value: unknown } | { ok: false; problem: string } {
  switch (spec.kind) {
    case 'string':
      return { ok: true, value };
    case 'boolean': {
      const v = value.toLowerCase();
      if (['true', 'yes', '1', 'on'].includes(v)) return { ok: true, value: true };
      if (['false', 'no', '0', 'off'].includes(v)) return { ok: true, value: false };
      return { ok: false, problem: 'must be true or false' };
    }
    case 'number': {
      const n = Number(value);
      return Number.isFinite(n) ? { ok: true, value: n } : { ok: false, problem: 'must be a number' };
    }
  }
}

function setPath(target: Record<string, unknown>, path: string, value: unknown, errors: ConfigIssue[]): void {
  const parts = path.split('.');
  let node: Record<string, unknown> = target;
  for (const part of parts.slice(0, -1)) {
    const next = node[part];
    if (next === undefined || next === null) node[part] = {};
    else if (typeof next !== 'object' || Array.isArray(next)) {
      errors.push({ field: part, problem: `must be a mapping of fields (got ${describe(next)})`, fix: 'see persist.config.example.yaml' });
      return;
    }
    node = node[part] as Record<string, unknown>;
  }
  node[parts[parts.length - 1] as string] = value;
}

/** The id of a bring-your-own credential, or undefined when none is given; errors when half of it is. */
export function bringYourOwnCredential(env: Record<string, string | undefined>, errors: ConfigIssue[]): string | undefined {
  const id = env[BYO_CREDENTIAL_ID_ENV]?.trim();
  const secret = env[BYO_CREDENTIAL_SECRET_ENV];
  if (!id && !secret) return undefined;
  if (!id) {
    errors.push({
      field: BYO_CREDENTIAL_ID_ENV,
      env: BYO_CREDENTIAL_ID_ENV,
      problem: `is not set, but ${BYO_CREDENTIAL_SECRET_ENV} is`,
      fix:
        `set both to bring your own application credential (its id and secret), or unset ${BYO_CREDENTIAL_SECRET_ENV} to ` +
        `let the storage stack create one`,
    });
    return undefined;
  }
  if (!secret || secret.trim() === '') {
    errors.push({
      field: BYO_CREDENTIAL_SECRET_ENV,
      env: BYO_CREDENTIAL_SECRET_ENV,
      problem: `is not set, but ${BYO_CREDENTIAL_ID_ENV} is`,
      fix: `export ${BYO_CREDENTIAL_SECRET_ENV} with the secret shown when the credential was created (it cannot be looked up later)`,
    });
    return undefined;
  }
  if (!/^[A-Za-z0-9_-]{8,64}$/.test(id)) {
    errors.push({
      field: BYO_CREDENTIAL_ID_ENV,
      env: BYO_CREDENTIAL_ID_ENV,
      problem: 'does not look like an application credential id',
      fix: 'use the `id` column of `openstack --os-cloud chi_tacc application credential list` (32 hexadecimal characters)',
    });
    return undefined;
  }
  return id;
}
