/* ramc_predict: scores for a batch of images against an encoded label set,
 * in RAM mode (global + KCOT local branch) or as the plain CLIP baseline. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "core/arena.h"
#include "core/status.h"
#include "kernels/kernels.h"
#include "ram/kcot.h"
#include "ram/ram_forward.h"

/* Below this regularisation exp(-cost/reg) can underflow in float32 (cost is
 * at most 1), so the per-image mode switches to the log-domain solver. */
#define LOG_DOMAIN_BELOW_REG 0.02f

ramc_predict_params ramc_predict_default_params(void) {
    ramc_predict_params p = {
        .mode = RAMC_PREDICT_RAM,
        .per_image_sinkhorn = 1,
        .reg = 0.1f,
        .max_iter = 100,
        .tau_global = 0.0f,
        .tau_local = 0.0f,
        .fuse_batch = 0,
        .score = RAMC_SCORE_OFFICIAL,
    };
    return p;
}

ramc_status predict_check_params(const ramc_predict_params *p) {
    if (p->mode != RAMC_PREDICT_RAM && p->mode != RAMC_PREDICT_CLIP_BASELINE)
        return ramc_error(RAMC_ERR_INVALID_ARG, "predict: unknown mode %d", p->mode);
    if (!(p->reg > 0) || !isfinite(p->reg))
        return ramc_error(RAMC_ERR_INVALID_ARG, "predict: Sinkhorn reg must be positive and finite");
    const ramc_matching mt = p->ablation.matching;
    if (mt != RAMC_MATCH_KCOT && mt != RAMC_MATCH_AVGPOOL && mt != RAMC_MATCH_REWEIGHT &&
        mt != RAMC_MATCH_OT)
        return ramc_error(RAMC_ERR_INVALID_ARG, "predict: matching %d is not 0 (KCOT), 1 (average "
                          "pooling), 2 (re-weighting) or 3 (plain OT)", (int)mt);
    if (p->score != RAMC_SCORE_OFFICIAL && p->score != RAMC_SCORE_INDEPENDENT)
        return ramc_error(RAMC_ERR_INVALID_ARG, "predict: score %d is not 0 (official) or 1 "
                          "(independent)", (int)p->score);
    if (p->threads < 0)
        return ramc_error(RAMC_ERR_INVALID_ARG, "predict: threads %d, expected >= 0 (0: the model's)",
                          p->threads);
    if (p->max_iter < 1 || p->max_iter > 100000)
        return ramc_error(RAMC_ERR_INVALID_ARG, "predict: max_iter %d outside 1..100000", p->max_iter);
    if (!(p->tau_global >= 0) || !isfinite(p->tau_global) || !(p->tau_local >= 0) ||
        !isfinite(p->tau_local))
        return ramc_error(RAMC_ERR_INVALID_ARG,
                          "predict: temperatures must be finite and >= 0 (0 = model default)");
    return RAMC_OK;
}

/* Images per tower call and per head call (docs/predict.md): one at a time
 * unless the batch is fused; the head takes the whole batch in the
 * batch-coupled Sinkhorn mode, whose stop test couples the images. */
static int tower_chunk(const ramc_predict_params *p, int B) { return p->fuse_batch ? B : 1; }
static int head_chunk(const ramc_predict_params *p, int B) {
    return p->fuse_batch || !p->per_image_sinkhorn ? B : 1;
}

/* The independent score (ramc.h, RAMC_SCORE_INDEPENDENT; docs/predict.md):
 *   score[b,c] = sigmoid((cos(g_b, t_c) - cos(g_b, ref)) * inv_tau)
 * g [n, D] image features, t [C, D] label features, ref [D] the reference
 * prompt's, none normalised; score [n, C] out. Each entry is computed from
 * its own image and label alone, with plain loops in a fixed order (double
 * accumulation) rather than a matrix product, whose blocking, and so whose
 * last bits, would change with the number of labels asked. */
