/* Numerical kernels: one forward and one backward per layer, in float32.
 *
 * Conventions (as llm.c):
 *  - every tensor is a plain row-major float array; its shape is written in
 *    the comment beside the argument;
 *  - forward functions overwrite their outputs;
 *  - backward functions ACCUMULATE (+=) into every gradient buffer they are
 *    given, so shared inputs (SAA uses v as q, k and v) just pass the same
 *    buffer several times; a NULL gradient pointer means "not needed";
 *  - nothing allocates except where noted, nothing fails: shapes are the
 *    caller's responsibility (checked when the model is loaded).
 *
 * kernels_ref.h holds a plain double-precision reference of each kernel; the
 * tests check every backward against finite differences of the reference
 * and every fast kernel against the reference.
 */
#ifndef RAMC_KERNELS_H
#define RAMC_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------- Threading */

/* Threads for every kernel (OpenMP, and the GEMM backend's); n < 1 is ignored.
 * Without a call, the OpenMP default (OMP_NUM_THREADS, else all cores). */
void kernels_set_num_threads(int n);
int kernels_get_num_threads(void);
/* One library call's thread count: kernels_threads_begin(n) sets the calling
 * thread's kernel threads to n (n < 1: leaves them) and returns what
 * kernels_threads_end restores, so the caller's own OpenMP setting survives. */
int kernels_threads_begin(int n);
void kernels_threads_end(int saved);
/* The backends' one-time set-up (thread-safe, idempotent); gemm() and the
 * thread setters call it, direct BLAS callers call it first. */
void kernels_init(void);
/* "onednn" or "openblas": what gemm() calls (the build's RAMC_GEMM). */
const char *kernels_gemm_backend(void);
/* 1 when gemm() may be called from inside an OpenMP parallel region (it then
 * runs on the calling thread alone), 0 when the backend threads on its own. */
int kernels_gemm_nests(void);

/* Packed linear layers for frozen weights (gemm_packed.c). A registered
 * range of memory holds weights that never change (the loaded CLIP towers):
 * matmul_forward / matmul_forward_ex / matmul_backward on a weight inside it
 * run through oneDNN matmul primitives with the weight reordered once into
 * oneDNN's layout, the bias and the epilogue fused. With bf16 set, the
 * range's products (forward, and the input gradient of a backward) round
 * their operands to bf16 (AVX512-BF16 or AMX) and accumulate in float32.
 * Thawing drops the range and its packed copies: call it before the memory
 * is freed or changed. Without oneDNN these are no-ops. */
void kernels_freeze_weights(const void *base, size_t bytes, int bf16, int release);
void kernels_thaw_weights(const void *base);
/* With release (float32 ranges): a packed copy REPLACES its stored matrix,
 * whose pages are given back and made inaccessible until something needs
 * them (sgemm fallback, backward, thaw), which rebuilds them exactly. So a
 * frozen model's linear weights must only be read through matmul_* or after
 * a thaw. kernels_forget_weights drops a range without rebuilding: for
 * memory about to be freed. */
void kernels_forget_weights(const void *base);
/* Thaw / forget every range whose base lies in [base, base + bytes): for an
 * owner that froze its storage in several ranges (clip_freeze_for_training). */
void kernels_thaw_span(const void *base, size_t bytes);
void kernels_forget_span(const void *base, size_t bytes);
/* Bytes of stored matrices currently replaced by their packed copies. */
size_t kernels_released_bytes(void);
/* 1 when packing can run (oneDNN present). */
int kernels_packed_available(void);
/* 1 when w lies in a range frozen with bf16 set: the bf16 mode of the model
 * that owns it, which its other layers follow (attention, TSS). */
int kernels_weights_bf16(const void *w);
/* Products run on packed weights so far (for tests and diagnostics). */
long kernels_packed_count(void);

/* ------------------------------------------------- Instruction-set levels */

