import type { Command } from 'commander';
import type { Logger } from './log';

export const STAGE_NAMES = ['extract', 'transform', 'load'] as const;
export type StageName = (typeof STAGE_NAMES)[number];

export interface StageContext {
  /** The ETL work directory (see work-dir.ts). */
  workDir: string;
  /** Rerun even when the stage's manifest says its inputs are unchanged. */
  force: boolean;
  log: Logger;
  /**
   * The environment the stage reads its settings and credentials from (ETL_*, RCLONE_*).
   * @default process.env
   */
  env?: NodeJS.ProcessEnv;
}

export interface StageResult {
  stage: StageName;
  status: 'done' | 'skipped';
  /** Short human summary line, e.g. "32,000,204 ratings -> 22,400,142 / 4,800,031 / 4,800,031". */
  message: string;
  /** Machine-readable details, printed by `--json`. Never holds secrets. */
  details: Record<string, unknown>;
}

/**
 * One ETL stage. The CLI builds a subcommand from `addOptions` and passes the parsed options to `run`;
 * `all` gets the options of every stage, so option names must not collide across stages.
 */
export interface Stage<O = Record<string, unknown>> {
  name: StageName;
  description: string;
  addOptions(cmd: Command): Command;
  run(ctx: StageContext, options: O): Promise<StageResult>;
}
