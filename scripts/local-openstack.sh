#!/usr/bin/env bash
# A real OpenStack Keystone + Swift on 127.0.0.1, from Debian's packages, standing in for Chameleon's CHI@TACC.
#
#   local-openstack.sh install              apt-install what is missing (scripts/system-deps.sh)
#   local-openstack.sh up      STATE_DIR    start (first time: create state; later: reuse it, in seconds)
#   local-openstack.sh down    STATE_DIR    stop every daemon this state dir started, by PID
#   local-openstack.sh status  STATE_DIR    which daemons run, and where
#   local-openstack.sh stop-proxy|start-proxy|restart-proxy STATE_DIR   the second (fault-injection) proxy only
#   local-openstack.sh register STATE_DIR   (tests) record a test run using a running stand-in
#
# Test runs set LOCAL_OPENSTACK_RUN_PID (the jest main process) on `up`/`register`. A stand-in that a test run
# started is "tests-owned": a watchdog stops it once no registered run is alive (even if jest was killed), and
# `down` leaves it running while another registered run still uses it (`down STATE_DIR --force` stops anyway).
#
# Everything lives in STATE_DIR: configs, sqlite db, keys, rings, object data, logs/, pids/, and env.json
# (mode 0600: auth URL, region, ids and the generated secrets a client needs). Nothing under /etc is used.
# Facts behind each setting: ../shared/docs/local-stand-ins.md (and docs/local-openstack.md).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PY=/usr/bin/python3 # Debian's python, which has keystone and swift; `python3` on PATH may be another one.
REGION='CHI@TACC'

die() { echo "local-openstack: $*" >&2; exit 1; }
log() { echo "local-openstack: $*" >&2; }

# shellcheck source=harness-lib.sh
. "$HERE/harness-lib.sh" # port_free, pick_port, wait_http, start_daemon, stop_daemon, secret_file

write_keystone_conf() {
  cat >"$S/keystone/keystone.conf" <<EOF
[DEFAULT]
log_file = $S/logs/keystone-app.log
[database]
connection = sqlite:///$S/keystone/keystone.db
[fernet_tokens]
key_repository = $S/keystone/fernet-keys
[fernet_receipts]
key_repository = $S/keystone/fernet-keys
[credential]
key_repository = $S/keystone/credential-keys
[identity]
# bcrypt at default rounds costs ~0.3 s per password or credential check; every rclone run authenticates.
password_hash_rounds = 4
[cache]
# Without a cache Keystone makes ~60 sqlite queries per request (~275 ms); one process, so memory works.
enabled = true
backend = dogpile.cache.memory
EOF
}

