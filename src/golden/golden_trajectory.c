/* Trajectory replay: several optimiser steps of the official training loop,
 * reproduced through ramc's own solver (train/solver.h: optimisers, per-epoch
 * schedule, per-epoch EMA, BatchNorm in train mode) and compared after every
 * step (docs/spec.md "Trajectory sets").
 *
 * How each tensor is judged. Adam divides by the root of the second moment,
 * so an element whose gradient is tiny but above eps moves by a full step
 * whose sign the gradient's last bits decide: element-wise errors are not a
 * fair measure after a few steps, even between two runs of the official code.
 * Parameters and buffers are therefore judged by their displacement,
 *     ||ref_k - ours_k|| / ||ref_k - initial||          (Frobenius norms)
 * which official-vs-official runs with another summation order keep below
 * 3e-4; a wrong learning rate, group, decay, schedule step or EMA rule moves
 * it to 1e-1 or more. A tensor the reference did not move at all is judged by
 * max|diff| / max|ref| instead. Losses are relative errors, scores
 * max|diff| / max|ref|, learning rates and integer buffers exact (up to the
 * double rounding of the learning-rate formula). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/config.h"
#include "golden/golden_internal.h"
#include "io/file.h"
#include "model/clip.h"
#include "ram/ram.h"
#include "ram/ram_forward.h"
#include "ram/ram_train.h"
#include "train/optim.h"
#include "train/solver.h"

#define TRAJ_DISPLACEMENT_TOLERANCE 1e-2
#define TRAJ_UNMOVED_TOLERANCE 1e-4
#define TRAJ_LOSS_TOLERANCE 1e-4
#define TRAJ_SCORE_TOLERANCE 1e-3
#define TRAJ_LR_TOLERANCE 1e-9

typedef struct {
    const char *dir;
    golden_report *report;
    st_file *traj;          /* trajectory.safetensors */
    char *visited;          /* [traj->n_tensors] compared at some step */
    ram_adapter *live;      /* trained in place */
    ram_adapter *ema_view;  /* the EMA's values, copied out after each step */
    float *initial;         /* every tensor of `live` before the first step, table order */
    int64_t *initial_at;    /* [n_params + 1] offsets into `initial` */
} trajectory;

static void add_result(trajectory *t, const char *name, const st_tensor *ref, double max_abs,
                       double rel, double tolerance, int exact) {
    golden_row *row = golden_add_row(t->report);
    if (!row) return;
    snprintf(row->name, sizeof row->name, "%s", name);
    if (ref) golden_format_shape(row->shape, sizeof row->shape, ref->ndim, ref->shape);
    else snprintf(row->shape, sizeof row->shape, "[1]");
    row->exact = exact;
    row->max_abs = max_abs;
    row->rel = rel;
    row->pass = isfinite(rel) && rel <= tolerance;
    if (!row->pass) t->report->n_failed++;
}

static void fail_row(trajectory *t, const char *name, const char *why) {
    golden_fail_row(t->report, name, why);
}

/* The reference tensor `name` as float32, checked against the expected
 * element count; NULL (with a failed row) when absent or unusable. */
static float *read_ref(trajectory *t, const char *name, int64_t numel, const st_tensor **out) {
    const st_tensor *ref = st_find(t->traj, name);
    *out = ref;
    if (!ref) {
        fail_row(t, name, "missing");
        return NULL;
    }
    t->visited[ref - t->traj->tensors] = 1;
    if (ref->numel != numel) {
        fail_row(t, name, "shape differs");
        return NULL;
    }
    float *data = ramc_malloc((size_t)(numel ? numel : 1) * sizeof(float), name);
    if (!data || st_read_f32(t->traj, ref, data) != RAMC_OK) {
        free(data);
        fail_row(t, name, "unreadable");
        return NULL;
    }
    return data;
}

