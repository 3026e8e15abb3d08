/* The prediction API (ramc.h, "prediction"): parity with the golden set in
 * the batch-coupled mode, batch independence in the per-image mode, the CLIP
 * baseline and the zero-shot path against the lower-level functions, input
 * validation, and the heat-map pictures. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "api/api.h"
#include "io/file.h"
#include "io/safetensors.h"
#include "kernels/kernels.h"
#include "model/clip.h"
#include "ram/kcot.h"
#include "ram/ram_forward.h"
#include "test.h"

#define GOLDEN RAMC_GOLDEN_DIR "/tiny-s0"
#define VOCAB RAMC_SOURCE_DIR "/data/bpe_simple_vocab_16e6.txt.gz"

enum { B = 4, C = 9, S = 32, N = 16 };

static float images[B * 3 * S * S], ref_score[B * C], ref_T[B * N * C], ref_u[B * N];
static const char *names[C];
static cJSON *classes;

static int load_golden(void) {
    st_file *in = NULL, *out = NULL;
    int64_t img_shape[4] = {B, 3, S, S}, bc[2] = {B, C}, bnc[3] = {B, N, C}, bn[2] = {B, N};
    ramc_status st = st_open(GOLDEN "/inputs.safetensors", &in);
    if (st == RAMC_OK) st = st_load_f32(in, "images", 4, img_shape, images);
    if (st == RAMC_OK) st = st_open(GOLDEN "/outputs.safetensors", &out);
    if (st == RAMC_OK) st = st_load_f32(out, "eval.score", 2, bc, ref_score);
    if (st == RAMC_OK) st = st_load_f32(out, "eval.T", 3, bnc, ref_T);
    if (st == RAMC_OK) st = st_load_f32(out, "eval.u", 2, bn, ref_u);
    if (st == RAMC_OK) st = json_load_file(GOLDEN "/classes.json", 1 << 20, &classes);
    st_close(in);
    st_close(out);
    if (st != RAMC_OK) {
        fprintf(stderr, "cannot load the golden set: %s\n", ramc_last_error());
        return 0;
    }
    const cJSON *all = cJSON_GetObjectItemCaseSensitive(classes, "all");
    if (cJSON_GetArraySize(all) != C) return 0;
    for (int i = 0; i < C; i++) names[i] = cJSON_GetArrayItem(all, i)->valuestring;
    return 1;
}


static ramc_model *load_model(int with_adapter) {
    ramc_clip_params p = ramc_clip_default_params();
    p.vision_heads = 2, p.text_heads = 2;
    ramc_model *m = NULL;
    ramc_status st = ramc_model_load(GOLDEN "/weights.safetensors",
                                     with_adapter ? GOLDEN "/adapter.safetensors" : NULL, &p, &m);
    CHECK(st == RAMC_OK, "model_load: %s", ramc_last_error());
    return m;
}

/* ------------------------------------------------------------ parity */

