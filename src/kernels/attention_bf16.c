/* Fused attention forward with bf16 operands: attention_fused_forward's
 * tiles (attention_fused.c: queries along the vector lanes, online softmax,
 * no [Tq, Tk] matrix in memory) with its two products, S = Q K^T and O = P V,
 * on AVX512-BF16's vdpbf16ps: every operand rounded to bf16 (8 bits of
 * mantissa, round to nearest even), products exact in float32 and summed in
 * float32. The softmax itself (max, exp, sums, the final division) stays
 * float32. Inference only: the backward (attention_fused_backward) is float32.
 *
 * Compiled once, with -mavx512bf16 (CMakeLists.txt); dispatch.c calls it
 * only when the CPU has AVX512-BF16 and the kernels run at the AVX-512 level,
 * and runs the float32 kernel otherwise. The plain reference it is tested
 * against is ref_attention_forward_bf16 (kernels_ref.c), which rounds the same
 * operands the same way.
 *
 * vdpbf16ps: acc[i] += a[2i] b[2i] + a[2i+1] b[2i+1] for 16 float lanes, a
 * and b 32 bf16 each. So the reduction index goes in pairs:
 *   A operand, "rows": bf16 rows with the reduction along the row; a pair is
 *     one 32-bit word, broadcast to every lane;
 *   B operand, "pairs": [K/2][N] 32-bit words, word (kp, n) holding
 *     (B[2kp][n], B[2kp+1][n]), so one 512-bit load is 16 columns' pairs.
 * Per query tile (32 queries) and key tile (64 keys):
 *   qp  [dh/2][32]   pairs of scale * Q (B operand)
 *   kr  [64][dh]     the key rows (A operand)
 *   st  [64][32]     = kr qp                     (float)
 *   online softmax on st, p rounded to bf16, l summing the ROUNDED p, so
 *   the weights that multiply V are exactly the ones that normalise O
 *   pr  [32][64]     p transposed, rows of queries (A operand)
 *   vp  [32][dh]     pairs of value rows (B operand)
 *   O   = O corr + pr vp                          (O: the output rows)
 * Odd dh or nk are padded with zeros to whole pairs.
 */
#include "kernels/kernels.h"

#include <math.h>
#include <stdint.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#if defined(__AVX512BF16__) && defined(__AVX512F__)
#include <immintrin.h>

#include "kernels/vexp512.h"

#define QT 32
#define KT 64
#define MAX_DH 128

void attention_bf16_forward_avx512bf16(float *out, float *lse, const float *q, const float *k,
                                       const float *v, long batch_stride, long row_stride, int B,
                                       int Tq, int Tk, int C, int n_heads, int causal);

enum { MK_SET = 0, MK_SCALE_ADD = 2 };

/* C [M, N] (row stride ldc) = A B, or C * row_scale[r] + A B. A: M rows of
 * bf16 (row stride lda, in bf16), K2 pairs each; B: K2 rows of N pairs (row
 * stride ldb, in pairs). RB rows by NV vectors of 16 columns, the last
 * masked by tail, held in registers across the whole reduction. */
static inline __attribute__((always_inline)) void mk_block(int RB, int NV, float *C, long ldc,
                                                           const uint16_t *A, long lda,
                                                           const uint32_t *Bp, long ldb, int K2,
                                                           __mmask16 tail, const float *row_scale,
                                                           int mode) {
    __m512 acc[8][4];
    for (int r = 0; r < RB; r++)
        for (int v = 0; v < NV; v++) acc[r][v] = _mm512_setzero_ps();
    for (int kp = 0; kp < K2; kp++) {
        __m512i b[4];
        const uint32_t *bk = Bp + (long)kp * ldb;
        for (int v = 0; v < NV; v++)
            b[v] = v == NV - 1 ? _mm512_maskz_loadu_epi32(tail, bk + 16 * v)
                               : _mm512_loadu_si512(bk + 16 * v);
        for (int r = 0; r < RB; r++) {
            uint32_t pair;
            memcpy(&pair, A + r * lda + 2 * kp, sizeof pair);
            const __m512i a = _mm512_set1_epi32((int)pair);
            for (int v = 0; v < NV; v++)
                acc[r][v] = _mm512_dpbf16_ps(acc[r][v], (__m512bh)a, (__m512bh)b[v]);
        }
    }
    for (int r = 0; r < RB; r++) {
        float *cr = C + (long)r * ldc;
        for (int v = 0; v < NV; v++) {
            const __mmask16 m = v == NV - 1 ? tail : (__mmask16)0xFFFF;
            __m512 x = acc[r][v];
            if (mode == MK_SCALE_ADD)
                x = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, cr + 16 * v),
                                    _mm512_set1_ps(row_scale[r]), x);
            _mm512_mask_storeu_ps(cr + 16 * v, m, x);
        }
    }
}

