/* ramc_state: the per-call state of prediction (include/ramc.h), which is
 * its scratch arena (core/arena.h) and the model it belongs to. */
#include <stdlib.h>

#include "api/api.h"
#include "core/arena.h"
#include "core/status.h"

struct ramc_state {
    const ramc_model *model;
    ramc_arena arena;
};

ramc_status ramc_state_create(const ramc_model *model, ramc_state **out) {
    if (!out) return ramc_error(RAMC_ERR_INVALID_ARG, "state_create: no output pointer");
    *out = NULL;
    if (!model || !model->clip) return ramc_error(RAMC_ERR_INVALID_ARG, "state_create: no model");
    ramc_state *s = ramc_calloc(1, sizeof *s, "prediction state");
    if (!s) return RAMC_ERR_NOMEM;
    s->model = model;
    *out = s;
    return RAMC_OK;
}

void ramc_state_free(ramc_state *state) {
    if (!state) return;
    arena_release(&state->arena);
    free(state);
}

ramc_status ramc_state_reserve(ramc_state *state, int batch, int n_labels,
                               const ramc_predict_params *params) {
    if (!state) return ramc_error(RAMC_ERR_INVALID_ARG, "state_reserve: no state");
    if (batch < 1 || batch > RAMC_MAX_BATCH)
        return ramc_error(RAMC_ERR_LIMIT, "state_reserve: batch of %d images, expected 1..%d",
                          batch, RAMC_MAX_BATCH);
    if (n_labels < 1 || n_labels > RAMC_MAX_LABELS)
        return ramc_error(RAMC_ERR_LIMIT, "state_reserve: %d labels, expected 1..%d", n_labels,
                          RAMC_MAX_LABELS);
    const ramc_predict_params p = params ? *params : ramc_predict_default_params();
    ramc_status st = predict_check_params(&p);
    if (st != RAMC_OK) return st;
    return arena_reserve(&state->arena,
                         predict_scratch_bytes_for_call(state->model, batch, n_labels, &p));
}

size_t ramc_state_bytes(const ramc_state *state) { return state ? state->arena.cap : 0; }

int ramc_state_grow_count(const ramc_state *state) { return state ? state->arena.grows : 0; }

ramc_status ramc_predict_with_state(ramc_state *state, const ramc_labels *labels,
                                    const float *images, int B,
                                    const ramc_predict_params *params, float *scores,
                                    float *plan, float *lpd) {
    if (!state) return ramc_error(RAMC_ERR_INVALID_ARG, "predict: no state");
    if (labels && labels->model != state->model)
        return ramc_error(RAMC_ERR_MISMATCH, "predict: the state was made for another model");
    return predict_in_arena(state->model, &state->arena, labels, images, B, params, scores, plan,
                            lpd);
}
