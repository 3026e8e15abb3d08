/* The prediction pipeline (api/pipeline.h): decoding on worker threads,
 * batches, results in order.
 *  - every item comes back once, in the order given, unreadable ones (a
 *    missing file, a text file) as errors naming them, in their place;
 *  - scores, plans and LPD marginals are bitwise the same for batch 1 with
 *    no workers, batch 3 with 2 workers and batch 8 with 1 worker, and the
 *    same as ramc_preprocess_file + ramc_predict one image at a time (the
 *    guarantee of docs/predict.md);
 *  - fuse_batch = 1 agrees with them to float rounding;
 *  - a decode function (images from memory) and keep_images work;
 *  - bad arguments are refused. */
#include "api/pipeline.h"
#include "io/file.h"
#include "test.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_MODEL RAMC_SOURCE_DIR "/data/default"
#define SAMPLES RAMC_SOURCE_DIR "/data/samples"
#define FIXTURES RAMC_SOURCE_DIR "/tests/fixtures/images"
#define MAX_ITEMS 16

static const char *const paths[] = {
    SAMPLES "/black-ring.png",
    FIXTURES "/coffee_420.jpg",
    SAMPLES "/green-heart+black-star+white-star.png",
    SAMPLES "/orange-circle+black-triangle+blue-circle.png",
    SAMPLES "/no-such-image.png", /* missing */
    FIXTURES "/cat_444.jpg",
    SAMPLES "/red-heart+yellow-square.png",
    SAMPLES "/yellow-heart.png",
    FIXTURES "/rocket_420.jpg",
    SAMPLES "/README.txt", /* not an image */
    SAMPLES "/yellow-ring+purple-ring.png",
    SAMPLES "/yellow-star+blue-cross+blue-square.png",
};
#define N_ITEMS ((int)(sizeof paths / sizeof *paths))
static const char *const label_names[] = {"black ring", "black star", "green heart", "white star",
                                          "yellow heart"};
#define N_LABELS 5

typedef struct {
    int count, C, N;
    int index[MAX_ITEMS];
    ramc_status status[MAX_ITEMS];
    char error[MAX_ITEMS][512];
    float scores[MAX_ITEMS][N_LABELS];
    float *plan, *lpd; /* [MAX_ITEMS, N, C], [MAX_ITEMS, N] */
    int width[MAX_ITEMS], height[MAX_ITEMS];
} collected;

static void collect(void *user, const predict_pipeline_item *it) {
    collected *c = user;
    if (c->count >= MAX_ITEMS) return;
    int k = c->count++;
    c->index[k] = it->index;
    c->status[k] = it->status;
    if (it->status != RAMC_OK) {
        snprintf(c->error[k], sizeof c->error[k], "%s", it->error ? it->error : "");
        return;
    }
    memcpy(c->scores[k], it->scores, sizeof(float) * N_LABELS);
    if (it->plan) memcpy(c->plan + (size_t)k * c->N * c->C, it->plan, sizeof(float) * c->N * c->C);
    if (it->lpd) memcpy(c->lpd + (size_t)k * c->N, it->lpd, sizeof(float) * c->N);
    if (it->image) c->width[k] = it->image->width, c->height[k] = it->image->height;
}

static collected *run(const ramc_model *m, const ramc_labels *lb, int batch, int workers,
                      int want_plan, int keep_images, int fuse, loader_decode_fn decode,
                      const char *what) {
    const ramc_clip_info info = ramc_model_get_info(m);
    collected *c = calloc(1, sizeof *c);
    c->C = N_LABELS, c->N = info.n_patches;
    c->plan = calloc((size_t)MAX_ITEMS * c->N * c->C, sizeof(float));
    c->lpd = calloc((size_t)MAX_ITEMS * c->N, sizeof(float));
    predict_pipeline_options po = predict_pipeline_default_options();
    po.batch = batch, po.workers = workers, po.want_plan = want_plan, po.keep_images = keep_images;
    po.params.fuse_batch = fuse;
    po.decode = decode;
    predict_pipeline_stats stats;
    ramc_status st = predict_pipeline_run(m, lb, paths, N_ITEMS, &po, collect, c, &stats);
    CHECK(st == RAMC_OK, "%s: %s", what, ramc_last_error());
    CHECK(c->count == N_ITEMS, "%s: %d items emitted, want %d", what, c->count, N_ITEMS);
    for (int k = 0; k < c->count; k++) CHECK(c->index[k] == k, "%s: item %d came as %d", what, k, c->index[k]);
    CHECK(stats.images == N_ITEMS - 2 && stats.failed == 2 &&
              stats.batches == (N_ITEMS - 2 + batch - 1) / batch,
          "%s: stats %d images, %d failed, %d batches", what, stats.images, stats.failed, stats.batches);
    /* the unreadable ones, named, in their place */
    CHECK(c->status[4] != RAMC_OK && strstr(c->error[4], "no-such-image.png"),
          "%s: missing file: status %d, '%s'", what, c->status[4], c->error[4]);
    CHECK(c->status[9] != RAMC_OK && strstr(c->error[9], "README.txt"),
          "%s: text file: status %d, '%s'", what, c->status[9], c->error[9]);
    return c;
}

static void free_run(collected *c) {
    if (!c) return;
    free(c->plan), free(c->lpd), free(c);
}

