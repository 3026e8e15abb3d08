/* Double-precision reference kernels (see kernels_ref.h): plain loops chosen
 * for being easy to check by eye, not for speed. */
#include "kernels/kernels_ref.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ GEMM */

/* C[M,N] = alpha * op(A) @ op(B) + beta * C. */
void ref_gemm(int trans_a, int trans_b, int M, int N, int K, double alpha, const double *A,
              int lda, const double *B, int ldb, double beta, double *C, int ldc) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0.0;
            for (int p = 0; p < K; p++) {
                double a = trans_a ? A[(long)p * lda + i] : A[(long)i * lda + p];
                double b = trans_b ? B[(long)j * ldb + p] : B[(long)p * ldb + j];
                s += a * b;
            }
            double *c = &C[(long)i * ldc + j];
            *c = alpha * s + (beta == 0.0 ? 0.0 : beta * *c);
        }
}

/* ---------------------------------------------------------------- Linear */

void ref_matmul_forward(double *out, const double *inp, const double *weight,
                        const double *bias, int rows, int in_dim, int out_dim) {
    for (int r = 0; r < rows; r++)
        for (int o = 0; o < out_dim; o++) {
            double s = bias ? bias[o] : 0.0;
            for (int i = 0; i < in_dim; i++)
                s += inp[(long)r * in_dim + i] * weight[(long)o * in_dim + i];
            out[(long)r * out_dim + o] = s;
        }
}

void ref_matmul_backward(double *dinp, double *dweight, double *dbias, const double *dout,
                         const double *inp, const double *weight, int rows, int in_dim,
                         int out_dim) {
    for (int r = 0; r < rows; r++)
        for (int o = 0; o < out_dim; o++) {
            double g = dout[(long)r * out_dim + o];
            if (dbias) dbias[o] += g;
            for (int i = 0; i < in_dim; i++) {
                if (dinp) dinp[(long)r * in_dim + i] += g * weight[(long)o * in_dim + i];
                if (dweight) dweight[(long)o * in_dim + i] += g * inp[(long)r * in_dim + i];
            }
        }
}

/* ------------------------------------------------------------- LayerNorm */

void ref_layernorm_forward(double *out, double *mean, double *rstd, const double *inp,
                           const double *weight, const double *bias, int rows, int dim,
                           double eps) {
    for (int r = 0; r < rows; r++) {
        const double *x = inp + (long)r * dim;
        double m = 0.0, v = 0.0;
        for (int i = 0; i < dim; i++) m += x[i];
        m /= dim;
        for (int i = 0; i < dim; i++) v += (x[i] - m) * (x[i] - m);
        v /= dim;
        double s = 1.0 / sqrt(v + eps);
        for (int i = 0; i < dim; i++)
            out[(long)r * dim + i] =
                (x[i] - m) * s * (weight ? weight[i] : 1.0) + (bias ? bias[i] : 0.0);
        if (mean) mean[r] = m;
        if (rstd) rstd[r] = s;
    }
}

/* d xhat_j / d x_i = rstd * (delta_ij - 1/N - xhat_i xhat_j / N), applied as a
 * full Jacobian. */
void ref_layernorm_backward(double *dinp, double *dweight, double *dbias, const double *dout,
                            const double *inp, const double *weight, const double *mean,
                            const double *rstd, int rows, int dim) {
    for (int r = 0; r < rows; r++) {
        const double *x = inp + (long)r * dim, *g = dout + (long)r * dim;
        double m = mean[r], s = rstd[r];
        for (int j = 0; j < dim; j++) {
            double xhj = (x[j] - m) * s;
            if (dweight) dweight[j] += g[j] * xhj;
            if (dbias) dbias[j] += g[j];
        }
        if (!dinp) continue;
        for (int i = 0; i < dim; i++) {
            double xhi = (x[i] - m) * s, acc = 0.0;
            for (int j = 0; j < dim; j++) {
                double xhj = (x[j] - m) * s;
                double J = s * ((i == j ? 1.0 : 0.0) - 1.0 / dim - xhi * xhj / dim);
                acc += g[j] * (weight ? weight[j] : 1.0) * J;
            }
            dinp[(long)r * dim + i] += acc;
        }
    }
}

/* ------------------------------------------------------------- Attention */

/* Scaled scores S [Tq,Tk] for one (b,h), then the row softmax over the
 * visible keys; masked entries are 0. */
