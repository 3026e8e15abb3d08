/* RAM forward passes: the two towers (shared by inference, training, the
 * teacher and plain CLIP), the image features and the matching head.
 *
 * Label features:  ram_encode_text   tokens [C, L]      -> text [C, D]
 * Image features:  ram_vision_forward images [B,3,S,S] -> x, x_loc [B, N1, W]
 *                  ram_image_features  -> img_glb [B, D], img_loc [B, N, D]
 * Matching:        ram_head_forward  -> logits, KCOT plan, scores [B, C]
 */
#ifndef RAMC_RAM_FORWARD_H
#define RAMC_RAM_FORWARD_H

#include "model/clip.h"
#include "ram/kcot.h"
#include "ram/ram.h"
#include "ram/tss.h"

/* ------------------------------------------------------------ the towers
 *
 * One vision tower and one text tower, each a loop over CLIP's blocks
 * (clip_block_forward) with RAM's steps in it: the deep text prompts, the
 * visual prompts, the SAA side stream, the TSS adapters and the partial last
 * block. Inference, training, the teacher, the zero-shot SAA-CLIP and plain
 * CLIP all run these two loops. Each takes an optional record for the
 * backward (llm.c manner): acts == NULL means inference. */

/* What the text tower keeps for the backward: blocks first .. first+n_blocks-1. */
typedef struct {
    int first, n_blocks;
    clip_block_acts *blocks; /* [n_blocks], over R rows in prompted blocks, T elsewhere */
    ramc_arena *arena;       /* where the record lives: set by the caller before
                              * ram_text_tower (NULL: the heap) */
} ram_text_acts;

void ram_text_acts_free(ram_text_acts *acts);

/* Inference scratch of the text tower, for at most n sequences of R rows
 * (R: the prompted blocks' row count). Callers that run the tower many
 * times (in chunks) allocate it once; others pass NULL to the tower. */
typedef struct {
    clip_block_scratch block;
    float *xp; /* [n, R, Wt] the stream with the prompts inserted */
    ramc_arena *arena;
} ram_text_scratch;

ramc_status ram_text_scratch_alloc(ram_text_scratch *s, const ramc_clip *m, int n, int R);
/* The same from arena (NULL: the heap); ram_text_scratch_free gives it back. */
ramc_status ram_text_scratch_alloc_in(ram_text_scratch *s, ramc_arena *arena, const ramc_clip *m,
                                      int n, int R);
void ram_text_scratch_free(ram_text_scratch *s);

/* Rows of a prompted text block for a stream of T rows: the nc prompts go
 * after SOT and the stream is cut at the context length L (spec §4.3). */
int ram_text_prompted_rows(const ramc_clip *m, const ram_adapter *a, int T);

/* Text blocks first .. end-1 on x [n, T, Wt] (in place; the embedded tokens
 * for first = 0), with the adapter's deep prompts in its prompted blocks (a
 * may be NULL: plain CLIP). T may be the context length L, or fewer rows:
 * with the causal mask row t never sees a later one, so the first T rows are
 * exact. A prompted block runs on R = ram_text_prompted_rows rows
 * [x0; P; x[1 : R-nc]]; rows R-nc .. T-1 (only when R = L) skip it, exactly
 * as on the full 77-row stream. acts: NULL, or the record of blocks first..
 * (allocated here, from acts->arena as the caller set it; ram_text_acts_free). scratch: NULL or sized for [n, R].
 * tap ("txt.blk{l}") may be NULL. */
ramc_status ram_text_tower(const ramc_clip *m, const ram_adapter *a, int n, int T, int first,
                           int end, float *x, ram_text_acts *acts, ram_text_scratch *scratch,
                           clip_tap_fn tap, void *tap_user);

/* The prompt rows out again: x [n, T, Wt] <- xp [n, R, Wt]:
 * x[0] = xp[0], x[1 : R-nc] = xp[1+nc : R]; rows R-nc .. T-1 keep theirs.
 * (The backward moves gradients the same way.) */
void ram_text_remove_prompts(float *x, const float *xp, int n, int T, int R, int Wt, int nc);

/* Text tower with the adapter's deep prompts on the full context (a may be
 * NULL: plain CLIP). tokens [n, L] -> x [n, L, Wt] before ln_final. */
ramc_status ram_text_forward(const ramc_clip *m, const ram_adapter *a, const int32_t *tokens,
                             int n, float *x, clip_tap_fn tap, void *tap_user);
/* Plain CLIP's text tower: ram_text_forward without an adapter. */
ramc_status clip_text_forward(const ramc_clip *m, const int32_t *tokens, int n, float *x,
                              clip_tap_fn tap, void *tap_user);
