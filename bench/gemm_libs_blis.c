/* BLIS 0.9 in the GEMM comparison (gemm_libs.h), through dlopen.
 *
 * libblis.so also exports the BLAS and CBLAS names (sgemm_, cblas_sgemm);
 * linked into the same program as OpenBLAS, whichever comes first would serve
 * every caller of those names, the other library and ramc included. Opened
 * with RTLD_LOCAL | RTLD_DEEPBIND, BLIS keeps its names to itself and we call
 * its own typed API (bli_sgemm) only. The header gives the types; nothing is
 * linked. BLIS packs both operands itself on every call; there is no API to
 * keep a packed weight. Debian's libblis-openmp threads over OpenMP, the same
 * libgomp as oneDNN and ramc. */
#include "gemm_libs.h"

#include <stddef.h>
#include <stdio.h>

#ifdef RAMC_HAVE_BLIS_H
#include <blis.h>
#include <dlfcn.h>

static void (*p_sgemm)(trans_t, trans_t, dim_t, dim_t, dim_t, float *, float *, inc_t, inc_t,
                       float *, inc_t, inc_t, float *, float *, inc_t, inc_t);
static void (*p_set_threads)(dim_t);
static arch_t (*p_arch_query_id)(void);
static char *(*p_arch_string)(arch_t);
static char *(*p_version)(void);
static char g_isa[64];

int gemm_blis_open(void) {
    if (p_sgemm) return 1;
    void *h = dlopen("libblis.so.4", RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
    if (!h) return 0;
    *(void **)&p_sgemm = dlsym(h, "bli_sgemm");
    *(void **)&p_set_threads = dlsym(h, "bli_thread_set_num_threads");
    *(void **)&p_arch_query_id = dlsym(h, "bli_arch_query_id");
    *(void **)&p_arch_string = dlsym(h, "bli_arch_string");
    *(void **)&p_version = dlsym(h, "bli_info_get_version_str");
    if (!p_sgemm || !p_set_threads) {
        p_sgemm = NULL;
        return 0;
    }
    return 1;
}

static const char *blis_isa(void) {
    if (!p_arch_query_id || !p_arch_string) return NULL;
    snprintf(g_isa, sizeof g_isa, "%s (BLIS %s)", p_arch_string(p_arch_query_id()),
             p_version ? p_version() : "?");
    return g_isa;
}

static void *blis_prepare(const float *W, int M, int N, int K, int threads) {
    (void)W, (void)M, (void)N, (void)K;
    if (!p_sgemm) return NULL;
    p_set_threads(threads);
    return (void *)1;
}

static int blis_run(void *p, float *out, const float *inp, const float *W, int M, int N, int K) {
    (void)p;
    float one = 1.0f, zero = 0.0f;
    /* row-major: row stride first, column stride 1; W^T through BLIS_TRANSPOSE */
    p_sgemm(BLIS_NO_TRANSPOSE, BLIS_TRANSPOSE, M, N, K, &one, (float *)inp, K, 1, (float *)W, K, 1,
            &zero, out, N, 1);
    return 0;
}
#else
#include <stdio.h>
int gemm_blis_open(void) { return 0; }
static const char *blis_isa(void) { return NULL; }
static void *blis_prepare(const float *W, int M, int N, int K, int threads) {
    (void)W, (void)M, (void)N, (void)K, (void)threads;
    return NULL;
}
static int blis_run(void *p, float *out, const float *inp, const float *W, int M, int N, int K) {
    (void)p, (void)out, (void)inp, (void)W, (void)M, (void)N, (void)K;
    return -1;
}
#endif

static void blis_release(void *p) { (void)p; }

const gemm_lib gemm_lib_blis = {"BLIS", 0, blis_prepare, blis_run, blis_release, blis_isa};
