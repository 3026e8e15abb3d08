/* Internal layout of the prediction API's opaque objects (ramc.h). */
#ifndef RAMC_API_API_H
#define RAMC_API_API_H

#include <pthread.h>

#include "api/model_view.h"
#include "core/arena.h"
#include "model/clip.h"
#include "ram/ram.h"

/* What a model fills in on first use. Behind a pointer so that the model
 * itself stays const for its users while this part changes once. */
typedef struct {
    pthread_mutex_t lock;
    ramc_tokenizer *tok; /* the model's own tokenizer, NULL until first asked for */
    int have_key;        /* cache_key computed (label_cache.c) */
    char cache_key[33];  /* hex digest of what the label features depend on */
} model_lazy;

struct ramc_model {
    ramc_clip *clip;
    ram_adapter *adapter; /* NULL: RAM's zero-shot path on the frozen CLIP */
    int borrowed;         /* 1: clip and adapter belong to the caller (api_model_view) */
    int threads;          /* ramc_clip_params.threads: 0 = the caller's OpenMP setting */
    int bf16, packed;     /* how the CLIP was loaded: part of the label cache's key */
    model_lazy *lazy;
};

/* The model's own tokenizer, loaded on the first call and then kept: label
 * sets are encoded many times per model (every evaluation of a training run),
 * and reading the vocabulary costs more than encoding a small label set. */
ramc_status model_tokenizer(const ramc_model *m, const ramc_tokenizer **out);

struct ramc_labels {
    const ramc_model *model; /* the features are only meaningful with this model */
    int n, D;
    char **names;            /* [n] copies of the caller's names */
    float *features;         /* [n, D] text features for RAM mode (deep prompts if any) */
    /* [n, D] plain-CLIP features for the baseline; == features unless the
     * adapter carries deep text prompts, in which case they are computed too */
    float *features_plain;
    int cache_hits;          /* labels whose features came from the label cache */
    /* The reference prompt of the independent score (the template with an
     * empty label): token ids fixed at encode time, features computed on the
     * first independent-score call (through the label cache, if one was
     * given), so callers of the official score never pay for it. */
    int32_t *ref_tokens;     /* [context_length] */
    char *cache_dir;         /* copy of the encode's cache folder; NULL: none */
    struct labels_lazy *lazy;
};

/* The reference prompt's features [D] (RAM mode, deep prompts if any) and
 * plain-CLIP features [D], computed once per label set (thread-safe). */
ramc_status labels_reference(const ramc_labels *lb, const float **ref, const float **ref_plain);

/* The persistent label cache (label_cache.c): one file per label under
 * dir/<model key>/, the model key a digest of the CLIP file's bytes, the
 * load settings and the adapter's tensors; the entry name a digest of the
 * prompt's token ids. */
ramc_status label_cache_model_key(const ramc_model *m, char key[33]);
/* Fills features (and plain, when not NULL) from the entry for `tokens`
 * ([L]); 1 on a hit, 0 on a miss or an unusable entry. */
int label_cache_get(const char *dir, const char *model_key, const int32_t *tokens, int L, int D,
                    float *features, float *plain);
/* Writes the entry atomically (a temporary file renamed over it), so two
 * processes sharing the folder never see half an entry. */
ramc_status label_cache_put(const char *dir, const char *model_key, const int32_t *tokens, int L,
                            int D, const float *features, const float *plain);

/* Prediction (predict.c) over a per-call arena: a state's, or NULL for one
 * made and sized for this call alone. */
ramc_status predict_in_arena(const ramc_model *m, ramc_arena *arena, const ramc_labels *lb,
                             const float *images, int B, const ramc_predict_params *params,
                             float *scores, float *plan, float *lpd);
ramc_status predict_check_params(const ramc_predict_params *p);
/* The table of shapes: the arena bytes of a call of B images and C labels,
 * under params' thread count (predict_scratch_bytes: under the current one). */
size_t predict_scratch_bytes_for_call(const ramc_model *m, int B, int C,
                                      const ramc_predict_params *p);
size_t predict_scratch_bytes(const ramc_model *m, int B, int C, const ramc_predict_params *p);

#endif
