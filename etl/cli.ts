#!/usr/bin/env node
import { Command, Option } from 'commander';
import { resolve } from 'node:path';
import { DISK_FULL_EXIT, diskFullError, isDiskFull, isEtlError, reportError } from './errors';
import { readJob } from './job';
import { stderrLogger, type Logger } from './log';
import type { Stage, StageContext, StageResult } from './stage';
import { extractStage } from './extract/stage';
import { transformStage } from './transform/stage';
import { loadStage } from './load/stage';

// Stages are typed by their own options; the CLI only hands commander's parsed object through.
const STAGES = [extractStage, transformStage, loadStage] as unknown as Stage[];

interface CommonOptions {
  workDir: string;
  force: boolean;
  json: boolean;
  job?: string;
}

function addCommonOptions(cmd: Command): Command {
  return cmd
    .addOption(
      new Option('--work-dir <dir>', 'ETL work directory (downloads, staging, output, manifests)').env('ETL_WORK_DIR').default('.work'),
    )
    .option('--force', 'rerun the stage even if its manifest says nothing changed', false)
    .option('--json', 'print a machine-readable summary on stdout', false)
    .option('--job <file>', "the options as one JSON value, from a file or '-' (stdin): how the remote runner passes them (etl/job.ts)");
}

/** The command's parsed options, with a job's (if any) over them. */
function withJob(cmd: Command, opts: CommonOptions & Record<string, unknown>): CommonOptions & Record<string, unknown> {
  if (!opts.job) return opts;
  const known = cmd.options.map((o) => o.attributeName()).filter((k) => k !== 'job');
  return { ...opts, ...readJob(opts.job, known) };
}

async function runStages(stages: Stage[], options: CommonOptions & Record<string, unknown>, log: Logger) {
  const ctx: StageContext = { workDir: resolve(options.workDir), force: options.force, log };
  const results: StageResult[] = [];
  for (const stage of stages) {
    const started = Date.now();
    log.info(`==> ${stage.name}`);
    let result: StageResult;
    try {
      result = await stage.run(ctx, options);
    } catch (e) {
      // ENOSPC from any write of any stage (downloads, staging, outputs, manifests, rclone's lists) is one
      // "disk full" error with its own exit status, not an internal error with a stack trace.
      if (isDiskFull(e) && !(isEtlError(e) && e.exitCode === DISK_FULL_EXIT))
        throw diskFullError(`running the ${stage.name} stage`, ctx.workDir);
      throw e;
    }
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    log.info(`<== ${stage.name}: ${result.status} in ${seconds}s: ${result.message}`);
    results.push({ ...result, details: { ...result.details, seconds: Number(seconds) } });
  }
  if (options.json) process.stdout.write(`${JSON.stringify({ ok: true, stages: results }, null, 2)}\n`);
}

export function buildProgram(log: Logger = stderrLogger()): Command {
  const program = new Command('etl')
    .description('MovieLens ETL for chameleon-persist: extract -> transform -> load into the object store')
    .showHelpAfterError()
    .configureHelp({ showGlobalOptions: true });

  // Every stage command also accepts the other stages' options (and ignores them), so one command line
  // (the remote runner's, a user's shell history) serves `all` and each stage alike.
  for (const stage of STAGES) {
    let cmd = stage.addOptions(program.command(stage.name).description(stage.description));
    for (const other of STAGES) if (other !== stage) cmd = other.addOptions(cmd);
    const withCommon = addCommonOptions(cmd);
    withCommon.action((opts: CommonOptions & Record<string, unknown>) => runStages([stage], withJob(withCommon, opts), log));
  }
  let all = program.command('all').description(`run every stage in order: ${STAGES.map((s) => s.name).join(' -> ')}`);
  for (const stage of STAGES) all = stage.addOptions(all);
  const allWithCommon = addCommonOptions(all);
  allWithCommon.action((opts: CommonOptions & Record<string, unknown>) => runStages(STAGES, withJob(allWithCommon, opts), log));
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const log = stderrLogger();
  try {
    await buildProgram(log).parseAsync(argv);
    return 0;
  } catch (e) {
    return reportError(e, log, true);
  }
}

if (require.main === module) {
  main(process.argv).then((code) => {
    process.exitCode = code;
  });
}
