import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  isCI,
  MIRROR_ENV,
  mirrorCliConfig,
  missingForTerraform,
  PROVIDER_SOURCE,
  providerMirror,
  terraformEnv,
} from '../support/terraform';

// Where the suites that run Terraform take the OpenStack provider from, and when they refuse to run.
function fakeMirror(): string {
  const dir = mkdtempSync(join(tmpdir(), 'mirror-'));
  mkdirSync(join(dir, PROVIDER_SOURCE, '3.4.0', 'linux_amd64'), { recursive: true });
  return dir;
}

describe('the provider for tests: the mirror when there is one, else the registry', () => {
  it('../shared/terraform-providers beside the checkout', () => {
    const parent = mkdtempSync(join(tmpdir(), 'clone-'));
    const root = join(parent, 'chameleon-persist');
    mkdirSync(join(parent, 'shared', 'terraform-providers', PROVIDER_SOURCE), { recursive: true });
    expect(providerMirror({}, root)).toBe(join(parent, 'shared', 'terraform-providers'));
  });

  it(`a folder named by $${MIRROR_ENV} instead`, () => {
    const mirror = fakeMirror();
    expect(providerMirror({ [MIRROR_ENV]: mirror }, '/nonexistent/root')).toBe(mirror);
    // A variable naming a folder without the provider is not silently replaced by another mirror.
    expect(providerMirror({ [MIRROR_ENV]: mkdtempSync(join(tmpdir(), 'empty-')) }, '/nonexistent/root')).toBeUndefined();
  });

  it('none (a user machine): no CLI config is written, Terraform uses the registry', () => {
    const root = join(mkdtempSync(join(tmpdir(), 'lonely-')), 'chameleon-persist');
    expect(providerMirror({}, root)).toBeUndefined();
    const env = terraformEnv(mkdtempSync(join(tmpdir(), 'tfenv-')), { [MIRROR_ENV]: join(root, 'none') });
    expect(env.TF_CLI_CONFIG_FILE).toBeUndefined();
    expect(env).toMatchObject({ TF_IN_AUTOMATION: '1', TF_INPUT: '0', CHECKPOINT_DISABLE: '1' });
  });

  it('with a mirror: a CLI config that takes only the OpenStack provider from it', () => {
    const mirror = fakeMirror();
    expect(mirrorCliConfig(mirror)).toBe(
      `provider_installation {\n  filesystem_mirror {\n    path    = "${mirror}"\n    include = ["${PROVIDER_SOURCE}"]\n  }\n  direct { exclude = ["${PROVIDER_SOURCE}"] }\n}\n`,
    );
    expect(terraformEnv(mkdtempSync(join(tmpdir(), 'tfenv-')), { [MIRROR_ENV]: mirror }).TF_CLI_CONFIG_FILE).toMatch(
      /terraform-mirror\.tfrc$/,
    );
  });

  it('in CI a suite that needs the provider refuses to run without the mirror (CI has no registry); elsewhere it uses the registry', () => {
    const none = { [MIRROR_ENV]: '/nonexistent/mirror' };
    expect(missingForTerraform({ provider: true }, { ...none, CI: 'true' })).toMatch(/provider mirror is missing/);
    expect(missingForTerraform({ provider: true }, { ...none })).toBeUndefined();
    expect(missingForTerraform({}, { ...none, CI: 'true' })).toBeUndefined(); // built-in providers only
    expect([isCI({ CI: 'true' }), isCI({ CI: '1' }), isCI({ CI: 'false' }), isCI({ CI: '0' }), isCI({})]).toEqual([
      true,
      true,
      false,
      false,
      false,
    ]);
  });
});
