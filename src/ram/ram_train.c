/* One RAM training step (see ram_train.h). The forward runs the towers of
 * ram_forward.c, with a record of the blocks from the first trainable one
 * on; the backward walks the same blocks in reverse. */
#include "ram/ram_train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "ram/loss.h"
#include "ram/tss.h"

#define L2_EPS 1e-12f

ram_train_options ram_train_default_options(void) {
    ram_train_options o = {1, 0.05f, 0.1f, 20.0f, SINKHORN_BATCH_COUPLED, NULL, 0, 0, 0,
                           RAM_MATCH_KCOT, RAM_LOSS_MMC, NULL, NULL, NULL, NULL, NULL};
    return o;
}

void ram_train_options_set_variant(ram_train_options *o, const ramc_variant *v) {
    o->matching = v->matching;
    o->no_saa = v->no_saa;
    o->no_tss = v->no_tss;
    o->uniform_source = v->uniform_source;
}

void ram_train_result_free(ram_train_result *r) {
    ram_head_free(&r->head);
    arena_free(r->arena, r->storage);
    memset(r, 0, sizeof *r);
}

static ramc_status result_alloc(ram_train_result *r, ramc_arena *arena, int B, int N, int C,
                                int D) {
    memset(r, 0, sizeof *r);
    r->B = B, r->N = N, r->C = C, r->D = D;
    r->arena = arena;
    const size_t BNC = (size_t)B * N * C;
    r->storage = arena_calloc(arena,
                              (size_t)C * D + (size_t)B * D + 2 * (size_t)B * N * D + 4 * BNC,
                              sizeof(float), "training step");
    if (!r->storage) return RAMC_ERR_NOMEM;
    float *p = r->storage;
    r->text = p, p += (size_t)C * D;
    r->img_glb = p, p += (size_t)B * D;
    r->img_loc = p, p += (size_t)B * N * D;
    r->teacher_img_loc = p, p += (size_t)B * N * D;
    r->teacher_prob = p, p += BNC;
    r->teacher_prob_masked = p, p += BNC;
    r->cost_student = p, p += BNC;
    r->cost_teacher = p;
    return ram_head_alloc(&r->head, arena, B, N, C, D, 100);
}

/* ------------------------------------------------------------------ text */

/* Text tower state for the backward: activations of blocks first..last.
 * Every stream has T = (max EOT) + 1 rows per sequence, R = min(T + nc, L)
 * in prompted blocks (spec §4.3: positions after EOT never reach it). */
typedef struct {
    int n, first;                  /* sequences; first block that keeps activations */
    int T, R;                      /* rows per sequence: plain / prompted blocks */
    ram_text_acts acts;            /* blocks first .. text_layers-1 */
    float *eot_in;                 /* [n, Wt] ln_final input rows */
    float *eot_mean, *eot_rstd;    /* [n] */
    float *eot_h;                  /* [n, Wt] ln_final output */
    int *eot_pos;                  /* [n] */
    ramc_arena *arena;             /* where all of it lives (NULL: the heap) */
} text_state;

static void text_state_free(text_state *t) {
    ram_text_acts_free(&t->acts);
    arena_free(t->arena, t->eot_in);
    arena_free(t->arena, t->eot_pos);
    memset(t, 0, sizeof *t);
}

void ram_text_cache_free(ram_text_cache *c) {
    if (!c) return;
    free(c->tokens);
    free(c->x);
    memset(c, 0, sizeof *c);
}

static int text_cache_matches(const ram_text_cache *c, const ramc_clip *m, const int32_t *tokens,
                              int n, int T, int first) {
    return c && c->x && c->model == m && c->n == n && c->T == T && c->first == first &&
           !memcmp(c->tokens, tokens, (size_t)n * m->info.context_length * sizeof(int32_t));
}

static ramc_status text_cache_store(ram_text_cache *c, const ramc_clip *m, const int32_t *tokens,
                                    int n, int T, int first, const float *x) {
    const size_t ntok = (size_t)n * m->info.context_length, nx = (size_t)n * T * m->info.text_width;
    long hits = c->hits, fills = c->fills;
    ram_text_cache_free(c);
    c->hits = hits, c->fills = fills + 1;
    c->tokens = ramc_malloc(ntok * sizeof(int32_t), "text cache");
    c->x = ramc_malloc(nx * sizeof(float), "text cache");
    if (!c->tokens || !c->x) {
        ram_text_cache_free(c);
        return RAMC_ERR_NOMEM;
    }
    memcpy(c->tokens, tokens, ntok * sizeof(int32_t));
    memcpy(c->x, x, nx * sizeof(float));
    c->model = m, c->n = n, c->T = T, c->first = first;
    return RAMC_OK;
}