static int same_results(const collected *a, const collected *b, int with_plan) {
    size_t plane = (size_t)a->N * a->C;
    for (int k = 0; k < N_ITEMS; k++) {
        if (a->status[k] != b->status[k]) return 0;
        if (a->status[k] != RAMC_OK) continue;
        if (memcmp(a->scores[k], b->scores[k], sizeof a->scores[k])) return 0;
        if (with_plan && (memcmp(a->plan + k * plane, b->plan + k * plane, plane * sizeof(float)) ||
                          memcmp(a->lpd + (size_t)k * a->N, b->lpd + (size_t)k * a->N, a->N * sizeof(float))))
            return 0;
    }
    return 1;
}

/* images from memory: the file's bytes, decoded by ramc_image_decode */
static ramc_status decode_from_memory(void *user, const char *path, int item, ramc_image *out) {
    (void)user, (void)item;
    char *data = NULL;
    size_t size = 0;
    ramc_status st = read_whole_file(path, 1 << 26, &data, &size);
    if (st == RAMC_OK) st = ramc_image_decode((const uint8_t *)data, size, path, out);
    free(data);
    return st;
}

int main(void) {
    ramc_model *m = NULL;
    ramc_labels *lb = NULL;
    ramc_status st = ramc_model_load(DEFAULT_MODEL "/clip.safetensors", DEFAULT_MODEL "/adapter.safetensors",
                                     NULL, &m);
    CHECK(st == RAMC_OK, "model: %s", ramc_last_error());
    if (st == RAMC_OK) st = ramc_labels_encode(m, NULL, label_names, N_LABELS, NULL, &lb);
    CHECK(st == RAMC_OK, "labels: %s", ramc_last_error());
    if (st != RAMC_OK) return test_summary("test_pipeline");

    collected *one = run(m, lb, 1, 0, 1, 0, 0, NULL, "batch 1, inline");
    collected *three = run(m, lb, 3, 2, 1, 0, 0, NULL, "batch 3, 2 workers");
    collected *eight = run(m, lb, 8, 1, 0, 1, 0, NULL, "batch 8, 1 worker, images kept");
    collected *mem = run(m, lb, 4, 1, 0, 0, 0, decode_from_memory, "batch 4, decoded from memory");
    collected *fused = run(m, lb, 8, 1, 0, 0, 1, NULL, "batch 8, fuse_batch");
    CHECK(same_results(one, three, 1), "batch 3 with 2 workers differs from batch 1 (scores, plans or LPD)");
    CHECK(same_results(one, eight, 0), "batch 8 differs from batch 1");
    CHECK(same_results(one, mem, 0), "images decoded from memory differ from files");

    /* the same as the plain path, one image at a time */
    const ramc_clip_info info = ramc_model_get_info(m);
    const size_t per_image = (size_t)3 * info.image_size * info.image_size;
    float *chw = malloc(sizeof(float) * per_image), scores[N_LABELS];
    int direct_same = 1, checked = 0;
    double fused_err = 0;
    for (int k = 0; k < N_ITEMS; k++) {
        if (one->status[k] != RAMC_OK) continue;
        ramc_predict_params pp = ramc_predict_default_params();
        if (ramc_preprocess_file(m, paths[k], NULL, chw) != RAMC_OK ||
            ramc_predict(m, lb, chw, 1, &pp, scores, NULL, NULL) != RAMC_OK) {
            direct_same = 0;
            continue;
        }
        direct_same &= !memcmp(scores, one->scores[k], sizeof scores);
        checked++;
        for (int c = 0; c < N_LABELS; c++) {
            double e = fabs((double)fused->scores[k][c] - one->scores[k][c]);
            if (e > fused_err) fused_err = e;
        }
        ramc_image img = {0};
        if (ramc_image_load(paths[k], &img) == RAMC_OK)
            CHECK(eight->width[k] == img.width && eight->height[k] == img.height,
                  "kept image %d is %dx%d, the file %dx%d", k, eight->width[k], eight->height[k],
                  img.width, img.height);
        ramc_image_free(&img);
    }
    CHECK(checked == N_ITEMS - 2 && direct_same,
          "pipeline scores differ from ramc_preprocess_file + ramc_predict (%d checked)", checked);
    CHECK(fused_err <= 1e-5, "fuse_batch: scores %.3g from the per-image ones (want <= 1e-5)", fused_err);
    printf("fuse_batch = 1 vs per image: max score difference %.3g\n", fused_err);
    /* the scores are not all alike (a test that could not fail otherwise) */
    CHECK(memcmp(one->scores[0], one->scores[2], sizeof one->scores[0]) != 0, "two images scored alike");
    free(chw);

    /* bad arguments */
    predict_pipeline_options po = predict_pipeline_default_options();
    collected dummy = {0};
    po.batch = 0;
    CHECK(predict_pipeline_run(m, lb, paths, N_ITEMS, &po, collect, &dummy, NULL) == RAMC_ERR_INVALID_ARG,
          "batch 0 accepted");
    po = predict_pipeline_default_options();
    po.want_plan = 1;
    po.params.mode = RAMC_PREDICT_CLIP_BASELINE;
    CHECK(predict_pipeline_run(m, lb, paths, N_ITEMS, &po, collect, &dummy, NULL) == RAMC_ERR_INVALID_ARG,
          "a plan asked for in baseline mode");
    po = predict_pipeline_default_options();
    CHECK(predict_pipeline_run(m, lb, paths, 0, &po, collect, &dummy, NULL) == RAMC_OK && dummy.count == 0,
          "no images: nothing emitted");

    free_run(one), free_run(three), free_run(eight), free_run(mem), free_run(fused);
    ramc_labels_free(lb);
    ramc_model_free(m);
    return test_summary("test_pipeline");
}
