/* The official optimisers of RAM (spec §7.4) and their warm-up + cosine
 * learning-rate schedule (spec §7.5), over the adapter's parameter table.
 *
 * Three parameter groups, assigned by name in this order (make_optimizer.py):
 *   name contains "embeds"   -> SGD            (visual and deep text prompts)
 *   else name starts "clip"  -> AdamW group 0  (TSS: convs, BN affine, LNs)
 *   else                     -> AdamW group 1  (temperature, temperature_loc)
 * Only trainable tensors with a gradient buffer take part; BatchNorm running
 * statistics are never stepped.
 *
 * The update formulas are PyTorch 1.13's single-tensor AdamW and SGD, in the
 * same float32 operation order; scalars (lr, bias corrections) are computed in
 * double as Python does and rounded to float32 where PyTorch would.
 */
#ifndef RAMC_TRAIN_OPTIM_H
#define RAMC_TRAIN_OPTIM_H

#include <stdint.h>

#include "ram/ram.h"

typedef enum {
    RAM_GROUP_ADAMW_CLIP = 0,  /* AdamW, lr = base_lr * clip_lr_scale */
    RAM_GROUP_ADAMW_OTHER = 1, /* AdamW, lr = base_lr */
    RAM_GROUP_SGD = 2,         /* SGD with momentum, lr = base_lr_sgd */
    RAM_N_GROUPS = 3
} ram_group;

typedef struct {
    double base_lr;            /* SOLVER.BASE_LR, 5e-5 */
    double clip_lr_scale;      /* AdamW group 0 gets base_lr * 0.1 */
    double weight_decay;       /* AdamW, decoupled, 1e-4 */
    double beta1, beta2, eps;  /* 0.9, 0.999, 1e-8 */
    double base_lr_sgd;        /* SOLVER.BASE_LR_SGD, 1e-3 */
    double weight_decay_sgd;   /* SGD, L2 added to the gradient, 1e-4 */
    double momentum;           /* 0.9 (dampening 0, no Nesterov) */
    int warmup_epochs;         /* warmup_t, 3 */
    int scheduler_max_epochs;  /* t_initial, 60 (not the 6 trained epochs) */
    /* Derived from base_lr for EVERY group, as the official code does, when
     * negative (the default): 0.01 * base_lr and 0.002 * base_lr. */
    double warmup_lr_init;
    double lr_min;
} ram_optim_options;

/* One optimised tensor and its state. */
typedef struct {
    char name[RAM_PARAM_NAME];
    int param;        /* index into adapter->params */
    ram_group group;
    int64_t numel;
    float *m, *v;     /* AdamW first and second moments (NULL for SGD) */
    float *buf;       /* SGD momentum buffer (NULL for AdamW) */
} ram_optim_slot;

typedef struct {
    ram_optim_options opt;          /* warmup_lr_init and lr_min resolved */
    double base_lr[RAM_N_GROUPS];   /* peak lr of each group */
    double weight_decay[RAM_N_GROUPS];
    double lr[RAM_N_GROUPS];        /* lr in use now */
    int64_t step[RAM_N_GROUPS];     /* optimiser steps taken (AdamW t; SGD: 0 = no buffer yet) */
    int64_t epoch;                  /* last optimizer_set_epoch; 0 = as constructed */
    int n_slots;
    ram_optim_slot *slots;          /* in table order */
    float *storage;                 /* owns m, v, buf */
} ram_optimizer;

ram_optim_options ram_optim_default_options(void);

/* The group make_optimizer.py assigns to a parameter name. */
ram_group ram_optim_group_of(const char *name);
const char *ram_group_name(ram_group g);

/* timm CosineLRScheduler._get_lr for one group's base lr at epoch t (the
 * argument of scheduler.step(t); t = 1..6 during the official training):
 *   t < warmup:    warmup_lr_init + t * (base - warmup_lr_init) / warmup
 *   t < t_initial: lr_min + 0.5 * (base - lr_min) * (1 + cos(pi * t / t_initial))
 *   otherwise:     lr_min (cycle_limit 1)
 * Negative warmup_lr_init / lr_min in `o` are derived from o->base_lr. */
double ram_lr_at_epoch(const ram_optim_options *o, double base_lr, int64_t epoch);

/* Builds the groups and zeroed state for `a` (which must have gradients).
 * Every group starts at warmup_lr_init, as the scheduler's constructor sets.
 * o NULL = defaults. */
ramc_status optimizer_create(const ram_adapter *a, const ram_optim_options *o,
                             ram_optimizer **out);
void optimizer_free(ram_optimizer *opt);

/* scheduler.step(epoch) of both official schedulers: called once at the start
 * of each epoch, epoch = 1, 2, ... (no per-iteration stepping). */
void optimizer_set_epoch(ram_optimizer *opt, int64_t epoch);

/* One step of all three groups from the adapter's gradients. If any gradient
 * holds NaN or Inf nothing is changed (parameters, moments and step counts
 * stay as they were) and RAMC_ERR_NUMERIC names the first such tensor.
 * RAMC_ERR_MISMATCH if `a` is not laid out as the adapter the optimiser was
 * built for. */
ramc_status optimizer_step(ram_optimizer *opt, ram_adapter *a);

/* Zeroes every gradient buffer of the adapter (optimizer.zero_grad()). */
void optimizer_zero_grad(ram_adapter *a);

#endif