static void independent_scores(float *score, const float *g, int n, const float *t, int C,
                               const float *ref, int D, double inv_tau) {
    double ref_norm = 0;
    for (int d = 0; d < D; d++) ref_norm += (double)ref[d] * ref[d];
    ref_norm = fmax(sqrt(ref_norm), 1e-12);
    for (int b = 0; b < n; b++) {
        const float *gb = g + (size_t)b * D;
        double g_norm = 0, g_ref = 0;
        for (int d = 0; d < D; d++) g_norm += (double)gb[d] * gb[d], g_ref += (double)gb[d] * ref[d];
        g_norm = fmax(sqrt(g_norm), 1e-12);
        const double cos_ref = g_ref / (g_norm * ref_norm);
        for (int c = 0; c < C; c++) {
            const float *tc = t + (size_t)c * D;
            double t_norm = 0, dot = 0;
            for (int d = 0; d < D; d++) t_norm += (double)tc[d] * tc[d], dot += (double)gb[d] * tc[d];
            const double cos_c = dot / (g_norm * fmax(sqrt(t_norm), 1e-12));
            score[(size_t)b * C + c] = (float)(1.0 / (1.0 + exp(-(cos_c - cos_ref) * inv_tau)));
        }
    }
}

/* Plain CLIP: softmax over labels of exp(logit_scale) * cos(image, label),
 * the pooled (class-token) image feature of the frozen model. Images go
 * through in chunks of `chunk` (1: bitwise batch independence). */
static ramc_status predict_clip(const ramc_model *m, ramc_arena *arena, const ramc_labels *lb,
                                const float *images, int B, int chunk, const float *ref,
                                float *scores) {
    const ramc_clip_info *in = &m->clip->info;
    const int N1 = in->n_patches + 1, D = in->embed_dim, C = lb->n;
    const size_t per_image = (size_t)3 * in->image_size * in->image_size;
    float *tokens = arena_alloc(arena, (size_t)chunk * N1 * D * sizeof(float), "image tokens");
    float *g = arena_alloc(arena, (size_t)chunk * D * sizeof(float), "image features");
    float *t = arena_alloc(arena, (size_t)C * D * sizeof(float), "label features");
    ramc_status st = tokens && g && t ? RAMC_OK : RAMC_ERR_NOMEM;
    if (st == RAMC_OK) l2norm_forward(t, NULL, lb->features_plain, C, D, 1e-12f);
    for (int b0 = 0; b0 < B && st == RAMC_OK; b0 += chunk) {
        const int n = B - b0 < chunk ? B - b0 : chunk;
        float *out = scores + (size_t)b0 * C;
        st = clip_encode_image(m->clip, arena, images + b0 * per_image, n, tokens);
        if (st != RAMC_OK) break;
        for (int b = 0; b < n; b++)
            memcpy(g + (size_t)b * D, tokens + (size_t)b * N1 * D, (size_t)D * sizeof(float));
        if (ref) {
            independent_scores(out, g, n, lb->features_plain, C, ref, D, expf(in->logit_scale));
            continue;
        }
        l2norm_forward(g, NULL, g, n, D, 1e-12f);
        gemm(0, 1, n, C, D, expf(in->logit_scale), g, D, t, D, 0.0f, out, C);
        kcot_softmax_rows(out, out, n, C);
    }
    arena_free(arena, tokens);
    arena_free(arena, g);
    arena_free(arena, t);
    return st;
}

static size_t predict_clip_bytes(const ramc_model *m, int C, int chunk) {
    const ramc_clip_info *in = &m->clip->info;
    const size_t f = sizeof(float), D = (size_t)in->embed_dim;
    return arena_size((size_t)chunk * (in->n_patches + 1) * D * f) + arena_size(chunk * D * f) +
           arena_size((size_t)C * D * f) + clip_encode_image_bytes(m->clip, chunk);
}

