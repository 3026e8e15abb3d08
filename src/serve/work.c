/* What the workers run: a label set encoded (or found in the store), the
 * images decoded and preprocessed, one ramc_predict_with_state call on the
 * worker's own state, and the answer in the schema of `ramc predict --format
 * json`, with heat maps as base64 PNG when asked. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "image/image.h"
#include "serve/base64.h"
#include "serve/internal.h"

/* HTTP status for a library failure on the client's input. */
static int status_for(ramc_status st) {
    switch (st) {
    case RAMC_ERR_LIMIT: return 413;
    case RAMC_ERR_FORMAT:
    case RAMC_ERR_INVALID_ARG:
    case RAMC_ERR_MISMATCH: return 400;
    default: return 500;
    }
}

/* The request's own labels: the stored set with the same content if there is
 * one, else encoded now and stored for the next request that repeats them.
 * *owned is set when the set could not be stored (the caller frees it). */
static vocab_entry *resolve_labels(serve_server *s, request_spec *spec, ramc_labels **owned,
                                   answer *out) {
    const char *const *names = (const char *const *)spec->labels;
    vocab_entry *e = vocab_acquire_same(&s->vocab, spec->template_str, names, spec->n_labels);
    if (e) return e;
    ramc_labels *labels = NULL;
    ramc_status st = ramc_labels_encode_cached(s->model, NULL, names, spec->n_labels, spec->template_str,
                                               s->opt.label_cache, &labels);
    if (st != RAMC_OK) {
        char msg[600];
        snprintf(msg, sizeof msg, "labels: %s", ramc_last_error());
        answer_error(out, status_for(st), msg);
        return NULL;
    }
    char id[VOCAB_ID_BYTES];
    vocab_content_id(spec->template_str, names, spec->n_labels, id);
    e = vocab_insert(&s->vocab, id, spec->template_str, labels, 0);
    if (!e) *owned = labels; /* the store is full of sets in use: this request keeps its own */
    return e;
}

/* A heat map of `values` (grid*grid) over `disp`, as base64 PNG in obj[key]. */
static int add_heatmap(cJSON *obj, const char *key, const ramc_image *disp, const float *values, int grid) {
    ramc_image pic = {0};
    uint8_t *png = NULL;
    size_t size = 0;
    char *b64 = NULL;
    int ok = ramc_heatmap_overlay(disp, values, grid, 0.5f, &pic) == RAMC_OK &&
             image_encode_png(&pic, &png, &size) == RAMC_OK && (b64 = base64_encode(png, size)) &&
             cJSON_AddStringToObject(obj, key, b64);
    ramc_image_free(&pic);
    free(png);
    free(b64);
    return ok;
}

/* Heat maps for one image: its LPD patch marginal ("lpd_png") and the plan
 * column of each of its first shown labels ("heatmap_png" beside the score).
 * Drawn over the image as uploaded (aspect ratio kept, long side
 * SERVE_HEATMAP_SIDE): the grid stretches over it as the model's square
 * input did. plan [N, C], lpd [N]. */
static int explain(cJSON *obj, const ramc_image *orig, int grid, int C, const float *plan,
                   const float *lpd, const int *order, int shown) {
    const int N = grid * grid;
    const int longest = orig->width > orig->height ? orig->width : orig->height;
    const double f = (double)SERVE_HEATMAP_SIDE / longest;
    int w = (int)(orig->width * f + 0.5), h = (int)(orig->height * f + 0.5);
    ramc_image disp = {0};
    float *col = malloc((size_t)N * sizeof *col);
    int ok = col && ramc_image_resize(orig, w > 0 ? w : 1, h > 0 ? h : 1, RAMC_FILTER_BILINEAR, &disp) == RAMC_OK &&
             add_heatmap(obj, "lpd_png", &disp, lpd, grid);
    cJSON *list = cJSON_GetObjectItemCaseSensitive(obj, "labels");
    for (int k = 0; ok && k < shown && k < SERVE_MAX_EXPLAINED; k++) {
        for (int i = 0; i < N; i++) col[i] = plan[(size_t)i * C + order[k]];
        ok = add_heatmap(cJSON_GetArrayItem(list, k), "heatmap_png", &disp, col, grid);
    }
    ramc_image_free(&disp);
    free(col);
    return ok;
}

