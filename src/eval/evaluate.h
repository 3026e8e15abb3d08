/* Evaluation of a model on a labelled dataset (spec §8): label features once
 * per label set, every image through the test transform and the model, then
 * the official top-k metrics and mAP.
 *
 * ZSL evaluates on the unseen labels only, GZSL on seen + unseen (in that
 * order); which one is decided by the dataset's class list. */
#ifndef RAMC_EVAL_EVALUATE_H
#define RAMC_EVAL_EVALUATE_H

#include "data/dataset.h"
#include "eval/report.h"
#include "ramc.h"

/* Called after each batch: images done so far of n_total. */
typedef void (*ram_eval_progress_fn)(void *user, int done, int n_total);

typedef struct {
    int batch_size;          /* 512, as the official evaluation (matters for the coupled Sinkhorn) */
    int workers;             /* decoding threads; 1 */
    int per_image_sinkhorn;  /* 0: the official batch-coupled stop (parity); 1: per image */
    float mean[3], std[3];   /* normalisation; 0.5 */
    const char *template_str; /* NULL: "A photo of a {}." */
    const char *label_cache;  /* folder of the persistent label cache; NULL: none */
    int fatal_missing;       /* 1: an unreadable image stops the evaluation; 0: skipped */
    ramc_variant variant;    /* the paper's ablations; zero = RAM */
    ramc_score score;        /* which score the metrics rank by; RAMC_SCORE_OFFICIAL */
    int clip_baseline;       /* 1: plain CLIP's scores (RAMC_PREDICT_CLIP_BASELINE) instead of RAM's */
    ram_eval_progress_fn progress;
    void *progress_user;
    /* Sharded over these processes (data-parallel training): every process
     * calls ram_evaluate alike; the batches of batch_size images are dealt
     * round-robin, each process predicts its own (so the coupled Sinkhorn
     * sees the same batches as one process), and the scores are gathered,
     * in the set's order, for the metrics every process then computes.
     * NULL: this process alone. */
    const struct ramc_dist *dist;
} ram_eval_options;

ram_eval_options ram_eval_default_options(void);

/* Evaluates `model` on `ds` (labels = ds->classes, in that order). `name`
 * ("zsl", "gzsl", ...) and `model_name` ("live", "ema", ...) label the report.
 * Unreadable images are reported on the thread's error message path through
 * *n_skipped and left out of the metrics (or fatal, see options). */
ramc_status ram_evaluate(const ramc_model *model, const dataset *ds, const ram_eval_options *o,
                         const char *name, const char *model_name, int *n_skipped,
                         eval_report **out);

#endif
