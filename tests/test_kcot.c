/* KCOT: the spec §5.10 test vectors, Sinkhorn modes (batch coupling,
 * per-image independence, log domain), marginals, error paths, and
 * finite-difference checks of every logits backward against double-precision
 * reference forwards written here. */
#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "io/safetensors.h"
#include "ram/kcot.h"
#include "ram/loss.h"
#include "test.h"

/* ------------------------------------------------------------- utilities */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static double urand(void) { /* [0,1) */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) / 9007199254740992.0;
}
static float frand(float lo, float hi) { return (float)(lo + (hi - lo) * urand()); }

static void check_vec(const float *got, const double *want, int n, double tol, const char *what) {
    for (int k = 0; k < n; k++) {
        char name[128];
        snprintf(name, sizeof name, "%s[%d]", what, k);
        CHECK_CLOSE(got[k], want[k], tol, name);
    }
}

/* ------------------------------------------------------- spec §5.10 data */

static const float S510[2 * 4 * 3] = {
    0.230f, 0.215f, 0.220f, 0.225f, 0.228f, 0.221f, 0.215f, 0.216f, 0.231f, 0.220f, 0.221f, 0.219f,
    0.210f, 0.212f, 0.211f, 0.228f, 0.218f, 0.219f, 0.222f, 0.229f, 0.217f, 0.216f, 0.215f, 0.226f};

static void test_spec_vectors(void) {
    enum { B = 2, N = 4, C = 3 };
    float cost[B * N * C], u[B * N], v[B * C], T[B * N * C], r[B * N], c[B * C];
    int iters[B], bi = -1;
    float err[100 * B];

    kcot_cost_forward(cost, S510, 100.0f, B, N, C);
    check_vec(cost, (const double[]){0.3714683, 0.8597556, 0.7687761}, 3, 1e-6, "cost item0 row0");
    kcot_lpd_marginal(u, S510, 0.1f, B, N, C);
    check_vec(u,
              (const double[]){0.2561357, 0.2510639, 0.2587099, 0.2340904, 0.2217743, 0.2602545,
                               0.2628701, 0.2551011},
              8, 1e-6, "u");
    kcot_uniform(v, B, C);
    CHECK(v[0] == (float)(1.0 / 3.0) && v[5] == v[0], "v = 1/3");

    sinkhorn_options opt = sinkhorn_default_options();
    CHECK(sinkhorn(T, r, c, iters, &bi, err, u, v, cost, B, N, C, &opt) == RAMC_OK, "%s",
          ramc_last_error());
    CHECK(bi == 20 && iters[0] == 20 && iters[1] == 20, "batch iterations %d (%d,%d), want 20", bi,
          iters[0], iters[1]);
    /* The stop decision: all items under 1e-3 at iteration 20, not at 19. */
    CHECK(err[19 * B + 0] < 1e-3f && err[19 * B + 1] < 1e-3f, "err at 20 below thresh");
    CHECK(err[18 * B + 0] >= 1e-3f || err[18 * B + 1] >= 1e-3f, "err at 19 not all below");
    CHECK(err[20 * B + 0] == -1.0f, "err history marks iterations not run");
    check_vec(T,
              (const double[]){0.2462065, 0.0033186, 0.0065948, 0.0351389, 0.1991286, 0.0167920,
                               0.0006663, 0.0013762, 0.2566889, 0.0513216, 0.1295100, 0.0532577},
              12, 1e-6, "T item0");
    check_vec(T + N * C + C, (const double[]){0.2471467, 0.0051973, 0.0079117}, 3, 1e-6,
              "T item1 row1");
    for (int b = 0; b < B; b++)
        for (int j = 0; j < C; j++) {
            double s = 0;
            for (int i = 0; i < N; i++) s += T[(b * N + i) * C + j];
            CHECK_CLOSE(s, 1.0 / 3.0, 1e-6, "column sum");
        }
    const double rows0[4] = {0.25611982, 0.25105953, 0.25873142, 0.23408927};
    for (int i = 0; i < N; i++) {
        double s = 0;
        for (int j = 0; j < C; j++) s += T[i * C + j];
        CHECK_CLOSE(s, rows0[i], 1e-6, "row sum item0");
    }

    float zl[B * C], zg[B * C], sg[B * C], sl[B * C], sc[B * C];
    kcot_local_logits_forward(zl, T, S510, 2e-3f, B, N, C);
    /* ~38 in float has an ulp of 3.8e-6; compare relatively. */
    check_vec(zl,
              (const double[]){37.9838791, 37.5168877, 38.0602226, 37.3608398, 37.3730431,
                               37.0506287},
              6, 2e-6, "z_loc");
    const float g[2 * 3] = {0.25f, 0.20f, 0.22f, 0.21f, 0.24f, 0.23f};
    const float eye[3 * 3] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
    kcot_global_logits_forward(zg, g, eye, 0.01f, B, C, 3);
    kcot_score(sc, sg, sl, zg, zl, B, C);
    check_vec(sl, (const double[]){0.3695193, 0.2316463, 0.3988345, 0.3642231, 0.3686950, 0.2670819},
              6, 1e-6, "score_loc");
    check_vec(sg, (const double[]){0.9464992, 0.0063775, 0.0471234, 0.0351190, 0.7053846, 0.2594965},
              6, 1e-6, "score_glb");
    check_vec(sc, (const double[]){0.6580092, 0.1190119, 0.2229789, 0.1996711, 0.5370398, 0.2632892},
              6, 1e-6, "score");
    float sc2[B * C];
    kcot_score(sc2, NULL, NULL, zg, zl, B, C);
    CHECK(memcmp(sc, sc2, sizeof sc) == 0, "score without the optional outputs is identical");

    /* Per-image stop: item1 alone takes 16, item0 alone 20; the same holds
     * inside the batch in per-image mode. */
    opt.mode = SINKHORN_PER_IMAGE;
    CHECK(sinkhorn(T, r, c, iters, &bi, NULL, u, v, cost, B, N, C, &opt) == RAMC_OK, "%s",
          ramc_last_error());
    CHECK(iters[0] == 20 && iters[1] == 16 && bi == 20, "per-image iterations %d %d", iters[0],
          iters[1]);
    float T1[N * C], r1[N], c1[C];
    int it1;
    opt.mode = SINKHORN_BATCH_COUPLED;
    CHECK(sinkhorn(T1, r1, c1, &it1, NULL, NULL, u + N, v + C, cost + N * C, 1, N, C, &opt) ==
              RAMC_OK,
          "%s", ramc_last_error());
    CHECK(it1 == 16, "item1 alone: %d iterations, want 16", it1);
    CHECK(memcmp(T1, T + N * C, sizeof T1) == 0, "per-image item1 == item1 alone, bitwise");

    /* Training variant: the same s as teacher similarity, y = [[1,0,1],[0,1,0]]. */
    const float y[B * C] = {1, 0, 1, 0, 1, 0};
    float P[B * N * C], ct[B * N * C], ctrain[B * N * C];
    kcot_teacher_prob(P, S510, 100.0f, 20.0f, B, N, C);
    float m = kcot_teacher_mask(P, y, B, N, C);
    /* Given to 7 significant digits: compare relatively. */
    CHECK(fabs(m - 5.874079e-05) <= 2e-6 * 5.874079e-05, "teacher P min %.7g, want 5.874079e-05", m);
    CHECK(P[1] == m && P[N * C + 0] == m && P[0] != m, "masking sets absent classes to the min");
    kcot_teacher_cost(ct, P, 0.05f, B * N * C);
    for (int k = 0; k < B * N * C; k++) ctrain[k] = cost[k] + ct[k];
    opt.reg = 0.1f + 0.05f;
    CHECK(sinkhorn(T, r, c, iters, &bi, NULL, u, v, ctrain, B, N, C, &opt) == RAMC_OK, "%s",
          ramc_last_error());
    check_vec(T, (const double[]){0.25053856, 0.00316908, 0.00239606}, 3, 1e-6, "T_train item0 row0");

    /* MMC (also in test_loss; here as the last §5.10 vector). */
    const float zm[6] = {2.0f, 0.5f, -1.0f, 0.0f, 1.5f, 0.3f}, ym[6] = {1, 0, 1, 0, 1, 0},
                y0[6] = {0};
    CHECK_CLOSE(loss_mmc_forward(zm, ym, 6), 1.9539719, 1e-6, "MMC");
    CHECK(loss_mmc_forward(zm, y0, 6) == 0.0f, "MMC with an all-zero mask is 0");
}

