#!/usr/bin/env bash
# The portable build (default) against the native one (-DRAMC_NATIVE=ON), A/B
# on this machine: builds both (./build, ./build-native), then runs
# `ramc bench` on the same scenarios alternately, ROUNDS times each, and
# prints per scenario the best and the median of the runs' medians, the
# portable/native ratio, and the load average around each run. With
# GENERIC=1 the portable binary also runs with RAMC_ISA=generic (its baseline
# kernels) in each round. The figures in docs/performance.md ("Portable
# build") come from this script.
#   scripts/bench_portable.sh [ROUNDS] [SCENARIOS]
#   (defaults: 3, clip_encode_b1,ram_coco_b1_cached; the output JSON goes to
#   $OUT, default ./out/bench_portable)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
scenarios=${2:-clip_encode_b1,ram_coco_b1_cached}
out=${OUT:-out/bench_portable}
mkdir -p "$out"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target ramc >/dev/null
cmake -S . -B build-native -DCMAKE_BUILD_TYPE=Release -DRAMC_NATIVE=ON >/dev/null
cmake --build build-native -j"$(nproc)" --target ramc >/dev/null
build/ramc --version
build-native/ramc --version | sed -n 2p
kinds="portable native"
[ "${GENERIC:-0}" = 1 ] && kinds="$kinds generic"
for r in $(seq 1 "$rounds"); do
    for kind in $kinds; do
        bin=build/ramc isa=
        [ "$kind" = native ] && bin=build-native/ramc
        [ "$kind" = generic ] && isa=generic
        before=$(cut -d' ' -f1 /proc/loadavg)
        RAMC_ISA=$isa "$bin" bench --scenarios "$scenarios" --repeat 3 --warmup 1 --json \
            >"$out/$kind-$r.json" 2>/dev/null
        echo "round $r $kind: load average $before before, $(cut -d' ' -f1 /proc/loadavg) after"
    done
done
/usr/bin/python3 - "$out" "$rounds" $kinds <<'PY'
import json, statistics, sys
out, rounds, kinds = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
rates = {}
for kind in kinds:
    for r in range(1, rounds + 1):
        for s in json.load(open(f"{out}/{kind}-{r}.json"))["scenarios"]:
            rates.setdefault(s["name"], {}).setdefault(kind, []).append(s.get("median", 0))
print("| scenario | portable best (median of rounds) | native best (median of rounds) | portable / native (best) |")
print("|---|---|---|---|")
for name, v in rates.items():
    p, n = v["portable"], v["native"]
    print(f"| {name} | {max(p):.3f} ({statistics.median(p):.3f}) | {max(n):.3f} ({statistics.median(n):.3f}) | "
          f"{max(p) / max(n):.3f} |")
    print(f"  round by round, portable / native: {', '.join(f'{a / b:.2f}' for a, b in zip(p, n))}")
    if "generic" in v:
        g = v["generic"]
        print(f"  RAMC_ISA=generic: best {max(g):.3f} (median {statistics.median(g):.3f}); "
              f"portable (best level) / generic, best: {max(p) / max(g):.2f}")
PY