/* Label features [n, D], not normalised: ln_final at EOT and the projection.
 * Without a tap only what the EOT rows depend on is computed: prompts sorted
 * by EOT position, TEXT_FEATURES_CHUNK at a time, each chunk on its first
 * (max EOT) + 1 rows. With a tap, the full stream (ram_text_forward). */
#define TEXT_FEATURES_CHUNK 128
ramc_status ram_encode_text(const ramc_clip *m, const ram_adapter *a, const int32_t *tokens,
                            int n, float *features, clip_tap_fn tap, void *tap_user);

/* Flags of ram_vision_forward. The NO_ flags are the ablations of the
 * paper's Table 6 ("w/o SAA", "w/o TSS"). Without SAA the side stream has no
 * value-value attention of its own: it follows the main stream (the plain
 * CLIP patch tokens), plus the TSS outputs. */
enum {
    RAM_VISION_TRAIN = 1,  /* BatchNorm batch statistics, running-stat update */
    RAM_VISION_NO_SAA = 2,
    RAM_VISION_NO_TSS = 4
};

/* The RAM_VISION_* flags of a variant, for inference (no RAM_VISION_TRAIN). */
int ram_vision_flags(const ramc_variant *v);

/* How the vision tower runs. */
typedef struct {
    const ram_adapter *adapter; /* visual prompts and TSS in its adapted blocks; NULL: none
                                 * (zero-shot SAA-CLIP, the teacher, plain CLIP) */
    const float *text;          /* [C, D] unnormalised label features the TSS attends to */
    int C;
    int side;  /* 1: the side stream x_loc is computed; 0: the main stream only (plain CLIP) */
    int saa;   /* 1: the side stream sums each block's value-value attention; 0: it follows
                * the main stream (paper Table 6, "w/o SAA") */
    int tss;   /* TSS adapters in the adapted blocks ("w/o TSS": 0) */
    int train; /* TSS BatchNorm on batch statistics, running statistics updated */
    /* What the last block computes when it has no adapter and the SAA side
     * stream is on (docs/performance.md): CLIP_BLOCK_CLASS_ROW when only the
     * class token of x is read after it (inference), CLIP_BLOCK_SIDE_ONLY when
     * only x_loc is (the teacher); CLIP_BLOCK_ALL_ROWS otherwise. */
    clip_block_output last;
    ramc_arena *scratch; /* inference scratch (core/arena.h); NULL: the heap */
} ram_vision_opts;

/* What the vision tower keeps for the backward: blocks first .. first+n_blocks-1. */
typedef struct {
    int first, n_blocks;
    clip_block_acts *blocks; /* [n_blocks], over N1 + na rows at adapted blocks */
    tss_acts *tss;           /* [n_blocks], allocated at adapted blocks with TSS only */
    ramc_arena *arena;       /* where the record lives (the tower's o->scratch) */
} ram_vision_acts;

void ram_vision_acts_free(ram_vision_acts *acts);

/* Vision blocks first .. end-1 on the main stream x [B, N1, W] and the side
 * stream x_loc [B, N1, W] (in place; both start as the embedded image,
 * clip_vision_embed, for first = 0; x_loc unused when !o->side). Adapted
 * blocks run on the stream with the visual prompts appended, then the TSS
 * output joins the side stream: x_loc += al + TSS(x). acts: NULL, or the
 * record of blocks first.. (allocated here, from o->scratch when there is
 * one, below the tower's own scratch, so it outlives the call; the record's
 * backward scratch comes from the same arena; ram_vision_acts_free). tap
 * ("vis.blk{l}.x", ".x_loc", ".adapter.*") may be NULL. */
ramc_status ram_vision_tower(const ramc_clip *m, const ram_vision_opts *o, int B, int first,
                             int end, float *x, float *x_loc, ram_vision_acts *acts,
                             clip_tap_fn tap, void *tap_user);
/* Arena bytes of ram_vision_tower at inference (no record). */
size_t ram_vision_tower_bytes(const ramc_clip *m, const ram_vision_opts *o, int B);

/* The whole student vision tower for inference: SAA side stream in every
 * block, visual prompts and TSS in the adapted blocks (a may be NULL: RAM's
 * zero-shot SAA-CLIP). text [C, D] are the unnormalised label features TSS
 * attends to. flags: RAM_VISION_* (0 for inference).
 * x, x_loc [B, N1, W] out: main and side stream after the last block. Only
 * row 0 (the class token) of each image of x is used downstream, and when
 * the last block has no adapter (and no tap asks for it) only that row is
 * computed there: x's other rows then hold the last block's input.
 * scratch: the per-call arena, ram_vision_forward_bytes of it (NULL: the heap). */
