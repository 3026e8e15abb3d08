#include "eval/evaluate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dist.h"
#include "data/loader.h"
#include "eval/metrics.h"

ram_eval_options ram_eval_default_options(void) {
    ram_eval_options o;
    memset(&o, 0, sizeof o);
    o.batch_size = 512;
    o.workers = 1;
    o.per_image_sinkhorn = 0;
    for (int c = 0; c < 3; c++) o.mean[c] = o.std[c] = 0.5f;
    return o;
}

/* Unreadable images in skip mode: count them; the path is already in the
 * message the loader hands over. */
typedef struct {
    int skipped;
    char first[1024];
} skip_log;

static void on_unreadable(void *user, const char *path, int item, ramc_status status,
                          const char *message) {
    skip_log *log = user;
    if (log->skipped++ == 0) snprintf(log->first, sizeof log->first, "%s", message);
    (void)path, (void)item, (void)status;
}

/* Sharded evaluation: every process's scores [done, C] and item numbers
 * [done] gathered into scores [n, C] and kept, in increasing item order (the
 * order one process produces), *done and *skipped the totals. */
static ramc_status gather_scores(const ramc_dist *d, int n, int C, float *scores, int *kept,
                                 int *done, int *skipped) {
    float *rows = malloc(((size_t)n * C + 2 * (size_t)n + 1) * sizeof(float));
    int *row_of = malloc((size_t)n * sizeof(int));
    if (!rows || !row_of) {
        free(rows), free(row_of);
        return ramc_error(RAMC_ERR_NOMEM, "out of memory gathering evaluation scores");
    }
    float *items = rows + (size_t)n * C, *mine = items + n;
    for (int i = 0; i < *done; i++) mine[i] = (float)kept[i];
    long total = 0;
    double counts[1] = {(double)*skipped};
    ramc_status st = dist_allgather_float(d, mine, *done, items, n, NULL, &total);
    if (st == RAMC_OK) st = dist_allgather_float(d, scores, (long)*done * C, rows, (long)n * C, NULL, NULL);
    if (st == RAMC_OK) st = dist_sum_double(d, counts, 1);
    if (st == RAMC_OK) {
        for (int i = 0; i < n; i++) row_of[i] = -1;
        for (long j = 0; j < total; j++) row_of[(int)items[j]] = (int)j;
        int at = 0;
        for (int i = 0; i < n; i++) {
            if (row_of[i] < 0) continue;
            memcpy(scores + (size_t)at * C, rows + (size_t)row_of[i] * C, (size_t)C * sizeof(float));
            kept[at++] = i;
        }
        *done = at;
        *skipped = (int)counts[0];
    }
    free(rows);
    free(row_of);
    return st;
}

