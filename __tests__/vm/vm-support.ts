import execa from 'execa';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sshArgs } from '../../etl/remote/ssh';

/**
 * The VM test's plumbing: boot and stop the qemu VM (scripts/local-vm/vm.sh), run commands in it over the
 * hostfwd'ed SSH port, and record how long each phase took.
 */
export const ROOT = join(__dirname, '..', '..');
export const VM_SCRIPT = join(ROOT, 'scripts', 'local-vm', 'vm.sh');
export const IMAGE_SCRIPT = join(ROOT, 'scripts', 'local-vm', 'image.sh');
export const LOOPBACK_SCRIPT = join(ROOT, 'scripts', 'local-vm', 'host-loopback.sh');

export interface VmCoordinates {
  host: string;
  port: number;
  user: string;
  pid: number;
  image: string;
  instanceId: string;
}

export interface Vm extends VmCoordinates {
  stateDir: string;
  privateKeyPath: string;
  knownHostsPath: string;
}

export function bootVm(stateDir: string, userDataPath: string, publicKeyPath: string, privateKeyPath: string): Vm {
  execFileSync('bash', [VM_SCRIPT, 'up', stateDir, userDataPath, publicKeyPath], {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, PERSIST_VM_OWNER_PID: String(process.pid) },
  });
  const c = JSON.parse(readFileSync(join(stateDir, 'vm.json'), 'utf8')) as VmCoordinates;
  return { ...c, stateDir, privateKeyPath, knownHostsPath: join(stateDir, 'known_hosts') };
}

export function stopVm(stateDir: string): void {
  if (existsSync(stateDir)) execFileSync('bash', [VM_SCRIPT, 'down', stateDir], { stdio: ['ignore', 'inherit', 'inherit'] });
}

export interface Run {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/**
 * ssh's own failures to connect (exit 255 before the command ran). Under TCG, with qemu niced on a busy 2-core
 * host, the VM's sshd can take longer than a connect timeout to send its banner.
 */
export const SSH_CONNECT_FAILURE =
  /Connection timed out during banner exchange|kex_exchange_identification|Connection (refused|reset|closed) by|connect to host .* (timed out|Connection refused)/;

/**
 * One command on the VM as cc (a login shell's environment: new sessions see new group memberships). A failure
 * to connect is retried (`retries`, default 4): the command never started, so running it again is safe.
 */
export async function vmRun(
  vm: Vm,
  command: string,
  opts: { input?: string | Buffer; timeoutMs?: number; retries?: number } = {},
): Promise<Run> {
  for (let attempt = 0; ; attempt++) {
    // The runner's own ssh arguments (the VM test connects as the runner does), with a longer connect timeout
    // for a TCG guest's sshd and a dead-connection limit for commands that run for minutes.
    const target = { host: vm.host, port: vm.port, user: vm.user, privateKeyPath: vm.privateKeyPath, knownHostsPath: vm.knownHostsPath };
    const r = await execa('ssh', ['-o', 'ServerAliveCountMax=6', ...sshArgs({ ...target, connectTimeoutSeconds: 60 }), command], {
      reject: false,
      input: opts.input ?? '',
      timeout: opts.timeoutMs ?? 600_000,
    });
    const run = { exitCode: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr };
    if (run.exitCode !== 255 || !SSH_CONNECT_FAILURE.test(run.stderr) || attempt >= (opts.retries ?? 4)) return run;
    process.stderr.write(`vm test: ssh could not connect (${run.stderr.trim().split('\n').pop()}); retrying\n`);
    await sleep(5000);
  }
}

/** Like vmRun, but the command must succeed; returns its stdout. */
export async function vmOk(
  vm: Vm,
  command: string,
  opts: { input?: string | Buffer; timeoutMs?: number; retries?: number } = {},
): Promise<string> {
  const r = await vmRun(vm, command, opts);
  if (r.exitCode !== 0) throw new Error(`on the VM, \`${command}\` exited ${r.exitCode}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls until `probe` returns a value (not undefined) or `seconds` pass. */
export async function waitFor<T>(what: string, seconds: number, probe: () => Promise<T | undefined>, everyMs = 3000): Promise<T> {
  const end = Date.now() + seconds * 1000;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out after ${seconds}s waiting for ${what}`);
    await sleep(everyMs);
  }
}

export async function waitForSsh(vm: Vm, seconds: number): Promise<void> {
  await waitFor(
    'SSH on the VM',
    seconds,
    async () => ((await vmRun(vm, 'true', { timeoutMs: 90_000, retries: 0 })).exitCode === 0 ? true : undefined),
    2000,
  );
}

export async function bootId(vm: Vm): Promise<string> {
  return (await vmOk(vm, 'cat /proc/sys/kernel/random/boot_id')).trim();
}
