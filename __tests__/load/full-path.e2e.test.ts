import execa from 'execa';
import { spawn } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateMovieLensZip } from '../../testing/movielens-fixture';
import { workLayout } from '../../etl/work-dir';
import { currentObject, readerView } from '../support/versions';
import {
  createAppCredential,
  ensureOpenStack,
  etlCredentialEnv,
  listContainer,
  revokeAppCredential,
  type OpenStackEnv,
} from '../support/openstack';
import { md5 } from './workdir';

// Generated MovieLens zip -> `npm run etl -- all` (extract, transform, load) as a user runs it, as a process,
// against the real Keystone + Swift; then the container read back through Swift's API and an rclone mount.
const ROOT = join(__dirname, '..', '..');
let env: OpenStackEnv;
const printed: string[] = [];
const etl = (args: string[], extraEnv: Record<string, string>) =>
  execa('npx', ['tsx', 'etl/cli.ts', ...args], { cwd: ROOT, all: true, reject: false, env: extraEnv }).then((r) => {
    printed.push(r.all ?? '');
    return r;
  });

beforeAll(() => {
  env = ensureOpenStack();
});

/** Every file load publishes from this work dir: output/ at the root, staging/<dataset>/ under raw/. */
function localObjects(work: string, dataset: string): Map<string, string> {
  const l = workLayout(work);
  const out = new Map<string, string>();
  const walk = (dir: string, prefix: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(dir, e.name), `${prefix}${e.name}/`);
      else out.set(`${prefix}${e.name}`, md5(join(dir, e.name)));
    }
  };
  walk(l.output, '');
  walk(join(l.staging, dataset), `raw/${dataset}/`);
  return out;
}

