import { isTransientSshFailure } from '../../etl/remote/ssh';

// ssh's own words (OpenSSH 9.2), as a busy node makes it print them before any command ran.
describe('which ssh failures are tried again', () => {
  it.each([
    'Connection timed out during banner exchange\nConnection to 192.5.87.10 port 22 timed out',
    'kex_exchange_identification: read: Connection reset by peer\nConnection reset by 127.0.0.1 port 2322',
    'kex_exchange_identification: Connection closed by remote host\nConnection closed by 127.0.0.1 port 2322',
  ])('a connection an overloaded sshd dropped: %j', (stderr) => {
    expect(isTransientSshFailure(255, stderr)).toBe(true);
  });

  it.each([
    [255, 'ssh: connect to host 127.0.0.1 port 1: Connection refused'],
    [255, 'cc@192.5.87.10: Permission denied (publickey).'],
    [255, '@@@@@@@@@@@\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\nHost key verification failed.'],
    [1, 'Connection reset by peer'], // the command's own exit status: it ran
    [255, ''],
  ])('not a refusal, a changed host key, or a command that ran (exit %d, %j)', (code, stderr) => {
    expect(isTransientSshFailure(code, stderr)).toBe(false);
  });
});
