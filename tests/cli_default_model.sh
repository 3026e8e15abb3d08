#!/usr/bin/env bash
# The embedded default model (data/default/) on a fixed synthetic test split:
#  * `ramc eval` without --clip uses it (and says so); its ZSL and GZSL F1@3
#    (OF1 at top-3) and mAP are within TOL of the values recorded in
#    docs/experiments.md ("The embedded default model"), and so are those of
#    plain CLIP (`ramc eval --baseline clip`, no adapter);
#  * `ramc eval --baseline clip` agrees with an independent computation of the
#    same metrics (scripts/experiments_collect.py) from `ramc predict
#    --baseline clip` scores;
#  * `ramc predict` without --clip tags data/samples with all labels (seen and
#    unseen) in the documented format, names at least a third of the objects
#    in the top 5, and writes heat maps;
#  * `ramc train` without --clip announces the default backbone;
#  * a missing default model is an error naming the path.
# The split is regenerated here, the same bytes every time: `ramc synth
# --seed 1000` with the model's own unseen labels (--unseen), 200 images each
# of test_zsl and test_gzsl: images that neither the CLIP nor the adapter saw.
# TOL absorbs another CPU's rounding (and a flipped tie among 600 top-3
# predictions); a real change of the model or the code moves the values more.
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
# fractions: RAM with its adapter, then plain CLIP.
WANT_ZSL_F1=0.468041237113402 WANT_ZSL_MAP=0.5640070885953048 WANT_GZSL_F1=0.3207422133863485 WANT_GZSL_MAP=0.42262396416064835
WANT_CLIP_ZSL_F1=0.4886597938144331 WANT_CLIP_ZSL_MAP=0.5831960178028296 WANT_CLIP_GZSL_F1=0.33532140490391 WANT_CLIP_GZSL_MAP=0.4250996720381923
TOL=0.005

for f in clip.safetensors adapter.safetensors vocab.json merges.txt labels.txt unseen.txt; do
  [ -s "$SRC/data/default/$f" ] || fail "data/default/$f is missing"
done
[ $fails -eq 0 ] || { echo "$fails failures"; exit 1; }

D=$TMP/split
"$RAMC" synth --out "$D" --seed 1000 --unseen "$(paste -sd, "$SRC/data/default/unseen.txt")" \
  --pretrain 0 --train 0 --test 200 --quiet 2>"$TMP/err" || { echo "FAIL: synth: $(cat "$TMP/err")"; exit 1; }
cmp -s "$D/unseen.txt" "$SRC/data/default/unseen.txt" || fail "the split's unseen labels are not the model's"
evaluate() { # evaluate REPORT [ramc eval options]: the split, RAM or plain CLIP
  local report=$1
  shift
  "$RAMC" eval --seen-classes "$D/seen.txt" --unseen-classes "$D/unseen.txt" \
    --test-zsl "$D/test_zsl.json" --test-gzsl "$D/test_gzsl.json" --report "$report" "$@" \
    >"$TMP/eval.txt" 2>"$TMP/err"
}
evaluate "$TMP/report.json" || fail "eval exited $?: $(cat "$TMP/err")"
grep -q "no --clip given: using the embedded default model .*data/default/clip.safetensors and its adapter" \
  "$TMP/err" || fail "eval did not announce the default model: $(cat "$TMP/err")"
evaluate "$TMP/clip.json" --baseline clip || fail "eval --baseline clip exited $?: $(cat "$TMP/err")"
tr -d ' \t\n' <"$TMP/clip.json" | grep -q '"model":"clip-baseline"' || fail "the baseline report is not named clip-baseline"
evaluate "$TMP/x.json" --baseline clop; [ $? -eq 2 ] && grep -q "clop" "$TMP/err" || fail "--baseline clop: want exit 2 naming it"
evaluate "$TMP/x.json" --baseline clip --adapter "$SRC/data/default/adapter.safetensors"
[ $? -eq 2 ] && grep -q "no --adapter" "$TMP/err" || fail "--baseline clip with --adapter: want exit 2: $(cat "$TMP/err")"
[ ! -e "$TMP/x.json" ] || fail "a refused baseline evaluation wrote a report"