/* ramc's own vectorised loops (kernels.c: linear bias and epilogue,
 * LayerNorm, activations, softmax, L2 norm, embedding; attention's softmax
 * rows) are compiled once per level and chosen at run time, so one portable
 * binary (baseline x86-64) runs the AVX2 or AVX-512 code where the CPU has it.
 * The matrix products choose their own code at run time (oneDNN, OpenBLAS).
 * Floating-point contraction is off in every variant, so all levels give
 * bit-identical results (tests/test_kernels.c checks it); the fused
 * attention (attention_fused.c, also per level) uses fused multiply-adds at
 * every level (fmaf in its plain C), with the same result
 * (tests/test_attention.c checks it). */
typedef enum {
    KERNELS_ISA_GENERIC = 0, /* baseline x86-64 (SSE2), the reference path */
    KERNELS_ISA_AVX2 = 1,    /* AVX2 + FMA + F16C (x86-64-v3's vector part) */
    KERNELS_ISA_AVX512 = 2   /* AVX-512 F/BW/DQ/VL on top of the above */
} kernels_isa;
#define KERNELS_ISA_COUNT 3

/* The best level this CPU (and OS) supports. */
kernels_isa kernels_isa_best(void);
/* The level the kernels use now: kernels_isa_best() unless set. */
kernels_isa kernels_isa_get(void);
/* Runs the kernels at `level` from now on, for every thread (tests and
 * benchmarks compare the levels). -1, nothing changed, if the CPU lacks it. */
int kernels_isa_set(kernels_isa level);
/* "generic", "avx2", "avx512"; NULL for an unknown level. */
const char *kernels_isa_name(kernels_isa level);
/* The level called `name` (as kernels_isa_name), or -1. */
int kernels_isa_parse(const char *name);
/* 1 when the CPU has AVX512-BF16 (oneDNN's bf16 products run natively). */
int kernels_cpu_has_bf16(void);
/* One line for reports: "avx512 (CPU: avx512, bf16)", "avx2 (CPU: avx512, bf16;
 * set)"... written into buf (size bytes); returns buf. */
const char *kernels_isa_describe(char *buf, size_t size);

/* "portable (...)" for the default build, "native (...)" for RAMC_NATIVE. */
const char *kernels_build_kind(void);

/* One softmax row: y [n] = softmax(scale * x [n]); y may be x (the row
 * kernel of softmax_forward, at the current level; attention calls it). */
void softmax_forward_row(float *y, const float *x, int n, float scale);

/* ------------------------------------------------------------------ GEMM */

/* C[M,N] = alpha * op(A) @ op(B) + beta * C, row-major, through oneDNN or OpenBLAS.
 * op(A) is [M,K]: A is [M,K] (lda >= K) or, with trans_a, [K,M] (lda >= M).
 * op(B) is [K,N]: B is [K,N] (ldb >= N) or, with trans_b, [N,K] (ldb >= K). */
void gemm(int trans_a, int trans_b, int M, int N, int K, float alpha,
          const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);

/* C [M,N] = op(A) @ op(B) (alpha 1, beta 0; shapes and strides as gemm) with
 * both operands rounded to bf16 and float32 accumulation, through a oneDNN
 * matmul (AMX or AVX512-BF16 where the CPU has them; oneDNN emulates or
 * declines elsewhere). For products whose operands change from call to call
 * (TSS in the bf16 mode): both are converted on every call. 0 when done, -1
 * when it could not run (no oneDNN, no memory): the caller runs gemm. */
int gemm_bf16(int trans_a, int trans_b, int M, int N, int K, const float *A, int lda,
              const float *B, int ldb, float *C, int ldc);
/* gemm_bf16 on operands already in bf16, contiguous: A [M, K], B [K, N] or
 * (trans_b) [N, K]; C [M, N] with row stride ldc. 0, or -1 as gemm_bf16. */
int gemm_bf16_raw(int trans_b, int M, int N, int K, const uint16_t *A, const uint16_t *B,
                  float *C, int ldc);
/* dst [n] = src [n] rounded to bf16, nearest even, NaN kept (the rounding of
 * every bf16 product here; bit for bit ref_bf16 at every level). */
