/* Prediction over many images with decoding overlapped (api/pipeline.h).
 *
 * The prefetching loader (data/loader.h) does the overlapping: its workers
 * claim images in order and decode them up to prefetch_batches batches ahead
 * of the calling thread, which packs each batch and then runs the forward
 * pass while the workers go on. Unreadable images are reported by the loader
 * as it meets them, while it fills a batch; they are held here and emitted in
 * their place among the batch's results, so the callback always sees the
 * order of `names`. */
#include "api/pipeline.h"

#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/status.h"

predict_pipeline_options predict_pipeline_default_options(void) {
    predict_pipeline_options o;
    memset(&o, 0, sizeof o);
    o.batch = 8;
    o.workers = 1;
    o.prefetch_batches = 2;
    o.params = ramc_predict_default_params();
    return o;
}

/* Unreadable items met while filling the current batch, in order. */
typedef struct {
    int item;
    ramc_status status;
    char *message;
} failure;

typedef struct {
    failure *v;
    int n, cap;
    int out_of_memory; /* a report could not be held: the run stops */
} failure_list;

static void hold_failure(void *user, const char *path, int item, ramc_status status,
                         const char *message) {
    failure_list *f = user;
    (void)path;
    if (f->n == f->cap) {
        int cap = f->cap ? 2 * f->cap : 8;
        failure *v = realloc(f->v, sizeof *v * (size_t)cap);
        if (!v) {
            f->out_of_memory = 1;
            return;
        }
        f->v = v, f->cap = cap;
    }
    char *copy = strdup(message ? message : "");
    if (!copy) {
        f->out_of_memory = 1;
        return;
    }
    f->v[f->n++] = (failure){item, status, copy};
}

static void emit_failure(const failure *fl, const char *const *names, predict_pipeline_emit_fn emit,
                         void *user) {
    predict_pipeline_item it = {.index = fl->item, .name = names[fl->item], .status = fl->status,
                                .error = fl->message};
    emit(user, &it);
}

static void clear_failures(failure_list *f) {
    for (int i = 0; i < f->n; i++) free(f->v[i].message);
    f->n = 0;
}

