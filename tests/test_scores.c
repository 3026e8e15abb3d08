/* The two scores (ramc.h ramc_score, docs/predict.md "Scores"):
 *  - the independent score of a label is the same whichever other labels are
 *    asked with it (16, 64, or none), bitwise when the label features are
 *    equal (read from one label cache) and to float rounding when each set
 *    went through the text tower on its own;
 *  - it is sigmoid((cos(g, t_c) - cos(g, t_ref)) / tau), checked against the
 *    public CLIP functions for the plain-CLIP baseline, and its logit scales
 *    as 1/tau in RAM mode;
 *  - the official score is still the default, sums to 1, scores a lone label
 *    1, and moves when other labels are asked. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ramc.h"
#include "test.h"

#define CLIP RAMC_SOURCE_DIR "/data/default/clip.safetensors"
#define ADAPTER RAMC_SOURCE_DIR "/data/default/adapter.safetensors"
#define IMAGE RAMC_SOURCE_DIR "/data/samples/red-heart+yellow-square.png"

static const char *const colours[] = {"red", "green", "blue", "yellow", "purple", "orange", "white", "black"};
static const char *const shapes[] = {"circle", "square", "triangle", "star", "ring", "cross", "diamond", "heart"};
enum { ALL = 64, FEW = 16 };

/* scores [C] of the sample image for names under params */
static void score(const ramc_model *m, const char *cache, const char *const *names, int n,
                  const ramc_predict_params *p, float *s) {
    ramc_labels *lb = NULL;
    CHECK(ramc_labels_encode_cached(m, NULL, names, n, NULL, cache, &lb) == RAMC_OK, "encode: %s",
          ramc_last_error());
    const int S = ramc_model_get_info(m).image_size;
    float *x = malloc((size_t)3 * S * S * sizeof *x);
    CHECK(x && ramc_preprocess_file(m, IMAGE, NULL, x) == RAMC_OK, "preprocess: %s", ramc_last_error());
    if (lb && x) CHECK(ramc_predict(m, lb, x, 1, p, s, NULL, NULL) == RAMC_OK, "predict: %s", ramc_last_error());
    free(x);
    ramc_labels_free(lb);
}

static double logit(double s) { return log(s / (1 - s)); }