/* EOT positions and the row counts; allocates the state's arrays. */
static ramc_status text_state_begin(const ramc_clip *m, const ram_adapter *a, ramc_arena *arena,
                                    const int32_t *tokens, int n, text_state *ts) {
    const ramc_clip_info *in = &m->info;
    const int Wt = in->text_width, L = in->context_length;
    const int first = a->n_text_prompted ? a->text_layers[0] : in->text_layers;
    memset(ts, 0, sizeof *ts);
    ts->n = n, ts->first = first;
    ts->arena = arena;
    ts->acts.arena = arena;
    ts->eot_in = arena_alloc(arena, ((size_t)n * Wt * 2 + 2 * (size_t)n) * sizeof(float), "text");
    ts->eot_pos = arena_alloc(arena, (size_t)n * sizeof(int), "text");
    if (!ts->eot_in || !ts->eot_pos) return RAMC_ERR_NOMEM;
    ts->eot_h = ts->eot_in + (size_t)n * Wt;
    ts->eot_mean = ts->eot_h + (size_t)n * Wt;
    ts->eot_rstd = ts->eot_mean + n;
    ts->T = 1;
    for (int q = 0; q < n; q++) {
        ts->eot_pos[q] = clip_eot_position(tokens + (size_t)q * L, L);
        if (ts->eot_pos[q] + 1 > ts->T) ts->T = ts->eot_pos[q] + 1;
    }
    ts->R = ram_text_prompted_rows(m, a, ts->T);
    return RAMC_OK;
}

/* After text_state_begin: x [n, T, Wt] scratch. cache may be NULL. */
static ramc_status text_forward_train(const ramc_clip *m, const ram_adapter *a,
                                      const int32_t *tokens, int n, ram_text_cache *cache,
                                      text_state *ts, float *text, float *x) {
    const ramc_clip_info *in = &m->info;
    const int Wt = in->text_width, L = in->context_length;
    const int first = ts->first, T = ts->T;
    ramc_status st;

    if ((st = clip_check_tokens(m, tokens, n)) != RAMC_OK) return st;
    if (first > 0 && text_cache_matches(cache, m, tokens, n, T, first)) {
        memcpy(x, cache->x, (size_t)n * T * Wt * sizeof(float));
        cache->hits++;
    } else {
        clip_text_embed(m, tokens, n, T, L, x);
        if (first > 0) {
            /* the blocks before `first` (not prompted) run on T <= R rows */
            const size_t mark = arena_mark(ts->arena);
            ram_text_scratch ws;
            st = ram_text_scratch_alloc_in(&ws, ts->arena, m, n, ts->R);
            if (st == RAMC_OK) {
                st = ram_text_tower(m, a, n, T, 0, first, x, NULL, &ws, NULL, NULL);
                ram_text_scratch_free(&ws);
            }
            arena_reset(ts->arena, mark);
            if (st) return st;
            if (cache && (st = text_cache_store(cache, m, tokens, n, T, first, x))) return st;
        }
    }
    if ((st = ram_text_tower(m, a, n, T, first, in->text_layers, x, &ts->acts, NULL, NULL, NULL)))
        return st;
    return clip_text_head(m, x, n, T, ts->eot_pos, text, ts->eot_in, ts->eot_mean, ts->eot_rstd,
                          ts->eot_h);
}

/* dtext [n, D] -> gradients of the deep prompts. dx [n, T, Wt], dxp [n, R, Wt] scratch. */
static ramc_status text_backward(const ramc_clip *m, ram_adapter *a, const text_state *ts,
                                 const float *dtext, float *dx, float *dxp) {
    const ramc_clip_info *in = &m->info;
    const int Wt = in->text_width, D = in->embed_dim, n = ts->n, T = ts->T, R = ts->R;
    const int nc = a->n_txt_prompts;
    ramc_status st;
    const size_t mark = arena_mark(ts->arena);
    float *dh = arena_calloc(ts->arena, (size_t)n * Wt * 2, sizeof(float), "text gradients");
    if (!dh) return RAMC_ERR_NOMEM;
    float *de = dh + (size_t)n * Wt;
    gemm(0, 1, n, Wt, D, 1.0f, dtext, D, m->txt_proj, D, 0.0f, dh, Wt);
    layernorm_backward(de, NULL, NULL, dh, ts->eot_in, m->ln_final_w, ts->eot_mean, ts->eot_rstd,
                       n, Wt);
    memset(dx, 0, (size_t)n * T * Wt * sizeof(float));
    for (int q = 0; q < n; q++)
        memcpy(dx + ((size_t)q * T + ts->eot_pos[q]) * Wt, de + (size_t)q * Wt,
               (size_t)Wt * sizeof(float));
    arena_free(ts->arena, dh);
    arena_reset(ts->arena, mark);
    for (int l = in->text_layers - 1; l >= ts->first; l--) {
        const clip_block_acts *ac = &ts->acts.blocks[l - ts->first];
        int j = ram_text_prompted_index(a, l);
        if (j < 0) {
            if ((st = clip_block_backward(&m->txt_blocks[l], ac, dx, NULL, NULL))) return st;
            continue;
        }
        /* outputs of the prompt rows were dropped: zero gradient there; rows
         * R-nc .. T-1 (if any) skipped the block and keep their gradient in dx */
        for (int q = 0; q < n; q++) {
            float *dq = dx + (size_t)q * T * Wt, *pq = dxp + (size_t)q * R * Wt;
            memcpy(pq, dq, (size_t)Wt * sizeof(float));
            memset(pq + Wt, 0, (size_t)nc * Wt * sizeof(float));
            memcpy(pq + (size_t)(1 + nc) * Wt, dq + Wt, (size_t)(R - 1 - nc) * Wt * sizeof(float));
        }
        if ((st = clip_block_backward(&m->txt_blocks[l], ac, dxp, NULL, NULL))) return st;
        float *dprompt = a->deep_prompts[j]->grad;
        for (int q = 0; q < n; q++) {
            const float *pq = dxp + (size_t)q * R * Wt;
            for (int i = 0; i < nc * Wt; i++) dprompt[i] += pq[Wt + i];
        }
        ram_text_remove_prompts(dx, dxp, n, T, R, Wt, nc);
    }
    return RAMC_OK;
}