#define MK_ROWS(RB, NV)                                                                        \
    for (; r + (RB) <= M; r += (RB))                                                           \
        mk_block((RB), (NV), C + (long)r * ldc + n0, ldc, A + (long)r * lda, lda, Bp + n0, ldb, \
                 K2, tail, row_scale ? row_scale + r : NULL, mode);

static void small_gemm_bf16(float *C, long ldc, int M, int N, const uint16_t *A, long lda,
                            const uint32_t *Bp, long ldb, int K2, const float *row_scale,
                            int mode) {
    for (int n0 = 0; n0 < N; n0 += 64) {
        const int left = N - n0, nv = left >= 64 ? 4 : (left + 15) / 16;
        const int rem = left >= 64 ? 16 : left - 16 * (nv - 1);
        const __mmask16 tail = (__mmask16)((1u << rem) - 1u);
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

/* 16 floats -> 16 bf16 in the low halves of 32-bit lanes, round to nearest
 * even (vcvtneps2bf16; it reads subnormal inputs as zero). */
static inline __m512i bf16_lanes(__m512 x) {
    return _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(x));
}

/* dst [n2 * 2] bf16 = scale * src [n] rounded, zeros from n to 2 n2. */
static void row_to_bf16(uint16_t *dst, const float *src, int n, int n2, float scale) {
    const __m512 s = _mm512_set1_ps(scale);
    int c = 0;
    for (; c < n; c += 16) {
        const int left = n - c;
        const __mmask16 m = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1u);
        const __m512 x = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, src + c), s);
        _mm256_mask_storeu_epi16(dst + c, m, (__m256i)_mm512_cvtneps_pbh(x));
    }
    for (c = n; c < 2 * n2; c++) dst[c] = 0;
}

/* vp [n2][dh] pairs of rows j, j+1 of X (row stride rs), zero past n rows. */
static void pack_value_pairs(uint32_t *vp, const float *X, long rs, int n, int dh) {
    for (int jp = 0; 2 * jp < n; jp++) {
        const float *r0 = X + (long)(2 * jp) * rs, *r1 = r0 + rs;
        const int has1 = 2 * jp + 1 < n;
        uint32_t *dst = vp + (long)jp * dh;
        for (int c = 0; c < dh; c += 16) {
            const int left = dh - c;
            const __mmask16 m = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1u);
            const __m512i lo = bf16_lanes(_mm512_maskz_loadu_ps(m, r0 + c));
            const __m512i hi = has1 ? bf16_lanes(_mm512_maskz_loadu_ps(m, r1 + c))
                                    : _mm512_setzero_si512();
            _mm512_mask_storeu_epi32(dst + c, m, _mm512_or_si512(lo, _mm512_slli_epi32(hi, 16)));
        }
    }
}

/* The online-softmax step of a score tile st [nk, QT], as online_softmax_tile
 * in attention_fused.c, except that each p = e^(st - m') is rounded to bf16
 * before it is summed, and written transposed into pr [QT][ldp] (rows of
 * queries; keys nk .. ldp - 1 zero). m, l [QT] updated, corr [QT] out. */
static void softmax_tile_bf16(uint16_t *pr, int ldp, float *st, int nk, float *m, float *l,
                              float *corr) {
    const __m512i round_bias = _mm512_set1_epi32(0x7FFF), one = _mm512_set1_epi32(1);
    for (int h = 0; h < QT; h += 16) {
        __m512 mx = _mm512_loadu_ps(m + h);
        for (int j = 0; j < nk; j++) mx = _mm512_max_ps(mx, _mm512_loadu_ps(st + j * QT + h));
        __m512 s0 = _mm512_setzero_ps();
        for (int j = 0; j < nk; j++) {
            /* p in [0, 1]: rounding to nearest even by adding 0x7FFF plus the
             * kept lowest bit, then dropping the low 16 bits (exact for
             * subnormals too, as ref_bf16 in kernels_ref.c) */
            const __m512i u = _mm512_castps_si512(
                exp16(_mm512_sub_ps(_mm512_loadu_ps(st + j * QT + h), mx)));
            const __m512i rounded = _mm512_andnot_si512(
                _mm512_set1_epi32(0xFFFF),
                _mm512_add_epi32(u, _mm512_add_epi32(round_bias,
                                                     _mm512_and_si512(_mm512_srli_epi32(u, 16), one))));
            _mm512_storeu_si512(st + j * QT + h, rounded);
            s0 = _mm512_add_ps(s0, _mm512_castsi512_ps(rounded));
        }
        const __m512 c = exp16(_mm512_sub_ps(_mm512_loadu_ps(m + h), mx));
        _mm512_storeu_ps(corr + h, c);
        _mm512_storeu_ps(l + h, _mm512_fmadd_ps(_mm512_loadu_ps(l + h), c, s0));
        _mm512_storeu_ps(m + h, mx);
    }
    /* the transpose: the rounded floats' upper halves are their bf16 */
    for (int i = 0; i < QT; i++) {
        uint16_t *row = pr + (long)i * ldp;
        for (int j = 0; j < nk; j++) {
            uint32_t u;
            memcpy(&u, st + j * QT + i, sizeof u);
            row[j] = (uint16_t)(u >> 16);
        }
        for (int j = nk; j < ldp; j++) row[j] = 0;
    }
}

