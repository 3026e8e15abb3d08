/* Golden-set comparison (see golden.h). Each stage runs one part of ramc on
 * the set's inputs and compares what it produced, tensor by tensor. */
#include "golden/golden.h"
#include "golden/golden_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/file.h"
#include "io/safetensors.h"
#include "model/clip.h"
#include "text/text.h"
#include "ram/ram.h"
#include "ram/ram_forward.h"
#include "ram/ram_train.h"

#define CONFIG_MAX_BYTES (1u << 20)

typedef struct {
    const char *dir;
    st_file *outputs;
    golden_report *report;
    /* The first vision / text block that RAM adapts: blocks before it are plain
     * (SAA-)CLIP and comparable with the CLIP core alone. */
    int first_adapted_vision, first_adapted_text;
} golden_ctx;

golden_row *golden_add_row(golden_report *r) {
    if (r->n_rows == r->cap) {
        int cap = r->cap ? 2 * r->cap : 64;
        golden_row *rows = realloc(r->rows, (size_t)cap * sizeof *rows);
        if (!rows) return NULL;
        r->rows = rows;
        r->cap = cap;
    }
    golden_row *row = &r->rows[r->n_rows++];
    memset(row, 0, sizeof *row);
    return row;
}

void golden_format_shape(char *buf, size_t size, int ndim, const int64_t *shape) {
    size_t used = (size_t)snprintf(buf, size, "[");
    for (int d = 0; d < ndim && used < size; d++)
        used += (size_t)snprintf(buf + used, size - used, d ? ",%lld" : "%lld", (long long)shape[d]);
    if (used < size) snprintf(buf + used, size - used, "]");
}

/* A row that failed before any numbers could be compared. */
void golden_fail_row(golden_report *r, const char *name, const char *why) {
    golden_row *row = golden_add_row(r);
    if (!row) return;
    snprintf(row->name, sizeof row->name, "%s", name);
    snprintf(row->shape, sizeof row->shape, "%s", why);
    row->max_abs = row->rel = INFINITY;
    r->n_failed++;
}

static void fail_row(golden_ctx *g, const char *name, const char *why) {
    golden_fail_row(g->report, name, why);
}

/* Compares float data [shape] with the reference tensor `name` of outputs. */
static void compare_f32(golden_ctx *g, const char *name, const float *ours, int ndim,
                        const int64_t *shape) {
    const st_tensor *t = st_find(g->outputs, name);
    if (!t) return; /* this set does not store it: nothing to compare */
    int64_t numel = 1;
    for (int d = 0; d < ndim; d++) numel *= shape[d];
    if (t->numel != numel) {
        fail_row(g, name, "shape differs");
        return;
    }
    float *ref = ramc_malloc((size_t)numel * sizeof(float), name);
    if (!ref || st_read_f32(g->outputs, t, ref) != RAMC_OK) {
        free(ref);
        fail_row(g, name, "unreadable");
        return;
    }
    double max_abs = 0, max_ref = 0;
    int nonfinite = 0;
    for (int64_t i = 0; i < numel; i++) {
        if (!isfinite(ours[i])) nonfinite = 1;
        double d = fabs((double)ours[i] - (double)ref[i]);
        if (d > max_abs) max_abs = d;
        if (fabs(ref[i]) > max_ref) max_ref = fabs(ref[i]);
    }
    free(ref);
    golden_row *row = golden_add_row(g->report);
    if (!row) return;
    snprintf(row->name, sizeof row->name, "%s", name);
    golden_format_shape(row->shape, sizeof row->shape, t->ndim, t->shape);
    row->max_abs = nonfinite ? INFINITY : max_abs;
    row->rel = nonfinite ? INFINITY : (max_ref > 0 ? max_abs / max_ref : max_abs);
    row->pass = !nonfinite && row->rel <= g->report->tolerance;
    if (!row->pass) g->report->n_failed++;
}

