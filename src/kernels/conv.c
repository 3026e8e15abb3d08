/* Conv2d (im2col + GEMM) and BatchNorm2d, NCHW, float32.
 *
 * Scratch: conv2d needs one im2col buffer [Ci*k*k, Ho*Wo] per call (a 1x1,
 * stride 1, unpadded convolution is a plain GEMM on the input and needs none).
 * It is the caller's work (from the per-call arena at inference) or else
 * malloc'ed here; should that fail, the direct loops at the end of the
 * file compute the same result without scratch, so the kernel never fails.
 *
 * Threading: im2col / col2im over input channels, BatchNorm over channels,
 * OpenMP static schedule; each element's arithmetic is the same on any
 * thread, so results do not depend on the thread count (the GEMMs' own
 * threading aside, see gemm.c).
 */
#include "kernels/kernels.h"
#include "kernels/kernels_ref.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static inline int conv_out_size(int n, int k, int stride, int pad) {
    return (n + 2 * pad - k) / stride + 1;
}

/* Output columns [*lo, *hi) whose input column ox*stride - pad + kx lies in [0, W):
 * computed once per kernel tap so the copy loops carry no bounds test. */
static void valid_range(int *lo, int *hi, int Wo, int W, int kx, int stride, int pad) {
    int a = 0, b = Wo;
    while (a < b && a * stride - pad + kx < 0) a++;
    while (b > a && (b - 1) * stride - pad + kx >= W) b--;
    *lo = a;
    *hi = b;
}

/* col [Ci*k*k, Ho*Wo] from x [Ci,H,W]: row (ci,ky,kx), column (oy,ox) holds
 * x[ci, oy*stride-pad+ky, ox*stride-pad+kx], zero outside the image. With
 * k == stride and no padding (patch embedding) the taps do not overlap and
 * this is a pure permutation of the input. */
static void im2col(float *col, const float *x, int Ci, int H, int W, int k, int stride, int pad,
                   int Ho, int Wo) {
    long HWo = (long)Ho * Wo;
#pragma omp parallel for schedule(static) if ((long)Ci * k * k * HWo >= 32768L)
    for (int ci = 0; ci < Ci; ci++) {
        for (int ky = 0; ky < k; ky++) {
            for (int kx = 0; kx < k; kx++) {
                float *c = col + ((long)(ci * k + ky) * k + kx) * HWo;
                int lo, hi;
                valid_range(&lo, &hi, Wo, W, kx, stride, pad);
                for (int oy = 0; oy < Ho; oy++) {
                    float *crow = c + (long)oy * Wo;
                    int iy = oy * stride - pad + ky;
                    if (iy < 0 || iy >= H) {
                        memset(crow, 0, sizeof(float) * (size_t)Wo);
                        continue;
                    }
                    const float *xrow = x + ((long)ci * H + iy) * W;
                    for (int ox = 0; ox < lo; ox++) crow[ox] = 0.0f;
                    for (int ox = lo; ox < hi; ox++) crow[ox] = xrow[(long)ox * stride - pad + kx];
                    for (int ox = hi; ox < Wo; ox++) crow[ox] = 0.0f;
                }
            }
        }
    }
}

/* dx [Ci,H,W] += the adjoint of im2col applied to dcol [Ci*k*k, Ho*Wo]. */
static void col2im_add(float *dx, const float *dcol, int Ci, int H, int W, int k, int stride,
                       int pad, int Ho, int Wo) {
    long HWo = (long)Ho * Wo;
    /* Each input channel's plane of dx only receives its own rows of dcol. */
#pragma omp parallel for schedule(static) if ((long)Ci * k * k * HWo >= 32768L)
    for (int ci = 0; ci < Ci; ci++) {
        for (int ky = 0; ky < k; ky++) {
            for (int kx = 0; kx < k; kx++) {
                const float *c = dcol + ((long)(ci * k + ky) * k + kx) * HWo;
                int lo, hi;
                valid_range(&lo, &hi, Wo, W, kx, stride, pad);
                for (int oy = 0; oy < Ho; oy++) {
                    int iy = oy * stride - pad + ky;
                    if (iy < 0 || iy >= H) continue;
                    const float *crow = c + (long)oy * Wo;
                    float *xrow = dx + ((long)ci * H + iy) * W;
                    for (int ox = lo; ox < hi; ox++) xrow[(long)ox * stride - pad + kx] += crow[ox];
                }
            }
        }
    }
}

