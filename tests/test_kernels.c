/* Kernel tests, two layers deep:
 *  (a) each double reference backward against central finite differences of
 *      the double reference forward, with loss = sum(dout * out);
 *  (b) each float kernel, forward and backward, against the reference on the
 *      same inputs. Backwards always start from a random pre-filled gradient
 *      buffer, so accumulation (+=) and the absence of stray writes are
 *      checked at the same time as the values.
 * Shapes stay small: the references are naive and the whole run must take
 * well under the test timeout. */
#include "kernels/kernels.h"
#include "kernels/kernels_ref.h"
#include "kernels/vexp.h"
#include "core/rng.h"
#include "test.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FD_TOL 1e-6
#define F32_TOL 1e-5

/* ------------------------------------------------------------ utilities */

static uint64_t rng = 0x243F6A8885A308D3ull;

/* uniform in [-1, 1) */
static double urand(void) {
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return (double)((rng * 0x2545F4914F6CDD1Dull) >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}

static double *dnew(long n) { return calloc((size_t)(n > 0 ? n : 1), sizeof(double)); }
static float *fnew(long n) { return calloc((size_t)(n > 0 ? n : 1), sizeof(float)); }

/* A random float array and its exact double copy, so both sides see the same
 * input (as_double NULL: the float array alone). */
static float *frand(long n, double lo, double hi, double **as_double) {
    float *f = fnew(n);
    double *d = dnew(n);
    for (long i = 0; i < n; i++) {
        f[i] = (float)(lo + (hi - lo) * 0.5 * (urand() + 1.0));
        d[i] = f[i];
    }
    if (as_double)
        *as_double = d;
    else
        free(d);
    return f;
}

static double maxabs(const double *a, long n) {
    double m = 0.0;
    for (long i = 0; i < n; i++)
        if (fabs(a[i]) > m) m = fabs(a[i]);
    return m;
}

/* max |got - want| relative to max |want|. */
static double cmp(const char *what, const float *got, const double *want, long n) {
    double scale = maxabs(want, n), err = 0.0;
    for (long i = 0; i < n; i++) {
        double e = fabs(got[i] - want[i]);
        if (!(e <= err)) err = e; /* NaN sticks */
    }
    double rel = err / (scale > 0 ? scale : 1.0);
    CHECK(rel <= F32_TOL, "%s: rel err %.3g (max|ref| %.3g)", what, rel, scale);
    return rel;
}

/* A gradient buffer pre-filled with noise of the size of the expected gradient. */
static float *prefill(long n, const double *ref_grad) {
    double mag = maxabs(ref_grad, n);
    float *g = fnew(n);
    for (long i = 0; i < n; i++) g[i] = (float)(urand() * (mag > 0 ? mag : 1.0));
    return g;
}

/* got was pre-filled with g0; it must now hold g0 + ref (to F32_TOL of max|ref|). */
static double cmp_acc(const char *what, const float *got, const float *g0, const double *ref,
                      long n) {
    double scale = maxabs(ref, n), err = 0.0;
    for (long i = 0; i < n; i++) {
        double e = fabs(got[i] - ((double)g0[i] + ref[i]));
        if (!(e <= err)) err = e;
    }
    double rel = err / (scale > 0 ? scale : 1.0);
    CHECK(rel <= F32_TOL, "%s: rel err %.3g (max|ref| %.3g)", what, rel, scale);
    return rel;
}

static float *fcopy(const float *a, long n) {
    float *c = fnew(n);
    memcpy(c, a, sizeof(float) * (size_t)n);
    return c;
}

static void report(const char *what, double rel) { printf("  %-58s %.2e\n", what, rel); }

/* ---------------------------------------------------- finite differences */

/* A forward pass over the double reference, closed over its arguments. */
typedef struct FdCase FdCase;
struct FdCase {
    void (*fwd)(FdCase *self);
    double *out, *dout;
    long nout;
};

static double fd_loss(FdCase *c) {
    c->fwd(c);
    double s = 0.0;
    for (long i = 0; i < c->nout; i++) s += c->dout[i] * c->out[i];
    return s;
}

/* Central differences of the loss in each element of p against grad. */
static void fd_check(const char *what, FdCase *c, double *p, long n, const double *grad) {
    const double h = 1e-5;
    double err = 0.0, scale = maxabs(grad, n);
    for (long i = 0; i < n; i++) {
        double o = p[i];
        p[i] = o + h;
        double lp = fd_loss(c);
        p[i] = o - h;
        double lm = fd_loss(c);
        p[i] = o;
        double e = fabs((lp - lm) / (2 * h) - grad[i]);
        if (!(e <= err)) err = e;
    }
    fd_loss(c); /* leave out as at the unperturbed point */
    double rel = err / (scale > 1e-3 ? scale : 1e-3);
    CHECK(rel < FD_TOL, "fd %s: rel err %.3g (max|grad| %.3g)", what, rel, scale);
    char buf[128];
    snprintf(buf, sizeof buf, "fd %s", what);
    report(buf, rel);
}

/* ------------------------------------------------------------------ GEMM */

static void test_gemm(void) {
    int M = 13, N = 17, K = 29;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 2, ldc = N + 5;
            long na = (long)(ta ? K : M) * lda, nb = (long)(tb ? N : K) * ldb, nc = (long)M * ldc;
            double *Ad, *Bd, *Cd;
            float *A = frand(na, -1, 1, &Ad), *B = frand(nb, -1, 1, &Bd), *Cf = frand(nc, -1, 1, &Cd);
            gemm(ta, tb, M, N, K, 0.7f, A, lda, B, ldb, 0.3f, Cf, ldc);
            ref_gemm(ta, tb, M, N, K, 0.7, Ad, lda, Bd, ldb, 0.3, Cd, ldc);
            char what[64];
            snprintf(what, sizeof what, "gemm trans_a=%d trans_b=%d (padded ld)", ta, tb);
            report(what, cmp(what, Cf, Cd, nc));
            free(A), free(B), free(Cf), free(Ad), free(Bd), free(Cd);
        }
    /* K = 0 leaves beta * C, without BLAS complaining about lda = 0. */
    float C0[6] = {1, 2, 3, 4, 5, 6};
    gemm(0, 0, 2, 3, 0, 1.0f, NULL, 0, NULL, 3, 0.5f, C0, 3);
    CHECK(C0[0] == 0.5f && C0[5] == 3.0f, "gemm K=0 must scale C by beta");
    printf("  %-58s ok\n", "gemm K=0");
}

/* ---------------------------------------------------------------- Linear */

typedef struct {
    FdCase base;
    double *inp, *w, *b;
    int rows, in, out;
} MatmulCase;

static void matmul_fwd(FdCase *c) {
    MatmulCase *m = (MatmulCase *)c;
    ref_matmul_forward(c->out, m->inp, m->w, m->b, m->rows, m->in, m->out);
}

static void test_matmul(int rows, int in, int out, int with_bias, int do_fd) {
    char what[96];
    const char *tag = with_bias ? "bias" : "no bias";
    double *inp_d, *w_d, *b_d = NULL, *g_d;
    float *inp = frand((long)rows * in, -1, 1, &inp_d), *w = frand((long)out * in, -1, 1, &w_d);
    float *b = with_bias ? frand(out, -1, 1, &b_d) : NULL;
    float *g = frand((long)rows * out, -1, 1, &g_d);
    double *out_d = dnew((long)rows * out), *di = dnew((long)rows * in),
           *dw = dnew((long)out * in), *db = dnew(out);
    ref_matmul_forward(out_d, inp_d, w_d, b_d, rows, in, out);
    ref_matmul_backward(di, dw, with_bias ? db : NULL, g_d, inp_d, w_d, rows, in, out);
    if (do_fd) {
        MatmulCase c = {{matmul_fwd, dnew((long)rows * out), g_d, (long)rows * out},
                        inp_d, w_d, b_d, rows, in, out};
        snprintf(what, sizeof what, "matmul %s dinp", tag);
        fd_check(what, &c.base, inp_d, (long)rows * in, di);
        snprintf(what, sizeof what, "matmul %s dweight", tag);
        fd_check(what, &c.base, w_d, (long)out * in, dw);
        if (with_bias) fd_check("matmul dbias", &c.base, b_d, out, db);
        free(c.base.out);
    }
    float *o = fnew((long)rows * out);
    matmul_forward(o, inp, w, b, rows, in, out);
    snprintf(what, sizeof what, "matmul %s forward %dx%d->%d", tag, rows, in, out);
    report(what, cmp(what, o, out_d, (long)rows * out));
    float *fi = prefill((long)rows * in, di), *fw = prefill((long)out * in, dw),
          *fb = prefill(out, db);
    float *fi0 = fcopy(fi, (long)rows * in), *fw0 = fcopy(fw, (long)out * in), *fb0 = fcopy(fb, out);
    matmul_backward(fi, fw, with_bias ? fb : NULL, g, inp, w, rows, in, out);
    snprintf(what, sizeof what, "matmul %s backward dinp (accumulated)", tag);
    report(what, cmp_acc(what, fi, fi0, di, (long)rows * in));
    snprintf(what, sizeof what, "matmul %s backward dweight (accumulated)", tag);
    report(what, cmp_acc(what, fw, fw0, dw, (long)out * in));
    if (with_bias) {
        snprintf(what, sizeof what, "matmul backward dbias (accumulated)");
        report(what, cmp_acc(what, fb, fb0, db, out));
    }
    /* NULL gradients are skipped. */
    matmul_backward(NULL, NULL, NULL, g, inp, w, rows, in, out);
    free(inp), free(w), free(b), free(g), free(inp_d), free(w_d), free(b_d), free(g_d);
    free(out_d), free(di), free(dw), free(db), free(o), free(fi), free(fw), free(fb);
    free(fi0), free(fw0), free(fb0);
}