static void test_parity(ramc_model *m, const ramc_tokenizer *tok) {
    ramc_labels *lb = NULL;
    ramc_status st = ramc_labels_encode(m, tok, names, C, NULL, &lb);
    CHECK(st == RAMC_OK, "labels_encode: %s", ramc_last_error());
    if (st) return;
    CHECK(ramc_labels_count(lb) == C, "count");
    CHECK(!strcmp(ramc_labels_name(lb, 3), "giraffe"), "name 3");
    CHECK(ramc_labels_name(lb, C) == NULL, "name out of range");
    ramc_predict_params p = ramc_predict_default_params();
    p.per_image_sinkhorn = 0; /* the official batch-coupled stop */
    float score[B * C], T[B * N * C], u[B * N];
    st = ramc_predict(m, lb, images, B, &p, score, T, u);
    CHECK(st == RAMC_OK, "predict: %s", ramc_last_error());
    double e = rel_err(score, ref_score, B * C);
    printf("parity: score rel err %.3g, plan %.3g, lpd %.3g\n", e, rel_err(T, ref_T, B * N * C),
           rel_err(u, ref_u, B * N));
    CHECK(e <= 1e-4, "score vs eval.score: rel err %g", e);
    CHECK(rel_err(T, ref_T, B * N * C) <= 1e-4, "plan vs eval.T");
    CHECK(rel_err(u, ref_u, B * N) <= 1e-4, "lpd vs eval.u");
    for (int b = 0; b < B; b++) {
        double sum = 0;
        for (int c = 0; c < C; c++) sum += score[b * C + c];
        CHECK_CLOSE(sum, 1.0, 1e-5, "scores sum to 1");
    }

    /* default template spelled out = NULL template */
    ramc_labels *lb2 = NULL;
    st = ramc_labels_encode(m, tok, names, C, "A photo of a {}.", &lb2);
    CHECK(st == RAMC_OK, "labels_encode with template: %s", ramc_last_error());
    float score2[B * C];
    if (st == RAMC_OK) {
        st = ramc_predict(m, lb2, images, B, &p, score2, NULL, NULL);
        CHECK(st == RAMC_OK && !memcmp(score, score2, sizeof score), "explicit default template");
    }
    ramc_labels_free(lb2);

    /* a different template changes the label features */
    st = ramc_labels_encode(m, tok, names, C, "a {} in the wild", &lb2);
    CHECK(st == RAMC_OK, "labels_encode other template: %s", ramc_last_error());
    if (st == RAMC_OK) {
        st = ramc_predict(m, lb2, images, B, &p, score2, NULL, NULL);
        CHECK(st == RAMC_OK && memcmp(score, score2, sizeof score), "other template differs");
    }
    ramc_labels_free(lb2);
    ramc_labels_free(lb);
}

/* ----------------------------------------------------- batch independence */

static void test_per_image(ramc_model *m, const ramc_tokenizer *tok) {
    ramc_labels *lb = NULL;
    if (ramc_labels_encode(m, tok, names, C, NULL, &lb) != RAMC_OK) {
        CHECK(0, "labels_encode: %s", ramc_last_error());
        return;
    }
    float batch[B * C], batch_T[B * N * C], batch_u[B * N];
    ramc_status st = ramc_predict(m, lb, images, B, NULL, batch, batch_T, batch_u);
    CHECK(st == RAMC_OK, "predict batch: %s", ramc_last_error());
    /* reversed order */
    static float rev_images[B * 3 * S * S];
    const size_t per = (size_t)3 * S * S;
    for (int b = 0; b < B; b++)
        memcpy(rev_images + b * per, images + (size_t)(B - 1 - b) * per, per * sizeof(float));
    float rev[B * C];
    st = ramc_predict(m, lb, rev_images, B, NULL, rev, NULL, NULL);
    CHECK(st == RAMC_OK, "predict reversed: %s", ramc_last_error());
    double max_alone = 0, max_rev = 0;
    int bitwise = 1;
    for (int b = 0; b < B; b++) {
        float alone[C], alone_T[N * C], alone_u[N];
        st = ramc_predict(m, lb, images + b * per, 1, NULL, alone, alone_T, alone_u);
        CHECK(st == RAMC_OK, "predict alone: %s", ramc_last_error());
        for (int c = 0; c < C; c++) {
            double d = fabs(alone[c] - batch[b * C + c]);
            if (d > max_alone) max_alone = d;
            double r = fabs(rev[(B - 1 - b) * C + c] - batch[b * C + c]);
            if (r > max_rev) max_rev = r;
        }
        bitwise &= !memcmp(alone, batch + b * C, sizeof alone) &&
                   !memcmp(alone_T, batch_T + b * N * C, sizeof alone_T) &&
                   !memcmp(alone_u, batch_u + b * N, sizeof alone_u);
    }
    printf("per-image: max |alone - batch| %.3g, |reversed - batch| %.3g, bitwise %s\n",
           max_alone, max_rev, bitwise ? "yes" : "no");
    /* default: per-image Sinkhorn and per-image towers -> bitwise equal */
    CHECK(bitwise, "alone vs in batch not bitwise equal (max diff %g)", max_alone);
    CHECK(max_rev == 0, "reversed batch: %g", max_rev);

    /* fused batch: the same to float rounding (BLAS blocking differs) */
    ramc_predict_params fp = ramc_predict_default_params();
    fp.fuse_batch = 1;
    float fused[B * C];
    st = ramc_predict(m, lb, images, B, &fp, fused, NULL, NULL);
    CHECK(st == RAMC_OK, "fused: %s", ramc_last_error());
    double ef = rel_err(fused, batch, B * C);
    printf("fused batch vs per-image: rel err %.3g\n", ef);
    CHECK(ef <= 1e-5, "fused batch: %g", ef);

    /* and the batch-coupled mode does depend on the batch here (the golden
     * set's items stop at different iterations), which is why per-image is
     * the default for prediction */
    ramc_predict_params p = ramc_predict_default_params();
    p.per_image_sinkhorn = 0;
    float coupled[B * C];
    st = ramc_predict(m, lb, images, B, &p, coupled, NULL, NULL);
    CHECK(st == RAMC_OK, "coupled");
    printf("per-image vs batch-coupled max diff %.3g\n", rel_err(batch, coupled, B * C));
    ramc_labels_free(lb);
}