size_t conv2d_work_floats(int Ci, int H, int W, int k, int stride, int pad) {
    if (k == 1 && stride == 1 && pad == 0) return 0;
    return (size_t)Ci * k * k * (size_t)conv_out_size(H, k, stride, pad) *
           (size_t)conv_out_size(W, k, stride, pad);
}

/* out [B,Co,Ho,Wo]; inp [B,Ci,H,W]; weight [Co,Ci,k,k]; bias [Co] or NULL;
 * work [Ci*k*k, Ho*Wo] or NULL. */
void conv2d_forward(float *out, const float *inp, const float *weight, const float *bias,
                    int B, int Ci, int H, int W, int Co, int k, int stride, int pad, float *work) {
    int Ho = conv_out_size(H, k, stride, pad), Wo = conv_out_size(W, k, stride, pad);
    long HWo = (long)Ho * Wo, HW = (long)H * W;
    int KK = Ci * k * k;
    int plain = k == 1 && stride == 1 && pad == 0;
    float *col = work, *owned = NULL;
    if (!plain && !col) {
        col = owned = malloc(sizeof(float) * (size_t)KK * (size_t)HWo);
        if (!col) {
            conv2d_forward_direct(out, inp, weight, bias, B, Ci, H, W, Co, k, stride, pad);
            return;
        }
    }
    for (int b = 0; b < B; b++) {
        float *ob = out + (long)b * Co * HWo;
        const float *xb = inp + (long)b * Ci * HW;
        float beta = 0.0f;
        if (bias) {
#pragma omp parallel for schedule(static) if ((long)Co * HWo >= 32768L)
            for (int co = 0; co < Co; co++)
                for (long i = 0; i < HWo; i++) ob[co * HWo + i] = bias[co];
            beta = 1.0f;
        }
        const float *src = xb;
        if (!plain) {
            im2col(col, xb, Ci, H, W, k, stride, pad, Ho, Wo);
            src = col;
        }
        /* out_b [Co, HoWo] = weight [Co, Ci*k*k] @ col [Ci*k*k, HoWo] */
        gemm(0, 0, Co, (int)HWo, KK, 1.0f, weight, KK, src, (int)HWo, beta, ob, (int)HWo);
    }
    free(owned);
}

/* dinp [B,Ci,H,W], dweight [Co,Ci,k,k], dbias [Co] accumulate (each may be NULL);
 * dout [B,Co,Ho,Wo]. */
void conv2d_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                     const float *inp, const float *weight, int B, int Ci, int H, int W,
                     int Co, int k, int stride, int pad) {
    conv2d_backward_work(dinp, dweight, dbias, dout, inp, weight, B, Ci, H, W, Co, k, stride, pad,
                         NULL);
}

