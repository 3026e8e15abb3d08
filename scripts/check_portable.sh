#!/usr/bin/env bash
# Lists the functions of a binary or library that use AVX/AVX-512 (VEX or
# EVEX encoded instructions, ymm/zmm/mask registers) outside the kernels
# compiled per instruction-set level, which only run after the run-time check
# (src/kernels/dispatch.c): *_avx2 and *_avx512, with their OpenMP bodies.
# Exit status 0 when there are none, 1 when there are (they are printed),
# 2 when the file cannot be disassembled.
#   scripts/check_portable.sh FILE...
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 FILE..." >&2; exit 2; }
status=0
for f in "$@"; do
    dis=$(objdump -d --no-show-raw-insn "$f") || { echo "$f: objdump failed" >&2; exit 2; }
    found=$(awk '
        /^[0-9a-f]+ <.*>:$/ { fn = substr($2, 2, length($2) - 3); next }
        /^ *[0-9a-f]+:\t/ {
            split($0, part, "\t"); insn = part[2]
            if (insn ~ /^v[a-z0-9]+/ || insn ~ /%[yz]mm[0-9]/ || insn ~ /%k[0-7]/) {
                if (fn ~ /_(avx2|avx512)(\._omp_fn\.[0-9]+)?$/) next
                n[fn]++
            }
        }
        END { for (f in n) printf "%s (%d instructions)\n", f, n[f] }' <<<"$dis" | sort)
    if [ -n "$found" ]; then
        echo "$f: AVX outside the run-time dispatched kernels:"
        sed 's/^/  /' <<<"$found"
        status=1
    fi
done
exit $status
