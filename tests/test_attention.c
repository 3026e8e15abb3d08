/* The fused attention kernels (attention_fused.c) against the double
 * reference (kernels_ref.c, itself checked against finite differences in
 * test_kernels.c) and against the float reference path (attention_forward /
 * attention_backward, which store the probabilities).
 *
 * Shapes: odd sequence lengths that leave partial query tiles (32) and key
 * tiles (64) — 1, 17, 65, 197 — head sizes 32 and 64 (the CLIPs'), 24 (a
 * masked vector tail) and 160 (above the tiled kernel's limit: the row-wise
 * path); causal and not; the three layouts the model uses: separate q/k/v, the
 * fused [.., 3C] projection, and SAA's q = k = v with rows before it that
 * must be neither read nor written. Every level the CPU has, 1 and 3 threads:
 * all give the same bits (the kernels use fused multiply-adds at every level).
 *
 * Tolerance: errors are measured as max|got - ref| / max|ref| (as
 * test_kernels.c). A float dot product of n terms carries a relative error
 * below n * 2^-24 of the sum of |terms| (Higham's bound), and the kernel's
 * longest chains are the score (dh terms), the running sum and the
 * probability-weighted sum of values (Tk terms each) and the backward's
 * products over the queries (Tq terms): tol = 2 * (dh + Tk + Tq) * 2^-24,
 * e.g. 6.7e-5 for T = 197, dh = 64. The observed errors are far below (they
 * are printed); the bound only keeps the test from depending on luck.
 */
#include "kernels/kernels.h"
#include "kernels/kernels_ref.h"
#include "test.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng = 0x9E3779B97F4A7C15ull;

