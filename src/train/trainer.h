/* The training loop of `ramc train` (spec §7): data, augmentation,
 * optimisation, EMA, evaluation, checkpoints and the log, from one config.
 *
 * Resuming is exact: the image order is fixed by the seed (one permutation
 * for all epochs, as the official code), each sample's augmentation depends
 * only on (seed, epoch, position), and the checkpoint holds every piece of
 * mutable state. N steps in one run and k + (N - k) steps with a resume in
 * between give bitwise identical parameters.
 */
#ifndef RAMC_TRAIN_TRAINER_H
#define RAMC_TRAIN_TRAINER_H

#include <signal.h>
#include <stdint.h>

#include "train/config.h"
#include "eval/report.h"

typedef enum {
    TRAIN_EVENT_START,       /* data and model ready; steps_per_epoch known */
    TRAIN_EVENT_STEP,        /* one optimisation step done */
    TRAIN_EVENT_EPOCH_END,
    TRAIN_EVENT_EVAL_PROGRESS, /* images evaluated so far (done / total) */
    TRAIN_EVENT_EVAL,        /* one evaluation report ready */
    TRAIN_EVENT_CHECKPOINT,  /* a checkpoint was written to path */
    TRAIN_EVENT_MESSAGE      /* a warning or note for the user */
} ram_train_event_kind;

typedef struct {
    ram_train_event_kind kind;
    int epoch, max_epochs;
    int64_t step, steps_per_epoch; /* step within the epoch, 1-based after a STEP */
    int64_t global_step, total_steps;
    double loss, loss_glb, loss_loc;
    double lr[3];                  /* AdamW adapters, AdamW temperatures, SGD prompts */
    double images_per_s;           /* over the steps of this run so far */
    double elapsed_s;
    int done, total;               /* EVAL_PROGRESS */
    const eval_report *report;     /* EVAL */
    const char *path;              /* CHECKPOINT */
    const char *message;           /* MESSAGE */
} ram_train_event;

typedef void (*ram_train_callback)(void *user, const ram_train_event *ev);

typedef struct {
    ram_train_config cfg;        /* the whole configuration (cfg.model: CLIP weights) */
    ramc_clip_params clip_params;
    const char *resume;          /* checkpoint to continue from, or NULL */
    /* Set from a signal handler: the loop stops after the current step and
     * writes a checkpoint. May be NULL. */
    volatile sig_atomic_t *stop;
    int64_t max_steps;           /* stop (with a checkpoint) after this many global steps; 0: none */
    int fatal_missing;           /* 1: an unreadable image stops training; 0: reported and skipped */
    /* 1: a new run may replace the run (checkpoint.safetensors) already in
     * cfg.output_dir; 0: that is refused. Resuming a checkpoint of that
     * folder is always allowed. */
    int overwrite;
    ram_train_callback callback; /* may be NULL */
    void *user;
    /* Data-parallel training (docs/distributed.md): every process of the
     * group runs ram_train_run with the same options; each computes its
     * share of every batch, and the result is the one process's within
     * float rounding. Only rank 0 writes into cfg.output_dir and evaluates.
     * NULL (or a group of one): this process alone, exactly as before. */
    const ramc_dist *dist;
} ram_trainer_options;

typedef struct {
    int64_t global_step;
    int epoch;                   /* last epoch started */
    int interrupted;             /* stopped by the stop flag or max_steps */
    int stop_requested;          /* stopped by the stop flag (of any process of the group) */
    double last_loss;
    char checkpoint[4200];       /* last checkpoint written ("" if none) */
} ram_train_summary;

/* Runs training as configured. Holds an advisory lock (flock on
 * cfg.output_dir/.ramc.lock) for the whole run: a second run into the same
 * folder fails at once. Writes into cfg.output_dir: checkpoint.safetensors
 * (atomically, every checkpoint_period epochs and when stopped), adapter.safetensors
 * and adapter-ema.safetensors at the end, eval reports, and log.jsonl. A NaN or
 * Inf loss or gradient stops with RAMC_ERR_NUMERIC and leaves the last good
 * checkpoint untouched. */
ramc_status ram_train_run(const ram_trainer_options *o, ram_train_summary *summary);

#endif