ramc_status ram_evaluate(const ramc_model *model, const dataset *ds, const ram_eval_options *o,
                         const char *name, const char *model_name, int *n_skipped,
                         eval_report **out) {
    ram_eval_options defaults = ram_eval_default_options();
    if (!o) o = &defaults;
    *out = NULL;
    if (n_skipped) *n_skipped = 0;
    const int n = ds->n_items, C = ds->classes.n;
    if (n <= 0 || C <= 0)
        return ramc_error(RAMC_ERR_INVALID_ARG, "%s: nothing to evaluate (%d images, %d labels)",
                          ds->source ? ds->source : "dataset", n, C);
    if (o->batch_size < 1 || o->batch_size > RAMC_MAX_BATCH)
        return ramc_error(RAMC_ERR_INVALID_ARG, "evaluation batch size %d outside 1..%d",
                          o->batch_size, RAMC_MAX_BATCH);
    const ramc_clip_info info = ramc_model_get_info(model);
    const int S = info.image_size, B = o->batch_size;
    ramc_labels *labels = NULL;
    ramc_state *state = NULL;
    ramc_loader *loader = NULL;
    metrics_result metrics;
    memset(&metrics, 0, sizeof metrics);
    skip_log log = {0};
    const char **paths = malloc((size_t)n * sizeof *paths);
    int *order = malloc((size_t)n * sizeof *order), *items = malloc((size_t)B * sizeof *items);
    int *kept = malloc((size_t)n * sizeof *kept);
    float *images = malloc((size_t)B * 3 * S * S * sizeof(float));
    float *scores = malloc((size_t)n * C * sizeof(float));
    float *targets = malloc((size_t)n * C * sizeof(float));
    ramc_status st = (paths && order && items && kept && images && scores && targets)
                         ? RAMC_OK
                         : ramc_error(RAMC_ERR_NOMEM, "out of memory evaluating %s", ds->source);
    if (st != RAMC_OK) goto done;
    const int P = dist_size(o->dist), rank = dist_rank(o->dist);
    int n_mine = 0;
    for (int i = 0; i < n; i++) {
        paths[i] = ds->items[i].path;
        if (i / B % P == rank) order[n_mine++] = i; /* batches rank, rank + P, ... */
    }
    if (P > 1 && (long)n >= (1L << 24)) {
        st = ramc_error(RAMC_ERR_LIMIT, "%s: %d images: a sharded evaluation gathers item "
                        "numbers as floats, exact below 2^24", ds->source, n);
        goto done;
    }

    /* label features once for the whole evaluation */
    st = ramc_labels_encode_cached(model, NULL, (const char *const *)ds->classes.names, C,
                                   o->template_str, o->label_cache, &labels);
    if (st != RAMC_OK) goto done;

    ramc_loader_options lo = loader_default_options();
    lo.batch_size = B;
    lo.workers = o->workers;
    lo.drop_last = 0;
    lo.train = 0;
    lo.augment.image_size = S;
    memcpy(lo.augment.mean, o->mean, sizeof lo.augment.mean);
    memcpy(lo.augment.std, o->std, sizeof lo.augment.std);
    lo.on_error = o->fatal_missing ? LOADER_FATAL : LOADER_SKIP;
    lo.report = on_unreadable;
    lo.report_user = &log;
    if ((st = loader_new(paths, n, order, n_mine, &lo, 0, &loader)) != RAMC_OK) goto done;

    ramc_predict_params pp = ramc_predict_default_params();
    pp.per_image_sinkhorn = o->per_image_sinkhorn;
    pp.fuse_batch = 1; /* a whole batch per matrix product, as the official evaluation */
    pp.ablation = o->variant;
    pp.score = o->score;
    if (o->clip_baseline) pp.mode = RAMC_PREDICT_CLIP_BASELINE;
    /* one scratch arena for every batch, sized once for the largest */
    if ((st = ramc_state_create(model, &state)) != RAMC_OK ||
        (st = ramc_state_reserve(state, B, C, &pp)) != RAMC_OK)
        goto done;
    int done_images = 0, count = 0;
    for (;;) {
        if ((st = loader_next_batch(loader, images, items, &count)) != RAMC_OK) goto done;
        if (count == 0) break;
        st = ramc_predict_with_state(state, labels, images, count, &pp,
                                     scores + (size_t)done_images * C, NULL, NULL);
        if (st != RAMC_OK) goto done;
        for (int i = 0; i < count; i++) kept[done_images + i] = items[i];
        done_images += count;
        if (o->progress) o->progress(o->progress_user, done_images + log.skipped, n);
    }
    if (P > 1 && (st = gather_scores(o->dist, n, C, scores, kept, &done_images, &log.skipped)))
        goto done;
    if (done_images == 0) {
        st = ramc_error(RAMC_ERR_IO, "%s: no image could be read (first: %s)", ds->source,
                        log.first);
        goto done;
    }
    if ((st = dataset_targets(ds, kept, done_images, targets)) != RAMC_OK) goto done;
    const int ks[2] = {3, 5};
    if ((st = metrics_evaluate(scores, targets, done_images, C, ks, 2, &metrics)) != RAMC_OK)
        goto done;
    st = report_new(name, model_name, (const char *const *)ds->classes.names, &metrics, out);
done:
    if (n_skipped) *n_skipped = log.skipped;
    metrics_result_free(&metrics);
    loader_free(loader);
    ramc_state_free(state);
    ramc_labels_free(labels);
    free(paths);
    free(order);
    free(items);
    free(kept);
    free(images);
    free(scores);
    free(targets);
    return st;
}
