import execa from 'execa';
import { chmodSync, cpSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { OpenStackEnv } from './openstack';
import { providerMirror, ROOT, terraform, terraformEnv } from './terraform';

/**
 * A private copy of the project, for running `npx cdktf …` exactly as a user types it without touching the
 * checkout: cdktf writes cdktf.out and Terraform writes terraform.<stack>.tfstate at the project root (the
 * directory holding config/, stacks/state-files.ts), and a test must never replace the developer's own states.
 * Sources are copied (the state path is derived from where config/ really is); node_modules is a symlink.
 */
const PROJECT_ENTRIES = [
  'main.ts',
  'cdktf.json',
  'package.json',
  'tsconfig.json',
  'config',
  'stacks',
  'constructs',
  'cloud-init',
  'etl',
  '.gen',
  'scripts',
];

export interface TestProject {
  dir: string;
  /** Environment every cdktf/terraform command of this project gets (clouds.yaml, mirror, no prompts). */
  env: Record<string, string>;
  /** Everything cdktf and Terraform printed, to check that no secret was ever shown. */
  transcript: string[];
}

/**
 * clouds.yaml as a Chameleon user has it (one entry per site), but logging in to the local Keystone with the member
 * user's password; the region picks the site (the cloud test's KVM@TACC is another region of that Keystone).
 */
function cloudsYaml(env: OpenStackEnv, kvmRegion: string): string {
  const entry = (region: string) => ({
    auth: { auth_url: env.authUrl, user_id: env.userId, password: env.password, project_id: env.projectId },
    region_name: region,
    interface: 'public',
    identity_api_version: 3,
  });
  return stringify({ clouds: { chi_tacc: entry(env.region), kvm_tacc: entry(kvmRegion) } });
}

/** @param kvmRegion region of the `kvm_tacc` entry; default: the stand-in's own (CHI@TACC), where no node is made. */
export function createProject(
  parent: string,
  name: string,
  env: OpenStackEnv,
  config: Record<string, unknown>,
  kvmRegion: string = env.region,
): TestProject {
  const dir = join(parent, name);
  mkdirSync(dir, { recursive: true });
  for (const entry of PROJECT_ENTRIES) cpSync(join(ROOT, entry), join(dir, entry), { recursive: true });
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  // The password is a secret of the stand-in: private, like a user's clouds.yaml.
  writeFileSync(join(dir, 'clouds.yaml'), cloudsYaml(env, kvmRegion), { mode: 0o600 });
  writeConfig({ dir } as TestProject, config);
  const base: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('PERSIST_') && !k.startsWith('OS_')) base[k] = v;
  return {
    dir,
    env: { ...base, ...terraformEnv(dir), OS_CLIENT_CONFIG_FILE: join(dir, 'clouds.yaml'), FORCE_COLOR: '0', NO_COLOR: '1' },
    transcript: [],
  };
}

export function writeConfig(p: Pick<TestProject, 'dir'>, config: Record<string, unknown>): void {
  writeFileSync(join(p.dir, 'persist.config.yaml'), stringify(config));
}

const ANSI = /\u001b\[[0-9;?]*[A-Za-z]|\u001b[()][A-Z0-9]/g;

/** `npx cdktf <args>` in the project, as typed (plus --auto-approve where it would prompt). */
export async function cdktf(p: TestProject, args: string[], extraEnv: Record<string, string> = {}) {
  const r = await execa('npx', ['cdktf', ...args], {
    cwd: p.dir,
    env: { ...p.env, ...extraEnv },
    extendEnv: false,
    reject: false,
    timeout: 300_000,
  });
  const output = `${r.stdout}\n${r.stderr}`.replace(ANSI, '');
  p.transcript.push(output);
  return { status: r.exitCode, output };
}

/**
 * The offline pitfall of the mirror (../shared/terraform-providers/README.md): with no .terraform.lock.hcl,
 * `cdktf deploy` runs `terraform providers lock`, which asks the registry and ignores the mirror. A
 * `terraform init` of each stack after synth writes the lock file from the mirror, and it survives later synths.
 * Not needed (and not done) when the provider comes from the registry, as on a user's machine.
 */
export async function synthAndInit(p: TestProject, stacks: string[]): Promise<void> {
  const s = await cdktf(p, ['synth']);
  if (s.status !== 0) throw new Error(`cdktf synth failed:\n${s.output}`);
  if (!providerMirror()) return;
  for (const stack of stacks) {
    const r = terraform(join(p.dir, 'cdktf.out', 'stacks', stack), ['init', '-input=false', '-no-color'], p.env);
    p.transcript.push(r.stdout, r.stderr);
    if (r.status !== 0) throw new Error(`terraform init of ${stack} failed:\n${r.stderr}${r.stdout}`);
  }
}

/** A stack's state: its outputs and its managed resources (data sources left out). */
export function readState(
  p: TestProject,
  stack: string,
): {
  outputs: Record<string, { value: unknown }>;
  resources: { type: string; name: string; instances: { attributes: Record<string, unknown> }[] }[];
} {
  const state = JSON.parse(readFileSync(join(p.dir, `terraform.${stack}.tfstate`), 'utf8'));
  return { outputs: state.outputs ?? {}, resources: (state.resources ?? []).filter((r: { mode: string }) => r.mode === 'managed') };
}

export function fileMode(path: string): string {
  return (statSync(path).mode & 0o777).toString(8).padStart(4, '0');
}

/** Every regular file under dir (not following the node_modules symlink; the provider binaries are skipped). */
export function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isSymbolicLink() || (e.isDirectory() && e.name === 'providers' && dir.endsWith('.terraform'))) return [];
    return e.isDirectory() ? filesUnder(path) : e.isFile() ? [path] : [];
  });
}

/** Makes a file readable by others, as Terraform leaves it under umask 022 (to show the warning). */
export function openUp(path: string): void {
  chmodSync(path, 0o644);
}
