#!/usr/bin/env bash
# Installs what is missing, then configures and builds ramc into ./build.
#   scripts/build.sh [--target NAME]... [CMAKE_ARGS...]
# --target builds only that target (e.g. ramc: the tool alone, without the
# tests and fuzz harnesses, which is what the README's main command needs).
set -euo pipefail
cd "$(dirname "$0")/.."
targets=() cmake_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --target) targets+=(--target "$2"); shift 2 ;;
    *) cmake_args+=("$1"); shift ;;
  esac
done
scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release ${cmake_args[@]+"${cmake_args[@]}"} >/dev/null
cmake --build build -j"$(nproc)" ${targets[@]+"${targets[@]}"}