static void ref_head_probs(double *P, const double *q, const double *k, long bs, long rs, int b,
                           int h, int Tq, int Tk, int dh, int causal) {
    double scale = 1.0 / sqrt((double)dh);
    for (int t = 0; t < Tq; t++) {
        int n = causal ? (t + 1 < Tk ? t + 1 : Tk) : Tk;
        double mx = -INFINITY, sum = 0.0;
        for (int j = 0; j < Tk; j++) {
            double s = 0.0;
            for (int c = 0; c < dh; c++)
                s += q[b * bs + t * rs + h * dh + c] * k[b * bs + j * rs + h * dh + c];
            P[(long)t * Tk + j] = s * scale;
            if (j < n && P[(long)t * Tk + j] > mx) mx = P[(long)t * Tk + j];
        }
        for (int j = 0; j < Tk; j++) {
            P[(long)t * Tk + j] = j < n ? exp(P[(long)t * Tk + j] - mx) : 0.0;
            sum += P[(long)t * Tk + j];
        }
        for (int j = 0; j < Tk; j++) P[(long)t * Tk + j] /= sum;
    }
}

void ref_attention_forward(double *out, double *probs, const double *q, const double *k,
                           const double *v, long batch_stride, long row_stride, int B, int Tq,
                           int Tk, int C, int n_heads, int causal) {
    int dh = C / n_heads;
    double *P = malloc(sizeof(double) * (size_t)Tq * (size_t)Tk);
    if (!P) return;
    for (int b = 0; b < B; b++)
        for (int h = 0; h < n_heads; h++) {
            ref_head_probs(P, q, k, batch_stride, row_stride, b, h, Tq, Tk, dh, causal);
            for (int t = 0; t < Tq; t++)
                for (int c = 0; c < dh; c++) {
                    double s = 0.0;
                    for (int j = 0; j < Tk; j++)
                        s += P[(long)t * Tk + j] * v[b * batch_stride + j * row_stride + h * dh + c];
                    out[((long)b * Tq + t) * C + h * dh + c] = s;
                }
            if (probs)
                for (long i = 0; i < (long)Tq * Tk; i++)
                    probs[((long)b * n_heads + h) * Tq * Tk + i] = P[i];
        }
    free(P);
}

float ref_bf16(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return x; /* NaN */
    u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
    memcpy(&x, &u, sizeof x);
    return x;
}

void ref_attention_forward_bf16(double *out, const float *q, const float *k, const float *v,
                                long batch_stride, long row_stride, int B, int Tq, int Tk, int C,
                                int n_heads, int causal) {
    const int dh = C / n_heads, block = 64;
    const float scale = 1.0f / sqrtf((float)dh); /* the kernel's float scale */
    double *o = malloc(sizeof(double) * (size_t)dh), *s = malloc(sizeof(double) * (size_t)Tk);
    if (!o || !s) {
        free(o), free(s);
        return;
    }
    for (int b = 0; b < B; b++)
        for (int h = 0; h < n_heads; h++)
            for (int t = 0; t < Tq; t++) {
                const float *qt = q + b * batch_stride + t * row_stride + h * dh;
                const int n = causal && t + 1 < Tk ? t + 1 : Tk;
                for (int j = 0; j < n; j++) {
                    const float *kj = k + b * batch_stride + j * row_stride + h * dh;
                    double acc = 0.0;
                    for (int c = 0; c < dh; c++)
                        acc += (double)ref_bf16(scale * qt[c]) * (double)ref_bf16(kj[c]);
                    s[j] = (float)acc; /* the kernel keeps scores in float */
                }
                /* the online softmax, block by block: the weights are rounded
                 * relative to the running max, as the kernel's tiles do */
                double m = -INFINITY, l = 0.0;
                for (int c = 0; c < dh; c++) o[c] = 0.0;
                for (int j0 = 0; j0 < n; j0 += block) {
                    const int j1 = j0 + block < n ? j0 + block : n;
                    double mx = m;
                    for (int j = j0; j < j1; j++) mx = s[j] > mx ? s[j] : mx;
                    const double corr = exp(m - mx);
                    l *= corr;
                    for (int c = 0; c < dh; c++) o[c] *= corr;
                    for (int j = j0; j < j1; j++) {
                        const double p = ref_bf16((float)exp(s[j] - mx));
                        const float *vj = v + b * batch_stride + j * row_stride + h * dh;
                        l += p;
                        for (int c = 0; c < dh; c++) o[c] += p * (double)ref_bf16(vj[c]);
                    }
                    m = mx;
                }
                for (int c = 0; c < dh; c++) out[((long)b * Tq + t) * C + h * dh + c] = o[c] / l;
            }
    free(o), free(s);
}

