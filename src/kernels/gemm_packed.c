/* Linear layers on frozen weights through oneDNN matmul primitives.
 *
 * dnnl_sgemm (gemm.c) repacks the weight matrix into its blocked layout on
 * every call and cannot fuse anything. For weights that never change (the
 * frozen CLIP towers) this file keeps one copy of each weight matrix in the
 * layout oneDNN's matmul prefers, reordered once, and runs the product as a
 * matmul primitive with the bias and the epilogue fused:
 *
 *   MATMUL_PLAIN       out  = inp @ W^T + b
 *   MATMUL_QUICKGELU   out  = q(inp @ W^T + b),  q(x) = x sigmoid(1.702 x)
 *                      (oneDNN's swish with alpha 1.702: CLIP's QuickGELU)
 *   MATMUL_ACCUMULATE  out += inp @ W^T + b      (the residual add)
 *
 * and the backward's input gradient dinp += dout @ W with W packed in that
 * orientation. Measured on the ViT-B/16 shapes: 5-20% faster products than
 * sgemm with a seeded bias, and the QuickGELU and residual passes are gone.
 *
 * Which weights count as frozen is said explicitly: kernels_freeze_weights()
 * registers an address range (the CLIP loader registers the model's storage),
 * kernels_thaw_weights() drops it and every packed copy inside it. A weight
 * outside every frozen range always goes through plain sgemm, so weights that
 * are trained (adapters, `ramc pretrain-clip`) can never meet a stale copy.
 * A range may ask for bf16 products (AVX512-BF16): its forward products then
 * round activations and weights to bf16 and accumulate in float32.
 *
 * A range frozen with `release` set (float32 only: a bf16 copy cannot give
 * the float32 values back) does not keep each matrix twice: once a weight is
 * packed, the whole pages of its stored matrix are given back to the kernel
 * (madvise DONTNEED) and made inaccessible (mprotect PROT_NONE), so a stray
 * direct read faults loudly instead of reading zeros. Anything that needs the
 * stored matrix again gets it rebuilt first, exactly (a reorder is a copy):
 * the sgemm fallback, the backward's other orientation, and thawing.
 * kernels_forget_weights() drops a range without rebuilding, for memory that
 * is about to be freed.
 *
 * Primitives are cached by shape and epilogue (least recently used out);
 * each weight keeps the one packed layout chosen for its first shape, and
 * later shapes are asked to use that same layout, so every weight has at most
 * one packed copy per orientation. Whether a model packs, and in bf16, is its
 * own parameter (ramc_clip_params); nothing here reads the environment.
 *
 * Thread safety: the tables of frozen ranges and packed weights are shared
 * and change under one mutex (a weight is packed on its first product, and
 * its copy is immutable until its range is thawed or forgotten, which the
 * model's owner does only when no product on it runs). The product itself
 * runs outside the lock: each calling thread has its own primitives, oneDNN
 * stream and bf16 activation buffer (thread_products), so threads sharing a
 * model multiply at the same time. oneDNN threads each product over OpenMP.
 * Results are bit-identical run to run for a fixed thread count.
 */
#include "core/half.h"
#include "kernels/kernels.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef RAMC_GEMM_DNNL
void kernels_freeze_weights(const void *base, size_t bytes, int bf16, int release) {
    (void)base, (void)bytes, (void)bf16, (void)release;
}
void kernels_thaw_weights(const void *base) { (void)base; }
void kernels_forget_weights(const void *base) { (void)base; }
void kernels_thaw_span(const void *base, size_t bytes) { (void)base, (void)bytes; }
void kernels_forget_span(const void *base, size_t bytes) { (void)base, (void)bytes; }
size_t kernels_released_bytes(void) { return 0; }
int kernels_packed_available(void) { return 0; }
long kernels_packed_count(void) { return 0; }
int kernels_weights_bf16(const void *w) {
    (void)w;
    return 0;
}
int gemm_bf16(int trans_a, int trans_b, int M, int N, int K, const float *A, int lda,
              const float *B, int ldb, float *C, int ldc) {
    (void)trans_a, (void)trans_b, (void)M, (void)N, (void)K, (void)A, (void)lda, (void)B,
        (void)ldb, (void)C, (void)ldc;
    return -1;
}
int gemm_bf16_raw(int trans_b, int M, int N, int K, const uint16_t *A, const uint16_t *B,
                  float *C, int ldc) {
    (void)trans_b, (void)M, (void)N, (void)K, (void)A, (void)B, (void)C, (void)ldc;
    return -1;
}
int matmul_forward_packed(float *out, const float *inp, const float *weight, const float *bias,
                          int rows, int in_dim, int out_dim, matmul_epilogue ep) {
    (void)out, (void)inp, (void)weight, (void)bias, (void)rows, (void)in_dim, (void)out_dim,
        (void)ep;
    return -1;
}
int matmul_backward_input_packed(float *dinp, const float *dout, const float *weight, int rows,
                                 int in_dim, int out_dim) {
    (void)dinp, (void)dout, (void)weight, (void)rows, (void)in_dim, (void)out_dim;
    return -1;
}
#else
#include <dnnl.h>

