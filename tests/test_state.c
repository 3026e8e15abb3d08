/* ramc_state, the per-call state of prediction (include/ramc.h):
 * - predicting through a state gives bitwise ramc_predict's results, in every
 *   mode the parameters select (adapter or zero-shot, CLIP baseline, fused
 *   batches, batch-coupled or log-domain Sinkhorn, the ablations);
 * - the table of shapes is exact: a state reserved for a call's shapes holds
 *   exactly the bytes a fresh state grows to in that call, and no call
 *   within those shapes (fewer images, the same labels) grows it;
 * - a call beyond the reservation grows the state once, not again;
 * - misuse is refused with a message. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ramc.h"
#include "test.h"
#include "test_golden.h"

#define GOLDEN RAMC_GOLDEN_DIR "/tiny-s0"
#define VOCAB RAMC_SOURCE_DIR "/data/bpe_simple_vocab_16e6.txt.gz"

enum { B = 4, S = 32, N = 16 };
static const char *const names[] = {"cat", "dog", "traffic light", "person", "bicycle", "car"};
#define C ((int)(sizeof names / sizeof names[0]))

static float images[B * 3 * S * S];

typedef struct {
    const char *name;
    void (*set)(ramc_predict_params *p);
} config;

static void set_default(ramc_predict_params *p) { (void)p; }
static void set_fused(ramc_predict_params *p) { p->fuse_batch = 1; }
static void set_coupled(ramc_predict_params *p) { p->per_image_sinkhorn = 0; }
static void set_log_domain(ramc_predict_params *p) { p->reg = 0.01f, p->max_iter = 7; }
static void set_baseline(ramc_predict_params *p) { p->mode = RAMC_PREDICT_CLIP_BASELINE; }
static void set_no_saa(ramc_predict_params *p) { p->ablation.no_saa = 1; }
static void set_no_tss(ramc_predict_params *p) { p->ablation.no_tss = 1; }
static void set_avgpool(ramc_predict_params *p) { p->ablation.matching = RAMC_MATCH_AVGPOOL; }
static void set_one_thread(ramc_predict_params *p) { p->threads = 1, p->fuse_batch = 1; }

static const config configs[] = {
    {"default", set_default},       {"fused batch", set_fused},
    {"batch-coupled", set_coupled}, {"log domain", set_log_domain},
    {"CLIP baseline", set_baseline}, {"w/o SAA", set_no_saa},
    {"w/o TSS", set_no_tss},        {"average pooling", set_avgpool},
    {"one thread", set_one_thread},
};

static void check_config(const ramc_model *m, const ramc_labels *lb, const config *cf,
                         const char *model_name) {
    ramc_predict_params p = ramc_predict_default_params();
    cf->set(&p);
    const int ram = p.mode == RAMC_PREDICT_RAM;
    static float want[B * C], got[B * C], want_plan[B * N * C], got_plan[B * N * C];
    for (int nb = 1; nb <= B; nb += B - 1) {
        char what[160];
        snprintf(what, sizeof what, "%s, %s, %d image(s)", model_name, cf->name, nb);
        ramc_status st = ramc_predict(m, lb, images, nb, &p, want, ram ? want_plan : NULL, NULL);
        CHECK(st == RAMC_OK, "%s: ramc_predict: %s", what, ramc_last_error());
        if (st != RAMC_OK) continue;

        /* a fresh state grows to the call's peak, once */
        ramc_state *fresh = NULL;
        CHECK(ramc_state_create(m, &fresh) == RAMC_OK, "%s: create", what);
        if (!fresh) continue;
        CHECK(ramc_state_bytes(fresh) == 0, "%s: a new state holds no scratch", what);
        st = ramc_predict_with_state(fresh, lb, images, nb, &p, got, ram ? got_plan : NULL, NULL);
        CHECK(st == RAMC_OK, "%s: with a fresh state: %s", what, ramc_last_error());
        CHECK(!memcmp(got, want, (size_t)nb * C * sizeof(float)),
              "%s: scores differ from ramc_predict's", what);
        if (ram)
            CHECK(!memcmp(got_plan, want_plan, (size_t)nb * N * C * sizeof(float)),
                  "%s: plans differ from ramc_predict's", what);
        CHECK(ramc_state_grow_count(fresh) == 1, "%s: grew %d times in its first call", what,
              ramc_state_grow_count(fresh));
        const size_t peak = ramc_state_bytes(fresh);
        st = ramc_predict_with_state(fresh, lb, images, nb, &p, got, NULL, NULL);
        CHECK(st == RAMC_OK && ramc_state_grow_count(fresh) == 1 &&
                  ramc_state_bytes(fresh) == peak,
              "%s: a second call of the same shapes grew the state", what);
        ramc_state_free(fresh);

        /* a reserved state: the table gives the same bytes, and no call
         * within the reserved shapes grows it */
        ramc_state *reserved = NULL;
        CHECK(ramc_state_create(m, &reserved) == RAMC_OK, "%s: create", what);
        if (!reserved) continue;
        st = ramc_state_reserve(reserved, nb, C, &p);
        CHECK(st == RAMC_OK, "%s: reserve: %s", what, ramc_last_error());
        CHECK(ramc_state_bytes(reserved) == peak,
              "%s: the table of shapes says %zu bytes, the call took %zu", what,
              ramc_state_bytes(reserved), peak);
        for (int k = 1; k <= nb; k++) {
            st = ramc_predict_with_state(reserved, lb, images, k, &p, got, NULL, NULL);
            CHECK(st == RAMC_OK, "%s: reserved, %d image(s): %s", what, k, ramc_last_error());
            CHECK(!memcmp(got, want, (size_t)k * C * sizeof(float)) || p.fuse_batch ||
                      !p.per_image_sinkhorn,
                  "%s: reserved, %d image(s): scores differ", what, k);
        }
        CHECK(ramc_state_grow_count(reserved) == 0,
              "%s: a reserved state grew %d times within its shapes", what,
              ramc_state_grow_count(reserved));
        ramc_state_free(reserved);
    }
}

