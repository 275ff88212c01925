#!/usr/bin/env bash
# A local KVM@TACC from Debian 12's own OpenStack packages (issue 12), beside the project's Keystone + Swift
# (scripts/local-openstack.sh), which it registers its services in.
#
#   local-cloud.sh install               apt-install what is missing (scripts/local-cloud/deps.sh)
#   local-cloud.sh up     STATE_DIR      start (first time: create databases and networks; later: reuse them)
#   local-cloud.sh down   STATE_DIR      stop every daemon this state dir started, by PID; remove its netns/bridges
#   local-cloud.sh status STATE_DIR      which daemons run, and where
#
# CLOUD_VIRT=libvirt (default: nova-compute drives a libvirtd of this state dir, qemu in TCG) or fake (Nova's
# fake driver: servers go ACTIVE with no VM). Changing it restarts nova-compute.
# KEYSTONE_STATE (default .stand-ins/openstack) is the Keystone + Swift state dir; it must be up.
# Everything else lives in STATE_DIR: configs (etc/), MariaDB's datadir and socket (no TCP), RabbitMQ's mnesia,
# Glance's images, Nova/Neutron state, logs/, pids/, ports.env, secrets (mode 0600) and cloud.json. Nothing under
# /etc is read or written: each daemon is given its config files on the command line or in its environment.
# Every API listens on 127.0.0.1 only, on a free port picked at first start and kept in ports.env.
# Facts behind each setting: docs/local-cloud.md.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PY=/usr/bin/python3 # Debian's python, which has the OpenStack modules; `python3` on PATH may be another one.
REGION='KVM@TACC'

die() { echo "local-cloud: $*" >&2; exit 1; }
log() { echo "local-cloud: $*" >&2; }

# shellcheck source=harness-lib.sh
. "$HERE/harness-lib.sh" # port_free, pick_port, wait_http, start_daemon, stop_daemon, secret_file, pid_alive

AGENTS=(neutron-linuxbridge-agent neutron-dhcp-agent neutron-l3-agent neutron-metadata-agent)
OUTSIDE=(archive-proxy files ns-forward) # what the guests and the "laptop" namespace see as the internet
DAEMONS=(epmd rabbitmq mariadb libvirtd glance-api placement-api nova-api nova-conductor nova-scheduler nova-compute neutron-server "${AGENTS[@]}" "${OUTSIDE[@]}")
DBS=(glance placement nova_api nova nova_cell0 neutron)

service() { # name, config files... -- command...: start it, restarting it first if its config changed
  local name=$1; shift
  local files=()
  while [ "$1" != -- ]; do files+=("$1"); shift; done
  shift
  local sum; sum=$(cat "${files[@]}" | sha256sum | cut -c1-16)
  if pid_alive "$S/pids/$name.pid" && [ "$(cat "$S/pids/$name.conf-sum" 2>/dev/null)" != "$sum" ]; then
    log "$name: config changed, restarting"
    stop_daemon "$name"
  fi
  pid_alive "$S/pids/$name.pid" || START_T0[$name]=$SECONDS
  start_daemon "$name" "$@"
  echo "$sum" >"$S/pids/$name.conf-sum"
}

timing() { echo "$1 $2" >>"$S/logs/startup-times.txt"; } # name, seconds (for docs/local-cloud.md's table)

mysql_sock() { echo "$S/mysql/mysqld.sock"; }
db_url() { echo "mysql+pymysql://openstack:$(cat "$S/db-password")@localhost/$1?unix_socket=$(mysql_sock)"; }
mysql_root() { mariadb --no-defaults --socket="$(mysql_sock)" -uroot "$@"; }

choose_ports() {
  local names=(EPMD_PORT RABBIT_PORT RABBIT_DIST_PORT GLANCE_PORT PLACEMENT_PORT NOVA_PORT METADATA_PORT NEUTRON_PORT FILES_PORT ARCHIVE_PORT)
  local prefs=(4370 5673 25673 9292 8778 8774 8775 9696 8070 3142)
  # shellcheck disable=SC1091
  [ -f "$S/ports.env" ] && . "$S/ports.env"
  local n running=0
  for n in "${DAEMONS[@]}"; do pid_alive "$S/pids/$n.pid" && running=1; done
  if [ $running = 1 ] && [ -f "$S/ports.env" ]; then return 0; fi # something of ours runs: keep its ports
  local chosen=() i v out=""
  for i in "${!names[@]}"; do
    v=${!names[$i]:-${prefs[$i]}}
    v=$(pick_port "$v" "${chosen[@]}")
    chosen+=("$v")
    printf -v "${names[$i]}" %s "$v"
    out+="${names[$i]}=$v"$'\n'
  done
  printf %s "$out" >"$S/ports.env"
}

