/**
 * Generates the TypeScript bindings for terraform-provider-openstack from its schema, without `cdktf get`
 * (which would need the provider binary and the network).
 *
 *   npm run gen:bindings                   regenerate .gen/ (commit the result)
 *   npx tsx scripts/gen-bindings.ts DIR    generate into DIR instead (the tests compare it with .gen/)
 *
 * Input: ../shared/openstack-provider/schema-3.4.0.json (the full `terraform providers schema -json` output of
 * 3.4.0). When that file is absent (a fresh clone without ../shared), the committed filtered copy
 * `.gen/openstack-schema.json` is used, so the bindings can always be regenerated from the repository alone.
 *
 * Output (all committed):
 *   .gen/openstack-schema.json        the schema cut down to the resources and data sources listed below; the
 *                                     schema-conformance test checks every synthesized stack against it
 *   .gen/providers/openstack/...      the generated constructs
 *
 * To use another resource: add its type to RESOURCES or DATA_SOURCES, run `npm run gen:bindings` with
 * ../shared present, commit both outputs.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { CodeMaker, TerraformProviderGenerator } from '@cdktf/provider-generator';

export const PROVIDER_FQPN = 'registry.terraform.io/terraform-provider-openstack/openstack';
export const PROVIDER_SOURCE = 'terraform-provider-openstack/openstack';
/**
 * Written into the synthesized `required_providers`. The bindings come from 3.4.0; `~> 3.4` accepts later 3.x
 * releases (minor releases only add arguments, so the generated configuration stays valid) and never 4.x.
 * The exact version Terraform picks is recorded in each stack's `.terraform.lock.hcl`.
 */
export const PROVIDER_VERSION_CONSTRAINT = '~> 3.4';

export const RESOURCES = [
  'openstack_objectstorage_container_v1',
  'openstack_identity_application_credential_v3',
  'openstack_compute_keypair_v2',
  'openstack_networking_secgroup_v2',
  'openstack_networking_secgroup_rule_v2',
  'openstack_networking_port_v2',
  'openstack_compute_instance_v2',
  'openstack_networking_floatingip_v2',
  'openstack_networking_floatingip_associate_v2',
] as const;

export const DATA_SOURCES = ['openstack_identity_auth_scope_v3', 'openstack_networking_network_v2'] as const;

const ROOT = resolve(__dirname, '..');
const SHARED_SCHEMA = resolve(ROOT, '..', 'shared', 'openstack-provider', 'schema-3.4.0.json');
const COMMITTED_SCHEMA = join(ROOT, '.gen', 'openstack-schema.json');

// biome-ignore lint/suspicious/noExplicitAny: the provider's schema JSON, walked by key
type Json = Record<string, any>;

function pick(all: Json, names: readonly string[], what: string, source: string): Json {
  const out: Json = {};
  for (const name of names) {
    if (!all[name]) throw new Error(`${what} ${name} is not in ${source}`);
    out[name] = all[name];
  }
  return out;
}

/** The full schema cut down to what the project uses; the provider block is kept whole. */
export function filterSchema(full: Json, source: string): Json {
  const provider = full.provider_schemas?.[PROVIDER_FQPN];
  if (!provider) throw new Error(`${source} has no provider ${PROVIDER_FQPN}`);
  return {
    format_version: full.format_version,
    provider_schemas: {
      [PROVIDER_FQPN]: {
        provider: provider.provider,
        resource_schemas: pick(provider.resource_schemas ?? {}, RESOURCES, 'resource', source),
        data_source_schemas: pick(provider.data_source_schemas ?? {}, DATA_SOURCES, 'data source', source),
      },
    },
    provider_versions: full.provider_versions,
  };
}

/**
 * Writes `<outDir>/openstack-schema.json` and `<outDir>/providers/openstack`. Default outDir: `.gen` (a test
 * generates into a temporary directory and compares with what is committed).
 */
export async function generate(outDir: string = join(ROOT, '.gen'), source?: string): Promise<string> {
  source ??= existsSync(SHARED_SCHEMA) ? SHARED_SCHEMA : COMMITTED_SCHEMA;
  if (!existsSync(source)) {
    throw new Error(`neither ${SHARED_SCHEMA} nor ${COMMITTED_SCHEMA} exists; nothing to generate from`);
  }
  const filteredPath = join(outDir, 'openstack-schema.json');
  const filtered = filterSchema(JSON.parse(readFileSync(source, 'utf8')), source);
  mkdirSync(outDir, { recursive: true });
  writeFileSync(filteredPath, `${JSON.stringify(filtered, null, 2)}\n`);

  // The generator writes `providerVersion` (the exact release found in `provider_versions`) into
  // required_providers when it has one; leave it out so the constraint above is what gets written.
  const forGenerator = { ...filtered, provider_versions: undefined };
  const code = new CodeMaker();
  const generator = new TerraformProviderGenerator(code, forGenerator);
  // The duck-typed target carries what `cdktf get` would take from cdktf.json's terraformProviders entry.
  const target = {
    isModule: false,
    isProvider: true,
    name: 'openstack',
    namespace: 'terraform-provider-openstack',
    source: PROVIDER_SOURCE,
    fqn: PROVIDER_SOURCE,
    version: PROVIDER_VERSION_CONSTRAINT,
  };
  generator.generate(target as unknown as Parameters<TerraformProviderGenerator['generate']>[0]);
  rmSync(join(outDir, 'providers'), { recursive: true, force: true });
  await code.save(outDir);
  return (
    `gen-bindings: ${RESOURCES.length} resources, ${DATA_SOURCES.length} data sources from ${relative(ROOT, source)}` +
    ` -> ${relative(ROOT, join(outDir, 'providers', 'openstack'))}, ${relative(ROOT, filteredPath)}`
  );
}

if (require.main === module) {
  generate(process.argv[2] ? resolve(process.argv[2]) : undefined)
    .then((summary) => console.log(summary))
    .catch((e: unknown) => {
      console.error(`gen-bindings: ${e instanceof Error ? e.message : String(e)}`);
      process.exitCode = 1;
    });
}