/* A state used beyond its reservation grows once and then serves from its block. */
static void check_growth(const ramc_model *m, const ramc_labels *lb) {
    ramc_state *s = NULL;
    CHECK(ramc_state_create(m, &s) == RAMC_OK, "create");
    if (!s) return;
    ramc_predict_params p = ramc_predict_default_params();
    p.fuse_batch = 1;
    static float out[B * C];
    CHECK(ramc_state_reserve(s, 1, C, &p) == RAMC_OK, "reserve for one image");
    const size_t one = ramc_state_bytes(s);
    CHECK(ramc_predict_with_state(s, lb, images, B, &p, out, NULL, NULL) == RAMC_OK,
          "a call beyond the reservation: %s", ramc_last_error());
    CHECK(ramc_state_grow_count(s) == 1 && ramc_state_bytes(s) > one,
          "a call of %d fused images grew the state (%d times, %zu -> %zu bytes)", B,
          ramc_state_grow_count(s), one, ramc_state_bytes(s));
    CHECK(ramc_predict_with_state(s, lb, images, B, &p, out, NULL, NULL) == RAMC_OK &&
              ramc_state_grow_count(s) == 1,
          "the next such call grew it again");
    /* reserving less than it holds keeps the block */
    const size_t held = ramc_state_bytes(s);
    CHECK(ramc_state_reserve(s, 1, 1, &p) == RAMC_OK && ramc_state_bytes(s) == held,
          "a smaller reservation shrank the state");
    ramc_state_free(s);
}

static void check_misuse(const ramc_model *m, const ramc_model *other, const ramc_labels *lb) {
    ramc_state *s = NULL;
    static float out[B * C];
    CHECK(ramc_state_create(NULL, &s) == RAMC_ERR_INVALID_ARG && s == NULL, "no model");
    CHECK(ramc_state_create(m, NULL) == RAMC_ERR_INVALID_ARG, "no output pointer");
    CHECK(ramc_predict_with_state(NULL, lb, images, 1, NULL, out, NULL, NULL) ==
              RAMC_ERR_INVALID_ARG,
          "no state");
    CHECK(ramc_state_create(other, &s) == RAMC_OK, "create for the other model");
    if (!s) return;
    CHECK(ramc_predict_with_state(s, lb, images, 1, NULL, out, NULL, NULL) == RAMC_ERR_MISMATCH,
          "labels of another model must be refused");
    CHECK(strstr(ramc_last_error(), "another model") != NULL, "message: %s", ramc_last_error());
    CHECK(ramc_state_reserve(s, 0, C, NULL) == RAMC_ERR_LIMIT, "reserve for 0 images");
    CHECK(ramc_state_reserve(s, 1, RAMC_MAX_LABELS + 1, NULL) == RAMC_ERR_LIMIT,
          "reserve beyond the label limit");
    ramc_predict_params bad = ramc_predict_default_params();
    bad.reg = -1;
    CHECK(ramc_state_reserve(s, 1, C, &bad) == RAMC_ERR_INVALID_ARG, "reserve with a bad reg");
    CHECK(ramc_state_bytes(s) == 0 && ramc_state_grow_count(s) == 0,
          "refused calls left the state untouched");
    ramc_state_free(s);
    ramc_state_free(NULL);
    CHECK(ramc_state_bytes(NULL) == 0 && ramc_state_grow_count(NULL) == 0, "NULL state queries");
}

int main(void) {
    const int64_t shape[4] = {B, 3, S, S};
    ramc_status st = golden_load_f32(GOLDEN "/inputs.safetensors", "images", 4, shape, images);
    CHECK(st == RAMC_OK, "golden images: %s", ramc_last_error());
    if (st != RAMC_OK) return test_summary("test_state");

    ramc_clip_params cp = ramc_clip_default_params();
    cp.vision_heads = 2, cp.text_heads = 2;
    ramc_tokenizer *tok = NULL;
    CHECK(ramc_tokenizer_load(VOCAB, &tok) == RAMC_OK, "tokenizer: %s", ramc_last_error());
    ramc_model *models[2] = {NULL, NULL};
    ramc_labels *labels[2] = {NULL, NULL};
    for (int with_adapter = 0; with_adapter <= 1 && tok; with_adapter++) {
        st = ramc_model_load(GOLDEN "/weights.safetensors",
                             with_adapter ? GOLDEN "/adapter.safetensors" : NULL, &cp,
                             &models[with_adapter]);
        CHECK(st == RAMC_OK, "model_load: %s", ramc_last_error());
        if (st == RAMC_OK)
            st = ramc_labels_encode(models[with_adapter], tok, names, C, NULL, &labels[with_adapter]);
        CHECK(st == RAMC_OK, "labels_encode: %s", ramc_last_error());
        if (st != RAMC_OK) continue;
        for (size_t k = 0; k < sizeof configs / sizeof configs[0]; k++)
            check_config(models[with_adapter], labels[with_adapter], &configs[k],
                         with_adapter ? "RAM" : "zero-shot RAM");
    }
    if (labels[1]) {
        check_growth(models[1], labels[1]);
        check_misuse(models[1], models[0], labels[1]);
    }
    for (int k = 0; k < 2; k++) {
        ramc_labels_free(labels[k]);
        ramc_model_free(models[k]);
    }
    ramc_tokenizer_free(tok);
    return test_summary("test_state");
}
