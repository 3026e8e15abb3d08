/* bf16_kernels: the bf16 mode's own kernels against their float32
 * counterparts, on RAM's ViT-B/16 shapes (docs/performance.md, "bf16").
 *
 *   build/bf16_kernels [--threads N] [--rounds R]
 *
 * Attention: one ViT-B/16 block's main attention at batch 8 (8 x 12 heads,
 * 197 tokens, head size 64, the fused [.., 3C] projection) through
 * attention_fused_forward (float32) and attention_fused_forward_bf16 under
 * each kernel the CPU can run (AMX tiles, vdpbf16ps). TSS: the products of
 * one adapter at batch 8 with the default adapter (hidden 512, 65 labels, a
 * 1006-label NUS variant) through gemm (float32) and gemm_bf16 (bf16,
 * operands converted per call).
 *
 * Figures are CPU seconds of the whole process (CLOCK_PROCESS_CPUTIME_ID),
 * the best of R calls after one untimed: on a shared machine the CPU time a
 * kernel takes moves far less than its wall time. The ratio float32 / bf16
 * is the figure to quote; under load even it drifts by ~10%. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/kernels.h"

static double cpu_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static float *random_floats(long n, unsigned *seed) {
    float *x = malloc(sizeof(float) * (size_t)n);
    for (long i = 0; x && i < n; i++) {
        *seed = *seed * 1664525u + 1013904223u;
        x[i] = (float)(*seed >> 8) / 16777216.0f - 0.5f;
    }
    return x;
}

enum { ATT_F32, ATT_BF16 };

/* Best CPU seconds of `rounds` calls of the attention, after one untimed. */
static double time_attention(int which, int rounds, float *out, const float *qkv, int B, int T,
                             int C, int H, int causal) {
    double best = 1e30;
    for (int r = 0; r <= rounds; r++) {
        const double t0 = cpu_seconds();
        if (which == ATT_F32)
            attention_fused_forward(out, NULL, qkv, qkv + C, qkv + 2 * C, (long)T * 3 * C, 3 * C,
                                    B, T, T, C, H, causal);
        else
            attention_fused_forward_bf16(out, NULL, qkv, qkv + C, qkv + 2 * C, (long)T * 3 * C,
                                         3 * C, B, T, T, C, H, causal);
        const double d = cpu_seconds() - t0;
        if (r > 0 && d < best) best = d;
    }
    return best;
}

int main(int argc, char **argv) {
    int threads = 1, rounds = 7;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
            rounds = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bf16_kernels [--threads N] [--rounds R]\n");
            return 2;
        }
    }
    kernels_set_num_threads(threads);
    unsigned seed = 1;
    char isa[128];
    printf("bf16_kernels: %d thread(s), best of %d, CPU seconds; kernels %s\n", threads, rounds,
           kernels_isa_describe(isa, sizeof isa));

    /* vision: 8 images x 12 heads x 197 tokens; text: 65 prompts x 8 heads,
     * causal, over 77 tokens and over 20 (a chunk cut at its last EOT) */
    static const struct {
        const char *name;
        int B, T, C, H, causal;
    } att[] = {{"attention 8 x 12 x 197^2, dh 64", 8, 197, 768, 12, 0},
               {"attention 65 x 8 x 77^2 causal, dh 64", 65, 77, 512, 8, 1},
               {"attention 65 x 8 x 20^2 causal, dh 64", 65, 20, 512, 8, 1}};
    for (size_t a = 0; a < sizeof att / sizeof att[0]; a++) {
        const int B = att[a].B, T = att[a].T, C = att[a].C, H = att[a].H;
        float *qkv = random_floats((long)B * T * 3 * C, &seed);
        float *out = random_floats((long)B * T * C, &seed);
        if (!qkv || !out) return 1;
        const double flops = (att[a].causal ? 2.0 : 4.0) * B * T * T * C;
        const double f32 = time_attention(ATT_F32, rounds, out, qkv, B, T, C, H, att[a].causal);
        printf("%-40s %-12s %9.5f s %7.1f GFLOP/s\n", att[a].name, "float32", f32, flops / f32 / 1e9);
        int tried[3] = {0};
        for (int cap = KERNELS_BF16_AMX; cap > KERNELS_BF16_NONE; cap--) {
            kernels_bf16_attention_cap((kernels_bf16_kind)cap);
            const kernels_bf16_kind kind = kernels_bf16_attention_kind();
            if (kind == KERNELS_BF16_NONE || tried[kind]++) continue;
            const double t = time_attention(ATT_BF16, rounds, out, qkv, B, T, C, H, att[a].causal);
            printf("%-40s %-12s %9.5f s %7.1f GFLOP/s  float32/bf16 %.2f\n", "",
                   kernels_bf16_kind_name(kind), t, flops / t / 1e9, f32 / t);
        }
        kernels_bf16_attention_cap(KERNELS_BF16_AMX);
        free(qkv), free(out);
    }

    static const struct {
        const char *name;
        int ta, tb, M, N, K;
    } shapes[] = {
        {"TSS 1x1 conv 1568 x 768 -> 512", 0, 1, 1568, 512, 768},
        {"TSS 3x3 conv 784 x 6912 -> 512", 0, 1, 784, 512, 6912},
        {"TSS label logits 1568 x 512 -> 65", 0, 1, 1568, 65, 512},
        {"TSS label mixing 1568 x 65 -> 512", 0, 0, 1568, 512, 65},
        {"TSS label logits 1568 x 512 -> 1006", 0, 1, 1568, 1006, 512},
        {"TSS label mixing 1568 x 1006 -> 512", 0, 0, 1568, 512, 1006},
        {"TSS final conv 196 x 512 -> 768 (A^T)", 1, 1, 196, 768, 512},
    };
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int M = shapes[s].M, N = shapes[s].N, K = shapes[s].K;
        const int lda = shapes[s].ta ? M : K, ldb = shapes[s].tb ? K : N;
        float *A = random_floats((long)M * K, &seed), *Bm = random_floats((long)K * N, &seed);
        float *Cm = random_floats((long)M * N, &seed);
        if (!A || !Bm || !Cm) return 1;
        double t[2];
        int ok = 1;
        for (int bf16 = 0; bf16 < 2; bf16++) {
            t[bf16] = 1e30;
            for (int r = 0; r <= rounds; r++) {
                const double t0 = cpu_seconds();
                if (bf16)
                    ok &= gemm_bf16(shapes[s].ta, shapes[s].tb, M, N, K, A, lda, Bm, ldb, Cm, N) == 0;
                else
                    gemm(shapes[s].ta, shapes[s].tb, M, N, K, 1.0f, A, lda, Bm, ldb, 0.0f, Cm, N);
                const double d = cpu_seconds() - t0;
                if (r > 0 && d < t[bf16]) t[bf16] = d;
            }
        }
        if (ok)
            printf("%-40s float32 %9.5f s  bf16 %9.5f s  float32/bf16 %.2f\n", shapes[s].name,
                   t[0], t[1], t[0] / t[1]);
        else
            printf("%-40s float32 %9.5f s  bf16: gemm_bf16 cannot run here\n", shapes[s].name, t[0]);
        free(A), free(Bm), free(Cm);
    }
    return 0;
}