ramc_status ram_vision_forward(const ramc_clip *m, ramc_arena *scratch, const ram_adapter *a,
                               const float *images, int B, const float *text, int C, int flags,
                               float *x, float *x_loc, clip_tap_fn tap, void *tap_user);
size_t ram_vision_forward_bytes(const ramc_clip *m, const ram_adapter *a, int B, int C,
                                int flags);

/* img_glb [B, D] = ln_post(x[:, 0]) @ proj; img_loc [B, N, D] = (ln_post(x_loc) @ proj)[:, 1:].
 * scratch: ram_image_features_bytes of the arena (NULL: the heap). */
ramc_status ram_image_features(const ramc_clip *m, ramc_arena *scratch, const float *x,
                               const float *x_loc, int B, float *img_glb, float *img_loc);
size_t ram_image_features_bytes(const ramc_clip_info *in, int B);

/* Plain CLIP's image tokens: images [batch, 3, S, S] -> tokens [batch, N1, D]
 * (ln_post and the projection on every row), scratch from the arena
 * (clip_encode_image_bytes; NULL: the heap). */
ramc_status clip_encode_image(const ramc_clip *m, ramc_arena *scratch, const float *images,
                              int batch, float *tokens);
size_t clip_encode_image_bytes(const ramc_clip *m, int batch);

/* The matching rule, ramc_matching of include/ramc.h, under the names the
 * internal code and its tests use. */
typedef ramc_matching ram_matching;
#define RAM_MATCH_KCOT RAMC_MATCH_KCOT
#define RAM_MATCH_AVGPOOL RAMC_MATCH_AVGPOOL
#define RAM_MATCH_REWEIGHT RAMC_MATCH_REWEIGHT
#define RAM_MATCH_OT RAMC_MATCH_OT

/* Everything the matching head computes, for one batch and one label set. */
typedef struct {
    /* switches, 0 by default (RAM as published); ram_head_set_variant */
    ram_matching matching;       /* RAM_MATCH_OT: KCOT's solver with u = 1/N */
    int uniform_source;          /* 1: u = 1/N instead of LPD ("w/o LPD") */
    int B, N, C, D, max_iter;
    float *g_norm, *g_norms;     /* [B, D], [B]          normalised global features, norms */
    float *f_norm, *f_norms;     /* [B, N, D], [B, N] */
    float *t_norm;               /* [C, D] */
    float *logits_glb, *score_glb; /* [B, C] */
    float *sim;                  /* [B, N, C] cosine similarities */
    float *cost;                 /* [B, N, C] Sinkhorn cost */
    float *u, *r;                /* [B, N]  LPD marginal, row scaling */
    float *v, *c;                /* [B, C]  label marginal, column scaling */
    float *T;                    /* [B, N, C] transport plan (re-weighting: the weights) */
    float *err_hist;             /* [max_iter, B] */
    int *iters;                  /* [B] */
    int batch_iters;
    float *logits_loc, *score_loc, *score; /* [B, C] */
    /* If set, ram_head_forward uses this plan [B, N, C] instead of running
     * Sinkhorn. The plan carries no gradient in RAM, so a finite-difference
     * check of the backward must hold it fixed while perturbing parameters. */
    const float *fixed_plan;
    ramc_arena *arena; /* where storage came from, and Sinkhorn's scratch unless opt names one */
    float *storage;
} ram_head;

/* A head from arena (NULL: the heap), ram_head_bytes of it; Sinkhorn's
 * scratch (sinkhorn_work_bytes) comes from the same arena. */
ramc_status ram_head_alloc(ram_head *h, ramc_arena *arena, int B, int N, int C, int D,
                           int max_iter);
size_t ram_head_bytes(int B, int N, int C, int D, int max_iter);
/* The head's switches of a variant: matching and uniform_source. */
void ram_head_set_variant(ram_head *h, const ramc_variant *v);
void ram_head_free(ram_head *h);

/* logit_scale_exp = exp(CLIP logit_scale); tau_g, tau_l the temperatures;
 * extra_cost [B, N, C] (the teacher term in training) or NULL. */
ramc_status ram_head_forward(ram_head *h, const float *img_glb, const float *img_loc,
                             const float *text, float logit_scale_exp, float tau_g, float tau_l,
                             const float *extra_cost, const sinkhorn_options *opt);

#endif
