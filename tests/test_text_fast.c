/* The EOT-truncated text tower (clip_text_features, used by ram_encode_text
 * without taps and by ramc_clip_encode_text) against the full 77-row stream
 * (ram_text_forward / clip_text_forward + clip_text_project), on the tiny
 * golden model: prompts of many lengths (EOT at 1..76, so also the ones where
 * EOT + deep prompts no longer fit and the prompted blocks run on all L rows),
 * more prompts than one chunk (sorted, chunked, scattered back), without deep
 * prompts, with the golden adapter's (last blocks) and with prompts in every
 * block including the first. Same values up to float rounding. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "model/clip.h"
#include "ram/ram.h"
#include "ram/ram_forward.h"
#include "ram/ram_train.h"
#include "test.h"
#include "test_golden.h"

#define GOLDEN RAMC_GOLDEN_DIR "/tiny-s0"
#define TOL 2e-6

/* max |a - b| / max |b| over one row each, worst row */
static double worst_row_err(const float *a, const float *b, int n, int D) {
    double worst = 0;
    for (int q = 0; q < n; q++) {
        double md = 0, mr = 0;
        for (int i = 0; i < D; i++) {
            double d = fabs((double)a[(size_t)q * D + i] - b[(size_t)q * D + i]);
            if (d > md || isnan(d)) md = isnan(d) ? INFINITY : d;
            if (fabs(b[(size_t)q * D + i]) > mr) mr = fabs(b[(size_t)q * D + i]);
        }
        double e = mr > 0 ? md / mr : md;
        if (e > worst || isnan(e)) worst = e;
    }
    return worst;
}

/* reference: the full stream, then ln_final at EOT and the projection */
static int reference(const ramc_clip *m, const ram_adapter *a, const int32_t *tok, int n,
                     float *feat) {
    const ramc_clip_info in = ramc_clip_get_info(m);
    float *x = malloc((size_t)n * in.context_length * in.text_width * sizeof(float));
    ramc_status st = x ? RAMC_OK : RAMC_ERR_NOMEM;
    if (st == RAMC_OK) st = a ? ram_text_forward(m, a, tok, n, x, NULL, NULL)
                              : clip_text_forward(m, tok, n, x, NULL, NULL);
    if (st == RAMC_OK) st = clip_text_project(m, tok, x, n, feat);
    free(x);
    CHECK(st == RAMC_OK, "reference text forward: %s", ramc_last_error());
    return st == RAMC_OK;
}

static void compare(const char *what, const ramc_clip *m, const ram_adapter *a, const int32_t *tok,
                    int n) {
    const int D = ramc_clip_get_info(m).embed_dim;
    float *ref = malloc((size_t)n * D * sizeof(float)), *fast = malloc((size_t)n * D * sizeof(float));
    if (!ref || !fast || !reference(m, a, tok, n, ref)) {
        CHECK(ref && fast, "out of memory");
        free(ref), free(fast);
        return;
    }
    ramc_status st = a ? ram_encode_text(m, a, tok, n, fast, NULL, NULL)
                       : ramc_clip_encode_text(m, tok, n, fast);
    CHECK(st == RAMC_OK, "%s: fast text features: %s", what, ramc_last_error());
    double e = worst_row_err(fast, ref, n, D);
    printf("%-44s n=%4d  worst row rel err %.3g%s\n", what, n, e,
           !memcmp(fast, ref, (size_t)n * D * sizeof(float)) ? " (bitwise equal)" : "");
    CHECK(e <= TOL, "%s: truncated vs full text features: rel err %g > %g", what, e, TOL);
    free(ref), free(fast);
}

/* Training: ram_train_step with a text cache (filled, then hit) gives bitwise
 * the loss and gradients of the step without one. */
