#include "ram/kcot.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "core/status.h"
#include "kernels/kernels.h"

/* ---------------------------------------------------------------- helpers */

/* Max and reciprocal sum of exp(scale*x - max) over n strided entries, the
 * two statistics of torch's softmax. The sum is accumulated in double and
 * rounded once: torch's vectorised float sum is close to correctly rounded
 * too, and a fixed order keeps results independent of the caller. */
static void softmax_stats(const float *x, long stride, int n, float scale, float *max_out,
                          float *inv_out) {
    float m = -INFINITY;
    for (int k = 0; k < n; k++) {
        float xs = x[k * stride] * scale;
        if (xs > m) m = xs;
    }
    double s = 0.0;
    for (int k = 0; k < n; k++) s += expf(x[k * stride] * scale - m);
    *max_out = m;
    *inv_out = 1.0f / (float)s;
}

/* out = softmax(scale * x) over one contiguous row; out may alias x. */
static void softmax_row_scaled(float *out, const float *x, int n, float scale) {
    float m, inv;
    softmax_stats(x, 1, n, scale, &m, &inv);
    for (int k = 0; k < n; k++) out[k] = expf(x[k] * scale - m) * inv;
}

static long first_nonfinite(const float *x, long n) {
    for (long k = 0; k < n; k++)
        if (!isfinite(x[k])) return k;
    return -1;
}

/* ------------------------------------------------------- cost, marginals */

void kcot_cost_forward(float *cost, const float *sim, float scale, int B, int N, int C) {
    long rows = (long)B * N;
#pragma omp parallel for schedule(static) if (rows * C >= 65536)
    for (long row = 0; row < rows; row++) {
        softmax_row_scaled(cost + row * C, sim + row * C, C, scale);
        for (int c = 0; c < C; c++) cost[row * C + c] = 1.0f - cost[row * C + c];
    }
}

void kcot_lpd_marginal(float *u, const float *sim, float temperature, int B, int N, int C) {
#pragma omp parallel for schedule(static) if ((long)B * N * C >= 65536)
    for (int b = 0; b < B; b++) {
        float *ub = u + (long)b * N;
        for (int i = 0; i < N; i++) {
            const float *row = sim + ((long)b * N + i) * C;
            float m = row[0];
            for (int c = 1; c < C; c++)
                if (row[c] > m) m = row[c];
            /* A division, as `sim_max / temperature` (not a multiply by 10). */
            ub[i] = m / temperature;
        }
        softmax_row_scaled(ub, ub, N, 1.0f);
    }
}

void kcot_uniform(float *out, int B, int n) {
    float val = (float)(1.0 / (double)n);
    for (long k = 0; k < (long)B * n; k++) out[k] = val;
}

/* ------------------------------------------------------ teacher (training) */

void kcot_teacher_prob(float *P, const float *simT, float scale, float sharpen,
                       int B, int N, int C) {
    long rows = (long)B * N;
    for (long row = 0; row < rows; row++) softmax_row_scaled(P + row * C, simT + row * C, C, scale);
    /* Second softmax runs over patches (a strided axis). torch's non-last-dim
     * softmax divides by the sum, so divide here too. */
    for (int b = 0; b < B; b++) {
        float *Pb = P + (long)b * N * C;
        for (int c = 0; c < C; c++) {
            float m = -INFINITY;
            for (int i = 0; i < N; i++) {
                float x = sharpen * Pb[(long)i * C + c];
                if (x > m) m = x;
            }
            double s = 0.0;
            for (int i = 0; i < N; i++) {
                float e = expf(sharpen * Pb[(long)i * C + c] - m);
                Pb[(long)i * C + c] = e;
                s += e;
            }
            float sf = (float)s;
            for (int i = 0; i < N; i++) Pb[(long)i * C + c] /= sf;
        }
    }
}

float kcot_min(const float *P, long n) {
    float m = INFINITY;
    for (long k = 0; k < n; k++)
        if (P[k] < m) m = P[k];
    return m;
}

float kcot_teacher_mask(float *P, const float *target, int B, int N, int C) {
    float m = kcot_min(P, (long)B * N * C);
    kcot_teacher_mask_with(P, target, m, B, N, C);
    return m;
}

