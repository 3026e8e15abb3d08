#!/usr/bin/env bash
# ramc predict/eval --score official|independent and predict --thresholds FILE
# (docs/predict.md "Scores"), with the embedded default model on the samples:
# independent scores do not move when other labels are asked, official ones
# do; the thresholds file's format and every error path (file and line named,
# nothing printed on stdout).
# usage: cli_scores.sh RAMC_BINARY GOLDEN_DIR SOURCE_DIR
set -u
RAMC=$1 SRC=$3
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
# shellcheck source=tests/lib_cli.sh
. "$SRC/tests/lib_cli.sh"
IMG=$SRC/data/samples/red-heart+yellow-square.png
IMG2=$SRC/data/samples/yellow-ring+purple-ring.png
ALL=$SRC/data/default/labels.txt
FEW="red heart,yellow square,blue circle,black ring"

# --- independent: the same per label with 4 labels as with all 64
run_ramc predict 0 --labels "$FEW" --score independent --top-k 0 --format tsv "$IMG" "$IMG2"
cp "$WORK/out" "$WORK/few.tsv"
run_ramc predict 0 --labels-file "$ALL" --score independent --top-k 0 --format tsv "$IMG" "$IMG2"
cp "$WORK/out" "$WORK/all.tsv"
check "independent: 8 lines for 4 labels x 2 images" [ "$(wc -l <"$WORK/few.tsv")" -eq 8 ]
check "independent: 128 lines for 64 labels x 2 images" [ "$(wc -l <"$WORK/all.tsv")" -eq 128 ]
same() {  # every (image, label) of $1 found in $2 within $3
    awk -F'\t' -v tol="$3" 'NR == FNR { s[$1 FS $2] = $3; next }
        ($1 FS $2) in s { n++; d = $3 - s[$1 FS $2]; if (d < 0) d = -d; if (d > tol) bad = 1 }
        END { exit bad || n == 0 }' "$1" "$2"
}
check "independent scores do not depend on the other labels asked" same "$WORK/few.tsv" "$WORK/all.tsv" 1e-5
check "independent scores are not a distribution (sum over 64 is not 1)" \
    awk -F'\t' '$1 ~ /red-heart/ { s += $3 } END { exit (s > 0.99 && s < 1.01) }' "$WORK/all.tsv"

# --- official: the default, sums to 1, and moves with the other labels
run_ramc predict 0 --labels "$FEW" --top-k 0 --format tsv "$IMG" "$IMG2"
cp "$WORK/out" "$WORK/off_few.tsv"
run_ramc predict 0 --labels "$FEW" --score official --top-k 0 --format tsv "$IMG" "$IMG2"
check "official is the default score" cmp -s "$WORK/out" "$WORK/off_few.tsv"
run_ramc predict 0 --labels-file "$ALL" --top-k 0 --format tsv "$IMG" "$IMG2"
cp "$WORK/out" "$WORK/off_all.tsv"
check "official scores sum to 1 over the labels asked" \
    awk -F'\t' '$1 ~ /red-heart/ { s += $3 } END { exit !(s > 0.999 && s < 1.001) }' "$WORK/off_all.tsv"
check "official scores move with the other labels asked" bash -c "! awk -F'\t' -v tol=1e-3 '
    NR == FNR { s[\$1 FS \$2] = \$3; next }
    (\$1 FS \$2) in s { d = \$3 - s[\$1 FS \$2]; if (d < 0) d = -d; if (d > tol) bad = 1 }
    END { exit bad }' '$WORK/off_few.tsv' '$WORK/off_all.tsv'"

# --- JSON says which score it holds (after the labels: earlier fields keep their places)
run_ramc predict 0 --labels "$FEW" --score independent "$IMG"
check "JSON score_type independent" grep -q '^{"image":"[^"]*","labels":\[.*\],"score_type":"independent"}$' "$WORK/out"
run_ramc predict 0 --labels "$FEW" "$IMG"
check "JSON score_type official" grep -q '"score_type":"official"}$' "$WORK/out"
run_ramc predict 2 --labels "$FEW" --score calibrated "$IMG"
check "bad --score named" grep -q "invalid value 'calibrated' for --score" "$WORK/err"

# --- per-label thresholds: each label against its own; comments, blanks, spaces
# around fields and CRLF are fine; labels not asked get one warning
score_of() { awk -F'\t' -v l="$1" '$2 == l { print $3 }' "$WORK/few.tsv" | head -n 1; }
rh=$(score_of "red heart") ys=$(score_of "yellow square")
printf '# thresholds\n\nred heart\t0\r\n yellow square \t 1\nblue circle\t1\nblack ring\t1\nwhite star\t0.5\npink hexagon\t0.5\n' \
    >"$WORK/t.tsv"
run_ramc predict 0 --labels "$FEW" --score independent --thresholds "$WORK/t.tsv" --format tsv "$IMG"
check "thresholds: only the label under its threshold of 0 is printed" \
    [ "$(cut -f2 "$WORK/out")" = "red heart" ]
