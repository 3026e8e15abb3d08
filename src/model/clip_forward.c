/* CLIP's layers, forward: patch embedding, the residual block (with the SAA
 * side stream RAM uses, and its partial forms for a last block), the vision
 * and text heads. The towers that chain them are src/ram/ram_forward.c.
 * Batch-first layout throughout: a stream is [B, T, W]. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "model/clip.h"

#define LN_EPS 1e-5f

ramc_status clip_block_scratch_alloc(clip_block_scratch *s, ramc_arena *arena, int B, int T,
                                     int W, int M) {
    size_t rows = (size_t)B * T;
    memset(s, 0, sizeof *s);
    s->arena = arena;
    s->h = arena_alloc(arena, rows * W * sizeof(float), "block scratch");
    s->qkv = arena_alloc(arena, rows * 3 * W * sizeof(float), "block scratch");
    s->attn = arena_alloc(arena, rows * W * sizeof(float), "block scratch");
    s->mlp = arena_alloc(arena, rows * M * sizeof(float), "block scratch");
    if (!s->h || !s->qkv || !s->attn || !s->mlp) {
        clip_block_scratch_free(s);
        return RAMC_ERR_NOMEM;
    }
    return RAMC_OK;
}

size_t clip_block_scratch_bytes(int B, int T, int W, int M) {
    const size_t rows = (size_t)B * T, f = sizeof(float);
    return 2 * arena_size(rows * W * f) + arena_size(rows * 3 * W * f) +
           arena_size(rows * M * f);
}

void clip_block_scratch_free(clip_block_scratch *s) {
    arena_free(s->arena, s->h);
    arena_free(s->arena, s->qkv);
    arena_free(s->arena, s->attn);
    arena_free(s->arena, s->mlp);
    memset(s, 0, sizeof *s);
}

/* x [n, W] += c_proj(QuickGELU(c_fc(ln_2(x)))).
 * Inference: h [n, W], fc [n, M] scratch, act NULL (QuickGELU fused into c_fc).
 * With a record: ln_2's statistics, fc (QuickGELU input) and act kept. */
static void mlp_residual(const clip_block *w, int W, int M, float *x, int n, float *h, float *fc,
                         float *act, float *ln_mean, float *ln_rstd) {
    layernorm_forward(h, ln_mean, ln_rstd, x, w->ln_2_w, w->ln_2_b, n, W, LN_EPS);
    if (act) {
        matmul_forward(fc, h, w->fc_w, w->fc_b, n, W, M);
        quickgelu_forward(act, fc, (long)n * M);
    } else {
        matmul_forward_ex(fc, h, w->fc_w, w->fc_b, n, W, M, MATMUL_QUICKGELU);
        act = fc;
    }
    matmul_forward_ex(x, act, w->proj_w, w->proj_b, n, M, W, MATMUL_ACCUMULATE);
}