static void forward_head_bf16(float *O, long ldo, float *lse, const float *Q, const float *K,
                              const float *V, long rs, int Tq, int Tk, int dh, float scale,
                              int causal) {
    const int dh2 = (dh + 1) / 2; /* pairs along a head */
    uint32_t qp[MAX_DH / 2 * QT], vp[KT / 2 * MAX_DH];
    uint16_t kr[KT * MAX_DH], pr[QT * KT], qrow[MAX_DH];
    float st[KT * QT], m[QT], l[QT], corr[QT];
    for (int t0 = 0; t0 < Tq; t0 += QT) {
        const int nq = Tq - t0 < QT ? Tq - t0 : QT;
        /* qp[p][i] = pair p of query i's row, pre-scaled; zero past nq */
        for (int i = 0; i < QT; i++) {
            if (i < nq)
                row_to_bf16(qrow, Q + (long)(t0 + i) * rs, dh, dh2, scale);
            else
                memset(qrow, 0, sizeof(uint16_t) * 2 * (size_t)dh2);
            for (int p = 0; p < dh2; p++) memcpy(&qp[p * QT + i], qrow + 2 * p, sizeof(uint32_t));
        }
        for (int i = 0; i < QT; i++) m[i] = -INFINITY, l[i] = 0.0f;
        float *Ot = O + (long)t0 * ldo;
        const int kend = causal && t0 + nq < Tk ? t0 + nq : Tk;
        for (int j0 = 0; j0 < kend; j0 += KT) {
            const int nk = kend - j0 < KT ? kend - j0 : KT, nk2 = (nk + 1) / 2;
            for (int j = 0; j < nk; j++)
                row_to_bf16(kr + (long)j * 2 * dh2, K + (long)(j0 + j) * rs, dh, dh2, 1.0f);
            small_gemm_bf16(st, QT, nk, QT, kr, 2 * dh2, qp, QT, dh2, NULL, MK_SET);
            if (causal && j0 + nk - 1 > t0)
                for (int j = 0; j < nk; j++)
                    for (int i = 0; i < QT; i++)
                        if (j0 + j > t0 + i) st[j * QT + i] = -INFINITY;
            softmax_tile_bf16(pr, 2 * nk2, st, nk, m, l, corr);
            pack_value_pairs(vp, V + (long)j0 * rs, rs, nk, dh);
            small_gemm_bf16(Ot, ldo, nq, dh, pr, 2 * nk2, vp, dh, nk2, corr,
                            j0 == 0 ? MK_SET : MK_SCALE_ADD);
        }
        for (int i = 0; i < nq; i++) {
            const float inv = 1.0f / l[i];
            float *o = Ot + (long)i * ldo;
            for (int c = 0; c < dh; c++) o[c] *= inv;
            if (lse) lse[t0 + i] = m[i] + logf(l[i]);
        }
    }
}

/* attention_fused_forward's contract; head sizes up to MAX_DH (dispatch.c
 * sends larger ones to the float32 kernel). */
void attention_bf16_forward_avx512bf16(float *out, float *lse, const float *q, const float *k,
                                       const float *v, long batch_stride, long row_stride, int B,
                                       int Tq, int Tk, int C, int n_heads, int causal) {
    const int nbh = B * n_heads, dh = C / n_heads;
    const float scale = 1.0f / sqrtf((float)dh);
    if (Tq <= 0 || nbh <= 0) return;
    if (Tk <= 0) {
        memset(out, 0, sizeof(float) * (size_t)B * Tq * C);
        return;
    }
#ifdef _OPENMP
    int nthr = omp_in_parallel() ? 1 : omp_get_max_threads();
    if (nthr > nbh) nthr = nbh;
#endif
#pragma omp parallel for schedule(static) num_threads(nthr) if (nthr > 1)
    for (int bh = 0; bh < nbh; bh++) {
        const int b = bh / n_heads, h = bh % n_heads;
        const long off = b * batch_stride + (long)h * dh;
        forward_head_bf16(out + (long)b * Tq * C + (long)h * dh, C,
                          lse ? lse + (long)bh * Tq : NULL, q + off, k + off, v + off, row_stride,
                          Tq, Tk, dh, scale, causal);
    }
}

#else
/* Built without AVX512-BF16 support: dispatch.c never calls this file. */
typedef int attention_bf16_unavailable;
#endif