# ---------------------------------------------------------------------------------------------------- MariaDB
start_mariadb() {
  local t0=$SECONDS
  if [ ! -d "$S/mysql/data/mysql" ]; then
    log "creating MariaDB datadir (first start)"
    mariadb-install-db --no-defaults --datadir="$S/mysql/data" --user=root --auth-root-authentication-method=socket \
      --skip-test-db >>"$S/logs/mariadb-install.log" 2>&1 || die "mariadb-install-db failed; see $S/logs/mariadb-install.log"
  fi
  # No TCP at all: the services reach it through the socket in STATE_DIR. Small buffers: 6 tiny databases.
  start_daemon mariadb /usr/sbin/mariadbd --no-defaults --datadir="$S/mysql/data" --socket="$(mysql_sock)" \
    --pid-file="$S/mysql/mariadbd.pid" --skip-networking --user=root --innodb-buffer-pool-size=64M \
    --performance-schema=OFF --skip-log-bin --innodb-flush-log-at-trx-commit=2 --max-connections=300 \
    --character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci
  local deadline=$((SECONDS + 60))
  until mysql_root -e 'select 1' >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || die "MariaDB did not answer; see $S/logs/mariadb.log"
    pid_alive "$S/pids/mariadb.pid" || die "MariaDB exited; see $S/logs/mariadb.log"
    sleep 0.3
  done
  if [ ! -f "$S/mysql/.users-done" ]; then
    local pw d sql=""; pw=$(cat "$S/db-password")
    for d in "${DBS[@]}"; do sql+="CREATE DATABASE IF NOT EXISTS $d; "; done
    sql+="CREATE USER IF NOT EXISTS 'openstack'@'localhost' IDENTIFIED BY '$pw'; "
    for d in "${DBS[@]}"; do sql+="GRANT ALL ON $d.* TO 'openstack'@'localhost'; "; done
    mysql_root -e "$sql"
    touch "$S/mysql/.users-done"
  fi
  timing mariadb $((SECONDS - t0))
}

# --------------------------------------------------------------------------------------------------- RabbitMQ
rabbit_env() { # the environment every rabbitmq/erlang command of this state dir runs with
  export HOME="$S/rabbitmq" # the erlang cookie
  export RABBITMQ_NODENAME="cc$TAG@localhost" RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT=$RABBIT_PORT \
    RABBITMQ_DIST_PORT=$RABBIT_DIST_PORT ERL_EPMD_PORT=$EPMD_PORT ERL_EPMD_ADDRESS=127.0.0.1 \
    RABBITMQ_MNESIA_BASE="$S/rabbitmq/mnesia" RABBITMQ_LOG_BASE="$S/logs/rabbitmq" \
    RABBITMQ_CONFIG_FILE="$S/rabbitmq/rabbitmq.conf" RABBITMQ_ENABLED_PLUGINS_FILE="$S/rabbitmq/enabled_plugins" \
    RABBITMQ_CONF_ENV_FILE="$S/rabbitmq/rabbitmq-env.conf" RABBITMQ_ADVANCED_CONFIG_FILE="$S/rabbitmq/advanced.config" \
    RABBITMQ_PID_FILE="$S/rabbitmq/rabbitmq.pid" RABBITMQ_LOGS=- \
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="+S 1:1 +A 2 -kernel inet_dist_use_interface {127,0,0,1}"
}

start_rabbitmq() {
  local t0=$SECONDS
  mkdir -p "$S/rabbitmq/mnesia" "$S/logs/rabbitmq"
  [ -f "$S/rabbitmq/.erlang.cookie" ] || (umask 077; head -c 15 /dev/urandom | base64 | tr -dc 'A-Za-z' >"$S/rabbitmq/.erlang.cookie")
  echo '[].' >"$S/rabbitmq/enabled_plugins"
  : >"$S/rabbitmq/rabbitmq-env.conf"
  echo '[].' >"$S/rabbitmq/advanced.config"
  (umask 077; cat >"$S/rabbitmq/rabbitmq.conf" <<EOF
listeners.tcp.1 = 127.0.0.1:$RABBIT_PORT
default_user = openstack
default_pass = $(cat "$S/rabbit-password")
loopback_users = none
# 24 GiB shared by four engineers: do not let the broker's watermark think it owns the machine.
vm_memory_high_watermark.absolute = 512MiB
disk_free_limit.absolute = 200MB
EOF
  )
  # epmd is started here, by PID, on its own port: erl would otherwise fork one that nobody stops.
  (rabbit_env && start_daemon epmd epmd -port "$EPMD_PORT" -address 127.0.0.1 &&
    start_daemon rabbitmq /usr/lib/rabbitmq/bin/rabbitmq-server)
  START_T0[rabbitmq]=$t0
}

wait_rabbitmq() { # RabbitMQ's boot takes ~50 s on this loaded machine: Glance, Placement and Neutron start meanwhile
  local t0=${START_T0[rabbitmq]:-$SECONDS} deadline=$((SECONDS + 180))
  until ! port_free "$RABBIT_PORT"; do
    [ $SECONDS -lt $deadline ] || die "RabbitMQ did not listen on $RABBIT_PORT; see $S/logs/rabbitmq.log"
    pid_alive "$S/pids/rabbitmq.pid" || die "RabbitMQ exited; see $S/logs/rabbitmq.log"
    sleep 0.5
  done
  timing rabbitmq $((SECONDS - t0))
}

transport_url() { echo "rabbit://openstack:$(cat "$S/rabbit-password")@127.0.0.1:$RABBIT_PORT/"; }

authtoken() { # [keystone_authtoken] for service $1, and its policy files (defaults: none in STATE_DIR)
  mkdir -p "$S/etc/$1/policy.d" # empty: an empty policy_dirs would be read as the config dir itself
  cat <<EOF
[oslo_policy]
# Without these, oslo.policy looks for policy.yaml and policy.d/ in /etc/$1 too.
policy_file = $S/etc/$1/policy.yaml
policy_dirs = $S/etc/$1/policy.d
EOF
  svc_auth keystone_authtoken "$1"
  echo "www_authenticate_uri = $KEYSTONE_URL/v3"
}

svc_auth() { # [section] with keystoneauth password options for service user $2
  cat <<EOF
[$1]
auth_url = $KEYSTONE_URL/v3
auth_type = password
project_domain_name = Default
user_domain_name = Default
project_name = service
username = $2
password = $(cat "$S/$2-password")
region_name = $REGION
EOF
}