/* ---------------------------------------------------------- random KCOT */

/* A random but realistic problem: cosines around 0.2 with a spread of a few
 * hundredths, as CLIP gives. */
static void make_problem(float *sim, float *cost, float *u, float *v, int B, int N, int C) {
    for (int k = 0; k < B * N * C; k++) sim[k] = frand(0.15f, 0.30f);
    kcot_cost_forward(cost, sim, 100.0f, B, N, C);
    kcot_lpd_marginal(u, sim, 0.1f, B, N, C);
    kcot_uniform(v, B, C);
}

static void test_per_image_independence(void) {
    enum { N = 16, C = 7 };
    float sim[6 * N * C], cost[6 * N * C], u[6 * N], v[6 * C];
    make_problem(sim, cost, u, v, 6, N, C);
    /* Batch X = items 0..3; batch Y = item 5, item 2, item 4 (item 2 at a
     * different position among different companions). */
    float T[6 * N * C], r[6 * N], c[6 * C], TY[3 * N * C], rY[3 * N], cY[3 * C];
    float costY[3 * N * C], uY[3 * N], vY[3 * C];
    int order[3] = {5, 2, 4}, itX[4], itY[3];
    for (int k = 0; k < 3; k++) {
        memcpy(costY + k * N * C, cost + order[k] * N * C, sizeof(float) * N * C);
        memcpy(uY + k * N, u + order[k] * N, sizeof(float) * N);
        memcpy(vY + k * C, v + order[k] * C, sizeof(float) * C);
    }
    sinkhorn_options opt = sinkhorn_default_options();
    opt.mode = SINKHORN_PER_IMAGE;
    CHECK(sinkhorn(T, r, c, itX, NULL, NULL, u, v, cost, 4, N, C, &opt) == RAMC_OK, "%s",
          ramc_last_error());
    CHECK(sinkhorn(TY, rY, cY, itY, NULL, NULL, uY, vY, costY, 3, N, C, &opt) == RAMC_OK, "%s",
          ramc_last_error());
    CHECK(memcmp(T + 2 * N * C, TY + N * C, sizeof(float) * N * C) == 0,
          "per-image: item 2 has the same plan in two batches, bitwise");
    CHECK(itX[2] == itY[1], "per-image: same iteration count");

    /* Batch-coupled: items run to the slowest item's count, so an item that
     * converges early differs from its solo result. */
    opt.mode = SINKHORN_BATCH_COUPLED;
    int itC[4], bi;
    float TC[4 * N * C];
    CHECK(sinkhorn(TC, r, c, itC, &bi, NULL, u, v, cost, 4, N, C, &opt) == RAMC_OK, "%s",
          ramc_last_error());
    int mx = 0;
    for (int b = 0; b < 4; b++) mx = itX[b] > mx ? itX[b] : mx;
    CHECK(bi == mx && itC[0] == mx && itC[3] == mx, "coupled count %d = slowest per-image %d", bi, mx);
}

