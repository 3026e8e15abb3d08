/* RAM inference forward: label features with deep prompts, the student
 * vision tower with the Ladder Local Adapter, and the KCOT head. */
#include "ram/ram_forward.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/half.h"
#include "kernels/kernels.h"
#include "ram/kcot.h"
#include "ram/tss.h"

#define L2_EPS 1e-12f

static void tap3(clip_tap_fn tap, void *user, const char *name, const float *data, int64_t d0,
                 int64_t d1, int64_t d2) {
    if (!tap) return;
    int64_t shape[3] = {d0, d1, d2};
    tap(user, name, data, 3, shape);
}

/* ------------------------------------------------------------------ text */

void ram_text_acts_free(ram_text_acts *acts) {
    if (!acts) return;
    if (acts->blocks)
        for (int i = 0; i < acts->n_blocks; i++) clip_block_acts_free(&acts->blocks[i]);
    arena_free(acts->arena, acts->blocks);
    memset(acts, 0, sizeof *acts);
}

ramc_status ram_text_scratch_alloc(ram_text_scratch *s, const ramc_clip *m, int n, int R) {
    return ram_text_scratch_alloc_in(s, NULL, m, n, R);
}

ramc_status ram_text_scratch_alloc_in(ram_text_scratch *s, ramc_arena *arena, const ramc_clip *m,
                                      int n, int R) {
    const int Wt = m->info.text_width;
    memset(s, 0, sizeof *s);
    s->arena = arena;
    s->xp = arena_alloc(arena, (size_t)n * R * Wt * sizeof(float), "prompted text stream");
    if (!s->xp) return RAMC_ERR_NOMEM;
    ramc_status st =
        clip_block_scratch_alloc(&s->block, arena, n, R, Wt, m->info.text_mlp);
    if (st) ram_text_scratch_free(s);
    return st;
}

void ram_text_scratch_free(ram_text_scratch *s) {
    clip_block_scratch_free(&s->block);
    arena_free(s->arena, s->xp);
    memset(s, 0, sizeof *s);
}

int ram_text_prompted_rows(const ramc_clip *m, const ram_adapter *a, int T) {
    const int L = m->info.context_length;
    if (!a || !a->n_text_prompted) return T;
    return T + a->n_txt_prompts < L ? T + a->n_txt_prompts : L;
}

/* x [n, T, Wt] -> xp [n, R, Wt] = [x0; P; x[1 : R-nc]], the prompts P [nc, Wt]
 * rounded to fp16 as the official .half() (rounded once, into the first
 * sequence, and copied from there). */
static void text_insert_prompts(float *xp, const float *x, const float *prompts, int n, int T,
                                int R, int Wt, int nc) {
    for (int q = 0; q < n; q++) {
        const float *xq = x + (size_t)q * T * Wt;
        float *pq = xp + (size_t)q * R * Wt;
        memcpy(pq, xq, (size_t)Wt * sizeof(float));
        if (q == 0)
            for (int i = 0; i < nc * Wt; i++) pq[Wt + i] = round_to_f16(prompts[i]);
        else
            memcpy(pq + Wt, xp + Wt, (size_t)nc * Wt * sizeof(float));
        memcpy(pq + (size_t)(1 + nc) * Wt, xq + Wt, (size_t)(R - 1 - nc) * Wt * sizeof(float));
    }
}

void ram_text_remove_prompts(float *x, const float *xp, int n, int T, int R, int Wt, int nc) {
    for (int q = 0; q < n; q++) {
        float *xq = x + (size_t)q * T * Wt;
        const float *pq = xp + (size_t)q * R * Wt;
        memcpy(xq, pq, (size_t)Wt * sizeof(float));
        memcpy(xq + Wt, pq + (size_t)(1 + nc) * Wt, (size_t)(R - 1 - nc) * Wt * sizeof(float));
    }
}

