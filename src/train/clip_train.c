/* Training CLIP itself (ramc pretrain-clip): forward passes that keep
 * activations, backward passes that accumulate every weight gradient, the
 * parameter table and the symmetric InfoNCE loss. llm.c style: one forward
 * and one backward per layer, shapes beside each step. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "train/clip_train.h"

#define LN_EPS 1e-5f
#define NORM_EPS 1e-12f /* F.normalize */

/* ------------------------------------------------------ parameter table */

typedef struct {
    const ramc_clip *m;
    clip_param *tab;
    int n;
    size_t end;
    int bad;
} table_builder;

static void add(table_builder *t, const char *name, const float *p, int ndim, int64_t a,
                int64_t b, int64_t c, int64_t d, int decay) {
    clip_param *e = &t->tab[t->n++];
    snprintf(e->name, sizeof e->name, "%s", name);
    e->data = p;
    e->ndim = ndim;
    int64_t s[4] = {a, b, c, d};
    e->numel = 1;
    for (int i = 0; i < 4; i++) {
        e->shape[i] = i < ndim ? s[i] : 0;
        if (i < ndim) e->numel *= (size_t)s[i];
    }
    e->decay = decay;
    /* pointer arithmetic only when p is inside the storage block */
    if (!t->m->storage || p < t->m->storage) {
        t->bad = 1;
        return;
    }
    e->offset = (size_t)(p - t->m->storage);
    if (e->offset + e->numel > t->end) t->end = e->offset + e->numel;
}

static void add_block(table_builder *t, const char *prefix, int i, const clip_block *b, int W,
                      int M) {
    char n[CLIP_PARAM_NAME];
#define BLK(suffix, ptr, nd, d0, d1, decay)                                          \
    do {                                                                             \
        snprintf(n, sizeof n, "%s%d.%s", prefix, i, suffix);                         \
        add(t, n, ptr, nd, d0, d1, 0, 0, decay);                                     \
    } while (0)
    BLK("ln_1.weight", b->ln_1_w, 1, W, 0, 0);
    BLK("ln_1.bias", b->ln_1_b, 1, W, 0, 0);
    BLK("attn.in_proj_weight", b->qkv_w, 2, 3 * W, W, 1);
    BLK("attn.in_proj_bias", b->qkv_b, 1, 3 * W, 0, 0);
    BLK("attn.out_proj.weight", b->out_w, 2, W, W, 1);
    BLK("attn.out_proj.bias", b->out_b, 1, W, 0, 0);
    BLK("ln_2.weight", b->ln_2_w, 1, W, 0, 0);
    BLK("ln_2.bias", b->ln_2_b, 1, W, 0, 0);
    BLK("mlp.c_fc.weight", b->fc_w, 2, M, W, 1);
    BLK("mlp.c_fc.bias", b->fc_b, 1, M, 0, 0);
    BLK("mlp.c_proj.weight", b->proj_w, 2, W, M, 1);
    BLK("mlp.c_proj.bias", b->proj_b, 1, W, 0, 0);
#undef BLK
}