# one report per line, then the k=3 OF1 and the mAP of the named report
metric() { # metric REPORT zsl|gzsl OF1|mAP
  local seg
  seg=$(tr -d ' \t\n' <"$1" | sed 's/"schema":/\n/g' | grep "\"name\":\"$2\"")
  if [ "$3" = OF1 ]; then
    printf '%s\n' "$seg" | grep -o '"k":3,"k_used":3,[^}]*' | grep -o '"OF1":[^,}]*' | cut -d: -f2
  else
    printf '%s\n' "$seg" | grep -o '"mAP":[^,}]*' | cut -d: -f2
  fi
}
check() { # check NAME GOT WANT
  awk -v g="$2" -v w="$3" -v t="$TOL" 'BEGIN { d = g - w; exit !(g != "" && d <= t && -d <= t) }' \
    || fail "$1 = ${2:-missing}, not within $TOL of the recorded $3 (docs/experiments.md)"
  echo "$1: $2 (recorded $3)"
}
check "RAM ZSL F1@3" "$(metric "$TMP/report.json" zsl OF1)" "$WANT_ZSL_F1"
check "RAM ZSL mAP" "$(metric "$TMP/report.json" zsl mAP)" "$WANT_ZSL_MAP"
check "RAM GZSL F1@3" "$(metric "$TMP/report.json" gzsl OF1)" "$WANT_GZSL_F1"
check "RAM GZSL mAP" "$(metric "$TMP/report.json" gzsl mAP)" "$WANT_GZSL_MAP"
check "CLIP ZSL F1@3" "$(metric "$TMP/clip.json" zsl OF1)" "$WANT_CLIP_ZSL_F1"
check "CLIP ZSL mAP" "$(metric "$TMP/clip.json" zsl mAP)" "$WANT_CLIP_ZSL_MAP"
check "CLIP GZSL F1@3" "$(metric "$TMP/clip.json" gzsl OF1)" "$WANT_CLIP_GZSL_F1"
check "CLIP GZSL mAP" "$(metric "$TMP/clip.json" gzsl mAP)" "$WANT_CLIP_GZSL_MAP"

# The baseline's metrics recomputed in Python from predict's scores (another
# implementation of OF1@3 and mAP, docs/metrics.md): within 2e-3, as predict
# prints 6 significant digits and a tie may break the other way.
if command -v python3 >/dev/null; then
  cat "$D/seen.txt" "$D/unseen.txt" >"$TMP/gzsl_labels.txt"
  for s in zsl gzsl; do
    labels=$D/unseen.txt
    [ $s = gzsl ] && labels=$TMP/gzsl_labels.txt
    "$RAMC" predict --baseline clip --labels-file "$labels" --top-k 0 --format tsv \
      "$D/images/test_$s" >"$TMP/clip_$s.tsv" 2>"$TMP/err" || fail "predict --baseline clip: $(cat "$TMP/err")"
  done
  python3 - "$SRC/scripts" "$D" "$TMP" "$(metric "$TMP/clip.json" zsl OF1)" "$(metric "$TMP/clip.json" zsl mAP)" \
    "$(metric "$TMP/clip.json" gzsl OF1)" "$(metric "$TMP/clip.json" gzsl mAP)" <<'PY' || fail "eval --baseline clip disagrees with predict's scores"
import os, sys
sys.path.insert(0, sys.argv[1])
import experiments_collect as ec
D, T = sys.argv[2], sys.argv[3]
got = [float(x) for x in sys.argv[4:8]]
seen, unseen = ec.read_list(os.path.join(D, "seen.txt")), ec.read_list(os.path.join(D, "unseen.txt"))
want = []
for s, classes in (("zsl", unseen), ("gzsl", seen + unseen)):
    m = ec.clip_baseline(os.path.join(T, f"clip_{s}.tsv"), os.path.join(D, f"test_{s}.json"), classes)
    want += [m["F1"] / 100, m["mAP"] / 100]
bad = [(g, w) for g, w in zip(got, want) if abs(g - w) > 2e-3]
print("baseline, eval vs Python:", got, want)
sys.exit(1 if bad else 0)
PY
fi

# predict on the shipped samples with the open vocabulary (all labels): the
# README's main command, as a format check and a quality gate (the file names
# list the objects drawn)
"$RAMC" predict --labels-file "$SRC/data/default/labels.txt" --top-k 5 --format tsv \
  --explain "$TMP/maps" "$SRC/data/samples" >"$TMP/pred.tsv" 2>"$TMP/err"