static ramc_status predict_ram(const ramc_model *m, ramc_arena *arena, const ramc_labels *lb,
                               const float *images, int B, const ramc_predict_params *p,
                               const float *ref, float *scores, float *plan, float *lpd) {
    const ramc_clip_info *in = &m->clip->info;
    const int N = in->n_patches, N1 = N + 1, W = in->vision_width, D = in->embed_dim, C = lb->n;
    const ram_adapter *a = m->adapter;
    const float ls_exp = expf(in->logit_scale);
    float tau_g = p->tau_global, tau_l = p->tau_local;
    if (tau_g == 0) tau_g = a ? a->temperature->data[0] : 1.0f / ls_exp;
    if (tau_l == 0) tau_l = a ? a->temperature_loc->data[0] : RAMC_ZERO_SHOT_TAU_LOCAL;
    if (!(tau_g > 0) || !(tau_l > 0) || !isfinite(tau_g) || !isfinite(tau_l))
        return ramc_error(RAMC_ERR_NUMERIC, "predict: temperatures %g / %g are not positive",
                          tau_g, tau_l);

    sinkhorn_options opt = sinkhorn_default_options();
    opt.reg = p->reg;
    opt.max_iter = p->max_iter;
    opt.mode = !p->per_image_sinkhorn            ? SINKHORN_BATCH_COUPLED
               : p->reg < LOG_DOMAIN_BELOW_REG   ? SINKHORN_LOG_DOMAIN
                                                 : SINKHORN_PER_IMAGE;
    const int vc = tower_chunk(p, B), hc = head_chunk(p, B);
    const size_t per_image = (size_t)3 * in->image_size * in->image_size;
    ram_head h = {0};
    float *g = arena_alloc(arena, (size_t)B * D * sizeof(float), "global features");
    float *f = arena_alloc(arena, (size_t)B * N * D * sizeof(float), "local features");
    ramc_status st = g && f ? RAMC_OK : RAMC_ERR_NOMEM;

    /* the towers: their streams die before the head is made */
    const size_t towers = arena_mark(arena);
    float *x = arena_alloc(arena, (size_t)vc * N1 * W * sizeof(float), "vision stream");
    float *x_loc = arena_alloc(arena, (size_t)vc * N1 * W * sizeof(float), "side stream");
    if (st == RAMC_OK && (!x || !x_loc)) st = RAMC_ERR_NOMEM;
    for (int b0 = 0; b0 < B && st == RAMC_OK; b0 += vc) {
        const int n = B - b0 < vc ? B - b0 : vc;
        /* train = 0: TSS BatchNorm uses running statistics, so an image's
         * features do not depend on its batch companions */
        st = ram_vision_forward(m->clip, arena, a, images + b0 * per_image, n, lb->features, C,
                                ram_vision_flags(&p->ablation), x, x_loc, NULL, NULL);
        if (st == RAMC_OK)
            st = ram_image_features(m->clip, arena, x, x_loc, n, g + (size_t)b0 * D,
                                    f + (size_t)b0 * N * D);
    }
    arena_free(arena, x);
    arena_free(arena, x_loc);
    arena_reset(arena, towers);

    if (st == RAMC_OK) st = ram_head_alloc(&h, arena, hc, N, C, D, opt.max_iter);
    ram_head_set_variant(&h, &p->ablation);
    for (int b0 = 0; b0 < B && st == RAMC_OK; b0 += hc) {
        st = ram_head_forward(&h, g + (size_t)b0 * D, f + (size_t)b0 * N * D, lb->features, ls_exp,
                              tau_g, tau_l, NULL, &opt);
        if (st != RAMC_OK) {
            if (hc == 1) ramc_error_prefix(st, "image %d", b0);
            break;
        }
        memcpy(scores + (size_t)b0 * C, h.score, (size_t)hc * C * sizeof(float));
        if (plan) memcpy(plan + (size_t)b0 * N * C, h.T, (size_t)hc * N * C * sizeof(float));
        if (lpd) memcpy(lpd + (size_t)b0 * N, h.u, (size_t)hc * N * sizeof(float));
    }
    ram_head_free(&h);
    /* the global features come from the main stream, which neither TSS nor
     * KCOT touch: the one part of RAM that depends on the label alone */
    if (st == RAMC_OK && ref) independent_scores(scores, g, B, lb->features, C, ref, D, 1.0 / tau_g);
    arena_free(arena, g);
    arena_free(arena, f);
    return st;
}

/* The table of shapes: predict_ram's arena at its deepest, the features of
 * the batch plus the larger of the towers' and the head's phase. */
static size_t predict_ram_bytes(const ramc_model *m, int B, int C, const ramc_predict_params *p) {
    const ramc_clip_info *in = &m->clip->info;
    const int N = in->n_patches, N1 = N + 1, W = in->vision_width, D = in->embed_dim;
    const int vc = tower_chunk(p, B), hc = head_chunk(p, B);
    const size_t f = sizeof(float);
    const size_t features = arena_size((size_t)B * D * f) + arena_size((size_t)B * N * D * f);
    size_t inner = ram_vision_forward_bytes(m->clip, m->adapter, vc, C,
                                            ram_vision_flags(&p->ablation));
    const size_t project = ram_image_features_bytes(in, vc);
    if (project > inner) inner = project;
    const size_t towers = 2 * arena_size((size_t)vc * N1 * W * f) + inner;
    const size_t head = ram_head_bytes(hc, N, C, D, p->max_iter) + sinkhorn_work_bytes(hc, N, C);
    return features + (towers > head ? towers : head);
}

