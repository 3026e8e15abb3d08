/* Finite-difference check of the backward of the ASSEMBLED RAM model
 * (ram_train_step): text tower with deep prompts, SAA vision tower with visual
 * prompts and TSS adapters, both heads and the MMC loss.
 *
 * A tiny random CLIP (OpenAI names) and adapter (official names) are written
 * to a temporary folder and loaded through the ordinary loaders. One step
 * gives the analytic gradients and the Sinkhorn plan T; then, for a few random
 * elements of every trainable tensor, the loss is recomputed at x ± h with
 * that plan held fixed (opt.fixed_plan), as the official code computes T under
 * no-grad. The layout exercises every branch of the backward: a frozen prefix
 * block (inference forward only), adapted / prompted blocks, and a
 * non-adapted block after them, in both towers.
 *
 * Numerics. The loss (≈ 5) is recomputed in double from the step's float
 * logits (the same MMC function), which removes the quantisation of the
 * float32 loss value; what remains is the float rounding inside the forward,
 * measured at about 0.2·FLT_EPSILON·|L| per evaluation. Steps: h = 1e-2·max(1,
 * |x|) for weights, 1e-3·|τ| for the temperatures, and for the prompts (which
 * the forward rounds to fp16, as the official .half()) values on a 2^-8 grid
 * inside ±1.5 with h = 2^-7, so x ± h (and x ± h/4) are exactly
 * fp16-representable and the perturbation is not rounded away.
 * An element passes when |fd − g| <= 1e-2·max(|fd|, |g|) + FLT_EPSILON·|L| /
 * (x+ − x−): the relative part covers the O(h²) truncation (observed <= 1e-3),
 * the absolute part five times the measured rounding noise.
 * TSS's channel max-pool makes the loss only piecewise smooth: when x ± h
 * crosses a change of argmax the central difference is off by O(h) (seen in
 * ~3% of the elements at h = 1e-2, converging to the analytic value below
 * h ≈ 3e-3). An element that fails at h is therefore retried once at h/4; a
 * wrong gradient fails both (scaling every analytic gradient by 1.05 makes
 * 33 of the 34 tensors fail in each teacher mode, by 1.2 all of them).
 * Each tensor must also have a non-zero analytic gradient, and its largest
 * checked gradient must exceed 10× the noise allowance, so no check is vacuous.
 * "max rel err" in the per-tensor lines is over elements with |g| > 10× the
 * allowance.
 *
 * Ablations (docs/ram.md, "Ablation switches"), two elements per tensor (the
 * largest gradient and a random one) to keep the run short:
 *  - no_saa, and plain OT (uniform_source with use_teacher = 0): KCOT, the
 *    plan held fixed as above (plain OT also checks u = 1/N);
 *  - no_tss: the 28 TSS tensors must get exactly zero gradient, and moving
 *    one of them must leave the loss bitwise unchanged; the prompts and
 *    temperatures get non-zero gradients and are checked as above;
 *  - average pooling and re-weighting: no plan (Sinkhorn must not run and a
 *    fixed_plan, even a wrong one, is ignored), so the differences run the
 *    whole step. Re-weighting's weights depend on sim; its backward must
 *    include that path, which here carries about a third of dsim (checked:
 *    > 20%), and dropping it fails nearly every element.
 * Removing the no-SAA backward's main-stream term (dx += dx_loc) fails the
 * visual prompts in the no_saa case. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/safetensors.h"
#include "model/clip.h"
#include "ram/kcot.h"
#include "ram/ram.h"
#include "ram/ram_forward.h"
#include "ram/ram_train.h"
#include "test.h"

/* ------------------------------------------------------------ tiny model */

enum {
    S = 16, P = 8, G = S / P, NP = G * G, N1 = NP + 1,
    W = 16, VL = 4, VH = 2,          /* vision width, layers, heads */
    WT = 8, TL = 4, TH = 2, L = 77,  /* text width, layers, heads, context */
    V = 64, D = 8,                   /* vocabulary, embed dim (= adapter hidden) */
    NA = 2, NC = 2, K = 3,           /* visual prompts, text prompts, gate kernel */
    B = 3, C = 3
};
/* adapted vision blocks and prompted text blocks: block 0 stays frozen (runs
 * the inference forward), block 2 is a plain block between adapted ones */
