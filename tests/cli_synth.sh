#!/usr/bin/env bash
# `ramc synth` end to end: a small run writes every file with consistent
# counts, a second run with the same seed is byte-identical, --help, bad
# arguments exit 2, a non-empty output folder is refused (exit 1) and left
# untouched. Needs only bash and coreutils.
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

# --unseen LIST and --strict-pretrain
if run 0 --out "$WORK/d" --seed 1 --pretrain 30 --train 10 --test 10 --quiet --strict-pretrain \
    --unseen "red star,blue ring"; then
    check "--unseen list kept" test "$(cat "$WORK/d/unseen.txt" | paste -sd,)" = "blue ring,red star"
    check "strict: no unseen phrase in captions" bash -c "! grep -E 'red star|blue ring' '$WORK/d/pretrain.tsv'"
fi

# Bad usage: exit 2, nothing written.
run 2 && check "no --out" grep -q "no output folder" "$WORK/err"
run 2 --out "$WORK/e" --size 16
run 2 --out "$WORK/e" --size 64x64
run 2 --out "$WORK/e" --train -1
run 2 --out "$WORK/e" --train 2000000
run 2 --out "$WORK/e" --max-objects 7
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
