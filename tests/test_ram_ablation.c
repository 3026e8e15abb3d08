/* The inference ablation switches (docs/ram.md, "Ablation switches"; paper
 * Tables 5 and 6) on the tiny golden model, each checked against a property
 * computed independently here, in double:
 *   (a) a = NULL with RAM_VISION_NO_SAA: the side stream follows the main
 *       stream, x_loc = x (up to the rounding of summing the per-block
 *       changes), so img_loc = (ln_post(x) @ proj)[:, 1:];
 *   (b) RAM_VISION_NO_TSS with the adapter: x_loc changes, the main stream x
 *       is bitwise the default's (TSS never feeds it); likewise NO_SAA, and
 *       NO_SAA|NO_TSS gives x_loc = x;
 *   (c) average pooling: logits_loc = mean_i sim / τ_l;
 *   (d) re-weighting: logits_loc = Σ_i softmax_i(exp(logit_scale)·sim)·sim / τ_l;
 *   (e) uniform source: u = 1/N, plan rows sum to 1/N, columns to 1/C;
 *   (f) the default path, run after all of the above (a reused head with the
 *       switches reset, and a fresh one), still reproduces the golden
 *       eval.score / eval.T to 1e-4. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"
#include "model/clip.h"
#include "ram/kcot.h"
#include "ram/ram.h"
#include "ram/ram_forward.h"
#include "test.h"

#define GOLDEN RAMC_GOLDEN_DIR "/tiny-s0"

enum { B = 4, C = 9, S = 32, N = 16, N1 = N + 1, W = 64, D = 32, L = 77 };

static float images[B * 3 * S * S], ref_score[B * C], ref_T[B * N * C];
static int32_t tokens[C * L];

static int load_golden(void) {
    st_file *in = NULL, *out = NULL;
    int64_t img_shape[4] = {B, 3, S, S}, bc[2] = {B, C}, bnc[3] = {B, N, C};
    int64_t tok64[C * L];
    ramc_status st = st_open(GOLDEN "/inputs.safetensors", &in);
    if (st == RAMC_OK) st = st_load_f32(in, "images", 4, img_shape, images);
    if (st == RAMC_OK) {
        const st_tensor *t = st_find(in, "text_tokens");
        st = t && t->ndim == 2 && t->shape[0] == C && t->shape[1] == L
                 ? st_read_i64(in, t, tok64)
                 : ramc_error(RAMC_ERR_MISMATCH, "text_tokens missing or misshaped");
    }
    if (st == RAMC_OK) st = st_open(GOLDEN "/outputs.safetensors", &out);
    if (st == RAMC_OK) st = st_load_f32(out, "eval.score", 2, bc, ref_score);
    if (st == RAMC_OK) st = st_load_f32(out, "eval.T", 3, bnc, ref_T);
    st_close(in);
    st_close(out);
    if (st != RAMC_OK) {
        fprintf(stderr, "cannot load the golden set: %s\n", ramc_last_error());
        return 0;
    }
    for (int i = 0; i < C * L; i++) tokens[i] = (int32_t)tok64[i];
    return 1;
}

/* rel_err (test.h) against a double-precision reference */
static double rel_err_d(const float *a, const double *b, size_t n) {
    double md = 0, mr = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > md || isnan(d)) md = isnan(d) ? INFINITY : d;
        if (fabs(b[i]) > mr) mr = fabs(b[i]);
    }
    return mr > 0 ? md / mr : md;
}

/* (ln_post(x[b, 1:]) @ proj) in double: out [B, N, D] */
static void project_patches_double(const ramc_clip *m, const float *x, double *out) {
    for (int b = 0; b < B; b++)
        for (int i = 0; i < N; i++) {
            const float *row = x + ((size_t)b * N1 + 1 + i) * W;
            double mean = 0, var = 0, h[W];
            for (int k = 0; k < W; k++) mean += row[k];
            mean /= W;
            for (int k = 0; k < W; k++) var += (row[k] - mean) * (row[k] - mean);
            var /= W;
            const double rstd = 1.0 / sqrt(var + 1e-5);
            for (int k = 0; k < W; k++)
                h[k] = (row[k] - mean) * rstd * m->ln_post_w[k] + m->ln_post_b[k];
            for (int d = 0; d < D; d++) {
                double s = 0;
                for (int k = 0; k < W; k++) s += h[k] * m->vis_proj[(size_t)k * D + d];
                out[((size_t)b * N + i) * D + d] = s;
            }
        }
}

