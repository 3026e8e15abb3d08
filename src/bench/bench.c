/* Benchmarks on a random CLIP: model construction, the scenarios, timing,
 * FLOP counts and the machine facts reported beside the numbers. */
#include "bench/bench.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <dirent.h>

#include "api/model_view.h"
#include "api/pipeline.h"
#include "core/rng.h"
#include "image/image.h"
#include "io/safetensors.h"
#include "train/clip_train.h"
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

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Synthetic prompts "[SOT] a photo of a <id> . [EOT]" (CLIP ids 320 'a',
 * 1125 'photo', 539 'of', 269 '.'), one distinct id per label, so every
 * label has its own features and the EOT sits where a real short label's does. */
static void fill_tokens(int32_t *t, int n, int L) {
    memset(t, 0, (size_t)n * L * sizeof *t);
    for (int i = 0; i < n; i++) {
        const int32_t row[8] = {RAMC_SOT_ID, 320, 1125, 539, 320, 1000 + i, 269, RAMC_EOT_ID};
        memcpy(t + (size_t)i * L, row, sizeof row);
    }
}

typedef struct {
    const ramc_clip *m;
    const bench_scenario *sc;
    int B, C, N, N1, D;
    ram_adapter *a;
    float *images, *out, *text, *teacher_text, *targets;
    float *x, *x_loc, *g, *f;
    int32_t *tokens;
    ram_head head;
    sinkhorn_options so;
    ram_train_options to;
    ram_text_cache text_cache; /* as the trainer: the frozen text blocks once per label set */
    ramc_arena scratch;        /* as a ramc_state: grown in the warm-up call, then reused */
    /* predict_folder_e2e */
    ramc_model *model;         /* a view of m and the adapter */
    ramc_labels *labels;
    ramc_state *state;
    char *paths[BENCH_E2E_IMAGES];
    FILE *sink;                /* the JSON goes here (/dev/null) */
    int e2e_runs;              /* runs so far: which pass goes first */
    double phase[BENCH_MAX_PHASES];
    /* the scenario's temporary folder ("" if none): the label cache's model
     * files and cache, predict_folder_e2e's JPEG files; label names [C] */
    char dir[4096], clip_path[4200], adapter_path[4200], cache[4200];
    char **names;
    ramc_clip_params load_params;
    int cold_hits, warm_hits;
} ctx;

/* Removes dir and what is under it, two levels deep (the label cache's
 * layout: dir/<model key>/<entry>); best effort. */
static void remove_tree(const char *dir, int depth) {
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[4600];
    while (d && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(path, sizeof path, "%.4300s/%.255s", dir, e->d_name);
        if (unlink(path) != 0 && depth > 0) remove_tree(path, depth - 1);
    }
    if (d) closedir(d);
    rmdir(dir);
}

/* The random CLIP as a safetensors file (float16, as the loader rounds the
 * weights to anyway; OpenAI names, head counts
 * in the metadata), so that it has what the label cache keys on: a file's
 * bytes. */
static ramc_status write_clip(const ramc_clip *m, const char *path) {
    int n = 0;
    clip_param *tab = ramc_malloc((size_t)CLIP_MAX_PARAMS(m) * sizeof *tab, "bench model file");
    st_writer *w = st_writer_new();
    ramc_status st = tab && w ? clip_param_table(m, tab, &n, NULL) : RAMC_ERR_NOMEM;
    for (int i = 0; i < n && st == RAMC_OK; i++)
        st = st_writer_add_f32(w, tab[i].name, ST_F16, tab[i].ndim, tab[i].shape, tab[i].data);
    if (st == RAMC_OK) st = st_writer_add_f32(w, "logit_scale", ST_F32, 0, NULL, &m->info.logit_scale);
    char heads[32];
    snprintf(heads, sizeof heads, "%d", m->info.vision_heads);
    if (st == RAMC_OK) st = st_writer_set_metadata(w, "vision_heads", heads);
    snprintf(heads, sizeof heads, "%d", m->info.text_heads);
    if (st == RAMC_OK) st = st_writer_set_metadata(w, "text_heads", heads);
    if (st == RAMC_OK) st = st_writer_save(w, path);
    if (w) st_writer_free(w);
    free(tab);
    return st;
}

/* Encodes all c->C names through the cache in sets of at most
 * RAMC_MAX_LABELS, with a model loaded afresh (a new process has no cache
 * key yet: hashing the weights file is part of its cost); returns the hits. */