static double urand(void) { /* [-1, 1) */
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return (double)((rng * 0x2545F4914F6CDD1Dull) >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}

static float *fnew(long n) { return calloc((size_t)(n > 0 ? n : 1), sizeof(float)); }
static double *dnew(long n) { return calloc((size_t)(n > 0 ? n : 1), sizeof(double)); }

static double maxabs(const double *a, long n) {
    double m = 0.0;
    for (long i = 0; i < n; i++) m = fabs(a[i]) > m ? fabs(a[i]) : m;
    return m;
}

/* max |got - (base + want)| / max|want|; NaN sticks. */
static double rel_to(const float *got, const float *base, const double *want, long n) {
    double scale = maxabs(want, n), err = 0.0;
    for (long i = 0; i < n; i++) {
        double e = fabs((double)got[i] - ((base ? (double)base[i] : 0.0) + want[i]));
        if (!(e <= err)) err = e;
    }
    return err / (scale > 0 ? scale : 1.0);
}

enum { SEPARATE, FUSED_QKV, VALUE_VALUE };

typedef struct {
    const char *name;
    int layout, B, Tq, Tk, C, H, causal, extra; /* extra: rows before the used ones (SAA prompts) */
    double range;                               /* inputs uniform in [-range, range] */
} Shape;

typedef struct {
    int nbuf;
    long L, bs, rs, off[3]; /* buffer length, strides, q/k/v offsets */
    int bi[3];              /* q/k/v buffer index */
} Layout;

static Layout layout_of(const Shape *s) {
    Layout l;
    memset(&l, 0, sizeof l);
    l.nbuf = s->layout == SEPARATE ? 3 : 1;
    l.rs = s->layout == SEPARATE ? s->C : 3L * s->C;
    l.bs = (long)((s->Tq > s->Tk ? s->Tq : s->Tk) + s->extra) * l.rs;
    l.L = s->B * l.bs;
    long base = s->extra * l.rs;
    for (int i = 0; i < 3; i++) {
        l.bi[i] = s->layout == SEPARATE ? i : 0;
        l.off[i] = s->layout == SEPARATE ? base
                   : s->layout == FUSED_QKV ? base + (long)i * s->C
                                            : base + 2L * s->C;
    }
    return l;
}

/* lse of the scaled scores in double, straight from the definition. */
static void ref_lse(double *lse, const double *q, const double *k, const Layout *l,
                    const Shape *s) {
    const int dh = s->C / s->H;
    const double scale = 1.0 / sqrt((double)dh);
    for (int b = 0; b < s->B; b++)
        for (int h = 0; h < s->H; h++)
            for (int t = 0; t < s->Tq; t++) {
                int n = s->causal && t + 1 < s->Tk ? t + 1 : s->Tk;
                double mx = -INFINITY, sum = 0.0;
                const double *qt = q + b * l->bs + t * l->rs + h * dh;
                double sc[4096];
                for (int j = 0; j < n; j++) {
                    const double *kj = k + b * l->bs + j * l->rs + h * dh;
                    double d = 0.0;
                    for (int c = 0; c < dh; c++) d += qt[c] * kj[c];
                    sc[j] = scale * d;
                    mx = sc[j] > mx ? sc[j] : mx;
                }
                for (int j = 0; j < n; j++) sum += exp(sc[j] - mx);
                lse[((long)b * s->H + h) * s->Tq + t] = mx + log(sum);
            }
}

static double tolerance(const Shape *s) {
    return 2.0 * (s->C / s->H + s->Tk + s->Tq) * ldexp(1.0, -24);
}

static void test_shape(const Shape *s) {
    const Layout l = layout_of(s);
    const int B = s->B, Tq = s->Tq, Tk = s->Tk, C = s->C, H = s->H, causal = s->causal;
    const long nout = (long)B * Tq * C, nlse = (long)B * H * Tq;
    const double tol = tolerance(s);

    float *fb[3] = {0};
    double *db[3] = {0}, *rg[3] = {0};
    for (int i = 0; i < l.nbuf; i++) {
        fb[i] = fnew(l.L), db[i] = dnew(l.L), rg[i] = dnew(l.L);
        for (long j = 0; j < l.L; j++) db[i][j] = fb[i][j] = (float)(s->range * urand());
    }
    float *g = fnew(nout);
    double *gd = dnew(nout);
    for (long j = 0; j < nout; j++) gd[j] = g[j] = (float)urand();
    const float *q = fb[l.bi[0]] + l.off[0], *k = fb[l.bi[1]] + l.off[1], *v = fb[l.bi[2]] + l.off[2];
    const double *qd = db[l.bi[0]] + l.off[0], *kd = db[l.bi[1]] + l.off[1],
                 *vd = db[l.bi[2]] + l.off[2];

    double *out_d = dnew(nout), *lse_d = dnew(nlse);
    ref_attention_forward(out_d, NULL, qd, kd, vd, l.bs, l.rs, B, Tq, Tk, C, H, causal);
    ref_lse(lse_d, qd, kd, &l, s);
    ref_attention_backward(rg[l.bi[0]] + l.off[0], rg[l.bi[1]] + l.off[1], rg[l.bi[2]] + l.off[2],
                           gd, NULL, qd, kd, vd, l.bs, l.rs, B, Tq, Tk, C, H, causal);

    /* The float reference path (probabilities stored), for the record. */
    float *out_ref = fnew(nout);
    attention_forward(out_ref, NULL, q, k, v, l.bs, l.rs, B, Tq, Tk, C, H, causal, NULL);
    const double ref_path_err = rel_to(out_ref, NULL, out_d, nout);

    const kernels_isa best = kernels_isa_best(), saved = kernels_isa_get();
    const int saved_threads = kernels_get_num_threads();
    float *pre[3] = {0};
    for (int i = 0; i < l.nbuf; i++) {
        /* pre-filled with noise: the backward must add, and only where it should */
        pre[i] = fnew(l.L);
        double mag = maxabs(rg[i], l.L);
        for (long j = 0; j < l.L; j++) pre[i][j] = (float)(urand() * (mag > 0 ? mag : 1.0));
    }
    /* the best level's results, which every other level must match bit for bit */
    float *best_out = NULL, *best_lse = NULL, *best_grad[3] = {0};
    for (int lv = (int)best; lv >= 0; lv--) {
        kernels_isa_set((kernels_isa)lv);
        float *out[2], *lse[2], *grad[2][3] = {{0}};
        for (int run = 0; run < 2; run++) {
            kernels_set_num_threads(run == 0 ? 1 : 3);
            out[run] = fnew(nout), lse[run] = fnew(nlse);
            for (long j = 0; j < nout; j++) out[run][j] = NAN; /* every output written */
            attention_fused_forward(out[run], lse[run], q, k, v, l.bs, l.rs, B, Tq, Tk, C, H,
                                    causal);
            for (int i = 0; i < l.nbuf; i++) {
                grad[run][i] = fnew(l.L);
                memcpy(grad[run][i], pre[i], sizeof(float) * (size_t)l.L);
            }
            float *dq = grad[run][l.bi[0]] + l.off[0], *dk = grad[run][l.bi[1]] + l.off[1],
                  *dv = grad[run][l.bi[2]] + l.off[2];
            attention_fused_backward(dq, dk, dv, g, out[run], lse[run], q, k, v, l.bs, l.rs, B,
                                     Tq, Tk, C, H, causal);
        }
        kernels_set_num_threads(saved_threads);

        double e_out = rel_to(out[0], NULL, out_d, nout), e_lse = rel_to(lse[0], NULL, lse_d, nlse);
        double e_grad = 0.0;
        for (int i = 0; i < l.nbuf; i++) {
            double e = rel_to(grad[0][i], pre[i], rg[i], l.L);
            e_grad = e > e_grad || isnan(e) ? e : e_grad;
        }
        const char *lvn = kernels_isa_name((kernels_isa)lv);
        CHECK(e_out <= tol, "%s [%s]: forward rel err %.3g > %.3g", s->name, lvn, e_out, tol);
        CHECK(e_lse <= tol, "%s [%s]: lse rel err %.3g > %.3g", s->name, lvn, e_lse, tol);
        CHECK(e_grad <= tol, "%s [%s]: backward rel err %.3g > %.3g", s->name, lvn, e_grad, tol);
        int same = !memcmp(out[0], out[1], sizeof(float) * (size_t)nout) &&
                   !memcmp(lse[0], lse[1], sizeof(float) * (size_t)nlse);
        for (int i = 0; i < l.nbuf; i++)
            same &= !memcmp(grad[0][i], grad[1][i], sizeof(float) * (size_t)l.L);
        CHECK(same, "%s [%s]: 1 and 3 threads differ", s->name, lvn);
        if (!best_out) {
            best_out = out[0], best_lse = lse[0], out[0] = lse[0] = NULL;
            for (int i = 0; i < l.nbuf; i++) best_grad[i] = grad[0][i], grad[0][i] = NULL;
        } else {
            int ident = !memcmp(out[0], best_out, sizeof(float) * (size_t)nout) &&
                        !memcmp(lse[0], best_lse, sizeof(float) * (size_t)nlse);
            for (int i = 0; i < l.nbuf; i++)
                ident &= !memcmp(grad[0][i], best_grad[i], sizeof(float) * (size_t)l.L);
            int same_out = !memcmp(out[0], best_out, sizeof(float) * (size_t)nout);
            int same_lse = !memcmp(lse[0], best_lse, sizeof(float) * (size_t)nlse);
            CHECK(ident, "%s: level %s differs from level %s (output %s, lse %s)", s->name, lvn,
                  kernels_isa_name(best), same_out ? "same" : "differs",
                  same_lse ? "same" : "differs");
        }
        printf("  %-34s %-7s fwd %.2e lse %.2e bwd %.2e (tol %.1e; stored-probs path fwd %.2e)\n",
               s->name, lvn, e_out, e_lse, e_grad, tol, ref_path_err);
        for (int run = 0; run < 2; run++) {
            free(out[run]), free(lse[run]);
            for (int i = 0; i < l.nbuf; i++) free(grad[run][i]);
        }
    }
    for (int i = 0; i < l.nbuf; i++) free(pre[i]);
    kernels_isa_set(saved);
    free(best_out), free(best_lse);
    for (int i = 0; i < l.nbuf; i++) free(best_grad[i]);

    for (int i = 0; i < l.nbuf; i++) free(fb[i]), free(db[i]), free(rg[i]);
    free(g), free(gd), free(out_d), free(lse_d), free(out_ref);
}

/* Central differences of the float fused forward itself, loss = sum(g out)
 * accumulated in double, against its own backward, on a few coordinates of
 * each of q, k, v (separate buffers). Step h = 1e-2: the truncation error is
 * O(h^2) times third derivatives of order 1 (~1e-4); the rounding error of
 * the loss, ~sqrt(n) * 2^-24 * |g out| per evaluation over n outputs, divided
 * by 2h, is ~1e-4 here. Tolerance 2e-3 of the largest gradient. */
static void test_finite_differences(int causal) {
    const int B = 1, T = 9, C = 32, H = 2;
    const long n = (long)B * T * C, nlse = (long)B * H * T;
    float *x[3], *grad[3], *g = fnew(n), *out = fnew(n), *lse = fnew(nlse);
    for (int i = 0; i < 3; i++) {
        x[i] = fnew(n), grad[i] = fnew(n);
        for (long j = 0; j < n; j++) x[i][j] = (float)(1.5 * urand());
    }
    for (long j = 0; j < n; j++) g[j] = (float)urand();
    attention_fused_forward(out, lse, x[0], x[1], x[2], (long)T * C, C, B, T, T, C, H, causal);
    attention_fused_backward(grad[0], grad[1], grad[2], g, out, lse, x[0], x[1], x[2], (long)T * C,
                             C, B, T, T, C, H, causal);
    double gmax = 0.0, worst = 0.0;
    for (int i = 0; i < 3; i++)
        for (long j = 0; j < n; j++) gmax = fabs(grad[i][j]) > gmax ? fabs(grad[i][j]) : gmax;
    const float h = 1e-2f;
    for (int i = 0; i < 3; i++)
        for (long j = 5; j < n; j += 23) {
            double loss[2];
            float keep = x[i][j];
            for (int side = 0; side < 2; side++) {
                x[i][j] = keep + (side ? h : -h);
                attention_fused_forward(out, NULL, x[0], x[1], x[2], (long)T * C, C, B, T, T, C, H,
                                        causal);
                loss[side] = 0.0;
                for (long o = 0; o < n; o++) loss[side] += (double)g[o] * out[o];
            }
            x[i][j] = keep;
            double fd = (loss[1] - loss[0]) / (2.0 * h), e = fabs(fd - grad[i][j]) / gmax;
            worst = e > worst ? e : worst;
        }
    CHECK(worst <= 2e-3, "fused attention (causal %d): finite differences differ by %.3g of max|grad|",
          causal, worst);
    printf("  finite differences, causal %d: worst %.2e of max|grad| %.3g\n", causal, worst, gmax);
    for (int i = 0; i < 3; i++) free(x[i]), free(grad[i]);
    free(g), free(out), free(lse);
}

/* The bf16 forward (attention_fused_forward_bf16) on one shape.
 * Against ref_attention_forward_bf16, which rounds the same operands the
 * same way, the kernel differs only by float32 arithmetic: the score's dh
 * products (exact in float32: two 8-bit mantissas) summed in float, and
 * where a float score and the reference's double one straddle a bf16
 * rounding boundary of e^(s - m), one weight moves by one bf16 ulp (2^-8
 * relative): an output moves by 2^-8 of that weight's share of the row
 * times |v|. tol_ref = 4 (dh + Tk) 2^-24 + 2^-8 / 8, the second term
 * allowing a flip on a weight of up to an eighth of its row (the observed
 * errors are printed; with ~1/Tk shares they are far below).
 * Against the exact double attention the kernel carries bf16's own error:
 * every operand rounded to 8 bits (relative error up to 2^-9 each), so a
 * score s moves by up to ~2^-8 |s|-ish terms and an output by a few 2^-9:
 * tol_f32 = 2^-5 of max|out| bounds it with room, and the test also demands
 * a deviation above 2^-14 (float32's own error here is ~1e-6): a kernel
 * that silently stayed float32 fails. Where the kernel cannot run (no
 * AVX512-BF16, a lower level), the result must be attention_fused_forward's,
 * bit for bit; every level the CPU has is tried, and at the AVX-512 level
 * each kernel the CPU can run (AMX, vdpbf16ps) and the capped-off fallback. */
static void test_bf16_shape(const Shape *s) {
    const Layout l = layout_of(s);
    const int B = s->B, Tq = s->Tq, Tk = s->Tk, C = s->C, H = s->H, causal = s->causal;
    const long nout = (long)B * Tq * C, nlse = (long)B * H * Tq;
    float *fb[3] = {0};
    double *db[3] = {0};
    for (int i = 0; i < l.nbuf; i++) {
        fb[i] = fnew(l.L), db[i] = dnew(l.L);
        for (long j = 0; j < l.L; j++) db[i][j] = fb[i][j] = (float)(s->range * urand());
    }
    const float *q = fb[l.bi[0]] + l.off[0], *k = fb[l.bi[1]] + l.off[1], *v = fb[l.bi[2]] + l.off[2];
    double *want_bf16 = dnew(nout), *want_exact = dnew(nout), *lse_d = dnew(nlse);
    ref_attention_forward_bf16(want_bf16, q, k, v, l.bs, l.rs, B, Tq, Tk, C, H, causal);
    ref_attention_forward(want_exact, NULL, db[l.bi[0]] + l.off[0], db[l.bi[1]] + l.off[1],
                          db[l.bi[2]] + l.off[2], l.bs, l.rs, B, Tq, Tk, C, H, causal);
    ref_lse(lse_d, db[l.bi[0]] + l.off[0], db[l.bi[1]] + l.off[1], &l, s);
    const double tol_ref = 4.0 * (C / H + Tk) * ldexp(1.0, -24) + ldexp(1.0, -8) / 8;
    const double tol_f32 = ldexp(1.0, -5), min_f32 = ldexp(1.0, -14);

    const kernels_isa best = kernels_isa_best(), saved = kernels_isa_get();
    const int saved_threads = kernels_get_num_threads();
    float *out[2] = {fnew(nout), fnew(nout)}, *lse = fnew(nlse), *f32 = fnew(nout);
    /* every level; at each, the kernels under each cap (AMX, vdpbf16ps, none) */
    for (int lv = (int)best; lv >= 0; lv--) {
        kernels_isa_set((kernels_isa)lv);
        int tried[3] = {0};
        for (int cap = KERNELS_BF16_AMX; cap >= KERNELS_BF16_NONE; cap--) {
            kernels_bf16_attention_cap((kernels_bf16_kind)cap);
            const kernels_bf16_kind kind = kernels_bf16_attention_kind();
            if (tried[kind]++) continue;
            const int native = kind != KERNELS_BF16_NONE && C / H <= 128;
            char what[64];
            snprintf(what, sizeof what, "%s/%s", kernels_isa_name((kernels_isa)lv),
                     native ? kernels_bf16_kind_name(kind) : "float32");
            for (int run = 0; run < 2; run++) {
                kernels_set_num_threads(run == 0 ? 1 : 3);
                for (long j = 0; j < nout; j++) out[run][j] = NAN; /* every output written */
                attention_fused_forward_bf16(out[run], run == 0 ? lse : NULL, q, k, v, l.bs, l.rs,
                                             B, Tq, Tk, C, H, causal);
            }
            kernels_set_num_threads(saved_threads);
            CHECK(!memcmp(out[0], out[1], sizeof(float) * (size_t)nout),
                  "bf16 %s [%s]: 1 and 3 threads differ", s->name, what);
            if (native) {
                const double e_ref = rel_to(out[0], NULL, want_bf16, nout);
                const double e_f32 = rel_to(out[0], NULL, want_exact, nout);
                const double e_lse = rel_to(lse, NULL, lse_d, nlse);
                CHECK(e_ref <= tol_ref, "bf16 %s [%s]: rel err against the bf16 reference %.3g > %.3g",
                      s->name, what, e_ref, tol_ref);
                CHECK(e_f32 <= tol_f32 && e_f32 >= min_f32,
                      "bf16 %s [%s]: rel err against float32 %.3g outside [%.3g, %.3g]", s->name,
                      what, e_f32, min_f32, tol_f32);
                CHECK(e_lse <= tol_f32, "bf16 %s [%s]: lse rel err %.3g > %.3g", s->name, what,
                      e_lse, tol_f32);
                printf("  bf16 %-29s %-19s vs bf16 ref %.2e (tol %.1e), vs exact %.2e, lse %.2e\n",
                       s->name, what, e_ref, tol_ref, e_f32, e_lse);
            } else {
                attention_fused_forward(f32, NULL, q, k, v, l.bs, l.rs, B, Tq, Tk, C, H, causal);
                CHECK(!memcmp(out[0], f32, sizeof(float) * (size_t)nout),
                      "bf16 %s [%s]: the fallback is not the float32 kernel's bits", s->name, what);
                printf("  bf16 %-29s %-19s float32 fallback, bit for bit\n", s->name, what);
            }
        }
    }
    kernels_bf16_attention_cap(KERNELS_BF16_AMX);
    kernels_isa_set(saved);
    free(out[0]), free(out[1]), free(lse), free(f32);
    for (int i = 0; i < l.nbuf; i++) free(fb[i]), free(db[i]);
    free(want_bf16), free(want_exact), free(lse_d);
}

int main(void) {
    static const Shape shapes[] = {
        /* name                          layout       B  Tq   Tk   C   H causal extra range */
        {"full 17 dh32", SEPARATE, 2, 17, 17, 64, 2, 0, 0, 1.5},
        {"causal 17 dh32", FUSED_QKV, 2, 17, 17, 64, 2, 1, 0, 1.5},
        {"full 65 dh64", FUSED_QKV, 2, 65, 65, 128, 2, 0, 0, 1.5},
        {"causal 65 dh64", FUSED_QKV, 1, 65, 65, 128, 2, 1, 0, 1.5},
        {"causal 77 dh64 (text)", FUSED_QKV, 1, 77, 77, 128, 2, 1, 0, 1.5},
        {"full 197 dh64 (ViT-B/16)", FUSED_QKV, 1, 197, 197, 128, 2, 0, 0, 1.5},
        {"causal 197 dh32", SEPARATE, 1, 197, 197, 64, 2, 1, 0, 1.5},
        {"value-value 65+12 dh32 (SAA)", VALUE_VALUE, 2, 65, 65, 96, 3, 0, 12, 1.5},
        {"value-value 196+4 dh64 (SAA)", VALUE_VALUE, 1, 196, 196, 128, 2, 0, 4, 1.5},
        {"class row 1x197 dh64", FUSED_QKV, 2, 1, 197, 128, 2, 0, 0, 1.5},
        {"cross 33x70 dh24", SEPARATE, 2, 33, 70, 72, 3, 0, 0, 1.5},
        {"causal cross 40x17 dh32", SEPARATE, 1, 40, 17, 64, 2, 1, 0, 1.5},
        {"peaky scores 65 dh64", FUSED_QKV, 1, 65, 65, 64, 1, 0, 0, 4.0},
        {"row-wise path 21 dh160", FUSED_QKV, 2, 21, 21, 320, 2, 1, 0, 1.5},
    };
    printf("fused attention against the double reference (every level, 1 and 3 threads, levels "
           "bit-identical):\n");
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) test_shape(&shapes[i]);
    printf("bf16 attention (AVX512-BF16) against its bf16 reference and the exact attention; "
           "the float32 fallback elsewhere (CPU bf16: %s):\n", kernels_cpu_has_bf16() ? "yes" : "no");
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) test_bf16_shape(&shapes[i]);
    {
        const Shape odd = {"odd head 33, odd keys 71", SEPARATE, 2, 45, 71, 66, 2, 0, 0, 1.5};
        test_bf16_shape(&odd);
    }
    test_finite_differences(0);
    test_finite_differences(1);
    return test_summary("test_attention");
}
