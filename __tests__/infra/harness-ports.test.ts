import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// The stand-ins keep their ports in STATE/ports.env. local-openstack.sh settles its six ring ports on every
// start and MEMCACHED_PORT after them; rewriting the whole file with the six dropped MEMCACHED_PORT on every
// other restart, so the next `up` of a running stand-in picked a second memcached port (and each such restart
// rebuilt the rings). ports_env_set (scripts/harness-lib.sh) is the one writer.
const LIB = join(__dirname, '..', '..', 'scripts', 'harness-lib.sh');

function set(file: string, ...kv: string[]): { changed: boolean; text: string } {
  const r = spawnSync('bash', ['-c', 'set -euo pipefail; . "$0"; f=$1; shift; ports_env_set "$f" "$@"', LIB, file, ...kv], {
    encoding: 'utf8',
  });
  if (r.status !== 0 && r.status !== 1) throw new Error(`ports_env_set failed (${r.status}): ${r.stderr}`);
  return { changed: r.status === 0, text: readFileSync(file, 'utf8') };
}

const SIX = [
  'KEYSTONE_PORT=5000',
  'PROXY_PORT=8080',
  'OBJECT_PORT=6200',
  'CONTAINER_PORT=6201',
  'ACCOUNT_PORT=6202',
  'FAULT_PROXY_PORT=8090',
];

describe('ports.env (scripts/harness-lib.sh ports_env_set)', () => {
  it('a missing file is written with the keys in the order given', () => {
    const f = join(mkdtempSync(join(tmpdir(), 'ports-')), 'ports.env');
    expect(set(f, ...SIX)).toEqual({ changed: true, text: `${SIX.join('\n')}\n` });
  });

  it('settling the six ring ports twice keeps MEMCACHED_PORT and reports no change (no ring rebuild)', () => {
    const f = join(mkdtempSync(join(tmpdir(), 'ports-')), 'ports.env');
    const whole = `${[...SIX, 'MEMCACHED_PORT=11411'].join('\n')}\n`;
    writeFileSync(f, whole);
    expect(set(f, ...SIX)).toEqual({ changed: false, text: whole });
    expect(set(f, ...SIX)).toEqual({ changed: false, text: whole });
  });

  it('a moved port is replaced in place; the other lines stay as they were', () => {
    const f = join(mkdtempSync(join(tmpdir(), 'ports-')), 'ports.env');
    writeFileSync(f, `${[...SIX, 'MEMCACHED_PORT=11411'].join('\n')}\n`);
    const moved = SIX.map((kv) => (kv === 'OBJECT_PORT=6200' ? 'OBJECT_PORT=6210' : kv));
    expect(set(f, ...moved)).toEqual({ changed: true, text: `${[...moved, 'MEMCACHED_PORT=11411'].join('\n')}\n` });
  });

  it('a key the file lacks is appended; setting it to what it holds changes nothing', () => {
    const f = join(mkdtempSync(join(tmpdir(), 'ports-')), 'ports.env');
    writeFileSync(f, `${SIX.join('\n')}\n`);
    expect(set(f, 'MEMCACHED_PORT=11412')).toEqual({ changed: true, text: `${[...SIX, 'MEMCACHED_PORT=11412'].join('\n')}\n` });
    expect(set(f, 'MEMCACHED_PORT=11412').changed).toBe(false);
    // A key that is the prefix of another (PORT=, a bad name) must not touch the others.
    expect(set(f, 'PORT=1').text).toBe(`${[...SIX, 'MEMCACHED_PORT=11412', 'PORT=1'].join('\n')}\n`);
  });
});