ramc_status ram_text_tower(const ramc_clip *m, const ram_adapter *a, int n, int T, int first,
                           int end, float *x, ram_text_acts *acts, ram_text_scratch *scratch,
                           clip_tap_fn tap, void *tap_user) {
    const ramc_clip_info *in = &m->info;
    const int Wt = in->text_width, M = in->text_mlp;
    const int nc = a && a->n_text_prompted ? a->n_txt_prompts : 0;
    const int R = ram_text_prompted_rows(m, a, T);
    char name[64];
    ramc_status st = RAMC_OK;
    ram_text_scratch own = {0}; /* with a record, only the prompted stream */
    /* the record first, so that the scratch above it is given back at the end */
    ramc_arena *arena = acts ? acts->arena : NULL;
    if (acts) {
        memset(acts, 0, sizeof *acts);
        acts->arena = arena;
        acts->first = first, acts->n_blocks = end - first;
        if (!(acts->blocks = arena_calloc(arena, (size_t)acts->n_blocks + 1, sizeof *acts->blocks,
                                          "text")))
            return RAMC_ERR_NOMEM;
        for (int l = first; l < end; l++) {
            const int rows = a && ram_text_prompted_index(a, l) >= 0 ? R : T;
            if ((st = clip_block_acts_alloc_in(&acts->blocks[l - first], arena, n, rows, Wt, M,
                                               in->text_heads, 1, 0)))
                return st;
        }
    }
    const size_t mark = arena_mark(arena);
    if (!scratch) {
        if (acts) {
            own.arena = arena;
            own.xp = nc ? arena_alloc(arena, (size_t)n * R * Wt * sizeof(float), "prompted text")
                        : NULL;
            st = nc && !own.xp ? RAMC_ERR_NOMEM : RAMC_OK;
        } else {
            st = ram_text_scratch_alloc(&own, m, n, R);
        }
        if (st) return st;
    }
    ram_text_scratch *ws = scratch ? scratch : &own;
    for (int l = first; l < end; l++) {
        const int j = a ? ram_text_prompted_index(a, l) : -1;
        const int rows = j >= 0 ? R : T;
        clip_block_acts *ba = acts ? &acts->blocks[l - first] : NULL;
        const clip_block_shape sh = {.B = n, .T = rows, .W = Wt, .M = M, .n_heads = in->text_heads,
                                     .causal = 1, .mlp_rows = rows};
        if (j >= 0) {
            text_insert_prompts(ws->xp, x, a->deep_prompts[j]->data, n, T, R, Wt, nc);
            clip_block_forward(&m->txt_blocks[l], &sh, ws->xp, NULL, &ws->block, ba);
            ram_text_remove_prompts(x, ws->xp, n, T, R, Wt, nc);
        } else {
            clip_block_forward(&m->txt_blocks[l], &sh, x, NULL, &ws->block, ba);
        }
        snprintf(name, sizeof name, "txt.blk%d", l);
        tap3(tap, tap_user, name, x, n, T, Wt);
    }
    ram_text_scratch_free(&own);
    arena_reset(arena, mark);
    return st;
}

ramc_status ram_text_forward(const ramc_clip *m, const ram_adapter *a, const int32_t *tokens,
                             int n, float *x, clip_tap_fn tap, void *tap_user) {
    const int L = m->info.context_length;
    ramc_status st = clip_check_tokens(m, tokens, n);
    if (st != RAMC_OK) return st;
    clip_text_embed(m, tokens, n, L, L, x);
    return ram_text_tower(m, a, n, L, 0, m->info.text_layers, x, NULL, NULL, tap, tap_user);
}

ramc_status clip_text_forward(const ramc_clip *m, const int32_t *tokens, int n, float *x,
                              clip_tap_fn tap, void *tap_user) {
    return ram_text_forward(m, NULL, tokens, n, x, tap, tap_user);
}

typedef struct {
    int eot, index;
} eot_key;

static int eot_key_cmp(const void *pa, const void *pb) {
    const eot_key *a = pa, *b = pb;
    if (a->eot != b->eot) return a->eot < b->eot ? -1 : 1;
    return a->index < b->index ? -1 : a->index > b->index;
}

