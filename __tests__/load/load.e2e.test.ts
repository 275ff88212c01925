import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { EtlError } from '../../etl/errors';
import { memoryLogger } from '../../etl/log';
import { acquireContainerLock, LOAD_LOCK_OBJECT } from '../../etl/load/container-lock';
import { rcloneEnvFromEtlEnv } from '../../etl/load/credentials';
import { startRcSession } from '../../etl/load/rclone-rc';
import { parsePointer } from '../../etl/load/versions';
import { loadStage, type LoadOptions } from '../../etl/load/stage';
import {
  appCredentialToken,
  createAppCredential,
  ensureOpenStack,
  OPENSTACK_SCRIPT,
  OPENSTACK_STATE,
  etlCredentialEnv,
  getObject,
  hasObject,
  listContainer,
  openstackCommand,
  putContainer,
  putObject,
  revokeAppCredential,
  type AppCredential,
  type OpenStackEnv,
} from '../support/openstack';
import { readerView } from '../support/versions';
import { expectedObjects, fakeWorkDir, recordManifests } from './workdir';

// The load stage against a real Keystone + Swift on 127.0.0.1 (scripts/local-openstack.sh).
let env: OpenStackEnv;
const log = memoryLogger();
const errors: string[] = [];
const titles: string[] = [];
let containerSeq = 0;
const newContainer = () => `object-persist-load-${process.pid}-${++containerSeq}`;

beforeAll(() => {
  env = ensureOpenStack();
});

function options(container: string, extra: Partial<LoadOptions> = {}): LoadOptions {
  return { container, remote: 'chi_tacc', rclone: 'rclone', transfers: '32', checkers: '16', fastList: true, prune: false, ...extra };
}

async function load(
  workDir: string,
  o: LoadOptions,
  cred: AppCredential = env.appCredential,
  force = false,
  extraEnv: Record<string, string> = {},
) {
  // The credential reaches the stage through its context, as the CLI's environment would: process.env is untouched.
  try {
    return await loadStage.run({ workDir, force, log, env: { ...process.env, ...etlCredentialEnv(env, cred), ...extraEnv } }, o);
  } catch (e) {
    if (e instanceof EtlError) errors.push(`${e.message}\n${e.hint ?? ''}`);
    throw e;
  }
}

/** What a reader sees: the current version's objects (name -> MD5), after checking it is whole. */
async function current(container: string): Promise<Map<string, string>> {
  const v = await readerView(env, container);
  expect(v.problems).toEqual([]);
  return v.current;
}

const refusal = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: EtlError) => e,
  );

