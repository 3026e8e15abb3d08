/* Float32 kernels: GEMM, linear, LayerNorm, activations, softmax, L2 norm,
 * embedding. Attention lives in attention.c, conv2d and BatchNorm in conv.c.
 *
 * Reductions (means, variances, norms, softmax sums) accumulate in double:
 * it costs little next to the GEMMs and keeps us within ~1e-6 of PyTorch,
 * which is what the golden parity tests need. Everything else stays float.
 *
 * Threading: every row-wise or element-wise loop is an OpenMP `parallel for`
 * (static schedule) over rows, channels or fixed blocks of elements, and each
 * row's arithmetic is the same whichever thread runs it, so these kernels give
 * bit-identical results for ANY thread count. Column sums (bias and LayerNorm
 * weight gradients) are split over columns, each column still summed over the
 * rows in order. Small calls stay on the calling thread (PAR_MIN). The GEMMs'
 * threading is the backend's (gemm.c).
 *
 * Levels: this file is compiled once per instruction-set level (generic,
 * AVX2, AVX-512: kernels_levels.h, CMakeLists.txt) and each kernel defined
 * here is KFN(name), name_<level>; dispatch.c picks the level at run time.
 * Calls between kernels of this file stay within the level. */
#include "core/half.h"
#include "kernels/kernels.h"
#include "kernels/kernels_levels.h"
#include "kernels/vexp.h"

#include <math.h>
#include <string.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#ifndef KERNELS_VARIANT
#error "kernels.c is compiled once per level with KERNELS_VARIANT set (see CMakeLists.txt)"
#endif
/* This build's name of kernel f: f_<level>. */
#define KFN(f) KERNELS_CAT_(f, KERNELS_VARIANT)
#define KERNELS_DECLARE_(name, params, args) void KFN(name) params;
KERNELS_PER_LEVEL(KERNELS_DECLARE_)

/* Work (elements) below which a loop is not worth a parallel region. */
#define PAR_MIN 32768L
/* Block of elements per chunk in the element-wise loops. */
#define EW_BLOCK 4096L

/* ---------------------------------------------------------------- Linear */

/* out [rows,out_dim] = inp [rows,in_dim] @ weight[out_dim,in_dim]^T + bias [out_dim]. */
void KFN(matmul_forward)(float *out, const float *inp, const float *weight, const float *bias,
                    int rows, int in_dim, int out_dim) {
    KFN(matmul_forward_ex)(out, inp, weight, bias, rows, in_dim, out_dim, MATMUL_PLAIN);
}

void KFN(matmul_forward_ex)(float *out, const float *inp, const float *weight, const float *bias,
                       int rows, int in_dim, int out_dim, matmul_epilogue ep) {
    if (matmul_forward_packed(out, inp, weight, bias, rows, in_dim, out_dim, ep) == 0) return;
    /* Seeding out with the bias and letting BLAS add the product rounds
     * once, as PyTorch's addmm does; accumulating adds the bias to what is
     * there and lets BLAS add the product on top. */
    float beta = ep == MATMUL_ACCUMULATE ? 1.0f : 0.0f;
    if (bias) {
#pragma omp parallel for schedule(static) if ((long)rows * out_dim >= PAR_MIN)
        for (int r = 0; r < rows; r++) {
            float *o = out + (long)r * out_dim;
            if (ep == MATMUL_ACCUMULATE)
                for (int j = 0; j < out_dim; j++) o[j] += bias[j];
            else
                memcpy(o, bias, sizeof(float) * (size_t)out_dim);
        }
        beta = 1.0f;
    }
    gemm(0, 1, rows, out_dim, in_dim, 1.0f, inp, in_dim, weight, in_dim, beta, out, out_dim);
    if (ep == MATMUL_QUICKGELU) KFN(quickgelu_forward)(out, out, (long)rows * out_dim);
}

/* dinp [rows,in_dim] += dout @ weight; dweight [out_dim,in_dim] += dout^T @ inp;
 * dbias [out_dim] += column sums of dout [rows,out_dim]. */