/* ------------------------------------------------------------- LayerNorm */

typedef struct {
    FdCase base;
    double *inp, *w, *b;
    int rows, dim;
    double eps;
} LnCase;

static void ln_fwd(FdCase *c) {
    LnCase *l = (LnCase *)c;
    ref_layernorm_forward(c->out, NULL, NULL, l->inp, l->w, l->b, l->rows, l->dim, l->eps);
}

static void test_layernorm(int rows, int dim, double offset, int do_fd) {
    char what[96];
    long n = (long)rows * dim;
    float eps = 1e-5f;
    double *x_d, *w_d, *b_d, *g_d;
    float *x = frand(n, offset - 1, offset + 1, &x_d), *w = frand(dim, 0.5, 1.5, &w_d),
          *b = frand(dim, -1, 1, &b_d), *g = frand(n, -1, 1, &g_d);
    double *out_d = dnew(n), *mean_d = dnew(rows), *rstd_d = dnew(rows);
    double *dx = dnew(n), *dw = dnew(dim), *db = dnew(dim);
    ref_layernorm_forward(out_d, mean_d, rstd_d, x_d, w_d, b_d, rows, dim, eps);
    ref_layernorm_backward(dx, dw, db, g_d, x_d, w_d, mean_d, rstd_d, rows, dim);
    if (do_fd) {
        LnCase c = {{ln_fwd, dnew(n), g_d, n}, x_d, w_d, b_d, rows, dim, eps};
        fd_check("layernorm dinp", &c.base, x_d, n, dx);
        fd_check("layernorm dweight", &c.base, w_d, dim, dw);
        fd_check("layernorm dbias", &c.base, b_d, dim, db);
        free(c.base.out);
    }
    float *o = fnew(n), *mean = fnew(rows), *rstd = fnew(rows);
    layernorm_forward(o, mean, rstd, x, w, b, rows, dim, eps);
    snprintf(what, sizeof what, "layernorm forward %dx%d (mean %+g)", rows, dim, offset);
    report(what, cmp(what, o, out_d, n));
    cmp("layernorm saved rstd", rstd, rstd_d, rows);
    float *o2 = fnew(n);
    layernorm_forward(o2, NULL, NULL, x, w, b, rows, dim, eps);
    CHECK(memcmp(o, o2, sizeof(float) * (size_t)n) == 0, "layernorm NULL mean/rstd changes out");
    float *fx = prefill(n, dx), *fw = prefill(dim, dw), *fb = prefill(dim, db);
    float *fx0 = fcopy(fx, n), *fw0 = fcopy(fw, dim), *fb0 = fcopy(fb, dim);
    layernorm_backward(fx, fw, fb, g, x, w, mean, rstd, rows, dim);
    snprintf(what, sizeof what, "layernorm backward dinp %dx%d (accumulated)", rows, dim);
    report(what, cmp_acc(what, fx, fx0, dx, n));
    report("layernorm backward dweight (accumulated)",
           cmp_acc("layernorm dweight", fw, fw0, dw, dim));
    report("layernorm backward dbias (accumulated)", cmp_acc("layernorm dbias", fb, fb0, db, dim));
    free(x), free(w), free(b), free(g), free(x_d), free(w_d), free(b_d), free(g_d);
    free(out_d), free(mean_d), free(rstd_d), free(dx), free(dw), free(db);
    free(o), free(o2), free(mean), free(rstd), free(fx), free(fw), free(fb);
    free(fx0), free(fw0), free(fb0);
}

/* ------------------------------------------------------------- Attention */

enum { ATT_SEPARATE, ATT_FUSED, ATT_VALUE_VALUE };

/* Up to three buffers; q, k, v are (buffer, offset) pairs inside them. */
typedef struct {
    FdCase base;
    double *buf[3];
    int qi, ki, vi;
    long qo, ko, vo, bs, rs;
    int B, Tq, Tk, C, H, causal;
} AttCase;

static void att_fwd(FdCase *c) {
    AttCase *a = (AttCase *)c;
    ref_attention_forward(c->out, NULL, a->buf[a->qi] + a->qo, a->buf[a->ki] + a->ko,
                          a->buf[a->vi] + a->vo, a->bs, a->rs, a->B, a->Tq, a->Tk, a->C, a->H,
                          a->causal);
}

/* extra: rows before the used ones in each batch item that attention must
 * neither read into its result nor write gradients to (SAA's prompt rows). */
