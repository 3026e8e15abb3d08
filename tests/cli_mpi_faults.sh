#!/usr/bin/env bash
# Faults of data-parallel training under mpirun (docs/distributed.md):
#  - SIGTERM to one process stops every process at the same step, rank 0
#    checkpoints, the job exits 143, the resume continues;
#  - SIGTERM to mpirun does the same within odls_base_sigkill_timeout;
#  - an unreadable image stops the job with a message naming the file and the
#    process, and the last checkpoint stays as it was.
# Skipped (exit 77) when this build has no MPI or mpirun is missing.
#   cli_mpi_faults.sh RAMC GOLDEN SRC
set -u
RAMC=$1 golden=$2 src=$(cd "$3" && pwd)
WORK=$(mktemp -d)
[ -n "${KEEP_TMP:-}" ] || trap 'rm -rf "$WORK"' EXIT
echo "tmp=$WORK"
. "$src/tests/lib_cli.sh"
. "$src/tests/lib_mpi.sh"

# 5. SIGTERM. To one process only (as a scheduler signalling one node's
# tasks): every process stops at the same step, rank 0 writes the checkpoint,
# all exit with 143.
wait_steps() { # wait_steps LOG N: until LOG has N step lines (at most 30 s)
    for _ in $(seq 300); do
        [ "$(cat "$1" 2>/dev/null | grep -c '"event":"step"')" -ge "$2" ] && return 0
        sleep 0.1
    done
    return 1
}
mapfile -t long_args < <(train_args "$WORK/term" --set max_epochs=500)
"${mpi[@]}" -np 2 "$RAMC" "${long_args[@]}" >"$WORK/term.err" 2>&1 &
job=$!
check "SIGTERM: the job trains" wait_steps "$WORK/term/log.jsonl" 3
victim=$(pgrep -P "$job" -f "ramc train" | tail -1)
[ -n "$victim" ] && kill -TERM "$victim"
wait $job
rc=$?
check "SIGTERM to one process: the job exits 143 (rc $rc)" [ $rc -eq 143 ]
check "SIGTERM: checkpoint written" [ -s "$WORK/term/checkpoint.safetensors" ]
check "SIGTERM: log says stopped" grep -q '"event":"stopped"' "$WORK/term/log.jsonl"
check "SIGTERM: rank 0 says how to resume" grep -q "resume with: ramc train --resume" "$WORK/term.err"
under_mpi 2 "$WORK/term" --resume "$WORK/term/checkpoint.safetensors" --set max_epochs=500 --max-steps 30
check "SIGTERM: the resume runs ($(tail -c 300 "$WORK/err"))" [ $? -eq 0 ]
check "SIGTERM: the resume stopped at step 30" grep -q '"event":"stopped","global_step":30' "$WORK/term/log.jsonl"
# To mpirun: it passes SIGTERM on and sends SIGKILL odls_base_sigkill_timeout
# seconds later (default 1; it waits that long in any case)
"${mpi[@]}" --mca odls_base_sigkill_timeout 5 -np 2 "$RAMC" "${long_args[@]}" --resume \
    "$WORK/term/checkpoint.safetensors" >"$WORK/term.err" 2>&1 &
job=$!
check "SIGTERM to mpirun: the job trains" wait_steps "$WORK/term/log.jsonl" 40
kill -TERM $job
wait $job
rc=$?
check "SIGTERM to mpirun: the job exits non-zero (rc $rc)" [ $rc -ne 0 ]
check "SIGTERM to mpirun: rank 0 checkpointed" grep -q "resume with: ramc train --resume" "$WORK/term.err"
check "SIGTERM to mpirun: log says stopped" [ "$(grep -c '"event":"stopped"' "$WORK/term/log.jsonl")" = 3 ]

# 6. an unreadable image: the job stops with a message naming it; the last
# checkpoint is untouched
cp -r "$WORK/syn" "$WORK/bad"
under_mpi 2 "$WORK/badrun" --max-steps 1
check "bad-data set: first step runs" [ $? -eq 0 ]
before=$(md5sum <"$WORK/badrun/checkpoint.safetensors")
for f in "$WORK/syn"/images/train/*.png; do printf 'not a png' >"$WORK/bad/images/train/$(basename "$f")"; break; done
broken=$(ls "$WORK/bad/images/train" | head -1)
data=$WORK/bad
mapfile -t bad_args < <(train_args "$WORK/badrun" --resume "$WORK/badrun/checkpoint.safetensors")
timeout 120 "${mpi[@]}" -np 2 "$RAMC" "${bad_args[@]}" >"$WORK/bad.err" 2>&1
rc=$?
check "bad data: the job fails (rc $rc, not a timeout)" [ $rc -ne 0 ] && [ $rc -ne 124 ]
check "bad data: the message names the file" grep -q "$broken" "$WORK/bad.err"
check "bad data: the message names the process" grep -q "ramc train: process [01] of 2" "$WORK/bad.err"
check "bad data: the checkpoint is untouched" [ "$(md5sum <"$WORK/badrun/checkpoint.safetensors")" = "$before" ]

summary cli_mpi_faults
