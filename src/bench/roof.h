/* The machine's roof, measured on the spot: what the CPU is, which vector
 * extensions it has, and how fast this build multiplies matrices on it.
 *
 * Absolute rates differ by 2x between the machines ramc runs on (the same
 * EPYC family at other clocks and generations), so a benchmark figure means
 * something only as a share of the roof measured in the same run. */
#ifndef RAMC_BENCH_ROOF_H
#define RAMC_BENCH_ROOF_H

#include "ramc.h"

typedef struct {
    char cpu_model[128];         /* /proc/cpuinfo "model name"; "unknown" elsewhere */
    int avx2, avx512f, avx512_bf16, amx_tile; /* the CPU's flags, 1 when present */
    /* Best GFLOP/s of this build's linear layer (the packed oneDNN product,
     * bf16 on AVX512-BF16) on a ROOF_DIM cubed product with the call's
     * threads; 0 where the build or the CPU cannot run it. */
    double f32_gflops, bf16_gflops;
    double probe_s;              /* seconds the probe took */
} bench_roof;

#define ROOF_DIM 2048

/* Fills roof: the CPU description always, the rates unless probe is 0.
 * threads: 0 for the calling thread's OpenMP setting. */
ramc_status bench_roof_measure(int threads, int probe, bench_roof *roof);

#endif
