import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { EtlError } from '../../etl/errors';
import { renderRcloneConf, type RcloneRemote } from '../../etl/remote/rclone-conf';
import { TEST_RESERVATION, validConfigYaml } from './helpers';

// Issue 10, item 5: values that would inject into the synthesized JSON (Terraform templates), rclone.conf
// (a newline adds a line) or the node's scripts (etl.remoteDir) stop synth with exit 1 and the field, problem
// and fix. The app cdktf synth runs (cdktf.json: `npx tsx main.ts`), run directly: synth's exit status is this
// process's, and it is much lighter than the cdktf CLI on a shared machine (cdktf-synth.e2e.test.ts runs the CLI).
const ROOT = resolve(__dirname, '..', '..');
const TSX = join(ROOT, 'node_modules', '.bin', 'tsx');
const work = mkdtempSync(join(tmpdir(), 'persist-injection-'));

const base = validConfigYaml;

function synthApp(configText: string) {
  const configFile = join(work, `config-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(configFile, configText);
  const outDir = mkdtempSync(join(work, 'out-'));
  const env: Record<string, string | undefined> = { ...process.env, PERSIST_CONFIG_FILE: configFile, CDKTF_OUTDIR: outDir, CI: '1' };
  for (const k of Object.keys(env)) if (k.startsWith('PERSIST_') && k !== 'PERSIST_CONFIG_FILE') delete env[k];
  const r = spawnSync(TSX, ['main.ts'], { cwd: ROOT, env, encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, output: `${r.stdout}\n${r.stderr}`, outDir };
}

describe('synth refuses injected values: exit 1, field, problem, fix, no stack trace, nothing written', () => {
  test.each([
    [
      'a newline in chi.authUrl',
      'chi:\n  authUrl: "https://chi.tacc.chameleoncloud.org:5000/v3\\nauth = https://evil.example/v3"\n',
      /chi\.authUrl \(env PERSIST_CHI_AUTH_URL\): "https:\/\/chi\.tacc\.chameleoncloud\.org:5000\/v3\\nauth = https:\/\/evil\.example\/v3" contains a control character/,
    ],
    [
      'a newline in chi.region',
      'chi:\n  region: "CHI@TACC\\nauth = https://evil.example/v3"\n',
      /chi\.region \(env PERSIST_CHI_REGION\): .* contains a control character/,
    ],
    [
      'a template in node.image',
      `node:\n  reservationId: ${TEST_RESERVATION}\n  image: '\${file("/etc/hostname")}'\n`,
      /node\.image \(env PERSIST_NODE_IMAGE\): "\$\{file\("\/etc\/hostname"\)\}" contains "\$\{" or "%\{", which Terraform would evaluate/,
    ],
    [
      'a template in node.network',
      `node:\n  reservationId: ${TEST_RESERVATION}\n  network: 'x%{if true}y%{endif}'\n`,
      /node\.network .*contains "\$\{" or "%\{"/,
    ],
    [
      'an etl.remoteDir the node scripts cannot take',
      "etl:\n  remoteDir: '/home/cc/my etl'\n",
      /etl\.remoteDir \(env PERSIST_ETL_REMOTE_DIR\): "\/home\/cc\/my etl" must be a plain absolute path[^\n]*\n\s+fix: an absolute path on the node/,
    ],
  ])('%s', (_name, extra, message) => {
    // The node section is replaced when the case sets one: YAML keeps the last of two equal keys.
    const text = extra.startsWith('node:') ? base('').replace(/node:\n {2}reservationId: .*\n/, '') + extra : base(extra);
    const r = synthApp(text);
    expect(r.status).toBe(1);
    expect(r.output).toMatch(message);
    expect(r.output).toContain('Nothing was synthesized.');
    expect(r.output).not.toMatch(/^\s+at .+:\d+:\d+\)?$/m);
    expect(r.output).not.toMatch(/ZodError|renderCloudConfig|\.ts:\d+:\d+/);
    expect(existsSync(join(r.outDir, 'stacks')) && readdirSync(join(r.outDir, 'stacks')).length > 0).toBe(false);
  });
});

describe('renderRcloneConf refuses values with line breaks (second line of defence)', () => {
  const remote: RcloneRemote = {
    name: 'chi_tacc',
    authUrl: 'https://chi.tacc.chameleoncloud.org:5000/v3',
    region: 'CHI@TACC',
    userId: 'u1',
    credentialId: 'id1',
    credentialSecret: 'sekret-value',
  };

  test('a clean remote renders the tutorial lines', () => {
    expect(renderRcloneConf(remote)).toBe(
      '[chi_tacc]\ntype = swift\nuser_id = u1\napplication_credential_id = id1\napplication_credential_secret = sekret-value\n' +
        'auth = https://chi.tacc.chameleoncloud.org:5000/v3\nregion = CHI@TACC\n',
    );
  });

  test.each([
    ['authUrl', 'Keystone URL (auth)', 'https://chi.tacc.chameleoncloud.org:5000/v3\nauth = https://evil.example/v3'],
    ['region', 'region', 'CHI@TACC\r\nauth = https://evil.example/v3'],
    ['userId', 'user id', 'u1\nauth = x'],
    ['credentialId', 'application credential id', 'id1\u2028x'],
    ['credentialSecret', 'application credential secret', 'sekret\nauth = https://evil.example/v3'],
  ] as const)('%s', (key, what, value) => {
    let err: unknown;
    try {
      renderRcloneConf({ ...remote, [key]: value });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(EtlError);
    expect((err as EtlError).message).toBe(
      `the ${what} for rclone.conf contains a line break or another control character; it would inject lines into rclone.conf, so nothing was written`,
    );
    expect((err as EtlError).hint).toMatch(/remove the line break and rerun/);
    // The value (possibly the secret) is not repeated in the message.
    expect(`${(err as EtlError).message} ${(err as EtlError).hint}`).not.toContain('sekret');
  });
});