write_swift_confs() {
  local sw="$S/swift"
  cat >"$sw/swift.conf" <<EOF
[swift-hash]
swift_hash_path_suffix = $(cat "$sw/hash-suffix")
swift_hash_path_prefix = chameleon-persist
[storage-policy:0]
name = Policy-0
default = yes
[swift-constraints]
# ext4 here keeps ~4 KiB of xattrs per file: a smaller metadata cap turns a 503 into a clean 400.
max_meta_overall_size = 2048
EOF
  local common="[DEFAULT]
swift_dir = $sw
devices = $S/srv
mount_check = false
bind_ip = 127.0.0.1
user = root
log_level = INFO"
  cat >"$sw/account-server.conf" <<EOF
$common
bind_port = $ACCOUNT_PORT
[pipeline:main]
pipeline = account-server
[app:account-server]
use = egg:swift#account
EOF
  cat >"$sw/container-server.conf" <<EOF
$common
bind_port = $CONTAINER_PORT
[pipeline:main]
pipeline = container-server
[app:container-server]
use = egg:swift#container
[container-updater]
interval = 10
EOF
  cat >"$sw/object-server.conf" <<EOF
$common
bind_port = $OBJECT_PORT
[pipeline:main]
pipeline = object-server
[app:object-server]
use = egg:swift#object
[object-updater]
interval = 10
EOF
  cat >"$sw/proxy-server.conf" <<EOF
$common
bind_port = $PROXY_PORT
[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats authtoken keystoneauth copy slo dlo versioned_writes proxy-logging proxy-server
[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
[filter:authtoken]
paste.filter_factory = keystonemiddleware.auth_token:filter_factory
www_authenticate_uri = http://127.0.0.1:$KEYSTONE_PORT/v3
auth_url = http://127.0.0.1:$KEYSTONE_PORT/v3
auth_type = password
project_domain_id = default
user_domain_id = default
project_name = service
username = swift
password = $SWIFT_SERVICE_PASSWORD
delay_auth_decision = true
# Needed for application credentials with access rules to be enforced (and allowed at all).
service_type = object-store
[filter:keystoneauth]
use = egg:swift#keystoneauth
operator_roles = admin, member, swiftoperator
[filter:cache]
# Every production proxy runs it: without it the proxy asks the account and container servers again on every
# request (a HEAD took 38 ms here, 12 ms with it), which a Ceph RGW or a deployed Swift does not.
use = egg:swift#memcache
memcache_servers = 127.0.0.1:$MEMCACHED_PORT
[filter:catch_errors]
use = egg:swift#catch_errors
[filter:gatekeeper]
use = egg:swift#gatekeeper
[filter:healthcheck]
use = egg:swift#healthcheck
[filter:proxy-logging]
use = egg:swift#proxy_logging
[filter:listing_formats]
use = egg:swift#listing_formats
[filter:copy]
use = egg:swift#copy
[filter:slo]
use = egg:swift#slo
[filter:dlo]
use = egg:swift#dlo
[filter:versioned_writes]
use = egg:swift#versioned_writes
allow_versioned_writes = true
EOF
}

build_rings() {
  local sw="$S/swift" kind port
  for kind in account container object; do
    case $kind in account) port=$ACCOUNT_PORT ;; container) port=$CONTAINER_PORT ;; object) port=$OBJECT_PORT ;; esac
    rm -f "$sw/$kind.builder" "$sw/$kind.ring.gz"
    # 2^0 partitions, 1 replica, 1 device: all the redundancy a loopback stand-in needs.
    swift-ring-builder "$sw/$kind.builder" create 0 1 1 >/dev/null
    swift-ring-builder "$sw/$kind.builder" add "r1z1-127.0.0.1:$port/d1" 100 >/dev/null
    swift-ring-builder "$sw/$kind.builder" rebalance >/dev/null || true # exit 1 = "balanced but warned"
  done
}

