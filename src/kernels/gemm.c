/* GEMM backend and threading control.
 *
 * gemm() goes to oneDNN's dnnl_sgemm when ramc is built with RAMC_GEMM=dnnl
 * (the default when libdnnl is found), otherwise to OpenBLAS's cblas_sgemm.
 * Both are row-major with the same argument meaning.
 *
 * One threading level: the Debian oneDNN uses OpenMP (libgomp), and so do
 * ramc's own loops (kernels.c, attention.c, conv.c). OpenBLAS stays linked
 * (a few callers use cblas directly and `ramc bench` reports its
 * configuration), but with the dnnl backend its own pthread pool is held at
 * one thread so it never competes with OpenMP's.
 *
 * Inside an OpenMP parallel region (attention's per-head loop) oneDNN runs
 * each sgemm on the calling thread alone, which is what that loop wants.
 *
 * Determinism: for a fixed thread count every call gives bit-identical
 * results run to run (static partitioning in oneDNN and in our loops). The
 * big GEMMs may round differently for a different thread count.
 */
#include "kernels/kernels.h"

#include <cblas.h>
#include <pthread.h>
#include <stdlib.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#ifdef RAMC_GEMM_DNNL
#include <dnnl.h>
#endif

/* OpenBLAS extensions (declared by its cblas.h, repeated here for other cblas.h). */
void openblas_set_num_threads(int);
int openblas_get_num_threads(void);

static int g_threads = 0; /* 0: not set, the OpenMP default */

#ifdef RAMC_GEMM_DNNL
static pthread_once_t g_backend_once = PTHREAD_ONCE_INIT;
static void backend_init(void) { openblas_set_num_threads(1); }
#endif

/* Once, on first use rather than at load time (a library should not run code
 * before main): OpenBLAS's pool held at one thread with oneDNN (see above). */
void kernels_init(void) {
#ifdef RAMC_GEMM_DNNL
    pthread_once(&g_backend_once, backend_init);
#endif
}

void kernels_set_num_threads(int n) {
    kernels_init();
    if (n < 1) return;
    g_threads = n;
#ifdef _OPENMP
    omp_set_num_threads(n);
#endif
#ifdef RAMC_GEMM_DNNL
    openblas_set_num_threads(1);
#else
    openblas_set_num_threads(n);
#endif
}

int kernels_threads_begin(int n) {
    kernels_init();
#ifdef _OPENMP
    int saved = omp_get_max_threads();
    /* nthreads-var is a per-thread ICV: this changes the calling thread's
     * parallel regions only, so concurrent callers may ask for different counts */
    if (n > 0) omp_set_num_threads(n);
    return saved;
#else
    int saved = kernels_get_num_threads();
    if (n > 0) kernels_set_num_threads(n);
    return saved;
#endif
}

void kernels_threads_end(int saved) {
#ifdef _OPENMP
    if (saved > 0) omp_set_num_threads(saved);
#else
    if (saved > 0) kernels_set_num_threads(saved);
#endif
}

int kernels_get_num_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
#ifdef RAMC_GEMM_DNNL
    return 1;
#else
    return g_threads > 0 ? g_threads : openblas_get_num_threads();
#endif
#endif
}

const char *kernels_gemm_backend(void) {
#ifdef RAMC_GEMM_DNNL
    return "onednn";
#else
    return "openblas";
#endif
}

int kernels_gemm_nests(void) {
#ifdef RAMC_GEMM_DNNL
    return 1;
#else
    return 0;
#endif
}

/* C[M,N] = alpha * op(A)[M,K] @ op(B)[K,N] + beta * C. */
void gemm(int trans_a, int trans_b, int M, int N, int K, float alpha,
          const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    kernels_init();
    if (K <= 0) {
        /* BLAS would reject lda = 0 through xerbla, which prints; an empty
         * sum leaves only the beta term. */
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++)
                C[(long)i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[(long)i * ldc + j];
        return;
    }
#ifdef RAMC_GEMM_DNNL
    if (dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', M, N, K, alpha, A, lda, B, ldb,
                   beta, C, ldc) == dnnl_success)
        return;
    /* oneDNN validates its arguments before touching C, so on a refusal the
     * same product through OpenBLAS is still exact. */
#endif
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda, B, ldb, beta, C,
                ldc);
}