/* max|ours - ref| / max|ref| (scores); |ours - ref| / |ref| for one value. */
static void compare_plain(trajectory *t, const char *name, const float *ours, int64_t numel,
                          double tolerance) {
    const st_tensor *ref_t;
    float *ref = read_ref(t, name, numel, &ref_t);
    if (!ref) return;
    double max_abs = 0, max_ref = 0;
    for (int64_t i = 0; i < numel; i++) {
        double d = isfinite(ours[i]) ? fabs((double)ours[i] - ref[i]) : INFINITY;
        if (d > max_abs) max_abs = d;
        if (fabs(ref[i]) > max_ref) max_ref = fabs(ref[i]);
    }
    free(ref);
    add_result(t, name, ref_t, max_abs, max_ref > 0 ? max_abs / max_ref : max_abs, tolerance, 0);
}

/* The displacement measure of the header comment. */
static void compare_displacement(trajectory *t, const char *name, const float *ours,
                                 const float *initial, int64_t numel) {
    const st_tensor *ref_t;
    float *ref = read_ref(t, name, numel, &ref_t);
    if (!ref) return;
    double diff2 = 0, moved2 = 0, max_abs = 0, max_ref = 0;
    for (int64_t i = 0; i < numel; i++) {
        double d = isfinite(ours[i]) ? (double)ours[i] - ref[i] : INFINITY;
        double m = (double)ref[i] - initial[i];
        diff2 += d * d;
        moved2 += m * m;
        if (fabs(d) > max_abs) max_abs = fabs(d);
        if (fabs(ref[i]) > max_ref) max_ref = fabs(ref[i]);
    }
    free(ref);
    if (moved2 > 0)
        add_result(t, name, ref_t, max_abs, sqrt(diff2) / sqrt(moved2), TRAJ_DISPLACEMENT_TOLERANCE, 0);
    else
        add_result(t, name, ref_t, max_abs, max_ref > 0 ? max_abs / max_ref : max_abs,
                   TRAJ_UNMOVED_TOLERANCE, 0);
}

static void compare_count(trajectory *t, const char *name, int64_t ours) {
    const st_tensor *ref = st_find(t->traj, name);
    int64_t value;
    if (!ref) {
        fail_row(t, name, "missing");
        return;
    }
    t->visited[ref - t->traj->tensors] = 1;
    /* the sets store the live counts as float32 and the EMA's as int64 */
    float as_float;
    int is_float = ref->dtype == ST_F32 || ref->dtype == ST_F16 || ref->dtype == ST_BF16;
    ramc_status st = ref->numel != 1 ? RAMC_ERR_FORMAT
                     : is_float      ? st_read_f32(t->traj, ref, &as_float)
                                     : st_read_i64(t->traj, ref, &value);
    if (st == RAMC_OK && is_float) {
        value = (int64_t)as_float;
        if ((float)value != as_float) st = RAMC_ERR_FORMAT;
    }
    if (st != RAMC_OK) {
        fail_row(t, name, "not one integer");
        return;
    }
    double wrong = ours != value;
    add_result(t, name, ref, wrong, wrong, 0, 1);
}

/* BatchNorm s (1, 2) of vision block `layer`: its num_batches_tracked. */
static int64_t *bn_count_of(ram_adapter *a, int layer, int s) {
    for (int v = 0; v < a->n_vision_adapted; v++)
        if (a->vision_layers[v] == layer) return s == 1 ? &a->tss[v].bn1_count : &a->tss[v].bn2_count;
    return NULL;
}

/* Every "step{k}.live.*" / "step{k}.ema.*" tensor of the set against the live
 * adapter and the EMA after step k. */