static void test_attention(const char *name, int mode, int B, int Tq, int Tk, int C, int H,
                           int causal, int extra, int do_fd) {
    char what[128];
    AttCase a;
    memset(&a, 0, sizeof a);
    int nbuf = mode == ATT_SEPARATE ? 3 : 1;
    a.rs = mode == ATT_SEPARATE ? C : 3L * C;
    a.bs = (long)((Tq > Tk ? Tq : Tk) + extra) * a.rs;
    long base = extra * a.rs, L = B * a.bs;
    if (mode == ATT_SEPARATE) {
        a.qi = 0, a.ki = 1, a.vi = 2;
        a.qo = a.ko = a.vo = base;
    } else if (mode == ATT_FUSED) {
        a.qo = base, a.ko = base + C, a.vo = base + 2L * C;
    } else {
        a.qo = a.ko = a.vo = base + 2L * C;
    }
    a.B = B, a.Tq = Tq, a.Tk = Tk, a.C = C, a.H = H, a.causal = causal;
    long nout = (long)B * Tq * C, np = (long)B * H * Tq * Tk;

    float *fb[3] = {0}, *fg[3] = {0}, *fg0[3] = {0};
    double *rg[3] = {0};
    for (int i = 0; i < nbuf; i++) fb[i] = frand(L, -1.5, 1.5, &a.buf[i]);
    double *g_d;
    float *g = frand(nout, -1, 1, &g_d);
    double *out_d = dnew(nout), *probs_d = dnew(np);
    const double *qd = a.buf[a.qi] + a.qo, *kd = a.buf[a.ki] + a.ko, *vd = a.buf[a.vi] + a.vo;
    ref_attention_forward(out_d, probs_d, qd, kd, vd, a.bs, a.rs, B, Tq, Tk, C, H, causal);
    for (int i = 0; i < nbuf; i++) rg[i] = dnew(L);
    ref_attention_backward(rg[a.qi] + a.qo, rg[a.ki] + a.ko, rg[a.vi] + a.vo, g_d, probs_d, qd, kd,
                           vd, a.bs, a.rs, B, Tq, Tk, C, H, causal);

    if (do_fd) {
        a.base.fwd = att_fwd, a.base.out = dnew(nout), a.base.dout = g_d, a.base.nout = nout;
        for (int i = 0; i < nbuf; i++) {
            snprintf(what, sizeof what, "attention %s buffer %d", name, i);
            fd_check(what, &a.base, a.buf[i], L, rg[i]);
        }
        free(a.base.out);
        /* The reference recomputing probs must agree with it reading them. */
        double *rg2 = dnew(L * nbuf);
        double *r2[3] = {rg2, rg2 + L, rg2 + 2 * L};
        ref_attention_backward(r2[a.qi] + a.qo, r2[a.ki] + a.ko, r2[a.vi] + a.vo, g_d, NULL, qd,
                               kd, vd, a.bs, a.rs, B, Tq, Tk, C, H, causal);
        double e = 0.0;
        for (int i = 0; i < nbuf; i++)
            for (long j = 0; j < L; j++) e = fmax(e, fabs(r2[i][j] - rg[i][j]));
        CHECK(e < 1e-12, "ref attention backward without probs differs by %g", e);
        free(rg2);
    }

    const float *qf = fb[a.qi] + a.qo, *kf = fb[a.ki] + a.ko, *vf = fb[a.vi] + a.vo;
    float *o = fnew(nout), *p = fnew(np);
    attention_forward(o, p, qf, kf, vf, a.bs, a.rs, B, Tq, Tk, C, H, causal, NULL);
    snprintf(what, sizeof what, "attention %s forward", name);
    report(what, cmp(what, o, out_d, nout));
    snprintf(what, sizeof what, "attention %s probs", name);
    report(what, cmp(what, p, probs_d, np));
    if (causal) {
        int zero = 1;
        for (long bh = 0; bh < (long)B * H; bh++)
            for (int t = 0; t < Tq; t++)
                for (int j = t + 1; j < Tk; j++) zero &= p[(bh * Tq + t) * Tk + j] == 0.0f;
        CHECK(zero, "attention %s: masked probs must be exactly 0", name);
    }
    float *o2 = fnew(nout);
    attention_forward(o2, NULL, qf, kf, vf, a.bs, a.rs, B, Tq, Tk, C, H, causal, NULL);
    snprintf(what, sizeof what, "attention %s forward, probs NULL", name);
    report(what, cmp(what, o2, out_d, nout));
    /* the caller's work planes (the arena's at inference), poisoned first:
     * every score the kernel reads it must have written */
    {
        const size_t nw = attention_work_floats(B, Tq, Tk, H);
        float *work = fnew((long)nw);
        for (size_t i = 0; i < nw; i++) work[i] = NAN;
        attention_forward(o2, NULL, qf, kf, vf, a.bs, a.rs, B, Tq, Tk, C, H, causal, work);
        snprintf(what, sizeof what, "attention %s forward, caller's work", name);
        report(what, cmp(what, o2, out_d, nout));
        free(work);
    }
    attention_forward_rowwise(o2, qf, kf, vf, a.bs, a.rs, B, Tq, Tk, C, H, causal);
    snprintf(what, sizeof what, "attention %s forward, row-wise fallback", name);
    report(what, cmp(what, o2, out_d, nout));

    /* Four backward paths: saved or recomputed probs, GEMM or row-wise. */
    for (int variant = 0; variant < 4; variant++) {
        for (int i = 0; i < nbuf; i++) {
            fg[i] = prefill(L, rg[i]);
            fg0[i] = fcopy(fg[i], L);
        }
        const float *pp = variant & 1 ? NULL : p;
        float *dq = fg[a.qi] + a.qo, *dk = fg[a.ki] + a.ko, *dv = fg[a.vi] + a.vo;
        if (variant < 2)
            attention_backward(dq, dk, dv, g, pp, qf, kf, vf, a.bs, a.rs, B, Tq, Tk, C, H, causal);
        else
            attention_backward_rowwise(dq, dk, dv, g, pp, qf, kf, vf, a.bs, a.rs, B, Tq, Tk, C, H,
                                       causal);
        static const char *vname[4] = {"", ", probs NULL", ", row-wise", ", row-wise probs NULL"};
        double worst = 0.0;
        for (int i = 0; i < nbuf; i++) {
            snprintf(what, sizeof what, "attention %s backward buffer %d%s", name, i,
                     vname[variant]);
            worst = fmax(worst, cmp_acc(what, fg[i], fg0[i], rg[i], L));
            free(fg[i]), free(fg0[i]);
        }
        snprintf(what, sizeof what, "attention %s backward%s (accumulated)", name,
                 vname[variant]);
        report(what, worst);
    }
    for (int i = 0; i < nbuf; i++) free(fb[i]), free(a.buf[i]), free(rg[i]);
    free(g), free(g_d), free(out_d), free(probs_d), free(o), free(o2), free(p);
}

/* ------------------------------------------------------------ Activations */

typedef struct {
    FdCase base;
    double *inp;
    long n;
    int kind;
} ActCase;

static void act_fwd(FdCase *c) {
    ActCase *a = (ActCase *)c;
    if (a->kind == 0) ref_quickgelu_forward(c->out, a->inp, a->n);
    if (a->kind == 1) ref_gelu_forward(c->out, a->inp, a->n);
    if (a->kind == 2) ref_sigmoid_forward(c->out, a->inp, a->n);
}

static void test_activation(int kind, long n, double range, int do_fd) {
    static const char *names[3] = {"quickgelu", "gelu", "sigmoid"};
    char what[96];
    double *x_d, *g_d;
    float *x = frand(n, -range, range, &x_d), *g = frand(n, -1, 1, &g_d);
    double *out_d = dnew(n), *dx = dnew(n);
    ActCase c = {{act_fwd, out_d, g_d, n}, x_d, n, kind};
    act_fwd(&c.base);
    if (kind == 0) ref_quickgelu_backward(dx, g_d, x_d, n);
    if (kind == 1) ref_gelu_backward(dx, g_d, x_d, n);
    if (kind == 2) ref_sigmoid_backward(dx, g_d, out_d, n);
    if (do_fd) fd_check(names[kind], &c.base, x_d, n, dx);
    float *o = fnew(n);
    if (kind == 0) quickgelu_forward(o, x, n);
    if (kind == 1) gelu_forward(o, x, n);
    if (kind == 2) sigmoid_forward(o, x, n);
    snprintf(what, sizeof what, "%s forward [-%g, %g]", names[kind], range, range);
    report(what, cmp(what, o, out_d, n));
    float *fx = prefill(n, dx), *fx0 = fcopy(fx, n);
    if (kind == 0) quickgelu_backward(fx, g, x, n);
    if (kind == 1) gelu_backward(fx, g, x, n);
    if (kind == 2) sigmoid_backward(fx, g, o, n);
    snprintf(what, sizeof what, "%s backward (accumulated)", names[kind]);
    report(what, cmp_acc(what, fx, fx0, dx, n));
    free(x), free(g), free(x_d), free(g_d), free(out_d), free(dx), free(o), free(fx), free(fx0);
}

/* Saturated inputs must not produce NaN or overflow warnings. */
static void test_activation_extremes(void) {
    float x[4] = {-200.0f, -90.0f, 90.0f, 200.0f}, y[4], d[4] = {0}, one[4] = {1, 1, 1, 1};
    int ok = 1;
    quickgelu_forward(y, x, 4);
    quickgelu_backward(d, one, x, 4);
    for (int i = 0; i < 4; i++) ok &= isfinite(y[i]) && isfinite(d[i]);
    sigmoid_forward(y, x, 4);
    for (int i = 0; i < 4; i++) ok &= isfinite(y[i]);
    gelu_forward(y, x, 4);
    for (int i = 0; i < 4; i++) ok &= isfinite(y[i]);
    CHECK(ok && y[0] == 0.0f && y[3] == 200.0f, "activations at +-200 must stay finite");
    printf("  %-58s ok\n", "activations at +-200 stay finite");
}

/* ---------------------------------------------------------------- Softmax */

typedef struct {
    FdCase base;
    double *inp;
    int rows, dim;
    double scale;
} SmCase;

static void sm_fwd(FdCase *c) {
    SmCase *s = (SmCase *)c;
    ref_softmax_forward(c->out, s->inp, s->rows, s->dim, s->scale);
}

