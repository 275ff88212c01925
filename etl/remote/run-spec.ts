import { z } from 'zod';
import { EtlError } from '../errors';

/**
 * The run contract: every fact a run of the ETL on the node needs, as one typed value.
 *
 * The stacks produce it (stacks/etl-stack.ts: the node's address and login, the layout its cloud-config was
 * rendered with, the container and credential id, the dataset options), Terraform resolves it at apply time
 * (`jsonencode`, constructs/etl-run.ts) and hands it to the runner as `PERSIST_ETL_SPEC`, and records it as the
 * etl stack's `run_spec` output, which a rerun (`npm run etl:remote`) reads. The runner sends the node its part
 * of it (`nodeJob`) as one JSON value on stdin. Nothing is re-read from persist.config.yaml or re-typed on the
 * way. It holds no secret: the application credential's secret is read by the runner from the storage stack's
 * state (or PERSIST_APP_CREDENTIAL_SECRET) and travels to the node in rclone.conf only.
 */
export const RUN_SPEC_FORMAT = 1;

// Every value ends up in a shell command line, rclone.conf or a systemd unit on the node: no line breaks or
// other control characters, whatever path (a state file, an edited spec file) it came by.
const CONTROL = /^[^\p{Cc}\u2028\u2029]*$/u;
const text = z.string().min(1).regex(CONTROL, 'contains a line break or another control character');
const ratio = z.number().gt(0).lt(1);
// Paths on the node are absolute: they reach rclone and the ETL as JSON, past any shell that would expand `~`.
const nodePath = text.refine((v) => v.startsWith('/') && !v.split('/').includes('..'), { message: 'is not an absolute path without ..' });

export const runSpecSchema = z
  .object({
    format: z.literal(RUN_SPEC_FORMAT),
    node: z
      .object({
        host: text,
        port: z.number().int().min(1).max(65535),
        /** The image's login user (`cc` on Chameleon). */
        user: text,
        /** Private key of the deployed keypair, on the machine that runs the runner (`~/` allowed). */
        privateKeyPath: text,
        /** Server id: one known_hosts per server, and the console log the host key is pinned from. */
        serverId: text.optional(),
        /** clouds.yaml entry of the node's site (kvm.cloud): the console log is read with it. */
        consoleCloud: text,
      })
      .strict(),
    /** Where the node's cloud-config put things (cloud-init/render.ts). */
    layout: z
      .object({
        /** Name of the remote in rclone.conf. */
        remoteName: z.string().regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/, 'is not a plain rclone remote name'),
        rcloneConfigPath: nodePath,
        /** Where readers find the current version (a link; the container is mounted beside it). */
        mountPoint: nodePath,
        /** The systemd unit that mounts the container. */
        mountService: text,
        /** The ETL directory: bundle, work dir, lock. */
        remoteDir: nodePath,
      })
      .strict(),
    storage: z
      .object({
        container: text,
        authUrl: text,
        region: text,
        userId: text.optional(),
        /** The application credential's id (its secret is never part of the spec). */
        credentialId: text,
      })
      .strict(),
    dataset: z
      .object({
        /** The zip to download; absent when `source` names a zip already on the node. */
        url: text.optional(),
        source: nodePath.optional(),
        sha256: z
          .string()
          .regex(/^[0-9a-f]{64}$/, 'is not a SHA-256 in hexadecimal')
          .optional(),
        allowUnverified: z.boolean(),
        seed: z.number().int().min(0),
        ratios: z.tuple([ratio, ratio, ratio]).refine((r) => Math.abs(r[0] + r[1] + r[2] - 1) < 1e-9, { message: 'must add up to 1' }),
      })
      .strict()
      .refine((d) => Boolean(d.url) !== Boolean(d.source), { message: 'needs exactly one of url and source' }),
  })
  .strict();

export type RunSpec = z.infer<typeof runSpecSchema>;
export type NodeLayout = RunSpec['layout'];
export type DatasetSpec = RunSpec['dataset'];

/** A spec from text (the provisioner's PERSIST_ETL_SPEC, the etl stack's output, a file): parsed and checked. */
export function parseRunSpec(textValue: string, where: string): RunSpec {
  let value: unknown;
  try {
    value = JSON.parse(textValue);
  } catch (e) {
    throw new EtlError(`the run spec in ${where} is not JSON: ${(e as Error).message}`, RESYNTH_HINT);
  }
  return checkRunSpec(value, where);
}

const RESYNTH_HINT =
  'It is written by the etl stack: run `npx cdktf deploy etl` to write it again (a spec file of your own must match ' +
  'etl/remote/run-spec.ts).';

export function checkRunSpec(value: unknown, where: string): RunSpec {
  const r = runSpecSchema.safeParse(value);
  if (r.success) return r.data;
  const problems = r.error.issues.map((i) => `${i.path.join('.') || '(the spec)'} ${i.message}`);
  throw new EtlError(`the run spec in ${where} is not valid: ${problems.join('; ')}`, RESYNTH_HINT);
}

/** What a user may change for one rerun, on the command line; everything else is the deployed spec's. */
export interface RunOverrides {
  port?: number;
  privateKeyPath?: string;
  consoleCloud?: string;
  remoteDir?: string;
  mountPoint?: string;
  rcloneConfigPath?: string;
  url?: string;
  source?: string;
  sha256?: string;
  allowUnverified?: boolean;
  seed?: number;
  ratios?: [number, number, number];
}

/**
 * The spec with a rerun's overrides, checked again. A `--source` (a zip already on the node) replaces the URL
 * and its checksum; a `--url` replaces the deployed source or URL and drops the deployed URL's checksum.
 */
export function withOverrides(spec: RunSpec, o: RunOverrides): RunSpec {
  const dataset: DatasetSpec = { ...spec.dataset };
  if (o.source !== undefined) {
    delete dataset.url;
    delete dataset.sha256;
    dataset.source = o.source;
  } else if (o.url !== undefined) {
    delete dataset.source;
    if (o.url !== dataset.url) delete dataset.sha256;
    dataset.url = o.url;
  }
  if (o.sha256 !== undefined) dataset.sha256 = o.sha256;
  if (o.allowUnverified) dataset.allowUnverified = true;
  if (o.seed !== undefined) dataset.seed = o.seed;
  if (o.ratios !== undefined) dataset.ratios = o.ratios;
  const pick = <T>(a: T | undefined, b: T): T => (a === undefined ? b : a);
  return checkRunSpec(
    {
      ...spec,
      node: {
        ...spec.node,
        port: pick(o.port, spec.node.port),
        privateKeyPath: pick(o.privateKeyPath, spec.node.privateKeyPath),
        consoleCloud: pick(o.consoleCloud, spec.node.consoleCloud),
      },
      layout: {
        ...spec.layout,
        remoteDir: pick(o.remoteDir, spec.layout.remoteDir),
        mountPoint: pick(o.mountPoint, spec.layout.mountPoint),
        rcloneConfigPath: pick(o.rcloneConfigPath, spec.layout.rcloneConfigPath),
      },
      dataset,
    },
    'the command line',
  );
}

/** The parsed `--ratios a,b,c` flag. */
export function parseRatios(value: string): [number, number, number] {
  const parts = value.split(',').map((s) => Number(s.trim()));
  if (parts.length !== 3 || parts.some((n) => !Number.isFinite(n))) {
    throw new EtlError(
      `--ratios ${JSON.stringify(value)} is not three numbers`,
      'Give three shares adding up to 1, e.g. --ratios 0.8,0.1,0.1',
    );
  }
  return [parts[0], parts[1], parts[2]];
}
