#!/usr/bin/env bash
# OpenMP parallel regions (thread wake-ups) per call of a bench scenario, by
# the function that starts them: runs `ramc bench` with --repeat 1 and 5 under
# the counting module (tests/tools/omp_regions.c, target omp_regions) and
# prints the difference / 4, so the setup and warm-up cancel out.
#   scripts/omp_regions.sh [SCENARIO [THREADS]]   (default ram_coco_b1_cached 2)
set -euo pipefail
cd "$(dirname "$0")/.."
scenario=${1:-ram_coco_b1_cached} threads=${2:-2}
[ -f build/libomp_regions.so ] || cmake --build build --target omp_regions >/dev/null
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for r in 1 5; do
  OMP_REGIONS_OUT=$tmp/r$r LD_PRELOAD=$PWD/build/libomp_regions.so build/ramc bench \
    --scenarios "$scenario" --threads "$threads" --repeat $r --warmup 1 --no-fork --no-roof >/dev/null 2>&1
done
python3 - "$tmp/r1" "$tmp/r5" "$scenario" "$threads" <<'PY'
import subprocess, sys
def load(path):
    counts = {}
    for line in open(path):
        if line.startswith('total'): continue
        n, serial, lib, off, sym = line.split(' ', 4)
        counts[(lib, off, sym.strip())] = (int(n), int(serial))
    return counts
a, b = load(sys.argv[1]), load(sys.argv[2])
rows = {}
for key in set(a) | set(b):
    lib, off, sym = key
    if sym == '-' and lib.endswith('/ramc'):
        sym = subprocess.run(['addr2line', '-f', '-e', lib, off], capture_output=True,
                             text=True).stdout.split('\n')[0]
    if 'dnnl' in lib: sym = 'oneDNN (its products and reorders)'
    name = sym.replace('_avx512', '').replace('_avx2', '')
    old, new = a.get(key, (0, 0)), b.get(key, (0, 0))
    woken, serial = rows.get(name, (0, 0))
    rows[name] = (woken + (new[0] - old[0]) / 4, serial + (new[1] - old[1]) / 4)
rows = {k: v for k, v in rows.items() if v != (0, 0)}
print('%s, %s threads: %g parallel regions per call that wake the team, %g run alone (if() false)' %
      (sys.argv[3], sys.argv[4], sum(v[0] for v in rows.values()), sum(v[1] for v in rows.values())))
print('| regions per call (team woken) | run alone | started by |')
print('|---|---|---|')
for name, (n, s1) in sorted(rows.items(), key=lambda kv: (-kv[1][0], -kv[1][1])):
    print('| %g | %g | %s |' % (n, s1, name))
PY