# ----------------------------------------------------------------------------------------------------- Glance
write_glance_conf() {
  mkdir -p "$S/etc/glance" "$S/glance/images" "$S/glance/staging" "$S/glance/locks"
  cp /usr/share/glance-common/glance-api-paste.ini "$S/etc/glance/glance-api-paste.ini" # the package's pristine copy
  (umask 077; cat >"$S/etc/glance/glance-api.conf" <<EOF
[DEFAULT]
bind_host = 127.0.0.1
bind_port = $GLANCE_PORT
workers = 1
node_staging_uri = file://$S/glance/staging
image_cache_dir = $S/glance/cache
enabled_import_methods = [glance-direct,web-download]
[database]
connection = $(db_url glance)
[glance_store]
stores = file
default_store = file
filesystem_store_datadir = $S/glance/images
[paste_deploy]
flavor = keystone
config_file = $S/etc/glance/glance-api-paste.ini
[oslo_concurrency]
lock_path = $S/glance/locks
$(authtoken glance)
EOF
  )
}

start_glance() {
  local t0=$SECONDS conf="$S/etc/glance/glance-api.conf"
  write_glance_conf
  if [ ! -f "$S/glance/.db-done" ]; then
    glance-manage --config-file "$conf" db_sync >>"$S/logs/glance-manage.log" 2>&1 || die "glance db_sync failed; see $S/logs/glance-manage.log"
    touch "$S/glance/.db-done"
  fi
  service glance-api "$conf" "$S/etc/glance/glance-api-paste.ini" -- glance-api --config-file "$conf"
}

# -------------------------------------------------------------------------------------------------- Placement
start_placement() {
  local t0=$SECONDS
  mkdir -p "$S/etc/placement"
  (umask 077; cat >"$S/etc/placement/placement.conf" <<EOF
[api]
auth_strategy = keystone
[placement_database]
connection = $(db_url placement)
$(authtoken placement)
EOF
  )
  if [ ! -f "$S/etc/placement/.db-done" ]; then
    placement-manage --config-file "$S/etc/placement/placement.conf" db sync >>"$S/logs/placement-manage.log" 2>&1 ||
      die "placement db sync failed; see $S/logs/placement-manage.log"
    touch "$S/etc/placement/.db-done"
  fi
  # Placement's WSGI app reads OS_PLACEMENT_CONFIG_DIR/placement.conf; one uwsgi process, as Keystone runs.
  OS_PLACEMENT_CONFIG_DIR="$S/etc/placement" service placement-api "$S/etc/placement/placement.conf" -- uwsgi --http-socket "127.0.0.1:$PLACEMENT_PORT" \
    --plugin python3 --wsgi-file /usr/bin/placement-api --processes 1 --master --die-on-term \
    --add-header "Connection: close" --disable-logging
}

# ------------------------------------------------------------------------------------------------------- Nova
write_nova_conf() {
  mkdir -p "$S/etc/nova" "$S/nova/instances" "$S/nova/locks"
  cp /etc/nova/api-paste.ini "$S/etc/nova/api-paste.ini" # the package's file, copied: /etc is not used at run time
  (umask 077; cat >"$S/etc/nova/nova.conf" <<EOF
[DEFAULT]
transport_url = $(transport_url)
state_path = $S/nova
instances_path = $S/nova/instances
my_ip = 127.0.0.1
host = cc-kvm-$TAG
enabled_apis = osapi_compute,metadata
osapi_compute_listen = 127.0.0.1
osapi_compute_listen_port = $NOVA_PORT
osapi_compute_workers = 1
metadata_listen = 127.0.0.1
metadata_listen_port = $METADATA_PORT
metadata_workers = 1
compute_driver = $([ "$VIRT" = libvirt ] && echo libvirt.LibvirtDriver || echo fake.FakeDriver)
# A guest's disk is a qcow2 overlay of the cached image, not a 20 GB raw copy made under TCG at every boot.
force_raw_images = false
[api]
auth_strategy = keystone
# The outside world as a guest sees it here (write_vendor_data): Chameleon's images need none of it.
vendordata_providers = StaticJSON
vendordata_jsonfile_path = $S/etc/nova/vendor_data.json
[api_database]
connection = $(db_url nova_api)
[database]
connection = $(db_url nova)
[conductor]
workers = 1
[scheduler]
workers = 1
# A new compute host is mapped to cell1 by the scheduler, without a nova-manage call.
discover_hosts_in_cells_interval = 10
[wsgi]
api_paste_config = $S/etc/nova/api-paste.ini
[oslo_concurrency]
lock_path = $S/nova/locks
[glance]
region_name = $REGION
[libvirt]
# TCG: /dev/kvm answers its ioctls here but runs no guest (docs/local-cloud.md).
virt_type = qemu
cpu_mode = none
connection_uri = qemu+unix:///system?socket=$S/libvirt/run/libvirt-sock
[vnc]
enabled = false
[neutron]
region_name = $REGION
auth_url = $KEYSTONE_URL/v3
auth_type = password
project_domain_name = Default
user_domain_name = Default
project_name = service
username = neutron
password = $(cat "$S/neutron-password")
service_metadata_proxy = true
metadata_proxy_shared_secret = $(cat "$S/metadata-secret")
$(svc_auth placement placement)
$(svc_auth service_user nova)
send_service_user_token = true
$(authtoken nova)
EOF
  )
}

