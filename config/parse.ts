import { z } from 'zod';
import { BYO_CREDENTIAL_ID_ENV, BYO_CREDENTIAL_SECRET_ENV, FIELDS, FIELD_BY_PATH } from './fields';
import { checkCidr } from './cidr';
import { applyEnv, bringYourOwnCredential } from './env-overlay';
import { expiryWarnings, parseExpiry, toRfc3339 } from './expiry';
import { describe, issue, NO_CONTROL, shown, type ConfigIssue } from './issues';
import { closest } from './suggest';
import { isLoopbackLiteral } from '../etl/loopback';

export type { ConfigIssue } from './issues';

export type ParseResult =
  | { ok: true; config: PersistConfig; warnings: string[] }
  | { ok: false; errors: ConfigIssue[]; warnings: string[] };

const TEAM_ID = /^[a-z0-9][a-z0-9_-]{0,47}$/;
const UUID = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;
const LINUX_USER = /^[a-z_][a-z0-9_-]{0,31}$/;

// ---------------------------------------------------------------------------------------------------------
// Field validators (zod). Messages are the "problem" half of an issue; the field table supplies the fix.

/**
 * Every string field ends up in the synthesized Terraform JSON, and some in rclone.conf, cloud-init or a shell
 * command on the node. Terraform evaluates `${...}` and `%{...}` inside JSON strings (node.image:
 * '${file("/etc/hostname")}' was read from the deploying machine), and a newline in chi.authUrl added a second
 * `auth =` line to rclone.conf, which rclone takes: the credential went to another Keystone. zod's url() lets a
 * newline through (the URL parser strips it). So: no control characters and no template sequences anywhere.
 */
const NO_TEMPLATE = /^(?![\s\S]*[$%]\{)/;
const text = () =>
  z
    .string({ invalid_type_error: 'must be text', required_error: 'is required' })
    .trim()
    .min(1, 'must not be empty')
    .regex(NO_CONTROL, 'contains a control character (a newline, tab or escape); write the value on one line, without them')
    .regex(NO_TEMPLATE, 'contains "${" or "%{", which Terraform would evaluate as an expression; remove it');
/** Names that never contain whitespace: clouds.yaml entries, regions, URLs, ids. */
const token = () => text().regex(/^\S+$/, 'must not contain spaces');
const optionalText = () => text().optional();
/** The node's ETL directory is written unquoted into its shell scripts and unit files (cloud-init/render.ts). */
const PLAIN_ABSOLUTE_PATH = /^(\/[A-Za-z0-9_.@-]+)+$/;
const bool = () => z.boolean({ invalid_type_error: 'must be true or false' });
const num = () => z.number({ invalid_type_error: 'must be a number' }).finite('must be a finite number');
const ratio = () => num().gt(0, 'must be greater than 0').lt(1, 'must be less than 1');

function expiry(now: Date) {
  return text().transform((value, ctx) => {
    const parsed = parseExpiry(value);
    if (typeof parsed === 'string') {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: parsed });
      return z.NEVER;
    }
    if (parsed.getTime() <= now.getTime()) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        message: `is ${toRfc3339(parsed)}, which is not in the future (now is ${toRfc3339(now)})`,
      });
      return z.NEVER;
    }
    return toRfc3339(parsed);
  });
}

const cidr = () =>
  text().superRefine((value, ctx) => {
    const problem = checkCidr(value);
    if (problem) ctx.addIssue({ code: z.ZodIssueCode.custom, message: problem });
  });

/** A section of the file (`ssh:`, `node:` ...): may be left out, takes only its own fields. */
function section<T extends z.ZodRawShape>(shape: T) {
  return z.preprocess((v) => (v === undefined ? {} : v), z.object(shape).strict());
}

/** The default from the field table, so docs and behaviour cannot drift apart. */
function dflt<T extends string | number | boolean>(path: string): T {
  const value = FIELD_BY_PATH.get(path)?.default;
  if (value === undefined) throw new Error(`internal: field ${path} has no default`);
  return value as T;
}