/* ram_encode_text without taps: the prompts sorted by EOT position, encoded
 * TEXT_FEATURES_CHUNK at a time (bounded scratch for any n), each chunk on
 * the rows up to its longest EOT. */
static ramc_status text_features_eot_rows(const ramc_clip *m, const ram_adapter *a,
                                          const int32_t *tokens, int n, float *features) {
    const ramc_clip_info *in = &m->info;
    const int Wt = in->text_width, L = in->context_length, D = in->embed_dim;
    eot_key *keys = ramc_malloc((size_t)n * sizeof *keys, "text order");
    if (!keys) return RAMC_ERR_NOMEM;
    int Tmax = 1;
    for (int q = 0; q < n; q++) {
        keys[q].eot = clip_eot_position(tokens + (size_t)q * L, L);
        keys[q].index = q;
        if (keys[q].eot + 1 > Tmax) Tmax = keys[q].eot + 1;
    }
    qsort(keys, (size_t)n, sizeof *keys, eot_key_cmp);

    const int chunk = n < TEXT_FEATURES_CHUNK ? n : TEXT_FEATURES_CHUNK;
    ramc_status st = RAMC_OK;
    ram_text_scratch ws = {0};
    float *x = ramc_malloc((size_t)chunk * Tmax * Wt * sizeof(float), "text stream");
    float *out = ramc_malloc((size_t)chunk * D * sizeof(float), "text features");
    int32_t *ids = ramc_malloc((size_t)chunk * Tmax * sizeof(int32_t), "text ids");
    int *eot = ramc_malloc((size_t)chunk * sizeof(int), "EOT positions");
    if (!x || !out || !ids || !eot) {
        st = RAMC_ERR_NOMEM;
        goto done;
    }
    if ((st = ram_text_scratch_alloc(&ws, m, chunk, ram_text_prompted_rows(m, a, Tmax)))) goto done;

    for (int first = 0; first < n && st == RAMC_OK; first += chunk) {
        const int k = n - first < chunk ? n - first : chunk;
        const eot_key *kk = keys + first;
        const int T = kk[k - 1].eot + 1; /* sorted: the chunk's longest */
        for (int q = 0; q < k; q++) {
            memcpy(ids + (size_t)q * T, tokens + (size_t)kk[q].index * L, (size_t)T * sizeof(int32_t));
            eot[q] = kk[q].eot;
        }
        clip_text_embed(m, ids, k, T, T, x);
        st = ram_text_tower(m, a, k, T, 0, in->text_layers, x, NULL, &ws, NULL, NULL);
        if (st == RAMC_OK) st = clip_text_head(m, x, k, T, eot, out, NULL, NULL, NULL, NULL);
        if (st == RAMC_OK)
            for (int q = 0; q < k; q++)
                memcpy(features + (size_t)kk[q].index * D, out + (size_t)q * D,
                       (size_t)D * sizeof(float));
    }
done:
    ram_text_scratch_free(&ws);
    free(keys);
    free(x);
    free(out);
    free(ids);
    free(eot);
    return st;
}

ramc_status ram_encode_text(const ramc_clip *m, const ram_adapter *a, const int32_t *tokens,
                            int n, float *features, clip_tap_fn tap, void *tap_user) {
    const ramc_clip_info *in = &m->info;
    ramc_status st = clip_check_tokens(m, tokens, n);
    if (st != RAMC_OK || n <= 0) return st;
    if (!tap) return text_features_eot_rows(m, a, tokens, n, features);
    /* the full 77-row stream, for the taps of the golden check */
    float *x = ramc_malloc((size_t)n * in->context_length * in->text_width * sizeof(float), "text");
    if (!x) return RAMC_ERR_NOMEM;
    st = ram_text_forward(m, a, tokens, n, x, tap, tap_user);
    if (st == RAMC_OK) st = clip_text_project(m, tokens, x, n, features);
    free(x);
    return st;
}

/* ---------------------------------------------------------------- vision */

