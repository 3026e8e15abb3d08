/* Benchmarks on a random CLIP: model construction, the scenarios, timing,
 * FLOP counts and the machine facts reported beside the numbers. The two
 * scenarios that work on files live apart: label_cache_scenario.c and
 * e2e_scenario.c (bench_internal.h). */
#include "bench/bench.h"
#include "bench/bench_internal.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


#include "core/rng.h"
#include "kernels/kernels.h"
#include "text/text.h"
#include "ram/ram.h"
#include "ram/ram_forward.h"
#include "ram/ram_train.h"

/* ------------------------------------------------------------- shapes */

ramc_clip_info bench_clip_shape(bench_size size) {
    ramc_clip_info in;
    memset(&in, 0, sizeof in);
    if (size == BENCH_SIZE_TINY) {
        in.image_size = 32, in.patch_size = 8;
        in.vision_width = 64, in.vision_layers = 4, in.vision_heads = 2, in.vision_mlp = 256;
        in.text_width = 32, in.text_layers = 4, in.text_heads = 2, in.text_mlp = 128;
        in.context_length = 16, in.vocab_size = 49408, in.embed_dim = 32;
    } else {
        in.image_size = 224, in.patch_size = 16;
        in.vision_width = 768, in.vision_layers = 12, in.vision_heads = 12, in.vision_mlp = 3072;
        in.text_width = 512, in.text_layers = 12, in.text_heads = 8, in.text_mlp = 2048;
        in.context_length = 77, in.vocab_size = 49408, in.embed_dim = 512;
    }
    in.grid = in.image_size / in.patch_size;
    in.n_patches = in.grid * in.grid;
    in.logit_scale = logf(100.0f);
    return in;
}

/* ----------------------------------------------------------- scenarios */

/* Official figures: the reference implementation measured earlier (docs/performance.md), best configuration
 * (AVX-512 kernels, 2 threads); NUS was measured with Haswell kernels only. */
static const bench_scenario scenarios[] = {
    {"clip_encode_b1", BENCH_KIND_CLIP, 1, 0, 0, "images/s", 7.8, 1730,
     "plain CLIP image encoding (all tokens projected), batch 1"},
    {"clip_encode_b8", BENCH_KIND_CLIP, 8, 0, 0, "images/s", 6.1, 1850,
     "plain CLIP image encoding, batch 8"},
    {"ram_coco_b1_cached", BENCH_KIND_RAM, 1, 65, 0, "images/s", 5.35, 2870,
     "RAM inference, COCO GZSL 65 labels, label features cached, batch 1"},
    {"ram_coco_b8_cached", BENCH_KIND_RAM, 8, 65, 0, "images/s", 6.19, 2880,
     "RAM inference, COCO GZSL 65 labels, label features cached, batch 8"},
    {"ram_coco_b8_uncached", BENCH_KIND_RAM_TEXT, 8, 65, 0, "images/s", 3.17, 2880,
     "RAM inference, COCO GZSL, label features recomputed per batch, batch 8"},
    {"ram_nus_b8_cached", BENCH_KIND_RAM, 8, 1006, 1, "images/s", 3.33, 5120,
     "RAM inference, NUS GZSL 1006 labels, label features cached, batch 8"},
    {"text_coco", BENCH_KIND_TEXT, 65, 65, 0, "prompts/s", 49, 0,
     "label encoding with deep prompts (COCO adapter), 65 prompts"},
    {"text_nus", BENCH_KIND_TEXT, 1006, 1006, 1, "prompts/s", 24, 0,
     "label encoding with deep prompts (NUS adapter), 1006 prompts"},
    {"train_b8", BENCH_KIND_TRAIN, 8, 48, 0, "images/s", 1.78, 3350,
     "training step, 48 seen labels, teacher included, batch 8"},
    {"train_b32", BENCH_KIND_TRAIN, 32, 48, 0, "images/s", 0, 0,
     "training step, 48 seen labels, teacher included, batch 32"},
    {"label_cache_10k", BENCH_KIND_LABEL_CACHE, 0, 10000, 0, "labels/s", 0, 0,
     "10k labels through the label cache (COCO adapter): cold (text tower), then warm"},
    {"predict_folder_e2e", BENCH_KIND_PREDICT_E2E, 8, 65, 0, "images/s", 0, 0,
     "ramc predict's path: 32 JPEG files (640x480) decoded on a worker thread while the model "
     "runs, batch 8, 65 labels, JSON out; and the model alone on the same images"},
};