function buildSchema(now: Date) {
  const url = (path: string, message: string) =>
    token()
      .url('must be a URL')
      .refine((u) => /^https?:\/\//.test(u), message)
      .default(dflt<string>(path));
  return z
    .object({
      teamId: text().regex(TEAM_ID, 'must be 1-48 lowercase letters, digits, "-" or "_", starting with a letter or digit'),
      chi: section({
        cloud: token().default(dflt<string>('chi.cloud')),
        region: token().default(dflt<string>('chi.region')),
        authUrl: url('chi.authUrl', 'must start with https:// (or http:// for a local test Keystone)'),
      }),
      kvm: section({
        cloud: token().default(dflt<string>('kvm.cloud')),
        region: token().default(dflt<string>('kvm.region')),
      }),
      credential: section({
        expiresAt: expiry(now),
        accessRules: bool().default(dflt<boolean>('credential.accessRules')),
      }),
      ssh: section({
        publicKeyPath: optionalText(),
        keypairName: optionalText(),
        privateKeyPath: optionalText(),
        user: text().regex(LINUX_USER, 'must be a Linux user name').default(dflt<string>('ssh.user')),
        allowedCidr: cidr(),
      }),
      node: section({
        image: text().default(dflt<string>('node.image')),
        flavor: text().default(dflt<string>('node.flavor')),
        reservationId: optionalText()
          .refine((v) => v === undefined || UUID.test(v), 'must be a reservation id (a UUID such as 1b2c3d4e-0000-4000-8000-123456789abc)')
          .transform((v) => v?.toLowerCase()),
        network: text().default(dflt<string>('node.network')),
        floatingIpPool: text().default(dflt<string>('node.floatingIpPool')),
      }),
      storage: section({
        allowDestroyNonEmptyContainer: bool().default(dflt<boolean>('storage.allowDestroyNonEmptyContainer')),
      }),
      etl: section({
        datasetUrl: url('etl.datasetUrl', 'must be an http:// or https:// URL'),
        datasetSha256: optionalText()
          .refine((v) => v === undefined || /^[0-9a-f]{64}$/i.test(v), 'must be 64 hexadecimal characters')
          .transform((v) => v?.toLowerCase()),
        allowUnverified: bool().default(dflt<boolean>('etl.allowUnverified')),
        seed: num().int('must be a whole number').nonnegative('must not be negative').default(dflt<number>('etl.seed')),
        trainRatio: ratio().default(dflt<number>('etl.trainRatio')),
        validationRatio: ratio().default(dflt<number>('etl.validationRatio')),
        evaluationRatio: ratio().default(dflt<number>('etl.evaluationRatio')),
        remoteDir: text()
          .refine((v) => v.startsWith('/'), 'must be an absolute path')
          .refine(
            (v) => !v.startsWith('/') || (PLAIN_ABSOLUTE_PATH.test(v) && !v.split('/').includes('..')),
            'must be a plain absolute path: letters, digits, "_", ".", "@" or "-" between single slashes, no ".." and no ' +
              'trailing "/" (it is written unquoted into the node\'s setup script and mount unit)',
          )
          .default(dflt<string>('etl.remoteDir')),
      }),
    })
    .strict();
}

/** The configuration file as the schema validates it: defaults filled in, hashes and ids lower-cased. */
type FileConfig = z.output<ReturnType<typeof buildSchema>>;

/**
 * The validated configuration every stack is built from: the file's schema (inferred, so the two cannot
 * drift), plus what is derived from it:
 * - `containerName`: `object-persist-<teamId>`;
 * - `credential.existing`: set when the user brings an application credential (PERSIST_APP_CREDENTIAL_ID and
 *   PERSIST_APP_CREDENTIAL_SECRET): nothing is created. Only the id is kept; the secret stays in the environment
 *   variable named by `secretEnv` and is read from there at run time by the ETL runner;
 * - `ssh.privateKeyPath`: always set (defaults to publicKeyPath without `.pub`), `~` expanded like publicKeyPath;
 * - `ssh.publicKey`: the text of publicKeyPath, filled in by loadConfig (parseConfig does not read files);
 * - `ssh.ethertype`: IPv4 or IPv6, from allowedCidr.
 * `credential.expiresAt` is RFC 3339, UTC, seconds precision: what Keystone and the provider's `expires_at` take.
 */
export type PersistConfig = Omit<FileConfig, 'credential' | 'ssh'> & {
  containerName: string;
  credential: FileConfig['credential'] & { existing?: { id: string; secretEnv: typeof BYO_CREDENTIAL_SECRET_ENV } };
  ssh: Omit<FileConfig['ssh'], 'privateKeyPath'> & { privateKeyPath: string; publicKey?: string; ethertype: 'IPv4' | 'IPv6' };
};

/** `key:` with nothing after it is YAML null: treat it as "not set", like a missing key. */
function dropNulls(node: Record<string, unknown>): void {
  for (const [key, value] of Object.entries(node)) {
    if (value === null) delete node[key];
    else if (typeof value === 'object' && !Array.isArray(value)) dropNulls(value as Record<string, unknown>);
  }
}

// ---------------------------------------------------------------------------------------------------------

/**
 * Validates the configuration. Pure: `raw` is the parsed YAML file (or undefined when there is none), `env` the
 * environment (PERSIST_* variables override file values), `now` the time the expiry is compared with.
 * Returns every problem at once, each naming the field, what is wrong and how to fix it.
 */
export function parseConfig(raw: unknown, env: Record<string, string | undefined>, now: Date): ParseResult {
  const warnings: string[] = [];
  const errors: ConfigIssue[] = [];

  if (raw === null || raw === undefined) raw = {};
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    return {
      ok: false,
      warnings,
      errors: [
        {
          field: '(file)',
          problem: `the configuration file must be a YAML mapping of fields, not ${describe(raw)}`,
          fix: 'start from persist.config.example.yaml: `cp persist.config.example.yaml persist.config.yaml`',
        },
      ],
    };
  }
  const merged = structuredClone(raw) as Record<string, unknown>;
  dropNulls(merged);

  errors.push(...secretsInFile(merged));
  applyEnv(merged, env, errors, warnings);
  // Secret-looking keys were reported above; drop them so they are not reported again as unknown fields.
  for (const e of errors) deletePath(merged, e.field);

  const result = buildSchema(now).safeParse(merged);
  if (!result.success) {
    // One message per field (the first, most basic one: "must be a URL" before "must be https").
    const reported = new Set(errors.map((e) => e.field));
    for (const zi of result.error.issues) {
      for (const i of fromZod(zi, merged)) {
        if (!reported.has(i.field)) errors.push(i);
        reported.add(i.field);
      }
    }
  }
  const byo = bringYourOwnCredential(env, errors);
  if (!result.success || errors.length > 0) return { ok: false, errors: dedupe(errors), warnings };

  const v = result.data;
  const home = env.HOME;
  const expand = (p: string | undefined) => (p !== undefined && home && (p === '~' || p.startsWith('~/')) ? home + p.slice(1) : p);

  // Cross-field rules.
  const ssh = v.ssh;
  if (ssh.publicKeyPath && ssh.keypairName) {
    errors.push(issue('ssh.publicKeyPath', 'and ssh.keypairName are both set; the node can use only one keypair', 'remove one of them'));
  } else if (!ssh.publicKeyPath && !ssh.keypairName) {
    errors.push(issue('ssh.publicKeyPath', 'is required (or ssh.keypairName)'));
  }
  let privateKeyPath = ssh.privateKeyPath;
  if (!privateKeyPath && ssh.publicKeyPath) {
    if (ssh.publicKeyPath.endsWith('.pub')) privateKeyPath = ssh.publicKeyPath.slice(0, -'.pub'.length);
    else errors.push(issue('ssh.privateKeyPath', `is required because ssh.publicKeyPath does not end in .pub`));
  } else if (!privateKeyPath && ssh.keypairName) {
    errors.push(issue('ssh.privateKeyPath', 'is required with ssh.keypairName (the ETL stage logs in with it)'));
  }
  if (!v.node.reservationId && v.kvm.region === 'KVM@TACC') {
    errors.push(
      issue('node.reservationId', 'is required: KVM@TACC only starts servers on a reserved flavor (node.flavor cannot be used there)'),
    );
  }
  // Over plain http anyone on the path can swap the zip and its .md5 alike; only a pinned SHA-256 vouches for it.
  // A literal loopback address (a local test server) never leaves the machine (same rule as etl/extract/download.ts).
  const dataset = new URL(v.etl.datasetUrl);
  if (dataset.protocol === 'http:' && !v.etl.datasetSha256 && !isLoopbackLiteral(dataset)) {
    errors.push(
      issue(
        'etl.datasetUrl',
        `"${v.etl.datasetUrl}" is plain http without etl.datasetSha256: anyone on the network path could replace the zip (and its .md5)`,
        'use the https:// URL, or pin the file with etl.datasetSha256 (sha256sum file.zip)',
      ),
    );
  }
  // The login sends the application credential's secret: over plain http anyone on the path reads it.
  const keystone = new URL(v.chi.authUrl);
  if (keystone.protocol === 'http:' && !isLoopbackLiteral(keystone)) {
    errors.push(
      issue(
        'chi.authUrl',
        `"${v.chi.authUrl}" is plain http: the node and the runner would send the application credential's secret in clear text to it`,
        "use the https:// URL (CHI@TACC's is https://chi.tacc.chameleoncloud.org:5000/v3); plain http is only for a Keystone " +
          "on this machine's loopback (127.x.x.x, [::1])",
      ),
    );
  }
  const sum = v.etl.trainRatio + v.etl.validationRatio + v.etl.evaluationRatio;
  if (Math.abs(sum - 1) > 1e-9) {
    errors.push(issue('etl.trainRatio', `+ etl.validationRatio + etl.evaluationRatio add up to ${round(sum)}, not 1`));
  }
  if (v.chi.cloud === v.kvm.cloud) {
    warnings.push(
      `chi.cloud and kvm.cloud are both "${v.chi.cloud}": CHI@TACC and KVM@TACC have separate Keystones, so they are ` +
        'normally two clouds.yaml entries',
    );
  }
  if (v.ssh.allowedCidr.includes(':')) {
    // The node stack opens port 22 only for the ethertype of this CIDR; the runner and `ssh cc@<floating ip>`
    // use the IPv4 floating IP, which an IPv6-only rule does not cover.
    warnings.push(
      `ssh.allowedCidr is the IPv6 network ${v.ssh.allowedCidr}: the security group then allows SSH over IPv6 only, but the ` +
        'runner connects to the IPv4 floating IP, so SSH stays closed and the etl stage waits in vain. Use your IPv4 ' +
        'address instead (curl -4 -s ifconfig.me, then e.g. 203.0.113.7/32)',
    );
  }
  if (v.ssh.allowedCidr.endsWith('/0')) {
    warnings.push(`ssh.allowedCidr is ${v.ssh.allowedCidr}: SSH on the node is open to the whole Internet`);
  }
  warnings.push(...expiryWarnings(v.credential.expiresAt, now));
  if (byo && v.credential.accessRules) {
    warnings.push(
      `credential.accessRules is ignored: ${BYO_CREDENTIAL_ID_ENV} is set, so no credential is created (your own ` +
        'credential keeps whatever rules it was created with)',
    );
  }
  if (errors.length > 0) return { ok: false, errors, warnings };

  const { publicKeyPath, privateKeyPath: _given, ...sshRest } = ssh;
  // Keys in the order of the file's fields, derived ones beside their sources (JSON.stringify(config) is stable).
  const { teamId, ...rest } = v;
  const config: PersistConfig = {
    teamId,
    containerName: `object-persist-${teamId}`,
    ...rest,
    credential: { ...v.credential, ...(byo ? { existing: { id: byo, secretEnv: BYO_CREDENTIAL_SECRET_ENV } } : {}) },
    ssh: {
      ...(publicKeyPath ? { publicKeyPath: expand(publicKeyPath) } : {}),
      ...(sshRest.keypairName ? { keypairName: sshRest.keypairName } : {}),
      privateKeyPath: expand(privateKeyPath) as string,
      ...sshRest,
      ethertype: ssh.allowedCidr.includes(':') ? 'IPv6' : 'IPv4',
    },
  };
  return { ok: true, config, warnings };
}

