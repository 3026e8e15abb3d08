/* Multi-head scaled dot-product attention over strided q, k, v.
 *
 * The main path works one (batch item, head) at a time with GEMMs on strided
 * views: BLAS takes the row stride as the leading dimension, so the fused
 * [.., 3C] projection and SAA's q = k = v form need no copies.
 *
 * Threading: the (batch item, head) pairs are spread over OpenMP threads
 * (static schedule), each running its own small GEMMs single-threaded (oneDNN
 * does so inside a parallel region) and its own softmax rows. Every pair's
 * arithmetic is the same on any thread, so the result is bit-identical for
 * any thread count. With the OpenBLAS backend, which threads each GEMM
 * itself, the pairs run one after another as before.
 *
 * Scratch: the [Tq,Tk] score matrix of one head lives in the caller's probs
 * buffer when one is given, else in the caller's work (one plane per thread,
 * from the per-call arena at inference); without either (and for dP in the
 * backward) it is malloc'ed here, once per call. (Training runs the fused
 * kernels of attention_fused.c, which need no scratch; these are the
 * reference.)
 * Should malloc fail, the row-wise paths below compute the same result with
 * no scratch at all (online softmax), slower, so the kernel still never fails.
 */
#include "kernels/kernels.h"
#include "kernels/kernels_ref.h"

#include "kernels/vexp.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* Threads for the per-head loop over nbh pairs (1: run it serially). */
static int head_threads(int nbh) {
#ifdef _OPENMP
    if (!kernels_gemm_nests() || omp_in_parallel()) return 1;
    int n = omp_get_max_threads();
    return n < nbh ? n : nbh;
#else
    (void)nbh;
    return 1;
#endif
}

