/* Internal layout of the prediction API's opaque objects (ramc.h). */
#ifndef RAMC_API_API_H
#define RAMC_API_API_H

#include "model/clip.h"
#include "ram/ram.h"

struct ramc_model {
    ramc_clip *clip;
    ram_adapter *adapter; /* NULL: RAM's zero-shot path on the frozen CLIP */
};

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
