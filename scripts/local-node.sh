#!/usr/bin/env bash
# An sshd on 127.0.0.1 standing in for the KVM@TACC node: the ETL runner reaches it exactly as it reaches a
# real node (ssh with a key, BatchMode), and it has what a configured node has (node, rclone, fuse3).
#
#   local-node.sh install              apt-install what is missing (scripts/system-deps.sh)
#   local-node.sh up     STATE_DIR     generate keys (first time), start sshd on a free port (default 2222)
#   local-node.sh down   STATE_DIR     stop it, by PID
#   local-node.sh status STATE_DIR
#
# STATE_DIR/node.json says how to reach it: {"host","port","user","privateKeyPath","knownHostsPath"}.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
die() { echo "local-node: $*" >&2; exit 1; }
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# shellcheck source=pids.sh
. "$HERE/pids.sh"

cmd_up() {
  [ -x /usr/sbin/sshd ] || die "openssh-server is not installed: run 'bash scripts/local-node.sh install' (as root)"
  mkdir -p "$S" /run/sshd
  chmod 700 "$S"
  [ -f "$S/host_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C local-node-host -f "$S/host_ed25519"
  [ -f "$S/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C local-node-client -f "$S/id_ed25519"
  # Only a stopped node gets a fresh authorized_keys: tests add entries to a running one (faulty nodes,
  # __tests__/support/node.ts), and a second `up` from a parallel test file must not wipe them.
  if pid_alive "$S/sshd.pid"; then echo "local-node: already running on port $(cat "$S/port")" >&2; return 0; fi
  cp "$S/id_ed25519.pub" "$S/authorized_keys"
  local port=${LOCAL_NODE_PORT:-2222}
  while ! port_free "$port"; do port=$((port + 1)); done
  echo "$port" >"$S/port"
  cat >"$S/sshd_config" <<CONF
Port $port
ListenAddress 127.0.0.1
HostKey $S/host_ed25519
AuthorizedKeysFile $S/authorized_keys
PidFile $S/sshd.pid
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
MaxStartups 50:30:100
MaxSessions 50
Subsystem sftp internal-sftp
CONF
  # sshd daemonizes and writes its PidFile; fd 9 (our lock) must not stay open in it.
  /usr/sbin/sshd -f "$S/sshd_config" -E "$S/sshd.log" 9>&-
  for _ in $(seq 50); do pid_alive "$S/sshd.pid" && ! port_free "$port" && break; sleep 0.1; done
  pid_alive "$S/sshd.pid" || die "sshd did not start; see $S/sshd.log"
  pid_stamp "$S/sshd.pid"
  : >"$S/known_hosts"
  printf '{"host":"127.0.0.1","port":%s,"user":"%s","privateKeyPath":"%s","knownHostsPath":"%s"}\n' \
    "$port" "$(id -un)" "$S/id_ed25519" "$S/known_hosts" >"$S/node.json"
  echo "local-node: sshd on 127.0.0.1:$port (user $(id -un)); $S/node.json" >&2
}

cmd_down() {
  # Several test runs of one checkout share this node (each leaves a lease, __tests__/support/node.ts). The
  # teardown of one run must not stop it under another that is still running (its run directory still exists);
  # by hand (no CHAMELEON_PERSIST_TEST_TMPDIR), down always stops it.
  if [ -n "${CHAMELEON_PERSIST_TEST_TMPDIR:-}" ]; then
    rm -f "$S/.leases/$(basename "$CHAMELEON_PERSIST_TEST_TMPDIR")"
    for l in "$S"/.leases/*; do
      [ -e "$l" ] || continue
      if [ -d "$(cat "$l")" ]; then echo "local-node: still used by another test run ($(cat "$l")); left running" >&2; return 0; fi
      rm -f "$l"
    done
  fi
  # The node's read-only mounts (the demo's, the runner's) live under the state dir: unmount them with it,
  # which also ends their rclone daemons.
  awk -v d="$S/" 'index($2, d) == 1 {print $2}' /proc/mounts | while read -r m; do fusermount3 -u "$m" || true; done
  if pid_alive "$S/sshd.pid"; then kill "$(cat "$S/sshd.pid")"; fi # only the sshd it started (pids.sh)
  rm -f "$S/sshd.pid" "$S/sshd.pid.start"
  echo "local-node: stopped ($S)" >&2
}

case ${1:-} in
  install) exec bash "$HERE/system-deps.sh" ;;
  up | down | status) ;;
  *) die "usage: $0 install | up|down|status STATE_DIR" ;;
esac
[ -n "${2:-}" ] || die "$1 needs a state directory"
mkdir -p "$2"
S=$(cd "$2" && pwd)
exec 9>"$S.lock"
flock 9
case $1 in
  up) cmd_up ;;
  down) cmd_down ;;
  status) if pid_alive "$S/sshd.pid"; then echo "sshd: running (pid $(cat "$S/sshd.pid"), port $(cat "$S/port"))"; else echo "sshd: stopped"; exit 1; fi ;;
esac