int bench_scenario_count(void) { return (int)(sizeof scenarios / sizeof scenarios[0]); }

const bench_scenario *bench_scenario_get(int i) {
    return i >= 0 && i < bench_scenario_count() ? &scenarios[i] : NULL;
}

int bench_scenario_find(const char *name) {
    for (int i = 0; name && i < bench_scenario_count(); i++)
        if (!strcmp(scenarios[i].name, name)) return i;
    return -1;
}

/* ---------------------------------------------------------- FLOP counts */

/* One pre-LN block over T rows: the four projections and the MLP, then the
 * two attention products (scores and weighted sum). */
static double block_flop(double T, double W, double M) {
    return 2 * T * (4 * W * W + 2 * W * M) + 4 * T * T * W;
}

double bench_vit_flop(const ramc_clip_info *in) {
    const double W = in->vision_width, P = in->patch_size, N = in->n_patches;
    return 2 * N * W * 3 * P * P + in->vision_layers * block_flop(N + 1, W, in->vision_mlp);
}

double bench_ram_vision_flop(const ramc_clip_info *in, int n_adapted, int n_vis_prompts,
                             int n_labels) {
    const double W = in->vision_width, N = in->n_patches, N1 = N + 1, H = in->embed_dim;
    const double Np = N1 + n_vis_prompts, M = in->vision_mlp;
    double f = 2 * N * W * 3 * in->patch_size * in->patch_size;
    for (int l = 0; l < in->vision_layers; l++) {
        const int adapted = l >= in->vision_layers - n_adapted;
        f += block_flop(adapted ? Np : N1, W, M);
        f += 4 * N1 * N1 * W + 2 * N1 * W * W; /* SAA: value-value attention + out_proj */
        if (adapted)                           /* TSS: 1x1 + 3x3 convs, output 1x1, attention */
            f += 2 * N * W * H * (1 + 9 + 1) + 2 * 4 * N * H * n_labels;
    }
    return f;
}

/* The projections of one block over T rows (no attention products). */
static double block_linear_flop(double T, double W, double M) {
    return 2 * T * (4 * W * W + 2 * W * M);
}

/* SAA's side stream in a block over T rows: value-value attention and the
 * out-projection (its value rows come from the block's own in-projection). */
static double saa_flop(double T, double W) { return 4 * T * T * W + 2 * T * W * W; }

/* TSS over N patches: 1x1 and 3x3 convolutions W -> H, the output 1x1
 * H -> W, and the label cross-attention (logits and mixing, two heads'
 * worth as ram_forward computes it). */
static double tss_flop(double N, double W, double H, double C) {
    return 2 * N * W * H * (1 + 9 + 1) + 2 * 4 * N * H * C;
}

double bench_train_flop(const ramc_clip_info *in, int n_adapted, int n_vis_prompts, int n_labels) {
    const double W = in->vision_width, M = in->vision_mlp, N = in->n_patches, N1 = N + 1;
    const double Np = N1 + n_vis_prompts, D = in->embed_dim, C = n_labels;
    const int L = in->vision_layers, first = L - n_adapted;
    double f = 2 * N * W * 3 * in->patch_size * in->patch_size; /* patch embedding */
    /* the shared frozen prefix, both streams */
    f += first * (block_flop(N1, W, M) + saa_flop(N1, W));
    /* the teacher's blocks; its last keeps only the side stream (value rows) */
    if (n_adapted > 0)
        f += (n_adapted - 1) * (block_flop(N1, W, M) + saa_flop(N1, W)) + 2 * N1 * W * W +
             saa_flop(N1, W);
    /* the student's adapted blocks forward, then backward: input gradients of
     * the frozen projections (a forward's worth), the fused attention
     * backward (2.5 forwards: it recomputes the scores), and TSS's input and
     * weight gradients (two forwards) */
    for (int l = 0; l < n_adapted; l++) {
        f += block_flop(Np, W, M) + saa_flop(N1, W) + tss_flop(N, W, D, C);
        f += block_linear_flop(Np, W, M) + 2.5 * 4 * Np * Np * W;
        f += 2 * N1 * W * W + 2.5 * 4 * N1 * N1 * W;
        f += 2 * tss_flop(N, W, D, C);
    }
    /* ln_post + projection of the side streams (student, teacher) and the
     * student's backward through it */
    f += 3 * 2 * N1 * W * D;
    return f;
}

