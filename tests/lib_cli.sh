# Helpers shared by the cli_*.sh tests that count their checks. Source it
# after setting RAMC (the binary) and WORK (a scratch folder).
#   ok / bad MESSAGE         count a passed / failed check
#   check DESCRIPTION CMD... run CMD, count its outcome
#   run_ramc SUB RC ARGS...  run `ramc SUB ARGS` (output in $WORK/out and
#                            $WORK/err) and check it exits with RC
#   summary NAME             print the counts; fails if any check failed
#   foreign_env              array: the environment a process that was not linked
#                            with libramc.so needs to load it (see below)
passed=0
failed=0
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*" >&2; }
check() {
    local what=$1
    shift
    if "$@"; then ok; else bad "$what"; fi
}
run_ramc() {
    local sub=$1 want=$2
    shift 2
    "$RAMC" "$sub" "$@" >"$WORK/out" 2>"$WORK/err"
    local rc=$?
    if [ "$rc" -ne "$want" ]; then
        bad "ramc $sub $* exited $rc, want $want: $(head -c 300 "$WORK/err")"
        return 1
    fi
    ok
}
summary() {
    echo "$1: $passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}

# A sanitizer build's libramc.so needs its runtime loaded first in a process
# that was not linked with it (an example program, Python); leaks of the host
# process itself (Python's allocator) are not ours to judge. ctest sets
# RAMC_SANITIZED=1 in such a build.
foreign_env=()
if [ "${RAMC_SANITIZED:-0}" = 1 ]; then
    foreign_env=(LD_PRELOAD="$(cc -print-file-name=libasan.so)" ASAN_OPTIONS=detect_leaks=0:halt_on_error=1)
fi
