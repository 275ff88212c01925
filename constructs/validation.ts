import { Annotations, Token } from 'cdktf';
import type { IConstruct } from 'constructs';

/**
 * Reports each problem as an error annotation on `scope`: cdktf collects every annotation of every stack and
 * stops `cdktf synth` (and deploy, diff) with the whole list, each with the construct path it belongs to,
 * instead of the first `throw` hiding the rest. Returns whether there was any.
 */
export function reportErrors(scope: IConstruct, problems: readonly string[]): boolean {
  for (const p of problems) Annotations.of(scope).addError(p);
  return problems.length > 0;
}

/**
 * True when `value` is known at synth time. A token (a reference to another resource's attribute, resolved only
 * by Terraform) cannot be checked here and is skipped, as the aws-cdk constructs do.
 */
export function isResolved(value: unknown): boolean {
  return !Token.isUnresolved(value);
}

/** Problems of a text prop that ends up in the synthesized JSON: empty, control characters, `${` / `%{`. */
export function textProblems(what: string, value: string, opts: { allowSpaces?: boolean } = {}): string[] {
  if (!isResolved(value)) return [];
  const p: string[] = [];
  if (value.length === 0) p.push(`${what} is empty`);
  if (opts.allowSpaces ? /[\u0000-\u001f\u007f]/.test(value) : /[\s\u0000-\u001f\u007f]/.test(value)) {
    p.push(`${what} contains ${opts.allowSpaces ? '' : 'whitespace or '}control characters`);
  }
  if (/[$%]\{/.test(value)) p.push(`${what} contains a Terraform template sequence (\${ or %{)`);
  return p;
}