/* ---------------------------------------------------------------- vision */

typedef struct {
    ram_vision_acts acts;    /* blocks first .. vision_layers-1 */
    float *cls_in;           /* [B, W] ln_post input of the class rows */
    float *cls_mean, *cls_rstd; /* [B] */
    float *loc_mean, *loc_rstd; /* [B*N1] */
    float *x_loc;            /* [B, N1, W] final side stream (ln_post input) */
    float *x, *loc_all;      /* [B, N1, W], [B, N1, D] forward scratch, held to the
                              * step's end with an arena (it lies below the record) */
    ramc_arena *arena;       /* where all of it lives (NULL: the heap) */
} vision_state;

static void vision_state_free(vision_state *v) {
    ram_vision_acts_free(&v->acts);
    arena_free(v->arena, v->cls_in);
    arena_free(v->arena, v->x);
    arena_free(v->arena, v->loc_all);
    memset(v, 0, sizeof *v);
}

/* The patch embedding and the vision blocks before the first adapted one:
 * the same frozen weights on the same images, with the SAA side stream in
 * every block, for the student and the teacher, so computed once per step.
 * x, x_loc [B, N1, W] out (x_loc NULL: no side stream). The taps are the
 * student's only when it has SAA (without, its side stream is the main
 * stream itself, and this x_loc is the teacher's): tap NULL otherwise. */
static ramc_status vision_prefix(const ramc_clip *m, ramc_arena *arena, const float *images, int B,
                                 int first, float *x, float *x_loc, clip_tap_fn tap,
                                 void *tap_user) {
    const ramc_clip_info *in = &m->info;
    const size_t stream = (size_t)B * (in->n_patches + 1) * in->vision_width;
    const ram_vision_opts o = {.side = x_loc != NULL, .saa = 1, .scratch = arena};
    ramc_status st = clip_vision_embed(m, arena, images, B, x, NULL, NULL, NULL);
    if (st) return st;
    if (x_loc) memcpy(x_loc, x, stream * sizeof(float));
    return ram_vision_tower(m, &o, B, 0, first, x, x_loc, NULL, tap, tap_user);
}

/* The student from the shared prefix (x0, x_loc0: the streams entering
 * block `first`; without SAA the student's side stream equals the main
 * stream there), keeping what the backward needs, then its two heads. */
static ramc_status vision_forward_train(const ramc_clip *m, ram_adapter *a, ramc_arena *arena,
                                        const float *x0, const float *x_loc0, int B, int first,
                                        const float *text, int C, int saa, int use_tss,
                                        vision_state *vs, float *img_glb, float *img_loc,
                                        clip_tap_fn tap, void *tap_user) {
    const ramc_clip_info *in = &m->info;
    const int W = in->vision_width, N = in->n_patches, N1 = N + 1, D = in->embed_dim;
    const size_t stream = (size_t)B * N1 * W;
    const ram_vision_opts o = {.adapter = a, .text = text, .C = C, .side = 1, .saa = saa,
                               .tss = use_tss, .train = 1, .scratch = arena};
    ramc_status st;
    memset(vs, 0, sizeof *vs);
    vs->arena = arena;
    vs->cls_in = arena_alloc(arena,
                             (stream + (size_t)B * W + 2 * (size_t)B + 2 * (size_t)B * N1) *
                                 sizeof(float),
                             "vision");
    float *x = vs->x = arena_alloc(arena, stream * sizeof(float), "vision");
    float *loc_all = vs->loc_all = arena_alloc(arena, (size_t)B * N1 * D * sizeof(float), "vision");
    if (!vs->cls_in || !x || !loc_all) return RAMC_ERR_NOMEM;
    vs->x_loc = vs->cls_in + (size_t)B * W;
    vs->cls_mean = vs->x_loc + stream;
    vs->cls_rstd = vs->cls_mean + B;
    vs->loc_mean = vs->cls_rstd + B;
    vs->loc_rstd = vs->loc_mean + (size_t)B * N1;

    memcpy(x, x0, stream * sizeof(float));
    memcpy(vs->x_loc, saa ? x_loc0 : x0, stream * sizeof(float));
    if ((st = ram_vision_tower(m, &o, B, first, in->vision_layers, x, vs->x_loc, &vs->acts, tap,
                               tap_user)))
        return st;
    if (use_tss) /* the BatchNorm layers saw one more batch (num_batches_tracked) */
        for (int v = 0; v < a->n_vision_adapted; v++) a->tss[v].bn1_count++, a->tss[v].bn2_count++;

    /* heads: ln_post + proj of the class rows and of the side stream */
    for (int b = 0; b < B; b++)
        memcpy(vs->cls_in + (size_t)b * W, x + (size_t)b * N1 * W, (size_t)W * sizeof(float));
    if ((st = clip_vision_project(m, arena, vs->cls_in, B, img_glb, vs->cls_mean, vs->cls_rstd,
                                  NULL)) ||
        (st = clip_vision_project(m, arena, vs->x_loc, B * N1, loc_all, vs->loc_mean,
                                  vs->loc_rstd, NULL)))
        return st;
    for (int b = 0; b < B; b++)
        memcpy(img_loc + (size_t)b * N * D, loc_all + ((size_t)b * N1 + 1) * D,
               (size_t)N * D * sizeof(float));
    return RAMC_OK;
}

