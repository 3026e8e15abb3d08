#!/usr/bin/env bash
# Data-parallel training under mpirun (docs/distributed.md), on a small
# synthetic set (ramc synth) and the tiny golden CLIP:
#  - mpirun -np 1 gives bitwise the files of a plain run;
#  - -np 2 and 3 give the same parameters within 1e-6 relative (all tensors
#    together; 1e-5 per tensor), for a batch the processes divide and one they
#    do not; the first step's loss bitwise;
#  - more processes than images in a batch is refused clearly;
#  - stop and resume under mpirun: exact for the same N, and within the
#    tolerance when resumed with another N;
#  - the golden trajectory set replayed under -np 2 and 3 (ramc golden);
#  - sharded evaluation: the same reports as one process.
# Faults (signals, bad data): cli_mpi_faults.sh. Skipped (exit 77) when this
# build has no MPI or mpirun is missing.
#   cli_mpi.sh RAMC GOLDEN SRC
set -u
RAMC=$1 golden=$2 src=$(cd "$3" && pwd)
WORK=$(mktemp -d)
[ -n "${KEEP_TMP:-}" ] || trap 'rm -rf "$WORK"' EXIT
echo "tmp=$WORK"
. "$src/tests/lib_cli.sh"
. "$src/tests/lib_mpi.sh"

# 1. one process under mpirun is a plain run, bit for bit
plain "$WORK/p6"
check "plain run exits 0" [ $? -eq 0 ]
under_mpi 1 "$WORK/m1"
check "mpirun -np 1 exits 0 ($(tail -c 300 "$WORK/err"))" [ $? -eq 0 ]
for f in adapter.safetensors adapter-ema.safetensors; do
    check "-np 1: $f bitwise equal to the plain run" cmp -s "$WORK/p6/$f" "$WORK/m1/$f"
done
# (the checkpoint's recorded configuration names its own folder)
check "-np 1: checkpoint tensors equal to the plain run's" \
    "$python" "$diff_tool" "$WORK/p6/checkpoint.safetensors" "$WORK/m1/checkpoint.safetensors" 0 0

# 2. two and three processes: the same parameters within tolerance; the first
# step's loss (computed before any update) bitwise: the whole batch's softmax,
# BatchNorm and Sinkhorn are the one process's
for np in 2 3; do
    under_mpi $np "$WORK/m$np"
    check "mpirun -np $np exits 0 ($(tail -c 300 "$WORK/err"))" [ $? -eq 0 ]
    check "-np $np: parameters match one process" same_params "$WORK/p6" "$WORK/m$np"
    check "-np $np: first loss bitwise that of one process" \
        [ "$(first_loss "$WORK/p6")" = "$(first_loss "$WORK/m$np")" ]
    check "-np $np: only rank 0 wrote a log (one start line)" \
        [ "$(grep -c '"event":"start"' "$WORK/m$np/log.jsonl")" = 1 ]
    check "-np $np: log records the processes" grep -q "\"processes\":$np" "$WORK/m$np/log.jsonl"
done
# the tolerance is not vacuous: another seed's run is far outside it
plain "$WORK/p6seed" --set seed=7
check "a different run fails the comparison" bash -c "! '$python' '$diff_tool' '$WORK/p6/adapter.safetensors' '$WORK/p6seed/adapter.safetensors' 1e-6 1e-5 >/dev/null"

# a batch of 5: shares 3+2 and 2+2+1
plain "$WORK/p5" --set batch_size=5
for np in 2 3; do
    under_mpi $np "$WORK/u$np" --set batch_size=5
    check "batch 5 over $np processes exits 0 ($(tail -c 300 "$WORK/err"))" [ $? -eq 0 ]
    check "batch 5 over $np processes: parameters match one process" same_params "$WORK/p5" "$WORK/u$np"
done

# 3. more processes than images per batch
under_mpi 3 "$WORK/small" --set batch_size=2
check "batch 2 over 3 processes refused" [ $? -ne 0 ]
check "the refusal says why" grep -q "batch_size 2 cannot be split over 3 processes" "$WORK/err"