choose_ports() {
  # Ports are kept in ports.env; a port another program took since then is replaced, and rings and the
  # Keystone endpoint follow it.
  local KP=5000 PP=8080 OP=6200 CP=6201 AP=6202 FP=8090
  # shellcheck disable=SC1091
  [ -f "$S/ports.env" ] && . "$S/ports.env" && KP=$KEYSTONE_PORT PP=$PROXY_PORT OP=$OBJECT_PORT CP=$CONTAINER_PORT AP=$ACCOUNT_PORT FP=${FAULT_PROXY_PORT:-8090}
  local mine=() n
  for n in "${DAEMONS[@]}"; do pid_alive "$S/pids/$n.pid" && mine+=("$n"); done
  [ ${#mine[@]} -eq 0 ] || return 0 # something of ours runs: keep its ports
  KEYSTONE_PORT=$(pick_port "$KP")
  PROXY_PORT=$(pick_port "$PP" "$KEYSTONE_PORT")
  OBJECT_PORT=$(pick_port "$OP" "$KEYSTONE_PORT" "$PROXY_PORT")
  CONTAINER_PORT=$(pick_port "$CP" "$KEYSTONE_PORT" "$PROXY_PORT" "$OBJECT_PORT")
  ACCOUNT_PORT=$(pick_port "$AP" "$KEYSTONE_PORT" "$PROXY_PORT" "$OBJECT_PORT" "$CONTAINER_PORT")
  FAULT_PROXY_PORT=$(pick_port "$FP" "$KEYSTONE_PORT" "$PROXY_PORT" "$OBJECT_PORT" "$CONTAINER_PORT" "$ACCOUNT_PORT")
  if ports_env_set "$S/ports.env" "KEYSTONE_PORT=$KEYSTONE_PORT" "PROXY_PORT=$PROXY_PORT" "OBJECT_PORT=$OBJECT_PORT" \
    "CONTAINER_PORT=$CONTAINER_PORT" "ACCOUNT_PORT=$ACCOUNT_PORT" "FAULT_PROXY_PORT=$FAULT_PROXY_PORT"; then
    RINGS_STALE=1
  fi
}

cmd_up() {
  local t0=$SECONDS
  [ -x /usr/bin/keystone-manage ] && [ -x /usr/bin/swift-proxy-server ] && command -v uwsgi >/dev/null ||
    die "Keystone/Swift are not installed: run 'bash scripts/local-openstack.sh install' (as root) first"
  mkdir -p "$S"/{keystone/fernet-keys,keystone/credential-keys,swift,srv/d1,pids,logs,users}
  chmod 700 "$S"
  local n was_running=0
  for n in "${DAEMONS[@]}"; do pid_alive "$S/pids/$n.pid" && was_running=1; done
  RINGS_STALE=0
  choose_ports
  # shellcheck disable=SC1091
  . "$S/ports.env"
  if [ -z "${FAULT_PROXY_PORT:-}" ]; then # state from before the fault proxy existed
    FAULT_PROXY_PORT=$(pick_port 8090 "$KEYSTONE_PORT" "$PROXY_PORT" "$OBJECT_PORT" "$CONTAINER_PORT" "$ACCOUNT_PORT")
    ports_env_set "$S/ports.env" "FAULT_PROXY_PORT=$FAULT_PROXY_PORT" || true
  fi
  if [ -z "${MEMCACHED_PORT:-}" ] || { ! pid_alive "$S/pids/memcached.pid" && ! port_free "$MEMCACHED_PORT"; }; then
    # Not among the ports the rings name: a new one costs no ring rebuild.
    MEMCACHED_PORT=$(pick_port 11411 "$KEYSTONE_PORT" "$PROXY_PORT" "$OBJECT_PORT" "$CONTAINER_PORT" "$ACCOUNT_PORT" "$FAULT_PROXY_PORT")
    ports_env_set "$S/ports.env" "MEMCACHED_PORT=$MEMCACHED_PORT" || true
  fi

  # Generated secrets live in files of their own (mode 0600), never in argv.
  secret_file admin-password
  if [ ! -f "$S/swift-service-password" ] && [ -f "$S/env.json" ]; then # state from before this file existed
    (umask 077; "$PY" -c "import json,sys; print(json.load(open(sys.argv[1])).get('swiftServicePassword',''))" "$S/env.json" | grep . >"$S/swift-service-password") ||
      rm -f "$S/swift-service-password"
  fi
  secret_file swift-service-password
  SWIFT_SERVICE_PASSWORD=$(cat "$S/swift-service-password")

  # Swift first: its daemons need nothing from Keystone to start (the proxy asks Keystone per request), so they
  # load while Keystone does; this halves a warm start.
  [ -f "$S/swift/hash-suffix" ] || head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$S/swift/hash-suffix"
  # The proxies' cache (account and container info), on 127.0.0.1 only, no UDP.
  start_daemon memcached /usr/bin/memcached -l 127.0.0.1 -p "$MEMCACHED_PORT" -U 0 -m 64 -u root
  write_swift_confs
  if [ "$RINGS_STALE" = 1 ] || [ ! -f "$S/swift/object.ring.gz" ]; then build_rings; fi
  for n in account container object; do
    start_daemon "$n" "$PY" "$HERE/local-openstack/swift-launch.py" "$S/swift" "/usr/bin/swift-$n-server" "$S/swift/$n-server.conf" -v
  done
  # Listings and account counters lag without the updaters.
  start_daemon container-updater "$PY" "$HERE/local-openstack/swift-launch.py" "$S/swift" /usr/bin/swift-container-updater "$S/swift/container-server.conf" -v
  start_daemon object-updater "$PY" "$HERE/local-openstack/swift-launch.py" "$S/swift" /usr/bin/swift-object-updater "$S/swift/object-server.conf" -v
  launch_proxy proxy "$PROXY_PORT"
  # A second proxy on the same storage, for tests that kill a proxy mid-upload without disturbing the others.
  launch_proxy fault-proxy "$FAULT_PROXY_PORT"

  # Keystone
  write_keystone_conf
  local kconf="$S/keystone/keystone.conf"
  if [ ! -f "$S/keystone/.initialized" ]; then
    log "creating Keystone state (first start)"
    keystone-manage --config-file "$kconf" db_sync >>"$S/logs/keystone-manage.log" 2>&1
    # sqlite without WAL: concurrent writes fail with "database is locked" after 5 s.
    "$PY" -c "import sqlite3,sys; sqlite3.connect(sys.argv[1]).execute('PRAGMA journal_mode=WAL')" "$S/keystone/keystone.db"
    keystone-manage --config-file "$kconf" fernet_setup --keystone-user root --keystone-group root >>"$S/logs/keystone-manage.log" 2>&1
    keystone-manage --config-file "$kconf" credential_setup --keystone-user root --keystone-group root >>"$S/logs/keystone-manage.log" 2>&1
    touch "$S/keystone/.initialized"
  fi
  # bootstrap is idempotent but costs 2 s: rerun it only when Keystone's port (its catalog URL) changed.
  local stamp="$KEYSTONE_PORT $PROXY_PORT $FAULT_PROXY_PORT"
  if ! pid_alive "$S/pids/keystone.pid" && [ "$(cat "$S/keystone/.bootstrapped" 2>/dev/null)" != "$KEYSTONE_PORT" ]; then
    OS_BOOTSTRAP_PASSWORD=$(cat "$S/admin-password") keystone-manage --config-file "$kconf" bootstrap \
      --bootstrap-admin-url "http://127.0.0.1:$KEYSTONE_PORT/v3" \
      --bootstrap-public-url "http://127.0.0.1:$KEYSTONE_PORT/v3" \
      --bootstrap-internal-url "http://127.0.0.1:$KEYSTONE_PORT/v3" \
      --bootstrap-region-id "$REGION" >>"$S/logs/keystone-manage.log" 2>&1
    echo "$KEYSTONE_PORT" >"$S/keystone/.bootstrapped"
    rm -f "$S/.identity-done" # the catalog changed: let bootstrap.py check the endpoints again
  fi
  # One process (sqlite + in-memory cache); Connection: close because uwsgi's http-socket closes anyway and
  # clients that reuse the connection get "connection reset".
  OS_KEYSTONE_CONFIG_FILES="$kconf" start_daemon keystone uwsgi --http-socket "127.0.0.1:$KEYSTONE_PORT" \
    --plugin python3 --wsgi-file /usr/bin/keystone-wsgi-public --processes 1 --master \
    --add-header "Connection: close" --die-on-term --disable-logging
  wait_http "http://127.0.0.1:$KEYSTONE_PORT/v3" 60 || die "Keystone did not answer on port $KEYSTONE_PORT; see $S/logs/keystone.log"

  # Identity objects, endpoints, credentials -> env.json; skipped when nothing it depends on changed.
  if [ ! -f "$S/env.json" ] || [ "$(cat "$S/.identity-done" 2>/dev/null)" != "$stamp" ]; then
    ADMIN_PASSWORD=$(cat "$S/admin-password") SWIFT_SERVICE_PASSWORD=$SWIFT_SERVICE_PASSWORD \
      "$PY" "$HERE/local-openstack/bootstrap.py" "$S" "http://127.0.0.1:$KEYSTONE_PORT" "http://127.0.0.1:$PROXY_PORT" "http://127.0.0.1:$FAULT_PROXY_PORT" \
      2>>"$S/logs/bootstrap.log" || die "identity bootstrap failed; see $S/logs/bootstrap.log"
    echo "$stamp" >"$S/.identity-done"
  fi

  wait_proxy proxy "$PROXY_PORT"
  wait_proxy fault-proxy "$FAULT_PROXY_PORT"
  register_run "$was_running"
  log "up in $((SECONDS - t0))s: Keystone http://127.0.0.1:$KEYSTONE_PORT/v3, Swift http://127.0.0.1:$PROXY_PORT, region $REGION; client settings (with secrets) in $S/env.json"
}

register_run() { # was_running
  if [ -n "$RUN_PID" ]; then
    echo "$RUN_PID" >"$S/users/$RUN_PID"
    pid_stamp "$S/users/$RUN_PID"
    # Started by this test run: the watchdog stops it when no registered run is alive any more.
    [ "$1" = 1 ] || touch "$S/tests-owned"
    if [ -f "$S/tests-owned" ]; then start_daemon watchdog bash "$HERE/local-openstack.sh" watch "$S"; fi
  elif [ "$1" = 0 ]; then
    rm -f "$S/tests-owned" # started by hand: runs until `down`
  fi
}

launch_proxy() { # name, port
  local name=$1 port=$2 conf="$S/swift/$1-server.conf"
  [ "$name" = proxy ] || sed "s/^bind_port = .*/bind_port = $port/" "$S/swift/proxy-server.conf" >"$conf"
  start_daemon "$name" "$PY" "$HERE/local-openstack/swift-launch.py" "$S/swift" /usr/bin/swift-proxy-server "$conf" -v
}

wait_proxy() { # name, port
  local name=$1 port=$2
  wait_http "http://127.0.0.1:$port/healthcheck" 60 || die "Swift $name did not answer on port $port; see $S/logs/$name.log"
  local n
  for n in account container object; do
    local p; p=$(grep bind_port "$S/swift/$n-server.conf" | awk '{print $3}')
    local deadline=$((SECONDS + 30))
    until ! port_free "$p"; do [ $SECONDS -lt $deadline ] || die "swift $n server did not listen on $p; see $S/logs/$n.log"; sleep 0.2; done
  done
}

start_proxy() { launch_proxy "$1" "$2" && wait_proxy "$1" "$2"; }

live_runs() { # registered test runs still alive (dead ones are forgotten)
  local f pid
  for f in "$S"/users/*; do
    [ -e "$f" ] || continue
    case $f in *.start) continue ;; esac
    pid=${f##*/}
    # Each registration writes the run's stamp (pids.sh), so a recycled PID (another process) does not count.
    if pid_started_by "$pid" "$f"; then echo "$pid"; else rm -f "$f" "$f.start"; fi
  done
}

stop_all() {
  local n
  for n in fault-proxy proxy object-updater container-updater object container account keystone memcached; do stop_daemon "$n"; done
  rm -f "$S"/users/* "$S/tests-owned"
}

cmd_down() { # [--force]
  [ -d "$S/pids" ] || return 0
  rm -f "$S/users/$PPID" "$S/users/$PPID.start" # the caller, when it is a registered test run (the jest teardown)
  local others; others=$(live_runs | tr '\n' ' ')
  if [ -n "$others" ] && [ "${1:-}" != --force ]; then
    log "left running: still used by test run(s) with PID $others(down $S --force stops it anyway)"
    return 0
  fi
  stop_all
  stop_daemon watchdog
  log "stopped ($S)"
}

cmd_watch() { # the watchdog of a tests-owned stand-in (runs without the lock, takes it to act)
  while sleep 2; do
    [ -f "$S/tests-owned" ] || exit 0
    [ -n "$(live_runs)" ] && continue
    exec 9>"$S.lock"
    flock 9
    if [ -f "$S/tests-owned" ] && [ -z "$(live_runs)" ]; then
      stop_all
      log "stopped ($S): no test run uses it any more"
    fi
    rm -f "$S/pids/watchdog.pid" "$S/pids/watchdog.pid.start"
    exit 0
  done
}

cmd_register() {
  cmd_status >/dev/null || die "not running: use up"
  register_run 1
}

DAEMONS=(keystone proxy fault-proxy account container object container-updater object-updater memcached)

cmd_status() {
  local n any=1
  for n in "${DAEMONS[@]}"; do
    if pid_alive "$S/pids/$n.pid"; then echo "$n: running (pid $(cat "$S/pids/$n.pid"))"; else echo "$n: stopped"; any=0; fi
  done
  [ -f "$S/ports.env" ] && tr '\n' ' ' <"$S/ports.env" && echo
  if [ -f "$S/tests-owned" ]; then echo "started by a test run; in use by: $(live_runs | tr '\n' ' ')"; fi
  [ $any = 1 ]
}

main() {
  local cmd=${1:-}
  case $cmd in
    install) exec bash "$HERE/system-deps.sh" ;;
    up | down | status | stop-proxy | start-proxy | restart-proxy | register | watch) ;;
    *) die "usage: $0 install | up|down [--force]|status|stop-proxy|start-proxy|restart-proxy STATE_DIR" ;;
  esac
  [ -n "${2:-}" ] || die "$cmd needs a state directory"
  mkdir -p "$2"
  S=$(cd "$2" && pwd)
  RUN_PID=${LOCAL_OPENSTACK_RUN_PID:-}
  [ "$cmd" = watch ] && { cmd_watch; return; }
  # One harness action at a time per state dir: two test workers may call `up` at once.
  exec 9>"$S.lock"
  flock 9
  case $cmd in
    up) cmd_up ;;
    down) cmd_down "${3:-}" ;;
    status) cmd_status ;;
    register) cmd_register ;;
    # Fault injection acts on the second proxy only (env.json: faultSwiftUrl); the main one keeps serving.
    stop-proxy) stop_daemon fault-proxy ;;
    start-proxy) . "$S/ports.env" && start_proxy fault-proxy "$FAULT_PROXY_PORT" ;;
    restart-proxy) stop_daemon fault-proxy && . "$S/ports.env" && start_proxy fault-proxy "$FAULT_PROXY_PORT" ;;
  esac
}

main "$@"