/* Exact comparison of integer data (token ids, iteration counts). */
static void compare_i64(golden_ctx *g, st_file *file, const char *name, const int64_t *ours,
                        int64_t numel) {
    const st_tensor *t = st_find(file, name);
    if (!t) return;
    if (t->numel != numel) {
        fail_row(g, name, "shape differs");
        return;
    }
    int64_t *ref = ramc_malloc((size_t)numel * sizeof(int64_t), name);
    if (!ref || st_read_i64(file, t, ref) != RAMC_OK) {
        free(ref);
        fail_row(g, name, "unreadable");
        return;
    }
    int64_t wrong = 0;
    for (int64_t i = 0; i < numel; i++) wrong += ours[i] != ref[i];
    free(ref);
    golden_row *row = golden_add_row(g->report);
    if (!row) return;
    snprintf(row->name, sizeof row->name, "%s", name);
    golden_format_shape(row->shape, sizeof row->shape, t->ndim, t->shape);
    row->exact = 1;
    row->max_abs = (double)wrong; /* number of differing entries */
    row->rel = numel ? (double)wrong / (double)numel : 0;
    row->pass = wrong == 0;
    if (!row->pass) g->report->n_failed++;
}

/* Taps from a forward pass. The CLIP stages compare the blocks that RAM
 * leaves unadapted (and the embedding); the RAM stages the adapted ones, so
 * each reference tensor is compared once. */
typedef struct {
    golden_ctx *g;
    const char *prefix; /* "eval." */
    int adapted;        /* 0: only unadapted blocks and the embedding; 1: only adapted blocks;
                           -1: every tap */
} tap_ctx;

static void on_tap(void *user, const char *name, const float *data, int ndim,
                   const int64_t *shape) {
    tap_ctx *tc = user;
    int block, is_adapted = 0;
    if (sscanf(name, "vis.blk%d", &block) == 1)
        is_adapted = block >= tc->g->first_adapted_vision;
    else if (sscanf(name, "txt.blk%d", &block) == 1)
        is_adapted = block >= tc->g->first_adapted_text;
    if (tc->adapted >= 0 && is_adapted != tc->adapted) return;
    char full[160];
    snprintf(full, sizeof full, "%s%s", tc->prefix, name);
    compare_f32(tc->g, full, data, ndim, shape);
}

/* ------------------------------------------------------------- the stages */

/* Token ids of classes.json's prompts, by ramc's tokenizer, against inputs. */
static ramc_status stage_tokens(golden_ctx *g, st_file *inputs, const cJSON *classes) {
    const cJSON *prompts = cJSON_GetObjectItemCaseSensitive(classes, "prompts");
    int n = cJSON_GetArraySize(prompts);
    if (n == 0) return RAMC_OK; /* a set without prompts: nothing to tokenize */
    char vocab[4096];
    ramc_text_default_vocab_path(vocab, sizeof vocab);
    ramc_tokenizer *tok;
    ramc_status st = ramc_tokenizer_load(vocab, &tok);
    if (st != RAMC_OK) return st;
    int32_t ids[RAMC_CONTEXT_LENGTH];
    int64_t *all = ramc_malloc((size_t)n * RAMC_CONTEXT_LENGTH * sizeof(int64_t), "token ids");
    if (!all) {
        ramc_tokenizer_free(tok);
        return RAMC_ERR_NOMEM;
    }
    for (int i = 0; i < n && st == RAMC_OK; i++) {
        const cJSON *p = cJSON_GetArrayItem(prompts, i);
        if (!cJSON_IsString(p)) {
            st = ramc_error(RAMC_ERR_FORMAT, "%s/classes.json: prompts[%d] is not a string", g->dir, i);
            break;
        }
        st = ramc_tokenize(tok, p->valuestring, ids, RAMC_CONTEXT_LENGTH);
        for (int t = 0; t < RAMC_CONTEXT_LENGTH; t++) all[(size_t)i * RAMC_CONTEXT_LENGTH + t] = ids[t];
    }
    if (st == RAMC_OK) compare_i64(g, inputs, "text_tokens", all, (int64_t)n * RAMC_CONTEXT_LENGTH);
    free(all);
    ramc_tokenizer_free(tok);
    return st;
}

/* The frozen text tower: blocks before the first prompted one, and the
 * teacher's features of all prompts (no deep prompts). */
