/* Fused ("flash") multi-head attention: softmax(scale Q K^T) V without the
 * [Tq, Tk] probability matrix ever reaching memory, and its backward from Q,
 * K, V, the output and the per-row log-sum-exp alone.
 *
 * Compiled once per instruction-set level like kernels.c (KFN, CMakeLists.txt);
 * the AVX-512 level runs the hand-written micro-kernel below, the others the
 * same tiles in plain C that the compiler vectorises. Every level does the
 * same operations in the same order on each output, with fused multiply-adds
 * (fmaf in C: one instruction at the AVX2 level, a libm call at the generic
 * one, which is slow but exact), so all levels give the same bits, and so
 * does any thread count.
 *
 * Tiles. One (batch item, head) pair at a time, pairs spread over OpenMP
 * threads. Queries go in tiles of QT = 32, held transposed and pre-scaled
 * (qt [dh, 32]) so that a score tile is computed with the queries along the
 * vector lanes: st [keys, 32] = K_tile qt. The running max and sum of the
 * online softmax are then plain per-lane vectors (no horizontal reductions),
 * the causal mask a per-lane compare. Keys go in tiles of KT = 64. Per query
 * tile and key tile:
 *   st   = K_tile qt                        [KT, 32]
 *   m'   = max(m, column max of st);  st = exp(st - m');  corr = exp(m - m')
 *   l    = l corr + column sums of st
 *   O    = O corr + st^T V_tile             (O: the output rows themselves)
 * and at the end O /= l, lse = m + log l.
 * The backward (flash-attention 2) recomputes st = exp(K_tile qt - lse) per
 * tile, dP^T = V_tile dO^T, dS^T = P^T (dP^T - D) scale with D = rowsum(dO O),
 * and adds P^T dO into dv, dS^T Q into dk and dS K into dq straight in the
 * caller's gradient rows (all accumulations, so dq, dk, dv may alias: SAA
 * passes one buffer three times).
 *
 * Scratch: the tiles live on the stack (at most ~80 KB a thread); head
 * dimensions above FUSED_MAX_DH take a plain row-at-a-time path instead.
 */
#include "kernels/kernels.h"
#include "kernels/kernels_levels.h"
#include "kernels/vexp.h"
#include "kernels/vexp512.h"

#include <math.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#ifndef KERNELS_VARIANT
#error "attention_fused.c is compiled once per level with KERNELS_VARIANT set (see CMakeLists.txt)"
#endif
#define KFN(f) KERNELS_CAT_(f, KERNELS_VARIANT)
#define KERNELS_DECLARE_(name, params, args) void KFN(name) params;
KERNELS_PER_LEVEL(KERNELS_DECLARE_)

#define QT 32  /* queries per tile: the lanes of a score row (two AVX-512 vectors) */
#define KT 64  /* keys per tile */
#define FUSED_MAX_DH 128

static int pair_threads(int nbh) {
#ifdef _OPENMP
    if (omp_in_parallel()) return 1;
    int n = omp_get_max_threads();
    return n < nbh ? n : nbh;
#else
    (void)nbh;
    return 1;
#endif
}

/* ------------------------------------------------------ the micro-kernel */

/* C [M, N] (row stride ldc) = or += A [M, K] B [K, N], where A[r, k] is
 * A[r * ars + k * aks] (so either orientation of a stored tile) and B is
 * row-major with row stride ldb. mode 0: C = AB; 1: C += AB;
 * 2: C = C * row_scale[r] + AB. */
enum { MK_SET = 0, MK_ADD = 1, MK_SCALE_ADD = 2 };

#if defined(__AVX512F__)

/* RB rows by NV vectors of 16 columns (the last masked by `tail`), kept in
 * registers over the whole K loop. Constant RB, NV after inlining. */
