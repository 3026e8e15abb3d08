/* AdamW + SGD over the adapter table, with the timm cosine schedule. */
#include "train/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"

#define OPT_PI 3.141592653589793 /* math.pi */

ram_optim_options ram_optim_default_options(void) {
    ram_optim_options o;
    memset(&o, 0, sizeof o);
    o.base_lr = 5e-5;
    o.clip_lr_scale = 0.1;
    o.weight_decay = 1e-4;
    o.beta1 = 0.9;
    o.beta2 = 0.999;
    o.eps = 1e-8;
    o.base_lr_sgd = 1e-3;
    o.weight_decay_sgd = 1e-4;
    o.momentum = 0.9;
    o.warmup_epochs = 3;
    o.scheduler_max_epochs = 60;
    o.warmup_lr_init = -1; /* 0.01 * base_lr */
    o.lr_min = -1;         /* 0.002 * base_lr */
    return o;
}

ram_group ram_optim_group_of(const char *name) {
    /* The order matters: the visual prompts are named
     * "clip_model.visual...adapt_embeds" and must land in SGD, not AdamW 0. */
    if (strstr(name, "embeds")) return RAM_GROUP_SGD;
    if (!strncmp(name, "clip", 4)) return RAM_GROUP_ADAMW_CLIP;
    return RAM_GROUP_ADAMW_OTHER;
}

const char *ram_group_name(ram_group g) {
    switch (g) {
    case RAM_GROUP_ADAMW_CLIP: return "adamw-clip";
    case RAM_GROUP_ADAMW_OTHER: return "adamw-other";
    case RAM_GROUP_SGD: return "sgd";
    default: return "?";
    }
}

static void resolve(ram_optim_options *o) {
    if (o->warmup_lr_init < 0) o->warmup_lr_init = 0.01 * o->base_lr;
    if (o->lr_min < 0) o->lr_min = 0.002 * o->base_lr;
}

double ram_lr_at_epoch(const ram_optim_options *in, double base, int64_t epoch) {
    ram_optim_options o = *in;
    resolve(&o);
    double t = (double)epoch;
    if (epoch < o.warmup_epochs) {
        /* timm precomputes warmup_steps = (base - init) / warmup_t, then init + t * step */
        double step = (base - o.warmup_lr_init) / (double)o.warmup_epochs;
        return o.warmup_lr_init + t * step;
    }
    if (o.scheduler_max_epochs <= 0 || epoch >= o.scheduler_max_epochs) return o.lr_min;
    /* cycle 0 (decay_rate^0 = 1, k_decay 1): math.pi * t / t_i, left to right */
    return o.lr_min +
           0.5 * (base - o.lr_min) * (1 + cos(OPT_PI * t / (double)o.scheduler_max_epochs));
}