void KFN(matmul_backward)(float *dinp, float *dweight, float *dbias, const float *dout,
                     const float *inp, const float *weight, int rows, int in_dim, int out_dim) {
    if (dinp && matmul_backward_input_packed(dinp, dout, weight, rows, in_dim, out_dim) != 0)
        gemm(0, 0, rows, in_dim, out_dim, 1.0f, dout, out_dim, weight, in_dim, 1.0f, dinp,
             in_dim);
    if (dweight)
        gemm(1, 0, out_dim, in_dim, rows, 1.0f, dout, out_dim, inp, in_dim, 1.0f, dweight,
             in_dim);
    if (dbias) {
        /* Blocks of 64 columns, rows in order inside: the sum of each column
         * is the serial one. */
        int nblk = (out_dim + 63) / 64;
#pragma omp parallel for schedule(static) if ((long)rows * out_dim >= PAR_MIN)
        for (int bk = 0; bk < nblk; bk++) {
            int o0 = bk * 64, o1 = o0 + 64 < out_dim ? o0 + 64 : out_dim;
            double s[64];
            for (int o = o0; o < o1; o++) s[o - o0] = 0.0;
            for (int r = 0; r < rows; r++) {
                const float *g = dout + (long)r * out_dim;
                for (int o = o0; o < o1; o++) s[o - o0] += g[o];
            }
            for (int o = o0; o < o1; o++) dbias[o] += (float)s[o - o0];
        }
    }
}

/* ------------------------------------------------------------- LayerNorm */

/* Sum of x [n] in double, in eight fixed lanes combined in order. */
static inline double sum_f64(const float *x, int n) {
    double p8[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++) p8[l] += x[i + l];
    double s = 0.0;
    for (int l = 0; l < 8; l++) s += p8[l];
    for (; i < n; i++) s += x[i];
    return s;
}

