#!/usr/bin/env bash
# `ramc predict` on a folder runs through the decoding pipeline
# (api/pipeline.h); an image's result does not depend on the batching:
#  * --batch 1, 3 and 8 print the same bytes (JSON and TSV), in path order;
#  * an unreadable file in the folder is named on stderr, exits 1, and the
#    other images are all still scored, in order.
# usage: cli_predict_batch.sh RAMC_BINARY SHARED_DIR SOURCE_DIR
set -u
RAMC=$1
SRC=$3
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
. "$SRC/tests/lib_cli.sh"
export OMP_WAIT_POLICY=passive
unset RAMC_BF16 RAMC_PACK RAMC_ISA
export RAMC_DATA_DIR="$SRC/data"
LABELS="black ring,black star,green heart,white star,yellow heart"

mkdir -p "$WORK/in"
cp "$SRC"/data/samples/*.png "$WORK/in/"
cp "$SRC"/tests/fixtures/images/{coffee_420,cat_444,rocket_420}.jpg "$WORK/in/"
n_images=$(ls "$WORK/in" | wc -l)

for b in 1 3 8; do
    run_ramc predict 0 --labels "$LABELS" --top-k 0 --batch "$b" "$WORK/in"
    cp "$WORK/out" "$WORK/json$b"
    run_ramc predict 0 --labels "$LABELS" --top-k 0 --batch "$b" --format tsv "$WORK/in"
    cp "$WORK/out" "$WORK/tsv$b"
done
check "one JSON line per image" [ "$(wc -l <"$WORK/json1")" -eq "$n_images" ]
check "--batch 3 prints the same JSON as --batch 1" cmp -s "$WORK/json1" "$WORK/json3"
check "--batch 8 prints the same JSON as --batch 1" cmp -s "$WORK/json1" "$WORK/json8"
check "--batch 8 prints the same TSV as --batch 1" cmp -s "$WORK/tsv1" "$WORK/tsv8"
# in path order (the folder walk sorts by name)
/usr/bin/python3 - "$WORK/json1" >"$WORK/order" <<'PY'
import json, os, sys
print("\n".join(os.path.basename(json.loads(l)["image"]) for l in open(sys.argv[1])))
PY
ls "$WORK/in" >"$WORK/want_order"
check "results in path order" cmp -s "$WORK/order" "$WORK/want_order"

# an unreadable file among them
printf 'not a picture' >"$WORK/in/broken.jpg"
run_ramc predict 1 --labels "$LABELS" --top-k 0 --batch 4 "$WORK/in"
check "the broken file is named" grep -q "broken.jpg" "$WORK/err"
check "every other image is still scored, in order" cmp -s "$WORK/out" "$WORK/json1"

summary cli_predict_batch
