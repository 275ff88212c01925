import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseConfig, type PersistConfig } from '../../config';

export const NOW = new Date('2025-06-01T12:00:00Z');
export const FIXTURES = join(__dirname, 'fixtures');
export const TEST_PUBLIC_KEY_PATH = join(FIXTURES, 'test_ed25519.pub');
export const TEST_RESERVATION = '1b2c3d4e-0000-4000-8000-123456789abc';
/** A value that must never show up in anything we synthesize or render. */
/** A valid persist.config.yaml as a user writes it (the file form of validRaw), with `extra` appended. */
export function validConfigYaml(extra = ''): string {
  return `
teamId: proj99
credential:
  expiresAt: "2099-12-31"
ssh:
  publicKeyPath: ${TEST_PUBLIC_KEY_PATH}
  allowedCidr: 203.0.113.7/32
node:
  reservationId: ${TEST_RESERVATION}
${extra}`;
}

export const SENTINEL_SECRET = 'S3NT1NEL-do-not-leak-0f9e8d7c6b5a';

/** A minimal valid config file, as a user would write it. */
export function validRaw(): Record<string, any> {
  return {
    teamId: 'proj99',
    credential: { expiresAt: '2025-11-30' },
    ssh: { publicKeyPath: TEST_PUBLIC_KEY_PATH, allowedCidr: '203.0.113.7/32' },
    node: { reservationId: TEST_RESERVATION },
  };
}

/** Deep-merges `patch` into the valid config (a null value removes the key). */
export function rawWith(patch: Record<string, any>): Record<string, any> {
  const merge = (a: Record<string, any>, b: Record<string, any>): Record<string, any> => {
    const out = { ...a };
    for (const [k, v] of Object.entries(b)) {
      if (v === null) delete out[k];
      else if (v && typeof v === 'object' && !Array.isArray(v) && a[k] && typeof a[k] === 'object') out[k] = merge(a[k], v);
      else out[k] = v;
    }
    return out;
  };
  return merge(validRaw(), patch);
}

/** A validated config with the public key read, as loadConfig returns it. Throws on an invalid config. */
export function testConfig(patch: Record<string, any> = {}, env: Record<string, string | undefined> = {}): PersistConfig {
  const result = parseConfig(rawWith(patch), { HOME: '/home/tester', ...env }, NOW);
  if (!result.ok) throw new Error(`test config invalid: ${JSON.stringify(result.errors, null, 2)}`);
  const config = result.config;
  if (config.ssh.publicKeyPath) config.ssh.publicKey = readFileSync(config.ssh.publicKeyPath, 'utf8').trim();
  return config;
}
