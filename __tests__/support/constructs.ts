import { AnnotationMetadataEntryType, DefaultTokenResolver, StringConcat, Tokenization } from 'cdktf';
import type { IConstruct } from 'constructs';

/** Construct-level helpers for tests. */

/** The error annotations on `scope` and everything below it, as `path: message`. */
export function errorAnnotations(scope: IConstruct): string[] {
  return scope.node
    .findAll()
    .flatMap((c) =>
      c.node.metadata.filter((m) => m.type === AnnotationMetadataEntryType.ERROR).map((m) => `${c.node.path}: ${String(m.data)}`),
    );
}

/**
 * What a token stands for in `stack`'s synthesized JSON (`${type.name.attribute}`), so a test compares the
 * reference itself instead of "is some token".
 */
export function resolved(stack: IConstruct, value: unknown): unknown {
  return Tokenization.resolve(value, { scope: stack, preparing: false, resolver: new DefaultTokenResolver(new StringConcat()) });
}
