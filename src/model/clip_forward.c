/* CLIP forward passes: vision tower (with the SAA side stream RAM uses) and
 * text tower. Batch-first layout throughout: a stream is [B, T, W]. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "core/half.h"
#include "model/clip.h"

#define LN_EPS 1e-5f

ramc_status clip_block_scratch_alloc(clip_block_scratch *s, int B, int T, int W, int M) {
    size_t rows = (size_t)B * T;
    memset(s, 0, sizeof *s);
    s->h = ramc_malloc(rows * W * sizeof(float), "block scratch");
    s->qkv = ramc_malloc(rows * 3 * W * sizeof(float), "block scratch");
    s->attn = ramc_malloc(rows * W * sizeof(float), "block scratch");
    s->mlp = ramc_malloc(rows * M * sizeof(float), "block scratch");
    if (!s->h || !s->qkv || !s->attn || !s->mlp) {
        clip_block_scratch_free(s);
        return RAMC_ERR_NOMEM;
    }
    return RAMC_OK;
}

void clip_block_scratch_free(clip_block_scratch *s) {
    free(s->h);
    free(s->qkv);
    free(s->attn);
    free(s->mlp);
    memset(s, 0, sizeof *s);
}

/* x [n, W] += c_proj(QuickGELU(c_fc(ln_2(x)))) */
static void mlp_residual(const clip_block *w, int W, int M, float *x, int n,
                         clip_block_scratch *s) {
    layernorm_forward(s->h, NULL, NULL, x, w->ln_2_w, w->ln_2_b, n, W, LN_EPS);
    matmul_forward_ex(s->mlp, s->h, w->fc_w, w->fc_b, n, W, M, MATMUL_QUICKGELU);
    matmul_forward_ex(x, s->mlp, w->proj_w, w->proj_b, n, M, W, MATMUL_ACCUMULATE);
}

/* s->qkv [B*T, 3W] = ln_1(x) @ in_proj^T + b, then the SAA side stream into
 * side_out (if given) from v: it goes first, since the main stream's
 * attention does not modify qkv. */
static void qkv_and_side(const clip_block *w, int W, int n_heads, const float *x, int B, int T,
                         float *side_out, int n_loc, clip_block_scratch *s) {
    const int rows = B * T;
    layernorm_forward(s->h, NULL, NULL, x, w->ln_1_w, w->ln_1_b, rows, W, LN_EPS);
    matmul_forward(s->qkv, s->h, w->qkv_w, w->qkv_b, rows, W, 3 * W);
    if (side_out) {
        const float *v = s->qkv + 2 * W;
        attention_forward(s->attn, NULL, v, v, v, (long)T * 3 * W, 3 * W, B, n_loc, n_loc, W,
                          n_heads, 0);
        matmul_forward(side_out, s->attn, w->out_w, w->out_b, B * n_loc, W, W);
    }
}

void clip_block_forward(const clip_block *w, int W, int M, int n_heads, float *x, int B, int T,
                        int causal, float *side_out, int n_loc, int mlp_rows,
                        clip_block_scratch *s) {
    const int rows = B * T;
    const long bstride = (long)T * 3 * W, rstride = 3 * W;
    qkv_and_side(w, W, n_heads, x, B, T, side_out, n_loc, s);
    attention_forward(s->attn, NULL, s->qkv, s->qkv + W, s->qkv + 2 * W, bstride, rstride, B, T,
                      T, W, n_heads, causal);
    matmul_forward_ex(x, s->attn, w->out_w, w->out_b, rows, W, W, MATMUL_ACCUMULATE);

    /* MLP. Prompt rows that are dropped right after the block need none, so
     * with mlp_rows < T each item runs on its first mlp_rows rows. */
    if (mlp_rows == T) {
        mlp_residual(w, W, M, x, rows, s);
    } else {
        for (int b = 0; b < B; b++) mlp_residual(w, W, M, x + (size_t)b * T * W, mlp_rows, s);
    }
}

