import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { EtlError } from '../errors';
import type { Logger } from '../log';
import { parseRcloneLogLine, type RcloneStats, type RcloneTarget } from './rclone';
import { classifyRcloneFailure, RcloneError } from './rclone-errors';
import { redact } from '../redact';
import type { ListedObject } from './versions';

/**
 * One `rclone rcd` for a whole load: one process and one Keystone login, where one rclone process per step
 * (lock, pointer reads and writes, upload, listing, manifest, release: a dozen) each logged in again, which cost
 * more than the upload itself on a small dataset.
 *
 * - Reachable only by this process: it listens on 127.0.0.1 on a port the kernel picks (rclone 1.60 has no unix
 *   socket for rc), with HTTP basic auth whose random user and password go to rclone through its environment
 *   (RCLONE_RC_USER / RCLONE_RC_PASS), never argv: the node's `ps` is readable by other users. The credential for
 *   the object store goes the same way (RcloneTarget.env), as before.
 * - Dies with its parent: started through `setpriv --pdeathsig KILL` (util-linux), so a SIGKILLed load leaves no
 *   rcd behind; without setpriv it is killed on this process's exit, and it is in the load's process group.
 * - Every call names the remote's root (`<remote>:`) as its file system, so rclone keeps one file system and one
 *   login for all of them (a file system per container path would log in again).
 * - Uploads are `operations/copyfile` calls, which check each upload's MD5 against Swift's ETag like `rclone
 *   copy`; small objects go from, and come back into, a private temp dir (0700).
 */
export interface RcSession {
  /** The text of an object (`remote:container/name`); an RcloneError with notFound when it does not exist. */
  cat(path: string, what: string): Promise<string>;
  /** Writes a small object in one PUT (no HEAD first), with extra upload headers. */
  put(path: string, text: string, what: string, o?: { headers?: Record<string, string>; lowLevelRetries?: number }): Promise<void>;
  /** Every object under a prefix, names relative to it, with size and MD5 (Swift's ETag). */
  list(path: string, what: string): Promise<ListedObject[]>;
  /** Uploads local files to `dest/<name>` in parallel, skipping ones already there with the same size and MD5. */
  upload(files: readonly { name: string; local: string }[], dest: string, what: string, parallel: number): Promise<RcloneStats>;
  /** Server-side copies `from/<name>` to `to/<name>`. */
  copy(names: readonly string[], from: string, to: string, what: string, parallel: number): Promise<void>;
  deleteFile(path: string, what: string): Promise<void>;
  mkdir(path: string, what: string): Promise<void>;
  /** Stops rclone (SIGKILL: nothing is in flight by then); idempotent. */
  close(): Promise<void>;
  /** For tests: the rclone process. */
  readonly pid: number | undefined;
  /** Whether the object the login HEADed (startRcSession's loginProbe) existed then. */
  readonly probeExisted: boolean;
}

const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'];

