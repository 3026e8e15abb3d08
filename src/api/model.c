/* ramc_model: CLIP plus an optional RAM adapter, loaded once, immutable. */
#include <stdlib.h>

#include "api/api.h"
#include "core/status.h"

ramc_status ramc_model_load(const char *clip_path, const char *adapter_path,
                            const ramc_clip_params *params, ramc_model **out) {
    if (!out) return ramc_error(RAMC_ERR_INVALID_ARG, "model_load: no output pointer");
    *out = NULL;
    if (!clip_path || !*clip_path)
        return ramc_error(RAMC_ERR_INVALID_ARG, "model_load: no CLIP weights path given");
    if (adapter_path && !*adapter_path)
        return ramc_error(RAMC_ERR_INVALID_ARG, "model_load: empty adapter path");
    ramc_model *m = ramc_calloc(1, sizeof *m, "model");
    if (!m) return RAMC_ERR_NOMEM;
    ramc_status st = ramc_clip_load(clip_path, params, &m->clip);
    /* with_grads = 0: prediction never trains, so no gradient buffers */
    if (st == RAMC_OK && adapter_path) st = ram_adapter_load(adapter_path, m->clip, 0, &m->adapter);
    if (st != RAMC_OK) {
        ramc_model_free(m);
        return st;
    }
    *out = m;
    return RAMC_OK;
}

void ramc_model_free(ramc_model *m) {
    if (!m) return;
    if (m->adapter) ram_adapter_free(m->adapter);
    if (m->clip) ramc_clip_free(m->clip);
    free(m);
}

ramc_clip_info ramc_model_get_info(const ramc_model *m) {
    ramc_clip_info none = {0};
    return m && m->clip ? m->clip->info : none;
}

int ramc_model_has_adapter(const ramc_model *m) { return m && m->adapter; }