static void test_softmax(int rows, int dim, double range, float scale, int do_fd) {
    char what[96];
    long n = (long)rows * dim;
    double *x_d, *g_d;
    float *x = frand(n, -range, range, &x_d), *g = frand(n, -1, 1, &g_d);
    double *out_d = dnew(n), *dx = dnew(n);
    SmCase c = {{sm_fwd, out_d, g_d, n}, x_d, rows, dim, scale};
    sm_fwd(&c.base);
    ref_softmax_backward(dx, g_d, out_d, rows, dim, scale);
    if (do_fd) fd_check("softmax with scale", &c.base, x_d, n, dx);
    float *o = fnew(n);
    softmax_forward(o, x, rows, dim, scale);
    snprintf(what, sizeof what, "softmax forward %dx%d scale %g range %g", rows, dim, scale, range);
    report(what, cmp(what, o, out_d, n));
    float *fx = prefill(n, dx), *fx0 = fcopy(fx, n);
    softmax_backward(fx, g, o, rows, dim, scale);
    snprintf(what, sizeof what, "softmax backward scale %g (accumulated)", scale);
    report(what, cmp_acc(what, fx, fx0, dx, n));
    free(x), free(g), free(x_d), free(g_d), free(out_d), free(dx), free(o), free(fx), free(fx0);
}

/* ---------------------------------------------------------------- Conv2d */

typedef struct {
    FdCase base;
    double *inp, *w, *b;
    int B, Ci, H, W, Co, k, s, p;
} ConvCase;

static void conv_fwd(FdCase *c) {
    ConvCase *v = (ConvCase *)c;
    ref_conv2d_forward(c->out, v->inp, v->w, v->b, v->B, v->Ci, v->H, v->W, v->Co, v->k, v->s,
                       v->p);
}

static void test_conv(const char *name, int B, int Ci, int H, int W, int Co, int k, int s, int p,
                      int with_bias, int do_fd) {
    char what[128];
    int Ho = (H + 2 * p - k) / s + 1, Wo = (W + 2 * p - k) / s + 1;
    long ni = (long)B * Ci * H * W, nw = (long)Co * Ci * k * k, no = (long)B * Co * Ho * Wo;
    double *x_d, *w_d, *b_d = NULL, *g_d;
    float *x = frand(ni, -1, 1, &x_d), *w = frand(nw, -1, 1, &w_d), *g = frand(no, -1, 1, &g_d);
    float *b = with_bias ? frand(Co, -1, 1, &b_d) : NULL;
    double *out_d = dnew(no), *dx = dnew(ni), *dw = dnew(nw), *db = dnew(Co);
    ConvCase c = {{conv_fwd, out_d, g_d, no}, x_d, w_d, b_d, B, Ci, H, W, Co, k, s, p};
    conv_fwd(&c.base);
    ref_conv2d_backward(dx, dw, with_bias ? db : NULL, g_d, x_d, w_d, B, Ci, H, W, Co, k, s, p);
    if (do_fd) {
        c.base.out = dnew(no);
        snprintf(what, sizeof what, "conv2d %s dinp", name);
        fd_check(what, &c.base, x_d, ni, dx);
        snprintf(what, sizeof what, "conv2d %s dweight", name);
        fd_check(what, &c.base, w_d, nw, dw);
        if (with_bias) {
            snprintf(what, sizeof what, "conv2d %s dbias", name);
            fd_check(what, &c.base, b_d, Co, db);
        }
        free(c.base.out);
    }
    float *o = fnew(no);
    for (int direct = 0; direct < 2; direct++) {
        const char *path = direct ? " (direct fallback)" : "";
        if (direct)
            conv2d_forward_direct(o, x, w, b, B, Ci, H, W, Co, k, s, p);
        else
            conv2d_forward(o, x, w, b, B, Ci, H, W, Co, k, s, p, NULL);
        snprintf(what, sizeof what, "conv2d %s forward%s", name, path);
        report(what, cmp(what, o, out_d, no));
        if (!direct) { /* the caller's im2col work, poisoned first */
            const size_t nwk = conv2d_work_floats(Ci, H, W, k, s, p);
            float *work = nwk ? fnew((long)nwk) : NULL;
            for (size_t i = 0; i < nwk; i++) work[i] = NAN;
            conv2d_forward(o, x, w, b, B, Ci, H, W, Co, k, s, p, work);
            snprintf(what, sizeof what, "conv2d %s forward, caller's work", name);
            report(what, cmp(what, o, out_d, no));
            free(work);
        }
        float *fx = prefill(ni, dx), *fw = prefill(nw, dw), *fb = prefill(Co, db);
        float *fx0 = fcopy(fx, ni), *fw0 = fcopy(fw, nw), *fb0 = fcopy(fb, Co);
        if (direct)
            conv2d_backward_direct(fx, fw, with_bias ? fb : NULL, g, x, w, B, Ci, H, W, Co, k, s,
                                   p);
        else
            conv2d_backward(fx, fw, with_bias ? fb : NULL, g, x, w, B, Ci, H, W, Co, k, s, p);
        double worst = cmp_acc("conv2d dinp", fx, fx0, dx, ni);
        worst = fmax(worst, cmp_acc("conv2d dweight", fw, fw0, dw, nw));
        if (with_bias) worst = fmax(worst, cmp_acc("conv2d dbias", fb, fb0, db, Co));
        snprintf(what, sizeof what, "conv2d %s backward%s (accumulated)", name, path);
        report(what, worst);
        free(fx), free(fw), free(fb), free(fx0), free(fw0), free(fb0);
    }
    /* Each gradient alone, the others NULL. */
    float *fx = fnew(ni), *fw = fnew(nw);
    conv2d_backward(fx, NULL, NULL, g, x, w, B, Ci, H, W, Co, k, s, p);
    conv2d_backward(NULL, fw, NULL, g, x, w, B, Ci, H, W, Co, k, s, p);
    double worst = fmax(cmp("conv2d dinp alone", fx, dx, ni), cmp("conv2d dweight alone", fw, dw, nw));
    snprintf(what, sizeof what, "conv2d %s backward, one gradient at a time", name);
    report(what, worst);
    free(fx), free(fw);
    free(x), free(w), free(b), free(g), free(x_d), free(w_d), free(b_d), free(g_d);
    free(out_d), free(dx), free(dw), free(db), free(o);
}

/* ------------------------------------------------------------- BatchNorm */

typedef struct {
    FdCase base;
    double *inp, *w, *b;
    int B, C, HW;
    double eps;
} BnCase;

static void bn_fwd(FdCase *c) {
    BnCase *v = (BnCase *)c;
    ref_batchnorm_forward_train(c->out, NULL, NULL, NULL, NULL, v->inp, v->w, v->b, v->B, v->C,
                                v->HW, v->eps, 0.1);
}

