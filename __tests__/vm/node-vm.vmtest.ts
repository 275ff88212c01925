import execa from 'execa';
import { nodeView } from '../../etl/remote/node-view';
import { RUN_SPEC_FORMAT, type RunSpec } from '../../etl/remote/run-spec';
import { currentObject, readerView } from '../support/versions';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MOUNT_PATH_UNIT, MOUNT_SERVICE, READY_MARKER } from '../../cloud-init/render';
import { generateMovieLensZip } from '../../testing/movielens-fixture';
import { mountCommand } from '../../etl/remote/node-commands';
import { synthesizedNode, type SynthesizedNode } from '../../scripts/local-vm/user-data';
import { createAppCredential, ensureOpenStack, revokeAppCredential, type AppCredential, type OpenStackEnv } from '../support/openstack';
import {
  bootId,
  bootVm,
  IMAGE_SCRIPT,
  LOOPBACK_SCRIPT,
  ROOT,
  sleep,
  stopVm,
  vmOk,
  vmRun,
  waitFor,
  waitForSsh,
  type Vm,
} from './vm-support';
import { Timings } from '../support/timings';

/**
 * The node's cloud-config booted for real: a Debian 12 VM under qemu (TCG), seeded with the synthesized node
 * stack's user_data byte for byte, reached only through a hostfwd on 127.0.0.1; the runner's real entry point
 * (`npm run etl:remote`) loads a generated dataset through it into the local Swift. See docs/local-vm.md.
 */
const HOUR = 3600_000;
const teamId = `vm${process.pid}`;
const SVC = MOUNT_SERVICE;
const PATH_UNIT = MOUNT_PATH_UNIT;

let env: OpenStackEnv;
let node: SynthesizedNode;
let vm: Vm;
let dir: string;
let timings: Timings;
let zipOnNode: string;
let firstBoot: string;
const transcripts: string[] = [];
const extraCredentials: AppCredential[] = [];

const mp = () => node.cloudInit.mountPoint;

/** `npm run etl:remote -- <args>` as a user types it (npm, then tsx, then etl/remote-cli.ts). */
async function etlRemote(args: string[], extraEnv: Record<string, string> = {}) {
  for (let attempt = 0; ; attempt++) {
    const r = await execa('npm', ['run', '--silent', 'etl:remote', '--', ...args], {
      cwd: ROOT,
      reject: false,
      env: { PERSIST_STATE_DIR: join(dir, 'no-state'), PERSIST_APP_CREDENTIAL_SECRET: env.appCredential.secret, ...extraEnv },
      timeout: HOUR,
    });
    transcripts.push(r.stdout, r.stderr);
    // The runner's ssh gives the node 10 s for its banner (etl/remote/ssh.ts); a TCG guest on a loaded host can
    // miss that. Such a run is repeated once, and says so; any other failure is the test's answer.
    if (r.exitCode === 0 || attempt >= 1 || !/Connection timed out during banner exchange|kex_exchange_identification/.test(r.stderr))
      return r;
    process.stderr.write("vm test: the runner could not reach the VM's sshd in time (banner exchange); running it once more\n");
  }
}

/**
 * The run spec the etl stack would give the runner (etl/remote/run-spec.ts): the node stack's layout, the VM
 * as the node, the local Swift as the store, the dataset URL a deploy has (each run passes --source instead).
 */
function vmSpec(credentialId = env.appCredential.id): RunSpec {
  return {
    format: RUN_SPEC_FORMAT,
    node: {
      host: vm.host,
      port: vm.port,
      user: 'cc',
      privateKeyPath: vm.privateKeyPath,
      serverId: vm.instanceId,
      consoleCloud: 'kvm_tacc',
    },
    layout: node.layout,
    storage: { container: node.containerName, authUrl: env.authUrl, region: env.region, userId: env.userId, credentialId },
    dataset: {
      url: 'https://files.grouplens.org/datasets/movielens/ml-32m.zip',
      allowUnverified: false,
      seed: 42,
      ratios: [0.7, 0.15, 0.15],
    },
  };
}