void clip_block_forward(const clip_block *w, const clip_block_shape *sh, float *x,
                        float *side_out, clip_block_scratch *s, clip_block_acts *acts) {
    const int B = sh->B, T = sh->T, W = sh->W, M = sh->M, heads = sh->n_heads, rows = B * T;
    const int n_loc = sh->n_loc;
    const clip_block_output output = acts ? CLIP_BLOCK_ALL_ROWS : sh->output;
    float *h = acts ? acts->h : s->h, *qkv = acts ? acts->qkv : s->qkv;
    float *attn = acts ? acts->attn : s->attn;
    if (acts) {
        acts->B = B, acts->T = T, acts->n_loc = n_loc;
        memcpy(acts->x_in, x, (size_t)rows * W * sizeof(float));
    }
    /* A model frozen in bf16 runs its attention products in bf16 too, at
     * inference only (a record's backward recomputes the probabilities in
     * float32 from the forward's log-sum-exp, which must then be float32's)
     * and where that is faster (the vision tower's long rows). */
    void (*const attend)(float *, float *, const float *, const float *, const float *, long,
                         long, int, int, int, int, int, int) =
        !acts && attention_bf16_pays(T, sh->causal) && kernels_weights_bf16(w->qkv_w)
            ? attention_fused_forward_bf16
            : attention_fused_forward;

    /* ln_1, then q, k, v [rows, 3W]; only v [rows, W] (the value rows of
     * in_proj: weight rows [2W, 3W)) when only the side stream is read */
    layernorm_forward(h, acts ? acts->ln1_mean : NULL, acts ? acts->ln1_rstd : NULL, x, w->ln_1_w,
                      w->ln_1_b, rows, W, LN_EPS);
    const int qkv_width = output == CLIP_BLOCK_SIDE_ONLY ? W : 3 * W;
    const float *v = qkv + qkv_width - W;
    if (output == CLIP_BLOCK_SIDE_ONLY)
        matmul_forward(qkv, h, w->qkv_w + (size_t)2 * W * W, w->qkv_b + 2 * W, rows, W, W);
    else
        matmul_forward(qkv, h, w->qkv_w, w->qkv_b, rows, W, 3 * W);

    /* SAA side stream: value-value attention of the first n_loc rows through
     * out_proj. It goes first: the main attention does not modify qkv, and
     * inference reuses attn for both. */
    if (n_loc) {
        float *side_attn = acts ? acts->side_attn : attn;
        attend(side_attn, acts ? acts->side_lse : NULL, v, v, v,
                                (long)T * qkv_width, qkv_width, B, n_loc, n_loc, W, heads, 0);
        matmul_forward(side_out, side_attn, w->out_w, w->out_b, B * n_loc, W, W);
    }
    const long bstride = (long)T * 3 * W, rstride = 3 * W;
    switch (output) {
    case CLIP_BLOCK_SIDE_ONLY:
        return;
    case CLIP_BLOCK_CLASS_ROW: {
        /* the class token's query against every key; then its row alone
         * through the out-projection and the MLP, gathered into cls [B, W] */
        attend(attn, NULL, qkv, qkv + W, qkv + 2 * W, bstride, rstride, B, 1, T, W, heads, 0);
        float *cls = attn + (size_t)B * W;
        for (int b = 0; b < B; b++)
            memcpy(cls + (size_t)b * W, x + (size_t)b * T * W, W * sizeof(float));
        matmul_forward_ex(cls, attn, w->out_w, w->out_b, B, W, W, MATMUL_ACCUMULATE);
        mlp_residual(w, W, M, cls, B, h, s->mlp, NULL, NULL, NULL);
        for (int b = 0; b < B; b++)
            memcpy(x + (size_t)b * T * W, cls + (size_t)b * W, W * sizeof(float));
        return;
    }
    case CLIP_BLOCK_ALL_ROWS:
        break;
    }
    attend(attn, acts ? acts->lse : NULL, qkv, qkv + W, qkv + 2 * W, bstride, rstride, B, T, T, W,
           heads, sh->causal);
    matmul_forward_ex(x, attn, w->out_w, w->out_b, rows, W, W, MATMUL_ACCUMULATE);

    if (acts) {
        memcpy(acts->x_mid, x, (size_t)rows * W * sizeof(float));
        mlp_residual(w, W, M, x, rows, acts->h2, acts->fc, acts->act, acts->ln2_mean,
                     acts->ln2_rstd);
    } else if (sh->mlp_rows == T) {
        mlp_residual(w, W, M, x, rows, h, s->mlp, NULL, NULL, NULL);
    } else {
        /* prompt rows dropped right after the block need no MLP: each item
         * runs on its first mlp_rows rows */
        for (int b = 0; b < B; b++)
            mlp_residual(w, W, M, x + (size_t)b * T * W, sh->mlp_rows, h, s->mlp, NULL, NULL,
                         NULL);
    }
}

size_t clip_vision_embed_bytes(const ramc_clip_info *in, int B) {
    const int W = in->vision_width, P = in->patch_size, S = in->image_size, N1 = in->n_patches + 1;
    return arena_size((size_t)B * W * in->n_patches * sizeof(float)) +
           arena_size((size_t)B * N1 * W * sizeof(float)) +
           arena_size(conv2d_work_floats(3, S, S, P, P, 0) * sizeof(float));
}

ramc_status clip_vision_embed(const ramc_clip *m, ramc_arena *arena, const float *images, int B,
                              float *x, float *ln_pre_in, float *ln_pre_mean, float *ln_pre_rstd) {
    const ramc_clip_info *in = &m->info;
    const int W = in->vision_width, P = in->patch_size, S = in->image_size;
    const int N = in->n_patches, N1 = N + 1;
    const size_t mark = arena_mark(arena);
    float *patches = arena_alloc(arena, (size_t)B * W * N * sizeof(float), "patch embedding");
    float *pre = ln_pre_in ? ln_pre_in
                           : arena_alloc(arena, (size_t)B * N1 * W * sizeof(float), "ln_pre");
    float *col = arena_alloc(arena, conv2d_work_floats(3, S, S, P, P, 0) * sizeof(float),
                             "patch embedding");
    if (!patches || !pre || !col) {
        arena_free(arena, patches);
        if (pre != ln_pre_in) arena_free(arena, pre);
        arena_free(arena, col);
        arena_reset(arena, mark);
        return RAMC_ERR_NOMEM;
    }
    conv2d_forward(patches, images, m->patch_w, NULL, B, 3, S, S, W, P, P, 0, col); /* [B, W, G, G] */
    for (int b = 0; b < B; b++) {
        float *xb = pre + (size_t)b * N1 * W;
        for (int c = 0; c < W; c++) xb[c] = m->class_emb[c] + m->vis_pos[c];
        /* token 1 + t is patch t (row-major over the grid): transpose [W, N] -> [N, W] */
        for (int t = 0; t < N; t++)
            for (int c = 0; c < W; c++)
                xb[(size_t)(1 + t) * W + c] =
                    patches[((size_t)b * W + c) * N + t] + m->vis_pos[(size_t)(1 + t) * W + c];
    }
    layernorm_forward(x, ln_pre_mean, ln_pre_rstd, pre, m->ln_pre_w, m->ln_pre_b, B * N1, W,
                      LN_EPS);
    arena_free(arena, patches);
    if (pre != ln_pre_in) arena_free(arena, pre);
    arena_free(arena, col);
    arena_reset(arena, mark);
    return RAMC_OK;
}