void clip_block_forward_cls(const clip_block *w, int W, int M, int n_heads, float *x, int B,
                            int T, float *side_out, int n_loc, clip_block_scratch *s) {
    const long bstride = (long)T * 3 * W, rstride = 3 * W;
    qkv_and_side(w, W, n_heads, x, B, T, side_out, n_loc, s);
    /* the class token's query against every key; then its row alone through
     * the out-projection and the MLP, gathered into cls [B, W] */
    attention_forward(s->attn, NULL, s->qkv, s->qkv + W, s->qkv + 2 * W, bstride, rstride, B, 1,
                      T, W, n_heads, 0);
    float *cls = s->attn + (size_t)B * W;
    for (int b = 0; b < B; b++) memcpy(cls + (size_t)b * W, x + (size_t)b * T * W, W * sizeof(float));
    matmul_forward_ex(cls, s->attn, w->out_w, w->out_b, B, W, W, MATMUL_ACCUMULATE);
    mlp_residual(w, W, M, cls, B, s);
    for (int b = 0; b < B; b++) memcpy(x + (size_t)b * T * W, cls + (size_t)b * W, W * sizeof(float));
}

void clip_block_side_forward(const clip_block *w, int W, int n_heads, const float *x, int B,
                             int T, float *side_out, int n_loc, clip_block_scratch *s) {
    const int rows = B * T;
    layernorm_forward(s->h, NULL, NULL, x, w->ln_1_w, w->ln_1_b, rows, W, LN_EPS);
    /* the value rows of in_proj: weight rows [2W, 3W), their bias */
    matmul_forward(s->qkv, s->h, w->qkv_w + (size_t)2 * W * W, w->qkv_b + 2 * W, rows, W, W);
    attention_forward(s->attn, NULL, s->qkv, s->qkv, s->qkv, (long)T * W, W, B, n_loc, n_loc, W,
                      n_heads, 0);
    matmul_forward(side_out, s->attn, w->out_w, w->out_b, B * n_loc, W, W);
}

ramc_status clip_vision_embed(const ramc_clip *m, const float *images, int B, float *x,
                              float *ln_pre_in) {
    const ramc_clip_info *in = &m->info;
    const int W = in->vision_width, P = in->patch_size, S = in->image_size, G = in->grid;
    const int N = in->n_patches, N1 = N + 1;
    float *patches = ramc_malloc((size_t)B * W * N * sizeof(float), "patch embedding");
    float *pre = ln_pre_in ? ln_pre_in : ramc_malloc((size_t)B * N1 * W * sizeof(float), "ln_pre");
    if (!patches || !pre) {
        free(patches);
        if (pre != ln_pre_in) free(pre);
        return RAMC_ERR_NOMEM;
    }
    conv2d_forward(patches, images, m->patch_w, NULL, B, 3, S, S, W, P, P, 0); /* [B, W, G, G] */
    (void)G;
    for (int b = 0; b < B; b++) {
        float *xb = pre + (size_t)b * N1 * W;
        for (int c = 0; c < W; c++) xb[c] = m->class_emb[c] + m->vis_pos[c];
        /* token 1 + t is patch t (row-major over the grid): transpose [W, N] -> [N, W] */
        for (int t = 0; t < N; t++)
            for (int c = 0; c < W; c++)
                xb[(size_t)(1 + t) * W + c] =
                    patches[((size_t)b * W + c) * N + t] + m->vis_pos[(size_t)(1 + t) * W + c];
    }
    layernorm_forward(x, NULL, NULL, pre, m->ln_pre_w, m->ln_pre_b, B * N1, W, LN_EPS);
    free(patches);
    if (pre != ln_pre_in) free(pre);
    return RAMC_OK;
}

static void tap_stream(clip_tap_fn tap, void *user, const char *name, const float *data, int B,
                       int T, int W) {
    if (!tap) return;
    int64_t shape[3] = {B, T, W};
    tap(user, name, data, 3, shape);
}

