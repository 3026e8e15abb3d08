/* Float32 kernels: GEMM, linear, LayerNorm, activations, softmax, L2 norm,
 * embedding. Attention lives in attention.c, conv2d and BatchNorm in conv.c.
 *
 * Reductions (means, variances, norms, softmax sums) accumulate in double:
 * it costs little next to the GEMMs and keeps us within ~1e-6 of PyTorch,
 * which is what the golden parity tests need. Everything else stays float.
 * Loops are single-threaded on purpose; OpenBLAS threads the GEMMs. */
#include "kernels/kernels.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

/* ------------------------------------------------------------------ GEMM */

/* C[M,N] = alpha * op(A)[M,K] @ op(B)[K,N] + beta * C. */
void gemm(int trans_a, int trans_b, int M, int N, int K, float alpha,
          const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        /* BLAS would reject lda = 0 through xerbla, which prints; an empty
         * sum leaves only the beta term. */
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++)
                C[(long)i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[(long)i * ldc + j];
        return;
    }
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda, B, ldb, beta, C,
                ldc);
}

/* ---------------------------------------------------------------- Linear */

/* out [rows,out_dim] = inp [rows,in_dim] @ weight[out_dim,in_dim]^T + bias [out_dim]. */
void matmul_forward(float *out, const float *inp, const float *weight, const float *bias,
                    int rows, int in_dim, int out_dim) {
    /* Seeding out with the bias and letting BLAS add the product rounds
     * once, as PyTorch's addmm does. */
    float beta = 0.0f;
    if (bias) {
        for (int r = 0; r < rows; r++)
            memcpy(out + (long)r * out_dim, bias, sizeof(float) * (size_t)out_dim);
        beta = 1.0f;
    }
    gemm(0, 1, rows, out_dim, in_dim, 1.0f, inp, in_dim, weight, in_dim, beta, out, out_dim);
}

/* dinp [rows,in_dim] += dout @ weight; dweight [out_dim,in_dim] += dout^T @ inp;
 * dbias [out_dim] += column sums of dout [rows,out_dim]. */
void matmul_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                     const float *inp, const float *weight, int rows, int in_dim, int out_dim) {
    if (dinp)
        gemm(0, 0, rows, in_dim, out_dim, 1.0f, dout, out_dim, weight, in_dim, 1.0f, dinp,
             in_dim);
    if (dweight)
        gemm(1, 0, out_dim, in_dim, rows, 1.0f, dout, out_dim, inp, in_dim, 1.0f, dweight,
             in_dim);
    if (dbias) {
        for (int o = 0; o < out_dim; o++) {
            double s = 0.0;
            for (int r = 0; r < rows; r++) s += dout[(long)r * out_dim + o];
            dbias[o] += (float)s;
        }
    }
}

/* ------------------------------------------------------------- LayerNorm */

