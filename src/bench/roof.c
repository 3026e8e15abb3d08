/* The roof (roof.h): CPU identity and a quick GEMM probe. */
#include "bench/roof.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/status.h"
#include "kernels/kernels.h"

/* 1 when the space-separated flag list holds `flag` as a whole word. */
static int has_flag(const char *flags, const char *flag) {
    const size_t n = strlen(flag);
    for (const char *p = flags; (p = strstr(p, flag)) != NULL; p += n)
        if ((p == flags || p[-1] == ' ' || p[-1] == '\t') && (p[n] == ' ' || p[n] == '\n' || !p[n]))
            return 1;
    return 0;
}

static void read_cpuinfo(bench_roof *r) {
    snprintf(r->cpu_model, sizeof r->cpu_model, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[8192];
    int have_model = 0, have_flags = 0;
    while ((!have_model || !have_flags) && fgets(line, sizeof line, f)) {
        const char *colon = strchr(line, ':');
        if (!colon) continue;
        const char *value = colon + 1 + (colon[1] == ' ');
        if (!have_model && !strncmp(line, "model name", 10)) {
            snprintf(r->cpu_model, sizeof r->cpu_model, "%s", value);
            r->cpu_model[strcspn(r->cpu_model, "\n")] = '\0';
            have_model = 1;
        } else if (!have_flags && !strncmp(line, "flags", 5)) {
            r->avx2 = has_flag(value, "avx2");
            r->avx512f = has_flag(value, "avx512f");
            r->avx512_bf16 = has_flag(value, "avx512_bf16");
            r->amx_tile = has_flag(value, "amx_tile");
            have_flags = 1;
        }
    }
    fclose(f);
}

/* Best rate of out = in @ w^T over at least 8 calls and about a second, w
 * frozen as the model's weights are (packed once, bf16 if asked). The best,
 * not the median: the roof is what the machine can do, and on a shared or
 * frequency-scaling machine single calls vary by up to 2x (seen here with a
 * 0.3 s probe: 136 and 220 GFLOP/s in two runs minutes apart). */
static double probe_linear(float *out, const float *in, float *w, int bf16) {
    const int n = ROOF_DIM;
    const double flop = 2.0 * n * n * (double)n;
    kernels_freeze_weights(w, (size_t)n * n * sizeof(float), bf16, 0);
    matmul_forward(out, in, w, NULL, n, n, n); /* packs the weight, warms the threads */
    double best = 0, spent = 0;
    for (int k = 0; k < 100 && (k < 8 || spent < 1.0); k++) {
        const double t0 = monotonic_seconds();
        matmul_forward(out, in, w, NULL, n, n, n);
        const double dt = monotonic_seconds() - t0;
        spent += dt;
        if (dt > 0 && flop / dt > best) best = flop / dt;
    }
    kernels_thaw_weights(w);
    return best / 1e9;
}

ramc_status bench_roof_measure(int threads, int probe, bench_roof *r) {
    memset(r, 0, sizeof *r);
    read_cpuinfo(r);
    if (!probe) return RAMC_OK;
    const size_t nn = (size_t)ROOF_DIM * ROOF_DIM;
    float *a = ramc_malloc(nn * sizeof(float), "roof probe");
    float *w = ramc_malloc(nn * sizeof(float), "roof probe");
    float *c = ramc_malloc(nn * sizeof(float), "roof probe");
    if (!a || !w || !c) {
        free(a), free(w), free(c);
        return RAMC_ERR_NOMEM;
    }
    /* values of the size of real activations and weights: no denormals */
    for (size_t i = 0; i < nn; i++) {
        a[i] = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
        w[i] = (float)((i * 40503u) % 1000) / 32000.0f - 0.015f;
    }
    const int saved = kernels_threads_begin(threads);
    const double t0 = monotonic_seconds();
    r->f32_gflops = probe_linear(c, a, w, 0);
    /* bf16 products exist on packed weights with AVX512-BF16 only */
    if (kernels_packed_available() && r->avx512_bf16) r->bf16_gflops = probe_linear(c, a, w, 1);
    r->probe_s = monotonic_seconds() - t0;
    kernels_threads_end(saved);
    free(a), free(w), free(c);
    return RAMC_OK;
}
