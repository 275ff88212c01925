import { Annotations, TerraformElement, TerraformStack } from 'cdktf';
import type { Construct, Node } from 'constructs';

/**
 * A stack that decides the Terraform addresses of its blocks. Every resource lives in the state at
 * `<type>.<logical id>`; a logical id that changes plans "destroy it, create another", so the stack pins the ones
 * already deployed, by construct path below the stack (`'node/port': 'node_port'`), and the constructs pin none
 * (two instances of a construct in one stack then cannot collide).
 *
 * Why not `overrideLogicalId` from the stack: a construct that refers to its own child (`group.id` in the rule)
 * fixes that child's logical id at the first reference, inside the construct's constructor, and a later
 * override is silently ignored. `allocateLogicalId` is cdktf's hook for naming: it runs at that first
 * reference, so a table given before the construct is created is always applied.
 */
export abstract class StackWithPinnedAddresses extends TerraformStack {
  private readonly pinned = new Map<string, string>();
  private readonly applied = new Set<string>();

  constructor(scope: Construct, id: string) {
    super(scope, id);
    // A pinned path that names no block (a renamed construct id) would silently fall back to a hashed id.
    this.node.addValidation({
      validate: () =>
        [...this.pinned.keys()]
          .filter((p) => !this.applied.has(p))
          .map((p) => `${this.node.id}: the pinned address '${this.pinned.get(p)}' is for '${p}', which is no block of this stack`),
    });
  }

  /** Pins logical ids by construct path below this stack. Call before the blocks are created. */
  protected pinAddresses(table: Readonly<Record<string, string>>): void {
    for (const [path, logicalId] of Object.entries(table)) {
      if (this.pinned.has(path)) Annotations.of(this).addError(`address of '${path}' pinned twice`);
      this.pinned.set(path, logicalId);
    }
  }

  /** The construct paths (below this stack) whose logical id is pinned, with it. */
  get pinnedAddresses(): ReadonlyMap<string, string> {
    return this.pinned;
  }

  override allocateLogicalId(element: TerraformElement | Node): string {
    const node = TerraformElement.isTerraformElement(element) ? element.node : element;
    const below = node.scopes
      .slice(node.scopes.indexOf(this) + 1)
      .map((c) => c.node.id)
      .join('/');
    const pinned = this.pinned.get(below);
    if (pinned === undefined) return super.allocateLogicalId(element);
    this.applied.add(below);
    return pinned;
  }
}