static ramc_status stage_text(golden_ctx *g, const ramc_clip *m, const int32_t *tokens, int C) {
    const ramc_clip_info *in = &m->info;
    float *x = ramc_malloc((size_t)C * in->context_length * in->text_width * sizeof(float), "text");
    float *feat = ramc_malloc((size_t)C * in->embed_dim * sizeof(float), "text features");
    ramc_status st = (x && feat) ? RAMC_OK : RAMC_ERR_NOMEM;
    tap_ctx tc = {g, "eval.", 0};
    if (st == RAMC_OK) st = clip_text_forward(m, tokens, C, x, on_tap, &tc);
    if (st == RAMC_OK) st = clip_text_project(m, tokens, x, C, feat);
    if (st == RAMC_OK) {
        int64_t shape[2] = {C, in->embed_dim};
        compare_f32(g, "train.teacher.text_features", feat, 2, shape);
    }
    free(x);
    free(feat);
    return st;
}

/* The frozen SAA vision tower: unadapted blocks of both streams, and the
 * teacher's local features (all blocks, no adapters). */
static ramc_status stage_vision(golden_ctx *g, const ramc_clip *m, const float *images, int B) {
    const ramc_clip_info *in = &m->info;
    const int N1 = in->n_patches + 1, W = in->vision_width, D = in->embed_dim;
    float *x = ramc_malloc((size_t)B * N1 * W * sizeof(float), "vision stream");
    float *x_loc = ramc_malloc((size_t)B * N1 * W * sizeof(float), "side stream");
    float *loc = ramc_malloc((size_t)B * N1 * D * sizeof(float), "local features");
    float *patches = ramc_malloc((size_t)B * in->n_patches * D * sizeof(float), "local features");
    ramc_status st = (x && x_loc && loc && patches) ? RAMC_OK : RAMC_ERR_NOMEM;
    tap_ctx tc = {g, "eval.", 0};
    /* no adapter: the zero-shot SAA-CLIP tower */
    if (st == RAMC_OK) st = ram_vision_forward(m, NULL, NULL, images, B, NULL, 0, 0, x, x_loc, on_tap, &tc);
    if (st == RAMC_OK) st = clip_vision_project(m, NULL, x_loc, B * N1, loc, NULL, NULL, NULL);
    if (st == RAMC_OK) {
        for (int b = 0; b < B; b++)
            memcpy(patches + (size_t)b * in->n_patches * D, loc + ((size_t)b * N1 + 1) * D,
                   (size_t)in->n_patches * D * sizeof(float));
        int64_t shape[3] = {B, in->n_patches, D};
        compare_f32(g, "train.teacher.img_loc", patches, 3, shape);
    }
    free(x);
    free(x_loc);
    free(loc);
    free(patches);
    return st;
}


/* The matching head's tensors, named as the golden sets store them. */
static void compare_head(golden_ctx *g, const ram_head *h, const char *prefix) {
    const int B = h->B, N = h->N, C = h->C;
    int64_t bc[2] = {B, C}, bnc[3] = {B, N, C}, bn[2] = {B, N};
    char name[160];
    const struct {
        const char *suffix;
        const float *data;
        int ndim;
        const int64_t *shape;
    } items[] = {
        {"logits_glb", h->logits_glb, 2, bc}, {"score_glb", h->score_glb, 2, bc},
        {"sim", h->sim, 3, bnc},              {"cost", h->cost, 3, bnc},
        {"u", h->u, 2, bn},                   {"v", h->v, 2, bc},
        {"T", h->T, 3, bnc},                  {"sinkhorn_r", h->r, 2, bn},
        {"sinkhorn_c", h->c, 2, bc},          {"logits_loc", h->logits_loc, 2, bc},
        {"score_loc", h->score_loc, 2, bc},   {"score", h->score, 2, bc},
    };
    for (size_t i = 0; i < sizeof items / sizeof items[0]; i++) {
        snprintf(name, sizeof name, "%s%s", prefix, items[i].suffix);
        compare_f32(g, name, items[i].data, items[i].ndim, items[i].shape);
    }
    int64_t iters = h->batch_iters;
    snprintf(name, sizeof name, "%ssinkhorn_iters", prefix);
    compare_i64(g, g->outputs, name, &iters, 1);
    /* the per-iteration errors: only as many rows as the reference ran */
    int64_t err_shape[2] = {h->batch_iters, B};
    snprintf(name, sizeof name, "%ssinkhorn_err", prefix);
    compare_f32(g, name, h->err_hist, 2, err_shape);
}