/* Lock-step reference of the official loop (iteration-major, all items
 * advanced together) to check the item-major fixpoint picks the same stop. */
static int lockstep_iters(const float *err_per_image, const int *iters, int B) {
    for (int t = 1; t <= 100; t++) {
        int all = 1;
        for (int b = 0; b < B; b++) {
            if (t > iters[b]) return -1; /* not recorded that far */
            if (!(err_per_image[(t - 1) * B + b] < 1e-3f)) all = 0;
        }
        if (all) return t;
    }
    return 100;
}

static void test_coupled_matches_lockstep(void) {
    enum { B = 5, N = 30, C = 9 };
    float sim[B * N * C], cost[B * N * C], u[B * N], v[B * C], T[B * N * C], r[B * N], c[B * C];
    float errh[100 * B];
    int iters[B], bi;
    make_problem(sim, cost, u, v, B, N, C);
    sinkhorn_options opt = sinkhorn_default_options();
    CHECK(sinkhorn(T, r, c, iters, &bi, errh, u, v, cost, B, N, C, &opt) == RAMC_OK, "%s",
          ramc_last_error());
    /* In coupled mode every item's err is recorded up to the common count, so
     * the lock-step rule can be replayed on the history. */
    CHECK(lockstep_iters(errh, iters, B) == bi, "coupled stop %d equals the lock-step rule %d", bi,
          lockstep_iters(errh, iters, B));
}

static void test_marginals(void) {
    enum { B = 3, N = 49, C = 20 };
    float sim[B * N * C], cost[B * N * C], u[B * N], v[B * C], T[B * N * C], r[B * N], c[B * C];
    make_problem(sim, cost, u, v, B, N, C);
    sinkhorn_options opt = sinkhorn_default_options();
    opt.thresh = 1e-6f; /* tight, so rows match u closely too */
    opt.max_iter = 1000;
    int bi;
    CHECK(sinkhorn(T, r, c, NULL, &bi, NULL, u, v, cost, B, N, C, &opt) == RAMC_OK, "%s",
          ramc_last_error());
    double worst_col = 0, worst_row = 0, tot[B] = {0};
    for (int b = 0; b < B; b++) {
        for (int j = 0; j < C; j++) {
            double s = 0;
            for (int i = 0; i < N; i++) s += T[(b * N + i) * C + j];
            worst_col = fmax(worst_col, fabs(s - v[b * C + j]) / v[b * C + j]);
            tot[b] += s;
        }
        for (int i = 0; i < N; i++) {
            double s = 0;
            for (int j = 0; j < C; j++) s += T[(b * N + i) * C + j];
            worst_row = fmax(worst_row, fabs(s - u[b * N + i]));
        }
        CHECK_CLOSE(tot[b], 1.0, 1e-5, "total mass");
    }
    CHECK(worst_col < 1e-5, "column sums = v: worst relative error %g", worst_col);
    CHECK(worst_row < 1e-5, "row sums = u: worst error %g", worst_row);
}

static void test_log_domain(void) {
    enum { B = 3, N = 25, C = 8 };
    float sim[B * N * C], cost[B * N * C], u[B * N], v[B * C];
    float T[B * N * C], r[B * N], c[B * C], TL[B * N * C], rL[B * N], cL[B * C];
    float eS[100 * B], eL[100 * B];
    int itS[B], itL[B];
    make_problem(sim, cost, u, v, B, N, C);
    sinkhorn_options opt = sinkhorn_default_options();
    opt.mode = SINKHORN_PER_IMAGE;
    CHECK(sinkhorn(T, r, c, itS, NULL, eS, u, v, cost, B, N, C, &opt) == RAMC_OK, "%s",
          ramc_last_error());
    opt.mode = SINKHORN_LOG_DOMAIN;
    CHECK(sinkhorn(TL, rL, cL, itL, NULL, eL, u, v, cost, B, N, C, &opt) == RAMC_OK, "%s",
          ramc_last_error());
    double dT = 0, dr = 0, de = 0;
    for (int k = 0; k < B * N * C; k++) dT = fmax(dT, fabs(T[k] - TL[k]));
    for (int k = 0; k < B * N; k++) dr = fmax(dr, fabs(r[k] - rL[k]) / fabs(r[k]));
    for (int b = 0; b < B; b++) {
        CHECK(itS[b] == itL[b], "log-domain iterations %d vs %d", itL[b], itS[b]);
        for (int t = 0; t < itS[b]; t++)
            de = fmax(de, fabs(eS[t * B + b] - eL[t * B + b]) / eS[t * B + b]);
    }
    CHECK(dT < 1e-5, "log-domain plan vs standard at reg 0.1: max |dT| %g", dT);
    CHECK(dr < 1e-4, "log-domain r vs standard: max rel %g", dr);
    CHECK(de < 1e-4, "log-domain err history vs standard: max rel %g", de);

    /* reg 0.001: exp(-cost/reg) underflows to 0 in float32 (cost > 0.1). */
    opt.reg = 0.001f;
    opt.mode = SINKHORN_PER_IMAGE;
    ramc_clear_error();
    ramc_status st = sinkhorn(T, r, c, NULL, NULL, NULL, u, v, cost, B, N, C, &opt);
    CHECK(st == RAMC_ERR_NUMERIC, "standard mode at reg 0.001 reports RAMC_ERR_NUMERIC (got %d)", st);
    CHECK(strstr(ramc_last_error(), "log-domain") != NULL, "message suggests the log domain: %s",
          ramc_last_error());
    opt.mode = SINKHORN_LOG_DOMAIN;
    int bi;
    CHECK(sinkhorn(TL, rL, cL, itL, &bi, NULL, u, v, cost, B, N, C, &opt) == RAMC_OK, "%s",
          ramc_last_error());
    long nonfinite = 0;
    for (int k = 0; k < B * N * C; k++) nonfinite += !isfinite(TL[k]);
    CHECK(nonfinite == 0, "log-domain plan at reg 0.001 is finite (%ld bad)", nonfinite);
    double worst_col = 0, mass = 0;
    for (int b = 0; b < B; b++)
        for (int j = 0; j < C; j++) {
            double s = 0;
            for (int i = 0; i < N; i++) s += TL[(b * N + i) * C + j];
            worst_col = fmax(worst_col, fabs(s - v[b * C + j]) / v[b * C + j]);
            mass += s;
        }
    CHECK(worst_col < 1e-5, "log-domain reg 0.001 column sums = v (worst rel %g)", worst_col);
    CHECK_CLOSE(mass, (double)B, 1e-5, "log-domain reg 0.001 total mass");
}

