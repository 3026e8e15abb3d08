#!/usr/bin/env bash
# ramc bench on the tiny random model: every scenario runs, the JSON has the
# documented schema with positive numbers, and bad options are refused.
# (Speed itself is not tested: it depends on the machine and its load.)
set -u
ramc=$1
fails=0 passes=0
check() { # check NAME COND...
    local name=$1; shift
    if "$@"; then passes=$((passes + 1)); else fails=$((fails + 1)); echo "FAIL: $name" >&2; fi
}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

scenarios="clip_encode_b1 clip_encode_b8 ram_coco_b1_cached ram_coco_b8_cached ram_coco_b8_uncached
ram_nus_b8_cached text_coco text_nus train_b8 train_b32 label_cache_10k predict_folder_e2e"

# 1. the JSON run
# (the label-cache scenario with 300 labels rather than 10k: the test stays quick)
"$ramc" bench --size tiny --repeat 2 --warmup 1 --cache-labels 300 --json > "$tmp/out.json" 2> "$tmp/err.txt"
rc=$?
check "bench --json exits 0" [ $rc -eq 0 ]
[ $rc -eq 0 ] || tail -n 20 "$tmp/err.txt" >&2
check "progress goes to stderr" grep -q "bench \[12/12\] predict_folder_e2e: done" "$tmp/err.txt"
for s in $scenarios; do
    check "scenario $s reported" grep -q "\"name\":[[:space:]]*\"$s\"" "$tmp/out.json"
done
check "no scenario failed" bash -c "! grep -q '\"error\"' '$tmp/out.json'"
check "flop_per_image present" grep -q '"flop_per_image":[[:space:]]*[0-9]' "$tmp/out.json"
if command -v python3 > /dev/null 2>&1; then
    python3 - "$tmp/out.json" "$scenarios" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
want = sys.argv[2].split()
bad = []
for k in ("ramc_version", "machine", "flop_per_image", "scenarios", "precision", "packed_weights"):
    if k not in d: bad.append("missing " + k)
if d.get("precision") != "f32": bad.append("precision %r" % d.get("precision"))
if not (d["machine"].get("cpus", 0) >= 1 and d["machine"].get("blas")): bad.append("machine")
# the roof, measured in the run: the CPU, its flags, a positive float32 rate
m = d["machine"]
if not m.get("cpu_model"): bad.append("machine.cpu_model")
if set(m.get("cpu_flags", {})) != {"avx2", "avx512f", "avx512_bf16", "amx_tile"}: bad.append("machine.cpu_flags")
roof = m.get("roof_gflops", {})
if not (isinstance(roof.get("f32"), (int, float)) and roof["f32"] > 0): bad.append("roof_gflops.f32=%r" % roof.get("f32"))
if m.get("cpu_flags", {}).get("avx512_bf16") and m.get("gemm") == "onednn" and not (roof.get("bf16") or 0) > 0:
    bad.append("roof_gflops.bf16 missing on a BF16 CPU")