ramc_status clip_vision_forward(const ramc_clip *m, const float *images, int B, int saa,
                                float *x, float *x_loc, clip_tap_fn tap, void *tap_user) {
    const ramc_clip_info *in = &m->info;
    const int W = in->vision_width, M = in->vision_mlp, N1 = in->n_patches + 1;
    const size_t stream = (size_t)B * N1 * W;
    char name[64];
    ramc_status st;

    float *pre = tap ? ramc_malloc(stream * sizeof(float), "ln_pre input") : NULL;
    float *side = saa ? ramc_malloc(stream * sizeof(float), "side stream") : NULL;
    if ((tap && !pre) || (saa && !side)) {
        free(pre);
        free(side);
        return RAMC_ERR_NOMEM;
    }
    clip_block_scratch s;
    if ((st = clip_vision_embed(m, images, B, x, pre)) != RAMC_OK ||
        (st = clip_block_scratch_alloc(&s, B, N1, W, M)) != RAMC_OK) {
        free(pre);
        free(side);
        return st;
    }
    tap_stream(tap, tap_user, "vis.ln_pre_in", pre, B, N1, W);
    tap_stream(tap, tap_user, "vis.ln_pre_out", x, B, N1, W);
    if (saa) memcpy(x_loc, x, stream * sizeof(float));

    for (int l = 0; l < in->vision_layers; l++) {
        clip_block_forward(&m->vis_blocks[l], W, M, in->vision_heads, x, B, N1, 0, side, N1, N1,
                           &s);
        snprintf(name, sizeof name, "vis.blk%d.x", l);
        tap_stream(tap, tap_user, name, x, B, N1, W);
        if (saa) {
            for (size_t i = 0; i < stream; i++) x_loc[i] += side[i];
            snprintf(name, sizeof name, "vis.blk%d.x_loc", l);
            tap_stream(tap, tap_user, name, x_loc, B, N1, W);
        }
    }
    clip_block_scratch_free(&s);
    free(pre);
    free(side);
    return RAMC_OK;
}

