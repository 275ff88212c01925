import type { EtlJob } from '../job';
import type { RunSpec } from './run-spec';

/** How this one run goes, beyond the spec: not facts of the deployment, so not part of it. */
export interface RunChoices {
  force: boolean;
  breakLock: boolean;
  transfers?: number;
  checkers?: number;
  keep?: number;
}

/** The node's part of the run spec, as the job its ETL reads on stdin (etl/job.ts). Pure. */
export function nodeJob(spec: RunSpec, run: RunChoices): EtlJob {
  const d = spec.dataset;
  const opt = (n: number | undefined) => (n === undefined ? undefined : String(n));
  return {
    format: 1,
    options: {
      workDir: `${spec.layout.remoteDir}/work`,
      force: run.force,
      rcloneConfig: spec.layout.rcloneConfigPath,
      container: spec.storage.container,
      remote: spec.layout.remoteName,
      url: d.url,
      source: d.source,
      sha256: d.sha256,
      allowUnverified: d.allowUnverified || undefined,
      seed: String(d.seed),
      ratios: d.ratios.join(','),
      transfers: opt(run.transfers),
      checkers: opt(run.checkers),
      keep: opt(run.keep),
      breakLock: run.breakLock || undefined,
    },
  };
}