static ramc_status encode_through_cache(ctx *c, double *seconds, int *hits) {
    ramc_model *model = NULL;
    ramc_status st = ramc_model_load(c->clip_path, c->adapter_path, &c->load_params, &model);
    double t0 = now_s();
    *hits = 0;
    for (int first = 0; first < c->C && st == RAMC_OK; first += RAMC_MAX_LABELS) {
        const int n = c->C - first < RAMC_MAX_LABELS ? c->C - first : RAMC_MAX_LABELS;
        ramc_labels *lb = NULL;
        st = ramc_labels_encode_cached(model, NULL, (const char *const *)c->names + first, n, NULL,
                                       c->cache, &lb);
        *hits += ramc_labels_cache_hits(lb);
        ramc_labels_free(lb);
    }
    *seconds = now_s() - t0;
    ramc_model_free(model);
    return st;
}

static void e2e_free(ctx *c) {
    for (int i = 0; i < BENCH_E2E_IMAGES; i++) {
        if (c->paths[i]) unlink(c->paths[i]);
        free(c->paths[i]);
    }
    if (c->dir[0]) rmdir(c->dir);
    if (c->sink) fclose(c->sink);
    ramc_state_free(c->state);
    ramc_labels_free(c->labels);
    ramc_model_free(c->model);
}

static void ctx_free(ctx *c) {
    if (c->names)
        for (int i = 0; i < c->C; i++) free(c->names[i]);
    free(c->names);
    if (c->dir[0]) remove_tree(c->dir, 2);
    e2e_free(c);
    ram_adapter_free(c->a);
    free(c->images), free(c->out), free(c->text), free(c->teacher_text), free(c->targets);
    free(c->x), free(c->x_loc), free(c->g), free(c->f), free(c->tokens);
    ram_head_free(&c->head);
    ram_text_cache_free(&c->text_cache);
    arena_release(&c->scratch);
}

/* The label-cache scenario's files: the random CLIP and a COCO adapter in a
 * fresh folder, and c->C distinct label names ("item 0", "item 1", ...). */
static ramc_status label_cache_setup(ctx *c, const ramc_clip *m, const bench_options *opt,
                                     uint64_t seed) {
    const char *tmp = opt->tmp_dir && *opt->tmp_dir ? opt->tmp_dir : "/tmp";
    snprintf(c->dir, sizeof c->dir, "%.4000s/ramc-bench-XXXXXX", tmp);
    if (!mkdtemp(c->dir)) {
        ramc_status st = ramc_error(RAMC_ERR_IO, "bench: cannot create a folder under %s", tmp);
        c->dir[0] = 0;
        return st;
    }
    snprintf(c->clip_path, sizeof c->clip_path, "%s/clip.safetensors", c->dir);
    snprintf(c->adapter_path, sizeof c->adapter_path, "%s/adapter.safetensors", c->dir);
    snprintf(c->cache, sizeof c->cache, "%s/cache", c->dir);
    ram_config cfg = ram_config_preset(RAM_PRESET_COCO, &m->info);
    ramc_status st = ram_adapter_create(m, &cfg, seed, 0, &c->a);
    if (st == RAMC_OK) st = ram_adapter_save(c->a, c->adapter_path);
    if (st == RAMC_OK) st = write_clip(m, c->clip_path);
    if (st != RAMC_OK) return st;
    c->load_params = ramc_clip_default_params();
    c->load_params.bf16 = opt->bf16;
    c->load_params.pack_weights = opt->frozen; /* as the bench's own model */
    if (!(c->names = ramc_calloc((size_t)c->C, sizeof *c->names, "bench label names")))
        return RAMC_ERR_NOMEM;
    for (int i = 0; i < c->C; i++) {
        char name[32];
        snprintf(name, sizeof name, "item %d", i);
        if (!(c->names[i] = ramc_malloc(strlen(name) + 1, "bench label name"))) return RAMC_ERR_NOMEM;
        memcpy(c->names[i], name, strlen(name) + 1);
    }
    return RAMC_OK;
}

/* A 640x480 photo stand-in: a few random colour waves and a little noise,
 * so that the JPEG is of a photo's size and costs a photo's decoding. */