ramc_status clip_param_table(const ramc_clip *m, clip_param *tab, int *count, size_t *total) {
    const ramc_clip_info *in = &m->info;
    const int W = in->vision_width, P = in->patch_size, N1 = in->n_patches + 1;
    const int Wt = in->text_width, D = in->embed_dim;
    table_builder t = {.m = m, .tab = tab};
    /* the order of clip_load.c's load_weights, hence of the storage */
    add(&t, "visual.conv1.weight", m->patch_w, 4, W, 3, P, P, 1);
    add(&t, "visual.class_embedding", m->class_emb, 1, W, 0, 0, 0, 0);
    add(&t, "visual.positional_embedding", m->vis_pos, 2, N1, W, 0, 0, 0);
    add(&t, "visual.ln_pre.weight", m->ln_pre_w, 1, W, 0, 0, 0, 0);
    add(&t, "visual.ln_pre.bias", m->ln_pre_b, 1, W, 0, 0, 0, 0);
    for (int i = 0; i < in->vision_layers; i++)
        add_block(&t, "visual.transformer.resblocks.", i, &m->vis_blocks[i], W, in->vision_mlp);
    add(&t, "visual.ln_post.weight", m->ln_post_w, 1, W, 0, 0, 0, 0);
    add(&t, "visual.ln_post.bias", m->ln_post_b, 1, W, 0, 0, 0, 0);
    add(&t, "visual.proj", m->vis_proj, 2, W, D, 0, 0, 1);
    add(&t, "token_embedding.weight", m->tok_emb, 2, in->vocab_size, Wt, 0, 0, 0);
    add(&t, "positional_embedding", m->txt_pos, 2, in->context_length, Wt, 0, 0, 0);
    for (int i = 0; i < in->text_layers; i++)
        add_block(&t, "transformer.resblocks.", i, &m->txt_blocks[i], Wt, in->text_mlp);
    add(&t, "ln_final.weight", m->ln_final_w, 1, Wt, 0, 0, 0, 0);
    add(&t, "ln_final.bias", m->ln_final_b, 1, Wt, 0, 0, 0, 0);
    add(&t, "text_projection", m->txt_proj, 2, Wt, D, 0, 0, 1);
    if (t.bad)
        return ramc_error(RAMC_ERR_MISMATCH, "%s: the weights are not in one storage block",
                          m->path ? m->path : "CLIP model");
    *count = t.n;
    if (total) *total = t.end;
    return RAMC_OK;
}

static const float *moved(const ramc_clip *m, const float *p, float *buf) {
    return buf + (p - m->storage);
}

static void shadow_block(const ramc_clip *m, const clip_block *b, clip_block *s, float *buf) {
    s->ln_1_w = moved(m, b->ln_1_w, buf), s->ln_1_b = moved(m, b->ln_1_b, buf);
    s->qkv_w = moved(m, b->qkv_w, buf), s->qkv_b = moved(m, b->qkv_b, buf);
    s->out_w = moved(m, b->out_w, buf), s->out_b = moved(m, b->out_b, buf);
    s->ln_2_w = moved(m, b->ln_2_w, buf), s->ln_2_b = moved(m, b->ln_2_b, buf);
    s->fc_w = moved(m, b->fc_w, buf), s->fc_b = moved(m, b->fc_b, buf);
    s->proj_w = moved(m, b->proj_w, buf), s->proj_b = moved(m, b->proj_b, buf);
}

ramc_status clip_shadow(const ramc_clip *m, float *buf, ramc_clip **out) {
    *out = NULL;
    if (!m->storage)
        return ramc_error(RAMC_ERR_MISMATCH, "clip_shadow: the model has no storage block");
    ramc_clip *s = ramc_calloc(1, sizeof *s, "CLIP gradient view");
    if (!s) return RAMC_ERR_NOMEM;
    s->info = m->info;
    s->vis_blocks = ramc_calloc((size_t)m->info.vision_layers, sizeof(clip_block), "CLIP blocks");
    s->txt_blocks = ramc_calloc((size_t)m->info.text_layers, sizeof(clip_block), "CLIP blocks");
    if (!s->vis_blocks || !s->txt_blocks) {
        ramc_clip_free(s);
        return RAMC_ERR_NOMEM;
    }
    s->patch_w = moved(m, m->patch_w, buf);
    s->class_emb = moved(m, m->class_emb, buf);
    s->vis_pos = moved(m, m->vis_pos, buf);
    s->ln_pre_w = moved(m, m->ln_pre_w, buf), s->ln_pre_b = moved(m, m->ln_pre_b, buf);
    s->ln_post_w = moved(m, m->ln_post_w, buf), s->ln_post_b = moved(m, m->ln_post_b, buf);
    s->vis_proj = moved(m, m->vis_proj, buf);
    for (int i = 0; i < m->info.vision_layers; i++)
        shadow_block(m, &m->vis_blocks[i], &s->vis_blocks[i], buf);
    s->tok_emb = moved(m, m->tok_emb, buf);
    s->txt_pos = moved(m, m->txt_pos, buf);
    s->ln_final_w = moved(m, m->ln_final_w, buf), s->ln_final_b = moved(m, m->ln_final_b, buf);
    s->txt_proj = moved(m, m->txt_proj, buf);
    for (int i = 0; i < m->info.text_layers; i++)
        shadow_block(m, &m->txt_blocks[i], &s->txt_blocks[i], buf);
    *out = s; /* storage stays NULL: buf is the caller's */
    return RAMC_OK;
}

