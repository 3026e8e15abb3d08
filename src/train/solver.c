/* The official loop's optimiser, schedule and EMA rules (see solver.h). */
#include "train/solver.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

ram_optim_options ram_solver_optim_options(const ram_train_config *cfg) {
    ram_optim_options o = ram_optim_default_options();
    o.base_lr = cfg->base_lr;
    o.clip_lr_scale = cfg->clip_lr_factor;
    o.weight_decay = cfg->weight_decay;
    o.base_lr_sgd = cfg->base_lr_sgd;
    o.weight_decay_sgd = cfg->weight_decay_sgd;
    o.momentum = cfg->momentum;
    o.warmup_epochs = cfg->warmup_epochs;
    o.scheduler_max_epochs = cfg->scheduler_max_epochs;
    /* the official scheduler derives both from the global BASE_LR, also for
     * the TSS group (base_lr x 0.1) and the SGD prompt group */
    o.warmup_lr_init = cfg->warmup_lr_factor * cfg->base_lr;
    o.lr_min = cfg->min_lr_factor * cfg->base_lr;
    return o;
}

ram_train_options ram_solver_step_options(const ram_train_config *cfg) {
    ram_train_options t = ram_train_default_options();
    t.use_teacher = cfg->use_teacher;
    t.teacher_weight = (float)cfg->ot_regsc;
    t.reg = (float)cfg->ot_reg;
    t.teacher_sharpen = (float)cfg->teacher_sharpen;
    t.sinkhorn = cfg->sinkhorn;
    ram_train_options_set_variant(&t, &cfg->variant);
    t.loss = (ram_loss_kind)cfg->loss;
    return t;
}

ramc_status ram_solver_create(const ram_adapter *a, const ram_train_config *cfg, ram_solver *s) {
    memset(s, 0, sizeof *s);
    ram_optim_options oo = ram_solver_optim_options(cfg);
    ramc_status st = optimizer_create(a, &oo, &s->opt);
    if (st) return st;
    ram_ema_options eo = ram_ema_default_options();
    eo.decay = cfg->ema_decay;
    eo.enabled = cfg->use_ema;
    if ((st = ema_create(a, &eo, &s->ema))) {
        ram_solver_free(s);
        return st;
    }
    s->step = ram_solver_step_options(cfg);
    return RAMC_OK;
}

void ram_solver_free(ram_solver *s) {
    optimizer_free(s->opt);
    ema_free(s->ema);
    arena_release(&s->scratch);
    memset(s, 0, sizeof *s);
}

ramc_status ram_solver_begin_epoch(ram_solver *s, const ram_adapter *a, int epoch, int fresh_ema) {
    optimizer_set_epoch(s->opt, epoch);
    /* utils.model_utils.ModelEma is constructed anew at the top of every
     * epoch of processor.do_train: the EMA only ever averages one epoch */
    return fresh_ema ? ema_reset(s->ema, a) : RAMC_OK;
}

/* Data-parallel: every process's gradients summed into every process
 * (dist.h: fixed order, the same bits everywhere), so the optimiser steps
 * that follow are the same on all of them. Packed into one buffer: one
 * exchange per step instead of one per tensor. */
static ramc_status sum_gradients(const ramc_dist *d, ram_adapter *a, ramc_arena *arena) {
    size_t total = 0;
    for (int i = 0; i < a->n_params; i++)
        if (a->params[i].grad) total += (size_t)a->params[i].numel;
    const size_t mark = arena_mark(arena);
    float *buf = arena_alloc(arena, (total ? total : 1) * sizeof(float), "gradient exchange");
    if (!buf) return RAMC_ERR_NOMEM;
    size_t at = 0;
    for (int i = 0; i < a->n_params; i++)
        if (a->params[i].grad) {
            memcpy(buf + at, a->params[i].grad, (size_t)a->params[i].numel * sizeof(float));
            at += (size_t)a->params[i].numel;
        }
    ramc_status st = dist_sum_float(d, buf, (long)total);
    at = 0;
    for (int i = 0; i < a->n_params && st == RAMC_OK; i++)
        if (a->params[i].grad) {
            memcpy(a->params[i].grad, buf + at, (size_t)a->params[i].numel * sizeof(float));
            at += (size_t)a->params[i].numel;
        }
    arena_free(arena, buf);
    arena_reset(arena, mark);
    return st;
}

