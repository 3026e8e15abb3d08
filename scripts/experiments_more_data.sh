#!/usr/bin/env bash
# Does the adapter's training set limit RAM in the synthetic experiment?
# (docs/experiments.md, "What limits it"). Reuses the CLIP of a finished
# scripts/experiments.sh run and trains RAM (row "KCOT = RAM", seed 0, the
# script's exact settings) on N times the training images of the same world,
# then prints ZSL/GZSL OF1@3 and mAP next to the run's own rows.
#
#   scripts/experiments_more_data.sh [--run OUT] [--times N]
#
# The world is regenerated with the run's synth arguments and --train
# multiplied; its test splits are checked to be byte-identical to the run's,
# so the rows compare on the same images. Environment: RAMC (default
# build/ramc), PY (default /usr/bin/python3).
set -euo pipefail
cd "$(dirname "$0")/.."
RAMC=${RAMC:-build/ramc}
PY=${PY:-/usr/bin/python3}
run=out/experiments times=4
while [ $# -gt 0 ]; do
    case "$1" in
        --run) run=$2; shift 2 ;;
        --times) times=$2; shift 2 ;;
        -h|--help) sed -n 2,13p "$0"; exit 0 ;;
        *) echo "experiments_more_data.sh: unknown option '$1'" >&2; exit 2 ;;
    esac
done
S=$run/synth C=$run/clip R0=$run/runs/seed0/ram
for f in "$S/.args" "$C/clip.safetensors" "$R0/done"; do
    [ -s "$f" ] || { echo "experiments_more_data.sh: $f is missing (run scripts/experiments.sh first)" >&2; exit 1; }
done
world=$(sed 's/^synth //' "$S/.args")
n_train=$(echo "$world" | sed -n 's/.*--train \([0-9]*\).*/\1/p')
big=$((n_train * times))
W=$run/more-data-x$times
if [ ! -f "$W/manifest.json" ]; then
    # shellcheck disable=SC2046,SC2001 # the run's words, with --train replaced and no pre-training images
    "$RAMC" synth --out "$W" $(echo "$world" | sed "s/--train [0-9]*/--train $big/; s/--pretrain [0-9]*/--pretrain 0/") --quiet
fi
for f in test_zsl.json test_gzsl.json; do
    cmp -s "$S/$f" "$W/$f" || { echo "experiments_more_data.sh: $W/$f differs from the run's" >&2; exit 1; }
done
# the run's RAM settings, from its stamp: "train seed=0 ram --set ... <clip args>"
sets=$(sed -n '1s/^train seed=0 ram \(.*\)$/\1/p' "$R0/done" | sed 's/ pretrain-clip .*//')
R=$W/ram-seed0
if [ ! -f "$R/done" ]; then
    rm -rf "$R"
    t0=$(date +%s)
    # shellcheck disable=SC2086 # the stamp's words
    "$RAMC" train --preset coco --clip "$C/clip.safetensors" --train "$W/train.json" \
        --seen-classes "$S/seen.txt" --unseen-classes "$S/unseen.txt" \
        --test-zsl "$S/test_zsl.json" --test-gzsl "$S/test_gzsl.json" --output "$R" \
        --set seed=0 $sets --quiet > "$W/eval.txt"
    echo "$(( $(date +%s) - t0 ))" > "$R/done"
fi
"$PY" - "$run" "$R" "$n_train" "$big" <<'PY'
import glob, json, sys
run, r, n, big = sys.argv[1:]
def row(d):
    out = []
    for split in ("zsl", "gzsl"):
        f = glob.glob(f"{d}/eval-epoch*-{split}-live.json")
        rep = json.load(open(sorted(f)[-1]))
        out += [100 * rep["topk"][0]["OF1"], 100 * rep["mAP"]]
    return out
print("| RAM (KCOT), seed 0 | training images | ZSL F1@3 | ZSL mAP | GZSL F1@3 | GZSL mAP |")
print("|---|---|---|---|---|---|")
for name, d, k in (("the run's", run + "/runs/seed0/ram", n), (f"x{int(big) // int(n)} data", r, big)):
    print("| %s | %s | %.2f | %.2f | %.2f | %.2f |" % ((name, k) + tuple(row(d))))
PY