static void tap_tss(clip_tap_fn tap, void *user, int layer, const tss_acts *t) {
    if (!tap) return;
    char name[96];
    const int64_t B = t->B, H = t->H, g = t->g, N = t->N;
    int64_t chw[4] = {B, H, g, g}, two[4] = {B, 2, g, g}, tok[3] = {B, N, H},
            out[3] = {B, N + 1, t->W};
#define TAP(suffix, data, nd, shape)                                              \
    snprintf(name, sizeof name, "vis.blk%d.adapter." suffix, layer);            \
    tap(user, name, data, nd, shape)
    TAP("s1", t->s[0], 4, chw);
    TAP("s2", t->s[1], 4, chw);
    TAP("cattn1", t->cattn[0], 3, tok);
    TAP("cattn2", t->cattn[1], 3, tok);
    TAP("pool", t->pool, 4, two);
    TAP("gate_logits", t->gate_logits, 4, two);
    TAP("fused", t->fused, 4, chw);
    TAP("out", t->out, 3, out);
#undef TAP
}

void ram_vision_acts_free(ram_vision_acts *acts) {
    if (!acts) return;
    for (int i = 0; i < acts->n_blocks; i++) {
        if (acts->blocks) clip_block_acts_free(&acts->blocks[i]);
        if (acts->tss) tss_acts_free(&acts->tss[i]);
    }
    arena_free(acts->arena, acts->blocks);
    arena_free(acts->arena, acts->tss);
    memset(acts, 0, sizeof *acts);
}