size_t predict_scratch_bytes(const ramc_model *m, int B, int C, const ramc_predict_params *p) {
    return p->mode == RAMC_PREDICT_CLIP_BASELINE ? predict_clip_bytes(m, C, tower_chunk(p, B))
                                                 : predict_ram_bytes(m, B, C, p);
}

/* The checks of every call; the scratch comes from arena (a state's), or
 * with arena NULL from one made for this call alone, sized by the table. */
static ramc_status predict(const ramc_model *m, ramc_arena *arena, const ramc_labels *lb,
                           const float *images, int B, const ramc_predict_params *params,
                           float *scores, float *plan, float *lpd) {
    if (!m || !m->clip || !lb) return ramc_error(RAMC_ERR_INVALID_ARG, "predict: no model or labels");
    if (lb->model != m)
        return ramc_error(RAMC_ERR_MISMATCH,
                          "predict: the label set was encoded for another model");
    if (!images || !scores) return ramc_error(RAMC_ERR_INVALID_ARG, "predict: no images or scores buffer");
    if (B < 1 || B > RAMC_MAX_BATCH)
        return ramc_error(RAMC_ERR_LIMIT, "predict: batch of %d images, expected 1..%d", B,
                          RAMC_MAX_BATCH);
    ramc_predict_params p = params ? *params : ramc_predict_default_params();
    ramc_status st = predict_check_params(&p);
    if (st != RAMC_OK) return st;
    if (p.mode == RAMC_PREDICT_CLIP_BASELINE && (plan || lpd))
        return ramc_error(RAMC_ERR_INVALID_ARG,
                          "predict: the CLIP baseline has no transport plan or LPD marginal");
    const int S = m->clip->info.image_size;
    const size_t per_image = (size_t)3 * S * S;
    /* NaN/Inf pixels would propagate silently into every score of the image */
    for (int b = 0; b < B; b++)
        for (size_t i = 0; i < per_image; i++)
            if (!isfinite(images[b * per_image + i]))
                return ramc_error(RAMC_ERR_NUMERIC, "predict: image %d has a non-finite value", b);

    const float *ref = NULL, *ref_plain = NULL;
    if (p.score == RAMC_SCORE_INDEPENDENT && (st = labels_reference(lb, &ref, &ref_plain)) != RAMC_OK)
        return st;
    ramc_arena own = {0};
    if (!arena) {
        arena = &own;
        if ((st = arena_reserve(arena, predict_scratch_bytes(m, B, lb->n, &p)))) return st;
    }
    st = p.mode == RAMC_PREDICT_CLIP_BASELINE
             ? predict_clip(m, arena, lb, images, B, tower_chunk(&p, B), ref_plain, scores)
             : predict_ram(m, arena, lb, images, B, &p, ref, scores, plan, lpd);
    arena_end_call(arena);
    arena_release(&own);
    if (st != RAMC_OK) return st;
    for (long i = 0; i < (long)B * lb->n; i++)
        if (!isfinite(scores[i]))
            return ramc_error(RAMC_ERR_NUMERIC, "predict: image %ld: non-finite score for label \"%s\"",
                              i / lb->n, lb->names[i % lb->n]);
    return RAMC_OK;
}

/* The thread count of a call: the parameters', else the model's. */
static int call_threads(const ramc_model *m, const ramc_predict_params *params) {
    return params && params->threads > 0 ? params->threads : m ? m->threads : 0;
}

ramc_status predict_in_arena(const ramc_model *m, ramc_arena *arena, const ramc_labels *lb,
                             const float *images, int B, const ramc_predict_params *params,
                             float *scores, float *plan, float *lpd) {
    int saved = kernels_threads_begin(call_threads(m, params));
    ramc_status st = predict(m, arena, lb, images, B, params, scores, plan, lpd);
    kernels_threads_end(saved);
    return st;
}

size_t predict_scratch_bytes_for_call(const ramc_model *m, int B, int C,
                                      const ramc_predict_params *p) {
    int saved = kernels_threads_begin(call_threads(m, p));
    size_t bytes = predict_scratch_bytes(m, B, C, p);
    kernels_threads_end(saved);
    return bytes;
}

ramc_status ramc_predict(const ramc_model *m, const ramc_labels *lb, const float *images, int B,
                         const ramc_predict_params *params, float *scores, float *plan,
                         float *lpd) {
    return predict_in_arena(m, NULL, lb, images, B, params, scores, plan, lpd);
}
