/**
 * Checks a synthesized stack (cdk.tf.json) against provider schemas the way `terraform validate` would, without
 * the provider binary: every resource, data source and provider block must exist in the schema, set only known
 * arguments and blocks, set every required one, use the right types and the right block nesting; meta-arguments
 * must be Terraform's own; `provider = "openstack.<alias>"` must name a declared provider configuration; and
 * `${type.name.attr}` references must point at declared blocks and known attributes.
 *
 * Pure: `checkStack(stackJson, schema)` returns the problems (empty when the stack conforms).
 *
 * `npx tsx scripts/check-schema.ts [cdktf.out]` runs it on every synthesized stack.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

// ---- Terraform's `providers schema -json` format -----------------------------------------------------------

export type CtyType = string | [string, unknown];

export interface SchemaAttribute {
  type?: CtyType;
  required?: boolean;
  optional?: boolean;
  computed?: boolean;
  sensitive?: boolean;
}

export interface SchemaBlock {
  attributes?: Record<string, SchemaAttribute>;
  block_types?: Record<string, SchemaBlockType>;
}

export interface SchemaBlockType {
  nesting_mode: 'single' | 'group' | 'list' | 'set' | 'map';
  block: SchemaBlock;
  min_items?: number;
  max_items?: number;
}

export interface ProviderSchema {
  provider?: { block: SchemaBlock };
  resource_schemas?: Record<string, { block: SchemaBlock }>;
  data_source_schemas?: Record<string, { block: SchemaBlock }>;
}

export interface ProvidersSchemaJson {
  provider_schemas: Record<string, ProviderSchema>;
}

export interface Problem {
  /** Where in the stack JSON, e.g. `resource.openstack_compute_instance_v2.node.network[0].port`. */
  path: string;
  message: string;
}

// ---- Terraform's built-in resources and data sources (provider terraform.io/builtin/terraform) ---------------

const BUILTIN: ProviderSchema = {
  resource_schemas: {
    terraform_data: {
      block: {
        attributes: {
          id: { type: 'string', computed: true },
          input: { type: 'dynamic', optional: true },
          output: { type: 'dynamic', computed: true },
          triggers_replace: { type: 'dynamic', optional: true },
        },
      },
    },
  },
  data_source_schemas: {
    terraform_remote_state: {
      block: {
        attributes: {
          backend: { type: 'string', required: true },
          config: { type: 'dynamic', optional: true },
          defaults: { type: 'dynamic', optional: true },
          outputs: { type: 'dynamic', computed: true },
          workspace: { type: 'string', optional: true },
        },
      },
    },
  },
};

const RESOURCE_META = new Set(['count', 'for_each', 'depends_on', 'lifecycle', 'provider', 'provisioner', 'connection']);
const DATA_META = new Set(['count', 'for_each', 'depends_on', 'lifecycle', 'provider']);
const LIFECYCLE_KEYS = new Set([
  'create_before_destroy',
  'prevent_destroy',
  'ignore_changes',
  'replace_triggered_by',
  'precondition',
  'postcondition',
]);
const DATA_LIFECYCLE_KEYS = new Set(['precondition', 'postcondition']);

// ---- Checking -----------------------------------------------------------------------------------------------

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
/** A cdktf token / Terraform template: its type is only known at plan time, so any type accepts it. */
const isExpression = (v: unknown): boolean => typeof v === 'string' && v.includes('${');

/** Resource types in `schema` keyed by type name, across every provider in the file, plus Terraform's built-ins. */
function index(schema: ProvidersSchemaJson) {
  const resources = new Map<string, SchemaBlock>();
  const dataSources = new Map<string, SchemaBlock>();
  const providers = new Map<string, SchemaBlock>();
  for (const [fqpn, p] of Object.entries({ ...schema.provider_schemas, builtin: BUILTIN })) {
    for (const [t, s] of Object.entries(p.resource_schemas ?? {})) resources.set(t, s.block);
    for (const [t, s] of Object.entries(p.data_source_schemas ?? {})) dataSources.set(t, s.block);
    if (p.provider) providers.set(fqpn.split('/').pop() as string, p.provider.block);
  }
  return { resources, dataSources, providers };
}

