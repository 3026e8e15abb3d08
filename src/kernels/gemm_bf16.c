/* Optional bf16 inference: matmul_forward through oneDNN's matmul primitive
 * with bf16 inputs and weights, float32 accumulation and output.
 *
 * Off by default (float32 everywhere). kernels_set_bf16(1), or RAMC_BF16=1 in
 * the environment (read at the first matmul_forward), turns it on. Each
 * weight matrix is converted to bf16 once, in the layout oneDNN prefers, and
 * cached by its pointer: this is for INFERENCE on fixed weights only (a weight
 * changed in place keeps its stale bf16 copy until kernels_bf16_flush()).
 * The activations are rounded to bf16 (nearest even) on every call. Only
 * matmul_forward (the linear layers: ~95% of the FLOPs) changes precision;
 * attention, convolutions and everything else stay float32.
 *
 * Without oneDNN (RAMC_GEMM=openblas) the switch is accepted and ignored.
 */
#include "kernels/kernels.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static int g_bf16 = -1; /* -1: not decided yet (environment) */

void kernels_set_bf16(int on) { g_bf16 = on ? 1 : 0; }

int kernels_get_bf16(void) {
    if (g_bf16 < 0) {
        const char *e = getenv("RAMC_BF16");
        g_bf16 = e && e[0] && strcmp(e, "0") != 0;
    }
#ifdef RAMC_GEMM_DNNL
    return g_bf16;
#else
    return 0;
#endif
}

#ifndef RAMC_GEMM_DNNL
int matmul_forward_bf16(float *out, const float *inp, const float *weight, const float *bias,
                        int rows, int in_dim, int out_dim) {
    (void)out, (void)inp, (void)weight, (void)bias, (void)rows, (void)in_dim, (void)out_dim;
    return -1;
}
void kernels_bf16_flush(void) {}
#else
#include <dnnl.h>

#define MAX_PRIMS 64
#define MAX_WEIGHTS 256

typedef struct {
    int rows, in_dim, out_dim, has_bias;
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t prim;
} prim_entry;

typedef struct {
    const float *w;
    int in_dim, out_dim;
    dnnl_memory_desc_t md; /* bf16, oneDNN's layout */
    dnnl_memory_t mem;
} weight_entry;

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static dnnl_engine_t g_eng;
static dnnl_stream_t g_stream;
static prim_entry g_prims[MAX_PRIMS];
static int g_nprims;
static weight_entry g_weights[MAX_WEIGHTS];
static int g_nweights;
static uint16_t *g_src; /* bf16 activations */
static size_t g_src_cap;

void kernels_bf16_flush(void) {
    pthread_mutex_lock(&g_lock);
    for (int i = 0; i < g_nweights; i++) {
        void *h = NULL;
        dnnl_memory_get_data_handle(g_weights[i].mem, &h);
        dnnl_memory_destroy(g_weights[i].mem);
        free(h);
    }
    g_nweights = 0;
    pthread_mutex_unlock(&g_lock);
}

/* float -> bf16, round to nearest even (NaN stays NaN). */
static void to_bf16(uint16_t *dst, const float *src, long n) {
#pragma omp parallel for schedule(static) if (n >= 65536)
    for (long i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &src[i], 4);
        uint32_t r = (u & 0x7fffffffu) > 0x7f800000u ? (u | 0x00400000u)
                                                      : u + 0x7fffu + ((u >> 16) & 1u);
        dst[i] = (uint16_t)(r >> 16);
    }
}

static prim_entry *get_prim(int rows, int in_dim, int out_dim, int has_bias) {
    for (int i = 0; i < g_nprims; i++) {
        prim_entry *e = &g_prims[i];
        if (e->rows == rows && e->in_dim == in_dim && e->out_dim == out_dim &&
            e->has_bias == has_bias)
            return e;
    }
    if (g_nprims == MAX_PRIMS) return NULL;
    dnnl_memory_desc_t src, wei, bia, dst;
    dnnl_dims_t ds = {rows, in_dim}, dw = {in_dim, out_dim}, db = {1, out_dim},
                dd = {rows, out_dim};
    if (dnnl_memory_desc_init_by_tag(&src, 2, ds, dnnl_bf16, dnnl_ab) != dnnl_success ||
        dnnl_memory_desc_init_by_tag(&wei, 2, dw, dnnl_bf16, dnnl_format_tag_any) !=
            dnnl_success ||
        dnnl_memory_desc_init_by_tag(&bia, 2, db, dnnl_f32, dnnl_ab) != dnnl_success ||
        dnnl_memory_desc_init_by_tag(&dst, 2, dd, dnnl_f32, dnnl_ab) != dnnl_success)
        return NULL;
    dnnl_matmul_desc_t md;
    if (dnnl_matmul_desc_init(&md, &src, &wei, has_bias ? &bia : NULL, &dst) != dnnl_success)
        return NULL;
    prim_entry *e = &g_prims[g_nprims];
    if (dnnl_primitive_desc_create(&e->pd, &md, NULL, g_eng, NULL) != dnnl_success) return NULL;
    if (dnnl_primitive_create(&e->prim, e->pd) != dnnl_success) {
        dnnl_primitive_desc_destroy(e->pd);
        return NULL;
    }
    e->rows = rows, e->in_dim = in_dim, e->out_dim = out_dim, e->has_bias = has_bias;
    g_nprims++;
    return e;
}

