#!/usr/bin/env bash
# Run INSIDE the VM, as root, by the test harness (never by what the project renders for Chameleon):
#   sudo bash -s -- PORT... < scripts/local-vm/host-loopback.sh
#
# The local Keystone + Swift listen on the host's 127.0.0.1, which qemu's user networking shows to the VM as
# 10.0.2.2. The runner writes rclone.conf with Keystone's URL as the host sees it (http://127.0.0.1:<port>/v3),
# and Keystone's catalog names Swift as http://127.0.0.1:<port>/...: inside the VM, 127.0.0.1 is the VM itself.
# For each PORT, a socket unit listens on the VM's 127.0.0.1:PORT and systemd-socket-proxyd forwards each
# connection to 10.0.2.2:PORT, so the node's rclone reaches the stand-ins under the same URLs the host uses,
# and rclone.conf, the mount unit and the catalog stay exactly what they are on Chameleon. The units are enabled
# (sockets.target), so they are back after a reboot before the mount unit starts.
#
# The local cloud (scripts/local-cloud.sh) runs this from Nova's vendor data with HOST_LOOPBACK_TARGET set to its
# public gateway (which shows the same ports) and HOST_LOOPBACK_NO_BLOCK=1: cloud-init's bootcmd runs before
# sysinit.target, which a socket unit is ordered after, so waiting for its start there would never return.
set -euo pipefail
target=${HOST_LOOPBACK_TARGET:-10.0.2.2}
[ $# -ge 1 ] || { echo "usage: host-loopback.sh PORT..." >&2; exit 2; }
for port in "$@"; do
  case "$port" in '' | *[!0-9]*) echo "host-loopback: not a port: $port" >&2; exit 2 ;; esac
  name=persist-host-loopback-$port
  cat > "/etc/systemd/system/$name.socket" <<UNIT
[Unit]
Description=Host loopback port $port ($target:$port) at 127.0.0.1:$port (chameleon-persist VM test harness)

[Socket]
ListenStream=127.0.0.1:$port
FreeBind=true

[Install]
WantedBy=sockets.target
UNIT
  cat > "/etc/systemd/system/$name.service" <<UNIT
[Unit]
Description=Forward 127.0.0.1:$port to the host's $target:$port (chameleon-persist VM test harness)
Requires=$name.socket
After=$name.socket

[Service]
ExecStart=/lib/systemd/systemd-socket-proxyd $target:$port
UNIT
done
systemctl daemon-reload
for port in "$@"; do
  systemctl enable "persist-host-loopback-$port.socket" 2>/dev/null
  systemctl start ${HOST_LOOPBACK_NO_BLOCK:+--no-block} "persist-host-loopback-$port.socket"
done
echo "host-loopback: 127.0.0.1:{$(IFS=,; echo "$*")} -> $target"
