#!/usr/bin/env bash
# Checks that a build is portable: no object file of the library, the tool
# or the tests uses AVX or AVX-512 (VEX or EVEX encoded instructions,
# ymm/zmm/mask registers), except the kernels compiled per instruction-set
# level (the objects of ramc_kernels_avx2 / ramc_kernels_avx512 and their
# fuzz twins) and the bf16 attention (ramc_kernels_bf16, AVX512-BF16), which
# only run after the run-time check of src/kernels/dispatch.c. Objects rather than the linked binary: a helper
# the compiler did not inline keeps its plain name there, whichever level's
# copy it is.
# Prints each offending object and function; exit 0 when there are none, 1
# when there are, 2 on a usage problem.
#   scripts/check_portable.sh BUILD_DIR
set -euo pipefail
[ $# -eq 1 ] && [ -d "$1/CMakeFiles" ] || { echo "usage: $0 BUILD_DIR (a configured and built cmake folder)" >&2; exit 2; }
mapfile -t objects < <(find "$1/CMakeFiles" -name '*.o' \
    ! -path '*kernels_avx2.dir/*' ! -path '*kernels_avx512.dir/*' ! -path '*kernels_bf16.dir/*' | sort)
[ ${#objects[@]} -gt 0 ] || { echo "$1: no object files" >&2; exit 2; }
status=0 checked=0
for o in "${objects[@]}"; do
    found=$(objdump -d --no-show-raw-insn "$o" | awk '
        /^[0-9a-f]+ <.*>:$/ { fn = substr($2, 2, length($2) - 3); next }
        /^ *[0-9a-f]+:\t/ {
            split($0, part, "\t"); insn = part[2]
            if (insn ~ /^v[a-z0-9]+/ || insn ~ /%[yz]mm[0-9]/ || insn ~ /%k[0-7]/) n[fn]++
        }
        END { for (f in n) printf "%s (%d instructions)\n", f, n[f] }' | sort)
    checked=$((checked + 1))
    if [ -n "$found" ]; then
        echo "${o#"$1"/}: AVX outside the run-time dispatched kernels:"
        sed 's/^/  /' <<<"$found"
        status=1
    fi
done
echo "check_portable: $checked object files checked"
exit $status
