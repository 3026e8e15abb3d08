/* libxsmm 1.17 in the GEMM comparison (gemm_libs.h).
 *
 * libxsmm is a generator of small-matrix kernels, not a BLAS: a large product
 * is the caller's loop over blocks of C, each block one batch-reduce kernel
 * call summing the K blocks (the way oneDNN's own "brgemm" matmul works). So
 * the packed entries below do what ramc would do with libxsmm: W reordered
 * once into blocks that the kernel reads contiguously, and an OpenMP loop over
 * the blocks of out. libxsmm_sgemm_omp is the library's own threaded GEMM on
 * the unpacked matrices, measured beside it.
 *
 * libxsmm is column-major; out[M, N] row-major is C = N x M column-major, so
 * libxsmm's m is our N (the weight's rows), its n our M (the tokens) and
 * C = A B with A the weight (N x K) and B the activations (K x M, ld K). */
#include "gemm_libs.h"

#include <libxsmm.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK_N 64 /* weight rows per block: libxsmm's m */
#define BLOCK_M 32 /* token rows per block: libxsmm's n */
#define BLOCK_K 64 /* one batch-reduce step, when K is a multiple */

typedef struct {
    int M, N, K, bk, nblocks_n, nblocks_k, bf16;
    void *packed;   /* [nblocks_n][nblocks_k] blocks of BLOCK_N x bk (zero-padded rows) */
    uint16_t *act;  /* bf16 activations [M, K] (bf16 only) */
    /* kernels for [full | partial] weight block x [full | partial] token block */
    libxsmm_smmfunction_reducebatch_strd f32[2][2];
    libxsmm_bsmmfunction_reducebatch_strd bf[2][2];
} xsmm_state;

static uint16_t bf16_round(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

static const char *xsmm_isa(void) { return libxsmm_get_target_arch(); }

static void xsmm_release(void *p) {
    xsmm_state *s = p;
    if (!s) return;
    free(s->packed);
    free(s->act);
    free(s);
}

static void *xsmm_prepare_common(const float *W, int M, int N, int K, int bf16) {
    libxsmm_init();
    if (bf16 && K % 2) return NULL; /* VNNI pairs along K */
    xsmm_state *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->M = M, s->N = N, s->K = K, s->bf16 = bf16;
    s->bk = K % BLOCK_K == 0 ? BLOCK_K : K;
    s->nblocks_n = (N + BLOCK_N - 1) / BLOCK_N;
    s->nblocks_k = K / s->bk;
    const size_t block = (size_t)BLOCK_N * s->bk, elem = bf16 ? 2 : 4;
    s->packed = aligned_alloc(64, ((size_t)s->nblocks_n * s->nblocks_k * block * elem + 63) / 64 * 64);
    if (bf16) s->act = aligned_alloc(64, ((size_t)M * K * 2 + 63) / 64 * 64);
    if (!s->packed || (bf16 && !s->act)) {
        xsmm_release(s);
        return NULL;
    }
    memset(s->packed, 0, (size_t)s->nblocks_n * s->nblocks_k * block * elem);
    for (int nb = 0; nb < s->nblocks_n; nb++)
        for (int kb = 0; kb < s->nblocks_k; kb++) {
            const size_t base = ((size_t)nb * s->nblocks_k + kb) * block;
            for (int n = 0; n < BLOCK_N && nb * BLOCK_N + n < N; n++)
                for (int k = 0; k < s->bk; k++) {
                    const float w = W[(size_t)(nb * BLOCK_N + n) * K + kb * s->bk + k];
                    if (bf16) /* VNNI: pairs of consecutive k side by side */
                        ((uint16_t *)s->packed)[base + ((size_t)(k / 2) * BLOCK_N + n) * 2 + (k & 1)] =
                            bf16_round(w);
                    else /* column-major BLOCK_N x bk */
                        ((float *)s->packed)[base + (size_t)k * BLOCK_N + n] = w;
                }
        }
    const float alpha = 1.0f, beta = 0.0f;
    const libxsmm_blasint lda = BLOCK_N, ldb = K, ldc = N;
    const int widths[2] = {BLOCK_N, N % BLOCK_N}, heights[2] = {BLOCK_M, M % BLOCK_M};
    const libxsmm_blasint stride_a = (libxsmm_blasint)(block * elem), stride_b = (libxsmm_blasint)(s->bk * elem);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) {
            if (!widths[i] || !heights[j]) continue;
            if (bf16) {
                s->bf[i][j] = libxsmm_bsmmdispatch_reducebatch_strd(
                    widths[i], heights[j], s->bk, stride_a, stride_b, &lda, &ldb, &ldc, &alpha, &beta,
                    NULL, NULL);
                if (!s->bf[i][j]) goto fail;
            } else {
                s->f32[i][j] = libxsmm_smmdispatch_reducebatch_strd(
                    widths[i], heights[j], s->bk, stride_a, stride_b, &lda, &ldb, &ldc, &alpha, &beta,
                    NULL, NULL);
                if (!s->f32[i][j]) goto fail;
            }
        }
    return s;
fail:
    xsmm_release(s);
    return NULL;
}