double bench_text_flop(const ramc_clip_info *in) {
    return in->text_layers * block_flop(in->context_length, in->text_width, in->text_mlp) +
           2.0 * in->text_width * in->embed_dim;
}

/* ------------------------------------------------------------ machine */

double bench_peak_rss_mb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    double kb = -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmHWM:", 6)) {
            kb = strtod(line + 6, NULL);
            break;
        }
    fclose(f);
    return kb < 0 ? -1 : kb / 1024.0;
}

int bench_reset_peak_rss(void) {
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f) return -1;
    int ok = fputs("5", f) >= 0;
    return fclose(f) == 0 && ok ? 0 : -1;
}

void bench_set_threads(int n) { kernels_set_num_threads(n); }

int bench_get_threads(void) { return kernels_get_num_threads(); }
const char *bench_blas_config(void) { return openblas_get_config(); }
const char *bench_blas_core(void) { return openblas_get_corename(); }

/* ------------------------------------------------------------- running */

/* Synthetic prompts "[SOT] a photo of a <id> . [EOT]" (CLIP ids 320 'a',
 * 1125 'photo', 539 'of', 269 '.'), one distinct id per label, so every
 * label has its own features and the EOT sits where a real short label's does. */
void bench_fill_tokens(int32_t *t, int n, int L) {
    memset(t, 0, (size_t)n * L * sizeof *t);
    for (int i = 0; i < n; i++) {
        const int32_t row[8] = {RAMC_SOT_ID, 320, 1125, 539, 320, 1000 + i, 269, RAMC_EOT_ID};
        memcpy(t + (size_t)i * L, row, sizeof row);
    }
}

static void ctx_free(bench_ctx *c) {
    label_cache_free(c);
    e2e_free(c);
    ram_adapter_free(c->a);
    free(c->images), free(c->out), free(c->text), free(c->teacher_text), free(c->targets);
    free(c->x), free(c->x_loc), free(c->g), free(c->f), free(c->tokens);
    ram_head_free(&c->head);
    ram_text_cache_free(&c->text_cache);
    arena_release(&c->scratch);
}

/* Everything outside the timing: adapter, inputs, cached label features and
 * the output buffers a caller would keep between batches. */