ramc_status ram_solver_step(ram_solver *s, const ramc_clip *clip, ram_adapter *a,
                            const float *images, int B, const int32_t *tokens, int C,
                            const float *teacher_text, const float *targets,
                            ram_train_result *res) {
    optimizer_zero_grad(a);
    s->step.scratch = &s->scratch;
    ramc_status st = ram_train_step(clip, a, images, B, tokens, C, teacher_text, targets, &s->step,
                                    res, NULL, NULL);
    if (st) return st;
    if (dist_size(s->step.dist) > 1 && (st = sum_gradients(s->step.dist, a, &s->scratch)))
        return st;
    if ((st = optimizer_step(s->opt, a))) return st;
    return ema_update(s->ema, a);
}

int ram_schedule_check(const ram_train_config *cfg, char *msg, size_t size) {
    const ram_optim_options o = ram_solver_optim_options(cfg);
    const double peak[RAM_N_GROUPS] = {cfg->base_lr * cfg->clip_lr_factor, cfg->base_lr,
                                       cfg->base_lr_sgd};
    int n_floor = 0, n_low = 0, first_floor = 0, first_low = 0, last_low = 0;
    double worst = 1;
    for (int e = 1; e <= cfg->max_epochs; e++) {
        double share = 1;
        for (int g = 0; g < RAM_N_GROUPS; g++)
            if (peak[g] > 0) {
                double s = ram_lr_at_epoch(&o, peak[g], e) / peak[g];
                if (s < share) share = s;
            }
        /* the cosine tail's low rates are the schedule's design; the floor after
         * it and a warm-up that starts too low are traps */
        const int at_floor = e >= cfg->scheduler_max_epochs, in_warmup = e < cfg->warmup_epochs;
        if (share >= RAM_SCHEDULE_USEFUL_SHARE || !(at_floor || in_warmup)) continue;
        if (share < worst) worst = share;
        if (at_floor) {
            if (!n_floor++) first_floor = e;
        } else {
            if (!n_low++) first_low = e;
            last_low = e;
        }
    }
    if (size) msg[0] = '\0';
    size_t used = 0;
    if (n_floor && used < size)
        used += (size_t)snprintf(
            msg + used, size - used,
            "the learning-rate schedule runs epochs %d-%d of %d at its floor (min_lr_factor %g x "
            "base_lr, down to %.2g%% of a group's peak) because scheduler_max_epochs is %d: the "
            "official cosine schedule ends at epoch scheduler_max_epochs and stays at the floor "
            "after it, so those epochs barely train. Set scheduler_max_epochs above max_epochs "
            "(the official settings: 60 for 6 epochs); see docs/datasets.md.",
            first_floor, cfg->max_epochs, cfg->max_epochs, cfg->min_lr_factor, 100 * worst,
            cfg->scheduler_max_epochs);
    if (n_low && used < size)
        used += (size_t)snprintf(
            msg + used, size - used,
            "%sepochs %d-%d run below %g%% of a group's peak learning rate (warm-up of %d epochs "
            "from warmup_lr_factor %g x base_lr): fewer warm-up epochs or more epochs would "
            "train more; see docs/datasets.md.",
            n_floor ? " Also, " : "the learning-rate schedule: ", first_low, last_low,
            100 * RAM_SCHEDULE_USEFUL_SHARE, cfg->warmup_epochs, cfg->warmup_lr_factor);
    return n_floor + n_low;
}
