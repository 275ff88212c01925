# Sourced by the stand-in scripts: is the process a pid file names still the one that was started?
#
# `kill -0` alone says only that SOME process has that PID. After the daemon died (or a reboot), the kernel
# recycles PIDs, and a stale pid file then names an unrelated process, which `down` would kill and `up` would
# take for a running daemon. So the process must also have started no later than the file was written: a
# recycled PID belongs to a process started afterwards.

proc_start_epoch() { # pid -> when it started, in seconds since the epoch (from /proc)
  local ticks btime
  # Field 22 of /proc/PID/stat, counted after the command name, which may hold spaces and parentheses.
  ticks=$(sed -E 's/^.*\) //' "/proc/$1/stat" 2>/dev/null | awk '{print $20}')
  [ -n "$ticks" ] || return 1
  btime=$(awk '/^btime / {print $2}' /proc/stat)
  echo $((btime + ticks / $(getconf CLK_TCK)))
}

pid_started_by() { # pid file -> true when PID is alive and started before FILE was last written (2 s slack)
  local pid=$1 file=$2 start
  kill -0 "$pid" 2>/dev/null || return 1
  start=$(proc_start_epoch "$pid") || return 1
  [ "$start" -le $(($(stat -c %Y "$file") + 2)) ]
}

pid_alive() { # pidfile
  [ -f "$1" ] && pid_started_by "$(cat "$1")" "$1"
}