void conv2d_backward_work(float *dinp, float *dweight, float *dbias, const float *dout,
                          const float *inp, const float *weight, int B, int Ci, int H, int W,
                          int Co, int k, int stride, int pad, float *work) {
    int Ho = conv_out_size(H, k, stride, pad), Wo = conv_out_size(W, k, stride, pad);
    long HWo = (long)Ho * Wo, HW = (long)H * W;
    int KK = Ci * k * k;
    int plain = k == 1 && stride == 1 && pad == 0;
    float *col = NULL, *owned = NULL;
    if (!plain && (dinp || dweight) && work) col = work;
    if (!plain && (dinp || dweight) && !work) {
        col = owned = malloc(sizeof(float) * (size_t)KK * (size_t)HWo);
        if (!col) {
            conv2d_backward_direct(dinp, dweight, dbias, dout, inp, weight, B, Ci, H, W, Co, k,
                                   stride, pad);
            return;
        }
    }
    for (int b = 0; b < B; b++) {
        const float *gb = dout + (long)b * Co * HWo;
        const float *xb = inp + (long)b * Ci * HW;
        if (dbias) {
#pragma omp parallel for schedule(static) if ((long)Co * HWo >= 32768L)
            for (int co = 0; co < Co; co++) {
                double s = 0.0;
                for (long i = 0; i < HWo; i++) s += gb[co * HWo + i];
                dbias[co] += (float)s;
            }
        }
        if (dweight) {
            const float *src = xb;
            if (!plain) {
                im2col(col, xb, Ci, H, W, k, stride, pad, Ho, Wo);
                src = col;
            }
            /* dweight [Co, KK] += dout_b [Co, HoWo] @ col^T */
            gemm(0, 1, Co, KK, (int)HWo, 1.0f, gb, (int)HWo, src, (int)HWo, 1.0f, dweight, KK);
        }
        if (dinp) {
            float *db = dinp + (long)b * Ci * HW;
            if (plain) {
                gemm(1, 0, Ci, (int)HWo, Co, 1.0f, weight, KK, gb, (int)HWo, 1.0f, db, (int)HWo);
            } else {
                /* dcol [KK, HoWo] = weight^T @ dout_b, reusing the im2col buffer. */
                gemm(1, 0, KK, (int)HWo, Co, 1.0f, weight, KK, gb, (int)HWo, 0.0f, col,
                     (int)HWo);
                col2im_add(db, col, Ci, H, W, k, stride, pad, Ho, Wo);
            }
        }
    }
    free(owned);
}

/* Direct convolution, no scratch: the fallback when the im2col buffer cannot
 * be had. Same contract as conv2d_forward. */
void conv2d_forward_direct(float *out, const float *inp, const float *weight, const float *bias,
                           int B, int Ci, int H, int W, int Co, int k, int stride, int pad) {
    int Ho = conv_out_size(H, k, stride, pad), Wo = conv_out_size(W, k, stride, pad);
    for (int b = 0; b < B; b++)
        for (int co = 0; co < Co; co++)
            for (int oy = 0; oy < Ho; oy++)
                for (int ox = 0; ox < Wo; ox++) {
                    float s = bias ? bias[co] : 0.0f;
                    for (int ci = 0; ci < Ci; ci++)
                        for (int ky = 0; ky < k; ky++) {
                            int iy = oy * stride - pad + ky;
                            if (iy < 0 || iy >= H) continue;
                            for (int kx = 0; kx < k; kx++) {
                                int ix = ox * stride - pad + kx;
                                if (ix < 0 || ix >= W) continue;
                                s += weight[((long)(co * Ci + ci) * k + ky) * k + kx] *
                                     inp[(((long)b * Ci + ci) * H + iy) * W + ix];
                            }
                        }
                    out[(((long)b * Co + co) * Ho + oy) * Wo + ox] = s;
                }
}

/* Same contract as conv2d_backward, no scratch. */
void conv2d_backward_direct(float *dinp, float *dweight, float *dbias, const float *dout,
                            const float *inp, const float *weight, int B, int Ci, int H, int W,
                            int Co, int k, int stride, int pad) {
    int Ho = conv_out_size(H, k, stride, pad), Wo = conv_out_size(W, k, stride, pad);
    for (int b = 0; b < B; b++)
        for (int co = 0; co < Co; co++)
            for (int oy = 0; oy < Ho; oy++)
                for (int ox = 0; ox < Wo; ox++) {
                    float g = dout[(((long)b * Co + co) * Ho + oy) * Wo + ox];
                    if (dbias) dbias[co] += g;
                    for (int ci = 0; ci < Ci; ci++)
                        for (int ky = 0; ky < k; ky++) {
                            int iy = oy * stride - pad + ky;
                            if (iy < 0 || iy >= H) continue;
                            for (int kx = 0; kx < k; kx++) {
                                int ix = ox * stride - pad + kx;
                                if (ix < 0 || ix >= W) continue;
                                long wi = ((long)(co * Ci + ci) * k + ky) * k + kx;
                                long xi = (((long)b * Ci + ci) * H + iy) * W + ix;
                                if (dweight) dweight[wi] += g * inp[xi];
                                if (dinp) dinp[xi] += g * weight[wi];
                            }
                        }
                }
}