describe('generated dataset -> extract -> transform -> load, against the real services', () => {
  const container = `object-persist-full-${process.pid}`;
  let work: string;

  it('publishes splits, maps, raw data and the manifest; Swift holds exactly the local files', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'full-path-'));
    const zip = join(dir, 'ml-full.zip');
    await generateMovieLensZip({ rows: 60_000, seed: 11, outPath: zip, name: 'ml-full' });
    work = join(dir, 'work');
    const r = await etl(['all', '--work-dir', work, '--source', zip, '--container', container], etlCredentialEnv(env));
    expect(r.exitCode).toBe(0);
    expect(r.all).toMatch(/container object-persist-full-\d+ did not exist: created it/);
    expect(r.all).toMatch(/summary: published 8 objects .* as version [0-9a-f]{16} .* MB\/s/);

    const view = await readerView(env, container);
    expect(view.problems).toEqual([]);
    const expected = localObjects(work, 'ml-full');
    expect(view.current).toEqual(expected);
    for (const split of ['training/movielens_full_train.txt', 'validation/movielens_full_val.txt', 'evaluation/movielens_full_eval.txt']) {
      expect((await currentObject(env, container, split))?.equals(readFileSync(join(work, 'output', split)))).toBe(true);
    }
    const manifest = view.manifest!;
    expect(manifest.transform.rows).toBe(60_000);
    expect((manifest.extract as { dataset: string }).dataset).toBe('ml-full');
    expect(manifest.load).toMatchObject({ verified: true });
    expect(manifest.objects).toHaveLength(expected.size);
    // Nothing but the pointer and the version: no staging objects, no lock.
    expect([...(await listContainer(env, container)).keys()].filter((n) => !n.startsWith(`datasets/${view.pointer!.current}/`))).toEqual([
      'current.json',
    ]);
  });

  it('an unchanged rerun uploads nothing', async () => {
    const r = await etl(['load', '--work-dir', work, '--container', container, '--json'], etlCredentialEnv(env));
    expect(r.exitCode).toBe(0);
    const summary = JSON.parse(r.stdout);
    expect(summary.stages[0]).toMatchObject({ stage: 'load', status: 'skipped', details: { uploadedBytes: 0 } });
  });

  it('another machine reads the current version with plain rclone: cat current.json, then mount datasets/<key> read-only', async () => {
    const rcloneEnv = {
      ...process.env,
      RCLONE_CONFIG_M_TYPE: 'swift',
      RCLONE_CONFIG_M_AUTH: env.authUrl,
      RCLONE_CONFIG_M_REGION: env.region,
      RCLONE_CONFIG_M_APPLICATION_CREDENTIAL_ID: env.appCredential.id,
      RCLONE_CONFIG_M_APPLICATION_CREDENTIAL_SECRET: env.appCredential.secret,
    };
    // The README's reader's guide, command for command.
    const key = (
      JSON.parse((await execa('rclone', ['cat', `m:${container}/current.json`], { env: rcloneEnv })).stdout) as { current: string }
    ).current;
    const mountDir = mkdtempSync(join(tmpdir(), 'mnt-full-'));
    const mount = spawn('rclone', ['mount', `m:${container}/datasets/${key}`, mountDir, '--read-only', '--allow-other'], {
      env: rcloneEnv,
      stdio: 'ignore',
    });
    try {
      for (let i = 0; i < 150 && !existsSync(join(mountDir, 'evaluation')); i++) await new Promise((r) => setTimeout(r, 100));
      expect(readdirSync(mountDir).sort()).toEqual(['evaluation', 'manifest.json', 'maps', 'raw', 'training', 'validation']);
      for (const [sub, file] of [
        ['training', 'movielens_full_train.txt'],
        ['validation', 'movielens_full_val.txt'],
        ['evaluation', 'movielens_full_eval.txt'],
      ]) {
        expect(readdirSync(join(mountDir, sub))).toEqual([file]);
        expect(md5(join(mountDir, sub, file))).toBe(md5(join(work, 'output', sub, file)));
      }
      expect(() => execFileSync('touch', [join(mountDir, 'training', 'new')], { stdio: 'ignore' })).toThrow();
    } finally {
      execFileSync('fusermount3', ['-u', mountDir], { stdio: 'ignore' });
      mount.kill();
    }
  });

  it('a revoked credential: a clear message naming the cause, and a non-zero exit', async () => {
    const cred = await createAppCredential(env, `cli-revoked-${process.pid}`);
    await revokeAppCredential(env, cred);
    const r = await etl(['load', '--work-dir', work, '--container', container, '--force'], etlCredentialEnv(env, cred));
    expect(r.exitCode).not.toBe(0);
    expect(r.all).toMatch(/refused the application credential/);
    expect(r.all).toMatch(/wrong.*expired.*revoked/);
    expect(r.all).not.toMatch(/internal error|\n\s+at /);
  });

  it('the object store unreachable, rclone missing, a missing container it may not create: each says what to do', async () => {
    const unreachable = await etl(['load', '--work-dir', work, '--container', container, '--force'], {
      ...etlCredentialEnv(env),
      ETL_AUTH_URL: 'http://127.0.0.1:9/v3',
    });
    expect(unreachable.exitCode).toBe(1);
    expect(unreachable.all).toMatch(/unreachable/);
    const noRclone = await etl(
      ['load', '--work-dir', work, '--container', container, '--rclone', '/nonexistent/rclone'],
      etlCredentialEnv(env),
    );
    expect(noRclone.exitCode).toBe(1);
    expect(noRclone.all).toMatch(/rclone was not found[\s\S]*Install rclone/);
    const noCreate = await etl(
      ['load', '--work-dir', work, '--container', `${container}-absent`, '--no-create-container'],
      etlCredentialEnv(env),
    );
    expect(noCreate.exitCode).toBe(1);
    expect(noCreate.all).toMatch(/container '.*-absent' does not exist[\s\S]*openstack container create/);
    const wrongRegion = await etl(['load', '--work-dir', work, '--container', container, '--force'], {
      ...etlCredentialEnv(env),
      ETL_REGION: 'KVM@TACC',
    });
    expect(wrongRegion.exitCode).toBe(1);
    expect(wrongRegion.all).toMatch(/no object store in that region/);
  });

  afterAll(() => {
    // Everything the CLI printed (stdout and stderr) in every test above.
    const everything = printed.join('\n');
    expect(everything.length).toBeGreaterThan(0);
    for (const secret of [env.appCredential.secret, env.ruledCredential.secret, env.password])
      expect(everything.includes(secret)).toBe(false);
  });
});
