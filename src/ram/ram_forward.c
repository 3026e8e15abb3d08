/* RAM inference forward: label features with deep prompts, the student
 * vision tower with the Ladder Local Adapter, and the KCOT head. */
#include "ram/ram_forward.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/half.h"
#include "kernels/kernels.h"
#include "ram/kcot.h"
#include "ram/tss.h"

#define L2_EPS 1e-12f

static void tap3(clip_tap_fn tap, void *user, const char *name, const float *data, int64_t d0,
                 int64_t d1, int64_t d2) {
    if (!tap) return;
    int64_t shape[3] = {d0, d1, d2};
    tap(user, name, data, 3, shape);
}

/* ------------------------------------------------------------------ text */

/* A prompted text block (spec §4.3): the nc prompts go right after SOT, the
 * block runs on the first L rows, and the last nc original rows skip it. */
static void prompted_text_block(const clip_block *w, const ramc_clip_info *in, const float *prompts,
                                int nc, float *x, float *xp, int n, clip_block_scratch *s) {
    const int L = in->context_length, Wt = in->text_width;
    for (int q = 0; q < n; q++) {
        const float *xq = x + (size_t)q * L * Wt;
        float *pq = xp + (size_t)q * L * Wt;
        memcpy(pq, xq, (size_t)Wt * sizeof(float));
        for (int r = 0; r < nc; r++)
            for (int c = 0; c < Wt; c++) pq[(size_t)(1 + r) * Wt + c] = round_to_f16(prompts[r * Wt + c]);
        memcpy(pq + (size_t)(1 + nc) * Wt, xq + Wt, (size_t)(L - 1 - nc) * Wt * sizeof(float));
    }
    clip_block_forward(w, Wt, in->text_mlp, in->text_heads, xp, n, L, 1, NULL, 0, L, s);
    for (int q = 0; q < n; q++) {
        float *xq = x + (size_t)q * L * Wt;
        const float *pq = xp + (size_t)q * L * Wt;
        memcpy(xq, pq, (size_t)Wt * sizeof(float));
        memcpy(xq + Wt, pq + (size_t)(1 + nc) * Wt, (size_t)(L - 1 - nc) * Wt * sizeof(float));
        /* rows L-nc .. L-1 keep their values: they skipped this block */
    }
}

ramc_status ram_text_forward(const ramc_clip *m, const ram_adapter *a, const int32_t *tokens,
                             int n, float *x, clip_tap_fn tap, void *tap_user) {
    const ramc_clip_info *in = &m->info;
    const int Wt = in->text_width, L = in->context_length;
    char name[64];
    ramc_status st = clip_check_tokens(m, tokens, n);
    if (st != RAMC_OK) return st;
    clip_text_embed(m, tokens, n, L, L, x);

    clip_block_scratch s;
    if ((st = clip_block_scratch_alloc(&s, n, L, Wt, in->text_mlp)) != RAMC_OK) return st;
    float *xp = a && a->n_text_prompted ? ramc_malloc((size_t)n * L * Wt * sizeof(float), "text")
                                         : NULL;
    if (a && a->n_text_prompted && !xp) {
        clip_block_scratch_free(&s);
        return RAMC_ERR_NOMEM;
    }
    for (int l = 0; l < in->text_layers; l++) {
        int j = a ? ram_text_prompted_index(a, l) : -1;
        if (j >= 0)
            prompted_text_block(&m->txt_blocks[l], in, a->deep_prompts[j]->data, a->n_txt_prompts,
                                x, xp, n, &s);
        else
            clip_block_forward(&m->txt_blocks[l], Wt, in->text_mlp, in->text_heads, x, n, L, 1,
                               NULL, 0, L, &s);
        snprintf(name, sizeof name, "txt.blk%d", l);
        tap3(tap, tap_user, name, x, n, L, Wt);
    }
    free(xp);
    clip_block_scratch_free(&s);
    return RAMC_OK;
}

