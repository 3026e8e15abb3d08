#!/usr/bin/env bash
# The throughput of ramc serve with 1 and 2 clients at batch 1 (one image per
# request, the 64 labels of the default vocabulary), for docs/serve.md:
# requests/s and latency percentiles from the load client
# (tests/tools/serve_load.c), and the conditions they were measured under.
#   scripts/serve_throughput.sh [BUILD_DIR] [REQUESTS_PER_CLIENT] [WORKERS]
# Defaults: ./build, 300, 2. Uses the embedded default model unless
# RAMC_SERVE_ARGS names another (e.g. "--clip W.safetensors").
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build} requests=${2:-300} workers=${3:-2}
ramc=$build/ramc load=$build/serve_load
image=data/samples/red-heart+yellow-square.png
work=$(mktemp -d)
server=
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"' EXIT
# shellcheck disable=SC2086
"$ramc" serve --port 0 --threads "$workers" ${RAMC_SERVE_ARGS:-} 2> "$work/log" &
server=$!
port=
for _ in $(seq 600); do
    port=$(sed -n 's|.*listening on http://[^ ]*:\([0-9][0-9]*\)/.*|\1|p' "$work/log")
    [ -n "$port" ] && break
    sleep 0.1
done
[ -n "$port" ] || { cat "$work/log" >&2; exit 1; }
printf '{"images":["%s"],"vocabulary":"default","top_k":5}' "$(base64 -w0 "$image")" > "$work/body.json"
"$load" --port "$port" --body "$work/body.json" --clients 2 --requests 20 > /dev/null # warm-up
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "server: $workers workers (one core each), model: ${RAMC_SERVE_ARGS:-the embedded default model}, batch 1, 64 labels"
echo "| clients | requests | requests/s | p50 ms | p99 ms |"
echo "|---|---|---|---|---|"
declare -A rps
for clients in 1 2; do
    out=$("$load" --port "$port" --body "$work/body.json" --clients "$clients" --requests "$requests" | head -n 1)
    get() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<< "$out"; }
    rps[$clients]=$(get rps)
    echo "| $clients | $(get requests) | $(get rps) | $(get p50_ms) | $(get p99_ms) |"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "2 clients / 1 client: $(awk -v a="${rps[2]}" -v b="${rps[1]}" 'BEGIN { printf "%.2f", a / b }')x"
kill -TERM "$server"
wait "$server"
server=
