/* The training step on an arena kept across steps (ram_train_options.scratch,
 * as ram_solver_step runs it), against the same steps on the heap:
 * - the results are bitwise the heap's: loss, scores, plans, features, every
 *   gradient, and after a plain SGD update per step every parameter and the
 *   BatchNorm running statistics, over several steps on changing batches, in
 *   RAM and its ablation variants (w/o SAA, w/o TSS, plain OT, average
 *   pooling), with and without the text cache;
 * - the arena grows once, at the start of the second step (to the first
 *   step's peak), and never again;
 * - from the third step on a step allocates nothing: every malloc, calloc,
 *   realloc and aligned_alloc of the library is counted (the test links with
 *   -Wl,--wrap for them, see CMakeLists.txt). The second step allocates the
 *   block alone. The heap steps' count must be above zero, so the counter is
 *   live;
 * - the frozen-prefix cache (ram_prefix_cache, training without augmentation)
 *   gives bitwise the results of the same steps without it, over two epochs
 *   of two batches: the second epoch is served from the cache, and with a
 *   limit that holds only the first batch's images only that batch is. */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "model/clip.h"
#include "ram/ram.h"
#include "ram/ram_forward.h"
#include "ram/ram_train.h"
#include "test.h"
#include "test_golden.h"

#define GOLDEN RAMC_GOLDEN_DIR "/tiny-s0"

/* ---------------------------------------------------- allocation counter */

static atomic_long n_allocs;

void *__real_malloc(size_t n);
void *__real_calloc(size_t c, size_t n);
void *__real_realloc(void *p, size_t n);
void *__real_aligned_alloc(size_t a, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t c, size_t n);
void *__wrap_realloc(void *p, size_t n);
void *__wrap_aligned_alloc(size_t a, size_t n);

void *__wrap_malloc(size_t n) {
    atomic_fetch_add(&n_allocs, 1);
    return __real_malloc(n);
}
void *__wrap_calloc(size_t c, size_t n) {
    atomic_fetch_add(&n_allocs, 1);
    return __real_calloc(c, n);
}
void *__wrap_realloc(void *p, size_t n) {
    atomic_fetch_add(&n_allocs, 1);
    return __real_realloc(p, n);
}
void *__wrap_aligned_alloc(size_t a, size_t n) {
    atomic_fetch_add(&n_allocs, 1);
    return __real_aligned_alloc(a, n);
}

/* ------------------------------------------------------------- the runs */

enum { B = 4, C = 6, STEPS = 4 };

typedef struct {
    const char *name;
    void (*set)(ram_train_options *o);
    int text_cache;
} variant;

static void set_ram(ram_train_options *o) { (void)o; }
static void set_no_saa(ram_train_options *o) { o->no_saa = 1; }
static void set_no_tss(ram_train_options *o) { o->no_tss = 1; }
static void set_plain_ot(ram_train_options *o) {
    o->matching = RAM_MATCH_OT;
    o->uniform_source = 1;
    o->use_teacher = 0;
}
static void set_avgpool(ram_train_options *o) { o->matching = RAM_MATCH_AVGPOOL; }

static const variant variants[] = {
    {"RAM", set_ram, 1},           {"RAM, no text cache", set_ram, 0},
    {"w/o SAA", set_no_saa, 1},     {"w/o TSS", set_no_tss, 0},
    {"plain OT", set_plain_ot, 1}, {"average pooling", set_avgpool, 1},
};

typedef struct {
    const ramc_clip *m;
    const float *images; /* [B, 3, S, S] */
    const int32_t *tokens;
    const float *teacher_text;
    size_t image_floats;
} setup;

/* What one run leaves to compare: per step the loss and the head's outputs,
 * and at the end every parameter. */
typedef struct {
    float loss[STEPS];
    float *head[STEPS]; /* scores, plan, img_loc, teacher_prob */
    size_t head_n;
    float *params;
    long allocs[STEPS];
    int grows[STEPS];
    size_t cap[STEPS];
} run_out;

