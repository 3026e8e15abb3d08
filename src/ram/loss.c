#include "ram/loss.h"

#include <math.h>

/* ------------------------------------------------------------------ MMC */

/* The float32 steps of mmc_loss: max, shift, log of the summed exps. Sums are
 * accumulated in double and rounded once (torch's float sum is pairwise, so
 * close to correctly rounded as well). */
static void mmc_stats(const float *z, long n, float *max_out, float *logsum_out) {
    float m = -INFINITY;
    for (long k = 0; k < n; k++)
        if (z[k] > m) m = z[k];
    double s = 0.0;
    for (long k = 0; k < n; k++) s += expf(z[k] - m);
    *max_out = m;
    *logsum_out = logf((float)s);
}

static float mmc_num_pos(const float *y, long n, double *raw) {
    double s = 0.0;
    for (long k = 0; k < n; k++) s += y[k];
    float p = (float)s;
    *raw = s;
    return p < 1e-6f ? 1.0f : p;
}

float loss_mmc_forward(const float *z, const float *y, long n) {
    float m, ls;
    mmc_stats(z, n, &m, &ls);
    double raw;
    float P = mmc_num_pos(y, n, &raw);
    double s = 0.0;
    for (long k = 0; k < n; k++) {
        float log_prob = (z[k] - m) - ls;
        s += (double)(y[k] * log_prob);
    }
    return -((float)s / P);
}

void loss_mmc_backward(float *dz, float dloss, const float *z, const float *y, long n) {
    float m, ls;
    mmc_stats(z, n, &m, &ls);
    double sum_y;
    float P = mmc_num_pos(y, n, &sum_y);
    double k0 = (double)dloss / P;
    for (long k = 0; k < n; k++) {
        double p = exp((double)((z[k] - m) - ls));
        dz[k] += (float)(k0 * (p * sum_y - y[k]));
    }
}

/* ------------------------------------------------------------------ ASL */

asl_options asl_default_options(void) {
    asl_options o = {2.0f, 0.0f, 0.0f, 1e-5f};
    return o;
}

/* Per-entry pieces shared by forward and backward, in torch's float order. */
typedef struct {
    float p, pn, w;
    int pn_clipped; /* pn saturated at 1 by the clip */
} asl_entry;

static asl_entry asl_eval(float x, float y, const asl_options *o) {
    asl_entry e;
    e.p = 1.0f / (1.0f + expf(-x));
    e.pn = 1.0f - e.p;
    e.pn_clipped = 0;
    if (o->clip > 0.0f) {
        e.pn += o->clip;
        if (e.pn > 1.0f) {
            e.pn = 1.0f;
            e.pn_clipped = 1;
        }
    }
    float base = 1.0f - e.p * y - e.pn * (1.0f - y);
    e.w = powf(base, o->gamma_pos * y + o->gamma_neg * (1.0f - y));
    return e;
}

float loss_asl_forward(const float *z, const float *y, int B, int C, const asl_options *opt) {
    long n = (long)B * C;
    double s = 0.0;
    for (long k = 0; k < n; k++) {
        asl_entry e = asl_eval(z[k], y[k], opt);
        float l = y[k] * logf(fmaxf(e.p, opt->eps)) + (1.0f - y[k]) * logf(fmaxf(e.pn, opt->eps));
        s += (double)(l * e.w);
    }
    return -(float)s / (float)B / (float)C * 1000.0f;
}

void loss_asl_backward(float *dz, float dloss, const float *z, const float *y, int B, int C,
                       const asl_options *opt) {
    long n = (long)B * C;
    double k0 = -(double)dloss * 1000.0 / ((double)B * C);
    for (long k = 0; k < n; k++) {
        asl_entry e = asl_eval(z[k], y[k], opt);
        double p = e.p, q = 1.0 - p; /* dp/dz = p q */
        double dl = 0.0;
        /* torch's clamp(min=eps) passes the gradient where input >= eps. */
        if (e.p >= opt->eps) dl += y[k] * q;            /* d log p / dz */
        if (e.pn >= opt->eps && !e.pn_clipped)
            dl -= (1.0 - y[k]) * p * q / e.pn;          /* d log pn / dz */
        dz[k] += (float)(k0 * e.w * dl);
    }
}

/* -------------------------------------------------------------- ranking */

static double softplus(double x) { return (x > 0 ? x : 0.0) + log1p(exp(-fabs(x))); }

/* log Σ_{k in set} exp(sign·z_k) over the entries whose positivity is `pos`;
 * -inf for an empty set. */
static double masked_lse(const float *z, const float *y, int C, int pos, double sign) {
    double m = -INFINITY;
    for (int k = 0; k < C; k++)
        if ((y[k] != 0.0f) == pos && sign * z[k] > m) m = sign * z[k];
    if (m == -INFINITY) return m;
    double s = 0.0;
    for (int k = 0; k < C; k++)
        if ((y[k] != 0.0f) == pos) s += exp(sign * z[k] - m);
    return m + log(s);
}

float loss_rank_forward(const float *z, const float *y, int B, int C, rank_kind kind, float margin) {
    double total = 0.0;
    for (int b = 0; b < B; b++) {
        const float *zb = z + (long)b * C, *yb = y + (long)b * C;
        if (kind == RANK_LSEP) {
            double a = masked_lse(zb, yb, C, 0, 1.0), bp = masked_lse(zb, yb, C, 1, -1.0);
            if (a == -INFINITY || bp == -INFINITY) continue;
            total += softplus(a + bp);
        } else {
            for (int p = 0; p < C; p++) {
                if (yb[p] == 0.0f) continue;
                for (int q = 0; q < C; q++) {
                    if (yb[q] != 0.0f) continue;
                    double h = (double)margin - zb[p] + zb[q];
                    if (h > 0) total += h;
                }
            }
        }
    }
    return (float)(total / B);
}

void loss_rank_backward(float *dz, float dloss, const float *z, const float *y, int B, int C,
                        rank_kind kind, float margin) {
    double g = (double)dloss / B;
    for (int b = 0; b < B; b++) {
        const float *zb = z + (long)b * C, *yb = y + (long)b * C;
        float *db = dz + (long)b * C;
        if (kind == RANK_LSEP) {
            double a = masked_lse(zb, yb, C, 0, 1.0), bp = masked_lse(zb, yb, C, 1, -1.0);
            if (a == -INFINITY || bp == -INFINITY) continue;
            /* d softplus(a + bp) = σ(a + bp) · (softmax over negatives of z,
             * minus softmax over positives of -z). */
            double sig = 1.0 / (1.0 + exp(-(a + bp)));
            for (int k = 0; k < C; k++) {
                if (yb[k] != 0.0f)
                    db[k] -= (float)(g * sig * exp(-zb[k] - bp));
                else
                    db[k] += (float)(g * sig * exp(zb[k] - a));
            }
        } else {
            for (int p = 0; p < C; p++) {
                if (yb[p] == 0.0f) continue;
                for (int q = 0; q < C; q++) {
                    if (yb[q] != 0.0f) continue;
                    if ((double)margin - zb[p] + zb[q] > 0) {
                        db[p] -= (float)g;
                        db[q] += (float)g;
                    }
                }
            }
        }
    }
}
