/* Speed and memory benchmarks of ramc on a randomly initialised CLIP.
 *
 * Random weights cost exactly what real ones do (same shapes, same BLAS
 * calls, no denormals), so the benchmark needs no files and runs anywhere.
 * The library side builds the model, prepares each scenario's inputs outside
 * the timing, runs it `warmup` + `repeat` times and returns the rates; it
 * neither prints nor forks. The CLI (cmd_bench.c) runs each scenario in its
 * own child process so that the peak-memory figure is the scenario's own.
 */
#ifndef RAMC_BENCH_BENCH_H
#define RAMC_BENCH_BENCH_H

#include <stdint.h>

#include "model/clip.h"

typedef enum { BENCH_SIZE_VITB16 = 0, BENCH_SIZE_TINY = 1 } bench_size;

/* The shapes of the two model sizes: full ViT-B/16 (image 224, patch 16,
 * width 768, 12 layers, 12 heads, MLP 3072; text 512 wide, 12 layers,
 * 8 heads, context 77, vocabulary 49408; embedding 512) and a tiny model for
 * tests (image 32, patch 8, width 64, 4 layers, 2 heads; text 32 wide,
 * 4 layers, 2 heads, context 16; embedding 32; the full vocabulary so that
 * the SOT/EOT ids exist). */
ramc_clip_info bench_clip_shape(bench_size size);

/* The model itself: clip_create_random (model/clip.h). */

/* ------------------------------------------------------------ scenarios */

typedef enum {
    BENCH_KIND_CLIP = 0,     /* ramc_clip_encode_image */
    BENCH_KIND_RAM = 1,      /* RAM inference, label features cached */
    BENCH_KIND_RAM_TEXT = 2, /* RAM inference, label features recomputed per batch */
    BENCH_KIND_TEXT = 3,     /* label encoding with deep prompts */
    BENCH_KIND_TRAIN = 4,    /* ram_train_step with the teacher */
    /* ramc_labels_encode_cached over `labels` distinct names: cold (empty
     * cache: text tower, entries written), then warm (every label read), each
     * with a model freshly loaded from a file, as two processes would */
    BENCH_KIND_LABEL_CACHE = 5,
    /* JPEG files to JSON through ramc predict's pipeline (api/pipeline.h),
     * beside the model alone on the same images at the same batch size */
    BENCH_KIND_PREDICT_E2E = 6
} bench_kind;

/* predict_folder_e2e: its JPEG files (written to a temporary folder before
 * timing), their size, and the labels. */
#define BENCH_E2E_IMAGES 32
#define BENCH_E2E_WIDTH 640
#define BENCH_E2E_HEIGHT 480

#define BENCH_MAX_PHASES 4

typedef struct {
    const char *name;
    bench_kind kind;
    int batch;              /* images per call (text scenarios: prompts per call) */
    int labels;             /* label-set size; 0 for plain CLIP */
    int nus;                /* 1: NUS adapter preset (deep prompts in the last 6 text blocks) */
    const char *unit;       /* "images/s" or "prompts/s" */
    double official;        /* the official code's rate (perf/baseline.md), 0 if not measured */
    double official_rss_mb; /* its peak RSS in MB, 0 if not measured */
    const char *description;
} bench_scenario;

int bench_scenario_count(void);
const bench_scenario *bench_scenario_get(int i);
/* Index of the scenario called `name`, or -1. */
int bench_scenario_find(const char *name);

/* Called before each run (done = runs finished so far, of total) and once
 * after the last (done == total). last_s: the previous run's seconds, or 0. */
typedef void (*bench_progress_fn)(void *user, const char *scenario, int done, int total,
                                  double last_s);

