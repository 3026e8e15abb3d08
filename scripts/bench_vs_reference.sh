#!/usr/bin/env bash
# ramc against the official PyTorch code, in one run on this machine: RAM
# inference (label features cached) at batch 8 and 1 and the training step at
# batches 8 and 32 (float32, and ramc's opt-in bf16 training against the same
# official float32 figure), each side at its best, then the ratios and ramc's share of the roof
# `ramc bench` measures in the same run (docs/performance.md, "Side by side").
#   scripts/bench_vs_reference.sh ORACLE_DIR [BUILD_DIR]
# ORACLE_DIR holds bench_ref.py, the harness that times the official code
# (set up as its README says; RAM_REF and FTFY_PATH as there). A development
# tool: ramc itself never needs torch or the official code.
set -euo pipefail
oracle=${1:?usage: bench_vs_reference.sh ORACLE_DIR [BUILD_DIR]}
build=${2:-build}
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
export RAM_REF=${RAM_REF:-/tmp/ramref} FTFY_PATH=${FTFY_PATH:-/tmp/ftfy631}
ref() { # NAME BENCH BATCH REPS
    env -u OPENBLAS_CORETYPE OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 "$oracle/bench_ref.py" one "$2" \
        --dataset coco --batch "$3" --reps "$4" --warmup 1 --threads 2 --json "$out/$1.json" >/dev/null 2>&1
}
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
ref infer_b8 infer 8 3
ref infer_b1 infer 1 5
ref train_b8 train 8 3
ref train_b32 train 32 2
"$build/ramc" bench --scenarios ram_coco_b8_cached,ram_coco_b1_cached,train_b8,train_b32 --repeat 3 --warmup 1 \
    --threads 2 --json > "$out/ramc.json" 2>/dev/null
"$build/ramc" bench --scenarios ram_coco_b8_cached,ram_coco_b1_cached,train_b8,train_b32 --repeat 3 \
    --warmup 1 --threads 2 --bf16 --json > "$out/ramc_bf16.json" 2>/dev/null
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
/usr/bin/python3 - "$out" <<'PY'
import json, sys, os
d = sys.argv[1]
def load(n): return json.load(open(os.path.join(d, n)))
def ref_rate(n, key):
    r = load(n + ".json")
    r = r.get("result", r)
    return r[key]["images_per_s"] if key else r["images_per_s"]
ramc, bf16 = load("ramc.json"), load("ramc_bf16.json")
for name, run in (("float32 run", ramc), ("bf16 run", bf16)):
    roof = run["machine"]["roof_gflops"]
    print("roof measured in the %s: %.0f GFLOP/s float32, %s bf16 (2048^3, packed, 2 threads)"
          % (name, roof["f32"], "%.0f" % roof["bf16"] if roof.get("bf16") else "-"))
print("| scenario | official, images/s | ramc, images/s | ratio | ramc's share of its run's roof (same precision) |")
print("|---|---|---|---|---|")
rows = [("RAM inference, batch 8, cached, float32", "infer_b8", "cached_text", ramc, "ram_coco_b8_cached"),
        ("RAM inference, batch 8, cached, bf16", "infer_b8", "cached_text", bf16, "ram_coco_b8_cached"),
        ("RAM inference, batch 1, cached, float32", "infer_b1", "cached_text", ramc, "ram_coco_b1_cached"),
        ("RAM inference, batch 1, cached, bf16", "infer_b1", "cached_text", bf16, "ram_coco_b1_cached"),
        ("training step, batch 8", "train_b8", None, ramc, "train_b8"),
        ("training step, batch 32", "train_b32", None, ramc, "train_b32"),
        ("training step, batch 8, bf16 (ramc train --bf16)", "train_b8", None, bf16, "train_b8"),
        ("training step, batch 32, bf16 (ramc train --bf16)", "train_b32", None, bf16, "train_b32")]
for label, rn, key, run, sc in rows:
    s = next(x for x in run["scenarios"] if x["name"] == sc)
    off = ref_rate(rn, key)
    share = s.get("roof_share")
    print("| %s | %.3f | %.3f | %.2fx | %s |" % (label, off, s["median"], s["median"] / off,
          "%.0f%%" % (100 * share) if share else "-"))
PY
