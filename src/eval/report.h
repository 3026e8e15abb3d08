/* Evaluation reports: one evaluation's metrics (metrics.h) with its context
 * (evaluation name, model, class names), written as JSON with a stable schema
 * or as a plain-text table. Schema and layout: docs/metrics.md.
 *
 * Units: the struct and the JSON hold FRACTIONS (0.4567); the printed table
 * shows PERCENT with two decimals (45.67), as the paper's tables do.
 * Undefined values (NaN) are JSON null and print as "nan".
 */
#ifndef RAMC_EVAL_REPORT_H
#define RAMC_EVAL_REPORT_H

#include <stdio.h>

#include <cjson/cJSON.h>

#include "eval/metrics.h"

#define REPORT_SCHEMA "ramc-eval-report/1"

typedef struct {
    char *name;         /* e.g. "zsl", "gzsl" */
    char *model;        /* e.g. "live", "ema" */
    char **class_names; /* [metrics.n_classes] owned copies, or NULL (no names) */
    metrics_result metrics; /* owned */
} eval_report;

/* Builds a report. name and model are copied (NULL reads as ""); class_names
 * is NULL or [metrics->n_classes] UTF-8 strings, copied. *metrics is MOVED
 * into the report (the caller's struct is zeroed) on success; on failure the
 * caller still owns it. */
ramc_status report_new(const char *name, const char *model, const char *const *class_names,
                       metrics_result *metrics, eval_report **out);
void report_free(eval_report *r);

/* The report as a cJSON tree (caller frees with cJSON_Delete); NULL on
 * failure (out of memory) with the error recorded. */
cJSON *report_to_json(const eval_report *r);
/* Formatted JSON text plus a newline to `f`. */
ramc_status report_write_json(const eval_report *r, FILE *f);
/* Same text to `path`, atomically (temporary file beside it, fsync, rename):
 * a failure never leaves a partial file at `path`. */
ramc_status report_write_json_file(const eval_report *r, const char *path);

/* Readable fixed-width table to `f`: header, one row per k (OP OR OF1 CP CR
 * CF1), mAP, and with per_class != 0 one row per class (n_pos, AP, P@k, R@k
 * for each k). Percentages with 2 decimals. */
ramc_status report_print_table(FILE *f, const eval_report *r, int per_class);

#endif
