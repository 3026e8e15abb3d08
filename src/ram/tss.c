/* TSS forward and backward (see tss.h and spec §3.4). */
#include "ram/tss.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/dist.h"
#include "kernels/kernels.h"

#define TSS_LN_EPS 1e-5f
#define TSS_BN_EPS 1e-5f
#define TSS_BN_MOMENTUM 0.1f

/* Images per im2col chunk of the token-major convolution: bounds its scratch
 * (chunk x N x k*k*W floats) while keeping each GEMM tall enough to run fast. */
#define CONV_CHUNK_IMAGES 4

/* out[b, c, r] = in[b, r, c]: in [B, R, Cc] -> out [B, Cc, R]. */
static void transpose_batched(float *out, const float *in, int B, int R, int Cc) {
#pragma omp parallel for collapse(2) schedule(static) if ((long)B * R * Cc >= 65536)
    for (int b = 0; b < B; b++)
        for (int c = 0; c < Cc; c++) {
            const float *ib = in + (size_t)b * R * Cc;
            float *ob = out + (size_t)b * R * Cc + (size_t)c * R;
            for (int r = 0; r < R; r++) ob[r] = ib[(size_t)r * Cc + c];
        }
}

/* C [M, N] = op(A) op(B), as gemm with alpha 1 and beta 0; with bf16 set,
 * the operands rounded to bf16 (gemm_bf16), or float32 where that cannot run. */
static void tss_gemm(int bf16, int ta, int tb, int M, int N, int K, const float *A, int lda,
                     const float *B, int ldb, float *C, int ldc) {
    if (bf16 && gemm_bf16(ta, tb, M, N, K, A, lda, B, ldb, C, ldc) == 0) return;
    gemm(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C, ldc);
}

/* w [H, W, k, k] -> wk [H, k, k, W]: the weight in the im2col order of
 * conv_from_tokens. */
void tss_reorder_conv_weight(float *wk, const float *w, int H, int W, int k) {
    const int KK = k * k * W;
#pragma omp parallel for schedule(static)
    for (int h = 0; h < H; h++)
        for (int ci = 0; ci < W; ci++)
            for (int q = 0; q < k * k; q++)
                wk[(size_t)h * KK + (size_t)q * W + ci] = w[((size_t)h * W + ci) * k * k + q];
}

/* The k x k convolution (stride 1, zero padding k/2, no bias) of the patch
 * grid, read straight from the token rows x [B, N1, W] into out [B, H, N]
 * channel-first: what conv2d_forward computes from the channel-first X, but
 * as one tall GEMM per chunk of images instead of a short one per image.
 * col [rows, k*k*W] holds the taps in (ky, kx, ci) order, so every tap is a
 * copy of a whole token row, and the weight [H, W, k, k] is reordered to
 * [H, k, k, W] (a->wk) to match, unless the caller has it so already
 * (wk_kept, an adapter frozen for inference: the reorder moves 14 MB per
 * block at ViT-B/16, as much memory traffic as a batch-1 image's product).
 * For k = 1 the token rows are the input as they are. */
static int conv_from_tokens_bf16(tss_acts *a, const float *x, const float *weight,
                                 const uint16_t *wb_kept, int k);

/* The k x k taps of images b0 .. b0 + nb - 1 into col [nb * N, k*k*W], in
 * (ky, kx, ci) order: row i (image b0 + i / N, patch (r, c) = i % N on the
 * g x g grid) holds, per tap, the whole patch row at (r + ky - p, c + kx - p),
 * zeros past the grid's edge. Elements of `elem` bytes (float, or bf16 in
 * the bf16 mode); patch row q of image b is src + (b * item + q) * W. */
static void im2col_tokens(void *col, const void *src, size_t elem, long item, int b0, int nb, int g,
                          int W, int k) {
    const int N = g * g, p = k / 2;
    const size_t row_bytes = (size_t)W * elem, KK = (size_t)k * k * W;
#pragma omp parallel for schedule(static)
    for (int i = 0; i < nb * N; i++) {
        const int b = b0 + i / N, t = i % N, r = t / g, c = t % g;
        char *row = (char *)col + (size_t)i * KK * elem;
        for (int ky = 0; ky < k; ky++)
            for (int kx = 0; kx < k; kx++) {
                char *dst = row + (size_t)(ky * k + kx) * row_bytes;
                const int y = r + ky - p, xx = c + kx - p;
                if (y < 0 || y >= g || xx < 0 || xx >= g)
                    memset(dst, 0, row_bytes);
                else
                    memcpy(dst, (const char *)src + ((size_t)b * item + (size_t)y * g + xx) * row_bytes,
                           row_bytes);
            }
    }
}