/* ------------------------------------------------------------- BatchNorm */

/* Channel c's sum over B images of HW, in double, in a fixed order. */
static inline double bn_channel_sum(const float *inp, int B, int C, int HW, int c) {
    double m = 0.0;
    for (int b = 0; b < B; b++) {
        const float *x = inp + ((long)b * C + c) * HW;
        for (int i = 0; i < HW; i++) m += x[i];
    }
    return m;
}

/* Channel c's sum of squared deviations from its mean m. */
static inline double bn_channel_sqdev(const float *inp, double m, int B, int C, int HW, int c) {
    double ss = 0.0;
    for (int b = 0; b < B; b++) {
        const float *x = inp + ((long)b * C + c) * HW;
        for (int i = 0; i < HW; i++) {
            double d = x[i] - m;
            ss += d * d;
        }
    }
    return ss;
}

/* Channel c normalised with mean m and squared deviations ss over n
 * elements; its statistics and running statistics (each may be NULL). */
static inline void bn_channel_apply(float *out, float *mean, float *rstd, float *running_mean,
                                    float *running_var, const float *inp, const float *weight,
                                    const float *bias, double m, double ss, double n, int B, int C,
                                    int HW, float eps, float momentum, int c) {
    double var = ss / n;
    double s = 1.0 / sqrt(var + (double)eps);
    float w = weight ? weight[c] : 1.0f, bb = bias ? bias[c] : 0.0f;
    for (int b = 0; b < B; b++) {
        const float *x = inp + ((long)b * C + c) * HW;
        float *y = out + ((long)b * C + c) * HW;
        for (int i = 0; i < HW; i++) y[i] = (float)((x[i] - m) * s) * w + bb;
    }
    if (mean) mean[c] = (float)m;
    if (rstd) rstd[c] = (float)s;
    /* PyTorch refuses n == 1 in training; here the biased value stands
     * in rather than dividing by zero. */
    double unbiased = n > 1 ? ss / (n - 1) : var;
    if (running_mean)
        running_mean[c] = (float)((1.0 - momentum) * running_mean[c] + momentum * m);
    if (running_var)
        running_var[c] = (float)((1.0 - momentum) * running_var[c] + momentum * unbiased);
}

/* out, inp [B,C,HW]; mean, rstd [C] or NULL; running_mean, running_var [C] or NULL;
 * weight, bias [C] (NULL acts as 1 / 0). */
void batchnorm_forward_train(float *out, float *mean, float *rstd, float *running_mean,
                             float *running_var, const float *inp, const float *weight,
                             const float *bias, int B, int C, int HW, float eps, float momentum) {
    const double n = (double)B * HW;
#pragma omp parallel for schedule(static) if ((long)B * HW * C >= 32768L)
    for (int c = 0; c < C; c++) {
        const double m = bn_channel_sum(inp, B, C, HW, c) / n;
        const double ss = bn_channel_sqdev(inp, m, B, C, HW, c);
        bn_channel_apply(out, mean, rstd, running_mean, running_var, inp, weight, bias, m, ss, n, B,
                         C, HW, eps, momentum, c);
    }
}