static const int vis_adapted[] = {1, 3};
static const int txt_prompted[] = {1, 2};
#define EOT_ID (V - 1)
#define SOT_ID (V - 2)

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static double urand(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return ((double)(rng_state >> 11) + 0.5) / 9007199254740992.0;
}
static double nrand(void) {
    return sqrt(-2.0 * log(urand())) * cos(6.283185307179586 * urand());
}

static int writer_ok = 1;

/* adds name[shape] with values mean + std·N(0,1) */
static void add_rand(st_writer *w, const char *name, int ndim, const int64_t *shape, double mean,
                     double std) {
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    float *x = malloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++) x[i] = (float)(mean + std * nrand());
    if (st_writer_add_f32(w, name, ST_F32, ndim, shape, x) != RAMC_OK) writer_ok = 0;
    free(x);
}
#define SHAPE(...) ((const int64_t[]){__VA_ARGS__})
#define ADD(w, name, nd, shp, mean, std) add_rand(w, name, nd, SHAPE shp, mean, std)

static void add_scalar(st_writer *w, const char *name, float v) {
    if (st_writer_add_f32(w, name, ST_F32, 0, NULL, &v) != RAMC_OK) writer_ok = 0;
}

/* prompts: 0.5·N(0,1) on a 2^-8 grid, clamped to ±1.5 (see the header) */
static void add_prompts(st_writer *w, const char *name, int rows, int cols) {
    float *x = malloc((size_t)rows * cols * sizeof(float));
    for (int i = 0; i < rows * cols; i++) {
        double v = round(0.5 * nrand() * 256.0) / 256.0;
        x[i] = (float)fmax(-1.5, fmin(1.5, v));
    }
    if (st_writer_add_f32(w, name, ST_F32, 2, SHAPE(rows, cols), x) != RAMC_OK) writer_ok = 0;
    free(x);
}

static void add_block(st_writer *w, const char *prefix, int width) {
    char n[512];
    const int M = 4 * width;
#define BN(suffix) (snprintf(n, sizeof n, "%s%s", prefix, suffix), n)
    ADD(w, BN("ln_1.weight"), 1, (width), 1.0, 0.1);
    ADD(w, BN("ln_1.bias"), 1, (width), 0.0, 0.05);
    ADD(w, BN("attn.in_proj_weight"), 2, (3 * width, width), 0.0, 1.0 / sqrt(width));
    ADD(w, BN("attn.in_proj_bias"), 1, (3 * width), 0.0, 0.02);
    ADD(w, BN("attn.out_proj.weight"), 2, (width, width), 0.0, 1.0 / sqrt(width));
    ADD(w, BN("attn.out_proj.bias"), 1, (width), 0.0, 0.02);
    ADD(w, BN("ln_2.weight"), 1, (width), 1.0, 0.1);
    ADD(w, BN("ln_2.bias"), 1, (width), 0.0, 0.05);
    ADD(w, BN("mlp.c_fc.weight"), 2, (M, width), 0.0, 1.0 / sqrt(width));
    ADD(w, BN("mlp.c_fc.bias"), 1, (M), 0.0, 0.02);
    ADD(w, BN("mlp.c_proj.weight"), 2, (width, M), 0.0, 1.0 / sqrt(M));
    ADD(w, BN("mlp.c_proj.bias"), 1, (width), 0.0, 0.02);
#undef BN
}