/* out, inp [rows,dim]; weight, bias [dim] (NULL acts as 1 / 0); mean, rstd [rows] or NULL. */
void KFN(layernorm_forward)(float *out, float *mean, float *rstd, const float *inp,
                       const float *weight, const float *bias, int rows, int dim, float eps) {
#pragma omp parallel for schedule(static) if ((long)rows * dim >= PAR_MIN)
    for (int r = 0; r < rows; r++) {
        const float *x = inp + (long)r * dim;
        float *y = out + (long)r * dim;
        /* Two passes in double: the one-pass E[x^2]-E[x]^2 form loses digits
         * when the mean is large next to the spread (CLIP's residual stream).
         * Eight fixed partial sums, combined in order, let the sums vectorise
         * without depending on anything but the row. */
        double m = sum_f64(x, dim) / dim;
        double p8[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        int i8 = 0;
        for (; i8 + 8 <= dim; i8 += 8)
            for (int l = 0; l < 8; l++) {
                double d = x[i8 + l] - m;
                p8[l] += d * d;
            }
        double v = 0.0;
        for (int l = 0; l < 8; l++) v += p8[l];
        for (; i8 < dim; i8++) {
            double d = x[i8] - m;
            v += d * d;
        }
        v /= dim;
        double s = 1.0 / sqrt(v + (double)eps);
        for (int i = 0; i < dim; i++) {
            float n = (float)((x[i] - m) * s);
            float w = weight ? weight[i] : 1.0f;
            float b = bias ? bias[i] : 0.0f;
            y[i] = n * w + b;
        }
        if (mean) mean[r] = (float)m;
        if (rstd) rstd[r] = (float)s;
    }
}

/* One row of LayerNorm's input gradient: dx = base + rstd * (dnorm - mean(dnorm)
 * - xhat * mean(dnorm * xhat)), dnorm = dout * weight: the projection out of
 * the two directions the normalisation removed. base is dx itself (accumulate)
 * or the residual's gradient (dx may be base). */
static inline void layernorm_backward_row(float *dx, const float *base, const float *x,
                                          const float *g, const float *weight, float m, float s,
                                          int dim) {
    double sum_dn = 0.0, sum_dn_xh = 0.0;
    for (int i = 0; i < dim; i++) {
        float xh = (x[i] - m) * s;
        float dn = g[i] * (weight ? weight[i] : 1.0f);
        sum_dn += dn;
        sum_dn_xh += (double)dn * xh;
    }
    float mdn = (float)(sum_dn / dim), mdnxh = (float)(sum_dn_xh / dim);
    for (int i = 0; i < dim; i++) {
        float xh = (x[i] - m) * s;
        float dn = g[i] * (weight ? weight[i] : 1.0f);
        dx[i] = base[i] + s * (dn - mdn - xh * mdnxh);
    }
}

/* dinp [rows,dim], dweight, dbias [dim] accumulate; mean, rstd [rows] from the forward. */
void KFN(layernorm_backward)(float *dinp, float *dweight, float *dbias, const float *dout,
                        const float *inp, const float *weight, const float *mean,
                        const float *rstd, int rows, int dim) {
    /* dinp: rows in parallel. */
#pragma omp parallel for schedule(static) if (dinp && (long)rows * dim >= PAR_MIN)
    for (int r = 0; r < rows; r++) {
        if (!dinp) continue;
        float *dx = dinp + (long)r * dim;
        layernorm_backward_row(dx, dx, inp + (long)r * dim, dout + (long)r * dim, weight, mean[r],
                               rstd[r], dim);
    }
    if (!dweight && !dbias) return;
    /* dweight, dbias: blocks of 64 columns in parallel, rows in order inside
     * (the same float accumulation as a serial loop). */
    int nblk = (dim + 63) / 64;
#pragma omp parallel for schedule(static) if ((long)rows * dim >= PAR_MIN)
    for (int bk = 0; bk < nblk; bk++) {
        int i0 = bk * 64, i1 = i0 + 64 < dim ? i0 + 64 : dim;
        for (int r = 0; r < rows; r++) {
            const float *x = inp + (long)r * dim;
            const float *g = dout + (long)r * dim;
            float m = mean[r], s = rstd[r];
            for (int i = i0; i < i1; i++) {
                float xh = (x[i] - m) * s;
                if (dweight) dweight[i] += g[i] * xh;
                if (dbias) dbias[i] += g[i];
            }
        }
    }
}

/* dinp = dres + the dinp term of layernorm_backward: the same arithmetic,
 * the residual read instead of a copy of it (dinp may be dres). */
void KFN(layernorm_backward_residual)(float *dinp, const float *dres, const float *dout,
                                      const float *inp, const float *weight, const float *mean,
                                      const float *rstd, int rows, int dim) {
#pragma omp parallel for schedule(static) if ((long)rows * dim >= PAR_MIN)
    for (int r = 0; r < rows; r++)
        layernorm_backward_row(dinp + (long)r * dim, dres + (long)r * dim, inp + (long)r * dim,
                               dout + (long)r * dim, weight, mean[r], rstd[r], dim);
}

/* ------------------------------------------------------------ Activations */

/* sigmoid without overflow warnings: exp only ever sees a non-positive argument. */
static inline float stable_sigmoid(float x) {
    if (x >= 0.0f) return 1.0f / (1.0f + expf(-x));
    float e = expf(x);
    return e / (1.0f + e);
}

#define QUICKGELU_K 1.702f

/* sigmoid(x) = 1 / (1 + e^-x) through vexpf, which clamps instead of
 * overflowing (no FE_OVERFLOW), so it needs no branch and vectorises. */
static inline float fast_sigmoid(float x) { return 1.0f / (1.0f + vexpf(-x)); }

/* Element-wise loops run in blocks of EW_BLOCK, in parallel when n is large
 * (the pragma names the caller's length, which is always called n). */
#define EW_LOOP(n, ...)                                                              \
    do {                                                                             \
        long nb_ = ((n) + EW_BLOCK - 1) / EW_BLOCK;                                  \
        _Pragma("omp parallel for schedule(static) if ((n) >= PAR_MIN)")            \
        for (long b_ = 0; b_ < nb_; b_++) {                                          \
            long e_ = (b_ + 1) * EW_BLOCK < (n) ? (b_ + 1) * EW_BLOCK : (n);         \
            for (long i = b_ * EW_BLOCK; i < e_; i++) __VA_ARGS__                    \
        }                                                                            \
    } while (0)

/* ------------------------------------------------------------- bf16 */

/* dst [n] = src [n] rounded to bf16 as f32_to_bf16 (core/half.h): nearest
 * even, NaN kept. The same bits as ref_bf16 at every level, denormals
 * included (AVX512-BF16's vcvtneps2bf16 would flush those). The bf16
 * products convert every activation with it, so it runs in blocks on the
 * team. */

void KFN(float_to_bf16)(uint16_t *dst, const float *src, long n) {
    const long nb = (n + EW_BLOCK - 1) / EW_BLOCK;
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
    for (long b = 0; b < nb; b++) {
        const long end = (b + 1) * EW_BLOCK < n ? (b + 1) * EW_BLOCK : n;
        long i = b * EW_BLOCK;
#if defined(__AVX512F__)
        const __m512i abs_mask = _mm512_set1_epi32(0x7fffffff), inf = _mm512_set1_epi32(0x7f800000);
        const __m512i quiet = _mm512_set1_epi32(0x00400000), half = _mm512_set1_epi32(0x7fff);
        const __m512i one = _mm512_set1_epi32(1);
        for (; i + 16 <= end; i += 16) {
            const __m512i u = _mm512_loadu_si512((const void *)(src + i));
            const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), one);
            __m512i r = _mm512_add_epi32(u, _mm512_add_epi32(half, lsb));
            const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, abs_mask), inf);
            r = _mm512_mask_or_epi32(r, nan, u, quiet);
            _mm256_storeu_si256((__m256i *)(dst + i), _mm512_cvtepi32_epi16(_mm512_srli_epi32(r, 16)));
        }
