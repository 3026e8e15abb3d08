#!/usr/bin/env bash
# The embedded default model (data/default/) on a fixed synthetic test split:
#  * `ramc eval` without --clip uses it (and says so) and its ZSL and GZSL
#    F1@3 (OF1 at top-3) and mAP are not below the values recorded in
#    docs/experiments.md ("The embedded default model");
#  * `ramc predict` without --clip tags data/samples with the 64 labels (seen
#    and unseen) in the documented format and writes heat maps;
#  * `ramc train` without --clip announces the default backbone;
#  * a missing default model is an error naming the path.
# The split is regenerated here, byte-identical every time: the first 200
# images of test_zsl and test_gzsl of `ramc synth --world v1 --seed 0` (the world the
# model was trained in; its adapter never saw these images or the unseen labels).
# usage: cli_default_model.sh RAMC_BINARY GOLDEN_DIR SOURCE_DIR
set -u
RAMC=$1
SRC=$3
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
export RAMC_DATA_DIR="$SRC/data"
export OMP_WAIT_POLICY=passive # shared CI cores: sleeping workers, not spinning ones

# Recorded in docs/experiments.md (section "The embedded default model"), as
# fractions; a drop by more than float rounding (1e-6) fails.
WANT_ZSL_F1=0.3835616438356165
WANT_ZSL_MAP=0.392176953327433
WANT_GZSL_F1=0.15864527629233513
WANT_GZSL_MAP=0.18751644703578452
SLACK=1e-6

for f in clip.safetensors adapter.safetensors vocab.json merges.txt labels.txt; do
  [ -s "$SRC/data/default/$f" ] || fail "data/default/$f is missing"
done
[ $fails -eq 0 ] || { echo "$fails failures"; exit 1; }

"$RAMC" synth --world v1 --out "$TMP/split" --seed 0 --pretrain 0 --train 0 --test 200 --quiet 2>"$TMP/err" \
  || { echo "FAIL: synth: $(cat "$TMP/err")"; exit 1; }
D=$TMP/split
"$RAMC" eval --seen-classes "$D/seen.txt" --unseen-classes "$D/unseen.txt" \
  --test-zsl "$D/test_zsl.json" --test-gzsl "$D/test_gzsl.json" --report "$TMP/report.json" \
  >"$TMP/eval.txt" 2>"$TMP/err"
rc=$?
[ $rc -eq 0 ] || fail "eval exited $rc: $(cat "$TMP/err")"
grep -q "no --clip given: using the embedded default model .*data/default/clip.safetensors and its adapter" \
  "$TMP/err" || fail "eval did not announce the default model: $(cat "$TMP/err")"

# one report per line, then the k=3 OF1 and the mAP of the named report
flat=$(tr -d ' \t\n' <"$TMP/report.json" | sed 's/"schema":/\n/g')
metric() { # metric zsl|gzsl OF1|mAP
  local seg
  seg=$(printf '%s\n' "$flat" | grep "\"name\":\"$1\"")
  if [ "$2" = OF1 ]; then
    printf '%s\n' "$seg" | grep -o '"k":3,"k_used":3,[^}]*' | grep -o '"OF1":[^,}]*' | cut -d: -f2
  else
    printf '%s\n' "$seg" | grep -o '"mAP":[^,}]*' | cut -d: -f2
  fi
}
check() { # check NAME GOT WANT
  awk -v g="$2" -v w="$3" -v s="$SLACK" 'BEGIN { exit !(g != "" && g + 0 >= w - s) }' \
    || fail "$1 = ${2:-missing}, below the recorded $3 (docs/experiments.md)"
  echo "$1: $2 (recorded $3)"
}
check "ZSL F1@3" "$(metric zsl OF1)" "$WANT_ZSL_F1"
check "ZSL mAP" "$(metric zsl mAP)" "$WANT_ZSL_MAP"
check "GZSL F1@3" "$(metric gzsl OF1)" "$WANT_GZSL_F1"
check "GZSL mAP" "$(metric gzsl mAP)" "$WANT_GZSL_MAP"

# predict on the shipped samples with the open vocabulary (all 64 labels)
"$RAMC" predict --labels-file "$SRC/data/default/labels.txt" --top-k 3 --format tsv \
  --explain "$TMP/maps" "$SRC/data/samples" >"$TMP/pred.tsv" 2>"$TMP/err"
rc=$?
[ $rc -eq 0 ] || fail "predict exited $rc: $(cat "$TMP/err")"
grep -q "no --clip given: using the embedded default model" "$TMP/err" \
  || fail "predict did not announce the default model: $(cat "$TMP/err")"