#define MAX_RANGES 32
#define MAX_PRIMS 96
#define MAX_WEIGHTS 1024

/* The two ways a weight W [out_dim, in_dim] enters a product. */
enum { ORIENT_FORWARD = 0, /* inp @ W^T: logical weights [in, out], W is their "ba" */
       ORIENT_BACKWARD = 1 /* dout @ W: logical weights [out, in], W is their "ab" */ };

typedef struct {
    const char *base;
    size_t bytes;
    int bf16, release;
} frozen_range;

typedef struct {
    const float *w;
    int in_dim, out_dim, orient, bf16;
    dnnl_memory_desc_t md; /* the packed layout */
    dnnl_memory_t mem;
    void *buf;
    char *rel_lo;  /* whole pages of the stored matrix given back, or NULL */
    size_t rel_len;
} packed_weight;

typedef struct {
    int rows, k, n, orient, bf16, has_bias, ep;
    dnnl_memory_desc_t wmd; /* the weight layout it was made for */
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t prim;
    unsigned long used;
} prim_entry;

/* Shared, under g_lock: the frozen ranges, the packed weights, the engine
 * and the stream the packing reorders run on. */
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static frozen_range g_ranges[MAX_RANGES];
static int g_nranges;
static packed_weight g_weights[MAX_WEIGHTS];
static int g_nweights;
static dnnl_engine_t g_eng; /* oneDNN engines are thread-safe: used outside the lock too */
static dnnl_stream_t g_stream;
static int g_broken; /* oneDNN could not start: stay on sgemm */
static atomic_long g_count; /* products done here */
/* Bumped whenever a range is dropped: a thread whose cache is older drops
 * its primitives (they were made for shapes of weights that may be gone,
 * and hold oneDNN memory) before its next product. */
static long g_generation;

/* A primitive of gemm_bf16: C [M, N] (row stride ldc) = A [M, K] B, B
 * stored [K, N] or (trans_b) [N, K], all plain layouts. */
typedef struct {
    int M, N, K, trans_b, ldc;
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t prim;
} gemm_bf16_entry;
#define MAX_GEMMS 16

/* What one thread needs to run products outside the lock. A primitive is
 * this thread's alone (cached by shape and epilogue, least recently used
 * out), so no other thread can evict it while it runs. Freed when the
 * thread ends. */
typedef struct {
    prim_entry prims[MAX_PRIMS];
    int nprims;
    unsigned long clock;
    long generation; /* of g_generation when the primitives were made */
    dnnl_stream_t stream;
    uint16_t *src; /* bf16 activations */
    size_t src_cap;
    gemm_bf16_entry gemms[MAX_GEMMS]; /* gemm_bf16's primitives, by shape */
    int ngemms, next_gemm;
    uint16_t *gemm_a, *gemm_b; /* gemm_bf16's operands in bf16 */
    size_t gemm_a_cap, gemm_b_cap;
} thread_products;

static pthread_key_t g_thread_key;
static pthread_once_t g_thread_key_once = PTHREAD_ONCE_INIT;

int kernels_packed_available(void) { return 1; }

long kernels_packed_count(void) { return atomic_load(&g_count); }

static void drop_range(const void *base, int rebuild);

void kernels_freeze_weights(const void *base, size_t bytes, int bf16, int release) {
    if (!base || !bytes) return;
    drop_range(base, 1); /* re-freezing starts over with the new settings */
    pthread_mutex_lock(&g_lock);
    if (g_nranges < MAX_RANGES) /* beyond that, the range just stays on sgemm */
        g_ranges[g_nranges++] =
            (frozen_range){(const char *)base, bytes, bf16, release && !bf16};
    pthread_mutex_unlock(&g_lock);
}

size_t kernels_released_bytes(void) {
    pthread_mutex_lock(&g_lock);
    size_t n = 0;
    for (int i = 0; i < g_nweights; i++) n += g_weights[i].rel_len;
    pthread_mutex_unlock(&g_lock);
    return n;
}

static dnnl_data_type_t dt(int bf16) { return bf16 ? dnnl_bf16 : dnnl_f32; }