/* RAM in evaluation mode on labels [first, first + C) of the set: label
 * features with deep prompts, the adapted vision tower, the KCOT head. */
static ramc_status stage_ram_eval(golden_ctx *g, const ramc_clip *m, const ram_adapter *a,
                                  const float *images, int B, const int32_t *tokens, int first,
                                  int C, const char *prefix) {
    const ramc_clip_info *in = &m->info;
    const int N = in->n_patches, N1 = N + 1, W = in->vision_width, D = in->embed_dim;
    const int L = in->context_length;
    char name[160];
    ram_head h = {0};
    float *text = ramc_malloc((size_t)C * D * sizeof(float), "text features");
    float *x = ramc_malloc((size_t)B * N1 * W * sizeof(float), "vision stream");
    float *x_loc = ramc_malloc((size_t)B * N1 * W * sizeof(float), "side stream");
    float *img_glb = ramc_malloc((size_t)B * D * sizeof(float), "global features");
    float *img_loc = ramc_malloc((size_t)B * N * D * sizeof(float), "local features");
    ramc_status st = (text && x && x_loc && img_glb && img_loc) ? RAMC_OK : RAMC_ERR_NOMEM;
    if (st == RAMC_OK) st = ram_head_alloc(&h, NULL, B, N, C, D, 100);
    /* the sets store the debug intermediates for the GZSL run ("eval.") only */
    clip_tap_fn tap = strcmp(prefix, "eval.") ? NULL : on_tap;
    tap_ctx tc = {g, prefix, 1};
    if (st == RAMC_OK) st = ram_encode_text(m, a, tokens + (size_t)first * L, C, text, tap, &tc);
    if (st == RAMC_OK) st = ram_vision_forward(m, NULL, a, images, B, text, C, 0, x, x_loc, tap, &tc);
    if (st == RAMC_OK) st = ram_image_features(m, NULL, x, x_loc, B, img_glb, img_loc);
    if (st == RAMC_OK) {
        int64_t bd[2] = {B, D}, bnd[3] = {B, N, D}, cd[2] = {C, D};
        snprintf(name, sizeof name, "%stext_features", prefix);
        compare_f32(g, name, text, 2, cd);
        snprintf(name, sizeof name, "%simg_glb", prefix);
        compare_f32(g, name, img_glb, 2, bd);
        snprintf(name, sizeof name, "%simg_loc", prefix);
        compare_f32(g, name, img_loc, 3, bnd);
        sinkhorn_options opt = sinkhorn_default_options();
        st = ram_head_forward(&h, img_glb, img_loc, text, expf(in->logit_scale),
                              a->temperature->data[0], a->temperature_loc->data[0], NULL, &opt);
    }
    if (st == RAMC_OK) compare_head(g, &h, prefix);
    ram_head_free(&h);
    free(text);
    free(x);
    free(x_loc);
    free(img_glb);
    free(img_loc);
    return st;
}


/* One training step on the seen labels: the training-mode forward with the
 * teacher, the losses, every gradient and the BatchNorm buffers after it. */
