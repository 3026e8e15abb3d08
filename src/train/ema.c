/* ModelEma over the adapter table. */
#include "train/ema.h"

#include <stdlib.h>
#include <string.h>

#include "core/status.h"

ram_ema_options ram_ema_default_options(void) {
    ram_ema_options o = {0.9997, 1};
    return o;
}

void ema_free(ram_ema *e) {
    if (!e) return;
    free(e->offset);
    free(e->data);
    free(e->bn_count);
    free(e);
}

ramc_status ema_create(const ram_adapter *a, const ram_ema_options *o, ram_ema **out) {
    *out = NULL;
    ram_ema_options opt = o ? *o : ram_ema_default_options();
    if (!opt.enabled) return RAMC_OK;
    if (!(opt.decay >= 0 && opt.decay <= 1))
        return ramc_error(RAMC_ERR_INVALID_ARG, "EMA decay %g outside [0, 1]", opt.decay);
    ram_ema *e = calloc(1, sizeof *e);
    if (!e) return ramc_error(RAMC_ERR_NOMEM, "out of memory creating the EMA");
    e->decay = opt.decay;
    e->n_params = a->n_params;
    e->n_vision_adapted = a->n_vision_adapted;
    e->offset = ramc_malloc(((size_t)a->n_params + 1) * sizeof *e->offset, "EMA");
    if (!e->offset) {
        ema_free(e);
        return RAMC_ERR_NOMEM;
    }
    e->offset[0] = 0;
    for (int i = 0; i < a->n_params; i++) e->offset[i + 1] = e->offset[i] + a->params[i].numel;
    e->data = ramc_malloc((size_t)(e->offset[a->n_params] ? e->offset[a->n_params] : 1) *
                              sizeof(float), "EMA");
    e->bn_count = ramc_calloc((size_t)(2 * a->n_vision_adapted + 1), sizeof(int64_t), "EMA");
    if (!e->data || !e->bn_count) {
        ema_free(e);
        return RAMC_ERR_NOMEM;
    }
    ramc_status st = ema_reset(e, a);
    if (st != RAMC_OK) {
        ema_free(e);
        return st;
    }
    *out = e;
    return RAMC_OK;
}

ramc_status ema_check_layout(const ram_ema *e, const ram_adapter *a) {
    if (!e) return RAMC_OK;
    if (a->n_params != e->n_params || a->n_vision_adapted != e->n_vision_adapted)
        return ramc_error(RAMC_ERR_MISMATCH,
                          "EMA: built for %d tensors / %d adapted blocks, the adapter has %d / %d",
                          e->n_params, e->n_vision_adapted, a->n_params, a->n_vision_adapted);
    for (int i = 0; i < a->n_params; i++)
        if (a->params[i].numel != e->offset[i + 1] - e->offset[i])
            return ramc_error(RAMC_ERR_MISMATCH, "EMA: tensor '%s' has %lld elements, expected %lld",
                              a->params[i].name, (long long)a->params[i].numel,
                              (long long)(e->offset[i + 1] - e->offset[i]));
    return RAMC_OK;
}

ramc_status ema_reset(ram_ema *e, const ram_adapter *a) {
    if (!e) return RAMC_OK;
    ramc_status st = ema_check_layout(e, a);
    if (st != RAMC_OK) return st;
    for (int i = 0; i < a->n_params; i++)
        memcpy(e->data + e->offset[i], a->params[i].data,
               (size_t)a->params[i].numel * sizeof(float));
    for (int v = 0; v < a->n_vision_adapted; v++) {
        e->bn_count[2 * v] = a->tss[v].bn1_count;
        e->bn_count[2 * v + 1] = a->tss[v].bn2_count;
    }
    e->updates = 0;
    return RAMC_OK;
}

/* decay * e + (1 - decay) * m on an int64 buffer: PyTorch promotes to float32,
 * computes there and copy_ truncates back. The live count grows by one per
 * iteration but the average only moves 0.0003 per unit of difference, and
 * truncation throws the fraction away: the EMA count stays at its value from
 * the reset until the live count is ~3334 ahead, then lags it by ~3333 (from
 * a reset at 0, 5000 iterations leave it at 1667). Unused by the forward pass
 * (momentum is fixed at 0.1), so this only shows in saved files. */
static int64_t ema_count(float d, float omd, int64_t e, int64_t m) {
    float r = d * (float)e + omd * (float)m;
    return (int64_t)r;
}

ramc_status ema_update(ram_ema *e, const ram_adapter *a) {
    if (!e) return RAMC_OK;
    ramc_status st = ema_check_layout(e, a);
    if (st != RAMC_OK) return st;
    /* self.decay * e + (1. - self.decay) * m: both Python scalars enter the
     * float32 kernels as floats; (1 - decay) is formed in double first. */
    const float d = (float)e->decay, omd = (float)(1.0 - e->decay);
    for (int i = 0; i < a->n_params; i++) {
        float *x = e->data + e->offset[i];
        const float *m = a->params[i].data;
        for (int64_t k = 0; k < a->params[i].numel; k++) x[k] = d * x[k] + omd * m[k];
    }
    for (int v = 0; v < a->n_vision_adapted; v++) {
        e->bn_count[2 * v] = ema_count(d, omd, e->bn_count[2 * v], a->tss[v].bn1_count);
        e->bn_count[2 * v + 1] = ema_count(d, omd, e->bn_count[2 * v + 1], a->tss[v].bn2_count);
    }
    /* The official loop assigns ema.temperature = model.temperature after the
     * averaging: the global temperature is tracked, not averaged. */
    if (a->temperature) {
        int idx = (int)(a->temperature - a->params);
        memcpy(e->data + e->offset[idx], a->temperature->data,
               (size_t)a->temperature->numel * sizeof(float));
    }
    e->updates++;
    return RAMC_OK;
}

ramc_status ema_swap(ram_ema *e, ram_adapter *a) {
    if (!e) return RAMC_OK;
    ramc_status st = ema_check_layout(e, a);
    if (st != RAMC_OK) return st;
    for (int i = 0; i < a->n_params; i++) {
        float *x = e->data + e->offset[i], *y = a->params[i].data;
        for (int64_t k = 0; k < a->params[i].numel; k++) {
            float t = x[k];
            x[k] = y[k];
            y[k] = t;
        }
    }
    for (int v = 0; v < a->n_vision_adapted; v++) {
        int64_t t = e->bn_count[2 * v];
        e->bn_count[2 * v] = a->tss[v].bn1_count;
        a->tss[v].bn1_count = t;
        t = e->bn_count[2 * v + 1];
        e->bn_count[2 * v + 1] = a->tss[v].bn2_count;
        a->tss[v].bn2_count = t;
    }
    return RAMC_OK;
}

ramc_status ema_copy_to(const ram_ema *e, ram_adapter *dst) {
    if (!e) return RAMC_OK;
    ramc_status st = ema_check_layout(e, dst);
    if (st != RAMC_OK) return st;
    for (int i = 0; i < dst->n_params; i++)
        memcpy(dst->params[i].data, e->data + e->offset[i],
               (size_t)dst->params[i].numel * sizeof(float));
    for (int v = 0; v < dst->n_vision_adapted; v++) {
        dst->tss[v].bn1_count = e->bn_count[2 * v];
        dst->tss[v].bn2_count = e->bn_count[2 * v + 1];
    }
    return RAMC_OK;
}
