/* Reading one tensor of a golden set, for the tests that start from the
 * golden inputs (tests/golden/README.md). */
#ifndef RAMC_TEST_GOLDEN_H
#define RAMC_TEST_GOLDEN_H

#include <stdlib.h>

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

/* The golden set's images [B, 3, S, S] and the first n prompts of its
 * text_tokens (stored int64 [N, L], N >= n) as int32, from its
 * inputs.safetensors at path. */
static inline ramc_status golden_load_inputs(const char *path, int B, int S, float *images, int n,
                                             int L, int32_t *tokens) {
    st_file *f = NULL;
    ramc_status st = st_open(path, &f);
    const int64_t ishape[4] = {B, 3, S, S};
    if (st == RAMC_OK) st = st_load_f32(f, "images", 4, ishape, images);
    const st_tensor *t = st == RAMC_OK ? st_find(f, "text_tokens") : NULL;
    if (st == RAMC_OK && !(t && t->ndim == 2 && t->shape[1] == L && t->shape[0] >= n))
        st = RAMC_ERR_MISMATCH;
    int64_t *all = st == RAMC_OK ? malloc((size_t)t->numel * sizeof(int64_t)) : NULL;
    if (st == RAMC_OK && !all) st = RAMC_ERR_NOMEM;
    if (st == RAMC_OK) st = st_read_i64(f, t, all);
    if (st == RAMC_OK)
        for (long i = 0; i < (long)n * L; i++) tokens[i] = (int32_t)all[i];
    free(all);
    st_close(f);
    return st;
}

#endif
