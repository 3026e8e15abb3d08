/* RAM forward passes (inference; training keeps activations, see ram_train.h).
 *
 * Label features:  ram_encode_text   tokens [C, L]      -> text [C, D]
 * Image features:  ram_vision_forward images [B,3,S,S] -> x, x_loc [B, N1, W]
 *                  ram_image_features  -> img_glb [B, D], img_loc [B, N, D]
 * Matching:        ram_head_forward  -> logits, KCOT plan, scores [B, C]
 */
#ifndef RAMC_RAM_FORWARD_H
#define RAMC_RAM_FORWARD_H

#include "model/clip.h"
#include "ram/kcot.h"
#include "ram/ram.h"

/* Text tower with the adapter's deep prompts (a may be NULL: plain CLIP).
 * tokens [n, L] -> x [n, L, Wt] before ln_final. */
ramc_status ram_text_forward(const ramc_clip *m, const ram_adapter *a, const int32_t *tokens,
                             int n, float *x, clip_tap_fn tap, void *tap_user);
/* ... then ln_final at EOT and the projection: features [n, D], not normalised. */
ramc_status ram_encode_text(const ramc_clip *m, const ram_adapter *a, const int32_t *tokens,
                            int n, float *features, clip_tap_fn tap, void *tap_user);

/* Flags of ram_vision_forward. The NO_ flags are the ablations of the
 * paper's Table 6 ("w/o SAA", "w/o TSS"). Without SAA the side stream has no
 * value-value attention of its own: it follows the main stream (the plain
 * CLIP patch tokens), plus the TSS outputs. */
enum {
    RAM_VISION_TRAIN = 1,  /* BatchNorm batch statistics, running-stat update */
    RAM_VISION_NO_SAA = 2,
    RAM_VISION_NO_TSS = 4
};

/* Student vision tower: SAA side stream in every block, visual prompts and
 * TSS in the adapted blocks (a may be NULL: RAM's zero-shot SAA-CLIP, the
 * teacher). text [C, D] are the unnormalised label features TSS attends to.
 * flags: RAM_VISION_* (0 for inference).
 * x, x_loc [B, N1, W] out: main and side stream after the last block. Only
 * row 0 (the class token) of each image of x is used downstream, and when
 * the last block has no adapter (and no tap asks for it) only that row is
 * computed there: x's other rows then hold the last block's input. */
ramc_status ram_vision_forward(const ramc_clip *m, const ram_adapter *a, const float *images,
                               int B, const float *text, int C, int flags, float *x, float *x_loc,
                               clip_tap_fn tap, void *tap_user);

/* img_glb [B, D] = ln_post(x[:, 0]) @ proj; img_loc [B, N, D] = (ln_post(x_loc) @ proj)[:, 1:]. */
ramc_status ram_image_features(const ramc_clip *m, const float *x, const float *x_loc, int B,
                               float *img_glb, float *img_loc);

/* How the local branch aggregates patches into label logits (paper Table 5).
 * Plain OT is KCOT with a uniform source marginal and no teacher. */
typedef enum {
    RAM_MATCH_KCOT = 0,     /* optimal transport (Sinkhorn) — RAM */
    RAM_MATCH_AVGPOOL = 1,  /* (c) mean over patches */
    RAM_MATCH_REWEIGHT = 2  /* (d) per-label softmax re-weighting over patches */
} ram_matching;

/* Everything the matching head computes, for one batch and one label set. */
typedef struct {
    /* switches, 0 by default (RAM as published) */
    ram_matching matching;
    int uniform_source;          /* 1: u = 1/N instead of LPD ("w/o LPD", plain OT) */
    int B, N, C, D, max_iter;
    float *g_norm, *g_norms;     /* [B, D], [B]          normalised global features, norms */
    float *f_norm, *f_norms;     /* [B, N, D], [B, N] */
    float *t_norm;               /* [C, D] */
    float *logits_glb, *score_glb; /* [B, C] */
    float *sim;                  /* [B, N, C] cosine similarities */
    float *cost;                 /* [B, N, C] Sinkhorn cost */
    float *u, *r;                /* [B, N]  LPD marginal, row scaling */
    float *v, *c;                /* [B, C]  label marginal, column scaling */
    float *T;                    /* [B, N, C] transport plan (re-weighting: the weights) */
    float *err_hist;             /* [max_iter, B] */
    int *iters;                  /* [B] */
    int batch_iters;
    float *logits_loc, *score_loc, *score; /* [B, C] */
    /* If set, ram_head_forward uses this plan [B, N, C] instead of running
     * Sinkhorn. The plan carries no gradient in RAM, so a finite-difference
     * check of the backward must hold it fixed while perturbing parameters. */
    const float *fixed_plan;
    float *storage;
} ram_head;

ramc_status ram_head_alloc(ram_head *h, int B, int N, int C, int D, int max_iter);
void ram_head_free(ram_head *h);

/* logit_scale_exp = exp(CLIP logit_scale); tau_g, tau_l the temperatures;
 * extra_cost [B, N, C] (the teacher term in training) or NULL. */
ramc_status ram_head_forward(ram_head *h, const float *img_glb, const float *img_loc,
                             const float *text, float logit_scale_exp, float tau_g, float tau_l,
                             const float *extra_cost, const sinkhorn_options *opt);

#endif
