# Sourced by the load scripts (http.sh, e2e.sh): the CPU time a server process
# has used, read from /proc, so that a figure is the server's own cost
# whatever else the machine runs.

TICKS_PER_SECOND="$(getconf CLK_TCK)"

cpu_ticks() { # $1: pid; user + system clock ticks of that process
  # Fields after the command name, which is in parentheses and may hold spaces.
  local stat
  stat="$(cat "/proc/$1/stat")"
  stat="${stat##*) }"
  # shellcheck disable=SC2086
  set -- $stat
  echo $((${12} + ${13}))
}
