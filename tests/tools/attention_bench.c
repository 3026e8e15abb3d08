/* attention_bench: the fused attention kernels (attention_fused_forward /
 * attention_fused_backward) against the reference path (attention_forward
 * with the caller's work planes, as inference ran it before, and
 * attention_backward reading stored probabilities), interleaved call by call
 * in one process on random inputs in the fused [.., 3C] projection layout:
 *
 *   attention_bench [T] [causal 0|1] [threads] [B] [C] [heads] [calls]
 *                   (defaults 197 0 1 8 768 12 15: ViT-B/16's vision blocks)
 *
 * prints the median time of each of the four over `calls` calls, and the
 * ratios. With one thread the times are the thread's own CPU time
 * (CLOCK_THREAD_CPUTIME_ID), so a loaded machine's descheduling does not
 * count; with more, wall-clock time. docs/performance.md, lever 10. */
#define _POSIX_C_SOURCE 200809L
#include "kernels/kernels.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static clockid_t g_clock = CLOCK_MONOTONIC;

static double now(void) {
    struct timespec t;
    clock_gettime(g_clock, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    int T = argc > 1 ? atoi(argv[1]) : 197, causal = argc > 2 ? atoi(argv[2]) : 0;
    int threads = argc > 3 ? atoi(argv[3]) : 1, B = argc > 4 ? atoi(argv[4]) : 8;
    int C = argc > 5 ? atoi(argv[5]) : 768, H = argc > 6 ? atoi(argv[6]) : 12;
    int calls = argc > 7 ? atoi(argv[7]) : 15;
    if (T < 1 || B < 1 || H < 1 || C % H || calls < 1 || calls > 1000 || threads < 1) {
        fprintf(stderr, "usage: attention_bench [T] [causal] [threads] [B] [C] [heads] [calls]\n");
        return 2;
    }
    kernels_set_num_threads(threads);
    if (threads == 1) g_clock = CLOCK_THREAD_CPUTIME_ID;
    const long n = (long)B * T * 3 * C, no = (long)B * T * C, bs = (long)T * 3 * C;
    float *qkv = malloc(sizeof(float) * (size_t)n), *dqkv = calloc((size_t)n, sizeof(float));
    float *out = malloc(sizeof(float) * (size_t)no), *g = malloc(sizeof(float) * (size_t)no);
    float *probs = malloc(sizeof(float) * (size_t)B * H * T * T);
    float *lse = malloc(sizeof(float) * (size_t)B * H * T);
    float *work = malloc(sizeof(float) * attention_work_floats(B, T, T, H));
    double *t = malloc(sizeof(double) * 4 * (size_t)calls);
    if (!qkv || !dqkv || !out || !g || !probs || !lse || !work || !t) return 1;
    srand(1);
    for (long i = 0; i < n; i++) qkv[i] = (float)rand() / (float)RAND_MAX * 2.0f - 1.0f;
    for (long i = 0; i < no; i++) g[i] = (float)rand() / (float)RAND_MAX - 0.5f;
    const float *q = qkv, *k = qkv + C, *v = qkv + 2 * C;
    for (int r = 0; r < calls; r++) {
        double t0 = now();
        attention_forward(out, NULL, q, k, v, bs, 3 * C, B, T, T, C, H, causal, work);
        double t1 = now();
        attention_fused_forward(out, lse, q, k, v, bs, 3 * C, B, T, T, C, H, causal);
        double t2 = now();
        attention_forward(out, probs, q, k, v, bs, 3 * C, B, T, T, C, H, causal, NULL);
        double t3 = now();
        attention_backward(dqkv, dqkv + C, dqkv + 2 * C, g, probs, q, k, v, bs, 3 * C, B, T, T, C,
                           H, causal);
        double t4 = now();
        attention_fused_forward(out, lse, q, k, v, bs, 3 * C, B, T, T, C, H, causal);
        double t5 = now();
        attention_fused_backward(dqkv, dqkv + C, dqkv + 2 * C, g, out, lse, q, k, v, bs, 3 * C, B,
                                 T, T, C, H, causal);
        double t6 = now();
        t[r] = t1 - t0, t[calls + r] = t2 - t1, t[2 * calls + r] = t4 - t3,
        t[3 * calls + r] = t6 - t5;
    }
    double med[4];
    for (int i = 0; i < 4; i++) {
        qsort(t + (long)i * calls, (size_t)calls, sizeof(double), cmp_double);
        med[i] = t[(long)i * calls + calls / 2];
    }
    const double flop = 4.0 * B * H * (double)T * T * (C / H); /* the two products, mask ignored */
    printf("T %d causal %d threads %d B %d C %d heads %d, median of %d (%s):\n", T, causal, threads,
           B, C, H, calls, threads == 1 ? "thread CPU time" : "wall");
    printf("  forward   reference %8.2f ms (%5.0f GFLOP/s)  fused %8.2f ms (%5.0f GFLOP/s)  %.2fx\n",
           med[0] * 1e3, flop / med[0] * 1e-9, med[1] * 1e3, flop / med[1] * 1e-9, med[0] / med[1]);
    printf("  backward  reference %8.2f ms (stored probs)     fused %8.2f ms                   %.2fx\n",
           med[2] * 1e3, med[3] * 1e3, med[2] / med[3]);
    free(qkv), free(dqkv), free(out), free(g), free(probs), free(lse), free(work), free(t);
    return 0;
}
