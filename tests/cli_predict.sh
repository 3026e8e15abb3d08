#!/usr/bin/env bash
# ramc predict end to end on the image fixtures with the tiny golden model:
# output formats, --explain PNGs, and the error paths (exit codes, messages).
# usage: cli_predict.sh RAMC_BINARY GOLDEN_DIR SOURCE_DIR
set -u
RAMC=$1 GOLDEN=$2 SRC=$3
G=$GOLDEN/tiny-s0
FIX=$SRC/tests/fixtures/images
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
MODEL=(--clip "$G/weights.safetensors" --adapter "$G/adapter.safetensors" --vision-heads 2 --text-heads 2)
LABELS="cat,dog,person,coffee cup,rocket"

# pick a JPEG and a PNG among the fixtures
JPG=$(ls "$FIX"/*.jpg | head -n 1)
PNG=$(ls "$FIX"/*.png | head -n 1)
[ -f "$JPG" ] && [ -f "$PNG" ] || { echo "FAIL: no fixtures in $FIX"; exit 1; }

# --- JSON, two images, top-k 3
"$RAMC" predict "${MODEL[@]}" --labels "$LABELS" --top-k 3 "$JPG" "$PNG" >"$TMP/out.json" 2>"$TMP/err"
rc=$?
[ $rc -eq 0 ] || fail "json run exited $rc: $(cat "$TMP/err")"
[ "$(wc -l <"$TMP/out.json")" -eq 2 ] || fail "expected 2 JSON lines, got $(wc -l <"$TMP/out.json")"
grep -q "^{\"image\":\"$JPG\",\"labels\":\[{\"label\":\"" "$TMP/out.json" || fail "JSON line for $JPG"
for l in 1 2; do
  n=$(sed -n "${l}p" "$TMP/out.json" | grep -o '"label":' | wc -l)
  [ "$n" -eq 3 ] || fail "line $l: $n labels, want 3"
  sed -n "${l}p" "$TMP/out.json" | grep -Eq '"score":[0-9.e+-]+' || fail "line $l: no numeric score"
done
if command -v python3 >/dev/null; then
  python3 -c 'import json,sys
for line in open(sys.argv[1]):
    o = json.loads(line); s = [x["score"] for x in o["labels"]]
    assert s == sorted(s, reverse=True), s
    assert all(x["label"] in sys.argv[2].split(",") for x in o["labels"])' "$TMP/out.json" "$LABELS" \
    || fail "JSON does not parse or is not ranked"
fi

# --- TSV, all labels via threshold 0, labels from a file; JSON escapes odd names
printf 'cat\n\n# a comment\ndog\n"quoted" label\n' >"$TMP/labels.txt"
"$RAMC" predict "${MODEL[@]}" --labels-file "$TMP/labels.txt" --threshold 0 --format tsv "$JPG" >"$TMP/out.tsv" 2>"$TMP/err" \
  || fail "tsv run: $(cat "$TMP/err")"
[ "$(wc -l <"$TMP/out.tsv")" -eq 3 ] || fail "tsv: expected 3 lines"
awk -F'\t' 'NF != 3 { exit 1 }' "$TMP/out.tsv" || fail "tsv: 3 tab-separated fields"
grep -q $'\t"quoted" label\t' "$TMP/out.tsv" || fail "tsv: quoted label"
"$RAMC" predict "${MODEL[@]}" --labels-file "$TMP/labels.txt" "$JPG" | grep -q '"label":"\\"quoted\\" label"' \
  || fail "JSON escapes quotes"

# --- --bf16: every score within 5e-2 of float32's (the scores of an image sum to 1; on this
# random tiny model the local Sinkhorn's small temperature amplifies bf16's rounding: seen 2.7e-2),
# and the same best label per image
"$RAMC" predict "${MODEL[@]}" --labels "$LABELS" --threshold 0 --format tsv "$JPG" "$PNG" >"$TMP/f32.tsv" 2>/dev/null \
  || fail "f32 tsv run"
"$RAMC" predict "${MODEL[@]}" --labels "$LABELS" --threshold 0 --format tsv --bf16 "$JPG" "$PNG" >"$TMP/bf16.tsv" 2>"$TMP/err" \
  || fail "bf16 run: $(cat "$TMP/err")"
[ "$(wc -l <"$TMP/bf16.tsv")" -eq 10 ] || fail "bf16: expected 10 lines"
awk -F'\t' 'NR == FNR { s[$1 FS $2] = $3; next }
             !(($1 FS $2) in s) { bad = 1 }
             { d = $3 - s[$1 FS $2]; if (d < 0) d = -d; if (d > 5e-2) bad = 1 }
             END { exit bad }' "$TMP/f32.tsv" "$TMP/bf16.tsv" || fail "bf16 scores stray more than 5e-2 from float32"
[ "$(awk -F'\t' '!seen[$1]++ { print $1, $2 }' "$TMP/f32.tsv")" = "$(awk -F'\t' '!seen[$1]++ { print $1, $2 }' "$TMP/bf16.tsv")" ] \
  || fail "bf16 changes the best label of an image"

# --- directory walk (sorted, recursive, case-insensitive extensions) and batch independence
mkdir -p "$TMP/dir/sub"
cp "$JPG" "$TMP/dir/b.JPG"; cp "$PNG" "$TMP/dir/sub/a.png"; cp "$JPG" "$TMP/dir/a.jpeg"; echo x >"$TMP/dir/notes.txt"
"$RAMC" predict "${MODEL[@]}" --labels "$LABELS" --batch 1 "$TMP/dir" >"$TMP/walk1" 2>"$TMP/err" || fail "walk: $(cat "$TMP/err")"
"$RAMC" predict "${MODEL[@]}" --labels "$LABELS" --batch 3 "$TMP/dir" >"$TMP/walk3" || fail "walk batch 3"
got=$(sed 's/^{"image":"\([^"]*\)".*/\1/' "$TMP/walk1" | tr '\n' ' ')
want="$TMP/dir/a.jpeg $TMP/dir/b.JPG $TMP/dir/sub/a.png "
[ "$got" = "$want" ] || fail "walk order: '$got', want '$want'"
cmp -s "$TMP/walk1" "$TMP/walk3" || fail "results depend on --batch"

# --- baseline
"$RAMC" predict "${MODEL[@]}" --labels "$LABELS" --baseline clip "$JPG" >"$TMP/base" || fail "baseline run"
grep -q '"label":"' "$TMP/base" || fail "baseline output"
cmp -s "$TMP/base" <(head -n 1 "$TMP/out.json") && fail "baseline equals RAM output"

# --- zero-shot (no adapter)
"$RAMC" predict --clip "$G/weights.safetensors" --vision-heads 2 --text-heads 2 --labels "$LABELS" "$JPG" \
  | grep -q '"label":"' || fail "zero-shot run"

# --- explain: PNGs with a valid signature, named after image and labels
"$RAMC" predict "${MODEL[@]}" --labels "$LABELS" --top-k 2 --explain "$TMP/ex" "$JPG" "$PNG" >/dev/null 2>"$TMP/err" \
  || fail "explain run: $(cat "$TMP/err")"
stem=$(basename "$JPG"); stem=${stem%.*}
for f in "$stem.overview.png" "$stem.lpd.png"; do
  [ -f "$TMP/ex/$f" ] || fail "explain: missing $f"
done
n=$(ls "$TMP/ex" | grep -c "^$stem\.0[12]-.*\.png$")
[ "$n" -eq 2 ] || fail "explain: $n label maps for $stem, want 2"
[ "$(ls "$TMP/ex" | wc -l)" -eq 8 ] || fail "explain: $(ls "$TMP/ex" | wc -l) files, want 8"
for f in "$TMP"/ex/*; do
  [ "$(head -c 8 "$f" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ] || fail "not a PNG: $f"
done
ls "$TMP/ex" | grep -q tmp && fail "explain left temporary files"
"$RAMC" predict "${MODEL[@]}" --labels "$LABELS" --baseline clip --explain "$TMP/ex2" "$JPG" 2>/dev/null
[ $? -eq 2 ] || fail "--explain with --baseline should be a usage error"

# --- error paths
"$RAMC" predict --clip "$TMP/missing.safetensors" --labels "$LABELS" "$JPG" >/dev/null 2>"$TMP/err"
rc=$?
[ $rc -eq 1 ] || fail "missing weights: exit $rc"
grep -q "$TMP/missing.safetensors" "$TMP/err" || fail "missing weights: message lacks the path: $(cat "$TMP/err")"

head -c 100000 "$G/weights.safetensors" >"$TMP/trunc.safetensors"
"$RAMC" predict --clip "$TMP/trunc.safetensors" --labels "$LABELS" "$JPG" >/dev/null 2>"$TMP/err"
rc=$?
[ $rc -eq 1 ] || fail "truncated weights: exit $rc (crash if > 128)"
grep -q "trunc.safetensors" "$TMP/err" || fail "truncated weights: message lacks the file: $(cat "$TMP/err")"

"$RAMC" predict "${MODEL[@]}" --labels "" "$JPG" >/dev/null 2>"$TMP/err"
[ $? -eq 2 ] || fail "empty --labels: not a usage error"
grep -q "empty" "$TMP/err" || fail "empty --labels message: $(cat "$TMP/err")"
"$RAMC" predict "${MODEL[@]}" --labels "cat,,dog" "$JPG" >/dev/null 2>&1
[ $? -eq 2 ] || fail "empty label item: not a usage error"
"$RAMC" predict "${MODEL[@]}" --labels "cat,dog,cat" "$JPG" >/dev/null 2>"$TMP/err"
[ $? -eq 1 ] && grep -q duplicate "$TMP/err" || fail "duplicate label: $(cat "$TMP/err")"
"$RAMC" predict "${MODEL[@]}" --labels $'cat,d\xffg' "$JPG" >/dev/null 2>"$TMP/err"
[ $? -eq 1 ] && grep -q "UTF-8" "$TMP/err" || fail "invalid UTF-8 label: $(cat "$TMP/err")"
printf '\n# nothing\n' >"$TMP/empty.txt"
"$RAMC" predict "${MODEL[@]}" --labels-file "$TMP/empty.txt" "$JPG" >/dev/null 2>&1
[ $? -eq 1 ] || fail "empty labels file"
"$RAMC" predict "${MODEL[@]}" --labels "$LABELS" --template "no slot" "$JPG" >/dev/null 2>&1
[ $? -eq 1 ] || fail "template without {}"
"$RAMC" predict "${MODEL[@]}" "$JPG" >/dev/null 2>&1
[ $? -eq 2 ] || fail "no labels: not a usage error"
"$RAMC" predict "${MODEL[@]}" --labels "$LABELS" >/dev/null 2>&1
[ $? -eq 2 ] || fail "no images: not a usage error"
"$RAMC" predict "${MODEL[@]}" --labels "$LABELS" --format xml "$JPG" >/dev/null 2>&1
[ $? -eq 2 ] || fail "--format xml: not a usage error"
"$RAMC" predict "${MODEL[@]}" --labels "$LABELS" --bogus "$JPG" >/dev/null 2>&1
[ $? -eq 2 ] || fail "unknown option: not a usage error"
"$RAMC" predict --help | grep -q "example" || fail "--help has no example"

# corrupt and missing images: named on stderr, the others still printed, exit 1
head -c 300 "$JPG" >"$TMP/corrupt.jpg"
echo "not an image" >"$TMP/text.png"
"$RAMC" predict "${MODEL[@]}" --labels "$LABELS" --batch 2 "$JPG" "$TMP/corrupt.jpg" "$TMP/text.png" \
  "$TMP/nothere.jpg" "$PNG" >"$TMP/out" 2>"$TMP/err"
rc=$?
[ $rc -eq 1 ] || fail "corrupt images: exit $rc"
grep -q "corrupt.jpg" "$TMP/err" || fail "corrupt image not named: $(cat "$TMP/err")"
grep -q "text.png" "$TMP/err" || fail "non-image not named"
grep -q "nothere.jpg" "$TMP/err" || fail "missing image not named"
[ "$(wc -l <"$TMP/out")" -eq 2 ] || fail "good images not all printed: $(cat "$TMP/out")"
grep -q "\"image\":\"$PNG\"" "$TMP/out" || fail "image after the corrupt ones missing"

if [ $fails -ne 0 ]; then
  echo "cli_predict: $fails failed"
  exit 1
fi
echo "cli_predict: all passed"
