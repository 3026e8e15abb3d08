/* Golden-set comparison: run ramc on the inputs of a set made by the official
 * implementation (docs/spec.md §13 describes the files) and compare
 * every tensor ramc can produce with outputs.safetensors.
 *
 * A golden set folder holds weights.safetensors (CLIP, OpenAI names),
 * adapter.safetensors, inputs.safetensors, outputs.safetensors, config.json
 * and classes.json. */
#ifndef RAMC_GOLDEN_H
#define RAMC_GOLDEN_H

#include "core/status.h"

/* Relative error = max|ours - ref| / max|ref|. Float32 re-implementations land
 * around 1e-6..1e-5 on these sets (thread count alone moves the reference by
 * up to 1.2e-5); 1e-4 leaves room for summation order without hiding a wrong
 * formula, which shows up as errors of 1e-2 or more. */
#define GOLDEN_DEFAULT_TOLERANCE 1e-4

typedef struct {
    char name[256];
    char shape[64];
    double max_abs;   /* max |ours - ref| */
    double rel;       /* max_abs / max |ref| */
    int exact;        /* compared for exact equality (ids, counts) */
    int pass;
} golden_row;

typedef struct {
    golden_row *rows;
    int n_rows, cap;
    int n_failed;
    double tolerance;
    int bf16; /* run CLIP's matrix products in bf16 (to measure its deviation) */
    int no_pack; /* 1: float32 products on the stored weights (ramc_clip_params.pack_weights = 0) */
    /* Trajectory sets: replay data-parallel over these processes, each
     * training its share of every batch (docs/distributed.md); every process
     * gets the whole report. NULL: one process. Single-step sets ignore it. */
    const struct ramc_dist *dist;
} golden_report;

/* Runs the set in `dir`, appending one row per compared tensor. Returns a
 * non-OK status only when the set cannot be run at all (missing or
 * malformed files); mismatches are reported as failed rows. */
ramc_status golden_run(const char *dir, golden_report *report);
void golden_report_free(golden_report *report);

#endif