/* weight [out_dim, in_dim] f32 = W^T [in_dim, out_dim] in layout "ba", reordered once. */
static dnnl_memory_t get_weight(const float *w, int in_dim, int out_dim,
                                const dnnl_memory_desc_t *want) {
    for (int i = 0; i < g_nweights; i++) {
        weight_entry *e = &g_weights[i];
        if (e->w == w && e->in_dim == in_dim && e->out_dim == out_dim &&
            dnnl_memory_desc_equal(&e->md, want))
            return e->mem;
    }
    if (g_nweights == MAX_WEIGHTS) return NULL;
    dnnl_memory_desc_t fmd;
    dnnl_dims_t dw = {in_dim, out_dim};
    if (dnnl_memory_desc_init_by_tag(&fmd, 2, dw, dnnl_f32, dnnl_ba) != dnnl_success) return NULL;
    void *buf = aligned_alloc(64, (dnnl_memory_desc_get_size(want) + 63) / 64 * 64);
    if (!buf) return NULL;
    dnnl_memory_t fmem = NULL, bmem = NULL;
    dnnl_primitive_desc_t rpd = NULL;
    dnnl_primitive_t rp = NULL;
    int ok = dnnl_memory_create(&fmem, &fmd, g_eng, (void *)w) == dnnl_success &&
             dnnl_memory_create(&bmem, want, g_eng, buf) == dnnl_success &&
             dnnl_reorder_primitive_desc_create(&rpd, &fmd, g_eng, want, g_eng, NULL) ==
                 dnnl_success &&
             dnnl_primitive_create(&rp, rpd) == dnnl_success;
    if (ok) {
        dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, fmem}, {DNNL_ARG_TO, bmem}};
        ok = dnnl_primitive_execute(rp, g_stream, 2, args) == dnnl_success &&
             dnnl_stream_wait(g_stream) == dnnl_success;
    }
    if (rp) dnnl_primitive_destroy(rp);
    if (rpd) dnnl_primitive_desc_destroy(rpd);
    if (fmem) dnnl_memory_destroy(fmem);
    if (!ok) {
        if (bmem) dnnl_memory_destroy(bmem);
        free(buf);
        return NULL;
    }
    weight_entry *e = &g_weights[g_nweights++];
    e->w = w, e->in_dim = in_dim, e->out_dim = out_dim, e->md = *want, e->mem = bmem;
    return bmem;
}

/* out [rows,out_dim] = bf16(inp) @ bf16(weight)^T + bias, f32 accumulation.
 * 0 when done, -1 when oneDNN could not (the caller then runs float32). */
int matmul_forward_bf16(float *out, const float *inp, const float *weight, const float *bias,
                        int rows, int in_dim, int out_dim) {
    int rc = -1;
    pthread_mutex_lock(&g_lock);
    if (!g_eng && (dnnl_engine_create(&g_eng, dnnl_cpu, 0) != dnnl_success ||
                   dnnl_stream_create(&g_stream, g_eng, dnnl_stream_default_flags) !=
                       dnnl_success)) {
        g_eng = NULL;
        goto done;
    }
    prim_entry *p = get_prim(rows, in_dim, out_dim, bias != NULL);
    if (!p) goto done;
    const dnnl_memory_desc_t *wmd = dnnl_primitive_desc_query_md(p->pd, dnnl_query_weights_md, 0);
    dnnl_memory_t wmem = wmd ? get_weight(weight, in_dim, out_dim, wmd) : NULL;
    if (!wmem) goto done;
    size_t n = (size_t)rows * in_dim;
    if (n > g_src_cap) {
        uint16_t *b = realloc(g_src, n * sizeof *b);
        if (!b) goto done;
        g_src = b, g_src_cap = n;
    }
    to_bf16(g_src, inp, (long)n);
    dnnl_memory_desc_t smd, bmd, dmd;
    dnnl_dims_t ds = {rows, in_dim}, db = {1, out_dim}, dd = {rows, out_dim};
    dnnl_memory_desc_init_by_tag(&smd, 2, ds, dnnl_bf16, dnnl_ab);
    dnnl_memory_desc_init_by_tag(&bmd, 2, db, dnnl_f32, dnnl_ab);
    dnnl_memory_desc_init_by_tag(&dmd, 2, dd, dnnl_f32, dnnl_ab);
    dnnl_memory_t smem = NULL, bmem = NULL, dmem = NULL;
    if (dnnl_memory_create(&smem, &smd, g_eng, g_src) == dnnl_success &&
        (!bias || dnnl_memory_create(&bmem, &bmd, g_eng, (void *)bias) == dnnl_success) &&
        dnnl_memory_create(&dmem, &dmd, g_eng, out) == dnnl_success) {
        dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, smem}, {DNNL_ARG_WEIGHTS, wmem},
                                   {DNNL_ARG_DST, dmem}, {DNNL_ARG_BIAS, bmem}};
        if (dnnl_primitive_execute(p->prim, g_stream, bias ? 4 : 3, args) == dnnl_success &&
            dnnl_stream_wait(g_stream) == dnnl_success)
            rc = 0;
    }
    if (smem) dnnl_memory_destroy(smem);
    if (bmem) dnnl_memory_destroy(bmem);
    if (dmem) dnnl_memory_destroy(dmem);
done:
    pthread_mutex_unlock(&g_lock);
    return rc;
}
#endif