static void test_batchnorm(int B, int C, int HW, int do_fd) {
    char what[96];
    long n = (long)B * C * HW;
    float eps = 1e-5f, momentum = 0.1f;
    double *x_d, *w_d, *b_d, *g_d, *rm_d, *rv_d;
    float *x = frand(n, -1, 3, &x_d), *w = frand(C, 0.5, 1.5, &w_d), *b = frand(C, -1, 1, &b_d);
    float *g = frand(n, -1, 1, &g_d), *rm = frand(C, -1, 1, &rm_d), *rv = frand(C, 0.5, 2, &rv_d);
    double *out_d = dnew(n), *mean_d = dnew(C), *rstd_d = dnew(C);
    double *dx = dnew(n), *dw = dnew(C), *db = dnew(C);
    double *rm_before = dnew(C), *rv_before = dnew(C);
    memcpy(rm_before, rm_d, sizeof(double) * (size_t)C);
    memcpy(rv_before, rv_d, sizeof(double) * (size_t)C);
    ref_batchnorm_forward_train(out_d, mean_d, rstd_d, rm_d, rv_d, x_d, w_d, b_d, B, C, HW, eps,
                                momentum);
    ref_batchnorm_backward(dx, dw, db, g_d, x_d, w_d, mean_d, rstd_d, B, C, HW);

    /* The running update, recomputed here by the textbook formulas. */
    double worst = 0.0;
    long cnt = (long)B * HW;
    for (int c = 0; c < C; c++) {
        double m = 0.0, ss = 0.0;
        for (int bi = 0; bi < B; bi++)
            for (int i = 0; i < HW; i++) m += x_d[((long)bi * C + c) * HW + i];
        m /= cnt;
        for (int bi = 0; bi < B; bi++)
            for (int i = 0; i < HW; i++) {
                double d = x_d[((long)bi * C + c) * HW + i] - m;
                ss += d * d;
            }
        double want_rm = 0.9 * rm_before[c] + 0.1 * m;
        double want_rv = 0.9 * rv_before[c] + 0.1 * ss / (cnt - 1);
        worst = fmax(worst, fmax(fabs(rm_d[c] - want_rm), fabs(rv_d[c] - want_rv)));
        worst = fmax(worst, fabs(rstd_d[c] - 1.0 / sqrt(ss / cnt + (double)eps)));
    }
    CHECK(worst < 1e-6, "ref batchnorm running stats off by %g", worst);
    if (do_fd) report("ref batchnorm running stats (unbiased var, momentum)", worst);

    if (do_fd) {
        BnCase c = {{bn_fwd, dnew(n), g_d, n}, x_d, w_d, b_d, B, C, HW, eps};
        fd_check("batchnorm train dinp", &c.base, x_d, n, dx);
        fd_check("batchnorm train dweight", &c.base, w_d, C, dw);
        fd_check("batchnorm train dbias", &c.base, b_d, C, db);
        free(c.base.out);
    }
    float *o = fnew(n), *mean = fnew(C), *rstd = fnew(C);
    float *prm = fcopy(rm, C), *prv = fcopy(rv, C); /* the running stats before this step */
    batchnorm_forward_train(o, mean, rstd, rm, rv, x, w, b, B, C, HW, eps, momentum);
    {
        /* the three phases (data-parallel SyncBatchNorm) give bitwise the whole kernel */
        float *po = fnew(n), *pmean = fnew(C), *prstd = fnew(C);
        double *sums = calloc((size_t)C, sizeof *sums), *sqdev = calloc((size_t)C, sizeof *sqdev);
        const double cnt = (double)B * HW;
        batchnorm_train_sums(sums, x, B, C, HW);
        batchnorm_train_sqdev(sqdev, sums, cnt, x, B, C, HW);
        batchnorm_train_apply(po, pmean, prstd, prm, prv, sums, sqdev, cnt, x, w, b, B, C, HW, eps,
                              momentum);
        CHECK(!memcmp(po, o, (size_t)n * sizeof *o) && !memcmp(pmean, mean, (size_t)C * sizeof *mean) &&
                  !memcmp(prstd, rstd, (size_t)C * sizeof *rstd) &&
                  !memcmp(prm, rm, (size_t)C * sizeof *rm) && !memcmp(prv, rv, (size_t)C * sizeof *rv),
              "batchnorm train forward in phases differs from the whole (B=%d C=%d HW=%d)", B, C, HW);
        free(po), free(pmean), free(prstd), free(sums), free(sqdev);
    }
    free(prm), free(prv);
    snprintf(what, sizeof what, "batchnorm train forward B=%d C=%d HW=%d", B, C, HW);
    report(what, cmp(what, o, out_d, n));
    worst = fmax(cmp("batchnorm running_mean", rm, rm_d, C), cmp("batchnorm running_var", rv, rv_d, C));
    worst = fmax(worst, cmp("batchnorm saved mean", mean, mean_d, C));
    report("batchnorm train running_mean/var, saved mean", worst);

    float *fx = prefill(n, dx), *fw = prefill(C, dw), *fb = prefill(C, db);
    float *fx0 = fcopy(fx, n), *fw0 = fcopy(fw, C), *fb0 = fcopy(fb, C);
    batchnorm_backward(fx, fw, fb, g, x, w, mean, rstd, B, C, HW);
    worst = cmp_acc("batchnorm dinp", fx, fx0, dx, n);
    worst = fmax(worst, cmp_acc("batchnorm dweight", fw, fw0, dw, C));
    worst = fmax(worst, cmp_acc("batchnorm dbias", fb, fb0, db, C));
    report("batchnorm backward (accumulated)", worst);
    {
        /* the two halves (data-parallel training) give bitwise the whole one */
        float *hx = fcopy(fx0, n), *hw = fcopy(fw0, C), *hb = fcopy(fb0, C);
        double *sums = calloc((size_t)2 * C, sizeof *sums);
        batchnorm_backward_sums(sums, hw, hb, g, x, mean, rstd, B, C, HW);
        batchnorm_backward_input(hx, sums, (double)B * HW, g, x, w, mean, rstd, B, C, HW);
        CHECK(!memcmp(hx, fx, (size_t)n * sizeof *hx) && !memcmp(hw, fw, (size_t)C * sizeof *hw) &&
                  !memcmp(hb, fb, (size_t)C * sizeof *hb),
              "batchnorm backward in halves differs from the whole (B=%d C=%d HW=%d)", B, C, HW);
        free(hx), free(hw), free(hb), free(sums);
    }

    /* Evaluation form, with the running statistics just updated. */
    double *oe_d = dnew(n);
    ref_batchnorm_forward_eval(oe_d, x_d, rm_d, rv_d, w_d, b_d, B, C, HW, eps);
    batchnorm_forward_eval(o, x, rm, rv, w, b, B, C, HW, eps);
    report("batchnorm eval forward", cmp("batchnorm eval forward", o, oe_d, n));

    free(x), free(w), free(b), free(g), free(rm), free(rv), free(x_d), free(w_d), free(b_d);
    free(g_d), free(rm_d), free(rv_d), free(out_d), free(mean_d), free(rstd_d), free(dx), free(dw);
    free(db), free(rm_before), free(rv_before), free(o), free(mean), free(rstd), free(fx), free(fw);
    free(fb), free(fx0), free(fw0), free(fb0), free(oe_d);
}

/* -------------------------------------------------------------- L2 norm */

typedef struct {
    FdCase base;
    double *inp;
    int rows, dim;
    double eps;
} L2Case;

static void l2_fwd(FdCase *c) {
    L2Case *v = (L2Case *)c;
    ref_l2norm_forward(c->out, NULL, v->inp, v->rows, v->dim, v->eps);
}

/* small_rows: row 0 is all zeros and row 1 has a norm below eps (clamp branch). */
static void test_l2norm(int rows, int dim, float eps, int small_rows, int do_fd) {
    char what[96];
    long n = (long)rows * dim;
    double *x_d, *g_d;
    float *x = frand(n, -1, 1, &x_d), *g = frand(n, -1, 1, &g_d);
    if (small_rows) {
        for (int i = 0; i < dim; i++) {
            x[i] = 0.0f, x_d[i] = 0.0;
            x[dim + i] *= 1e-2f * eps, x_d[dim + i] = x[dim + i];
        }
        /* Row 2 just above eps: the full branch, where a wrong threshold would clamp. */
        double s = 0.0;
        for (int i = 0; i < dim; i++) s += x_d[2 * dim + i] * x_d[2 * dim + i];
        for (int i = 0; i < dim; i++) {
            x[2 * dim + i] = (float)(x_d[2 * dim + i] * 1.5 * eps / sqrt(s));
            x_d[2 * dim + i] = x[2 * dim + i];
        }
    }
    double *out_d = dnew(n), *norms_d = dnew(rows), *dx = dnew(n);
    L2Case c = {{l2_fwd, out_d, g_d, n}, x_d, rows, dim, eps};
    ref_l2norm_forward(out_d, norms_d, x_d, rows, dim, eps);
    ref_l2norm_backward(dx, g_d, x_d, norms_d, rows, dim, eps);
    if (do_fd) {
        snprintf(what, sizeof what, "l2norm%s", small_rows ? " (rows: zero, below eps, just above eps)" : "");
        fd_check(what, &c.base, x_d, n, dx);
    }
    float *o = fnew(n), *norms = fnew(rows);
    l2norm_forward(o, norms, x, rows, dim, eps);
    snprintf(what, sizeof what, "l2norm forward %dx%d eps %g%s", rows, dim, eps,
             small_rows ? " with clamped rows" : "");
    report(what, cmp(what, o, out_d, n));
    /* Row by row: a clamped row's gradient is 1/eps larger than the rest. */
    double worst = 0.0;
    for (int pass = 0; pass < 2; pass++) {
        /* Noise sized per row, or the clamped rows' would swamp the others. */
        float *fx = fnew(n);
        for (int r = 0; r < rows; r++) {
            float *row = prefill(dim, dx + (long)r * dim);
            memcpy(fx + (long)r * dim, row, sizeof(float) * (size_t)dim);
            free(row);
        }
        float *fx0 = fcopy(fx, n);
        l2norm_backward(fx, g, x, pass ? NULL : norms, rows, dim, eps);
        for (int r = 0; r < rows; r++)
            worst = fmax(worst, cmp_acc("l2norm backward row", fx + (long)r * dim,
                                        fx0 + (long)r * dim, dx + (long)r * dim, dim));
        free(fx), free(fx0);
    }
    snprintf(what, sizeof what, "l2norm backward%s (accumulated, norms saved/NULL)",
             small_rows ? " with clamped rows" : "");
    report(what, worst);
    free(x), free(g), free(x_d), free(g_d), free(out_d), free(norms_d), free(dx), free(o), free(norms);
}