function specFile(credentialId?: string): string {
  const file = join(dir, `spec-${credentialId ?? 'default'}.json`);
  writeFileSync(file, JSON.stringify(vmSpec(credentialId)));
  return file;
}

const common = () => ['--known-hosts', join(dir, 'runner_known_hosts'), '--source', zipOnNode, '--min-free-mb', '500', '--ssh-wait', '120'];

const unitProp = async (unit: string, prop: string) => (await vmOk(vm, `systemctl show -p ${prop} --value ${unit}`)).trim();
const store = () => nodeView(mp()).store;
const mounted = async () => (await vmRun(vm, `findmnt -rn -o FSTYPE,OPTIONS --mountpoint ${store()}`)).stdout.trim();

async function waitMounted(seconds: number): Promise<string> {
  return waitFor(`the mount at ${mp()}`, seconds, async () => {
    const r = await vmRun(vm, `ls ${mp()}/training`);
    return r.exitCode === 0 && r.stdout.trim() ? r.stdout : undefined;
  });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vm-test-'));
  mkdirSync(join(dir, 'no-state'));
  mkdirSync(join(ROOT, '.stand-ins'), { recursive: true });
  timings = new Timings(join(ROOT, '.stand-ins', `vm-timings-${process.pid}.jsonl`), 'vm test');

  // The image: built once per machine (cold) or taken from the cache (recipe unchanged).
  const t = timings.now();
  const built = await execa('bash', [IMAGE_SCRIPT], { reject: false, timeout: HOUR });
  if (built.exitCode !== 0) throw new Error(`image build failed:\n${built.stderr}`);
  timings.mark(/cached image/.test(built.stderr) ? 'image (cached)' : 'image (cold build)', t);

  env = ensureOpenStack();
  node = synthesizedNode(teamId);
  writeFileSync(join(dir, 'user-data'), node.userData);
  await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'vm-test', '-f', join(dir, 'id_ed25519')]);
  const t1 = timings.now();
  vm = bootVm(join(dir, 'vm'), join(dir, 'user-data'), join(dir, 'id_ed25519.pub'), join(dir, 'id_ed25519'));
  await waitForSsh(vm, 1800);
  timings.mark('boot to SSH', t1);
  firstBoot = await bootId(vm);
  // What the etl stack's runner waits for, measured separately here.
  const w = await vmRun(vm, 'cloud-init status --wait >/dev/null; cloud-init status --long', { timeoutMs: 2 * HOUR });
  timings.mark('boot to cloud-init done', t1);
  transcripts.push(w.stdout);
  // Where cloud-init's time went: its own per-module blame (apt-get update + fuse3, the setup script's installs).
  const blame = (await vmRun(vm, 'cloud-init analyze blame')).stdout;
  for (const [module, phase] of [
    ['config-package[-_]update[-_]upgrade[-_]install', 'cloud-init packages module'],
    ['config-scripts[-_]user', 'cloud-init runcmd (setup script)'],
  ]) {
    const m = new RegExp(`([\\d.]+)s \\((?:[\\w-]+)/${module}\\)`).exec(blame);
    if (m) timings.record(phase, Number(m[1]));
  }
}, 3 * HOUR);

afterAll(async () => {
  try {
    if (vm) {
      const logs = await vmRun(vm, 'sudo cat /var/log/cloud-init-output.log; sudo journalctl -b --no-pager -n 300 -o short-monotonic', {
        timeoutMs: 60_000,
      });
      writeFileSync(join(ROOT, '.stand-ins', `vm-logs-${process.pid}.txt`), logs.stdout);
    }
  } catch {
    // best effort: the logs are for a human reading a failure
  } finally {
    if (vm) stopVm(vm.stateDir);
    for (const c of extraCredentials) await revokeAppCredential(env, c).catch(() => undefined);
  }
  if (timings) process.stderr.write(`vm test timings (s): ${JSON.stringify(timings.phases)}\n`);
  // The secret came from the environment; it must appear in nothing the runner or the VM printed.
  if (env) for (const t of transcripts) expect(t).not.toContain(env.appCredential.secret);
}, 600_000);