static ramc_status vision_backward(const ramc_clip *m, ram_adapter *a, const vision_state *vs,
                                   int B, int saa, int use_tss, const float *dimg_glb,
                                   const float *dimg_loc, float *dtext) {
    const ramc_clip_info *in = &m->info;
    const int W = in->vision_width, N = in->n_patches, N1 = N + 1, D = in->embed_dim;
    const int na = a->n_vis_prompts, T = N1 + na;
    const size_t stream = (size_t)B * N1 * W;
    ramc_status st = RAMC_OK;
    const size_t mark = arena_mark(vs->arena);
    float *buf = arena_calloc(vs->arena, 3 * stream + (size_t)B * T * W + (size_t)B * N1 * W,
                              sizeof(float), "vision gradients");
    if (!buf) return RAMC_ERR_NOMEM;
    float *dx = buf, *dx_loc = buf + stream, *dh = buf + 2 * stream;
    float *dxp = buf + 3 * stream;

    /* img_loc = (ln_post(x_loc) @ proj)[:, 1:]: row 0 gets no gradient */
    for (int b = 0; b < B; b++)
        gemm(0, 1, N, W, D, 1.0f, dimg_loc + (size_t)b * N * D, D, m->vis_proj, D, 0.0f,
             dh + ((size_t)b * N1 + 1) * W, W);
    layernorm_backward(dx_loc, NULL, NULL, dh, vs->x_loc, m->ln_post_w, vs->loc_mean, vs->loc_rstd,
                       B * N1, W);
    /* img_glb = ln_post(x[:, 0]) @ proj */
    memset(dh, 0, (size_t)B * W * sizeof(float));
    gemm(0, 1, B, W, D, 1.0f, dimg_glb, D, m->vis_proj, D, 0.0f, dh, W);
    float *dcls = dh + (size_t)B * W;
    memset(dcls, 0, (size_t)B * W * sizeof(float));
    layernorm_backward(dcls, NULL, NULL, dh, vs->cls_in, m->ln_post_w, vs->cls_mean, vs->cls_rstd,
                       B, W);
    for (int b = 0; b < B; b++)
        memcpy(dx + (size_t)b * N1 * W, dcls + (size_t)b * W, (size_t)W * sizeof(float));
    /* without SAA the side stream is the final main stream plus the TSS outputs */
    if (!saa)
        for (size_t i = 0; i < stream; i++) dx[i] += dx_loc[i];

    for (int l = in->vision_layers - 1; l >= vs->acts.first; l--) {
        const clip_block_acts *ac = &vs->acts.blocks[l - vs->acts.first];
        int v = ram_vision_adapted_index(a, l);
        int rows = v >= 0 ? T : N1;
        if (v >= 0 && use_tss) {
            /* x_loc += al + TSS(x): TSS reads the block's output x */
            if ((st = tss_backward(&a->tss[v], &vs->acts.tss[l - vs->acts.first], dx_loc, dx, dtext,
                                   1)))
                break;
            for (int b = 0; b < B; b++) /* TSS row 0 is a copy of x[:, 0] */
                for (int c = 0; c < W; c++) dx[(size_t)b * N1 * W + c] += dx_loc[(size_t)b * N1 * W + c];
        }
        for (int b = 0; b < B; b++) {
            float *pb = dxp + (size_t)b * rows * W;
            memcpy(pb, dx + (size_t)b * N1 * W, (size_t)N1 * W * sizeof(float));
            memset(pb + (size_t)N1 * W, 0, (size_t)(rows - N1) * W * sizeof(float));
        }
        if ((st = clip_block_backward(&m->vis_blocks[l], ac, dxp, saa ? dx_loc : NULL, NULL))) break;
        for (int b = 0; b < B; b++) {
            const float *pb = dxp + (size_t)b * rows * W;
            memcpy(dx + (size_t)b * N1 * W, pb, (size_t)N1 * W * sizeof(float));
            if (v >= 0)
                for (int i = 0; i < na * W; i++) a->tss[v].prompts->grad[i] += pb[(size_t)N1 * W + i];
        }
    }
    arena_free(vs->arena, buf);
    arena_reset(vs->arena, mark);
    return st;
}

/* ------------------------------------------------- frozen-prefix cache */