rc=$?
[ $rc -eq 0 ] || fail "predict exited $rc: $(cat "$TMP/err")"
grep -q "no --clip given: using the embedded default model" "$TMP/err" \
  || fail "predict did not announce the default model: $(cat "$TMP/err")"
n_img=$(find "$SRC/data/samples" -name '*.png' | wc -l)
[ "$n_img" -ge 6 ] || fail "only $n_img sample images"
[ "$(wc -l <"$TMP/pred.tsv")" -eq $((5 * n_img)) ] || fail "expected 5 lines per image: $(cat "$TMP/pred.tsv")"
awk -F'\t' 'NF != 3 || $3 !~ /^[0-9.e+-]+$/ { bad = 1 } END { exit bad }' "$TMP/pred.tsv" \
  || fail "bad TSV line in: $(cat "$TMP/pred.tsv")"
[ "$(find "$TMP/maps" -name '*.png' | wc -l)" -ge "$n_img" ] || fail "no heat maps written"
named=0 objects=0
for img in "$SRC"/data/samples/*.png; do
  base=$(basename "$img" .png)
  want=$(printf '%s\n' "${base//+/$'\n'}" | tr '-' ' ')
  top=$(awk -F'\t' -v p="$img" '$1 == p { print $2 }' "$TMP/pred.tsv")
  n=$(printf '%s\n' "$want" | wc -l)
  k=$(printf '%s\n' "$want" | grep -Fxc -f <(printf '%s\n' "$top"))
  echo "$base: $k of $n objects in the top 5"
  named=$((named + k)) objects=$((objects + n))
done
echo "samples: $named of $objects objects named in their image's top 5"
# The goal is most of them (issue 11); the shipped CLIP gets the shape of a
# lone object right 85% of the time and less in busy scenes, so the model
# names 25 of the 45 (14 of the 30 in the busy world-v2 scenes;
# docs/experiments.md). The gate is a third, so that a flipped tie on another
# CPU cannot break it while a broken model (colours and shapes at random:
# ~8% of objects in a top 5 of 64) does.
[ $((3 * named)) -ge "$objects" ] || fail "fewer than a third of the samples' objects are named"

# ramc convert: float16 -> float32 is exact, so the converted CLIP (with its
# tokenizer beside it) predicts exactly as the shipped one
mkdir -p "$TMP/c32"
"$RAMC" convert --f32 "$SRC/data/default/clip.safetensors" "$TMP/c32/clip.safetensors" 2>"$TMP/err" \
  || fail "convert exited $?: $(cat "$TMP/err")"
cp "$SRC/data/default/vocab.json" "$SRC/data/default/merges.txt" "$TMP/c32/"
[ "$(stat -c %s "$TMP/c32/clip.safetensors")" -gt "$(stat -c %s "$SRC/data/default/clip.safetensors")" ] \
  || fail "the float32 copy is not larger"
"$RAMC" predict --clip "$TMP/c32/clip.safetensors" --adapter "$SRC/data/default/adapter.safetensors" \
  --labels-file "$SRC/data/default/labels.txt" --top-k 5 --format tsv "$SRC/data/samples" \
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
first=$(find "$SRC/data/samples" -name '*.png' | sort | head -1)
label=$(basename "$first" .png | cut -d+ -f1 | tr '-' ' ')
printf '%s\t%s\n' "$first" "$label" >"$TMP/t.tsv"
printf '%s\n' "$label" >"$TMP/seen.txt"
"$RAMC" train --train "$TMP/t.tsv" --seen-classes "$TMP/seen.txt" --output "$TMP/run" --set batch_size=1 --set workers=1 \
  --set use_ema=false --max-steps 1 --quiet >/dev/null 2>"$TMP/err" || fail "train exited $?: $(cat "$TMP/err")"
grep -q "no --clip given: using the embedded default model .* as the backbone" "$TMP/err" \
  || fail "train did not announce the default backbone: $(cat "$TMP/err")"

# no default model: an error naming where it was looked for
RAMC_DATA_DIR=$TMP/nowhere "$RAMC" predict --labels a "$SRC/data/samples" >/dev/null 2>"$TMP/err"
[ $? -eq 1 ] || fail "missing default model: want exit 1"
grep -q "$TMP/nowhere/default/clip.safetensors" "$TMP/err" || fail "missing model message: $(cat "$TMP/err")"

[ $fails -eq 0 ] && echo "cli_default_model: all checks passed" || { echo "$fails failures"; exit 1; }
