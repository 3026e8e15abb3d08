# Shared set-up of the tests of training under mpirun (cli_mpi.sh,
# cli_mpi_faults.sh). Source it after setting RAMC, golden, src and WORK and
# sourcing lib_cli.sh. Exits 77 (skipped) when this build has no MPI or
# mpirun is missing. Then:
#   data                   the data set folder train_args uses ($WORK/syn)
#   train_args OUT ARGS... the arguments of a small training run into OUT
#   plain OUT ARGS...      that run in one process (output in $WORK/err)
#   under_mpi NP OUT ARGS... that run under mpirun -np NP
#   same_params A B        the adapters of runs A and B within tolerance
#   mpi                    the mpirun command line (array)

if ! command -v mpirun >/dev/null; then
    echo "$(basename "$0" .sh): skipped: no mpirun (apt-get install openmpi-bin)"
    exit 77
fi
if ! "$RAMC" train --help 2>/dev/null | grep -q "Data-parallel over MPI: yes"; then
    echo "$(basename "$0" .sh): skipped: this ramc was built without MPI (RAMC_MPI=OFF)"
    exit 77
fi
python=/usr/bin/python3
[ -x "$python" ] || python=python3
diff_tool=$src/tests/safetensors_diff.py

# one OpenMP thread per process (2 cores here, up to 3 processes); CI runs as
# root, which mpirun refuses unless told
export OMP_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# Open MPI's own allocations are not ours to judge in a sanitizer build
if [ "${RAMC_SANITIZED:-0}" = 1 ]; then
    export ASAN_OPTIONS=detect_leaks=0:halt_on_error=1
fi
# --bind-to none: several processes share the 2 cores
mpi=(mpirun --oversubscribe --bind-to none -x OMP_NUM_THREADS)
[ "${RAMC_SANITIZED:-0}" = 1 ] && mpi+=(-x ASAN_OPTIONS)

"$RAMC" synth --out "$WORK/syn" --train 24 --test 4 --pretrain 0 --size 32 --quiet \
    >/dev/null 2>&1
check "synthetic set written" [ -s "$WORK/syn/train.json" ]

clip=$golden/tiny-s0/weights.safetensors
# train OUT [args...]: 2 epochs of 4 steps at batch 6 (24 images) of $data
data=$WORK/syn
train_args() {
    local out=$1
    shift
    printf '%s\n' train --clip "$clip" --vision-heads 2 --text-heads 2 \
        --train "$data/train.json" --seen-classes "$data/seen.txt" \
        --image-root "$data" --output "$out" --set batch_size=6 --set max_epochs=2 \
        --set warmup_epochs=0 --set base_lr=1e-2 --set base_lr_sgd=1e-1 --set eval_period=100 \
        --set log_period=1 --set workers=1 --quiet "$@"
}
plain() { # plain OUT [args...]
    local a
    mapfile -t a < <(train_args "$@")
    "$RAMC" "${a[@]}" >"$WORK/err" 2>&1
}
under_mpi() { # under_mpi NP OUT [args...]
    local np=$1 a
    shift
    mapfile -t a < <(train_args "$@")
    "${mpi[@]}" -np "$np" "$RAMC" "${a[@]}" >"$WORK/err" 2>&1
}
same_params() { # same_params A B: the adapter and its EMA within tolerance
    "$python" "$diff_tool" "$1/adapter.safetensors" "$2/adapter.safetensors" 1e-6 1e-5 &&
        "$python" "$diff_tool" "$1/adapter-ema.safetensors" "$2/adapter-ema.safetensors" 1e-6 1e-5
}
first_loss() { grep -m1 '"event":"step"' "$1/log.jsonl" | sed 's/.*"loss":\([^,]*\),.*/\1/'; }