/* The logical weight dims {k, n} and the tag of the stored W in them. */
static void weight_dims(int orient, int in_dim, int out_dim, dnnl_dims_t d, dnnl_format_tag_t *tag) {
    if (orient == ORIENT_FORWARD)
        d[0] = in_dim, d[1] = out_dim, *tag = dnnl_ba;
    else
        d[0] = out_dim, d[1] = in_dim, *tag = dnnl_ab;
}

static void destroy_prim(prim_entry *p) {
    dnnl_primitive_destroy(p->prim);
    dnnl_primitive_desc_destroy(p->pd);
}

static void drop_thread_prims(thread_products *t) {
    for (int i = 0; i < t->nprims; i++) destroy_prim(&t->prims[i]);
    t->nprims = 0;
}

static void drop_thread_gemms(thread_products *t) {
    for (int i = 0; i < t->ngemms; i++) {
        dnnl_primitive_destroy(t->gemms[i].prim);
        dnnl_primitive_desc_destroy(t->gemms[i].pd);
    }
    t->ngemms = t->next_gemm = 0;
}

static void thread_products_free(void *arg) {
    thread_products *t = arg;
    drop_thread_prims(t);
    drop_thread_gemms(t);
    if (t->stream) dnnl_stream_destroy(t->stream);
    free(t->src);
    free(t->gemm_a);
    free(t->gemm_b);
    free(t);
}

static void make_thread_key(void) { pthread_key_create(&g_thread_key, thread_products_free); }

/* This thread's primitives and stream, made on its first product (the
 * engine must be ready). NULL on failure. */
static thread_products *thread_products_get(void) {
    pthread_once(&g_thread_key_once, make_thread_key);
    thread_products *t = pthread_getspecific(g_thread_key);
    if (t) {
        if (t->generation != g_generation) drop_thread_prims(t), t->generation = g_generation;
        return t;
    }
    if (!(t = calloc(1, sizeof *t))) return NULL;
    t->generation = g_generation;
    if (dnnl_stream_create(&t->stream, g_eng, dnnl_stream_default_flags) != dnnl_success ||
        pthread_setspecific(g_thread_key, t) != 0) {
        if (t->stream) dnnl_stream_destroy(t->stream);
        free(t);
        return NULL;
    }
    return t;
}

/* The stored matrix of a packed weight, back from its copy (exact: a reorder
 * only moves floats). 0 when it is there (again). */
static int rebuild_original(packed_weight *e) {
    if (!e->rel_lo) return 0;
    if (mprotect(e->rel_lo, e->rel_len, PROT_READ | PROT_WRITE) != 0) return -1;
    dnnl_dims_t d;
    dnnl_format_tag_t tag;
    weight_dims(e->orient, e->in_dim, e->out_dim, d, &tag);
    dnnl_memory_desc_t fmd;
    dnnl_memory_t fmem = NULL;
    dnnl_primitive_desc_t rpd = NULL;
    dnnl_primitive_t rp = NULL;
    int ok = dnnl_memory_desc_init_by_tag(&fmd, 2, d, dnnl_f32, tag) == dnnl_success &&
             dnnl_memory_create(&fmem, &fmd, g_eng, (void *)e->w) == dnnl_success &&
             dnnl_reorder_primitive_desc_create(&rpd, &e->md, g_eng, &fmd, g_eng, NULL) ==
                 dnnl_success &&
             dnnl_primitive_create(&rp, rpd) == dnnl_success;
    if (ok) {
        dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, e->mem}, {DNNL_ARG_TO, fmem}};
        ok = dnnl_primitive_execute(rp, g_stream, 2, args) == dnnl_success &&
             dnnl_stream_wait(g_stream) == dnnl_success;
    }
    if (rp) dnnl_primitive_destroy(rp);
    if (rpd) dnnl_primitive_desc_destroy(rpd);
    if (fmem) dnnl_memory_destroy(fmem);
    if (!ok) return -1;
    e->rel_lo = NULL, e->rel_len = 0;
    return 0;
}

/* Gives back the whole pages of w's stored matrix once e holds a copy. */
static void release_original(packed_weight *e) {
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    const uintptr_t lo = ((uintptr_t)e->w + page - 1) / page * page;
    const uintptr_t hi = ((uintptr_t)e->w + (size_t)e->in_dim * e->out_dim * sizeof(float)) /
                         page * page;
    if (hi <= lo || madvise((void *)lo, hi - lo, MADV_DONTNEED) != 0) return;
    e->rel_lo = (char *)lo, e->rel_len = hi - lo;
    /* Should the pages stay accessible, they are zero now: put the values
     * back and keep both copies. */
    if (mprotect((void *)lo, hi - lo, PROT_NONE) != 0) rebuild_original(e);
}

/* Makes the stored floats [w, w + n) readable: rebuilds every matrix whose
 * packed copy replaced it and that overlaps them (a weight may be a view
 * into another one, e.g. the value rows of a fused QKV matrix). */