ramc_status optimizer_create(const ram_adapter *a, const ram_optim_options *o,
                             ram_optimizer **out) {
    *out = NULL;
    ram_optimizer *opt = calloc(1, sizeof *opt);
    if (!opt) return ramc_error(RAMC_ERR_NOMEM, "out of memory creating the optimiser");
    opt->opt = o ? *o : ram_optim_default_options();
    resolve(&opt->opt);
    const ram_optim_options *p = &opt->opt;
    if (!(p->base_lr >= 0) || !(p->base_lr_sgd >= 0) || p->warmup_epochs < 0 ||
        !(p->beta1 >= 0 && p->beta1 < 1) || !(p->beta2 >= 0 && p->beta2 < 1) || !(p->eps > 0)) {
        free(opt);
        return ramc_error(RAMC_ERR_INVALID_ARG,
                          "optimiser options: need lr >= 0, warm-up >= 0, betas in [0,1), eps > 0");
    }
    opt->base_lr[RAM_GROUP_ADAMW_CLIP] = p->base_lr * p->clip_lr_scale;
    opt->base_lr[RAM_GROUP_ADAMW_OTHER] = p->base_lr;
    opt->base_lr[RAM_GROUP_SGD] = p->base_lr_sgd;
    opt->weight_decay[RAM_GROUP_ADAMW_CLIP] = p->weight_decay;
    opt->weight_decay[RAM_GROUP_ADAMW_OTHER] = p->weight_decay;
    opt->weight_decay[RAM_GROUP_SGD] = p->weight_decay_sgd;
    /* timm's constructor: update_groups(warmup_lr_init) when warmup_t > 0. */
    for (int g = 0; g < RAM_N_GROUPS; g++)
        opt->lr[g] = p->warmup_epochs > 0 ? p->warmup_lr_init : opt->base_lr[g];

    size_t floats = 0;
    int n = 0;
    for (int i = 0; i < a->n_params; i++) {
        const ram_param *q = &a->params[i];
        if (!q->trainable || !q->grad) continue;
        n++;
        floats += (size_t)q->numel * (ram_optim_group_of(q->name) == RAM_GROUP_SGD ? 1 : 2);
    }
    if (n == 0) {
        free(opt);
        return ramc_error(RAMC_ERR_INVALID_ARG,
                          "optimiser: the adapter has no gradient buffers (create or load it "
                          "with with_grads = 1)");
    }
    opt->slots = ramc_calloc((size_t)n, sizeof *opt->slots, "optimiser state");
    opt->storage = ramc_calloc(floats ? floats : 1, sizeof(float), "optimiser state");
    if (!opt->slots || !opt->storage) {
        optimizer_free(opt);
        return RAMC_ERR_NOMEM;
    }
    float *next = opt->storage;
    for (int i = 0; i < a->n_params; i++) {
        const ram_param *q = &a->params[i];
        if (!q->trainable || !q->grad) continue;
        ram_optim_slot *s = &opt->slots[opt->n_slots++];
        memcpy(s->name, q->name, sizeof s->name);
        s->param = i;
        s->group = ram_optim_group_of(q->name);
        s->numel = q->numel;
        if (s->group == RAM_GROUP_SGD) {
            s->buf = next;
            next += q->numel;
        } else {
            s->m = next;
            s->v = next + q->numel;
            next += 2 * q->numel;
        }
    }
    *out = opt;
    return RAMC_OK;
}

void optimizer_free(ram_optimizer *opt) {
    if (!opt) return;
    free(opt->slots);
    free(opt->storage);
    free(opt);
}

void optimizer_set_epoch(ram_optimizer *opt, int64_t epoch) {
    opt->epoch = epoch;
    for (int g = 0; g < RAM_N_GROUPS; g++)
        opt->lr[g] = ram_lr_at_epoch(&opt->opt, opt->base_lr[g], epoch);
}

void optimizer_zero_grad(ram_adapter *a) {
    for (int i = 0; i < a->n_params; i++)
        if (a->params[i].grad)
            memset(a->params[i].grad, 0, (size_t)a->params[i].numel * sizeof(float));
}

/* PyTorch 1.13 _single_tensor_adamw, CPU kernels:
 *   param.mul_(1 - lr*wd)
 *   exp_avg.mul_(b1).add_(g, alpha=1-b1)              m*b1 + (1-b1)*g
 *   exp_avg_sq.mul_(b2).addcmul_(g, g, value=1-b2)    v*b2 + (1-b2)*g*g
 *   denom = (exp_avg_sq.sqrt() / sqrt(bc2)).add_(eps)
 *   param.addcdiv_(exp_avg, denom, value=-lr/bc1)     p + (-step)*m/denom
 * Python scalars become float32 inside the kernels; the bias corrections are
 * computed in double from the (integral) step count. */