/** The issues as the lines synth prints: one block per issue, no stack trace. */
export function formatIssues(issues: readonly ConfigIssue[]): string {
  return issues
    .map((i) => {
      const where = i.env && i.env !== i.field ? `${i.field} (env ${i.env})` : i.field;
      return `  - ${where}: ${i.problem}\n    fix: ${i.fix}`;
    })
    .join('\n');
}

// ---------------------------------------------------------------------------------------------------------

function fromZod(zi: z.ZodIssue, input: Record<string, unknown>): ConfigIssue[] {
  const path = zi.path.join('.');
  if (zi.code === z.ZodIssueCode.unrecognized_keys) {
    return zi.keys.map((key) => {
      const full = path ? `${path}.${key}` : key;
      const suggestion = suggestField(full);
      return {
        field: full,
        problem: 'is not a known field',
        fix: suggestion
          ? `did you mean ${suggestion}? (persist.config.example.yaml lists every field)`
          : 'remove it; persist.config.example.yaml lists every field',
      };
    });
  }
  if (!FIELD_BY_PATH.has(path)) {
    return [
      {
        field: path || '(file)',
        problem: `must be a mapping of fields (got ${zi.code === z.ZodIssueCode.invalid_type ? zi.received : 'something else'})`,
        fix: `write it as \`${path}:\` followed by indented \`field: value\` lines, as in persist.config.example.yaml`,
      },
    ];
  }
  let problem = zi.message;
  if (zi.code === z.ZodIssueCode.invalid_type) {
    problem = zi.received === 'undefined' ? 'is required' : `${zi.message} (got ${zi.received})`;
  } else {
    const value = getPath(input, path);
    // A value with a newline or an escape is shown escaped, so the report stays one readable line.
    const text = typeof value === 'string' ? shown(value) : String(value);
    if (value !== undefined && !problem.includes(text)) problem = `${text} ${problem}`;
  }
  return [issue(path, problem)];
}