static int ensure_original(const float *w, size_t n) {
    for (int i = 0; i < g_nweights; i++) {
        packed_weight *e = &g_weights[i];
        const float *lo = e->w, *hi = e->w + (size_t)e->in_dim * e->out_dim;
        if (e->rel_lo && lo < w + n && w < hi && rebuild_original(e) != 0) return -1;
    }
    return 0;
}

/* Drops every range whose base lies in [lo, hi) and every packed copy inside
 * them; with rebuild the stored matrices are first made whole again, else
 * their pages are only made accessible (the memory is about to be freed). */
static void drop_ranges(const char *lo_base, const char *hi_base, int rebuild) {
    pthread_mutex_lock(&g_lock);
    for (int i = 0; i < g_nranges; i++) {
        if (g_ranges[i].base < lo_base || g_ranges[i].base >= hi_base) continue;
        const char *lo = g_ranges[i].base, *hi = lo + g_ranges[i].bytes;
        g_ranges[i--] = g_ranges[--g_nranges];
        /* The threads' primitives hold no weight (it comes with each
         * product), only its layout, but they hold memory: this thread drops
         * its own now, the others before their next product. */
        g_generation++;
        pthread_once(&g_thread_key_once, make_thread_key);
        thread_products *self = pthread_getspecific(g_thread_key);
        if (self) drop_thread_prims(self), self->generation = g_generation;
        int keep = 0;
        for (int j = 0; j < g_nweights; j++) {
            packed_weight *w = &g_weights[j];
            if ((const char *)w->w >= lo && (const char *)w->w < hi) {
                if (w->rel_lo && (!rebuild || rebuild_original(w) != 0))
                    mprotect(w->rel_lo, w->rel_len, PROT_READ | PROT_WRITE);
                dnnl_memory_destroy(w->mem);
                free(w->buf);
                w->mem = NULL;
            }
        }
        /* compact the weight table (running products hold the memory handle
         * of their weight, not its table entry) */
        for (int j = 0; j < g_nweights; j++) {
            if (!g_weights[j].mem) continue;
            if (j != keep) g_weights[keep] = g_weights[j];
            keep++;
        }
        g_nweights = keep;
    }
    pthread_mutex_unlock(&g_lock);
}

static void drop_range(const void *base, int rebuild) {
    drop_ranges(base, (const char *)base + 1, rebuild);
}

void kernels_thaw_weights(const void *base) { drop_range(base, 1); }
void kernels_forget_weights(const void *base) { drop_range(base, 0); }
void kernels_thaw_span(const void *base, size_t bytes) {
    if (base) drop_ranges(base, (const char *)base + bytes, 1);
}
void kernels_forget_span(const void *base, size_t bytes) {
    if (base) drop_ranges(base, (const char *)base + bytes, 0);
}

/* The frozen range holding [w, w + bytes), or NULL. */
static const frozen_range *range_of(const void *w, size_t bytes) {
    const char *p = (const char *)w;
    for (int i = 0; i < g_nranges; i++)
        if (p >= g_ranges[i].base && p + bytes <= g_ranges[i].base + g_ranges[i].bytes)
            return &g_ranges[i];
    return NULL;
}

int kernels_weights_bf16(const void *w) {
    pthread_mutex_lock(&g_lock);
    const frozen_range *r = w ? range_of(w, 1) : NULL;
    const int bf16 = r && r->bf16;
    pthread_mutex_unlock(&g_lock);
    return bf16;
}

static int engine_ready(void) {
    if (g_eng) return 1;
    if (g_broken) return 0;
    if (dnnl_engine_create(&g_eng, dnnl_cpu, 0) != dnnl_success ||
        dnnl_stream_create(&g_stream, g_eng, dnnl_stream_default_flags) != dnnl_success) {
        g_eng = NULL, g_broken = 1;
        return 0;
    }
    return 1;
}

static packed_weight *find_weight(const float *w, int in_dim, int out_dim, int orient, int bf16) {
    for (int i = 0; i < g_nweights; i++) {
        packed_weight *e = &g_weights[i];
        if (e->w == w && e->in_dim == in_dim && e->out_dim == out_dim && e->orient == orient &&
            e->bf16 == bf16)
            return e;
    }
    return NULL;
}

/* A matmul primitive for [rows, k] @ [k, n] (+ bias [n]) with the epilogue;
 * wmd: the weight layout to use, or NULL for "whatever oneDNN prefers". */