/* ------------------------------------------- baseline and zero-shot path */

static void count_tap(void *user, const char *name, const float *data, int ndim,
                      const int64_t *shape) {
    (void)name, (void)data, (void)ndim, (void)shape;
    (*(int *)user)++;
}

static void test_baseline(ramc_model *m_ad, ramc_model *m_zs, const ramc_tokenizer *tok) {
    ramc_clip_info in = ramc_model_get_info(m_zs);
    const int D = in.embed_dim, L = in.context_length, N1 = in.n_patches + 1;
    CHECK(in.image_size == S && in.grid == 4 && in.n_patches == N, "model info");
    CHECK(ramc_model_has_adapter(m_ad) && !ramc_model_has_adapter(m_zs), "has_adapter");

    /* expected: softmax_c(exp(ls) * cos(img_glb, text)) of the frozen CLIP */
    int32_t *ids = calloc((size_t)C * L, sizeof *ids);
    float *text = malloc((size_t)C * D * sizeof(float));
    float *tokens = malloc((size_t)B * N1 * D * sizeof(float));
    float expect[B * C];
    for (int c = 0; c < C; c++) {
        char prompt[128];
        snprintf(prompt, sizeof prompt, "A photo of a %s.", names[c]);
        CHECK(ramc_tokenize(tok, prompt, ids + (size_t)c * L, L) == RAMC_OK, "tokenize");
    }
    CHECK(ramc_clip_encode_text(m_zs->clip, ids, C,
                                text) == RAMC_OK, "encode_text");
    CHECK(ramc_clip_encode_image(m_zs->clip, images,
                                 B, tokens) == RAMC_OK, "encode_image");
    const double ls = exp(in.logit_scale);
    for (int b = 0; b < B; b++) {
        const float *g = tokens + (size_t)b * N1 * D; /* row 0: the class token */
        double gn = 0, z[C], zmax = -INFINITY, zs = 0;
        for (int k = 0; k < D; k++) gn += (double)g[k] * g[k];
        for (int c = 0; c < C; c++) {
            double dot = 0, tn = 0;
            for (int k = 0; k < D; k++) dot += (double)g[k] * text[c * D + k], tn += (double)text[c * D + k] * text[c * D + k];
            z[c] = ls * dot / sqrt(gn * tn);
            if (z[c] > zmax) zmax = z[c];
        }
        for (int c = 0; c < C; c++) zs += exp(z[c] - zmax);
        for (int c = 0; c < C; c++) expect[b * C + c] = (float)(exp(z[c] - zmax) / zs);
    }
    ramc_predict_params p = ramc_predict_default_params();
    p.mode = RAMC_PREDICT_CLIP_BASELINE;
    for (int which = 0; which < 2; which++) {
        ramc_model *m = which ? m_ad : m_zs;
        ramc_labels *lb = NULL;
        CHECK(ramc_labels_encode(m, tok, names, C, NULL, &lb) == RAMC_OK, "labels: %s", ramc_last_error());
        float got[B * C];
        ramc_status st = ramc_predict(m, lb, images, B, &p, got, NULL, NULL);
        CHECK(st == RAMC_OK, "baseline predict: %s", ramc_last_error());
        double e = rel_err(got, expect, B * C);
        printf("baseline (%s adapter loaded): rel err %.3g\n", which ? "with" : "no", e);
        CHECK(e <= 1e-5, "baseline vs softmax(exp(ls) cos): %g", e);
        float plan[B * N * C];
        CHECK(ramc_predict(m, lb, images, B, &p, got, plan, NULL) == RAMC_ERR_INVALID_ARG,
              "baseline has no plan");
        ramc_labels_free(lb);
    }

    /* zero-shot RAM (no adapter): SAA side stream + KCOT, tau_g = 1/exp(ls), tau_l = 2e-3 */
    ramc_labels *lb = NULL;
    CHECK(ramc_labels_encode(m_zs, tok, names, C, NULL, &lb) == RAMC_OK, "labels");
    float got[B * C];
    /* fused, so the matrix products have the shapes of the composition below */
    ramc_predict_params zp = ramc_predict_default_params();
    zp.fuse_batch = 1;
    ramc_status st = ramc_predict(m_zs, lb, images, B, &zp, got, NULL, NULL);
    CHECK(st == RAMC_OK, "zero-shot predict: %s", ramc_last_error());
    const ramc_clip *clip = m_zs->clip;
    const int W = in.vision_width;
    float *x = malloc((size_t)B * N1 * W * sizeof(float)), *xl = malloc((size_t)B * N1 * W * sizeof(float));
    float *g = malloc((size_t)B * D * sizeof(float)), *f = malloc((size_t)B * N * D * sizeof(float));
    ram_head h;
    CHECK(ram_vision_forward(clip, NULL, NULL, images, B, text, C, 0, x, xl, NULL, NULL) == RAMC_OK, "vision");
    CHECK(ram_image_features(clip, NULL, x, xl, B, g, f) == RAMC_OK, "features");
    {
        /* the last block computes only the class token when nothing else is
         * read; a tap asks for every row: both must agree where it counts */
        float *xt = malloc((size_t)B * N1 * W * sizeof(float));
        float *xlt = malloc((size_t)B * N1 * W * sizeof(float));
        int taps = 0;
        CHECK(ram_vision_forward(clip, NULL, NULL, images, B, text, C, 0, xt, xlt, count_tap, &taps) ==
                  RAMC_OK, "vision with a tap");
        CHECK(taps > 0, "the tap was called");
        double ex = 0;
        for (int b = 0; b < B; b++)
            ex = fmax(ex, rel_err(x + (size_t)b * N1 * W, xt + (size_t)b * N1 * W, (size_t)W));
        printf("class token, last block on its row alone vs every row: rel err %.3g\n", ex);
        CHECK(ex <= 1e-5, "class token of the last block: %g", ex);
        CHECK(rel_err(xl, xlt, (size_t)B * N1 * W) <= 1e-6, "side stream: %g",
              rel_err(xl, xlt, (size_t)B * N1 * W));
        free(xt), free(xlt);
    }
    CHECK(ram_head_alloc(&h, NULL, B, N, C, D, 100) == RAMC_OK, "head");
    sinkhorn_options opt = sinkhorn_default_options();
    opt.mode = SINKHORN_PER_IMAGE;
    CHECK(ram_head_forward(&h, g, f, text, (float)ls, 1.0f / (float)ls, 2e-3f, NULL, &opt) == RAMC_OK,
          "head forward");
    double e = rel_err(got, h.score, B * C);
    printf("zero-shot RAM vs low-level composition: rel err %.3g\n", e);
    CHECK(e <= 1e-6, "zero-shot: %g", e);
    /* the zero-shot scores differ from the baseline's (the local branch counts) */
    CHECK(rel_err(got, expect, B * C) > 1e-3, "zero-shot differs from the baseline");
    ram_head_free(&h);
    free(x), free(xl), free(g), free(f);
    ramc_labels_free(lb);
    free(ids), free(text), free(tokens);
}