static ramc_status ctx_setup(bench_ctx *c, const ramc_clip *m, const bench_scenario *sc,
                             const bench_options *opt) {
    const ramc_clip_info *in = &m->info;
    const uint64_t seed = opt->seed;
    memset(c, 0, sizeof *c);
    c->m = m, c->sc = sc;
    c->B = sc->kind == BENCH_KIND_TEXT ? 0 : sc->batch;
    c->C = sc->labels, c->N = in->n_patches, c->N1 = in->n_patches + 1, c->D = in->embed_dim;
    if (sc->kind == BENCH_KIND_LABEL_CACHE) {
        if (opt->cache_labels > 0) c->C = opt->cache_labels;
        return label_cache_setup(c, m, opt, seed);
    }
    if (in->vocab_size <= RAMC_EOT_ID || in->context_length < 8 + 4 ||
        in->vocab_size <= 1000 + c->C)
        return ramc_error(RAMC_ERR_INVALID_ARG,
                          "bench: the model needs CLIP's vocabulary (%d ids) and a context of at "
                          "least 12 tokens for the synthetic prompts", RAMC_EOT_ID + 1);
    const size_t B = (size_t)c->B, C = (size_t)c->C, N = (size_t)c->N, N1 = (size_t)c->N1,
                 D = (size_t)c->D, W = (size_t)in->vision_width, L = (size_t)in->context_length;
    ramc_status st;

    if (sc->kind != BENCH_KIND_CLIP) {
        ram_config cfg = ram_config_preset(sc->nus ? RAM_PRESET_NUS : RAM_PRESET_COCO, in);
        if ((st = ram_adapter_create(m, &cfg, seed, sc->kind == BENCH_KIND_TRAIN, &c->a))) return st;
        /* inference scenarios: the adapter's weights are final, as ramc_model_load makes them */
        if (sc->kind != BENCH_KIND_TRAIN && (st = ram_adapter_freeze(c->a, opt->frozen, opt->bf16)))
            return st;
        c->tokens = ramc_malloc(C * L * sizeof(int32_t), "bench tokens");
        c->text = ramc_malloc(C * D * sizeof(float), "bench label features");
        if (!c->tokens || !c->text) return RAMC_ERR_NOMEM;
        bench_fill_tokens(c->tokens, c->C, (int)L);
    }
    if (B && sc->kind != BENCH_KIND_PREDICT_E2E) {
        ramc_rng rng;
        rng_seed(&rng, seed + 1);
        const size_t n = B * 3 * (size_t)in->image_size * in->image_size;
        if (!(c->images = ramc_malloc(n * sizeof(float), "bench images"))) return RAMC_ERR_NOMEM;
        /* roughly the range of normalised pixels (mean 0.5, std 0.5) */
        for (size_t i = 0; i < n; i++) c->images[i] = (float)(2.0 * rng_uniform(&rng) - 1.0);
    }
    switch (sc->kind) {
    case BENCH_KIND_CLIP:
        if (!(c->out = ramc_malloc(B * N1 * D * sizeof(float), "bench tokens out")))
            return RAMC_ERR_NOMEM;
        if ((st = arena_reserve(&c->scratch, clip_encode_image_bytes(m, c->B)))) return st;
        break;
    case BENCH_KIND_RAM:
    case BENCH_KIND_RAM_TEXT:
        /* Cached: the label features of this vocabulary and adapter, once. */
        if (sc->kind == BENCH_KIND_RAM &&
            (st = ram_encode_text(m, c->a, c->tokens, c->C, c->text, NULL, NULL)))
            return st;
        c->x = ramc_malloc(B * N1 * W * sizeof(float), "bench vision stream");
        c->x_loc = ramc_malloc(B * N1 * W * sizeof(float), "bench side stream");
        c->g = ramc_malloc(B * D * sizeof(float), "bench global features");
        c->f = ramc_malloc(B * N * D * sizeof(float), "bench local features");
        if (!c->x || !c->x_loc || !c->g || !c->f) return RAMC_ERR_NOMEM;
        c->so = sinkhorn_default_options();
        /* prediction's setting: each image's Sinkhorn stops on its own test */
        c->so.mode = SINKHORN_PER_IMAGE;
        c->so.scratch = &c->scratch;
        if ((st = ram_head_alloc(&c->head, NULL, c->B, c->N, c->C, c->D, c->so.max_iter))) return st;
        {
            /* the scratch of the timed calls, sized once from the table of
             * shapes as ramc_state_reserve does: the phases run one after
             * another, so the largest of them */
            size_t need = ram_vision_forward_bytes(m, c->a, c->B, c->C, 0);
            const size_t project = ram_image_features_bytes(in, c->B);
            const size_t head = sinkhorn_work_bytes(c->B, c->N, c->C);
            if (project > need) need = project;
            if (head > need) need = head;
            if ((st = arena_reserve(&c->scratch, need))) return st;
        }
        break;
    case BENCH_KIND_TEXT:
    case BENCH_KIND_LABEL_CACHE: /* label_cache_setup */
        break;
    case BENCH_KIND_PREDICT_E2E:
        if ((st = e2e_setup(c, seed, opt->tmp_dir))) return st;
        break;
    case BENCH_KIND_TRAIN: {
        /* The frozen teacher's label features: computed once per label set. */
        c->teacher_text = ramc_malloc(C * D * sizeof(float), "bench teacher features");
        c->targets = ramc_calloc(B * C, sizeof(float), "bench targets");
        if (!c->teacher_text || !c->targets) return RAMC_ERR_NOMEM;
        if ((st = ram_encode_text(m, NULL, c->tokens, c->C, c->teacher_text, NULL, NULL))) return st;
        /* about three labels per image, as in COCO, at least one */
        ramc_rng rng;
        rng_seed(&rng, seed + 2);
        for (size_t b = 0; b < B; b++) {
            c->targets[b * C + (size_t)(rng_next(&rng) % C)] = 1.0f;
            for (size_t k = 0; k < C; k++)
                if (rng_uniform(&rng) < 2.0 / (double)C) c->targets[b * C + k] = 1.0f;
        }
        c->to = ram_train_default_options();
        c->to.text_cache = &c->text_cache;
        /* the step's buffers from the run's arena, as ram_solver_step does */
        c->to.scratch = &c->scratch;
        break;
    }
    }
    return RAMC_OK;
}