/** Starts `rclone rcd` and logs in once (so a bad credential fails here, worded as rclone words it). */
export async function startRcSession(
  target: RcloneTarget,
  log: Logger,
  o: { trace?: (what: string) => void; loginProbe?: string; fastList?: boolean } = {},
): Promise<RcSession> {
  const user = randomBytes(8).toString('hex');
  const pass = randomBytes(24).toString('hex');
  const secrets = [...target.secrets, pass];
  const args = [
    'rcd',
    '--rc-addr',
    '127.0.0.1:0',
    '--rc-server-read-timeout',
    '24h',
    '--rc-server-write-timeout',
    '24h',
    '--use-json-log',
    '-v',
  ];
  if (target.configPath) args.push('--config', target.configPath);
  const setpriv = SETPRIV.find((p) => existsSync(p));
  const [cmd, argv] = setpriv ? [setpriv, ['--pdeathsig', 'KILL', '--', target.binary, ...args]] : [target.binary, args];
  let child: ChildProcess;
  try {
    child = spawn(cmd, argv, {
      env: { ...process.env, ...target.env, RCLONE_RC_USER: user, RCLONE_RC_PASS: pass },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
  } catch (e) {
    throw new EtlError(`could not run rclone: ${(e as Error).message}`, 'Install rclone (apt-get install rclone) or pass --rclone <path>.');
  }
  const notFound = () =>
    new EtlError(
      `rclone was not found ('${target.binary}')`,
      'Install rclone (apt-get install rclone; Chameleon images ship it) or pass --rclone <path>.',
    );
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  const tail: string[] = [];
  let exited: { code: number | null; error?: Error } | undefined;
  const port = await new Promise<number>((resolve, reject) => {
    const fail = (e: EtlError) => {
      child.kill('SIGKILL');
      reject(e);
    };
    const timer = setTimeout(
      () => fail(new EtlError(`rclone rcd did not start within 60 s:\n${tail.join('\n')}`, 'Rerun the load.')),
      60_000,
    );
    timer.unref();
    createInterface({ input: child.stderr!, crlfDelay: Infinity }).on('line', (raw) => {
      const line = redact(raw, secrets);
      const msg = parseRcloneLogLine(line)?.msg ?? line;
      if (/Config file .* not found - using defaults/.test(msg) || !msg.trim()) return;
      tail.push(msg);
      if (tail.length > 20) tail.shift();
      const m = /Serving remote control on http:\/\/127\.0\.0\.1:(\d+)\//.exec(msg);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.once('error', (e: NodeJS.ErrnoException) => {
      exited = { code: null, error: e };
      clearTimeout(timer);
      reject(
        e.code === 'ENOENT'
          ? notFound()
          : new EtlError(`could not run rclone: ${e.message}`, 'Install rclone (apt-get install rclone) or pass --rclone <path>.'),
      );
    });
    child.once('exit', (code) => {
      exited ??= { code };
      clearTimeout(timer);
      process.removeListener('exit', killOnExit);
      // setpriv's own "failed to execute": rclone is not there (126/127, as a shell says it).
      if (setpriv && (code === 126 || code === 127) && /failed to execute/.test(tail.join('\n'))) reject(notFound());
      else reject(classifyRcloneFailure(tail.join('\n'), 'start rclone rcd', target.remote, code));
    });
  });

  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const authorization = `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
  const fs = `${target.remote}:`;
  const local = mkdtempSync(join(tmpdir(), 'load-rc-'));
  let seq = 0;
  const inRoot = (path: string): string => {
    if (!path.startsWith(fs)) throw new Error(`not a path of remote ${fs}: ${path}`);
    return path.slice(fs.length).replace(/^\/+/, '');
  };

  const call = <T>(method: string, params: Record<string, unknown>, what: string): Promise<T> => {
    o.trace?.(what);
    const body = JSON.stringify(params);
    return new Promise<T>((resolve, reject) => {
      if (exited) return reject(classifyRcloneFailure(`rclone rcd has exited (${exited.code}):\n${tail.join('\n')}`, what, target.remote));
      const req = request(
        {
          host: '127.0.0.1',
          port,
          method: 'POST',
          path: `/${method}`,
          agent,
          headers: { authorization, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            const text = redact(Buffer.concat(chunks).toString('utf8'), secrets);
            let out: { error?: string; status?: number } & Record<string, unknown>;
            try {
              out = JSON.parse(text || '{}') as typeof out;
            } catch {
              return reject(
                classifyRcloneFailure(`rclone rc ${method}: HTTP ${res.statusCode}: ${text.slice(0, 500)}`, what, target.remote),
              );
            }
            if (res.statusCode === 200 && !out.error) return resolve(out as T);
            const status = Number(out.status ?? res.statusCode);
            reject(
              classifyRcloneFailure(String(out.error ?? `HTTP ${res.statusCode}`), what, target.remote, status === 404 ? 4 : undefined),
            );
          });
        },
      );
      req.on('error', (e) =>
        reject(classifyRcloneFailure(`rclone rcd is unreachable: ${e.message}\n${tail.join('\n')}`, what, target.remote)),
      );
      req.end(body);
    });
  };

  let probed = false;
  // The one login. Its failure is a failure to create the file system, as rclone's own commands say.
  try {
    // rclone's swift backend logs in at its first request, not when it creates the file system: a HEAD of an
    // object the caller names (the pointer; one an access-ruled credential may HEAD), which may not exist.
    probed = Boolean(
      (
        await call<{ item: unknown }>(
          'operations/stat',
          // Few retries: a refused credential (401/403) is not going to change its mind, and rclone's default of
          // 10 re-logins with backoff made a refused load take minutes to say so.
          { fs, remote: inRoot(o.loginProbe ?? fs), _config: { LowLevelRetries: 2 } },
          'log in to the object store',
        )
      ).item,
    );
  } catch (e) {
    await close();
    if (e instanceof RcloneError)
      throw classifyRcloneFailure(`Failed to create file system for "${fs}": ${e.output}`, 'log in to the object store', target.remote);
    throw e;
  }

  async function close(): Promise<void> {
    // SIGKILL: every call was awaited, so nothing is in flight, and rclone keeps no state of its own that an exit
    // handler would save. Measured: core/quit exits 1.5 s after it answers, and SIGTERM took up to 3 s on a busy
    // machine, a wait every load paid at its end.
    if (!exited) {
      const gone = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGKILL');
      await Promise.race([gone, new Promise((r) => setTimeout(r, 500).unref())]);
    }
    process.removeListener('exit', killOnExit);
    agent.destroy();
    rmSync(local, { recursive: true, force: true });
  }

  /** At most `n` at once, each awaited; the first failure is thrown after the others ended. */
  const pool = async <X>(items: readonly X[], n: number, f: (x: X) => Promise<void>) => {
    let next = 0;
    const errors: unknown[] = [];
    const worker = async () => {
      while (next < items.length) {
        const x = items[next++];
        try {
          await f(x);
        } catch (e) {
          errors.push(e);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(n, items.length)) }, worker));
    if (errors.length) throw errors[0];
  };

  return {
    get pid() {
      return child.pid;
    },
    probeExisted: probed,
    async cat(path, what) {
      const name = `in-${++seq}`;
      for (let attempt = 1; ; attempt++) {
        try {
          await call(
            'operations/copyfile',
            // copyfile HEADs the object, GETs it, then compares the GET's size and MD5 with the HEAD's: an object
            // another load overwrites in between (the pointer, while the lock's holder writes it) failed that
            // check as "corrupted on transfer: sizes differ", 51 of 300 reads under continuous writes here. The
            // GET is whole by itself (rclone checks its body against the GET's own ETag), so only the
            // comparison with the HEAD is dropped.
            {
              srcFs: fs,
              srcRemote: inRoot(path),
              dstFs: local,
              dstRemote: name,
              _config: { NoCheckDest: true, LowLevelRetries: 2, IgnoreSize: true, IgnoreChecksum: true },
            },
            what,
          );
          break;
        } catch (e) {
          // A 404 for an object being rewritten: Swift replaces the object's file under a HEAD or a GET (here, 1 to
          // 2 reads in 300 under continuous rewrites, from the GET or from the HEAD before it). So a 404 is read
          // again, twice: a missing object costs two more HEADs (~75 ms in all), a rewritten one is read whole.
          if (!(e instanceof RcloneError && e.notFound) || attempt >= 3) throw e;
          await new Promise((r) => setTimeout(r, 25 * attempt));
        }
      }
      try {
        return readFileSync(join(local, name), 'utf8');
      } finally {
        rmSync(join(local, name), { force: true });
      }
    },
    async put(path, text, what, po = {}) {
      const name = `out-${++seq}`;
      writeFileSync(join(local, name), text, { mode: 0o600 });
      const headers = Object.entries(po.headers ?? {}).map(([Key, Value]) => ({ Key, Value }));
      try {
        await call(
          'operations/copyfile',
          {
            srcFs: local,
            srcRemote: name,
            dstFs: fs,
            dstRemote: inRoot(path),
            _config: { NoCheckDest: true, UploadHeaders: headers, LowLevelRetries: po.lowLevelRetries ?? 10 },
          },
          what,
        );
      } finally {
        rmSync(join(local, name), { force: true });
      }
    },
    async list(path, what) {
      const at = inRoot(path);
      const r = await call<{ list: { Path: string; Size: number; IsDir?: boolean; Hashes?: { md5?: string } }[] }>(
        'operations/list',
        // UseListR: rclone's --fast-list (one recursive listing request, not one per directory).
        {
          fs,
          remote: at,
          opt: { recurse: true, showHash: true, noModTime: true, noMimeType: true, filesOnly: true, hashTypes: ['md5'] },
          _config: { UseListR: o.fastList !== false },
        },
        what,
      );
      const prefix = `${at}/`;
      return r.list
        .filter((x) => !x.IsDir)
        .map((x) => ({ name: x.Path.startsWith(prefix) ? x.Path.slice(prefix.length) : x.Path, bytes: x.Size, md5: x.Hashes?.md5 }));
    },
    async upload(files, dest, what, parallel) {
      const group = `upload-${++seq}`;
      const to = inRoot(dest);
      const t0 = performance.now();
      const progress = setInterval(() => {
        call<RcloneStats>('core/stats', { group }, `${what}: progress`)
          .then((s) =>
            log.progress(
              `  ${what}: ${(s.bytes / 1048576).toFixed(1)} MiB in ${s.transfers} objects, ` +
                `${((performance.now() - t0) / 1000).toFixed(1)}s`,
            ),
          )
          .catch(() => undefined);
      }, 5000);
      try {
        // Real files: a staged file may be a link, and rclone's local backend skips links without --copy-links.
        await pool(files, parallel, async (f) => {
          const real = realpathSync(f.local);
          await call(
            'operations/copyfile',
            {
              srcFs: dirname(real),
              srcRemote: basename(real),
              dstFs: fs,
              dstRemote: `${to}/${f.name}`,
              _group: group,
              _config: { CheckSum: true },
            },
            what,
          );
        });
      } finally {
        clearInterval(progress);
      }
      const s = await call<Partial<RcloneStats>>('core/stats', { group }, `${what}: stats`);
      return {
        bytes: s.bytes ?? 0,
        transfers: s.transfers ?? 0,
        checks: s.checks ?? 0,
        errors: s.errors ?? 0,
        elapsedTime: s.elapsedTime ?? 0,
      };
    },
    async copy(names, from, to, what, parallel) {
      const [a, b] = [inRoot(from), inRoot(to)];
      await pool(names, parallel, async (n) => {
        await call(
          'operations/copyfile',
          { srcFs: fs, srcRemote: `${a}/${n}`, dstFs: fs, dstRemote: `${b}/${n}`, _config: { CheckSum: true, LowLevelRetries: 1 } },
          what,
        );
      });
    },
    async deleteFile(path, what) {
      await call('operations/deletefile', { fs, remote: inRoot(path) }, what);
    },
    async mkdir(path, what) {
      await call('operations/mkdir', { fs, remote: inRoot(path) }, what);
    },
    close,
  };
}
