/* Packed linear layers (src/kernels/gemm_packed.c): the fused epilogues, the
 * backward input gradient, bf16 ranges, and that a weight changed after a
 * thaw is never served from a stale packed copy. Every product is judged by
 * the double-precision reference, on the packed path and on plain sgemm. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "kernels/kernels_ref.h"
#include "core/rng.h"
#include "test.h"

enum { IN = 96, OUT = 80 };

static void fill(float *x, size_t n, ramc_rng *r, float scale) {
    for (size_t i = 0; i < n; i++) x[i] = scale * (2.0f * rng_uniform(r) - 1.0f);
}

/* out [rows, OUT] = epilogue(inp @ w^T + b) in double, applied to `base` for
 * the accumulating form. */
static void reference(float *out, const float *inp, const float *w, const float *b,
                      const float *base, int rows, matmul_epilogue ep) {
    size_t ni = (size_t)rows * IN, no = (size_t)rows * OUT;
    double *di = malloc(ni * sizeof *di), *dw = malloc((size_t)IN * OUT * sizeof *dw);
    double *db = malloc(OUT * sizeof *db), *dout = malloc(no * sizeof *dout);
    for (size_t i = 0; i < ni; i++) di[i] = inp[i];
    for (size_t i = 0; i < (size_t)IN * OUT; i++) dw[i] = w[i];
    for (int i = 0; i < OUT; i++) db[i] = b[i];
    ref_matmul_forward(dout, di, dw, db, rows, IN, OUT);
    if (ep == MATMUL_QUICKGELU) ref_quickgelu_forward(dout, dout, (long)no);
    for (size_t i = 0; i < no; i++) out[i] = (float)(dout[i] + (ep == MATMUL_ACCUMULATE ? base[i] : 0));
    free(di), free(dw), free(db), free(dout);
}

/* Every epilogue at several row counts (each its own primitive, one packed
 * copy of the weight) against the reference. */
/* w is what the kernel gets; ref_w the same values for the reference (a
 * released matrix must not be read directly: its pages are inaccessible). */
static void check_forward_ref(const float *w, const float *ref_w, const float *b, ramc_rng *r,
                              double tol, const char *what) {
    static const int row_counts[] = {1, 7, 197, 64};
    for (int ri = 0; ri < 4; ri++) {
        int rows = row_counts[ri];
        float *inp = malloc((size_t)rows * IN * sizeof(float));
        float *out = malloc((size_t)rows * OUT * sizeof(float));
        float *base = malloc((size_t)rows * OUT * sizeof(float));
        float *want = malloc((size_t)rows * OUT * sizeof(float));
        fill(inp, (size_t)rows * IN, r, 1.0f);
        fill(base, (size_t)rows * OUT, r, 2.0f);
        for (int ep = MATMUL_PLAIN; ep <= MATMUL_ACCUMULATE; ep++) {
            memcpy(out, base, (size_t)rows * OUT * sizeof(float));
            matmul_forward_ex(out, inp, w, b, rows, IN, OUT, (matmul_epilogue)ep);
            reference(want, inp, ref_w, b, base, rows, (matmul_epilogue)ep);
            double e = rel_err(out, want, (size_t)rows * OUT);
            CHECK(e < tol, "%s, %d rows, epilogue %d: relative error %.3g", what, rows, ep, e);
        }
        free(inp), free(out), free(base), free(want);
    }
}

static void check_forward(const float *w, const float *b, ramc_rng *r, double tol,
                          const char *what) {
    check_forward_ref(w, w, b, r, tol, what);
}

/* dinp += dout @ w through matmul_backward, against the same in double from
 * ref_w (the same values; a released matrix must not be read directly).
 * bf16 (a bf16 range's input gradient, bf16 training): the reference rounds
 * dout and W to bf16 (nearest even: each product is then exact in float32,
 * so only the float32 sums differ), and the rounding must be visible against
 * the float32 product, so a silently float32 backward fails too. */