static prim_entry *make_prim(thread_products *t, int rows, int k, int n, int orient, int bf16,
                             int has_bias, int ep, const dnnl_memory_desc_t *wmd) {
    dnnl_memory_desc_t src, wei, bia, dst;
    dnnl_dims_t ds = {rows, k}, dw = {k, n}, db = {1, n}, dd = {rows, n};
    if (dnnl_memory_desc_init_by_tag(&src, 2, ds, dt(bf16), dnnl_ab) != dnnl_success ||
        dnnl_memory_desc_init_by_tag(&bia, 2, db, dnnl_f32, dnnl_ab) != dnnl_success ||
        dnnl_memory_desc_init_by_tag(&dst, 2, dd, dnnl_f32, dnnl_ab) != dnnl_success)
        return NULL;
    if (wmd)
        wei = *wmd;
    else if (dnnl_memory_desc_init_by_tag(&wei, 2, dw, dt(bf16), dnnl_format_tag_any) !=
             dnnl_success)
        return NULL;
    dnnl_matmul_desc_t md;
    if (dnnl_matmul_desc_init(&md, &src, &wei, has_bias ? &bia : NULL, &dst) != dnnl_success)
        return NULL;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    int ok = dnnl_primitive_attr_create(&attr) == dnnl_success &&
             dnnl_post_ops_create(&po) == dnnl_success;
    if (ok && ep == MATMUL_QUICKGELU)
        ok = dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_swish, 1.702f, 0.0f) ==
             dnnl_success;
    if (ok && ep == MATMUL_ACCUMULATE) ok = dnnl_post_ops_append_sum(po, 1.0f) == dnnl_success;
    if (ok) ok = dnnl_primitive_attr_set_post_ops(attr, po) == dnnl_success;

    if (t->nprims == MAX_PRIMS) { /* evict the least recently used */
        int lru = 0;
        for (int i = 1; i < t->nprims; i++)
            if (t->prims[i].used < t->prims[lru].used) lru = i;
        destroy_prim(&t->prims[lru]);
        t->prims[lru] = t->prims[--t->nprims];
    }
    prim_entry *e = &t->prims[t->nprims];
    memset(e, 0, sizeof *e);
    if (ok) ok = dnnl_primitive_desc_create(&e->pd, &md, attr, g_eng, NULL) == dnnl_success;
    if (po) dnnl_post_ops_destroy(po);
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (!ok) return NULL;
    if (dnnl_primitive_create(&e->prim, e->pd) != dnnl_success) {
        dnnl_primitive_desc_destroy(e->pd);
        return NULL;
    }
    e->wmd = *dnnl_primitive_desc_query_md(e->pd, dnnl_query_weights_md, 0);
    e->rows = rows, e->k = k, e->n = n, e->orient = orient, e->bf16 = bf16;
    e->has_bias = has_bias, e->ep = ep;
    t->nprims++;
    return e;
}

/* Reorders W into the layout md once and remembers it. */
static packed_weight *pack_weight(const float *w, int in_dim, int out_dim, int orient, int bf16,
                                  const dnnl_memory_desc_t *md) {
    if (g_nweights == MAX_WEIGHTS) return NULL;
    dnnl_dims_t d;
    dnnl_format_tag_t tag;
    weight_dims(orient, in_dim, out_dim, d, &tag);
    dnnl_memory_desc_t fmd;
    if (dnnl_memory_desc_init_by_tag(&fmd, 2, d, dnnl_f32, tag) != dnnl_success) return NULL;
    if (dnnl_memory_desc_equal(&fmd, md)) { /* the layout as stored: use it in place */
        dnnl_memory_t mem;
        if (dnnl_memory_create(&mem, md, g_eng, (void *)w) != dnnl_success) return NULL;
        packed_weight *e = &g_weights[g_nweights++];
        *e = (packed_weight){.w = w, .in_dim = in_dim, .out_dim = out_dim, .orient = orient,
                             .bf16 = bf16, .md = *md, .mem = mem, .buf = NULL};
        return e;
    }
    void *buf = aligned_alloc(64, (dnnl_memory_desc_get_size(md) + 63) / 64 * 64);
    if (!buf) return NULL;
    dnnl_memory_t fmem = NULL, pmem = NULL;
    dnnl_primitive_desc_t rpd = NULL;
    dnnl_primitive_t rp = NULL;
    int ok = dnnl_memory_create(&fmem, &fmd, g_eng, (void *)w) == dnnl_success &&
             dnnl_memory_create(&pmem, md, g_eng, buf) == dnnl_success &&
             dnnl_reorder_primitive_desc_create(&rpd, &fmd, g_eng, md, g_eng, NULL) ==
                 dnnl_success &&
             dnnl_primitive_create(&rp, rpd) == dnnl_success;
    if (ok) {
        dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, fmem}, {DNNL_ARG_TO, pmem}};
        ok = dnnl_primitive_execute(rp, g_stream, 2, args) == dnnl_success &&
             dnnl_stream_wait(g_stream) == dnnl_success;
    }
    if (rp) dnnl_primitive_destroy(rp);
    if (rpd) dnnl_primitive_desc_destroy(rpd);
    if (fmem) dnnl_memory_destroy(fmem);
    if (!ok) {
        if (pmem) dnnl_memory_destroy(pmem);
        free(buf);
        return NULL;
    }
    packed_weight *e = &g_weights[g_nweights++];
    *e = (packed_weight){.w = w, .in_dim = in_dim, .out_dim = out_dim, .orient = orient,
                         .bf16 = bf16, .md = *md, .mem = pmem, .buf = buf};
    return e;
}