export function checkStack(stack: unknown, schema: ProvidersSchemaJson): Problem[] {
  const problems: Problem[] = [];
  const add = (path: string, message: string) => problems.push({ path, message });
  if (!isObject(stack)) return [{ path: '', message: 'the stack is not a JSON object' }];
  const { resources, dataSources, providers } = index(schema);

  // Provider configurations: name -> aliases declared.
  const declared = new Map<string, Set<string | undefined>>();
  if (stack.provider !== undefined) {
    if (!isObject(stack.provider)) add('provider', 'must be an object of provider names');
    else {
      for (const [name, configs] of Object.entries(stack.provider)) {
        const list = Array.isArray(configs) ? configs : [configs];
        const block = providers.get(name);
        const aliases = new Set<string | undefined>();
        list.forEach((cfg, i) => {
          const path = `provider.${name}[${i}]`;
          if (!isObject(cfg)) return add(path, 'must be an object');
          const alias = cfg.alias;
          if (alias !== undefined && (typeof alias !== 'string' || !/^[A-Za-z_][A-Za-z0-9_-]*$/.test(alias))) {
            add(`${path}.alias`, `alias ${JSON.stringify(alias)} is not a valid identifier`);
          }
          if (aliases.has(alias as string | undefined)) {
            add(path, alias ? `duplicate provider configuration alias "${alias}"` : 'duplicate default provider configuration');
          }
          aliases.add(alias as string | undefined);
          if (!block) return add(path, `no schema for provider "${name}"`);
          const { alias: _alias, version: _version, ...rest } = cfg;
          checkBlock(rest, block, path, add, 'provider');
          return undefined;
        });
        declared.set(name, aliases);
      }
    }
  }
  const required = isObject(stack.terraform) ? stack.terraform.required_providers : undefined;
  if (isObject(required)) {
    for (const [name, req] of Object.entries(required)) {
      if (!isObject(req) || (req.source !== undefined && typeof req.source !== 'string')) {
        add(`terraform.required_providers.${name}`, 'must be an object with a string `source`');
      }
    }
  }

  const declaredBlocks = new Map<string, Set<string>>(); // "openstack_x" / "data.openstack_x" -> names
  const kinds: Array<['resource' | 'data', Map<string, SchemaBlock>]> = [
    ['resource', resources],
    ['data', dataSources],
  ];
  for (const [kind, types] of kinds) {
    const section = stack[kind];
    if (section === undefined) continue;
    if (!isObject(section)) {
      add(kind, 'must be an object of types');
      continue;
    }
    for (const [type, instances] of Object.entries(section)) {
      if (!isObject(instances)) {
        add(`${kind}.${type}`, 'must be an object of named blocks');
        continue;
      }
      declaredBlocks.set(kind === 'data' ? `data.${type}` : type, new Set(Object.keys(instances)));
      const block = types.get(type);
      for (const [name, body] of Object.entries(instances)) {
        const path = `${kind}.${type}.${name}`;
        if (!/^[A-Za-z_][A-Za-z0-9_-]*$/.test(name)) add(path, `"${name}" is not a valid block name`);
        if (!block) {
          add(path, `${kind === 'data' ? 'data source' : 'resource type'} "${type}" is not in the provider schema`);
          continue;
        }
        if (!isObject(body)) {
          add(path, 'must be an object');
          continue;
        }
        const meta = kind === 'resource' ? RESOURCE_META : DATA_META;
        const args: Json = {};
        for (const [key, value] of Object.entries(body)) {
          if (meta.has(key)) checkMeta(key, value, `${path}.${key}`, kind, declared, add);
          else args[key] = value;
        }
        if (body.count !== undefined && body.for_each !== undefined) add(path, 'count and for_each cannot both be set');
        checkBlock(args, block, path, add, kind);
      }
    }
  }

  checkReferences(stack, declaredBlocks, resources, dataSources, add);
  return problems;
}

