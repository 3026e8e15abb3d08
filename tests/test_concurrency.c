/* One loaded model shared by threads (ramc.h: "Models and label sets may be
 * shared between threads"): 4 threads predicting at once on one model and
 * one label set give bitwise the scores, plans and LPD marginals of one
 * thread alone, in RAM mode and in the CLIP baseline. Half the threads
 * predict through a ramc_state of their own (the arena of a server's
 * worker), half through ramc_predict's per-call one. Per-image Sinkhorn and
 * unfused batches (the defaults) make an image's result independent of its
 * call, so every thread must reproduce the single-threaded reference
 * exactly. Run under ThreadSanitizer by `scripts/test.sh --tsan`. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "ramc.h"
#include "test.h"
#include "test_golden.h"

#define GOLDEN RAMC_GOLDEN_DIR "/tiny-s0"
#define VOCAB RAMC_SOURCE_DIR "/data/bpe_simple_vocab_16e6.txt.gz"

enum { B = 4, S = 32, N = 16, N_THREADS = 4, ROUNDS = 3 };
static const char *const names[] = {"cat", "dog", "traffic light", "person", "bicycle"};
#define C ((int)(sizeof names / sizeof names[0]))

static float images[B * 3 * S * S];

typedef struct {
    const ramc_model *model;
    const ramc_labels *labels;
    ramc_predict_params params;
    int with_plan;
    int use_state; /* 1: ramc_predict_with_state on a state of this thread's own */
    float score[B * C], plan[B * N * C], lpd[B * N];
    ramc_status st;
    char error[256];
} job;

/* ROUNDS predictions; the last one's outputs are kept, and every round must
 * equal the first (one thread's own results are stable too). */
static void *run(void *arg) {
    job *j = arg;
    ramc_state *state = NULL;
    if (j->use_state && (j->st = ramc_state_create(j->model, &state)) != RAMC_OK) {
        snprintf(j->error, sizeof j->error, "%s", ramc_last_error());
        return NULL;
    }
    for (int r = 0; r < ROUNDS; r++) {
        float score[B * C], plan[B * N * C], lpd[B * N];
        float *pl = j->with_plan ? plan : NULL, *lp = j->with_plan ? lpd : NULL;
        j->st = state ? ramc_predict_with_state(state, j->labels, images, B, &j->params, score, pl, lp)
                      : ramc_predict(j->model, j->labels, images, B, &j->params, score, pl, lp);
        if (j->st != RAMC_OK) {
            snprintf(j->error, sizeof j->error, "%s", ramc_last_error());
            break;
        }
        /* a state grows once, in its first call, and then serves every
         * later call of the same shapes from its block */
        if (state && ramc_state_grow_count(state) != 1) {
            j->st = RAMC_ERR_LIMIT;
            snprintf(j->error, sizeof j->error, "round %d: the state grew %d times", r,
                     ramc_state_grow_count(state));
            break;
        }
        if (r > 0 && memcmp(score, j->score, sizeof score) != 0) {
            j->st = RAMC_ERR_NUMERIC;
            snprintf(j->error, sizeof j->error, "round %d differs from round 0", r);
            break;
        }
        memcpy(j->score, score, sizeof score);
        if (j->with_plan) {
            memcpy(j->plan, plan, sizeof plan);
            memcpy(j->lpd, lpd, sizeof lpd);
        }
    }
    ramc_state_free(state);
    return NULL;
}

static void check_mode(const ramc_model *m, const ramc_labels *lb, ramc_predict_mode mode,
                       const char *what) {
    static job ref, jobs[N_THREADS];
    ramc_predict_params p = ramc_predict_default_params();
    p.mode = mode;
    const int with_plan = mode == RAMC_PREDICT_RAM;
    ref = (job){.model = m, .labels = lb, .params = p, .with_plan = with_plan};
    run(&ref);
    CHECK(ref.st == RAMC_OK, "%s: one thread: %s", what, ref.error);
    if (ref.st != RAMC_OK) return;

    const long packed_before = kernels_packed_count();
    pthread_t th[N_THREADS];
    for (int t = 0; t < N_THREADS; t++) {
        jobs[t] = (job){.model = m, .labels = lb, .params = p, .with_plan = with_plan,
                        .use_state = t % 2 == 0};
        CHECK(pthread_create(&th[t], NULL, run, &jobs[t]) == 0, "pthread_create");
    }
    for (int t = 0; t < N_THREADS; t++) pthread_join(th[t], NULL);
    /* with oneDNN the threads' linear layers ran on the shared packed weights */
    if (kernels_packed_available())
        CHECK(kernels_packed_count() > packed_before, "%s: no packed product ran", what);
    for (int t = 0; t < N_THREADS; t++) {
        CHECK(jobs[t].st == RAMC_OK, "%s: thread %d: %s", what, t, jobs[t].error);
        if (jobs[t].st != RAMC_OK) continue;
        CHECK(!memcmp(jobs[t].score, ref.score, sizeof ref.score),
              "%s: thread %d: scores differ from one thread's", what, t);
        if (with_plan) {
            CHECK(!memcmp(jobs[t].plan, ref.plan, sizeof ref.plan),
                  "%s: thread %d: plans differ", what, t);
            CHECK(!memcmp(jobs[t].lpd, ref.lpd, sizeof ref.lpd), "%s: thread %d: LPD differs",
                  what, t);
        }
    }
    /* the reference is a real prediction: rows are distributions over labels */
    for (int b = 0; b < B; b++) {
        double sum = 0;
        for (int c = 0; c < C; c++) sum += ref.score[b * C + c];
        CHECK_CLOSE(sum, 1.0, 1e-5, "a score row sums to 1");
    }
}

int main(void) {
    const int64_t shape[4] = {B, 3, S, S};
    ramc_status st = golden_load_f32(GOLDEN "/inputs.safetensors", "images", 4, shape, images);
    CHECK(st == RAMC_OK, "golden images: %s", ramc_last_error());
    if (st != RAMC_OK) return test_summary("test_concurrency");

    ramc_clip_params cp = ramc_clip_default_params();
    cp.vision_heads = 2, cp.text_heads = 2;
    ramc_tokenizer *tok = NULL;
    CHECK(ramc_tokenizer_load(VOCAB, &tok) == RAMC_OK, "tokenizer: %s", ramc_last_error());
    for (int with_adapter = 0; with_adapter <= 1 && tok; with_adapter++) {
        ramc_model *m = NULL;
        ramc_labels *lb = NULL;
        st = ramc_model_load(GOLDEN "/weights.safetensors",
                             with_adapter ? GOLDEN "/adapter.safetensors" : NULL, &cp, &m);
        CHECK(st == RAMC_OK, "model_load: %s", ramc_last_error());
        if (st == RAMC_OK) st = ramc_labels_encode(m, tok, names, C, NULL, &lb);
        CHECK(st == RAMC_OK, "labels_encode: %s", ramc_last_error());
        if (st == RAMC_OK) {
            check_mode(m, lb, RAMC_PREDICT_RAM, with_adapter ? "RAM" : "zero-shot RAM");
            check_mode(m, lb, RAMC_PREDICT_CLIP_BASELINE, "CLIP baseline");
        }
        ramc_labels_free(lb);
        ramc_model_free(m);
    }
    ramc_tokenizer_free(tok);
    return test_summary("test_concurrency");
}
