#!/usr/bin/env bash
# Instructions per request of every router variant, counted by callgrind:
# steady figures on a noisy machine (see benches/router_instructions.rs).
#
# Usage, from the repository root: benchmarks/instructions.sh [requests]
# Needs valgrind (Debian: apt-get install -y valgrind).
set -euo pipefail

requests="${1:-2000}"
command -v valgrind >/dev/null || { echo "instructions.sh needs valgrind (apt-get install -y valgrind)" >&2; exit 1; }
cargo bench -p benchmarks --bench router_instructions --no-run
binary=$(find "${CARGO_TARGET_DIR:-target}/release/deps" -maxdepth 1 -type f -executable -name 'router_instructions-*' -printf '%T@ %p\n' | sort -n | tail -1 | cut -d' ' -f2)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

variants="01_bare 02_rate_limit 03_rate_limit_api_key 04_tower_governor 05_rate_limit_rejected
06_bare_engine_layer 07_api_key 08_tower_governor_headers 09_rate_limit_engine_outside_router
10_rate_limit_legacy_headers_only 11_rate_limit_no_headers 12_rate_limit_request_limits"

printf '| variant | instructions per request | ratio to bare |\n|---|---:|---:|\n'
bare=""
for variant in $variants; do
    valgrind --tool=callgrind --callgrind-out-file="$out/$variant" \
        --toggle-collect='*serve_all*' "$binary" "$variant" "$requests" >/dev/null 2>"$out/$variant.log"
    total=$(grep -E '^summary:' "$out/$variant" | awk '{print $2}')
    per=$((total / requests))
    [ -z "$bare" ] && bare=$per
    printf '| %s | %d | %s |\n' "$variant" "$per" "$(awk -v a="$per" -v b="$bare" 'BEGIN{printf "%.2f", a/b}')"
done
