#!/usr/bin/env bash
# The test command: installs what is missing, builds, runs the suite.
#   scripts/test.sh                    the fast tests (ctest label fast), optimised build in ./build
#   scripts/test.sh --all              every test, fast and slow
#   scripts/test.sh --sanitize [--all] the same selection under AddressSanitizer + UndefinedBehaviorSanitizer,
#                                      in ./build-asan
#   scripts/test.sh --tsan [ARGS]      ThreadSanitizer build (clang) in ./build-tsan; for CI:
#                                      scripts/test.sh --tsan -R 'concurrency|cli_serve$'
# Labels: fast (the default; well under 5 minutes on 2 cores) and slow (what may take longer:
# today the extra golden sets of RAMC_EXTRA_GOLDEN_DIR, which may be of full ViT-B/16 size).
# Every golden set the fast tests need ships in tests/golden, so a plain clone passes on its own.
# Further arguments go to ctest (e.g. -R golden).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--tsan" ]; then
  shift
  scripts/setup.sh
  CC=clang cmake -S . -B build-tsan -DRAMC_TSAN=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build build-tsan -j"$(nproc)"
  cd build-tsan
  # The OpenMP runtime, OpenBLAS and oneDNN are not instrumented: their own
  # thread pools would only report their internal synchronisation. One
  # OpenMP thread per caller leaves the callers' threads (the library's
  # shared model, caches and locks) as the only concurrency TSan judges.
  export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
  export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:ignore_noninstrumented_modules=1
  ctest --output-on-failure -j"$(nproc)" "$@"
  exit
fi
sanitize=0 labels=(-L '^fast$')
while [ $# -gt 0 ]; do
  case "$1" in
    --sanitize) sanitize=1; shift ;;
    --all) labels=(); shift ;;
    *) break ;;
  esac
done
if [ $sanitize -eq 1 ]; then
  scripts/setup.sh
  cmake -S . -B build-asan -DRAMC_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build build-asan -j"$(nproc)"
  cd build-asan
  # halt_on_error: a sanitizer report fails the test instead of scrolling past
  export ASAN_OPTIONS=halt_on_error=1:detect_leaks=1
  export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
else
  scripts/build.sh
  cd build
fi
ctest --output-on-failure -j"$(nproc)" ${labels[@]+"${labels[@]}"} "$@"