static void compare_tensors(trajectory *t, int k) {
    char prefix[32], name[RAM_PARAM_NAME + 48];
    const int plen = snprintf(prefix, sizeof prefix, "step%d.", k);
    for (int i = 0; i < t->traj->n_tensors; i++) {
        const char *full = t->traj->tensors[i].name;
        if (strncmp(full, prefix, (size_t)plen) != 0) continue;
        const char *rest = full + plen;
        ram_adapter *a;
        if (strncmp(rest, "live.", 5) == 0) a = t->live;
        else if (strncmp(rest, "ema.", 4) == 0) a = t->ema_view;
        else continue; /* loss and score: compared by the caller */
        const char *pname = strchr(rest, '.') + 1;
        snprintf(name, sizeof name, "%s", full);
        if (!a) {
            t->visited[i] = 1;
            fail_row(t, name, "EMA recorded, but use_ema is off");
            continue;
        }
        int layer, s;
        char tail[64];
        if (sscanf(pname, "clip_model.visual.transformer.resblocks.%d.conv_adapter."
                          "conv_adapter_layers%d.1.%63s", &layer, &s, tail) == 3 &&
            strcmp(tail, "num_batches_tracked") == 0) {
            int64_t *count = bn_count_of(a, layer, s);
            if (count) compare_count(t, name, *count);
            else t->visited[i] = 1, fail_row(t, name, "no such BatchNorm in ramc's adapter");
            continue;
        }
        const ram_param *p = ram_adapter_find(a, pname);
        if (!p) {
            t->visited[i] = 1;
            fail_row(t, name, "no such tensor in ramc's adapter");
            continue;
        }
        const int idx = (int)(p - a->params);
        compare_displacement(t, name, p->data, t->initial + t->initial_at[idx], p->numel);
    }
}

/* The learning rate config.json records for step k (steps[k-1].lr) against
 * the optimiser's groups. */
static void compare_lr(trajectory *t, const cJSON *steps, int k, const ram_optimizer *opt) {
    const cJSON *lr = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(steps, k - 1), "lr");
    if (!lr) return;
    static const char *groups[RAM_N_GROUPS] = {"adamw0", "adamw1", "sgd"};
    char name[64];
    for (int g = 0; g < RAM_N_GROUPS; g++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(lr, groups[g]);
        if (!v) continue;
        snprintf(name, sizeof name, "step%d.lr.%s", k, groups[g]);
        if (!cJSON_IsNumber(v)) {
            fail_row(t, name, "not a number in config.json");
            continue;
        }
        double d = fabs(opt->lr[g] - v->valuedouble);
        add_result(t, name, NULL, d, v->valuedouble != 0 ? d / fabs(v->valuedouble) : d,
                   TRAJ_LR_TOLERANCE, 0);
    }
}

/* config.json's param_groups (name -> adamw0 | adamw1 | sgd) against the
 * group ramc's optimiser puts each parameter in: one exact row. */
static void compare_groups(trajectory *t, const cJSON *param_groups) {
    if (!cJSON_IsObject(param_groups)) return;
    int wrong = 0, n = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, param_groups) {
        n++;
        const ram_param *p = ram_adapter_find(t->live, item->string);
        /* the official names: AdamW groups 0 and 1 of make_optimizer, then the SGD one */
        static const char *official[RAM_N_GROUPS] = {"adamw0", "adamw1", "sgd"};
        const char *want = cJSON_IsString(item) ? item->valuestring : "";
        if (!p || !p->grad || strcmp(official[ram_optim_group_of(item->string)], want) != 0)
            wrong++;
    }
    golden_row *row = golden_add_row(t->report);
    if (!row) return;
    snprintf(row->name, sizeof row->name, "param_groups");
    snprintf(row->shape, sizeof row->shape, "[%d]", n);
    row->exact = 1;
    row->max_abs = wrong;
    row->rel = n ? (double)wrong / n : 0;
    row->pass = wrong == 0;
    if (!row->pass) t->report->n_failed++;
}

/* The solver settings of config.json applied over the preset it names, with
 * ramc's own config parser (so a value means what it means in `ramc train`). */