void kcot_teacher_mask_with(float *P, const float *target, float m, int B, int N, int C) {
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++) {
            if (target[(long)b * C + c] != 0.0f) continue;
            for (int i = 0; i < N; i++) P[((long)b * N + i) * C + c] = m;
        }
}

void kcot_teacher_cost(float *cost_teacher, const float *P, float lambda, long n) {
    for (long k = 0; k < n; k++) cost_teacher[k] = -logf(P[k]) * lambda;
}

/* --------------------------------------------------------------- Sinkhorn */

sinkhorn_options sinkhorn_default_options(void) {
    sinkhorn_options o = {.mode = SINKHORN_BATCH_COUPLED, .reg = 0.1f, .max_iter = 100, .thresh = 1e-3f};
    return o;
}

/* Σ_j K_j c_j with eight double partial sums in a fixed order: the loop
 * vectorises without -ffast-math and the order never depends on the batch. */
static double dot_f32(const float *a, const float *b, int n) {
    double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int j = 0;
    for (; j + 8 <= n; j += 8)
        for (int l = 0; l < 8; l++) acc[l] += (double)a[j + l] * (double)b[j + l];
    double tail = 0.0;
    for (; j < n; j++) tail += (double)a[j] * (double)b[j];
    return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail;
}

/* One official iteration on one item, in float32 state (K, r, c as torch):
 *   r = u / (K c); c = v / (Kᵀ r); returns mean_i |r - r_prev|.
 * K [N,C]; r, u, r_prev [N]; c, v [C]; col [C] double scratch. */
/* Threads for the per-item Sinkhorn loop, and the calling thread's index. */
static int sinkhorn_threads(int B) {
#ifdef _OPENMP
    int n = omp_in_parallel() ? 1 : omp_get_max_threads();
    return n < B ? n : (B > 0 ? B : 1);
#else
    (void)B;
    return 1;
#endif
}

size_t sinkhorn_work_bytes(int B, int N, int C) {
    const size_t nthr = (size_t)sinkhorn_threads(B);
    return arena_size((size_t)B * sizeof(int)) + arena_size((size_t)B * sizeof(float)) +
           arena_size((size_t)N * nthr * sizeof(float)) +
           arena_size((size_t)(2 * N + 3 * C) * sizeof(double)) +
           arena_size((size_t)C * nthr * sizeof(double));
}

