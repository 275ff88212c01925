#!/usr/bin/env bash
# A Debian 12 VM under qemu (TCG: this machine has no hardware virtualization) standing in for the KVM@TACC node.
#
#   vm.sh up STATE_DIR USER_DATA PUBLIC_KEY   boot a fresh instance: a qcow2 overlay of the cached image
#                                             (scripts/local-vm/image.sh), a NoCloud seed whose user-data is the
#                                             file USER_DATA byte for byte and whose meta-data carries the public
#                                             key (as Nova's keypair does); SSH only through 127.0.0.1:<port>
#   vm.sh down STATE_DIR                      stop that qemu (its PID, checked against its pid file) and delete
#                                             the overlay
#   vm.sh status STATE_DIR
#
# With PERSIST_VM_OWNER_PID set, a watchdog stops the VM when that process ends (a killed test run).
# STATE_DIR/vm.json says how to reach it: {"host","port","user","pid","image"}. The serial console goes to
# STATE_DIR/console.log. qemu runs under `nice -n 10` (PERSIST_VM_NICE), with PERSIST_VM_SMP (2) vCPUs and
# PERSIST_VM_MEM (3072) MiB.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../pids.sh
. "$HERE/../pids.sh"

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
log() { echo "local-vm: $*" >&2; }

up() {
  local S=$1 user_data=$2 public_key=$3
  mkdir -p "$S"
  S=$(cd "$S" && pwd)
  if pid_alive "$S/qemu.pid"; then log "already running (pid $(cat "$S/qemu.pid"))"; return 0; fi
  for cmd in qemu-system-x86_64 qemu-img cloud-localds; do
    command -v "$cmd" >/dev/null || { log "$cmd is missing: apt-get install -y --no-install-recommends qemu-system-x86 qemu-utils cloud-image-utils"; exit 1; }
  done
  local image
  image=$(bash "$HERE/image.sh")
  rm -f "$S/disk.qcow2" "$S/seed.img" "$S/console.log"
  qemu-img create -q -f qcow2 -F qcow2 -b "$image/root.qcow2" "$S/disk.qcow2"
  cp "$user_data" "$S/user-data"
  local id="i-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
  printf 'instance-id: %s\nlocal-hostname: persist-vm\npublic-keys:\n  - %s\n' "$id" "$(cat "$public_key")" >"$S/meta-data"
  cloud-localds "$S/seed.img" "$S/user-data" "$S/meta-data"
  local port=${PERSIST_VM_SSH_PORT:-2322}
  while ! port_free "$port"; do port=$((port + 1)); done
  nice -n "${PERSIST_VM_NICE:-10}" qemu-system-x86_64 \
    -name persist-vm -accel tcg,thread=multi -cpu max -smp "${PERSIST_VM_SMP:-2}" -m "${PERSIST_VM_MEM:-3072}" \
    -kernel "$image/vmlinuz" -initrd "$image/initrd.img" \
    -append "root=/dev/vda rw console=ttyS0 net.ifnames=0" \
    -drive "file=$S/disk.qcow2,if=virtio,format=qcow2,discard=unmap" \
    -drive "file=$S/seed.img,if=virtio,format=raw,readonly=on" \
    -netdev "user,id=n0,hostfwd=tcp:127.0.0.1:$port-:22" -device virtio-net-pci,netdev=n0 \
    -display none -serial "file:$S/console.log" -monitor none \
    -daemonize -pidfile "$S/qemu.pid"
  pid_stamp "$S/qemu.pid"
  # A test run that dies without its teardown (killed jest) must not leave a VM running: with an owner PID, a
  # watchdog stops this qemu (by its PID, checked against the pid file) once the owner is gone.
  if [ -n "${PERSIST_VM_OWNER_PID:-}" ]; then
    setsid bash -c '. "$1"; while kill -0 "$2" 2>/dev/null && pid_alive "$3"; do sleep 5; done
      pid_alive "$3" && kill "$(cat "$3")"' watchdog "$HERE/../pids.sh" "$PERSIST_VM_OWNER_PID" "$S/qemu.pid" \
      </dev/null >/dev/null 2>&1 &
    echo $! >"$S/watchdog.pid"
    pid_stamp "$S/watchdog.pid"
  fi
  printf '{"host":"127.0.0.1","port":%s,"user":"cc","pid":%s,"image":"%s","instanceId":"%s"}\n' \
    "$port" "$(cat "$S/qemu.pid")" "$image" "$id" >"$S/vm.json"
  log "qemu pid $(cat "$S/qemu.pid"), ssh cc@127.0.0.1 -p $port; console $S/console.log"
}

down() {
  local S=$1
  [ -d "$S" ] || return 0
  if pid_alive "$S/qemu.pid"; then
    local pid
    pid=$(cat "$S/qemu.pid")
    kill "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    log "stopped qemu (pid $pid)"
  fi
  if pid_alive "$S/watchdog.pid"; then kill "$(cat "$S/watchdog.pid")" 2>/dev/null || true; fi
  rm -f "$S/qemu.pid" "$S/qemu.pid.start" "$S/watchdog.pid" "$S/watchdog.pid.start" "$S/disk.qcow2"
}

case "${1:-}" in
  up) [ $# -eq 4 ] || { echo "usage: $0 up STATE_DIR USER_DATA PUBLIC_KEY" >&2; exit 2; }; up "$2" "$3" "$4" ;;
  down) [ $# -eq 2 ] || { echo "usage: $0 down STATE_DIR" >&2; exit 2; }; down "$2" ;;
  status) if pid_alive "$2/qemu.pid"; then echo "qemu: running (pid $(cat "$2/qemu.pid"))"; else echo "qemu: stopped"; exit 1; fi ;;
  *) echo "usage: $0 up|down|status STATE_DIR ..." >&2; exit 2 ;;
esac
