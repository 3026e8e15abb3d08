/* The official training loop's rules around each forward/backward pass
 * (spec §7.4-§7.7): the optimisers and their per-epoch schedule, the EMA
 * that restarts every epoch, and the order of a step. `ramc train` and the
 * trajectory replay of `ramc golden` both drive training through these
 * functions, so a trajectory set checks the trainer itself.
 *
 *   for epoch = 1, 2, ...:
 *       ram_solver_begin_epoch(s, adapter, epoch)   scheduler.step(epoch), new EMA
 *       for each batch:
 *           ram_solver_step(s, ...)                 zero_grad, forward + backward,
 *                                                   AdamW + SGD step, EMA update
 */
#ifndef RAMC_TRAIN_SOLVER_H
#define RAMC_TRAIN_SOLVER_H

#include "train/config.h"
#include "ram/ram_train.h"
#include "train/ema.h"
#include "train/optim.h"

typedef struct {
    ram_optimizer *opt;
    ram_ema *ema;            /* NULL when the config has use_ema = 0 */
    ram_train_options step;  /* the forward/backward settings of every step */
    ramc_arena scratch;      /* every step's buffers (step.scratch points here during a
                              * step): after the first step, a step allocates nothing */
} ram_solver;

/* The optimiser settings a config asks for (warm-up start and floor derived
 * from base_lr for every group, as the official make_scheduler). */
ram_optim_options ram_solver_optim_options(const ram_train_config *cfg);

/* The training-step settings a config asks for (teacher, Sinkhorn, ablations,
 * loss). text_cache is left NULL: the caller owns one if it wants it. */
ram_train_options ram_solver_step_options(const ram_train_config *cfg);

/* Optimisers over `a` (which must have gradient buffers) and, if the config
 * uses one, the EMA. *s is zeroed first; ram_solver_free releases it. */
ramc_status ram_solver_create(const ram_adapter *a, const ram_train_config *cfg, ram_solver *s);
void ram_solver_free(ram_solver *s);

/* Start of epoch `epoch` (1-based): every group's learning rate for the
 * epoch, and a fresh EMA copied from the live adapter. A run resumed in the
 * middle of an epoch passes fresh_ema = 0 (its EMA comes from the checkpoint). */
ramc_status ram_solver_begin_epoch(ram_solver *s, const ram_adapter *a, int epoch, int fresh_ema);

/* One optimisation step on a batch: gradients zeroed, the train-mode forward
 * and backward (BatchNorm running statistics updated), AdamW and SGD steps,
 * then the EMA update. With s->step.dist (data-parallel), images are this
 * process's share of the batch and the gradients are summed over the
 * processes before the optimiser steps, so every process steps alike.
 * images [B, 3, S, S]; tokens [C, L] of the seen labels;
 * teacher_text [C, D]; targets [B, C] 0/1. *res receives what the step
 * computed (loss, scores), which lives in the solver's arena until its next
 * step: read it before, and free it with ram_train_result_free. On a NaN or Inf
 * gradient nothing is stepped and RAMC_ERR_NUMERIC names the tensor. */
ramc_status ram_solver_step(ram_solver *s, const ramc_clip *clip, ram_adapter *a,
                            const float *images, int B, const int32_t *tokens, int C,
                            const float *teacher_text, const float *targets,
                            ram_train_result *res);

/* A trained epoch whose rate is below this share of its group's peak counts
 * as barely training (the official settings start at ~34% in epoch 1). */
#define RAM_SCHEDULE_USEFUL_SHARE 0.1

/* Checks the schedule a config asks for, epoch by epoch, for the trap of the
 * official cosine schedule: an epoch t >= scheduler_max_epochs runs at the
 * floor (min_lr_factor x base_lr, for every group), and a long warm-up
 * starts low. Returns how many of the max_epochs trained epochs sit at the
 * floor or in the warm-up below RAM_SCHEDULE_USEFUL_SHARE of some group's
 * peak (the low rates of the cosine's own tail are by design and not
 * counted), and writes a message saying which, why and what to change into
 * msg (empty when 0). */
int ram_schedule_check(const ram_train_config *cfg, char *msg, size_t size);

#endif