/* This thread's primitive and the shared packed weight for this product,
 * made on first use. Under g_lock. */
static int lookup(thread_products *t, const float *w, int rows, int in_dim, int out_dim,
                  int orient, int bf16, int release, int has_bias, int ep, prim_entry **prim,
                  dnnl_memory_t *weight_mem) {
    const int k = orient == ORIENT_FORWARD ? in_dim : out_dim;
    const int n = orient == ORIENT_FORWARD ? out_dim : in_dim;
    packed_weight *e = find_weight(w, in_dim, out_dim, orient, bf16);
    prim_entry *p = NULL;
    for (int i = 0; i < t->nprims && !p; i++) {
        prim_entry *c = &t->prims[i];
        if (c->rows == rows && c->k == k && c->n == n && c->orient == orient && c->bf16 == bf16 &&
            c->has_bias == has_bias && c->ep == ep &&
            (!e || dnnl_memory_desc_equal(&c->wmd, &e->md)))
            p = c;
    }
    if (!p) p = make_prim(t, rows, k, n, orient, bf16, has_bias, ep, e ? &e->md : NULL);
    if (!p) return -1;
    if (!e) {
        /* the other orientation's copy may have replaced the stored matrix */
        if (ensure_original(w, (size_t)in_dim * out_dim) != 0) return -1;
        e = pack_weight(w, in_dim, out_dim, orient, bf16, &p->wmd);
        if (!e) return -1;
        if (release && e->buf) release_original(e);
    }
    p->used = ++t->clock;
    *prim = p, *weight_mem = e->mem;
    return 0;
}

/* Runs outside the lock: p and the stream are this thread's. */
static int execute(thread_products *t, const prim_entry *p, dnnl_memory_t weight_mem,
                   const void *src, const float *bias, float *dst) {
    dnnl_memory_desc_t smd, bmd, dmd;
    dnnl_dims_t ds = {p->rows, p->k}, db = {1, p->n}, dd = {p->rows, p->n};
    dnnl_memory_desc_init_by_tag(&smd, 2, ds, dt(p->bf16), dnnl_ab);
    dnnl_memory_desc_init_by_tag(&bmd, 2, db, dnnl_f32, dnnl_ab);
    dnnl_memory_desc_init_by_tag(&dmd, 2, dd, dnnl_f32, dnnl_ab);
    dnnl_memory_t smem = NULL, bmem = NULL, dmem = NULL;
    int rc = -1;
    if (dnnl_memory_create(&smem, &smd, g_eng, (void *)src) == dnnl_success &&
        (!bias || dnnl_memory_create(&bmem, &bmd, g_eng, (void *)bias) == dnnl_success) &&
        dnnl_memory_create(&dmem, &dmd, g_eng, dst) == dnnl_success) {
        dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, smem}, {DNNL_ARG_WEIGHTS, weight_mem},
                                   {DNNL_ARG_DST, dmem}, {DNNL_ARG_BIAS, bmem}};
        if (dnnl_primitive_execute(p->prim, t->stream, bias ? 4 : 3, args) == dnnl_success &&
            dnnl_stream_wait(t->stream) == dnnl_success) {
            rc = 0;
            atomic_fetch_add(&g_count, 1);
        }
    }
    if (smem) dnnl_memory_destroy(smem);
    if (bmem) dnnl_memory_destroy(bmem);
    if (dmem) dnnl_memory_destroy(dmem);
    return rc;
}

/* The product on this thread's primitive, outside the lock: src [n floats]
 * rounded to bf16 first (into this thread's buffer) when the weight is. */
static int run_product(thread_products *t, prim_entry *p, dnnl_memory_t weight_mem,
                       const float *src, size_t n, int bf16, const float *bias, float *dst) {
    if (!bf16) return execute(t, p, weight_mem, src, bias, dst);
    if (n > t->src_cap) {
        uint16_t *b = realloc(t->src, n * sizeof *b);
        if (!b) return -1;
        t->src = b, t->src_cap = n;
    }
    float_to_bf16(t->src, src, (long)n);
    return execute(t, p, weight_mem, t->src, bias, dst);
}

