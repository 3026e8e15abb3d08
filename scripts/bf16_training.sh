#!/usr/bin/env bash
# float32 against bf16 training (`ramc train --bf16`) on the synthetic world
# of the embedded default model: its CLIP (data/default/clip.safetensors) and
# the train/test splits of its world (`ramc synth --world v2 --seed 0`, the
# splits depend on the seed alone, so no pre-training captions are made),
# RAM trained with scripts/experiments.sh's v2 settings, the same seeds in
# both precisions. Prints, per run, ZSL and GZSL mAP and the wall seconds of
# `ramc train` (training + evaluation), then each precision's mean and
# spread (docs/performance.md, "bf16 training").
#
#   scripts/bf16_training.sh [--out DIR] [--seeds N] [--epochs E]
#
# This CLIP is small (width 128, 64x64 images): the speed column says little
# about ViT-B/16, whose step `ramc bench --scenarios train_b8 --bf16` times.
set -euo pipefail
cd "$(dirname "$0")/.."
RAMC=${RAMC:-build/ramc}
out=out/bf16-training seeds=3 epochs=8
while [ $# -gt 0 ]; do
    case "$1" in
        --out) out=$2; shift 2 ;;
        --seeds) seeds=$2; shift 2 ;;
        --epochs) epochs=$2; shift 2 ;;
        -h|--help) sed -n 2,14p "$0"; exit 0 ;;
        *) echo "bf16_training.sh: unknown option '$1'" >&2; exit 2 ;;
    esac
done
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
D=data/default S=$out/synth
mkdir -p "$out/runs"
if [ ! -s "$S/train.json" ]; then
    rm -rf "$S"
    "$RAMC" synth --world v2 --seed 0 --pretrain 0 --train 1600 --test 500 \
        --pretrain-max-objects 2 --no-strict-pretrain --out "$S" --quiet
fi
for f in seen.txt unseen.txt; do
    cmp -s "$S/$f" "$D/$f" || { echo "bf16_training.sh: $S/$f differs from $D/$f" >&2; exit 1; }
done
# experiments.sh's v2 RAM settings (the ladder on the last of the 4 blocks)
sets=(--set max_epochs="$epochs" --set scheduler_max_epochs=$((epochs + 1)) --set warmup_epochs=0
      --set base_lr=5e-4 --set clip_lr_factor=2 --set base_lr_sgd=0.5 --set batch_size=32
      --set use_ema=false --set depth_vision=[-1] --set depth_text=[-1] --set eval_period=0
      --set checkpoint_period=0 --set workers=2)
map_of() { # map_of REPORT.json
    sed -n 's/.*"mAP":[[:space:]]*\([-0-9.e]*\).*/\1/p' "$1" | head -n 1
}
printf '| precision | seed | ZSL mAP | GZSL mAP | ramc train, s |\n|---|---|---|---|---|\n'
rows=()
for k in $(seq 0 $((seeds - 1))); do
    for prec in float32 bf16; do
        R=$out/runs/$prec-seed$k
        rm -rf "$R"
        extra=()
        [ "$prec" = bf16 ] && extra=(--bf16)
        t0=$(date +%s.%N)
        "$RAMC" train --preset coco --clip "$D/clip.safetensors" --train "$S/train.json" \
            --seen-classes "$S/seen.txt" --unseen-classes "$S/unseen.txt" \
            --test-zsl "$S/test_zsl.json" --test-gzsl "$S/test_gzsl.json" --output "$R" \
            --set seed=$k "${sets[@]}" "${extra[@]}" --quiet > "$R.eval.txt"
        t1=$(date +%s.%N)
        zsl=$(map_of "$(ls "$R"/eval-epoch*-zsl-live.json | tail -n 1)")
        gzsl=$(map_of "$(ls "$R"/eval-epoch*-gzsl-live.json | tail -n 1)")
        secs=$(echo "$t1 - $t0" | bc)
        printf '| %s | %d | %.2f | %.2f | %.1f |\n' "$prec" "$k" "$(echo "100 * $zsl" | bc -l)" \
            "$(echo "100 * $gzsl" | bc -l)" "$secs"
        rows+=("$prec $zsl $gzsl $secs")
    done
done
printf '%s\n' "${rows[@]}" | awk '
    { n[$1]++; z[$1] += $2; zz[$1] += $2 * $2; g[$1] += $3; gg[$1] += $3 * $3; s[$1] += $4 }
    END {
        print ""
        print "| precision | runs | ZSL mAP, mean (sd) | GZSL mAP, mean (sd) | ramc train, mean s |"
        print "|---|---|---|---|---|"
        for (p in n) {
            mz = z[p] / n[p]; mg = g[p] / n[p]
            sz = n[p] > 1 ? sqrt((zz[p] - n[p] * mz * mz) / (n[p] - 1)) : 0
            sg = n[p] > 1 ? sqrt((gg[p] - n[p] * mg * mg) / (n[p] - 1)) : 0
            printf "| %s | %d | %.2f (%.2f) | %.2f (%.2f) | %.1f |\n", p, n[p], 100 * mz, 100 * sz, 100 * mg, 100 * sg, s[p] / n[p]
        }
    }'