static void conv_from_tokens(tss_acts *a, float *out, const float *x, const float *weight,
                             const float *wk_kept, const uint16_t *wb_kept, int k) {
    const int B = a->B, N = a->N, g = a->g, W = a->W, H = a->H, N1 = N + 1;
    const int KK = k * k * W;
    if (a->bf16 && conv_from_tokens_bf16(a, x, weight, wb_kept, k) == 0) {
        transpose_batched(out, a->tok, B, N, H);
        return;
    }
    if (k == 1) {
        for (int b = 0; b < B; b++)
            matmul_forward(a->tok + (size_t)b * N * H, x + ((size_t)b * N1 + 1) * W, weight, NULL,
                           N, W, H);
    } else {
        const float *wk = wk_kept;
        if (!wk) {
            tss_reorder_conv_weight(a->wk, weight, H, W, k);
            wk = a->wk;
        }
        for (int b0 = 0; b0 < B; b0 += CONV_CHUNK_IMAGES) {
            const int nb = B - b0 < CONV_CHUNK_IMAGES ? B - b0 : CONV_CHUNK_IMAGES;
            /* patch rows start after each image's class row */
            im2col_tokens(a->col, x + W, sizeof(float), N1, b0, nb, g, W, k);
            matmul_forward(a->tok + (size_t)b0 * N * H, a->col, wk, NULL, nb * N, KK, H);
        }
    }
    transpose_batched(out, a->tok, B, N, H);
}

/* conv_from_tokens in bf16 (inference): the same products on operands
 * rounded to bf16, converted once each: the patch rows into xb [B*N, W]
 * (the training record's X, unused at inference, holds them), the weight
 * reordered into wb [H, k*k*W] (wk's space) unless the adapter keeps it so
 * (wb_kept, ram_adapter_freeze with bf16), the taps copied as bf16 into
 * col's space. k = 1 is one product over every image's patch rows. tok
 * [B, N, H] out, as conv_from_tokens before its transpose. 0, or -1 when
 * gemm_bf16_raw cannot run (tok may then be partly written). */
static int conv_from_tokens_bf16(tss_acts *a, const float *x, const float *weight,
                                 const uint16_t *wb_kept, int k) {
    const int B = a->B, N = a->N, g = a->g, W = a->W, H = a->H, N1 = N + 1;
    const int KK = k * k * W;
    uint16_t *xb = (uint16_t *)a->X, *col = (uint16_t *)a->col;
    const uint16_t *wb = wb_kept;
#pragma omp parallel for schedule(static)
    for (int i = 0; i < B * N; i++)
        float_to_bf16(xb + (size_t)i * W, x + ((size_t)(i / N) * N1 + 1 + i % N) * W, W);
    if (!wb) {
        uint16_t *w = (uint16_t *)a->wk;
#pragma omp parallel for schedule(static)
        for (int h = 0; h < H; h++) {
            float tap[KK];
            for (int ci = 0; ci < W; ci++)
                for (int q = 0; q < k * k; q++)
                    tap[q * W + ci] = weight[((size_t)h * W + ci) * k * k + q];
            float_to_bf16(w + (size_t)h * KK, tap, KK);
        }
        wb = w;
    }
    if (k == 1) return gemm_bf16_raw(1, B * N, H, W, xb, wb, a->tok, H);
    for (int b0 = 0; b0 < B; b0 += CONV_CHUNK_IMAGES) {
        const int nb = B - b0 < CONV_CHUNK_IMAGES ? B - b0 : CONV_CHUNK_IMAGES;
        im2col_tokens(col, xb, sizeof(uint16_t), N, b0, nb, g, W, k);
        if (gemm_bf16_raw(1, nb * N, H, KK, col, wb, a->tok + (size_t)b0 * N * H, H) != 0)
            return -1;
    }
    return 0;
}