typedef struct {
    int warmup, repeat; /* runs before timing; timed runs (>= 1) */
    uint64_t seed;      /* inputs and adapter initialisation */
    /* FLOP per image for the rates, 0: derived from the shapes. The CLI
     * passes baseline.md's 35.1e9 (plain ViT) and 44e9 (RAM) for ViT-B/16 so
     * that both sides are divided by the same constants. */
    double flop_per_image, flop_per_image_ram;
    /* How the caller froze m (clip_freeze): training scenarios freeze it as
     * the trainer does (clip_freeze_for_training: thawed in float32, the
     * vision tower in bf16 with bf16), and freeze it again the caller's way
     * when done. */
    int frozen, bf16;
    /* label-cache scenarios: labels encoded (0: the scenario's count) */
    int cache_labels;
    /* The folder under which scenarios make their temporary files (and
     * remove them): the label-cache scenario's model files and cache,
     * predict_folder_e2e's JPEG files. NULL or "": /tmp; the command passes
     * $TMPDIR. */
    const char *tmp_dir;
    bench_progress_fn progress;
    void *progress_user;
} bench_options;

typedef struct {
    int runs;                    /* timed runs */
    double median, min, max;     /* units per second over the timed runs */
    double flop_per_unit;        /* FLOP of one image (CLIP-ViT count) or one prompt */
    double gflops;               /* median rate x flop_per_unit / 1e9 */
    double flop_per_unit_ram;    /* RAM scenarios: FLOP of one image with SAA + TSS; training:
                                  * of one image's share of a step (bench_train_flop); else 0 */
    double gflops_ram;
    double setup_s;              /* adapter, inputs, cached features: outside the timing */
    /* predict_folder_e2e: the model alone (ramc_predict_with_state on the
     * decoded images, same batch and parameters), units per second, median
     * over the timed runs; the scenario's own rate is end to end. 0 otherwise. */
    double model_only;
    int n_phases;                /* per-run breakdown (medians, seconds per call) */
    const char *phase_name[BENCH_MAX_PHASES];
    double phase_s[BENCH_MAX_PHASES];
    /* label-cache scenarios: labels encoded per phase, and the hits of the
     * last timed run's cold and warm phases (0 and all, when the cache works);
     * the rates are the warm phase's labels/s, gflops the cold phase's text
     * tower (flop_per_unit: one prompt) */
    int cache_labels, cold_hits, warm_hits;
} bench_result;

/* Runs one scenario on model m (any size). Everything the scenario needs
 * besides the model (adapter, images, tokens, cached label features) is
 * created and freed inside, outside the timed region. */
ramc_status bench_run(const ramc_clip *m, int scenario, const bench_options *opt,
                      bench_result *out);

/* FLOP counts derived from the shapes (multiply-add = 2 FLOP): the plain ViT
 * over one image (35.1e9 for ViT-B/16 at 224), RAM's vision tower over one
 * image (adds the value-value attention of every block, the visual prompts,
 * the TSS convolutions and the TSS attention to n_labels labels), and the text tower over one prompt (the full
 * context, as computed). */
double bench_vit_flop(const ramc_clip_info *in);
double bench_ram_vision_flop(const ramc_clip_info *in, int n_adapted, int n_vis_prompts,
                             int n_labels);
double bench_text_flop(const ramc_clip_info *in);
/* One RAM training step per image (ram_train_step, teacher included): the
 * shared frozen prefix with SAA, the teacher's blocks, the student's adapted
 * blocks with TSS forward and backward (input gradients of the frozen
 * projections, the fused attention backward at 2.5 forwards, TSS's input
 * and weight gradients), the projections. The text tower's prompt pass
 * (trimmed to the prompts' length, ~1% at ViT-B/16) is left out. 74.2e9 for
 * ViT-B/16 with COCO's adapter and 48 labels, against 69.5e9 of products
 * counted in one step by instrumenting gemm plus ~5 of attention. */
double bench_train_flop(const ramc_clip_info *in, int n_adapted, int n_vis_prompts,
                        int n_labels);

/* ----------------------------------------------------- machine, memory */

/* Peak resident set of this process (VmHWM of /proc/self/status) in MB, or
 * -1 where it cannot be read. */
double bench_peak_rss_mb(void);
/* Resets VmHWM to the current RSS (writes 5 to /proc/self/clear_refs);
 * returns 0 on success, -1 where the kernel refuses. */
int bench_reset_peak_rss(void);

/* OpenBLAS threads: set (n >= 1) and read back. */
void bench_set_threads(int n);
int bench_get_threads(void);
/* OpenBLAS build configuration and the kernel family it chose at run time. */
const char *bench_blas_config(void);
const char *bench_blas_core(void);

#endif