n_img=$(find "$SRC/data/samples" -name '*.png' | wc -l)
[ "$n_img" -ge 6 ] || fail "only $n_img sample images"
[ "$(wc -l <"$TMP/pred.tsv")" -eq $((3 * n_img)) ] || fail "expected 3 lines per image: $(cat "$TMP/pred.tsv")"
awk -F'\t' 'NF != 3 || $3 !~ /^[0-9.e+-]+$/ { bad = 1 } END { exit bad }' "$TMP/pred.tsv" \
  || fail "bad TSV line in: $(cat "$TMP/pred.tsv")"
[ "$(find "$TMP/maps" -name '*.png' | wc -l)" -ge "$n_img" ] || fail "no heat maps written"
# How many samples with an unseen object get one of their unseen labels in
# the top 3. Printed, not required: the toy CLIP tells colours apart far
# better than shapes (docs/experiments.md), so this count is low; the
# recorded metrics above are the quality gate.
hits=0 total=0
for img in "$SRC"/data/samples/*.png; do
  base=$(basename "$img" .png)
  want=$(printf '%s\n' "${base//+/$'\n'}" | tr '-' ' ' | grep -Fxf "$D/unseen.txt")
  [ -n "$want" ] || continue
  total=$((total + 1))
  top=$(awk -F'\t' -v p="$img" '$1 == p { print $2 }' "$TMP/pred.tsv")
  if printf '%s\n' "$top" | grep -Fxq -f <(printf '%s\n' "$want"); then hits=$((hits + 1)); fi
done
echo "samples with an unseen label in their top 3: $hits of $total"
[ $total -ge 4 ] || fail "only $total samples hold an unseen label"

# ramc convert: float16 -> float32 is exact, so the converted CLIP (with its
# tokenizer beside it) predicts exactly as the shipped one
mkdir -p "$TMP/c32"
"$RAMC" convert --f32 "$SRC/data/default/clip.safetensors" "$TMP/c32/clip.safetensors" 2>"$TMP/err" \
  || fail "convert exited $?: $(cat "$TMP/err")"
cp "$SRC/data/default/vocab.json" "$SRC/data/default/merges.txt" "$TMP/c32/"
[ "$(stat -c %s "$TMP/c32/clip.safetensors")" -gt "$(stat -c %s "$SRC/data/default/clip.safetensors")" ] \
  || fail "the float32 copy is not larger"
"$RAMC" predict --clip "$TMP/c32/clip.safetensors" --adapter "$SRC/data/default/adapter.safetensors" \
  --labels-file "$SRC/data/default/labels.txt" --top-k 3 --format tsv "$SRC/data/samples" \
  >"$TMP/pred32.tsv" 2>"$TMP/err" || fail "predict with the converted CLIP: $(cat "$TMP/err")"
cmp -s "$TMP/pred.tsv" "$TMP/pred32.tsv" || fail "converted CLIP predicts differently"
"$RAMC" convert "$SRC/data/default/clip.safetensors" "$TMP/x.safetensors" >/dev/null 2>&1 &&
  cmp -s "$SRC/data/default/clip.safetensors" "$TMP/x.safetensors" ||
  fail "convert without a dtype keeps every tensor as stored (same bytes)"
"$RAMC" convert "$SRC/data/default/clip.safetensors" >/dev/null 2>&1
[ $? -eq 2 ] || fail "convert without OUT: want exit 2"
"$RAMC" convert --f16 "$TMP/none.safetensors" "$TMP/y.safetensors" >/dev/null 2>"$TMP/err"
[ $? -eq 1 ] && grep -q none.safetensors "$TMP/err" || fail "convert of a missing file: $(cat "$TMP/err")"

# train without --clip: the default backbone is announced (stopped after 1 step)
printf '%s\tred heart\n' "$SRC/data/samples/red-heart+yellow-square.png" >"$TMP/t.tsv"
printf 'red heart\n' >"$TMP/seen.txt"
"$RAMC" train --train "$TMP/t.tsv" --seen-classes "$TMP/seen.txt" --output "$TMP/run" --set batch_size=1 --set workers=1 \
  --set use_ema=false --max-steps 1 --quiet >/dev/null 2>"$TMP/err" || fail "train exited $?: $(cat "$TMP/err")"
grep -q "no --clip given: using the embedded default model .* as the backbone" "$TMP/err" \
  || fail "train did not announce the default backbone: $(cat "$TMP/err")"

# no default model: an error naming where it was looked for
RAMC_DATA_DIR=$TMP/nowhere "$RAMC" predict --labels a "$SRC/data/samples" >/dev/null 2>"$TMP/err"
[ $? -eq 1 ] || fail "missing default model: want exit 1"
grep -q "$TMP/nowhere/default/clip.safetensors" "$TMP/err" || fail "missing model message: $(cat "$TMP/err")"

[ $fails -eq 0 ] && echo "cli_default_model: all checks passed" || { echo "$fails failures"; exit 1; }
