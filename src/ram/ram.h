/* RAM on top of CLIP: the Ladder Local Adapter (SAA + TSS + visual prompts),
 * deep text prompts, and the trainable tensors that hold them.
 *
 * The adapter's tensors live in one table of named parameters (ram_param),
 * named exactly as the official code's named_parameters() / state_dict(), so
 * adapter files, optimisers and gradient checks all walk the same list.
 */
#ifndef RAMC_RAM_RAM_H
#define RAMC_RAM_RAM_H

#include <stdint.h>

#include "model/clip.h"

#define RAM_MAX_LAYERS 64
#define RAM_PARAM_NAME 128

/* One named tensor of the adapter: a trainable parameter or a BN buffer. */
typedef struct {
    char name[RAM_PARAM_NAME];
    int ndim;
    int64_t shape[4];
    int64_t numel;
    float *data;
    float *grad;   /* same size as data for trainable tensors, else NULL */
    int trainable; /* 0 for BatchNorm running statistics */
} ram_param;

/* TSS (LocalAdapter) of one adapted vision block. W vision width, H hidden
 * width (= the CLIP embed dim), k gate kernel. Pointers into the param table. */
typedef struct {
    ram_param *conv1_w;                  /* [H, W, 1, 1] stream-1 1x1 conv */
    ram_param *bn1_w, *bn1_b;            /* [H] */
    ram_param *bn1_mean, *bn1_var;       /* [H] running statistics */
    int64_t bn1_count;                   /* num_batches_tracked */
    ram_param *conv2_w;                  /* [H, W, 3, 3] stream-2 3x3 conv, pad 1 */
    ram_param *bn2_w, *bn2_b, *bn2_mean, *bn2_var;
    int64_t bn2_count;
    ram_param *gate_w;                   /* [2, 2, k, k] gate conv, pad k/2 */
    ram_param *final_w;                  /* [W, H, 1, 1] output 1x1 conv */
    ram_param *norm_q1_w, *norm_q1_b;    /* [H] */
    ram_param *norm_q2_w, *norm_q2_b;    /* [H] */
    ram_param *norm_kv_w, *norm_kv_b;    /* [H] */
    ram_param *prompts;                  /* [na, W] adapt_embeds (visual prompt tokens) */
    /* conv2_w as [H, 3, 3, W] (the im2col order of tss.c), kept by
     * ram_adapter_freeze for inference; NULL: reordered on every forward */
    const float *conv2_wk;
    /* The bf16 mode's copies (ram_adapter_freeze with bf16): conv1_w and
     * conv2_w in bf16, [H, W] and [H, 3, 3, W]; NULL: converted per forward */
    const uint16_t *conv1_wb, *conv2_wb;
    /* Training split over processes (data-parallel): BatchNorm's batch
     * statistics are over the whole batch of all of them (SyncBatchNorm).
     * NULL: this process's batch. Set by ram_train_step for its duration. */
    const struct ramc_dist *bn_group;
} ram_tss;

typedef struct {
    /* shape of the adaptation, derived from the tensors */
    int n_vision_adapted;                /* blocks with visual prompts + TSS */
    int vision_layers[RAM_MAX_LAYERS];   /* their indices, increasing */
    int n_text_prompted;                 /* text blocks with deep prompts */
    int text_layers[RAM_MAX_LAYERS];
    int n_vis_prompts, n_txt_prompts, hidden, gate_kernel;

    ram_tss tss[RAM_MAX_LAYERS];         /* per adapted vision block */
    ram_param *deep_prompts[RAM_MAX_LAYERS]; /* [nc, Wt] per prompted text block */
    ram_param *temperature;              /* [] global-branch temperature */
    ram_param *temperature_loc;          /* [] local-branch temperature */

    ram_param *params;                   /* the table */
    int n_params;
    float *storage;                      /* owns all data (and grads) */
    float *frozen;                       /* owns the conv2_wk of ram_adapter_freeze */
    uint16_t *frozen_bf16;               /* owns the conv1_wb, conv2_wb of ram_adapter_freeze */
} ram_adapter;

/* Loads an adapter file (official names, see golden/README.md) for `clip`.
 * Blocks, prompt counts, hidden width and kernel size come from the tensors;
 * every shape is checked against the CLIP model. with_grads allocates a
 * zeroed gradient beside every trainable tensor. */
ramc_status ram_adapter_load(const char *path, const ramc_clip *clip, int with_grads,
                             ram_adapter **out);
/* Which blocks are adapted and how: everything a new adapter needs. */
typedef struct {
    int n_vision_adapted, vision_layers[RAM_MAX_LAYERS]; /* visual prompts + TSS */
    int n_text_prompted, text_layers[RAM_MAX_LAYERS];    /* deep text prompts */
    int n_vis_prompts;   /* VISION_ADAPT, 8 */
    int n_txt_prompts;   /* TEXT_CTX, 4 */
    int gate_kernel;     /* KERNEL_SIZE, 3 */
    float temperature_loc; /* TEMPERATURE: initial local temperature */
} ram_config;

typedef enum { RAM_PRESET_COCO = 0, RAM_PRESET_NUS = 1 } ram_preset;

/* The official configs (configs/coco.yml, configs/nus.yml) mapped onto the
 * model's depth: COCO adapts the last 3 vision and text blocks, NUS the last
 * 3 vision and 6 text blocks; 8 visual and 4 text prompts; kernel 3; local
 * temperature 2e-3 (COCO) or 2e-4 (NUS). */
ram_config ram_config_preset(ram_preset preset, const ramc_clip_info *info);

/* A new adapter initialised as the official code does (spec §2.6), from a seed. */
ramc_status ram_adapter_create(const ramc_clip *clip, const ram_config *cfg, uint64_t seed,
                               int with_grads, ram_adapter **out);

/* Writes the table (parameters and BN buffers) atomically. */
ramc_status ram_adapter_save(const ram_adapter *a, const char *path);
void ram_adapter_free(ram_adapter *a);
/* Declares the adapter's weights final (an adapter loaded for inference):
 * keeps each TSS 3x3 weight in the order its im2col reads (conv2_wk), so a
 * forward no longer reorders it (at batch 1 that reorder moves as much
 * memory as the convolution's product computes on), and with pack also
 * packs those copies for oneDNN (kernels_freeze_weights; a no-op without
 * it). With bf16 (a model in the bf16 mode) it keeps instead both
 * convolutions' weights in bf16 in that order (conv1_wb, conv2_wb: 7.9 MB
 * per block), which the bf16 TSS would otherwise reorder and convert on
 * every forward. Inference only: training forwards ignore the copies, and
 * changing conv1_w/conv2_w afterwards leaves them stale. ~14 MB per adapted
 * ViT-B/16 block. */
ramc_status ram_adapter_freeze(ram_adapter *a, int pack, int bf16);
ram_param *ram_adapter_find(const ram_adapter *a, const char *name);
/* Index into a->tss / a->deep_prompts of block `layer`, or -1. */
int ram_vision_adapted_index(const ram_adapter *a, int layer);
int ram_text_prompted_index(const ram_adapter *a, int layer);

#endif
