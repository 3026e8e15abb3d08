/* TSS — the text-guided, convolutional part of the Ladder Local Adapter
 * (the official LocalAdapter, spec §3.4), forward and backward.
 *
 * Shapes: B images, N = g*g patches, N1 = N + 1 tokens, W vision width,
 * H hidden width (= CLIP embed dim), C candidate labels, k gate kernel.
 * "Channel-first" tensors are [B, H, N] (conv/BatchNorm layout), "token-first"
 * ones [B, N, H] (attention layout).
 */
#ifndef RAMC_RAM_TSS_H
#define RAMC_RAM_TSS_H

#include "core/arena.h"
#include "ram/ram.h"

/* Everything the forward computes that the backward (or the golden check)
 * needs. Two streams: [0] the 1x1 conv, [1] the 3x3 conv. */
typedef struct {
    int B, N, g, W, H, C, k;
    float *X;                 /* [B, W, N]  patch rows of the input, channel-first (training only) */
    float *conv[2];           /* [B, H, N]  conv outputs (BatchNorm input) */
    float *bn_mean[2];        /* [H]        batch statistics (training only) */
    float *bn_rstd[2];        /* [H] */
    float *bn_out[2];         /* [B, H, N]  GELU input */
    float *s[2];              /* [B, H, N]  GELU output (golden s1, s2) */
    float *f[2];              /* [B, N, H]  s token-first: query input and residual */
    float *q[2];              /* [B, N, H]  LN_q(f) */
    float *q_mean[2];         /* [B*N] */
    float *q_rstd[2];         /* [B*N] */
    const float *text;        /* [C, H]     the forward's text features (caller keeps them) */
    float *kv;                /* [C, H]     LN_kv(text features): keys = values */
    float *kv_mean, *kv_rstd; /* [C] */
    float *attn[2];           /* [B, N, C]  softmax over labels */
    float *cattn[2];          /* [B, N, H]  attention output (golden cattn1, cattn2) */
    float *G[2];              /* [B, H, N]  s + cattn, channel-first */
    float *pool;              /* [B, 2, N]  [mean over 2H channels, max over 2H channels] */
    int *pool_arg;            /* [B, N]     channel of the max, 0..2H-1 */
    float *gate_logits;       /* [B, 2, N] */
    float *gate;              /* [B, 2, N]  sigmoid(gate_logits) */
    float *fused;             /* [B, H, N]  G0*gate0 + G1*gate1 */
    float *out;               /* [B, N1, W] adapter output; row 0 = the input's class token */
    float *tok;               /* [B, N, H]  conv output token-major (scratch) */
    float *wk;                /* [H, 3, 3, W] 3x3 weight in im2col order (scratch) */
    float *col;               /* [chunk*N, 9W] im2col of a chunk of images (scratch) */
    float *gate_col;          /* the gate convolution's im2col (scratch) */
    ramc_arena *arena;        /* where storage came from (NULL: the heap) */
    double *bn_sums;          /* [2H + 1]   BatchNorm sums over a process group (scratch) */
    ramc_status group_status; /* a failed exchange of the process group in tss_forward */
    int bf16;                 /* set by the caller (inference only): the convolutions' and the
                               * label attention's products in bf16 (gemm_bf16); the rest, and
                               * every backward, stays float32 */
    float *storage;
    int *int_storage;
} tss_acts;

/* A record for B images on a g x g grid, from arena (NULL: the heap),
 * zeroed; tss_acts_bytes of the arena. */
ramc_status tss_acts_alloc(tss_acts *a, ramc_arena *arena, int B, int g, int W, int H, int C,
                           int k);
size_t tss_acts_bytes(int B, int g, int W, int H, int C, int k);
void tss_acts_free(tss_acts *a);

/* w [H, W, k, k] -> wk [H, k, k, W], the order the k x k convolution's
 * im2col reads (ram_adapter_freeze keeps one per block). */
void tss_reorder_conv_weight(float *wk, const float *w, int H, int W, int k);

/* x [B, N1, W] main stream after the block (prompt rows removed);
 * text [C, H] text features of the candidate labels, NOT normalised.
 * train: BatchNorm with batch statistics (and running-stat update), else
 * running statistics. Output in acts->out. */
void tss_forward(const ram_tss *w, tss_acts *a, const float *x, const float *text, int train);

/* Gradients: dout [B, N1, W] (row 0 ignored: it is the class token copy and
 * flows to the main stream by the caller); accumulates into dx [B, N1, W]
 * (patch rows), dtext [C, H] and the trainable tensors' grads in w. Either
 * dx or dtext may be NULL; fails only on memory. Uses the training-form BatchNorm backward when
 * train was set in the forward, else treats BN as a fixed affine map. */
ramc_status tss_backward(const ram_tss *w, const tss_acts *a, const float *dout, float *dx,
                         float *dtext, int train);

#endif
