/* Finite-difference check of CLIP's full training backward (pretrain-clip):
 * every weight tensor of both towers and the logit scale, through the
 * symmetric InfoNCE loss, on a tiny random CLIP. Also: the training forwards
 * agree with the inference encoders (the text one computes only the rows up
 * to the last EOT), the loss's own gradients by finite differences, the clamp
 * at ln(100), and the parameter table / shadow layout.
 *
 * Numerics. Float32 forward, loss ≈ 1.1. Central differences with
 * h = 1e-2 · max(1, |x|) (x ± h exact in float for these magnitudes up to one
 * rounding); float rounding noise of a loss evaluation is ~1e-7, so ~5e-6 in
 * the difference quotient. An element passes when
 * |fd - g| <= 3e-2 · max(|fd|, |g|) + 3e-5 (truncation O(h²) observed below
 * 1e-2 relative). Per tensor: the element with the largest analytic gradient
 * plus 4 random ones; the largest must exceed the absolute allowance 10x, so
 * no tensor passes vacuously (with one exception: none here). */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/clip.h"
#include "core/rng.h"
#include "train/clip_train.h"
#include "test.h"

enum { B = 3 };

typedef struct {
    ramc_clip *m;
    const float *images;
    const int32_t *tokens;
    clip_vision_acts va;
    clip_text_acts ta;
    float *fi, *ft;
} setup;

static double eval_loss(setup *s, float scale) {
    double loss = 0;
    const int D = s->m->info.embed_dim;
    if (clip_vision_forward_train(s->m, &s->va, s->images, B, s->fi) ||
        clip_text_forward_train(s->m, &s->ta, s->tokens, B, s->ft) ||
        clip_contrastive_loss(s->fi, s->ft, B, D, scale, &loss, NULL, NULL, NULL, NULL, NULL))
        return NAN;
    return loss;
}

static double urand(ramc_rng *r) { return (double)(rng_next(r) >> 11) / 9007199254740992.0; }

static int fd_ok(double fd, double g) {
    return fabs(fd - g) <= 3e-2 * fmax(fabs(fd), fabs(g)) + 3e-5;
}

static void test_loss_fd(void) {
    enum { N = 5, D = 4 };
    ramc_rng r;
    rng_seed(&r, 7);
    float img[N * D], txt[N * D], di[N * D], dt[N * D], ds;
    for (int i = 0; i < N * D; i++) img[i] = (float)(urand(&r) * 2 - 1), txt[i] = (float)(urand(&r) * 2 - 1);
    float s = 2.0f;
    double L0;
    CHECK(!clip_contrastive_loss(img, txt, N, D, s, &L0, di, dt, &ds, NULL, NULL), "loss");
    int bad = 0;
    for (int k = 0; k < 2 * N * D + 1; k++) {
        float *x = k < N * D ? &img[k] : k < 2 * N * D ? &txt[k - N * D] : &s;
        double g = k < N * D ? di[k] : k < 2 * N * D ? dt[k - N * D] : ds;
        float x0 = *x, h = 1e-2f;
        double lp, lm;
        *x = x0 + h;
        clip_contrastive_loss(img, txt, N, D, s, &lp, NULL, NULL, NULL, NULL, NULL);
        *x = x0 - h;
        clip_contrastive_loss(img, txt, N, D, s, &lm, NULL, NULL, NULL, NULL, NULL);
        *x = x0;
        double fd = (lp - lm) / (2.0 * h);
        if (!fd_ok(fd, g)) {
            bad++;
            fprintf(stderr, "loss element %d: fd %.8g analytic %.8g\n", k, fd, g);
        }
    }
    CHECK(bad == 0, "%d loss gradient elements off", bad);
    /* clamped: exp(s) stops at 100, d/ds = 0, the loss is that of ln(100) */
    double Lc, L100;
    clip_contrastive_loss(img, txt, N, D, 6.0f, &Lc, NULL, NULL, &ds, NULL, NULL);
    clip_contrastive_loss(img, txt, N, D, CLIP_MAX_LOGIT_SCALE, &L100, NULL, NULL, NULL, NULL, NULL);
    CHECK(ds == 0.0f && Lc == L100, "clamp: ds %g, loss %g vs %g", ds, Lc, L100);
    /* perfectly matched, well separated pairs: loss near 0, all correct */
    float e[N * N];
    memset(e, 0, sizeof e);
    for (int i = 0; i < N; i++) e[i * N + i] = 1;
    int ci, ct;
    double Lp;
    clip_contrastive_loss(e, e, N, N, CLIP_MAX_LOGIT_SCALE, &Lp, NULL, NULL, NULL, &ci, &ct);
    CHECK(Lp < 1e-10 && ci == N && ct == N, "perfect pairs: loss %g, correct %d %d", Lp, ci, ct);
}

