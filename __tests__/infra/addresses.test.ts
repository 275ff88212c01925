import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ADDRESS_VARIANTS, synthesizedAddresses } from './addresses';

/**
 * The addresses every stack synthesizes, against the list taken before the logical ids moved from the
 * constructs into the stacks (fixtures/addresses.golden.json). A state file is keyed by these: a changed
 * address plans "destroy the container / the credential / the server, create another". Change the golden
 * file only on purpose, with a `terraform state mv` (or a `moved` block) for every address that changed.
 */
const GOLDEN = JSON.parse(readFileSync(join(__dirname, 'fixtures', 'addresses.golden.json'), 'utf8')) as Record<
  string,
  Record<string, string[]>
>;

describe('synthesized addresses', () => {
  test('the golden list covers every variant and every stack', () => {
    expect(Object.keys(GOLDEN).sort()).toEqual(Object.keys(ADDRESS_VARIANTS).sort());
    for (const stacks of Object.values(GOLDEN)) expect(Object.keys(stacks).sort()).toEqual(['etl', 'node', 'storage']);
    // Known answers from the list itself, so an emptied or regenerated-by-mistake file fails here too.
    expect(GOLDEN.default.storage).toContain('openstack_objectstorage_container_v1.container');
    expect(GOLDEN.default.storage).toContain('openstack_identity_application_credential_v3.rclone');
    expect(GOLDEN.default.node).toContain('openstack_compute_instance_v2.node');
    expect(GOLDEN.default.etl).toContain('terraform_data.etl_run');
    expect(GOLDEN['existing-credential'].storage).not.toContain('openstack_identity_application_credential_v3.rclone');
    expect(GOLDEN['keypair-name+flavor+access-rules'].node).not.toContain('openstack_compute_keypair_v2.keypair');
  });

  test.each(Object.keys(ADDRESS_VARIANTS))('%s: every address of the three stacks is unchanged', (variant) => {
    expect(synthesizedAddresses(variant)).toEqual(GOLDEN[variant]);
  });
});
