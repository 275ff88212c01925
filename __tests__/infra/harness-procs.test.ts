import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// `local-cloud.sh down` stops the dnsmasq and haproxy daemons that Neutron's agents forked. They write their pid
// files themselves, and once every one of a run's was left running by a `down` that went by those files. Now they
// are found by their arguments, which name files under the state dir (scripts/harness-lib.sh state_dir_procs).
// Stand-ins here: shell scripts named dnsmasq and haproxy (a script's process is named after the script).
const LIB = join(__dirname, '..', '..', 'scripts', 'harness-lib.sh');
const children: ChildProcess[] = [];
afterAll(() => children.forEach((c) => c.kill('SIGKILL')));

const bin = mkdtempSync(join(tmpdir(), 'procs-bin-'));
for (const name of ['dnsmasq', 'haproxy', 'other']) {
  writeFileSync(join(bin, name), '#!/bin/sh\nwhile :; do sleep 1; done\n');
  chmodSync(join(bin, name), 0o755);
}

function daemon(name: string, ...args: string[]): number {
  const c = spawn(join(bin, name), args, { stdio: 'ignore' });
  children.push(c);
  return c.pid!;
}

function procs(dir: string, ...names: string[]): number[] {
  const r = spawnSync('bash', ['-c', 'set -euo pipefail; . "$0"; state_dir_procs "$@"', LIB, dir, ...names], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`state_dir_procs failed (${r.status}): ${r.stderr}`);
  return r.stdout
    .split('\n')
    .filter(Boolean)
    .map(Number)
    .sort((a, b) => a - b);
}

describe('the cloud harness finds the daemons Neutron forked for its state dir (state_dir_procs)', () => {
  it("finds exactly the named commands whose arguments name a path under this state dir, not another state dir's or other programs", async () => {
    const S = mkdtempSync(join(tmpdir(), 'procs-state-'));
    // Another state dir whose path starts with this one's: the trailing slash keeps them apart.
    const S2 = `${S}-other`;
    mkdirSync(S2);
    const ours = [
      daemon('dnsmasq', '--no-hosts', `--pid-file=${S}/neutron/dhcp/net-1/pid`),
      daemon('haproxy', '-f', `${S}/neutron/ns-metadata-proxy/router-1.conf`),
    ];
    const theirs = [
      daemon('haproxy', '-f', `${S2}/neutron/ns-metadata-proxy/router-2.conf`),
      daemon('dnsmasq', '--pid-file=/run/dnsmasq/dnsmasq.pid'),
      daemon('other', `${S}/neutron/dhcp/net-1/pid`),
    ];
    await new Promise((r) => setTimeout(r, 300));
    expect(procs(S, 'dnsmasq', 'haproxy')).toEqual([...ours].sort((a, b) => a - b));
    expect(procs(S, 'haproxy')).toEqual([ours[1]]);
    expect(procs(S2, 'dnsmasq', 'haproxy')).toEqual([theirs[0]]);
    // A state dir nothing names: none (and no failure under set -e).
    expect(procs(mkdtempSync(join(tmpdir(), 'procs-none-')), 'dnsmasq', 'haproxy')).toEqual([]);
  });
});
