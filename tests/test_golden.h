/* Reading one tensor of a golden set, for the tests that start from the
 * golden inputs (tests/golden/README.md). */
#ifndef RAMC_TEST_GOLDEN_H
#define RAMC_TEST_GOLDEN_H

#include "io/safetensors.h"

/* The float32 tensor `name` of the safetensors file at path, of exactly this
 * shape, into out. */
static inline ramc_status golden_load_f32(const char *path, const char *name, int ndim,
                                          const int64_t *shape, float *out) {
    st_file *f = NULL;
    ramc_status st = st_open(path, &f);
    if (st == RAMC_OK) st = st_load_f32(f, name, ndim, shape, out);
    st_close(f);
    return st;
}

#endif
