/* Prediction over many images, decoding overlapped with the forward passes
 * (internal; `ramc predict` on files and folders, `ramc bench`'s
 * predict_folder_e2e, and the server to come).
 *
 * Worker threads decode each image and apply the official test transform
 * (ramc_preprocess_image with its defaults: bilinear to S x S, mean = std =
 * 0.5) through the prefetching loader (data/loader.h), running up to
 * `prefetch_batches` batches ahead, while the calling thread runs
 * ramc_predict_with_state on full batches of `batch` images (one ramc_state
 * for the whole run) and hands each image's result to a callback.
 *
 * Order: the callback sees every item exactly once, in the order of `names`,
 * whatever the batch size and the number of workers; items that cannot be
 * read come as results with an error status, in their place.
 *
 * Independence from batching: an image's scores (and plan, LPD) are a
 * function of the image, the labels and the parameters only. With
 * params.fuse_batch = 0 and params.per_image_sinkhorn = 1 (the defaults)
 * they are bitwise the same for any batch size, any neighbours in the batch
 * and any number of workers; with fuse_batch = 1 they agree to float
 * rounding (docs/predict.md; tests/test_pipeline.c). */
#ifndef RAMC_API_PIPELINE_H
#define RAMC_API_PIPELINE_H

#include "data/loader.h"
#include "ramc.h"

typedef struct {
    int batch;            /* images per forward pass (ramc_predict call); 8 */
    int workers;          /* decoding threads beside the caller, 0..64 (0: inline, no overlap); 1 */
    int prefetch_batches; /* batches decoded ahead at most, 1..16; 2 */
    int keep_images;      /* 1: each result carries its decoded image (explanations); 0 */
    int want_plan;        /* 1: results carry the transport plan and the LPD (RAM mode); 0 */
    ramc_predict_params params;
    /* NULL: ramc_image_load(names[i]); else how item i is decoded (on a
     * worker thread): standard input, bytes in memory. */
    loader_decode_fn decode;
    void *decode_user;
} predict_pipeline_options;

predict_pipeline_options predict_pipeline_default_options(void);

typedef struct {
    int index;           /* position in names */
    const char *name;    /* names[index] */
    ramc_status status;  /* RAMC_OK, or why the image could not be read */
    const char *error;   /* the message (status != RAMC_OK); it names the image */
    const float *scores; /* [C] (status == RAMC_OK), valid during the callback */
    const float *plan;   /* [N, C] with want_plan, else NULL */
    const float *lpd;    /* [N] with want_plan, else NULL */
    /* keep_images: the decoded image, freed after the callback unless the
     * callback takes it (moves it out and leaves rgb NULL); else NULL */
    ramc_image *image;
} predict_pipeline_item;

/* Called on the calling thread, once per item, in order. */
typedef void (*predict_pipeline_emit_fn)(void *user, const predict_pipeline_item *item);

typedef struct {
    int images;         /* scored */
    int failed;         /* could not be read */
    int batches;        /* forward passes */
    double wait_s;      /* seconds the caller waited for decoded images (not hidden) */
    double forward_s;   /* seconds in the forward passes */
    double total_s;     /* the whole run */
} predict_pipeline_stats;

/* Scores names[0 .. n) against labels. Returns RAMC_OK when every readable
 * image was scored (unreadable ones are results with an error, not a failed
 * run), an error when the run could not go on (out of memory, a forward pass
 * that failed; items not yet emitted are then never emitted). stats may be
 * NULL. names must stay valid during the call. */
ramc_status predict_pipeline_run(const ramc_model *model, const ramc_labels *labels,
                                 const char *const *names, int n,
                                 const predict_pipeline_options *opt,
                                 predict_pipeline_emit_fn emit, void *user,
                                 predict_pipeline_stats *stats);

#endif