static inline __attribute__((always_inline)) void mk_block(int RB, int NV, float *C, long ldc,
                                                           const float *A, long ars, long aks,
                                                           const float *B, long ldb, int K,
                                                           __mmask16 tail, const float *row_scale,
                                                           int mode) {
    __m512 acc[8][4];
    for (int r = 0; r < RB; r++)
        for (int v = 0; v < NV; v++) acc[r][v] = _mm512_setzero_ps();
    for (int k = 0; k < K; k++) {
        __m512 b[4];
        const float *bk = B + (long)k * ldb;
        for (int v = 0; v < NV; v++)
            b[v] = v == NV - 1 ? _mm512_maskz_loadu_ps(tail, bk + 16 * v) : _mm512_loadu_ps(bk + 16 * v);
        for (int r = 0; r < RB; r++) {
            __m512 a = _mm512_set1_ps(A[r * ars + (long)k * aks]);
            for (int v = 0; v < NV; v++) acc[r][v] = _mm512_fmadd_ps(a, b[v], acc[r][v]);
        }
    }
    for (int r = 0; r < RB; r++) {
        float *cr = C + (long)r * ldc;
        for (int v = 0; v < NV; v++) {
            __mmask16 m = v == NV - 1 ? tail : (__mmask16)0xFFFF;
            __m512 x = acc[r][v];
            if (mode == MK_ADD) {
                x = _mm512_add_ps(_mm512_maskz_loadu_ps(m, cr + 16 * v), x);
            } else if (mode == MK_SCALE_ADD) {
                __m512 c = _mm512_maskz_loadu_ps(m, cr + 16 * v);
                x = _mm512_fmadd_ps(c, _mm512_set1_ps(row_scale[r]), x);
            }
            _mm512_mask_storeu_ps(cr + 16 * v, m, x);
        }
    }
}

#define MK_ROWS(RB, NV)                                                                         \
    for (; r + (RB) <= M; r += (RB))                                                            \
        mk_block((RB), (NV), C + (long)r * ldc + n0, ldc, A + (long)r * ars, ars, aks, B + n0,   \
                 ldb, K, tail, row_scale ? row_scale + r : NULL, mode);

static void small_gemm(float *C, long ldc, int M, int N, const float *A, long ars, long aks,
                       const float *B, long ldb, int K, const float *row_scale, int mode) {
    for (int n0 = 0; n0 < N; n0 += 64) {
        int left = N - n0, nv = left >= 64 ? 4 : (left + 15) / 16;
        int rem = left >= 64 ? 16 : left - 16 * (nv - 1);
        __mmask16 tail = (__mmask16)((1u << rem) - 1u);
        int r = 0;
        switch (nv) {
        case 1: MK_ROWS(8, 1) MK_ROWS(1, 1) break;
        case 2: MK_ROWS(8, 2) MK_ROWS(1, 2) break;
        case 3: MK_ROWS(6, 3) MK_ROWS(1, 3) break;
        default: MK_ROWS(4, 4) MK_ROWS(1, 4) break;
        }
    }
}
#undef MK_ROWS

#else /* plain C, vectorised by the compiler at the AVX2 level */

static void small_gemm(float *C, long ldc, int M, int N, const float *A, long ars, long aks,
                       const float *B, long ldb, int K, const float *row_scale, int mode) {
    for (int r = 0; r < M; r++) {
        float acc[FUSED_MAX_DH > KT ? FUSED_MAX_DH : KT];
        float *cr = C + (long)r * ldc;
        for (int n0 = 0; n0 < N; n0 += 64) {
            int nn = N - n0 < 64 ? N - n0 : 64;
            for (int n = 0; n < nn; n++) acc[n] = 0.0f;
            for (int k = 0; k < K; k++) {
                const float a = A[r * ars + (long)k * aks], *bk = B + (long)k * ldb + n0;
                for (int n = 0; n < nn; n++) acc[n] = fmaf(a, bk[n], acc[n]);
            }
            if (mode == MK_SET)
                for (int n = 0; n < nn; n++) cr[n0 + n] = acc[n];
            else if (mode == MK_ADD)
                for (int n = 0; n < nn; n++) cr[n0 + n] += acc[n];
            else
                for (int n = 0; n < nn; n++) cr[n0 + n] = fmaf(cr[n0 + n], row_scale[r], acc[n]);
        }
    }
}

