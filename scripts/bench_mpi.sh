#!/usr/bin/env bash
# The figures of docs/distributed.md: training throughput of one process with
# 2 threads against 2 processes (mpirun) with 1 thread each, and the bytes
# exchanged per step, on the embedded default model (small CLIP, 64x64) and a
# synthetic set of its world. Prints one Markdown table row per setting and
# the machine's conditions (CPU, load average before and after: the machine
# may be shared, so re-measure on a quiet one).
#   scripts/bench_mpi.sh [BUILD_DIR] [STEPS] [BATCH]     (defaults: build 12 16)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build} steps=${2:-12} batch=${3:-16}
ramc=$build/ramc
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# the default model's world (data/default/README.txt): synth v1 (its own seen labels)
"$ramc" synth --world v1 --seed 1 --out "$work/syn" --train $((batch * (steps + 2))) --test 4 \
    --pretrain 0 --quiet >/dev/null 2>&1
args=(train --train "$work/syn/train.json" --seen-classes "$work/syn/seen.txt"
      --image-root "$work/syn" --set batch_size=$batch --set max_epochs=1 --set warmup_epochs=0
      --set log_period=1 --set eval_period=100 --set workers=1 --quiet --max-steps $((steps + 1)))

# images/s over the steps after the first (which pays for start-up and warm-up)
rate() {
    grep '"event":"step"' "$1/log.jsonl" | /usr/bin/python3 -c '
import json, sys
rows = [json.loads(l) for l in sys.stdin]
a, b = rows[0], rows[-1]
print("%.2f %d" % ((b["global_step"] - a["global_step"]) * '"$batch"' / (b["elapsed_s"] - a["elapsed_s"]),
                   b.get("sent_bytes", 0) // b["global_step"]))'
}

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "batch $batch, $steps timed steps, embedded default model, $(mpirun --version | head -1)"
echo
echo "| setting | images/s | bytes sent per step by rank 0 |"
echo "|---|---|---|"
OMP_NUM_THREADS=1 "$ramc" "${args[@]}" --threads 1 --output "$work/p1" 2>/dev/null
read -r r b < <(rate "$work/p1")
echo "| 1 process x 1 thread | $r | - |"
OMP_NUM_THREADS=2 "$ramc" "${args[@]}" --threads 2 --output "$work/p2" 2>/dev/null
read -r r b < <(rate "$work/p2")
echo "| 1 process x 2 threads | $r | - |"
mpirun -np 2 --bind-to core -x OMP_NUM_THREADS=1 "$ramc" "${args[@]}" --threads 1 \
    --output "$work/m2" 2>/dev/null
read -r r b < <(rate "$work/m2")
echo "| 2 processes x 1 thread (mpirun, bound to cores) | $r | $b |"
echo
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

# The scaling model of docs/distributed.md, from its inputs (no measurement):
# T(N) = (B/N) t_img + t_fix + 2 * 4P (N-1)/N / bandwidth + L * latency
echo
echo "scaling model: B 32, t_img 0.30 s, t_fix 0.1 s, P 13016174, L 52, latency 20 us"
for gbit in 10 1; do
    awk -v gbit=$gbit 'BEGIN {
        B = 32; t_img = 0.30; t_fix = 0.1; P = 13016174; L = 52; alpha = 20e-6
        beta = gbit * 1e9 / 8
        t1 = B * t_img + t_fix
        printf "%d Gbit/s:\n| N | T(N) | speed-up | efficiency |\n|---|---|---|---|\n", gbit
        n = split("2 8 16 32", Ns, " ")
        for (i = 1; i <= n; i++) {
            N = Ns[i]
            t = B / N * t_img + t_fix + 2 * 4 * P * (N - 1) / N / beta + L * alpha
            printf "| %d | %.2f s | %.1fx | %.0f%% |\n", N, t, t1 / t, 100 * t1 / t / N
        }
    }'
done
