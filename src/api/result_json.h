/* One image's ranked labels as JSON: the schema of `ramc predict --format
 * json` (one object per image) and of `ramc serve`'s answers, written in one
 * place so the two cannot drift apart (docs/predict.md, docs/serve.md):
 *
 *   {"image": NAME, "labels": [{"label": L, "score": S}, ...], "score_type": T}
 *
 * labels best first, scores rounded to 6 significant digits, T "official" or
 * "independent" (ramc_score; after the labels, so the earlier fields keep
 * their places). */
#ifndef RAMC_API_RESULT_JSON_H
#define RAMC_API_RESULT_JSON_H

#include <cjson/cJSON.h>

#include "ramc.h"

/* Which labels a result shows. top_k 0: no limit; with label_thresholds
 * [C], only labels whose score reaches their own threshold, best first, at
 * most top_k of them; else with threshold_set, only scores >= threshold
 * (within the top_k). */
typedef struct {
    int top_k;
    int threshold_set;
    float threshold;
    const float *label_thresholds;
} result_selection;

/* order [C] out: label indices, best score first, ties in label order (so the
 * output is deterministic). Returns how many of them `sel` shows, or -1 out
 * of memory. Thread-safe. */
int result_rank(const float *scores, int C, const result_selection *sel, int *order);

/* The object for one image; NULL out of memory. `image` may hold any bytes
 * (invalid UTF-8 is escaped as predict's paths are). */
cJSON *result_json(const char *image, const ramc_labels *labels, const int *order,
                   const float *scores, int n_shown, ramc_score score_type);

/* "official" or "independent". */
const char *result_score_name(ramc_score score);

/* A score as printed: rounded to 6 significant digits (0.412346, not 17 digits). */
double result_round_score(float score);

#endif