#endif

/* ----------------------------------------------- per-lane tile operations */

/* qt [dh, QT] = scale * rows t0..t0+nq of X (row stride rs), zero past nq. */
static void load_transposed(float *qt, const float *X, long rs, int nq, int dh, float scale) {
    for (int c = 0; c < dh; c++) {
        float *row = qt + (long)c * QT;
        for (int i = 0; i < nq; i++) row[i] = scale * X[(long)i * rs + c];
        for (int i = nq; i < QT; i++) row[i] = 0.0f;
    }
}

/* xt [n, dh] contiguous = rows of X (row stride rs). The fused [.., 3C]
 * projection puts a head's rows 3C floats apart, a stride that maps a key
 * tile's 64 rows onto a quarter of L1's sets: a product that streams those
 * rows once per block of queries then misses L1 on every row. */
static void pack_rows(float *xt, const float *X, long rs, int n, int dh) {
    for (int j = 0; j < n; j++)
        for (int c = 0; c < dh; c++) xt[(long)j * dh + c] = X[(long)j * rs + c];
}

/* Causal mask of a score tile: st[j][i] = -inf where key j0 + j comes after
 * query t0 + i. */
static void mask_causal(float *st, int nk, int j0, int t0) {
    for (int j = 0; j < nk; j++) {
        float *row = st + (long)j * QT;
        for (int i = 0; i < QT; i++)
            if (j0 + j > t0 + i) row[i] = -INFINITY;
    }
}


/* The online-softmax step of one score tile st [nk, QT] (in place: becomes
 * e^(st - m')): m [QT] -> m', l [QT] -> l corr + sums, corr [QT] out. */
static void online_softmax_tile(float *st, int nk, float *m, float *l, float *corr) {
#if defined(__AVX512F__)
    for (int h = 0; h < QT; h += 16) {
        __m512 mx = _mm512_loadu_ps(m + h);
        for (int j = 0; j < nk; j++) mx = _mm512_max_ps(mx, _mm512_loadu_ps(st + j * QT + h));
        __m512 s0 = _mm512_setzero_ps();
        for (int j = 0; j < nk; j++) {
            __m512 p0 = exp16(_mm512_sub_ps(_mm512_loadu_ps(st + j * QT + h), mx));
            _mm512_storeu_ps(st + j * QT + h, p0);
            s0 = _mm512_add_ps(s0, p0);
        }
        __m512 c = exp16(_mm512_sub_ps(_mm512_loadu_ps(m + h), mx));
        _mm512_storeu_ps(corr + h, c);
        _mm512_storeu_ps(l + h, _mm512_fmadd_ps(_mm512_loadu_ps(l + h), c, s0));
        _mm512_storeu_ps(m + h, mx);
    }
#else
    float mx[QT], s[QT];
    for (int i = 0; i < QT; i++) mx[i] = m[i], s[i] = 0.0f;
    for (int j = 0; j < nk; j++)
        for (int i = 0; i < QT; i++) mx[i] = st[j * QT + i] > mx[i] ? st[j * QT + i] : mx[i];
    for (int j = 0; j < nk; j++)
        for (int i = 0; i < QT; i++) {
            float p = vexpf(st[j * QT + i] - mx[i]);
            st[j * QT + i] = p;
            s[i] += p;
        }
    for (int i = 0; i < QT; i++) {
        corr[i] = vexpf(m[i] - mx[i]);
        l[i] = fmaf(l[i], corr[i], s[i]);
        m[i] = mx[i];
    }
#endif
}