/* A gradient field, writable: the shadow's pointers lead into the caller's
 * writable buffer (const only because ramc_clip is the model's type). */
#define G(ptr) ((float *)(ptr))

/* ---------------------------------------------------------- vision tower */

ramc_status clip_vision_acts_alloc(clip_vision_acts *a, const ramc_clip *m, int B_cap) {
    const ramc_clip_info *in = &m->info;
    const size_t W = (size_t)in->vision_width, N1 = (size_t)in->n_patches + 1, B = (size_t)B_cap;
    memset(a, 0, sizeof *a);
    a->B_cap = B_cap;
    a->layers = in->vision_layers;
    a->pre = ramc_malloc(B * N1 * W * sizeof(float), "vision activations");
    a->x = ramc_malloc(B * N1 * W * sizeof(float), "vision activations");
    a->pre_mean = ramc_malloc(B * N1 * 2 * sizeof(float), "vision activations");
    a->xcls = ramc_malloc(B * W * 2 * sizeof(float), "vision activations");
    a->post_mean = ramc_malloc(B * 2 * sizeof(float), "vision activations");
    if (!a->pre || !a->x || !a->pre_mean || !a->xcls || !a->post_mean) {
        clip_vision_acts_free(a);
        return RAMC_ERR_NOMEM;
    }
    a->pre_rstd = a->pre_mean + B * N1;
    a->h = a->xcls + B * W;
    a->post_rstd = a->post_mean + B;
    a->B = B_cap;
    return RAMC_OK;
}

void clip_vision_acts_free(clip_vision_acts *a) {
    ram_vision_acts_free(&a->tower);
    free(a->pre);
    free(a->x);
    free(a->pre_mean);
    free(a->xcls);
    free(a->post_mean);
    memset(a, 0, sizeof *a);
}

ramc_status clip_vision_forward_train(const ramc_clip *m, clip_vision_acts *a,
                                      const float *images, int B, float *features) {
    const ramc_clip_info *in = &m->info;
    const int W = in->vision_width, N1 = in->n_patches + 1;
    if (B < 1 || B > a->B_cap)
        return ramc_error(RAMC_ERR_INVALID_ARG, "vision forward: batch %d outside 1..%d", B,
                          a->B_cap);
    a->B = B;
    a->images = images;
    ramc_status st = clip_vision_embed(m, NULL, images, B, a->x, a->pre, a->pre_mean, a->pre_rstd);
    if (st) return st;
    /* plain CLIP: no adapter, no side stream; the record replaces the last one */
    const ram_vision_opts plain = {.side = 0};
    ram_vision_acts_free(&a->tower);
    if ((st = ram_vision_tower(m, &plain, B, 0, in->vision_layers, a->x, NULL, &a->tower, NULL,
                               NULL)))
        return st;
    for (int b = 0; b < B; b++)
        memcpy(a->xcls + (size_t)b * W, a->x + (size_t)b * N1 * W, (size_t)W * sizeof(float));
    return clip_vision_project(m, NULL, a->xcls, B, features, a->post_mean, a->post_rstd, a->h);
}