describe("a Debian 12 VM booted from the synthesized node stack's user_data", () => {
  test('the seed carried the user_data byte for byte, and the VM is reachable only through 127.0.0.1', async () => {
    const seen = await vmOk(vm, 'sudo cat /var/lib/cloud/instance/user-data.txt | sha256sum');
    expect(seen.split(' ')[0]).toBe(createHash('sha256').update(node.userData).digest('hex'));
    expect(node.userData).toContain(`chi_tacc:${node.containerName}`);
    const qemu = readFileSync(`/proc/${vm.pid}/cmdline`, 'utf8').split('\0');
    expect(qemu.join(' ')).toContain(`hostfwd=tcp:127.0.0.1:${vm.port}-:22`);
    expect(qemu).toContain('tcg,thread=multi');
  });

  test('cloud-init ends done, with no warning in its logs', async () => {
    const r = await vmRun(vm, 'cloud-init status --long');
    expect(r.stdout).toMatch(/^status: done$/m);
    expect(r.stdout).not.toMatch(/degraded|errors: \[[^\]]/);
    expect(r.exitCode).toBe(0);
    const warnings = await vmRun(
      vm,
      "sudo grep -hE 'WARNING|Traceback|\\[ERROR\\]|DEPRECAT' /var/log/cloud-init.log /var/log/cloud-init-output.log",
    );
    expect(warnings.stdout).toBe('');
    const out = await vmOk(vm, 'sudo cat /var/log/cloud-init-output.log');
    expect(out).toMatch(/chameleon-persist-setup: done: rclone v1\.\d+.*, node v(1[89]|[2-9]\d)\./);
    // needrestart (preinstalled, as on CC-Ubuntu24.04) was kept quiet: nothing restarted under cloud-init.
    expect(out).toContain('needrestart is suspended');
    expect(out).not.toMatch(/Restarting services|Restarting .*\.service|Daemons using outdated libraries/i);
  });

  test('every package and setting the setup script promises, and no failed unit', async () => {
    const pkgs = await vmOk(vm, "dpkg-query -W -f='${Package} ${Status}\\n' fuse3 rclone docker.io nodejs");
    for (const p of ['fuse3', 'rclone', 'docker.io', 'nodejs']) expect(pkgs).toContain(`${p} install ok installed`);
    // --no-install-recommends: docker.io's Recommends (git, among them) stayed out.
    expect((await vmRun(vm, "dpkg-query -W -f='${Status}' git")).stdout).not.toContain('install ok installed');
    expect(Number((await vmOk(vm, 'node -p \'process.versions.node.split(".")[0]\'')).trim())).toBeGreaterThanOrEqual(18);
    expect(await vmOk(vm, 'command -v rclone docker node fusermount3 | wc -l')).toMatch(/^4\s*$/);
    expect(await vmOk(vm, 'grep -x user_allow_other /etc/fuse.conf')).toMatch(/^user_allow_other$/m);
    const view = nodeView(mp());
    expect(
      await vmOk(
        vm,
        `stat -c '%U %G %a' ${view.store} ${view.currentLink.replace(/\/current$/, '')} ${node.cloudInit.etlDir} ~/.config/rclone`,
      ),
    ).toBe('cc cc 755\ncc cc 755\ncc cc 755\ncc cc 700\n'.trimEnd());
    // The tutorial's path is a link to the link the runner switches (dangling until a version is published).
    expect((await vmOk(vm, `readlink ${mp()}`)).trim()).toBe(view.currentLink);
    expect(await vmOk(vm, 'id -nG')).toMatch(/\bdocker\b/);
    expect((await vmOk(vm, 'sudo -n true && echo sudo-ok')).trim()).toBe('sudo-ok');
    expect(await vmOk(vm, `test -s ${READY_MARKER} && echo ready`)).toMatch(/ready/);
    expect((await vmOk(vm, `systemctl is-enabled docker.service ${SVC} ${PATH_UNIT}`)).split('\n').filter(Boolean)).toEqual([
      'enabled',
      'enabled',
      'enabled',
    ]);
    expect((await vmRun(vm, `systemctl is-active docker.service ${PATH_UNIT}`)).stdout.split('\n').filter(Boolean)).toEqual([
      'active',
      'active',
    ]);
    expect((await vmOk(vm, 'systemctl list-units --state=failed --no-legend --plain')).trim()).toBe('');
    // The unit as systemd 252 reads it: no start limit, restarted forever.
    expect(await unitProp(SVC, 'StartLimitIntervalUSec')).toMatch(/^(0|infinity)$/);
    expect(await unitProp(SVC, 'Restart')).toBe('always');
    // No unknown keys in what the project rendered (systemd would have logged them).
    expect(
      (await vmRun(vm, `sudo journalctl -b --no-pager -o cat | grep -E 'rclone-object-mount.*(Unknown|unknown|Ignoring)'`)).stdout,
    ).toBe('');
  });
});