static void test_errors(void) {
    enum { B = 2, N = 4, C = 3 };
    float cost[B * N * C], u[B * N], v[B * C], T[B * N * C], r[B * N], c[B * C];
    kcot_cost_forward(cost, S510, 100.0f, B, N, C);
    kcot_lpd_marginal(u, S510, 0.1f, B, N, C);
    kcot_uniform(v, B, C);
    sinkhorn_options opt = sinkhorn_default_options();
    cost[N * C + 5] = NAN;
    for (int mode = 0; mode < 3; mode++) {
        opt.mode = (sinkhorn_mode)mode;
        ramc_clear_error();
        ramc_status st = sinkhorn(T, r, c, NULL, NULL, NULL, u, v, cost, B, N, C, &opt);
        CHECK(st == RAMC_ERR_NUMERIC, "NaN cost gives RAMC_ERR_NUMERIC (mode %d, got %d)", mode, st);
        CHECK(strstr(ramc_last_error(), "cost") && strstr(ramc_last_error(), "item 1"),
              "message names the input and item: %s", ramc_last_error());
    }
    kcot_cost_forward(cost, S510, 100.0f, B, N, C);
    u[2] = INFINITY;
    CHECK(sinkhorn(T, r, c, NULL, NULL, NULL, u, v, cost, B, N, C, &opt) == RAMC_ERR_NUMERIC,
          "Inf marginal");
    kcot_lpd_marginal(u, S510, 0.1f, B, N, C);
    opt = sinkhorn_default_options();
    opt.reg = 0.0f;
    CHECK(sinkhorn(T, r, c, NULL, NULL, NULL, u, v, cost, B, N, C, &opt) == RAMC_ERR_INVALID_ARG,
          "reg 0 rejected");
    opt = sinkhorn_default_options();
    opt.max_iter = 0;
    CHECK(sinkhorn(T, r, c, NULL, NULL, NULL, u, v, cost, B, N, C, &opt) == RAMC_ERR_INVALID_ARG,
          "max_iter 0 rejected");
    opt = sinkhorn_default_options();
    CHECK(sinkhorn(T, r, c, NULL, NULL, NULL, u, v, cost, 0, N, C, &opt) == RAMC_ERR_INVALID_ARG,
          "B 0 rejected");
    opt.max_iter = 3; /* hitting max_iter is not an error */
    int bi;
    CHECK(sinkhorn(T, r, c, NULL, &bi, NULL, u, v, cost, B, N, C, &opt) == RAMC_OK && bi == 3,
          "max_iter caps the iterations");
}

/* ------------------------------------- finite differences of the logits */

/* Each layer's scalar test objective is L = Σ w·z with fixed random w, so
 * ∂L/∂z = w is the dz fed to the backward. Gradients of the double
 * reference are taken by central differences. */

typedef double (*ref_fn)(const double *x, void *ctx);

/* Compares analytic float gradient `g` [n] with central differences of f
 * around x [n] (modified in place and restored). */
static void fd_check(ref_fn f, double *x, int n, void *ctx, const float *g, double h, double tol,
                     const char *what) {
    double gmax = 1e-12;
    for (int k = 0; k < n; k++) gmax = fmax(gmax, fabs(g[k]));
    double worst = 0;
    int worst_k = 0;
    for (int k = 0; k < n; k++) {
        double x0 = x[k];
        x[k] = x0 + h;
        double fp = f(x, ctx);
        x[k] = x0 - h;
        double fm = f(x, ctx);
        x[k] = x0;
        double fd = (fp - fm) / (2 * h);
        double e = fabs(fd - g[k]) / gmax;
        if (e > worst) {
            worst = e;
            worst_k = k;
        }
    }
    CHECK(worst < tol, "%s: FD mismatch %.3g (relative to max |grad| %.3g) at %d", what, worst, gmax,
          worst_k);
}

typedef struct {
    int B, N, C, D;
    const double *T, *other, *w;
    double scale;
    int which; /* which argument x is */
} lctx;

