import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EtlError } from '../../etl/errors';
import { memoryLogger } from '../../etl/log';
import {
  knownHostsHas,
  knownHostsLines,
  parseConsoleHostKeys,
  pinFromConsole,
  prepareKnownHostsDir,
  type ConsoleFetch,
} from '../../etl/remote/host-keys';
import { cloudInitConsoleOutput, newKey } from '../support/cloud-init-console';

const dir = mkdtempSync(join(tmpdir(), 'host-keys-'));
const ed = newKey(dir, 'ed');
const rsa = newKey(dir, 'rsa', 'rsa');
const ecdsa = newKey(dir, 'ecdsa', 'ecdsa');
const other = newKey(dir, 'other');
const pub = (file: string) => readFileSync(file, 'utf8').trim().split(' ') as [string, string, string];
const sshKeygenFingerprint = (file: string) => execFileSync('ssh-keygen', ['-l', '-f', file], { encoding: 'utf8' }).split(' ')[1];

describe('parseConsoleHostKeys: cloud-init console output', () => {
  test('the real write-ssh-key-fingerprints output gives every key, fingerprints as ssh-keygen -l prints them', () => {
    const text = cloudInitConsoleOutput([ed, rsa, ecdsa]);
    expect(text).toContain('cloud-init: -----BEGIN SSH HOST KEY FINGERPRINTS-----');
    const r = parseConsoleHostKeys(text);
    if (!r.ok) throw new Error(r.problem);
    const expected = [ed, rsa, ecdsa].map((f) => ({ type: pub(f)[0], blob: pub(f)[1], fingerprint: sshKeygenFingerprint(f) }));
    expect(r.keys.sort((a, b) => a.type.localeCompare(b.type))).toEqual(expected.sort((a, b) => a.type.localeCompare(b.type)));
    expect(r.fingerprints.sort()).toEqual(expected.map((k) => k.fingerprint).sort());
  });

  test('known_hosts lines: [host]:port off port 22, the address alone on 22; ssh-keygen -F finds them', async () => {
    const r = parseConsoleHostKeys(cloudInitConsoleOutput([ed]));
    if (!r.ok) throw new Error(r.problem);
    const [type, blob] = pub(ed);
    expect(knownHostsLines('127.0.0.1', 2222, r.keys)).toEqual([`[127.0.0.1]:2222 ${type} ${blob}`]);
    expect(knownHostsLines('203.0.113.5', 22, r.keys)).toEqual([`203.0.113.5 ${type} ${blob}`]);
    const file = join(dir, 'kh');
    writeFileSync(file, `${knownHostsLines('203.0.113.5', 22, r.keys)[0]}\n`);
    expect(await knownHostsHas(file, '203.0.113.5', 22)).toBe(true);
    expect(await knownHostsHas(file, '203.0.113.5', 2222)).toBe(false);
  });

  test('a serial console: CRLF line ends, kernel lines in between, a journal prefix on the key lines', () => {
    const [type, blob] = pub(ed);
    const text = [
      '[    0.000000] Linux version 6.8.0-45-generic',
      '-----BEGIN SSH HOST KEY KEYS-----',
      '[   19.5] random: crng init done',
      `[   19.6] cloud-init[871]: ${type} ${blob} root@node`,
      '-----END SSH HOST KEY KEYS-----',
    ].join('\r\n');
    const r = parseConsoleHostKeys(text);
    expect(r.ok && r.keys.map((k) => k.blob)).toEqual([blob]);
  });

  test('the keys blacklisted from the console: only the fingerprints are there', () => {
    const r = parseConsoleHostKeys(cloudInitConsoleOutput([ed], { keyBlacklist: 'ssh-ed25519' }));
    expect(r).toEqual({ ok: true, keys: [], fingerprints: [sshKeygenFingerprint(ed)] });
  });

  test('no block at all (booting, or an image that prints nothing): no keys, not an error', () => {
    expect(parseConsoleHostKeys('')).toEqual({ ok: true, keys: [], fingerprints: [] });
    expect(parseConsoleHostKeys('[ 1.0] booting\nlogin: ')).toEqual({ ok: true, keys: [], fingerprints: [] });
  });

  const [edType, edBlob] = pub(ed);
  test.each([
    [
      'a truncated key',
      `-----BEGIN SSH HOST KEY KEYS-----\n${edType} ${edBlob.slice(0, 30)}\n-----END SSH HOST KEY KEYS-----`,
      /no valid key in it/,
    ],
    [
      'a blob of another type',
      `-----BEGIN SSH HOST KEY KEYS-----\nssh-rsa ${edBlob}\n-----END SSH HOST KEY KEYS-----`,
      /no valid key in it/,
    ],
    [
      'base64 garbage',
      '-----BEGIN SSH HOST KEY KEYS-----\nssh-ed25519 !!!notbase64\n-----END SSH HOST KEY KEYS-----',
      /no valid key in it/,
    ],
    [
      'a key that its fingerprints block does not list',
      cloudInitConsoleOutput([ed]).replace(/(-----BEGIN SSH HOST KEY KEYS-----\n)[^\n]+/, `$1${pub(other).join(' ')}`),
      /does not match its fingerprints block/,
    ],
    ['two boots with different keys', `${cloudInitConsoleOutput([ed])}\n${cloudInitConsoleOutput([other])}`, /different SSH host keys/],
  ])('refused: %s', (_name, text, problem) => {
    const r = parseConsoleHostKeys(text);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.problem).toMatch(problem);
  });

  test('the same block printed twice (two console captures) is one set of keys', () => {
    const once = cloudInitConsoleOutput([ed]);
    const r = parseConsoleHostKeys(`${once}\n${once}`);
    expect(r.ok && r.keys.length).toBe(1);
  });
});

