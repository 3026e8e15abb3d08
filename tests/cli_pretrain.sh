#!/usr/bin/env bash
# ramc pretrain-clip end to end on a tiny `ramc synth` set: the loss falls,
# the outputs exist, the model loads in `ramc predict` with its own
# vocabulary, the tokenizer files work (corpus words are one token, unseen
# words fall back to bytes, SOT/EOT are the two largest ids), an interrupted
# run resumes to the same model as an uninterrupted one, and resume refuses a
# different seed. Skipped (exit 0) when `ramc synth` is not built.
# usage: cli_pretrain.sh RAMC_BINARY GOLDEN_DIR SOURCE_DIR
set -u
RAMC=$1
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

if ! "$RAMC" synth --help >/dev/null 2>&1; then
  echo "SKIP: ramc synth is not available"
  exit 0
fi
"$RAMC" synth --out "$TMP/data" --seed 3 --size 32 --pretrain 96 --train 8 --test 4 --quiet \
  >/dev/null 2>"$TMP/err" || { echo "FAIL: synth: $(cat "$TMP/err")"; exit 1; }

# a small model so that the test runs in seconds
ARGS=(--data "$TMP/data" --image-size 32 --patch 8 --vision-width 64 --vision-layers 1
      --text-width 64 --text-layers 1 --embed 32 --batch 16 --lr 1e-3 --holdout 0.2 --seed 5 --quiet)

"$RAMC" pretrain-clip "${ARGS[@]}" --out "$TMP/out" --epochs 6 >"$TMP/log" 2>"$TMP/err"
rc=$?
[ $rc -eq 0 ] || fail "pretrain exited $rc: $(cat "$TMP/err")"
for f in clip.safetensors vocab.json merges.txt metrics.json README.txt checkpoint.safetensors; do
  [ -s "$TMP/out/$f" ] || fail "missing $f"
done
grep -q "held-out retrieval top-1" "$TMP/log" || fail "no retrieval line: $(cat "$TMP/log")"
grep -q "tokenizer" "$TMP/out/README.txt" || fail "README has no tokenizer note"

# the loss falls: first epoch mean above the last epoch's
first=$(sed -n 's/.*"first_epoch_loss": \([0-9.]*\).*/\1/p' "$TMP/out/metrics.json")
last=$(sed -n 's/.*"final_epoch_loss": \([0-9.]*\).*/\1/p' "$TMP/out/metrics.json")
awk -v a="$first" -v b="$last" 'BEGIN { exit !(a > 0 && b < 0.9 * a) }' \
  || fail "loss did not fall: first $first, last $last"

# tokenizer: SOT/EOT are the largest ids, corpus words are single tokens,
# unseen words still encode
V=$(sed -n 's/.*"vocab_size": \([0-9]*\).*/\1/p' "$TMP/out/metrics.json")
word=$(cut -f2 "$TMP/data/pretrain.tsv" | head -n 1 | awk '{ print $NF }')
ids=$(printf '%s\n' "$word" | "$RAMC" tokenize --hf-vocab "$TMP/out/vocab.json" --hf-merges "$TMP/out/merges.txt" --context 8)
[ "$ids" = "[$((V - 2)),$(echo "$ids" | cut -d, -f2),$((V - 1)),0,0,0,0,0]" ] \
  || fail "'$word' is not one token between SOT $((V - 2)) and EOT $((V - 1)): $ids"
ids=$(echo "a zebra xylophone" | "$RAMC" tokenize --vocab "$TMP/out" --context 20) \
  || fail "unseen words do not tokenize"
echo "$ids" | grep -q "$((V - 1))" || fail "no EOT in $ids"