void float_to_bf16(uint16_t *dst, const float *src, long n);

/* Linear layer as PyTorch: out = inp @ weight^T + bias.
 * out [rows, out_dim], inp [rows, in_dim], weight [out_dim, in_dim], bias [out_dim] or NULL. */
void matmul_forward(float *out, const float *inp, const float *weight, const float *bias,
                    int rows, int in_dim, int out_dim);
/* What follows the product in matmul_forward_ex. */
typedef enum {
    MATMUL_PLAIN = 0,      /* out  = inp @ weight^T + bias */
    MATMUL_QUICKGELU = 1,  /* out  = QuickGELU(inp @ weight^T + bias), CLIP's MLP */
    MATMUL_ACCUMULATE = 2  /* out += inp @ weight^T + bias, a residual add */
} matmul_epilogue;
/* out [rows, out_dim] as above; fused into the product for frozen weights. */
void matmul_forward_ex(float *out, const float *inp, const float *weight, const float *bias,
                       int rows, int in_dim, int out_dim, matmul_epilogue ep);
/* The packed paths themselves: 0 when done, -1 when the weight is not frozen
 * or oneDNN declined (the caller then runs the plain path). */
int matmul_forward_packed(float *out, const float *inp, const float *weight, const float *bias,
                          int rows, int in_dim, int out_dim, matmul_epilogue ep);
/* dinp [rows, in_dim] += dout [rows, out_dim] @ weight [out_dim, in_dim]. */
int matmul_backward_input_packed(float *dinp, const float *dout, const float *weight, int rows,
                                 int in_dim, int out_dim);

/* dinp [rows,in_dim], dweight [out_dim,in_dim], dbias [out_dim]; each may be NULL. */
void matmul_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                     const float *inp, const float *weight, int rows, int in_dim, int out_dim);

/* ------------------------------------------------------------- LayerNorm */

/* out, inp [rows, dim]; weight, bias [dim]; mean, rstd [rows] saved for backward (may be NULL).
 * Biased variance, as PyTorch. */
void layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                       const float *weight, const float *bias, int rows, int dim, float eps);
void layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                        const float *inp, const float *weight, const float *mean,
                        const float *rstd, int rows, int dim);
/* Fused with the residual around the LayerNorm: dinp [rows,dim] = dres +
 * layernorm_backward's input gradient of dout, bitwise memcpy(dinp, dres)
 * then layernorm_backward(dinp, NULL, NULL, ...), in one pass instead of two
 * (no weight or bias gradients: the frozen blocks of RAM training). dinp may
 * be dres. */
void layernorm_backward_residual(float *dinp, const float *dres, const float *dout,
                                 const float *inp, const float *weight, const float *mean,
                                 const float *rstd, int rows, int dim);

/* ------------------------------------------------------------- Attention */

/* Multi-head scaled dot-product attention over strided q, k, v.
 * Row t of batch item b of q starts at q + b*batch_stride + t*row_stride (same for k, v),
 * so q, k, v can point into one fused [.., 3C] projection (q = qkv, k = qkv + C,
 * v = qkv + 2C, row_stride = 3C) and SAA's value-value form passes q = k = v.
 * Head h uses columns [h*dh, (h+1)*dh) with dh = C / n_heads; scale = dh^-1/2.
 * causal: query t sees keys 0..t only (requires Tq == Tk).
 * out   [B, Tq, C] contiguous (heads concatenated)
 * probs [B, n_heads, Tq, Tk] softmax weights, saved for backward (may be NULL).
 * work: without probs, the score planes' scratch, attention_work_floats(B, Tq,
 * Tk, n_heads) floats under the same thread setting; NULL: malloc'ed here. */
void attention_forward(float *out, float *probs, const float *q, const float *k, const float *v,
                       long batch_stride, long row_stride, int B, int Tq, int Tk, int C,
                       int n_heads, int causal, float *work);