ramc_status ram_vision_tower(const ramc_clip *m, const ram_vision_opts *o, int B, int first,
                             int end, float *x, float *x_loc, ram_vision_acts *acts,
                             clip_tap_fn tap, void *tap_user) {
    const ramc_clip_info *in = &m->info;
    const ram_adapter *a = o->adapter;
    const int W = in->vision_width, M = in->vision_mlp, N1 = in->n_patches + 1;
    const int na = a ? a->n_vis_prompts : 0, T = N1 + na;
    const int n_loc = o->side && o->saa ? N1 : 0; /* rows of the value-value attention */
    const int use_tss = a && a->n_vision_adapted && o->tss;
    const size_t stream = (size_t)B * N1 * W;
    char name[64];
    ramc_status st = RAMC_OK;
    ramc_arena *arena = o->scratch;
    /* the record first, so that the scratch above it is given back at the end */
    if (acts) {
        memset(acts, 0, sizeof *acts);
        acts->arena = arena;
        acts->first = first, acts->n_blocks = end - first;
        acts->blocks = arena_calloc(arena, (size_t)acts->n_blocks + 1, sizeof *acts->blocks,
                                    "vision");
        acts->tss = arena_calloc(arena, (size_t)acts->n_blocks + 1, sizeof *acts->tss, "vision");
        if (!acts->blocks || !acts->tss) return RAMC_ERR_NOMEM;
        for (int l = first; l < end; l++) {
            const int v = a ? ram_vision_adapted_index(a, l) : -1;
            if ((st = clip_block_acts_alloc_in(&acts->blocks[l - first], arena, B,
                                               v >= 0 ? T : N1, W, M, in->vision_heads, 0, n_loc)))
                return st;
            if (v >= 0 && o->side && o->tss &&
                (st = tss_acts_alloc(&acts->tss[l - first], arena, B, in->grid, W, a->hidden, o->C,
                                     a->gate_kernel)))
                return st;
        }
    }
    const size_t mark = arena_mark(arena);
    float *side = o->side ? arena_alloc(arena, stream * sizeof(float), "side stream") : NULL;
    float *xp = na ? arena_alloc(arena, (size_t)B * T * W * sizeof(float), "prompted stream") : NULL;
    clip_block_scratch s = {0};
    tss_acts tss_scratch = {0}; /* inference: one for every adapted block */
    if ((o->side && !side) || (na && !xp)) {
        st = RAMC_ERR_NOMEM;
        goto done;
    }
    if (!acts) {
        if ((st = clip_block_scratch_alloc(&s, arena, B, T, W, M))) goto done;
        if (use_tss && (st = tss_acts_alloc(&tss_scratch, arena, B, in->grid, W, a->hidden, o->C,
                                            a->gate_kernel)))
            goto done;
    }

    for (int l = first; l < end; l++) {
        const int v = a ? ram_vision_adapted_index(a, l) : -1;
        clip_block_acts *ba = acts ? &acts->blocks[l - first] : NULL;
        clip_block_shape sh = {.B = B, .T = v >= 0 ? T : N1, .W = W, .M = M,
                               .n_heads = in->vision_heads, .n_loc = n_loc, .mlp_rows = N1};
        if (l == in->vision_layers - 1 && v < 0 && n_loc) sh.output = o->last;
        if (o->side && !o->saa) memcpy(side, x, stream * sizeof(float));

        if (v < 0) {
            clip_block_forward(&m->vis_blocks[l], &sh, x, side, &s, ba);
        } else {
            /* visual prompts appended after the patches, rounded to fp16 as
             * .half(); their rows are dropped after the block */
            const float *prompts = a->tss[v].prompts->data;
            for (int b = 0; b < B; b++) {
                float *pb = xp + (size_t)b * T * W;
                memcpy(pb, x + (size_t)b * N1 * W, (size_t)N1 * W * sizeof(float));
                for (int i = 0; i < na * W; i++) pb[(size_t)N1 * W + i] = round_to_f16(prompts[i]);
            }
            clip_block_forward(&m->vis_blocks[l], &sh, xp, side, &s, ba);
            for (int b = 0; b < B; b++)
                memcpy(x + (size_t)b * N1 * W, xp + (size_t)b * T * W,
                       (size_t)N1 * W * sizeof(float));
        }
        snprintf(name, sizeof name, "vis.blk%d.x", l);
        tap3(tap, tap_user, name, x, B, N1, W);
        if (!o->side) continue;

        /* side stream: x_loc += al (+ TSS(x) in an adapted block), where al
         * is the value-value attention, or without SAA the main stream's
         * change in this block */
        if (!o->saa)
            for (size_t i = 0; i < stream; i++) side[i] = x[i] - side[i];
        if (v >= 0 && o->tss) {
            tss_acts *t = acts ? &acts->tss[l - first] : &tss_scratch;
            /* a CLIP frozen in bf16 (ramc_clip_params.bf16) takes its
             * adapters' inference along */
            t->bf16 = !acts && !o->train && kernels_weights_bf16(m->vis_blocks[l].qkv_w);
            tss_forward(&a->tss[v], t, x, o->text, o->train);
            tap_tss(tap, tap_user, l, t);
            for (size_t i = 0; i < stream; i++) x_loc[i] += side[i] + t->out[i];
        } else {
            for (size_t i = 0; i < stream; i++) x_loc[i] += side[i];
        }
        snprintf(name, sizeof name, "vis.blk%d.x_loc", l);
        tap3(tap, tap_user, name, x_loc, B, N1, W);
    }
done:
    tss_acts_free(&tss_scratch);
    clip_block_scratch_free(&s);
    arena_free(arena, side);
    arena_free(arena, xp);
    arena_reset(arena, mark);
    return st;
}

size_t ram_vision_tower_bytes(const ramc_clip *m, const ram_vision_opts *o, int B) {
    const ramc_clip_info *in = &m->info;
    const ram_adapter *a = o->adapter;
    const int W = in->vision_width, N1 = in->n_patches + 1;
    const int na = a ? a->n_vis_prompts : 0, T = N1 + na;
    size_t bytes = clip_block_scratch_bytes(B, T, W, in->vision_mlp);
    if (o->side) bytes += arena_size((size_t)B * N1 * W * sizeof(float));
    if (na) bytes += arena_size((size_t)B * T * W * sizeof(float));
    if (a && a->n_vision_adapted && o->tss)
        bytes += tss_acts_bytes(B, in->grid, W, a->hidden, o->C, a->gate_kernel);
    return bytes;
}

int ram_vision_flags(const ramc_variant *v) {
    return (v->no_saa ? RAM_VISION_NO_SAA : 0) | (v->no_tss ? RAM_VISION_NO_TSS : 0);
}