ramc_status ram_encode_text(const ramc_clip *m, const ram_adapter *a, const int32_t *tokens,
                            int n, float *features, clip_tap_fn tap, void *tap_user) {
    const ramc_clip_info *in = &m->info;
    if (!tap) {
        /* EOT rows only, in sorted chunks (clip_text_features); the full
         * 77-row stream below is kept for the taps of the golden check */
        const float **prompts = NULL;
        if (a && a->n_text_prompted) {
            prompts = ramc_calloc((size_t)in->text_layers, sizeof *prompts, "text prompts");
            if (!prompts) return RAMC_ERR_NOMEM;
            for (int j = 0; j < a->n_text_prompted; j++)
                prompts[a->text_layers[j]] = a->deep_prompts[j]->data;
        }
        ramc_status st = clip_text_features(m, tokens, n, prompts, prompts ? a->n_txt_prompts : 0,
                                            features);
        free(prompts);
        return st;
    }
    float *x = ramc_malloc((size_t)n * in->context_length * in->text_width * sizeof(float), "text");
    if (!x) return RAMC_ERR_NOMEM;
    ramc_status st = ram_text_forward(m, a, tokens, n, x, tap, tap_user);
    if (st == RAMC_OK) st = clip_text_project(m, tokens, x, n, features);
    free(x);
    return st;
}

/* ---------------------------------------------------------------- vision */

static void tap_tss(clip_tap_fn tap, void *user, int layer, const tss_acts *t) {
    if (!tap) return;
    char name[96];
    const int64_t B = t->B, H = t->H, g = t->g, N = t->N;
    int64_t chw[4] = {B, H, g, g}, two[4] = {B, 2, g, g}, tok[3] = {B, N, H},
            out[3] = {B, N + 1, t->W};
#define TAP(suffix, data, nd, shape)                                              \
    snprintf(name, sizeof name, "vis.blk%d.adapter." suffix, layer);            \
    tap(user, name, data, nd, shape)
    TAP("s1", t->s[0], 4, chw);
    TAP("s2", t->s[1], 4, chw);
    TAP("cattn1", t->cattn[0], 3, tok);
    TAP("cattn2", t->cattn[1], 3, tok);
    TAP("pool", t->pool, 4, two);
    TAP("gate_logits", t->gate_logits, 4, two);
    TAP("fused", t->fused, 4, chw);
    TAP("out", t->out, 3, out);
#undef TAP
}