function checkMeta(
  key: string,
  value: unknown,
  path: string,
  kind: 'resource' | 'data',
  declared: Map<string, Set<string | undefined>>,
  add: (path: string, message: string) => void,
): void {
  switch (key) {
    case 'count':
      if (!(typeof value === 'number' && Number.isInteger(value) && value >= 0) && !isExpression(value)) {
        add(path, 'must be a whole number or an expression');
      }
      return;
    case 'for_each':
      if (!isObject(value) && !Array.isArray(value) && !isExpression(value)) add(path, 'must be a map, a set or an expression');
      return;
    case 'depends_on':
      if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) add(path, 'must be a list of references');
      return;
    case 'provider': {
      const m = typeof value === 'string' ? /^([a-z0-9_-]+)(?:\.([A-Za-z0-9_-]+))?$/.exec(value) : null;
      if (!m) return add(path, 'must be "<provider>" or "<provider>.<alias>"');
      const aliases = declared.get(m[1] as string);
      if (m[2] && !aliases?.has(m[2])) add(path, `no provider "${m[1]}" configuration with alias "${m[2]}" is declared`);
      return;
    }
    case 'lifecycle': {
      if (!isObject(value)) return add(path, 'must be an object');
      const allowed = kind === 'resource' ? LIFECYCLE_KEYS : DATA_LIFECYCLE_KEYS;
      for (const [k, v] of Object.entries(value)) {
        if (!allowed.has(k)) add(`${path}.${k}`, `unsupported lifecycle argument "${k}"`);
        else if ((k === 'create_before_destroy' || k === 'prevent_destroy') && typeof v !== 'boolean') {
          add(`${path}.${k}`, 'must be true or false (no expressions)');
        } else if ((k === 'ignore_changes' || k === 'replace_triggered_by') && !(Array.isArray(v) || v === 'all')) {
          add(`${path}.${k}`, 'must be a list');
        }
      }
      return;
    }
    case 'provisioner': {
      const list = Array.isArray(value) ? value : [value];
      list.forEach((p, i) => {
        if (!isObject(p) || Object.keys(p).length !== 1) add(`${path}[${i}]`, 'must be an object with one provisioner type');
        else {
          const type = Object.keys(p)[0] as string;
          if (!['local-exec', 'remote-exec', 'file'].includes(type)) add(`${path}[${i}]`, `unknown provisioner "${type}"`);
        }
      });
      return;
    }
    case 'connection':
      if (!isObject(value)) add(path, 'must be an object');
      return;
  }
}