/* Backward's tile: st [nk, QT] = e^(st - lse) (in place), then with
 * dp [nk, QT] = V dO^T: dp = st (dp - D) scale. */
static void backward_tile(float *st, float *dp, int nk, const float *lse, const float *D,
                          float scale) {
#if defined(__AVX512F__)
    for (int h = 0; h < QT; h += 16) {
        const __m512 L = _mm512_loadu_ps(lse + h), Dv = _mm512_loadu_ps(D + h);
        const __m512 sc = _mm512_set1_ps(scale);
        for (int j = 0; j < nk; j++) {
            __m512 p = exp16(_mm512_sub_ps(_mm512_loadu_ps(st + j * QT + h), L));
            _mm512_storeu_ps(st + j * QT + h, p);
            __m512 d = _mm512_sub_ps(_mm512_loadu_ps(dp + j * QT + h), Dv);
            _mm512_storeu_ps(dp + j * QT + h, _mm512_mul_ps(_mm512_mul_ps(p, d), sc));
        }
    }
#else
    for (int j = 0; j < nk; j++)
        for (int i = 0; i < QT; i++) {
            float p = vexpf(st[j * QT + i] - lse[i]);
            st[j * QT + i] = p;
            dp[j * QT + i] = p * (dp[j * QT + i] - D[i]) * scale;
        }
#endif
}

/* ------------------------------------------------------- one head, tiled */

static void forward_head(float *O, long ldo, float *lse, const float *Q, const float *K,
                         const float *V, long rs, int Tq, int Tk, int dh, float scale, int causal) {
    float qt[FUSED_MAX_DH * QT], st[KT * QT], vt[KT * FUSED_MAX_DH];
    float m[QT], l[QT], corr[QT];
    for (int t0 = 0; t0 < Tq; t0 += QT) {
        const int nq = Tq - t0 < QT ? Tq - t0 : QT;
        load_transposed(qt, Q + (long)t0 * rs, rs, nq, dh, scale);
        for (int i = 0; i < QT; i++) m[i] = -INFINITY, l[i] = 0.0f;
        float *Ot = O + (long)t0 * ldo;
        /* keys past the tile's last query are masked for all of it */
        const int kend = causal && t0 + nq < Tk ? t0 + nq : Tk;
        for (int j0 = 0; j0 < kend; j0 += KT) {
            const int nk = kend - j0 < KT ? kend - j0 : KT;
            small_gemm(st, QT, nk, QT, K + (long)j0 * rs, rs, 1, qt, QT, dh, NULL, MK_SET);
            if (causal && j0 + nk - 1 > t0) mask_causal(st, nk, j0, t0);
            online_softmax_tile(st, nk, m, l, corr);
            /* O [nq, dh] = O corr + P V, with P [nq, nk] read from st transposed */
            pack_rows(vt, V + (long)j0 * rs, rs, nk, dh);
            small_gemm(Ot, ldo, nq, dh, st, 1, QT, vt, dh, nk, corr,
                       j0 == 0 ? MK_SET : MK_SCALE_ADD);
        }
        for (int i = 0; i < nq; i++) {
            float inv = 1.0f / l[i], *o = Ot + (long)i * ldo;
            for (int c = 0; c < dh; c++) o[c] *= inv;
            if (lse) lse[t0 + i] = m[i] + logf(l[i]);
        }
    }
}

