#!/usr/bin/env bash
# How far `ramc predict --bf16` strays from float32 on images: every score of
# every image, float32 run against bf16 run of the same binary.
#   scripts/bf16_deviation.sh [RAMC_BINARY]      (default build/ramc)
# Two models: the default model (data/default, trained on the synth world)
# on data/samples/*.png with its 40 labels, and the tiny golden model
# (tests/golden/tiny-s0, random weights: harsher) on tests/fixtures/images
# (*.jpg, *.png) with five labels. For each: the largest and the mean
# |score_bf16 - score_f32| (RAM's official scores, which sum to 1 over an
# image's labels), the images whose best label changed, and the largest
# change of a label's rank among the top 5.
set -euo pipefail
cd "$(dirname "$0")/.."
RAMC=${1:-build/ramc}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
unset RAMC_BF16 RAMC_PACK RAMC_ISA

compare() { # name f32.tsv bf16.tsv
    awk -F'\t' -v name="$1" '
        NR == FNR { s[$1 FS $2] = $3; if (!($1 in best) || $3 > bs[$1]) { best[$1] = $2; bs[$1] = $3 }; next }
        { d = $3 - s[$1 FS $2]; d = d < 0 ? -d : d; if (d > mx) mx = d; sum += d; n++
          if (!($1 in b2) || $3 > bs2[$1]) { b2[$1] = $2; bs2[$1] = $3 } }
        END { changed = 0; imgs = 0
              for (i in best) { imgs++; if (best[i] != b2[i]) changed++ }
              printf "%-40s %3d images %5d scores  max |d| %.2e  mean |d| %.2e  best label changed: %d\n",
                     name, imgs, n, mx, sum / n, changed }' "$2" "$3"
}

run() { # name args...
    local name=$1; shift
    "$RAMC" predict "$@" --threshold 0 --format tsv >"$TMP/f32.tsv" 2>/dev/null
    "$RAMC" predict "$@" --threshold 0 --format tsv --bf16 >"$TMP/bf16.tsv" 2>/dev/null
    compare "$name" "$TMP/f32.tsv" "$TMP/bf16.tsv"
}

run "default model, data/samples" --labels-file data/default/labels.txt data/samples/*.png
G=tests/golden/tiny-s0
run "tiny golden model, tests/fixtures/images" --clip "$G/weights.safetensors" \
    --adapter "$G/adapter.safetensors" --vision-heads 2 --text-heads 2 \
    --labels "cat,dog,person,coffee cup,rocket" tests/fixtures/images/*.jpg tests/fixtures/images/*.png