static void check_backward_input_as(const float *w, const float *ref_w, ramc_rng *r, int bf16,
                                    const char *what) {
    const int rows = 33;
    float *dout = malloc((size_t)rows * OUT * sizeof(float));
    float *dinp = malloc((size_t)rows * IN * sizeof(float));
    float *want = malloc((size_t)rows * IN * sizeof(float));
    float *want_f32 = malloc((size_t)rows * IN * sizeof(float));
    fill(dout, (size_t)rows * OUT, r, 1.0f);
    fill(dinp, (size_t)rows * IN, r, 1.0f);
    for (int i = 0; i < rows; i++) /* dinp + dout @ w, in double */
        for (int j = 0; j < IN; j++) {
            double s = dinp[(size_t)i * IN + j], sf = s;
            for (int o = 0; o < OUT; o++) {
                const float g = dout[(size_t)i * OUT + o], v = ref_w[(size_t)o * IN + j];
                s += bf16 ? (double)ref_bf16(g) * ref_bf16(v) : (double)g * v;
                sf += (double)g * v;
            }
            want[(size_t)i * IN + j] = (float)s, want_f32[(size_t)i * IN + j] = (float)sf;
        }
    matmul_backward(dinp, NULL, NULL, dout, NULL, w, rows, IN, OUT);
    double e = rel_err(dinp, want, (size_t)rows * IN);
    CHECK(e < 1e-5, "%s: backward input gradient relative error %.3g", what, e);
    if (bf16) {
        double ef = rel_err(dinp, want_f32, (size_t)rows * IN);
        CHECK(ef > 1.0 / 4096, "%s: backward input gradient is float32's (relative error %.3g): "
              "not in bf16", what, ef);
    }
    free(dout), free(dinp), free(want), free(want_f32);
}

static void check_backward_input(const float *w, ramc_rng *r, const char *what) {
    check_backward_input_as(w, w, r, 0, what);
}

/* gemm_bf16 (TSS's products in the bf16 mode) against the plainest
 * reference of what it promises: the operands rounded to bf16 (ref_bf16,
 * nearest even) and multiplied in double. Each product of two bf16 is exact
 * in float32, so the kernel differs from that only by its float32 sums of K
 * terms, in whatever order oneDNN takes them: element by element within
 * Higham's gamma_K = K 2^-24 (times 2 for slack) of sum_k |a_k b_k|. Against
 * float32 operands the error is bf16's own, ~2^-8 of that sum: the test
 * also demands it be visible (above 2^-12 of max|C|), so a silently float32
 * product fails. The strides and transposes are the ones tss.c uses: the 1x1
 * and 3x3 convolutions (B^T), the label logits (B^T) and mixing (B), and the
 * final convolution (A^T and B^T); lda, ldb, ldc wider than the rows. */
static void check_gemm_bf16(ramc_rng *r, int ta, int tb, int M, int N, int K, int pad,
                            const char *what) {
    const int ar = ta ? K : M, ac = ta ? M : K, br = tb ? N : K, bc = tb ? K : N;
    const int lda = ac + pad, ldb = bc + pad, ldc = N + pad;
    float *A = malloc((size_t)ar * lda * sizeof(float)), *B = malloc((size_t)br * ldb * sizeof(float));
    float *Cm = malloc((size_t)M * ldc * sizeof(float));
    double *Ad = malloc((size_t)ar * lda * sizeof(double)), *Bd = malloc((size_t)br * ldb * sizeof(double));
    double *Aa = malloc((size_t)ar * lda * sizeof(double)), *Ba = malloc((size_t)br * ldb * sizeof(double));
    double *want = malloc((size_t)M * N * sizeof(double)), *bound = malloc((size_t)M * N * sizeof(double));
    double *exact = malloc((size_t)M * N * sizeof(double));
    fill(A, (size_t)ar * lda, r, 1.0f), fill(B, (size_t)br * ldb, r, 1.0f);
    for (int i = 0; i < M * ldc; i++) Cm[i] = NAN; /* the padding columns must stay untouched */
    for (size_t i = 0; i < (size_t)ar * lda; i++) Ad[i] = ref_bf16(A[i]), Aa[i] = fabs(Ad[i]);
    for (size_t i = 0; i < (size_t)br * ldb; i++) Bd[i] = ref_bf16(B[i]), Ba[i] = fabs(Bd[i]);
    ref_gemm(ta, tb, M, N, K, 1.0, Ad, lda, Bd, ldb, 0.0, want, N);
    ref_gemm(ta, tb, M, N, K, 1.0, Aa, lda, Ba, ldb, 0.0, bound, N);
    for (size_t i = 0; i < (size_t)ar * lda; i++) Ad[i] = A[i];
    for (size_t i = 0; i < (size_t)br * ldb; i++) Bd[i] = B[i];
    ref_gemm(ta, tb, M, N, K, 1.0, Ad, lda, Bd, ldb, 0.0, exact, N);
    if (gemm_bf16(ta, tb, M, N, K, A, lda, B, ldb, Cm, ldc) != 0) {
        printf("  gemm_bf16 %-34s not available here (no oneDNN bf16 matmul): skipped\n", what);
    } else {
        double worst = 0, dev = 0, cmax = 0;
        int pad_ok = 1;
        for (int i = 0; i < M; i++) {
            for (int j = 0; j < N; j++) {
                const double got = Cm[(size_t)i * ldc + j], w = want[(size_t)i * N + j];
                const double b = bound[(size_t)i * N + j] > 0 ? bound[(size_t)i * N + j] : 1;
                const double e = fabs(got - w) / b;
                worst = e > worst || isnan(e) ? e : worst;
                const double d = fabs(got - exact[(size_t)i * N + j]);
                dev = d > dev ? d : dev;
                cmax = fabs(exact[(size_t)i * N + j]) > cmax ? fabs(exact[(size_t)i * N + j]) : cmax;
            }
            for (int j = N; j < ldc; j++) pad_ok &= isnan(Cm[(size_t)i * ldc + j]);
        }
        const double tol = 2.0 * K * ldexp(1.0, -24);
        CHECK(worst <= tol, "gemm_bf16 %s: error %.3g of sum|a b| > %.3g", what, worst, tol);
        CHECK(dev / cmax >= ldexp(1.0, -12), "gemm_bf16 %s: only %.3g from float32: not bf16?",
              what, dev / cmax);
        CHECK(pad_ok, "gemm_bf16 %s: wrote past N in a row of C", what);
        printf("  gemm_bf16 %-34s vs bf16 reference %.2e of sum|ab| (tol %.1e); vs float32 %.2e of max|C|\n",
               what, worst, tol, dev / cmax);
    }
    free(A), free(B), free(Cm), free(Ad), free(Bd), free(Aa), free(Ba), free(want), free(bound),
        free(exact);
}

