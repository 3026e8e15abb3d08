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
    size_t n_storage;            /* floats in storage */
};


/* ---------------------------------------------------------------- taps */

/* Called with named intermediate tensors during a forward pass (for the
 * golden comparison and debugging). Names follow the golden sets:
 * "vis.ln_pre_in", "vis.ln_pre_out", "vis.blk{i}.x", "vis.blk{i}.x_loc",
 * "txt.blk{j}". data is batch-first and contiguous. */
typedef void (*clip_tap_fn)(void *user, const char *name, const float *data, int ndim,
                            const int64_t *shape);

/* ------------------------------------------------------------- forward */

/* Patch embedding + class token + positional embedding, then ln_pre.
 * images [B, 3, S, S]  ->  x [B, N1, W] (after ln_pre).  ln_pre_in [B, N1, W] or NULL. */
ramc_status clip_vision_embed(const ramc_clip *m, const float *images, int B, float *x,
                              float *ln_pre_in);

/* Scratch for vit_block_forward, sized for B items of T rows. */
typedef struct {
    float *h;    /* [B*T, W]   layer-norm output */
    float *qkv;  /* [B*T, 3W] */
    float *attn; /* [B*T, W]   attention output, heads concatenated */
    float *mlp;  /* [B*T, M] */
} clip_block_scratch;

ramc_status clip_block_scratch_alloc(clip_block_scratch *s, int B, int T, int W, int M);
void clip_block_scratch_free(clip_block_scratch *s);

/* A CLIP with every weight drawn from N(0, sigma) with the sigmas of CLIP's
 * own initialisation (LayerNorms 1/0), in one storage allocation; freed with
 * ramc_clip_free. shape needs image_size, patch_size, vision_width/layers/
 * heads/mlp, text_width/layers/heads/mlp, context_length, vocab_size,
 * embed_dim; grid and n_patches are derived, logit_scale set to ln(100). */
ramc_status clip_create_random(const ramc_clip_info *shape, uint64_t seed, ramc_clip **out);

/* Marks the model's weights as frozen, so its linear layers run on packed
 * copies (kernels_freeze_weights), in bf16 if asked. ramc_clip_load does it;
 * a model built to be trained (clip_create_random) is not frozen unless its
 * owner says so. In float32 each packed copy replaces its stored matrix:
 * while frozen, read the blocks' linear weights only through matmul_*, or
 * clip_thaw first (which puts them back, exactly). */
void clip_freeze(const ramc_clip *m, int bf16);
/* Freezes m as ramc_clip_load does for these parameters (pack_weights,
 * bf16); 1 when its linear layers will run packed. */
int clip_pack_as_loaded(const ramc_clip *m, const ramc_clip_params *p);
/* Back to plain sgemm on the original weights; the packed copies are freed. */
void clip_thaw(const ramc_clip *m);

/* One CLIP residual block on the main stream x [B, T, W] (in place), with
 * optional SAA side stream:  if x_loc [B, n_loc, W] is given, the value-value
 * attention of the first n_loc rows (prompt rows excluded) goes through the
 * block's out_proj into side_out [B, n_loc, W] (not yet added: RAM adds the
 * adapter before accumulating, x_loc + (al + adapter)).
 * causal: text blocks. mlp_rows: rows of each item that need the MLP (the
 * rest, e.g. prompt rows about to be dropped, skip it); pass T for all. */
void clip_block_forward(const clip_block *w, int W, int M, int n_heads, float *x, int B, int T,
                        int causal, float *side_out, int n_loc, int mlp_rows,
                        clip_block_scratch *s);

/* A last block whose main stream only matters at the class token (RAM
 * without an adapter in that block: the local features come from the side
 * stream): side_out as clip_block_forward, but only row 0 of each item of x
 * is updated; the other rows keep the block's input. The MLP and the main
 * attention's queries run on B rows instead of B*T. Needs T >= 2. */
void clip_block_forward_cls(const clip_block *w, int W, int M, int n_heads, float *x, int B,
                            int T, float *side_out, int n_loc, clip_block_scratch *s);

/* Only the SAA side stream of a block, for a last block whose main stream
 * nobody reads (RAM's teacher): side_out [B, n_loc, W] as clip_block_forward
 * computes it, x [B, T, W] left as it is. Projects only the value rows of the
 * QKV weight and skips the main attention and the MLP (~80% of a block). */
void clip_block_side_forward(const clip_block *w, int W, int n_heads, const float *x, int B,
                             int T, float *side_out, int n_loc, clip_block_scratch *s);

/* The whole vision tower without adapters (frozen CLIP, or RAM's teacher):
 * images [B,3,S,S] -> x [B, N1, W] main stream after the last block (before
 * ln_post); with saa != 0 also x_loc [B, N1, W], the side stream that sums the
 * value-value attention of every block. tap may be NULL. */
