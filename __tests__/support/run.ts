import { memoryLogger, type Logger } from '../../etl/log';
import type { RunOnNodeOptions } from '../../etl/remote/run-on-node';
import type { RunSpec } from '../../etl/remote/run-spec';
import type { SshTarget } from '../../etl/remote/ssh';
import { standInRunSpec, type StandInNode, type StandInStorage } from '../../scripts/stand-in-spec';

/** How the runner reaches the stand-in node: its address, key and known_hosts. */
export function standInTarget(node: StandInNode): SshTarget {
  return { host: node.host, port: node.port, user: node.user, privateKeyPath: node.privateKeyPath, knownHostsPath: node.knownHostsPath };
}

/**
 * runOnNode's options for the stand-ins, as the runner builds them from a spec (scripts/stand-in-spec.ts): a
 * container and an ETL directory of the test's own, the zip read in place on the stand-in node.
 */
export function standInRun(p: {
  node: StandInNode;
  env: StandInStorage & { appCredential: { secret: string } };
  container: string;
  remoteDir: string;
  source: string;
  bundlePath: string;
  log?: Logger;
  spec?: (s: RunSpec) => RunSpec;
}): RunOnNodeOptions {
  const spec = standInRunSpec({ node: p.node, storage: p.env, container: p.container, remoteDir: p.remoteDir, source: p.source });
  return {
    spec: p.spec ? p.spec(spec) : spec,
    secret: p.env.appCredential.secret,
    target: standInTarget(p.node),
    stage: 'all',
    run: { force: false, breakLock: false },
    bundlePath: p.bundlePath,
    mount: true,
    sshWaitSeconds: 20,
    minFreeMb: 50,
    log: p.log ?? memoryLogger(),
  };
}
