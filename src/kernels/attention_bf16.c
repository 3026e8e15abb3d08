/* Fused attention forward with bf16 operands: attention_fused_forward's
 * tiles (attention_fused.c: queries along the vector lanes, online softmax,
 * no [Tq, Tk] matrix in memory) with its two products, S = Q K^T and O = P V,
 * on bf16 operands (8 bits of mantissa, round to nearest even), products
 * exact in float32 and summed in float32: on AMX tiles where the CPU has
 * them, else on AVX512-BF16's vdpbf16ps. The softmax itself (max, exp, sums,
 * the final division) stays float32. Inference only: the backward
 * (attention_fused_backward) is float32.
 *
 * Compiled once, with -mavx512bf16 (and -mamx-tile -mamx-bf16 where the
 * compiler has them; CMakeLists.txt); dispatch.c calls it only when the CPU
 * has AVX512-BF16 (AMX, and Linux's permission to use it, for the AMX path)
 * and the kernels run at the AVX-512 level, and runs the float32 kernel
 * otherwise. The plain reference it is tested against is
 * ref_attention_forward_bf16 (kernels_ref.c), which rounds the same operands
 * the same way.
 *
 * vdpbf16ps: acc[i] += a[2i] b[2i] + a[2i+1] b[2i+1] for 16 float lanes, a
 * and b 32 bf16 each; AMX's tdpbf16ps does the same per tile element. So the
 * reduction index goes in pairs, in two layouts (AMX's own):
 *   A operand, "rows": bf16 rows with the reduction along the row; a pair is
 *     one 32-bit word (vdpbf16ps: broadcast to every lane);
 *   B operand, "pairs": [K/2][N] 32-bit words, word (kp, n) holding
 *     (B[2kp][n], B[2kp+1][n]), so one 512-bit load is 16 columns' pairs.
 * Per head, once: its keys as rows kr [Tkp][2 dh2] and its values as pairs
 * vp [Tkp/2][ldv] (pack_head; zeros past Tk, dh2 the pairs of a row padded
 * to 16, ldv dh padded to 32). Per query tile (32 queries) and key tile (64):
 *   qp  [dh2][32]    pairs of scale * Q (B operand)
 *   st  [64][32]     = kr qp                     (float, queries in lanes)
 *   online softmax on st, p rounded to bf16, l summing the ROUNDED p, so
 *   the weights that multiply V are exactly the ones that normalise O
 *   pr  [32][32]     rows of queries, pairs of keys (A operand; scattered)
 *   O   = O corr + pr vp        (vdpbf16ps: the output rows; AMX: a float
 *                                tile ot [32][ldv] copied out at the end)
 */
#include "kernels/kernels.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
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

int attention_bf16_forward_avx512bf16(float *out, float *lse, const float *q, const float *k,
                                      const float *v, long batch_stride, long row_stride, int B,
                                      int Tq, int Tk, int C, int n_heads, int causal, int amx);
int attention_bf16_has_amx(void);

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

/* vp [n2][ldv] pairs of rows j, j+1 of X (row stride rs): word (jp, c) =
 * (X[2jp][c], X[2jp+1][c]); zero past n rows and past dh columns. */
static void pack_value_pairs(uint32_t *vp, int ldv, const float *X, long rs, int n, int n2,
                             int dh) {
    for (int jp = 0; jp < n2; jp++) {
        const float *r0 = X + (long)(2 * jp) * rs, *r1 = r0 + rs;
        const int has0 = 2 * jp < n, has1 = 2 * jp + 1 < n;
        uint32_t *dst = vp + (long)jp * ldv;
        for (int c = 0; c < ldv; c += 16) {
            const int left = dh - c;
            const __mmask16 m = left >= 16 ? (__mmask16)0xFFFF
                                : left > 0 ? (__mmask16)((1u << left) - 1u) : 0;
            const __m512i lo = has0 ? bf16_lanes(_mm512_maskz_loadu_ps(m, r0 + c))
                                    : _mm512_setzero_si512();
            const __m512i hi = has1 ? bf16_lanes(_mm512_maskz_loadu_ps(m, r1 + c))
                                    : _mm512_setzero_si512();
            _mm512_storeu_si512(dst + c, _mm512_maskz_or_epi32(m, lo, _mm512_slli_epi32(hi, 16)));
        }
    }
}