/* local logits: x = sim [B,N,C] then tau (last entry). */
static double ref_local(const double *x, void *vp) {
    lctx *k = vp;
    double tau = x[k->B * k->N * k->C], L = 0;
    for (int b = 0; b < k->B; b++)
        for (int c = 0; c < k->C; c++) {
            double s = 0;
            for (int i = 0; i < k->N; i++) s += k->T[(b * k->N + i) * k->C + c] * x[(b * k->N + i) * k->C + c];
            L += k->w[b * k->C + c] * s / tau;
        }
    return L;
}

static double ref_avgpool(const double *x, void *vp) {
    lctx *k = vp;
    double tau = x[k->B * k->N * k->C], L = 0;
    for (int b = 0; b < k->B; b++)
        for (int c = 0; c < k->C; c++) {
            double s = 0;
            for (int i = 0; i < k->N; i++) s += x[(b * k->N + i) * k->C + c];
            L += k->w[b * k->C + c] * s / k->N / tau;
        }
    return L;
}

static double ref_reweight_z(const double *x, const lctx *k, int b, int c) {
    double m = -INFINITY, s = 0, acc = 0;
    for (int i = 0; i < k->N; i++) m = fmax(m, k->scale * x[(b * k->N + i) * k->C + c]);
    for (int i = 0; i < k->N; i++) s += exp(k->scale * x[(b * k->N + i) * k->C + c] - m);
    for (int i = 0; i < k->N; i++) {
        double xi = x[(b * k->N + i) * k->C + c];
        acc += exp(k->scale * xi - m) / s * xi;
    }
    return acc;
}

static double ref_reweight(const double *x, void *vp) {
    lctx *k = vp;
    double tau = x[k->B * k->N * k->C], L = 0;
    for (int b = 0; b < k->B; b++)
        for (int c = 0; c < k->C; c++) L += k->w[b * k->C + c] * ref_reweight_z(x, k, b, c) / tau;
    return L;
}

/* global logits: x = g [B,D], t [C,D], tau. */
static double ref_global(const double *x, void *vp) {
    lctx *k = vp;
    const double *g = x, *t = x + k->B * k->D;
    double tau = x[k->B * k->D + k->C * k->D], L = 0;
    for (int b = 0; b < k->B; b++)
        for (int c = 0; c < k->C; c++) {
            double s = 0;
            for (int d = 0; d < k->D; d++) s += g[b * k->D + d] * t[c * k->D + d];
            L += k->w[b * k->C + c] * s / tau;
        }
    return L;
}

static void test_logits_gradients(void) {
    enum { B = 2, N = 6, C = 5, D = 7 };
    enum { NS = B * N * C };
    float sim[NS], T[NS], cost[NS], u[B * N], v[B * C], r[B * N], c[B * C], z[B * C], w[B * C];
    double xd[NS + 1], Td[NS], wd[B * C];
    make_problem(sim, cost, u, v, B, N, C);
    sinkhorn_options opt = sinkhorn_default_options();
    CHECK(sinkhorn(T, r, c, NULL, NULL, NULL, u, v, cost, B, N, C, &opt) == RAMC_OK, "%s",
          ramc_last_error());
    for (int k = 0; k < B * C; k++) w[k] = frand(-1, 1), wd[k] = w[k];
    for (int k = 0; k < NS; k++) xd[k] = sim[k], Td[k] = T[k];
    const float tau = 2e-3f;
    xd[NS] = tau;
    lctx ctx = {B, N, C, D, Td, NULL, wd, 0, 0};

    /* local logits */
    float dsim[NS + 1];
    memset(dsim, 0, sizeof dsim);
    kcot_local_logits_forward(z, T, sim, tau, B, N, C);
    {
        double L = 0, Lf = 0;
        for (int k = 0; k < B * C; k++) Lf += w[k] * z[k];
        L = ref_local(xd, &ctx);
        CHECK_CLOSE(Lf, L, 1e-5, "local logits forward vs double reference");
    }
    dsim[NS] = 0.5f; /* accumulation: the backward must add to what is there */
    kcot_local_logits_backward(dsim, &dsim[NS], w, z, T, tau, B, N, C);
    dsim[NS] -= 0.5f;
    fd_check(ref_local, xd, NS + 1, &ctx, dsim, 1e-7, 1e-4, "local logits d(sim, tau)");

    /* average pooling */
    memset(dsim, 0, sizeof dsim);
    match_avgpool_forward(z, sim, tau, B, N, C);
    {
        double Lf = 0;
        for (int k = 0; k < B * C; k++) Lf += w[k] * z[k];
        CHECK_CLOSE(Lf, ref_avgpool(xd, &ctx), 1e-5, "avgpool forward");
    }
    match_avgpool_backward(dsim, &dsim[NS], w, z, tau, B, N, C);
    fd_check(ref_avgpool, xd, NS + 1, &ctx, dsim, 1e-7, 1e-4, "avgpool d(sim, tau)");

    /* softmax re-weighting, sharp (scale 100) as used */
    float wt[NS];
    ctx.scale = 100.0;
    memset(dsim, 0, sizeof dsim);
    match_reweight_forward(z, wt, sim, 100.0f, tau, B, N, C);
    {
        double Lf = 0;
        for (int k = 0; k < B * C; k++) Lf += w[k] * z[k];
        CHECK_CLOSE(Lf, ref_reweight(xd, &ctx), 1e-5, "reweight forward");
        double s0 = 0;
        for (int i = 0; i < N; i++) s0 += wt[i * C + 2];
        CHECK_CLOSE(s0, 1.0, 1e-6, "reweight weights sum to 1 over patches");
    }
    match_reweight_backward(dsim, &dsim[NS], w, z, wt, sim, 100.0f, tau, B, N, C);
    fd_check(ref_reweight, xd, NS + 1, &ctx, dsim, 1e-7, 1e-4, "reweight d(sim, tau)");

    /* global logits */
    float g[B * D], t[C * D], dgt[B * D + C * D + 1];
    double xg[B * D + C * D + 1];
    for (int k = 0; k < B * D; k++) g[k] = frand(-0.5f, 0.5f), xg[k] = g[k];
    for (int k = 0; k < C * D; k++) t[k] = frand(-0.5f, 0.5f), xg[B * D + k] = t[k];
    const float tg = 0.01f;
    xg[B * D + C * D] = tg;
    kcot_global_logits_forward(z, g, t, tg, B, C, D);
    {
        double Lf = 0;
        for (int k = 0; k < B * C; k++) Lf += w[k] * z[k];
        CHECK_CLOSE(Lf, ref_global(xg, &ctx), 1e-5, "global logits forward");
    }
    memset(dgt, 0, sizeof dgt);
    kcot_global_logits_backward(dgt, dgt + B * D, dgt + B * D + C * D, w, z, g, t, tg, B, C, D);
    fd_check(ref_global, xg, B * D + C * D + 1, &ctx, dgt, 1e-7, 1e-4, "global logits d(g, t, tau)");
    /* NULL gradients are skipped */
    kcot_global_logits_backward(NULL, NULL, NULL, w, z, g, t, tg, B, C, D);
    kcot_local_logits_backward(NULL, NULL, w, z, T, tau, B, N, C);
}