/* The image-to-label term: finite differences, a value computed by hand,
 * rows without a positive left out, two positives sharing the target. */
static void test_label_loss(void) {
    enum { B = 4, K = 5, D = 3 };
    ramc_rng r;
    rng_seed(&r, 9);
    float img[B * D], lab[K * D], di[B * D], dl[K * D], ds;
    for (int i = 0; i < B * D; i++) img[i] = (float)(urand(&r) * 2 - 1);
    for (int i = 0; i < K * D; i++) lab[i] = (float)(urand(&r) * 2 - 1);
    const unsigned char pos[B * K] = {1, 0, 0, 0, 0, /* one positive */
                                      0, 0, 1, 1, 0, /* two */
                                      0, 0, 0, 0, 0, /* none: left out */
                                      0, 0, 0, 0, 1};
    float s = 1.5f;
    double L0;
    int counted, correct;
    CHECK(!clip_label_loss(img, lab, pos, B, K, D, s, &L0, di, dl, &ds, &counted, &correct),
          "label loss");
    CHECK(counted == 3, "label loss counted %d images, expected 3", counted);
    int bad = 0;
    for (int k = 0; k < B * D + K * D + 1; k++) {
        float *x = k < B * D ? &img[k] : k < B * D + K * D ? &lab[k - B * D] : &s;
        double g = k < B * D ? di[k] : k < B * D + K * D ? dl[k - B * D] : ds;
        float x0 = *x, h = 1e-2f;
        double lp, lm;
        *x = x0 + h;
        clip_label_loss(img, lab, pos, B, K, D, s, &lp, NULL, NULL, NULL, NULL, NULL);
        *x = x0 - h;
        clip_label_loss(img, lab, pos, B, K, D, s, &lm, NULL, NULL, NULL, NULL, NULL);
        *x = x0;
        double fd = (lp - lm) / (2.0 * h);
        if (!fd_ok(fd, g)) {
            bad++;
            fprintf(stderr, "label loss element %d: fd %.8g analytic %.8g\n", k, fd, g);
        }
    }
    CHECK(bad == 0, "%d label loss gradient elements off", bad);
    for (int k = 2 * D; k < 3 * D; k++) /* the image without a positive gets no gradient */
        CHECK(di[k] == 0.0f, "image without labels has gradient %g", di[k]);

    /* by hand: unit vectors, cos = 1 to label 0 and 0 to label 1, scale e^0 = 1:
     * one positive (label 0): -log(e / (e + 1)); both positive: the mean of
     * -log(e/(e+1)) and -log(1/(e+1)) */
    const float a[2] = {1, 0}, b[4] = {1, 0, 0, 1};
    const unsigned char p1[2] = {1, 0}, p2[2] = {1, 1};
    double L1, L2;
    clip_label_loss(a, b, p1, 1, 2, 2, 0.0f, &L1, NULL, NULL, NULL, NULL, &correct);
    const double e = exp(1.0);
    CHECK(fabs(L1 - -log(e / (e + 1))) < 1e-6 && correct == 1, "one positive: %.9g", L1);
    clip_label_loss(a, b, p2, 1, 2, 2, 0.0f, &L2, NULL, NULL, NULL, NULL, NULL);
    CHECK(fabs(L2 - 0.5 * (-log(e / (e + 1)) - log(1 / (e + 1)))) < 1e-6, "two positives: %.9g", L2);
    /* no positive anywhere: 0 and no gradient */
    const unsigned char p0[2] = {0, 0};
    float g0[2] = {5, 5};
    clip_label_loss(a, b, p0, 1, 2, 2, 0.0f, &L0, g0, NULL, &ds, &counted, NULL);
    CHECK(L0 == 0.0 && g0[0] == 0.0f && g0[1] == 0.0f && ds == 0.0f && counted == 0,
          "no positive: loss %g", L0);
}

