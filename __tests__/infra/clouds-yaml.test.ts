import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkCloudsYaml, cloudsYamlCandidates, cloudsYamlWarnings } from '../../config';
import { testConfig } from './helpers';

const config = testConfig();
const good = `
clouds:
  chi_tacc:
    auth:
      auth_url: https://chi.tacc.chameleoncloud.org:5000/v3/
      application_credential_id: x
      application_credential_secret: y
    region_name: CHI@TACC
  kvm_tacc:
    auth:
      auth_url: https://kvm.tacc.chameleoncloud.org:5000/v3
    region_name: KVM@TACC
`;

describe('clouds.yaml check (warnings only: synth does not need it, deploy does)', () => {
  test('both entries present, matching auth URL: no warning', () => {
    expect(checkCloudsYaml(config, 'clouds.yaml', good)).toEqual([]);
  });

  test('a missing entry is named, with the entries that exist', () => {
    const w = checkCloudsYaml(config, 'clouds.yaml', good.replace('kvm_tacc:', 'kvm:'));
    expect(w).toEqual([expect.stringMatching(/no entry "kvm_tacc" \(kvm.cloud\); it has: chi_tacc, kvm/)]);
  });

  test('an auth URL different from chi.authUrl', () => {
    const w = checkCloudsYaml(config, 'clouds.yaml', good.replace('https://chi.tacc', 'https://other'));
    expect(w).toEqual([expect.stringMatching(/chi.authUrl is .* but clouds.yaml entry "chi_tacc" logs in at https:\/\/other/)]);
  });

  test('no file, broken file, no clouds mapping', () => {
    expect(checkCloudsYaml(config, undefined, undefined)[0]).toMatch(/no clouds.yaml found/);
    expect(checkCloudsYaml(config, 'c.yaml', 'clouds: [unclosed')[0]).toMatch(/not valid YAML/);
    expect(checkCloudsYaml(config, 'c.yaml', 'other: 1')[0]).toMatch(/no "clouds:" mapping/);
  });

  test('looked up like openstacksdk: OS_CLIENT_CONFIG_FILE first, then ./, ~/.config/openstack, /etc/openstack', () => {
    expect(cloudsYamlCandidates({ OS_CLIENT_CONFIG_FILE: '/x/c.yaml', HOME: '/h' }, '/w')).toEqual([
      '/x/c.yaml',
      '/w/clouds.yaml',
      '/h/.config/openstack/clouds.yaml',
      '/etc/openstack/clouds.yaml',
    ]);
    const dir = mkdtempSync(join(tmpdir(), 'clouds-'));
    writeFileSync(join(dir, 'clouds.yaml'), good.replace('chi_tacc:', 'chi:'));
    expect(cloudsYamlWarnings(config, { HOME: '/nonexistent' }, dir)).toEqual([expect.stringMatching(/no entry "chi_tacc"/)]);
  });
});