/* One product on weight's packed copy in orientation orient, in its range's
 * precision (bf16 training rounds a backward's dout and W as its forward
 * rounds inp and W): forward dst = src @ W^T (+ bias, epilogue ep), backward
 * dst += src @ W. Only a forward copy may replace the stored matrix. -1 when
 * it cannot run here (or -2 when the stored matrix could not be made whole
 * again): the caller then runs sgemm on the stored matrix. */
static int packed_product(int orient, float *dst, const float *src, const float *weight,
                          const float *bias, int rows, int in_dim, int out_dim,
                          matmul_epilogue ep) {
    if (rows <= 0 || in_dim <= 0 || out_dim <= 0 || !kernels_packed_available()) return -1;
    int rc = -1, bf16 = 0;
    thread_products *t = NULL;
    prim_entry *p = NULL;
    dnnl_memory_t weight_mem = NULL;
    pthread_mutex_lock(&g_lock);
    const frozen_range *r = range_of(weight, (size_t)in_dim * out_dim * sizeof(float));
    if (r && engine_ready() && (t = thread_products_get())) {
        bf16 = r->bf16;
        rc = lookup(t, weight, rows, in_dim, out_dim, orient, bf16,
                    orient == ORIENT_FORWARD && r->release, bias != NULL, ep, &p, &weight_mem);
    }
    pthread_mutex_unlock(&g_lock);

    const size_t n_src = (size_t)rows * (orient == ORIENT_FORWARD ? in_dim : out_dim);
    if (rc == 0) rc = run_product(t, p, weight_mem, src, n_src, bf16, bias, dst);
    if (rc != 0) {
        /* the caller falls back to sgemm on the stored matrix: make it whole */
        pthread_mutex_lock(&g_lock);
        if (ensure_original(weight, (size_t)in_dim * out_dim) != 0) rc = -2;
        pthread_mutex_unlock(&g_lock);
    }
    return rc;
}

int matmul_forward_packed(float *out, const float *inp, const float *weight, const float *bias,
                          int rows, int in_dim, int out_dim, matmul_epilogue ep) {
    return packed_product(ORIENT_FORWARD, out, inp, weight, bias, rows, in_dim, out_dim, ep);
}

int matmul_backward_input_packed(float *dinp, const float *dout, const float *weight, int rows,
                                 int in_dim, int out_dim) {
    return packed_product(ORIENT_BACKWARD, dinp, dout, weight, NULL, rows, in_dim, out_dim,
                          MATMUL_ACCUMULATE);
}

/* ------------------------------------------------------------ gemm_bf16 */

/* dst [rows, cols] contiguous = src (row stride ld) in bf16; with transpose,
 * dst [rows, cols] = src^T, src [cols, rows] (row stride ld). */
static void to_bf16_matrix(uint16_t *dst, const float *src, int rows, int cols, long ld,
                           int transpose) {
    const long n = (long)rows * cols;
    if (!transpose) {
        if (ld == cols) {
            float_to_bf16(dst, src, n);
            return;
        }
#pragma omp parallel for schedule(static) if (n >= 65536)
        for (int r = 0; r < rows; r++) float_to_bf16(dst + (long)r * cols, src + (long)r * ld, cols);
        return;
    }
    /* 32 x 32 blocks: both sides stay in cache lines */
#pragma omp parallel for collapse(2) schedule(static) if (n >= 65536)
    for (int r0 = 0; r0 < rows; r0 += 32)
        for (int c0 = 0; c0 < cols; c0 += 32)
            for (int c = c0; c < c0 + 32 && c < cols; c++)
                for (int r = r0; r < r0 + 32 && r < rows; r++)
                    dst[(long)r * cols + c] = f32_to_bf16(src[(long)c * ld + r]);
}

