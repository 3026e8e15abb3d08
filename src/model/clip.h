/* The CLIP ViT model: weights, loading and the forward passes.
 *
 * The model is immutable once loaded. Forward functions take scratch
 * memory from the call (allocated and freed inside), never from the model.
 */
#ifndef RAMC_MODEL_CLIP_H
#define RAMC_MODEL_CLIP_H

#include "ramc.h"
#include "core/status.h"

/* One pre-LN transformer block (vision or text). Width W, MLP width M. */
typedef struct {
    const float *ln_1_w, *ln_1_b; /* [W] */
    const float *qkv_w;           /* [3W, W]  rows q, k, v (in_proj_weight) */
    const float *qkv_b;           /* [3W] */
    const float *out_w;           /* [W, W] */
    const float *out_b;           /* [W] */
    const float *ln_2_w, *ln_2_b; /* [W] */
    const float *fc_w;            /* [M, W]   mlp.c_fc */
    const float *fc_b;            /* [M] */
    const float *proj_w;          /* [W, M]   mlp.c_proj */
    const float *proj_b;          /* [W] */
} clip_block;

struct ramc_clip {
    ramc_clip_info info;
    char *path;

    /* vision tower (W = vision_width, P = patch_size, N1 = 1 + n_patches, D = embed_dim) */
    const float *patch_w;        /* [W, 3, P, P]  conv1, no bias */
    const float *class_emb;      /* [W] */
    const float *vis_pos;        /* [N1, W] */
    const float *ln_pre_w, *ln_pre_b;   /* [W] */
    const float *ln_post_w, *ln_post_b; /* [W] */
    const float *vis_proj;       /* [W, D]  used as x @ vis_proj */
    clip_block *vis_blocks;      /* [vision_layers] */

    /* text tower (Wt = text_width, V = vocab_size, L = context_length) */
    const float *tok_emb;        /* [V, Wt] */
    const float *txt_pos;        /* [L, Wt] */
    const float *ln_final_w, *ln_final_b; /* [Wt] */
    const float *txt_proj;       /* [Wt, D]  used as x @ txt_proj */
    clip_block *txt_blocks;      /* [text_layers] */

    float *storage;              /* owns every float array above */
};

#endif
