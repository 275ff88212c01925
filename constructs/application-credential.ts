import type { TerraformProvider } from 'cdktf';
import { Construct } from 'constructs';
import { isResolved, reportErrors } from './validation';
import {
  IdentityApplicationCredentialV3,
  type IdentityApplicationCredentialV3AccessRules,
} from '../.gen/providers/openstack/identity-application-credential-v3';

/** One Keystone access rule: `method` on `path` of `service` (paths may end in `/*` or `/**`). */
export interface AccessRule {
  readonly service: string;
  readonly method: 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE';
  readonly path: string;
}

/** The stack creates the credential; its secret then exists only in the stack's state. */
export interface CreatedApplicationCredentialProps {
  readonly kind: 'created';
  /** Provider configuration of the site whose Keystone issues the credential. */
  readonly provider: TerraformProvider;
  /** Keystone name, unique per user (1-255 characters). */
  readonly name: string;
  /**
   * What the credential is for, shown in the dashboard.
   * @default no description
   */
  readonly description?: string;
  /** When it expires: RFC 3339 in UTC with seconds, e.g. `2026-05-31T23:59:59Z` (config/expiry.ts toRfc3339). */
  readonly expiresAt: string;
  /**
   * Limit the credential to these requests (Keystone access rules).
   * @default none: the credential may do whatever the user's roles allow on the project
   */
  readonly accessRules?: readonly AccessRule[];
}

/** The user brought a credential: nothing is created, and its secret is read from the environment at run time. */
export interface ExistingApplicationCredentialProps {
  readonly kind: 'existing';
  /** Its Keystone id. */
  readonly id: string;
  /** Name of the environment variable that holds the secret when the ETL runs (never put in the stack). */
  readonly secretEnv: string;
}

export type ApplicationCredentialProps = CreatedApplicationCredentialProps | ExistingApplicationCredentialProps;

const RFC3339_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;
const METHODS = new Set(['GET', 'HEAD', 'PUT', 'POST', 'PATCH', 'DELETE']);
const ENV_NAME = /^[A-Z_][A-Z0-9_]*$/;

/**
 * An application credential for rclone: created by the stack (restricted: `unrestricted = false`, so it cannot
 * create further credentials), or brought by the user. Props are validated here, at construction (tokens
 * skipped), and every problem is reported as an error annotation, so a wrong value stops synth with the whole
 * list rather than reaching Keystone. The resource's logical id is the stack's to pin (`resource`).
 */
export class ApplicationCredential extends Construct {
  /** The credential's id: a token of the created resource, or the brought id. */
  readonly credentialId: string;
  /** The created credential's secret (a sensitive token), or undefined for a brought one. */
  readonly secret: string | undefined;
  /** For a brought credential: the environment variable with its secret. */
  readonly secretEnv: string | undefined;
  readonly source: 'created' | 'existing';
  /** The Terraform resource, when created. */
  readonly resource: IdentityApplicationCredentialV3 | undefined;

  constructor(scope: Construct, id: string, props: ApplicationCredentialProps) {
    super(scope, id);
    reportErrors(this, validate(props));

    if (props.kind === 'existing') {
      this.resource = undefined;
      this.credentialId = props.id;
      this.secret = undefined;
      this.secretEnv = props.secretEnv;
      this.source = 'existing';
      return;
    }
    const rules: IdentityApplicationCredentialV3AccessRules[] = (props.accessRules ?? []).map((r) => ({
      service: r.service,
      method: r.method,
      path: r.path,
    }));
    this.resource = new IdentityApplicationCredentialV3(this, 'resource', {
      provider: props.provider,
      name: props.name,
      ...(props.description !== undefined ? { description: props.description } : {}),
      expiresAt: props.expiresAt,
      unrestricted: false,
      ...(rules.length > 0 ? { accessRules: rules } : {}),
    });
    this.credentialId = this.resource.id;
    this.secret = this.resource.secret;
    this.secretEnv = undefined;
    this.source = 'created';
  }
}

/** Every problem with the props (empty when they are fine). Exported for tests. */
export function validate(props: ApplicationCredentialProps): string[] {
  const p: string[] = [];
  const clean = (what: string, v: string) => {
    if (!isResolved(v)) return;
    if (/[\s\u0000-\u001f]/.test(v)) p.push(`${what} contains whitespace or control characters`);
    if (/[$%]\{/.test(v)) p.push(`${what} contains a Terraform template sequence (\${ or %{)`);
  };
  if (props.kind === 'existing') {
    if (!props.id) p.push('id is empty');
    else clean('id', props.id);
    if (!ENV_NAME.test(props.secretEnv)) p.push(`secretEnv "${props.secretEnv}" is not an environment variable name`);
    return p;
  }
  if (!isResolved(props.name)) {
    // A token: Keystone checks it.
  } else if (!props.name || props.name.length > 255) p.push('name must be 1-255 characters');
  else clean('name', props.name);
  if (!isResolved(props.expiresAt)) {
    // A token: checked by the provider.
  } else if (!RFC3339_UTC.test(props.expiresAt) || Number.isNaN(Date.parse(props.expiresAt))) {
    p.push(`expiresAt "${props.expiresAt}" is not RFC 3339 UTC with seconds (e.g. 2026-05-31T23:59:59Z)`);
  }
  for (const [i, r] of (props.accessRules ?? []).entries()) {
    if (!r.service) p.push(`accessRules[${i}].service is empty`);
    if (!METHODS.has(r.method)) p.push(`accessRules[${i}].method "${r.method}" is not one of ${[...METHODS].join(' ')}`);
    // A path built from a token (the project id) is checked by its literal parts only.
    const literal = r.path.replace(/\$\{TfToken\[[^\]]*\]\}/g, 'TOKEN');
    if (!literal.startsWith('/') && !literal.startsWith('TOKEN')) p.push(`accessRules[${i}].path "${r.path}" does not start with /`);
    if (/\s/.test(literal)) p.push(`accessRules[${i}].path contains whitespace`);
  }
  return p;
}