/* cosine similarities sim [B, N, C] of img_loc [B, N, D] and text [C, D], in double */
static void sim_double(const float *img_loc, const float *text, double *sim) {
    double tn[C];
    for (int c = 0; c < C; c++) {
        double s = 0;
        for (int d = 0; d < D; d++) s += (double)text[c * D + d] * text[c * D + d];
        tn[c] = sqrt(s);
    }
    for (int r = 0; r < B * N; r++) {
        const float *f = img_loc + (size_t)r * D;
        double fn = 0;
        for (int d = 0; d < D; d++) fn += (double)f[d] * f[d];
        fn = sqrt(fn);
        for (int c = 0; c < C; c++) {
            double s = 0;
            for (int d = 0; d < D; d++) s += (double)f[d] * text[c * D + d];
            sim[(size_t)r * C + c] = s / (fn * tn[c]);
        }
    }
}

typedef struct {
    float x[B * N1 * W], x_loc[B * N1 * W];
} streams;

static int run_vision(const ramc_clip *m, const ram_adapter *a, const float *text, int flags,
                      streams *s) {
    ramc_status st = ram_vision_forward(m, NULL, a, images, B, text, C, flags, s->x, s->x_loc, NULL, NULL);
    CHECK(st == RAMC_OK, "ram_vision_forward(flags %d): %s", flags, ramc_last_error());
    return st == RAMC_OK;
}

/* max |a - b| over max |b| */
static double stream_diff(const float *a, const float *b) { return rel_err(a, b, (size_t)B * N1 * W); }