void work_predict(serve_server *s, serve_worker *w, request_spec *spec, vocab_entry *held,
                  answer *out) {
    ramc_labels *owned = NULL;
    vocab_entry *entry = held ? held : resolve_labels(s, spec, &owned, out);
    if (!entry && !owned) return; /* answered */
    const ramc_labels *labels = entry ? entry->labels : owned;
    const ramc_clip_info info = ramc_model_get_info(s->model);
    const int B = spec->n_images, C = ramc_labels_count(labels), N = info.n_patches;
    const size_t per_image = (size_t)3 * info.image_size * info.image_size;
    float *tensor = malloc((size_t)B * per_image * sizeof(float));
    float *scores = malloc((size_t)B * C * sizeof(float));
    int *order = malloc((size_t)C * sizeof(int));
    float *plan = spec->explain ? malloc((size_t)B * N * C * sizeof(float)) : NULL;
    float *lpd = spec->explain ? malloc((size_t)B * N * sizeof(float)) : NULL;
    ramc_image *origs = calloc((size_t)B, sizeof *origs);
    cJSON *root = NULL;
    if (!tensor || !scores || !order || !origs || (spec->explain && (!plan || !lpd))) {
        answer_error(out, 500, "out of memory for the request");
        goto done;
    }
    for (int b = 0; b < B; b++) {
        const upload *u = &spec->images[b];
        ramc_status st = u->size ? ramc_image_decode(u->data, u->size, u->name, &origs[b])
                                 : ramc_error(RAMC_ERR_FORMAT, "%s: empty file", u->name);
        if (st == RAMC_OK)
            st = ramc_preprocess_image(s->model, &origs[b], NULL, tensor + (size_t)b * per_image);
        if (st != RAMC_OK) {
            /* the decoders' messages name the upload ("x.png: invalid PNG: ...") */
            answer_error(out, status_for(st), ramc_last_error());
            goto done;
        }
    }
    ramc_predict_params pp = ramc_predict_default_params();
    pp.mode = spec->baseline ? RAMC_PREDICT_CLIP_BASELINE : RAMC_PREDICT_RAM;
    pp.score = spec->score;
    if (ramc_predict_with_state(w->state, labels, tensor, B, &pp, scores, plan, lpd) != RAMC_OK) {
        char msg[600];
        snprintf(msg, sizeof msg, "prediction failed: %s", ramc_last_error());
        answer_error(out, 500, msg);
        goto done;
    }
    root = cJSON_CreateObject();
    cJSON *results = cJSON_AddArrayToObject(root, "results");
    int ok = root && results && (!entry || cJSON_AddStringToObject(root, "vocabulary", entry->id));
    for (int b = 0; ok && b < B; b++) {
        const float *sc = scores + (size_t)b * C;
        int shown = result_rank(sc, C, &spec->sel, order);
        cJSON *obj = shown >= 0 ? result_json(spec->images[b].name, labels, order, sc, shown, pp.score) : NULL;
        ok = obj != NULL;
        if (ok) cJSON_AddItemToArray(results, obj);
        if (ok && spec->explain)
            ok = explain(obj, &origs[b], info.grid, C, plan + (size_t)b * N * C, lpd + (size_t)b * N, order, shown);
    }
    if (ok) answer_json(out, 200, root), root = NULL;
    else answer_error(out, 500, "out of memory writing the answer");
done:
    cJSON_Delete(root);
    for (int b = 0; origs && b < B; b++) ramc_image_free(&origs[b]);
    free(origs);
    free(tensor);
    free(scores);
    free(order);
    free(plan);
    free(lpd);
    if (entry && entry != held) vocab_release(&s->vocab, entry);
    ramc_labels_free(owned);
}

void work_labels(serve_server *s, request_spec *spec, answer *out) {
    ramc_labels *owned = NULL;
    vocab_entry *e = resolve_labels(s, spec, &owned, out);
    if (!e && !owned) return;
    if (!e) { /* the store is full of sets in use, or (astronomically rarely) the id is taken */
        char msg[600];
        snprintf(msg, sizeof msg, "%s; try again", ramc_last_error());
        ramc_labels_free(owned);
        answer_error(out, 503, msg);
        out->retry_after = 1;
        return;
    }
    cJSON *root = cJSON_CreateObject();
    if (root && cJSON_AddStringToObject(root, "id", e->id) &&
        cJSON_AddNumberToObject(root, "labels", ramc_labels_count(e->labels)) &&
        cJSON_AddNumberToObject(root, "cache_hits", ramc_labels_cache_hits(e->labels)))
        answer_json(out, 200, root);
    else
        cJSON_Delete(root), answer_error(out, 500, "out of memory writing the answer");
    vocab_release(&s->vocab, e);
}