/* One call of the scenario: the timed work. */
static ramc_status ctx_run(bench_ctx *c) {
    const ramc_clip *m = c->m;
    ramc_status st = RAMC_OK;
    double t0 = monotonic_seconds(), t1;
    memset(c->phase, 0, sizeof c->phase);
    switch (c->sc->kind) {
    case BENCH_KIND_CLIP:
        st = clip_encode_image(m, &c->scratch, c->images, c->B, c->out);
        c->phase[0] = monotonic_seconds() - t0;
        break;
    case BENCH_KIND_RAM_TEXT:
    case BENCH_KIND_RAM:
        if (c->sc->kind == BENCH_KIND_RAM_TEXT) {
            if ((st = ram_encode_text(m, c->a, c->tokens, c->C, c->text, NULL, NULL))) return st;
            t1 = monotonic_seconds(), c->phase[0] = t1 - t0, t0 = t1;
        }
        if ((st = ram_vision_forward(m, &c->scratch, c->a, c->images, c->B, c->text, c->C, 0, c->x, c->x_loc,
                                     NULL, NULL)))
            return st;
        t1 = monotonic_seconds(), c->phase[1] = t1 - t0, t0 = t1;
        if ((st = ram_image_features(m, &c->scratch, c->x, c->x_loc, c->B, c->g, c->f))) return st;
        t1 = monotonic_seconds(), c->phase[2] = t1 - t0, t0 = t1;
        st = ram_head_forward(&c->head, c->g, c->f, c->text, expf(m->info.logit_scale),
                              c->a->temperature->data[0], c->a->temperature_loc->data[0], NULL,
                              &c->so);
        c->phase[3] = monotonic_seconds() - t0;
        break;
    case BENCH_KIND_TEXT:
        st = ram_encode_text(m, c->a, c->tokens, c->C, c->text, NULL, NULL);
        c->phase[0] = monotonic_seconds() - t0;
        break;
    case BENCH_KIND_LABEL_CACHE:
        st = label_cache_run(c);
        break;
    case BENCH_KIND_PREDICT_E2E:
        st = e2e_run(c);
        break;
    case BENCH_KIND_TRAIN: {
        /* a training loop zeroes the gradients before each step */
        for (int i = 0; i < c->a->n_params; i++)
            if (c->a->params[i].grad)
                memset(c->a->params[i].grad, 0, (size_t)c->a->params[i].numel * sizeof(float));
        ram_train_result res;
        st = ram_train_step(m, c->a, c->images, c->B, c->tokens, c->C, c->teacher_text, c->targets,
                            &c->to, &res, NULL, NULL);
        ram_train_result_free(&res);
        c->phase[0] = monotonic_seconds() - t0;
        break;
    }
    }
    arena_end_call(&c->scratch);
    return st;
}

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