static int write_weights(const char *path) {
    st_writer *w = st_writer_new();
    char n[512];
    ADD(w, "visual.conv1.weight", 4, (W, 3, P, P), 0.0, 1.0 / sqrt(3.0 * P * P));
    ADD(w, "visual.class_embedding", 1, (W), 0.0, 0.5);
    ADD(w, "visual.positional_embedding", 2, (N1, W), 0.0, 0.2);
    ADD(w, "visual.ln_pre.weight", 1, (W), 1.0, 0.1);
    ADD(w, "visual.ln_pre.bias", 1, (W), 0.0, 0.05);
    ADD(w, "visual.ln_post.weight", 1, (W), 1.0, 0.1);
    ADD(w, "visual.ln_post.bias", 1, (W), 0.0, 0.05);
    ADD(w, "visual.proj", 2, (W, D), 0.0, 1.0 / sqrt(W));
    for (int i = 0; i < VL; i++) {
        snprintf(n, sizeof n, "visual.transformer.resblocks.%d.", i);
        add_block(w, n, W);
    }
    /* word embeddings large and the shared EOT row small, with strong
     * positional embeddings (the EOT sits at a different position per label):
     * the label features differ clearly, so TSS's attention over them (and
     * with it the adapter_norm_q* gradients) is far from degenerate */
    {
        float *tok = malloc((size_t)V * WT * sizeof(float));
        for (int i = 0; i < V * WT; i++) tok[i] = (float)((i / WT == EOT_ID ? 0.1 : 1.0) * nrand());
        if (st_writer_add_f32(w, "token_embedding.weight", ST_F32, 2, SHAPE(V, WT), tok)) writer_ok = 0;
        free(tok);
    }
    ADD(w, "positional_embedding", 2, (L, WT), 0.0, 0.5);
    ADD(w, "ln_final.weight", 1, (WT), 1.0, 0.1);
    ADD(w, "ln_final.bias", 1, (WT), 0.0, 0.05);
    ADD(w, "text_projection", 2, (WT, D), 0.0, 1.0 / sqrt(WT));
    for (int j = 0; j < TL; j++) {
        snprintf(n, sizeof n, "transformer.resblocks.%d.", j);
        add_block(w, n, WT);
    }
    add_scalar(w, "logit_scale", (float)log(10.0)); /* exp = 10: soft softmaxes */
    int ok = writer_ok && st_writer_save(w, path) == RAMC_OK;
    st_writer_free(w);
    return ok;
}

static int write_adapter(const char *path) {
    st_writer *w = st_writer_new();
    char n[512];
    /* temperatures chosen so that the logits stay O(1..10) (soft softmax) */
    add_scalar(w, "temperature", (float)(0.1 * exp(0.15 * nrand())));
    add_scalar(w, "temperature_loc", (float)(0.05 * exp(0.15 * nrand())));
    for (size_t j = 0; j < sizeof txt_prompted / sizeof *txt_prompted; j++) {
        snprintf(n, sizeof n, "clip_model.transformer.resblocks.%d.deep_embeds", txt_prompted[j]);
        add_prompts(w, n, NC, WT);
    }
    for (size_t v = 0; v < sizeof vis_adapted / sizeof *vis_adapted; v++) {
        char p[160];
        snprintf(p, sizeof p, "clip_model.visual.transformer.resblocks.%d.", vis_adapted[v]);
#define AN(suffix) (snprintf(n, sizeof n, "%s%s", p, suffix), n)
        add_prompts(w, AN("adapt_embeds"), NA, W);
        ADD(w, AN("conv_adapter.conv_adapter_layers1.0.weight"), 4, (D, W, 1, 1), 0.0, 1.0 / sqrt(W));
        ADD(w, AN("conv_adapter.conv_adapter_layers2.0.weight"), 4, (D, W, 3, 3), 0.0,
            1.0 / sqrt(9.0 * W));
        for (int s = 1; s <= 2; s++) {
            char q[64];
            snprintf(q, sizeof q, "conv_adapter.conv_adapter_layers%d.1.", s);
            char full[128];
            snprintf(full, sizeof full, "%sweight", q);
            ADD(w, AN(full), 1, (D), 1.0, 0.1);
            snprintf(full, sizeof full, "%sbias", q);
            ADD(w, AN(full), 1, (D), 0.0, 0.1);
            snprintf(full, sizeof full, "%srunning_mean", q);
            ADD(w, AN(full), 1, (D), 0.0, 0.1);
            float var[D];
            for (int i = 0; i < D; i++) var[i] = (float)exp(0.2 * nrand());
            snprintf(full, sizeof full, "%srunning_var", q);
            if (st_writer_add_f32(w, AN(full), ST_F32, 1, SHAPE(D), var)) writer_ok = 0;
            int64_t count = 1000 + s;
            snprintf(full, sizeof full, "%snum_batches_tracked", q);
            if (st_writer_add(w, AN(full), ST_I64, 0, NULL, &count)) writer_ok = 0;
        }
        ADD(w, AN("conv_adapter.conv_adapter_layers.weight"), 4, (2, 2, K, K), 0.0,
            1.0 / sqrt(4.0 * K * K));
        ADD(w, AN("conv_adapter.conv_adapter_final.weight"), 4, (W, D, 1, 1), 0.0, 1.0 / sqrt(D));
        static const char *norms[3] = {"adapter_norm_q1", "adapter_norm_q2", "adapter_norm_kv"};
        for (int k = 0; k < 3; k++) {
            char full[128];
            snprintf(full, sizeof full, "conv_adapter.%s.weight", norms[k]);
            ADD(w, AN(full), 1, (D), 1.0, 0.1);
            snprintf(full, sizeof full, "conv_adapter.%s.bias", norms[k]);
            ADD(w, AN(full), 1, (D), 0.0, 0.1);
        }
#undef AN
    }
    int ok = writer_ok && st_writer_save(w, path) == RAMC_OK;
    st_writer_free(w);
    return ok;
}