/* p (floats in [0, 1], or 0) rounded to bf16, nearest even: adding 0x7FFF
 * plus the kept lowest bit, then dropping the low 16 bits (as ref_bf16 in
 * kernels_ref.c; exact for subnormals too). Returned as the rounded float's
 * bits: the upper half is the bf16. */
static inline __m512i round_bf16_bits(__m512 p) {
    const __m512i u = _mm512_castps_si512(p);
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    return _mm512_andnot_si512(_mm512_set1_epi32(0xFFFF),
                               _mm512_add_epi32(u, _mm512_add_epi32(_mm512_set1_epi32(0x7FFF), lsb)));
}

/* The online-softmax step of a score tile st [nk, QT], as online_softmax_tile
 * in attention_fused.c, except that each p = e^(st - m') is rounded to bf16
 * before it is summed. The weights go out as the A operand of P V: pr [QT]
 * rows of ldp pairs, pair jp of query i = (p[2jp][i], p[2jp+1][i]), zero
 * past nk (a scatter per pair of keys: the tile is transposed on the way).
 * m, l [QT] updated, corr [QT] out. */
static void softmax_tile_bf16(uint32_t *pr, int ldp, const float *st, int nk, float *m, float *l,
                              float *corr) {
    for (int h = 0; h < QT; h += 16) {
        const __m512i rows = _mm512_mullo_epi32(
            _mm512_add_epi32(_mm512_set1_epi32(h),
                             _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)),
            _mm512_set1_epi32(ldp));
        __m512 mx = _mm512_loadu_ps(m + h);
        for (int j = 0; j < nk; j++) mx = _mm512_max_ps(mx, _mm512_loadu_ps(st + j * QT + h));
        __m512 s0 = _mm512_setzero_ps();
        for (int jp = 0; jp < ldp; jp++) {
            const int j = 2 * jp;
            __m512i r0 = _mm512_setzero_si512(), r1 = _mm512_setzero_si512();
            if (j < nk) r0 = round_bf16_bits(exp16(_mm512_sub_ps(_mm512_loadu_ps(st + j * QT + h), mx)));
            if (j + 1 < nk)
                r1 = round_bf16_bits(exp16(_mm512_sub_ps(_mm512_loadu_ps(st + (j + 1) * QT + h), mx)));
            s0 = _mm512_add_ps(s0, _mm512_castsi512_ps(r0));
            s0 = _mm512_add_ps(s0, _mm512_castsi512_ps(r1));
            const __m512i pair = _mm512_or_si512(_mm512_srli_epi32(r0, 16), r1);
            _mm512_i32scatter_epi32(pr + jp, rows, pair, 4);
        }
        const __m512 c = exp16(_mm512_sub_ps(_mm512_loadu_ps(m + h), mx));
        _mm512_storeu_ps(corr + h, c);
        _mm512_storeu_ps(l + h, _mm512_fmadd_ps(_mm512_loadu_ps(l + h), c, s0));
        _mm512_storeu_ps(m + h, mx);
    }
}

/* What both products' operands look like for one head: dh2 pairs of a query
 * or key row, padded to whole AMX tiles (16 pairs), and the value pairs' row
 * stride, dh padded to 32 columns. The padding is zeros. */
static inline int head_pairs(int dh) { return ((dh + 1) / 2 + 15) / 16 * 16; }
static inline int value_cols(int dh) { return (dh + 31) / 32 * 32; }

/* dst [16][ldd] = src [16][lds] transposed, 32-bit elements: three rounds
 * of interleaves (32-bit, 64-bit, then 128-bit lanes twice). */