/* A norm exactly equal to eps takes the full branch (clamp_min passes ties),
 * whose gradient along x itself is 0, not 1/eps. */
static void test_l2norm_tie(void) {
    float eps = 1e-3f, x[1] = {1e-3f}, y[1], nrm[1], g[1] = {1.0f}, d[1] = {0.0f};
    l2norm_forward(y, nrm, x, 1, 1, eps);
    l2norm_backward(d, g, x, nrm, 1, 1, eps);
    double dd[1] = {0}, xd[1] = {x[0]}, gd[1] = {1.0}, nd[1] = {x[0]};
    ref_l2norm_backward(dd, gd, xd, nd, 1, 1, eps);
    CHECK(y[0] == 1.0f && fabsf(d[0]) < 1e-3f && fabs(dd[0]) < 1e-9,
          "l2norm at norm == eps: y %g, grad %g, ref grad %g", y[0], d[0], dd[0]);
    printf("  %-58s ok\n", "l2norm at norm == eps takes the unclamped branch");
}

/* ------------------------------------------------------------- Embedding */

typedef struct {
    FdCase base;
    double *table;
    const int32_t *ids;
    int n, dim;
} EmbCase;

static void emb_fwd(FdCase *c) {
    EmbCase *e = (EmbCase *)c;
    ref_embedding_forward(c->out, e->ids, e->table, e->n, e->dim);
}

static void test_embedding(int vocab, int n, int dim, int do_fd) {
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)n);
    for (int i = 0; i < n; i++) ids[i] = (int32_t)((urand() + 1.0) * 0.5 * vocab) % vocab;
    ids[n - 1] = ids[0]; /* a repeat for certain */
    long nt = (long)vocab * dim, no = (long)n * dim;
    double *t_d, *g_d;
    float *t = frand(nt, -1, 1, &t_d), *g = frand(no, -1, 1, &g_d);
    double *out_d = dnew(no), *dt = dnew(nt);
    EmbCase c = {{emb_fwd, out_d, g_d, no}, t_d, ids, n, dim};
    emb_fwd(&c.base);
    ref_embedding_backward(dt, g_d, ids, n, dim);
    if (do_fd) fd_check("embedding (repeated ids)", &c.base, t_d, nt, dt);
    float *o = fnew(no);
    embedding_forward(o, ids, t, n, dim);
    report("embedding forward", cmp("embedding forward", o, out_d, no));
    float *ft = prefill(nt, dt), *ft0 = fcopy(ft, nt);
    embedding_backward(ft, g, ids, n, dim);
    report("embedding backward, repeated ids (accumulated)",
           cmp_acc("embedding backward", ft, ft0, dt, nt));
    free(ids), free(t), free(g), free(t_d), free(g_d), free(out_d), free(dt), free(o), free(ft);
    free(ft0);
}

/* ------------------------------------------------------------------ main */

/* vexpf (the softmax / QuickGELU exp): relative error against exp in double
 * over the whole range it is used in, and its edges. */
/* float_to_bf16 against ref_bf16 (kernels_ref.c) bit for bit, on values
 * that exercise the rounding: ties both ways, carries into the exponent,
 * overflow to infinity, NaNs of both signs and payloads, denormals (which
 * vcvtneps2bf16 would flush), zeros; a length with a ragged tail and one
 * above the threaded cut-off. */
static void test_float_to_bf16(void) {
    static const uint32_t special[] = {0x3f808000u, 0x3f818000u, 0x3f80ffffu, 0x3fffffffu,
                                       0x7f7fffffu, 0xff7fffffu, 0x7f800000u, 0xff800000u,
                                       0x7fc00000u, 0xffc00001u, 0x7f800001u, 0x7fbfffffu,
                                       0x00000001u, 0x807fffffu, 0x00408000u, 0x00000000u,
                                       0x80000000u, 0x00018000u};
    const int ns = (int)(sizeof special / sizeof special[0]);
    const long lens[] = {1, 17, 4099, 70001};
    ramc_rng r;
    rng_seed(&r, 11);
    for (int t = 0; t < 4; t++) {
        const long n = lens[t];
        float *x = malloc((size_t)n * sizeof(float));
        uint16_t *got = malloc((size_t)n * sizeof(uint16_t));
        for (long i = 0; i < n; i++) {
            uint32_t u = i < ns ? special[i] : (uint32_t)rng_next(&r);
            if (i >= ns && i % 3 == 0) u = (u & 0xffff0000u) | 0x8000u; /* exact ties */
            memcpy(&x[i], &u, 4);
        }
        float_to_bf16(got, x, n);
        long bad = 0, first = -1;
        for (long i = 0; i < n; i++) {
            const float want = ref_bf16(x[i]);
            uint32_t w;
            memcpy(&w, &want, 4);
            const uint16_t want16 = (uint16_t)(w >> 16);
            /* any NaN is a NaN; the rest bit for bit */
            const int ok = isnan(x[i]) ? ((got[i] & 0x7f80u) == 0x7f80u && (got[i] & 0x7fu)) : got[i] == want16;
            if (!ok && bad++ == 0) first = i;
        }
        CHECK(bad == 0, "float_to_bf16 (%ld values): %ld differ from ref_bf16, first at %ld", n, bad,
              first);
        free(x), free(got);
    }
}

static void test_vexpf(void) {
    double worst = 0.0;
    for (long i = 0; i <= 2000000; i++) {
        float x = (float)(-87.29 + 175.58 * (double)i / 2000000.0);
        double e = exp((double)x), r = fabs(vexpf(x) - e) / e;
        if (r > worst) worst = r;
    }
    CHECK(worst < 2e-7, "vexpf max relative error %.3g", worst);
    CHECK(vexpf(0.0f) == 1.0f && vexpf(-100.0f) == 0.0f && isnan(vexpf(NAN)) &&
              isfinite(vexpf(1000.0f)),
          "vexpf edges");
}

/* Element-wise and row-wise kernels, and attention, give bit-identical
 * results for 1 and several threads at sizes above the parallel threshold. */
static void test_thread_invariance(void) {
    const int rows = 96, dim = 768, B = 2, T = 50, C = 128, H = 4;
    double *tmp;
    float *x = frand((long)rows * dim, -3, 3, &tmp);
    free(tmp);
    float *w = frand(dim, 0.5, 1.5, &tmp);
    free(tmp);
    float *qkv = frand((long)B * T * 3 * C, -2, 2, &tmp);
    free(tmp);
    float *dout = frand((long)B * T * C, -1, 1, &tmp);
    free(tmp);
    float *out[2], *pr[2], *att[2], *dq[2];
    int saved = kernels_get_num_threads();
    for (int k = 0; k < 2; k++) {
        kernels_set_num_threads(k == 0 ? 1 : 3);
        long n = (long)rows * dim;
        out[k] = fnew(4 * n);
        layernorm_forward(out[k], NULL, NULL, x, w, w, rows, dim, 1e-5f);
        softmax_forward(out[k] + n, x, rows, dim, 0.7f);
        quickgelu_forward(out[k] + 2 * n, x, n);
        float *mean = fnew(rows), *rstd = fnew(rows);
        layernorm_forward(out[k] + 3 * n, mean, rstd, x, w, NULL, rows, dim, 1e-5f);
        float *dw = fnew(dim), *dx = fnew(n);
        layernorm_backward(dx, dw, NULL, x, x, w, mean, rstd, rows, dim);
        memcpy(out[k] + 3 * n, dx, sizeof(float) * (size_t)n);
        memcpy(out[k], dw, sizeof(float) * (size_t)dim); /* overwrite: both compared */
        free(mean), free(rstd), free(dw), free(dx);
        att[k] = fnew((long)B * T * C);
        pr[k] = fnew((long)B * H * T * T);
        attention_forward(att[k], pr[k], qkv, qkv + C, qkv + 2 * C, (long)T * 3 * C, 3 * C, B, T,
                          T, C, H, 1, NULL);
        dq[k] = fnew((long)B * T * 3 * C);
        attention_backward(dq[k], dq[k] + C, dq[k] + 2 * C, dout, NULL, qkv, qkv + C, qkv + 2 * C,
                           (long)T * 3 * C, 3 * C, B, T, T, C, H, 1);
    }
    kernels_set_num_threads(saved);
    long n = (long)rows * dim;
    CHECK(!memcmp(out[0], out[1], sizeof(float) * 4 * (size_t)n),
          "row-wise kernels differ between 1 and 3 threads");
    CHECK(!memcmp(att[0], att[1], sizeof(float) * (size_t)B * T * C) &&
              !memcmp(pr[0], pr[1], sizeof(float) * (size_t)B * H * T * T),
          "attention forward differs between 1 and 3 threads");
    CHECK(!memcmp(dq[0], dq[1], sizeof(float) * (size_t)B * T * 3 * C),
          "attention backward differs between 1 and 3 threads");
    for (int k = 0; k < 2; k++) free(out[k]), free(pr[k]), free(att[k]), free(dq[k]);
    free(x), free(w), free(qkv), free(dout);
}