void ref_attention_backward(double *dq, double *dk, double *dv, const double *dout,
                            const double *probs, const double *q, const double *k,
                            const double *v, long batch_stride, long row_stride, int B, int Tq,
                            int Tk, int C, int n_heads, int causal) {
    int dh = C / n_heads;
    double scale = 1.0 / sqrt((double)dh);
    long bs = batch_stride, rs = row_stride;
    double *buf = malloc(sizeof(double) * (size_t)Tq * (size_t)Tk * 2);
    if (!buf) return;
    double *P = buf, *dP = buf + (long)Tq * Tk;
    for (int b = 0; b < B; b++)
        for (int h = 0; h < n_heads; h++) {
            if (probs)
                for (long i = 0; i < (long)Tq * Tk; i++)
                    P[i] = probs[((long)b * n_heads + h) * Tq * Tk + i];
            else
                ref_head_probs(P, q, k, bs, rs, b, h, Tq, Tk, dh, causal);
            /* out_t = sum_j P_tj v_j, so dP_tj = dout_t . v_j and dv_j += P_tj dout_t. */
            for (int t = 0; t < Tq; t++)
                for (int j = 0; j < Tk; j++) {
                    double s = 0.0;
                    for (int c = 0; c < dh; c++) {
                        double g = dout[((long)b * Tq + t) * C + h * dh + c];
                        s += g * v[b * bs + j * rs + h * dh + c];
                        if (dv) dv[b * bs + j * rs + h * dh + c] += P[(long)t * Tk + j] * g;
                    }
                    dP[(long)t * Tk + j] = s;
                }
            /* Softmax Jacobian dP_tj/dS_ti = P_tj (delta_ij - P_ti), then
             * S_ti = scale * q_t . k_i. */
            for (int t = 0; t < Tq; t++)
                for (int i = 0; i < Tk; i++) {
                    double dS = 0.0;
                    for (int j = 0; j < Tk; j++)
                        dS += dP[(long)t * Tk + j] * P[(long)t * Tk + j] *
                              ((i == j ? 1.0 : 0.0) - P[(long)t * Tk + i]);
                    dS *= scale;
                    for (int c = 0; c < dh; c++) {
                        if (dq) dq[b * bs + t * rs + h * dh + c] += dS * k[b * bs + i * rs + h * dh + c];
                        if (dk) dk[b * bs + i * rs + h * dh + c] += dS * q[b * bs + t * rs + h * dh + c];
                    }
                }
        }
    free(buf);
}

/* ------------------------------------------------------------ Activations */

static double ref_sig(double x) { return 1.0 / (1.0 + exp(-x)); }

void ref_quickgelu_forward(double *out, const double *inp, long n) {
    for (long i = 0; i < n; i++) out[i] = inp[i] * ref_sig(1.702 * inp[i]);
}

void ref_quickgelu_backward(double *dinp, const double *dout, const double *inp, long n) {
    for (long i = 0; i < n; i++) {
        double s = ref_sig(1.702 * inp[i]);
        dinp[i] += dout[i] * (s + inp[i] * 1.702 * s * (1.0 - s));
    }
}

void ref_gelu_forward(double *out, const double *inp, long n) {
    for (long i = 0; i < n; i++) out[i] = 0.5 * inp[i] * (1.0 + erf(inp[i] / sqrt(2.0)));
}

void ref_gelu_backward(double *dinp, const double *dout, const double *inp, long n) {
    const double pi = 3.14159265358979323846;
    for (long i = 0; i < n; i++) {
        double x = inp[i];
        double cdf = 0.5 * (1.0 + erf(x / sqrt(2.0)));
        double pdf = exp(-0.5 * x * x) / sqrt(2.0 * pi);
        dinp[i] += dout[i] * (cdf + x * pdf);
    }
}

void ref_sigmoid_forward(double *out, const double *inp, long n) {
    for (long i = 0; i < n; i++) out[i] = ref_sig(inp[i]);
}

void ref_sigmoid_backward(double *dinp, const double *dout, const double *out, long n) {
    for (long i = 0; i < n; i++) dinp[i] += dout[i] * out[i] * (1.0 - out[i]);
}

/* ---------------------------------------------------------------- Softmax */

void ref_softmax_forward(double *out, const double *inp, int rows, int dim, double scale) {
    for (int r = 0; r < rows; r++) {
        const double *x = inp + (long)r * dim;
        double *y = out + (long)r * dim;
        double mx = -INFINITY, sum = 0.0;
        for (int i = 0; i < dim; i++)
            if (scale * x[i] > mx) mx = scale * x[i];
        for (int i = 0; i < dim; i++) sum += (y[i] = exp(scale * x[i] - mx));
        for (int i = 0; i < dim; i++) y[i] /= sum;
    }
}

