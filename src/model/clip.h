/* The CLIP ViT model: weights, loading and the forward of each layer
 * (patch embedding, residual block, heads). The towers that chain the
 * layers, with RAM's prompts and adapters, are src/ram/ram_forward.h: this
 * file knows nothing of them.
 *
 * The model is immutable once loaded. Forward functions take scratch
 * memory from the call (allocated and freed inside), never from the model.
 */
#ifndef RAMC_MODEL_CLIP_H
#define RAMC_MODEL_CLIP_H

#include "ramc.h"
#include "core/arena.h"
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

/* The model's layers, one forward each; the towers that chain them (with
 * RAM's prompts, side stream and adapters) are src/ram/ram_forward.c. Every
 * forward takes an optional record of what its backward needs: NULL means
 * inference. */

/* Patch embedding + class token + positional embedding, then ln_pre.
 * images [B, 3, S, S]  ->  x [B, N1, W] (after ln_pre).
 * ln_pre_in [B, N1, W], ln_pre_mean, ln_pre_rstd [B*N1]: kept for a
 * backward or a tap when given, each may be NULL. Scratch from arena (may
 * be NULL: the heap), clip_vision_embed_bytes of it. */
ramc_status clip_vision_embed(const ramc_clip *m, ramc_arena *arena, const float *images, int B,
                              float *x, float *ln_pre_in, float *ln_pre_mean, float *ln_pre_rstd);
size_t clip_vision_embed_bytes(const ramc_clip_info *in, int B);

/* Scratch for clip_block_forward, sized for B items of T rows, from the
 * per-call arena (core/arena.h; NULL: the heap). */
typedef struct {
    ramc_arena *arena;
    float *h;     /* [B*T, W]   layer-norm output */
    float *qkv;   /* [B*T, 3W] */
    float *attn;  /* [B*T, W]   attention output, heads concatenated */
    float *mlp;   /* [B*T, M] */
    /* no attention scratch: the fused kernel keeps its tiles on the stack */
} clip_block_scratch;

ramc_status clip_block_scratch_alloc(clip_block_scratch *s, ramc_arena *arena, int B, int T,
                                     int W, int M);
/* Arena bytes of clip_block_scratch_alloc for these shapes. */
size_t clip_block_scratch_bytes(int B, int T, int W, int M);
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
/* Training's view of the frozen CLIP (RAM's adapter and prompts are what is
 * trained; `ramc pretrain-clip` trains the CLIP itself and keeps it thawed).
 * float32: thawed, plain sgemm on the stored matrices (packing the frozen
 * prefix measured no faster for a step and cost +330 MB at batch 8,
 * docs/performance.md). bf16 (`ramc train --bf16`): every vision block's
 * linear layers in bf16 with float32 sums, forwards and the input gradients
 * through the adapted blocks, one frozen range per block (clip_thaw drops
 * them all); the text tower and the adapter's own products stay float32. */
void clip_freeze_for_training(const ramc_clip *m, int bf16);

/* What of a block's output its caller reads. The two partial forms are the
 * optimisations of a last block (docs/performance.md): RAM's student reads
 * only the class token of the main stream there, its teacher only the side
 * stream. */
typedef enum {
    CLIP_BLOCK_ALL_ROWS = 0,  /* every row of x is updated */
    CLIP_BLOCK_CLASS_ROW = 1, /* only row 0 of each item of x is updated, the other rows keep
                               * the block's input; the main attention's queries, the
                               * out-projection and the MLP run on B rows instead of B*T */
    CLIP_BLOCK_SIDE_ONLY = 2  /* x is left as it is: only side_out, from the value rows of
                               * in_proj alone (~80% of a block skipped) */
} clip_block_output;

/* The shape of one block call. */
typedef struct {
    int B, T;          /* items, rows per item: x is [B, T, W] */
    int W, M, n_heads; /* width, MLP width, attention heads */
    int causal;        /* text blocks */
    int n_loc;         /* SAA side stream over the first n_loc rows of each item; 0: none */
    int mlp_rows;      /* rows of each item that need the MLP (the rest, e.g. prompt rows about
                        * to be dropped, skip it); T for all. Ignored with a record (the
                        * backward reads every row). */
    clip_block_output output;
} clip_block_shape;

/* What one block's forward keeps for its backward (B items of T rows; the
 * side stream, if any, over the first n_loc rows). */
