#!/usr/bin/env bash
# libFuzzer runs of ramc's input readers (docs/fuzzing.md). Needs clang and
# libclang-rt-14-dev (Debian 12); builds into ./build-fuzz.
#
#   scripts/fuzz.sh short [SECONDS] [TARGET...]
#       CI: each target for SECONDS (default 25) on a scratch copy of
#       fuzz/corpus/<t> + fuzz/regressions/<t>; the committed corpus is left
#       as it is. Fails on the first crash, leak, timeout or OOM.
#   scripts/fuzz.sh long [SECONDS] [TARGET...]
#       Each target for SECONDS (default 3600), then merges the new coverage
#       into fuzz/corpus/<t> (libFuzzer -merge=1 keeps only inputs that add
#       coverage). Crashes are saved as build-fuzz/artifacts/<t>/crash-*;
#       the run goes on with the next target and the script fails at the end.
#   scripts/fuzz.sh build
#       Only builds the fuzzers.
# Environment: FUZZ_JOBS (parallel targets, default 1), FUZZ_ARGS (extra
# libFuzzer flags).
#
# A crash found becomes a regression test: copy the artifact to
# fuzz/regressions/<t>/ (a descriptive name), and while it is not fixed list
# it in fuzz/known-crashes.txt so the replay test (test_fuzz_regressions)
# skips it.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
targets_all=(safetensors dataset_json dataset_tsv class_list tokenizer image config pickle)

mode=${1:-short}
shift || true
case "$mode" in
  short) seconds=25 ;;
  long) seconds=3600 ;;
  build) seconds=0 ;;
  *) echo "usage: scripts/fuzz.sh short|long|build [SECONDS] [TARGET...]" >&2; exit 2 ;;
esac
if [ $# -gt 0 ] && [[ $1 =~ ^[0-9]+$ ]]; then
  seconds=$1
  shift
fi
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${targets_all[@]}")

command -v clang >/dev/null || { echo "fuzz.sh: clang not found (apt-get install clang libclang-rt-14-dev)" >&2; exit 1; }
CC=clang cmake -S . -B build-fuzz -DRAMC_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target fuzz_all
[ "$mode" = build ] && exit 0

# Temporary files of the path-based readers: a crashed process cannot delete
# its folder, so keep them inside the build folder (tmpfs when there is one).
export TMPDIR=$root/build-fuzz/tmp
rm -rf "$TMPDIR"
mkdir -p "$TMPDIR"
# Report leaks and UB as failures with a stack; keep the default malloc limit
# (= rss_limit_mb) so a decompression bomb counts as a finding.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
common=(-rss_limit_mb=2048 -timeout=25 -print_final_stats=1)

run_one() {
  local t=$1
  local work=build-fuzz/work/$t art=build-fuzz/artifacts/$t log=build-fuzz/logs/$t.log
  rm -rf "$work"
  mkdir -p "$work" "$art" build-fuzz/logs
  local seeds=("fuzz/corpus/$t")
  [ -d "fuzz/regressions/$t" ] && seeds+=("fuzz/regressions/$t")
  # known crashes would stop every run at once: leave them out of the seeds
  local skip=()
  if [ -f fuzz/known-crashes.txt ]; then
    while read -r line; do
      [[ $line == "$t/"* ]] && skip+=("${line#"$t/"}")
    done < <(grep -v '^\s*#' fuzz/known-crashes.txt || true)
  fi
  local seed_dir=build-fuzz/seeds/$t
  rm -rf "$seed_dir"
  mkdir -p "$seed_dir"
  for d in "${seeds[@]}"; do
    for f in "$d"/*; do
      [ -f "$f" ] || continue
      local b
      b=$(basename "$f")
      local s
      for s in "${skip[@]+"${skip[@]}"}"; do [ "$s" = "$b" ] && continue 2; done
      cp "$f" "$seed_dir/$(basename "$d")-$b"
    done
  done
  echo "== fuzz_$t: ${seconds}s" >&2
  local rc=0
  # shellcheck disable=SC2086
  "build-fuzz/fuzz_$t" "${common[@]}" -max_total_time="$seconds" -artifact_prefix="$art/" \
    ${FUZZ_ARGS:-} "$work" "$seed_dir" >"$log" 2>&1 || rc=$?
  grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb)|^#[0-9]+.*DONE' "$log" | sed "s/^/   $t: /" >&2 || true
  if [ $rc -ne 0 ]; then
    echo "!! fuzz_$t failed (exit $rc); log: $log, artifacts: $art/" >&2
    grep -E 'ERROR|SUMMARY|fuzz check failed|Test unit written' "$log" | head -20 >&2 || true
    return 1
  fi
  if [ "$mode" = long ]; then
    # keep only what adds coverage to the committed corpus
    "build-fuzz/fuzz_$t" -merge=1 -rss_limit_mb=2048 "fuzz/corpus/$t" "$work" \
      >>"$log" 2>&1 || { echo "!! merge for $t failed; log: $log" >&2; return 1; }
    echo "   $t: corpus now $(find "fuzz/corpus/$t" -type f | wc -l) files" >&2
  fi
}

failed=()
jobs=${FUZZ_JOBS:-1}
if [ "$jobs" -le 1 ]; then
  for t in "${targets[@]}"; do
    if ! run_one "$t"; then
      failed+=("$t")
      [ "$mode" = short ] && break
    fi
  done
else
  # several targets at once; each writes its own log
  pids=()
  for t in "${targets[@]}"; do
    run_one "$t" &
    pids+=("$!:$t")
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do sleep 1; done
  done
  for p in "${pids[@]}"; do
    wait "${p%%:*}" || failed+=("${p#*:}")
  done
fi
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: crashes in: ${failed[*]} (see build-fuzz/artifacts/)" >&2
  exit 1
fi
echo "fuzz.sh: $mode run of ${targets[*]} passed" >&2