/* ------------------------------------------------------- adapter snapshot */

typedef struct {
    float **data;
    int64_t counts[2 * 64];
} snapshot;

static void snap_take(const ram_adapter *a, snapshot *s) {
    s->data = calloc((size_t)a->n_params, sizeof *s->data);
    for (int i = 0; i < a->n_params; i++) {
        s->data[i] = malloc((size_t)a->params[i].numel * sizeof(float));
        memcpy(s->data[i], a->params[i].data, (size_t)a->params[i].numel * sizeof(float));
    }
    for (int v = 0; v < a->n_vision_adapted; v++)
        s->counts[2 * v] = a->tss[v].bn1_count, s->counts[2 * v + 1] = a->tss[v].bn2_count;
}

static void snap_restore(ram_adapter *a, const snapshot *s) {
    for (int i = 0; i < a->n_params; i++)
        memcpy(a->params[i].data, s->data[i], (size_t)a->params[i].numel * sizeof(float));
    for (int v = 0; v < a->n_vision_adapted; v++)
        a->tss[v].bn1_count = s->counts[2 * v], a->tss[v].bn2_count = s->counts[2 * v + 1];
}

static void snap_free(const ram_adapter *a, snapshot *s) {
    for (int i = 0; i < a->n_params; i++) free(s->data[i]);
    free(s->data);
}

static void zero_grads(ram_adapter *a) {
    for (int i = 0; i < a->n_params; i++)
        if (a->params[i].grad) memset(a->params[i].grad, 0, (size_t)a->params[i].numel * sizeof(float));
}

/* ----------------------------------------------------------------- check */

typedef struct {
    const ramc_clip *m;
    ram_adapter *a;
    const float *images, *teacher_text, *targets;
    const int32_t *tokens;
    ram_train_options opt;
} problem;

/* The MMC loss (loss/mmc_loss.py) of logits [B, C] flattened, in double. */
static double mmc_double(const float *z, const float *y) {
    double m = -INFINITY, s = 0, P = 0, acc = 0;
    for (int i = 0; i < B * C; i++) m = fmax(m, z[i]);
    for (int i = 0; i < B * C; i++) s += exp(z[i] - m);
    for (int i = 0; i < B * C; i++) P += y[i];
    if (P < 1e-6) P = 1;
    for (int i = 0; i < B * C; i++) acc += y[i] * (z[i] - m - log(s));
    return -acc / P;
}

/* The LSEP ranking loss of logits [B, C], in double: per image
 * log(1 + Σ_{p pos, n neg} exp(z_n - z_p)), averaged over images. */
static double lsep_double(const float *z, const float *y) {
    double total = 0;
    for (int b = 0; b < B; b++) {
        double s = 0;
        for (int p = 0; p < C; p++)
            for (int n = 0; n < C; n++)
                if (y[b * C + p] != 0 && y[b * C + n] == 0) s += exp((double)z[b * C + n] - z[b * C + p]);
        total += log1p(s);
    }
    return total / B;
}

/* The step's loss recomputed in double from its float logits: the same
 * function, without the quantisation of the float32 loss value (1 ulp of
 * L ≈ 5 is 4.8e-7, which dominated the central-difference noise). */
static ram_loss_kind current_loss = RAM_LOSS_MMC;
static double head_loss(const ram_train_result *r, const float *targets) {
    if (current_loss == RAM_LOSS_RANK_LSEP)
        return lsep_double(r->head.logits_glb, targets) + lsep_double(r->head.logits_loc, targets);
    return mmc_double(r->head.logits_glb, targets) + mmc_double(r->head.logits_loc, targets);
}