/* Floats of attention_forward's work: one [Tq, Tk] plane per thread it uses. */
size_t attention_work_floats(int B, int Tq, int Tk, int n_heads);
/* dq, dk, dv use the same strides as q, k, v (accumulated; may alias each other).
 * probs is what attention_forward saved. */
void attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *probs,
                        const float *q, const float *k, const float *v, long batch_stride,
                        long row_stride, int B, int Tq, int Tk, int C, int n_heads, int causal);

/* Fused ("flash") attention, attention_fused.c: the same contract as
 * attention_forward / attention_backward without the [Tq, Tk] probabilities
 * ever stored (tiles of queries against tiles of keys with a running max and
 * sum), no scratch from the caller. attention_forward and attention_backward
 * stay as the reference the tests hold these against, and for callers that
 * need the probabilities themselves.
 * out [B, Tq, C] contiguous; lse [B, n_heads, Tq]: each query row's
 * log-sum-exp of its scaled scores, what the backward needs (NULL: not kept).
 * Per-level kernel (kernels_levels.h): every level and any thread count give
 * the same bits. */
void attention_fused_forward(float *out, float *lse, const float *q, const float *k,
                             const float *v, long batch_stride, long row_stride, int B, int Tq,
                             int Tk, int C, int n_heads, int causal);
/* dq, dk, dv strided as q, k, v (accumulated; may alias each other; NULL: not
 * needed); dout and out [B, Tq, C] (out: the forward's output); lse [B, n_heads,
 * Tq] from attention_fused_forward. The probabilities are recomputed per tile. */
void attention_fused_backward(float *dq, float *dk, float *dv, const float *dout,
                              const float *out, const float *lse, const float *q, const float *k,
                              const float *v, long batch_stride, long row_stride, int B, int Tq,
                              int Tk, int C, int n_heads, int causal);

/* attention_fused_forward with its two products, Q K^T and P V, on bf16
 * operands (scaled queries, keys, values and the softmax weights rounded to
 * nearest even) accumulated in float32 (attention_bf16.c, AVX512-BF16's
 * vdpbf16ps); the softmax stays float32. The bf16 mode's inference
 * (ramc_clip_params.bf16); same arguments and outputs as
 * attention_fused_forward. On AMX tiles where the CPU has them (their bf16
 * rate is ~8x vdpbf16ps's), else vdpbf16ps. Where neither can run (no
 * AVX512-BF16, the kernels set below the AVX-512 level, head size above 128)
 * it IS attention_fused_forward, bit for bit: emulating bf16 would only be
 * slower. Allocates one head's keys and values in bf16 per thread per call
 * (~4 Tk dh bytes each); if that fails it runs the float32 kernel. */
void attention_fused_forward_bf16(float *out, float *lse, const float *q, const float *k,
                                  const float *v, long batch_stride, long row_stride, int B,
                                  int Tq, int Tk, int C, int n_heads, int causal);
/* Which kernel attention_fused_forward_bf16 runs. */
typedef enum {
    KERNELS_BF16_NONE = 0,   /* the float32 kernel (no AVX512-BF16, or a lower level set) */
    KERNELS_BF16_DPBF16 = 1, /* AVX512-BF16's vdpbf16ps (e.g. Zen 4/5) */
    KERNELS_BF16_AMX = 2     /* AMX tiles (Sapphire Rapids and later; Linux permission) */
} kernels_bf16_kind;
/* What it runs now: the build has it, the CPU has AVX512-BF16 (and AMX for
 * KERNELS_BF16_AMX), the kernels run at the AVX-512 level, and no lower cap. */
kernels_bf16_kind kernels_bf16_attention_kind(void);
/* Caps the kind from now on (default KERNELS_BF16_AMX: the best there is);
 * for tests and benchmarks, between calls, like kernels_isa_set. */