ramc_status clip_vision_project(const ramc_clip *m, ramc_arena *arena, const float *x, int rows,
                                float *out, float *ln_mean, float *ln_rstd, float *h) {
    const int W = m->info.vision_width, D = m->info.embed_dim;
    const size_t mark = arena_mark(arena);
    float *hh = h ? h : arena_alloc(arena, (size_t)rows * W * sizeof(float), "ln_post");
    if (!hh) return RAMC_ERR_NOMEM;
    layernorm_forward(hh, ln_mean, ln_rstd, x, m->ln_post_w, m->ln_post_b, rows, W, LN_EPS);
    gemm(0, 0, rows, D, W, 1.0f, hh, W, m->vis_proj, D, 0.0f, out, D);
    if (hh != h) arena_free(arena, hh);
    arena_reset(arena, mark);
    return RAMC_OK;
}

ramc_status clip_check_tokens(const ramc_clip *m, const int32_t *tokens, int n) {
    const int L = m->info.context_length;
    for (long i = 0; i < (long)n * L; i++)
        if (tokens[i] < 0 || tokens[i] >= m->info.vocab_size)
            return ramc_error(RAMC_ERR_INVALID_ARG,
                              "%s: token id %d (sequence %ld, position %ld) is outside the model's "
                              "vocabulary of %d ids (is this the tokenizer the model was trained "
                              "with?)",
                              m->path ? m->path : "CLIP model", tokens[i], i / L, i % L,
                              m->info.vocab_size);
    return RAMC_OK;
}

void clip_text_embed(const ramc_clip *m, const int32_t *ids, int n, int T, int ld, float *x) {
    const int Wt = m->info.text_width;
    for (int q = 0; q < n; q++) {
        float *xq = x + (size_t)q * T * Wt;
        embedding_forward(xq, ids + (size_t)q * ld, m->tok_emb, T, Wt);
        for (long i = 0; i < (long)T * Wt; i++) xq[i] += m->txt_pos[i];
    }
}

ramc_status clip_text_head(const ramc_clip *m, const float *x, int n, int T, const int *eot,
                           float *features, float *xe, float *ln_mean, float *ln_rstd, float *h) {
    const int Wt = m->info.text_width, D = m->info.embed_dim;
    float *buf = NULL;
    if (!xe || !h) {
        buf = ramc_malloc((size_t)n * Wt * 2 * sizeof(float), "ln_final");
        if (!buf) return RAMC_ERR_NOMEM;
        if (!xe) xe = buf;
        if (!h) h = buf + (size_t)n * Wt;
    }
    for (int q = 0; q < n; q++)
        memcpy(xe + (size_t)q * Wt, x + ((size_t)q * T + eot[q]) * Wt, (size_t)Wt * sizeof(float));
    layernorm_forward(h, ln_mean, ln_rstd, xe, m->ln_final_w, m->ln_final_b, n, Wt, LN_EPS);
    gemm(0, 0, n, D, Wt, 1.0f, h, Wt, m->txt_proj, D, 0.0f, features, D);
    free(buf);
    return RAMC_OK;
}

/* The EOT position: argmax of the ids (first maximum, as torch.argmax). */
int clip_eot_position(const int32_t *ids, int L) {
    int best = 0;
    for (int t = 1; t < L; t++)
        if (ids[t] > ids[best]) best = t;
    return best;
}

ramc_status clip_text_project(const ramc_clip *m, const int32_t *tokens, const float *x, int n,
                              float *features) {
    const int L = m->info.context_length;
    int *eot = ramc_malloc((size_t)n * sizeof(int), "EOT positions");
    if (!eot) return RAMC_ERR_NOMEM;
    for (int q = 0; q < n; q++) eot[q] = clip_eot_position(tokens + (size_t)q * L, L);
    ramc_status st = clip_text_head(m, x, n, L, eot, features, NULL, NULL, NULL, NULL);
    free(eot);
    return st;
}
