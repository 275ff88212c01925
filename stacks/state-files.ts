import { chmodSync, closeSync, existsSync, openSync, readdirSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { LocalBackend, TerraformStack, type App } from 'cdktf';
import { PROJECT_ROOT } from '../config';

/**
 * State of every stack lives in the project root as `terraform.<stack>.tfstate` (gitignored), next to
 * persist.config.yaml, so `cdktf.out` can be deleted and regenerated at any time without losing track of what
 * exists. The path is written relative to the directory Terraform runs in (cdktf.out/stacks/<stack>), so the
 * synthesized JSON is the same on every machine.
 */
export function projectStateBackend(stack: TerraformStack, projectRoot: string = PROJECT_ROOT): LocalBackend {
  return new LocalBackend(stack, { path: stateBackendPath(stack.node.id, projectRoot) });
}

function stateBackendPath(id: string, projectRoot: string): string {
  const workingDir = resolve(projectRoot, 'cdktf.out', 'stacks', id);
  return relative(workingDir, resolve(projectRoot, `terraform.${id}.tfstate`));
}

/** Mode of every state file, backup and plan this project leaves: the storage state holds the secret. */
export const PRIVATE_FILE_MODE = 0o600;

/**
 * Makes the files Terraform writes for the app's stacks private (0600), and their directories 0700.
 *
 * Terraform creates state files, their `.backup` and plan files with the process umask (0644 with the usual
 * 022), and `npx cdktf deploy` gives the project no way to set Terraform's umask. Terraform does keep the mode of
 * a file that already exists (it rewrites it in place), and cdktf synthesizes, so runs this, before every
 * deploy, diff and destroy. So:
 * - a state file or backup that does not exist yet is created empty with mode 0600 (Terraform reads an empty
 *   state file as "no state", exactly like a missing one);
 * - one that exists and is readable by group or others is made 0600, with a warning saying so and what to do
 *   about a secret that may have been read;
 * - `cdktf.out` and each `cdktf.out/stacks/<stack>` become 0700 and existing plan files 0600: `cdktf diff`
 *   leaves `plan` there, and a plan holds the whole prior state, secret included.
 *
 * The state files are where Terraform will look for them: the backend path, relative to the stack's directory
 * under the app's outdir (the project root for the default `cdktf.out`). Returns the warnings.
 */
export function protectStateFiles(app: App, projectRoot: string = PROJECT_ROOT): string[] {
  const warnings: string[] = [];
  const outdir = resolve(app.outdir);
  const ids = app.node.children.filter((c): c is TerraformStack => TerraformStack.isStack(c)).map((s) => s.node.id);
  for (const id of ids) {
    const state = resolve(outdir, 'stacks', id, stateBackendPath(id, projectRoot));
    for (const file of [state, `${state}.backup`]) {
      const was = makePrivate(file);
      if (was === undefined) continue;
      const secret =
        id === 'storage'
          ? " It holds the application credential's secret: if anyone else could read it, replace the credential" +
            ' (set a later credential.expiresAt, then npx cdktf deploy storage etl).'
          : '';
      warnings.push(
        `${file} was readable by group or others (mode 0${was.toString(8)}); it is now 0600.${secret} ` +
          `Fix any other copy the same way: chmod 600 <file>.`,
      );
    }
  }
  chmodIfOpen(outdir, 0o700);
  const stacksDir = join(outdir, 'stacks');
  if (existsSync(stacksDir)) {
    chmodIfOpen(stacksDir, 0o700);
    for (const id of readdirSync(stacksDir)) {
      const dir = join(stacksDir, id);
      if (!statSync(dir).isDirectory()) continue;
      chmodIfOpen(dir, 0o700);
      const plan = join(dir, 'plan');
      if (existsSync(plan)) chmodIfOpen(plan, PRIVATE_FILE_MODE);
    }
  }
  return warnings;
}

/**
 * Creates `file` empty with mode 0600 when it is missing; else removes group and other access. Returns the
 * previous mode when that was too open.
 */
function makePrivate(file: string): number | undefined {
  if (!existsSync(file)) {
    try {
      closeSync(openSync(file, 'wx', PRIVATE_FILE_MODE));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    return undefined;
  }
  const mode = statSync(file).mode & 0o777;
  if ((mode & 0o077) === 0) return undefined;
  chmodSync(file, PRIVATE_FILE_MODE);
  return mode;
}

function chmodIfOpen(path: string, mode: number): void {
  if (existsSync(path) && (statSync(path).mode & 0o777 & ~mode) !== 0) chmodSync(path, mode);
}
