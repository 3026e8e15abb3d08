/* Double-precision reference kernels: the judges of kernels.h.
 *
 * Each ref_* function has the same arguments, shapes and conventions as its
 * float namesake in kernels.h (forwards overwrite, backwards accumulate, NULL
 * gradient pointers are skipped), only in double and written as the plainest
 * possible loops: no BLAS, no fused formulas where a Jacobian is clearer.
 * The normalisation and softmax backwards multiply by the explicit Jacobian
 * row by row, so they share no algebra with the fast kernels they judge.
 * Speed is irrelevant; use small shapes.
 *
 * The second half declares the float no-scratch fallbacks that the fast
 * kernels switch to when malloc fails; they are exposed only so the tests can
 * exercise paths that are otherwise unreachable.
 */
#ifndef RAMC_KERNELS_REF_H
#define RAMC_KERNELS_REF_H

#include <stdint.h>

/* C[M,N] = alpha * op(A) @ op(B) + beta * C, as gemm. */
void ref_gemm(int trans_a, int trans_b, int M, int N, int K, double alpha, const double *A,
              int lda, const double *B, int ldb, double beta, double *C, int ldc);

/* out [rows,out_dim], inp [rows,in_dim], weight [out_dim,in_dim], bias [out_dim] or NULL. */
void ref_matmul_forward(double *out, const double *inp, const double *weight,
                        const double *bias, int rows, int in_dim, int out_dim);
void ref_matmul_backward(double *dinp, double *dweight, double *dbias, const double *dout,
                         const double *inp, const double *weight, int rows, int in_dim,
                         int out_dim);

/* out, inp [rows,dim]; weight, bias [dim]; mean, rstd [rows] or NULL. */
void ref_layernorm_forward(double *out, double *mean, double *rstd, const double *inp,
                           const double *weight, const double *bias, int rows, int dim,
                           double eps);
void ref_layernorm_backward(double *dinp, double *dweight, double *dbias, const double *dout,
                            const double *inp, const double *weight, const double *mean,
                            const double *rstd, int rows, int dim);

/* out [B,Tq,C]; probs [B,n_heads,Tq,Tk] or NULL; q, k, v strided as attention_forward. */
void ref_attention_forward(double *out, double *probs, const double *q, const double *k,
                           const double *v, long batch_stride, long row_stride, int B, int Tq,
                           int Tk, int C, int n_heads, int causal);
/* probs may be NULL (recomputed). dq, dk, dv may alias. */
void ref_attention_backward(double *dq, double *dk, double *dv, const double *dout,
                            const double *probs, const double *q, const double *k,
                            const double *v, long batch_stride, long row_stride, int B, int Tq,
                            int Tk, int C, int n_heads, int causal);

/* x rounded to the nearest bf16 (ties to even), as a float. */
float ref_bf16(float x);
/* attention_fused_forward_bf16's arithmetic, plainly: out [B,Tq,C] from float
 * q, k, v (strided as attention_forward) with the same operands rounded to
 * bf16 as the kernel rounds them (scale * q, k, v, and each softmax weight
 * e^(s - running max) over blocks of 64 keys, the kernel's key tiles), and
 * everything else in double. */
void ref_attention_forward_bf16(double *out, const float *q, const float *k, const float *v,
                                long batch_stride, long row_stride, int B, int Tq, int Tk, int C,
                                int n_heads, int causal);

/* out, inp [n]. */
void ref_quickgelu_forward(double *out, const double *inp, long n);
void ref_quickgelu_backward(double *dinp, const double *dout, const double *inp, long n);
void ref_gelu_forward(double *out, const double *inp, long n);
void ref_gelu_backward(double *dinp, const double *dout, const double *inp, long n);
void ref_sigmoid_forward(double *out, const double *inp, long n);
/* out is the saved forward output. */
void ref_sigmoid_backward(double *dinp, const double *dout, const double *out, long n);

/* out, inp [rows,dim]. */
void ref_softmax_forward(double *out, const double *inp, int rows, int dim, double scale);
void ref_softmax_backward(double *dinp, const double *dout, const double *out, int rows,
                          int dim, double scale);

/* out [B,Co,Ho,Wo], inp [B,Ci,H,W], weight [Co,Ci,k,k], bias [Co] or NULL. */
void ref_conv2d_forward(double *out, const double *inp, const double *weight,
                        const double *bias, int B, int Ci, int H, int W, int Co, int k,
                        int stride, int pad);
void ref_conv2d_backward(double *dinp, double *dweight, double *dbias, const double *dout,
                         const double *inp, const double *weight, int B, int Ci, int H, int W,
                         int Co, int k, int stride, int pad);

/* out, inp [B,C,HW]; mean, rstd, running_* , weight, bias [C]. */
void ref_batchnorm_forward_train(double *out, double *mean, double *rstd, double *running_mean,
                                 double *running_var, const double *inp, const double *weight,
                                 const double *bias, int B, int C, int HW, double eps,
                                 double momentum);
void ref_batchnorm_forward_eval(double *out, const double *inp, const double *running_mean,
                                const double *running_var, const double *weight,
                                const double *bias, int B, int C, int HW, double eps);
void ref_batchnorm_backward(double *dinp, double *dweight, double *dbias, const double *dout,
                            const double *inp, const double *weight, const double *mean,
                            const double *rstd, int B, int C, int HW);

/* out, inp [rows,dim]; norms [rows] or NULL. */
void ref_l2norm_forward(double *out, double *norms, const double *inp, int rows, int dim,
                        double eps);
void ref_l2norm_backward(double *dinp, const double *dout, const double *inp,
                         const double *norms, int rows, int dim, double eps);

/* out [n,dim]; table, dtable [vocab,dim]; ids [n]. */
void ref_embedding_forward(double *out, const int32_t *ids, const double *table, int n,
                           int dim);
void ref_embedding_backward(double *dtable, const double *dout, const int32_t *ids, int n,
                            int dim);

/* ------------------------------------ float fallbacks (no scratch memory) */

/* As attention_forward with probs == NULL: online softmax, one query row at a time. */
void attention_forward_rowwise(float *out, const float *q, const float *k, const float *v,
                               long batch_stride, long row_stride, int B, int Tq, int Tk, int C,
                               int n_heads, int causal);
/* As attention_backward; probs may be NULL. */
void attention_backward_rowwise(float *dq, float *dk, float *dv, const float *dout,
                                const float *probs, const float *q, const float *k,
                                const float *v, long batch_stride, long row_stride, int B, int Tq,
                                int Tk, int C, int n_heads, int causal);
/* As conv2d_forward / conv2d_backward, by direct loops. */
void conv2d_forward_direct(float *out, const float *inp, const float *weight, const float *bias,
                           int B, int Ci, int H, int W, int Co, int k, int stride, int pad);
void conv2d_backward_direct(float *dinp, float *dweight, float *dbias, const float *dout,
                            const float *inp, const float *weight, int B, int Ci, int H, int W,
                            int Co, int k, int stride, int pad);

#endif
