#!/usr/bin/env bash
# Server CPU time per request of the router variants over loopback HTTP.
#
# Builds `examples/variant_server.rs`, which serves one variant of the router
# benches (`benches/router_variants`) on 127.0.0.1 with a single-threaded
# runtime, and loads it with wrk. The server is pinned to one core
# (`taskset -c 0`) and wrk to the other (`taskset -c 1`). Each round runs
# every variant once, for a bounded time, in turn, so that whatever else the
# machine does is spread over all of them; the figure of a variant is the
# median over the rounds of the server's CPU time (user + system, from
# /proc/<pid>/stat) divided by the requests wrk completed, and its ratio to
# the bare handler's median.
#
# Variants: bare; tower_governor without and with its headers; `#[rate_limit]`
# with no rate-limit headers, with the legacy `X-RateLimit-*` ones only and
# with the default (both families); `#[rate_limit]` + `#[require_api_key]`.
# Every request presents the API key, and every limit is high enough that
# every request is admitted.
#
# Usage, from the repository root:
#   benchmarks/http.sh [rounds, default 7] [seconds per run, default 3] [connections, default 8]
#
# Installs wrk (Debian package) when it is missing. Stops only the servers it
# started, by PID. Needs two cores.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS="${1:-7}"
DURATION="${2:-3}"
CONNECTIONS="${3:-8}"
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
VARIANTS=(
  01_bare
  04_tower_governor
  08_tower_governor_headers
  11_rate_limit_no_headers
  10_rate_limit_legacy_headers_only
  02_rate_limit
  03_rate_limit_api_key
)
API_KEY="bench-key-0123456789abcdef" # router_variants::API_KEY

if ! command -v wrk >/dev/null 2>&1; then
  echo "installing wrk"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq wrk >/dev/null
fi

cargo build --release -p benchmarks --example variant_server
SERVER="$TARGET_DIR/release/examples/variant_server"

OUT="$(mktemp -d)"
SERVER_PID=""
stop_server() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID"
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=""
}
cleanup() {
  stop_server
  rm -rf "$OUT"
}
trap cleanup EXIT

start_server() { # $1: variant; sets SERVER_PID and ADDRESS
  # A file of its own per server: the previous server's cannot be read by mistake.
  local address_file="$OUT/address.$1.$RANDOM"
  taskset -c 0 "$SERVER" "$1" 0 >"$address_file" 2>"$OUT/server.log" &
  SERVER_PID=$!
  ADDRESS=""
  for _ in $(seq 1 100); do
    ADDRESS="$(head -n1 "$address_file" 2>/dev/null || true)"
    if [ -n "$ADDRESS" ]; then return 0; fi
    sleep 0.05
  done
  echo "the server of $1 did not start; its log:" >&2
  cat "$OUT/server.log" >&2
  exit 1
}

# shellcheck source=benchmarks/server_cpu.sh
. benchmarks/server_cpu.sh

run() { # $1: variant; appends "variant µs-per-request non-2xx" to $OUT/runs
  start_server "$1"
  # A short warm-up, so that first-use work is not counted.
  taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d1s -H "x-api-key: $API_KEY" "http://$ADDRESS/v" >/dev/null
  local before after output requests refused
  before="$(cpu_ticks "$SERVER_PID")"
  output="$(taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" -H "x-api-key: $API_KEY" "http://$ADDRESS/v")"
  after="$(cpu_ticks "$SERVER_PID")"
  stop_server
  requests="$(sed -n 's/^ *\([0-9]*\) requests in .*/\1/p' <<<"$output")"
  refused="$(sed -n 's/^ *Non-2xx or 3xx responses: *\([0-9]*\).*/\1/p' <<<"$output")"
  awk -v variant="$1" -v requests="$requests" -v refused="${refused:-0}" \
      -v ticks="$((after - before))" -v hz="$TICKS_PER_SECOND" \
      'BEGIN { printf "%s %.3f %d\n", variant, ticks / hz / requests * 1e6, refused }' >>"$OUT/runs"
}

for round in $(seq 1 "$ROUNDS"); do
  echo "round $round of $ROUNDS" >&2
  for variant in "${VARIANTS[@]}"; do
    run "$variant"
  done
done

echo
echo "wrk: 1 thread, $CONNECTIONS connections, ${DURATION} s per run, $ROUNDS rounds; server on core 0, wrk on core 1"
echo
echo "| variant | server CPU µs per request (median) | min | max | ratio to bare | non-2xx |"
echo "|---|---:|---:|---:|---:|---:|"
awk -v order="${VARIANTS[*]}" '
  { n[$1]++; v[$1, n[$1]] = $2; refused[$1] += $3 }
  END {
    count = split(order, names, " ")
    for (i = 1; i <= count; i++) {
      name = names[i]; k = n[name]
      for (a = 1; a <= k; a++) s[a] = v[name, a]
      for (a = 1; a <= k; a++) for (b = a + 1; b <= k; b++) if (s[b] < s[a]) { t = s[a]; s[a] = s[b]; s[b] = t }
      median[name] = (k % 2) ? s[(k + 1) / 2] : (s[k / 2] + s[k / 2 + 1]) / 2
      low[name] = s[1]; high[name] = s[k]
    }
    for (i = 1; i <= count; i++) {
      name = names[i]
      printf "| %s | %.2f | %.2f | %.2f | %.2f | %d |\n", name, median[name], low[name], high[name], median[name] / median[names[1]], refused[name]
    }
  }' "$OUT/runs"
