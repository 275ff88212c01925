# Sourced by the stand-in scripts: is the process a pid file names still the one that was started?
#
# `kill -0` alone says only that SOME process has that PID. After the daemon died (or a reboot), the kernel
# recycles PIDs, and a stale pid file then names an unrelated process, which `down` would kill and `up` would
# take for a running daemon.
#
# - A pid file our scripts wrote has a stamp beside it (FILE.start: the PID and its start time in clock ticks since
#   boot, from /proc): the process is the one started when both match. Ticks since boot do not move when the wall
#   clock is set: a VM's clock stepped 34 s forward under running stand-ins here, and the rule below then took every
#   daemon for a recycled PID, so `up` started a second set on new ports over the same state.
# - A pid file without a stamp (one a daemon wrote itself, or an older state dir): the process must have started no
#   later than the file was written (2 s slack), since a recycled PID belongs to a process started afterwards.

proc_start_ticks() { # pid -> its start, in clock ticks since boot (field 22 of /proc/PID/stat)
  # Counted after the command name, which may hold spaces and parentheses.
  local t
  t=$(sed -E 's/^.*\) //' "/proc/$1/stat" 2>/dev/null | awk '{print $20}')
  [ -n "$t" ] && echo "$t"
}

proc_start_epoch() { # pid -> when it started, in seconds since the epoch (by today's wall clock)
  local ticks btime
  ticks=$(proc_start_ticks "$1") || return 1
  btime=$(awk '/^btime / {print $2}' /proc/stat)
  echo $((btime + ticks / $(getconf CLK_TCK)))
}

pid_of() { # pid file -> the PID on its first line (digits only: a daemon may end it without a newline)
  head -n1 "$1" 2>/dev/null | tr -dc '0-9'
}

pid_stamp() { # pid file -> writes FILE.start for the process it names (right after the file was written)
  local pid ticks
  pid=$(pid_of "$1")
  [ -n "$pid" ] || return 0
  ticks=$(proc_start_ticks "$pid") || return 0
  echo "$pid $ticks" >"$1.start"
}

pid_started_by() { # pid, file -> true when PID is alive and is the process FILE was written for
  local pid=$1 file=$2 start spid sticks
  kill -0 "$pid" 2>/dev/null || return 1
  if [ -f "$file.start" ] && read -r spid sticks <"$file.start" && [ "$spid" = "$pid" ]; then
    [ "$(proc_start_ticks "$pid")" = "$sticks" ]
    return
  fi
  start=$(proc_start_epoch "$pid") || return 1
  [ "$start" -le $(($(stat -c %Y "$file") + 2)) ]
}

pid_alive() { # pidfile
  [ -f "$1" ] && pid_started_by "$(pid_of "$1")" "$1"
}