#endif
        for (; i < end; i++) dst[i] = f32_to_bf16(src[i]);
    }
}

/* out, inp [n]. */
void KFN(quickgelu_forward)(float *out, const float *inp, long n) {
    EW_LOOP(n, { out[i] = inp[i] * fast_sigmoid(QUICKGELU_K * inp[i]); });
}

/* dinp [n] += dout * d/dx (x * sigmoid(1.702 x)). */
void KFN(quickgelu_backward)(float *dinp, const float *dout, const float *inp, long n) {
    EW_LOOP(n, {
        float x = inp[i], s = fast_sigmoid(QUICKGELU_K * x);
        dinp[i] += dout[i] * (s + x * QUICKGELU_K * s * (1.0f - s));
    });
}

/* d [n] *= QuickGELU'(inp); 0.0f + keeps quickgelu_backward's +0 for a -0
 * product, so the two agree bit for bit. */
void KFN(quickgelu_backward_inplace)(float *d, const float *inp, long n) {
    EW_LOOP(n, {
        float x = inp[i], s = fast_sigmoid(QUICKGELU_K * x);
        d[i] = 0.0f + d[i] * (s + x * QUICKGELU_K * s * (1.0f - s));
    });
}

#define INV_SQRT2 0.70710678118654752440f
#define INV_SQRT_2PI 0.39894228040143267794f

/* out, inp [n]. */
void KFN(gelu_forward)(float *out, const float *inp, long n) {
    EW_LOOP(n, { out[i] = 0.5f * inp[i] * (1.0f + erff(inp[i] * INV_SQRT2)); });
}

/* dinp [n] += dout * (Phi(x) + x * phi(x)). */
void KFN(gelu_backward)(float *dinp, const float *dout, const float *inp, long n) {
    EW_LOOP(n, {
        float x = inp[i];
        float cdf = 0.5f * (1.0f + erff(x * INV_SQRT2));
        float pdf = INV_SQRT_2PI * expf(-0.5f * x * x);
        dinp[i] += dout[i] * (cdf + x * pdf);
    });
}

/* out, inp [n]. */
void KFN(sigmoid_forward)(float *out, const float *inp, long n) {
    EW_LOOP(n, { out[i] = stable_sigmoid(inp[i]); });
}

/* dinp [n] += dout * out * (1 - out), out being the saved forward output. */
void KFN(sigmoid_backward)(float *dinp, const float *dout, const float *out, long n) {
    EW_LOOP(n, { dinp[i] += dout[i] * out[i] * (1.0f - out[i]); });
}

/* ---------------------------------------------------------------- Softmax */

/* out, inp [rows,dim]: softmax(scale * inp) per row. */
void KFN(softmax_forward)(float *out, const float *inp, int rows, int dim, float scale) {
    /* softmax_row subtracts the max of scale*x (not scale times the max of x:
     * with a negative scale that is what matters). */
#pragma omp parallel for schedule(static) if ((long)rows * dim >= PAR_MIN)
    for (int r = 0; r < rows; r++) softmax_row(out + (long)r * dim, inp + (long)r * dim, dim, scale);
}