# the model loads and predicts with its own vocabulary
IMG=$(ls "$TMP"/data/images/pretrain/*.png | head -n 1)
"$RAMC" predict --clip "$TMP/out/clip.safetensors" --vision-heads 1 --text-heads 1 --vocab "$TMP/out" \
  --labels "red star,blue circle,green square" "$IMG" >"$TMP/pred" 2>"$TMP/err" \
  || fail "predict with the pre-trained model: $(cat "$TMP/err")"
grep -q '"label":"' "$TMP/pred" || fail "predict output: $(cat "$TMP/pred")"

# interrupted + resumed equals uninterrupted
"$RAMC" pretrain-clip "${ARGS[@]}" --out "$TMP/int" --epochs 2 --max-steps 3 >/dev/null 2>"$TMP/err"
[ -s "$TMP/int/checkpoint.safetensors" ] || fail "no checkpoint after --max-steps: $(cat "$TMP/err")"
[ -e "$TMP/int/clip.safetensors" ] && fail "an interrupted run wrote the final model"
"$RAMC" pretrain-clip "${ARGS[@]}" --out "$TMP/int" --epochs 2 --resume "$TMP/int/checkpoint.safetensors" \
  >/dev/null 2>"$TMP/err" || fail "resume: $(cat "$TMP/err")"
"$RAMC" pretrain-clip "${ARGS[@]}" --out "$TMP/ref" --epochs 2 >/dev/null 2>"$TMP/err" || fail "reference run"
cmp -s "$TMP/int/clip.safetensors" "$TMP/ref/clip.safetensors" \
  || fail "resumed model differs from the uninterrupted one"

# resume refuses a different seed (the data order would differ)
"$RAMC" pretrain-clip "${ARGS[@]}" --seed 6 --out "$TMP/int" --epochs 2 \
  --resume "$TMP/int/checkpoint.safetensors" >/dev/null 2>"$TMP/err"
rc=$?
[ $rc -eq 1 ] || fail "resume with another seed exited $rc"
grep -q "checkpoint.safetensors" "$TMP/err" || fail "resume error does not name the checkpoint: $(cat "$TMP/err")"

# label contrast: the labels a caption names (whole words, any case) count
"$RAMC" pretrain-clip "${ARGS[@]}" --out "$TMP/lab" --epochs 2 --labels-file "$TMP/data/classes_all.txt" \
  >"$TMP/log" 2>"$TMP/err" || fail "pretrain with --labels-file: $(cat "$TMP/err")"
K=$(grep -vc '^\s*$' "$TMP/data/classes_all.txt")
grep -q "\"labels\": $K," "$TMP/lab/metrics.json" || fail "metrics.json labels: $(cat "$TMP/lab/metrics.json")"
n=$(sed -n 's/.*"labelled_pairs": \([0-9]*\).*/\1/p' "$TMP/lab/metrics.json")
[ "${n:-0}" -gt 0 ] || fail "no labelled pairs: $(cat "$TMP/lab/metrics.json")"
grep -q "^labels $K: $n of" "$TMP/log" || fail "no labels line: $(cat "$TMP/log")"
# the label set belongs to the checkpoint: resuming without it is refused
"$RAMC" pretrain-clip "${ARGS[@]}" --out "$TMP/lab" --epochs 3 \
  --resume "$TMP/lab/checkpoint.safetensors" >/dev/null 2>"$TMP/err"
rc=$?
[ $rc -eq 1 ] && grep -q "labels" "$TMP/err" || fail "resume without the labels: rc $rc, $(cat "$TMP/err")"
# matching by hand: 2 of these 4 captions name "red circle"
IMGS=($(ls "$TMP"/data/images/pretrain/*.png | head -n 4))
printf '%s\ta red circle\n%s\ta dark-red circles\n%s\tA RED CIRCLE on stripes\n%s\ta blue star\n' \
  "${IMGS[@]}" > "$TMP/four.tsv"
printf '# one label\nred circle\n' > "$TMP/one.txt"
"$RAMC" pretrain-clip --data "$TMP/four.tsv" --out "$TMP/four" --image-size 32 --vision-width 64 \
  --vision-layers 1 --text-width 64 --text-layers 1 --embed 32 --batch 4 --holdout 0 --epochs 1 \
  --labels-file "$TMP/one.txt" --quiet >/dev/null 2>"$TMP/err" || fail "four captions: $(cat "$TMP/err")"
grep -q '"labelled_pairs": 2,' "$TMP/four/metrics.json" || fail "named labels: $(cat "$TMP/four/metrics.json")"
# a label set no caption names, a template without {}
printf 'purple zebra\n' > "$TMP/none.txt"
"$RAMC" pretrain-clip "${ARGS[@]}" --out "$TMP/x" --labels-file "$TMP/none.txt" >/dev/null 2>"$TMP/err"
rc=$?
[ $rc -eq 1 ] && grep -q "none.txt" "$TMP/err" || fail "unnamed labels: rc $rc, $(cat "$TMP/err")"
"$RAMC" pretrain-clip "${ARGS[@]}" --out "$TMP/x" --labels-file "$TMP/one.txt" --template "a photo" \
  >/dev/null 2>"$TMP/err"
rc=$?
[ $rc -eq 1 ] && grep -q "{}" "$TMP/err" || fail "template without {}: rc $rc, $(cat "$TMP/err")"

# usage errors
"$RAMC" pretrain-clip --out "$TMP/x" >/dev/null 2>&1
[ $? -eq 2 ] || fail "missing --data is not a usage error"
"$RAMC" pretrain-clip --data "$TMP/nope" --out "$TMP/x" --quiet >/dev/null 2>"$TMP/err"
[ $? -eq 1 ] && grep -q "$TMP/nope" "$TMP/err" || fail "missing data folder: $(cat "$TMP/err")"

if [ $fails -ne 0 ]; then
  echo "cli_pretrain: $fails failed"
  exit 1
fi
echo "cli_pretrain: all passed"