ramc_status clip_vision_backward(const ramc_clip *m, const clip_vision_acts *a,
                                 const float *dfeat, ramc_clip *g) {
    const ramc_clip_info *in = &m->info;
    const int W = in->vision_width, P = in->patch_size, S = in->image_size, D = in->embed_dim;
    const int N = in->n_patches, N1 = N + 1, B = a->B;
    const size_t stream = (size_t)B * N1 * W;
    ramc_status st = RAMC_OK;
    float *dh = ramc_calloc((size_t)B * W * 2, sizeof(float), "vision gradients");
    float *dx = ramc_calloc(stream * 2, sizeof(float), "vision gradients");
    if (!dh || !dx) {
        free(dh);
        free(dx);
        return RAMC_ERR_NOMEM;
    }
    float *dxcls = dh + (size_t)B * W, *dpre = dx + stream;

    /* features = h @ proj:  dproj [W,D] += h^T @ dfeat;  dh [B,W] = dfeat @ proj^T */
    gemm(1, 0, W, D, B, 1.0f, a->h, W, dfeat, D, 1.0f, G(g->vis_proj), D);
    gemm(0, 1, B, W, D, 1.0f, dfeat, D, m->vis_proj, D, 0.0f, dh, W);
    layernorm_backward(dxcls, G(g->ln_post_w), G(g->ln_post_b), dh, a->xcls, m->ln_post_w,
                       a->post_mean, a->post_rstd, B, W);
    for (int b = 0; b < B; b++)
        memcpy(dx + (size_t)b * N1 * W, dxcls + (size_t)b * W, (size_t)W * sizeof(float));
    for (int l = in->vision_layers - 1; l >= 0 && !st; l--)
        st = clip_block_backward(&m->vis_blocks[l], &a->tower.blocks[l], dx, NULL,
                                 &g->vis_blocks[l]);
    if (st) goto done;
    layernorm_backward(dpre, G(g->ln_pre_w), G(g->ln_pre_b), dx, a->pre, m->ln_pre_w, a->pre_mean,
                       a->pre_rstd, B * N1, W);
    /* pre = [class | patches^T] + pos */
    float *dcls = G(g->class_emb), *dpos = G(g->vis_pos);
    for (int b = 0; b < B; b++) {
        const float *db = dpre + (size_t)b * N1 * W;
        for (int c = 0; c < W; c++) dcls[c] += db[c];
        for (size_t i = 0; i < (size_t)N1 * W; i++) dpos[i] += db[i];
    }
    /* dpatches [B,W,N] (reusing dx) <- transposed rows 1.. of dpre */
    for (int b = 0; b < B; b++)
        for (int t = 0; t < N; t++)
            for (int c = 0; c < W; c++)
                dx[((size_t)b * W + c) * N + t] = dpre[((size_t)b * N1 + 1 + t) * W + c];
    conv2d_backward(NULL, G(g->patch_w), NULL, dx, a->images, m->patch_w, B, 3, S, S, W, P, P, 0);
done:
    free(dh);
    free(dx);
    return st;
}

/* ------------------------------------------------------------ text tower */

ramc_status clip_text_acts_alloc(clip_text_acts *a, const ramc_clip *m, int B_cap) {
    const ramc_clip_info *in = &m->info;
    const size_t Wt = (size_t)in->text_width, L = (size_t)in->context_length, B = (size_t)B_cap;
    memset(a, 0, sizeof *a);
    a->B_cap = B_cap;
    a->layers = in->text_layers;
    a->L = (int)L;
    a->ids = ramc_malloc(B * L * sizeof(int32_t), "text activations");
    a->eot = ramc_malloc(B * sizeof(int), "text activations");
    a->x = ramc_malloc(B * L * Wt * sizeof(float), "text activations");
    a->xe = ramc_malloc(B * Wt * 2 * sizeof(float), "text activations");
    a->fin_mean = ramc_malloc(B * 2 * sizeof(float), "text activations");
    if (!a->ids || !a->eot || !a->x || !a->xe || !a->fin_mean) {
        clip_text_acts_free(a);
        return RAMC_ERR_NOMEM;
    }
    a->h = a->xe + B * Wt;
    a->fin_rstd = a->fin_mean + B;
    return RAMC_OK;
}

void clip_text_acts_free(clip_text_acts *a) {
    ram_text_acts_free(&a->tower);
    free(a->ids);
    free(a->eot);
    free(a->x);
    free(a->xe);
    free(a->fin_mean);
    memset(a, 0, sizeof *a);
}