static void backward_head(float *dQ, float *dK, float *dV, long rs, const float *dO,
                          const float *O, long ldo, const float *lse, const float *Q,
                          const float *K, const float *V, int Tq, int Tk, int dh, float scale,
                          int causal) {
    float qt[FUSED_MAX_DH * QT], dot[FUSED_MAX_DH * QT], st[KT * QT], dp[KT * QT];
    float kt[KT * FUSED_MAX_DH];
    float L[QT], D[QT];
    for (int t0 = 0; t0 < Tq; t0 += QT) {
        const int nq = Tq - t0 < QT ? Tq - t0 : QT;
        load_transposed(qt, Q + (long)t0 * rs, rs, nq, dh, scale);
        load_transposed(dot, dO + (long)t0 * ldo, ldo, nq, dh, 1.0f);
        for (int i = 0; i < QT; i++) {
            double d = 0.0;
            if (i < nq) {
                const float *o = O + (long)(t0 + i) * ldo, *g = dO + (long)(t0 + i) * ldo;
                for (int c = 0; c < dh; c++) d += (double)o[c] * g[c];
            }
            D[i] = (float)d;
            L[i] = i < nq ? lse[t0 + i] : 0.0f;
        }
        const int kend = causal && t0 + nq < Tk ? t0 + nq : Tk;
        for (int j0 = 0; j0 < kend; j0 += KT) {
            const int nk = kend - j0 < KT ? kend - j0 : KT;
            const float *Vt = V + (long)j0 * rs;
            pack_rows(kt, K + (long)j0 * rs, rs, nk, dh);
            small_gemm(st, QT, nk, QT, kt, dh, 1, qt, QT, dh, NULL, MK_SET);
            if (causal && j0 + nk - 1 > t0) mask_causal(st, nk, j0, t0);
            small_gemm(dp, QT, nk, QT, Vt, rs, 1, dot, QT, dh, NULL, MK_SET);
            backward_tile(st, dp, nk, L, D, scale);
            /* Padded query lanes (past nq) hold junk: every product below
             * runs over the nq real queries only. */
            if (dV)
                small_gemm(dV + (long)j0 * rs, rs, nk, dh, st, QT, 1, dO + (long)t0 * ldo, ldo, nq,
                           NULL, MK_ADD);
            if (dK)
                small_gemm(dK + (long)j0 * rs, rs, nk, dh, dp, QT, 1, Q + (long)t0 * rs, rs, nq,
                           NULL, MK_ADD);
            if (dQ)
                small_gemm(dQ + (long)t0 * rs, rs, nq, dh, dp, 1, QT, kt, dh, nk, NULL, MK_ADD);
        }
    }
}

/* ---------------------------------------- any head size: one row at a time */