function checkBlock(
  body: Json,
  block: SchemaBlock,
  path: string,
  add: (path: string, message: string) => void,
  kind: 'resource' | 'data' | 'provider' | 'nested',
): void {
  const attributes = block.attributes ?? {};
  const blockTypes = block.block_types ?? {};
  const dynamic = body.dynamic;
  for (const [key, value] of Object.entries(body)) {
    const p = `${path}.${key}`;
    if (key === '//') continue; // a JSON-syntax comment (cdktf puts its metadata there); Terraform ignores it
    if (key === 'dynamic' && !attributes.dynamic && !blockTypes.dynamic) continue;
    const attr = attributes[key];
    if (attr) {
      if (attr.computed && !attr.optional && !attr.required) {
        add(p, `"${key}" is read-only (computed): it cannot be set in configuration`);
        continue;
      }
      if (value === null) continue;
      const typeProblem = checkType(value, attr.type ?? 'dynamic');
      if (typeProblem) add(p, typeProblem);
      continue;
    }
    const bt = blockTypes[key];
    if (bt) {
      checkNestedBlocks(value, bt, p, add);
      continue;
    }
    const similar = Object.keys({ ...attributes, ...blockTypes }).find((k) => k.replace(/_/g, '') === key.replace(/_/g, ''));
    add(p, `unsupported argument "${key}"${similar ? ` (did you mean "${similar}"?)` : ''}`);
  }
  for (const [key, attr] of Object.entries(attributes)) {
    if (attr.required && (body[key] === undefined || body[key] === null)) {
      add(`${path}.${key}`, `the argument "${key}" is required, but no definition was found`);
    }
  }
  const dynamicNames = isObject(dynamic) ? new Set(Object.keys(dynamic)) : new Set<string>();
  for (const [key, bt] of Object.entries(blockTypes)) {
    if ((bt.min_items ?? 0) > 0 && body[key] === undefined && !dynamicNames.has(key)) {
      add(`${path}.${key}`, `at least ${bt.min_items} "${key}" block${bt.min_items === 1 ? '' : 's'} required`);
    }
  }
  if (dynamic !== undefined && !attributes.dynamic && !blockTypes.dynamic) {
    if (!isObject(dynamic)) add(`${path}.dynamic`, 'must be an object of block names');
    else {
      for (const [name, spec] of Object.entries(dynamic)) {
        const bt = blockTypes[name];
        const p = `${path}.dynamic.${name}`;
        if (!bt) add(p, `dynamic block "${name}": no such block type`);
        else if (!isObject(spec) || spec.for_each === undefined || !isObject(spec.content)) {
          add(p, 'a dynamic block needs for_each and a content object');
        } else checkBlock(spec.content, bt.block, `${p}.content`, add, 'nested');
      }
    }
  }
  void kind;
}

function checkNestedBlocks(value: unknown, bt: SchemaBlockType, path: string, add: (path: string, message: string) => void): void {
  if (bt.nesting_mode === 'map') {
    if (!isObject(value)) return add(path, 'must be an object of labelled blocks');
    for (const [label, b] of Object.entries(value)) {
      if (!isObject(b)) add(`${path}.${label}`, 'must be a block (an object)');
      else checkBlock(b, bt.block, `${path}.${label}`, add, 'nested');
    }
    return;
  }
  let items: unknown[];
  if (Array.isArray(value)) items = value;
  else if (isObject(value)) items = [value];
  else {
    return add(
      path,
      `"${path.split('.').pop()}" is a block, not an argument: it must be an object (or a list of objects), not ${describe(value)}`,
    );
  }
  const max = bt.nesting_mode === 'single' || bt.nesting_mode === 'group' ? 1 : bt.max_items;
  if (max !== undefined && max > 0 && items.length > max) {
    add(path, `too many "${path.split('.').pop()}" blocks: no more than ${max} allowed, got ${items.length}`);
  }
  if (bt.min_items !== undefined && items.length < bt.min_items) {
    add(path, `insufficient "${path.split('.').pop()}" blocks: at least ${bt.min_items} required, got ${items.length}`);
  }
  items.forEach((item, i) => {
    const p = Array.isArray(value) ? `${path}[${i}]` : path;
    if (!isObject(item)) add(p, `each "${path.split('.').pop()}" block must be an object, not ${describe(item)}`);
    else checkBlock(item, bt.block, p, add, 'nested');
  });
}