ramc_status clip_text_forward_train(const ramc_clip *m, clip_text_acts *a, const int32_t *tokens,
                                    int B, float *features) {
    const ramc_clip_info *in = &m->info;
    const int L = in->context_length;
    if (B < 1 || B > a->B_cap)
        return ramc_error(RAMC_ERR_INVALID_ARG, "text forward: batch %d outside 1..%d", B,
                          a->B_cap);
    ramc_status st = clip_check_tokens(m, tokens, B);
    if (st) return st;
    int T = 1;
    for (int b = 0; b < B; b++) {
        a->eot[b] = clip_eot_position(tokens + (size_t)b * L, L);
        if (a->eot[b] + 1 > T) T = a->eot[b] + 1;
    }
    a->B = B, a->T = T;
    for (int b = 0; b < B; b++)
        memcpy(a->ids + (size_t)b * T, tokens + (size_t)b * L, (size_t)T * sizeof(int32_t));
    clip_text_embed(m, a->ids, B, T, T, a->x); /* [B,T,Wt] */
    /* plain CLIP's text tower on [B, T]; the record replaces the last one */
    ram_text_acts_free(&a->tower);
    if ((st = ram_text_tower(m, NULL, B, T, 0, in->text_layers, a->x, &a->tower, NULL, NULL,
                             NULL)))
        return st;
    return clip_text_head(m, a->x, B, T, a->eot, features, a->xe, a->fin_mean, a->fin_rstd, a->h);
}

ramc_status clip_text_backward(const ramc_clip *m, const clip_text_acts *a, const float *dfeat,
                               ramc_clip *g) {
    const ramc_clip_info *in = &m->info;
    const int Wt = in->text_width, D = in->embed_dim, B = a->B, T = a->T;
    ramc_status st = RAMC_OK;
    float *dh = ramc_calloc((size_t)B * Wt * 2, sizeof(float), "text gradients");
    float *dx = ramc_calloc((size_t)B * T * Wt, sizeof(float), "text gradients");
    if (!dh || !dx) {
        free(dh);
        free(dx);
        return RAMC_ERR_NOMEM;
    }
    float *dxe = dh + (size_t)B * Wt;
    gemm(1, 0, Wt, D, B, 1.0f, a->h, Wt, dfeat, D, 1.0f, G(g->txt_proj), D);
    gemm(0, 1, B, Wt, D, 1.0f, dfeat, D, m->txt_proj, D, 0.0f, dh, Wt);
    layernorm_backward(dxe, G(g->ln_final_w), G(g->ln_final_b), dh, a->xe, m->ln_final_w,
                       a->fin_mean, a->fin_rstd, B, Wt);
    for (int b = 0; b < B; b++)
        memcpy(dx + ((size_t)b * T + a->eot[b]) * Wt, dxe + (size_t)b * Wt,
               (size_t)Wt * sizeof(float));
    for (int l = in->text_layers - 1; l >= 0 && !st; l--)
        st = clip_block_backward(&m->txt_blocks[l], &a->tower.blocks[l], dx, NULL,
                                 &g->txt_blocks[l]);
    if (!st) {
        embedding_backward(G(g->tok_emb), dx, a->ids, B * T, Wt);
        float *dpos = G(g->txt_pos); /* rows T..L-1 were not used: no gradient */
        for (int b = 0; b < B; b++)
            for (size_t i = 0; i < (size_t)T * Wt; i++) dpos[i] += dx[(size_t)b * T * Wt + i];
    }
    free(dh);
    free(dx);
    return st;
}

/* ------------------------------------------------------------------ loss */

/* Both losses score rows of one set against rows of another by cosine.
 * cosines: an [R,D] = a/|a|, bn [C,D] = b/|b| (norms kept), cos [R,C]. */
static void cosines(const float *a, const float *b, int R, int C, int D, float *an, float *anorm,
                    float *bn, float *bnorm, float *cos) {
    l2norm_forward(an, anorm, a, R, D, NORM_EPS);
    l2norm_forward(bn, bnorm, b, C, D, NORM_EPS);
    gemm(0, 1, R, C, D, 1.0f, an, D, bn, D, 0.0f, cos, C); /* cos = an @ bn^T */
}