/* loss with the plan held fixed; the adapter is restored from `snap` after */
static double loss_at(problem *pr, ram_param *p, int64_t i, float value, const snapshot *snap) {
    p->data[i] = value;
    ram_train_result res;
    ramc_status st = ram_train_step(pr->m, pr->a, pr->images, B, pr->tokens, C, pr->teacher_text,
                                    pr->targets, &pr->opt, &res, NULL, NULL);
    double loss = st == RAMC_OK ? head_loss(&res, pr->targets) : NAN;
    CHECK(st == RAMC_OK, "ram_train_step (perturbed %s[%lld]): %s", p->name, (long long)i,
          ramc_last_error());
    ram_train_result_free(&res);
    snap_restore(pr->a, snap);
    return loss;
}

static int is_prompt(const char *name) {
    return strstr(name, "deep_embeds") || strstr(name, "adapt_embeds");
}

static int is_temperature(const char *name) { return !strncmp(name, "temperature", 11); }

/* One configuration of the step: RAM as published (with or without the
 * teacher) or one of the ablations of docs/ram.md. */
typedef struct {
    const char *name;
    ram_train_options opt; /* fixed_plan is set by check_case */
    int max_el;            /* elements checked per tensor (the largest gradient first) */
} grad_case;

/* TSS's own tensors (every adapted-block tensor but the visual prompts) */
static int is_tss(const char *name) {
    return strstr(name, "conv_adapter.") != NULL;
}