ramc_status ram_vision_forward(const ramc_clip *m, const ram_adapter *a, const float *images,
                               int B, const float *text, int C, int flags, float *x, float *x_loc,
                               clip_tap_fn tap, void *tap_user) {
    const ramc_clip_info *in = &m->info;
    const int W = in->vision_width, M = in->vision_mlp, N1 = in->n_patches + 1;
    const int na = a ? a->n_vis_prompts : 0, T = N1 + na;
    const int saa = !(flags & RAM_VISION_NO_SAA), use_tss = !(flags & RAM_VISION_NO_TSS);
    const size_t stream = (size_t)B * N1 * W;
    char name[64];
    ramc_status st;
    float *pre = tap ? ramc_malloc(stream * sizeof(float), "ln_pre input") : NULL;
    float *side = ramc_malloc(stream * sizeof(float), "side stream");
    float *xp = na ? ramc_malloc((size_t)B * T * W * sizeof(float), "prompted stream") : NULL;
    tss_acts acts = {0};
    clip_block_scratch s = {0};
    if ((tap && !pre) || !side || (na && !xp)) {
        st = RAMC_ERR_NOMEM;
        goto done;
    }
    if ((st = clip_vision_embed(m, images, B, x, pre)) != RAMC_OK) goto done;
    if ((st = clip_block_scratch_alloc(&s, B, T, W, M)) != RAMC_OK) goto done;
    if (a && a->n_vision_adapted &&
        (st = tss_acts_alloc(&acts, B, in->grid, W, a->hidden, C, a->gate_kernel)) != RAMC_OK)
        goto done;
    tap3(tap, tap_user, "vis.ln_pre_in", pre, B, N1, W);
    tap3(tap, tap_user, "vis.ln_pre_out", x, B, N1, W);
    memcpy(x_loc, x, stream * sizeof(float));

    for (int l = 0; l < in->vision_layers; l++) {
        int v = a ? ram_vision_adapted_index(a, l) : -1;
        if (!saa) memcpy(side, x, stream * sizeof(float)); /* side follows the main stream */
        if (v < 0 && saa && !tap && l == in->vision_layers - 1) {
            /* only the class token of the last block's main stream is read */
            clip_block_forward_cls(&m->vis_blocks[l], W, M, in->vision_heads, x, B, N1, side, N1,
                                   &s);
        } else if (v < 0) {
            clip_block_forward(&m->vis_blocks[l], W, M, in->vision_heads, x, B, N1, 0,
                               saa ? side : NULL, N1, N1, &s);
        } else {
            /* visual prompts appended after the patches, rounded to fp16 as .half() */
            const float *prompts = a->tss[v].prompts->data;
            for (int b = 0; b < B; b++) {
                float *pb = xp + (size_t)b * T * W;
                memcpy(pb, x + (size_t)b * N1 * W, (size_t)N1 * W * sizeof(float));
                for (int i = 0; i < na * W; i++) pb[(size_t)N1 * W + i] = round_to_f16(prompts[i]);
            }
            clip_block_forward(&m->vis_blocks[l], W, M, in->vision_heads, xp, B, T, 0,
                               saa ? side : NULL, N1, N1, &s);
            for (int b = 0; b < B; b++)
                memcpy(x + (size_t)b * N1 * W, xp + (size_t)b * T * W,
                       (size_t)N1 * W * sizeof(float));
        }
        if (!saa) /* the side update is the main stream's change in this block */
            for (size_t i = 0; i < stream; i++) side[i] = x[i] - side[i];
        if (v >= 0 && use_tss) {
            tss_forward(&a->tss[v], &acts, x, text, flags & RAM_VISION_TRAIN);
            tap_tss(tap, tap_user, l, &acts);
            for (size_t i = 0; i < stream; i++) x_loc[i] += side[i] + acts.out[i];
        } else {
            for (size_t i = 0; i < stream; i++) x_loc[i] += side[i];
        }
        snprintf(name, sizeof name, "vis.blk%d.x", l);
        tap3(tap, tap_user, name, x, B, N1, W);
        snprintf(name, sizeof name, "vis.blk%d.x_loc", l);
        tap3(tap, tap_user, name, x_loc, B, N1, W);
    }
done:
    tss_acts_free(&acts);
    clip_block_scratch_free(&s);
    free(pre);
    free(side);
    free(xp);
    return st;
}

ramc_status ram_image_features(const ramc_clip *m, const float *x, const float *x_loc, int B,
                               float *img_glb, float *img_loc) {
    const ramc_clip_info *in = &m->info;
    const int W = in->vision_width, D = in->embed_dim, N = in->n_patches, N1 = N + 1;
    float *cls = ramc_malloc((size_t)B * W * sizeof(float), "class tokens");
    float *all = ramc_malloc((size_t)B * N1 * D * sizeof(float), "local features");
    ramc_status st = (cls && all) ? RAMC_OK : RAMC_ERR_NOMEM;
    if (st == RAMC_OK) {
        for (int b = 0; b < B; b++)
            memcpy(cls + (size_t)b * W, x + (size_t)b * N1 * W, (size_t)W * sizeof(float));
        st = clip_vision_project(m, cls, B, img_glb);
    }
    if (st == RAMC_OK) st = clip_vision_project(m, x_loc, B * N1, all);
    if (st == RAMC_OK)
        for (int b = 0; b < B; b++)
            memcpy(img_loc + (size_t)b * N * D, all + ((size_t)b * N1 + 1) * D,
                   (size_t)N * D * sizeof(float));
    free(cls);
    free(all);
    return st;
}

/* ------------------------------------------------------------------ head */