static ram_vision_opts inference_opts(const ram_adapter *a, const float *text, int C, int flags,
                                      int tapped, ramc_arena *scratch) {
    const ram_vision_opts o = {
        .adapter = a, .text = text, .C = C, .side = 1,
        .saa = !(flags & RAM_VISION_NO_SAA), .tss = !(flags & RAM_VISION_NO_TSS),
        .train = !!(flags & RAM_VISION_TRAIN),
        /* only x's class token is read after the last block, unless a tap
         * wants the whole stream */
        .last = tapped ? CLIP_BLOCK_ALL_ROWS : CLIP_BLOCK_CLASS_ROW,
        .scratch = scratch};
    return o;
}

size_t ram_vision_forward_bytes(const ramc_clip *m, const ram_adapter *a, int B, int C,
                                int flags) {
    const ram_vision_opts o = inference_opts(a, NULL, C, flags, 0, NULL);
    const size_t embed = clip_vision_embed_bytes(&m->info, B);
    const size_t tower = ram_vision_tower_bytes(m, &o, B);
    return embed > tower ? embed : tower;
}

ramc_status ram_vision_forward(const ramc_clip *m, ramc_arena *scratch, const ram_adapter *a,
                               const float *images, int B, const float *text, int C, int flags,
                               float *x, float *x_loc, clip_tap_fn tap, void *tap_user) {
    const ramc_clip_info *in = &m->info;
    const int W = in->vision_width, N1 = in->n_patches + 1;
    const size_t stream = (size_t)B * N1 * W;
    const ram_vision_opts o = inference_opts(a, text, C, flags, tap != NULL, scratch);
    float *pre = tap ? ramc_malloc(stream * sizeof(float), "ln_pre input") : NULL;
    if (tap && !pre) return RAMC_ERR_NOMEM;
    ramc_status st = clip_vision_embed(m, scratch, images, B, x, pre, NULL, NULL);
    if (st == RAMC_OK) {
        tap3(tap, tap_user, "vis.ln_pre_in", pre, B, N1, W);
        tap3(tap, tap_user, "vis.ln_pre_out", x, B, N1, W);
        memcpy(x_loc, x, stream * sizeof(float));
        st = ram_vision_tower(m, &o, B, 0, in->vision_layers, x, x_loc, NULL, tap, tap_user);
    }
    free(pre);
    return st;
}

size_t ram_image_features_bytes(const ramc_clip_info *in, int B) {
    const int W = in->vision_width, D = in->embed_dim, N1 = in->n_patches + 1;
    return arena_size((size_t)B * W * sizeof(float)) + arena_size((size_t)B * N1 * D * sizeof(float)) +
           arena_size((size_t)B * N1 * W * sizeof(float)); /* the larger projection's ln_post */
}

ramc_status ram_image_features(const ramc_clip *m, ramc_arena *scratch, const float *x,
                               const float *x_loc, int B, float *img_glb, float *img_loc) {
    const ramc_clip_info *in = &m->info;
    const int W = in->vision_width, D = in->embed_dim, N = in->n_patches, N1 = N + 1;
    const size_t mark = arena_mark(scratch);
    float *cls = arena_alloc(scratch, (size_t)B * W * sizeof(float), "class tokens");
    float *all = arena_alloc(scratch, (size_t)B * N1 * D * sizeof(float), "local features");
    ramc_status st = (cls && all) ? RAMC_OK : RAMC_ERR_NOMEM;
    if (st == RAMC_OK) {
        for (int b = 0; b < B; b++)
            memcpy(cls + (size_t)b * W, x + (size_t)b * N1 * W, (size_t)W * sizeof(float));
        st = clip_vision_project(m, scratch, cls, B, img_glb, NULL, NULL, NULL);
    }
    if (st == RAMC_OK) st = clip_vision_project(m, scratch, x_loc, B * N1, all, NULL, NULL, NULL);
    if (st == RAMC_OK)
        for (int b = 0; b < B; b++)
            memcpy(img_loc + (size_t)b * N * D, all + ((size_t)b * N1 + 1) * D,
                   (size_t)N * D * sizeof(float));
    arena_free(scratch, cls);
    arena_free(scratch, all);
    arena_reset(scratch, mark);
    return st;
}