/** The field a misspelt key probably meant: compared by full path and by its last segment. */
function suggestField(full: string): string | undefined {
  const byPath = closest(
    full,
    FIELDS.map((f) => f.path),
  );
  if (byPath) return byPath;
  const leaf = full.split('.').pop() as string;
  const leaves = FIELDS.map((f) => f.path.split('.').pop() as string);
  const match = closest(leaf, leaves);
  return match ? FIELDS.find((f) => f.path.endsWith(`.${match}`) || f.path === match)?.path : undefined;
}

function getPath(target: Record<string, unknown>, path: string): unknown {
  let node: unknown = target;
  for (const part of path.split('.')) {
    if (!node || typeof node !== 'object') return undefined;
    node = (node as Record<string, unknown>)[part];
  }
  return node;
}

/** Secrets belong in the environment only; a config file is easy to commit or share by mistake. */
function secretsInFile(raw: Record<string, unknown>): ConfigIssue[] {
  const found: ConfigIssue[] = [];
  const walk = (node: unknown, path: string) => {
    if (!node || typeof node !== 'object' || Array.isArray(node)) return;
    for (const [key, value] of Object.entries(node as Record<string, unknown>)) {
      const full = path ? `${path}.${key}` : key;
      if (/secret|password/i.test(key)) {
        found.push({
          field: full,
          problem: 'looks like a secret; secrets are never read from the configuration file',
          fix:
            `remove it from the file; to bring your own application credential set ${BYO_CREDENTIAL_ID_ENV} ` +
            `and ${BYO_CREDENTIAL_SECRET_ENV} in the environment`,
        });
      } else walk(value, full);
    }
  };
  walk(raw, '');
  return found;
}

function deletePath(target: Record<string, unknown>, path: string): void {
  const parts = path.split('.');
  let node: unknown = target;
  for (const part of parts.slice(0, -1)) {
    if (!node || typeof node !== 'object') return;
    node = (node as Record<string, unknown>)[part];
  }
  if (node && typeof node === 'object') delete (node as Record<string, unknown>)[parts[parts.length - 1] as string];
}

function dedupe(issues: ConfigIssue[]): ConfigIssue[] {
  const seen = new Set<string>();
  return issues.filter((i) => {
    const key = `${i.field}\u0000${i.problem}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function round(n: number): number {
  return Math.round(n * 1e6) / 1e6;
}