ramc_status ram_prefix_cache_init(ram_prefix_cache *c, int n_keys, size_t limit_bytes) {
    memset(c, 0, sizeof *c);
    if (n_keys < 1) return ramc_error(RAMC_ERR_INVALID_ARG, "prefix cache: %d keys", n_keys);
    c->entry = ramc_calloc((size_t)n_keys, sizeof *c->entry, "prefix cache");
    c->ready = ramc_calloc((size_t)n_keys, 1, "prefix cache");
    if (!c->entry || !c->ready) {
        ram_prefix_cache_free(c);
        return RAMC_ERR_NOMEM;
    }
    c->n_keys = n_keys, c->limit_bytes = limit_bytes;
    return RAMC_OK;
}

static void prefix_cache_empty(ram_prefix_cache *c) {
    for (int k = 0; k < c->n_keys; k++) {
        free(c->entry[k]);
        c->entry[k] = NULL, c->ready[k] = 0;
    }
    c->bytes = 0;
}

void ram_prefix_cache_free(ram_prefix_cache *c) {
    if (!c) return;
    if (c->entry) prefix_cache_empty(c);
    free(c->entry);
    free(c->ready);
    memset(c, 0, sizeof *c);
}

/* A record: x [N1, W], then x_loc [N1, W] (side), then the teacher's
 * img_loc [N, D] (teacher). Returns 1 when every key of the call is ready
 * (after checking the layout, which empties the cache when it changed). */
static int prefix_cache_all_ready(ram_prefix_cache *c, const ramc_clip *m, const int *keys, int B,
                                  int first, int side, int teacher) {
    const ramc_clip_info *in = &m->info;
    const size_t N1W = (size_t)(in->n_patches + 1) * in->vision_width;
    const size_t floats = N1W * (side ? 2 : 1) + (teacher ? (size_t)in->n_patches * in->embed_dim : 0);
    if (c->model != m || c->first != first || c->side != side || c->teacher != teacher ||
        c->floats != floats) {
        prefix_cache_empty(c);
        c->model = m, c->first = first, c->side = side, c->teacher = teacher, c->floats = floats;
    }
    for (int b = 0; b < B; b++)
        if (keys[b] < 0 || keys[b] >= c->n_keys || !c->ready[keys[b]]) return 0;
    return 1;
}

/* Stores part of the records of the call's images that are not ready:
 * `part` 0 the streams x, x_loc [B, N1, W] (allocating the record while the
 * limit allows), 1 the teacher's img_loc [B, N, D] (which makes it ready). */
static void prefix_cache_store(ram_prefix_cache *c, const int *keys, int B, int part,
                               const float *x, const float *x_loc, const float *img_loc,
                               size_t N1W, size_t ND) {
    const size_t bytes = c->floats * sizeof(float);
    for (int b = 0; b < B; b++) {
        const int k = keys[b];
        if (k < 0 || k >= c->n_keys || c->ready[k]) continue;
        if (part == 0) {
            if (!c->entry[k]) {
                if (c->bytes + bytes > c->limit_bytes) {
                    c->over_limit++;
                    continue;
                }
                if (!(c->entry[k] = malloc(bytes))) continue; /* a cache: just not held */
                c->bytes += bytes;
                c->stored++;
            }
            memcpy(c->entry[k], x + (size_t)b * N1W, N1W * sizeof(float));
            if (c->side) memcpy(c->entry[k] + N1W, x_loc + (size_t)b * N1W, N1W * sizeof(float));
            if (!c->teacher) c->ready[k] = 1;
        } else if (c->entry[k]) {
            memcpy(c->entry[k] + N1W * (c->side ? 2 : 1), img_loc + (size_t)b * ND,
                   ND * sizeof(float));
            c->ready[k] = 1;
        }
    }
}

/* --------------------------------------------------------------- teacher */

/* The frozen SAA-CLIP teacher's plan (spec §5.7): P, its masked form and the
 * cost term, from its local features and the teacher label features.
 * x, x_loc [B, N1, W]: the shared prefix (vision_prefix, SAA) entering block
 * `first`; the teacher's remaining blocks run on them in place. */
