/* The backward of a CLIP block (its forward, which fills the record, is
 * clip_block_forward in clip_forward.c). RAM trains nothing in CLIP
 * (gradients flow to the inputs only, for the prompts and adapters
 * upstream); `ramc pretrain-clip` also accumulates the gradients of the
 * block's own weights. */
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "model/clip.h"

#define LN_EPS 1e-5f

ramc_status clip_block_acts_alloc(clip_block_acts *a, int B, int T, int W, int M, int n_heads,
                                  int causal, int n_loc) {
    return clip_block_acts_alloc_in(a, NULL, B, T, W, M, n_heads, causal, n_loc);
}

ramc_status clip_block_acts_alloc_in(clip_block_acts *a, ramc_arena *arena, int B, int T, int W,
                                     int M, int n_heads, int causal, int n_loc) {
    memset(a, 0, sizeof *a);
    a->arena = arena;
    a->B = B, a->T = T, a->W = W, a->M = M, a->n_heads = n_heads, a->causal = causal;
    a->n_loc = n_loc;
    const size_t rows = (size_t)B * T;
    size_t total = rows * W * 5 + rows * 3 * W + rows * 4 + rows * M * 2 +
                   (size_t)B * n_heads * T + (size_t)B * n_heads * n_loc +
                   (size_t)B * n_loc * W;
    a->storage = arena_alloc(arena, total * sizeof(float), "block activations");
    if (!a->storage) return RAMC_ERR_NOMEM;
    float *p = a->storage;
#define TAKE(field, count) (a->field = p, p += (count))
    TAKE(x_in, rows * W);
    TAKE(h, rows * W);
    TAKE(attn, rows * W);
    TAKE(x_mid, rows * W);
    TAKE(h2, rows * W);
    TAKE(qkv, rows * 3 * W);
    TAKE(ln1_mean, rows);
    TAKE(ln1_rstd, rows);
    TAKE(ln2_mean, rows);
    TAKE(ln2_rstd, rows);
    TAKE(fc, rows * M);
    TAKE(act, rows * M);
    TAKE(lse, (size_t)B * n_heads * T);
    TAKE(side_lse, (size_t)B * n_heads * n_loc);
    TAKE(side_attn, (size_t)B * n_loc * W);
#undef TAKE
    return RAMC_OK;
}

void clip_block_acts_free(clip_block_acts *a) {
    arena_free(a->arena, a->storage);
    memset(a, 0, sizeof *a);
}

/* Writable view of a gradient field: clip_block's pointers are const for the
 * model's use, but a gradient block points into memory the caller allocated
 * writable; a NULL block (frozen weights) gives NULL, "not needed" for the kernels. */
#define GRAD(field) (g ? (float *)g->field : NULL)

ramc_status clip_block_backward(const clip_block *w, const clip_block_acts *a, float *dx,
                                const float *dside, clip_block *g) {
    const int B = a->B, T = a->T, W = a->W, M = a->M, rows = B * T;
    const long bstride = (long)T * 3 * W, rstride = 3 * W;
    const size_t rw = (size_t)rows * W;
    ramc_arena *arena = a->arena;
    const size_t mark = arena_mark(arena);
    /* with frozen weights (RAM) the non-GEMM passes are fused: dfc is formed
     * in dact's place and the residuals are read, not copied */
    const int fused = !g;
    float *buf = arena_calloc(arena,
                              rw * 3 + (size_t)rows * 3 * W + (size_t)rows * M * (fused ? 1 : 2),
                              sizeof(float), "block gradients");
    if (!buf) {
        arena_reset(arena, mark);
        return RAMC_ERR_NOMEM;
    }
    float *dmid = buf, *dh = buf + rw, *dattn = buf + 2 * rw, *dqkv = buf + 3 * rw;
    float *dact = dqkv + (size_t)rows * 3 * W, *dfc = fused ? dact : dact + (size_t)rows * M;

    /* MLP: out = x_mid + c_proj(QuickGELU(c_fc(ln_2(x_mid)))) */
    if (!fused) memcpy(dmid, dx, rw * sizeof(float));
    matmul_backward(dact, GRAD(proj_w), GRAD(proj_b), dx, a->act, w->proj_w, rows, M, W);
    if (fused)
        quickgelu_backward_inplace(dact, a->fc, (long)rows * M);
    else
        quickgelu_backward(dfc, dact, a->fc, (long)rows * M);
    matmul_backward(dh, GRAD(fc_w), GRAD(fc_b), dfc, a->h2, w->fc_w, rows, W, M);
    if (fused)
        layernorm_backward_residual(dmid, dx, dh, a->x_mid, w->ln_2_w, a->ln2_mean, a->ln2_rstd,
                                    rows, W);
    else
        layernorm_backward(dmid, GRAD(ln_2_w), GRAD(ln_2_b), dh, a->x_mid, w->ln_2_w, a->ln2_mean,
                           a->ln2_rstd, rows, W);

    /* attention: x_mid = x_in + out_proj(attn(ln_1(x_in))) */
    matmul_backward(dattn, GRAD(out_w), GRAD(out_b), dmid, a->attn, w->out_w, rows, W, W);
    attention_fused_backward(dqkv, dqkv + W, dqkv + 2 * W, dattn, a->attn, a->lse, a->qkv,
                             a->qkv + W, a->qkv + 2 * W, bstride, rstride, B, T, T, W, a->n_heads,
                             a->causal);
    if (dside && a->n_loc) {
        /* the side stream reads v only: q = k = v, all gradients into dv */
        memset(dattn, 0, rw * sizeof(float));
        matmul_backward(dattn, GRAD(out_w), GRAD(out_b), dside, a->side_attn, w->out_w,
                        B * a->n_loc, W, W);
        float *dv = dqkv + 2 * W;
        const float *v = a->qkv + 2 * W;
        attention_fused_backward(dv, dv, dv, dattn, a->side_attn, a->side_lse, v, v, v, bstride,
                                 rstride, B, a->n_loc, a->n_loc, W, a->n_heads, 0);
    }
    memset(dh, 0, rw * sizeof(float));
    matmul_backward(dh, GRAD(qkv_w), GRAD(qkv_b), dqkv, a->h, w->qkv_w, rows, W, 3 * W);
    /* d(input) = residual + through ln_1 */
    if (fused) {
        layernorm_backward_residual(dx, dmid, dh, a->x_in, w->ln_1_w, a->ln1_mean, a->ln1_rstd,
                                    rows, W);
    } else {
        memcpy(dx, dmid, rw * sizeof(float));
        layernorm_backward(dx, GRAD(ln_1_w), GRAD(ln_1_b), dh, a->x_in, w->ln_1_w, a->ln1_mean,
                           a->ln1_rstd, rows, W);
    }
    arena_free(arena, buf);
    arena_reset(arena, mark);
    return RAMC_OK;
}
#undef GRAD
