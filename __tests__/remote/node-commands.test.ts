import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EtlError } from '../../etl/errors';
import {
  checkPreflight,
  cloudInitState,
  isStaleLocalOwner,
  lockOwner,
  unlockIfOwnerCommand,
  etlCommand,
  parsePreflight,
  sh,
  writeSecretFileCommand,
} from '../../etl/remote/node-commands';
import { renderRcloneConf } from '../../etl/remote/rclone-conf';
import { createdCredential, resolveSecret } from '../../etl/remote/stack-state';

describe('what the runner sends to the node', () => {
  it('renders the rclone config a Chameleon user would write', () => {
    expect(
      renderRcloneConf({
        name: 'chi_tacc',
        authUrl: 'https://chi.tacc.chameleoncloud.org:5000/v3',
        region: 'CHI@TACC',
        userId: 'u1',
        credentialId: 'c1',
        credentialSecret: 's1',
      }),
    ).toBe(
      '[chi_tacc]\ntype = swift\nuser_id = u1\napplication_credential_id = c1\napplication_credential_secret = s1\nauth = https://chi.tacc.chameleoncloud.org:5000/v3\nregion = CHI@TACC\n',
    );
  });

  it('writes secret files with umask 077 from stdin, never with the secret in the command', () => {
    const cmd = writeSecretFileCommand('~/.config/rclone/rclone.conf');
    expect(cmd).toMatch(/^umask 077 && /);
    expect(cmd).toContain('cat >');
    expect(cmd).toContain('"$HOME"/');
  });

  it('runs the ETL with its job on stdin: no option value is in the command line (known answer)', () => {
    expect(etlCommand({ stage: 'load', remoteDir: "/srv/it's" })).toBe(
      `cd '/srv/it'\\''s' && if command -v flock >/dev/null; then exec flock -n -E 76 .etl.flock node etl.js 'load' --job -; else exec node etl.js 'load' --job -; fi`,
    );
    expect(sh("a'b")).toBe(`'a'\\''b'`);
  });

  it('treats a lock as stale only when its holder was a process of this machine that is gone', () => {
    const owner = lockOwner(4242, 'laptop', new Date('2026-01-01T00:00:00Z'));
    expect(owner).toBe('pid 4242 on laptop since 2026-01-01T00:00:00.000Z');
    expect(isStaleLocalOwner(owner, 'laptop', () => false)).toBe(true);
    expect(isStaleLocalOwner(owner, 'laptop', () => true)).toBe(false);
    expect(isStaleLocalOwner(owner, 'other-laptop', () => false)).toBe(false);
    expect(isStaleLocalOwner('', 'laptop', () => false)).toBe(false);
    expect(unlockIfOwnerCommand('/d/.lock', owner)).toBe(
      `if [ "$(cat '/d/.lock'/owner 2>/dev/null)" = '${owner}' ]; then rm -rf '/d/.lock'; fi`,
    );
  });

  it.each([
    ['status: done', 0, 'done'],
    ['status: running', 0, 'running'],
    ['status: error', 1, 'error'],
    ['status: degraded done', 2, 'degraded'],
    ['status: done', 2, 'degraded'],
    ['status: done\nextended_status: degraded done', 0, 'degraded'],
    ['status: not run', 0, 'absent'],
    ['status: disabled', 0, 'absent'],
    ['bash: cloud-init: command not found', 127, 'absent'],
  ])('reads cloud-init status %j (exit %d) as %s', (out, code, state) => {
    expect(cloudInitState(out as string, code as number)).toBe(state);
  });

  it('stops before running anything when the node lacks Node >= 18, rclone or disk space', () => {
    const ok = parsePreflight('node 20.1.0\nrclone present\nfree_mb 9000\nneed_mb 3000\n');
    expect(() => checkPreflight(ok, 3000, 'n')).not.toThrow();
    expect(() => checkPreflight(parsePreflight('node 16.20.0\nrclone present\nfree_mb 9000\n'), 3000, 'n')).toThrow(
      /Node.js 16.20.0.*>= 18/,
    );
    expect(() => checkPreflight(parsePreflight('node missing\nrclone present\nfree_mb 9000\n'), 3000, 'n')).toThrow(/Node.js is missing/);
    expect(() => checkPreflight(parsePreflight('node 20.1.0\nrclone missing\nfree_mb 9000\n'), 3000, 'n')).toThrow(/rclone is missing/);
    expect(() => checkPreflight(parsePreflight('node 20.1.0\nrclone present\nfree_mb 100\n'), 3000, 'n')).toThrow(/only 100 MB free/);
  });
});

describe("the credential's secret", () => {
  const state = (outputs: Record<string, unknown>, resources: unknown[] = []) => {
    const dir = mkdtempSync(join(tmpdir(), 'secret-'));
    writeFileSync(join(dir, 'terraform.storage.tfstate'), JSON.stringify({ version: 4, outputs, resources }));
    return dir;
  };
  const credential = (id: string, secret: string) => ({
    mode: 'managed',
    type: 'openstack_identity_application_credential_v3',
    name: 'rclone',
    instances: [{ attributes: { id, secret } }],
  });

  it("is the created credential's, read from its resource in the storage state (it is no output)", () => {
    const dir = state({ credential_id: { value: 'c1' } }, [credential('c1', 's1')]);
    expect(createdCredential(dir)).toEqual({ id: 'c1', secret: 's1' });
    expect(resolveSecret('c1', createdCredential(dir), { PERSIST_APP_CREDENTIAL_SECRET: 'other' })).toBe('s1');
  });

  it('is PERSIST_APP_CREDENTIAL_SECRET for a brought credential, or for a spec naming another credential', () => {
    expect(resolveSecret('c2', { id: 'c1', secret: 's1' }, { PERSIST_APP_CREDENTIAL_SECRET: 'byo' })).toBe('byo');
    expect(resolveSecret('c1', undefined, { PERSIST_APP_CREDENTIAL_SECRET: 'byo' })).toBe('byo');
    expect(createdCredential(mkdtempSync(join(tmpdir(), 'none-')))).toBeUndefined();
    expect(createdCredential(state({ credential_id: { value: 'c1' } }))).toBeUndefined();
  });

  it('is missing: the error says what to export', () => {
    expect(() => resolveSecret('c2', { id: 'c1', secret: 's1' }, {})).toThrow(EtlError);
    expect(() => resolveSecret('c1', undefined, {})).toThrow(/no secret for the application credential c1.*/);
  });
});
