import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { NodeCoordinates } from '../../etl/remote/coordinates';
import { STAND_INS_DIR, STARTED_MARKER } from './global-teardown';

export const NODE_SCRIPT = join(__dirname, '..', '..', 'scripts', 'local-node.sh');
export const NODE_STATE = join(STAND_INS_DIR, 'node');

/** Starts the sshd stand-in once per test run (flock in the script) and says how to reach it. */
export function ensureNode(): NodeCoordinates {
  let running = true;
  try {
    execFileSync('bash', [NODE_SCRIPT, 'status', NODE_STATE], { stdio: 'ignore' });
  } catch {
    running = false;
  }
  if (!running) {
    execFileSync('bash', [NODE_SCRIPT, 'up', NODE_STATE], { stdio: ['ignore', 'inherit', 'inherit'] });
    writeFileSync(join(NODE_STATE, STARTED_MARKER), NODE_SCRIPT);
  }
  return JSON.parse(readFileSync(join(NODE_STATE, 'node.json'), 'utf8')) as NodeCoordinates;
}