static ramc_status teacher_cost(const ramc_clip *m, float *x, float *x_loc, int first, int B,
                                const float *teacher_text, const float *targets,
                                const ram_train_options *opt, int have_features,
                                ram_train_result *r) {
    const ramc_clip_info *in = &m->info;
    const int N = in->n_patches, N1 = N + 1, D = in->embed_dim, C = r->C;
    const float scale = expf(in->logit_scale);
    /* the teacher reads only x_loc: the last block's main stream is not needed */
    ramc_arena *arena = opt->scratch;
    const ram_vision_opts o = {.side = 1, .saa = 1, .last = CLIP_BLOCK_SIDE_ONLY, .scratch = arena};
    const size_t mark = arena_mark(arena);
    float *feat = arena_alloc(arena,
                              ((size_t)B * N1 * D + (size_t)C * D + (size_t)B * N * C) *
                                  sizeof(float),
                              "teacher");
    ramc_status st = feat ? RAMC_OK : RAMC_ERR_NOMEM;
    /* have_features: r->teacher_img_loc came from the frozen-prefix cache */
    if (st == RAMC_OK && !have_features)
        st = ram_vision_tower(m, &o, B, first, in->vision_layers, x, x_loc, NULL, NULL, NULL);
    if (st == RAMC_OK && !have_features)
        st = clip_vision_project(m, arena, x_loc, B * N1, feat, NULL, NULL, NULL);
    if (st == RAMC_OK) {
        float *t_norm = feat + (size_t)B * N1 * D, *simT = t_norm + (size_t)C * D;
        float *f_norm = x; /* reuse: [B, N, D] */
        for (int b = 0; b < B && !have_features; b++)
            memcpy(r->teacher_img_loc + (size_t)b * N * D, feat + ((size_t)b * N1 + 1) * D,
                   (size_t)N * D * sizeof(float));
        l2norm_forward(f_norm, NULL, r->teacher_img_loc, B * N, D, L2_EPS);
        l2norm_forward(t_norm, NULL, teacher_text, C, D, L2_EPS);
        /* the official grouping: (scale · f̂) @ t̂ᵀ */
        for (long i = 0; i < (long)B * N * D; i++) f_norm[i] *= scale;
        gemm(0, 1, B * N, C, D, 1.0f, f_norm, D, t_norm, D, 0.0f, simT, C);
        kcot_teacher_prob(r->teacher_prob, simT, 1.0f, opt->teacher_sharpen, B, N, C);
        memcpy(r->teacher_prob_masked, r->teacher_prob, (size_t)B * N * C * sizeof(float));
        /* the mask value is the minimum over the whole batch */
        float pmin = kcot_min(r->teacher_prob, (long)B * N * C);
        st = dist_min_float(opt->dist, &pmin);
        kcot_teacher_mask_with(r->teacher_prob_masked, targets, pmin, B, N, C);
        kcot_teacher_cost(r->cost_teacher, r->teacher_prob_masked, opt->teacher_weight,
                          (long)B * N * C);
    }
    arena_free(arena, feat);
    arena_reset(arena, mark);
    return st;
}

/* ------------------------------------------------------------------ loss */

/* The loss on one head's logits [B, C]: MMC (the official one, one softmax
 * over the whole batch), or the paper's ablation alternatives. */
static float head_loss_forward(ram_loss_kind kind, const float *z, const float *y, int B, int C) {
    asl_options asl = asl_default_options();
    switch (kind) {
    case RAM_LOSS_ASL: return loss_asl_forward(z, y, B, C, &asl);
    case RAM_LOSS_RANK_HINGE: return loss_rank_forward(z, y, B, C, RANK_HINGE, 1.0f);
    case RAM_LOSS_RANK_LSEP: return loss_rank_forward(z, y, B, C, RANK_LSEP, 1.0f);
    case RAM_LOSS_MMC: break;
    }
    return loss_mmc_forward(z, y, (long)B * C);
}

static void head_loss_backward(ram_loss_kind kind, float *dz, const float *z, const float *y, int B,
                               int C) {
    asl_options asl = asl_default_options();
    switch (kind) {
    case RAM_LOSS_ASL: loss_asl_backward(dz, 1.0f, z, y, B, C, &asl); return;
    case RAM_LOSS_RANK_HINGE: loss_rank_backward(dz, 1.0f, z, y, B, C, RANK_HINGE, 1.0f); return;
    case RAM_LOSS_RANK_LSEP: loss_rank_backward(dz, 1.0f, z, y, B, C, RANK_LSEP, 1.0f); return;
    case RAM_LOSS_MMC: break;
    }
    loss_mmc_backward(dz, 1.0f, z, y, (long)B * C);
}

/* The loss couples the whole batch (MMC: one softmax over the batch x
 * labels grid; ASL and ranking: means over it). Split over processes, each
 * gathers every process's logits and targets (rank order = batch order),
 * computes the loss and its gradient over the whole batch, exactly as one
 * process would, and keeps the gradient of its own rows.
 * z, y [B, C] this process's rows; dz [B, C] accumulates. */
typedef struct {
    float *z, *y, *dz; /* [Bt, C] the whole batch */
    long off;          /* this process's first row */
    int Bt;
    ramc_arena *arena; /* where z lives (NULL: the heap) */
} batch_loss;

static ramc_status batch_loss_gather(batch_loss *bl, const ramc_dist *d, const float *z,
                                     const float *y, int B, int C) {
    ramc_status st = RAMC_OK;
    long cap = 0, total = 0;
    int Bt = B;
    if ((st = dist_max_int(d, &Bt))) return st; /* shares differ by at most one image */
    cap = (long)Bt * dist_size(d) * C;
    if (!bl->z) {
        bl->z = arena_alloc(bl->arena, 3 * (size_t)cap * sizeof(float), "gathered logits");
        if (!bl->z) return RAMC_ERR_NOMEM;
        bl->y = bl->z + cap, bl->dz = bl->y + cap;
    }
    if ((st = dist_allgather_float(d, z, (long)B * C, bl->z, cap, &bl->off, &total)) ||
        (st = dist_allgather_float(d, y, (long)B * C, bl->y, cap, NULL, NULL)))
        return st;
    bl->off /= C;
    bl->Bt = (int)(total / C);
    return RAMC_OK;
}