/* dy_j / dx_i = scale * y_j (delta_ij - y_i), as a full Jacobian. */
void ref_softmax_backward(double *dinp, const double *dout, const double *out, int rows,
                          int dim, double scale) {
    for (int r = 0; r < rows; r++) {
        const double *y = out + (long)r * dim, *g = dout + (long)r * dim;
        for (int i = 0; i < dim; i++) {
            double acc = 0.0;
            for (int j = 0; j < dim; j++)
                acc += g[j] * scale * y[j] * ((i == j ? 1.0 : 0.0) - y[i]);
            dinp[(long)r * dim + i] += acc;
        }
    }
}

/* ---------------------------------------------------------------- Conv2d */

void ref_conv2d_forward(double *out, const double *inp, const double *weight,
                        const double *bias, int B, int Ci, int H, int W, int Co, int k,
                        int stride, int pad) {
    int Ho = (H + 2 * pad - k) / stride + 1, Wo = (W + 2 * pad - k) / stride + 1;
    for (int b = 0; b < B; b++)
        for (int co = 0; co < Co; co++)
            for (int oy = 0; oy < Ho; oy++)
                for (int ox = 0; ox < Wo; ox++) {
                    double s = bias ? bias[co] : 0.0;
                    for (int ci = 0; ci < Ci; ci++)
                        for (int ky = 0; ky < k; ky++)
                            for (int kx = 0; kx < k; kx++) {
                                int iy = oy * stride - pad + ky, ix = ox * stride - pad + kx;
                                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                                s += weight[((long)(co * Ci + ci) * k + ky) * k + kx] *
                                     inp[(((long)b * Ci + ci) * H + iy) * W + ix];
                            }
                    out[(((long)b * Co + co) * Ho + oy) * Wo + ox] = s;
                }
}

void ref_conv2d_backward(double *dinp, double *dweight, double *dbias, const double *dout,
                         const double *inp, const double *weight, int B, int Ci, int H, int W,
                         int Co, int k, int stride, int pad) {
    int Ho = (H + 2 * pad - k) / stride + 1, Wo = (W + 2 * pad - k) / stride + 1;
    for (int b = 0; b < B; b++)
        for (int co = 0; co < Co; co++)
            for (int oy = 0; oy < Ho; oy++)
                for (int ox = 0; ox < Wo; ox++) {
                    double g = dout[(((long)b * Co + co) * Ho + oy) * Wo + ox];
                    if (dbias) dbias[co] += g;
                    for (int ci = 0; ci < Ci; ci++)
                        for (int ky = 0; ky < k; ky++)
                            for (int kx = 0; kx < k; kx++) {
                                int iy = oy * stride - pad + ky, ix = ox * stride - pad + kx;
                                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                                long wi = ((long)(co * Ci + ci) * k + ky) * k + kx;
                                long xi = (((long)b * Ci + ci) * H + iy) * W + ix;
                                if (dweight) dweight[wi] += g * inp[xi];
                                if (dinp) dinp[xi] += g * weight[wi];
                            }
                }
}

/* ------------------------------------------------------------- BatchNorm */

#define BN_AT(p, b, c, i) ((p)[((long)(b) * C + (c)) * HW + (i)])

void ref_batchnorm_forward_train(double *out, double *mean, double *rstd, double *running_mean,
                                 double *running_var, const double *inp, const double *weight,
                                 const double *bias, int B, int C, int HW, double eps,
                                 double momentum) {
    long n = (long)B * HW;
    for (int c = 0; c < C; c++) {
        double m = 0.0, ss = 0.0;
        for (int b = 0; b < B; b++)
            for (int i = 0; i < HW; i++) m += BN_AT(inp, b, c, i);
        m /= n;
        for (int b = 0; b < B; b++)
            for (int i = 0; i < HW; i++) ss += (BN_AT(inp, b, c, i) - m) * (BN_AT(inp, b, c, i) - m);
        double s = 1.0 / sqrt(ss / n + eps);
        for (int b = 0; b < B; b++)
            for (int i = 0; i < HW; i++)
                BN_AT(out, b, c, i) = (BN_AT(inp, b, c, i) - m) * s * (weight ? weight[c] : 1.0) +
                                      (bias ? bias[c] : 0.0);
        if (mean) mean[c] = m;
        if (rstd) rstd[c] = s;
        if (running_mean) running_mean[c] = (1.0 - momentum) * running_mean[c] + momentum * m;
        if (running_var)
            running_var[c] = (1.0 - momentum) * running_var[c] +
                             momentum * (n > 1 ? ss / (n - 1) : ss / n);
    }
}