/* y [n] = softmax(scale * x [n]), y may be x: one row, for attention. */
void KFN(softmax_forward_row)(float *y, const float *x, int n, float scale) {
    softmax_row(y, x, n, scale);
}

/* dinp [rows,dim] += scale * out * (dout - sum(dout*out)). */
void KFN(softmax_backward)(float *dinp, const float *dout, const float *out, int rows, int dim,
                      float scale) {
#pragma omp parallel for schedule(static) if ((long)rows * dim >= PAR_MIN)
    for (int r = 0; r < rows; r++) {
        const float *g = dout + (long)r * dim, *y = out + (long)r * dim;
        float *dx = dinp + (long)r * dim;
        double dot = 0.0;
        for (int i = 0; i < dim; i++) dot += (double)g[i] * y[i];
        float d = (float)dot;
        for (int i = 0; i < dim; i++) dx[i] += scale * y[i] * (g[i] - d);
    }
}

/* -------------------------------------------------------------- L2 norm */

static double row_norm(const float *x, int dim) {
    double s = 0.0;
    for (int i = 0; i < dim; i++) s += (double)x[i] * x[i];
    return sqrt(s);
}

/* out, inp [rows,dim]; norms [rows] (the unclamped norm) or NULL. */
void KFN(l2norm_forward)(float *out, float *norms, const float *inp, int rows, int dim, float eps) {
#pragma omp parallel for schedule(static) if ((long)rows * dim >= PAR_MIN)
    for (int r = 0; r < rows; r++) {
        const float *x = inp + (long)r * dim;
        float *y = out + (long)r * dim;
        double nrm = row_norm(x, dim);
        double den = nrm > eps ? nrm : eps;
        for (int i = 0; i < dim; i++) y[i] = (float)(x[i] / den);
        if (norms) norms[r] = (float)nrm;
    }
}

/* dinp [rows,dim] += J^T dout; norms [rows] from the forward, or NULL to recompute. */
void KFN(l2norm_backward)(float *dinp, const float *dout, const float *inp, const float *norms,
                     int rows, int dim, float eps) {
#pragma omp parallel for schedule(static) if ((long)rows * dim >= PAR_MIN)
    for (int r = 0; r < rows; r++) {
        const float *x = inp + (long)r * dim, *g = dout + (long)r * dim;
        float *dx = dinp + (long)r * dim;
        double nrm = norms ? norms[r] : row_norm(x, dim);
        if (nrm >= eps) {
            /* clamp_min passes the gradient where norm >= eps (ties included,
             * as PyTorch), so the norm's own derivative is live:
             * d/dx (x/|x|) = (I - x x^T/|x|^2) / |x|. */
            double dot = 0.0;
            for (int i = 0; i < dim; i++) dot += (double)g[i] * x[i];
            double a = 1.0 / nrm, b = dot / (nrm * nrm * nrm);
            for (int i = 0; i < dim; i++) dx[i] += (float)(g[i] * a - x[i] * b);
        } else {
            /* The denominator is the constant eps: the map is linear. */
            for (int i = 0; i < dim; i++) dx[i] += (float)(g[i] / (double)eps);
        }
    }
}

/* ------------------------------------------------------------- Embedding */

/* out [n,dim] = table [vocab,dim] rows at ids [n]. */
void KFN(embedding_forward)(float *out, const int32_t *ids, const float *table, int n, int dim) {
#pragma omp parallel for schedule(static) if ((long)n * dim >= PAR_MIN)
    for (int i = 0; i < n; i++)
        memcpy(out + (long)i * dim, table + (long)ids[i] * dim, sizeof(float) * (size_t)dim);
}

/* dtable [vocab,dim] += dout [n,dim] rows at ids; repeated ids add up. */
void KFN(embedding_backward)(float *dtable, const float *dout, const int32_t *ids, int n, int dim) {
    for (int i = 0; i < n; i++) {
        float *d = dtable + (long)ids[i] * dim;
        const float *g = dout + (long)i * dim;
        for (int j = 0; j < dim; j++) d[j] += g[j];
    }
}
