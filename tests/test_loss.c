/* Losses: the spec §5.10 MMC vector, and every forward against a double
 * reference written here, every backward against central differences of that
 * reference. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "ram/loss.h"
#include "test.h"

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;
static double urand(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) / 9007199254740992.0;
}
static float frand(float lo, float hi) { return (float)(lo + (hi - lo) * urand()); }

enum { B = 3, C = 7, NZ = B * C };

typedef struct {
    const double *y, *w; /* targets; fixed ASL focusing weights */
    int kind;
    double margin;
} ctx_t;

typedef double (*ref_fn)(const double *z, const ctx_t *k);

static void fd_check(ref_fn f, const float *zf, const ctx_t *k, const float *g, double h,
                     double tol, const char *what) {
    double z[NZ], gmax = 1e-12, worst = 0;
    int wk = 0;
    for (int i = 0; i < NZ; i++) z[i] = zf[i], gmax = fmax(gmax, fabs(g[i]));
    for (int i = 0; i < NZ; i++) {
        double z0 = z[i];
        z[i] = z0 + h;
        double fp = f(z, k);
        z[i] = z0 - h;
        double fm = f(z, k);
        z[i] = z0;
        double e = fabs((fp - fm) / (2 * h) - g[i]) / gmax;
        if (e > worst) worst = e, wk = i;
    }
    CHECK(worst < tol, "%s: FD mismatch %.3g (of max |grad| %.3g) at %d", what, worst, gmax, wk);
}

/* ------------------------------------------------------------------ MMC */

static double ref_mmc(const double *z, const ctx_t *k) {
    double m = -INFINITY, s = 0, P = 0, acc = 0;
    for (int i = 0; i < NZ; i++) m = fmax(m, z[i]);
    for (int i = 0; i < NZ; i++) s += exp(z[i] - m);
    for (int i = 0; i < NZ; i++) P += k->y[i];
    if (P < 1e-6) P = 1;
    for (int i = 0; i < NZ; i++) acc += k->y[i] * (z[i] - m - log(s));
    return -acc / P;
}

static void test_mmc(void) {
    const float z6[6] = {2.0f, 0.5f, -1.0f, 0.0f, 1.5f, 0.3f}, y6[6] = {1, 0, 1, 0, 1, 0};
    const float y0[6] = {0};
    CHECK_CLOSE(loss_mmc_forward(z6, y6, 6), 1.9539719, 1e-6, "MMC §5.10");
    CHECK(loss_mmc_forward(z6, y0, 6) == 0.0f, "MMC all-zero mask = 0");
    float d0[6] = {0};
    loss_mmc_backward(d0, 1.0f, z6, y0, 6);
    int zero = 1;
    for (int i = 0; i < 6; i++) zero &= d0[i] == 0.0f;
    CHECK(zero, "MMC all-zero mask has zero gradient");
    /* the max is over the whole batch: shifting all logits changes nothing,
     * shifting one row does */
    float zs[6];
    for (int i = 0; i < 6; i++) zs[i] = z6[i] + 50.0f;
    CHECK_CLOSE(loss_mmc_forward(zs, y6, 6), 1.9539719, 1e-6, "MMC shift invariance");
    for (int i = 0; i < 3; i++) zs[i] = z6[i] + 1.0f, zs[i + 3] = z6[i + 3];
    CHECK(fabsf(loss_mmc_forward(zs, y6, 6) - 1.9539719f) > 1e-3f, "MMC couples the batch");

    float z[NZ], yf[NZ], g[NZ];
    double y[NZ];
    for (int i = 0; i < NZ; i++) {
        z[i] = frand(-3, 3);
        yf[i] = urand() < 0.35 ? 1.0f : 0.0f;
        y[i] = yf[i];
    }
    yf[0] = 1, y[0] = 1;
    ctx_t k = {y, NULL, 0, 0};
    double zd[NZ];
    for (int i = 0; i < NZ; i++) zd[i] = z[i];
    CHECK_CLOSE(loss_mmc_forward(z, yf, NZ), ref_mmc(zd, &k), 1e-6, "MMC vs double reference");
    for (int i = 0; i < NZ; i++) g[i] = 0.25f; /* accumulation */
    loss_mmc_backward(g, 2.0f, z, yf, NZ);
    for (int i = 0; i < NZ; i++) g[i] = (g[i] - 0.25f) / 2.0f;
    fd_check(ref_mmc, z, &k, g, 1e-6, 1e-5, "MMC gradient");
    /* soft targets */
    for (int i = 0; i < NZ; i++) yf[i] = frand(0, 1), y[i] = yf[i];
    memset(g, 0, sizeof g);
    loss_mmc_backward(g, 1.0f, z, yf, NZ);
    fd_check(ref_mmc, z, &k, g, 1e-6, 1e-5, "MMC gradient, soft targets");
}

/* ------------------------------------------------------------------ ASL */

static double sig(double x) { return 1.0 / (1.0 + exp(-x)); }

/* loss with the focusing weight frozen at k->w (as the no_grad official). */
static double ref_asl(const double *z, const ctx_t *k) {
    const double eps = 1e-5;
    double s = 0;
    for (int i = 0; i < NZ; i++) {
        double p = sig(z[i]), pn = 1 - p;
        double l = k->y[i] * log(fmax(p, eps)) + (1 - k->y[i]) * log(fmax(pn, eps));
        s += l * k->w[i];
    }
    return -s / B / C * 1000;
}

static void asl_weights(double *w, const float *z, const double *y) {
    for (int i = 0; i < NZ; i++) {
        double p = sig(z[i]);
        double base = 1 - p * y[i] - (1 - p) * (1 - y[i]);
        w[i] = pow(base, 0.0 * y[i] + 2.0 * (1 - y[i]));
    }
}

