# Sourced by the stand-in harnesses (local-openstack.sh, local-cloud.sh): ports, daemons by PID, secrets.
# The caller sets S (its state directory, with pids/ and logs/) and defines die/log.

# shellcheck source=pids.sh
. "$(dirname "${BASH_SOURCE[0]}")/pids.sh"

port_free() { # free when nothing listens on 127.0.0.1:$1
  ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

pick_port() { # preferred port, or the next free one above it, skipping ports already chosen ($2...)
  local p=$1; shift
  while ! port_free "$p" || [[ " $* " == *" $p "* ]]; do p=$((p + 1)); done
  echo "$p"
}

ports_env_set() { # file KEY=VALUE...: sets these keys in place (new ones appended), keeps every other line;
  # status 0 when the file changed, 1 when it already said so. One writer for every port, so that settling some
  # ports never drops the others (a whole-file rewrite once lost MEMCACHED_PORT on every other restart).
  local f=$1 kv k old new
  shift
  old=$(cat "$f" 2>/dev/null || true)
  new=$old
  for kv in "$@"; do
    k=${kv%%=*}
    if grep -q "^$k=" <<<"$new"; then new=$(sed "s|^$k=.*|$kv|" <<<"$new"); else new=${new:+$new$'\n'}$kv; fi
  done
  [ "$new" != "$old" ] || return 1
  printf '%s\n' "$new" >"$f"
}

wait_http() { # url, seconds
  local deadline=$((SECONDS + $2))
  until curl -s -o /dev/null --max-time 2 "$1"; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.2
  done
}

start_daemon() { # name, command... ; setsid so a daemon's SIGTERM to its group spares everyone else
  local name=$1; shift
  pid_alive "$S/pids/$name.pid" && return 0
  # fd 9 is the harness lock: a daemon that inherited it would hold the lock for as long as it runs.
  setsid "$@" 9>&- >>"$S/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$S/pids/$name.pid"
  pid_stamp "$S/pids/$name.pid"
}

stop_daemon() { # name: TERM, up to 5 s, then KILL; only the process the pid file names, if it is still ours
  local pidfile="$S/pids/$1.pid"
  [ -f "$pidfile" ] || return 0
  local pid; pid=$(pid_of "$pidfile")
  if pid_alive "$pidfile"; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile" "$pidfile.start"
}

state_dir_procs() { # state dir, command names...: PIDs of those commands whose arguments name a path under it
  # For daemons that others started and whose pid files they write themselves (Neutron's dnsmasq and haproxy):
  # a path under this state dir in their arguments is what makes them ours, whatever the clock or the pid files say.
  local dir=$1 p; shift
  for p in /proc/[0-9]*; do
    [[ " $* " == *" $(cat "$p/comm" 2>/dev/null) "* ]] || continue
    tr '\0' '\n' <"$p/cmdline" 2>/dev/null | grep -qF -- "$dir/" && echo "${p#/proc/}"
  done
  return 0
}

secret_file() { # a random secret in $S/$1 (mode 0600), made once
  [ -s "$S/$1" ] || (umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$S/$1")
}