static void e2e_picture(ramc_image *img, ramc_rng *rng) {
    double f[3][3];
    for (int ch = 0; ch < 3; ch++)
        for (int k = 0; k < 3; k++) f[ch][k] = 0.005 + 0.05 * rng_uniform(rng);
    for (int y = 0; y < img->height; y++)
        for (int x = 0; x < img->width; x++)
            for (int ch = 0; ch < 3; ch++) {
                double v = 128 + 50 * sin(f[ch][0] * x + f[ch][1] * y) + 40 * cos(f[ch][2] * (x - y)) +
                           12 * (rng_uniform(rng) - 0.5);
                img->rgb[((size_t)y * img->width + x) * 3 + ch] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
}

/* predict_folder_e2e: the model (a view of m with the COCO adapter), 65
 * labels encoded through the public path, the JPEG files, the decoded
 * images for the model-only pass, and the state both passes use. */
static ramc_status e2e_setup(ctx *c, uint64_t seed, const char *tmp) {
    const ramc_clip_info *in = &c->m->info;
    ramc_status st;
    if ((st = api_model_view((ramc_clip *)c->m, c->a, 0, &c->model))) return st;
    char vocab[4096];
    ramc_text_default_vocab_path(vocab, sizeof vocab);
    ramc_tokenizer *tok = NULL;
    if ((st = ramc_tokenizer_load(vocab, &tok))) return ramc_error_prefix(st, "bench: CLIP's vocabulary");
    char names[65][32];
    const char *name_ptrs[65];
    for (int i = 0; i < c->C && i < 65; i++) {
        snprintf(names[i], sizeof names[i], "object number %d", i + 1);
        name_ptrs[i] = names[i];
    }
    st = ramc_labels_encode(c->model, tok, name_ptrs, c->C < 65 ? c->C : 65, NULL, &c->labels);
    ramc_tokenizer_free(tok);
    if (st) return st;
    if ((st = ramc_state_create(c->model, &c->state))) return st;
    if (!(c->sink = fopen("/dev/null", "w"))) return ramc_error(RAMC_ERR_IO, "bench: cannot open /dev/null");

    if (!tmp || !*tmp) tmp = "/tmp";
    snprintf(c->dir, sizeof c->dir, "%s/ramc-bench-XXXXXX", tmp);
    if (!mkdtemp(c->dir)) {
        c->dir[0] = '\0';
        return ramc_error(RAMC_ERR_IO, "bench: cannot create a temporary folder in %s", tmp);
    }
    ramc_image img = {BENCH_E2E_WIDTH, BENCH_E2E_HEIGHT,
                      ramc_malloc((size_t)BENCH_E2E_WIDTH * BENCH_E2E_HEIGHT * 3, "bench picture")};
    const size_t per_image = (size_t)3 * in->image_size * in->image_size;
    c->images = ramc_malloc(per_image * BENCH_E2E_IMAGES * sizeof(float), "bench images");
    c->out = ramc_malloc((size_t)c->B * c->C * sizeof(float), "bench scores");
    if (!img.rgb || !c->images || !c->out) {
        free(img.rgb);
        return RAMC_ERR_NOMEM;
    }
    ramc_rng rng;
    rng_seed(&rng, seed + 3);
    for (int i = 0; i < BENCH_E2E_IMAGES && st == RAMC_OK; i++) {
        char path[300];
        snprintf(path, sizeof path, "%s/photo-%02d.jpg", c->dir, i);
        if (!(c->paths[i] = strdup(path))) {
            st = ramc_error(RAMC_ERR_NOMEM, "bench: out of memory");
            break;
        }
        e2e_picture(&img, &rng);
        if ((st = image_write_jpeg(&img, 90, path)) == RAMC_OK)
            st = ramc_preprocess_file(c->model, path, NULL, c->images + per_image * (size_t)i);
    }
    free(img.rgb);
    return st;
}

typedef struct {
    FILE *sink;
    const ramc_labels *labels;
    int C;
    ramc_status status;
} e2e_json;

/* One image's result as `ramc predict --format json` prints it (top 5). */
static void e2e_emit(void *user, const predict_pipeline_item *it) {
    e2e_json *j = user;
    if (it->status != RAMC_OK) {
        j->status = ramc_error(it->status, "%s", it->error);
        return;
    }
    int top[5], n_top = j->C < 5 ? j->C : 5;
    for (int t = 0; t < n_top; t++) {
        int best = -1;
        for (int c = 0; c < j->C; c++) {
            int taken = 0;
            for (int u = 0; u < t; u++) taken |= top[u] == c;
            if (!taken && (best < 0 || it->scores[c] > it->scores[best])) best = c;
        }
        top[t] = best;
    }
    cJSON *o = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(o, "labels");
    cJSON_AddStringToObject(o, "image", it->name);
    for (int t = 0; t < n_top; t++) {
        cJSON *l = cJSON_CreateObject();
        cJSON_AddStringToObject(l, "label", ramc_labels_name(j->labels, top[t]));
        cJSON_AddNumberToObject(l, "score", it->scores[top[t]]);
        cJSON_AddItemToArray(arr, l);
    }
    char *text = cJSON_PrintUnformatted(o);
    if (text) fprintf(j->sink, "%s\n", text);
    cJSON_free(text);
    cJSON_Delete(o);
}

/* The model alone on the decoded images, in batches: phase 0. */
static ramc_status e2e_model_only(ctx *c, const ramc_predict_params *pp) {
    const size_t per_image = (size_t)3 * c->m->info.image_size * c->m->info.image_size;
    ramc_status st = RAMC_OK;
    double t0 = now_s();
    for (int first = 0; first < BENCH_E2E_IMAGES && st == RAMC_OK; first += c->B) {
        int n = BENCH_E2E_IMAGES - first < c->B ? BENCH_E2E_IMAGES - first : c->B;
        st = ramc_predict_with_state(c->state, c->labels, c->images + per_image * (size_t)first, n, pp,
                                     c->out, NULL, NULL);
    }
    c->phase[0] = now_s() - t0;
    return st;
}

/* JPEG files to JSON through the pipeline: phase 1. */
static ramc_status e2e_pipeline(ctx *c, const ramc_predict_params *pp) {
    predict_pipeline_options po = predict_pipeline_default_options();
    po.batch = c->B;
    po.params = *pp;
    e2e_json j = {c->sink, c->labels, c->C, RAMC_OK};
    double t0 = now_s();
    ramc_status st = predict_pipeline_run(c->model, c->labels, (const char *const *)c->paths,
                                          BENCH_E2E_IMAGES, &po, e2e_emit, &j, NULL);
    fflush(c->sink);
    c->phase[1] = now_s() - t0;
    return st ? st : j.status;
}

/* Both passes over the same images, in turns (the model alone first on even
 * runs, end to end first on odd ones), so that a machine whose speed drifts
 * does not favour one of them. */
static ramc_status e2e_run(ctx *c) {
    const ramc_predict_params pp = ramc_predict_default_params();
    const int e2e_first = c->e2e_runs++ % 2;
    ramc_status st = e2e_first ? e2e_pipeline(c, &pp) : e2e_model_only(c, &pp);
    if (st == RAMC_OK) st = e2e_first ? e2e_model_only(c, &pp) : e2e_pipeline(c, &pp);
    return st;
}

/* Everything outside the timing: adapter, inputs, cached label features and
 * the output buffers a caller would keep between batches. */
static ramc_status ctx_setup(ctx *c, const ramc_clip *m, const bench_scenario *sc,
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
        c->tokens = ramc_malloc(C * L * sizeof(int32_t), "bench tokens");
        c->text = ramc_malloc(C * D * sizeof(float), "bench label features");
        if (!c->tokens || !c->text) return RAMC_ERR_NOMEM;
        fill_tokens(c->tokens, c->C, (int)L);
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
        break;
    }
    }
    return RAMC_OK;
}

