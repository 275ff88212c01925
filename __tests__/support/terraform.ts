import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

/**
 * What the suites that run Terraform share: which binary, where the OpenStack provider comes from, and how a
 * suite behaves when either is missing.
 *
 * - Terraform: `$TERRAFORM_BINARY_NAME` (what cdktf itself runs), else `terraform`, else `tofu` on PATH.
 * - The provider: the filesystem mirror `../shared/terraform-providers` beside the checkout (CI and this
 *   machine have it, offline), or the folder in `$CHAMELEON_PERSIST_PROVIDER_MIRROR`; where there is none (a
 *   user's own machine), Terraform downloads it from the registry, as it does for a user. (Not a PERSIST_*
 *   name: the config loader warns about unknown PERSIST_* variables.)
 * - Missing: in CI (`CI` set and not false/0) a suite that needs Terraform, or the mirror, FAILS saying what is
 *   missing, so a green CI run means the real parts ran. Elsewhere it is skipped (no Terraform) or uses the
 *   registry (no mirror).
 */
export const ROOT = resolve(__dirname, '..', '..');
export const PROVIDER_SOURCE = 'registry.terraform.io/terraform-provider-openstack/openstack';
export const MIRROR_ENV = 'CHAMELEON_PERSIST_PROVIDER_MIRROR';

export function isCI(env: NodeJS.ProcessEnv = process.env): boolean {
  const v = (env.CI ?? '').trim().toLowerCase();
  return v !== '' && v !== 'false' && v !== '0';
}

let cachedBinary: string | null | undefined;
/** The Terraform (or OpenTofu) binary that answers `version`, or undefined. */
export function terraformBinary(): string | undefined {
  if (cachedBinary === undefined) {
    const candidates = [process.env.TERRAFORM_BINARY_NAME, 'terraform', 'tofu'].filter((b): b is string => !!b);
    cachedBinary = candidates.find((bin) => spawnSync(bin, ['version'], { stdio: 'ignore' }).status === 0) ?? null;
  }
  return cachedBinary ?? undefined;
}

/** The filesystem mirror holding the OpenStack provider, or undefined (then the registry is used). */
export function providerMirror(env: NodeJS.ProcessEnv = process.env, root: string = ROOT): string | undefined {
  const candidates = env[MIRROR_ENV] ? [resolve(env[MIRROR_ENV]!)] : [resolve(root, '..', 'shared', 'terraform-providers')];
  return candidates.find((dir) => existsSync(join(dir, PROVIDER_SOURCE)));
}

/** A Terraform CLI config that takes the OpenStack provider from `mirror` only (see the mirror's README). */
export function mirrorCliConfig(mirror: string): string {
  return [
    'provider_installation {',
    '  filesystem_mirror {',
    `    path    = ${JSON.stringify(mirror)}`,
    `    include = [${JSON.stringify(PROVIDER_SOURCE)}]`,
    '  }',
    `  direct { exclude = [${JSON.stringify(PROVIDER_SOURCE)}] }`,
    '}',
    '',
  ].join('\n');
}

/**
 * Environment for Terraform and cdktf: no prompts, no checkpoint call, and, with a mirror, a CLI config in
 * `dir` pointing at it. Without a mirror TF_CLI_CONFIG_FILE is left as the user has it (the registry).
 */
export function terraformEnv(dir: string, env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const out: Record<string, string> = { TF_IN_AUTOMATION: '1', TF_INPUT: '0', CHECKPOINT_DISABLE: '1' };
  const mirror = providerMirror(env);
  if (mirror) {
    const file = join(dir, 'terraform-mirror.tfrc');
    writeFileSync(file, mirrorCliConfig(mirror));
    out.TF_CLI_CONFIG_FILE = file;
  }
  return out;
}

/** What a suite lacks to run here, or undefined. `provider`: it needs the OpenStack provider. */
export function missingForTerraform(opts: { provider?: boolean } = {}, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (!terraformBinary()) return 'Terraform (or OpenTofu) is not on PATH (install Terraform >= 1.5, or set TERRAFORM_BINARY_NAME=tofu)';
  if (opts.provider && isCI(env) && !providerMirror(env)) {
    return `the OpenStack provider mirror is missing (../shared/terraform-providers, or $${MIRROR_ENV}); CI has no registry access`;
  }
  return undefined;
}

/**
 * `describe` for a suite that runs Terraform. With everything there: the suite. Missing something: in CI one
 * failing test that says what is missing (never a silent skip); elsewhere `describe.skip`.
 */
export function describeTerraform(title: string, opts: { provider?: boolean }, fn: () => void): void {
  const missing = missingForTerraform(opts);
  if (!missing) {
    describe(
      `${title} (${terraformBinary()}${opts.provider ? `, provider from ${providerMirror() ? 'the mirror' : 'the registry'}` : ''})`,
      fn,
    );
  } else if (isCI()) {
    describe(title, () => {
      it('has what it needs to run in CI', () => {
        throw new Error(`cannot run in CI: ${missing}`);
      });
    });
  } else {
    describe.skip(`${title} (skipped: ${missing})`, fn);
  }
}

/** Runs Terraform in `dir` (synchronously), with `env` on top of this process's environment. */
export function terraform(dir: string, args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(terraformBinary()!, [`-chdir=${dir}`, ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: 170_000,
  });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}