static void check_train_cache(const ramc_clip *m) {
    const ramc_clip_info in = ramc_clip_get_info(m);
    const int B = 4, C = 6, L = in.context_length, S = in.image_size, D = in.embed_dim;
    ram_adapter *a = NULL;
    float *images = malloc((size_t)B * 3 * S * S * sizeof(float));
    float *teacher = malloc((size_t)C * D * sizeof(float)), targets[4 * 6] = {0};
    int32_t *tok = malloc((size_t)C * L * sizeof(int32_t));
    ramc_status st = images && teacher && tok ? RAMC_OK : RAMC_ERR_NOMEM;
    if (st == RAMC_OK) st = ram_adapter_load(GOLDEN "/adapter.safetensors", m, 1, &a);
    if (st == RAMC_OK) st = golden_load_inputs(GOLDEN "/inputs.safetensors", B, S, images, C, L, tok);
    if (st == RAMC_OK) {
        for (int b = 0; b < B; b++) targets[b * C + (b * 5) % C] = targets[b * C + (b + 2) % C] = 1;
        st = ram_encode_text(m, NULL, tok, C, teacher, NULL, NULL);
    }
    CHECK(st == RAMC_OK, "training setup: %s", ramc_last_error());
    if (st == RAMC_OK) {
        ram_text_cache cache = {0};
        float loss[3] = {0};
        float *grads[3] = {0};
        long total = 0;
        for (int i = 0; i < a->n_params; i++)
            if (a->params[i].grad) total += a->params[i].numel;
        for (int run = 0; run < 3; run++) {
            ram_train_options o = ram_train_default_options();
            o.text_cache = run ? &cache : NULL;
            for (int i = 0; i < a->n_params; i++)
                if (a->params[i].grad)
                    memset(a->params[i].grad, 0, (size_t)a->params[i].numel * sizeof(float));
            ram_train_result r;
            st = ram_train_step(m, a, images, B, tok, C, teacher, targets, &o, &r, NULL, NULL);
            CHECK(st == RAMC_OK, "train step %d: %s", run, ramc_last_error());
            loss[run] = r.loss;
            ram_train_result_free(&r);
            grads[run] = malloc((size_t)total * sizeof(float));
            if (!grads[run]) continue;
            long k = 0;
            for (int i = 0; i < a->n_params; i++)
                if (a->params[i].grad) {
                    memcpy(grads[run] + k, a->params[i].grad, (size_t)a->params[i].numel * 4);
                    k += a->params[i].numel;
                }
        }
        printf("train step: loss %.9g / with cache (fill) %.9g / (hit) %.9g; cache fills %ld hits %ld\n",
               loss[0], loss[1], loss[2], cache.fills, cache.hits);
        CHECK(cache.fills == 1 && cache.hits == 1, "text cache: %ld fills, %ld hits", cache.fills,
              cache.hits);
        CHECK(loss[0] == loss[1] && loss[0] == loss[2], "loss changed with the text cache");
        for (int run = 1; run < 3; run++)
            CHECK(grads[0] && grads[run] && !memcmp(grads[0], grads[run], (size_t)total * 4),
                  "gradients changed with the text cache (run %d)", run);
        for (int run = 0; run < 3; run++) free(grads[run]);
        ram_text_cache_free(&cache);
    }
    ram_adapter_free(a);
    free(images), free(teacher), free(tok);
}