int main(void) {
    test_loss_fd();
    test_label_loss();

    ramc_clip_info shape = {0};
    shape.image_size = 16, shape.patch_size = 8;
    shape.vision_width = 16, shape.vision_layers = 2, shape.vision_heads = 2, shape.vision_mlp = 64;
    shape.text_width = 16, shape.text_layers = 2, shape.text_heads = 2, shape.text_mlp = 64;
    shape.context_length = 8, shape.vocab_size = 20, shape.embed_dim = 8;
    ramc_clip *m = NULL;
    if (clip_create_random(&shape, 11, &m)) {
        fprintf(stderr, "%s\n", ramc_last_error());
        return 1;
    }
    clip_param tab[CLIP_MAX_PARAMS(m)];
    int np = 0;
    size_t total = 0;
    CHECK(!clip_param_table(m, tab, &np, &total), "table: %s", ramc_last_error());
    CHECK(np == CLIP_MAX_PARAMS(m), "table: %d tensors", np);
    size_t sum = 0;
    for (int i = 0; i < np; i++) {
        CHECK(tab[i].offset == sum, "%s: offset %zu, expected contiguous %zu", tab[i].name,
              tab[i].offset, sum);
        sum += tab[i].numel;
    }
    CHECK(sum == total, "table spans %zu of %zu", sum, total);

    /* move every weight off CLIP's initial values (LayerNorm 1/0, zero
     * biases) so that every gradient is generic */
    ramc_rng r;
    rng_seed(&r, 3);
    for (size_t i = 0; i < total; i++) m->storage[i] += (float)(0.1 * (urand(&r) * 2 - 1));

    const int S = shape.image_size, L = shape.context_length, V = shape.vocab_size;
    const int D = shape.embed_dim;
    float images[B * 3 * 16 * 16];
    for (int i = 0; i < B * 3 * S * S; i++) images[i] = (float)(urand(&r) * 2 - 1);
    /* [SOT] words [EOT] 0...: lengths 3, 5, 4, so rows differ per item and
     * the text forward computes T = 5 of the 8 rows */
    int32_t tokens[B * 8] = {0};
    const int len[B] = {3, 5, 4};
    for (int b = 0; b < B; b++) {
        tokens[b * L] = V - 2;
        for (int t = 1; t < len[b] - 1; t++) tokens[b * L + t] = (int32_t)(rng_next(&r) % (V - 2));
        tokens[b * L + len[b] - 1] = V - 1;
    }

    setup s = {.m = m, .images = images, .tokens = tokens};
    s.fi = malloc(B * D * sizeof(float));
    s.ft = malloc(B * D * sizeof(float));
    CHECK(!clip_vision_acts_alloc(&s.va, m, B) && !clip_text_acts_alloc(&s.ta, m, B), "acts");

    /* the training forwards agree with the inference encoders */
    const int N1 = m->info.n_patches + 1;
    float *ref_i = malloc((size_t)B * N1 * D * sizeof(float)), ref_t[B * 8];
    CHECK(!ramc_clip_encode_image(m, images, B, ref_i), "encode_image");
    CHECK(!ramc_clip_encode_text(m, tokens, B, ref_t), "encode_text");
    CHECK(!clip_vision_forward_train(m, &s.va, images, B, s.fi), "vision forward");
    CHECK(!clip_text_forward_train(m, &s.ta, tokens, B, s.ft), "text forward");
    CHECK(s.ta.T == 5, "text rows computed: %d", s.ta.T);
    double dv = 0, dtx = 0;
    for (int b = 0; b < B; b++)
        for (int d = 0; d < D; d++) {
            dv = fmax(dv, fabs(s.fi[b * D + d] - ref_i[(size_t)b * N1 * D + d]));
            dtx = fmax(dtx, fabs(s.ft[b * D + d] - ref_t[b * D + d]));
        }
    CHECK(dv < 1e-5 && dtx < 1e-5, "training forward vs encoders: vision %g, text %g", dv, dtx);
    free(ref_i);

    /* analytic gradients */
    const float scale = 2.3f;
    float *grad = calloc(total, sizeof(float));
    ramc_clip *g = NULL;
    CHECK(!clip_shadow(m, grad, &g), "shadow");
    float dfi[B * 8], dft[B * 8], dscale;
    double L0;
    CHECK(!clip_contrastive_loss(s.fi, s.ft, B, D, scale, &L0, dfi, dft, &dscale, NULL, NULL), "loss");
    CHECK(!clip_vision_backward(m, &s.va, dfi, g), "vision backward");
    CHECK(!clip_text_backward(m, &s.ta, dft, g), "text backward");

    /* logit scale */
    {
        double lp = eval_loss(&s, scale + 1e-2f), lm = eval_loss(&s, scale - 1e-2f);
        double fd = (lp - lm) / 2e-2;
        CHECK(fd_ok(fd, dscale), "logit_scale: fd %.8g analytic %.8g", fd, dscale);
    }
    int tensors_bad = 0;
    for (int p = 0; p < np; p++) {
        const clip_param *e = &tab[p];
        float *w = m->storage + e->offset, *gw = grad + e->offset;
        size_t big = 0;
        for (size_t i = 1; i < e->numel; i++)
            if (fabsf(gw[i]) > fabsf(gw[big])) big = i;
        /* positional rows past the longest text get no gradient: pick within */
        size_t pick_n = e->numel;
        if (!strcmp(e->name, "positional_embedding")) {
            pick_n = (size_t)5 * shape.text_width;
            for (size_t i = pick_n; i < e->numel; i++)
                CHECK(gw[i] == 0.0f, "positional row past T has gradient %g", gw[i]);
        }
        int bad = 0;
        double maxrel = 0;
        for (int k = 0; k < 5; k++) {
            size_t i = k == 0 ? big : (size_t)(rng_next(&r) % pick_n);
            if (!strcmp(e->name, "token_embedding.weight") && k > 0) {
                /* an id that occurs in the batch */
                int32_t id = tokens[(rng_next(&r) % B) * L + rng_next(&r) % 3];
                i = (size_t)id * shape.text_width + rng_next(&r) % shape.text_width;
            }
            float x0 = w[i], h = 1e-2f * fmaxf(1.0f, fabsf(x0));
            w[i] = x0 + h;
            double lp = eval_loss(&s, scale);
            w[i] = x0 - h;
            double lm = eval_loss(&s, scale);
            w[i] = x0;
            double fd = (lp - lm) / (2.0 * h);
            if (!fd_ok(fd, gw[i])) {
                bad++;
                fprintf(stderr, "%s[%zu]: fd %.8g analytic %.8g\n", e->name, i, fd, gw[i]);
            }
            if (fabs(gw[i]) > 3e-4) maxrel = fmax(maxrel, fabs(fd - gw[i]) / fabs(gw[i]));
        }
        CHECK(fabsf(gw[big]) > 3e-4, "%s: largest gradient %g is too small to check", e->name,
              gw[big]);
        CHECK(bad == 0, "%s: %d of 5 elements off", e->name, bad);
        tensors_bad += bad != 0;
        printf("  %-42s |g|max %.3e  max rel err %.2e\n", e->name, fabsf(gw[big]), maxrel);
    }
    printf("%d tensors checked, %d with errors\n", np, tensors_bad);

    ramc_clip_free(g);
    free(grad);
    free(s.fi);
    free(s.ft);
    clip_vision_acts_free(&s.va);
    clip_text_acts_free(&s.ta);
    ramc_clip_free(m);
    return test_summary("test_clip_grad");
}