void batchnorm_train_sums(double *sums, const float *inp, int B, int C, int HW) {
#pragma omp parallel for schedule(static) if ((long)B * HW * C >= 32768L)
    for (int c = 0; c < C; c++) sums[c] = bn_channel_sum(inp, B, C, HW, c);
}

void batchnorm_train_sqdev(double *sqdev, const double *sums, double n, const float *inp, int B,
                           int C, int HW) {
#pragma omp parallel for schedule(static) if ((long)B * HW * C >= 32768L)
    for (int c = 0; c < C; c++) sqdev[c] = bn_channel_sqdev(inp, sums[c] / n, B, C, HW, c);
}

void batchnorm_train_apply(float *out, float *mean, float *rstd, float *running_mean,
                           float *running_var, const double *sums, const double *sqdev, double n,
                           const float *inp, const float *weight, const float *bias, int B, int C,
                           int HW, float eps, float momentum) {
#pragma omp parallel for schedule(static) if ((long)B * HW * C >= 32768L)
    for (int c = 0; c < C; c++)
        bn_channel_apply(out, mean, rstd, running_mean, running_var, inp, weight, bias, sums[c] / n,
                         sqdev[c], n, B, C, HW, eps, momentum, c);
}

/* GELU's constants as gelu_backward (kernels.c) writes them */
#define GELU_INV_SQRT2 0.70710678118654752440f
#define GELU_INV_SQRT_2PI 0.39894228040143267794f

/* out, inp [B,C,HW]; running_mean, running_var [C]; weight, bias [C] (NULL acts as 1 / 0). */
void batchnorm_forward_eval(float *out, const float *inp, const float *running_mean,
                            const float *running_var, const float *weight, const float *bias,
                            int B, int C, int HW, float eps) {
#pragma omp parallel for schedule(static) if ((long)B * HW * C >= 32768L)
    for (int c = 0; c < C; c++) {
        float s = (float)(1.0 / sqrt((double)running_var[c] + (double)eps));
        float w = weight ? weight[c] : 1.0f, bb = bias ? bias[c] : 0.0f;
        float m = running_mean[c];
        for (int b = 0; b < B; b++) {
            const float *x = inp + ((long)b * C + c) * HW;
            float *y = out + ((long)b * C + c) * HW;
            for (int i = 0; i < HW; i++) y[i] = (x[i] - m) * s * w + bb;
        }
    }
}

/* Channel c's sums of the backward: sum(dout) and sum(dout * xhat) over B
 * images of HW, in double, in a fixed order. */
static inline void bn_channel_sums(double *sg_out, double *sgx_out, const float *dout,
                                   const float *inp, float m, float s, int B, int C, int HW,
                                   int c) {
    double sg = 0.0, sgx = 0.0;
    for (int b = 0; b < B; b++) {
        const float *x = inp + ((long)b * C + c) * HW, *g = dout + ((long)b * C + c) * HW;
        for (int i = 0; i < HW; i++) {
            sg += g[i];
            sgx += (double)g[i] * ((x[i] - m) * s);
        }
    }
    *sg_out = sg, *sgx_out = sgx;
}

/* Channel c's input gradient from the means of those sums. Batch statistics
 * depend on every input, so as in LayerNorm the gradient loses its mean and
 * its component along xhat. */
static inline void bn_channel_input(float *dinp, const float *dout, const float *inp, float m,
                                    float s, float w, float mg, float mgx, int B, int C, int HW,
                                    int c) {
    const float k = w * s;
    for (int b = 0; b < B; b++) {
        const float *x = inp + ((long)b * C + c) * HW, *g = dout + ((long)b * C + c) * HW;
        float *dx = dinp + ((long)b * C + c) * HW;
        for (int i = 0; i < HW; i++) dx[i] += k * (g[i] - mg - (x[i] - m) * s * mgx);
    }
}