static void *xsmm_prepare_f32(const float *W, int M, int N, int K, int threads) {
    (void)threads;
    return xsmm_prepare_common(W, M, N, K, 0);
}

static void *xsmm_prepare_bf16(const float *W, int M, int N, int K, int threads) {
    (void)threads;
    return xsmm_prepare_common(W, M, N, K, 1);
}

static int xsmm_run(void *p, float *out, const float *inp, const float *W, int M, int N, int K) {
    (void)W;
    xsmm_state *s = p;
    if (M != s->M || N != s->N || K != s->K) return -1;
    const size_t block = (size_t)BLOCK_N * s->bk;
    const int nblocks_m = (M + BLOCK_M - 1) / BLOCK_M;
    if (s->bf16) {
        const long n = (long)M * K;
#pragma omp parallel for schedule(static)
        for (long i = 0; i < n; i++) s->act[i] = bf16_round(inp[i]);
    }
    const unsigned long long count = (unsigned long long)s->nblocks_k;
    /* weight blocks outermost: each thread keeps its weight panel in cache
     * while it walks the token blocks */
#pragma omp parallel for collapse(2) schedule(static)
    for (int nb = 0; nb < s->nblocks_n; nb++)
        for (int mb = 0; mb < nblocks_m; mb++) {
            const int i = nb * BLOCK_N + BLOCK_N > N, j = mb * BLOCK_M + BLOCK_M > M;
            float *c = out + (size_t)mb * BLOCK_M * N + (size_t)nb * BLOCK_N;
            if (s->bf16) {
                const libxsmm_bfloat16 *a = (const libxsmm_bfloat16 *)s->packed + (size_t)nb * s->nblocks_k * block;
                const libxsmm_bfloat16 *b = s->act + (size_t)mb * BLOCK_M * K;
                s->bf[i][j](a, b, c, &count);
            } else {
                const float *a = (const float *)s->packed + (size_t)nb * s->nblocks_k * block;
                const float *b = inp + (size_t)mb * BLOCK_M * K;
                s->f32[i][j](a, b, c, &count);
            }
        }
    return 0;
}

static void *omp_prepare(const float *W, int M, int N, int K, int threads) {
    (void)W, (void)M, (void)N, (void)K, (void)threads;
    libxsmm_init();
    return (void *)1;
}

static int omp_run(void *p, float *out, const float *inp, const float *W, int M, int N, int K) {
    (void)p;
    const libxsmm_blasint m = N, n = M, k = K, lda = K, ldb = K, ldc = N;
    const float alpha = 1.0f, beta = 0.0f;
    libxsmm_sgemm_omp("T", "N", &m, &n, &k, &alpha, W, &lda, inp, &ldb, &beta, out, &ldc);
    return 0;
}

static void omp_release(void *p) { (void)p; }

const gemm_lib gemm_lib_xsmm_brgemm = {"libxsmm brgemm, packed", 0, xsmm_prepare_f32, xsmm_run,
                                       xsmm_release, xsmm_isa};
const gemm_lib gemm_lib_xsmm_omp = {"libxsmm sgemm_omp", 0, omp_prepare, omp_run, omp_release,
                                    xsmm_isa};
const gemm_lib gemm_lib_xsmm_brgemm_bf16 = {"libxsmm brgemm bf16, packed", 1, xsmm_prepare_bf16,
                                            xsmm_run, xsmm_release, xsmm_isa};

const char *gemm_xsmm_version(void) { return LIBXSMM_VERSION; }
