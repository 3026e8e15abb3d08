#!/usr/bin/env bash
# The test command: installs what is missing, builds, runs the suite.
#   scripts/test.sh                    the fast tests (ctest label fast), optimised build in ./build
#   scripts/test.sh --all              every test, fast and slow
#   scripts/test.sh --sanitize [--all] the same selection under AddressSanitizer + UndefinedBehaviorSanitizer,
#                                      in ./build-asan
# Labels: fast (the default; well under 5 minutes on 2 cores) and slow (what may take longer:
# today the extra golden sets of RAMC_EXTRA_GOLDEN_DIR, which may be of full ViT-B/16 size).
# Every golden set the fast tests need ships in tests/golden, so a plain clone passes on its own.
# Further arguments go to ctest (e.g. -R golden).
set -euo pipefail
cd "$(dirname "$0")/.."
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