/* ------------------------------------------------------------ public API */

/* Plain CLIP through the same towers: no adapter, no side stream. */

ramc_status ramc_clip_encode_text(const ramc_clip *m, const int32_t *tokens, int n,
                                  float *features) {
    if (!m || !tokens || !features || n <= 0)
        return ramc_error(RAMC_ERR_INVALID_ARG, "encode_text: no model, tokens or output");
    return ram_encode_text(m, NULL, tokens, n, features, NULL, NULL);
}

ramc_status clip_encode_image(const ramc_clip *m, ramc_arena *scratch, const float *images,
                              int batch, float *tokens) {
    const int N1 = m->info.n_patches + 1;
    const ram_vision_opts o = {.side = 0, .scratch = scratch};
    const size_t mark = arena_mark(scratch);
    float *x = arena_alloc(scratch, (size_t)batch * N1 * m->info.vision_width * sizeof(float),
                           "vision stream");
    if (!x) return RAMC_ERR_NOMEM;
    ramc_status st = clip_vision_embed(m, scratch, images, batch, x, NULL, NULL, NULL);
    if (st == RAMC_OK)
        st = ram_vision_tower(m, &o, batch, 0, m->info.vision_layers, x, NULL, NULL, NULL, NULL);
    if (st == RAMC_OK)
        st = clip_vision_project(m, scratch, x, batch * N1, tokens, NULL, NULL, NULL);
    arena_free(scratch, x);
    arena_reset(scratch, mark);
    return st;
}

size_t clip_encode_image_bytes(const ramc_clip *m, int batch) {
    const ramc_clip_info *in = &m->info;
    const ram_vision_opts o = {.side = 0};
    const size_t N1W = (size_t)batch * (in->n_patches + 1) * in->vision_width * sizeof(float);
    size_t inner = clip_vision_embed_bytes(in, batch);
    const size_t tower = ram_vision_tower_bytes(m, &o, batch);
    if (tower > inner) inner = tower;
    if (arena_size(N1W) > inner) inner = arena_size(N1W); /* ln_post */
    return arena_size(N1W) + inner;
}

ramc_status ramc_clip_encode_image(const ramc_clip *m, const float *images, int batch,
                                   float *tokens) {
    if (!m || !images || !tokens || batch <= 0)
        return ramc_error(RAMC_ERR_INVALID_ARG, "encode_image: no model, images or output");
    return clip_encode_image(m, NULL, images, batch, tokens);
}

/* ------------------------------------------------------------------ head */

static size_t head_floats(int B, int N, int C, int D, int max_iter) {
    const size_t BC = (size_t)B * C, BNC = (size_t)B * N * C;
    return (size_t)B * D * 2 + (size_t)B * N * D * 2 + (size_t)C * D + 5 * BC + 3 * BNC +
           2 * (size_t)B * N + 2 * BC + (size_t)max_iter * B + BC;
}

size_t ram_head_bytes(int B, int N, int C, int D, int max_iter) {
    return arena_size(head_floats(B, N, C, D, max_iter) * sizeof(float)) +
           arena_size((size_t)B * sizeof(int));
}

