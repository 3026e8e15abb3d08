#!/usr/bin/env bash
# `ramc synth` end to end: a small run writes every file with consistent
# counts, a second run with the same seed is byte-identical, --help, bad
# arguments exit 2, a non-empty output folder is refused (exit 1) and left
# untouched. Needs bash, coreutils and python3 (the --objects check).
# usage: cli_synth.sh RAMC_BINARY GOLDEN_DIR SOURCE_DIR
set -u
RAMC=$1
WORK=$(mktemp -d "${TMPDIR:-/tmp}/cli_synth.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
source "$3/tests/lib_cli.sh"
run() { run_ramc synth "$@"; } # run EXPECTED_RC ARGS...

run 0 --help && check "--help prints usage" grep -q "usage: ramc synth" "$WORK/out"
check "listed by ramc --help" bash -c "'$RAMC' --help | grep -q '^  synth'"

small=(--seed 3 --pretrain 40 --train 30 --test 20 --quiet)
if run 0 --out "$WORK/a" "${small[@]}"; then
    for f in pretrain.tsv classes_all.txt seen.txt unseen.txt train.json test_zsl.json test_gzsl.json manifest.json; do
        check "$f written" test -s "$WORK/a/$f"
    done
    check "40 pre-training lines" test "$(wc -l <"$WORK/a/pretrain.tsv")" -eq 40
    check "64 classes" test "$(wc -l <"$WORK/a/classes_all.txt")" -eq 64
    check "16 unseen (fraction 0.25)" test "$(wc -l <"$WORK/a/unseen.txt")" -eq 16
    check "48 seen" test "$(wc -l <"$WORK/a/seen.txt")" -eq 48
    check "40 + 30 + 20 + 20 PNGs" test "$(find "$WORK/a/images" -name '*.png' | wc -l)" -eq 110
    check "no temporary files left" test -z "$(find "$WORK/a" -name '*.tmp.*')"
    check "images are PNG" bash -c "head -c 8 '$WORK/a/images/train/000000.png' | od -c | grep -q 'P   N   G'"
    check "30 train entries" test "$(grep -c '"images/train/' "$WORK/a/train.json")" -eq 30
    # No unseen label in train.json (labels are quoted; a name is never
    # a quoted substring of another).
    leaked=$(grep -c -F -f <(sed 's/.*/"&"/' "$WORK/a/unseen.txt") "$WORK/a/train.json" || true)
    check "no unseen label in train.json" test "$leaked" -eq 0
    zsl=$(grep -c -F -f <(sed 's/.*/"&"/' "$WORK/a/unseen.txt") "$WORK/a/test_zsl.json" || true)
    check "every test_zsl image carries an unseen label (+1 for classes)" test "$zsl" -eq 21
    # Same seed: same bytes.
    run 0 --out "$WORK/b" "${small[@]}" --threads 1 &&
        check "same seed, identical folders" diff -r -q "$WORK/a" "$WORK/b"
    run 0 --out "$WORK/c" --seed 4 --pretrain 40 --train 30 --test 20 --quiet &&
        check "another seed, other images" bash -c "! cmp -s '$WORK/a/images/train/000000.png' '$WORK/c/images/train/000000.png'"
    # A non-empty folder is refused and left as it was.
    cp "$WORK/a/manifest.json" "$WORK/manifest.before"
    run 1 --out "$WORK/a" --seed 9 --pretrain 5 --train 5 --test 5 --quiet &&
        check "refusal explains --force" grep -q -- "--force" "$WORK/err"
    check "refused run changed nothing" cmp -s "$WORK/a/manifest.json" "$WORK/manifest.before"
    run 0 --out "$WORK/a" --seed 9 --pretrain 5 --train 5 --test 5 --quiet --force &&
        check "--force rewrote the manifest" bash -c "! cmp -s '$WORK/a/manifest.json' '$WORK/manifest.before'"
fi

# World v1 is byte-identical to the generator before world v2 existed: these
# hashes (sha256 of the sorted per-file sha256 list) were computed with the
# binary built from main at c28023f, which had no --world option.
tree_hash() { (cd "$1" && find . -type f | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -d' ' -f1); }
if run 0 --world v1 --out "$WORK/v1a" --seed 3 --pretrain 40 --train 30 --test 20 --quiet; then
    check "v1 bytes unchanged (seed 3, defaults)" \
        test "$(tree_hash "$WORK/v1a")" = 406468cad8072a584168a44168a1ef60cf954427c1950761fd7d7820299209f2
fi
if run 0 --world v1 --out "$WORK/v1b" --seed 7 --pretrain 20 --train 20 --test 20 --quiet \
    --strict-pretrain --max-objects 6 --size 48; then
    check "v1 bytes unchanged (seed 7, strict, 6 objects, 48 px)" \
        test "$(tree_hash "$WORK/v1b")" = fd35ddb598abbda21ab60c4894adac7615256875ba6ac72e16215db04fa86940
fi

# World v2 (the default): its manifest, up to 8 objects, strict pre-training
# by default (no unseen phrase in any caption), at most 4 objects per
# pre-training caption.
if run 0 --out "$WORK/v2" --seed 5 --pretrain 300 --train 100 --test 40 --quiet; then
    check "v2 manifest" grep -q '"generator":.*"ramc-synth 2"' "$WORK/v2/manifest.json"
    check "v2: no unseen phrase in captions" \
        bash -c "! grep -q -F -f '$WORK/v2/unseen.txt' '$WORK/v2/pretrain.tsv'"
    # labels per training image: the commas between quoted labels, plus one
    most=$(grep '^  \["images/train' "$WORK/v2/train.json" | awk '{ n = gsub(/", "/, "&") + 1; if (n > m) m = n } END { print m }')
    check "v2: some training image holds 7-8 objects ($most)" test "$most" -ge 7
    # objects per caption: the colour words (each object is "a COLOUR SHAPE")
    cap=$(cut -f2 "$WORK/v2/pretrain.tsv" | awk '{ n = gsub(/ (red|green|blue|yellow|purple|orange|white|black) /, "&"); if (n > m) m = n } END { print m }')
    check "v2: at most 4 objects per caption ($cap)" test "$cap" -le 4 -a "$cap" -ge 3
    run 0 --out "$WORK/v2b" --seed 5 --pretrain 300 --train 100 --test 40 --quiet --threads 1 &&
        check "v2: same seed, identical folders" diff -r -q "$WORK/v2" "$WORK/v2b"
    check "v2 differs from v1" bash -c "! cmp -s '$WORK/v2/images/train/000000.png' '$WORK/v1a/images/train/000000.png'"
fi
if run 0 --out "$WORK/v2c" --seed 5 --pretrain 600 --train 0 --test 0 --quiet --no-strict-pretrain; then
    check "--no-strict-pretrain: unseen phrases in captions" grep -q -F -f "$WORK/v2c/unseen.txt" "$WORK/v2c/pretrain.tsv"
fi

# --unseen LIST and --strict-pretrain
if run 0 --out "$WORK/d" --seed 1 --pretrain 30 --train 10 --test 10 --quiet --strict-pretrain \
    --unseen "red star,blue ring"; then
    check "--unseen list kept" test "$(cat "$WORK/d/unseen.txt" | paste -sd,)" = "blue ring,red star"
    check "strict: no unseen phrase in captions" bash -c "! grep -E 'red star|blue ring' '$WORK/d/pretrain.tsv'"
fi

# --objects: one line per image of every split, labels as in the dataset files,
# geometry inside the image; without the flag no such file.
check "objects.jsonl only on request" test ! -e "$WORK/d/objects.jsonl"
if run 0 --out "$WORK/o" --seed 3 --pretrain 7 --train 5 --test 6 --quiet --objects; then
    check "objects.jsonl: a line per image" test "$(wc -l < "$WORK/o/objects.jsonl")" = 24
    check "objects.jsonl agrees with the dataset files" /usr/bin/env python3 - "$WORK/o" <<'PY'
import json, os, sys
d = sys.argv[1]
lines = [json.loads(l) for l in open(os.path.join(d, "objects.jsonl"))]
by = {(r["split"], r["image"]): r["objects"] for r in lines}
size = json.load(open(os.path.join(d, "manifest.json")))["size"]
for split in ("train", "test_zsl", "test_gzsl"):
    for path, labels in json.load(open(os.path.join(d, split + ".json")))["images"]:
        objs = by[(split, path)]
        assert sorted(o["label"] for o in objs if o["labelled"]) == sorted(labels), (split, path)
        for o in objs:
            assert 0 <= o["cx"] <= size and 0 <= o["cy"] <= size and 0 < o["radius"] < size / 2, o
for line in open(os.path.join(d, "pretrain.tsv")):
    path, caption = line.rstrip("\n").split("\t")
    for o in by[("pretrain", path)]:
        assert o["label"] in caption, (path, o["label"], caption)
PY
fi

# Bad usage: exit 2, nothing written.
run 2 && check "no --out" grep -q "no output folder" "$WORK/err"
run 2 --out "$WORK/e" --size 16
run 2 --out "$WORK/e" --size 64x64
run 2 --out "$WORK/e" --train -1
run 2 --out "$WORK/e" --train 2000000
run 2 --out "$WORK/e" --max-objects 9
run 2 --out "$WORK/e" --world v1 --max-objects 7 && check "names the world" grep -q "v1" "$WORK/err"
run 2 --out "$WORK/e" --world v3 && check "names the bad world" grep -q "v3" "$WORK/err"
run 2 --out "$WORK/e" --pretrain-max-objects 0
run 2 --out "$WORK/e" --min-objects 3 --max-objects 2
run 2 --out "$WORK/e" --unseen-fraction 1.5
run 2 --out "$WORK/e" --unseen-fraction 0.95 && check "explains the word rule" grep -q "at most" "$WORK/err"
run 2 --out "$WORK/e" --unseen "red stars" && check "names the label" grep -q "red stars" "$WORK/err"
run 2 --out "$WORK/e" --unseen "red star" --unseen-fraction 0.2
run 2 --out "$WORK/e" --colours "red,mauve"
run 2 --out "$WORK/e" --seed abc
run 2 --out "$WORK/e" --bogus
run 2 --out
check "bad usage wrote nothing" test ! -e "$WORK/e"

summary cli_synth
