import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import type { PersistConfig } from './parse';

/**
 * Where openstacksdk (and so the Terraform provider's `cloud` argument) looks for clouds.yaml, in order:
 * $OS_CLIENT_CONFIG_FILE, the current directory, ~/.config/openstack, /etc/openstack.
 */
export function cloudsYamlCandidates(env: Record<string, string | undefined>, cwd: string): string[] {
  return [
    env.OS_CLIENT_CONFIG_FILE,
    join(cwd, 'clouds.yaml'),
    env.HOME ? join(env.HOME, '.config', 'openstack', 'clouds.yaml') : undefined,
    '/etc/openstack/clouds.yaml',
  ].filter((p): p is string => Boolean(p));
}

/**
 * Warnings about clouds.yaml: the two entries must exist, and CHI@TACC's auth_url should be the one written to
 * rclone.conf. Only warnings — synth does not need clouds.yaml (deploy does), and it may run on another machine.
 * `text` is the file's content, or undefined when there is none.
 */
export function checkCloudsYaml(config: PersistConfig, file: string | undefined, text: string | undefined): string[] {
  if (file === undefined || text === undefined) {
    return [
      'no clouds.yaml found (OS_CLIENT_CONFIG_FILE, ./clouds.yaml, ~/.config/openstack/clouds.yaml, /etc/openstack/clouds.yaml); ' +
        `cdktf deploy needs entries "${config.chi.cloud}" and "${config.kvm.cloud}" (see docs/infra.md, Prerequisites)`,
    ];
  }
  // biome-ignore lint/suspicious/noExplicitAny: a user's clouds.yaml, checked field by field below
  let clouds: Record<string, any> | undefined;
  try {
    // biome-ignore lint/suspicious/noExplicitAny: as above
    clouds = (parse(text) as { clouds?: Record<string, any> } | null)?.clouds;
  } catch {
    return [`${file} is not valid YAML; the OpenStack provider will not be able to read it`];
  }
  if (!clouds || typeof clouds !== 'object') return [`${file} has no "clouds:" mapping`];
  const warnings: string[] = [];
  for (const [field, name] of [
    ['chi.cloud', config.chi.cloud],
    ['kvm.cloud', config.kvm.cloud],
  ] as const) {
    if (!clouds[name]) {
      const have = Object.keys(clouds).join(', ') || 'none';
      warnings.push(`${file} has no entry "${name}" (${field}); it has: ${have}. Set ${field} to one of them or add the entry`);
    }
  }
  const chiAuth = clouds[config.chi.cloud]?.auth?.auth_url;
  if (typeof chiAuth === 'string' && chiAuth.replace(/\/+$/, '') !== config.chi.authUrl.replace(/\/+$/, '')) {
    warnings.push(
      `chi.authUrl is ${config.chi.authUrl} but clouds.yaml entry "${config.chi.cloud}" logs in at ${chiAuth}; rclone.conf ` +
        `gets chi.authUrl`,
    );
  }
  return warnings;
}

/** Finds clouds.yaml like openstacksdk does and returns the warnings about it. */
export function cloudsYamlWarnings(config: PersistConfig, env: Record<string, string | undefined>, cwd: string): string[] {
  const file = cloudsYamlCandidates(env, cwd).find((p) => existsSync(p));
  return checkCloudsYaml(config, file, file ? readFileSync(file, 'utf8') : undefined);
}