/* Floats of one record (tss_acts_alloc's layout below). */
static size_t tss_acts_floats(int B, int g, int W, int H, int C, int k) {
    const size_t N = (size_t)g * g, BHN = (size_t)B * H * N, BNC = (size_t)B * N * C;
    const size_t k3 = 3, chunk = B < CONV_CHUNK_IMAGES ? (size_t)B : CONV_CHUNK_IMAGES;
    return (size_t)B * W * N                              /* X */
           + 2 * (4 * BHN + 2 * (size_t)H)                /* conv, bn_out, s, G; bn stats */
           + 2 * (3 * BHN + 2 * (size_t)B * N + BNC)      /* f, q, cattn; q stats; attn */
           + (size_t)C * H + 2 * (size_t)C                /* kv and its stats */
           + 3 * (size_t)B * 2 * N + BHN                  /* pool, gate_logits, gate; fused */
           + (size_t)B * (N + 1) * W                      /* out */
           + (size_t)B * N * H                            /* tok */
           + (size_t)H * k3 * k3 * W                      /* wk */
           + (size_t)chunk * N * k3 * k3 * W              /* col */
           + conv2d_work_floats(2, g, g, k, 1, k / 2);    /* gate_col */
}

size_t tss_acts_bytes(int B, int g, int W, int H, int C, int k) {
    return arena_size(tss_acts_floats(B, g, W, H, C, k) * sizeof(float)) +
           arena_size((size_t)B * g * g * sizeof(int)) +
           arena_size((2 * (size_t)H + 1) * sizeof(double));
}

ramc_status tss_acts_alloc(tss_acts *a, ramc_arena *arena, int B, int g, int W, int H, int C,
                           int k) {
    memset(a, 0, sizeof *a);
    const size_t N = (size_t)g * g, BHN = (size_t)B * H * N, BNC = (size_t)B * N * C;
    const size_t k3 = 3, chunk = B < CONV_CHUNK_IMAGES ? (size_t)B : CONV_CHUNK_IMAGES;
    a->B = B, a->N = (int)N, a->g = g, a->W = W, a->H = H, a->C = C, a->k = k;
    a->arena = arena;
    const size_t total = tss_acts_floats(B, g, W, H, C, k);
    a->storage = arena_calloc(arena, total, sizeof(float), "TSS activations");
    a->int_storage = arena_calloc(arena, (size_t)B * N, sizeof(int), "TSS activations");
    a->bn_sums = arena_calloc(arena, 2 * (size_t)H + 1, sizeof(double), "TSS activations");
    if (!a->storage || !a->int_storage || !a->bn_sums) {
        tss_acts_free(a);
        return RAMC_ERR_NOMEM;
    }
    float *p = a->storage;
#define TAKE(field, count) (a->field = p, p += (count))
    TAKE(X, (size_t)B * W * N);
    for (int s = 0; s < 2; s++) {
        TAKE(conv[s], BHN);
        TAKE(bn_out[s], BHN);
        TAKE(s[s], BHN);
        TAKE(G[s], BHN);
        TAKE(bn_mean[s], (size_t)H);
        TAKE(bn_rstd[s], (size_t)H);
        TAKE(f[s], BHN);
        TAKE(q[s], BHN);
        TAKE(cattn[s], BHN);
        TAKE(q_mean[s], (size_t)B * N);
        TAKE(q_rstd[s], (size_t)B * N);
        TAKE(attn[s], BNC);
    }
    TAKE(kv, (size_t)C * H);
    TAKE(kv_mean, (size_t)C);
    TAKE(kv_rstd, (size_t)C);
    TAKE(pool, (size_t)B * 2 * N);
    TAKE(gate_logits, (size_t)B * 2 * N);
    TAKE(gate, (size_t)B * 2 * N);
    TAKE(fused, BHN);
    TAKE(out, (size_t)B * (N + 1) * W);
    TAKE(tok, (size_t)B * N * H);
    TAKE(wk, (size_t)H * k3 * k3 * W);
    TAKE(col, chunk * N * k3 * k3 * W);
    TAKE(gate_col, conv2d_work_floats(2, g, g, k, 1, k / 2));
#undef TAKE
    a->pool_arg = a->int_storage;
    return RAMC_OK;
}

void tss_acts_free(tss_acts *a) {
    arena_free(a->arena, a->storage);
    arena_free(a->arena, a->int_storage);
    arena_free(a->arena, a->bn_sums);
    memset(a, 0, sizeof *a);
}

