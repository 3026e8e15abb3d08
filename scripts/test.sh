#!/usr/bin/env bash
# The test command: installs what is missing, builds, runs the whole suite.
#   scripts/test.sh              optimised build in ./build
#   scripts/test.sh --sanitize   AddressSanitizer + UndefinedBehaviorSanitizer build in ./build-asan
# Extra arguments go to ctest (e.g. -R golden).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--sanitize" ]; then
  shift
  scripts/setup.sh
  cmake -S . -B build-asan -DRAMC_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build build-asan -j"$(nproc)"
  cd build-asan
  # halt_on_error: a sanitizer report fails the test instead of scrolling past
  export ASAN_OPTIONS=halt_on_error=1:detect_leaks=1
  export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
  ctest --output-on-failure -j"$(nproc)" "$@"
  exit
fi
scripts/build.sh
cd build
ctest --output-on-failure -j"$(nproc)" "$@"
