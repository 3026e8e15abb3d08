/* Fuzz target: the safetensors reader (st_open and the tensor accessors), and
 * a write-back through st_writer that must reproduce what was read.
 * st_open only takes a path (it mmaps the file), so each input is written to a
 * per-process temporary file first. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "io/safetensors.h"

/* Tensors bigger than this are not converted: the conversion buffers are 8x
 * the stored bytes, and a libFuzzer input is small anyway. */
#define MAX_CONVERT_ELEMENTS (1 << 20)

void fuzz_init_safetensors(void) {}

static int is_float(st_dtype d) {
    return d == ST_F32 || d == ST_F16 || d == ST_BF16 || d == ST_F64;
}

/* What st_open promises about a file it accepted (safetensors.h). */
static void check_tensor(const st_file *f, const st_tensor *t) {
    FUZZ_CHECK(t->name != NULL, "tensor without a name");
    FUZZ_CHECK(t->ndim >= 0 && t->ndim <= ST_MAX_DIMS, "tensor '%s': ndim %d", t->name, t->ndim);
    /* unsigned: with a zero dimension the others may multiply past 2^64 */
    uint64_t numel = 1;
    for (int d = 0; d < t->ndim; d++) {
        FUZZ_CHECK(t->shape[d] >= 0, "tensor '%s': negative dimension", t->name);
        numel *= (uint64_t)t->shape[d];
    }
    int zero = 0;
    for (int d = 0; d < t->ndim; d++) zero |= t->shape[d] == 0;
    if (zero) numel = 0;
    FUZZ_CHECK((uint64_t)t->numel == numel, "tensor '%s': numel %lld, shape gives %lld", t->name,
               (long long)t->numel, (long long)numel);
    FUZZ_CHECK(t->nbytes == (size_t)t->numel * st_dtype_size(t->dtype),
               "tensor '%s': nbytes %zu", t->name, t->nbytes);
    /* the mapping is page-granular, so ASan cannot see a read just past the
     * file: check the range against the file size instead */
    /* a PyTorch archive's tensors are copies (f->map released): ASan watches those */
    const unsigned char *map = f->map, *p = t->data;
    if (map)
        FUZZ_CHECK(p >= map + 8 && p <= map + f->map_size &&
                       t->nbytes <= (size_t)(map + f->map_size - p),
                   "tensor '%s': data outside the file", t->name);
    FUZZ_CHECK(st_find(f, t->name) == t, "st_find('%s') does not return the tensor", t->name);
}

/* Converts t with the accessor matching its dtype; the other one must refuse. */
static void read_tensor(const st_file *f, const st_tensor *t) {
    if (t->numel > MAX_CONVERT_ELEMENTS) return;
    size_t n = (size_t)t->numel;
    float *fv = malloc((n ? n : 1) * sizeof *fv);
    int64_t *iv = malloc((n ? n : 1) * sizeof *iv);
    if (fv && iv) {
        ramc_status sf = st_read_f32(f, t, fv), si = st_read_i64(f, t, iv);
        if (is_float(t->dtype)) {
            FUZZ_CHECK(sf == RAMC_OK && si != RAMC_OK, "tensor '%s': float accessors", t->name);
            FUZZ_CHECK(st_load_f32(f, t->name, t->ndim, t->shape, fv) == RAMC_OK,
                       "st_load_f32('%s') with its own shape failed", t->name);
        } else {
            FUZZ_CHECK(sf != RAMC_OK && si == RAMC_OK, "tensor '%s': integer accessors", t->name);
        }
    }
    free(fv);
    free(iv);
}

/* Writes the accepted file back with st_writer and reads it again: every
 * tensor and metadata entry must come back with the same dtype, shape and
 * bytes. Entries the writer refuses (it is stricter about shapes) are skipped. */
static void round_trip(const st_file *f) {
    st_writer *w = st_writer_new();
    if (!w) return;
    int ok = 1;
    for (int i = 0; i < f->n_tensors && ok; i++) {
        const st_tensor *t = &f->tensors[i];
        /* data is in file (little-endian) order, which the writer expects on
         * little-endian hosts, the only ones ramc is tested on */
        if (st_writer_add(w, t->name, t->dtype, t->ndim, t->shape, t->data) != RAMC_OK) ok = 0;
    }
    for (int i = 0; i < f->n_metadata && ok; i++)
        if (st_writer_set_metadata(w, f->metadata_keys[i], f->metadata_values[i]) != RAMC_OK) ok = 0;
    char path[1024];
    if (ok && fuzz_temp_file("copy.safetensors", (const uint8_t *)"", 0, path, sizeof path) == 0 &&
        st_writer_save(w, path) == RAMC_OK) {
        st_file *g = NULL;
        ramc_status st = st_open(path, &g);
        FUZZ_CHECK(st == RAMC_OK, "re-reading the written copy failed: %s", ramc_last_error());
        FUZZ_CHECK(g->n_tensors == f->n_tensors && g->n_metadata == f->n_metadata,
                   "copy has %d tensors / %d metadata, original %d / %d", g->n_tensors,
                   g->n_metadata, f->n_tensors, f->n_metadata);
        for (int i = 0; i < f->n_tensors; i++) {
            const st_tensor *a = &f->tensors[i], *b = st_find(g, a->name);
            FUZZ_CHECK(b != NULL, "tensor '%s' lost in the copy", a->name);
            FUZZ_CHECK(a->dtype == b->dtype && a->ndim == b->ndim &&
                           !memcmp(a->shape, b->shape, sizeof(int64_t) * (size_t)a->ndim) &&
                           a->nbytes == b->nbytes && (!a->nbytes || !memcmp(a->data, b->data, a->nbytes)),
                       "tensor '%s' differs in the copy", a->name);
        }
        for (int i = 0; i < f->n_metadata; i++) {
            const char *v = st_metadata(g, f->metadata_keys[i]);
            FUZZ_CHECK(v && !strcmp(v, f->metadata_values[i]), "metadata '%s' differs in the copy",
                       f->metadata_keys[i]);
        }
        st_close(g);
    }
    st_writer_free(w);
}

int fuzz_one_safetensors(const uint8_t *data, size_t size) {
    char path[1024];
    if (fuzz_temp_file("input.safetensors", data, size, path, sizeof path) != 0) return 0;
    ramc_clear_error();
    st_file *f = NULL;
    if (st_open(path, &f) != RAMC_OK) {
        FUZZ_CHECK(f == NULL, "st_open failed but returned a file");
        fuzz_check_error_message("st_open");
        return 0;
    }
    FUZZ_CHECK(f != NULL && f->n_tensors >= 0 && f->n_metadata >= 0, "st_open result");
    for (int i = 0; i < f->n_tensors; i++) {
        check_tensor(f, &f->tensors[i]);
        read_tensor(f, &f->tensors[i]);
    }
    for (int i = 0; i < f->n_metadata; i++)
        FUZZ_CHECK(st_metadata(f, f->metadata_keys[i]) != NULL, "metadata key '%s' not found",
                   f->metadata_keys[i]);
    round_trip(f);
    st_close(f);
    return 0;
}