/* Every kernel compiled per instruction-set level (kernels_levels.h) gives
 * bit-identical results at every level this CPU supports: the levels only
 * change the vector width, never the arithmetic (no contraction, reductions
 * in fixed lanes). Shapes with tails (dim not a multiple of 16). */
static void test_isa_levels_agree(void) {
    const int rows = 40, dim = 301, B = 2, T = 21, C = 48, H = 3, out_dim = 37, vocab = 50;
    const long n = (long)rows * dim;
    double *tmp;
    float *x = frand(n, -4, 4, &tmp);
    free(tmp);
    float *g = frand(n, -1, 1, &tmp);
    free(tmp);
    float *w = frand(dim, 0.5, 1.5, &tmp);
    free(tmp);
    float *wm = frand((long)out_dim * dim, -0.1, 0.1, &tmp);
    free(tmp);
    float *bias = frand(out_dim, -1, 1, &tmp);
    free(tmp);
    float *qkv = frand((long)B * T * 3 * C, -2, 2, &tmp);
    free(tmp);
    int32_t ids[7] = {3, 0, 49, 3, 17, 8, 3};
    /* every output of every kernel, one after the other */
    const long per_level = 14 * n + 2L * rows + (long)rows * out_dim * 2 + out_dim +
                           (long)B * T * C + 7L * dim + (long)vocab * dim;
    float *res[KERNELS_ISA_COUNT] = {NULL};
    const kernels_isa saved = kernels_isa_get(), best = kernels_isa_best();
    CHECK(kernels_isa_set((kernels_isa)KERNELS_ISA_COUNT) == -1 && kernels_isa_set((kernels_isa)-1) == -1,
          "kernels_isa_set accepted a level that does not exist");
    if (best < KERNELS_ISA_AVX512)
        CHECK(kernels_isa_set(KERNELS_ISA_AVX512) == -1 && kernels_isa_get() == saved,
              "kernels_isa_set accepted a level this CPU lacks");
    for (int lv = 0; lv <= (int)best; lv++) {
        CHECK(kernels_isa_set((kernels_isa)lv) == 0 && kernels_isa_get() == (kernels_isa)lv,
              "cannot set level %s", kernels_isa_name((kernels_isa)lv));
        float *o = res[lv] = fnew(per_level), *p = o;
        float *mean = p + 13 * n, *rstd = mean + rows;
        layernorm_forward(p, mean, rstd, x, w, w, rows, dim, 1e-5f), p += n;
        memcpy(p, g, sizeof(float) * (size_t)n);
        layernorm_backward(p, p + n, p + n + dim, g, x, w, mean, rstd, rows, dim), p += n;
        p += n; /* dweight, dbias above (2*dim <= n) */
        softmax_forward(p, x, rows, dim, 0.7f), p += n;
        memcpy(p, g, sizeof(float) * (size_t)n);
        softmax_backward(p, g, p - n, rows, dim, 0.7f), p += n;
        for (int r = 0; r < rows; r++) softmax_forward_row(p + (long)r * dim, x + (long)r * dim, dim - r, -1.3f);
        p += n;
        quickgelu_forward(p, x, n), p += n;
        memcpy(p, g, sizeof(float) * (size_t)n);
        quickgelu_backward(p, g, x, n), p += n;
        gelu_forward(p, x, n), p += n;
        sigmoid_forward(p, x, n), p += n;
        memcpy(p, g, sizeof(float) * (size_t)n);
        sigmoid_backward(p, g, p - n, n), p += n;
        l2norm_forward(p, NULL, x, rows, dim, 1e-12f), p += n;
        memcpy(p, g, sizeof(float) * (size_t)n);
        l2norm_backward(p, g, x, NULL, rows, dim, 1e-12f), p += n;
        p += n + 2L * rows; /* the LayerNorm statistics */
        matmul_forward_ex(p, x, wm, bias, rows, dim, out_dim, MATMUL_QUICKGELU), p += (long)rows * out_dim;
        matmul_forward(p, x, wm, bias, rows, dim, out_dim), p += (long)rows * out_dim;
        matmul_backward(NULL, NULL, p, p - (long)rows * out_dim, x, wm, rows, dim, out_dim), p += out_dim;
        attention_forward(p, NULL, qkv, qkv + C, qkv + 2 * C, (long)T * 3 * C, 3 * C, B, T, T, C, H, 0,
                          NULL);
        p += (long)B * T * C;
        embedding_forward(p, ids, x, 7, dim), p += 7L * dim;
        embedding_backward(p, x, ids, 7, dim), p += (long)vocab * dim;
        CHECK(p - o == per_level, "test layout: %ld floats written, %ld expected", (long)(p - o), per_level);
    }
    kernels_isa_set(saved);
    for (int lv = 1; lv <= (int)best; lv++) {
        long first = -1;
        for (long i = 0; i < per_level && first < 0; i++)
            if (memcmp(&res[lv][i], &res[0][i], sizeof(float))) first = i;
        CHECK(first < 0, "level %s differs from generic at float %ld of %ld (%.9g vs %.9g)",
              kernels_isa_name((kernels_isa)lv), first, per_level, first < 0 ? 0.0 : res[lv][first],
              first < 0 ? 0.0 : res[0][first]);
        printf("  level %-8s bit-identical to generic over %ld outputs: %s\n",
               kernels_isa_name((kernels_isa)lv), per_level, first < 0 ? "yes" : "NO");
    }
    for (int lv = 0; lv < KERNELS_ISA_COUNT; lv++) free(res[lv]);
    free(x), free(g), free(w), free(wm), free(bias), free(qkv);
}

/* Every float kernel against the double reference, at the current level;
 * with_fd: the references against finite differences as well. */
/* The fused backward kernels against the passes they replace (which the
 * tests above check against the double references): bitwise equal, on
 * shapes with ragged vector tails, with zeros in dout (a -0 product must come
 * out +0 as from a zeroed buffer), and in place where the callers alias. */
