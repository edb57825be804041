#!/usr/bin/env bash
# End-to-end load test of the quickstart example over loopback HTTP.
#
# Builds the quickstart in release, starts it on 127.0.0.1:3000, loads one
# route at a time with wrk for a bounded time, and reports requests per second
# beside the server's CPU time per request (user + system time of the server
# process, from /proc/<pid>/stat, over the requests wrk completed). CPU time
# per request is the steadier figure on a shared machine: wrk runs on the same
# cores as the server.
#
# Routes: /health is outside every limit (the baseline; it is merged after
# the engine layer, behind the request layer only); /words/1 is under
# #[rate_limit("200/day; 50/hour")], so after its first 50 requests every
# answer is a 429 (the rejected path, JSON body and headers included). The
# rate-limited route runs twice: with logging off (RUST_LOG=error) and with
# the quickstart's default filter, which logs every refusal as a warning (to
# /dev/null here), to show what the log line costs.
#
# Usage, from the repository root:
#   benchmarks/e2e.sh [seconds per run, default 10] [connections, default 2]
#
# Installs wrk (Debian package) when it is missing. Stops only the server it
# started. Needs port 3000 free.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${1:-10}"
CONNECTIONS="${2:-2}"
ADDRESS="127.0.0.1:3000"
TARGET_DIR="${CARGO_TARGET_DIR:-target}"

if ! command -v wrk >/dev/null 2>&1; then
  echo "installing wrk"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq wrk >/dev/null
fi

if (exec 3<>"/dev/tcp/127.0.0.1/3000") 2>/dev/null; then
  echo "port 3000 is in use; stop whatever listens there and run again" >&2
  exit 1
fi

cargo build --release -p quickstart
SERVER="$TARGET_DIR/release/quickstart"

SERVER_PID=""
stop_server() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID"
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=""
}
trap stop_server EXIT

start_server() { # $1: RUST_LOG filter
  RUST_LOG="$1" "$SERVER" >/dev/null 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/3000") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "the quickstart did not start listening on $ADDRESS" >&2
  exit 1
}

# shellcheck source=benchmarks/server_cpu.sh
. benchmarks/server_cpu.sh

run() { # $1: label, $2: RUST_LOG filter, $3: path
  start_server "$2"
  local before after output requests refused rps
  before="$(cpu_ticks "$SERVER_PID")"
  output="$(wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" "http://$ADDRESS$3")"
  after="$(cpu_ticks "$SERVER_PID")"
  stop_server
  requests="$(sed -n 's/^ *\([0-9]*\) requests in .*/\1/p' <<<"$output")"
  refused="$(sed -n 's/^ *Non-2xx or 3xx responses: *\([0-9]*\).*/\1/p' <<<"$output")"
  rps="$(sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' <<<"$output")"
  awk -v label="$1" -v path="$3" -v requests="$requests" -v refused="${refused:-0}" \
      -v rps="$rps" -v ticks="$((after - before))" -v hz="$TICKS_PER_SECOND" 'BEGIN {
    printf "| %s | %s | %d | %d | %.0f | %.2f |\n",
      label, path, requests, refused, rps, ticks / hz / requests * 1e6
  }'
}

echo
echo "wrk: 1 thread, $CONNECTIONS connections, ${DURATION} s per row; $(nproc) cores shared by server and wrk"
echo
echo "| run | path | requests | non-2xx | requests/s | server CPU µs per request |"
echo "|---|---|---:|---:|---:|---:|"
run "exempt, no limit" error /health
run "rate-limited (429 after 50), logging off" error /words/1
run "rate-limited (429 after 50), default logging" "info,policy_runtime=debug" /words/1
