/* The official loop's optimiser, schedule and EMA rules (see solver.h). */
#include "train/solver.h"

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
    t.matching = (ram_matching)cfg->matching;
    t.uniform_source = !cfg->use_lpd;
    t.no_saa = !cfg->use_saa;
    t.no_tss = !cfg->use_tss;
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
    memset(s, 0, sizeof *s);
}

ramc_status ram_solver_begin_epoch(ram_solver *s, const ram_adapter *a, int epoch, int fresh_ema) {
    optimizer_set_epoch(s->opt, epoch);
    /* utils.model_utils.ModelEma is constructed anew at the top of every
     * epoch of processor.do_train: the EMA only ever averages one epoch */
    return fresh_ema ? ema_reset(s->ema, a) : RAMC_OK;
}

ramc_status ram_solver_step(ram_solver *s, const ramc_clip *clip, ram_adapter *a,
                            const float *images, int B, const int32_t *tokens, int C,
                            const float *teacher_text, const float *targets,
                            ram_train_result *res) {
    optimizer_zero_grad(a);
    ramc_status st = ram_train_step(clip, a, images, B, tokens, C, teacher_text, targets, &s->step,
                                    res, NULL, NULL);
    if (st) return st;
    if ((st = optimizer_step(s->opt, a))) return st;
    return ema_update(s->ema, a);
}