ramc_status ram_head_alloc(ram_head *h, int B, int N, int C, int D, int max_iter) {
    memset(h, 0, sizeof *h);
    h->B = B, h->N = N, h->C = C, h->D = D, h->max_iter = max_iter;
    const size_t BC = (size_t)B * C, BNC = (size_t)B * N * C;
    size_t total = (size_t)B * D * 2 + (size_t)B * N * D * 2 + (size_t)C * D + 5 * BC + 3 * BNC +
                   2 * (size_t)B * N + 2 * BC + (size_t)max_iter * B + BC;
    h->storage = ramc_calloc(total, sizeof(float), "RAM head");
    h->iters = ramc_calloc((size_t)B, sizeof(int), "RAM head");
    if (!h->storage || !h->iters) {
        ram_head_free(h);
        return RAMC_ERR_NOMEM;
    }
    float *p = h->storage;
#define TAKE(field, count) (h->field = p, p += (count))
    TAKE(g_norm, (size_t)B * D);
    TAKE(g_norms, (size_t)B);
    TAKE(f_norm, (size_t)B * N * D);
    TAKE(f_norms, (size_t)B * N);
    TAKE(t_norm, (size_t)C * D);
    TAKE(logits_glb, BC);
    TAKE(score_glb, BC);
    TAKE(sim, BNC);
    TAKE(cost, BNC);
    TAKE(T, BNC);
    TAKE(u, (size_t)B * N);
    TAKE(r, (size_t)B * N);
    TAKE(v, BC);
    TAKE(c, BC);
    TAKE(err_hist, (size_t)max_iter * B);
    TAKE(logits_loc, BC);
    TAKE(score_loc, BC);
    TAKE(score, BC);
#undef TAKE
    return RAMC_OK;
}

void ram_head_free(ram_head *h) {
    free(h->storage);
    free(h->iters);
    memset(h, 0, sizeof *h);
}

ramc_status ram_head_forward(ram_head *h, const float *img_glb, const float *img_loc,
                             const float *text, float logit_scale_exp, float tau_g, float tau_l,
                             const float *extra_cost, const sinkhorn_options *opt) {
    const int B = h->B, N = h->N, C = h->C, D = h->D;
    l2norm_forward(h->g_norm, h->g_norms, img_glb, B, D, L2_EPS);
    l2norm_forward(h->f_norm, h->f_norms, img_loc, B * N, D, L2_EPS);
    l2norm_forward(h->t_norm, NULL, text, C, D, L2_EPS);

    kcot_global_logits_forward(h->logits_glb, h->g_norm, h->t_norm, tau_g, B, C, D);

    gemm(0, 1, B * N, C, D, 1.0f, h->f_norm, D, h->t_norm, D, 0.0f, h->sim, C);
    kcot_cost_forward(h->cost, h->sim, logit_scale_exp, B, N, C);
    if (extra_cost)
        for (long i = 0; i < (long)B * N * C; i++) h->cost[i] += extra_cost[i];
    if (h->uniform_source)
        kcot_uniform(h->u, B, N);
    else
        kcot_lpd_marginal(h->u, h->sim, 0.1f, B, N, C);
    kcot_uniform(h->v, B, C);
    if (h->matching == RAM_MATCH_AVGPOOL) {
        match_avgpool_forward(h->logits_loc, h->sim, tau_l, B, N, C);
        for (long i = 0; i < (long)B * N * C; i++) h->T[i] = 1.0f / (float)(N * C);
        h->batch_iters = 0;
    } else if (h->matching == RAM_MATCH_REWEIGHT) {
        match_reweight_forward(h->logits_loc, h->T, h->sim, logit_scale_exp, tau_l, B, N, C);
        h->batch_iters = 0;
    } else if (h->fixed_plan) {
        memcpy(h->T, h->fixed_plan, (size_t)B * N * C * sizeof(float));
    } else {
        ramc_status st = sinkhorn(h->T, h->r, h->c, h->iters, &h->batch_iters, h->err_hist, h->u,
                                  h->v, h->cost, B, N, C, opt);
        if (st != RAMC_OK) return st;
    }
    if (h->matching == RAM_MATCH_KCOT)
        kcot_local_logits_forward(h->logits_loc, h->T, h->sim, tau_l, B, N, C);
    kcot_score(h->score, h->score_glb, h->score_loc, h->logits_glb, h->logits_loc, B, C);
    return RAMC_OK;
}