static void test_fused_backward(int rows, int dim, int B, int C, int HW) {
    char what[128];
    /* LayerNorm backward + residual */
    {
        const long n = (long)rows * dim;
        float *x = frand(n, -2, 3, NULL);
        float *w = frand(dim, 0.5, 1.5, NULL);
        float *g = frand(n, -1, 1, NULL);
        float *res = frand(n, -1, 1, NULL);
        for (long i = 0; i < n; i += 7) g[i] = 0.0f;
        float *mean = fnew(rows), *rstd = fnew(rows), *h = fnew(n);
        layernorm_forward(h, mean, rstd, x, w, NULL, rows, dim, 1e-5f);
        float *want = fnew(n), *got = fnew(n), *inplace = fnew(n);
        memcpy(want, res, sizeof(float) * (size_t)n);
        layernorm_backward(want, NULL, NULL, g, x, w, mean, rstd, rows, dim);
        layernorm_backward_residual(got, res, g, x, w, mean, rstd, rows, dim);
        memcpy(inplace, res, sizeof(float) * (size_t)n);
        layernorm_backward_residual(inplace, inplace, g, x, w, mean, rstd, rows, dim);
        snprintf(what, sizeof what, "layernorm_backward_residual %dx%d", rows, dim);
        CHECK(!memcmp(got, want, sizeof(float) * (size_t)n), "%s: differs from copy + backward", what);
        CHECK(!memcmp(inplace, want, sizeof(float) * (size_t)n), "%s: in place differs", what);
        free(x), free(w), free(g), free(res), free(mean), free(rstd), free(h);
        free(want), free(got), free(inplace);
    }
    /* QuickGELU backward in place */
    {
        const long n = (long)rows * dim;
        float *x = frand(n, -8, 8, NULL);
        float *d = frand(n, -1, 1, NULL);
        for (long i = 0; i < n; i += 5) d[i] = i % 2 ? -0.0f : 0.0f;
        x[0] = -100.0f; /* sigmoid underflows: a -0 product */
        float *want = fnew(n);
        quickgelu_backward(want, d, x, n);
        quickgelu_backward_inplace(d, x, n);
        snprintf(what, sizeof what, "quickgelu_backward_inplace n=%ld", n);
        CHECK(!memcmp(d, want, sizeof(float) * (size_t)n), "%s: differs from quickgelu_backward", what);
        free(x), free(d), free(want);
    }
    /* GELU + BatchNorm backward, as TSS runs them (dinp written over dout) */
    {
        const long n = (long)B * C * HW;
        float *x = frand(n, -1, 3, NULL);
        float *w = frand(C, 0.5, 1.5, NULL);
        float *bb = frand(C, -1, 1, NULL);
        float *dout = frand(n, -1, 1, NULL);
        for (long i = 0; i < n; i += 9) dout[i] = 0.0f;
        float *rm = fnew(C), *rv = fnew(C), *mean = fnew(C), *rstd = fnew(C), *bn = fnew(n);
        for (int c = 0; c < C; c++) rv[c] = 1.0f;
        batchnorm_forward_train(bn, mean, rstd, rm, rv, x, w, bb, B, C, HW, 1e-5f, 0.1f);
        float *dbn = fnew(n), *want = fnew(n), *got = fnew(n), *scratch = fnew(n);
        float *dw_want = fnew(C), *db_want = fnew(C), *dw_got = fnew(C), *db_got = fnew(C);
        for (int c = 0; c < C; c++) dw_want[c] = dw_got[c] = 0.25f, db_want[c] = db_got[c] = -0.5f;
        gelu_backward(dbn, dout, bn, n);
        batchnorm_backward(want, dw_want, db_want, dbn, x, w, mean, rstd, B, C, HW);
        memcpy(got, dout, sizeof(float) * (size_t)n);
        gelu_batchnorm_backward(got, dw_got, db_got, scratch, got, bn, x, w, mean, rstd, B, C, HW);
        snprintf(what, sizeof what, "gelu_batchnorm_backward %dx%dx%d", B, C, HW);
        CHECK(!memcmp(got, want, sizeof(float) * (size_t)n), "%s: dinp differs", what);
        CHECK(!memcmp(scratch, dbn, sizeof(float) * (size_t)n), "%s: dgelu differs", what);
        CHECK(!memcmp(dw_got, dw_want, sizeof(float) * (size_t)C) &&
                  !memcmp(db_got, db_want, sizeof(float) * (size_t)C),
              "%s: weight or bias gradients differ", what);
        free(x), free(w), free(bb), free(dout), free(rm), free(rv), free(mean), free(rstd), free(bn);
        free(dbn), free(want), free(got), free(scratch), free(dw_want), free(db_want), free(dw_got);
        free(db_got);
    }
}

static void run_suite(int with_fd) {
    const int fd = with_fd;
    test_gemm();

    test_matmul(3, 5, 4, 1, fd);
    test_matmul(3, 5, 4, 0, fd);
    test_matmul(37, 64, 48, 1, 0);
    test_matmul(37, 64, 48, 0, 0);

    test_layernorm(3, 7, 0.0, fd);
    test_layernorm(9, 768, 3.0, 0);
    test_fused_backward(5, 37, 2, 3, 7);
    test_fused_backward(64, 768, 4, 64, 196); /* a ViT-B/16 block's rows, TSS's BN */

    /*                name            mode             B  Tq  Tk   C  H causal extra fd */
    test_attention("full", ATT_SEPARATE, 2, 4, 4, 8, 2, 0, 0, fd);
    test_attention("cross Tq!=Tk", ATT_SEPARATE, 2, 3, 5, 8, 2, 0, 0, fd);
    test_attention("causal fused qkv", ATT_FUSED, 2, 5, 5, 8, 2, 1, 0, fd);
    test_attention("value-value SAA", ATT_VALUE_VALUE, 2, 4, 4, 8, 2, 0, 8, fd);
    test_attention("value-value causal", ATT_VALUE_VALUE, 1, 4, 4, 6, 3, 1, 2, fd);
    test_attention("full 17x17 C64 H4", ATT_SEPARATE, 2, 17, 17, 64, 4, 0, 0, 0);
    test_attention("causal fused 13 C48 H3", ATT_FUSED, 2, 13, 13, 48, 3, 1, 0, 0);
    test_attention("value-value SAA 10+8 C32 H2", ATT_VALUE_VALUE, 2, 10, 10, 32, 2, 0, 8, 0);
    test_attention("cross 5x9 C32 H4", ATT_SEPARATE, 3, 5, 9, 32, 4, 0, 0, 0);

    for (int kind = 0; kind < 3; kind++) {
        test_activation(kind, 23, 3.0, fd);
        test_activation(kind, 2000, 8.0, 0);
    }
    test_activation_extremes();

    test_softmax(3, 6, 2.0, 0.7f, fd);
    test_softmax(7, 50, 30.0, 0.3f, 0);
    test_softmax(4, 33, 1.0, 1.0f, 0);

    /*          name                B Ci  H  W Co  k  s  p bias fd */
    test_conv("patch k=s=4", 2, 2, 8, 8, 3, 4, 4, 0, 1, fd);
    test_conv("1x1", 2, 3, 4, 5, 4, 1, 1, 0, 1, fd);
    test_conv("3x3 pad 1", 2, 2, 5, 5, 3, 3, 1, 1, 1, fd);
    test_conv("5x5 pad 2", 1, 2, 6, 5, 2, 5, 1, 2, 0, fd);
    test_conv("3x3 stride 2 pad 1", 2, 2, 7, 6, 3, 3, 2, 1, 1, fd);
    test_conv("patch 32x32 k=s=8", 2, 3, 32, 32, 16, 8, 8, 0, 1, 0);
    test_conv("1x1 9x9", 2, 8, 9, 9, 6, 1, 1, 0, 1, 0);
    test_conv("3x3 pad 1 10x12", 2, 5, 10, 12, 7, 3, 1, 1, 1, 0);
    test_conv("5x5 pad 2 11x11", 1, 3, 11, 11, 4, 5, 1, 2, 0, 0);
    test_conv("3x3 stride 2 pad 1 9x9", 2, 4, 9, 9, 5, 3, 2, 1, 1, 0);
    test_conv("1x1 stride 2", 1, 3, 6, 6, 2, 1, 2, 0, 1, 0);
    test_conv("1x1 pad 1", 1, 2, 3, 4, 3, 1, 1, 1, 1, fd);

    test_batchnorm(2, 3, 5, fd);
    test_batchnorm(3, 5, 20, 0);

    test_l2norm(3, 5, 1e-12f, 0, fd);
    test_l2norm(4, 6, 0.1f, 1, fd);
    test_l2norm(6, 64, 1e-12f, 0, 0);
    test_l2norm(5, 64, 1e-3f, 1, 0);
    test_l2norm_tie();

    test_embedding(6, 7, 3, fd);
    test_embedding(50, 30, 16, 0);

    (void)fd;
}

int main(void) {
    /* the whole suite at every level this CPU has, best first (the default) */
    const kernels_isa best = kernels_isa_best();
    for (int lv = (int)best; lv >= 0; lv--) {
        kernels_isa_set((kernels_isa)lv);
        printf("level %s: %s", kernels_isa_name((kernels_isa)lv),
               lv == (int)best ? "finite differences of the double references, then float vs reference:\n"
                               : "float vs reference:\n");
        fprintf(stderr, "(kernels at level %s)\n", kernels_isa_name((kernels_isa)lv));
        run_suite(lv == (int)best);
    }
    kernels_isa_set(best);
    printf("levels:\n");
    test_isa_levels_agree();

    test_vexpf();
    test_thread_invariance();
    for (int lv = (int)best; lv >= 0; lv--) { /* the bf16 rounding at every level */
        kernels_isa_set((kernels_isa)lv);
        test_float_to_bf16();
    }
    kernels_isa_set(best);

    return test_summary("test_kernels");
}