describe('pinFromConsole: pins before the first contact, else falls back to TOFU and says so', () => {
  const base = (file: string, fetch: (c: string, s: string) => Promise<ConsoleFetch>) => ({
    host: '198.51.100.9',
    port: 22,
    knownHostsPath: file,
    serverId: 'srv-1',
    cloud: 'kvm_tacc',
    fetch,
    sleep: async () => undefined,
  });

  test('a readable console log: the keys are written to known_hosts, 0600', async () => {
    const file = join(mkdtempSync(join(dir, 'pin-')), 'known_hosts');
    const log = memoryLogger();
    const asked: string[] = [];
    const r = await pinFromConsole({
      ...base(file, async (c, s) => (asked.push(`${c} ${s}`), { ok: true, text: cloudInitConsoleOutput([ed]) })),
      log,
    });
    expect(r).toBe('pinned');
    expect(asked).toEqual(['kvm_tacc srv-1']);
    expect(readFileSync(file, 'utf8')).toBe(`198.51.100.9 ${pub(ed)[0]} ${pub(ed)[1]}\n`);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(log.lines.join('\n')).toContain(
      `pinned the host key of server srv-1 from its console log (ssh-ed25519 ${sshKeygenFingerprint(ed)})`,
    );
    // A second run finds the key and does not ask the cloud again.
    expect(
      await pinFromConsole({
        ...base(file, async () => {
          throw new Error('asked again');
        }),
        log,
      }),
    ).toBe('already-known');
  });

  test('waits while cloud-init has not printed the keys yet', async () => {
    const file = join(mkdtempSync(join(dir, 'pin-')), 'known_hosts');
    const texts = ['[ 5.0] booting', '[ 9.0] cloud-init[1]: running modules:config', cloudInitConsoleOutput([ed])];
    const r = await pinFromConsole({ ...base(file, async () => ({ ok: true, text: texts.shift()! })), log: memoryLogger() });
    expect(r).toBe('pinned');
    expect(texts).toEqual([]);
  });

  test.each([
    [
      'the log is not readable',
      async (): Promise<ConsoleFetch> => ({ ok: false, why: 'Cloud kvm_tacc was not found.' }),
      /console log is not readable \(Cloud kvm_tacc was not found\.\)/,
    ],
    [
      'cloud-init finished without keys',
      async (): Promise<ConsoleFetch> => ({ ok: true, text: '[ 19.0] cloud-init[871]: Cloud-init v. 22.4.2 finished at Tue' }),
      /finished without printing the host keys/,
    ],
    [
      'a garbled block',
      async (): Promise<ConsoleFetch> => ({
        ok: true,
        text: '-----BEGIN SSH HOST KEY KEYS-----\nssh-ed25519 AAAA\n-----END SSH HOST KEY KEYS-----',
      }),
      /no valid key in it/,
    ],
  ])('fallback when %s: TOFU, with a warning saying why and how to check', async (_name, fetch, why) => {
    const file = join(mkdtempSync(join(dir, 'pin-')), 'known_hosts');
    const log = memoryLogger();
    expect(await pinFromConsole({ ...base(file, fetch), log })).toBe('tofu');
    const text = log.lines.join('\n');
    expect(text).toMatch(/^warning: cannot pin the host key of server srv-1 from its console log: /);
    expect(text).toMatch(why);
    expect(text).toContain('(TOFU)');
    expect(text).toContain('openstack --os-cloud kvm_tacc console log show srv-1');
    expect(existsSync(file)).toBe(false);
  });

  test('fallback when the openstack client is missing (the real fetcher, PATH without it)', async () => {
    const file = join(mkdtempSync(join(dir, 'pin-')), 'known_hosts');
    const log = memoryLogger();
    const path = process.env.PATH;
    process.env.PATH = mkdtempSync(join(dir, 'empty-path-'));
    try {
      expect(await pinFromConsole({ ...base(file, undefined as never), fetch: undefined, log })).toBe('tofu');
    } finally {
      process.env.PATH = path;
    }
    expect(log.lines.join('\n')).toMatch(/the openstack client is not installed/);
  });
});

describe('prepareKnownHostsDir', () => {
  test('creates a missing directory 0700, and tightens our own cache directory', () => {
    const cache = join(dir, 'cache-a', 'chameleon-persist');
    prepareKnownHostsDir(join(cache, 'known_hosts-x'), { tighten: true });
    expect(statSync(cache).mode & 0o777).toBe(0o700);
    execFileSync('chmod', ['755', cache]);
    prepareKnownHostsDir(join(cache, 'known_hosts-x'), { tighten: true });
    expect(statSync(cache).mode & 0o777).toBe(0o700);
  });

  test('a path that cannot be a directory: refused, with what to do', () => {
    const file = join(dir, 'a-file');
    writeFileSync(file, '');
    expect(() => prepareKnownHostsDir(join(file, 'sub', 'known_hosts'), { tighten: true })).toThrow(EtlError);
    try {
      prepareKnownHostsDir(join(file, 'sub', 'known_hosts'), { tighten: true });
    } catch (e) {
      expect((e as EtlError).message).toMatch(/cannot create the directory for the node's known_hosts file/);
      expect((e as EtlError).hint).toMatch(/--known-hosts/);
    }
  });
});