/* out, inp [rows,dim]; weight, bias [dim] (NULL acts as 1 / 0); mean, rstd [rows] or NULL. */
void layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                       const float *weight, const float *bias, int rows, int dim, float eps) {
    for (int r = 0; r < rows; r++) {
        const float *x = inp + (long)r * dim;
        float *y = out + (long)r * dim;
        /* Two passes in double: the one-pass E[x^2]-E[x]^2 form loses digits
         * when the mean is large next to the spread (CLIP's residual stream). */
        double m = 0.0;
        for (int i = 0; i < dim; i++) m += x[i];
        m /= dim;
        double v = 0.0;
        for (int i = 0; i < dim; i++) {
            double d = x[i] - m;
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

/* dinp [rows,dim], dweight, dbias [dim] accumulate; mean, rstd [rows] from the forward. */
void layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                        const float *inp, const float *weight, const float *mean,
                        const float *rstd, int rows, int dim) {
    for (int r = 0; r < rows; r++) {
        const float *x = inp + (long)r * dim;
        const float *g = dout + (long)r * dim;
        float m = mean[r], s = rstd[r];
        /* dinp = rstd * (dnorm - mean(dnorm) - xhat * mean(dnorm * xhat)),
         * dnorm = dout * weight: the projection out of the two directions
         * the normalisation removed. */
        double sum_dn = 0.0, sum_dn_xh = 0.0;
        for (int i = 0; i < dim; i++) {
            float xh = (x[i] - m) * s;
            float dn = g[i] * (weight ? weight[i] : 1.0f);
            sum_dn += dn;
            sum_dn_xh += (double)dn * xh;
            if (dweight) dweight[i] += g[i] * xh;
            if (dbias) dbias[i] += g[i];
        }
        if (!dinp) continue;
        float mdn = (float)(sum_dn / dim), mdnxh = (float)(sum_dn_xh / dim);
        float *dx = dinp + (long)r * dim;
        for (int i = 0; i < dim; i++) {
            float xh = (x[i] - m) * s;
            float dn = g[i] * (weight ? weight[i] : 1.0f);
            dx[i] += s * (dn - mdn - xh * mdnxh);
        }
    }
}

/* ------------------------------------------------------------ Activations */

/* sigmoid without overflow warnings: exp only ever sees a non-positive argument. */
static inline float stable_sigmoid(float x) {
    if (x >= 0.0f) return 1.0f / (1.0f + expf(-x));
    float e = expf(x);
    return e / (1.0f + e);
}

#define QUICKGELU_K 1.702f

/* out, inp [n]. */
void quickgelu_forward(float *out, const float *inp, long n) {
    for (long i = 0; i < n; i++) out[i] = inp[i] * stable_sigmoid(QUICKGELU_K * inp[i]);
}

/* dinp [n] += dout * d/dx (x * sigmoid(1.702 x)). */
void quickgelu_backward(float *dinp, const float *dout, const float *inp, long n) {
    for (long i = 0; i < n; i++) {
        float x = inp[i], s = stable_sigmoid(QUICKGELU_K * x);
        dinp[i] += dout[i] * (s + x * QUICKGELU_K * s * (1.0f - s));
    }
}

#define INV_SQRT2 0.70710678118654752440f
#define INV_SQRT_2PI 0.39894228040143267794f

/* out, inp [n]. */
void gelu_forward(float *out, const float *inp, long n) {
    for (long i = 0; i < n; i++) out[i] = 0.5f * inp[i] * (1.0f + erff(inp[i] * INV_SQRT2));
}

/* dinp [n] += dout * (Phi(x) + x * phi(x)). */
void gelu_backward(float *dinp, const float *dout, const float *inp, long n) {
    for (long i = 0; i < n; i++) {
        float x = inp[i];
        float cdf = 0.5f * (1.0f + erff(x * INV_SQRT2));
        float pdf = INV_SQRT_2PI * expf(-0.5f * x * x);
        dinp[i] += dout[i] * (cdf + x * pdf);
    }
}

/* out, inp [n]. */
void sigmoid_forward(float *out, const float *inp, long n) {
    for (long i = 0; i < n; i++) out[i] = stable_sigmoid(inp[i]);
}

/* dinp [n] += dout * out * (1 - out), out being the saved forward output. */
void sigmoid_backward(float *dinp, const float *dout, const float *out, long n) {
    for (long i = 0; i < n; i++) dinp[i] += dout[i] * out[i] * (1.0f - out[i]);
}

/* ---------------------------------------------------------------- Softmax */

/* out, inp [rows,dim]: softmax(scale * inp) per row. */
void softmax_forward(float *out, const float *inp, int rows, int dim, float scale) {
    for (int r = 0; r < rows; r++) {
        const float *x = inp + (long)r * dim;
        float *y = out + (long)r * dim;
        /* Subtracting the max keeps expf in range; with a negative scale the
         * max of scale*x is what matters, hence scaling first. */
        float mx = -INFINITY;
        for (int i = 0; i < dim; i++) {
            float v = scale * x[i];
            if (v > mx) mx = v;
        }
        double sum = 0.0;
        for (int i = 0; i < dim; i++) {
            y[i] = expf(scale * x[i] - mx);
            sum += y[i];
        }
        float inv = (float)(1.0 / sum);
        for (int i = 0; i < dim; i++) y[i] *= inv;
    }
}

/* dinp [rows,dim] += scale * out * (dout - sum(dout*out)). */
void softmax_backward(float *dinp, const float *dout, const float *out, int rows, int dim,
                      float scale) {
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
void l2norm_forward(float *out, float *norms, const float *inp, int rows, int dim, float eps) {
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
void l2norm_backward(float *dinp, const float *dout, const float *inp, const float *norms,
                     int rows, int dim, float eps) {
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
void embedding_forward(float *out, const int32_t *ids, const float *table, int n, int dim) {
    for (int i = 0; i < n; i++)
        memcpy(out + (long)i * dim, table + (long)ids[i] * dim, sizeof(float) * (size_t)dim);
}

/* dtable [vocab,dim] += dout [n,dim] rows at ids; repeated ids add up. */
void embedding_backward(float *dtable, const float *dout, const int32_t *ids, int n, int dim) {
    for (int i = 0; i < n; i++) {
        float *d = dtable + (long)ids[i] * dim;
        const float *g = dout + (long)i * dim;
        for (int j = 0; j < dim; j++) d[j] += g[j];
    }
}