/* dinp [B,C,HW], dweight, dbias [C] accumulate; mean, rstd [C] from the training forward. */
void batchnorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                        const float *inp, const float *weight, const float *mean,
                        const float *rstd, int B, int C, int HW) {
    const double n = (double)B * HW;
#pragma omp parallel for schedule(static) if ((long)B * HW * C >= 32768L)
    for (int c = 0; c < C; c++) {
        double sg, sgx;
        bn_channel_sums(&sg, &sgx, dout, inp, mean[c], rstd[c], B, C, HW, c);
        if (dweight) dweight[c] += (float)sgx;
        if (dbias) dbias[c] += (float)sg;
        if (dinp)
            bn_channel_input(dinp, dout, inp, mean[c], rstd[c], weight ? weight[c] : 1.0f,
                             (float)(sg / n), (float)(sgx / n), B, C, HW, c);
    }
}

/* Per channel: pass 1 forms dgelu (as gelu_backward: 0 + dout * (cdf + x
 * pdf)) and the two sums in bn_channel_sums' order; pass 2 writes
 * bn_channel_input's value (0 + k * (...)) as it would land in a zeroed dinp. */
void gelu_batchnorm_backward(float *dinp, float *dweight, float *dbias, float *dgelu,
                             const float *dout, const float *gelu_in, const float *inp,
                             const float *weight, const float *mean, const float *rstd, int B,
                             int C, int HW) {
    const double n = (double)B * HW;
#pragma omp parallel for schedule(static) if ((long)B * HW * C >= 32768L)
    for (int c = 0; c < C; c++) {
        const float m = mean[c], s = rstd[c];
        double sg = 0.0, sgx = 0.0;
        for (int b = 0; b < B; b++) {
            const long off = ((long)b * C + c) * HW;
            const float *x = inp + off, *u = gelu_in + off, *go = dout + off;
            float *g = dgelu + off;
            for (int i = 0; i < HW; i++) {
                const float cdf = 0.5f * (1.0f + erff(u[i] * GELU_INV_SQRT2));
                const float pdf = GELU_INV_SQRT_2PI * expf(-0.5f * u[i] * u[i]);
                g[i] = 0.0f + go[i] * (cdf + u[i] * pdf);
                sg += g[i];
                sgx += (double)g[i] * ((x[i] - m) * s);
            }
        }
        if (dweight) dweight[c] += (float)sgx;
        if (dbias) dbias[c] += (float)sg;
        if (!dinp) continue;
        const float k = (weight ? weight[c] : 1.0f) * s;
        const float mg = (float)(sg / n), mgx = (float)(sgx / n);
        for (int b = 0; b < B; b++) {
            const long off = ((long)b * C + c) * HW;
            const float *x = inp + off, *g = dgelu + off;
            float *dx = dinp + off;
            for (int i = 0; i < HW; i++) dx[i] = 0.0f + k * (g[i] - mg - (x[i] - m) * s * mgx);
        }
    }
}

void batchnorm_backward_sums(double *sums, float *dweight, float *dbias, const float *dout,
                             const float *inp, const float *mean, const float *rstd, int B, int C,
                             int HW) {
#pragma omp parallel for schedule(static) if ((long)B * HW * C >= 32768L)
    for (int c = 0; c < C; c++) {
        bn_channel_sums(&sums[c], &sums[C + c], dout, inp, mean[c], rstd[c], B, C, HW, c);
        if (dweight) dweight[c] += (float)sums[C + c];
        if (dbias) dbias[c] += (float)sums[c];
    }
}

void batchnorm_backward_input(float *dinp, const double *sums, double n, const float *dout,
                              const float *inp, const float *weight, const float *mean,
                              const float *rstd, int B, int C, int HW) {
#pragma omp parallel for schedule(static) if ((long)B * HW * C >= 32768L)
    for (int c = 0; c < C; c++)
        bn_channel_input(dinp, dout, inp, mean[c], rstd[c], weight ? weight[c] : 1.0f,
                         (float)(sums[c] / n), (float)(sums[C + c] / n), B, C, HW, c);
}