# libvirtd, as root, uses /etc/libvirt, /run/libvirt, /var/lib/libvirt, /var/log/libvirt and /var/cache/libvirt. It
# runs here in a private mount namespace with those five bind-mounted from STATE_DIR/libvirt, so the host's are
# untouched; nova-compute reaches it through the socket's path in STATE_DIR. No systemd here: started by PID.
start_libvirtd() {
  local L="$S/libvirt" d
  if [ ! -d "$L/etc" ]; then
    mkdir -p "$L"
    cp -a /etc/libvirt "$L/etc" # the package's files, copied once
    rm -f "$L"/etc/qemu/networks/autostart/* # never start libvirt's NAT network (virbr0)
    cat >>"$L/etc/qemu.conf" <<EOF
# local-cloud.sh: no virtlogd (qemu's output goes to a file), qemu as root (the state dir is mode 0700)
stdio_handler = "file"
user = "root"
group = "root"
EOF
  fi
  for d in run lib log cache; do mkdir -p "$L/$d"; done
  cat >"$L/start.sh" <<EOF
set -e
mount --make-rprivate /
for m in etc:/etc/libvirt run:/run/libvirt lib:/var/lib/libvirt log:/var/log/libvirt cache:/var/cache/libvirt; do
  mkdir -p "\${m#*:}"; mount --bind "$L/\${m%%:*}" "\${m#*:}"
done
exec libvirtd
EOF
  # unshare without --fork execs: the PID recorded is libvirtd's.
  START_T0[libvirtd]=$SECONDS
  start_daemon libvirtd unshare --mount bash "$L/start.sh"
  local deadline=$((SECONDS + 60))
  until [ -S "$L/run/libvirt-sock" ] && virsh -c "qemu+unix:///system?socket=$L/run/libvirt-sock" version >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || die "libvirtd did not answer; see $S/logs/libvirtd.log"
    pid_alive "$S/pids/libvirtd.pid" || die "libvirtd exited; see $S/logs/libvirtd.log"
    sleep 0.3
  done
  timing libvirtd $((SECONDS - START_T0[libvirtd]))
}

nova_manage() { nova-manage --config-file "$S/etc/nova/nova.conf" "$@" >>"$S/logs/nova-manage.log" 2>&1; }

start_nova() {
  local t0=$SECONDS conf="$S/etc/nova/nova.conf"
  write_nova_conf
  write_vendor_data
  if [ ! -f "$S/nova/.db-done" ]; then
    log "creating Nova's databases and cells (first start)"
    nova_manage api_db sync || die "nova api_db sync failed; see $S/logs/nova-manage.log"
    nova_manage cell_v2 map_cell0 --database_connection "$(db_url nova_cell0)" || die "map_cell0 failed"
    nova_manage cell_v2 list_cells | grep -q ' cell1 ' || nova_manage cell_v2 create_cell --name cell1 || die "create_cell failed"
    nova_manage db sync || die "nova db sync failed; see $S/logs/nova-manage.log"
    touch "$S/nova/.db-done"
  fi
  timing nova-db $((SECONDS - t0))
  [ "$VIRT" = libvirt ] && start_libvirtd
  t0=$SECONDS
  local n
  # Only nova-api serves the vendor data (metadata API): a change to it restarts nothing else.
  service nova-api "$conf" "$S/etc/nova/api-paste.ini" "$S/etc/nova/vendor_data.json" -- nova-api --config-file "$conf"
  for n in conductor scheduler compute; do
    service "nova-$n" "$conf" "$S/etc/nova/api-paste.ini" -- "nova-$n" --config-file "$conf"
  done
}

# ---------------------------------------------------------------------------------------------------- Neutron
write_neutron_conf() {
  mkdir -p "$S/etc/neutron/plugins/ml2" "$S/neutron/locks"
  cp /etc/neutron/api-paste.ini "$S/etc/neutron/api-paste.ini"
  (umask 077; cat >"$S/etc/neutron/neutron.conf" <<EOF
[DEFAULT]
# The agents' host must be nova-compute's: a port binds to the host its server runs on.
host = cc-kvm-$TAG
core_plugin = ml2
service_plugins = router
bind_host = 127.0.0.1
bind_port = $NEUTRON_PORT
api_workers = 1
rpc_workers = 1
rpc_state_report_workers = 1
transport_url = $(transport_url)
auth_strategy = keystone
state_path = $S/neutron
api_paste_config = $S/etc/neutron/api-paste.ini
notify_nova_on_port_status_changes = true
notify_nova_on_port_data_changes = true
[database]
connection = $(db_url neutron)
[oslo_concurrency]
lock_path = $S/neutron/locks
[experimental]
# Zed marks the linuxbridge mechanism driver experimental; openvswitch needs a kernel module this host lacks.
linuxbridge = true
[agent]
# The agents run as root already; no sudo/rootwrap (and so no /etc/neutron/rootwrap.conf).
root_helper =
$(svc_auth nova nova)
$(authtoken neutron)
EOF
  )
  cat >"$S/etc/neutron/plugins/ml2/ml2_conf.ini" <<EOF
[ml2]
type_drivers = flat,vxlan
tenant_network_types = vxlan
mechanism_drivers = linuxbridge
extension_drivers = port_security
[ml2_type_flat]
flat_networks = physnet1,public
[ml2_type_vxlan]
vni_ranges = 1:1000
[securitygroup]
enable_security_group = true
firewall_driver = iptables
EOF
  cat >"$S/etc/neutron/plugins/ml2/linuxbridge_agent.ini" <<EOF
[linux_bridge]
# Each physnet is a veth: public's peer is the gateway in netns $EXT_NS; physnet1's (sharednet1) sits unused in
# $SN_NS. The agent then puts every port of a network, the guest's tap included, into its own brq<net id> bridge.
physical_interface_mappings = public:$PUB_IF,physnet1:$SN_IF
[vxlan]
enable_vxlan = false
[securitygroup]
enable_security_group = true
firewall_driver = iptables
EOF
  # dnsmasq drops to "nobody" after it starts, and then cannot reread its hosts file under the 0700 state dir
  # when a port is added (SIGHUP): it keeps serving only the ports it knew at start, and a new guest's DHCP
  # requests go unanswered. Kept as root, as every daemon of this harness runs.
  echo 'user=root' >"$S/etc/neutron/dnsmasq.conf"
  cat >"$S/etc/neutron/dhcp_agent.ini" <<EOF
[DEFAULT]
interface_driver = linuxbridge
dnsmasq_config_file = $S/etc/neutron/dnsmasq.conf
enable_isolated_metadata = true
force_metadata = true
EOF
  cat >"$S/etc/neutron/l3_agent.ini" <<EOF
[DEFAULT]
interface_driver = linuxbridge
EOF
  (umask 077; cat >"$S/etc/neutron/metadata_agent.ini" <<EOF
[DEFAULT]
nova_metadata_host = 127.0.0.1
nova_metadata_port = $METADATA_PORT
metadata_proxy_shared_secret = $(cat "$S/metadata-secret")
metadata_workers = 1
EOF
  )
}

# The wiring the agents plug into. Names carry this state dir's tag; nothing gets an address in the root
# namespace, so it has no route to the floating range ($PUBLIC_CIDR) or to sharednet1 (10.56.0.0/22).
#   $EXT_NS  the outside: the public network's gateway ($PUBLIC_GW), where the user's commands and ssh run
#   $FAR_NS  another outside host ($FAR_ADDR, routed through $EXT_NS): an address outside ssh.allowedCidr
#   $SN_NS   holds the unused peer of sharednet1's veth (this kernel has no dummy interfaces)
net_up() {
  local ns
  for ns in "$EXT_NS" "$FAR_NS" "$SN_NS"; do
    ip netns list | grep -qw "$ns" || ip netns add "$ns"
    ip -n "$ns" link set lo up
  done
  # An earlier layout used a bridge of ours for sharednet1: the guest's tap then landed in a bridge of its own.
  if ip -d link show "$SN_IF" 2>/dev/null | grep -qw bridge; then ip link del "$SN_IF"; fi
  ip link show "$PUB_IF" >/dev/null 2>&1 || ip link add "$PUB_IF" type veth peer name "$GW_IF" netns "$EXT_NS"
  ip link show "$SN_IF" >/dev/null 2>&1 || ip link add "$SN_IF" type veth peer name "$SP_IF" netns "$SN_NS"
  ip -n "$EXT_NS" link show "$FX_IF" >/dev/null 2>&1 || ip -n "$EXT_NS" link add "$FX_IF" type veth peer name "$FF_IF" netns "$FAR_NS"
  ip -n "$EXT_NS" addr replace "$PUBLIC_GW/24" dev "$GW_IF"
  ip -n "$EXT_NS" addr replace "${FAR_ADDR%.*}.1/24" dev "$FX_IF"
  ip -n "$FAR_NS" addr replace "$FAR_ADDR/24" dev "$FF_IF"
  local i
  for i in "$GW_IF" "$FX_IF"; do ip -n "$EXT_NS" link set "$i" up; done
  ip -n "$FAR_NS" link set "$FF_IF" up
  ip -n "$FAR_NS" route replace default via "${FAR_ADDR%.*}.1"
  ip -n "$SN_NS" link set "$SP_IF" up
  ip netns exec "$EXT_NS" sysctl -qw net.ipv4.ip_forward=1 # between the far host and the floating IPs only
  for i in "$PUB_IF" "$SN_IF"; do
    sysctl -qw "net.ipv6.conf.$i.disable_ipv6=1" # not even a link-local route in the root namespace
    ip link set "$i" up
  done
}

# What a guest and the outside namespaces see of the root namespace: Keystone, Swift and the cloud's APIs, a
# file server standing in for the dataset's web site ($S/www), and Debian's archive through a proxy that reaches
# nothing else. All listen on 127.0.0.1; ns-forward shows exactly these ports inside $EXT_NS.
start_outside() {
  mkdir -p "$S/www"
  start_daemon archive-proxy "$PY" "$HERE/local-cloud/archive-proxy.py" "$ARCHIVE_PORT" "$S/logs/archive-requests.log"
  start_daemon files "$PY" -m http.server "$FILES_PORT" --bind 127.0.0.1 --directory "$S/www"
  local ports="$KEYSTONE_PORT $SWIFT_PORTS $GLANCE_PORT $NOVA_PORT $NEUTRON_PORT $FILES_PORT $ARCHIVE_PORT"
  echo "$ports" >"$S/etc/ns-forward.ports"
  # shellcheck disable=SC2086
  service ns-forward "$S/etc/ns-forward.ports" -- "$PY" "$HERE/local-cloud/ns-forward.py" "$EXT_NS" $ports
}

# Nova's vendor data (StaticJSON), which cloud-init merges under the user's own cloud-config: apt goes through
# the archive proxy, and the guest's 127.0.0.1:<port> reaches Keystone, Swift and the file server, because the
# catalog, rclone.conf and the dataset URL name them as the root namespace does (the VM test does the same with
# qemu's 10.0.2.2: scripts/local-vm/host-loopback.sh, reused here with another target).
write_vendor_data() {
  HOST_LOOPBACK_SCRIPT="$HERE/local-vm/host-loopback.sh" TARGET="$PUBLIC_GW" ARCHIVE="http://$PUBLIC_GW:$ARCHIVE_PORT" \
    "$PY" - "$S/etc/nova/vendor_data.json" "$KEYSTONE_PORT" $SWIFT_PORTS "$FILES_PORT" <<'PY'
import json, os, sys
out, ports = sys.argv[1], sys.argv[2:]
script = open(os.environ["HOST_LOOPBACK_SCRIPT"]).read()
config = {
    "apt": {"http_proxy": os.environ["ARCHIVE"]},
    # bootcmd runs before sysinit.target is reached: the script must not wait for the sockets it starts.
    "bootcmd": [["env", "HOST_LOOPBACK_TARGET=" + os.environ["TARGET"], "HOST_LOOPBACK_NO_BLOCK=1",
                 "bash", "-c", script, "host-loopback", *ports]],
}
with open(out + ".tmp", "w") as f:
    json.dump({"cloud-init": "#cloud-config\n" + json.dumps(config)}, f)
os.replace(out + ".tmp", out)
PY
}

net_down() { # what this state dir's networks and router made (ids in cloud.json), then our own devices
  local ids="" id f pids
  # dnsmasq and haproxy (metadata proxies) are daemons the DHCP and L3 agents forked; they outlive the agents and
  # keep the namespaces (and the taps' peers) alive. They are known by their arguments, which name files under
  # STATE_DIR/neutron (--pid-file, -f <conf>): by their self-written pid files (pid_alive's wall-clock rule), a
  # `down` once left all three of a run running.
  pids=$(state_dir_procs "$S" dnsmasq haproxy)
  if [ -n "$pids" ]; then
    # shellcheck disable=SC2086
    kill -TERM $pids 2>/dev/null || true
    for _ in $(seq 50); do
      pids=$(state_dir_procs "$S" dnsmasq haproxy)
      [ -n "$pids" ] || break
      sleep 0.1
    done
    # shellcheck disable=SC2086
    [ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
  fi
  [ -f "$S/cloud.json" ] && ids=$("$PY" -c "import json,sys; d=json.load(open(sys.argv[1])); print(d['sharednet1'], d['public'], d['routerId'])" "$S/cloud.json")
  for id in $ids; do
    ip netns del "qdhcp-$id" 2>/dev/null || true
    ip netns del "qrouter-$id" 2>/dev/null || true
    ip link del "brq${id:0:11}" 2>/dev/null || true
  done
  ip link del "$PUB_IF" 2>/dev/null || true
  ip link del "$SN_IF" 2>/dev/null || true
  for id in "$EXT_NS" "$FAR_NS" "$SN_NS"; do ip netns del "$id" 2>/dev/null || true; done
  # libvirtd makes a "machine" cgroup in each v1 hierarchy; remove the empty ones when no libvirtd runs.
  if ! pgrep -x libvirtd >/dev/null; then
    for f in /sys/fs/cgroup/*/machine; do
      [ -d "$f" ] && find "$f" -depth -type d -exec rmdir {} \; 2>/dev/null || true
    done
  fi
  # The linuxbridge agent's iptables firewall leaves its base chains in the root namespace (raw, filter). They are
  # named after the agent's binary, not after this state dir, so remove them only when no linuxbridge agent runs.
  if ! pgrep -f neutron-linuxbridge-agent >/dev/null; then
    local t rule chain
    for t in raw filter mangle nat; do
      # grep finds nothing in a table the agent never used: under pipefail that must not end `down` (set -e).
      { iptables -t "$t" -S 2>/dev/null | grep -E '^-A [A-Z]+ .*-j neutron-' || true; } | while read -r rule; do
        eval "iptables -t $t ${rule/-A /-D }" 2>/dev/null || true
      done
      for chain in $(iptables -t "$t" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^neutron-/ {print $2}'); do
        iptables -t "$t" -F "$chain" 2>/dev/null || true
      done
      for chain in $(iptables -t "$t" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^neutron-/ {print $2}'); do
        iptables -t "$t" -X "$chain" 2>/dev/null || true
      done
    done
  fi
}

start_agents() {
  local conf="$S/etc/neutron/neutron.conf" lb="$S/etc/neutron/plugins/ml2/linuxbridge_agent.ini" a
  net_up
  start_outside
  service neutron-linuxbridge-agent "$conf" "$lb" -- neutron-linuxbridge-agent --config-file "$conf" --config-file "$lb"
  for a in dhcp l3 metadata; do
    service "neutron-$a-agent" "$conf" "$S/etc/neutron/${a}_agent.ini" -- "neutron-$a-agent" --config-file "$conf" --config-file "$S/etc/neutron/${a}_agent.ini"
  done
}

start_neutron() {
  local t0=$SECONDS conf="$S/etc/neutron/neutron.conf" ml2="$S/etc/neutron/plugins/ml2/ml2_conf.ini"
  write_neutron_conf
  if [ ! -f "$S/neutron/.db-done" ]; then
    log "creating Neutron's database (first start)"
    neutron-db-manage --config-file "$conf" --config-file "$ml2" upgrade heads >>"$S/logs/neutron-db-manage.log" 2>&1 ||
      die "neutron-db-manage failed; see $S/logs/neutron-db-manage.log"
    touch "$S/neutron/.db-done"
  fi
  timing neutron-db $((SECONDS - t0))
  service neutron-server "$conf" "$ml2" "$S/etc/neutron/api-paste.ini" -- neutron-server --config-file "$conf" --config-file "$ml2"
}

# ----------------------------------------------------------------------------------------------------- up/down
register_services() {
  local stamp="2 $KEYSTONE_URL $GLANCE_PORT $PLACEMENT_PORT $NOVA_PORT $NEUTRON_PORT"
  [ "$(cat "$S/.registered" 2>/dev/null)" = "$stamp" ] && return 0
  ADMIN_PASSWORD=$ADMIN_PASSWORD GLANCE_PASSWORD=$(cat "$S/glance-password") PLACEMENT_PASSWORD=$(cat "$S/placement-password") \
    NOVA_PASSWORD=$(cat "$S/nova-password") NEUTRON_PASSWORD=$(cat "$S/neutron-password") \
    "$PY" "$HERE/local-cloud/register.py" "$KEYSTONE_URL" "http://127.0.0.1:$GLANCE_PORT" \
    "http://127.0.0.1:$PLACEMENT_PORT" "http://127.0.0.1:$NOVA_PORT/v2.1" "http://127.0.0.1:$NEUTRON_PORT" \
    2>>"$S/logs/register.log" || die "Keystone registration failed; see $S/logs/register.log"
  echo "$stamp" >"$S/.registered"
}

wait_api() { # name, url: until it answers with a status below 500 (a 500 is a failed app load, not "up")
  local deadline=$((SECONDS + 180)) code
  while :; do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$2" || true)
    [ "$code" != 000 ] && [ "$code" -lt 500 ] && break
    [ $SECONDS -lt $deadline ] || die "$1 did not answer at $2 (last status $code); see $S/logs/$1.log"
    pid_alive "$S/pids/$1.pid" || die "$1 exited; see $S/logs/$1.log"
    sleep 0.3
  done
  timing "$1" $((SECONDS - ${START_T0[$1]:-$SECONDS}))
}

wait_service() { # name: an RPC-only service (conductor, scheduler, compute) is up once RabbitMQ logs its connection
  local deadline=$((SECONDS + 180)) pid; pid=$(cat "$S/pids/$1.pid")
  until grep -q " - $1:$pid:.*authenticated" "$S/logs/rabbitmq.log" 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || die "$1 (pid $pid) did not connect to RabbitMQ; see $S/logs/$1.log"
    pid_alive "$S/pids/$1.pid" || die "$1 exited; see $S/logs/$1.log"
    sleep 0.3
  done
  timing "$1" $((SECONDS - ${START_T0[$1]:-$SECONDS}))
}

wait_host_mapped() { # a server scheduled before the compute host is in cell1 fails (HostMappingNotFound)
  local deadline=$((SECONDS + 180))
  until nova-manage --config-file "$S/etc/nova/nova.conf" cell_v2 list_hosts 2>/dev/null | grep -qw "cc-kvm-$TAG"; do
    [ $SECONDS -lt $deadline ] || die "nova-compute's host cc-kvm-$TAG was never mapped to cell1; see $S/logs/nova-compute.log"
    nova_manage cell_v2 discover_hosts || true # the scheduler does it every 10 s too; this is the first time sooner
    sleep 2
  done
}

write_cloud_env() { # admin client settings for this cloud (mode 0600), and a sourceable openrc
  (umask 077
  cat >"$S/admin-openrc" <<EOF
export OS_AUTH_URL=$KEYSTONE_URL/v3 OS_REGION_NAME=$REGION OS_IDENTITY_API_VERSION=3
export OS_USERNAME=admin OS_PASSWORD=$ADMIN_PASSWORD OS_PROJECT_NAME=admin
export OS_USER_DOMAIN_NAME=Default OS_PROJECT_DOMAIN_NAME=Default OS_INTERFACE=public
EOF
  )
}

cmd_up() {
  local t0=$SECONDS
  command -v nova-api >/dev/null && command -v neutron-server >/dev/null && command -v glance-api >/dev/null &&
    [ -x /usr/sbin/mariadbd ] && [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] ||
    die "the OpenStack packages are not installed: run 'bash scripts/local-cloud.sh install' (as root) first"
  [ -f "$KS/env.json" ] && bash "$HERE/local-openstack.sh" status "$KS" >/dev/null ||
    die "Keystone is not up: run 'bash scripts/local-openstack.sh up $KS' first"
  KEYSTONE_URL=$("$PY" -c "import json,sys; print(json.load(open(sys.argv[1]))['authUrl'].rsplit('/v3',1)[0])" "$KS/env.json")
  # The ports the outside sees (ns-forward, vendor data): Keystone and both Swift proxies (the fault-injecting one too).
  read -r KEYSTONE_PORT SWIFT_PORTS < <("$PY" -c "import json,sys,urllib.parse as u; e=json.load(open(sys.argv[1]))
print(*sorted({u.urlsplit(e[k]).port for k in ('authUrl','swiftUrl','faultSwiftUrl') if k in e}, key=lambda p: p != u.urlsplit(e['authUrl']).port))" "$KS/env.json")
  ADMIN_PASSWORD=$(cat "$KS/admin-password")
  mkdir -p "$S"/{pids,logs,etc,mysql,rabbitmq}
  chmod 700 "$S"
  : >"$S/logs/startup-times.txt"
  declare -gA START_T0=()
  choose_ports
  # shellcheck disable=SC1091
  . "$S/ports.env"
  local n
  for n in db-password rabbit-password glance-password placement-password nova-password neutron-password metadata-secret; do
    secret_file "$n"
  done
  register_services
  write_cloud_env

  start_mariadb
  start_rabbitmq
  start_glance
  start_placement
  start_neutron # it retries its RabbitMQ connection until the broker listens
  wait_rabbitmq
  wait_api glance-api "http://127.0.0.1:$GLANCE_PORT/versions"
  wait_api placement-api "http://127.0.0.1:$PLACEMENT_PORT/"
  start_nova
  wait_api neutron-server "http://127.0.0.1:$NEUTRON_PORT/"
  start_agents
  wait_api nova-api "http://127.0.0.1:$NOVA_PORT/"
  for n in conductor scheduler compute; do wait_service "nova-$n"; done
  for n in "${AGENTS[@]}"; do wait_service "$n"; done
  wait_host_mapped
  local t1=$SECONDS
  (. "$S/admin-openrc" && PUBLIC_CIDR=$PUBLIC_CIDR PUBLIC_GW=$PUBLIC_GW EXT_NS=$EXT_NS FAR_NS=$FAR_NS FAR_ADDR=$FAR_ADDR \
    FILES_PORT=$FILES_PORT "$PY" "$HERE/local-cloud/resources.py" "$S" persist-project >>"$S/logs/resources.log" 2>&1) ||
    die "creating the image/networks failed; see $S/logs/resources.log"
  timing resources $((SECONDS - t1))
  timing total $((SECONDS - t0))
  log "up in $((SECONDS - t0))s: region $REGION in Keystone $KEYSTONE_URL; nova :$NOVA_PORT neutron :$NEUTRON_PORT glance :$GLANCE_PORT placement :$PLACEMENT_PORT; admin settings in $S/admin-openrc"
}

cmd_down() {
  [ -d "$S/pids" ] || return 0
  local n
  # In three waves, each in parallel (a TERM may take the daemon up to 5 s): the outside's proxies, the agents and
  # Nova, then the APIs, then the broker and the database they used.
  local wave
  for wave in "${OUTSIDE[*]} ${AGENTS[*]} nova-compute nova-scheduler nova-conductor nova-api" \
    "neutron-server placement-api glance-api libvirtd" "rabbitmq epmd mariadb"; do
    for n in $wave; do stop_daemon "$n" & done
    wait
  done
  net_down
  local left
  left=$(state_dir_procs "$S" dnsmasq haproxy | tr '\n' ' ')
  [ -z "$left" ] || die "these processes of $S are still running after down: $left(see ps -fp <pid>)"
  log "stopped ($S)"
}

tree_mem() { # pid -> "RSS MiB, PSS MiB" of it and all its descendants (forked workers share pages: PSS splits them)
  local p rss=0 pss=0 r q
  for p in $(ps -e -o pid=,ppid= | awk -v root="$1" '
      { parent[$1] = $2 } END { for (p in parent) { q = p; while (q != "" && q != 0 && q != root) q = parent[q]; if (q == root) print p } }'); do
    read -r r q < <(awk '/^Rss:/ {r=$2} /^Pss:/ {p=$2} END {print r+0, p+0}' "/proc/$p/smaps_rollup" 2>/dev/null || echo "0 0")
    rss=$((rss + r)); pss=$((pss + q))
  done
  echo "rss $((rss / 1024)) MiB, pss $((pss / 1024)) MiB"
}

cmd_status() {
  local n any=1
  for n in "${DAEMONS[@]}"; do
    if pid_alive "$S/pids/$n.pid"; then
      echo "$n: running (pid $(cat "$S/pids/$n.pid"), $(tree_mem "$(cat "$S/pids/$n.pid")") with its children)"
    else echo "$n: stopped"; any=0; fi
  done
  [ -f "$S/ports.env" ] && tr '\n' ' ' <"$S/ports.env" && echo
  [ $any = 1 ]
}

main() {
  local cmd=${1:-}
  case $cmd in
    install) exec bash "$HERE/local-cloud/deps.sh" ;;
    up | down | status) ;;
    *) die "usage: $0 install | up|down|status STATE_DIR" ;;
  esac
  [ -n "${2:-}" ] || die "$cmd needs a state directory"
  mkdir -p "$2"
  S=$(cd "$2" && pwd)
  KS=$(cd "${KEYSTONE_STATE:-$HERE/../.stand-ins/openstack}" 2>/dev/null && pwd) || KS=${KEYSTONE_STATE:-.stand-ins/openstack}
  TAG=$(printf %s "$S" | md5sum | cut -c1-6) # names this state dir's netns, bridges, rabbit node
  VIRT=${CLOUD_VIRT:-libvirt} # libvirt: libvirtd + qemu (TCG); fake: Nova's fake driver (no VM at all)
  EXT_NS="cc-$TAG-ext" FAR_NS="cc-$TAG-far" SN_NS="cc-$TAG-sn"
  PUB_IF="cc${TAG}pub" GW_IF="cc${TAG}gw" SN_IF="cc${TAG}sn" SP_IF="cc${TAG}sp" FX_IF="cc${TAG}fx" FF_IF="cc${TAG}ff"
  # Documentation ranges (RFC 5737) that nothing else here uses: 203.0.113.0/24 is where this machine's resolver
  # puts Debian's archive, so it is not the floating range.
  PUBLIC_CIDR=198.51.100.0/24 PUBLIC_GW=198.51.100.1 FAR_ADDR=100.64.0.2
  exec 9>"$S.lock"
  flock 9
  case $cmd in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
  esac
}

main "$@"