static ramc_status stage_train(golden_ctx *g, const ramc_clip *m, ram_adapter *a,
                               const float *images, int B, const int32_t *tokens, int Cs,
                               const float *targets) {
    const ramc_clip_info *in = &m->info;
    const int N = in->n_patches, D = in->embed_dim;
    char name[RAM_PARAM_NAME + 32];
    ram_train_result r = {0};
    float *teacher_text = ramc_malloc((size_t)Cs * D * sizeof(float), "teacher text features");
    if (!teacher_text) return RAMC_ERR_NOMEM;
    for (int i = 0; i < a->n_params; i++)
        if (a->params[i].grad) memset(a->params[i].grad, 0, (size_t)a->params[i].numel * sizeof(float));
    ram_train_options opt = ram_train_default_options();
    tap_ctx tc = {g, "train.", -1};
    ramc_status st = ram_encode_text(m, NULL, tokens, Cs, teacher_text, NULL, NULL);
    if (st == RAMC_OK)
        st = ram_train_step(m, a, images, B, tokens, Cs, teacher_text, targets, &opt, &r, on_tap, &tc);
    if (st == RAMC_OK) {
        int64_t bnc[3] = {B, N, Cs}, bd[2] = {B, D}, bnd[3] = {B, N, D}, cd[2] = {Cs, D}, one[1] = {1};
        compare_f32(g, "train.text_features", r.text, 2, cd);
        compare_f32(g, "train.img_glb", r.img_glb, 2, bd);
        compare_f32(g, "train.img_loc", r.img_loc, 3, bnd);
        compare_f32(g, "train.teacher.prob", r.teacher_prob, 3, bnc);
        compare_f32(g, "train.teacher.prob_masked", r.teacher_prob_masked, 3, bnc);
        compare_f32(g, "train.cost_student", r.cost_student, 3, bnc);
        compare_f32(g, "train.cost_teacher", r.cost_teacher, 3, bnc);
        compare_head(g, &r.head, "train.");
        compare_f32(g, "train.loss_glb", &r.loss_glb, 1, one);
        compare_f32(g, "train.loss_loc", &r.loss_loc, 1, one);
        compare_f32(g, "train.loss", &r.loss, 1, one);
        for (int i = 0; i < a->n_params; i++) {
            const ram_param *p = &a->params[i];
            snprintf(name, sizeof name, "train.%s.%s", p->grad ? "grad" : "bn_after", p->name);
            compare_f32(g, name, p->grad ? p->grad : p->data, p->ndim, p->shape);
        }
        for (int v = 0; v < a->n_vision_adapted; v++)
            for (int s = 1; s <= 2; s++) {
                snprintf(name, sizeof name,
                         "train.bn_after.clip_model.visual.transformer.resblocks.%d.conv_adapter."
                         "conv_adapter_layers%d.1.num_batches_tracked",
                         a->vision_layers[v], s);
                int64_t count = s == 1 ? a->tss[v].bn1_count : a->tss[v].bn2_count;
                compare_i64(g, g->outputs, name, &count, 1);
            }
    }
    ram_train_result_free(&r);
    free(teacher_text);
    return st;
}

/* ---------------------------------------------------------------- driver */

/* obj[key] as a non-negative integer: `fallback` when absent, an error naming
 * the file when present but not such an integer. */
ramc_status golden_json_int(const cJSON *obj, const char *key, int fallback, int *out,
                            const char *file) {
    const cJSON *v = obj ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
    *out = fallback;
    if (!v) return RAMC_OK;
    if (!cJSON_IsNumber(v) || v->valuedouble != (double)v->valueint || v->valueint < 0)
        return ramc_error(RAMC_ERR_FORMAT, "%s: '%s' must be a non-negative integer", file, key);
    *out = v->valueint;
    return RAMC_OK;
}

/* First entry of an int list such as cfg.depth_vision; `fallback` if absent or [-1]. */
static ramc_status json_first(const cJSON *obj, const char *key, int fallback, int *out,
                              const char *file) {
    const cJSON *v = obj ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
    *out = fallback;
    if (!v) return RAMC_OK;
    const cJSON *first = cJSON_IsArray(v) ? cJSON_GetArrayItem(v, 0) : NULL;
    if (!cJSON_IsNumber(first))
        return ramc_error(RAMC_ERR_FORMAT, "%s: '%s' must be a list of block indices", file, key);
    if (first->valueint >= 0) *out = first->valueint;
    return RAMC_OK;
}

/* An object member that must be an object when present. */
ramc_status golden_json_object(const cJSON *obj, const char *key, const cJSON **out,
                               const char *file) {
    *out = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (*out && !cJSON_IsObject(*out))
        return ramc_error(RAMC_ERR_FORMAT, "%s: '%s' must be an object", file, key);
    return RAMC_OK;
}

