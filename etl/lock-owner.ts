/**
 * Who holds a lock (the node's run lock, the container's load lock): enough to tell a user, and to tell
 * whether a holder on this machine is still alive, so a lock left by a killed run can be taken over.
 */
export function lockOwner(pid: number, host: string, since: Date): string {
  return `pid ${pid} on ${host} since ${since.toISOString()}`;
}

/** True when the lock was taken by a process of this machine that no longer exists. */
export function isStaleLocalOwner(owner: string, host: string, alive: (pid: number) => boolean): boolean {
  const m = /^pid (\d+) on (\S+) since /.exec(owner);
  return Boolean(m && m[2] === host && !alive(Number(m[1])));
}

/** True while a process with this pid exists (EPERM: it exists, under another user). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
