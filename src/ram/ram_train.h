/* One RAM training step: forward in training mode (BatchNorm batch
 * statistics, teacher-guided transport), MMC loss on both heads, and the
 * backward pass into every trainable tensor of the adapter.
 *
 * Only what a gradient needs is kept: the text blocks from the first
 * prompted one on, the vision blocks from the first adapted one on, the TSS
 * adapters and the heads. Blocks before those run the inference forward.
 */
#ifndef RAMC_RAM_TRAIN_H
#define RAMC_RAM_TRAIN_H

#include "ram/ram_forward.h"

typedef struct {
    int use_teacher;      /* add the teacher plan to the cost (TKT); default 1 */
    float teacher_weight; /* λ = OT_REGSC, 0.05 */
    float reg;            /* ε at evaluation, 0.1; training uses reg + λ with the teacher */
    float teacher_sharpen; /* 20 */
    sinkhorn_mode sinkhorn; /* SINKHORN_BATCH_COUPLED for parity */
    const float *fixed_plan; /* [B, N, C] use this plan instead of Sinkhorn (gradient checks) */
    /* ablations (paper Tables 5 and 6); defaults are RAM as published */
    int no_saa, no_tss;      /* the Ladder Local Adapter's two parts */
    int uniform_source;      /* "w/o LPD": u = 1/N (with use_teacher = 0: plain OT) */
    ram_matching matching;   /* KCOT, average pooling or re-weighting */
} ram_train_options;

ram_train_options ram_train_default_options(void);

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
} ram_train_result;

void ram_train_result_free(ram_train_result *r);

/* images [B, 3, S, S]; tokens [C, L] of the (seen) training labels;
 * teacher_text [C, D] the frozen teacher's features of the same labels
 * (computed once with ram_encode_text(m, NULL, ...)); targets [B, C] 0/1.
 * Gradients ACCUMULATE into the adapter's grad buffers (zero them first);
 * BatchNorm running statistics are updated. tap may be NULL. */
ramc_status ram_train_step(const ramc_clip *m, ram_adapter *a, const float *images, int B,
                           const int32_t *tokens, int C, const float *teacher_text,
                           const float *targets, const ram_train_options *opt,
                           ram_train_result *res, clip_tap_fn tap, void *tap_user);

#endif