/* --------------------------------------------------- golden-set parity */

/* The RAM head of every single-step golden set, in tests/golden and in the
 * optional extra folder (RAMC_EXTRA_GOLDEN_DIR; sets without an
 * outputs.safetensors, e.g. trajectories, are skipped): cost, LPD marginal, Sinkhorn (iteration
 * count exactly; plan, scalings and err history to 1e-4 relative), local
 * logits, scores, and for training the teacher plan, its mask and cost, and
 * the MMC losses. */

typedef struct {
    st_file *f;
    const char *dir, *prefix;
} gset;

/* Reads tensor prefix+name as float32 into a fresh buffer (NULL + CHECK
 * failure if missing); numel returned. */
static float *gload(const gset *g, const char *name, long *numel) {
    char full[256];
    snprintf(full, sizeof full, "%s%s", g->prefix, name);
    const st_tensor *t = st_find(g->f, full);
    CHECK(t != NULL, "%s: tensor %s missing", g->dir, full);
    if (!t) return NULL;
    float *buf = malloc(sizeof(float) * (size_t)(t->numel ? t->numel : 1));
    if (t->dtype == ST_I32 || t->dtype == ST_I64) {
        int64_t *tmp = malloc(sizeof(int64_t) * (size_t)(t->numel ? t->numel : 1));
        st_read_i64(g->f, t, tmp);
        for (long k = 0; k < t->numel; k++) buf[k] = (float)tmp[k];
        free(tmp);
    } else {
        st_read_f32(g->f, t, buf);
    }
    if (numel) *numel = t->numel;
    return buf;
}

static void l2norm_rows(float *x, const float *in, int rows, int dim) {
    for (int r = 0; r < rows; r++) {
        double s = 0;
        for (int d = 0; d < dim; d++) s += (double)in[r * dim + d] * in[r * dim + d];
        float n = (float)sqrt(s);
        if (n < 1e-12f) n = 1e-12f;
        for (int d = 0; d < dim; d++) x[r * dim + d] = in[r * dim + d] / n;
    }
}