ramc_status ram_head_alloc(ram_head *h, ramc_arena *arena, int B, int N, int C, int D,
                           int max_iter) {
    memset(h, 0, sizeof *h);
    h->B = B, h->N = N, h->C = C, h->D = D, h->max_iter = max_iter;
    h->arena = arena;
    const size_t total = head_floats(B, N, C, D, max_iter);
    h->storage = arena_calloc(arena, total, sizeof(float), "RAM head");
    h->iters = arena_calloc(arena, (size_t)B, sizeof(int), "RAM head");
    if (!h->storage || !h->iters) {
        ram_head_free(h);
        return RAMC_ERR_NOMEM;
    }
    float *p = h->storage;
    const size_t BC = (size_t)B * C, BNC = (size_t)B * N * C;
#define TAKE(field, count) (h->field = p, p += (count))
    TAKE(g_norm, (size_t)B * D);
    TAKE(g_norms, (size_t)B);
    TAKE(f_norm, (size_t)B * N * D);
    TAKE(f_norms, (size_t)B * N);
    TAKE(t_norm, (size_t)C * D);
    TAKE(logits_glb, BC);
    TAKE(score_glb, BC);
    TAKE(sim, BNC);
    TAKE(cost, BNC);
    TAKE(T, BNC);
    TAKE(u, (size_t)B * N);
    TAKE(r, (size_t)B * N);
    TAKE(v, BC);
    TAKE(c, BC);
    TAKE(err_hist, (size_t)max_iter * B);
    TAKE(logits_loc, BC);
    TAKE(score_loc, BC);
    TAKE(score, BC);
#undef TAKE
    return RAMC_OK;
}

void ram_head_set_variant(ram_head *h, const ramc_variant *v) {
    h->matching = v->matching;
    h->uniform_source = v->uniform_source;
}

void ram_head_free(ram_head *h) {
    arena_free(h->arena, h->storage);
    arena_free(h->arena, h->iters);
    memset(h, 0, sizeof *h);
}

ramc_status ram_head_forward(ram_head *h, const float *img_glb, const float *img_loc,
                             const float *text, float logit_scale_exp, float tau_g, float tau_l,
                             const float *extra_cost, const sinkhorn_options *opt) {
    const int B = h->B, N = h->N, C = h->C, D = h->D;
    l2norm_forward(h->g_norm, h->g_norms, img_glb, B, D, L2_EPS);
    l2norm_forward(h->f_norm, h->f_norms, img_loc, B * N, D, L2_EPS);
    l2norm_forward(h->t_norm, NULL, text, C, D, L2_EPS);

    kcot_global_logits_forward(h->logits_glb, h->g_norm, h->t_norm, tau_g, B, C, D);

    gemm(0, 1, B * N, C, D, 1.0f, h->f_norm, D, h->t_norm, D, 0.0f, h->sim, C);
    kcot_cost_forward(h->cost, h->sim, logit_scale_exp, B, N, C);
    if (extra_cost)
        for (long i = 0; i < (long)B * N * C; i++) h->cost[i] += extra_cost[i];
    if (h->uniform_source || h->matching == RAM_MATCH_OT)
        kcot_uniform(h->u, B, N);
    else
        kcot_lpd_marginal(h->u, h->sim, 0.1f, B, N, C);
    kcot_uniform(h->v, B, C);
    if (h->matching == RAM_MATCH_AVGPOOL) {
        match_avgpool_forward(h->logits_loc, h->sim, tau_l, B, N, C);
        for (long i = 0; i < (long)B * N * C; i++) h->T[i] = 1.0f / (float)(N * C);
        h->batch_iters = 0;
    } else if (h->matching == RAM_MATCH_REWEIGHT) {
        match_reweight_forward(h->logits_loc, h->T, h->sim, logit_scale_exp, tau_l, B, N, C);
        h->batch_iters = 0;
    } else if (h->fixed_plan) {
        memcpy(h->T, h->fixed_plan, (size_t)B * N * C * sizeof(float));
    } else {
        sinkhorn_options o = *opt;
        if (!o.scratch) o.scratch = h->arena;
        ramc_status st = sinkhorn(h->T, h->r, h->c, h->iters, &h->batch_iters, h->err_hist, h->u,
                                  h->v, h->cost, B, N, C, &o);
        if (st != RAMC_OK) return st;
    }
    if (h->matching == RAM_MATCH_KCOT || h->matching == RAM_MATCH_OT)
        kcot_local_logits_forward(h->logits_loc, h->T, h->sim, tau_l, B, N, C);
    kcot_score(h->score, h->score_glb, h->score_loc, h->logits_glb, h->logits_loc, B, C);
    return RAMC_OK;
}
