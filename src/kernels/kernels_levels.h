/* The kernels compiled once per instruction-set level (kernels.h:
 * kernels_isa). kernels.c and attention_fused.c are built three times, with
 * KERNELS_VARIANT set to generic, avx2 and avx512 and the matching -m flags
 * (CMakeLists.txt), and define each kernel below as <name>_<variant>; dispatch.c defines <name>
 * itself, which calls the variant of the current level.
 *
 * X(name, (parameters), (arguments)) for each; all return void. The list is
 * the one place the signatures are repeated: kernels.c declares its variants
 * from it and dispatch.c its wrappers, so the compiler checks both against
 * kernels.h. */
#ifndef RAMC_KERNELS_LEVELS_H
#define RAMC_KERNELS_LEVELS_H

#include "kernels/kernels.h"

#define KERNELS_PER_LEVEL(X)                                                                    \
    X(matmul_forward,                                                                           \
      (float *out, const float *inp, const float *weight, const float *bias, int rows,          \
       int in_dim, int out_dim),                                                                \
      (out, inp, weight, bias, rows, in_dim, out_dim))                                          \
    X(matmul_forward_ex,                                                                        \
      (float *out, const float *inp, const float *weight, const float *bias, int rows,          \
       int in_dim, int out_dim, matmul_epilogue ep),                                            \
      (out, inp, weight, bias, rows, in_dim, out_dim, ep))                                      \
    X(matmul_backward,                                                                          \
      (float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,          \
       const float *weight, int rows, int in_dim, int out_dim),                                 \
      (dinp, dweight, dbias, dout, inp, weight, rows, in_dim, out_dim))                         \
    X(layernorm_forward,                                                                        \
      (float *out, float *mean, float *rstd, const float *inp, const float *weight,             \
       const float *bias, int rows, int dim, float eps),                                        \
      (out, mean, rstd, inp, weight, bias, rows, dim, eps))                                     \
    X(layernorm_backward,                                                                       \
      (float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,          \
       const float *weight, const float *mean, const float *rstd, int rows, int dim),           \
      (dinp, dweight, dbias, dout, inp, weight, mean, rstd, rows, dim))                         \
    X(layernorm_backward_residual,                                                              \
      (float *dinp, const float *dres, const float *dout, const float *inp,                     \
       const float *weight, const float *mean, const float *rstd, int rows, int dim),           \
      (dinp, dres, dout, inp, weight, mean, rstd, rows, dim))                                   \
    X(float_to_bf16, (uint16_t *dst, const float *src, long n), (dst, src, n))                  \
    X(quickgelu_forward, (float *out, const float *inp, long n), (out, inp, n))                 \
    X(quickgelu_backward_inplace, (float *d, const float *inp, long n), (d, inp, n))            \
    X(quickgelu_backward, (float *dinp, const float *dout, const float *inp, long n),           \
      (dinp, dout, inp, n))                                                                     \
    X(gelu_forward, (float *out, const float *inp, long n), (out, inp, n))                      \
    X(gelu_backward, (float *dinp, const float *dout, const float *inp, long n),                \
      (dinp, dout, inp, n))                                                                     \
    X(sigmoid_forward, (float *out, const float *inp, long n), (out, inp, n))                   \
    X(sigmoid_backward, (float *dinp, const float *dout, const float *out, long n),             \
      (dinp, dout, out, n))                                                                     \
    X(softmax_forward, (float *out, const float *inp, int rows, int dim, float scale),          \
      (out, inp, rows, dim, scale))                                                             \
    X(softmax_forward_row, (float *y, const float *x, int n, float scale), (y, x, n, scale))    \
    X(softmax_backward,                                                                         \
      (float *dinp, const float *dout, const float *out, int rows, int dim, float scale),      \
      (dinp, dout, out, rows, dim, scale))                                                      \
    X(l2norm_forward,                                                                           \
      (float *out, float *norms, const float *inp, int rows, int dim, float eps),              \
      (out, norms, inp, rows, dim, eps))                                                        \
    X(l2norm_backward,                                                                          \
      (float *dinp, const float *dout, const float *inp, const float *norms, int rows,          \
       int dim, float eps),                                                                     \
      (dinp, dout, inp, norms, rows, dim, eps))                                                 \
    X(embedding_forward, (float *out, const int32_t *ids, const float *table, int n, int dim), \
      (out, ids, table, n, dim))                                                                \
    X(embedding_backward,                                                                       \
      (float *dtable, const float *dout, const int32_t *ids, int n, int dim),                   \
      (dtable, dout, ids, n, dim))                                                              \
    X(attention_fused_forward,                                                                  \
      (float *out, float *lse, const float *q, const float *k, const float *v,                  \
       long batch_stride, long row_stride, int B, int Tq, int Tk, int C, int n_heads,           \
       int causal),                                                                             \
      (out, lse, q, k, v, batch_stride, row_stride, B, Tq, Tk, C, n_heads, causal))             \
    X(attention_fused_backward,                                                                 \
      (float *dq, float *dk, float *dv, const float *dout, const float *out, const float *lse,  \
       const float *q, const float *k, const float *v, long batch_stride, long row_stride,      \
       int B, int Tq, int Tk, int C, int n_heads, int causal),                                  \
      (dq, dk, dv, dout, out, lse, q, k, v, batch_stride, row_stride, B, Tq, Tk, C, n_heads,    \
       causal))

#define KERNELS_CAT2_(a, b) a##_##b
#define KERNELS_CAT_(a, b) KERNELS_CAT2_(a, b)

#endif