ramc_status golden_input_shape(st_file *inputs, const char *name, int want_ndim, int64_t *shape,
                               const char *path) {
    const st_tensor *t = st_find(inputs, name);
    if (!t) return ramc_error(RAMC_ERR_MISMATCH, "%s: missing tensor '%s'", path, name);
    if (t->ndim != want_ndim)
        return ramc_error(RAMC_ERR_MISMATCH, "%s: tensor '%s' has %d dimensions, expected %d", path,
                          name, t->ndim, want_ndim);
    for (int d = 0; d < t->ndim; d++) shape[d] = t->shape[d];
    return RAMC_OK;
}

ramc_status golden_run(const char *dir, golden_report *report) {
    char path[4096];
    cJSON *config = NULL, *classes = NULL;
    st_file *inputs = NULL, *outputs = NULL;
    ramc_clip *clip = NULL;
    ram_adapter *adapter = NULL;
    float *images = NULL;
    int32_t *tokens = NULL;
    int64_t *tokens64 = NULL;
    float *targets = NULL;
    ramc_status st;
    if (report->tolerance <= 0) report->tolerance = GOLDEN_DEFAULT_TOLERANCE;

    snprintf(path, sizeof path, "%s/config.json", dir);
    if ((st = json_load_file(path, CONFIG_MAX_BYTES, &config)) != RAMC_OK) goto done;
    char config_path[4096];
    snprintf(config_path, sizeof config_path, "%s", path);
    const cJSON *model = NULL, *cfg = NULL;
    if (!cJSON_IsObject(config)) {
        st = ramc_error(RAMC_ERR_FORMAT, "%s: expected a JSON object", config_path);
        goto done;
    }
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(config, "kind");
    if (cJSON_IsString(kind) && strcmp(kind->valuestring, "trajectory") == 0) {
        st = golden_run_trajectory(dir, config, report);
        goto done;
    }
    if ((st = golden_json_object(config, "model", &model, config_path)) ||
        (st = golden_json_object(config, "cfg", &cfg, config_path)))
        goto done;
    snprintf(path, sizeof path, "%s/classes.json", dir);
    if ((st = json_load_file(path, CONFIG_MAX_BYTES, &classes)) != RAMC_OK) goto done;
    const cJSON *prompts = cJSON_GetObjectItemCaseSensitive(classes, "prompts");
    if (!cJSON_IsObject(classes) || !cJSON_IsArray(prompts)) {
        st = ramc_error(RAMC_ERR_FORMAT, "%s: expected an object with a \"prompts\" list", path);
        goto done;
    }

    ramc_clip_params params = ramc_clip_default_params();
    if ((st = golden_json_int(model, "vision_heads", 0, &params.vision_heads, config_path)) ||
        (st = golden_json_int(model, "text_heads", 0, &params.text_heads, config_path)))
        goto done;
    params.bf16 = report->bf16;
    params.pack_weights = !report->no_pack;
    snprintf(path, sizeof path, "%s/weights.safetensors", dir);
    if ((st = ramc_clip_load(path, &params, &clip)) != RAMC_OK) goto done;
    snprintf(path, sizeof path, "%s/inputs.safetensors", dir);
    if ((st = st_open(path, &inputs)) != RAMC_OK) goto done;
    snprintf(path, sizeof path, "%s/outputs.safetensors", dir);
    if ((st = st_open(path, &outputs)) != RAMC_OK) goto done;

    golden_ctx g = {dir, outputs, report, 0, 0};
    if ((st = json_first(cfg, "depth_vision", clip->info.vision_layers, &g.first_adapted_vision,
                         config_path)) ||
        (st = json_first(cfg, "depth_text", clip->info.text_layers, &g.first_adapted_text,
                         config_path)))
        goto done;

    /* inputs: images [B,3,S,S], text_tokens [C,L] */
    int64_t ishape[4], tshape[2], tgshape[2];
    snprintf(path, sizeof path, "%s/inputs.safetensors", dir);
    if ((st = golden_input_shape(inputs, "images", 4, ishape, path)) != RAMC_OK) goto done;
    if ((st = golden_input_shape(inputs, "text_tokens", 2, tshape, path)) != RAMC_OK) goto done;
    const ramc_clip_info *in = &clip->info;
    if (ishape[1] != 3 || ishape[2] != in->image_size || ishape[3] != in->image_size) {
        st = ramc_error(RAMC_ERR_MISMATCH, "%s: images are [%lld,%lld,%lld,%lld], the model takes "
                        "[B,3,%d,%d]", path, (long long)ishape[0], (long long)ishape[1],
                        (long long)ishape[2], (long long)ishape[3], in->image_size, in->image_size);
        goto done;
    }
    if (tshape[1] != in->context_length) {
        st = ramc_error(RAMC_ERR_MISMATCH, "%s: text_tokens have %lld positions, the model %d", path,
                        (long long)tshape[1], in->context_length);
        goto done;
    }
    const int B = (int)ishape[0], C = (int)tshape[0];
    images = ramc_malloc((size_t)B * 3 * in->image_size * in->image_size * sizeof(float), "images");
    tokens = ramc_malloc((size_t)C * in->context_length * sizeof(int32_t), "tokens");
    tokens64 = ramc_malloc((size_t)C * in->context_length * sizeof(int64_t), "tokens");
    if (!images || !tokens || !tokens64) {
        st = RAMC_ERR_NOMEM;
        goto done;
    }
    if ((st = st_read_f32(inputs, st_find(inputs, "images"), images)) != RAMC_OK) goto done;
    if ((st = st_read_i64(inputs, st_find(inputs, "text_tokens"), tokens64)) != RAMC_OK) goto done;
    for (int64_t i = 0; i < (int64_t)C * in->context_length; i++) tokens[i] = (int32_t)tokens64[i];

    if ((st = stage_tokens(&g, inputs, classes)) != RAMC_OK) goto done;
    if ((st = stage_text(&g, clip, tokens, C)) != RAMC_OK) goto done;
    if ((st = stage_vision(&g, clip, images, B)) != RAMC_OK) goto done;

    snprintf(path, sizeof path, "%s/adapter.safetensors", dir);
    if ((st = ram_adapter_load(path, clip, 1, &adapter)) != RAMC_OK) goto done;
    int n_seen;
    if ((st = golden_json_int(config, "n_seen", C, &n_seen, config_path))) goto done;
    if (n_seen < 0 || n_seen > C) {
        st = ramc_error(RAMC_ERR_FORMAT, "%s/config.json: n_seen %d outside 0..%d", dir, n_seen, C);
        goto done;
    }
    if ((st = stage_ram_eval(&g, clip, adapter, images, B, tokens, 0, C, "eval.")) != RAMC_OK)
        goto done;
    if (n_seen < C &&
        (st = stage_ram_eval(&g, clip, adapter, images, B, tokens, n_seen, C - n_seen,
                             "eval_zsl.")) != RAMC_OK)
        goto done;
    /* training runs last: it updates the BatchNorm running statistics */
    if ((st = golden_input_shape(inputs, "targets_seen", 2, tgshape, path)) != RAMC_OK) goto done;
    if (tgshape[0] != B || tgshape[1] != n_seen) {
        st = ramc_error(RAMC_ERR_MISMATCH, "%s: targets_seen is [%lld,%lld], expected [%d,%d]",
                        path, (long long)tgshape[0], (long long)tgshape[1], B, n_seen);
        goto done;
    }
    targets = ramc_malloc((size_t)B * n_seen * sizeof(float), "targets");
    if (!targets) {
        st = RAMC_ERR_NOMEM;
        goto done;
    }
    if ((st = st_read_f32(inputs, st_find(inputs, "targets_seen"), targets)) != RAMC_OK) goto done;
    if ((st = stage_train(&g, clip, adapter, images, B, tokens, n_seen, targets)) != RAMC_OK)
        goto done;

done:
    if (st != RAMC_OK && !strstr(ramc_last_error(), dir))
        ramc_error_prefix(st, "golden set %s", dir);
    free(images);
    free(tokens);
    free(tokens64);
    free(targets);
    ram_adapter_free(adapter);
    ramc_clip_free(clip);
    st_close(inputs);
    st_close(outputs);
    cJSON_Delete(config);
    cJSON_Delete(classes);
    return st;
}

void golden_report_free(golden_report *report) {
    free(report->rows);
    memset(report, 0, sizeof *report);
}