ramc_status predict_pipeline_run(const ramc_model *model, const ramc_labels *labels,
                                 const char *const *names, int n,
                                 const predict_pipeline_options *opt,
                                 predict_pipeline_emit_fn emit, void *user,
                                 predict_pipeline_stats *stats) {
    const double t_start = monotonic_seconds();
    if (stats) memset(stats, 0, sizeof *stats);
    if (!model || !labels || !opt || !emit || n < 0 || (n > 0 && !names))
        return ramc_error(RAMC_ERR_INVALID_ARG, "predict pipeline: NULL or negative arguments");
    if (opt->batch < 1 || opt->batch > RAMC_MAX_BATCH)
        return ramc_error(RAMC_ERR_INVALID_ARG, "predict pipeline: batch %d not in 1..%d", opt->batch,
                          RAMC_MAX_BATCH);
    if (opt->want_plan && opt->params.mode != RAMC_PREDICT_RAM)
        return ramc_error(RAMC_ERR_INVALID_ARG,
                          "predict pipeline: the transport plan exists in RAM mode only");
    if (n == 0) return RAMC_OK;

    const ramc_clip_info info = ramc_model_get_info(model);
    const int B = opt->batch, S = info.image_size, N = info.n_patches, C = ramc_labels_count(labels);
    const ramc_preprocess_params pre = ramc_preprocess_default_params();
    ramc_loader_options lo = loader_default_options();
    lo.batch_size = B;
    lo.workers = opt->workers;
    lo.prefetch_batches = opt->prefetch_batches;
    lo.drop_last = 0;
    lo.train = 0; /* the test transform: ramc_preprocess_image's defaults */
    lo.augment.image_size = S;
    memcpy(lo.augment.mean, pre.mean, sizeof lo.augment.mean);
    memcpy(lo.augment.std, pre.std, sizeof lo.augment.std);
    lo.on_error = LOADER_SKIP;
    failure_list fails = {0};
    lo.report = hold_failure;
    lo.report_user = &fails;
    lo.decode = opt->decode;
    lo.decode_user = opt->decode_user;
    lo.keep_decoded = opt->keep_images;

    ramc_status st = RAMC_OK;
    ramc_loader *loader = NULL;
    ramc_state *state = NULL;
    const size_t per_image = (size_t)3 * S * S;
    int *order = ramc_malloc(sizeof(int) * (size_t)n, "pipeline order");
    int *items = ramc_malloc(sizeof(int) * (size_t)B, "pipeline items");
    float *images = ramc_malloc(sizeof(float) * per_image * (size_t)B, "pipeline images");
    float *scores = ramc_malloc(sizeof(float) * (size_t)B * (size_t)C, "pipeline scores");
    ramc_image *decoded = opt->keep_images ? ramc_calloc((size_t)B, sizeof *decoded, "pipeline images")
                                           : NULL;
    float *plan = opt->want_plan ? ramc_malloc(sizeof(float) * (size_t)B * N * C, "pipeline plans") : NULL;
    float *lpd = opt->want_plan ? ramc_malloc(sizeof(float) * (size_t)B * N, "pipeline LPD") : NULL;
    if (!order || !items || !images || !scores || (opt->keep_images && !decoded) ||
        (opt->want_plan && (!plan || !lpd))) {
        st = RAMC_ERR_NOMEM;
        goto done;
    }
    for (int i = 0; i < n; i++) order[i] = i;
    /* sized for a full batch before the first one, so no batch grows it */
    if ((st = ramc_state_create(model, &state)) != RAMC_OK ||
        (st = ramc_state_reserve(state, B, C, &opt->params)) != RAMC_OK)
        goto done;
    if ((st = loader_new(names, n, order, n, &lo, 0, &loader)) != RAMC_OK) {
        ramc_error_prefix(st, "predict pipeline");
        goto done;
    }
    for (;;) {
        int count = 0;
        double t0 = monotonic_seconds();
        st = loader_next_batch_decoded(loader, images, items, decoded, &count);
        if (stats) stats->wait_s += monotonic_seconds() - t0;
        if (st != RAMC_OK) break;
        if (fails.out_of_memory) {
            st = ramc_error(RAMC_ERR_NOMEM, "predict pipeline: out of memory for an error message");
            break;
        }
        if (count > 0) {
            t0 = monotonic_seconds();
            st = ramc_predict_with_state(state, labels, images, count, &opt->params, scores, plan, lpd);
            if (stats) stats->forward_s += monotonic_seconds() - t0, stats->batches++;
            if (st != RAMC_OK) {
                for (int k = 0; decoded && k < count; k++) ramc_image_free(&decoded[k]);
                break;
            }
        }
        /* the batch's results with the failures met while filling it, in order */
        int f = 0;
        for (int k = 0; k < count; k++) {
            for (; f < fails.n && fails.v[f].item < items[k]; f++) emit_failure(&fails.v[f], names, emit, user);
            predict_pipeline_item it = {.index = items[k], .name = names[items[k]], .status = RAMC_OK,
                                        .scores = scores + (size_t)k * C,
                                        .plan = plan ? plan + (size_t)k * N * C : NULL,
                                        .lpd = lpd ? lpd + (size_t)k * N : NULL,
                                        .image = decoded ? &decoded[k] : NULL};
            emit(user, &it);
            if (decoded) ramc_image_free(&decoded[k]);
        }
        for (; f < fails.n; f++) emit_failure(&fails.v[f], names, emit, user);
        if (stats) stats->images += count, stats->failed += fails.n;
        clear_failures(&fails);
        if (count == 0) break; /* every item delivered */
    }

done:
    loader_free(loader);
    ramc_state_free(state);
    clear_failures(&fails);
    free(fails.v);
    free(order), free(items), free(images), free(scores), free(decoded), free(plan), free(lpd);
    if (stats) stats->total_s = monotonic_seconds() - t_start;
    return st;
}
