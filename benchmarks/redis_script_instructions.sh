#!/usr/bin/env bash
# Instructions redis-server executes per call of a Lua script, counted by
# callgrind: the server's whole work for one EVALSHA (reading the command,
# running the script, answering), steady where its wall time is not.
#
# Usage, from the repository root:
#   benchmarks/redis_script_instructions.sh SCRIPT.lua KEY_PREFIX [ARG...]
# Each call runs on one of 1,024 keys, KEY_PREFIX followed by a number
# (redis-benchmark's __rand_int__), with the ARGs. For instance, the floor,
# the minimal GCRA, and the own script of a GCRA quota (an interval of 1 s,
# a burst of a million, written into gcra_one.lua as the store writes it)
# on keys as long as the store's (see BENCHMARKS.md, runs K and L):
#   key=policy:benchmarks::redis_floor:0123456789abcdef0123456789abcdef0123456789abcdef0123456789ab
#   benchmarks/redis_script_instructions.sh benchmarks/lua/floor.lua "$key" g:1000000:1
#   benchmarks/redis_script_instructions.sh benchmarks/lua/minimal_gcra.lua "$key"
#   own=$(mktemp --suffix=.lua)
#   sed 's/BURST = nil, nil$/BURST = 1000000, 1000000/' \
#       policy-runtime/src/rate_limiting/redis/gcra_one.lua >"$own"
#   benchmarks/redis_script_instructions.sh "$own" "$key"
# Needs valgrind, redis-server, redis-cli and redis-benchmark (Debian:
# apt-get install -y valgrind redis-server). CALLS (default 4000) calls are
# counted after 3,000 uncounted ones that write the keys.
set -euo pipefail

[ $# -ge 2 ] || { sed -n '2,20p' "$0" >&2; exit 2; }
script=$1
prefix=$2
shift 2
calls="${CALLS:-4000}"
for tool in valgrind callgrind_control redis-server redis-cli redis-benchmark; do
    command -v "$tool" >/dev/null || { echo "$0 needs $tool" >&2; exit 1; }
done

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
out=$(mktemp -d)
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out/callgrind.%p" \
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no >"$out/server.log" 2>&1 &
server=$!
# `|| true`: under `set -e` a failing command would end the trap early,
# leaving the directory behind (the server has usually exited by then).
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$out"' EXIT

for _ in $(seq 100); do
    redis-cli -p "$port" ping >/dev/null 2>&1 && break
    sleep 0.2
done
sha=$(redis-cli -p "$port" script load "$(cat "$script")")
run() {
    local n=$1
    shift
    redis-benchmark -p "$port" -q -c 1 -r 1024 -n "$n" \
        evalsha "$sha" 1 "${prefix}__rand_int__" "$@" >/dev/null
}
run 3000 "$@"
callgrind_control -i on "$server" >/dev/null 2>&1
run "$calls" "$@"
callgrind_control -i off "$server" >/dev/null 2>&1
callgrind_control -d "$server" >/dev/null 2>&1
# The dump is written once the server next runs: wait for it.
for _ in $(seq 100); do
    grep -qs '^totals:' "$out/callgrind.$server.1" && break
    sleep 0.1
done
kill "$server"
wait "$server" 2>/dev/null || true
# With instrumentation switched on and off, the count is in `totals`.
total=$(grep -h '^totals:' "$out"/callgrind.* | awk '{sum += $2} END {print sum}')
echo "$((total / calls))"
