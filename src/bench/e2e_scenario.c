/* The end-to-end scenario (predict_folder_e2e): JPEG files through ramc
 * predict's decoding pipeline to JSON, beside the model alone on the same
 * images at the same batch size. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/bench_internal.h"
#include <cjson/cJSON.h>

#include "api/model_view.h"
#include "api/pipeline.h"
#include "core/rng.h"
#include "image/image.h"
#include "text/text.h"

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
ramc_status e2e_setup(bench_ctx *c, uint64_t seed, const char *tmp) {
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
    /* the model-only pass's scratch, reserved as the pipeline reserves its own */
    const ramc_predict_params pp = ramc_predict_default_params();
    if ((st = ramc_state_create(c->model, &c->state)) ||
        (st = ramc_state_reserve(c->state, c->B, ramc_labels_count(c->labels), &pp)))
        return st;
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
        char path[4200];
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
static ramc_status e2e_model_only(bench_ctx *c, const ramc_predict_params *pp) {
    const size_t per_image = (size_t)3 * c->m->info.image_size * c->m->info.image_size;
    ramc_status st = RAMC_OK;
    double t0 = monotonic_seconds();
    for (int first = 0; first < BENCH_E2E_IMAGES && st == RAMC_OK; first += c->B) {
        int n = BENCH_E2E_IMAGES - first < c->B ? BENCH_E2E_IMAGES - first : c->B;
        st = ramc_predict_with_state(c->state, c->labels, c->images + per_image * (size_t)first, n, pp,
                                     c->out, NULL, NULL);
    }
    c->phase[0] = monotonic_seconds() - t0;
    return st;
}

/* JPEG files to JSON through the pipeline: phase 1. */
static ramc_status e2e_pipeline(bench_ctx *c, const ramc_predict_params *pp) {
    predict_pipeline_options po = predict_pipeline_default_options();
    po.batch = c->B;
    po.params = *pp;
    e2e_json j = {c->sink, c->labels, c->C, RAMC_OK};
    double t0 = monotonic_seconds();
    ramc_status st = predict_pipeline_run(c->model, c->labels, (const char *const *)c->paths,
                                          BENCH_E2E_IMAGES, &po, e2e_emit, &j, NULL);
    fflush(c->sink);
    c->phase[1] = monotonic_seconds() - t0;
    return st ? st : j.status;
}

/* Both passes over the same images, in turns (the model alone first on even
 * runs, end to end first on odd ones), so that a machine whose speed drifts
 * does not favour one of them. */
ramc_status e2e_run(bench_ctx *c) {
    const ramc_predict_params pp = ramc_predict_default_params();
    const int e2e_first = c->e2e_runs++ % 2;
    ramc_status st = e2e_first ? e2e_pipeline(c, &pp) : e2e_model_only(c, &pp);
    if (st == RAMC_OK) st = e2e_first ? e2e_model_only(c, &pp) : e2e_pipeline(c, &pp);
    return st;
}

void e2e_free(bench_ctx *c) {
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