static inline int thread_id(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* Number of keys query t may see. */
static inline int keys_visible(int t, int Tk, int causal) {
    if (!causal) return Tk;
    return t + 1 < Tk ? t + 1 : Tk;
}

/* P [Tq,Tk] = softmax(scale * Q K^T) with the causal mask applied as exact
 * zeros. Q [Tq,dh], K [Tk,dh] are strided views with row stride rs. */
static void head_probs(float *P, const float *Q, const float *K, long rs, int Tq, int Tk,
                       int dh, float scale, int causal) {
    gemm(0, 1, Tq, Tk, dh, scale, Q, (int)rs, K, (int)rs, 0.0f, P, Tk);
    for (int t = 0; t < Tq; t++) {
        float *p = P + (long)t * Tk;
        int n = keys_visible(t, Tk, causal);
        softmax_forward_row(p, p, n, 1.0f); /* at the run-time level (dispatch.c) */
        for (int j = n; j < Tk; j++) p[j] = 0.0f;
    }
}

static inline float dotf(const float *a, const float *b, int n) {
    float s = 0.0f;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

size_t attention_work_floats(int B, int Tq, int Tk, int n_heads) {
    return (size_t)Tq * (size_t)Tk * (size_t)head_threads(B * n_heads);
}

/* out [B,Tq,C]; probs [B,n_heads,Tq,Tk] or NULL; q, k, v strided as in kernels.h;
 * work [threads, Tq, Tk] or NULL. */
void attention_forward(float *out, float *probs, const float *q, const float *k, const float *v,
                       long batch_stride, long row_stride, int B, int Tq, int Tk, int C,
                       int n_heads, int causal, float *work) {
    const int nbh = B * n_heads, nthr = head_threads(nbh);
    const size_t plane = (size_t)Tq * (size_t)Tk;
    float *scratch = work, *owned = NULL;
    if (!probs && !scratch) {
        scratch = owned = malloc(sizeof(float) * plane * (size_t)nthr);
        if (!scratch) {
            attention_forward_rowwise(out, q, k, v, batch_stride, row_stride, B, Tq, Tk, C,
                                      n_heads, causal);
            return;
        }
    }
    int dh = C / n_heads;
    float scale = 1.0f / sqrtf((float)dh);
#pragma omp parallel for schedule(static) num_threads(nthr) if (nthr > 1)
    for (int bh = 0; bh < nbh; bh++) {
        int b = bh / n_heads, h = bh % n_heads;
        long off = b * batch_stride + (long)h * dh;
        float *P = probs ? probs + (long)bh * Tq * Tk : scratch + plane * (size_t)thread_id();
        head_probs(P, q + off, k + off, row_stride, Tq, Tk, dh, scale, causal);
        gemm(0, 0, Tq, dh, Tk, 1.0f, P, Tk, v + off, (int)row_stride, 0.0f,
             out + (long)b * Tq * C + (long)h * dh, C);
    }
    free(owned);
}

/* dq, dk, dv strided as q, k, v (accumulated, may alias, may be NULL);
 * dout [B,Tq,C]; probs [B,n_heads,Tq,Tk] from the forward, or NULL to recompute. */
void attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *probs,
                        const float *q, const float *k, const float *v, long batch_stride,
                        long row_stride, int B, int Tq, int Tk, int C, int n_heads, int causal) {
    const int nbh = B * n_heads, nthr = head_threads(nbh);
    const size_t plane = (size_t)Tq * (size_t)Tk, per = plane * (probs ? 1 : 2);
    float *scratch = malloc(sizeof(float) * per * (size_t)nthr);
    if (!scratch) {
        attention_backward_rowwise(dq, dk, dv, dout, probs, q, k, v, batch_stride, row_stride, B,
                                   Tq, Tk, C, n_heads, causal);
        return;
    }
    int dh = C / n_heads;
    float scale = 1.0f / sqrtf((float)dh);
    int rs = (int)row_stride;
    /* Pairs write disjoint column ranges of dq/dk/dv (and disjoint rows of
     * different batch items), so they can run on different threads. */
#pragma omp parallel for schedule(static) num_threads(nthr) if (nthr > 1)
    for (int bh = 0; bh < nbh; bh++) {
        int b = bh / n_heads, h = bh % n_heads;
        float *dS = scratch + per * (size_t)thread_id();
        {
            long off = b * batch_stride + (long)h * dh;
            const float *Q = q + off, *K = k + off, *V = v + off;
            const float *dO = dout + (long)b * Tq * C + (long)h * dh;
            const float *P;
            if (probs) {
                P = probs + ((long)b * n_heads + h) * Tq * Tk;
            } else {
                head_probs(dS + plane, Q, K, row_stride, Tq, Tk, dh, scale, causal);
                P = dS + plane;
            }
            /* Every write below is a beta = 1 GEMM into a gradient view whose
             * operands are inputs only, so aliased dq/dk/dv simply add up. */
            if (dv) gemm(1, 0, Tk, dh, Tq, 1.0f, P, Tk, dO, C, 1.0f, dv + off, rs);
            if (!dq && !dk) continue; /* next pair */
            gemm(0, 1, Tq, Tk, dh, 1.0f, dO, C, V, rs, 0.0f, dS, Tk); /* dP */
            for (int t = 0; t < Tq; t++) {
                const float *p = P + (long)t * Tk;
                float *d = dS + (long)t * Tk;
                double D = 0.0;
                for (int j = 0; j < Tk; j++) D += (double)p[j] * d[j];
                float Df = (float)D;
                /* Masked entries have p = 0 and so get dS = 0: no mask needed. */
                for (int j = 0; j < Tk; j++) d[j] = p[j] * (d[j] - Df) * scale;
            }
            if (dq) gemm(0, 0, Tq, dh, Tk, 1.0f, dS, Tk, K, rs, 1.0f, dq + off, rs);
            if (dk) gemm(1, 0, Tk, dh, Tq, 1.0f, dS, Tk, Q, rs, 1.0f, dk + off, rs);
        }
    }
    free(scratch);
}

/* ------------------------------------------------- no-scratch fallbacks */

/* out [B,Tq,C]: one query row at a time with a running max and sum, so the
 * score row never needs storing. */
void attention_forward_rowwise(float *out, const float *q, const float *k, const float *v,
                               long batch_stride, long row_stride, int B, int Tq, int Tk, int C,
                               int n_heads, int causal) {
    int dh = C / n_heads;
    float scale = 1.0f / sqrtf((float)dh);
    for (int b = 0; b < B; b++) {
        for (int h = 0; h < n_heads; h++) {
            long off = b * batch_stride + (long)h * dh;
            for (int t = 0; t < Tq; t++) {
                const float *Qi = q + off + t * row_stride;
                float *o = out + ((long)b * Tq + t) * C + (long)h * dh;
                memset(o, 0, sizeof(float) * (size_t)dh);
                int n = keys_visible(t, Tk, causal);
                float m = -INFINITY;
                double l = 0.0;
                for (int j = 0; j < n; j++) {
                    float s = scale * dotf(Qi, k + off + j * row_stride, dh);
                    if (s > m) {
                        /* A new max rescales what was summed so far. */
                        float corr = expf(m - s);
                        l *= corr;
                        for (int c = 0; c < dh; c++) o[c] *= corr;
                        m = s;
                    }
                    float p = expf(s - m);
                    l += p;
                    const float *Vj = v + off + j * row_stride;
                    for (int c = 0; c < dh; c++) o[c] += p * Vj[c];
                }
                float inv = (float)(1.0 / l);
                for (int c = 0; c < dh; c++) o[c] *= inv;
            }
        }
    }
}

/* Same contract as attention_backward; probs may be NULL (recomputed per row). */
void attention_backward_rowwise(float *dq, float *dk, float *dv, const float *dout,
                                const float *probs, const float *q, const float *k,
                                const float *v, long batch_stride, long row_stride, int B, int Tq,
                                int Tk, int C, int n_heads, int causal) {
    int dh = C / n_heads;
    float scale = 1.0f / sqrtf((float)dh);
    for (int b = 0; b < B; b++) {
        for (int h = 0; h < n_heads; h++) {
            long off = b * batch_stride + (long)h * dh;
            for (int t = 0; t < Tq; t++) {
                const float *Qi = q + off + t * row_stride;
                const float *dOi = dout + ((long)b * Tq + t) * C + (long)h * dh;
                const float *prow =
                    probs ? probs + (((long)b * n_heads + h) * Tq + t) * Tk : NULL;
                int n = keys_visible(t, Tk, causal);
                float m = -INFINITY, inv_l = 0.0f;
                if (!prow) {
                    for (int j = 0; j < n; j++) {
                        float s = scale * dotf(Qi, k + off + j * row_stride, dh);
                        if (s > m) m = s;
                    }
                    double l = 0.0;
                    for (int j = 0; j < n; j++)
                        l += expf(scale * dotf(Qi, k + off + j * row_stride, dh) - m);
                    inv_l = (float)(1.0 / l);
                }
                /* D = sum_j p_j dP_j, needed before any dS_j can be formed. */
                double D = 0.0;
                for (int j = 0; j < n; j++) {
                    const float *Kj = k + off + j * row_stride, *Vj = v + off + j * row_stride;
                    float p = prow ? prow[j] : expf(scale * dotf(Qi, Kj, dh) - m) * inv_l;
                    D += (double)p * dotf(dOi, Vj, dh);
                }
                float Df = (float)D;
                for (int j = 0; j < n; j++) {
                    const float *Kj = k + off + j * row_stride, *Vj = v + off + j * row_stride;
                    float p = prow ? prow[j] : expf(scale * dotf(Qi, Kj, dh) - m) * inv_l;
                    float ds = p * (dotf(dOi, Vj, dh) - Df) * scale;
                    if (dq) {
                        float *g = dq + off + t * row_stride;
                        for (int c = 0; c < dh; c++) g[c] += ds * Kj[c];
                    }
                    if (dk) {
                        float *g = dk + off + j * row_stride;
                        for (int c = 0; c < dh; c++) g[c] += ds * Qi[c];
                    }
                    if (dv) {
                        float *g = dv + off + j * row_stride;
                        for (int c = 0; c < dh; c++) g[c] += p * dOi[c];
                    }
                }
            }
        }
    }
}