static void run_free(run_out *r) {
    for (int k = 0; k < STEPS; k++) free(r->head[k]);
    free(r->params);
}

/* STEPS steps on batches that change (images scaled, targets rotated), each
 * followed by x -= 0.01 * grad on every trainable tensor. With `epochs`, the
 * steps are epochs of two batches (the same images again, keyed by their
 * index in a set of 2B images), through the frozen-prefix cache pc (or none). */
static int run(const setup *su, const variant *v, int use_arena, int epochs, ram_prefix_cache *pc,
               run_out *out) {
    const ramc_clip_info in = ramc_clip_get_info(su->m);
    const int N = in.n_patches, D = in.embed_dim;
    memset(out, 0, sizeof *out);
    ram_adapter *a = NULL;
    ramc_status st = ram_adapter_load(GOLDEN "/adapter.safetensors", su->m, 1, &a);
    CHECK(st == RAMC_OK, "adapter: %s", ramc_last_error());
    if (st) return 0;
    float *images = malloc(su->image_floats * sizeof(float));
    float targets[B * C];
    ramc_arena arena = {0};
    ram_text_cache cache = {0};
    ram_train_options o = ram_train_default_options();
    v->set(&o);
    o.text_cache = v->text_cache ? &cache : NULL;
    o.scratch = use_arena ? &arena : NULL;
    o.prefix_cache = pc;
    int keys[B];
    o.prefix_keys = epochs ? keys : NULL;
    out->head_n = (size_t)B * C + 2 * (size_t)B * N * C + (size_t)B * N * D;
    int ok = images != NULL;
    for (int step = 0; step < STEPS && ok; step++) {
        const int k = epochs ? step % 2 : step; /* the batch */
        for (int b = 0; b < B; b++) keys[b] = k * B + b;
        for (size_t i = 0; i < su->image_floats; i++)
            images[i] = su->images[i] * (1.0f + 0.125f * (float)k);
        memset(targets, 0, sizeof targets);
        for (int b = 0; b < B; b++) targets[b * C + (b + k) % C] = targets[b * C + (2 * b + 3) % C] = 1;
        for (int i = 0; i < a->n_params; i++)
            if (a->params[i].grad) memset(a->params[i].grad, 0, (size_t)a->params[i].numel * 4);
        ram_train_result r;
        const long before = atomic_load(&n_allocs);
        st = ram_train_step(su->m, a, images, B, su->tokens, C, su->teacher_text, targets, &o, &r,
                            NULL, NULL);
        out->allocs[step] = atomic_load(&n_allocs) - before;
        out->grows[step] = arena.grows;
        out->cap[step] = arena.cap;
        CHECK(st == RAMC_OK, "%s, step %d: %s", v->name, step + 1, ramc_last_error());
        if (st) {
            ok = 0;
            break;
        }
        out->loss[step] = r.loss;
        float *h = out->head[step] = malloc(out->head_n * sizeof(float));
        if (h) {
            memcpy(h, r.head.score, (size_t)B * C * sizeof(float));
            h += (size_t)B * C;
            memcpy(h, r.head.T, (size_t)B * N * C * sizeof(float));
            h += (size_t)B * N * C;
            memcpy(h, r.img_loc, (size_t)B * N * D * sizeof(float));
            h += (size_t)B * N * D;
            memcpy(h, r.teacher_prob, (size_t)B * N * C * sizeof(float));
        }
        ram_train_result_free(&r);
        for (int i = 0; i < a->n_params; i++)
            if (a->params[i].grad)
                for (int64_t j = 0; j < a->params[i].numel; j++)
                    a->params[i].data[j] -= 0.01f * a->params[i].grad[j];
    }
    /* every parameter, the BatchNorm running statistics among them, and the last gradients */
    size_t total = 0;
    for (int i = 0; i < a->n_params; i++)
        total += (size_t)a->params[i].numel * (a->params[i].grad ? 2 : 1);
    out->params = malloc(total * sizeof(float));
    if (out->params) {
        size_t at = 0;
        for (int i = 0; i < a->n_params; i++) {
            memcpy(out->params + at, a->params[i].data, (size_t)a->params[i].numel * 4);
            at += (size_t)a->params[i].numel;
            if (a->params[i].grad) {
                memcpy(out->params + at, a->params[i].grad, (size_t)a->params[i].numel * 4);
                at += (size_t)a->params[i].numel;
            }
        }
    }
    out->head_n = ok ? out->head_n : 0;
    arena_release(&arena);
    ram_text_cache_free(&cache);
    ram_adapter_free(a);
    free(images);
    return ok ? (int)total : 0;
}

