/* One RAM training step: forward in training mode (BatchNorm batch
 * statistics, teacher-guided transport), MMC loss on both heads, and the
 * backward pass into every trainable tensor of the adapter.
 *
 * Only what a gradient needs is kept: the text blocks from the first
 * prompted one on, the vision blocks from the first adapted one on, the TSS
 * adapters and the heads. Blocks before those run the inference forward.
 * The text tower runs on the first T = (max EOT over the labels) + 1 rows
 * only (causal: later rows never reach EOT), T + nc in prompted blocks; the
 * vision blocks before the first adapted one are computed once and shared by
 * the student and the teacher (same frozen weights, same input, SAA in
 * every block).
 */
#ifndef RAMC_RAM_TRAIN_H
#define RAMC_RAM_TRAIN_H

#include "core/dist.h"
#include "ram/ram_forward.h"

/* The loss on both heads (summed). MMC is RAM's; the others are the paper's
 * loss ablation: ASL (γ- = 2, γ+ = 0, on each logit) and pairwise ranking
 * (hinge with margin 1, or LSEP), see src/ram/loss.h. */
typedef enum {
    RAM_LOSS_MMC = 0,
    RAM_LOSS_ASL = 1,
    RAM_LOSS_RANK_HINGE = 2,
    RAM_LOSS_RANK_LSEP = 3
} ram_loss_kind;

/* The training labels' text stream after the blocks before the first
 * prompted one: frozen weights and a fixed label set make it constant across
 * steps. Owned by the caller (zero-initialise it; ram_text_cache_free at the
 * end); ram_train_step fills it on first use and refills it whenever the
 * tokens, the model pointer, the first prompted block or the row count
 * change. Reusing one cache with a different model at the same address is the
 * caller's error (free the cache with the model). */
typedef struct {
    const ramc_clip *model;
    int n, T, first;
    int32_t *tokens;    /* [n, L] the key */
    float *x;           /* [n, T, Wt] stream entering block `first` (T = max EOT + 1) */
    long hits, fills;   /* statistics */
} ram_text_cache;

void ram_text_cache_free(ram_text_cache *c);

/* The frozen vision prefix of the training images, kept across epochs: an
 * opt-in regime for training WITHOUT augmentation (docs/performance.md),
 * where every epoch feeds the same pixels. Per image (key: its index in
 * the training set) it holds what the frozen weights compute from the image
 * alone: the main and side streams entering the first adapted block and,
 * with the teacher, the teacher's local features. A step whose images are
 * all held copies them instead of running the patch embedding, the blocks
 * before the first adapted one and the teacher's tower; any other step runs
 * them on the whole batch, exactly as without a cache, and stores the images
 * it lacks while the limit allows. Zero-initialise it, then
 * ram_prefix_cache_init; ram_prefix_cache_free at the end. */
typedef struct {
    int n_keys;
    size_t limit_bytes, bytes; /* most held, held now */
    float **entry;             /* [n_keys] NULL or the image's record */
    unsigned char *ready;      /* [n_keys] 1 once its record is complete */
    /* the layout the records were made for; another one empties the cache */
    const ramc_clip *model;
    int first, side, teacher;
    size_t floats;             /* per record */
    long hits, misses;         /* steps served from the cache / computed */
    long stored, over_limit;   /* images stored / not stored for the limit */
} ram_prefix_cache;

ramc_status ram_prefix_cache_init(ram_prefix_cache *c, int n_keys, size_t limit_bytes);
void ram_prefix_cache_free(ram_prefix_cache *c);

typedef struct {
    int use_teacher;      /* add the teacher plan to the cost (TKT); default 1 */
    float teacher_weight; /* λ = OT_REGSC, 0.05 */
    float reg;            /* ε at evaluation, 0.1; training uses reg + λ with the teacher */
    float teacher_sharpen; /* 20 */
    sinkhorn_mode sinkhorn; /* SINKHORN_BATCH_COUPLED for parity */
    const float *fixed_plan; /* [B, N, C] use this plan instead of Sinkhorn (gradient checks) */
    /* ablations (paper Tables 5 and 6): the fields of ramc_variant, which
     * ram_train_options_set_variant copies in; 0 is RAM as published */
    int no_saa, no_tss;      /* the Ladder Local Adapter's two parts */
    int uniform_source;      /* "w/o LPD": u = 1/N (with use_teacher = 0: plain OT) */
    ram_matching matching;   /* KCOT, average pooling, re-weighting or plain OT (no teacher) */
    ram_loss_kind loss;      /* MMC */
    ram_text_cache *text_cache; /* NULL: the frozen text blocks are recomputed every step */
    /* Data-parallel training: this call has this process's share of a batch
     * split over the group's processes (in rank order). Everything coupled
     * across the batch then sees the whole batch: the loss (logits gathered),
     * BatchNorm statistics, the teacher mask's minimum and the Sinkhorn stop
     * test. Gradients stay this process's share (the caller sums them).
     * NULL: the batch is this call's images. */
    const ramc_dist *dist;
    /* Where the step's records, gradient buffers and scratch live. NULL:
     * the heap, malloc'ed and freed within the step. An arena (core/arena.h)
     * kept across steps: every buffer of the step is a slice of its block;
     * the first step spills to the heap and the block grows to that step's
     * peak at the start of the next, so from the second step on (same
     * shapes) a step allocates nothing. The step's result then lives in the
     * arena until the next step on it (or arena_release): read it before. */
    ramc_arena *scratch;
    /* The frozen-prefix cache (NULL: none) and the keys of this call's images
     * [B] (their training-set indices, 0..n_keys-1; NULL: no cache this
     * step). Without augmentation only: the caller checks. Not used with a tap. */
    ram_prefix_cache *prefix_cache;
    const int *prefix_keys;
} ram_train_options;

ram_train_options ram_train_default_options(void);
void ram_train_options_set_variant(ram_train_options *o, const ramc_variant *v);

/* Everything a step computes that callers (logging, golden checks) read. */
typedef struct {
    int B, C, N, D;
    float loss, loss_glb, loss_loc;
    ram_head head;              /* student head with the training cost */
    float *text;                /* [C, D] student label features */
    float *img_glb;             /* [B, D] */
    float *img_loc;             /* [B, N, D] */
    float *teacher_img_loc;     /* [B, N, D] */
    float *teacher_prob;        /* [B, N, C] before masking */
    float *teacher_prob_masked; /* [B, N, C] */
    float *cost_student;        /* [B, N, C] */
    float *cost_teacher;        /* [B, N, C] */
    float *storage;
    ramc_arena *arena; /* where storage lives (the options' scratch; NULL: the heap) */
} ram_train_result;

void ram_train_result_free(ram_train_result *r);

/* images [B, 3, S, S]; tokens [C, L] of the (seen) training labels;
 * (with opt->dist: B is this process's share, loss and loss_* the batch's) 
 * teacher_text [C, D] the frozen teacher's features of the same labels
 * (computed once with ram_encode_text(m, NULL, ...)); targets [B, C] 0/1.
 * Gradients ACCUMULATE into the adapter's grad buffers (zero them first);
 * BatchNorm running statistics are updated. tap may be NULL. */
ramc_status ram_train_step(const ramc_clip *m, ram_adapter *a, const float *images, int B,
                           const int32_t *tokens, int C, const float *teacher_text,
                           const float *targets, const ram_train_options *opt,
                           ram_train_result *res, clip_tap_fn tap, void *tap_user);

#endif