describe('the harness (scripts/local-openstack.sh)', () => {
  it('writes env.json with mode 0600 and every field a client needs; `up` again is idempotent (restarts nothing) and prints no secret', () => {
    const envPath = join(OPENSTACK_STATE, 'env.json');
    expect(statSync(envPath).mode & 0o777).toBe(0o600);
    expect(env).toMatchObject({
      region: 'CHI@TACC',
      projectName: 'persist-project',
      userName: 'persist-user',
      ruledCredential: { container: 'object-persist-ruled' },
    });
    for (const k of ['authUrl', 'projectId', 'userId', 'password', 'swiftUrl', 'faultSwiftUrl'])
      expect((env as unknown as Record<string, string>)[k]).toBeTruthy();
    for (const c of [env.appCredential, env.ruledCredential]) expect(c.id && c.secret).toBeTruthy();
    const before = execFileSync('bash', [OPENSTACK_SCRIPT, 'status', OPENSTACK_STATE], { encoding: 'utf8' });
    const out = execFileSync('bash', [OPENSTACK_SCRIPT, 'up', OPENSTACK_STATE], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    const status = execFileSync('bash', [OPENSTACK_SCRIPT, 'status', OPENSTACK_STATE], { encoding: 'utf8' });
    expect(status).toMatch(/keystone: running/);
    // Idempotent: nothing was restarted (every daemon keeps its pid), so `up` again costs no start-up time.
    // (The fault proxy aside: the fault test of this file stops and starts it.)
    const daemons = (text: string) => text.split('\n').filter((l) => !l.startsWith('fault-proxy'));
    expect(daemons(status)).toEqual(daemons(before));
    for (const secret of [env.appCredential.secret, env.ruledCredential.secret, env.password]) expect(out + status).not.toContain(secret);
  });
});

describe('load into a real Swift: immutable versions behind one pointer', () => {
  it('publishes a version under datasets/<key>/ and then switches current.json to it; a rerun verifies it from one listing and sends nothing', async () => {
    const container = newContainer();
    const work = await fakeWorkDir('full');
    const first = await load(work, options(container));
    expect(first.status).toBe('done');
    const key = String(first.details.datasetKey);
    expect(first.details.version).toBe(`datasets/${key}/`);

    expect(await current(container)).toEqual(expectedObjects(work));
    const v = await readerView(env, container);
    expect(v.pointer).toMatchObject({ current: key, pending: [], retiring: [] });
    expect(v.pointer?.versions.map((x) => x.key)).toEqual([key]);
    // Nothing at the container root but the pointer: no staging objects, no lock left behind.
    expect([...v.all.keys()].filter((n) => !n.startsWith(`datasets/${key}/`))).toEqual(['current.json']);
    const train = await getObject(env, container, `datasets/${key}/training/movielens_t_train.txt`);
    expect(train?.equals(readFileSync(join(work, 'output', 'training', 'movielens_t_train.txt')))).toBe(true);
    const manifest = JSON.parse(String(await getObject(env, container, `datasets/${key}/manifest.json`)));
    expect(manifest).toMatchObject({ datasetKey: key, container, load: { verified: true } });

    const again = await load(work, options(container));
    expect(again.status).toBe('skipped');
    expect(again.message).toMatch(/already published and verified \(6 objects match its manifest\)/);
    expect(again.details.uploadedBytes).toBe(0);
  });

  it('the same zip and options in another work dir give the same version (the key is content, not paths or times)', async () => {
    const container = newContainer();
    const raw = 'userId,movieId,rating,timestamp\n1,3,4.0,100\n';
    const a = await fakeWorkDir('same', 2000, raw);
    const first = await load(a, options(container));
    const b = await fakeWorkDir('same-b', 2000, raw);
    for (const f of ['training/movielens_t_train.txt', 'validation/movielens_t_val.txt', 'evaluation/movielens_t_eval.txt'])
      copyFileSync(join(a, 'output', f), join(b, 'output', f));
    await recordManifests(b, 'same-b');
    const second = await load(b, options(container));
    expect(second.details.datasetKey).toBe(first.details.datasetKey);
    expect(second.status).toBe('skipped');
  });

  it("a new seed of the same zip: raw file and maps copied server-side, not sent; the old version stays; a third publish deletes the oldest by its recorded names only, never a user's own objects", async () => {
    const container = newContainer();
    const raw = `userId,movieId,rating,timestamp\n${'1,3,4.0,100\n'.repeat(5000)}`;
    const v1 = await fakeWorkDir('seed1', 2000, raw);
    const k1 = String((await load(v1, options(container))).details.datasetKey);
    // A user's own files beside the datasets, and one inside a version's prefix.
    await putObject(env, container, 'checkpoints/model.pt', 'weights');
    await putObject(env, container, `datasets/${k1}/notes.txt`, 'mine');

    const v2 = await fakeWorkDir('seed2', 2000, raw);
    const second = await load(v2, options(container));
    const k2 = String(second.details.datasetKey);
    // Raw ratings.csv and both maps are the same content: copied server-side. The three splits are new.
    expect(second.details).toMatchObject({ reusedObjects: 3, uploadedObjects: 3 });
    expect(await current(container)).toEqual(expectedObjects(v2));
    let view = await readerView(env, container);
    expect(view.pointer?.versions.map((x) => x.key)).toEqual([k2, k1]);
    // The previous version is whole and unchanged: a reader that opened it keeps reading.
    for (const [name, hash] of expectedObjects(v1)) expect(view.all.get(`datasets/${k1}/${name}`)).toBe(hash);

    const v3 = await fakeWorkDir('seed3', 2000, raw);
    const third = await load(v3, options(container));
    expect(third.details.retired).toEqual([k1]);
    view = await readerView(env, container);
    expect(view.pointer?.versions.map((x) => x.key)).toEqual([third.details.datasetKey, k2]);
    expect([...view.all.keys()].filter((n) => n.startsWith(`datasets/${k1}/`))).toEqual([`datasets/${k1}/notes.txt`]);
    expect(view.all.has('checkpoints/model.pt')).toBe(true);

    // Back to seed 2, still retained and whole: only the pointer is written, nothing uploaded.
    const back = await load(v2, options(container));
    expect(back.details).toMatchObject({ datasetKey: k2, uploadedObjects: 0, reusedObjects: 0 });
    expect((await readerView(env, container)).pointer?.current).toBe(k2);
  });

  it('a damaged current version (one object overwritten behind its back) is found by a plain rerun and repaired', async () => {
    const container = newContainer();
    const work = await fakeWorkDir('damage');
    const key = String((await load(work, options(container))).details.datasetKey);
    const manifestBefore = String(await getObject(env, container, `datasets/${key}/manifest.json`));
    await putObject(env, container, `datasets/${key}/maps/users.tsv`, '1\t99\n');
    expect((await readerView(env, container)).problems).toEqual(['maps/users.tsv: differs from its manifest']);

    const rerun = await load(work, options(container));
    expect(rerun.status).toBe('done');
    expect(log.lines.some((l) => /the current version .* is damaged \(maps\/users\.tsv: /.test(l))).toBe(true);
    expect(rerun.details.uploadedObjects).toBe(1);
    expect(await current(container)).toEqual(expectedObjects(work));
    // Its manifest is the one it was published with.
    expect(String(await getObject(env, container, `datasets/${key}/manifest.json`))).toBe(manifestBefore);
  });

  it('keeps readers on the old version when the proxy dies mid-upload, and a rerun completes the new one, sending only what was missing', async () => {
    const container = newContainer();
    const v1 = await fakeWorkDir('v1');
    await load(v1, options(container));
    const before = await readerView(env, container);

    // v2: 3 x ~27 MB splits, uploaded one at a time at 4 MB/s (rclone reads any flag from RCLONE_<FLAG>):
    // ~20 s, so stopping the proxy always lands in the middle (the load itself, one login, takes a few seconds
    // more than its upload; this test's own GETs and HEADs are slow on a busy machine).
    const v2 = await fakeWorkDir('v2', 20_000_000);
    const slow = options(container, { transfers: '1', checkers: '1' });
    const run = load(v2, slow, env.appCredential, false, {
      ETL_STORAGE_URL: env.faultSwiftUrl,
      RCLONE_BWLIMIT: '4M',
      RCLONE_RETRIES: '1',
      RCLONE_LOW_LEVEL_RETRIES: '2',
    });
    let ended = false;
    const outcome = run.then(
      () => 'finished',
      (e: Error) => e,
    );
    void outcome.then(() => (ended = true));
    // Stop the proxy as soon as the first object of the new version has landed (HEAD, not a listing: Swift's
    // container listing can lag behind a PUT by the updater's interval).
    // The upload is recorded in the pointer (a GET, no listing lag) before its first object is written.
    let v2Key: string | undefined;
    for (let i = 0; i < 2400 && !v2Key && !ended; i++) {
      const text = await getObject(env, container, 'current.json');
      v2Key = text ? parsePointer(String(text))?.pending[0]?.key : undefined;
      if (!v2Key) await new Promise((r) => setTimeout(r, 25));
    }
    const rcdIn = (text: string) =>
      text
        .split('\n')
        .map((l) => /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(l))
        .find((m) => m && Number(m[2]) === process.pid && /\brclone rcd\b/.test(m[3]));
    let psSeen: string | undefined;
    let environSeen: string[] | undefined;
    const v2Names = ['evaluation/movielens_t_eval.txt', 'training/movielens_t_train.txt', 'validation/movielens_t_val.txt'].map(
      (n) => `datasets/${v2Key}/${n}`,
    );
    for (let i = 0; i < 1200 && !ended; i++) {
      const snapshot = execFileSync('ps', ['-eo', 'pid=,ppid=,args='], { encoding: 'utf8' });
      if (!psSeen && rcdIn(snapshot)) {
        // Its environment is read at once: on a quiet machine the load (and its rcd) may end before the loop does.
        try {
          environSeen = readFileSync(`/proc/${rcdIn(snapshot)![1]}/environ`, 'utf8').split('\0');
          psSeen = snapshot;
        } catch {
          // It ended between ps and the read: look again.
        }
      }
      if ((await Promise.all(v2Names.map((n) => hasObject(env, container, n)))).some(Boolean)) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    // The upload runs in this load's one rclone rcd: a child of this process, on loopback only, and its secrets
    // (the rc password, the credential) are in its environment, never in what `ps` shows any user. (Looked for
    // from the moment the upload was recorded: on a busy machine this test's own HEADs can outlast the upload.)
    // The load must still be uploading when the proxy stops (else this test proves nothing): say how it ended.
    if (ended) throw new Error(`the load ended before the proxy was stopped: ${String(await outcome)}`);
    const ps = psSeen ?? execFileSync('ps', ['-eo', 'pid=,ppid=,args='], { encoding: 'utf8' });
    titles.push(ps);
    const rcd = rcdIn(ps);
    expect(rcd?.[3]).toMatch(/^rclone rcd --rc-addr 127\.0\.0\.1:0 /);
    const environ = environSeen ?? readFileSync(`/proc/${rcd![1]}/environ`, 'utf8').split('\0');
    const rcPass = environ.find((e) => e.startsWith('RCLONE_RC_PASS='))!.slice('RCLONE_RC_PASS='.length);
    expect(rcPass).toMatch(/^[0-9a-f]{48}$/);
    expect(environ).toContain(`RCLONE_CONFIG_CHI_TACC_APPLICATION_CREDENTIAL_SECRET=${env.appCredential.secret}`);
    expect(ps.includes(rcPass)).toBe(false);
    openstackCommand('stop-proxy');
    let result: string | Error;
    try {
      result = await outcome;
    } finally {
      openstackCommand('start-proxy');
    }
    expect(result).toBeInstanceOf(EtlError);

    // Readers see exactly what they saw before: the same pointer, the same version, whole.
    const after = await readerView(env, container);
    expect(after.problems).toEqual([]);
    expect(after.pointer?.current).toBe(before.pointer?.current);
    expect(after.current).toEqual(before.current);
    // The upload is recorded in the pointer, so its objects are known even if it is never finished.
    expect(after.pointer?.pending.map((x) => x.objects.length)).toEqual([7]);

    const rerun = await load(v2, options(container, { breakLock: true }));
    expect(rerun.status).toBe('done');
    expect(await current(container)).toEqual(expectedObjects(v2));
    const v2Bytes = [...expectedObjects(v2).keys()].reduce(
      (a, n) => a + statSync(n.startsWith('raw/') ? join(v2, 'staging', n.slice(4)) : join(v2, 'output', n)).size,
      0,
    );
    expect(rerun.details.uploadedBytes).toBeLessThan(v2Bytes);
    expect(rerun.details.uploadedBytes).toBeGreaterThan(0);
    expect((await readerView(env, container)).pointer?.pending).toEqual([]);
  }, 300_000);

  it('refuses splits made from another raw file than the staged one, naming both, and publishes nothing', async () => {
    const container = newContainer();
    const work = await fakeWorkDir('lineage');
    await load(work, options(container));
    const before = await readerView(env, container);
    // Another zip extracted after the transform: the staged ratings.csv is not what the splits came from.
    const other = await fakeWorkDir('lineage-other', 2000, 'userId,movieId,rating,timestamp\n9,9,1.0,1\n');
    copyFileSync(join(other, 'manifests', 'extract.json'), join(work, 'manifests', 'extract.json'));
    const e = await refusal(load(work, options(container)));
    expect(e?.message).toMatch(
      new RegExp(
        `the splits were made from .*${'ml-t/ratings.csv'}.* \\(SHA-256 [0-9a-f]{64}\\), which is not the staged raw file .*lineage-other.*ratings\\.csv \\(SHA-256 [0-9a-f]{64}\\)`,
      ),
    );
    expect(e?.hint).toMatch(/transform/);
    expect((await readerView(env, container)).all).toEqual(before.all);
  });

  it('an output edited with its mtime restored (cp -p) is caught by content, not trusted by its mtime', async () => {
    const container = newContainer();
    const work = await fakeWorkDir('cpp');
    const f = join(work, 'output', 'maps', 'items.tsv');
    const other = join(work, 'items.other');
    writeFileSync(other, '3\t2\n');
    execFileSync('touch', ['-r', f, other]);
    execFileSync('cp', ['-p', other, f]);
    const e = await refusal(load(work, options(container)));
    expect(e?.message).toMatch(/maps\/items\.tsv changed after the transform wrote it/);
    expect((await readerView(env, container)).all.size).toBe(0);
  });

  it('refuses a file name with a control character before anything is written', async () => {
    const container = newContainer();
    const work = await fakeWorkDir('names');
    writeFileSync(join(work, 'staging', 'ml-t', 'two\nlines.csv'), 'x');
    await recordManifests(work, 'names');
    const e = await refusal(load(work, options(container)));
    expect(e?.message).toBe(
      'cannot publish the file "raw/ml-t/two\\nlines.csv": its name contains a control character ("raw/ml-t/two\\nlines.csv")',
    );
    expect((await readerView(env, container)).all.size).toBe(0);
  });

  it('a revoked credential stops the load with a clear 401 message and changes nothing', async () => {
    const container = newContainer();
    const cred = await createAppCredential(env, `revoked-${process.pid}`);
    await revokeAppCredential(env, cred);
    const work = await fakeWorkDir('revoked');
    await expect(load(work, options(container), cred)).rejects.toThrow(/refused the application credential/);
    expect((await listContainer(env, container)).size).toBe(0);
  });

  it('an expired credential is refused the same way', async () => {
    const cred = await createAppCredential(
      env,
      `expiring-${process.pid}`,
      new Date(Date.now() + 2500).toISOString().replace(/\.\d+Z$/, ''),
    );
    await new Promise((r) => setTimeout(r, 3500));
    const work = await fakeWorkDir('expired');
    await expect(load(work, options(newContainer()), cred)).rejects.toThrow(/401/);
  });

  it('an access-ruled credential loads into its own container (uploading what it may not copy) and is refused elsewhere', async () => {
    const own = env.ruledCredential.container;
    const raw = `userId,movieId,rating,timestamp\n${'2,4,3.0,7\n'.repeat(100)}`;
    const a = await fakeWorkDir('ruled-a', 2000, raw);
    await load(a, options(own), env.ruledCredential, true);
    const b = await fakeWorkDir('ruled-b', 2000, raw);
    const ok = await load(b, options(own), env.ruledCredential, true);
    expect(ok.status).toBe('done');
    expect(await current(own)).toEqual(expectedObjects(b));
    expect(log.lines.some((l) => /refused the server-side copy/.test(l))).toBe(true);
    await expect(load(a, options(newContainer()), env.ruledCredential)).rejects.toThrow(/\(40[13]\)/);
  });

  describe('loads into one container take turns (its load lock: a token and a lease)', () => {
    const lockBody = (host: string, pid: number, token = 'f'.repeat(32)) =>
      JSON.stringify({ token, host, pid, since: '2026-11-25T06:00:00.000Z', leaseSeconds: 60 });
    /** An rclone target for the lock itself, without a whole load around it (a session is started per test). */
    const lockTarget = () => ({
      binary: 'rclone',
      remote: 'chi_tacc',
      env: rcloneEnvFromEtlEnv('chi_tacc', etlCredentialEnv(env)).env,
      secrets: [env.appCredential.secret],
    });

    it('what the lock relies on in Swift: If-None-Match: * refuses a second create (412); If-Match is ignored on PUT and DELETE, so no conditional delete is to be had', async () => {
      // The design follows from these answers (etl/load/container-lock.ts): if a Swift ever honours If-Match,
      // this fails and a stale lock could be deleted conditionally instead of waiting for its lease.
      const container = newContainer();
      await putContainer(env, container);
      const token = await appCredentialToken(env);
      const url = `${env.swiftUrl}/${container}/${LOAD_LOCK_OBJECT}`;
      const put = (headers: Record<string, string>, body: string) =>
        fetch(url, { method: 'PUT', headers: { 'x-auth-token': token, ...headers }, body }).then((r) => r.status);
      expect(await put({ 'If-None-Match': '*' }, 'first')).toBe(201);
      expect(await put({ 'If-None-Match': '*' }, 'second')).toBe(412);
      expect((await getObject(env, container, LOAD_LOCK_OBJECT))?.toString()).toBe('first');
      const wrongEtag = '"0123456789abcdef0123456789abcdef"';
      expect(await put({ 'If-Match': wrongEtag }, 'third')).toBe(201);
      expect((await getObject(env, container, LOAD_LOCK_OBJECT))?.toString()).toBe('third');
      const del = await fetch(url, { method: 'DELETE', headers: { 'x-auth-token': token, 'If-Match': wrongEtag } });
      expect(del.status).toBe(204);
      expect(await hasObject(env, container, LOAD_LOCK_OBJECT)).toBe(false);
    });

    it('two loads whose lock creates leave in the same instant, 20 times: Swift lets both pass often, the read-back decides, exactly one holds each time', async () => {
      // Both creates pass If-None-Match in most rounds; only reading the lock back after the settle tells the two
      // apart (without the read-back both hold: this fails). The settle's length is not what this shows: here the
      // other create has always landed within the read-back's own round trip (docs/benchmarks.md, the lock race).
      const container = newContainer();
      await putContainer(env, container);
      const base = lockTarget();
      const work = await fakeWorkDir('instant');
      const sessions = await Promise.all([startRcSession(base, log), startRcSession(base, log)]);
      let bothPassed = 0;
      try {
        for (let round = 0; round < 20; round++) {
          const outcomes = await Promise.allSettled(
            sessions.map((rc, i) =>
              acquireContainerLock({ ...base, rc }, `chi_tacc:${container}`, container, {
                log,
                recordPath: join(work, 'manifests', `lock-${i}.json`),
                host: `taker-${i}`,
              }),
            ),
          );
          const held = outcomes.filter(
            (x): x is PromiseFulfilledResult<Awaited<ReturnType<typeof acquireContainerLock>>> => x.status === 'fulfilled',
          );
          expect(held).toHaveLength(1);
          const lost = outcomes.find((x): x is PromiseRejectedResult => x.status === 'rejected')!.reason as EtlError;
          expect(lost.exitCode).toBe(75);
          if (/created in the same instant as ours; it holds the lock/.test(lost.message)) bothPassed++;
          expect(await held[0].value.release()).toBe(true);
          expect(await hasObject(env, container, LOAD_LOCK_OBJECT)).toBe(false);
        }
      } finally {
        await Promise.all(sessions.map((rc) => rc.close()));
      }
      // Without a round where both creates passed, this would not have tested the read-back at all.
      expect(bothPassed).toBeGreaterThan(0);
      console.log(`same-instant lock creates: both passed If-None-Match in ${bothPassed} of 20 rounds`);
    });

    it('reading the pointer while another load rewrites it, 300 times: every read succeeds and returns one whole version of it', async () => {
      // A load that is refused the lock has already read the pointer, while the holder may be writing it. rclone's
      // copy compares the GET with a HEAD made just before it, and failed 51 of 300 such reads here ("corrupted on
      // transfer: sizes differ"): the refused load then exited 1, not 75 (CI's same-hostname chaos case).
      const container = newContainer();
      await putContainer(env, container);
      const base = lockTarget();
      const [writer, reader] = await Promise.all([startRcSession(base, log), startRcSession(base, log)]);
      const object = `chi_tacc:${container}/current.json`;
      const texts = [`${JSON.stringify({ v: 'short' })}\n`, `${JSON.stringify({ v: 'long'.repeat(100) })}\n`];
      await writer.put(object, texts[0], 'write the pointer');
      let writing = true;
      let writes = 0;
      const rewrites = (async () => {
        while (writing) await writer.put(object, texts[++writes % 2], 'rewrite the pointer');
      })();
      const failures: string[] = [];
      const seen = new Set<string>();
      try {
        for (let i = 0; i < 300; i++) {
          try {
            const text = await reader.cat(object, 'read the pointer');
            seen.add(text);
            if (!texts.includes(text)) failures.push(`read ${i}: a text never written (${text.length} bytes)`);
          } catch (e) {
            failures.push(`read ${i}: ${(e as Error).message.split('\n')[0]}`);
          }
        }
      } finally {
        writing = false;
        await rewrites;
        await Promise.all([writer.close(), reader.close()]);
      }
      expect(failures).toEqual([]);
      // Both texts were read, so the reads did overlap the rewrites (else this would test nothing).
      expect(seen.size).toBe(2);
      expect(writes).toBeGreaterThan(50);
    });

    it('a live lock of another load: refused with exit 75 and nothing written; --break-lock takes it', async () => {
      const container = newContainer();
      const work = await fakeWorkDir('locked');
      await load(work, options(container));
      const before = await readerView(env, container);
      await putObject(env, container, LOAD_LOCK_OBJECT, lockBody('other-node', 4242), { 'X-Delete-After': '120' });
      const v2 = await fakeWorkDir('locked-v2');
      const refused = await refusal(load(v2, options(container)));
      expect(refused?.message).toMatch(
        /another load into container .* is running \(pid 4242 on other-node since 2026-11-25T06:00:00.000Z, lease 60s\)/,
      );
      expect(refused?.hint).toContain('--break-lock');
      expect(refused?.exitCode).toBe(75);
      const after = await readerView(env, container);
      expect(new Map([...after.all].filter(([n]) => n !== LOAD_LOCK_OBJECT))).toEqual(before.all);

      const broken = await load(v2, options(container, { breakLock: true }));
      expect(broken.status).toBe('done');
      expect(log.lines.some((l) => /--break-lock: removing the load lock .*other-node/.test(l))).toBe(true);
      expect(await hasObject(env, container, LOAD_LOCK_OBJECT)).toBe(false);
    });

    it('a lock whose lease ran out is gone by itself: the next load goes on without --break-lock, whatever host and pid it names', async () => {
      const container = newContainer();
      const work = await fakeWorkDir('lease');
      await putContainer(env, container);
      // Straight at the lock (a whole load may take longer than the lease on a busy machine).
      const base = lockTarget();
      // Logged in before the lock is put: a login slower than the 8 s lease would find it gone.
      const rc = await startRcSession(base, log);
      await putObject(env, container, LOAD_LOCK_OBJECT, lockBody('persist-team-node', process.pid), { 'X-Delete-After': '8' });
      try {
        const lockOptions = { log, recordPath: join(work, 'manifests', 'load-lock.json') };
        await expect(acquireContainerLock({ ...base, rc }, `chi_tacc:${container}`, container, lockOptions)).rejects.toMatchObject({
          exitCode: 75,
        });
      } finally {
        await rc.close();
      }
      for (let i = 0; i < 60 && (await hasObject(env, container, LOAD_LOCK_OBJECT)); i++) await new Promise((r) => setTimeout(r, 500));
      expect(await hasObject(env, container, LOAD_LOCK_OBJECT)).toBe(false);
      expect((await load(work, options(container))).status).toBe('done');
    });

    it('a lock left by a killed load of this work dir is known by its token and taken over at once', async () => {
      const container = newContainer();
      const work = await fakeWorkDir('stale');
      await load(work, options(container));
      const dead = Number(execFileSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).toString());
      const token = 'a'.repeat(32);
      writeFileSync(join(work, 'manifests', 'load-lock.json'), JSON.stringify({ token, pid: dead, container }));
      await putObject(env, container, LOAD_LOCK_OBJECT, lockBody('anywhere', dead, token), { 'X-Delete-After': '120' });
      // Even a skip clears it.
      const again = await load(work, options(container));
      expect(again.status).toBe('skipped');
      expect(await hasObject(env, container, LOAD_LOCK_OBJECT)).toBe(false);
      // And a load that must take the lock takes it over.
      await putObject(env, container, LOAD_LOCK_OBJECT, lockBody('anywhere', dead, token), { 'X-Delete-After': '120' });
      writeFileSync(join(work, 'manifests', 'load-lock.json'), JSON.stringify({ token, pid: dead, container }));
      const v2 = await fakeWorkDir('stale-v2');
      writeFileSync(join(v2, 'manifests', 'load-lock.json'), JSON.stringify({ token, pid: dead, container }));
      expect((await load(v2, options(container))).status).toBe('done');
      expect(log.lines.some((l) => l.includes(`taking over the load lock on ${container} left by a killed load of this work dir`))).toBe(
        true,
      );
      expect(await hasObject(env, container, LOAD_LOCK_OBJECT)).toBe(false);
    });

    it('a work dir where the lock cannot be recorded: the load fails before it takes the lock, says what to fix, and leaves no lock', async () => {
      // The record comes first: a load killed between taking the lock and recording it would leave a lock that no
      // load knows as its own, and every load would be refused until its lease ran out (chaos found that moment).
      const container = newContainer();
      const work = await fakeWorkDir('unrecordable');
      const record = join(work, 'manifests', 'load-lock.json');
      mkdirSync(record, { recursive: true });
      const failed = await refusal(load(work, options(container)));
      expect(await hasObject(env, container, LOAD_LOCK_OBJECT)).toBe(false);
      expect(failed?.message).toMatch(/cannot record the load lock in .*load-lock\.json .*nothing was taken or written/);
      expect(failed?.hint).toMatch(/writable .*a file/);
      rmSync(record, { recursive: true });
      expect((await load(work, options(container))).status).toBe('done');
    });

    it('two loads of different datasets at once: one publishes, the other is refused with 75, readers see the winner whole', async () => {
      const container = newContainer();
      const a = await fakeWorkDir('race-a', 200_000);
      const stageEnv = { ...process.env, ...etlCredentialEnv(env) };
      await loadStage.run({ workDir: a, force: false, log, env: stageEnv }, options(container));
      const c = await fakeWorkDir('race-c', 200_000);
      const d = await fakeWorkDir('race-d', 200_000);
      // Each holds the lock for 8 s or more (its 800 KB upload at 100 KB/s), so the other's attempt always lands
      // while it is held: on a busy machine one login can take seconds longer than the other's whole load, and two
      // loads that merely take turns both publish, rightly.
      const slowEnv = { ...stageEnv, RCLONE_BWLIMIT: '100k' };
      const outcomes = await Promise.allSettled(
        [c, d].map((w) => loadStage.run({ workDir: w, force: false, log, env: slowEnv }, options(container))),
      );
      expect(outcomes.filter((x) => x.status === 'fulfilled')).toHaveLength(1);
      const won = outcomes.findIndex((x) => x.status === 'fulfilled');
      const lost = outcomes[1 - won] as PromiseRejectedResult;
      expect(String(lost.reason.message)).toMatch(/another load into container/);
      expect((lost.reason as EtlError).exitCode).toBe(75);
      expect(await current(container)).toEqual(expectedObjects([c, d][won]));
      expect(await hasObject(env, container, LOAD_LOCK_OBJECT)).toBe(false);
    });
  });

  afterAll(() => {
    if (process.env.LOAD_TEST_LOG) writeFileSync(process.env.LOAD_TEST_LOG, log.lines.join('\n'));
    // Everything the stage logged and every error it raised, in all the tests above.
    const everything = [...log.lines, ...errors, ...titles].join('\n');
    expect(everything.length).toBeGreaterThan(0);
    for (const secret of [env.appCredential.secret, env.ruledCredential.secret, env.password]) {
      expect(everything.includes(secret)).toBe(false);
    }
  });
});