int main(void) {
    ramc_clip_params p = ramc_clip_default_params();
    p.vision_heads = 2, p.text_heads = 2;
    ramc_clip *m = NULL;
    ram_adapter *golden = NULL, *every = NULL;
    ramc_status st = ramc_clip_load(GOLDEN "/weights.safetensors", &p, &m);
    CHECK(st == RAMC_OK, "ramc_clip_load: %s", ramc_last_error());
    if (st != RAMC_OK) return test_summary("test_text_fast");
    st = ram_adapter_load(GOLDEN "/adapter.safetensors", m, 0, &golden);
    CHECK(st == RAMC_OK, "ram_adapter_load: %s", ramc_last_error());
    const ramc_clip_info in = ramc_clip_get_info(m);
    const int L = in.context_length;

    /* deep prompts in every text block, the first included */
    ram_config cfg = ram_config_preset(RAM_PRESET_NUS, &in);
    cfg.n_text_prompted = in.text_layers;
    for (int j = 0; j < in.text_layers; j++) cfg.text_layers[j] = j;
    st = ram_adapter_create(m, &cfg, 7, 0, &every);
    CHECK(st == RAMC_OK, "ram_adapter_create: %s", ramc_last_error());
    if (every) /* random prompts of the size of token embeddings */
        for (int j = 0; j < every->n_text_prompted; j++) {
            ramc_rng rng;
            rng_seed(&rng, 100 + j);
            ram_param *pp = every->deep_prompts[j];
            for (int i = 0; i < every->n_txt_prompts * in.text_width; i++)
                pp->data[i] = (float)(rng_uniform(&rng) - 0.5);
        }

    /* n prompts, EOT positions 1..L-1 cycling (pseudo-random order), random
     * word ids, zero padding after EOT as the tokenizer writes */
    enum { NMANY = 150 };
    int32_t *tok = calloc((size_t)NMANY * L, sizeof(int32_t));
    if (!tok) return test_summary("test_text_fast");
    ramc_rng rng;
    rng_seed(&rng, 3);
    for (int q = 0; q < NMANY; q++) {
        int eot = 1 + (int)((q * 37) % (L - 1)); /* 1 .. L-1 */
        if (q == 0) eot = L - 1;                 /* the longest possible */
        if (q == 1) eot = L - 1 - 4;             /* EOT + 4 prompts exactly fill L */
        if (q == 2) eot = L - 4;                 /* one past: the prompted blocks run on L rows */
        int32_t *t = tok + (size_t)q * L;
        t[0] = RAMC_SOT_ID;
        for (int i = 1; i < eot; i++) t[i] = 1 + (int32_t)(rng_next(&rng) % 49000);
        t[eot] = RAMC_EOT_ID;
    }

    /* short prompts only, in one chunk */
    int32_t *shortp = calloc((size_t)12 * L, sizeof(int32_t));
    if (shortp) {
        int k = 0;
        for (int q = 3; q < NMANY && k < 12; q++) {
            int eot = 0;
            while (tok[(size_t)q * L + eot] != RAMC_EOT_ID) eot++;
            if (eot <= 12) memcpy(shortp + (size_t)k++ * L, tok + (size_t)q * L, (size_t)L * 4);
        }
        compare("plain CLIP, short prompts", m, NULL, shortp, k);
        if (golden) compare("golden adapter (last blocks), short prompts", m, golden, shortp, k);
        if (every) compare("prompts in every block, short prompts", m, every, shortp, k);
    }
    /* the near-end ones alone: the fallback to L rows */
    compare("plain CLIP, EOT at 76/72/73", m, NULL, tok, 3);
    if (golden) compare("golden adapter, EOT at 76/72/73", m, golden, tok, 3);
    if (every) compare("prompts in every block, EOT at 76/72/73", m, every, tok, 3);
    /* all lengths, more than one chunk */
    compare("plain CLIP, all lengths", m, NULL, tok, NMANY);
    if (golden) compare("golden adapter, all lengths", m, golden, tok, NMANY);
    if (every) compare("prompts in every block, all lengths", m, every, tok, NMANY);
    /* the deep prompts matter (the comparisons above are not vacuous) */
    if (every) {
        const int D = in.embed_dim;
        float *f0 = malloc((size_t)3 * D * sizeof(float)), *f1 = malloc((size_t)3 * D * sizeof(float));
        if (f0 && f1 && !ramc_clip_encode_text(m, tok + 10 * L, 3, f0) &&
            !ram_encode_text(m, every, tok + 10 * L, 3, f1, NULL, NULL)) {
            double e = worst_row_err(f1, f0, 3, D);
            CHECK(e > 1e-3, "deep prompts changed nothing (rel diff %g)", e);
        } else {
            CHECK(0, "encode: %s", ramc_last_error());
        }
        free(f0), free(f1);
    }
    /* a single prompt */
    if (golden) compare("golden adapter, one prompt", m, golden, tok + 5 * L, 1);

    check_train_cache(m);

    free(tok);
    free(shortp);
    ram_adapter_free(golden);
    ram_adapter_free(every);
    ramc_clip_free(m);
    return test_summary("test_text_fast");
}
