import { readFileSync } from 'node:fs';
import { EtlError } from './errors';

/**
 * What the runner asks the node's ETL to do, as one JSON value on the ETL's stdin (`node etl.js <stage> --job -`):
 * the stage options, by the names the stages parse them under. Built from the run spec by the runner
 * (etl/remote/node-job.ts), so no option is rebuilt as a command-line flag on the way. Never holds a secret.
 */
export interface EtlJobOptions {
  workDir: string;
  force: boolean;
  rcloneConfig: string;
  container: string;
  remote: string;
  url?: string;
  source?: string;
  sha256?: string;
  allowUnverified?: boolean;
  seed: string;
  ratios: string;
  transfers?: string;
  checkers?: string;
  keep?: string;
  breakLock?: boolean;
}

export interface EtlJob {
  format: 1;
  options: EtlJobOptions;
}

/**
 * Reads a job (a file, or `-` for stdin) and returns its options, checked against the options the command
 * knows: a job naming an option this bundle does not have means the runner and the bundle disagree.
 */
export function readJob(
  source: string,
  known: readonly string[],
  readText: (s: string) => string = (s) => readFileSync(s === '-' ? 0 : s, 'utf8'),
): Record<string, string | boolean> {
  let job: unknown;
  try {
    job = JSON.parse(readText(source));
  } catch (e) {
    throw new EtlError(
      `the ETL job from ${source === '-' ? 'stdin' : source} is not JSON: ${(e as Error).message}`,
      'The runner writes it; rerun `npm run etl:remote`.',
    );
  }
  const j = job as Partial<EtlJob> | null;
  if (j?.format !== 1 || typeof j.options !== 'object' || j.options === null) {
    throw new EtlError(
      'the ETL job is not a {format: 1, options} object',
      'The runner and the bundle on the node come from different versions: rerun `npm run etl:remote`, which ships the bundle again.',
    );
  }
  const out: Record<string, string | boolean> = {};
  for (const [k, v] of Object.entries(j.options)) {
    if (v === undefined || v === null) continue;
    if (!known.includes(k)) {
      throw new EtlError(
        `the ETL job names an option this bundle does not have: ${k}`,
        'The runner and the bundle on the node come from different versions: rerun `npm run etl:remote`, which ships the bundle again.',
      );
    }
    if (typeof v !== 'string' && typeof v !== 'boolean')
      throw new EtlError(
        `the ETL job's option ${k} is neither text nor true/false`,
        'The runner writes the job; rerun `npm run etl:remote`.',
      );
    out[k] = v;
  }
  return out;
}
