import { App, Testing, TerraformStack, Token } from 'cdktf';
import { OpenstackProvider } from '../../.gen/providers/openstack/provider';
import { ApplicationCredential, type ApplicationCredentialProps } from '../../constructs/application-credential';
import { errorAnnotations, resolved } from '../support/constructs';

// The credential construct: created (restricted, expiring, optional access rules) or brought (nothing in the
// stack but its id); wrong props are error annotations that stop synth, every problem named. The address is the
// stack's to pin (storage-stack.ts), so here it is cdktf's default.
function build(props: (p: OpenstackProvider) => ApplicationCredentialProps) {
  const app = Testing.app();
  const stack = new TerraformStack(app, 's');
  const provider = new OpenstackProvider(stack, 'p', { alias: 'chi_tacc', cloud: 'chi_tacc' });
  const c = new ApplicationCredential(stack, 'rclone', props(provider));
  return { c, json: JSON.parse(Testing.synth(stack)), errors: errorAnnotations(stack) };
}

describe('ApplicationCredential', () => {
  it('created: restricted, with its expiry and rules; id and secret resolve to the resource', () => {
    const { c, json, errors } = build((provider) => ({
      kind: 'created',
      provider,
      name: 'persist-t-rclone',
      expiresAt: '2026-05-31T23:59:59Z',
      accessRules: [{ service: 'object-store', method: 'GET', path: '/v1/AUTH_p/c' }],
    }));
    expect(errors).toEqual([]);
    expect(Object.keys(json.resource.openstack_identity_application_credential_v3)).toEqual(['rclone_resource_5BEA5AD0']);
    const r = json.resource.openstack_identity_application_credential_v3.rclone_resource_5BEA5AD0;
    expect(r).toMatchObject({
      name: 'persist-t-rclone',
      expires_at: '2026-05-31T23:59:59Z',
      unrestricted: false,
      access_rules: [{ service: 'object-store', method: 'GET', path: '/v1/AUTH_p/c' }],
    });
    expect(r.description).toBeUndefined();
    expect(c.source).toBe('created');
    const stack = c.node.scope as TerraformStack;
    expect(resolved(stack, c.credentialId)).toBe('${openstack_identity_application_credential_v3.rclone_resource_5BEA5AD0.id}');
    expect(resolved(stack, c.secret)).toBe('${openstack_identity_application_credential_v3.rclone_resource_5BEA5AD0.secret}');
    expect(c.secretEnv).toBeUndefined();
  });

  it('created without rules has no access_rules', () => {
    const { json } = build((provider) => ({ kind: 'created', provider, name: 'n', expiresAt: '2026-05-31T23:59:59Z' }));
    expect(Object.values<any>(json.resource.openstack_identity_application_credential_v3)[0].access_rules).toBeUndefined();
  });

  it('a token name, expiry or path (the project id) is not checked at synth', () => {
    const t = Token.asString({ Ref: 'x' });
    const { errors } = build((provider) => ({
      kind: 'created',
      provider,
      name: t,
      expiresAt: t,
      accessRules: [{ service: 'object-store', method: 'GET', path: `/v1/AUTH_${t}/c` }],
    }));
    expect(errors).toEqual([]);
  });

  it('existing: no resource, the given id, the secret only by the name of its variable', () => {
    const { c, json } = build(() => ({ kind: 'existing', id: 'a'.repeat(32), secretEnv: 'PERSIST_APP_CREDENTIAL_SECRET' }));
    expect(json.resource).toBeUndefined();
    expect([c.source, c.credentialId, c.secret, c.secretEnv, c.resource]).toEqual([
      'existing',
      'a'.repeat(32),
      undefined,
      'PERSIST_APP_CREDENTIAL_SECRET',
      undefined,
    ]);
  });

  it('reports wrong props at construction, naming each problem', () => {
    expect(
      build((provider) => ({
        kind: 'created',
        provider,
        name: '',
        expiresAt: '2026-05-31',
        accessRules: [{ service: '', method: 'COPY' as 'GET', path: 'v1/x y' }],
      })).errors,
    ).toEqual([
      's/rclone: name must be 1-255 characters',
      's/rclone: expiresAt "2026-05-31" is not RFC 3339 UTC with seconds (e.g. 2026-05-31T23:59:59Z)',
      's/rclone: accessRules[0].service is empty',
      's/rclone: accessRules[0].method "COPY" is not one of GET HEAD PUT POST PATCH DELETE',
      's/rclone: accessRules[0].path "v1/x y" does not start with /',
      's/rclone: accessRules[0].path contains whitespace',
    ]);
    expect(build((provider) => ({ kind: 'created', provider, name: 'a\nb', expiresAt: '2026-05-31T23:59:59Z' })).errors).toEqual([
      's/rclone: name contains whitespace or control characters',
    ]);
    expect(build(() => ({ kind: 'existing', id: '${file("/etc/passwd")}', secretEnv: 'lower-case' })).errors).toEqual([
      's/rclone: id contains a Terraform template sequence (${ or %{)',
      's/rclone: secretEnv "lower-case" is not an environment variable name',
    ]);
  });

  it('an error annotation stops synth of the app', () => {
    const app = new App({ outdir: Testing.app().outdir });
    const stack = new TerraformStack(app, 's');
    new ApplicationCredential(stack, 'rclone', { kind: 'existing', id: 'a'.repeat(32), secretEnv: 'lower-case' });
    expect(() => app.synth()).toThrow(
      /Encountered Annotations with level "ERROR"[\s\S]*secretEnv "lower-case" is not an environment variable name/,
    );
  });
});
