#!/usr/bin/env bash
# The command's own switches over the library's parameters:
#  * `ramc --version` and `ramc version` print "ramc VERSION";
#  * --threads N on predict (1 and 2 give the same labels, scores to float
#    rounding), and bad counts are usage errors on predict, eval and train;
#  * RAMC_BF16=1 does what --bf16 does and RAMC_PACK=0 what --no-pack does
#    (the same parameters reach the library, so the same bytes come out),
#    and RAMC_DATA_DIR moves the default model.
# usage: cli_env_threads.sh RAMC_BINARY SHARED_DIR SOURCE_DIR
set -u
RAMC=$1
SRC=$3
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
. "$SRC/tests/lib_cli.sh"
export OMP_WAIT_POLICY=passive
unset RAMC_BF16 RAMC_PACK
export RAMC_DATA_DIR="$SRC/data"
LABELS="black ring,black star,green heart,white star,yellow heart"

run_ramc --version 0 && check "--version prints 'ramc X.Y.Z...'" grep -Eq '^ramc [0-9]+\.[0-9]+\.[0-9]+' "$WORK/out"
cp "$WORK/out" "$WORK/v1"
run_ramc version 0 && check "ramc version = ramc --version" cmp -s "$WORK/out" "$WORK/v1"

predict() { # OUT ARGS...: ramc predict on the samples, JSON lines in OUT
    local out=$1
    shift
    "$RAMC" predict --labels "$LABELS" --top-k 0 "$@" "$SRC/data/samples" >"$out" 2>"$WORK/err"
}
check "predict --threads 1" predict "$WORK/t1" --threads 1
check "predict --threads 2" predict "$WORK/t2" --threads 2
n_samples=$(find "$SRC/data/samples" -name '*.png' | wc -l)
check "every sample scored" test "$(wc -l <"$WORK/t1")" -eq "$n_samples"
python3 - "$WORK/t1" "$WORK/t2" "$n_samples" <<'PY' && ok || bad "1 and 2 threads disagree"
import json, sys
a = [json.loads(l) for l in open(sys.argv[1])]
b = [json.loads(l) for l in open(sys.argv[2])]
assert len(a) == len(b) == int(sys.argv[3])
for x, y in zip(a, b):
    assert x["image"] == y["image"]
    sx = {e["label"]: e["score"] for e in x["labels"]}
    sy = {e["label"]: e["score"] for e in y["labels"]}
    assert sx.keys() == sy.keys() and len(sx) == 5
    assert abs(sum(sx.values()) - 1) < 1e-4
    for k in sx:
        assert abs(sx[k] - sy[k]) < 1e-4, (x["image"], k, sx[k], sy[k])
PY
for bad_n in 0 -1 abc 99999; do
    run_ramc predict 2 --labels a --threads "$bad_n" "$SRC/data/samples"
    run_ramc eval 2 --threads "$bad_n"
    run_ramc train 2 --threads "$bad_n" --train x --output "$WORK/never"
done
check "no training output after usage errors" test ! -e "$WORK/never"

# environment switches = flags (both reach ramc_clip_params the same way)
check "predict --bf16" predict "$WORK/flag_bf16" --bf16
RAMC_BF16=1 "$RAMC" predict --labels "$LABELS" --top-k 0 "$SRC/data/samples" >"$WORK/env_bf16" 2>"$WORK/err"
check "RAMC_BF16=1 gives the bytes of --bf16" cmp -s "$WORK/flag_bf16" "$WORK/env_bf16"
check "predict --no-pack" predict "$WORK/flag_nopack" --no-pack
RAMC_PACK=0 "$RAMC" predict --labels "$LABELS" --top-k 0 "$SRC/data/samples" >"$WORK/env_nopack" 2>"$WORK/err"
check "RAMC_PACK=0 gives the bytes of --no-pack" cmp -s "$WORK/flag_nopack" "$WORK/env_nopack"
RAMC_PACK=0 "$RAMC" predict --labels "$LABELS" --top-k 0 --bf16 "$SRC/data/samples" >"$WORK/env_nopack_bf16" 2>"$WORK/err"
check "RAMC_PACK=0 also turns --bf16 off" cmp -s "$WORK/flag_nopack" "$WORK/env_nopack_bf16"

# RAMC_DATA_DIR reaches the library through ramc_set_data_dir
RAMC_DATA_DIR="$WORK/nowhere" "$RAMC" predict --labels a "$SRC/data/samples" >/dev/null 2>"$WORK/err"
check "RAMC_DATA_DIR=nowhere: exit 1" test $? -eq 1
check "RAMC_DATA_DIR=nowhere: the error names it" grep -q "$WORK/nowhere/default/clip.safetensors" "$WORK/err"

summary cli_env_threads