check "thresholds: 2 labels not asked, one warning naming the file and the first" \
    grep -q "t.tsv: 2 labels not asked for, ignored (the first, line 7: \"white star\")" "$WORK/err"
# a fallback for the labels the file leaves out
printf 'red heart\t1\n' >"$WORK/t1.tsv"
run_ramc predict 0 --labels "$FEW" --score independent --thresholds "$WORK/t1.tsv" --threshold 0 --format tsv "$IMG"
check "thresholds + --threshold: the others use the fallback" [ "$(wc -l <"$WORK/out")" -eq 3 ]
check "thresholds + --threshold: red heart held back by its own" bash -c "! grep -q 'red heart' '$WORK/out'"
# a threshold between the two labels' own scores splits them
mid=$(awk -v a="$rh" -v b="$ys" 'BEGIN { printf "%.9f", (a + b) / 2 }')
printf 'red heart\t%s\nyellow square\t%s\nblue circle\t1\nblack ring\t1\n' "$mid" "$mid" >"$WORK/t2.tsv"
run_ramc predict 0 --labels "$FEW" --score independent --thresholds "$WORK/t2.tsv" --format tsv "$IMG"
want=$(awk -v a="$rh" -v b="$ys" 'BEGIN { print (a > b ? "red heart" : "yellow square") }')
check "thresholds: the midpoint keeps the higher of two labels ($rh, $ys)" [ "$(cut -f2 "$WORK/out")" = "$want" ]

# --- thresholds file errors: exit 1, file (and line) named, nothing on stdout
bad_file() {  # DESCRIPTION CONTENT EXPECTED-MESSAGE [EXTRA ARGS...]
    local what=$1 content=$2 msg=$3
    shift 3
    printf "$content" >"$WORK/bad.tsv"
    run_ramc predict 1 --labels "$FEW" --score independent --thresholds "$WORK/bad.tsv" "$@" "$IMG"
    check "$what: message '$msg'" grep -qF "$msg" "$WORK/err"
    check "$what: nothing printed" [ ! -s "$WORK/out" ]
}
bad_file "no TAB" 'red heart 0.5\n' "bad.tsv:1: expected label<TAB>threshold, found no TAB"
bad_file "two TABs" '# c\nred heart\t0.5\t1\n' "bad.tsv:2: more than one TAB"
bad_file "not a number" 'red heart\thigh\n' "bad.tsv:1: threshold 'high' of \"red heart\" is not a number in [0, 1]"
bad_file "above 1" '\nred heart\t1.5\n' "bad.tsv:2: threshold '1.5'"
bad_file "negative" 'red heart\t-0.1\n' "bad.tsv:1: threshold '-0.1'"
bad_file "nan" 'red heart\tnan\n' "bad.tsv:1: threshold 'nan'"
bad_file "empty value" 'red heart\t\n' "bad.tsv:1: threshold ''"
bad_file "empty label" '\t0.5\n' "bad.tsv:1: empty label"
bad_file "duplicate" 'red heart\t0.5\nblue circle\t0.5\nred heart\t0.6\n' \
    "bad.tsv:3: \"red heart\" already has a threshold on line 1"
bad_file "asked label missing" 'red heart\t0.5\n' \
    "bad.tsv: no threshold for label \"yellow square\""
printf 'red heart\t0.5\000x\n' >"$WORK/nul.tsv"
run_ramc predict 1 --labels "$FEW" --thresholds "$WORK/nul.tsv" --threshold 0 "$IMG"
check "NUL byte named" grep -q "nul.tsv:1: a NUL byte" "$WORK/err"
run_ramc predict 1 --labels "$FEW" --thresholds "$WORK/none.tsv" "$IMG"
check "missing thresholds file named" grep -q "none.tsv: No such file" "$WORK/err"
run_ramc predict 2 --labels "$FEW" "$IMG" --thresholds
check "--thresholds without a value" grep -q -- "--thresholds needs a value" "$WORK/err"

# --- eval --score: ranks by the score asked, says so
"$RAMC" synth --world v1 --seed 3 --out "$WORK/syn" --pretrain 0 --train 0 --test 12 --quiet \
    || bad "synth"
ev=(--test "$WORK/syn/test_gzsl.json" --classes "$WORK/syn/classes_all.txt" --image-root "$WORK/syn")
run_ramc eval 0 "${ev[@]}" --score independent --report "$WORK/ind.json"
check "eval --score independent says so" grep -q "^score: independent$" "$WORK/out"
check "eval report: score_type" grep -q '"score_type":[[:space:]]*"independent"' "$WORK/ind.json"
run_ramc eval 0 "${ev[@]}" --report "$WORK/off.json"
check "eval default: official" grep -q '"score_type":[[:space:]]*"official"' "$WORK/off.json"
check "eval: the two scores rank differently" bash -c "! cmp -s <(grep -v score_type '$WORK/ind.json') <(grep -v score_type '$WORK/off.json')"
run_ramc eval 2 "${ev[@]}" --score bogus
check "eval: bad --score named" grep -q "invalid value 'bogus' for --score" "$WORK/err"

summary cli_scores