ramc_status clip_vision_project(const ramc_clip *m, const float *x, int rows, float *out) {
    const int W = m->info.vision_width, D = m->info.embed_dim;
    float *h = ramc_malloc((size_t)rows * W * sizeof(float), "ln_post");
    if (!h) return RAMC_ERR_NOMEM;
    layernorm_forward(h, NULL, NULL, x, m->ln_post_w, m->ln_post_b, rows, W, LN_EPS);
    gemm(0, 0, rows, D, W, 1.0f, h, W, m->vis_proj, D, 0.0f, out, D);
    free(h);
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

ramc_status clip_text_forward(const ramc_clip *m, const int32_t *tokens, int n, float *x,
                              clip_tap_fn tap, void *tap_user) {
    const ramc_clip_info *in = &m->info;
    const int Wt = in->text_width, M = in->text_mlp, L = in->context_length;
    char name[64];
    ramc_status st = clip_check_tokens(m, tokens, n);
    if (st != RAMC_OK) return st;

    clip_text_embed(m, tokens, n, L, L, x);

    clip_block_scratch s;
    if ((st = clip_block_scratch_alloc(&s, n, L, Wt, M)) != RAMC_OK) return st;
    for (int l = 0; l < in->text_layers; l++) {
        clip_block_forward(&m->txt_blocks[l], Wt, M, in->text_heads, x, n, L, 1, NULL, 0, L, &s);
        snprintf(name, sizeof name, "txt.blk%d", l);
        tap_stream(tap, tap_user, name, x, n, L, Wt);
    }
    clip_block_scratch_free(&s);
    return RAMC_OK;
}

/* The EOT position: argmax of the ids (first maximum, as torch.argmax). */
int clip_eot_position(const int32_t *ids, int L) {
    int best = 0;
    for (int t = 1; t < L; t++)
        if (ids[t] > ids[best]) best = t;
    return best;
}
#define eot_position clip_eot_position

ramc_status clip_text_project(const ramc_clip *m, const int32_t *tokens, const float *x, int n,
                              float *features) {
    const int Wt = m->info.text_width, D = m->info.embed_dim, L = m->info.context_length;
    float *h = ramc_malloc((size_t)n * Wt * sizeof(float), "ln_final");
    if (!h) return RAMC_ERR_NOMEM;
    for (int s = 0; s < n; s++) {
        int t = eot_position(tokens + (size_t)s * L, L);
        layernorm_forward(h + (size_t)s * Wt, NULL, NULL, x + ((size_t)s * L + t) * Wt,
                          m->ln_final_w, m->ln_final_b, 1, Wt, LN_EPS);
    }
    gemm(0, 0, n, D, Wt, 1.0f, h, Wt, m->txt_proj, D, 0.0f, features, D);
    free(h);
    return RAMC_OK;
}

/* ------------------------------------------------- text, EOT rows only */

typedef struct {
    int eot, index;
} eot_key;

static int eot_key_cmp(const void *pa, const void *pb) {
    const eot_key *a = pa, *b = pb;
    if (a->eot != b->eot) return a->eot < b->eot ? -1 : 1;
    return a->index < b->index ? -1 : a->index > b->index;
}

ramc_status clip_text_features(const ramc_clip *m, const int32_t *tokens, int n,
                               const float *const *deep_prompts, int nc, float *features) {
    const ramc_clip_info *in = &m->info;
    const int Wt = in->text_width, M = in->text_mlp, L = in->context_length, D = in->embed_dim;
    ramc_status st = clip_check_tokens(m, tokens, n);
    if (st != RAMC_OK) return st;
    if (n <= 0) return RAMC_OK;
    int any_prompts = 0;
    if (deep_prompts)
        for (int l = 0; l < in->text_layers; l++) any_prompts |= deep_prompts[l] != NULL;
    if (!any_prompts) nc = 0;

    eot_key *keys = ramc_malloc((size_t)n * sizeof *keys, "text order");
    if (!keys) return RAMC_ERR_NOMEM;
    int Tmax = 1;
    for (int q = 0; q < n; q++) {
        keys[q].eot = eot_position(tokens + (size_t)q * L, L);
        keys[q].index = q;
        if (keys[q].eot + 1 > Tmax) Tmax = keys[q].eot + 1;
    }
    qsort(keys, (size_t)n, sizeof *keys, eot_key_cmp);

    const int chunk = n < TEXT_FEATURES_CHUNK ? n : TEXT_FEATURES_CHUNK;
    const int Rmax = nc ? (Tmax + nc < L ? Tmax + nc : L) : Tmax;
    float *x = ramc_malloc((size_t)chunk * Tmax * Wt * sizeof(float), "text stream");
    float *xp = nc ? ramc_malloc((size_t)chunk * Rmax * Wt * sizeof(float), "text stream") : NULL;
    float *pr = nc ? ramc_malloc((size_t)nc * Wt * sizeof(float), "text prompts") : NULL;
    float *h = ramc_malloc((size_t)chunk * (Wt + D) * sizeof(float), "ln_final");
    int32_t *ids = ramc_malloc((size_t)chunk * Tmax * sizeof(int32_t), "text ids");
    clip_block_scratch s = {0};
    if (!x || (nc && (!xp || !pr)) || !h || !ids) {
        st = RAMC_ERR_NOMEM;
        goto done;
    }
    if ((st = clip_block_scratch_alloc(&s, chunk, Rmax, Wt, M)) != RAMC_OK) goto done;
    float *out = h + (size_t)chunk * Wt;

    for (int first = 0; first < n; first += chunk) {
        const int k = n - first < chunk ? n - first : chunk;
        const eot_key *kk = keys + first;
        const int T = kk[k - 1].eot + 1; /* sorted: the chunk's longest */
        for (int q = 0; q < k; q++)
            memcpy(ids + (size_t)q * T, tokens + (size_t)kk[q].index * L, (size_t)T * sizeof(int32_t));
        clip_text_embed(m, ids, k, T, T, x);

        for (int l = 0; l < in->text_layers; l++) {
            const clip_block *w = &m->txt_blocks[l];
            const float *P = deep_prompts ? deep_prompts[l] : NULL;
            if (!P) {
                clip_block_forward(w, Wt, M, in->text_heads, x, k, T, 1, NULL, 0, T, &s);
                continue;
            }
            /* x+ = [x0; P; x[1 : R-nc]] on R rows; out [y0; y[1+nc : R]]; rows
             * R-nc .. T-1 (only when R = L) skip the block as in the full stream */
            const int R = T + nc < L ? T + nc : L, kept = R - nc; /* rows 0..kept-1 pass */
            for (int i = 0; i < nc * Wt; i++) pr[i] = round_to_f16(P[i]);
            for (int q = 0; q < k; q++) {
                const float *xq = x + (size_t)q * T * Wt;
                float *pq = xp + (size_t)q * R * Wt;
                memcpy(pq, xq, (size_t)Wt * sizeof(float));
                memcpy(pq + Wt, pr, (size_t)nc * Wt * sizeof(float));
                memcpy(pq + (size_t)(1 + nc) * Wt, xq + Wt, (size_t)(kept - 1) * Wt * sizeof(float));
            }
            clip_block_forward(w, Wt, M, in->text_heads, xp, k, R, 1, NULL, 0, R, &s);
            for (int q = 0; q < k; q++) {
                float *xq = x + (size_t)q * T * Wt;
                const float *pq = xp + (size_t)q * R * Wt;
                memcpy(xq, pq, (size_t)Wt * sizeof(float));
                memcpy(xq + Wt, pq + (size_t)(1 + nc) * Wt, (size_t)(kept - 1) * Wt * sizeof(float));
            }
        }
        for (int q = 0; q < k; q++)
            layernorm_forward(h + (size_t)q * Wt, NULL, NULL, x + ((size_t)q * T + kk[q].eot) * Wt,
                              m->ln_final_w, m->ln_final_b, 1, Wt, LN_EPS);
        gemm(0, 0, k, D, Wt, 1.0f, h, Wt, m->txt_proj, D, 0.0f, out, D);
        for (int q = 0; q < k; q++)
            memcpy(features + (size_t)kk[q].index * D, out + (size_t)q * D, (size_t)D * sizeof(float));
    }
done:
    clip_block_scratch_free(&s);
    free(keys);
    free(x);
    free(xp);
    free(pr);
    free(h);
    free(ids);
    return st;
}

/* ------------------------------------------------------------ public API */

ramc_status ramc_clip_encode_text(const ramc_clip *m, const int32_t *tokens, int n,
                                  float *features) {
    if (!m || !tokens || !features || n <= 0)
        return ramc_error(RAMC_ERR_INVALID_ARG, "encode_text: no model, tokens or output");
    return clip_text_features(m, tokens, n, NULL, 0, features);
}

ramc_status ramc_clip_encode_image(const ramc_clip *m, const float *images, int batch,
                                   float *tokens) {
    if (!m || !images || !tokens || batch <= 0)
        return ramc_error(RAMC_ERR_INVALID_ARG, "encode_image: no model, images or output");
    const int N1 = m->info.n_patches + 1;
    float *x = ramc_malloc((size_t)batch * N1 * m->info.vision_width * sizeof(float),
                           "vision stream");
    if (!x) return RAMC_ERR_NOMEM;
    ramc_status st = clip_vision_forward(m, images, batch, 0, x, NULL, NULL, NULL);
    if (st == RAMC_OK) st = clip_vision_project(m, x, batch * N1, tokens);
    free(x);
    return st;
}