/* One call of the scenario: the timed work. */
static ramc_status ctx_run(ctx *c) {
    const ramc_clip *m = c->m;
    ramc_status st = RAMC_OK;
    double t0 = now_s(), t1;
    memset(c->phase, 0, sizeof c->phase);
    switch (c->sc->kind) {
    case BENCH_KIND_CLIP:
        st = clip_encode_image(m, &c->scratch, c->images, c->B, c->out);
        c->phase[0] = now_s() - t0;
        break;
    case BENCH_KIND_RAM_TEXT:
    case BENCH_KIND_RAM:
        if (c->sc->kind == BENCH_KIND_RAM_TEXT) {
            if ((st = ram_encode_text(m, c->a, c->tokens, c->C, c->text, NULL, NULL))) return st;
            t1 = now_s(), c->phase[0] = t1 - t0, t0 = t1;
        }
        if ((st = ram_vision_forward(m, &c->scratch, c->a, c->images, c->B, c->text, c->C, 0, c->x, c->x_loc,
                                     NULL, NULL)))
            return st;
        t1 = now_s(), c->phase[1] = t1 - t0, t0 = t1;
        if ((st = ram_image_features(m, &c->scratch, c->x, c->x_loc, c->B, c->g, c->f))) return st;
        t1 = now_s(), c->phase[2] = t1 - t0, t0 = t1;
        st = ram_head_forward(&c->head, c->g, c->f, c->text, expf(m->info.logit_scale),
                              c->a->temperature->data[0], c->a->temperature_loc->data[0], NULL,
                              &c->so);
        c->phase[3] = now_s() - t0;
        break;
    case BENCH_KIND_TEXT:
        st = ram_encode_text(m, c->a, c->tokens, c->C, c->text, NULL, NULL);
        c->phase[0] = now_s() - t0;
        break;
    case BENCH_KIND_LABEL_CACHE:
        /* each run starts from an empty cache; the model loads are not timed */
        remove_tree(c->cache, 1);
        if ((st = encode_through_cache(c, &c->phase[0], &c->cold_hits))) return st;
        st = encode_through_cache(c, &c->phase[1], &c->warm_hits);
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
        c->phase[0] = now_s() - t0;
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
    ctx c;
    double t0 = now_s();
    ramc_status st = ctx_setup(&c, m, sc, opt);
    out->setup_s = now_s() - t0;
    double last = 0;
    for (int r = 0; r < total && st == RAMC_OK; r++) {
        if (opt->progress) opt->progress(opt->progress_user, sc->name, r, total, last);
        t0 = now_s();
        st = ctx_run(&c);
        last = now_s() - t0;
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