/* dcos [R,C] -> da [R,D], db [C,D] (each optional, OVERWRITTEN) through the
 * cosine and the two normalisations; dan, dbn are scratch of the same size. */
static void cosines_backward(const float *dcos, const float *a, const float *b, int R, int C, int D,
                             const float *an, const float *anorm, const float *bn,
                             const float *bnorm, float *dan, float *dbn, float *da, float *db) {
    if (da) {
        gemm(0, 0, R, D, C, 1.0f, dcos, C, bn, D, 0.0f, dan, D); /* dan = dcos @ bn */
        memset(da, 0, (size_t)R * D * sizeof(float));
        l2norm_backward(da, dan, a, anorm, R, D, NORM_EPS);
    }
    if (db) {
        gemm(1, 0, C, D, R, 1.0f, dcos, C, an, D, 0.0f, dbn, D); /* dbn = dcos^T @ an */
        memset(db, 0, (size_t)C * D * sizeof(float));
        l2norm_backward(db, dbn, b, bnorm, C, D, NORM_EPS);
    }
}

ramc_status clip_contrastive_loss(const float *img, const float *txt, int B, int D,
                                  float logit_scale, double *loss, float *dimg, float *dtxt,
                                  float *dscale, int *correct_i2t, int *correct_t2i) {
    if (B < 1 || D < 1) return ramc_error(RAMC_ERR_INVALID_ARG, "contrastive loss: empty batch");
    if (!isfinite(logit_scale))
        return ramc_error(RAMC_ERR_NUMERIC, "contrastive loss: logit scale is not finite");
    const size_t BB = (size_t)B * B, BD = (size_t)B * D;
    float *an = ramc_malloc((BD * 4 + BB + 2 * (size_t)B) * sizeof(float), "contrastive loss");
    double *pr = ramc_malloc(BB * 2 * sizeof(double), "contrastive loss");
    if (!an || !pr) {
        free(an);
        free(pr);
        return RAMC_ERR_NOMEM;
    }
    float *bn = an + BD, *dan = bn + BD, *dbn = dan + BD, *cosm = dbn + BD;
    float *anorm = cosm + BB, *bnorm = anorm + B;
    double *pc = pr + BB;

    cosines(img, txt, B, B, D, an, anorm, bn, bnorm, cosm); /* cos [B,B] */
    const int clamped = logit_scale > CLIP_MAX_LOGIT_SCALE;
    const double scale = exp(clamped ? CLIP_MAX_LOGIT_SCALE : logit_scale);

    /* row softmax pr (image -> texts), column softmax pc (text -> images) */
    double total = 0.0;
    int ci = 0, ct = 0;
    for (int i = 0; i < B; i++) {
        const float *ci_row = cosm + (size_t)i * B;
        double mx = -INFINITY, s = 0.0;
        int arg = 0;
        for (int j = 0; j < B; j++)
            if (scale * ci_row[j] > mx) mx = scale * ci_row[j], arg = j;
        for (int j = 0; j < B; j++) s += (pr[(size_t)i * B + j] = exp(scale * ci_row[j] - mx));
        for (int j = 0; j < B; j++) pr[(size_t)i * B + j] /= s;
        total += -(scale * ci_row[i] - mx - log(s));
        ci += arg == i;
    }
    for (int j = 0; j < B; j++) {
        double mx = -INFINITY, s = 0.0;
        int arg = 0;
        for (int i = 0; i < B; i++)
            if (scale * cosm[(size_t)i * B + j] > mx) mx = scale * cosm[(size_t)i * B + j], arg = i;
        for (int i = 0; i < B; i++) s += (pc[(size_t)i * B + j] = exp(scale * cosm[(size_t)i * B + j] - mx));
        for (int i = 0; i < B; i++) pc[(size_t)i * B + j] /= s;
        total += -(scale * cosm[(size_t)j * B + j] - mx - log(s));
        ct += arg == j;
    }
    if (loss) *loss = total / (2.0 * B);
    if (correct_i2t) *correct_i2t = ci;
    if (correct_t2i) *correct_t2i = ct;

    if (dimg || dtxt || dscale) {
        /* dlogits = ((pr - I) + (pc - I)) / (2B); dcos = scale * dlogits;
         * d/ds exp(s) = exp(s): dscale = sum(dlogits * logits) */
        double ds = 0.0;
        for (int i = 0; i < B; i++)
            for (int j = 0; j < B; j++) {
                size_t k = (size_t)i * B + j;
                double dl = (pr[k] + pc[k] - 2.0 * (i == j)) / (2.0 * B);
                ds += dl * scale * cosm[k];
                cosm[k] = (float)(dl * scale); /* cosm now holds dcos */
            }
        if (dscale) *dscale = clamped ? 0.0f : (float)ds;
        cosines_backward(cosm, img, txt, B, B, D, an, anorm, bn, bnorm, dan, dbn, dimg, dtxt);
    }
    free(an);
    free(pr);
    return RAMC_OK;
}

