/* Internal layout of the prediction API's opaque objects (ramc.h). */
#ifndef RAMC_API_API_H
#define RAMC_API_API_H

#include <pthread.h>

#include "api/model_view.h"
#include "model/clip.h"
#include "ram/ram.h"

/* What a model fills in on first use. Behind a pointer so that the model
 * itself stays const for its users while this part changes once. */
typedef struct {
    pthread_mutex_t lock;
    ramc_tokenizer *tok; /* the model's own tokenizer, NULL until first asked for */
} model_lazy;

struct ramc_model {
    ramc_clip *clip;
    ram_adapter *adapter; /* NULL: RAM's zero-shot path on the frozen CLIP */
    int borrowed;         /* 1: clip and adapter belong to the caller (api_model_view) */
    int threads;          /* ramc_clip_params.threads: 0 = the caller's OpenMP setting */
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
};

#endif