got = [s["name"] for s in d["scenarios"]]
if got != want: bad.append("scenarios %s" % got)
for s in d["scenarios"]:
    for k in ("median", "min", "max", "gflops", "peak_rss_mb"):
        if not (isinstance(s.get(k), (int, float)) and s[k] > 0): bad.append("%s.%s=%r" % (s["name"], k, s.get(k)))
    if s.get("runs") != 2: bad.append(s["name"] + ".runs")
    share = s.get("roof_share")
    want_share = (s.get("gflops_ram") or s["gflops"]) / roof["f32"] if roof.get("f32") else None
    if not (isinstance(share, float) and want_share and abs(share - want_share) <= 1e-9 * want_share):
        bad.append("%s.roof_share=%r, want %r" % (s["name"], share, want_share))
    if not s["min"] <= s["median"] <= s["max"]: bad.append(s["name"] + " min<=median<=max")
    if s["unit"] not in ("images/s", "prompts/s", "labels/s"): bad.append(s["name"] + ".unit")
    if s["name"] == "label_cache_10k":
        # the cold run meets an empty cache, the warm one reads every label from it
        if s.get("labels") != 300 or s.get("cache_hits") != {"cold": 0, "warm": 300}:
            bad.append("label cache: labels %r, hits %r" % (s.get("labels"), s.get("cache_hits")))
        if not (s["phases_s"]["cold"] > 0 and s["phases_s"]["warm"] > 0): bad.append("label cache phases")
    # end to end: the model alone on the same images, and the ratio of the two
    if s["name"] == "predict_folder_e2e":
        if not (s.get("model_only", 0) > 0 and abs(s.get("e2e_ratio", 0) - s["median"] / s["model_only"]) < 1e-9):
            bad.append("predict_folder_e2e model_only/e2e_ratio %r %r" % (s.get("model_only"), s.get("e2e_ratio")))
        if set(s.get("phases_s", {})) != {"model_only", "end_to_end"}: bad.append("predict_folder_e2e phases")
    # the official figures are for ViT-B/16 only
    if s.get("official", 0) is not None or s.get("ratio", 0) is not None: bad.append(s["name"] + ".official")
if bad:
    print("JSON check failed: " + "; ".join(bad), file=sys.stderr)
    sys.exit(1)
PY
    check "JSON parses and every number is positive" [ $? -eq 0 ]
else
    check "positive medians" bash -c "[ \$(grep -cE '\"median\":[[:space:]]*[0-9]*\\.?[0-9]*[1-9]' '$tmp/out.json') -eq 12 ]"
fi

# 1b. bf16: the same scenarios run and say so (its speed is not tested either)
"$ramc" bench --size tiny --repeat 1 --warmup 0 --bf16 --scenarios ram_coco_b8_cached,train_b8 --json \
    > "$tmp/bf16.json" 2> /dev/null
check "bench --bf16 exits 0" [ $? -eq 0 ]
check "bench --bf16 reports its precision" grep -q '"precision":[[:space:]]*"bf16"' "$tmp/bf16.json"

# 2. the table, a chosen subset, in-process
"$ramc" bench --size tiny --repeat 1 --warmup 0 --scenarios text_coco,clip_encode_b1 --no-fork \
    > "$tmp/table.txt" 2> /dev/null
check "table run exits 0" [ $? -eq 0 ]
check "table lists text_coco" grep -q "^text_coco " "$tmp/table.txt"
check "table lists only the chosen scenarios" [ "$(grep -c '^ram_' "$tmp/table.txt")" -eq 0 ]
check "table states the roof" grep -qE "^roof: [0-9]+ GFLOP/s float32" "$tmp/table.txt"
check "table names the CPU" grep -q "^cpu: " "$tmp/table.txt"

# 2b. --no-roof: no probe, the shares are null
"$ramc" bench --size tiny --repeat 1 --warmup 0 --scenarios clip_encode_b1 --no-roof --json \
    > "$tmp/noroof.json" 2> /dev/null
check "bench --no-roof exits 0" [ $? -eq 0 ]
check "bench --no-roof: roof null" grep -q '"f32":[[:space:]]*null' "$tmp/noroof.json"
check "bench --no-roof: share null" grep -q '"roof_share":[[:space:]]*null' "$tmp/noroof.json"

# 3. usage errors exit 2 with a message
for args in "--size huge" "--repeat 0" "--warmup -1" "--threads x" "--scenarios nope" "--frobnicate"; do
    # shellcheck disable=SC2086
    "$ramc" bench $args > /dev/null 2> "$tmp/e.txt"
    rc=$?
    check "bench $args exits 2" [ $rc -eq 2 ]
    check "bench $args explains" grep -q "ramc bench" "$tmp/e.txt"
done
"$ramc" bench --help > "$tmp/help.txt"
check "bench --help" grep -q "usage: ramc bench" "$tmp/help.txt"

echo "cli_bench: $passes passed, $fails failed"
[ $fails -eq 0 ]