typedef struct {
    int B, T, W, M, n_heads, causal, n_loc;
    float *x_in;                 /* [B, T, W]  block input */
    float *ln1_mean, *ln1_rstd;  /* [B*T] */
    float *h;                    /* [B*T, W]   ln_1 output */
    float *qkv;                  /* [B*T, 3W] */
    float *lse;                  /* [B, heads, T] log-sum-exp per query row (the fused
                                  * backward recomputes the probabilities from it) */
    float *attn;                 /* [B*T, W]   before out_proj */
    float *x_mid;                /* [B, T, W]  after the attention residual */
    float *ln2_mean, *ln2_rstd;  /* [B*T] */
    float *h2;                   /* [B*T, W]   ln_2 output */
    float *fc;                   /* [B*T, M]   c_fc output (QuickGELU input) */
    float *act;                  /* [B*T, M]   QuickGELU output */
    float *side_lse;             /* [B, heads, n_loc] value-value attention's log-sum-exp */
    float *side_attn;            /* [B*n_loc, W] before out_proj */
    float *storage;
    ramc_arena *arena;           /* where storage lives, and where clip_block_backward takes
                                  * its scratch (NULL: the heap) */
} clip_block_acts;

/* Room for a block of at most B items of T rows (the record of a smaller call
 * uses the front). */
ramc_status clip_block_acts_alloc(clip_block_acts *a, int B, int T, int W, int M, int n_heads,
                                  int causal, int n_loc);
/* The same, taken from arena (NULL: the heap), which the backward then also
 * uses for its scratch (given back before it returns). */
ramc_status clip_block_acts_alloc_in(clip_block_acts *a, ramc_arena *arena, int B, int T, int W,
                                     int M, int n_heads, int causal, int n_loc);
void clip_block_acts_free(clip_block_acts *a);

/* One CLIP residual block on the main stream x [B, T, W] (in place), with
 * the optional SAA side stream: with sh->n_loc > 0 the value-value attention
 * of the first n_loc rows (prompt rows excluded) goes through the block's
 * out_proj into side_out [B, n_loc, W] (not added to anything: RAM adds the
 * adapter before accumulating, x_loc + (al + adapter)).
 * acts: NULL for inference (then s is the scratch), or the record for
 * clip_block_backward (then sh->output must be CLIP_BLOCK_ALL_ROWS and s is
 * not used). */
void clip_block_forward(const clip_block *w, const clip_block_shape *sh, float *x,
                        float *side_out, clip_block_scratch *s, clip_block_acts *acts);

/* Backward of one block: dx [B, T, W] holds d(output) on entry and
 * d(input) on return; dside [B, n_loc, W] is d(side_out) or NULL.
 * grads: NULL for frozen weights (RAM), or a block of the same shapes whose
 * pointers lead to writable gradient buffers; the weight gradients are then
 * ACCUMULATED (+=) into them, as the kernels do. */
ramc_status clip_block_backward(const clip_block *w, const clip_block_acts *a, float *dx,
                                const float *dside, clip_block *grads);

/* The vision head: ln_post then @ proj, x [rows, W] -> out [rows, D].
 * ln_mean, ln_rstd [rows] and h [rows, W] (the ln_post output) are kept for a
 * backward when given; each may be NULL. Without h, [rows, W] of scratch
 * from arena (may be NULL: the heap). */
ramc_status clip_vision_project(const ramc_clip *m, ramc_arena *arena, const float *x, int rows,
                                float *out, float *ln_mean, float *ln_rstd, float *h);

/* Every id of tokens [n, L] inside the model's vocabulary; the error names
 * the weights file. */
ramc_status clip_check_tokens(const ramc_clip *m, const int32_t *tokens, int n);

/* Token + positional embedding of the first T positions of each sequence:
 * ids [n, ld] (row stride ld >= T) -> x [n, T, Wt]. Ids must be checked. */
void clip_text_embed(const ramc_clip *m, const int32_t *ids, int n, int T, int ld, float *x);

/* The text head: ln_final at each sequence's EOT row, then @ text_projection.
 * x [n, T, Wt] (the stream after the last block, T rows a sequence),
 * eot [n] rows within T -> features [n, D] (not normalised). xe [n, Wt]
 * (the gathered EOT rows), ln_mean, ln_rstd [n] and h [n, Wt] (the ln_final
 * output) are kept for a backward when given; each may be NULL. */
ramc_status clip_text_head(const ramc_clip *m, const float *x, int n, int T, const int *eot,
                           float *features, float *xe, float *ln_mean, float *ln_rstd, float *h);

/* clip_text_head on the full stream x [n, L, Wt] of tokens [n, L]. */
ramc_status clip_text_project(const ramc_clip *m, const int32_t *tokens, const float *x, int n,
                              float *features);

/* The EOT position of one sequence of L ids: argmax (first maximum, as torch). */
int clip_eot_position(const int32_t *ids, int L);

#endif