describe('the runner, through its real entry point, against the VM', () => {
  beforeAll(async () => {
    // The honest work-around for Keystone's catalog naming 127.0.0.1 (docs/local-vm.md): installed by the test
    // harness over SSH, not by anything the project renders.
    const ports = [...new Set([env.authUrl, env.swiftUrl].map((u) => new URL(u).port))];
    await vmOk(vm, `sudo bash -s -- ${ports.join(' ')}`, { input: readFileSync(LOOPBACK_SCRIPT, 'utf8') });
    const zip = join(dir, 'ml-vm.zip');
    await generateMovieLensZip({ outPath: zip, rows: 40_000, seed: 11, name: 'ml-vm', workDir: dir });
    zipOnNode = '/home/cc/ml-vm.zip';
    await vmOk(vm, `cat > ${zipOnNode}`, { input: readFileSync(zip) });
    const back = await vmOk(vm, `sha256sum ${zipOnNode}`);
    expect(back.split(' ')[0]).toBe(createHash('sha256').update(readFileSync(zip)).digest('hex'));
  }, 600_000);

  test(
    '`npm run etl:remote -- all` connects as cc, delivers rclone.conf, ships the bundle, runs every stage into Swift, mounts',
    async () => {
      const t = timings.now();
      const r = await etlRemote(['all', '--spec', specFile(), ...common()]);
      timings.mark('ETL all (first run, 40k ratings)', t);
      expect(r.stderr).toContain(`connecting to cc@127.0.0.1:${vm.port}`);
      expect(r.stderr).toMatch(/shipping the ETL bundle/);
      for (const stage of ['extract', 'transform', 'load']) expect(r.stderr).toContain(`[node] <== ${stage}: done`);
      expect(r.stderr).toMatch(new RegExp(`${mp()} shows version [0-9a-f]{16} of ${node.containerName} \\(read-only\\)`));
      expect(r.exitCode).toBe(0);
      expect((await vmOk(vm, `stat -c '%U %a' ${node.cloudInit.rcloneConfigPath}`)).trim()).toBe('cc 600');
      const v = await readerView(env, node.containerName);
      expect(v.problems).toEqual([]);
      expect([...v.current.keys()].filter((k) => k.startsWith('training/')).length).toBeGreaterThan(0);
      expect((await vmOk(vm, `readlink -f ${mp()}`)).trim()).toBe(`${store()}/datasets/${v.pointer!.current}`);
    },
    2 * HOUR,
  );

  test('the .path unit mounts the container read-only; the files are what Swift holds', async () => {
    expect(await mounted()).toMatch(/^fuse\.rclone ro,/);
    expect((await vmOk(vm, `systemctl is-active ${SVC} ${PATH_UNIT}`)).split('\n').filter(Boolean)).toEqual(['active', 'active']);
    const objects = (await readerView(env, node.containerName)).current;
    const training = [...objects.keys()]
      .filter((k) => k.startsWith('training/'))
      .map((k) => k.slice('training/'.length))
      .sort();
    expect((await vmOk(vm, `ls ${mp()}/training`)).split('\n').filter(Boolean).sort()).toEqual(training);
    const first = `training/${training[0]}`;
    expect((await vmOk(vm, `md5sum ${mp()}/${first}`)).split(' ')[0]).toBe(objects.get(first)!);
    const w = await vmRun(vm, `touch ${mp()}/written-by-test`);
    expect(w.exitCode).not.toBe(0);
    expect(w.stderr).toMatch(/Read-only file system/);
    // A healthy start: no FAILURE line in what the docs tell users to look at (issue 14, item 4).
    const status = (await vmRun(vm, `systemctl status --no-pager -n 0 ${SVC}`)).stdout;
    expect(status).toMatch(/ExecStartPre=.*status=0\/SUCCESS/);
    expect(status).not.toMatch(/FAILURE|status=[1-9]\d*\//);
  });

  test('readable by another user, by root, and from a Docker container (image from a local rootfs, no registry)', async () => {
    const manifest = String(await currentObject(env, node.containerName, 'manifest.json'));
    expect(JSON.parse(manifest).transform).toBeDefined();
    expect(await vmOk(vm, `sudo -u nobody cat ${mp()}/manifest.json`)).toBe(manifest.trimEnd());
    expect(await vmOk(vm, `sudo cat ${mp()}/manifest.json`)).toBe(manifest.trimEnd());
    await vmOk(
      vm,
      'set -e; r=$(mktemp -d); mkdir -p $r/bin; cp /bin/busybox $r/bin/; for a in sh ls cat md5sum sleep; do ln -s busybox $r/bin/$a; done; ' +
        'tar -C $r -c . | docker import - persist-reader:local >/dev/null; rm -rf $r',
      { timeoutMs: 600_000 },
    );
    // As cc, through its docker group (no sudo), the README's bind form.
    const inDocker = await vmOk(
      vm,
      `docker run --rm --mount type=bind,source=${mp()},target=${mp()},readonly persist-reader:local cat ${mp()}/manifest.json`,
      { timeoutMs: 600_000 },
    );
    expect(inDocker).toBe(manifest.trimEnd());
    // Two readers that keep running: the README's form, and the parent bound with rslave (docs/local-vm.md).
    await vmOk(
      vm,
      `docker run -d --name reader-direct --mount type=bind,source=${mp()},target=${mp()},readonly persist-reader:local sleep 100000`,
      { timeoutMs: 600_000 },
    );
    await vmOk(
      vm,
      `docker run -d --name reader-parent --mount type=bind,source=/mnt,target=/mnt,readonly,bind-propagation=rslave persist-reader:local sleep 100000`,
      { timeoutMs: 600_000 },
    );
    for (const c of ['reader-direct', 'reader-parent'])
      expect(await vmOk(vm, `docker exec ${c} cat ${mp()}/manifest.json`)).toBe(manifest.trimEnd());
  }, 1800_000);

  test(
    "an unchanged rerun (the etl stack's --from-env path) skips every stage and leaves the mount alone",
    async () => {
      const before = await unitProp(SVC, 'InvocationID');
      const t = timings.now();
      const r = await etlRemote(['all', '--from-env', ...common()], { PERSIST_ETL_SPEC: JSON.stringify(vmSpec()) });
      timings.mark('ETL all (unchanged rerun)', t);
      expect(r.exitCode).toBe(0);
      for (const stage of ['extract', 'transform', 'load']) expect(r.stderr).toContain(`<== ${stage}: skipped`);
      expect(r.stderr).not.toMatch(/shipping the ETL bundle/);
      // Not restarted (issue 14, item 2): same systemd invocation, and the running README-form reader still reads.
      expect(await unitProp(SVC, 'InvocationID')).toBe(before);
      expect(await vmOk(vm, `docker exec reader-direct ls ${mp()}/training`)).not.toBe('');
    },
    HOUR,
  );

  test(
    'a new credential (rclone.conf changed) remounts; a reader bound to the parent with rslave survives it',
    async () => {
      const rotated = await createAppCredential(env, `vm-rotated-${process.pid}`);
      extraCredentials.push(rotated);
      const before = await unitProp(SVC, 'InvocationID');
      const r = await etlRemote(['load', '--spec', specFile(rotated.id), ...common()], { PERSIST_APP_CREDENTIAL_SECRET: rotated.secret });
      transcripts.push(r.stderr.replaceAll(rotated.secret, ''));
      expect(r.stderr).not.toContain(rotated.secret);
      expect(r.exitCode).toBe(0);
      expect(await unitProp(SVC, 'InvocationID')).not.toBe(before);
      expect(await vmOk(vm, `grep -c ${rotated.id} ${node.cloudInit.rcloneConfigPath}`)).toMatch(/^1/);
      // The parent bound with rslave sees the new FUSE mount; the README's direct bind keeps the dead one.
      expect(await vmOk(vm, `docker exec reader-parent ls ${mp()}/training`)).not.toBe('');
      const direct = await vmRun(vm, `docker exec reader-direct ls ${mp()}/training`);
      expect(direct.exitCode).not.toBe(0);
      expect(direct.stdout + direct.stderr).toMatch(/Transport endpoint is not connected/);
      await vmOk(vm, 'docker rm -f reader-direct reader-parent >/dev/null');
    },
    HOUR,
  );

  test('unmounting: stopping the service alone does not last (the .path unit restarts it); stopping the .path first does', async () => {
    await vmOk(vm, `sudo systemctl stop ${SVC}`);
    await waitMounted(60);
    await vmOk(vm, `sudo systemctl stop ${PATH_UNIT} ${SVC}`);
    try {
      await sleep(5000);
      expect(await mounted()).toBe('');
      // rclone exits non-zero once its mount is gone, so the stopped service may read "failed": either way, down.
      expect((await vmRun(vm, `systemctl is-active ${SVC}`)).stdout.trim()).toMatch(/^(inactive|failed)$/);
    } finally {
      // The next tests need the .path unit running again, whatever happened above.
      await vmOk(vm, `sudo systemctl start ${PATH_UNIT}`);
    }
    await waitMounted(60);
  }, 600_000);

  test(
    'a failing mount keeps retrying (no start-limit death of it or of the .path unit); the runner brings it back and quotes the journal',
    async () => {
      // rclone.conf with a wrong secret, as after a revoked or expired credential.
      const conf = await vmOk(vm, `cat ${node.cloudInit.rcloneConfigPath}`);
      const bad = conf.replace(/^application_credential_secret = .*$/m, 'application_credential_secret = wrong-secret-for-the-test');
      expect(bad).not.toBe(conf);
      await vmOk(vm, `umask 077 && cat > ${node.cloudInit.rcloneConfigPath}`, { input: bad });
      const t = timings.now();
      expect((await vmRun(vm, `sudo systemctl restart ${SVC}`)).exitCode).not.toBe(0);
      // The old unit (burst 10 in 600 s) died after ~2 min of this; this one goes on. 6 restarts take ~70 s.
      await waitFor('6 automatic restarts', 900, async () => (Number(await unitProp(SVC, 'NRestarts')) >= 6 ? true : undefined), 5000);
      timings.mark('6 failed mount restarts', t);
      expect(await unitProp(SVC, 'ActiveState')).toMatch(/^(activating|failed)$/);
      expect(await unitProp(SVC, 'Result')).not.toBe('start-limit-hit');
      expect((await vmRun(vm, `systemctl is-active ${PATH_UNIT}`)).stdout.trim()).toBe('active');
      expect(await unitProp(PATH_UNIT, 'Result')).toBe('success');

      // The runner's mount step, alone, on this broken config: it fails and says what rclone said.
      const m = await vmRun(
        vm,
        mountCommand({
          remote: 'chi_tacc',
          container: node.containerName,
          store: store(),
          rcloneConfigPath: node.cloudInit.rcloneConfigPath,
          service: SVC,
        }),
      );
      expect(m.exitCode).not.toBe(0);
      expect(m.stderr).toMatch(/Auth|401|Unauthori[sz]ed/i);

      // A rerun with the good credential writes the good config and restarts the mount: it comes back.
      const r = await etlRemote(['load', '--spec', specFile(), ...common()]);
      expect(r.stderr).toContain('<== load: skipped');
      expect(r.exitCode).toBe(0);
      expect(await mounted()).toMatch(/^fuse\.rclone ro,/);
      expect((await vmOk(vm, 'systemctl list-units --state=failed --no-legend --plain')).trim()).toBe('');
    },
    HOUR,
  );

  test(
    'after a reboot the mount returns, cloud-init does not run again, no unit failed',
    async () => {
      const readyBefore = await vmOk(vm, `cat ${READY_MARKER}`);
      await vmRun(vm, 'sudo systemctl reboot', { timeoutMs: 60_000, retries: 0 });
      const t = timings.now();
      await waitFor(
        'the VM to go down',
        600,
        async () =>
          (await vmRun(vm, 'cat /proc/sys/kernel/random/boot_id', { timeoutMs: 90_000, retries: 0 })).stdout.trim() === firstBoot
            ? undefined
            : true,
        2000,
      );
      await waitForSsh(vm, 1800);
      timings.mark('reboot to SSH', t);
      expect(await bootId(vm)).not.toBe(firstBoot);
      await waitMounted(600);
      timings.mark('reboot to mount', t);
      expect(await mounted()).toMatch(/^fuse\.rclone ro,/);
      expect((await vmOk(vm, 'cloud-init status --wait; cloud-init status')).trim()).toMatch(/status: done$/);
      // Same instance: the per-instance modules (and so the setup script) did not run again.
      expect(await vmOk(vm, `cat ${READY_MARKER}`)).toBe(readyBefore);
      expect((await vmOk(vm, "sudo grep -c 'chameleon-persist-setup: done' /var/log/cloud-init-output.log")).trim()).toBe('1');
      expect((await vmOk(vm, 'sudo journalctl -b -u cloud-final --no-pager -o cat')).toString()).not.toMatch(/chameleon-persist-setup/);
      expect((await vmOk(vm, 'systemctl list-units --state=failed --no-legend --plain')).trim()).toBe('');
      expect(await vmOk(vm, `sudo -u nobody ls ${mp()}`)).toMatch(/^training$/m);
    },
    2 * HOUR,
  );

  test(
    'after the reboot, an unchanged rerun skips every stage and does not restart the mount',
    async () => {
      const before = await unitProp(SVC, 'InvocationID');
      const t = timings.now();
      const r = await etlRemote(['all', '--spec', specFile(), ...common()]);
      timings.mark('ETL all (unchanged rerun after reboot)', t);
      expect(r.exitCode).toBe(0);
      for (const stage of ['extract', 'transform', 'load']) expect(r.stderr).toContain(`<== ${stage}: skipped`);
      expect(await unitProp(SVC, 'InvocationID')).toBe(before);
    },
    HOUR,
  );
});