ramc_status clip_label_loss(const float *img, const float *lab, const unsigned char *pos, int B,
                            int K, int D, float logit_scale, double *loss, float *dimg,
                            float *dlab, float *dscale, int *counted, int *correct) {
    if (B < 1 || K < 1 || D < 1)
        return ramc_error(RAMC_ERR_INVALID_ARG, "label loss: empty batch or label set");
    if (!isfinite(logit_scale))
        return ramc_error(RAMC_ERR_NUMERIC, "label loss: logit scale is not finite");
    const size_t BK = (size_t)B * K, BD = (size_t)B * D, KD = (size_t)K * D;
    float *an = ramc_malloc((BD * 2 + KD * 2 + BK + B + K) * sizeof(float), "label loss");
    if (!an) return RAMC_ERR_NOMEM;
    float *dan = an + BD, *bn = dan + BD, *dbn = bn + KD, *cosm = dbn + KD;
    float *anorm = cosm + BK, *bnorm = anorm + B;

    cosines(img, lab, B, K, D, an, anorm, bn, bnorm, cosm); /* cos [B,K] */
    const int clamped = logit_scale > CLIP_MAX_LOGIT_SCALE;
    const double scale = exp(clamped ? CLIP_MAX_LOGIT_SCALE : logit_scale);

    int n = 0, hit = 0;
    for (int i = 0; i < B; i++) {
        const unsigned char *pi = pos + (size_t)i * K;
        int np = 0;
        for (int j = 0; j < K; j++) np += pi[j] != 0;
        n += np > 0;
    }
    /* rows become dcos in place: dlogit = (softmax - target) / n, dcos = scale * dlogit */
    double total = 0.0, ds = 0.0;
    for (int i = 0; i < B; i++) {
        const unsigned char *pi = pos + (size_t)i * K;
        float *row = cosm + (size_t)i * K;
        int np = 0, arg = 0;
        double mx = -INFINITY, sum = 0.0;
        for (int j = 0; j < K; j++) {
            np += pi[j] != 0;
            if (scale * row[j] > mx) mx = scale * row[j], arg = j;
        }
        if (np == 0) {
            memset(row, 0, (size_t)K * sizeof(float));
            continue;
        }
        hit += pi[arg] != 0;
        for (int j = 0; j < K; j++) sum += exp(scale * row[j] - mx);
        const double lse = mx + log(sum);
        for (int j = 0; j < K; j++) {
            const double target = pi[j] ? 1.0 / np : 0.0;
            const double logit = scale * row[j];
            if (pi[j]) total += -target * (logit - lse);
            const double dl = (exp(logit - lse) - target) / n;
            ds += dl * logit;
            row[j] = (float)(dl * scale);
        }
    }
    if (loss) *loss = n ? total / n : 0.0;
    if (counted) *counted = n;
    if (correct) *correct = hit;
    if (dscale) *dscale = clamped ? 0.0f : (float)ds;
    cosines_backward(cosm, img, lab, B, K, D, an, anorm, bn, bnorm, dan, dbn, dimg, dlab);
    free(an);
    return RAMC_OK;
}