static inline float dotf(const float *a, const float *b, int n) {
    float s = 0.0f;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

static void forward_head_rows(float *O, long ldo, float *lse, const float *Q, const float *K,
                              const float *V, long rs, int Tq, int Tk, int dh, float scale,
                              int causal) {
    for (int t = 0; t < Tq; t++) {
        const float *q = Q + (long)t * rs;
        float *o = O + (long)t * ldo;
        memset(o, 0, sizeof(float) * (size_t)dh);
        const int n = causal && t + 1 < Tk ? t + 1 : Tk;
        float m = -INFINITY, l = 0.0f;
        for (int j = 0; j < n; j++) {
            float s = scale * dotf(q, K + (long)j * rs, dh);
            if (s > m) {
                float c = vexpf(m - s);
                l *= c;
                for (int x = 0; x < dh; x++) o[x] *= c;
                m = s;
            }
            float p = vexpf(s - m);
            l += p;
            const float *v = V + (long)j * rs;
            for (int x = 0; x < dh; x++) o[x] += p * v[x];
        }
        for (int x = 0; x < dh; x++) o[x] /= l;
        if (lse) lse[t] = m + logf(l);
    }
}

static void backward_head_rows(float *dQ, float *dK, float *dV, long rs, const float *dO,
                               const float *O, long ldo, const float *lse, const float *Q,
                               const float *K, const float *V, int Tq, int Tk, int dh,
                               float scale, int causal) {
    for (int t = 0; t < Tq; t++) {
        const float *q = Q + (long)t * rs, *g = dO + (long)t * ldo, *o = O + (long)t * ldo;
        double d = 0.0;
        for (int x = 0; x < dh; x++) d += (double)o[x] * g[x];
        const float D = (float)d;
        const int n = causal && t + 1 < Tk ? t + 1 : Tk;
        for (int j = 0; j < n; j++) {
            const float *kj = K + (long)j * rs, *vj = V + (long)j * rs;
            float p = vexpf(scale * dotf(q, kj, dh) - lse[t]);
            float ds = p * (dotf(g, vj, dh) - D) * scale;
            if (dQ)
                for (int x = 0; x < dh; x++) dQ[(long)t * rs + x] += ds * kj[x];
            if (dK)
                for (int x = 0; x < dh; x++) dK[(long)j * rs + x] += ds * q[x];
            if (dV)
                for (int x = 0; x < dh; x++) dV[(long)j * rs + x] += p * g[x];
        }
    }
}

/* ---------------------------------------------------------- entry points */

/* out [B,Tq,C]; lse [B,n_heads,Tq] or NULL; q, k, v strided as attention_forward. */
void KFN(attention_fused_forward)(float *out, float *lse, const float *q, const float *k,
                                  const float *v, long batch_stride, long row_stride, int B,
                                  int Tq, int Tk, int C, int n_heads, int causal) {
    const int nbh = B * n_heads, nthr = pair_threads(nbh), dh = C / n_heads;
    const float scale = 1.0f / sqrtf((float)dh);
    if (Tq <= 0 || nbh <= 0) return;
    if (Tk <= 0) {
        memset(out, 0, sizeof(float) * (size_t)B * Tq * C);
        return;
    }
#pragma omp parallel for schedule(static) num_threads(nthr) if (nthr > 1)
    for (int bh = 0; bh < nbh; bh++) {
        const int b = bh / n_heads, h = bh % n_heads;
        const long off = b * batch_stride + (long)h * dh;
        float *O = out + (long)b * Tq * C + (long)h * dh, *L = lse ? lse + (long)bh * Tq : NULL;
        if (dh <= FUSED_MAX_DH)
            forward_head(O, C, L, q + off, k + off, v + off, row_stride, Tq, Tk, dh, scale, causal);
        else
            forward_head_rows(O, C, L, q + off, k + off, v + off, row_stride, Tq, Tk, dh, scale,
                              causal);
    }
}

/* dq, dk, dv strided as q, k, v (accumulated, may alias, may be NULL);
 * dout, out [B,Tq,C]; lse [B,n_heads,Tq] from attention_fused_forward. */
void KFN(attention_fused_backward)(float *dq, float *dk, float *dv, const float *dout,
                                   const float *out, const float *lse, const float *q,
                                   const float *k, const float *v, long batch_stride,
                                   long row_stride, int B, int Tq, int Tk, int C, int n_heads,
                                   int causal) {
    const int nbh = B * n_heads, nthr = pair_threads(nbh), dh = C / n_heads;
    const float scale = 1.0f / sqrtf((float)dh);
    if (Tq <= 0 || Tk <= 0 || nbh <= 0 || (!dq && !dk && !dv)) return;
    /* Pairs write disjoint column ranges (heads) or rows (batch items). */
#pragma omp parallel for schedule(static) num_threads(nthr) if (nthr > 1)
    for (int bh = 0; bh < nbh; bh++) {
        const int b = bh / n_heads, h = bh % n_heads;
        const long off = b * batch_stride + (long)h * dh, ooff = (long)b * Tq * C + (long)h * dh;
        float *dQ = dq ? dq + off : NULL, *dK = dk ? dk + off : NULL, *dV = dv ? dv + off : NULL;
        if (dh <= FUSED_MAX_DH)
            backward_head(dQ, dK, dV, row_stride, dout + ooff, out + ooff, C, lse + (long)bh * Tq,
                          q + off, k + off, v + off, Tq, Tk, dh, scale, causal);
        else
            backward_head_rows(dQ, dK, dV, row_stride, dout + ooff, out + ooff, C,
                               lse + (long)bh * Tq, q + off, k + off, v + off, Tq, Tk, dh, scale,
                               causal);
    }
}
