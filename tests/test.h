/* A minimal test harness: CHECK records a failure and carries on, so one run
 * reports every broken assertion. Each test program ends with
 * `return test_summary("name");` which prints "N passed, M failed". */
#ifndef RAMC_TEST_H
#define RAMC_TEST_H

#include <math.h>
#include <stddef.h>
#include <stdio.h>

static int test_passed_count, test_failed_count;

#define CHECK(cond, ...)                                                         \
    do {                                                                         \
        if (cond) {                                                              \
            test_passed_count++;                                                 \
        } else {                                                                 \
            test_failed_count++;                                                 \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);      \
            fprintf(stderr, __VA_ARGS__);                                        \
            fprintf(stderr, "\n");                                               \
        }                                                                        \
    } while (0)

/* |a - b| <= tol * max(1, |b|) */
#define CHECK_CLOSE(a, b, tol, what)                                             \
    do {                                                                         \
        double test_a_ = (a), test_b_ = (b);                                     \
        double test_s_ = fabs(test_b_) > 1 ? fabs(test_b_) : 1;                  \
        CHECK(fabs(test_a_ - test_b_) <= (tol) * test_s_, "%s: got %.9g, want %.9g", \
              what, test_a_, test_b_);                                           \
    } while (0)

/* max |a - b| / max |b| (the golden comparison's relative error); NaN in a
 * difference counts as infinite. */
static inline double rel_err(const float *a, const float *b, size_t n) {
    double md = 0, mr = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > md || isnan(d)) md = isnan(d) ? INFINITY : d;
        if (fabs(b[i]) > mr) mr = fabs(b[i]);
    }
    return mr > 0 ? md / mr : md;
}

static inline int test_summary(const char *name) {
    printf("%s: %d passed, %d failed\n", name, test_passed_count, test_failed_count);
    return test_failed_count ? 1 : 0;
}

#endif