ramc_status clip_vision_forward(const ramc_clip *m, const float *images, int B, int saa,
                                float *x, float *x_loc, clip_tap_fn tap, void *tap_user);

/* ln_post then @ proj: x [rows, W] -> out [rows, D]. */
ramc_status clip_vision_project(const ramc_clip *m, const float *x, int rows, float *out);

/* Every id of tokens [n, L] inside the model's vocabulary; the error names
 * the weights file. */
ramc_status clip_check_tokens(const ramc_clip *m, const int32_t *tokens, int n);

/* Token + positional embedding of the first T positions of each sequence:
 * ids [n, ld] (row stride ld >= T) -> x [n, T, Wt]. Ids must be checked. */
void clip_text_embed(const ramc_clip *m, const int32_t *ids, int n, int T, int ld, float *x);

/* Text tower without prompts: tokens [n, L] -> x [n, L, Wt] after the last
 * block (before ln_final). tap may be NULL. */
ramc_status clip_text_forward(const ramc_clip *m, const int32_t *tokens, int n, float *x,
                              clip_tap_fn tap, void *tap_user);

/* ln_final at each sequence's EOT (argmax of its tokens) then @ text_projection:
 * x [n, L, Wt] -> features [n, D]. */
ramc_status clip_text_project(const ramc_clip *m, const int32_t *tokens, const float *x, int n,
                              float *features);

/* The EOT position of one sequence of L ids: argmax (first maximum, as torch). */
int clip_eot_position(const int32_t *ids, int L);

/* Text features [n, D] (ln_final at EOT then @ text_projection, not
 * normalised), computing only what the EOT rows depend on. With a causal mask
 * a position never sees the ones after it, so each batch of prompts runs on
 * its first T = (max EOT) + 1 rows only; prompts are sorted by EOT position
 * and encoded TEXT_FEATURES_CHUNK at a time (bounded scratch for any n).
 * deep_prompts: NULL (plain CLIP) or [text_layers] pointers, each NULL or
 * nc x Wt deep prompts of that block (spec §4.3: inserted after SOT, rounded
 * to fp16; the block then runs on min(T + nc, L) rows, and when T + nc > L the
 * rows L-nc.. skip the block exactly as on the full 77-row stream).
 * Same values as clip_text_forward/ram_text_forward + clip_text_project up to
 * float rounding (GEMM shapes differ); no taps. */
#define TEXT_FEATURES_CHUNK 128
ramc_status clip_text_features(const ramc_clip *m, const int32_t *tokens, int n,
                               const float *const *deep_prompts, int nc, float *features);

/* ------------------------------------------------------------- training */

/* What one block's forward keeps for its backward (B items of T rows; the
 * side stream, if any, over the first n_loc rows). */
typedef struct {
    int B, T, W, M, n_heads, causal, n_loc;
    float *x_in;                 /* [B, T, W]  block input */
    float *ln1_mean, *ln1_rstd;  /* [B*T] */
    float *h;                    /* [B*T, W]   ln_1 output */
    float *qkv;                  /* [B*T, 3W] */
    float *probs;                /* [B, heads, T, T] */
    float *attn;                 /* [B*T, W]   before out_proj */
    float *x_mid;                /* [B, T, W]  after the attention residual */
    float *ln2_mean, *ln2_rstd;  /* [B*T] */
    float *h2;                   /* [B*T, W]   ln_2 output */
    float *fc;                   /* [B*T, M]   c_fc output (QuickGELU input) */
    float *act;                  /* [B*T, M]   QuickGELU output */
    float *side_probs;           /* [B, heads, n_loc, n_loc] value-value attention */
    float *side_attn;            /* [B*n_loc, W] before out_proj */
    float *storage;
} clip_block_acts;

ramc_status clip_block_acts_alloc(clip_block_acts *a, int B, int T, int W, int M, int n_heads,
                                  int causal, int n_loc);
void clip_block_acts_free(clip_block_acts *a);

/* As clip_block_forward (MLP on every row), keeping activations in `a`.
 * x [B, T, W] in place; side_out [B, n_loc, W] or NULL when a->n_loc == 0. */
void clip_block_forward_train(const clip_block *w, clip_block_acts *a, float *x, float *side_out);

/* Backward of one block: dx [B, T, W] holds d(output) on entry and
 * d(input) on return; dside [B, n_loc, W] is d(side_out) or NULL.
 * grads: NULL for frozen weights (RAM), or a block of the same shapes whose
 * pointers lead to writable gradient buffers; the weight gradients are then
 * ACCUMULATED (+=) into them, as the kernels do. */
ramc_status clip_block_backward(const clip_block *w, const clip_block_acts *a, float *dx,
                                const float *dside, clip_block *grads);

#endif
