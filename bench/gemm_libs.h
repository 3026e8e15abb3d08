/* The GEMM library comparison (bench/gemm_libs.c): one interface per library.
 *
 * Every product has the linear-layer form the model runs,
 *   out[M, N] = inp[M, K] @ W[N, K]^T      (row-major, no bias)
 * with W fixed for the whole measurement (a weight), so a library may pack it
 * once in prepare (untimed, as ramc packs the frozen CLIP once at load) and
 * run only the product in run (timed). bf16 entries take float32 activations
 * and round them to bf16 inside run (timed, as ramc's bf16 layers do), and
 * accumulate in float32.
 *
 * The libxsmm and BLIS adapters live in their own files so that their headers
 * never meet OpenBLAS's cblas.h; BLIS is opened with dlopen (RTLD_DEEPBIND)
 * because libblis.so exports cblas_sgemm and sgemm_ too, and linking it would
 * let it take OpenBLAS's place for every caller in the process. */
#ifndef RAMC_BENCH_GEMM_LIBS_H
#define RAMC_BENCH_GEMM_LIBS_H

typedef struct {
    const char *name;   /* column name in the report */
    int bf16;           /* 1: bf16 inputs, float32 accumulation */
    /* Untimed: threads for what follows, pack W [N, K] if the library packs.
     * Returns an opaque state (or (void *)1 when it needs none), NULL when the
     * library cannot run this shape (the report says n/a). */
    void *(*prepare)(const float *W, int M, int N, int K, int threads);
    /* Timed: out [M, N] = inp [M, K] @ W^T. 0 on success. */
    int (*run)(void *state, float *out, const float *inp, const float *W, int M, int N, int K);
    void (*release)(void *state);
    /* What the library says it runs on (ISA / kernel family), or NULL. */
    const char *(*isa)(void);
} gemm_lib;

/* bench/gemm_libs_xsmm.c: libxsmm 1.17. */
extern const gemm_lib gemm_lib_xsmm_brgemm;      /* packed W, batch-reduce kernels, our OpenMP loop */
extern const gemm_lib gemm_lib_xsmm_omp;         /* libxsmm_sgemm_omp: the library's own threaded GEMM */
extern const gemm_lib gemm_lib_xsmm_brgemm_bf16; /* packed W in VNNI pairs, bf16 batch-reduce kernels */
const char *gemm_xsmm_version(void);

/* bench/gemm_libs_blis.c: BLIS through dlopen; 0 when libblis.so.4 is absent. */
int gemm_blis_open(void);
extern const gemm_lib gemm_lib_blis;

#endif
