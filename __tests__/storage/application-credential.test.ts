import { Testing, TerraformStack } from 'cdktf';
import { OpenstackProvider } from '../../.gen/providers/openstack/provider';
import { ApplicationCredential, type ApplicationCredentialProps } from '../../constructs/application-credential';

// The credential construct: created (restricted, expiring, optional access rules, pinned address) or brought
// (nothing in the stack but its id); wrong props stop synth at construction with every problem named.
function build(props: (p: OpenstackProvider) => ApplicationCredentialProps) {
  const app = Testing.app();
  const stack = new TerraformStack(app, 's');
  const provider = new OpenstackProvider(stack, 'p', { alias: 'chi_tacc', cloud: 'chi_tacc' });
  const c = new ApplicationCredential(stack, 'rclone', props(provider));
  return { c, json: JSON.parse(Testing.synth(stack)) };
}

describe('ApplicationCredential', () => {
  it('created: restricted, with its expiry and rules, at the pinned address; id and secret are tokens', () => {
    const { c, json } = build((provider) => ({ kind: 'created', provider, name: 'persist-t-rclone', expiresAt: '2026-05-31T23:59:59Z', accessRules: [{ service: 'object-store', method: 'GET', path: '/v1/AUTH_p/c' }] }));
    const r = json.resource.openstack_identity_application_credential_v3.rclone;
    expect(r).toMatchObject({ name: 'persist-t-rclone', expires_at: '2026-05-31T23:59:59Z', unrestricted: false, access_rules: [{ service: 'object-store', method: 'GET', path: '/v1/AUTH_p/c' }] });
    expect(r.description).toBeUndefined();
    expect(c.source).toBe('created');
    expect(c.credentialId).toMatch(/^\$\{TfToken\[/);
    expect(c.secret).toMatch(/^\$\{TfToken\[/);
    expect(c.secretEnv).toBeUndefined();
  });

  it('created without rules has no access_rules; logicalId moves the address', () => {
    const { json } = build((provider) => ({ kind: 'created', provider, name: 'n', expiresAt: '2026-05-31T23:59:59Z', logicalId: 'other' }));
    expect(Object.keys(json.resource.openstack_identity_application_credential_v3)).toEqual(['other']);
    expect(json.resource.openstack_identity_application_credential_v3.other.access_rules).toBeUndefined();
  });

  it('existing: no resource, the given id, the secret only by the name of its variable', () => {
    const { c, json } = build(() => ({ kind: 'existing', id: 'a'.repeat(32), secretEnv: 'PERSIST_APP_CREDENTIAL_SECRET' }));
    expect(json.resource).toBeUndefined();
    expect([c.source, c.credentialId, c.secret, c.secretEnv, c.resource]).toEqual(['existing', 'a'.repeat(32), undefined, 'PERSIST_APP_CREDENTIAL_SECRET', undefined]);
  });

  it('refuses wrong props at construction, naming each problem', () => {
    expect(() => build((provider) => ({ kind: 'created', provider, name: '', expiresAt: '2026-05-31', accessRules: [{ service: '', method: 'COPY' as 'GET', path: 'v1/x y' }] }))).toThrow(
      /ApplicationCredential s\/rclone: name must be 1-255 characters; expiresAt "2026-05-31" is not RFC 3339 UTC with seconds .*; accessRules\[0\]\.service is empty; accessRules\[0\]\.method "COPY" is not one of GET HEAD PUT POST PATCH DELETE; accessRules\[0\]\.path "v1\/x y" does not start with \/; accessRules\[0\]\.path contains whitespace/,
    );
    expect(() => build((provider) => ({ kind: 'created', provider, name: 'a\nb', expiresAt: '2026-05-31T23:59:59Z' }))).toThrow(/name contains whitespace or control characters/);
    expect(() => build(() => ({ kind: 'existing', id: '${file("/etc/passwd")}', secretEnv: 'lower-case' }))).toThrow(/id contains a Terraform template sequence.*secretEnv "lower-case" is not an environment variable name/);
  });
});