/** A message when `value` cannot be converted to the cty type `type`, else undefined. */
export function checkType(value: unknown, type: CtyType): string | undefined {
  if (isExpression(value) || value === null) return undefined;
  if (type === 'dynamic') return undefined;
  if (type === 'string') {
    return typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean'
      ? undefined
      : `a string is required, got ${describe(value)}`;
  }
  if (type === 'number') {
    if (typeof value === 'number') return undefined;
    if (typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value))) return undefined;
    return `a number is required, got ${describe(value)}`;
  }
  if (type === 'bool') {
    if (typeof value === 'boolean' || value === 'true' || value === 'false') return undefined;
    return `a bool is required, got ${describe(value)}`;
  }
  if (Array.isArray(type)) {
    const [kind, inner] = type;
    if (kind === 'list' || kind === 'set') {
      if (!Array.isArray(value)) return `a ${kind} is required, got ${describe(value)}`;
      for (const [i, v] of value.entries()) {
        const p = checkType(v, inner as CtyType);
        if (p) return `element ${i}: ${p}`;
      }
      return undefined;
    }
    if (kind === 'map') {
      if (!isObject(value)) return `a map is required, got ${describe(value)}`;
      for (const [k, v] of Object.entries(value)) {
        const p = checkType(v, inner as CtyType);
        if (p) return `element "${k}": ${p}`;
      }
      return undefined;
    }
    if (kind === 'object') {
      if (!isObject(value)) return `an object is required, got ${describe(value)}`;
      const attrs = inner as Record<string, CtyType>;
      for (const k of Object.keys(value)) if (!(k in attrs)) return `unsupported attribute "${k}" in object`;
      for (const [k, t] of Object.entries(attrs)) {
        if (!(k in value)) return `attribute "${k}" is required in object`;
        const p = checkType(value[k], t);
        if (p) return `attribute "${k}": ${p}`;
      }
      return undefined;
    }
    if (kind === 'tuple') {
      const types = inner as CtyType[];
      if (!Array.isArray(value) || value.length !== types.length) return `a tuple of ${types.length} elements is required`;
      for (const [i, t] of types.entries()) {
        const p = checkType(value[i], t);
        if (p) return `element ${i}: ${p}`;
      }
      return undefined;
    }
  }
  return `unknown schema type ${JSON.stringify(type)}`;
}

/** `${openstack_x.name.attr}` and `${data.openstack_x.name.attr}` must point at declared blocks and known attributes. */
function checkReferences(
  stack: Json,
  declared: Map<string, Set<string>>,
  resources: Map<string, SchemaBlock>,
  dataSources: Map<string, SchemaBlock>,
  add: (path: string, message: string) => void,
): void {
  const ref = /(?<![\w.])(data\.)?([a-z][a-z0-9]*_[a-z0-9_]+)\.([A-Za-z_][A-Za-z0-9_-]*)(?:\[[^\]]*\])?\.([A-Za-z_][A-Za-z0-9_]*)/g;
  const visit = (node: unknown, path: string) => {
    if (typeof node === 'string') {
      for (const expr of node.match(/\$\{[^}]*\}/g) ?? []) {
        for (const m of expr.matchAll(ref)) {
          const [, data, type, name, attr] = m as unknown as [string, string | undefined, string, string, string];
          const key = data ? `data.${type}` : type;
          const schemaMap = data ? dataSources : resources;
          if (!schemaMap.has(type)) continue; // not a provider type (e.g. var.x, local.y): nothing to check
          if (!declared.get(key)?.has(name)) add(path, `reference to undeclared ${data ? 'data source' : 'resource'} ${key}.${name}`);
          else {
            const block = schemaMap.get(type) as SchemaBlock;
            if (!block.attributes?.[attr] && !block.block_types?.[attr]) {
              add(path, `${key}.${name} has no attribute "${attr}"`);
            }
          }
        }
      }
    } else if (Array.isArray(node)) node.forEach((v, i) => visit(v, `${path}[${i}]`));
    else if (isObject(node)) for (const [k, v] of Object.entries(node)) visit(v, path ? `${path}.${k}` : k);
  };
  for (const section of ['resource', 'data', 'output', 'locals', 'provider']) visit(stack[section], section);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (isObject(v)) return 'an object';
  return `${typeof v} ${JSON.stringify(v)}`;
}

// ---- The filtered schema ----------------------------------------------------------------------------------------

export const FILTERED_SCHEMA_PATH = resolve(__dirname, '..', '.gen', 'openstack-schema.json');

export function loadFilteredSchema(): ProvidersSchemaJson {
  return JSON.parse(readFileSync(FILTERED_SCHEMA_PATH, 'utf8')) as ProvidersSchemaJson;
}