static void adamw_update(const ram_optim_slot *s, float *p, const float *g, double lr, double wd,
                         const ram_optim_options *o, int64_t t) {
    const float decay = (float)(1.0 - lr * wd);
    const float b1 = (float)o->beta1, omb1 = (float)(1.0 - o->beta1);
    const float b2 = (float)o->beta2, omb2 = (float)(1.0 - o->beta2);
    const double bc1 = 1.0 - pow(o->beta1, (double)t);
    const double bc2 = 1.0 - pow(o->beta2, (double)t);
    const float neg_step = (float)(-(lr / bc1));
    const float bc2_sqrt = (float)sqrt(bc2);
    const float eps = (float)o->eps;
    float *m = s->m, *v = s->v;
    for (int64_t i = 0; i < s->numel; i++) {
        float pi = p[i] * decay;
        float mi = m[i] * b1 + omb1 * g[i];
        float vi = v[i] * b2 + omb2 * g[i] * g[i];
        float denom = sqrtf(vi) / bc2_sqrt + eps;
        p[i] = pi + neg_step * mi / denom;
        m[i] = mi;
        v[i] = vi;
    }
}

/* PyTorch 1.13 _single_tensor_sgd (dampening 0, no Nesterov):
 *   d_p = g.add(param, alpha=wd)                      g + wd*p
 *   buf = clone(d_p) on the first step, else buf.mul_(mom).add_(d_p)
 *   param.add_(buf, alpha=-lr)                        p + (-lr)*buf */
static void sgd_update(const ram_optim_slot *s, float *p, const float *g, double lr, double wd,
                       double momentum, int first) {
    const float wdf = (float)wd, mom = (float)momentum, neg_lr = (float)(-lr);
    float *buf = s->buf;
    for (int64_t i = 0; i < s->numel; i++) {
        float d = g[i] + wdf * p[i];
        float b = first ? d : buf[i] * mom + d;
        buf[i] = b;
        p[i] = p[i] + neg_lr * b;
    }
}

ramc_status optimizer_step(ram_optimizer *opt, ram_adapter *a) {
    /* Check everything before touching anything: GradScaler skips the step
     * (no state change at all) when it finds a non-finite gradient. */
    for (int k = 0; k < opt->n_slots; k++) {
        const ram_optim_slot *s = &opt->slots[k];
        if (s->param >= a->n_params || strcmp(a->params[s->param].name, s->name) != 0 ||
            a->params[s->param].numel != s->numel || !a->params[s->param].grad)
            return ramc_error(RAMC_ERR_MISMATCH,
                              "optimiser step: parameter '%s' is missing, resized or has no "
                              "gradient in this adapter",
                              s->name);
    }
    for (int k = 0; k < opt->n_slots; k++) {
        const ram_optim_slot *s = &opt->slots[k];
        const float *g = a->params[s->param].grad;
        for (int64_t i = 0; i < s->numel; i++)
            if (!isfinite(g[i]))
                return ramc_error(RAMC_ERR_NUMERIC,
                                  "optimiser step skipped: gradient of '%s' holds %s at element "
                                  "%lld; no parameter was changed",
                                  s->name, isnan(g[i]) ? "NaN" : "Inf", (long long)i);
    }
    int has[RAM_N_GROUPS] = {0};
    for (int k = 0; k < opt->n_slots; k++) has[opt->slots[k].group] = 1;
    for (int g = 0; g < RAM_N_GROUPS; g++)
        if (has[g]) opt->step[g]++;
    for (int k = 0; k < opt->n_slots; k++) {
        const ram_optim_slot *s = &opt->slots[k];
        ram_param *q = &a->params[s->param];
        const ram_group g = s->group;
        if (g == RAM_GROUP_SGD)
            sgd_update(s, q->data, q->grad, opt->lr[g], opt->weight_decay[g], opt->opt.momentum,
                       opt->step[g] == 1);
        else
            adamw_update(s, q->data, q->grad, opt->lr[g], opt->weight_decay[g], &opt->opt,
                         opt->step[g]);
    }
    return RAMC_OK;
}