static void check_case(const ramc_clip *m, const char *apath, const grad_case *gc,
                       const float *images, const int32_t *tokens, const float *teacher_text,
                       const float *targets) {
    ram_adapter *a = NULL;
    ramc_status st = ram_adapter_load(apath, m, 1, &a);
    CHECK(st == RAMC_OK, "ram_adapter_load: %s", ramc_last_error());
    if (st) return;
    problem pr = {m, a, images, teacher_text, targets, tokens, gc->opt};
    pr.opt.fixed_plan = NULL;
    const char *cname = gc->name;
    /* average pooling and re-weighting have no plan: the whole loss is
     * differentiable (re-weighting through its softmax weights too), so the
     * finite differences run the full step; with KCOT the plan is held fixed */
    const int has_plan = gc->opt.matching == RAM_MATCH_KCOT;
    const int no_tss = gc->opt.no_tss;
    const int max_el = gc->max_el < 1 ? 1 : gc->max_el > 6 ? 6 : gc->max_el;

    snapshot snap;
    snap_take(a, &snap);
    zero_grads(a);
    ram_train_result res;
    st = ram_train_step(m, a, images, B, tokens, C, teacher_text, targets, &pr.opt, &res, NULL, NULL);
    CHECK(st == RAMC_OK, "ram_train_step: %s", ramc_last_error());
    if (st) {
        snap_free(a, &snap);
        ram_adapter_free(a);
        return;
    }
    const size_t BNC = (size_t)B * NP * C;
    float *plan = malloc(BNC * sizeof(float));
    memcpy(plan, res.head.T, BNC * sizeof(float));
    const double loss0 = res.loss;
    printf("%s: loss %.6f (global %.6f, local %.6f), Sinkhorn %d iterations\n", cname, res.loss,
           res.loss_glb, res.loss_loc, res.head.batch_iters);
    if (gc->opt.uniform_source) {
        int u_ok = 1;
        for (int i = 0; i < B * NP; i++) u_ok &= res.head.u[i] == (float)(1.0 / NP);
        CHECK(u_ok, "%s: source marginal is not 1/N", cname);
    }
    if (!has_plan) {
        CHECK(res.head.batch_iters == 0, "%s: Sinkhorn ran (%d iterations)", cname,
              res.head.batch_iters);
        if (gc->opt.matching == RAM_MATCH_REWEIGHT) {
            /* the weights' own gradient path is a real part of the backward
             * here: the re-weighting gradient differs clearly from the one
             * with the weights held constant, so the finite differences below
             * (which run the full forward) would catch its omission */
            const size_t BC = (size_t)B * C;
            float *dz = malloc(BC * sizeof(float)), *d1 = calloc(BNC, sizeof(float)),
                  *d2 = calloc(BNC, sizeof(float));
            for (size_t i = 0; i < BC; i++) dz[i] = (float)(2.0 * urand() - 1.0);
            const float tl = a->temperature_loc->data[0], sc = expf(ramc_clip_get_info(m).logit_scale);
            match_reweight_backward(d1, NULL, dz, res.head.logits_loc, res.head.T, res.head.sim, sc,
                                    tl, B, NP, C);
            kcot_local_logits_backward(d2, NULL, dz, res.head.logits_loc, res.head.T, tl, B, NP, C);
            double num = 0, den = 0;
            for (size_t i = 0; i < BNC; i++)
                num += ((double)d1[i] - d2[i]) * ((double)d1[i] - d2[i]), den += (double)d1[i] * d1[i];
            printf("%s: weight-path share of dsim %.3f\n", cname, sqrt(num / den));
            CHECK(sqrt(num / den) > 0.2, "%s: weight path negligible (%.3g)", cname, sqrt(num / den));
            free(dz);
            free(d1);
            free(d2);
        }
    }
    ram_train_result_free(&res);
    /* the parameters must be untouched by the step (BN running stats aside) */
    snap_restore(a, &snap);

    /* analytic gradients, copied before the FD runs accumulate more */
    float **grad = calloc((size_t)a->n_params, sizeof *grad);
    for (int k = 0; k < a->n_params; k++) {
        if (!a->params[k].grad) continue;
        grad[k] = malloc((size_t)a->params[k].numel * sizeof(float));
        memcpy(grad[k], a->params[k].grad, (size_t)a->params[k].numel * sizeof(float));
    }

    /* holding the plan fixed reproduces the step's loss; the double loss is
     * the float one up to rounding. Without a plan, a fixed_plan (here
     * deliberately a wrong one, all zeros) must be ignored. */
    float *zero_plan = calloc(BNC, sizeof(float));
    pr.opt.fixed_plan = has_plan ? plan : zero_plan;
    double L0 = NAN;
    {
        ram_train_result r2;
        st = ram_train_step(m, a, images, B, tokens, C, teacher_text, targets, &pr.opt, &r2, NULL,
                            NULL);
        CHECK(st == RAMC_OK && r2.loss == loss0, "fixed plan loss %.9g vs %.9g",
              st == RAMC_OK ? r2.loss : NAN, loss0);
        if (st == RAMC_OK) L0 = head_loss(&r2, targets);
        CHECK(fabs(L0 - loss0) <= 1e-6 * fabs(loss0), "double loss %.9g vs float %.9g", L0, loss0);
        ram_train_result_free(&r2);
        snap_restore(a, &snap);
    }
    if (!has_plan) pr.opt.fixed_plan = NULL; /* the FD runs the whole forward */

    /* Acceptance: |fd - g| <= tol * max(|fd|, |g|) + noise / (x+ - x-).
     * tol covers the O(h^2) truncation; noise = 2 * FLT_EPSILON * |L| allows
     * for the float32 rounding inside each loss evaluation (measured: about
     * 0.2 * FLT_EPSILON * |L| between neighbouring evaluations).
     * TSS's channel max-pool makes the loss piecewise smooth: when x ± h
     * crosses a change of argmax the central difference is off by O(h)
     * (seen once or twice in 200 elements at h = 1e-2). An element that fails
     * at h is therefore retried at h/4, then h/16; a wrong gradient fails all
     * three. (With the fused attention's rounding, one BN weight of block 3,
     * whose gradient is 1% of its tensor's largest, gave fd 0.00271 at h/4 and
     * 0.00339 at h/16 around an analytic 0.00303: noise straddling the value,
     * not a biased gradient.) */
    const double tol = 1e-2, noise = FLT_EPSILON * fabs(L0);
    int n_checked = 0, n_tensors = 0, n_retried = 0, n_zero = 0;
    for (int k = 0; k < a->n_params; k++) {
        ram_param *p = &a->params[k];
        if (!p->grad) {
            CHECK(!p->trainable, "%s is trainable but has no gradient", p->name);
            continue;
        }
        n_tensors++;
        double gmax = 0;
        int64_t iarg = 0;
        for (int64_t i = 0; i < p->numel; i++)
            if (fabs(grad[k][i]) > gmax || !(grad[k][i] == grad[k][i]))
                gmax = fabs(grad[k][i]), iarg = i;
        if (no_tss && is_tss(p->name)) {
            /* without TSS its tensors take no part: exactly zero gradient,
             * and the loss does not move at all when one of them does */
            CHECK(gmax == 0, "%s: %s has a gradient (max |g| = %g at %lld)", cname, p->name, gmax,
                  (long long)iarg);
            const int64_t i = (int64_t)(urand() * (double)p->numel);
            const float x0 = snap.data[k][i];
            const double lp = loss_at(&pr, p, i, x0 + 0.25f * fmaxf(1.0f, fabsf(x0)), &snap);
            CHECK(lp == L0, "%s: perturbing %s[%lld] moved the loss (%.9g vs %.9g)", cname,
                  p->name, (long long)i, lp, L0);
            n_zero++;
            continue;
        }
        CHECK(gmax > 1e-6 && isfinite(gmax), "%s: %s: analytic gradient is all zero (max |g| = %g)",
              cname, p->name, gmax);
        /* the element of largest gradient, then distinct random ones */
        const int n_el = p->numel < max_el ? (int)p->numel : max_el;
        int64_t picked[6];
        double worst = 0, gchecked = 0, allow_max = 0;
        int bad = 0;
        for (int e = 0; e < n_el; e++) {
            int64_t i;
            int fresh;
            do {
                i = p->numel <= max_el ? e : e == 0 ? iarg : (int64_t)(urand() * (double)p->numel);
                fresh = 1;
                for (int q = 0; q < e; q++) fresh &= picked[q] != i;
            } while (!fresh);
            picked[e] = i;
            const float x0 = snap.data[k][i];
            const double g = grad[k][i];
            double h;
            if (is_prompt(p->name))
                h = 1.0 / 128.0; /* x0 on a 2^-8 grid in ±1.5: x0 ± h, h/4 are fp16-exact */
            else if (is_temperature(p->name))
                h = 1e-3 * fabs(x0);
            else
                h = 1e-2 * fmax(1.0, fabs(x0));
            double fd = 0, err = INFINITY, allow = 0;
            for (int attempt = 0; attempt < 3 && !(err <= 1); attempt++, h /= 4) {
                const float xp = (float)(x0 + h), xm = (float)(x0 - h);
                const double lp = loss_at(&pr, p, i, xp, &snap);
                const double lm = loss_at(&pr, p, i, xm, &snap);
                const double step = (double)xp - (double)xm;
                fd = (lp - lm) / step;
                allow = noise / step;
                err = fabs(fd - g) / (tol * fmax(fabs(fd), fabs(g)) + allow);
                if (attempt >= 1) n_retried++;
            }
            gchecked = fmax(gchecked, fabs(g));
            allow_max = fmax(allow_max, allow);
            const double rel = fabs(fd - g) / fmax(fmax(fabs(fd), fabs(g)), 1e-30);
            if (fabs(g) > 10 * allow) worst = fmax(worst, rel);
            n_checked++;
            if (!(err <= 1)) bad++;
            CHECK(err <= 1, "%s %s[%lld]: fd %.6g analytic %.6g (rel err %.3g, noise "
                  "allowance %.3g)", cname, p->name, (long long)i, fd, g, rel, allow);
        }
        /* the check must be able to fail: the largest checked gradient stands
         * well clear of the noise allowance */
        CHECK(gchecked > 10 * allow_max, "%s: checked gradients (max %.3g) drown in noise (%.3g)",
              p->name, gchecked, allow_max);
        printf("  %-84s max|g| %.3e  max rel err %.2e%s\n", p->name, gmax, worst,
               bad ? "  FAIL" : "");
    }
    printf("%s: %d elements of %d tensors checked, %d retried at h/4", cname, n_checked,
           n_tensors - n_zero, n_retried);
    if (no_tss) printf("; %d TSS tensors with exactly zero gradient", n_zero);
    printf("\n");
    CHECK(n_tensors == 2 + 2 + 2 * 15, "%d trainable tensors, expected 34", n_tensors);
    CHECK(n_zero == (no_tss ? 2 * 14 : 0), "%s: %d zero-gradient TSS tensors", cname, n_zero);

    for (int k = 0; k < a->n_params; k++) free(grad[k]);
    free(grad);
    free(plan);
    free(zero_plan);
    snap_free(a, &snap);
    ram_adapter_free(a);
}