void kernels_bf16_attention_cap(kernels_bf16_kind cap);
/* "amx", "avx512_bf16", "float32". */
const char *kernels_bf16_kind_name(kernels_bf16_kind kind);
/* 1 when attention_fused_forward_bf16 runs a bf16 kernel now (kind != NONE). */
int kernels_bf16_attention_native(void);
/* 1 when the bf16 attention beats the float32 kernel on this shape, as
 * measured (build/bf16_kernels, docs/performance.md "bf16"): its per-head
 * packing and 32-key tile granularity only pay off on long non-causal rows
 * (the vision tower, 197 keys: 1.3x on AMX), not on the text tower's causal
 * ones (77 keys and fewer: 0.7x). The model asks this before choosing. */
int attention_bf16_pays(int Tk, int causal);
/* Overrides attention_bf16_pays for every shape from now on: 1 always, 0
 * never, -1 (the default) the measured rule. For measuring the deviation on
 * small models, whose rows are all short (the ramc command:
 * RAMC_BF16_ATTENTION=always|never|auto). */
void kernels_bf16_attention_force(int mode);

/* ------------------------------------------------------------ Activations */

/* QuickGELU x*sigmoid(1.702x), as CLIP's MLP. out, inp [n]. */
void quickgelu_forward(float *out, const float *inp, long n);
void quickgelu_backward(float *dinp, const float *dout, const float *inp, long n);
/* Fused for the block backward: d [n] (d(output) on entry) becomes d(input)
 * in place, bitwise quickgelu_backward into a zeroed buffer, without the
 * buffer. */
void quickgelu_backward_inplace(float *d, const float *inp, long n);

/* Exact GELU 0.5*x*(1+erf(x/sqrt 2)), as nn.GELU(). out, inp [n]. */
void gelu_forward(float *out, const float *inp, long n);
void gelu_backward(float *dinp, const float *dout, const float *inp, long n);

/* Sigmoid. out, inp [n]; backward uses the saved output. */
void sigmoid_forward(float *out, const float *inp, long n);
void sigmoid_backward(float *dinp, const float *dout, const float *out, long n);

/* ---------------------------------------------------------------- Softmax */

/* Softmax along the last axis. out, inp [rows, dim]; scale multiplies the input first. */
void softmax_forward(float *out, const float *inp, int rows, int dim, float scale);
/* dinp [rows, dim] += scale * out * (dout - sum(dout*out)). */
void softmax_backward(float *dinp, const float *dout, const float *out, int rows, int dim,
                      float scale);

/* ---------------------------------------------------------------- Conv2d */

/* 2-D convolution, NCHW, square kernel, zero padding, no dilation, groups 1.
 * out [B, Co, Ho, Wo] with Ho = (H + 2*pad - k)/stride + 1 (same for Wo);
 * inp [B, Ci, H, W]; weight [Co, Ci, k, k]; bias [Co] or NULL.
 * Covers the patch embedding (k = stride = P), 1x1, 3x3 and kxk with padding k/2.
 * work: the im2col scratch, conv2d_work_floats(...) floats; NULL: malloc'ed here. */
void conv2d_forward(float *out, const float *inp, const float *weight, const float *bias,
                    int B, int Ci, int H, int W, int Co, int k, int stride, int pad, float *work);
/* Floats of conv2d_forward's work (0 for a plain 1x1 convolution). */
size_t conv2d_work_floats(int Ci, int H, int W, int k, int stride, int pad);
void conv2d_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                     const float *inp, const float *weight, int B, int Ci, int H, int W,
                     int Co, int k, int stride, int pad);
/* conv2d_backward with the im2col scratch from the caller: work holds
 * conv2d_work_floats(...) floats (NULL: malloc'ed, as conv2d_backward). */
void conv2d_backward_work(float *dinp, float *dweight, float *dbias, const float *dout,
                          const float *inp, const float *weight, int B, int Ci, int H, int W,
                          int Co, int k, int stride, int pad, float *work);

/* ------------------------------------------------------------- BatchNorm */

/* BatchNorm2d over [B, C, HW] (statistics per channel over B*HW).
 * Training: normalises with the batch mean and biased variance, saves mean/rstd [C]
 * for backward, and updates running_mean/var with momentum using the UNBIASED
 * variance (as PyTorch). running_* may be NULL to skip the update. */
