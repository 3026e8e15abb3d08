/* ramc_model: CLIP plus an optional RAM adapter, loaded once, immutable. */
#include <stdlib.h>

#include "api/api.h"
#include "core/status.h"

static ramc_status model_new(int threads, ramc_model **out) {
    ramc_model *m = ramc_calloc(1, sizeof *m, "model");
    model_lazy *lz = ramc_calloc(1, sizeof *lz, "model");
    if (!m || !lz || pthread_mutex_init(&lz->lock, NULL) != 0) {
        free(m), free(lz);
        return ramc_error(RAMC_ERR_NOMEM, "model: out of memory");
    }
    m->lazy = lz;
    m->threads = threads;
    *out = m;
    return RAMC_OK;
}

ramc_status ramc_model_load(const char *clip_path, const char *adapter_path,
                            const ramc_clip_params *params, ramc_model **out) {
    if (!out) return ramc_error(RAMC_ERR_INVALID_ARG, "model_load: no output pointer");
    *out = NULL;
    if (!clip_path || !*clip_path)
        return ramc_error(RAMC_ERR_INVALID_ARG, "model_load: no CLIP weights path given");
    if (adapter_path && !*adapter_path)
        return ramc_error(RAMC_ERR_INVALID_ARG, "model_load: empty adapter path");
    if (params && params->threads < 0)
        return ramc_error(RAMC_ERR_INVALID_ARG, "model_load: threads %d, expected >= 0 (0: default)",
                          params->threads);
    ramc_model *m = NULL;
    ramc_status st = model_new(params ? params->threads : 0, &m);
    if (st != RAMC_OK) return st;
    ramc_clip_params cp = params ? *params : ramc_clip_default_params();
    m->bf16 = cp.bf16;
    st = ramc_clip_load(clip_path, params, &m->clip);
    m->packed = cp.pack_weights;
    /* with_grads = 0: prediction never trains, so no gradient buffers */
    if (st == RAMC_OK && adapter_path) st = ram_adapter_load(adapter_path, m->clip, 0, &m->adapter);
    /* a loaded model never changes: the adapter's weights are final too
     * (bf16: TSS's convolution weights kept converted) */
    if (st == RAMC_OK && m->adapter) st = ram_adapter_freeze(m->adapter, cp.pack_weights, cp.bf16);
    if (st != RAMC_OK) {
        ramc_model_free(m);
        return st;
    }
    *out = m;
    return RAMC_OK;
}

ramc_status api_model_view(ramc_clip *clip, ram_adapter *adapter, int threads, ramc_model **out) {
    if (!out) return ramc_error(RAMC_ERR_INVALID_ARG, "model_view: no output pointer");
    *out = NULL;
    if (!clip) return ramc_error(RAMC_ERR_INVALID_ARG, "model_view: no CLIP");
    ramc_model *m = NULL;
    ramc_status st = model_new(threads > 0 ? threads : 0, &m);
    if (st != RAMC_OK) return st;
    m->clip = clip, m->adapter = adapter, m->borrowed = 1;
    *out = m;
    return RAMC_OK;
}

ramc_status model_tokenizer(const ramc_model *m, const ramc_tokenizer **out) {
    model_lazy *lz = m->lazy;
    ramc_status st = RAMC_OK;
    /* one loader at a time; a failure is not kept, so a later call retries
     * (the vocabulary may have been put in place since) */
    pthread_mutex_lock(&lz->lock);
    if (!lz->tok) st = ramc_tokenizer_load_for_model(m->clip->path, &lz->tok);
    *out = lz->tok;
    pthread_mutex_unlock(&lz->lock);
    return st;
}

void ramc_model_free(ramc_model *m) {
    if (!m) return;
    if (!m->borrowed) {
        if (m->adapter) ram_adapter_free(m->adapter);
        if (m->clip) ramc_clip_free(m->clip);
    }
    if (m->lazy) {
        ramc_tokenizer_free(m->lazy->tok);
        pthread_mutex_destroy(&m->lazy->lock);
        free(m->lazy);
    }
    free(m);
}

ramc_clip_info ramc_model_get_info(const ramc_model *m) {
    ramc_clip_info none = {0};
    return m && m->clip ? m->clip->info : none;
}

int ramc_model_has_adapter(const ramc_model *m) { return m && m->adapter; }
