#!/usr/bin/env bash
# The GEMM library comparison (docs/performance.md, "GEMM libraries"): runs
# build/gemm_libs and writes what it printed into docs/performance.md between
# the gemm_libs markers, with the command that produced it.
#
#   scripts/gemm_libs.sh                       # defaults below: every shape, 2 and 1 threads, 5 rounds
#   scripts/gemm_libs.sh --rounds 3 --shapes vit
#   NO_DOC=1 scripts/gemm_libs.sh ...          # print only, leave the doc alone
#
# Arguments go to build/gemm_libs (see bench/gemm_libs.c); without any, it runs
# with --threads 2,1 --rounds 5. Needs the optional target: libxsmm-dev (and
# libblis-dev for the BLIS column), then `cmake --build build --target gemm_libs`.
# Run it on a quiet machine: the libraries take turns within each round, so a
# neighbour's load spreads over all of them, but it still moves the figures.
set -euo pipefail
cd "$(dirname "$0")/.."
args=("$@")
[ ${#args[@]} -gt 0 ] || args=(--threads 2,1 --rounds 5)
if [ ! -x build/gemm_libs ]; then
  cmake -S . -B build >/dev/null
  cmake --build build --target gemm_libs >/dev/null
fi
[ -x build/gemm_libs ] || { echo "gemm_libs: not built (apt-get install libxsmm-dev libblis-dev)" >&2; exit 1; }
out=$(mktemp)
trap 'rm -f "$out"' EXIT
build/gemm_libs "${args[@]}" | tee "$out"
[ "${NO_DOC:-0}" = 1 ] && exit 0
python3 - docs/performance.md "$out" "scripts/gemm_libs.sh ${args[*]}" <<'EOF'
import sys
doc, out, cmd = sys.argv[1], sys.argv[2], sys.argv[3]
begin, end = "<!-- gemm_libs:begin -->", "<!-- gemm_libs:end -->"
text = open(doc).read()
if begin not in text or end not in text:
    sys.exit("gemm_libs.sh: the markers are missing from " + doc)
block = "Written by `%s` (the program's output as it printed it):\n\n%s\n" % (cmd, open(out).read().rstrip())
head, rest = text.split(begin, 1)
_, tail = rest.split(end, 1)
open(doc, "w").write(head + begin + "\n" + block + "\n" + end + tail)
print("gemm_libs.sh: table written into " + doc, file=sys.stderr)
EOF