/* ------------------------------------------------------------- errors */

static void expect_labels_error(ramc_model *m, const ramc_tokenizer *tok, const char *const *n,
                                int count, const char *tmpl, ramc_status want, const char *needle) {
    ramc_labels *lb = (ramc_labels *)1;
    ramc_status st = ramc_labels_encode(m, tok, n, count, tmpl, &lb);
    CHECK(st == want, "labels_encode: got %s (%s), want %s", ramc_status_name(st), ramc_last_error(),
          ramc_status_name(want));
    CHECK(lb == NULL, "no label set on error");
    CHECK(strstr(ramc_last_error(), needle) != NULL, "message '%s' lacks '%s'", ramc_last_error(), needle);
}

static void test_errors(ramc_model *m, ramc_model *m2, const ramc_tokenizer *tok) {
    const char *empty[] = {"cat", ""}, *blank[] = {"  \t"}, *bad_utf8[] = {"cat", "dog\xff"};
    const char *overlong_seq[] = {"\xc0\xaf"}, *surrogate[] = {"\xed\xa0\x80"}, *dup[] = {"cat", "dog", "cat"};
    expect_labels_error(m, tok, names, 0, NULL, RAMC_ERR_INVALID_ARG, "empty");
    expect_labels_error(m, tok, NULL, 3, NULL, RAMC_ERR_INVALID_ARG, "empty");
    expect_labels_error(m, tok, empty, 2, NULL, RAMC_ERR_INVALID_ARG, "label 2: empty");
    expect_labels_error(m, tok, blank, 1, NULL, RAMC_ERR_INVALID_ARG, "label 1: empty");
    expect_labels_error(m, tok, bad_utf8, 2, NULL, RAMC_ERR_FORMAT, "label 2: invalid UTF-8 at byte 3");
    expect_labels_error(m, tok, overlong_seq, 1, NULL, RAMC_ERR_FORMAT, "invalid UTF-8");
    expect_labels_error(m, tok, surrogate, 1, NULL, RAMC_ERR_FORMAT, "invalid UTF-8");
    expect_labels_error(m, tok, dup, 3, NULL, RAMC_ERR_INVALID_ARG, "duplicate of label 1");
    expect_labels_error(m, tok, names, C, "no slot", RAMC_ERR_INVALID_ARG, "exactly one");
    expect_labels_error(m, tok, names, C, "{} and {}", RAMC_ERR_INVALID_ARG, "exactly one");
    expect_labels_error(m, tok, names, C, "a {0} {}", RAMC_ERR_INVALID_ARG, "braces");
    char *big = malloc(RAMC_MAX_LABEL_BYTES + 2);
    memset(big, 'a', RAMC_MAX_LABEL_BYTES + 1);
    big[RAMC_MAX_LABEL_BYTES + 1] = 0;
    const char *long_name[] = {big};
    expect_labels_error(m, tok, long_name, 1, NULL, RAMC_ERR_LIMIT, "at most 1024");
    /* within the byte limit but longer than the context: refused rather than
     * silently cut to 77 tokens (docs/limits.md) */
    big[RAMC_MAX_LABEL_BYTES] = 0;
    expect_labels_error(m, tok, long_name, 1, NULL, RAMC_ERR_LIMIT, "would be cut");
    ramc_labels *lb = NULL;
    free(big);
    {
        /* 68 words + "a photo of a" + "." + SOT + EOT = 74 tokens: fits; 74 words do not */
        char words[74 * 4 + 1] = "";
        for (int i = 0; i < 68; i++) strcat(words, "dog ");
        const char *fits[] = {words};
        CHECK(ramc_labels_encode(m, tok, fits, 1, NULL, &lb) == RAMC_OK, "68-word label: %s",
              ramc_last_error());
        ramc_labels_free(lb);
        lb = NULL;
        for (int i = 68; i < 74; i++) strcat(words, "dog ");
        expect_labels_error(m, tok, fits, 1, NULL, RAMC_ERR_LIMIT, "77 tokens");
    }
    const char *nbsp[] = {"cat", "\xc2\xa0\xe3\x80\x80"};
    expect_labels_error(m, tok, nbsp, 2, NULL, RAMC_ERR_INVALID_ARG, "label 2: empty name");
    const char *same[] = {"Red Star", "cat", "red   star"};
    expect_labels_error(m, tok, same, 3, NULL, RAMC_ERR_INVALID_ARG,
                        "label 1 \"Red Star\" and label 3 \"red   star\" give the same tokens");
    const char **many = malloc((RAMC_MAX_LABELS + 1) * sizeof *many);
    for (int i = 0; i <= RAMC_MAX_LABELS; i++) many[i] = "x";
    expect_labels_error(m, tok, many, RAMC_MAX_LABELS + 1, NULL, RAMC_ERR_LIMIT, "at most 4096");
    free(many);

    /* a non-ASCII but valid label works */
    const char *unicode[] = {"café", "naïve bäcker", "寿司"};
    lb = NULL;
    CHECK(ramc_labels_encode(m, tok, unicode, 3, NULL, &lb) == RAMC_OK, "unicode labels: %s",
          ramc_last_error());

    /* prediction errors */
    float score[B * C];
    ramc_labels *lb_other = NULL;
    CHECK(ramc_labels_encode(m2, tok, names, C, NULL, &lb_other) == RAMC_OK, "labels m2");
    CHECK(ramc_predict(m, lb_other, images, 1, NULL, score, NULL, NULL) == RAMC_ERR_MISMATCH,
          "labels of another model");
    CHECK(ramc_predict(m, lb, images, 0, NULL, score, NULL, NULL) == RAMC_ERR_LIMIT, "B = 0");
    CHECK(ramc_predict(m, lb, NULL, 1, NULL, score, NULL, NULL) == RAMC_ERR_INVALID_ARG, "no images");
    ramc_predict_params p = ramc_predict_default_params();
    p.reg = 0;
    CHECK(ramc_predict(m, lb, images, 1, &p, score, NULL, NULL) == RAMC_ERR_INVALID_ARG, "reg 0");
    p = ramc_predict_default_params();
    p.mode = 7;
    CHECK(ramc_predict(m, lb, images, 1, &p, score, NULL, NULL) == RAMC_ERR_INVALID_ARG, "mode 7");
    static float nan_img[3 * S * S];
    memcpy(nan_img, images, sizeof nan_img);
    nan_img[100] = NAN;
    CHECK(ramc_predict(m, lb, nan_img, 1, NULL, score, NULL, NULL) == RAMC_ERR_NUMERIC, "NaN image");
    /* small reg goes to the log-domain solver instead of failing */
    p = ramc_predict_default_params();
    p.reg = 0.005f;
    ramc_status st = ramc_predict(m, lb, images, 1, &p, score, NULL, NULL);
    CHECK(st == RAMC_OK, "reg 0.005: %s", ramc_last_error());
    ramc_labels_free(lb);
    ramc_labels_free(lb_other);

    /* loading errors name the file */
    ramc_model *bad = (ramc_model *)1;
    st = ramc_model_load("/nonexistent/w.safetensors", NULL, NULL, &bad);
    CHECK(st != RAMC_OK && bad == NULL, "missing weights");
    CHECK(strstr(ramc_last_error(), "/nonexistent/w.safetensors") != NULL, "message: %s", ramc_last_error());
    st = ramc_model_load(GOLDEN "/weights.safetensors", GOLDEN "/inputs.safetensors", NULL, &bad);
    CHECK(st != RAMC_OK && bad == NULL, "inputs file as adapter: %s", ramc_last_error());
}