# 4. stop after 3 steps and resume: same N exact, another N within tolerance
under_mpi 2 "$WORK/s2" --max-steps 3
check "stopped run exits 0" [ $? -eq 0 ]
check "stopped run wrote a checkpoint" [ -s "$WORK/s2/checkpoint.safetensors" ]
cp -r "$WORK/s2" "$WORK/s3"
under_mpi 2 "$WORK/s2" --resume "$WORK/s2/checkpoint.safetensors"
check "resume with -np 2 exits 0 ($(tail -c 300 "$WORK/err"))" [ $? -eq 0 ]
for f in adapter.safetensors adapter-ema.safetensors; do
    check "resume with the same N: $f bitwise equal to the uninterrupted run" \
        cmp -s "$WORK/m2/$f" "$WORK/s2/$f"
done
check "resume with the same N: checkpoint tensors equal to the uninterrupted run's" \
    "$python" "$diff_tool" "$WORK/m2/checkpoint.safetensors" "$WORK/s2/checkpoint.safetensors" 0 0
under_mpi 3 "$WORK/s3" --resume "$WORK/s3/checkpoint.safetensors"
check "resume with -np 3 exits 0 ($(tail -c 300 "$WORK/err"))" [ $? -eq 0 ]
check "resume with another N: parameters match one process" same_params "$WORK/p6" "$WORK/s3"

# 5. the golden trajectory set (6 steps of the official solver, recorded in
# PyTorch) replayed data-parallel: every recorded tensor within the set's
# tolerances, as in one process; the report printed once
for np in 2 3; do
    "${mpi[@]}" -np $np "$RAMC" golden "$golden/trajectory-tiny-s0" >"$WORK/golden.out" 2>"$WORK/err"
    check "trajectory set under -np $np exits 0 ($(tail -c 300 "$WORK/err"))" [ $? -eq 0 ]
    check "trajectory set under -np $np: every tensor within tolerance" \
        grep -q "tensors compared, 0 failed" "$WORK/golden.out"
    check "trajectory set under -np $np: one report" [ "$(grep -c '^== ' "$WORK/golden.out")" = 1 ]
done

# 6. sharded evaluation: the evaluation batches dealt round-robin over the
# processes, scores gathered in the set's order; with learning rates 0 the
# models are the same, so the reports must be identical to one process's
# (eval batch 3: 4 batches of 10 images; eval batch 5 under 3 processes: one
# process has no batch)
"$RAMC" synth --out "$WORK/ev" --train 12 --test 10 --pretrain 0 --size 32 --quiet >/dev/null 2>&1
eval_run() { # eval_run NP OUT EVAL_BATCH
    local np=$1 out=$2 eb=$3
    local a=(train --clip "$clip" --vision-heads 2 --text-heads 2 --train "$WORK/ev/train.json"
             --seen-classes "$WORK/ev/seen.txt" --unseen-classes "$WORK/ev/unseen.txt"
             --test-zsl "$WORK/ev/test_zsl.json" --test-gzsl "$WORK/ev/test_gzsl.json"
             --image-root "$WORK/ev" --output "$out" --set batch_size=6 --set max_epochs=1
             --set base_lr=0 --set base_lr_sgd=0 --set eval_batch_size=$eb --quiet)
    if [ "$np" = 0 ]; then "$RAMC" "${a[@]}" >"$WORK/err" 2>&1
    else "${mpi[@]}" -np "$np" "$RAMC" "${a[@]}" >"$WORK/err" 2>&1; fi
}
same_reports() { # same_reports A B: every eval report of A identical in B
    local f n=0
    for f in "$1"/eval-*.json; do
        cmp -s "$f" "$2/$(basename "$f")" || return 1
        n=$((n + 1))
    done
    [ $n = 4 ]
}
for eb in 3 5; do
    eval_run 0 "$WORK/e$eb-1" $eb
    check "evaluation in one process (eval batch $eb) exits 0" [ $? -eq 0 ]
    for np in 2 3; do
        eval_run $np "$WORK/e$eb-$np" $eb
        check "evaluation under -np $np (eval batch $eb) exits 0 ($(tail -c 300 "$WORK/err"))" [ $? -eq 0 ]
        check "evaluation under -np $np (eval batch $eb): reports identical to one process" \
            same_reports "$WORK/e$eb-1" "$WORK/e$eb-$np"
    done
done

summary cli_mpi