static ramc_status trajectory_config(const cJSON *config, const char *path, ram_train_config *cfg,
                                     golden_report *ignored) {
    const cJSON *preset = cJSON_GetObjectItemCaseSensitive(config, "config");
    ram_train_config_init(cfg, RAM_PRESET_COCO);
    ramc_status st;
    char origin[4200];
    snprintf(origin, sizeof origin, "%s: \"config\"", path);
    if (cJSON_IsString(preset) &&
        (st = ram_train_config_apply(cfg, "preset", preset->valuestring, origin)))
        return st;
    const cJSON *solver = cJSON_GetObjectItemCaseSensitive(config, "solver");
    if (!cJSON_IsObject(solver))
        return ramc_error(RAMC_ERR_FORMAT, "%s: a trajectory set needs a \"solver\" object", path);
    const cJSON *item;
    char value[64];
    cJSON_ArrayForEach(item, solver) {
        if (cJSON_IsString(item)) continue; /* descriptions, e.g. "adamw": "torch defaults" */
        if (cJSON_IsBool(item)) snprintf(value, sizeof value, "%s", cJSON_IsTrue(item) ? "true" : "false");
        else if (cJSON_IsNumber(item)) snprintf(value, sizeof value, "%.17g", item->valuedouble);
        else return ramc_error(RAMC_ERR_FORMAT, "%s: solver.%s must be a number or a boolean", path,
                               item->string);
        snprintf(origin, sizeof origin, "%s: solver", path);
        if (!ram_train_config_has_key(item->string)) {
            /* e.g. "warmup_prefix": false: a fact of the official loop that ramc
             * implements without a setting. Listed, not fatal: a key that mattered
             * shows as failed tensors. */
            golden_row *row = ignored ? golden_add_row(ignored) : NULL;
            if (row) {
                row->pass = 1;
                snprintf(row->name, sizeof row->name, "solver.%s", item->string);
                snprintf(row->shape, sizeof row->shape, "ignored");
            }
            continue;
        }
        if ((st = ram_train_config_apply(cfg, item->string, value, origin)))
            return ramc_error_prefix(st, "cannot replay this trajectory");
    }
    /* the matching constants, when the set states them (single-step sets do) */
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(config, "cfg");
    const struct {
        const char *json, *key;
    } extra[] = {{"OT_REG(eval reg)", "ot_reg"},
                 {"OT_REGSC", "ot_regsc"},
                 {"teacher_token_sharpen", "teacher_sharpen"}};
    for (size_t i = 0; c && i < sizeof extra / sizeof extra[0]; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(c, extra[i].json);
        if (!cJSON_IsNumber(v)) continue;
        snprintf(value, sizeof value, "%.17g", v->valuedouble);
        if ((st = ram_train_config_apply(cfg, extra[i].key, value, origin))) return st;
    }
    return ram_train_config_validate(cfg, path);
}

/* Keeps every tensor of `a` as it is before the first step. */
static ramc_status keep_initial(trajectory *t) {
    const ram_adapter *a = t->live;
    t->initial_at = ramc_malloc(((size_t)a->n_params + 1) * sizeof(int64_t), "initial values");
    if (!t->initial_at) return RAMC_ERR_NOMEM;
    t->initial_at[0] = 0;
    for (int i = 0; i < a->n_params; i++) t->initial_at[i + 1] = t->initial_at[i] + a->params[i].numel;
    t->initial = ramc_malloc((size_t)(t->initial_at[a->n_params] + 1) * sizeof(float), "initial values");
    if (!t->initial) return RAMC_ERR_NOMEM;
    for (int i = 0; i < a->n_params; i++)
        memcpy(t->initial + t->initial_at[i], a->params[i].data, (size_t)a->params[i].numel * sizeof(float));
    return RAMC_OK;
}