int main(void) {
    ramc_rng r;
    rng_seed(&r, 7);
    /* one block holding two weight matrices and a bias, as a model's storage */
    const size_t nw = (size_t)IN * OUT;
    float *storage = malloc((2 * nw + OUT) * sizeof(float));
    float *w1 = storage, *w2 = storage + nw, *b = storage + 2 * nw;
    fill(storage, 2 * nw + OUT, &r, 0.2f);

    long n0 = kernels_packed_count();
    check_forward(w1, b, &r, 1e-5, "plain sgemm (not frozen)");
    check_backward_input(w1, &r, "plain sgemm (not frozen)");
    CHECK(kernels_packed_count() == n0, "weights outside a frozen range went to the packed path");

    kernels_freeze_weights(storage, (2 * nw + OUT) * sizeof(float), 0, 0);
    check_forward(w1, b, &r, 1e-5, "packed f32");
    check_forward(w2, b, &r, 1e-5, "packed f32, second weight");
    check_backward_input(w1, &r, "packed f32");
    /* 2 weights x 4 row counts x 3 epilogues, + 1 backward */
    if (kernels_packed_available())
        CHECK(kernels_packed_count() == n0 + 25, "%ld products on packed weights, want 25",
              kernels_packed_count() - n0);
    else
        printf("test_packed: no oneDNN (or RAMC_PACK=0): the plain path was checked twice\n");

    /* Change the weights after a thaw: the next products must see them. */
    kernels_thaw_weights(storage);
    fill(storage, 2 * nw, &r, 0.3f);
    n0 = kernels_packed_count();
    check_forward(w1, b, &r, 1e-5, "after thaw, changed weights");
    CHECK(kernels_packed_count() == n0, "a thawed weight still went to the packed path");
    kernels_freeze_weights(storage, (2 * nw + OUT) * sizeof(float), 0, 0);
    check_forward(w1, b, &r, 1e-5, "refrozen, changed weights");
    check_backward_input(w1, &r, "refrozen, changed weights");
    kernels_thaw_weights(storage);

    /* Two ranges in one storage (clip_freeze_for_training freezes a range per
     * block): a span thaw drops both, and changed weights are seen. */
    if (kernels_packed_available()) {
        float *w1_copy = malloc(nw * sizeof(float)); /* w1's pages may be given back */
        memcpy(w1_copy, w1, nw * sizeof(float));
        kernels_freeze_weights(w1, nw * sizeof(float), 0, 1);
        kernels_freeze_weights(w2, nw * sizeof(float), 0, 0);
        n0 = kernels_packed_count();
        check_forward_ref(w1, w1_copy, b, &r, 1e-5, "range 1 of 2 (released)");
        free(w1_copy);
        check_forward(w2, b, &r, 1e-5, "range 2 of 2");
        CHECK(kernels_packed_count() > n0, "two frozen ranges did not pack");
        kernels_thaw_span(storage, (2 * nw + OUT) * sizeof(float));
        fill(storage, 2 * nw, &r, 0.25f); /* writable again: range 1 rebuilt */
        n0 = kernels_packed_count();
        check_forward(w1, b, &r, 1e-5, "after a span thaw, changed weights (1)");
        check_forward(w2, b, &r, 1e-5, "after a span thaw, changed weights (2)");
        CHECK(kernels_packed_count() == n0, "a span thaw left a range frozen");
    }

    /* bf16 products: inputs and weights rounded to 8 bits of mantissa, sums
     * of 96 terms in float: well within 2e-2 of the exact product. */
    kernels_freeze_weights(storage, (2 * nw + OUT) * sizeof(float), 1, 1);
    check_forward(w2, b, &r, 2e-2, "packed bf16");
    check_backward_input_as(w2, w2, &r, 1, "bf16 range (input gradients in bf16 too)");
    kernels_thaw_weights(storage);

    /* Released originals: the packed copy replaces the stored matrix (its
     * whole pages go back to the kernel), products stay right, the backward
     * and a thaw rebuild it bit for bit. Page-aligned storage, so every
     * matrix covers whole pages. */
    {
        const size_t bytes = (2 * nw + OUT) * sizeof(float), cap = (bytes + 4095) / 4096 * 4096;
        float *st = aligned_alloc(4096, cap), *saved = malloc(bytes);
        fill(st, 2 * nw + OUT, &r, 0.2f);
        memcpy(saved, st, bytes);
        kernels_freeze_weights(st, bytes, 0, 1);
        check_forward_ref(st, saved, saved + 2 * nw, &r, 1e-5, "released original");
        if (kernels_packed_available())
            CHECK(kernels_released_bytes() >= 4096, "no page of the stored matrix was released");
        check_backward_input_as(st, saved, &r, 0, "released original, backward");
        CHECK(kernels_released_bytes() == 0, "the backward did not rebuild the matrix it reads");
        check_forward_ref(st + nw, saved + nw, saved + 2 * nw, &r, 1e-5, "second matrix released");
        /* a view into the released second matrix (as the value rows of a
         * fused QKV weight): its rows [40, 80) as a [40, IN] weight */
        {
            enum { V0 = 40, VN = 40, ROWS = 5 };
            float inp[ROWS * IN], out[ROWS * VN];
            fill(inp, ROWS * IN, &r, 1.0f);
            matmul_forward(out, inp, st + nw + (size_t)V0 * IN, NULL, ROWS, IN, VN);
            double worst = 0;
            for (int i = 0; i < ROWS; i++)
                for (int o = 0; o < VN; o++) {
                    double want = 0;
                    for (int k = 0; k < IN; k++) want += (double)inp[i * IN + k] * saved[nw + (size_t)(V0 + o) * IN + k];
                    double e = fabs(out[i * VN + o] - want) / (fabs(want) > 1 ? fabs(want) : 1);
                    if (e > worst) worst = e;
                }
            CHECK(worst < 1e-5, "view into a released matrix: error %.3g", worst);
            check_forward_ref(st + nw, saved + nw, saved + 2 * nw, &r, 1e-5,
                              "the matrix around the view");
        }
        kernels_thaw_weights(st);
        CHECK(kernels_released_bytes() == 0, "thaw left released pages");
        CHECK(memcmp(st, saved, bytes) == 0, "thaw did not rebuild the stored matrices exactly");
        /* forget: no rebuild, but the memory is usable again (to be freed) */
        kernels_freeze_weights(st, bytes, 0, 1);
        check_forward_ref(st, saved, saved + 2 * nw, &r, 1e-5, "released again");
        kernels_forget_weights(st);
        memset(st, 0, bytes); /* would fault if a page were still protected */
        CHECK(kernels_released_bytes() == 0, "forget left released pages");
        free(st), free(saved);
    }

    /* TSS's products in the bf16 mode (shapes of tss.c, smaller widths) */
    check_gemm_bf16(&r, 0, 1, 196, 64, 96, 3, "1x1 conv: rows @ W^T");
    check_gemm_bf16(&r, 0, 1, 100, 48, 9 * 40, 0, "3x3 conv: im2col @ W^T");
    check_gemm_bf16(&r, 0, 1, 98, 65, 64, 5, "label logits: q @ kv^T");
    check_gemm_bf16(&r, 0, 0, 98, 64, 65, 2, "label mixing: attn @ kv");
    check_gemm_bf16(&r, 1, 1, 49, 80, 64, 4, "final conv: fused^T @ W^T");
    check_gemm_bf16(&r, 1, 0, 1, 7, 3, 0, "tiny, A^T");
    /* the same shape twice reuses the primitive; a third shape in between */
    check_gemm_bf16(&r, 0, 1, 98, 65, 64, 5, "label logits again");

    /* a thawed range is gone: freeing and reusing the memory is safe */
    free(storage);
    float *again = malloc((2 * nw + OUT) * sizeof(float));
    fill(again, 2 * nw + OUT, &r, 0.25f);
    kernels_freeze_weights(again, (2 * nw + OUT) * sizeof(float), 0, 0);
    check_forward(again, again + 2 * nw, &r, 1e-5, "new storage, possibly at the old address");
    kernels_thaw_weights(again);
    free(again);
    return test_summary("test_packed");
}