static int sinkhorn_thread(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

static float plain_step(const float *K, float *r, float *c, const float *u, const float *v,
                        float *r_prev, double *col, int N, int C) {
    for (int i = 0; i < N; i++) {
        r_prev[i] = r[i];
        r[i] = u[i] / (float)dot_f32(K + (long)i * C, c, C);
    }
    for (int j = 0; j < C; j++) col[j] = 0.0;
    for (int i = 0; i < N; i++) {
        const float *Ki = K + (long)i * C;
        double ri = r[i];
        for (int j = 0; j < C; j++) col[j] += (double)Ki[j] * ri;
    }
    for (int j = 0; j < C; j++) c[j] = v[j] / (float)col[j];
    /* torch: (r - r0).abs().mean(1) = float differences, summed, / N. */
    double s = 0.0;
    for (int i = 0; i < N; i++) s += fabsf(r[i] - r_prev[i]);
    return (float)s / (float)N;
}

/* One log-domain iteration on one item: f = log u - LSE_j(logK + g),
 * g = log v - LSE_i(logK + f), in double. Returns log(mean_i |e^f - e^f_prev|),
 * computed from |e^a - e^b| = e^max(a,b) · (1 - e^-|a-b|) so it cannot
 * overflow. logK [N,C] float; f [N], g [C] double; cmax, csum [C] scratch. */
static double log_step(const float *logK, double *f, double *g, const float *u, const float *v,
                       double *cmax, double *csum, int N, int C) {
    double em = -INFINITY, es = 0.0; /* running log-sum-exp of the err terms */
    for (int i = 0; i < N; i++) {
        const float *Li = logK + (long)i * C;
        double m = -INFINITY;
        for (int j = 0; j < C; j++) {
            double x = (double)Li[j] + g[j];
            if (x > m) m = x;
        }
        double s = 0.0;
        for (int j = 0; j < C; j++) s += exp((double)Li[j] + g[j] - m);
        double fo = f[i], fn = log((double)u[i]) - (m + log(s));
        f[i] = fn;
        if (fn != fo) {
            double d = fabs(fn - fo), hi = fn > fo ? fn : fo;
            double lt = hi + log(-expm1(-d));
            if (lt > em) {
                es = es * exp(em - lt) + 1.0;
                em = lt;
            } else {
                es += exp(lt - em);
            }
        }
    }
    for (int j = 0; j < C; j++) {
        cmax[j] = -INFINITY;
        csum[j] = 0.0;
    }
    for (int i = 0; i < N; i++) {
        const float *Li = logK + (long)i * C;
        for (int j = 0; j < C; j++) {
            double x = (double)Li[j] + f[i];
            if (x > cmax[j]) cmax[j] = x;
        }
    }
    for (int i = 0; i < N; i++) {
        const float *Li = logK + (long)i * C;
        for (int j = 0; j < C; j++) csum[j] += exp((double)Li[j] + f[i] - cmax[j]);
    }
    for (int j = 0; j < C; j++) g[j] = log((double)v[j]) - (cmax[j] + log(csum[j]));
    if (es == 0.0) return -INFINITY;
    return em + log(es) - log((double)N);
}

static ramc_status check_input(const float *x, long n, const char *name, int inner) {
    long k = first_nonfinite(x, n);
    if (k < 0) return RAMC_OK;
    return ramc_error(RAMC_ERR_NUMERIC, "sinkhorn: %s[%ld] (item %ld) is %g, expected finite", name,
                      k, k / inner, (double)x[k]);
}

ramc_status sinkhorn(float *T, float *r, float *c, int *iters, int *batch_iters, float *err_hist,
                     const float *u, const float *v, const float *cost, int B, int N, int C,
                     const sinkhorn_options *opt) {
    if (!T || !r || !c || !u || !v || !cost || !opt)
        return ramc_error(RAMC_ERR_INVALID_ARG, "sinkhorn: NULL argument");
    if (B < 1 || N < 1 || C < 1)
        return ramc_error(RAMC_ERR_INVALID_ARG, "sinkhorn: sizes B=%d N=%d C=%d must be positive", B,
                          N, C);
    if (!(opt->reg > 0.0f) || !isfinite(opt->reg))
        return ramc_error(RAMC_ERR_INVALID_ARG, "sinkhorn: reg %g must be positive and finite",
                          (double)opt->reg);
    if (opt->max_iter < 1)
        return ramc_error(RAMC_ERR_INVALID_ARG, "sinkhorn: max_iter %d must be >= 1", opt->max_iter);
    if (!(opt->thresh >= 0.0f) || !isfinite(opt->thresh))
        return ramc_error(RAMC_ERR_INVALID_ARG, "sinkhorn: thresh %g must be >= 0 and finite",
                          (double)opt->thresh);
    if (opt->mode != SINKHORN_BATCH_COUPLED && opt->mode != SINKHORN_PER_IMAGE &&
        opt->mode != SINKHORN_LOG_DOMAIN)
        return ramc_error(RAMC_ERR_INVALID_ARG, "sinkhorn: unknown mode %d", (int)opt->mode);
    ramc_status st;
    if ((st = check_input(cost, (long)B * N * C, "cost", N * C)) != RAMC_OK) return st;
    if ((st = check_input(u, (long)B * N, "u", N)) != RAMC_OK) return st;
    if ((st = check_input(v, (long)B * C, "v", C)) != RAMC_OK) return st;

    const int max_iter = opt->max_iter;
    const float reg = opt->reg, thresh = opt->thresh;
    const long NC = (long)N * C;
    if (err_hist)
        for (long k = 0; k < (long)max_iter * B; k++) err_hist[k] = -1.0f;

    ramc_arena *arena = opt->scratch;
    const size_t mark = arena_mark(arena);
    int *it = arena_calloc(arena, (size_t)B, sizeof(int), "sinkhorn iteration counts");
    float *last_err = arena_alloc(arena, (size_t)B * sizeof(float), "sinkhorn errors");
    const int nthr = sinkhorn_threads(B);
    float *r_prev = arena_alloc(arena, (size_t)N * nthr * sizeof(float), "sinkhorn scratch");
    double *dscr = arena_alloc(arena, (size_t)(2 * N + 3 * C) * sizeof(double), "sinkhorn scratch");
    double *cols = arena_alloc(arena, (size_t)C * nthr * sizeof(double), "sinkhorn scratch");
    if (!it || !last_err || !r_prev || !dscr || !cols) {
        st = RAMC_ERR_NOMEM;
        goto done;
    }
    for (int b = 0; b < B; b++) last_err[b] = INFINITY;
    st = RAMC_OK;

    /* K (or log K) lives in T until the plan replaces it. Negating before the
     * division is exact, so this is bitwise torch's exp(-M / reg). */
#pragma omp parallel for schedule(static) if ((long)B * NC >= 65536)
    for (long k = 0; k < (long)B * NC; k++) {
        float x = -cost[k] / reg;
        T[k] = opt->mode == SINKHORN_LOG_DOMAIN ? x : expf(x);
    }

    if (opt->mode == SINKHORN_LOG_DOMAIN) {
        double *f = dscr, *g = dscr + N, *cmax = dscr + N + C, *csum = dscr + N + 2 * C;
        const double log_thresh = log((double)thresh);
        for (int b = 0; b < B && st == RAMC_OK; b++) {
            const float *Lb = T + b * NC;
            for (int i = 0; i < N; i++) f[i] = 0.0;
            for (int j = 0; j < C; j++) g[j] = 0.0;
            double le = INFINITY;
            while (it[b] < max_iter) {
                le = log_step(Lb, f, g, u + (long)b * N, v + (long)b * C, cmax, csum, N, C);
                if (err_hist) err_hist[(long)it[b] * B + b] = (float)exp(le);
                it[b]++;
                if (isnan(le)) {
                    st = ramc_error(RAMC_ERR_NUMERIC,
                                    "sinkhorn (log-domain): item %d: potentials became NaN at "
                                    "iteration %d (zero marginal mass?)",
                                    b, it[b]);
                    break;
                }
                if (le < log_thresh) break;
            }
            if (st != RAMC_OK) break;
            float *Tb = T + b * NC;
            for (int i = 0; i < N; i++) {
                for (int j = 0; j < C; j++)
                    Tb[(long)i * C + j] = (float)exp(f[i] + (double)Tb[(long)i * C + j] + g[j]);
                r[(long)b * N + i] = (float)exp(f[i]);
            }
            for (int j = 0; j < C; j++) c[(long)b * C + j] = (float)exp(g[j]);
        }
    } else {
        const int coupled = opt->mode == SINKHORN_BATCH_COUPLED;
        for (long k = 0; k < (long)B * N; k++) r[k] = 1.0f;
        for (long k = 0; k < (long)B * C; k++) c[k] = 1.0f;
        /* Item-major so each item's K stays in cache. Items evolve
         * independently, so the official lock-step loop (stop at the first
         * iteration where EVERY item has err < thresh) equals this fixpoint:
         * `target` is a lower bound on that iteration; advance each item to
         * its first iteration >= target with err < thresh, which raises the
         * bound, until all items agree. Per-image mode skips the coupling.
         * The items of a pass run on OpenMP threads, each with its own
         * scratch; the fixpoint does not depend on their order. */
        int target = 1, changed = 1;
        while (changed && st == RAMC_OK) {
            changed = 0;
            const int target_before = target;
#pragma omp parallel for schedule(dynamic) num_threads(nthr)
            for (int b = 0; b < B; b++) {
                const float *Kb = T + b * NC;
                float *rb = r + (long)b * N, *cb = c + (long)b * C;
                float *rp = r_prev + (long)N * sinkhorn_thread();
                double *col = cols + (long)C * sinkhorn_thread();
                while (it[b] < target || (!(last_err[b] < thresh) && it[b] < max_iter)) {
                    float e = plain_step(Kb, rb, cb, u + (long)b * N, v + (long)b * C, rp, col,
                                         N, C);
                    if (err_hist) err_hist[(long)it[b] * B + b] = e;
                    last_err[b] = e;
                    it[b]++;
                    if (!isfinite(e)) break;
                }
            }
            for (int b = 0; b < B; b++)
                if (!isfinite(last_err[b])) {
                    st = ramc_error(RAMC_ERR_NUMERIC,
                                    "sinkhorn: item %d: scaling became non-finite at "
                                    "iteration %d (exp(-cost/%g) under/overflows in float32; "
                                    "use the log-domain mode for small reg)",
                                    b, it[b], (double)reg);
                    break;
                }
            for (int b = 0; b < B && coupled && st == RAMC_OK; b++)
                if (it[b] > target) {
                    target = it[b];
                    changed = 1;
                }
            if (coupled && dist_size(opt->batch_group) > 1) {
                /* The other processes' items raise the bound too. Every
                 * process must take the same number of passes, so whether
                 * to go on is decided on the agreed bound alone; a process
                 * that failed still takes part and then reports its error. */
                int agreed = target;
                if (st == RAMC_OK) st = dist_max_int(opt->batch_group, &agreed);
                else dist_max_int(opt->batch_group, &agreed);
                changed = agreed > target_before;
                target = agreed;
                if (st != RAMC_OK) changed = 0;
            }
        }
        /* T = (r_i · c_j) · K_ij, bracketed as torch's outer product times K. */
#pragma omp parallel for schedule(static) if (st == RAMC_OK)
        for (int b = 0; b < B; b++) {
            float *Tb = T + b * NC;
            const float *rb = r + (long)b * N, *cb = c + (long)b * C;
            for (int i = 0; i < N; i++)
                for (int j = 0; j < C; j++) Tb[(long)i * C + j] = (rb[i] * cb[j]) * Tb[(long)i * C + j];
        }
    }

    if (st == RAMC_OK) {
        long k = first_nonfinite(T, (long)B * NC);
        if (k >= 0)
            st = ramc_error(RAMC_ERR_NUMERIC,
                            "sinkhorn: plan of item %ld is not finite (T[%ld] = %g); reg %g is too "
                            "small for the float32 kernel, use the log-domain mode",
                            k / NC, k, (double)T[k], (double)reg);
    }
    if (st == RAMC_OK) {
        int mx = 0;
        for (int b = 0; b < B; b++) {
            if (iters) iters[b] = it[b];
            if (it[b] > mx) mx = it[b];
        }
        if (batch_iters) *batch_iters = mx;
    }
done:
    arena_free(arena, it);
    arena_free(arena, last_err);
    arena_free(arena, r_prev);
    arena_free(arena, dscr);
    arena_free(arena, cols);
    arena_reset(arena, mark);
    return st;
}

/* --------------------------------------------------------------- logits */

void kcot_local_logits_forward(float *z, const float *T, const float *sim, float tau,
                               int B, int N, int C) {
#pragma omp parallel for schedule(static) if ((long)B * N * C >= 65536)
    for (int b = 0; b < B; b++) {
        float *zb = z + (long)b * C;
        for (int c = 0; c < C; c++) zb[c] = 0.0f;
        for (int i = 0; i < N; i++) {
            const float *Ti = T + ((long)b * N + i) * C, *Si = sim + ((long)b * N + i) * C;
            for (int c = 0; c < C; c++) zb[c] += Ti[c] * Si[c];
        }
        for (int c = 0; c < C; c++) zb[c] /= tau;
    }
}

/* Σ dz·z / tau, the tau-gradient shared by every logits = x / tau layer, up
 * to the sign (d(x/tau)/dtau = -x/tau² = -z/tau). */
static double dz_dot_z(const float *dz, const float *z, long n) {
    double s = 0.0;
    for (long k = 0; k < n; k++) s += (double)dz[k] * (double)z[k];
    return s;
}

void kcot_local_logits_backward(float *dsim, float *dtau, const float *dz, const float *z,
                                const float *T, float tau, int B, int N, int C) {
    if (dsim) {
        for (int b = 0; b < B; b++) {
            const float *dzb = dz + (long)b * C;
            for (int i = 0; i < N; i++) {
                long off = ((long)b * N + i) * C;
                for (int c = 0; c < C; c++) dsim[off + c] += dzb[c] * T[off + c] / tau;
            }
        }
    }
    if (dtau) *dtau += (float)(-dz_dot_z(dz, z, (long)B * C) / tau);
}

void kcot_global_logits_forward(float *z, const float *g, const float *t, float tau,
                                int B, int C, int D) {
    kernels_init(); /* OpenBLAS's pool as gemm() sets it */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, C, D, 1.0f, g, D, t, D, 0.0f, z, C);
    for (long k = 0; k < (long)B * C; k++) z[k] /= tau;
}

