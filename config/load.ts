import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import { cloudsYamlWarnings } from './clouds';
import { CONFIG_FILE_ENV } from './fields';
import { formatIssues, parseConfig, type ConfigIssue, type PersistConfig } from './parse';

export const PROJECT_ROOT = resolve(__dirname, '..');
export const CONFIG_FILE_NAME = 'persist.config.yaml';

/** A configuration the user has to fix; `message` is ready to print (no stack trace needed). */
export class ConfigError extends Error {
  constructor(
    readonly file: string,
    readonly issues: ConfigIssue[],
  ) {
    super(`${file}: ${issues.length} problem${issues.length === 1 ? '' : 's'} in the configuration:\n${formatIssues(issues)}`);
    this.name = 'ConfigError';
  }
}

export interface LoadOptions {
  /** Default: $PERSIST_CONFIG_FILE, else persist.config.yaml in the project root. */
  file?: string;
  env?: Record<string, string | undefined>;
  now?: Date;
  /** Receives each warning; default: printed to stdout (cdktf relays an app's stderr as "[ERROR]" lines). */
  warn?: (message: string) => void;
}

/**
 * Reads persist.config.yaml (if present), applies PERSIST_* environment overrides, validates everything and
 * reads the SSH public key. Throws ConfigError listing every problem.
 */
export function loadConfig(options: LoadOptions = {}): PersistConfig {
  const env = options.env ?? process.env;
  const warn = options.warn ?? ((m: string) => process.stdout.write(`warning: ${m}\n`));
  const file = resolve(options.file ?? env[CONFIG_FILE_ENV] ?? resolve(PROJECT_ROOT, CONFIG_FILE_NAME));
  const shown = displayPath(file);
  const baseDir = dirname(file);

  let raw: unknown;
  const present = existsSync(file);
  if (present) {
    const doc = parseDocument(readFileSync(file, 'utf8'), { prettyErrors: true });
    if (doc.errors.length > 0) {
      throw new ConfigError(
        shown,
        doc.errors.map((e) => ({
          field: '(file)',
          problem: `is not valid YAML: ${e.message.split('\n')[0]}`,
          fix: 'fix the YAML syntax at that line (indent with spaces, `key: value`, quote values that contain ": " or "#")',
        })),
      );
    }
    raw = doc.toJS();
  }

  const result = parseConfig(raw, env, options.now ?? new Date());
  result.warnings.forEach((w) => warn(w));
  if (!result.ok) {
    const issues = present
      ? result.errors
      : [
          {
            field: '(file)',
            problem: `${shown} does not exist, and the environment does not supply every required field`,
            fix: `cp persist.config.example.yaml ${CONFIG_FILE_NAME} and fill it in (or set ${CONFIG_FILE_ENV})`,
          },
          ...result.errors,
        ];
    throw new ConfigError(shown, issues);
  }

  const config = result.config;
  const ssh = config.ssh;
  if (ssh.publicKeyPath) ssh.publicKeyPath = resolveFrom(baseDir, ssh.publicKeyPath);
  ssh.privateKeyPath = resolveFrom(baseDir, ssh.privateKeyPath);

  const problems: ConfigIssue[] = [];
  if (ssh.publicKeyPath) {
    const key = readPublicKey(ssh.publicKeyPath);
    if (typeof key === 'string') ssh.publicKey = key;
    else problems.push(key);
  }
  if (problems.length > 0) throw new ConfigError(shown, problems);
  if (!existsSync(ssh.privateKeyPath)) {
    warn(`ssh.privateKeyPath ${ssh.privateKeyPath} does not exist here; the ETL stage needs it to log in to the node`);
  }
  cloudsYamlWarnings(config, env, process.cwd()).forEach((w) => warn(w));
  return config;
}

/**
 * For main.ts: the configuration, or the problems printed and the process ended with exit code 1 — a user
 * mistake is not a crash, so no stack trace.
 */
export function loadConfigOrExit(options: LoadOptions = {}): PersistConfig {
  try {
    return loadConfig(options);
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`\n${e.message}\n\nNothing was synthesized. See docs/infra.md for every field.\n`);
      process.exit(1);
    }
    throw e;
  }
}

function readPublicKey(path: string): string | ConfigIssue {
  const fail = (problem: string, fix: string): ConfigIssue => ({
    field: 'ssh.publicKeyPath',
    env: 'PERSIST_SSH_PUBLIC_KEY_PATH',
    problem,
    fix,
  });
  if (!existsSync(path)) {
    return fail(`${path} does not exist`, 'create a key with `ssh-keygen -t ed25519` or point ssh.publicKeyPath at an existing .pub file');
  }
  const text = readFileSync(path, 'utf8').trim();
  if (text.includes('PRIVATE KEY')) {
    return fail(`${path} is a PRIVATE key`, 'use the .pub file next to it; the private key never leaves your machine');
  }
  if (!/^(ssh-(rsa|ed25519|dss)|ecdsa-sha2-\S+|sk-\S+) [A-Za-z0-9+/=]+( .*)?$/.test(text) || text.includes('\n')) {
    return fail(`${path} is not a single OpenSSH public key line`, 'use the .pub file written by ssh-keygen');
  }
  // The key text goes verbatim into the node stack's JSON, where Terraform would evaluate a `${...}` in its
  // comment; a control character there would end up in Nova's keypair and the node's authorized_keys.
  if (/[$%]\{/.test(text) || /[\p{Cc}]/u.test(text)) {
    return fail(
      `${path}'s comment contains "\${", "%{" or a control character, which Terraform would evaluate or garble`,
      `edit the comment (the text after the key) in ${path}, or regenerate it: ssh-keygen -c -C you@host -f ${path.replace(/\.pub$/, '')}`,
    );
  }
  return text;
}

function resolveFrom(baseDir: string, p: string): string {
  return isAbsolute(p) ? p : resolve(baseDir, p);
}

function displayPath(file: string): string {
  const rel = relative(process.cwd(), file);
  return rel && !rel.startsWith('..') ? rel : file;
}