void ref_batchnorm_forward_eval(double *out, const double *inp, const double *running_mean,
                                const double *running_var, const double *weight,
                                const double *bias, int B, int C, int HW, double eps) {
    for (int c = 0; c < C; c++)
        for (int b = 0; b < B; b++)
            for (int i = 0; i < HW; i++)
                BN_AT(out, b, c, i) = (BN_AT(inp, b, c, i) - running_mean[c]) /
                                          sqrt(running_var[c] + eps) * (weight ? weight[c] : 1.0) +
                                      (bias ? bias[c] : 0.0);
}

/* Same Jacobian as LayerNorm, over the B*HW values of one channel. */
void ref_batchnorm_backward(double *dinp, double *dweight, double *dbias, const double *dout,
                            const double *inp, const double *weight, const double *mean,
                            const double *rstd, int B, int C, int HW) {
    long n = (long)B * HW;
    for (int c = 0; c < C; c++) {
        double m = mean[c], s = rstd[c], w = weight ? weight[c] : 1.0;
        for (long a = 0; a < n; a++) {
            double g = BN_AT(dout, a / HW, c, a % HW);
            if (dweight) dweight[c] += g * (BN_AT(inp, a / HW, c, a % HW) - m) * s;
            if (dbias) dbias[c] += g;
        }
        if (!dinp) continue;
        for (long a = 0; a < n; a++) {
            double xa = (BN_AT(inp, a / HW, c, a % HW) - m) * s, acc = 0.0;
            for (long e = 0; e < n; e++) {
                double xe = (BN_AT(inp, e / HW, c, e % HW) - m) * s;
                double J = s * ((a == e ? 1.0 : 0.0) - 1.0 / n - xa * xe / n);
                acc += BN_AT(dout, e / HW, c, e % HW) * w * J;
            }
            BN_AT(dinp, a / HW, c, a % HW) += acc;
        }
    }
}

#undef BN_AT

/* -------------------------------------------------------------- L2 norm */

void ref_l2norm_forward(double *out, double *norms, const double *inp, int rows, int dim,
                        double eps) {
    for (int r = 0; r < rows; r++) {
        double s = 0.0;
        for (int i = 0; i < dim; i++) s += inp[(long)r * dim + i] * inp[(long)r * dim + i];
        double nrm = sqrt(s), den = nrm > eps ? nrm : eps;
        for (int i = 0; i < dim; i++) out[(long)r * dim + i] = inp[(long)r * dim + i] / den;
        if (norms) norms[r] = nrm;
    }
}

/* Jacobian of x / max(|x|, eps): (delta_ij - x_i x_j / |x|^2) / |x| when the
 * norm is at least eps (PyTorch's clamp_min passes the tie), delta_ij / eps below. */
void ref_l2norm_backward(double *dinp, const double *dout, const double *inp,
                         const double *norms, int rows, int dim, double eps) {
    for (int r = 0; r < rows; r++) {
        const double *x = inp + (long)r * dim, *g = dout + (long)r * dim;
        double nrm;
        if (norms) {
            nrm = norms[r];
        } else {
            double s = 0.0;
            for (int i = 0; i < dim; i++) s += x[i] * x[i];
            nrm = sqrt(s);
        }
        for (int i = 0; i < dim; i++) {
            double acc = 0.0;
            for (int j = 0; j < dim; j++) {
                double d = i == j ? 1.0 : 0.0;
                double J = nrm >= eps ? (d - x[i] * x[j] / (nrm * nrm)) / nrm : d / eps;
                acc += g[j] * J;
            }
            dinp[(long)r * dim + i] += acc;
        }
    }
}

/* ------------------------------------------------------------- Embedding */

void ref_embedding_forward(double *out, const int32_t *ids, const double *table, int n,
                           int dim) {
    for (int i = 0; i < n; i++)
        for (int j = 0; j < dim; j++) out[(long)i * dim + j] = table[(long)ids[i] * dim + j];
}

void ref_embedding_backward(double *dtable, const double *dout, const int32_t *ids, int n,
                            int dim) {
    for (int i = 0; i < n; i++)
        for (int j = 0; j < dim; j++) dtable[(long)ids[i] * dim + j] += dout[(long)i * dim + j];
}