static void golden_head(const char *dir, st_file *out, st_file *in, float ls, float tau_g,
                        float tau_l, const char *prefix) {
    gset g = {out, dir, prefix};
    long nsim, nv, nit;
    float *sim = gload(&g, "sim", &nsim), *u = gload(&g, "u", NULL), *v = gload(&g, "v", &nv);
    float *T = gload(&g, "T", NULL), *r = gload(&g, "sinkhorn_r", NULL);
    float *c = gload(&g, "sinkhorn_c", NULL), *itf = gload(&g, "sinkhorn_iters", &nit);
    float *zl = gload(&g, "logits_loc", NULL), *zg = gload(&g, "logits_glb", NULL);
    float *score = gload(&g, "score", NULL), *errg = gload(&g, "sinkhorn_err", NULL);
    int training = strcmp(prefix, "train.") == 0;
    float *cost = gload(&g, "cost", NULL);
    float *cost_st = training ? gload(&g, "cost_student", NULL) : NULL;
    if (!sim || !u || !v || !T || !r || !c || !itf || !zl || !zg || !score || !errg || !cost ||
        (training && !cost_st))
        goto done;
    char uname[64];
    snprintf(uname, sizeof uname, "%su", prefix);
    const st_tensor *ut = st_find(out, uname);
    const int B = (int)ut->shape[0], N = (int)ut->shape[1], C = (int)(nv / B);
    long n = (long)B * N * C;
    int giters = (int)itf[0];
    char what[128];
    float *mine = malloc(sizeof(float) * n), *Tm = malloc(sizeof(float) * n);
    float *um = malloc(sizeof(float) * B * N), *vm = malloc(sizeof(float) * B * C);
    float *rm = malloc(sizeof(float) * B * N), *cm = malloc(sizeof(float) * B * C);
    float *eh = malloc(sizeof(float) * 100 * B), *z = malloc(sizeof(float) * B * C);
    float *sc = malloc(sizeof(float) * B * C);

    kcot_cost_forward(mine, sim, ls, B, N, C);
    snprintf(what, sizeof what, "%s %scost", dir, prefix);
    CHECK(rel_err(mine, training ? cost_st : cost, (size_t)n) < 1e-5, "%s: rel %g", what,
          rel_err(mine, training ? cost_st : cost, (size_t)n));
    kcot_lpd_marginal(um, sim, 0.1f, B, N, C);
    CHECK(rel_err(um, u, (size_t)(long)B * N) < 1e-5, "%s %su: rel %g", dir, prefix,
          rel_err(um, u, (size_t)(long)B * N));
    kcot_uniform(vm, B, C);
    CHECK(memcmp(vm, v, sizeof(float) * B * C) == 0, "%s %sv bitwise", dir, prefix);

    if (training) {
        /* Teacher: simT grouped as (ℓ·f̂)·t̂ᵀ, hence scale 1 below. */
        float *fT = gload(&g, "teacher.img_loc", NULL), *tT = gload(&g, "teacher.text_features", NULL);
        float *Pg = gload(&g, "teacher.prob", NULL), *Pmg = gload(&g, "teacher.prob_masked", NULL);
        gset gi = {in, dir, ""};
        float *y = gload(&gi, "targets_seen", NULL);
        float *ctg2 = gload(&g, "cost_teacher", NULL);
        const st_tensor *ti = st_find(out, "train.teacher.img_loc");
        int D = ti ? (int)ti->shape[2] : 0;
        if (fT && tT && Pg && Pmg && y && ctg2 && D > 0) {
            float *fn = malloc(sizeof(float) * B * N * D), *tn = malloc(sizeof(float) * C * D);
            float *simT = malloc(sizeof(float) * n), *P = malloc(sizeof(float) * n);
            float *ct = malloc(sizeof(float) * n);
            l2norm_rows(fn, fT, B * N, D);
            l2norm_rows(tn, tT, C, D);
            for (long k = 0; k < (long)B * N * D; k++) fn[k] *= ls;
            kcot_global_logits_forward(simT, fn, tn, 1.0f, B * N, C, D);
            kcot_teacher_prob(P, simT, 1.0f, 20.0f, B, N, C);
            CHECK(rel_err(P, Pg, (size_t)n) < 1e-4, "%s teacher.prob rel %g", dir, rel_err(P, Pg, (size_t)n));
            kcot_teacher_mask(P, y, B, N, C);
            CHECK(rel_err(P, Pmg, (size_t)n) < 1e-4, "%s teacher.prob_masked rel %g", dir,
                  rel_err(P, Pmg, (size_t)n));
            kcot_teacher_cost(ct, Pmg, 0.05f, n);
            CHECK(rel_err(ct, ctg2, (size_t)n) < 1e-6, "%s cost_teacher rel %g", dir, rel_err(ct, ctg2, (size_t)n));
            for (long k = 0; k < n; k++) mine[k] = cost_st[k] + ctg2[k];
            CHECK(rel_err(mine, cost, (size_t)n) < 1e-7, "%s cost = student + teacher", dir);
            /* MMC losses from the golden logits */
            float *lg = gload(&g, "loss_glb", NULL), *ll = gload(&g, "loss_loc", NULL);
            if (lg && ll) {
                CHECK_CLOSE(loss_mmc_forward(zg, y, (long)B * C), lg[0], 1e-5, "golden loss_glb");
                CHECK_CLOSE(loss_mmc_forward(zl, y, (long)B * C), ll[0], 1e-5, "golden loss_loc");
            }
            free(lg);
            free(ll);
            free(fn);
            free(tn);
            free(simT);
            free(P);
            free(ct);
        }
        free(fT);
        free(tT);
        free(Pg);
        free(Pmg);
        free(y);
        free(ctg2);
    }

    sinkhorn_options opt = sinkhorn_default_options();
    opt.reg = training ? 0.1f + 0.05f : 0.1f;
    int *it = malloc(sizeof(int) * B), bi = -1;
    CHECK(sinkhorn(Tm, rm, cm, it, &bi, eh, u, v, cost, B, N, C, &opt) == RAMC_OK, "%s",
          ramc_last_error());
    CHECK(bi == giters, "%s %ssinkhorn_iters %d, golden %d", dir, prefix, bi, giters);
    if (bi == giters) {
        CHECK(rel_err(Tm, T, (size_t)n) < 1e-4, "%s %sT rel %g", dir, prefix, rel_err(Tm, T, (size_t)n));
        CHECK(rel_err(rm, r, (size_t)(long)B * N) < 1e-4, "%s %sr rel %g", dir, prefix,
              rel_err(rm, r, (size_t)(long)B * N));
        CHECK(rel_err(cm, c, (size_t)(long)B * C) < 1e-4, "%s %sc rel %g", dir, prefix,
              rel_err(cm, c, (size_t)(long)B * C));
        /* err is a difference of nearby r values, so late entries carry
         * cancellation error of ulp(r); compare against the tensor's scale. */
        double de = rel_err(eh, errg, (size_t)(long)giters * B);
        CHECK(de < 1e-4, "%s %ssinkhorn_err rel %g", dir, prefix, de);
    }
    kcot_local_logits_forward(z, T, sim, tau_l, B, N, C);
    CHECK(rel_err(z, zl, (size_t)(long)B * C) < 1e-5, "%s %slogits_loc rel %g", dir, prefix,
          rel_err(z, zl, (size_t)(long)B * C));
    kcot_score(sc, NULL, NULL, zg, zl, B, C);
    CHECK(rel_err(sc, score, (size_t)(long)B * C) < 1e-5, "%s %sscore rel %g", dir, prefix,
          rel_err(sc, score, (size_t)(long)B * C));
    (void)tau_g;
    free(it);
    free(mine);
    free(Tm);
    free(um);
    free(vm);
    free(rm);
    free(cm);
    free(eh);
    free(z);
    free(sc);
done:
    free(sim);
    free(u);
    free(v);
    free(T);
    free(r);
    free(c);
    free(itf);
    free(zl);
    free(zg);
    free(score);
    free(errg);
    free(cost);
    free(cost_st);
}