static void test_asl(void) {
    float z[NZ], yf[NZ], g[NZ];
    double y[NZ], w[NZ], zd[NZ];
    for (int i = 0; i < NZ; i++) {
        z[i] = frand(-4, 4);
        yf[i] = urand() < 0.4 ? 1.0f : 0.0f;
        y[i] = yf[i];
        zd[i] = z[i];
    }
    asl_weights(w, z, y);
    ctx_t k = {y, w, 0, 0};
    asl_options o = asl_default_options();
    CHECK(o.gamma_neg == 2 && o.gamma_pos == 0 && o.clip == 0 && o.eps == 1e-5f, "ASL defaults");
    CHECK_CLOSE(loss_asl_forward(z, yf, B, C, &o), ref_asl(zd, &k), 1e-5, "ASL vs double reference");
    memset(g, 0, sizeof g);
    loss_asl_backward(g, 1.0f, z, yf, B, C, &o);
    fd_check(ref_asl, z, &k, g, 1e-6, 1e-4, "ASL gradient (focusing weight constant)");

    /* A positive far below the eps clamp, a negative far above it: torch's
     * clamp passes no gradient there. */
    float zc[2] = {-20.0f, 20.0f}, yc[2] = {1.0f, 0.0f}, gc[2] = {0, 0};
    loss_asl_backward(gc, 1.0f, zc, yc, 1, 2, &o);
    CHECK(gc[0] == 0.0f && gc[1] == 0.0f, "ASL clamped entries have zero gradient (%g %g)", gc[0],
          gc[1]);
    CHECK(isfinite(loss_asl_forward(zc, yc, 1, 2, &o)), "ASL finite when clamped");
}

/* -------------------------------------------------------------- ranking */

static double ref_rank(const double *z, const ctx_t *k) {
    double total = 0;
    for (int b = 0; b < B; b++) {
        double pairs = 0, hinge = 0;
        int np = 0, nn = 0;
        for (int p = 0; p < C; p++) {
            if (k->y[b * C + p] == 0) continue;
            np++;
            for (int q = 0; q < C; q++) {
                if (k->y[b * C + q] != 0) continue;
                double d = z[b * C + q] - z[b * C + p];
                pairs += exp(d);
                hinge += fmax(0.0, k->margin + d);
            }
        }
        for (int q = 0; q < C; q++) nn += k->y[b * C + q] == 0;
        if (!np || !nn) continue;
        total += k->kind == RANK_LSEP ? log1p(pairs) : hinge;
    }
    return total / B;
}

static void test_rank(void) {
    float z[NZ], yf[NZ], g[NZ];
    double y[NZ], zd[NZ];
    for (int i = 0; i < NZ; i++) {
        yf[i] = urand() < 0.4 ? 1.0f : 0.0f;
        y[i] = yf[i];
    }
    /* Row 2 has no negatives: it contributes nothing. */
    for (int c = 0; c < C; c++) yf[2 * C + c] = 1, y[2 * C + c] = 1;
    yf[0] = 1, y[0] = 1, yf[1] = 0, y[1] = 0, yf[C] = 1, y[C] = 1, yf[C + 1] = 0, y[C + 1] = 0;
    /* Logits away from the hinge kinks so central differences are clean. */
    for (int tries = 0; tries < 1000; tries++) {
        for (int i = 0; i < NZ; i++) z[i] = frand(-2, 2);
        int ok = 1;
        for (int b = 0; b < B; b++)
            for (int p = 0; p < C; p++)
                for (int q = 0; q < C; q++)
                    if (yf[b * C + p] != 0 && yf[b * C + q] == 0 &&
                        fabs(1.0 + z[b * C + q] - z[b * C + p]) < 1e-3)
                        ok = 0;
        if (ok) break;
    }
    for (int i = 0; i < NZ; i++) zd[i] = z[i];
    for (int kind = 0; kind < 2; kind++) {
        ctx_t k = {y, NULL, kind, 1.0};
        const char *nm = kind == RANK_LSEP ? "LSEP" : "hinge";
        char what[64];
        snprintf(what, sizeof what, "rank %s vs double reference", nm);
        CHECK_CLOSE(loss_rank_forward(z, yf, B, C, (rank_kind)kind, 1.0f), ref_rank(zd, &k), 1e-6,
                    what);
        memset(g, 0, sizeof g);
        loss_rank_backward(g, 1.0f, z, yf, B, C, (rank_kind)kind, 1.0f);
        snprintf(what, sizeof what, "rank %s gradient", nm);
        fd_check(ref_rank, z, &k, g, 1e-6, 1e-5, what);
        int zero_row = 1;
        for (int c = 0; c < C; c++) zero_row &= g[2 * C + c] == 0.0f;
        CHECK(zero_row, "rank %s: an image without negatives has zero gradient", nm);
    }
    /* LSEP stays finite for large logit gaps (computed in O(C) log space). */
    float zl[2] = {-200.0f, 200.0f}, yl[2] = {1, 0};
    float v = loss_rank_forward(zl, yl, 1, 2, RANK_LSEP, 0);
    CHECK_CLOSE(v, 400.0, 1e-6, "LSEP large gap");
    float gl[2] = {0, 0};
    loss_rank_backward(gl, 1.0f, zl, yl, 1, 2, RANK_LSEP, 0);
    CHECK_CLOSE(gl[0], -1.0, 1e-6, "LSEP large gap grad pos");
    CHECK_CLOSE(gl[1], 1.0, 1e-6, "LSEP large gap grad neg");
}

int main(void) {
    test_mmc();
    test_asl();
    test_rank();
    return test_summary("test_loss");
}