/* ----------------------------------------------------------- pictures */

static void test_heatmap(void) {
    uint8_t px[8 * 6 * 3];
    for (size_t i = 0; i < sizeof px; i++) px[i] = (uint8_t)(i * 7);
    ramc_image img = {8, 6, px}, out = {0};
    float zeros[4] = {0, 0, 0, 0}, hot[4] = {0, 0, 0, 5}, neg[4] = {0, -1, 0, 0};
    CHECK(ramc_heatmap_overlay(&img, zeros, 2, 0.0f, &out) == RAMC_OK, "alpha 0");
    CHECK(out.width == 8 && out.height == 6 && !memcmp(out.rgb, px, sizeof px), "alpha 0 is the image");
    ramc_image_free(&out);
    CHECK(ramc_heatmap_overlay(&img, hot, 2, 1.0f, &out) == RAMC_OK, "alpha 1");
    /* top-left: value 0 -> dark blue; bottom-right: max -> dark red */
    CHECK(out.rgb[0] == 0 && out.rgb[1] == 0 && out.rgb[2] == 128, "low end %d %d %d", out.rgb[0],
          out.rgb[1], out.rgb[2]);
    const uint8_t *br = out.rgb + (5 * 8 + 7) * 3;
    CHECK(br[0] == 128 && br[1] == 0 && br[2] == 0, "high end %d %d %d", br[0], br[1], br[2]);
    ramc_image_free(&out);
    CHECK(ramc_heatmap_overlay(&img, neg, 2, 0.5f, &out) == RAMC_ERR_NUMERIC, "negative value");
    CHECK(ramc_heatmap_overlay(&img, hot, 2, 1.5f, &out) == RAMC_ERR_INVALID_ARG, "alpha > 1");

    const float *maps[6] = {zeros, hot, hot, hot, hot, hot};
    const char *titles[6] = {"LPD", "giraffe 0.51", "x", "y", "z", "w"};
    CHECK(ramc_explain_overview(&img, "img", maps, titles, 6, 2, 0.5f, &out) == RAMC_OK,
          "overview: %s", ramc_last_error());
    /* 7 panels: 5 per row, 2 rows */
    CHECK(out.width == 5 * (8 + 4) + 4, "overview width %d", out.width);
    CHECK(out.height == 2 * (6 + 5 + 8) + 4, "overview height %d", out.height);

    char dir[] = "/tmp/ramc_test_predict_XXXXXX", path[128];
    if (mkdtemp(dir)) {
        snprintf(path, sizeof path, "%s/o.png", dir);
        CHECK(ramc_explain_write_png(&out, path) == RAMC_OK, "write png: %s", ramc_last_error());
        ramc_image back = {0};
        CHECK(ramc_image_load(path, &back) == RAMC_OK, "reload png");
        CHECK(back.width == out.width && back.height == out.height &&
                  !memcmp(back.rgb, out.rgb, (size_t)out.width * out.height * 3),
              "png round trip");
        ramc_image_free(&back);
        snprintf(path, sizeof path, "%s/missing/o.png", dir);
        CHECK(ramc_explain_write_png(&out, path) != RAMC_OK, "write into a missing folder");
        snprintf(path, sizeof path, "%s/o.png", dir);
        unlink(path);
        rmdir(dir);
    }
    ramc_image_free(&out);
}

int main(void) {
    if (!load_golden()) {
        CHECK(0, "golden set");
        return test_summary("test_predict");
    }
    ramc_tokenizer *tok = NULL;
    CHECK(ramc_tokenizer_load(VOCAB, &tok) == RAMC_OK, "tokenizer: %s", ramc_last_error());
    ramc_model *m = load_model(1), *m_zs = load_model(0);
    if (tok && m && m_zs) {
        test_parity(m, tok);
        test_parity(m, NULL); /* the default vocabulary from the data folder */
        test_per_image(m, tok);
        test_per_image(m_zs, tok);
        test_baseline(m, m_zs, tok);
        test_errors(m, m_zs, tok);
    }
    test_heatmap();
    ramc_model_free(m);
    ramc_model_free(m_zs);
    ramc_tokenizer_free(tok);
    cJSON_Delete(classes);
    return test_summary("test_predict");
}