void kcot_global_logits_backward(float *dg, float *dt, float *dtau, const float *dz,
                                 const float *z, const float *g, const float *t, float tau,
                                 int B, int C, int D) {
    float a = 1.0f / tau;
    if (dg) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, D, C, a, dz, C, t, D, 1.0f, dg, D);
    if (dt) cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, C, D, B, a, dz, C, g, D, 1.0f, dt, D);
    if (dtau) *dtau += (float)(-dz_dot_z(dz, z, (long)B * C) / tau);
}

/* ---------------------------------------------------------------- scores */

void kcot_softmax_rows(float *out, const float *z, int rows, int n) {
    for (long row = 0; row < rows; row++) softmax_row_scaled(out + row * n, z + row * n, n, 1.0f);
}

void kcot_score(float *score, float *score_glb, float *score_loc, const float *z_glb,
                const float *z_loc, int B, int C) {
    for (int b = 0; b < B; b++) {
        const float *zg = z_glb + (long)b * C, *zl = z_loc + (long)b * C;
        float mg, ig, ml, il;
        softmax_stats(zg, 1, C, 1.0f, &mg, &ig);
        softmax_stats(zl, 1, C, 1.0f, &ml, &il);
        for (int c = 0; c < C; c++) {
            float sg = expf(zg[c] - mg) * ig, sl = expf(zl[c] - ml) * il;
            if (score_glb) score_glb[(long)b * C + c] = sg;
            if (score_loc) score_loc[(long)b * C + c] = sl;
            score[(long)b * C + c] = (sg + sl) / 2.0f;
        }
    }
}

