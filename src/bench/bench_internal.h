/* What the benchmark's scenario files share (bench.c runs the scenarios;
 * label_cache_scenario.c and e2e_scenario.c hold the two that work on files):
 * the context of one scenario, built outside the timing, and the helpers. */
#ifndef RAMC_BENCH_INTERNAL_H
#define RAMC_BENCH_INTERNAL_H

#include <stdio.h>

#include "bench/bench.h"
#include "core/arena.h"
#include "core/clock.h"
#include "ram/ram.h"
#include "ram/ram_forward.h"
#include "ram/ram_train.h"

typedef struct {
    const ramc_clip *m;
    const bench_scenario *sc;
    int B, C, N, N1, D;
    ram_adapter *a;
    float *images, *out, *text, *teacher_text, *targets;
    float *x, *x_loc, *g, *f;
    int32_t *tokens;
    ram_head head;
    sinkhorn_options so;
    ram_train_options to;
    ram_text_cache text_cache; /* as the trainer: the frozen text blocks once per label set */
    ramc_arena scratch;        /* as a ramc_state: grown in the warm-up call, then reused */
    /* predict_folder_e2e */
    ramc_model *model;         /* a view of m and the adapter */
    ramc_labels *labels;
    ramc_state *state;
    char *paths[BENCH_E2E_IMAGES];
    FILE *sink;                /* the JSON goes here (/dev/null) */
    int e2e_runs;              /* runs so far: which pass goes first */
    double phase[BENCH_MAX_PHASES];
    /* the scenario's temporary folder ("" if none): the label cache's model
     * files and cache, predict_folder_e2e's JPEG files; label names [C] */
    char dir[4096], clip_path[4200], adapter_path[4200], cache[4200];
    char **names;
    ramc_clip_params load_params;
    int cold_hits, warm_hits;
} bench_ctx;

/* n synthetic prompts [n, L] (see bench.c). */
void bench_fill_tokens(int32_t *t, int n, int L);

/* label_cache_10k (label_cache_scenario.c): its files, one timed run (cold,
 * then warm), and what it leaves behind. */
ramc_status label_cache_setup(bench_ctx *c, const ramc_clip *m, const bench_options *opt,
                              uint64_t seed);
ramc_status label_cache_run(bench_ctx *c);
void label_cache_free(bench_ctx *c);

/* predict_folder_e2e (e2e_scenario.c): its JPEG files, model view and label
 * set; one timed run (both passes, in turns); what it leaves behind. */
ramc_status e2e_setup(bench_ctx *c, uint64_t seed, const char *tmp);
ramc_status e2e_run(bench_ctx *c);
void e2e_free(bench_ctx *c);

#endif
