/* ramc_state: per-call state of prediction (include/ramc.h). */
#include <stdlib.h>

#include "api/api.h"
#include "core/status.h"

struct ramc_state {
    const ramc_model *model;
    size_t bytes;
    int grows;
};

ramc_status ramc_state_create(const ramc_model *model, ramc_state **out) {
    if (!out) return ramc_error(RAMC_ERR_INVALID_ARG, "state_create: no output pointer");
    *out = NULL;
    if (!model) return ramc_error(RAMC_ERR_INVALID_ARG, "state_create: no model");
    ramc_state *s = ramc_calloc(1, sizeof *s, "prediction state");
    if (!s) return RAMC_ERR_NOMEM;
    s->model = model;
    *out = s;
    return RAMC_OK;
}

void ramc_state_free(ramc_state *state) { free(state); }

ramc_status ramc_state_reserve(ramc_state *state, int batch, int n_labels,
                               const ramc_predict_params *params) {
    (void)params;
    if (!state || batch < 1 || n_labels < 1)
        return ramc_error(RAMC_ERR_INVALID_ARG, "state_reserve: no state, or batch/labels < 1");
    return RAMC_OK;
}

size_t ramc_state_bytes(const ramc_state *state) { return state ? state->bytes : 0; }

int ramc_state_grow_count(const ramc_state *state) { return state ? state->grows : 0; }

ramc_status ramc_predict_with_state(ramc_state *state, const ramc_labels *labels,
                                    const float *images, int B,
                                    const ramc_predict_params *params, float *scores,
                                    float *plan, float *lpd) {
    if (!state) return ramc_error(RAMC_ERR_INVALID_ARG, "predict: no state");
    if (labels && labels->model != state->model)
        return ramc_error(RAMC_ERR_MISMATCH, "predict: the state was made for another model");
    return ramc_predict(state->model, labels, images, B, params, scores, plan, lpd);
}