ramc_status golden_run_trajectory(const char *dir, const cJSON *config, golden_report *report) {
    char path[4096], config_path[4096];
    trajectory t = {dir, report, NULL, NULL, NULL, NULL, NULL, NULL};
    st_file *inputs = NULL;
    ramc_clip *clip = NULL;
    ram_solver solver = {0};
    ram_text_cache cache = {0};
    ram_train_result res = {0};
    float *images = NULL, *targets = NULL, *teacher_text = NULL, *scores = NULL;
    int32_t *tokens = NULL;
    int64_t *tokens64 = NULL;
    ramc_status st;
    snprintf(config_path, sizeof config_path, "%s/config.json", dir);

    ram_train_config cfg;
    if ((st = trajectory_config(config, config_path, &cfg, report))) goto done;
    const cJSON *model = NULL;
    ramc_clip_params params = ramc_clip_default_params();
    if ((st = golden_json_object(config, "model", &model, config_path)) ||
        (st = golden_json_int(model, "vision_heads", 0, &params.vision_heads, config_path)) ||
        (st = golden_json_int(model, "text_heads", 0, &params.text_heads, config_path)))
        goto done;
    params.bf16 = report->bf16;
    snprintf(path, sizeof path, "%s/weights.safetensors", dir);
    if ((st = ramc_clip_load(path, &params, &clip))) goto done;
    /* as `ramc train` (and `ramc train --bf16` under --bf16) */
    clip_freeze_for_training(clip, report->bf16);
    snprintf(path, sizeof path, "%s/adapter.safetensors", dir);
    if ((st = ram_adapter_load(path, clip, 1, &t.live)) || (st = ram_adapter_load(path, clip, 0, &t.ema_view)))
        goto done;
    snprintf(path, sizeof path, "%s/trajectory.safetensors", dir);
    if ((st = st_open(path, &t.traj))) goto done;
    if (!(t.visited = ramc_calloc((size_t)t.traj->n_tensors + 1, 1, "trajectory"))) {
        st = RAMC_ERR_NOMEM;
        goto done;
    }

    /* inputs: images [iters, B, 3, S, S], targets_seen [iters, B, Cs], text_tokens [C, L] */
    snprintf(path, sizeof path, "%s/inputs.safetensors", dir);
    if ((st = st_open(path, &inputs))) goto done;
    int64_t ish[5], tsh[3], ksh[2];
    if ((st = golden_input_shape(inputs, "images", 5, ish, path)) ||
        (st = golden_input_shape(inputs, "targets_seen", 3, tsh, path)) ||
        (st = golden_input_shape(inputs, "text_tokens", 2, ksh, path)))
        goto done;
    const ramc_clip_info *in = &clip->info;
    const int n_batches = (int)ish[0], B = (int)ish[1], Cs = (int)tsh[2], C = (int)ksh[0];
    const int S = in->image_size, L = in->context_length;
    if (ish[2] != 3 || ish[3] != S || ish[4] != S || tsh[0] != n_batches || tsh[1] != B ||
        ksh[1] != L || Cs < 1 || Cs > C || B < 1) {
        st = ramc_error(RAMC_ERR_MISMATCH, "%s: images [%lld,%lld,%lld,%lld,%lld], targets_seen "
                        "[%lld,%lld,%lld] and text_tokens [%lld,%lld] do not fit together or the "
                        "model (images %dx%d, context %d)", path, (long long)ish[0], (long long)ish[1],
                        (long long)ish[2], (long long)ish[3], (long long)ish[4], (long long)tsh[0],
                        (long long)tsh[1], (long long)tsh[2], (long long)ksh[0], (long long)ksh[1],
                        S, S, L);
        goto done;
    }
    const size_t image_floats = (size_t)B * 3 * S * S;
    images = ramc_malloc((size_t)n_batches * image_floats * sizeof(float), "images");
    targets = ramc_malloc((size_t)n_batches * B * Cs * sizeof(float), "targets");
    tokens = ramc_malloc((size_t)C * L * sizeof(int32_t), "tokens");
    tokens64 = ramc_malloc((size_t)C * L * sizeof(int64_t), "tokens");
    teacher_text = ramc_malloc((size_t)Cs * in->embed_dim * sizeof(float), "teacher text");
    if (!images || !targets || !tokens || !tokens64 || !teacher_text) {
        st = RAMC_ERR_NOMEM;
        goto done;
    }
    if ((st = st_read_f32(inputs, st_find(inputs, "images"), images)) ||
        (st = st_read_f32(inputs, st_find(inputs, "targets_seen"), targets)) ||
        (st = st_read_i64(inputs, st_find(inputs, "text_tokens"), tokens64)))
        goto done;
    for (int64_t i = 0; i < (int64_t)C * L; i++) tokens[i] = (int32_t)tokens64[i];

    int epochs, iters;
    if ((st = golden_json_int(config, "epochs", cfg.max_epochs, &epochs, config_path)) ||
        (st = golden_json_int(config, "iters_per_epoch", n_batches, &iters, config_path)))
        goto done;
    const cJSON *steps = cJSON_GetObjectItemCaseSensitive(config, "steps");

    compare_groups(&t, cJSON_GetObjectItemCaseSensitive(config, "param_groups"));
    /* the frozen teacher's features of the seen prompts, once, as `ramc train` */
    if ((st = ram_encode_text(clip, NULL, tokens, Cs, teacher_text, NULL, NULL))) goto done;
    if ((st = keep_initial(&t))) goto done;
    if ((st = ram_solver_create(t.live, &cfg, &solver))) goto done;
    solver.step.text_cache = &cache;
    if (!solver.ema) ram_adapter_free(t.ema_view), t.ema_view = NULL;

    /* data-parallel: this process trains images off .. off + share - 1 of
     * every batch, and the scores of all are gathered for the comparison */
    const ramc_dist *dist = report->dist;
    const int P = dist_size(dist), rank = dist_rank(dist);
    const int share = B / P + (rank < B % P), off = rank * (B / P) + (rank < B % P ? rank : B % P);
    if (P > B) {
        st = ramc_error(RAMC_ERR_INVALID_ARG, "%s: batches of %d cannot be split over %d processes",
                        path, B, P);
        goto done;
    }
    solver.step.dist = dist;
    if (P > 1 && !(scores = ramc_malloc((size_t)B * Cs * sizeof(float), "scores"))) {
        st = RAMC_ERR_NOMEM;
        goto done;
    }

    int k = 0;
    for (int epoch = 1; epoch <= epochs; epoch++) {
        if ((st = ram_solver_begin_epoch(&solver, t.live, epoch, 1))) goto done;
        for (int it = 0; it < iters; it++) {
            k++;
            /* the batch this step trains on: steps[k-1].batch_index, else the iteration */
            int bi = it;
            const cJSON *rec = cJSON_GetArrayItem(steps, k - 1);
            if ((st = golden_json_int(rec, "batch_index", it, &bi, config_path))) goto done;
            if (bi >= n_batches) {
                st = ramc_error(RAMC_ERR_FORMAT, "%s: step %d trains on batch %d, inputs hold %d",
                                config_path, k, bi, n_batches);
                goto done;
            }
            compare_lr(&t, steps, k, solver.opt);
            st = ram_solver_step(&solver, clip, t.live,
                                 images + (size_t)bi * image_floats + (size_t)off * 3 * S * S, share,
                                 tokens, Cs, teacher_text,
                                 targets + ((size_t)bi * B + off) * Cs, &res);
            const float *score = res.head.score;
            if (st == RAMC_OK && P > 1) {
                st = dist_allgather_float(dist, res.head.score, (long)share * Cs, scores,
                                          (long)B * Cs, NULL, NULL);
                score = scores;
            }
            if (st) {
                ramc_error_prefix(st, "step %d (epoch %d)", k, epoch);
                goto done;
            }
            char name[64];
            snprintf(name, sizeof name, "step%d.loss", k);
            compare_plain(&t, name, &res.loss, 1, TRAJ_LOSS_TOLERANCE);
            snprintf(name, sizeof name, "step%d.score", k);
            compare_plain(&t, name, score, (int64_t)B * Cs, TRAJ_SCORE_TOLERANCE);
            ram_train_result_free(&res);
            if (t.ema_view && (st = ema_copy_to(solver.ema, t.ema_view))) goto done;
            compare_tensors(&t, k);
        }
    }
    /* a recorded tensor that no step compared: more steps, or names ramc does not know */
    for (int i = 0; i < t.traj->n_tensors; i++)
        if (!t.visited[i]) fail_row(&t, t.traj->tensors[i].name, "not replayed");
    if (k == 0) fail_row(&t, "steps", "the set records no step");

done:
    ram_train_result_free(&res);
    ram_text_cache_free(&cache);
    ram_solver_free(&solver);
    ram_adapter_free(t.live);
    ram_adapter_free(t.ema_view);
    ramc_clip_free(clip);
    st_close(t.traj);
    st_close(inputs);
    free(t.visited);
    free(t.initial);
    free(t.initial_at);
    free(images);
    free(targets);
    free(tokens);
    free(tokens64);
    free(teacher_text);
    free(scores);
    return st;
}