static void check_variant(const setup *su, const variant *v) {
    run_out heap, arena;
    const int n_heap = run(su, v, 0, 0, NULL, &heap), n_arena = run(su, v, 1, 0, NULL, &arena);
    if (n_heap && n_arena) {
        for (int k = 0; k < STEPS; k++) {
            CHECK(heap.loss[k] == arena.loss[k], "%s, step %d: loss %.9g on the heap, %.9g on the arena",
                  v->name, k + 1, heap.loss[k], arena.loss[k]);
            CHECK(heap.head[k] && arena.head[k] &&
                      !memcmp(heap.head[k], arena.head[k], heap.head_n * sizeof(float)),
                  "%s, step %d: scores, plan or features differ", v->name, k + 1);
        }
        CHECK(n_heap == n_arena && heap.params && arena.params &&
                  !memcmp(heap.params, arena.params, (size_t)n_heap * sizeof(float)),
              "%s: parameters or gradients differ after %d steps", v->name, STEPS);
    }
    printf("%-20s allocations per step: heap", v->name);
    for (int k = 0; k < STEPS; k++) printf(" %ld", heap.allocs[k]);
    printf(" | arena");
    for (int k = 0; k < STEPS; k++) printf(" %ld", arena.allocs[k]);
    printf(" | arena block %zu bytes, grown %d time(s)\n", arena.cap[STEPS - 1],
           arena.grows[STEPS - 1]);
    CHECK(heap.allocs[STEPS - 1] > 0, "%s: the heap step counted no allocation", v->name);
    CHECK(arena.grows[0] == 0 && arena.cap[0] == 0,
          "%s: the first step spills (the block is empty): grown %d, %zu bytes", v->name,
          arena.grows[0], arena.cap[0]);
    CHECK(arena.grows[1] == 1 && arena.cap[1] > 0,
          "%s: the second step starts by growing the block once (grown %d)", v->name,
          arena.grows[1]);
    CHECK(arena.allocs[1] == 1, "%s: step 2 made %ld allocations, expected the block alone",
          v->name, arena.allocs[1]);
    for (int k = 2; k < STEPS; k++) {
        CHECK(arena.grows[k] == 1 && arena.cap[k] == arena.cap[1],
              "%s, step %d: the block grew again (%d times, %zu -> %zu bytes)", v->name, k + 1,
              arena.grows[k], arena.cap[1], arena.cap[k]);
        CHECK(arena.allocs[k] == 0, "%s, step %d: %ld allocations on the arena", v->name, k + 1,
              arena.allocs[k]);
    }
    run_free(&heap);
    run_free(&arena);
}

static int same_runs(const run_out *a, const run_out *b, int n) {
    int same = n > 0 && a->params && b->params &&
               !memcmp(a->params, b->params, (size_t)n * sizeof(float));
    for (int k = 0; k < STEPS; k++)
        same = same && a->loss[k] == b->loss[k] && a->head[k] && b->head[k] &&
               !memcmp(a->head[k], b->head[k], a->head_n * sizeof(float));
    return same;
}

/* Two epochs of two batches without augmentation: the frozen-prefix cache
 * changes no bit, serves the second epoch, and keeps to its limit. */