void batchnorm_forward_train(float *out, float *mean, float *rstd, float *running_mean,
                             float *running_var, const float *inp, const float *weight,
                             const float *bias, int B, int C, int HW, float eps, float momentum);
/* batchnorm_forward_train in three phases, for a batch split over processes
 * whose sums are added up between them (SyncBatchNorm): sums [C] out, each
 * channel's sum over this process's B images; sqdev [C] out, the squared
 * deviations from the mean sums / n (n: all processes' elements per
 * channel); then the normalisation and statistics as the one-process
 * kernel. Over one process the three give bitwise batchnorm_forward_train. */
void batchnorm_train_sums(double *sums, const float *inp, int B, int C, int HW);
void batchnorm_train_sqdev(double *sqdev, const double *sums, double n, const float *inp, int B,
                           int C, int HW);
void batchnorm_train_apply(float *out, float *mean, float *rstd, float *running_mean,
                           float *running_var, const double *sums, const double *sqdev, double n,
                           const float *inp, const float *weight, const float *bias, int B, int C,
                           int HW, float eps, float momentum);
/* Evaluation: running statistics. */
void batchnorm_forward_eval(float *out, const float *inp, const float *running_mean,
                            const float *running_var, const float *weight, const float *bias,
                            int B, int C, int HW, float eps);
/* Backward of the training form (batch statistics). */
void batchnorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                        const float *inp, const float *weight, const float *mean,
                        const float *rstd, int B, int C, int HW);
/* batchnorm_backward in two halves, for a batch split over processes whose
 * sums are added up between them (data-parallel training):
 * sums [2C] out: per channel sum(dout) and sum(dout * xhat) over this
 * process's B images, which dweight and dbias also accumulate;
 * then dinp from the sums over all n = (all images) * HW elements. Over one
 * process the two give bitwise batchnorm_backward. */
/* Fused GELU + BatchNorm backward, as TSS's conv -> BN -> GELU: dgelu [B,C,HW]
 * = dout * GELU'(gelu_in) (stored: the scratch of the second pass), its
 * channel sums in the same pass, then dinp [B,C,HW] written (not
 * accumulated) with the BatchNorm input gradient; dweight, dbias [C]
 * accumulate. Bitwise gelu_backward and batchnorm_backward into zeroed
 * buffers, with two passes over [B,C,HW] instead of four and no memsets.
 * dinp may be dout (each channel is read in full before it is written). */
void gelu_batchnorm_backward(float *dinp, float *dweight, float *dbias, float *dgelu,
                             const float *dout, const float *gelu_in, const float *inp,
                             const float *weight, const float *mean, const float *rstd, int B,
                             int C, int HW);
void batchnorm_backward_sums(double *sums, float *dweight, float *dbias, const float *dout,
                             const float *inp, const float *mean, const float *rstd, int B, int C,
                             int HW);
void batchnorm_backward_input(float *dinp, const double *sums, double n, const float *dout,
                              const float *inp, const float *weight, const float *mean,
                              const float *rstd, int B, int C, int HW);

/* -------------------------------------------------------------- L2 norm */

/* out = x / max(||x||_2, eps) per row, as F.normalize. out, inp [rows, dim];
 * norms [rows] saved for backward (may be NULL). */
void l2norm_forward(float *out, float *norms, const float *inp, int rows, int dim, float eps);
void l2norm_backward(float *dinp, const float *dout, const float *inp, const float *norms,
                     int rows, int dim, float eps);

/* ------------------------------------------------------------- Embedding */

/* out [n, dim] = table[ids[i]]; table [vocab, dim]. ids must be in range. */
void embedding_forward(float *out, const int32_t *ids, const float *table, int n, int dim);
/* dtable [vocab, dim] += dout rows at ids. */
void embedding_backward(float *dtable, const float *dout, const int32_t *ids, int n, int dim);

#endif