static void batch_loss_free(batch_loss *bl) {
    arena_free(bl->arena, bl->z);
    memset(bl, 0, sizeof *bl);
}

/* loss of one head: over this call's rows, or over the gathered batch */
static ramc_status head_loss(ram_loss_kind kind, batch_loss *bl, const ramc_dist *d,
                             const float *z, const float *y, int B, int C, float *loss, float *dz) {
    if (dist_size(d) == 1) {
        *loss = head_loss_forward(kind, z, y, B, C);
        if (dz) head_loss_backward(kind, dz, z, y, B, C);
        return RAMC_OK;
    }
    ramc_status st = batch_loss_gather(bl, d, z, y, B, C);
    if (st) return st;
    *loss = head_loss_forward(kind, bl->z, bl->y, bl->Bt, C);
    if (dz) {
        memset(bl->dz, 0, (size_t)bl->Bt * C * sizeof(float));
        head_loss_backward(kind, bl->dz, bl->z, bl->y, bl->Bt, C);
        const float *mine = bl->dz + (size_t)bl->off * C;
        for (long k = 0; k < (long)B * C; k++) dz[k] += mine[k];
    }
    return RAMC_OK;
}

/* ------------------------------------------------------------------ step */

ramc_status ram_train_step(const ramc_clip *m, ram_adapter *a, const float *images, int B,
                           const int32_t *tokens, int C, const float *teacher_text,
                           const float *targets, const ram_train_options *opt,
                           ram_train_result *r, clip_tap_fn tap, void *tap_user) {
    const ramc_clip_info *in = &m->info;
    const int N = in->n_patches, D = in->embed_dim, Wt = in->text_width;
    const float scale = expf(in->logit_scale);
    text_state ts = {0};
    vision_state vs = {0};
    float *tx = NULL, *dbuf = NULL, *vx = NULL;
    ramc_arena *arena = opt->scratch;
    batch_loss bl = {.arena = arena};
    for (int v = 0; v < a->n_vision_adapted; v++) a->tss[v].bn_group = opt->dist;
    /* the previous step's result dies here; the block grows to that step's
     * peak if it spilled */
    arena_end_call(arena);
    ramc_status st = result_alloc(r, arena, B, N, C, D);
    const size_t result_mark = arena_mark(arena); /* what the caller reads lies below */
    if (st != RAMC_OK) goto done;
    if ((st = text_state_begin(m, a, arena, tokens, C, &ts))) goto done;
    /* the stream, and the prompted stream of the backward */
    tx = arena_alloc(arena, (size_t)C * (ts.T + ts.R) * Wt * sizeof(float), "text streams");
    if (!tx) {
        st = RAMC_ERR_NOMEM;
        goto done;
    }
    float *txp = tx + (size_t)C * ts.T * Wt;

    /* forward */
    if ((st = text_forward_train(m, a, tokens, C, opt->text_cache, &ts, r->text, tx)))
        goto done;
    /* vision blocks before the first adapted one: once for student and teacher */
    const int vfirst = a->n_vision_adapted ? a->vision_layers[0] : in->vision_layers;
    const size_t vstream = (size_t)B * (N + 1) * in->vision_width;
    /* plain OT is KCOT's solver without its knowledge: no teacher term */
    const int use_teacher = opt->use_teacher && opt->matching != RAM_MATCH_OT;
    const int need_side = !opt->no_saa || use_teacher;
    if (!(vx = arena_alloc(arena, vstream * (need_side ? 2 : 1) * sizeof(float),
                           "vision prefix"))) {
        st = RAMC_ERR_NOMEM;
        goto done;
    }
    float *vx_loc = need_side ? vx + vstream : NULL;
    ram_prefix_cache *pc = opt->prefix_cache && opt->prefix_keys && !tap ? opt->prefix_cache : NULL;
    const size_t N1W = (size_t)(N + 1) * in->vision_width, ND = (size_t)N * D;
    const int cached = pc && prefix_cache_all_ready(pc, m, opt->prefix_keys, B, vfirst, need_side,
                                                    use_teacher);
    if (cached) {
        /* the frozen prefix (and the teacher's features) of every image, as
         * an earlier epoch computed them */
        pc->hits++;
        for (int b = 0; b < B; b++) {
            const float *e = pc->entry[opt->prefix_keys[b]];
            memcpy(vx + (size_t)b * N1W, e, N1W * sizeof(float));
            if (need_side) memcpy(vx_loc + (size_t)b * N1W, e + N1W, N1W * sizeof(float));
            if (use_teacher)
                memcpy(r->teacher_img_loc + (size_t)b * ND, e + N1W * (need_side ? 2 : 1),
                       ND * sizeof(float));
        }
    } else {
        if ((st = vision_prefix(m, arena, images, B, vfirst, vx, vx_loc, opt->no_saa ? NULL : tap,
                                tap_user)))
            goto done;
        if (pc) {
            pc->misses++;
            prefix_cache_store(pc, opt->prefix_keys, B, 0, vx, vx_loc, NULL, N1W, ND);
        }
    }
    if ((st = vision_forward_train(m, a, arena, vx, vx_loc, B, vfirst, r->text, C, !opt->no_saa,
                                   !opt->no_tss, &vs, r->img_glb, r->img_loc, tap, tap_user)))
        goto done;
    for (int l = 0; l < vs.acts.n_blocks && vs.acts.tss; l++)
        if ((st = vs.acts.tss[l].group_status)) goto done;
    sinkhorn_options so = sinkhorn_default_options();
    so.mode = opt->sinkhorn;
    so.reg = opt->reg;
    so.batch_group = opt->dist;
    const float *extra = NULL;
    if (use_teacher) {
        if ((st = teacher_cost(m, vx, vx_loc, vfirst, B, teacher_text, targets, opt, cached, r)))
            goto done;
        if (pc && !cached)
            prefix_cache_store(pc, opt->prefix_keys, B, 1, NULL, NULL, r->teacher_img_loc, N1W, ND);
        extra = r->cost_teacher;
        so.reg = opt->reg + opt->teacher_weight;
    }
    ram_head *h = &r->head;
    h->fixed_plan = opt->fixed_plan;
    h->matching = opt->matching;
    h->uniform_source = opt->uniform_source;
    if ((st = ram_head_forward(h, r->img_glb, r->img_loc, r->text, scale,
                               a->temperature->data[0], a->temperature_loc->data[0], extra, &so)))
        goto done;
    kcot_cost_forward(r->cost_student, h->sim, scale, B, N, C);
    const size_t BC = (size_t)B * C, BNC = BC * N;
    dbuf = arena_calloc(arena,
                        2 * BC + BNC + (size_t)B * D * 2 + (size_t)B * N * D * 2 +
                            (size_t)C * D * 2,
                        sizeof(float), "head gradients");
    if (!dbuf) {
        st = RAMC_ERR_NOMEM;
        goto done;
    }
    float *dz_glb = dbuf, *dz_loc = dz_glb + BC, *dsim = dz_loc + BC;
    float *dg = dsim + BNC, *dimg_glb = dg + (size_t)B * D;
    float *df = dimg_glb + (size_t)B * D, *dimg_loc = df + (size_t)B * N * D;
    float *dt = dimg_loc + (size_t)B * N * D, *dtext = dt + (size_t)C * D;
    /* the loss's gradient is computed with it, but only used once it is finite */
    if ((st = head_loss(opt->loss, &bl, opt->dist, h->logits_glb, targets, B, C, &r->loss_glb,
                        dz_glb)) ||
        (st = head_loss(opt->loss, &bl, opt->dist, h->logits_loc, targets, B, C, &r->loss_loc,
                        dz_loc)))
        goto done;
    r->loss = r->loss_glb + r->loss_loc;
    if (!isfinite(r->loss)) {
        st = ramc_error(RAMC_ERR_NUMERIC, "training loss is not finite (global %g, local %g)",
                        (double)r->loss_glb, (double)r->loss_loc);
        goto done;
    }

    /* backward: heads */
    kcot_global_logits_backward(dg, dt, a->temperature->grad, dz_glb, h->logits_glb, h->g_norm,
                                h->t_norm, a->temperature->data[0], B, C, D);
    const float tau_l = a->temperature_loc->data[0];
    float *dtau_l = a->temperature_loc->grad;
    if (h->matching == RAM_MATCH_AVGPOOL)
        match_avgpool_backward(dsim, dtau_l, dz_loc, h->logits_loc, tau_l, B, N, C);
    else if (h->matching == RAM_MATCH_REWEIGHT)
        match_reweight_backward(dsim, dtau_l, dz_loc, h->logits_loc, h->T, h->sim, scale, tau_l, B,
                                N, C);
    else
        kcot_local_logits_backward(dsim, dtau_l, dz_loc, h->logits_loc, h->T, tau_l, B, N, C);
    /* sim = f̂ t̂ᵀ */
    gemm(0, 0, B * N, D, C, 1.0f, dsim, C, h->t_norm, D, 1.0f, df, D);
    gemm(1, 0, C, D, B * N, 1.0f, dsim, C, h->f_norm, D, 1.0f, dt, D);
    l2norm_backward(dimg_glb, dg, r->img_glb, h->g_norms, B, D, L2_EPS);
    l2norm_backward(dimg_loc, df, r->img_loc, h->f_norms, B * N, D, L2_EPS);
    l2norm_backward(dtext, dt, r->text, NULL, C, D, L2_EPS);

    if ((st = vision_backward(m, a, &vs, B, !opt->no_saa, !opt->no_tss, dimg_glb, dimg_loc,
                              dtext)))
        goto done;
    if (a->n_text_prompted && (st = text_backward(m, a, &ts, dtext, tx, txp))) goto done;
done:
    for (int v = 0; v < a->n_vision_adapted; v++) a->tss[v].bn_group = NULL;
    batch_loss_free(&bl);
    text_state_free(&ts);
    vision_state_free(&vs);
    arena_free(arena, tx);
    arena_free(arena, vx);
    arena_free(arena, dbuf);
    arena_reset(arena, result_mark);
    return st;
}