/* BatchNorm in training form over a batch split across the processes of
 * `group` (SyncBatchNorm): batchnorm_forward_train's arithmetic, with the
 * sums (and the element count) added over the processes, so each process
 * normalises its images with the whole batch's mean and variance. The mean
 * first, then the squared deviations from it, as the one-process kernel.
 * sums [2C + 1] scratch. out, inp [B, C, HW]; mean, rstd, running [C]. */
static ramc_status batchnorm_train_group(const ramc_dist *group, double *sums, float *out,
                                         float *mean, float *rstd, float *running_mean,
                                         float *running_var, const float *inp,
                                         const float *weight, const float *bias, int B, int C,
                                         int HW, float eps, float momentum) {
    batchnorm_train_sums(sums, inp, B, C, HW);
    sums[C] = (double)B * HW;
    ramc_status st = dist_sum_double(group, sums, C + 1);
    if (st) return st;
    const double n = sums[C];
    double *sqdev = sums + C + 1;
    batchnorm_train_sqdev(sqdev, sums, n, inp, B, C, HW);
    if ((st = dist_sum_double(group, sqdev, C))) return st;
    batchnorm_train_apply(out, mean, rstd, running_mean, running_var, sums, sqdev, n, inp, weight,
                          bias, B, C, HW, eps, momentum);
    return RAMC_OK;
}

/* batchnorm_backward over a batch split across `group`: the weight and bias
 * gradients get this process's share (the trainer sums gradients over the
 * processes), the input gradient the whole batch's mean terms. sums [2C + 1]. */
static ramc_status batchnorm_backward_group(const ramc_dist *group, double *sums, float *dinp,
                                            float *dweight, float *dbias, const float *dout,
                                            const float *inp, const float *weight,
                                            const float *mean, const float *rstd, int B, int C,
                                            int HW) {
    batchnorm_backward_sums(sums, dweight, dbias, dout, inp, mean, rstd, B, C, HW);
    sums[2 * C] = (double)B * HW;
    ramc_status st = dist_sum_double(group, sums, 2 * C + 1);
    if (st) return st;
    batchnorm_backward_input(dinp, sums, sums[2 * C], dout, inp, weight, mean, rstd, B, C, HW);
    return RAMC_OK;
}