/* ------------------------------------------- ablation matchers (Table 5) */

void match_avgpool_forward(float *z, const float *sim, float tau, int B, int N, int C) {
    for (int b = 0; b < B; b++) {
        for (int c = 0; c < C; c++) {
            double s = 0.0;
            for (int i = 0; i < N; i++) s += sim[((long)b * N + i) * C + c];
            z[(long)b * C + c] = ((float)s / (float)N) / tau;
        }
    }
}

void match_avgpool_backward(float *dsim, float *dtau, const float *dz, const float *z,
                            float tau, int B, int N, int C) {
    if (dsim) {
        float k = 1.0f / ((float)N * tau);
        for (int b = 0; b < B; b++)
            for (int i = 0; i < N; i++)
                for (int c = 0; c < C; c++) dsim[((long)b * N + i) * C + c] += dz[(long)b * C + c] * k;
    }
    if (dtau) *dtau += (float)(-dz_dot_z(dz, z, (long)B * C) / tau);
}

void match_reweight_forward(float *z, float *w, const float *sim, float scale, float tau,
                            int B, int N, int C) {
    for (int b = 0; b < B; b++) {
        for (int c = 0; c < C; c++) {
            const float *s = sim + (long)b * N * C + c;
            float *wc = w + (long)b * N * C + c;
            float m, inv;
            softmax_stats(s, C, N, scale, &m, &inv);
            double acc = 0.0;
            for (int i = 0; i < N; i++) {
                float wi = expf(s[(long)i * C] * scale - m) * inv;
                wc[(long)i * C] = wi;
                acc += (double)wi * s[(long)i * C];
            }
            z[(long)b * C + c] = (float)acc / tau;
        }
    }
}

void match_reweight_backward(float *dsim, float *dtau, const float *dz, const float *z,
                             const float *w, const float *sim, float scale, float tau,
                             int B, int N, int C) {
    if (dsim) {
        for (int b = 0; b < B; b++) {
            for (int c = 0; c < C; c++) {
                long base = (long)b * N * C + c;
                /* m = Σ w·sim recomputed in double: z·tau would carry the
                 * rounding of the division into every patch's gradient. */
                double m = 0.0;
                for (int i = 0; i < N; i++) m += (double)w[base + (long)i * C] * sim[base + (long)i * C];
                double g = (double)dz[(long)b * C + c] / tau;
                for (int i = 0; i < N; i++) {
                    long k = base + (long)i * C;
                    dsim[k] += (float)(g * w[k] * (1.0 + scale * (sim[k] - m)));
                }
            }
        }
    }
    if (dtau) *dtau += (float)(-dz_dot_z(dz, z, (long)B * C) / tau);
}
