import { join } from 'node:path';

/**
 * Where each stage reads and writes inside the ETL work directory. One place, so the stages, the remote
 * runner and the tests agree on it.
 *
 *   downloads/   extract: the dataset zip (and `<zip>.part` while a download is under way)
 *   staging/     extract: the unzipped dataset, e.g. staging/ml-32m/ratings.csv
 *   output/      transform: what load publishes (training/, validation/, evaluation/, maps/)
 *   manifests/   one JSON manifest per stage: what it produced and from which inputs
 */
export interface WorkLayout {
  root: string;
  downloads: string;
  staging: string;
  output: string;
  manifests: string;
}

export function workLayout(workDir: string): WorkLayout {
  return {
    root: workDir,
    downloads: join(workDir, 'downloads'),
    staging: join(workDir, 'staging'),
    output: join(workDir, 'output'),
    manifests: join(workDir, 'manifests'),
  };
}