void tss_forward(const ram_tss *w, tss_acts *a, const float *x, const float *text, int train) {
    const int B = a->B, N = a->N, g = a->g, W = a->W, H = a->H, C = a->C, k = a->k;
    const int N1 = N + 1;
    const float attn_scale = 1.0f / sqrtf((float)H);

    if (train) a->bf16 = 0; /* bf16 is for inference: its convolution borrows X, the record's */
    /* patch rows -> image [B, W, g, g] (token 1 + r*g + c is pixel (r, c)):
     * only the backward's weight gradients read it */
    if (train)
        for (int b = 0; b < B; b++) transpose_batched(a->X + (size_t)b * W * N, x + ((size_t)b * N1 + 1) * W, 1, N, W);

    a->text = text;
    layernorm_forward(a->kv, a->kv_mean, a->kv_rstd, text, w->norm_kv_w->data, w->norm_kv_b->data,
                      C, H, TSS_LN_EPS);

    const ram_param *conv_w[2] = {w->conv1_w, w->conv2_w};
    const ram_param *bn_w[2] = {w->bn1_w, w->bn2_w}, *bn_b[2] = {w->bn1_b, w->bn2_b};
    ram_param *bn_mean[2] = {w->bn1_mean, w->bn2_mean}, *bn_var[2] = {w->bn1_var, w->bn2_var};
    const ram_param *nq_w[2] = {w->norm_q1_w, w->norm_q2_w}, *nq_b[2] = {w->norm_q1_b, w->norm_q2_b};
    for (int s = 0; s < 2; s++) {
        int ks = s == 0 ? 1 : 3;
        const uint16_t *wb = train ? NULL : s == 0 ? w->conv1_wb : w->conv2_wb;
        conv_from_tokens(a, a->conv[s], x, conv_w[s]->data, s == 1 && !train ? w->conv2_wk : NULL,
                         wb, ks);
        if (train && dist_size(w->bn_group) > 1) {
            ramc_status st = batchnorm_train_group(
                w->bn_group, a->bn_sums, a->bn_out[s], a->bn_mean[s], a->bn_rstd[s],
                bn_mean[s]->data, bn_var[s]->data, a->conv[s], bn_w[s]->data, bn_b[s]->data, B, H,
                N, TSS_BN_EPS, TSS_BN_MOMENTUM);
            if (st && !a->group_status) a->group_status = st;
        } else if (train)
            batchnorm_forward_train(a->bn_out[s], a->bn_mean[s], a->bn_rstd[s], bn_mean[s]->data,
                                    bn_var[s]->data, a->conv[s], bn_w[s]->data, bn_b[s]->data, B,
                                    H, N, TSS_BN_EPS, TSS_BN_MOMENTUM);
        else
            batchnorm_forward_eval(a->bn_out[s], a->conv[s], bn_mean[s]->data, bn_var[s]->data,
                                   bn_w[s]->data, bn_b[s]->data, B, H, N, TSS_BN_EPS);
        gelu_forward(a->s[s], a->bn_out[s], (long)B * H * N);

        /* parameter-free cross-attention to the labels: keys = values = kv */
        transpose_batched(a->f[s], a->s[s], B, H, N);
        layernorm_forward(a->q[s], a->q_mean[s], a->q_rstd[s], a->f[s], nq_w[s]->data,
                          nq_b[s]->data, B * N, H, TSS_LN_EPS);
        tss_gemm(a->bf16, 0, 1, B * N, C, H, a->q[s], H, a->kv, H, a->attn[s], C);
        softmax_forward(a->attn[s], a->attn[s], B * N, C, attn_scale);
        tss_gemm(a->bf16, 0, 0, B * N, H, C, a->attn[s], C, a->kv, H, a->cattn[s], H);
        /* residual on the un-normalised stream, back to channel-first */
#pragma omp parallel for collapse(2) schedule(static)
        for (int b = 0; b < B; b++)
            for (int h = 0; h < H; h++)
                for (int t = 0; t < N; t++) {
                    size_t tf = ((size_t)b * N + t) * H + h;
                    a->G[s][((size_t)b * H + h) * N + t] = a->f[s][tf] + a->cattn[s][tf];
                }
    }

    /* channel mean and max over the 2H channels of cat(G0, G1) */
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int t = 0; t < N; t++) {
            float sum = 0.0f, best = -INFINITY;
            int arg = 0;
            for (int s = 0; s < 2; s++)
                for (int h = 0; h < H; h++) {
                    float v = a->G[s][((size_t)b * H + h) * N + t];
                    sum += v;
                    if (v > best) best = v, arg = s * H + h;
                }
            a->pool[((size_t)b * 2 + 0) * N + t] = sum / (float)(2 * H);
            a->pool[((size_t)b * 2 + 1) * N + t] = best;
            a->pool_arg[(size_t)b * N + t] = arg;
        }
    conv2d_forward(a->gate_logits, a->pool, w->gate_w->data, NULL, B, 2, g, g, 2, k, 1, k / 2,
                   a->gate_col);
    sigmoid_forward(a->gate, a->gate_logits, (long)B * 2 * N);
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int t = 0; t < N; t++) {
                size_t i = ((size_t)b * H + h) * N + t;
                a->fused[i] = a->G[0][i] * a->gate[((size_t)b * 2 + 0) * N + t] +
                              a->G[1][i] * a->gate[((size_t)b * 2 + 1) * N + t];
            }

    /* final 1x1 conv into the patch rows; row 0 carries the class token */
    for (int b = 0; b < B; b++) {
        float *ob = a->out + (size_t)b * N1 * W;
        memcpy(ob, x + (size_t)b * N1 * W, (size_t)W * sizeof(float));
        /* out_rows[t, c] = sum_h final[c, h] * fused[h, t]  ==  fusedᵀ @ finalᵀ */
        tss_gemm(a->bf16, 1, 1, N, W, H, a->fused + (size_t)b * H * N, N, w->final_w->data, H,
                 ob + W, W);
    }
}

