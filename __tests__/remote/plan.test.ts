import { EtlError } from '../../etl/errors';
import { checkPreflight, cloudInitState, isStaleLocalOwner, lockOwner, unlockIfOwnerCommand, etlCommand, parsePreflight, renderRcloneConf, sh, writeSecretFileCommand } from '../../etl/remote/plan';
import { coordinatesFromEnv, resolveSecret, storageFromOutputs } from '../../etl/remote/coordinates';

describe('what the runner sends to the node', () => {
  it('renders the rclone config a Chameleon user would write', () => {
    expect(renderRcloneConf({ name: 'chi_tacc', authUrl: 'https://chi.tacc.chameleoncloud.org:5000/v3', region: 'CHI@TACC', userId: 'u1', credentialId: 'c1', credentialSecret: 's1' })).toBe(
      '[chi_tacc]\ntype = swift\nuser_id = u1\napplication_credential_id = c1\napplication_credential_secret = s1\nauth = https://chi.tacc.chameleoncloud.org:5000/v3\nregion = CHI@TACC\n',
    );
  });

  it('writes secret files with umask 077 from stdin, never with the secret in the command', () => {
    const cmd = writeSecretFileCommand('~/.config/rclone/rclone.conf');
    expect(cmd).toMatch(/^umask 077 && /);
    expect(cmd).toContain('cat >');
    expect(cmd).toContain('"$HOME"/');
  });

  it('quotes every argument of the ETL command, so option values cannot inject shell', () => {
    const cmd = etlCommand({ stage: 'all', remoteDir: '/srv/etl', rcloneConfigPath: '/srv/rc', force: true, options: { container: "x'; rm -rf /; echo '", seed: '42', prune: false } });
    expect(cmd).toContain(sh("x'; rm -rf /; echo '"));
    expect(cmd).toContain("'--force'");
    expect(cmd).not.toContain('--prune');
    expect(sh("a'b")).toBe(`'a'\\''b'`);
  });

  it('treats a lock as stale only when its holder was a process of this machine that is gone', () => {
    const owner = lockOwner(4242, 'laptop', new Date('2026-01-01T00:00:00Z'));
    expect(owner).toBe('pid 4242 on laptop since 2026-01-01T00:00:00.000Z');
    expect(isStaleLocalOwner(owner, 'laptop', () => false)).toBe(true);
    expect(isStaleLocalOwner(owner, 'laptop', () => true)).toBe(false);
    expect(isStaleLocalOwner(owner, 'other-laptop', () => false)).toBe(false);
    expect(isStaleLocalOwner('', 'laptop', () => false)).toBe(false);
    expect(unlockIfOwnerCommand('/d/.lock', owner)).toBe(`if [ "$(cat '/d/.lock'/owner 2>/dev/null)" = '${owner}' ]; then rm -rf '/d/.lock'; fi`);
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
    expect(() => checkPreflight(parsePreflight('node 16.20.0\nrclone present\nfree_mb 9000\n'), 3000, 'n')).toThrow(/Node.js 16.20.0.*>= 18/);
    expect(() => checkPreflight(parsePreflight('node missing\nrclone present\nfree_mb 9000\n'), 3000, 'n')).toThrow(/Node.js is missing/);
    expect(() => checkPreflight(parsePreflight('node 20.1.0\nrclone missing\nfree_mb 9000\n'), 3000, 'n')).toThrow(/rclone is missing/);
    expect(() => checkPreflight(parsePreflight('node 20.1.0\nrclone present\nfree_mb 100\n'), 3000, 'n')).toThrow(/only 100 MB free/);
  });
});

describe('where the runner finds the node and the container', () => {
  const outputs = {
    container_name: { value: 'object-persist-p1' },
    auth_url: { value: 'https://chi.tacc.chameleoncloud.org:5000/v3' },
    region: { value: 'CHI@TACC' },
    user_id: { value: 'u1' },
    credential_id: { value: 'c1' },
    credential_secret: { value: 's1', sensitive: true },
  };

  it('reads the storage stack outputs, secret included when the stack made the credential', () => {
    expect(storageFromOutputs(outputs)).toEqual({ container: 'object-persist-p1', authUrl: outputs.auth_url.value, region: 'CHI@TACC', userId: 'u1', credentialId: 'c1', credentialSecret: 's1' });
  });

  it('says to deploy first when an output is missing', () => {
    const { container_name: _c, ...rest } = outputs;
    expect(() => storageFromOutputs(rest)).toThrow(/no output 'container_name'.*/);
  });

  it('takes a brought credential secret from PERSIST_APP_CREDENTIAL_SECRET, and says so when there is none', () => {
    const { credential_secret: _s, ...noSecret } = outputs;
    const storage = storageFromOutputs(noSecret);
    expect(resolveSecret(storage, { PERSIST_APP_CREDENTIAL_SECRET: 'byo' })).toBe('byo');
    expect(() => resolveSecret(storage, {})).toThrow(EtlError);
  });

  it('reads what the etl stack passes, and names a missing variable', () => {
    const env = { PERSIST_ETL_HOST: '1.2.3.4', PERSIST_ETL_USER: 'cc', PERSIST_ETL_PRIVATE_KEY: '~/.ssh/k', PERSIST_ETL_CONTAINER: 'c', PERSIST_ETL_AUTH_URL: 'a', PERSIST_ETL_REGION: 'r', PERSIST_ETL_CREDENTIAL_ID: 'id' };
    expect(coordinatesFromEnv(env).node).toEqual({ host: '1.2.3.4', port: 22, user: 'cc', privateKeyPath: '~/.ssh/k' });
    const { PERSIST_ETL_HOST: _h, ...missing } = env;
    expect(() => coordinatesFromEnv(missing)).toThrow(/PERSIST_ETL_HOST is not set/);
  });
});
