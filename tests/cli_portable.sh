#!/usr/bin/env bash
# The portable build (the default; docs/install.md):
#  * `ramc --version` says which build this is and which kernel level runs;
#  * no AVX/AVX-512 instruction outside the kernels chosen at run time, in
#    any object file of the build (scripts/check_portable.sh), so the tool and
#    libramc.so start and run on any x86-64 (skipped for -DRAMC_NATIVE=ON);
#  * RAMC_ISA=generic (the baseline kernels) predicts the same bytes as the
#    CPU's best level, and a bad RAMC_ISA is refused with a message.
# usage: cli_portable.sh RAMC_BINARY SHARED_DIR SOURCE_DIR
set -u
RAMC=$1
SRC=$3
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
. "$SRC/tests/lib_cli.sh"
export OMP_WAIT_POLICY=passive
unset RAMC_ISA RAMC_BF16 RAMC_PACK
export RAMC_DATA_DIR="$SRC/data"

run_ramc --version 0
check "--version names the build" grep -Eq '^build: (portable|native) ' "$WORK/out"
check "--version names the kernel level" grep -Eq '^kernels: (generic|avx2|avx512) \(CPU: ' "$WORK/out"

if grep -q '^build: portable' "$WORK/out"; then
    if command -v objdump >/dev/null; then
        check "no AVX outside the dispatched kernels" "$SRC/scripts/check_portable.sh" "$(dirname "$RAMC")"
    else
        echo "cli_portable: objdump not found, instruction check skipped"
    fi
else
    echo "cli_portable: native build, instruction check skipped"
fi

LABELS="black ring,black star,green heart,white star,yellow heart"
predict() { # OUT: JSON lines of the samples
    "$RAMC" predict --labels "$LABELS" --top-k 0 "$SRC/data/samples" >"$1" 2>"$WORK/err"
}
check "predict at the best level" predict "$WORK/best"
RAMC_ISA=generic predict "$WORK/generic"
check "predict with RAMC_ISA=generic" [ $? -eq 0 ]
check "RAMC_ISA=generic gives the same bytes as the best level" cmp -s "$WORK/best" "$WORK/generic"
check "the result is not empty" [ -s "$WORK/best" ]

RAMC_ISA=sse9 "$RAMC" --version >"$WORK/out" 2>"$WORK/err"
check "RAMC_ISA=sse9 still runs" [ $? -eq 0 ]
check "RAMC_ISA=sse9 is named as ignored" grep -q 'RAMC_ISA=sse9 ignored' "$WORK/err"
RAMC_ISA=generic "$RAMC" --version >"$WORK/out" 2>&1
check "RAMC_ISA=generic shows in --version" grep -q '^kernels: generic ' "$WORK/out"

summary cli_portable