int main(void) {
    char names_buf[ALL][32];
    const char *all[ALL], *few[FEW], *alone[1];
    for (int i = 0; i < ALL; i++) {
        snprintf(names_buf[i], sizeof names_buf[i], "%s %s", colours[i / 8], shapes[i % 8]);
        all[i] = names_buf[i];
    }
    /* "red heart" (index 7) is the probe: 16 labels with it in 4th place, all
     * 64 with it in 8th, and alone */
    for (int i = 0; i < FEW; i++) few[i] = all[i * 4 + 3];
    CHECK(!strcmp(few[1], "red heart"), "probe at %s", few[1]);
    alone[0] = "red heart";
    const int in_few = 1, in_all = 7;

    ramc_model *m = NULL, *bare = NULL;
    CHECK(ramc_model_load(CLIP, ADAPTER, NULL, &m) == RAMC_OK, "load: %s", ramc_last_error());
    CHECK(ramc_model_load(CLIP, NULL, NULL, &bare) == RAMC_OK, "load: %s", ramc_last_error());
    if (!m || !bare) return test_summary("test_scores");

    ramc_predict_params dflt = ramc_predict_default_params(), ind = dflt;
    CHECK(dflt.score == RAMC_SCORE_OFFICIAL, "the default score is %d", (int)dflt.score);
    ind.score = RAMC_SCORE_INDEPENDENT;

    /* official: the default, rows sum to 1, a lone label scores 1, and the
     * probe's score depends on the company it keeps */
    float off_all[ALL], off_none[ALL], off_few[FEW], off_alone[1];
    score(m, NULL, all, ALL, &dflt, off_all);
    score(m, NULL, all, ALL, NULL, off_none);
    CHECK(!memcmp(off_all, off_none, sizeof off_all), "NULL params are not the official score");
    double sum = 0;
    for (int c = 0; c < ALL; c++) sum += off_all[c];
    CHECK_CLOSE(sum, 1.0, 1e-5, "official scores sum to 1");
    score(m, NULL, few, FEW, &dflt, off_few);
    score(m, NULL, alone, 1, &dflt, off_alone);
    CHECK(off_alone[0] == 1.0f, "a lone label's official score is %g, not 1", off_alone[0]);
    CHECK(off_few[in_few] > 1.5f * off_all[in_all], "official: 16 labels %g vs 64 labels %g",
          off_few[in_few], off_all[in_all]);

    /* independent, through the text tower for each set: equal to float rounding */
    float ind_all[ALL], ind_few[FEW], ind_alone[1];
    score(m, NULL, all, ALL, &ind, ind_all);
    score(m, NULL, few, FEW, &ind, ind_few);
    score(m, NULL, alone, 1, &ind, ind_alone);
    CHECK_CLOSE(ind_few[in_few], ind_all[in_all], 1e-5, "independent, 16 vs 64 labels");
    CHECK_CLOSE(ind_alone[0], ind_all[in_all], 1e-5, "independent, alone vs 64 labels");
    for (int i = 0; i < FEW; i++) {
        int j = 0;
        while (strcmp(all[j], few[i])) j++;
        CHECK_CLOSE(ind_few[i], ind_all[j], 1e-5, few[i]);
    }
    int in_range = 1;
    for (int c = 0; c < ALL; c++) in_range &= ind_all[c] > 0 && ind_all[c] < 1;
    CHECK(in_range, "independent scores outside (0, 1)");

    /* with the label features read from one cache (equal bits), the score is
     * bitwise the same in 64, 16 and 1 */
    char dir[] = "/tmp/ramc-scores-XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    float c_all[ALL], c_few[FEW], c_alone[1], c_again[ALL];
    score(m, dir, all, ALL, &ind, c_all);
    score(m, dir, few, FEW, &ind, c_few);
    score(m, dir, alone, 1, &ind, c_alone);
    score(m, dir, all, ALL, &ind, c_again);
    CHECK(!memcmp(c_all, c_again, sizeof c_all), "independent scores not reproducible");
    CHECK(c_few[in_few] == c_all[in_all] && c_alone[0] == c_all[in_all],
          "cached features: independent %.9g (16) %.9g (1) vs %.9g (64)", c_few[in_few], c_alone[0],
          c_all[in_all]);

    /* RAM mode: the logit is (cos_c - cos_ref) / tau_global */
    ramc_predict_params t1 = ind, t2 = ind;
    t1.tau_global = 0.5f, t2.tau_global = 2.0f;
    float s1[FEW], s2[FEW];
    score(m, NULL, few, FEW, &t1, s1);
    score(m, NULL, few, FEW, &t2, s2);
    for (int c = 0; c < FEW; c++)
        CHECK_CLOSE(logit(s1[c]) * 0.5, logit(s2[c]) * 2.0, 1e-4, "logit x tau");

    /* plain-CLIP baseline, recomputed from the public CLIP functions:
     * sigmoid(exp(logit_scale) * (cos(g, t_c) - cos(g, t_ref))) */
    ramc_predict_params base = ind;
    base.mode = RAMC_PREDICT_CLIP_BASELINE;
    float sb[FEW];
    score(bare, NULL, few, FEW, &base, sb);
    ramc_clip *clip = NULL;
    ramc_tokenizer *tok = NULL;
    CHECK(ramc_clip_load(CLIP, NULL, &clip) == RAMC_OK, "clip: %s", ramc_last_error());
    CHECK(ramc_tokenizer_load_for_model(CLIP, &tok) == RAMC_OK, "tokenizer: %s", ramc_last_error());
    if (clip && tok) {
        const ramc_clip_info in = ramc_clip_get_info(clip);
        const int D = in.embed_dim, L = in.context_length, S = in.image_size;
        int32_t *ids = calloc((size_t)(FEW + 1) * L, sizeof *ids);
        float *t = malloc((size_t)(FEW + 1) * D * sizeof *t);
        float *x = malloc((size_t)3 * S * S * sizeof *x);
        float *tokens = malloc((size_t)(in.n_patches + 1) * D * sizeof *tokens);
        char prompt[64];
        for (int c = 0; c <= FEW; c++) {
            snprintf(prompt, sizeof prompt, "A photo of a %s.", c < FEW ? few[c] : "");
            CHECK(ramc_tokenize(tok, prompt, ids + (size_t)c * L, L) == RAMC_OK, "tokenize");
        }
        CHECK(ramc_clip_encode_text(clip, ids, FEW + 1, t) == RAMC_OK, "text: %s", ramc_last_error());
        CHECK(ramc_preprocess_file(bare, IMAGE, NULL, x) == RAMC_OK, "preprocess");
        CHECK(ramc_clip_encode_image(clip, x, 1, tokens) == RAMC_OK, "image: %s", ramc_last_error());
        double cosv[FEW + 1], gn = 0;
        for (int d = 0; d < D; d++) gn += (double)tokens[d] * tokens[d];
        for (int c = 0; c <= FEW; c++) {
            double dot = 0, tn = 0;
            for (int d = 0; d < D; d++) dot += (double)tokens[d] * t[c * D + d], tn += (double)t[c * D + d] * t[c * D + d];
            cosv[c] = dot / sqrt(gn * tn);
        }
        for (int c = 0; c < FEW; c++) {
            double want = 1 / (1 + exp(-exp(in.logit_scale) * (cosv[c] - cosv[FEW])));
            CHECK_CLOSE(sb[c], want, 1e-4, few[c]);
        }
        free(ids), free(t), free(x), free(tokens);
    }
    ramc_clip_free(clip);
    ramc_tokenizer_free(tok);

    /* a bad score value is refused */
    ramc_predict_params bad = dflt;
    bad.score = (ramc_score)7;
    ramc_labels *lb = NULL;
    float s[1];
    CHECK(ramc_labels_encode(m, NULL, alone, 1, NULL, &lb) == RAMC_OK, "encode");
    const int S = ramc_model_get_info(m).image_size;
    float *x = calloc((size_t)3 * S * S, sizeof *x);
    CHECK(ramc_predict(m, lb, x, 1, &bad, s, NULL, NULL) == RAMC_ERR_INVALID_ARG &&
              strstr(ramc_last_error(), "score 7"),
          "score 7: %s", ramc_last_error());
    free(x);
    ramc_labels_free(lb);

    ramc_model_free(m);
    ramc_model_free(bare);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return test_summary("test_scores");
}