/* BatchNorm in evaluation form is an affine map per channel. */
static void bn_eval_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                             const float *inp, const float *mean, const float *var,
                             const float *weight, int B, int H, int N) {
    for (int h = 0; h < H; h++) {
        float rstd = 1.0f / sqrtf(var[h] + TSS_BN_EPS);
        for (int b = 0; b < B; b++)
            for (int t = 0; t < N; t++) {
                size_t i = ((size_t)b * H + h) * N + t;
                if (dinp) dinp[i] += dout[i] * weight[h] * rstd;
                if (dweight) dweight[h] += dout[i] * (inp[i] - mean[h]) * rstd;
                if (dbias) dbias[h] += dout[i];
            }
    }
}

ramc_status tss_backward(const ram_tss *w, const tss_acts *a, const float *dout, float *dx,
                         float *dtext, int train) {
    const int B = a->B, N = a->N, g = a->g, W = a->W, H = a->H, C = a->C, k = a->k;
    const int N1 = N + 1;
    const size_t BHN = (size_t)B * H * N;
    const float attn_scale = 1.0f / sqrtf((float)H);
    /* from the record's arena (the training step's), given back at the end */
    const size_t mark = arena_mark(a->arena);
    float *buf = arena_calloc(a->arena,
                              5 * BHN + (size_t)B * W * N + (size_t)C * H + 6 * (size_t)B * N +
                                  2 * (size_t)B * N * C,
                              sizeof(float), "TSS gradients");
    if (!buf) return RAMC_ERR_NOMEM;
    float *dG[2] = {buf, buf + BHN};
    float *dfused = buf + 2 * BHN;
    float *dtok = buf + 3 * BHN;  /* [B, N, H] token-first scratch */
    float *dchan = buf + 4 * BHN; /* [B, H, N] channel-first scratch */
    float *dX = buf + 5 * BHN;    /* [B, W, N] */
    float *dkv = dX + (size_t)B * W * N;
    float *dpool = dkv + (size_t)C * H; /* [B, 2, N] */
    float *dgate = dpool + 2 * (size_t)B * N;
    float *dgl = dgate + 2 * (size_t)B * N;
    float *dattn = dgl + 2 * (size_t)B * N; /* [B, N, C] */
    float *dlogits = dattn + (size_t)B * N * C; /* [B, N, C] */

    /* final 1x1 conv: out_rows = fusedᵀ @ finalᵀ per image */
    for (int b = 0; b < B; b++) {
        const float *db = dout + ((size_t)b * N1 + 1) * W;  /* [N, W] */
        const float *fb = a->fused + (size_t)b * H * N;      /* [H, N] */
        /* dfused[h, t] = sum_c final[c, h] * db[t, c] */
        gemm(1, 1, H, N, W, 1.0f, w->final_w->data, H, db, W, 1.0f, dfused + (size_t)b * H * N, N);
        /* dfinal[c, h] += sum_t db[t, c] * fused[h, t] */
        if (w->final_w->grad)
            gemm(1, 1, W, H, N, 1.0f, db, W, fb, N, 1.0f, w->final_w->grad, H);
    }

    /* fusion with the gate */
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int t = 0; t < N; t++) {
                size_t i = ((size_t)b * H + h) * N + t;
                size_t g0 = ((size_t)b * 2 + 0) * N + t, g1 = g0 + N;
                dG[0][i] += dfused[i] * a->gate[g0];
                dG[1][i] += dfused[i] * a->gate[g1];
                dgate[g0] += dfused[i] * a->G[0][i];
                dgate[g1] += dfused[i] * a->G[1][i];
            }
    sigmoid_backward(dgl, dgate, a->gate, (long)B * 2 * N);
    /* the forward's im2col buffers are free now: the convolutions' backward reuses them */
    conv2d_backward_work(dpool, w->gate_w->grad, NULL, dgl, a->pool, w->gate_w->data, B, 2, g, g,
                         2, k, 1, k / 2, a->gate_col);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < N; t++) {
            float dmean = dpool[((size_t)b * 2 + 0) * N + t] / (float)(2 * H);
            for (int s = 0; s < 2; s++)
                for (int h = 0; h < H; h++) dG[s][((size_t)b * H + h) * N + t] += dmean;
            int arg = a->pool_arg[(size_t)b * N + t];
            dG[arg / H][((size_t)b * H + arg % H) * N + t] += dpool[((size_t)b * 2 + 1) * N + t];
        }

    const ram_param *conv_w[2] = {w->conv1_w, w->conv2_w};
    const ram_param *bn_w[2] = {w->bn1_w, w->bn2_w}, *bn_b[2] = {w->bn1_b, w->bn2_b};
    const ram_param *bn_mean[2] = {w->bn1_mean, w->bn2_mean}, *bn_var[2] = {w->bn1_var, w->bn2_var};
    const ram_param *nq_w[2] = {w->norm_q1_w, w->norm_q2_w}, *nq_b[2] = {w->norm_q1_b, w->norm_q2_b};
    for (int s = 0; s < 2; s++) {
        /* G = f + cattn (token-first view of dG) */
        transpose_batched(dtok, dG[s], B, H, N); /* [B, N, H] */
        /* cattn = attn @ kv */
        gemm(0, 1, B * N, C, H, 1.0f, dtok, H, a->kv, H, 0.0f, dattn, C);
        gemm(1, 0, C, H, B * N, 1.0f, a->attn[s], C, dtok, H, 1.0f, dkv, H);
        /* attn = softmax(scale * q kvᵀ) */
        memset(dlogits, 0, (size_t)B * N * C * sizeof(float));
        softmax_backward(dlogits, dattn, a->attn[s], B * N, C, attn_scale);
        float *dq = dchan; /* [B, N, H] scratch */
        gemm(0, 0, B * N, H, C, 1.0f, dlogits, C, a->kv, H, 0.0f, dq, H);
        gemm(1, 0, C, H, B * N, 1.0f, dlogits, C, a->q[s], H, 1.0f, dkv, H);
        /* q = LN_q(f); the residual path adds dtok to df directly */
        layernorm_backward(dtok, nq_w[s]->grad, nq_b[s]->grad, dq, a->f[s], nq_w[s]->data,
                           a->q_mean[s], a->q_rstd[s], B * N, H);
        /* f = sᵀ */
        transpose_batched(dchan, dtok, B, N, H); /* ds [B, H, N] */
        float *dbn = dtok;                         /* reuse as [B, H, N] */
        float *dconv = dchan;
        if (train && dist_size(w->bn_group) <= 1) {
            /* GELU's backward fused into BatchNorm's (dbn its scratch); dconv
             * overwrites dchan channel by channel once read */
            gelu_batchnorm_backward(dconv, bn_w[s]->grad, bn_b[s]->grad, dbn, dchan,
                                    a->bn_out[s], a->conv[s], bn_w[s]->data, a->bn_mean[s],
                                    a->bn_rstd[s], B, H, N);
        } else {
            memset(dbn, 0, BHN * sizeof(float));
            gelu_backward(dbn, dchan, a->bn_out[s], (long)BHN);
            memset(dconv, 0, BHN * sizeof(float));
            ramc_status st = RAMC_OK;
            if (train)
                st = batchnorm_backward_group(w->bn_group, a->bn_sums, dconv, bn_w[s]->grad,
                                              bn_b[s]->grad, dbn, a->conv[s], bn_w[s]->data,
                                              a->bn_mean[s], a->bn_rstd[s], B, H, N);
            else
                bn_eval_backward(dconv, bn_w[s]->grad, bn_b[s]->grad, dbn, a->conv[s],
                                 bn_mean[s]->data, bn_var[s]->data, bn_w[s]->data, B, H, N);
            if (st) {
                arena_free(a->arena, buf);
                arena_reset(a->arena, mark);
                return st;
            }
        }
        int ks = s == 0 ? 1 : 3;
        /* a->col holds at least one image's 3x3 im2col (conv2d_work_floats(W, g, g, 3, 1, 1)) */
        conv2d_backward_work(dx ? dX : NULL, conv_w[s]->grad, NULL, dconv, a->X, conv_w[s]->data,
                             B, W, g, g, H, ks, 1, ks / 2, a->col);
    }
    if (dx)
        for (int b = 0; b < B; b++)
            for (int t = 0; t < N; t++)
                for (int c = 0; c < W; c++)
                    dx[((size_t)b * N1 + 1 + t) * W + c] += dX[((size_t)b * W + c) * N + t];
    if (dtext || w->norm_kv_w->grad)
        layernorm_backward(dtext, w->norm_kv_w->grad, w->norm_kv_b->grad, dkv, a->text,
                           w->norm_kv_w->data,
                           a->kv_mean, a->kv_rstd, C, H);
    arena_free(a->arena, buf);
    arena_reset(a->arena, mark);
    return RAMC_OK;
}
