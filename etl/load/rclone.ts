import execa from 'execa';
import { createInterface } from 'node:readline';
import { EtlError } from '../errors';
import type { Logger } from '../log';
import { classifyRcloneFailure } from './rclone-errors';
import { redact } from '../redact';
import type { RcSession } from './rclone-rc';

export interface RcloneTarget {
  binary: string;
  remote: string;
  /** Path of an rclone config file, or undefined for rclone's default / RCLONE_CONFIG. */
  configPath?: string;
  /** Extra environment for rclone only (credentials as RCLONE_CONFIG_<REMOTE>_*): never argv. */
  env: Record<string, string>;
  /** Values that must never reach a log line. */
  secrets: string[];
  /** The load's one `rclone rcd` (rclone-rc.ts): container-ops and the container lock go through it. */
  rc?: RcSession;
}

/** Transfer statistics from rclone's JSON log (`--use-json-log`), the last one rclone printed. */
export interface RcloneStats {
  bytes: number;
  transfers: number;
  checks: number;
  errors: number;
  elapsedTime: number;
}

const EMPTY_STATS: RcloneStats = { bytes: 0, transfers: 0, checks: 0, errors: 0, elapsedTime: 0 };

export function parseRcloneLogLine(line: string): { msg: string; level: string; stats?: RcloneStats } | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    const o = JSON.parse(line) as { msg?: string; level?: string; stats?: Partial<RcloneStats> };
    const stats = o.stats ? { ...EMPTY_STATS, ...o.stats } : undefined;
    return { msg: String(o.msg ?? ''), level: String(o.level ?? 'info'), stats };
  } catch {
    return undefined;
  }
}

export function humanBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

export function formatStats(s: RcloneStats): string {
  const rate = s.elapsedTime > 0 ? s.bytes / s.elapsedTime : 0;
  return `${humanBytes(s.bytes)} in ${s.transfers} objects, ${s.checks} checked, ${s.elapsedTime.toFixed(1)}s, ${humanBytes(rate)}/s`;
}

/**
 * Runs one rclone command, forwarding its progress (stats every few seconds) to the logger with secrets
 * redacted, and returns the final stats. A failure becomes an EtlError that says what to do.
 */
export async function rclone(
  target: RcloneTarget,
  args: string[],
  what: string,
  log: Logger,
  options: {
    progress?: boolean;
    stdout?: boolean;
    /** Fed to rclone's stdin (rcat). */
    input?: string;
    /** A failure the caller expects and handles (a lock already held): rclone's ERROR lines are not logged. */
    quiet?: boolean;
  } = {},
): Promise<{ stats: RcloneStats; stdout: string }> {
  const full = [...args, '--use-json-log', '--stats', options.progress ? '5s' : '0', '-v'];
  if (target.configPath) full.push('--config', target.configPath);
  const child = execa(target.binary, full, {
    env: { ...target.env, RCLONE_STATS_ONE_LINE: 'true' },
    extendEnv: true,
    reject: false,
    stripFinalNewline: false,
    buffer: Boolean(options.stdout),
    ...(options.input !== undefined ? { input: options.input } : { stdin: 'ignore' as const }),
  });
  let stats = EMPTY_STATS;
  const stderrLines: string[] = [];
  // readline splits on \n and \r\n, keeps multi-byte characters split across chunks whole, and gives the last
  // line without a newline on close.
  const lines = child.stderr ? createInterface({ input: child.stderr, crlfDelay: Infinity }) : undefined;
  const stderrDone = lines ? new Promise<void>((r) => lines.once('close', () => r())) : Promise.resolve();
  lines?.on('line', (raw: string) => handleLine(raw));
  const handleLine = (raw: string) => {
    const line = redact(raw, target.secrets);
    const parsed = parseRcloneLogLine(line);
    if (parsed?.stats) {
      stats = parsed.stats;
      if (options.progress) log.progress(`  ${what}: ${formatStats(stats)}`);
      return;
    }
    const msg = parsed ? parsed.msg : line;
    // Credentials often come from the environment, so rclone's "no config file" notice is noise.
    if (/Config file .* not found - using defaults/.test(msg)) return;
    if (msg.trim()) stderrLines.push(msg);
    if (!options.quiet && parsed && (parsed.level === 'error' || parsed.level === 'critical')) log.warn(`rclone: ${parsed.msg}`);
  };
  let result: Awaited<typeof child>;
  try {
    result = await child;
  } catch (e) {
    throw new EtlError(`could not run rclone: ${(e as Error).message}`, 'Install rclone (apt-get install rclone) or pass --rclone <path>.');
  }
  await Promise.race([stderrDone, new Promise((r) => setTimeout(r, 1000).unref())]);
  if ((result as { code?: string }).code === 'ENOENT' || (result.exitCode === undefined && result.failed)) {
    throw new EtlError(
      `rclone was not found ('${target.binary}')`,
      'Install rclone (apt-get install rclone; Chameleon images ship it) or pass --rclone <path>.',
    );
  }
  if (result.exitCode !== 0) {
    throw classifyRcloneFailure(stderrLines.join('\n'), what, target.remote, result.exitCode);
  }
  return { stats, stdout: options.stdout ? redact(String(result.stdout ?? ''), target.secrets) : '' };
}