int main(void) {
    if (!load_golden()) {
        CHECK(0, "golden set %s", GOLDEN);
        return test_summary("test_ram_ablation");
    }
    ramc_clip_params p = ramc_clip_default_params();
    p.vision_heads = 2, p.text_heads = 2;
    ramc_clip *m = NULL;
    ram_adapter *a = NULL;
    ramc_status st = ramc_clip_load(GOLDEN "/weights.safetensors", &p, &m);
    CHECK(st == RAMC_OK, "ramc_clip_load: %s", ramc_last_error());
    if (st == RAMC_OK) {
        st = ram_adapter_load(GOLDEN "/adapter.safetensors", m, 0, &a);
        CHECK(st == RAMC_OK, "ram_adapter_load: %s", ramc_last_error());
    }
    if (st != RAMC_OK) {
        ramc_clip_free(m);
        return test_summary("test_ram_ablation");
    }
    const ramc_clip_info in = ramc_clip_get_info(m);
    CHECK(in.n_patches == N && in.vision_width == W && in.embed_dim == D && in.image_size == S,
          "tiny golden model info");
    const float scale = expf(in.logit_scale);
    const float tau_g = a->temperature->data[0], tau_l = a->temperature_loc->data[0];

    static float text[C * D], img_glb[B * D], img_loc[B * N * D];
    static streams def, nosaa, notss, none, plain;
    static double ref_loc[B * N * D], sim[B * N * C], want[B * C];

    st = ram_encode_text(m, a, tokens, C, text, NULL, NULL);
    CHECK(st == RAMC_OK, "ram_encode_text: %s", ramc_last_error());

    /* (a) zero-shot tower without SAA: x_loc follows x */
    if (run_vision(m, NULL, text, RAM_VISION_NO_SAA, &plain)) {
        double e = stream_diff(plain.x_loc, plain.x);
        int exact = !memcmp(plain.x_loc, plain.x, sizeof plain.x);
        printf("(a) a=NULL, NO_SAA: x_loc vs x rel err %.3g (%s)\n", e,
               exact ? "bitwise equal" : "equal up to rounding");
        /* x_loc = x0 + Σ_l (x_{l+1} - x_l) in float: equal to x up to a few ulps */
        CHECK(e <= 1e-6, "NO_SAA side stream vs main stream: rel err %g", e);
        /* and the main stream is the plain CLIP one: the default SAA tower's x */
        streams saa;
        if (run_vision(m, NULL, text, 0, &saa)) {
            /* only the class token of x is read after the last block (the SAA
             * tower computes only that row there): compare those rows */
            double ec = 0;
            for (int b = 0; b < B; b++) {
                const float *p0 = plain.x + (size_t)b * N1 * W, *s0 = saa.x + (size_t)b * N1 * W;
                for (int c = 0; c < W; c++)
                    ec = fmax(ec, fabs((double)s0[c] - p0[c]) / fmax(1.0, fabs((double)p0[c])));
            }
            CHECK(ec <= 1e-5, "a=NULL: NO_SAA changed the main stream's class token (%g)", ec);
            CHECK(stream_diff(saa.x_loc, plain.x_loc) > 1e-2,
                  "a=NULL: NO_SAA did not change the side stream (rel diff %g)",
                  stream_diff(saa.x_loc, plain.x_loc));
        }
        st = ram_image_features(m, NULL, plain.x, plain.x_loc, B, img_glb, img_loc);
        CHECK(st == RAMC_OK, "ram_image_features: %s", ramc_last_error());
        project_patches_double(m, plain.x, ref_loc);
        e = rel_err_d(img_loc, ref_loc, (size_t)B * N * D);
        printf("(a) img_loc vs (ln_post(x) @ proj)[:, 1:] in double: rel err %.3g\n", e);
        CHECK(e <= 1e-5, "NO_SAA img_loc vs ln_post(x) @ proj: rel err %g", e);
    }

    /* (b) the switches with the adapter: only the side stream changes */
    int have_def = run_vision(m, a, text, 0, &def);
    if (have_def && run_vision(m, a, text, RAM_VISION_NO_TSS, &notss)) {
        CHECK(!memcmp(def.x, notss.x, sizeof def.x), "NO_TSS changed the main stream (rel %g)",
              stream_diff(notss.x, def.x));
        double e = stream_diff(notss.x_loc, def.x_loc);
        printf("(b) NO_TSS: x bitwise equal to the default, x_loc rel diff %.3g\n", e);
        CHECK(e > 1e-3, "NO_TSS did not change the side stream (rel diff %g)", e);
    }
    if (have_def && run_vision(m, a, text, RAM_VISION_NO_SAA, &nosaa)) {
        CHECK(!memcmp(def.x, nosaa.x, sizeof def.x), "NO_SAA changed the main stream");
        double e = stream_diff(nosaa.x_loc, def.x_loc);
        printf("(b) NO_SAA: x bitwise equal to the default, x_loc rel diff %.3g\n", e);
        CHECK(e > 1e-3, "NO_SAA did not change the side stream (rel diff %g)", e);
        /* without SAA the side stream is x plus the TSS outputs: not x */
        CHECK(stream_diff(nosaa.x_loc, nosaa.x) > 1e-3, "NO_SAA with TSS: x_loc == x");
    }
    if (have_def && run_vision(m, a, text, RAM_VISION_NO_SAA | RAM_VISION_NO_TSS, &none)) {
        CHECK(!memcmp(def.x, none.x, sizeof def.x), "NO_SAA|NO_TSS changed the main stream");
        double e = stream_diff(none.x_loc, none.x);
        printf("(b) NO_SAA|NO_TSS: x_loc vs x rel err %.3g\n", e);
        CHECK(e <= 1e-6, "NO_SAA|NO_TSS: x_loc vs x rel err %g", e);
    }

    /* heads on the default features */
    ram_head h;
    st = ram_head_alloc(&h, NULL, B, N, C, D, 100);
    CHECK(st == RAMC_OK, "ram_head_alloc");
    if (st == RAMC_OK && have_def) {
        st = ram_image_features(m, NULL, def.x, def.x_loc, B, img_glb, img_loc);
        CHECK(st == RAMC_OK, "ram_image_features: %s", ramc_last_error());
        sim_double(img_loc, text, sim);
        sinkhorn_options so = sinkhorn_default_options();

        /* (c) average pooling */
        h.matching = RAM_MATCH_AVGPOOL;
        st = ram_head_forward(&h, img_glb, img_loc, text, scale, tau_g, tau_l, NULL, &so);
        CHECK(st == RAMC_OK, "avgpool head: %s", ramc_last_error());
        CHECK(rel_err_d(h.sim, sim, (size_t)B * N * C) <= 1e-5, "head sim vs double: %g",
              rel_err_d(h.sim, sim, (size_t)B * N * C));
        for (int b = 0; b < B; b++)
            for (int c = 0; c < C; c++) {
                double s = 0;
                for (int i = 0; i < N; i++) s += sim[((size_t)b * N + i) * C + c];
                want[b * C + c] = s / N / tau_l;
            }
        double e = rel_err_d(h.logits_loc, want, B * C);
        printf("(c) avgpool: logits_loc vs mean_i sim / tau_l: rel err %.3g\n", e);
        CHECK(e <= 1e-5, "avgpool logits_loc: rel err %g", e);
        {
            float z[B * C]; /* the score is still (softmax(z_glb) + softmax(z_loc)) / 2 */
            kcot_score(z, NULL, NULL, h.logits_glb, h.logits_loc, B, C);
            CHECK(!memcmp(z, h.score, sizeof z), "avgpool score");
        }

        /* (d) re-weighting */
        h.matching = RAM_MATCH_REWEIGHT;
        st = ram_head_forward(&h, img_glb, img_loc, text, scale, tau_g, tau_l, NULL, &so);
        CHECK(st == RAMC_OK, "reweight head: %s", ramc_last_error());
        double werr = 0;
        for (int b = 0; b < B; b++)
            for (int c = 0; c < C; c++) {
                double mx = -INFINITY, z = 0, num = 0;
                for (int i = 0; i < N; i++) mx = fmax(mx, sim[((size_t)b * N + i) * C + c]);
                for (int i = 0; i < N; i++) {
                    double s = sim[((size_t)b * N + i) * C + c], w = exp(scale * (s - mx));
                    z += w, num += w * s;
                }
                for (int i = 0; i < N; i++) { /* the weights the head keeps in T */
                    double s = sim[((size_t)b * N + i) * C + c];
                    werr = fmax(werr, fabs(h.T[((size_t)b * N + i) * C + c] -
                                           exp(scale * (s - mx)) / z));
                }
                want[b * C + c] = num / z / tau_l;
            }
        e = rel_err_d(h.logits_loc, want, B * C);
        printf("(d) reweight: logits_loc vs sum_i softmax_i(%.4g sim) sim / tau_l: rel err %.3g, "
               "weights max abs err %.3g\n", scale, e, werr);
        CHECK(e <= 1e-5, "reweight logits_loc: rel err %g", e);
        CHECK(werr <= 1e-5, "reweight weights (h.T): max abs err %g", werr);
        {
            /* re-weighting is not average pooling: the weights are far from 1/N */
            double wmax = 0;
            for (int i = 0; i < B * N * C; i++) wmax = fmax(wmax, h.T[i]);
            CHECK(wmax > 2.0 / N, "reweight weights look uniform (max %g)", wmax);
        }

        /* (e) uniform source marginal (plain OT at inference) */
        h.matching = RAM_MATCH_KCOT;
        h.uniform_source = 1;
        st = ram_head_forward(&h, img_glb, img_loc, text, scale, tau_g, tau_l, NULL, &so);
        CHECK(st == RAMC_OK, "uniform-source head: %s", ramc_last_error());
        int u_ok = 1;
        for (int i = 0; i < B * N; i++) u_ok &= h.u[i] == (float)(1.0 / N);
        CHECK(u_ok, "uniform source: u != 1/N");
        double row_err = 0, col_err = 0, plan_diff = 0;
        for (int b = 0; b < B; b++) {
            for (int i = 0; i < N; i++) {
                double s = 0;
                for (int c = 0; c < C; c++) s += h.T[((size_t)b * N + i) * C + c];
                row_err = fmax(row_err, fabs(s - 1.0 / N) * N);
            }
            for (int c = 0; c < C; c++) {
                double s = 0;
                for (int i = 0; i < N; i++) s += h.T[((size_t)b * N + i) * C + c];
                col_err = fmax(col_err, fabs(s - 1.0 / C) * C);
            }
        }
        for (int i = 0; i < B * N * C; i++) plan_diff = fmax(plan_diff, fabs(h.T[i] - ref_T[i]));
        printf("(e) uniform source: Sinkhorn %d iterations, row sums vs 1/N rel err %.3g, "
               "columns vs 1/C %.3g, plan differs from LPD's by %.3g\n", h.batch_iters, row_err,
               col_err, plan_diff);
        /* the stop test is mean_i |r - r_prev| < 1e-3: rows to ~1e-2 relative */
        CHECK(row_err <= 2e-2, "uniform source: plan rows vs 1/N rel err %g", row_err);
        CHECK(col_err <= 1e-5, "uniform source: plan columns vs 1/C rel err %g", col_err);
        CHECK(plan_diff > 1e-4, "uniform source: plan equals the LPD plan");
        {
            /* the logits are still Σ_i T·sim / τ_l with this plan */
            for (int b = 0; b < B; b++)
                for (int c = 0; c < C; c++) {
                    double s = 0;
                    for (int i = 0; i < N; i++)
                        s += (double)h.T[((size_t)b * N + i) * C + c] * sim[((size_t)b * N + i) * C + c];
                    want[b * C + c] = s / tau_l;
                }
            e = rel_err_d(h.logits_loc, want, B * C);
            CHECK(e <= 1e-5, "uniform source logits_loc: rel err %g", e);
        }

        /* (f) the default path after the ablations: the same head with the
         * switches reset, and a fresh head, both reproduce the golden set */
        h.uniform_source = 0;
        h.matching = RAM_MATCH_KCOT;
        st = ram_head_forward(&h, img_glb, img_loc, text, scale, tau_g, tau_l, NULL, &so);
        CHECK(st == RAMC_OK, "default head: %s", ramc_last_error());
        e = rel_err(h.score, ref_score, B * C);
        double eT = rel_err(h.T, ref_T, (size_t)B * N * C);
        printf("(f) default (reused head): score rel err %.3g, plan %.3g\n", e, eT);
        CHECK(e <= 1e-4, "default score vs eval.score: rel err %g", e);
        CHECK(eT <= 1e-4, "default plan vs eval.T: rel err %g", eT);
        ram_head h2;
        if (ram_head_alloc(&h2, NULL, B, N, C, D, 100) == RAMC_OK) {
            /* recompute the features too, after every flag above ran */
            streams again;
            if (run_vision(m, a, text, 0, &again)) {
                CHECK(!memcmp(again.x, def.x, sizeof def.x) &&
                          !memcmp(again.x_loc, def.x_loc, sizeof def.x_loc),
                      "default vision forward not reproducible after the ablations");
                ram_image_features(m, NULL, again.x, again.x_loc, B, img_glb, img_loc);
            }
            st = ram_head_forward(&h2, img_glb, img_loc, text, scale, tau_g, tau_l, NULL, &so);
            CHECK(st == RAMC_OK, "default head: %s", ramc_last_error());
            double e2 = rel_err(h2.score, ref_score, B * C);
            printf("(f) default (fresh head): score rel err %.3g\n", e2);
            CHECK(e2 <= 1e-4, "fresh default score vs eval.score: rel err %g", e2);
            CHECK(!memcmp(h2.score, h.score, sizeof(float) * B * C),
                  "reused head and fresh head disagree");
            ram_head_free(&h2);
        }
    }
    ram_head_free(&h);
    ram_adapter_free(a);
    ramc_clip_free(m);
    return test_summary("test_ram_ablation");
}
