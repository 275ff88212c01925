import { AnnotationMetadataEntryType } from 'cdktf';
import type { IConstruct } from 'constructs';

/** The error annotations on `scope` and everything below it, as `path: message`. */
export function errorAnnotations(scope: IConstruct): string[] {
  return scope.node
    .findAll()
    .flatMap((c) => c.node.metadata.filter((m) => m.type === AnnotationMetadataEntryType.ERROR).map((m) => `${c.node.path}: ${String(m.data)}`));
}