/* This thread's primitive for the shape, made on first use. */
static gemm_bf16_entry *gemm_prim(thread_products *t, int M, int N, int K, int trans_b, int ldc) {
    for (int i = 0; i < t->ngemms; i++) {
        gemm_bf16_entry *e = &t->gemms[i];
        if (e->M == M && e->N == N && e->K == K && e->trans_b == trans_b && e->ldc == ldc) return e;
    }
    dnnl_memory_desc_t src, wei, dst;
    dnnl_dims_t ds = {M, K}, dw = {K, N}, dd = {M, N}, sd = {ldc, 1};
    if (dnnl_memory_desc_init_by_tag(&src, 2, ds, dnnl_bf16, dnnl_ab) != dnnl_success ||
        dnnl_memory_desc_init_by_tag(&wei, 2, dw, dnnl_bf16, trans_b ? dnnl_ba : dnnl_ab) !=
            dnnl_success ||
        dnnl_memory_desc_init_by_strides(&dst, 2, dd, dnnl_f32, sd) != dnnl_success)
        return NULL;
    dnnl_matmul_desc_t md;
    if (dnnl_matmul_desc_init(&md, &src, &wei, NULL, &dst) != dnnl_success) return NULL;
    gemm_bf16_entry e = {.M = M, .N = N, .K = K, .trans_b = trans_b, .ldc = ldc};
    if (dnnl_primitive_desc_create(&e.pd, &md, NULL, g_eng, NULL) != dnnl_success) return NULL;
    if (dnnl_primitive_create(&e.prim, e.pd) != dnnl_success) {
        dnnl_primitive_desc_destroy(e.pd);
        return NULL;
    }
    int slot = t->ngemms;
    if (slot == MAX_GEMMS) { /* full: replace in turn */
        slot = t->next_gemm;
        t->next_gemm = (t->next_gemm + 1) % MAX_GEMMS;
        dnnl_primitive_destroy(t->gemms[slot].prim);
        dnnl_primitive_desc_destroy(t->gemms[slot].pd);
    } else {
        t->ngemms++;
    }
    t->gemms[slot] = e;
    return &t->gemms[slot];
}

static int grow(uint16_t **buf, size_t *cap, size_t n) {
    if (n <= *cap) return 0;
    uint16_t *b = realloc(*buf, n * sizeof *b);
    if (!b) return -1;
    *buf = b, *cap = n;
    return 0;
}

/* The product of gemm_bf16_raw on this thread's primitive. */
static int run_gemm(thread_products *t, int trans_b, int M, int N, int K, const uint16_t *A,
                    const uint16_t *B, float *C, int ldc) {
    gemm_bf16_entry *e = gemm_prim(t, M, N, K, trans_b, ldc);
    if (!e) return -1;
    const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(e->pd, dnnl_query_src_md, 0);
    const dnnl_memory_desc_t *wmd = dnnl_primitive_desc_query_md(e->pd, dnnl_query_weights_md, 0);
    const dnnl_memory_desc_t *dmd = dnnl_primitive_desc_query_md(e->pd, dnnl_query_dst_md, 0);
    dnnl_memory_t smem = NULL, wmem = NULL, dmem = NULL;
    int rc = -1;
    if (dnnl_memory_create(&smem, smd, g_eng, (void *)A) == dnnl_success &&
        dnnl_memory_create(&wmem, wmd, g_eng, (void *)B) == dnnl_success &&
        dnnl_memory_create(&dmem, dmd, g_eng, C) == dnnl_success) {
        dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, smem}, {DNNL_ARG_WEIGHTS, wmem},
                                   {DNNL_ARG_DST, dmem}};
        if (dnnl_primitive_execute(e->prim, t->stream, 3, args) == dnnl_success &&
            dnnl_stream_wait(t->stream) == dnnl_success)
            rc = 0;
    }
    if (smem) dnnl_memory_destroy(smem);
    if (wmem) dnnl_memory_destroy(wmem);
    if (dmem) dnnl_memory_destroy(dmem);
    return rc;
}

static thread_products *gemm_thread(void) {
    thread_products *t = NULL;
    pthread_mutex_lock(&g_lock);
    if (engine_ready()) t = thread_products_get();
    pthread_mutex_unlock(&g_lock);
    return t;
}

int gemm_bf16_raw(int trans_b, int M, int N, int K, const uint16_t *A, const uint16_t *B,
                  float *C, int ldc) {
    if (M <= 0 || N <= 0 || K <= 0) return -1;
    thread_products *t = gemm_thread();
    return t ? run_gemm(t, trans_b, M, N, K, A, B, C, ldc) : -1;
}

int gemm_bf16(int trans_a, int trans_b, int M, int N, int K, const float *A, int lda,
              const float *B, int ldb, float *C, int ldc) {
    if (M <= 0 || N <= 0 || K <= 0) return -1;
    thread_products *t = gemm_thread();
    if (!t || grow(&t->gemm_a, &t->gemm_a_cap, (size_t)M * K) != 0 ||
        grow(&t->gemm_b, &t->gemm_b_cap, (size_t)K * N) != 0)
        return -1;
    /* A to [M, K]; B kept in its orientation, [K, N] or [N, K] */
    to_bf16_matrix(t->gemm_a, A, M, K, lda, trans_a);
    if (trans_b)
        to_bf16_matrix(t->gemm_b, B, N, K, ldb, 0);
    else
        to_bf16_matrix(t->gemm_b, B, K, N, ldb, 0);
    return run_gemm(t, trans_b, M, N, K, t->gemm_a, t->gemm_b, C, ldc);
}
#endif