/* A golden set found on disk: folder name (what deduplicates) and path. */
typedef struct {
    char name[256], path[1024];
} golden_dir;

static int golden_dir_cmp(const void *a, const void *b) {
    return strcmp(((const golden_dir *)a)->name, ((const golden_dir *)b)->name);
}

/* Appends the single-step sets under root to list[*n..max), sorted by name
 * so runs are reproducible; a name already listed is skipped (the in-repo
 * copy comes first and wins, so an extra folder that also holds tiny-s0
 * does not check it twice). */
static void collect_golden_sets(const char *root, const char *where, golden_dir *list, int *n,
                                int max) {
    DIR *d = opendir(root);
    if (!d) {
        printf("test_kcot: %s golden folder %s absent, its sets skipped\n", where, root);
        return;
    }
    int first = *n;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char probe[1024];
        snprintf(probe, sizeof probe, "%s/%s/outputs.safetensors", root, e->d_name);
        FILE *f = fopen(probe, "rb");
        if (!f) {
            char dir[1024];
            snprintf(dir, sizeof dir, "%s/%s", root, e->d_name);
            DIR *sub = opendir(dir);
            if (sub) {
                closedir(sub);
                printf("test_kcot: %s has no outputs.safetensors (not a single-step set), skipped\n", dir);
            }
            continue;
        }
        fclose(f);
        int dup = 0;
        for (int k = 0; k < *n; k++) dup |= strcmp(list[k].name, e->d_name) == 0;
        if (dup) {
            printf("test_kcot: %s/%s skipped, a set of that name was checked already\n", root, e->d_name);
            continue;
        }
        if (*n == max) {
            CHECK(0, "more than %d golden sets", max);
            break;
        }
        snprintf(list[*n].name, sizeof list[*n].name, "%s", e->d_name);
        snprintf(list[*n].path, sizeof list[*n].path, "%s/%s", root, e->d_name);
        (*n)++;
    }
    closedir(d);
    qsort(list + first, (size_t)(*n - first), sizeof *list, golden_dir_cmp);
}

static void test_golden(void) {
    enum { MAX_SETS = 64 };
    static golden_dir sets[MAX_SETS];
    int nsets = 0;
    collect_golden_sets(RAMC_GOLDEN_DIR, "in-repo", sets, &nsets, MAX_SETS);
    /* The shipped sets are what a plain clone checks; losing them must fail,
     * not quietly skip the parity. */
    CHECK(nsets > 0, "no single-step golden set in %s", RAMC_GOLDEN_DIR);
    if (RAMC_EXTRA_GOLDEN_DIR[0])
        collect_golden_sets(RAMC_EXTRA_GOLDEN_DIR, "extra", sets, &nsets, MAX_SETS);
    else
        printf("test_kcot: no extra golden folder configured (RAMC_EXTRA_GOLDEN_DIR empty)\n");
    for (int s = 0; s < nsets; s++) {
        const char *name = sets[s].name;
        char path[1100], p2[1100], p3[1100], p4[1100];
        snprintf(path, sizeof path, "%s/outputs.safetensors", sets[s].path);
        snprintf(p2, sizeof p2, "%s/inputs.safetensors", sets[s].path);
        snprintf(p3, sizeof p3, "%s/adapter.safetensors", sets[s].path);
        snprintf(p4, sizeof p4, "%s/weights.safetensors", sets[s].path);
        st_file *out = NULL, *in = NULL, *ad = NULL, *w = NULL;
        if (st_open(path, &out) != RAMC_OK || st_open(p2, &in) != RAMC_OK ||
            st_open(p3, &ad) != RAMC_OK || st_open(p4, &w) != RAMC_OK) {
            CHECK(0, "%s: %s", sets[s].path, ramc_last_error());
        } else {
            float ls_raw, tg, tl;
            const st_tensor *a = st_find(w, "logit_scale"), *b = st_find(ad, "temperature"),
                            *c = st_find(ad, "temperature_loc");
            int ok = a && b && c && st_read_f32(w, a, &ls_raw) == RAMC_OK &&
                     st_read_f32(ad, b, &tg) == RAMC_OK && st_read_f32(ad, c, &tl) == RAMC_OK;
            CHECK(ok, "%s: logit_scale, temperature or temperature_loc unreadable", sets[s].path);
            if (ok) {
                float ls = expf(ls_raw);
                printf("test_kcot: head parity on %s\n", sets[s].path);
                golden_head(name, out, in, ls, tg, tl, "eval.");
                golden_head(name, out, in, ls, tg, tl, "eval_zsl.");
                golden_head(name, out, in, ls, tg, tl, "train.");
            }
        }
        if (out) st_close(out);
        if (in) st_close(in);
        if (ad) st_close(ad);
        if (w) st_close(w);
    }
}

int main(void) {
    test_spec_vectors();
    test_per_image_independence();
    test_coupled_matches_lockstep();
    test_marginals();
    test_log_domain();
    test_errors();
    test_logits_gradients();
    test_golden();
    return test_summary("test_kcot");
}