static void check_prefix_cache(const setup *su, const variant *v) {
    const ramc_clip_info in = ramc_clip_get_info(su->m);
    run_out plain, all, part;
    ram_prefix_cache big = {0}, small = {0};
    const size_t record =
        ((size_t)(in.n_patches + 1) * in.vision_width * 2 + (size_t)in.n_patches * in.embed_dim) *
        sizeof(float);
    CHECK(ram_prefix_cache_init(&big, 2 * B, (size_t)1 << 30) == RAMC_OK &&
              ram_prefix_cache_init(&small, 2 * B, record * (B + 1)) == RAMC_OK,
          "prefix cache init");
    const int n0 = run(su, v, 1, 1, NULL, &plain), n1 = run(su, v, 1, 1, &big, &all),
              n2 = run(su, v, 1, 1, &small, &part);
    printf("%-20s prefix cache: %ld steps served, %ld computed, %ld images held (%zu bytes); "
           "limited to %d images: %ld served, %ld computed, %ld over the limit\n",
           v->name, big.hits, big.misses, big.stored, big.bytes, B + 1, small.hits, small.misses,
           small.over_limit);
    CHECK(same_runs(&plain, &all, n0) && n0 == n1,
          "%s: training with the frozen-prefix cache differs from training without", v->name);
    CHECK(same_runs(&plain, &part, n0) && n0 == n2,
          "%s: training with a limited frozen-prefix cache differs", v->name);
    CHECK(big.hits == 2 && big.misses == 2 && big.stored == 2 * B,
          "%s: the second epoch should come from the cache (%ld served, %ld computed, %ld held)",
          v->name, big.hits, big.misses, big.stored);
    CHECK(big.bytes == (size_t)2 * B * record,
          "%s: %zu bytes held, expected %zu", v->name, big.bytes, (size_t)2 * B * record);
    CHECK(small.hits == 1 && small.misses == 3 && small.stored == B + 1 &&
              small.over_limit == 2 * (B - 1),
          "%s: a cache limited to %d images should serve the first batch alone (%ld served, %ld "
          "computed, %ld held, %ld over)",
          v->name, B + 1, small.hits, small.misses, small.stored, small.over_limit);
    run_free(&plain), run_free(&all), run_free(&part);
    ram_prefix_cache_free(&big);
    ram_prefix_cache_free(&small);
}

int main(void) {
    ramc_clip_params cp = ramc_clip_default_params();
    cp.vision_heads = 2, cp.text_heads = 2;
    ramc_clip *m = NULL;
    ramc_status st = ramc_clip_load(GOLDEN "/weights.safetensors", &cp, &m);
    CHECK(st == RAMC_OK, "weights: %s", ramc_last_error());
    if (st) return test_summary("test_train_arena");
    const ramc_clip_info in = ramc_clip_get_info(m);
    const int L = in.context_length, S = in.image_size;
    const size_t image_floats = (size_t)B * 3 * S * S;
    float *images = malloc(image_floats * sizeof(float));
    float *teacher = malloc((size_t)C * in.embed_dim * sizeof(float));
    int32_t *tok = malloc((size_t)C * L * sizeof(int32_t));
    st = images && teacher && tok ? RAMC_OK : RAMC_ERR_NOMEM;
    if (st == RAMC_OK) st = golden_load_inputs(GOLDEN "/inputs.safetensors", B, S, images, C, L, tok);
    if (st == RAMC_OK) st = ram_encode_text(m, NULL, tok, C, teacher, NULL, NULL);
    CHECK(st == RAMC_OK, "setup: %s", ramc_last_error());
    if (st == RAMC_OK) {
        const setup su = {m, images, tok, teacher, image_floats};
        for (size_t k = 0; k < sizeof variants / sizeof variants[0]; k++)
            check_variant(&su, &variants[k]);
        check_prefix_cache(&su, &variants[0]);
        check_prefix_cache(&su, &variants[2]); /* w/o SAA: the side stream is the teacher's */
    }
    ramc_clip_free(m);
    free(images), free(teacher), free(tok);
    return test_summary("test_train_arena");
}