ramc_status bench_run(const ramc_clip *m, int scenario, const bench_options *opt,
                      bench_result *out) {
    const bench_scenario *sc = bench_scenario_get(scenario);
    if (!m || !sc || !opt || !out) return ramc_error(RAMC_ERR_INVALID_ARG, "bench: bad arguments");
    if (opt->repeat < 1 || opt->warmup < 0)
        return ramc_error(RAMC_ERR_INVALID_ARG, "bench: repeat must be >= 1 and warmup >= 0");
    memset(out, 0, sizeof *out);
    const int total = opt->warmup + opt->repeat;
    double *secs = ramc_calloc((size_t)opt->repeat * (1 + BENCH_MAX_PHASES), sizeof(double),
                               "bench timings");
    if (!secs) return RAMC_ERR_NOMEM;
    double *phases = secs + opt->repeat;

    const int thawed = sc->kind == BENCH_KIND_TRAIN && opt->frozen;
    if (thawed) clip_thaw(m);
    bench_ctx c;
    double t0 = monotonic_seconds();
    ramc_status st = ctx_setup(&c, m, sc, opt);
    /* as the trainer: thawed, or the vision tower in bf16 (ramc train --bf16) */
    if (thawed && st == RAMC_OK) clip_freeze_for_training(m, opt->bf16);
    out->setup_s = monotonic_seconds() - t0;
    double last = 0;
    for (int r = 0; r < total && st == RAMC_OK; r++) {
        if (opt->progress) opt->progress(opt->progress_user, sc->name, r, total, last);
        t0 = monotonic_seconds();
        st = ctx_run(&c);
        last = monotonic_seconds() - t0;
        if (r >= opt->warmup) {
            const int k = r - opt->warmup;
            /* end to end: the rate is the pipeline's pass alone */
            secs[k] = sc->kind == BENCH_KIND_PREDICT_E2E ? c.phase[1] : last;
            for (int p = 0; p < BENCH_MAX_PHASES; p++) phases[p * opt->repeat + k] = c.phase[p];
        }
    }
    if (st == RAMC_OK && opt->progress) opt->progress(opt->progress_user, sc->name, total, total, last);
    if (st != RAMC_OK) {
        ramc_error_prefix(st, "bench %s", sc->name);
        goto done;
    }

    /* rates from times: the median rate is units over the median time */
    const double units = sc->kind == BENCH_KIND_TEXT          ? sc->labels
                         : sc->kind == BENCH_KIND_PREDICT_E2E ? BENCH_E2E_IMAGES
                                                              : sc->batch;
    out->runs = opt->repeat;
    if (sc->kind == BENCH_KIND_LABEL_CACHE) {
        /* the warm phase's rate; the text tower's GFLOP/s from the cold one */
        const double *warm = phases + opt->repeat; /* sorted by the median above */
        out->cache_labels = c.C, out->cold_hits = c.cold_hits, out->warm_hits = c.warm_hits;
        for (int p = 0; p < 2; p++) {
            out->phase_name[p] = p ? "warm" : "cold";
            out->phase_s[p] = median(phases + p * opt->repeat, opt->repeat);
        }
        out->n_phases = 2;
        out->median = c.C / out->phase_s[1];
        out->min = c.C / warm[opt->repeat - 1];
        out->max = c.C / warm[0];
        /* one label: one prompt through the tower, two with deep text
         * prompts (the plain-CLIP features are kept too) */
        out->flop_per_unit = bench_text_flop(&m->info) * (c.a->n_text_prompted > 0 ? 2 : 1);
        out->gflops = c.C / out->phase_s[0] * out->flop_per_unit / 1e9;
        goto done;
    }
    for (int p = 0; p < BENCH_MAX_PHASES; p++) {
        double *v = phases + p * opt->repeat;
        double mp = median(v, opt->repeat);
        if (mp <= 0) continue;
        static const char *ram_names[] = {"text", "vision", "features", "head"};
        static const char *cache_names[] = {"cold", "warm"};
        static const char *e2e_names[] = {"model_only", "end_to_end", "", ""};
        const char *name = sc->kind == BENCH_KIND_RAM || sc->kind == BENCH_KIND_RAM_TEXT
                               ? ram_names[p]
                           : sc->kind == BENCH_KIND_LABEL_CACHE ? cache_names[p]
                           : sc->kind == BENCH_KIND_PREDICT_E2E ? e2e_names[p]
                           : sc->kind == BENCH_KIND_TEXT  ? "text"
                           : sc->kind == BENCH_KIND_TRAIN ? "step"
                                                          : "encode";
        out->phase_name[out->n_phases] = name;
        out->phase_s[out->n_phases++] = mp;
        if (sc->kind == BENCH_KIND_PREDICT_E2E && p == 0) out->model_only = units / mp;
    }
    double tmed = median(secs, opt->repeat);
    out->median = units / tmed;
    out->min = units / secs[opt->repeat - 1];
    out->max = units / secs[0];

    const ramc_clip_info *in = &m->info;
    if (sc->kind == BENCH_KIND_TEXT) {
        out->flop_per_unit = bench_text_flop(in);
    } else {
        out->flop_per_unit = opt->flop_per_image > 0 ? opt->flop_per_image : bench_vit_flop(in);
        if (sc->kind == BENCH_KIND_TRAIN) { /* the step's own count: its roof share */
            out->flop_per_unit_ram =
                bench_train_flop(in, c.a->n_vision_adapted, c.a->n_vis_prompts, sc->labels);
            out->gflops_ram = out->median * out->flop_per_unit_ram / 1e9;
        }
        if (sc->kind == BENCH_KIND_RAM || sc->kind == BENCH_KIND_RAM_TEXT ||
            sc->kind == BENCH_KIND_PREDICT_E2E) {
            out->flop_per_unit_ram =
                opt->flop_per_image_ram > 0
                    ? opt->flop_per_image_ram
                    : bench_ram_vision_flop(in, c.a->n_vision_adapted, c.a->n_vis_prompts,
                                            sc->labels);
            /* recomputed labels: their text-tower work is shared by the batch */
            if (sc->kind == BENCH_KIND_RAM_TEXT)
                out->flop_per_unit_ram += bench_text_flop(in) * sc->labels / sc->batch;
            out->gflops_ram = out->median * out->flop_per_unit_ram / 1e9;
        }
    }
    out->gflops = out->median * out->flop_per_unit / 1e9;
done:
    if (thawed) clip_freeze(m, opt->bf16);
    ctx_free(&c);
    free(secs);
    return st;
}