int main(void) {
    char tmpdir[] = "/tmp/ramc_grad_XXXXXX";
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    char wpath[256], apath[256];
    snprintf(wpath, sizeof wpath, "%s/weights.safetensors", tmpdir);
    snprintf(apath, sizeof apath, "%s/adapter.safetensors", tmpdir);
    CHECK(write_weights(wpath), "writing %s: %s", wpath, ramc_last_error());
    CHECK(write_adapter(apath), "writing %s: %s", apath, ramc_last_error());

    ramc_clip_params cp = ramc_clip_default_params();
    cp.vision_heads = VH;
    cp.text_heads = TH;
    cp.round_fp16_like_official = 0;
    ramc_clip *m = NULL;
    ramc_status st = ramc_clip_load(wpath, &cp, &m);
    CHECK(st == RAMC_OK, "ramc_clip_load: %s", ramc_last_error());
    /* Training runs on the unpacked weights (trainer.c thaws them), and the
     * noise allowance below was measured on that path. */
    if (m) clip_thaw(m);
    if (st == RAMC_OK) {
        ramc_clip_info in = ramc_clip_get_info(m);
        CHECK(in.vision_layers == VL && in.text_layers == TL && in.vocab_size == V &&
                  in.embed_dim == D && in.n_patches == NP && in.context_length == L,
              "tiny model info");

        float *images = malloc((size_t)B * 3 * S * S * sizeof(float));
        for (int i = 0; i < B * 3 * S * S; i++) images[i] = (float)(2.0 * urand() - 1.0);
        /* [SOT, words < SOT, EOT, 0...]: the EOT (max id) is the argmax */
        int32_t *tokens = calloc((size_t)C * L, sizeof(int32_t));
        for (int c = 0; c < C; c++) {
            int len = 3 + c * 2;
            tokens[c * L] = SOT_ID;
            for (int t = 1; t <= len; t++) tokens[c * L + t] = 1 + (int32_t)(urand() * (V - 3));
            tokens[c * L + len + 1] = EOT_ID;
        }
        /* each image has a positive and a negative label */
        static const float targets[B * C] = {1, 0, 0, 0, 1, 1, 1, 0, 1};
        float *teacher_text = malloc((size_t)C * D * sizeof(float));
        st = ram_encode_text(m, NULL, tokens, C, teacher_text, NULL, NULL);
        CHECK(st == RAMC_OK, "ram_encode_text: %s", ramc_last_error());
        if (st == RAMC_OK) {
            /* RAM as published, six elements per tensor; the ablations two
             * (the largest gradient and a random one) to keep the run short */
            const ram_train_options def = ram_train_default_options();
            grad_case cases[8];
            for (int i = 0; i < 8; i++) cases[i] = (grad_case){NULL, def, i < 2 ? 6 : 2};
            cases[0].name = "use_teacher=0", cases[0].opt.use_teacher = 0;
            cases[1].name = "use_teacher=1";
            cases[2].name = "no_saa", cases[2].opt.no_saa = 1;
            cases[3].name = "no_tss", cases[3].opt.no_tss = 1;
            cases[4].name = "avgpool", cases[4].opt.matching = RAM_MATCH_AVGPOOL;
            cases[5].name = "reweight", cases[5].opt.matching = RAM_MATCH_REWEIGHT;
            cases[6].name = "plain OT (uniform_source, no teacher)";
            cases[6].opt.uniform_source = 1, cases[6].opt.use_teacher = 0;
            /* the loss ablation: a smooth ranking loss on both heads (ASL holds
             * its focusing weight constant, as the official no_grad, so its
             * gradient is not the derivative of its value by design) */
            cases[7].name = "LSEP ranking loss", cases[7].opt.loss = RAM_LOSS_RANK_LSEP;
            for (int i = 0; i < 8; i++) {
                current_loss = cases[i].opt.loss;
                check_case(m, apath, &cases[i], images, tokens, teacher_text, targets);
            }
        }
        free(images);
        free(tokens);
        free(teacher_text);
        ramc_clip_free(m);
    }
    unlink(wpath);
    unlink(apath);
    rmdir(tmpdir);
    return test_summary("test_ram_grad");
}
