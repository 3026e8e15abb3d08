/* Contrastive CLIP pre-training from scratch (`ramc pretrain-clip`,
 * docs/pretrain.md). The library side: reads image<TAB>caption pairs, builds
 * the caption vocabulary, trains both towers with symmetric InfoNCE and
 * AdamW (warm-up + cosine per step), checkpoints atomically, evaluates
 * retrieval on a held-out part and writes the model in OpenAI names. It
 * never prints: progress goes through a callback.
 *
 * Output folder: clip.safetensors, vocab.json, merges.txt, metrics.json,
 * README.txt, checkpoint.safetensors (the resumable state).
 */
#ifndef RAMC_TRAIN_PRETRAIN_H
#define RAMC_TRAIN_PRETRAIN_H

#include <signal.h>
#include <stdint.h>

#include "core/status.h"

typedef struct {
    int64_t step, total_steps; /* optimiser steps done / planned */
    int epoch, epochs;         /* 1-based epoch in progress */
    double loss;               /* this step's loss */
    double loss_avg;           /* mean over the epoch so far */
    double lr, logit_scale;    /* exp(logit_scale) is the temperature's inverse */
    double images_per_s;       /* over the run so far (this process) */
    double batch_acc;          /* in-batch image->text top-1 of this step */
    double label_loss;         /* image-to-label term of this step (labels_file), else 0 */
    double label_acc;          /* images whose top label is one their caption names */
    int epoch_end;             /* 1 on the call after an epoch's last step */
    int checkpointed;          /* 1 when a checkpoint was just written */
} pretrain_progress;

typedef void (*pretrain_progress_fn)(void *user, const pretrain_progress *p);

typedef struct {
    const char *data;    /* folder holding pretrain.tsv, or the TSV itself */
    const char *out_dir; /* created if missing */
    const char *resume;  /* checkpoint.safetensors to continue from, or NULL */

    int image_size, patch_size;                    /* 64, 8 */
    int vision_width, vision_layers, vision_heads; /* 128, 4, 0 (= width/64) */
    int text_width, text_layers, text_heads;       /* 64, 4, 0 (= width/64) */
    int embed_dim, context_length;                 /* 64, 77 */

    int epochs, batch;       /* 2, 128: ~10-15 min on 2 cores for 20000 pairs of 64x64 */
    double lr, weight_decay; /* 5e-4, 0.1 */
    double beta1, beta2, eps;/* 0.9, 0.98, 1e-6 (CLIP's) */
    int64_t warmup_steps;    /* -1: 5% of the total steps */
    uint64_t seed;           /* 0 */
    double holdout;          /* fraction held out for retrieval, 0.1 (at most 1000 pairs) */
    int workers;             /* image decoding threads, 1 */
    int64_t checkpoint_every;/* steps between checkpoints; 0: end of each epoch only */
    int64_t max_steps;       /* stop (with a checkpoint) after this many steps; 0: none */

    /* Optional image-to-label contrast (clip_label_loss): every image also
     * scored against the prompts of all labels of this file (one per line,
     * # comments), the labels its caption names (as whole words, any case)
     * the positives. Off when NULL. */
    const char *labels_file;
    double label_weight;     /* the term's weight in the loss, 1 */
    const char *template_str;/* prompt with one {} for the label; NULL: "A photo of a {}." */

    pretrain_progress_fn progress;
    void *progress_user;
    volatile sig_atomic_t *stop; /* set by a signal handler: checkpoint and return */
} pretrain_options;

typedef struct {
    int n_pairs, n_train, n_eval; /* pairs read, trained on, held out */
    int vocab_size;
    int64_t steps;                /* optimiser steps done in total */
    int interrupted;              /* stopped by `stop` or max_steps: resume later */
    double first_loss, final_loss;/* mean loss of the first and the last epoch run */
    double seconds, images_per_s; /* this process */
    double i2t_top1, t2i_top1;    /* held-out retrieval (-1 when nothing held out) */
    double chance;                /* top-1 of a random ranking: distinct captions / n_eval */
    int n_labels;                 /* labels of labels_file (0 without) */
    int n_labelled;               /* training pairs whose caption names one of them */
} pretrain_result;

pretrain_options pretrain_default_options(void);

ramc_status pretrain_clip(const pretrain_options *o, pretrain_result *res);

#endif