static inline void transpose16_epi32(uint32_t *dst, long ldd, const uint32_t *src, long lds) {
    __m512i r[16], t[16];
    for (int i = 0; i < 16; i++) r[i] = _mm512_loadu_si512((const void *)(src + i * lds));
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
        r[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
        r[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
        r[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
    }
    for (int h = 0; h < 16; h += 8)
        for (int i = 0; i < 4; i++) {
            t[h + i] = _mm512_shuffle_i32x4(r[h + i], r[h + i + 4], 0x88);
            t[h + i + 4] = _mm512_shuffle_i32x4(r[h + i], r[h + i + 4], 0xdd);
        }
    for (int i = 0; i < 8; i++) {
        r[i] = _mm512_shuffle_i32x4(t[i], t[i + 8], 0x88);
        r[i + 8] = _mm512_shuffle_i32x4(t[i], t[i + 8], 0xdd);
    }
    for (int i = 0; i < 16; i++) _mm512_storeu_si512((void *)(dst + i * ldd), r[i]);
}

/* qp [dh2][QT] = pairs of scale * query rows t0.. (row stride rs), zero past
 * nq: the rows in bf16 pairs, then transposed 16 x 16 (dh2 is a multiple of
 * 16, head_pairs). */
static void pack_queries(uint32_t *qp, const float *Q, long rs, int nq, int dh, int dh2,
                         float scale) {
    uint32_t rows[QT * (MAX_DH / 2)]; /* dh2 <= MAX_DH / 2, as qp */
    for (int i = 0; i < QT; i++) {
        uint16_t *r = (uint16_t *)(rows + (long)i * dh2);
        if (i < nq)
            row_to_bf16(r, Q + (long)i * rs, dh, dh2, scale);
        else
            memset(r, 0, sizeof(uint32_t) * (size_t)dh2);
    }
    for (int p0 = 0; p0 < dh2; p0 += 16)
        for (int i0 = 0; i0 < QT; i0 += 16)
            transpose16_epi32(qp + (long)p0 * QT + i0, QT, rows + (long)i0 * dh2 + p0, dh2);
}

/* st [nk][QT] -> -inf where key j0 + j comes after query t0 + i. */
static void mask_causal(float *st, int nk, int j0, int t0) {
    for (int j = 0; j < nk; j++)
        for (int i = 0; i < QT; i++)
            if (j0 + j > t0 + i) st[j * QT + i] = -INFINITY;
}

/* A head's keys and values in bf16, packed once per head (not per query
 * tile): kr [Tkp][2 dh2] key rows, vp [Tkp/2][ldv] value pairs, Tkp = Tk
 * rounded up to whole key tiles, zeros past Tk. */
static inline int padded_keys(int Tk) { return (Tk + KT - 1) / KT * KT; }
static size_t head_pack_bytes(int Tk, int dh) {
    const size_t Tkp = (size_t)padded_keys(Tk);
    return Tkp * 2 * (size_t)head_pairs(dh) * sizeof(uint16_t) +
           Tkp / 2 * (size_t)value_cols(dh) * sizeof(uint32_t);
}
static void pack_head(uint16_t *kr, uint32_t *vp, const float *K, const float *V, long rs, int Tk,
                      int dh) {
    const int dh2 = head_pairs(dh), Tkp = padded_keys(Tk);
    for (int j = 0; j < Tkp; j++)
        if (j < Tk)
            row_to_bf16(kr + (long)j * 2 * dh2, K + (long)j * rs, dh, dh2, 1.0f);
        else
            memset(kr + (long)j * 2 * dh2, 0, sizeof(uint16_t) * 2 * (size_t)dh2);
    pack_value_pairs(vp, value_cols(dh), V, rs, Tk, Tkp / 2, dh);
}

/* One head on vdpbf16ps; kr, vp: the head packed by pack_head. */
static void forward_head_bf16(float *O, long ldo, float *lse, const float *Q, const uint16_t *kr,
                              const uint32_t *vp, long rs, int Tq, int Tk, int dh, float scale,
                              int causal) {
    const int dh2 = head_pairs(dh), ldv = value_cols(dh);
    uint32_t qp[MAX_DH / 2 * QT], pr[QT * KT / 2];
    float st[KT * QT], m[QT], l[QT], corr[QT];
    for (int t0 = 0; t0 < Tq; t0 += QT) {
        const int nq = Tq - t0 < QT ? Tq - t0 : QT;
        pack_queries(qp, Q + (long)t0 * rs, rs, nq, dh, dh2, scale);
        for (int i = 0; i < QT; i++) m[i] = -INFINITY, l[i] = 0.0f;
        float *Ot = O + (long)t0 * ldo;
        const int kend = causal && t0 + nq < Tk ? t0 + nq : Tk;
        for (int j0 = 0; j0 < kend; j0 += KT) {
            const int nk = kend - j0 < KT ? kend - j0 : KT, nk2 = (nk + 1) / 2;
            small_gemm_bf16(st, QT, nk, QT, kr + (long)j0 * 2 * dh2, 2 * dh2, qp, QT, dh2, NULL,
                            MK_SET);
            if (causal && j0 + nk - 1 > t0) mask_causal(st, nk, j0, t0);
            softmax_tile_bf16(pr, nk2, st, nk, m, l, corr);
            small_gemm_bf16(Ot, ldo, nq, dh, (const uint16_t *)pr, 2 * nk2, vp + (long)j0 / 2 * ldv,
                            ldv, nk2, corr, j0 == 0 ? MK_SET : MK_SCALE_ADD);
        }
        for (int i = 0; i < nq; i++) {
            const float inv = 1.0f / l[i];
            float *o = Ot + (long)i * ldo;
            for (int c = 0; c < dh; c++) o[c] *= inv;
            if (lse) lse[t0 + i] = m[i] + logf(l[i]);
        }
    }
}

#if defined(__AMX_TILE__) && defined(__AMX_BF16__)
/* ------------------------------------------------------------------ AMX
 * The same tiles on AMX (Sapphire Rapids and later), where the tile unit's
 * bf16 dot products run ~8x the rate of vdpbf16ps (which on those cores
 * runs at half the rate of float32 FMAs: measured, docs/performance.md).
 * Eight tile registers of 16 rows x 64 bytes: four float32 accumulators
 * (2 x 2 blocks of 16 x 16), two A tiles (16 rows x 16 pairs), two B tiles
 * (16 pairs x 16 columns); the operand layouts above are AMX's own (A: rows,
 * B: pairs). Scores and the output accumulate in tiles in memory (st, ot);
 * the online softmax between them is the AVX-512 code above, unchanged. */
typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} amx_config;

static void amx_begin(void) {
    amx_config c;
    memset(&c, 0, sizeof c);
    c.palette = 1;
    for (int t = 0; t < 8; t++) c.colsb[t] = 64, c.rows[t] = 16;
    _tile_loadconfig(&c);
}

/* st [64][QT] rows 0 .. 16 nkb - 1 (nkb even blocks of 16 keys computed in
 * pairs) = kr (rows of 2 dh2 bf16) qp [dh2][QT]. */
static void qk_amx(float *st, const uint16_t *kr, int dh2, const uint32_t *qp, int nkb) {
    const long lda = 2L * dh2 * (long)sizeof(uint16_t), ldq = QT * (long)sizeof(uint32_t);
    for (int kb = 0; kb < nkb; kb += 2) {
        const uint16_t *a = kr + (long)kb * 16 * 2 * dh2;
        _tile_zero(0);
        _tile_zero(1);
        _tile_zero(2);
        _tile_zero(3);
        for (int kp = 0; kp < dh2; kp += 16) {
            _tile_loadd(4, a + 2 * kp, lda);
            _tile_loadd(5, a + 16L * 2 * dh2 + 2 * kp, lda);
            _tile_loadd(6, qp + (long)kp * QT, ldq);
            _tile_loadd(7, qp + (long)kp * QT + 16, ldq);
            _tile_dpbf16ps(0, 4, 6);
            _tile_dpbf16ps(1, 4, 7);
            _tile_dpbf16ps(2, 5, 6);
            _tile_dpbf16ps(3, 5, 7);
        }
        float *c = st + (long)kb * 16 * QT;
        _tile_stored(0, c, QT * 4);
        _tile_stored(1, c + 16, QT * 4);
        _tile_stored(2, c + 16 * QT, QT * 4);
        _tile_stored(3, c + 16 * QT + 16, QT * 4);
    }
}

/* ot [QT][ldv] += pr [QT][KT/2 pairs] vp [k2 pairs][ldv]; k2 a multiple of 16. */
static void pv_amx(float *ot, const uint32_t *pr, const uint32_t *vp, int ldv, int k2) {
    const long ldo = (long)ldv * 4, ldp = KT / 2 * 4;
    for (int c0 = 0; c0 < ldv; c0 += 32) {
        _tile_loadd(0, ot + c0, ldo);
        _tile_loadd(1, ot + c0 + 16, ldo);
        _tile_loadd(2, ot + 16L * ldv + c0, ldo);
        _tile_loadd(3, ot + 16L * ldv + c0 + 16, ldo);
        for (int kp = 0; kp < k2; kp += 16) {
            _tile_loadd(4, pr + kp, ldp);
            _tile_loadd(5, pr + 16 * (KT / 2) + kp, ldp);
            _tile_loadd(6, vp + (long)kp * ldv + c0, ldo);
            _tile_loadd(7, vp + (long)kp * ldv + c0 + 16, ldo);
            _tile_dpbf16ps(0, 4, 6);
            _tile_dpbf16ps(1, 4, 7);
            _tile_dpbf16ps(2, 5, 6);
            _tile_dpbf16ps(3, 5, 7);
        }
        _tile_stored(0, ot + c0, ldo);
        _tile_stored(1, ot + c0 + 16, ldo);
        _tile_stored(2, ot + 16L * ldv + c0, ldo);
        _tile_stored(3, ot + 16L * ldv + c0 + 16, ldo);
    }
}

/* One head on AMX; kr, vp: the head packed by pack_head. */
static void forward_head_amx(float *O, long ldo, float *lse, const float *Q, const uint16_t *kr,
                             const uint32_t *vp, long rs, int Tq, int Tk, int dh, float scale,
                             int causal) {
    const int dh2 = head_pairs(dh), ldv = value_cols(dh);
    uint32_t qp[MAX_DH / 2 * QT], pr[QT * KT / 2];
    float st[KT * QT], ot[QT * MAX_DH], m[QT], l[QT], corr[QT];
    for (int t0 = 0; t0 < Tq; t0 += QT) {
        const int nq = Tq - t0 < QT ? Tq - t0 : QT;
        pack_queries(qp, Q + (long)t0 * rs, rs, nq, dh, dh2, scale);
        for (int i = 0; i < QT; i++) m[i] = -INFINITY, l[i] = 0.0f;
        memset(ot, 0, sizeof(float) * QT * (size_t)ldv);
        const int kend = causal && t0 + nq < Tk ? t0 + nq : Tk;
        for (int j0 = 0; j0 < kend; j0 += KT) {
            const int nk = kend - j0 < KT ? kend - j0 : KT, nk2 = (nk + 1) / 2;
            const int nkb = (nk + 31) / 32 * 2, k2 = (nk2 + 15) / 16 * 16;
            /* whole tiles of keys: the packed head is zero past Tk, and
             * keys past kend (causal) get zero weights */
            qk_amx(st, kr + (long)j0 * 2 * dh2, dh2, qp, nkb);
            if (causal && j0 + nk - 1 > t0) mask_causal(st, nk, j0, t0);
            softmax_tile_bf16(pr, KT / 2, st, nk, m, l, corr);
            if (j0 > 0)
                for (int i = 0; i < QT; i++) {
                    const __m512 c = _mm512_set1_ps(corr[i]);
                    for (int x = 0; x < ldv; x += 16)
                        _mm512_storeu_ps(ot + i * ldv + x,
                                         _mm512_mul_ps(_mm512_loadu_ps(ot + i * ldv + x), c));
                }
            pv_amx(ot, pr, vp + (long)j0 / 2 * ldv, ldv, k2);
        }
        for (int i = 0; i < nq; i++) {
            const float inv = 1.0f / l[i];
            float *o = O + (long)(t0 + i) * ldo;
            for (int c = 0; c < dh; c++) o[c] = ot[i * ldv + c] * inv;
            if (lse) lse[t0 + i] = m[i] + logf(l[i]);
        }
    }
}
#endif

/* attention_fused_forward's contract; head sizes up to MAX_DH (dispatch.c
 * sends larger ones to the float32 kernel). amx: the AMX tiles (the caller
 * has checked the CPU and the OS permission), else vdpbf16ps. Allocates one
 * packed head per thread (head_pack_bytes); -1, nothing written, when that
 * fails (dispatch.c then runs the float32 kernel), else 0. */
int attention_bf16_forward_avx512bf16(float *out, float *lse, const float *q, const float *k,
                                      const float *v, long batch_stride, long row_stride, int B,
                                      int Tq, int Tk, int C, int n_heads, int causal, int amx) {
    const int nbh = B * n_heads, dh = C / n_heads;
    const float scale = 1.0f / sqrtf((float)dh);
    if (Tq <= 0 || nbh <= 0) return 0;
    if (Tk <= 0) {
        memset(out, 0, sizeof(float) * (size_t)B * Tq * C);
        return 0;
    }
#if !(defined(__AMX_TILE__) && defined(__AMX_BF16__))
    amx = 0;
#endif
    int nthr = 1;
#ifdef _OPENMP
    nthr = omp_in_parallel() ? 1 : omp_get_max_threads();
    if (nthr > nbh) nthr = nbh;
#endif
    const size_t per_thread = (head_pack_bytes(Tk, dh) + 63) / 64 * 64;
    char *packs = aligned_alloc(64, per_thread * (size_t)nthr);
    if (!packs) return -1;
#pragma omp parallel num_threads(nthr) if (nthr > 1)
    {
        int me = 0;
#ifdef _OPENMP
        me = omp_get_thread_num();
#endif
        uint16_t *kr = (uint16_t *)(packs + per_thread * (size_t)me);
        uint32_t *vp = (uint32_t *)((char *)kr + (size_t)padded_keys(Tk) * 2 *
                                                     (size_t)head_pairs(dh) * sizeof(uint16_t));
#if defined(__AMX_TILE__) && defined(__AMX_BF16__)
        if (amx) amx_begin(); /* the tile configuration is per thread */
#endif
#pragma omp for schedule(static)
        for (int bh = 0; bh < nbh; bh++) {
            const int b = bh / n_heads, h = bh % n_heads;
            const long off = b * batch_stride + (long)h * dh;
            float *o = out + (long)b * Tq * C + (long)h * dh, *L = lse ? lse + (long)bh * Tq : NULL;
            pack_head(kr, vp, k + off, v + off, row_stride, Tk, dh);
#if defined(__AMX_TILE__) && defined(__AMX_BF16__)
            if (amx) {
                forward_head_amx(o, C, L, q + off, kr, vp, row_stride, Tq, Tk, dh, scale, causal);
                continue;
            }
#endif
            forward_head_bf16(o, C, L, q + off, kr, vp, row_stride, Tq, Tk, dh, scale, causal);
        }
#if defined(__AMX_TILE__) && defined(__AMX_BF16__)
        if (amx) _tile_release();
#endif
    }
    free(packs);
    return 0;
}

/* 1 when this object was compiled with the AMX path. */
int attention_bf16_has_amx(void) {
#if defined(__AMX_TILE__) && defined(__AMX_BF16__)
    return 1;
#else
    return 0;
#endif
}

#else
/* Built without AVX512-BF16 support: dispatch.c never calls this file. */
typedef int attention_bf16_unavailable;
#endif
