/* Safetensors reader (validated mmap) and atomic writer. */
#include "io/safetensors.h"
#include "io/torch_file.h"

#include "core/half.h"
#include "core/utf8.h"
#include "io/file.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------- dtypes */

static const struct {
    const char *name;
    size_t size;
} dtype_table[] = {
    [ST_F32] = {"F32", 4}, [ST_F16] = {"F16", 2}, [ST_BF16] = {"BF16", 2}, [ST_F64] = {"F64", 8},
    [ST_I64] = {"I64", 8}, [ST_I32] = {"I32", 4}, [ST_I16] = {"I16", 2},  [ST_I8] = {"I8", 1},
    [ST_U8] = {"U8", 1},   [ST_BOOL] = {"BOOL", 1},
};
#define N_DTYPES ((int)(sizeof dtype_table / sizeof dtype_table[0]))

static int dtype_valid(st_dtype d) { return (int)d >= 0 && (int)d < N_DTYPES; }

const char *st_dtype_name(st_dtype dtype) {
    return dtype_valid(dtype) ? dtype_table[dtype].name : "?";
}

size_t st_dtype_size(st_dtype dtype) { return dtype_valid(dtype) ? dtype_table[dtype].size : 0; }

static int dtype_from_name(const char *s, st_dtype *out) {
    for (int i = 0; i < N_DTYPES; i++) {
        if (strcmp(s, dtype_table[i].name) == 0) {
            *out = (st_dtype)i;
            return 1;
        }
    }
    return 0;
}

/* ----------------------------------------------------- little endian */

static uint16_t le16(const unsigned char *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t le32(const unsigned char *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static uint64_t le64(const unsigned char *p) { return (uint64_t)le32(p) | ((uint64_t)le32(p + 4) << 32); }

static int host_little_endian(void) {
    const uint16_t one = 1;
    unsigned char c;
    memcpy(&c, &one, 1);
    return c == 1;
}

/* ------------------------------------------------------------- reader */

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = ramc_malloc(n, "a string");
    if (d) memcpy(d, s, n);
    return d;
}

void st_close(st_file *file) {
    if (!file) return;
    if (file->map) munmap(file->map, file->map_size);
    for (int i = 0; i < file->n_tensors; i++) free(file->tensors[i].name);
    for (int i = 0; i < file->n_owned; i++) free(file->owned[i]);
    free(file->owned);
    free(file->tensors);
    for (int i = 0; i < file->n_metadata; i++) {
        free(file->metadata_keys[i]);
        free(file->metadata_values[i]);
    }
    free(file->metadata_keys);
    free(file->metadata_values);
    free(file->path);
    free(file);
}

/* JSON numbers are doubles; accept only exact non-negative integers up to
 * 2^53 so that no offset is silently rounded. */
static int json_uint(const cJSON *item, uint64_t *out) {
    if (!cJSON_IsNumber(item)) return 0;
    double v = item->valuedouble;
    if (!(v >= 0 && v <= 9007199254740992.0) || v != floor(v)) return 0;
    *out = (uint64_t)v;
    return 1;
}

static ramc_status parse_metadata(st_file *f, const cJSON *meta) {
    const char *path = f->path;
    if (!cJSON_IsObject(meta))
        return ramc_error(RAMC_ERR_FORMAT, "%s: __metadata__ is not a JSON object", path);
    int n = cJSON_GetArraySize(meta);
    f->metadata_keys = ramc_calloc((size_t)n, sizeof(char *), "safetensors metadata");
    f->metadata_values = ramc_calloc((size_t)n, sizeof(char *), "safetensors metadata");
    if (!f->metadata_keys || !f->metadata_values) return RAMC_ERR_NOMEM;
    for (const cJSON *it = meta->child; it; it = it->next) {
        if (!cJSON_IsString(it))
            return ramc_error(RAMC_ERR_FORMAT, "%s: __metadata__ value of '%s' is not a string", path,
                              it->string);
        for (int i = 0; i < f->n_metadata; i++)
            if (strcmp(f->metadata_keys[i], it->string) == 0)
                return ramc_error(RAMC_ERR_FORMAT, "%s: __metadata__ key '%s' appears twice", path,
                                  it->string);
        int i = f->n_metadata;
        f->metadata_keys[i] = dup_str(it->string);
        f->metadata_values[i] = dup_str(it->valuestring);
        if (!f->metadata_keys[i] || !f->metadata_values[i]) {
            free(f->metadata_keys[i]);
            free(f->metadata_values[i]);
            return RAMC_ERR_NOMEM;
        }
        f->n_metadata++;
    }
    return RAMC_OK;
}

/* Fills t from one header entry; begin/end are returned for the overlap check. */
static ramc_status parse_entry(const st_file *f, const cJSON *e, const unsigned char *data,
                               uint64_t data_size, st_tensor *t, uint64_t *begin, uint64_t *end) {
    const char *path = f->path, *name = e->string;
    if (!cJSON_IsObject(e))
        return ramc_error(RAMC_ERR_FORMAT, "%s: tensor '%s': header entry is not a JSON object", path, name);

    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    if (!cJSON_IsString(dt))
        return ramc_error(RAMC_ERR_FORMAT, "%s: tensor '%s': missing or non-string dtype", path, name);
    if (!dtype_from_name(dt->valuestring, &t->dtype))
        return ramc_error(RAMC_ERR_FORMAT, "%s: tensor '%s': unknown dtype '%s'", path, name,
                          dt->valuestring);

    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
    if (!cJSON_IsArray(sh))
        return ramc_error(RAMC_ERR_FORMAT, "%s: tensor '%s': missing or non-array shape", path, name);
    int ndim = cJSON_GetArraySize(sh);
    if (ndim > ST_MAX_DIMS)
        return ramc_error(RAMC_ERR_FORMAT, "%s: tensor '%s': %d dimensions, at most %d supported", path,
                          name, ndim, ST_MAX_DIMS);
    t->ndim = ndim;
    uint64_t numel = 1;
    int overflow = 0, has_zero = 0;
    int d = 0;
    for (const cJSON *it = sh->child; it; it = it->next, d++) {
        uint64_t v;
        if (!json_uint(it, &v))
            return ramc_error(RAMC_ERR_FORMAT,
                              "%s: tensor '%s': shape entry %d is not a non-negative integer", path, name, d);
        t->shape[d] = (int64_t)v;
        /* A later zero dimension still makes the tensor empty, so only flag here. */
        if (v == 0) has_zero = 1;
        else if (numel > (UINT64_C(1) << 56) / v) overflow = 1;
        if (!overflow) numel *= v;
    }
    if (has_zero) numel = 0;
    if (overflow && !has_zero)
        return ramc_error(RAMC_ERR_FORMAT, "%s: tensor '%s': element count overflows", path, name);

    const cJSON *off = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2 || !json_uint(off->child, begin) ||
        !json_uint(off->child->next, end))
        return ramc_error(RAMC_ERR_FORMAT,
                          "%s: tensor '%s': data_offsets must be two non-negative integers [begin,end]",
                          path, name);
    if (*begin > *end)
        return ramc_error(RAMC_ERR_FORMAT, "%s: tensor '%s': data_offsets [%" PRIu64 ",%" PRIu64
                          "] begin after end", path, name, *begin, *end);
    if (*end > data_size)
        return ramc_error(RAMC_ERR_FORMAT, "%s: tensor '%s': data_offsets [%" PRIu64 ",%" PRIu64
                          "] lie outside the data block (%" PRIu64 " bytes)", path, name, *begin, *end,
                          data_size);
    uint64_t want = numel * st_dtype_size(t->dtype);
    if (*end - *begin != want)
        return ramc_error(RAMC_ERR_FORMAT, "%s: tensor '%s': data_offsets [%" PRIu64 ",%" PRIu64
                          "] hold %" PRIu64 " bytes, but %s shape needs %" PRIu64, path, name, *begin,
                          *end, *end - *begin, st_dtype_name(t->dtype), want);
    t->numel = (int64_t)numel;
    t->nbytes = (size_t)want;
    t->data = data + *begin;
    return RAMC_OK;
}

typedef struct {
    uint64_t begin, end;
    int index;
} range;

static int range_cmp(const void *a, const void *b) {
    const range *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

static int name_cmp(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static ramc_status check_overlaps(const st_file *f, range *r, int n) {
    qsort(r, (size_t)n, sizeof *r, range_cmp);
    int prev = -1; /* the non-empty range reaching furthest so far */
    for (int i = 0; i < n; i++) {
        if (r[i].begin == r[i].end) continue; /* empty tensors own no bytes */
        if (prev >= 0 && r[i].begin < r[prev].end)
            return ramc_error(RAMC_ERR_FORMAT,
                              "%s: tensor '%s': data_offsets [%" PRIu64 ",%" PRIu64
                              "] overlap tensor '%s' [%" PRIu64 ",%" PRIu64 "]",
                              f->path, f->tensors[r[i].index].name, r[i].begin, r[i].end,
                              f->tensors[r[prev].index].name, r[prev].begin, r[prev].end);
        if (prev < 0 || r[i].end > r[prev].end) prev = i;
    }
    return RAMC_OK;
}

static ramc_status check_duplicates(const st_file *f) {
    if (f->n_tensors < 2) return RAMC_OK;
    const char **names = ramc_malloc(sizeof(char *) * (size_t)f->n_tensors, "tensor names");
    if (!names) return RAMC_ERR_NOMEM;
    for (int i = 0; i < f->n_tensors; i++) names[i] = f->tensors[i].name;
    qsort(names, (size_t)f->n_tensors, sizeof *names, name_cmp);
    ramc_status st = RAMC_OK;
    for (int i = 1; i < f->n_tensors; i++) {
        if (strcmp(names[i - 1], names[i]) == 0) {
            st = ramc_error(RAMC_ERR_FORMAT, "%s: tensor '%s' appears twice in the header", f->path,
                            names[i]);
            break;
        }
    }
    free(names);
    return st;
}

static ramc_status parse_header(st_file *f, const char *json, size_t json_len,
                                const unsigned char *data, uint64_t data_size) {
    /* JSON text is UTF-8; tensor names must be too (the reference reader
     * refuses anything else, and a mangled name would silently go unused) */
    long bad = utf8_invalid_at((const unsigned char *)json, json_len);
    if (bad >= 0)
        return ramc_error(RAMC_ERR_FORMAT, "%s: header is not valid UTF-8 (byte %ld of the header)",
                          f->path ? f->path : "safetensors", bad);
    const char *path = f->path;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, json_len, &end, 0);
    if (!root) return ramc_error(RAMC_ERR_FORMAT, "%s: header is not valid JSON", path);
    ramc_status st = RAMC_OK;
    range *ranges = NULL;
    /* Only the space padding writers add may follow the JSON value. */
    for (const char *p = end; p && p < json + json_len; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            st = ramc_error(RAMC_ERR_FORMAT, "%s: header has data after its JSON object (offset %zu)",
                            path, (size_t)(p - json));
            goto done;
        }
    }
    if (!cJSON_IsObject(root)) {
        st = ramc_error(RAMC_ERR_FORMAT, "%s: header is not a JSON object", path);
        goto done;
    }
    int n = 0, n_meta = 0;
    for (const cJSON *it = root->child; it; it = it->next) {
        if (strcmp(it->string, "__metadata__") == 0)
            n_meta++;
        else
            n++;
    }
    if (n_meta > 1) {
        st = ramc_error(RAMC_ERR_FORMAT, "%s: __metadata__ appears twice", path);
        goto done;
    }
    f->tensors = ramc_calloc((size_t)n, sizeof(st_tensor), "safetensors tensor table");
    ranges = ramc_calloc((size_t)n, sizeof(range), "safetensors ranges");
    if (!f->tensors || !ranges) {
        st = RAMC_ERR_NOMEM;
        goto done;
    }
    for (const cJSON *it = root->child; it; it = it->next) {
        if (strcmp(it->string, "__metadata__") == 0) {
            if ((st = parse_metadata(f, it)) != RAMC_OK) goto done;
            continue;
        }
        int i = f->n_tensors;
        st_tensor *t = &f->tensors[i];
        if ((st = parse_entry(f, it, data, data_size, t, &ranges[i].begin, &ranges[i].end)) != RAMC_OK)
            goto done;
        if (!(t->name = dup_str(it->string))) {
            st = RAMC_ERR_NOMEM;
            goto done;
        }
        ranges[i].index = i;
        f->n_tensors++;
    }
    if ((st = check_duplicates(f)) != RAMC_OK) goto done;
    st = check_overlaps(f, ranges, f->n_tensors);
done:
    free(ranges);
    cJSON_Delete(root);
    return st;
}

ramc_status st_open(const char *path, st_file **out) {
    if (!out || !path) return ramc_error(RAMC_ERR_INVALID_ARG, "st_open: NULL argument");
    *out = NULL;
    st_file *f = ramc_calloc(1, sizeof *f, "safetensors file");
    if (!f) return RAMC_ERR_NOMEM;
    if (!(f->path = dup_str(path))) {
        free(f);
        return RAMC_ERR_NOMEM;
    }
    ramc_status st = RAMC_OK;
    int fd;
    struct stat sb;
    if ((st = open_regular_file(path, &fd, &sb)) != RAMC_OK) goto fail;
    uint64_t size = (uint64_t)sb.st_size;
    if (size < 8) {
        st = ramc_error(RAMC_ERR_FORMAT, "%s: file is %" PRIu64 " bytes, too short for a safetensors header",
                        path, size);
        close(fd);
        goto fail;
    }
    if (size > SIZE_MAX) {
        st = ramc_error(RAMC_ERR_IO, "%s: file too large to map", path);
        close(fd);
        goto fail;
    }
    void *map = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0);
    int map_errno = errno;
    close(fd); /* the mapping stays valid without the descriptor */
    if (map == MAP_FAILED) {
        st = ramc_error(RAMC_ERR_IO, "%s: cannot mmap: %s", path, strerror(map_errno));
        goto fail;
    }
    f->map = map;
    f->map_size = (size_t)size;

    const unsigned char *bytes = map;
    if (torch_is_archive(bytes, (size_t)size)) {
        if ((st = torch_read_archive(f, bytes, (size_t)size)) != RAMC_OK) goto fail;
        /* every tensor was copied out: the mapping is no longer needed */
        munmap(f->map, f->map_size);
        f->map = NULL;
        *out = f;
        return RAMC_OK;
    }
    if (torch_is_legacy(bytes, (size_t)size)) {
        st = ramc_error(RAMC_ERR_FORMAT,
                        "%s: a PyTorch checkpoint in the legacy format (before torch 1.6), which is "
                        "not read; convert it once with python3 -c \"import torch; "
                        "torch.save(torch.load('IN', map_location='cpu'), 'OUT.pt')\" "
                        "(torch >= 1.6 writes the zip format), then use OUT.pt or "
                        "ramc convert OUT.pt OUT.safetensors", path);
        goto fail;
    }
    uint64_t hlen = le64(bytes);
    if (hlen > ST_MAX_HEADER_BYTES) {
        st = ramc_error(RAMC_ERR_FORMAT, "%s: header length %" PRIu64 " exceeds the %u-byte limit", path,
                        hlen, ST_MAX_HEADER_BYTES);
        goto fail;
    }
    if (hlen > size - 8) {
        st = ramc_error(RAMC_ERR_FORMAT,
                        "%s: header length %" PRIu64 " runs past the end of the file (%" PRIu64 " bytes)",
                        path, hlen, size);
        goto fail;
    }
    if ((st = parse_header(f, (const char *)bytes + 8, (size_t)hlen, bytes + 8 + hlen,
                           size - 8 - hlen)) != RAMC_OK)
        goto fail;
    *out = f;
    return RAMC_OK;
fail:
    st_close(f);
    return st;
}

const st_tensor *st_find(const st_file *file, const char *name) {
    if (!file || !name) return NULL;
    for (int i = 0; i < file->n_tensors; i++)
        if (strcmp(file->tensors[i].name, name) == 0) return &file->tensors[i];
    return NULL;
}

const char *st_metadata(const st_file *file, const char *key) {
    if (!file || !key) return NULL;
    for (int i = 0; i < file->n_metadata; i++)
        if (strcmp(file->metadata_keys[i], key) == 0) return file->metadata_values[i];
    return NULL;
}

ramc_status st_read_f32(const st_file *file, const st_tensor *t, float *out) {
    const unsigned char *p = t->data;
    size_t n = (size_t)t->numel;
    switch (t->dtype) {
    case ST_F32:
        if (host_little_endian()) {
            memcpy(out, p, n * 4);
        } else {
            for (size_t i = 0; i < n; i++) out[i] = bits_f32(le32(p + 4 * i));
        }
        return RAMC_OK;
    case ST_F16:
        for (size_t i = 0; i < n; i++) out[i] = f16_to_f32(le16(p + 2 * i));
        return RAMC_OK;
    case ST_BF16:
        for (size_t i = 0; i < n; i++) out[i] = bf16_to_f32(le16(p + 2 * i));
        return RAMC_OK;
    case ST_F64:
        for (size_t i = 0; i < n; i++) {
            uint64_t u = le64(p + 8 * i);
            double d;
            memcpy(&d, &u, 8);
            out[i] = (float)d;
        }
        return RAMC_OK;
    default:
        return ramc_error(RAMC_ERR_MISMATCH, "%s: tensor '%s': dtype %s is not a floating-point type",
                          file ? file->path : "?", t->name, st_dtype_name(t->dtype));
    }
}

ramc_status st_read_i64(const st_file *file, const st_tensor *t, int64_t *out) {
    const unsigned char *p = t->data;
    size_t n = (size_t)t->numel;
    switch (t->dtype) {
    case ST_I64:
        for (size_t i = 0; i < n; i++) out[i] = (int64_t)le64(p + 8 * i);
        return RAMC_OK;
    case ST_I32:
        for (size_t i = 0; i < n; i++) out[i] = (int32_t)le32(p + 4 * i);
        return RAMC_OK;
    case ST_I16:
        for (size_t i = 0; i < n; i++) out[i] = (int16_t)le16(p + 2 * i);
        return RAMC_OK;
    case ST_I8:
        for (size_t i = 0; i < n; i++) out[i] = (int8_t)p[i];
        return RAMC_OK;
    case ST_U8:
        for (size_t i = 0; i < n; i++) out[i] = p[i];
        return RAMC_OK;
    case ST_BOOL:
        for (size_t i = 0; i < n; i++) out[i] = p[i] != 0;
        return RAMC_OK;
    default:
        return ramc_error(RAMC_ERR_MISMATCH, "%s: tensor '%s': dtype %s is not an integer type",
                          file ? file->path : "?", t->name, st_dtype_name(t->dtype));
    }
}

static void format_shape(char *buf, size_t cap, int ndim, const int64_t *shape) {
    size_t k = 0;
    k += (size_t)snprintf(buf + k, cap - k, "[");
    for (int i = 0; i < ndim && k < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, i ? ",%" PRId64 : "%" PRId64, shape[i]);
    if (k < cap) snprintf(buf + k, cap - k, "]");
}

ramc_status st_load_f32(const st_file *file, const char *name, int ndim, const int64_t *shape,
                        float *out) {
    const st_tensor *t = st_find(file, name);
    if (!t) return ramc_error(RAMC_ERR_MISMATCH, "%s: missing tensor '%s'", file->path, name);
    int ok;
    if (ndim == 0) {
        ok = t->ndim == 0 || (t->ndim == 1 && t->shape[0] == 1);
    } else {
        ok = t->ndim == ndim;
        for (int i = 0; ok && i < ndim; i++) ok = t->shape[i] == shape[i];
    }
    if (!ok) {
        char got[160], want[160];
        format_shape(got, sizeof got, t->ndim, t->shape);
        format_shape(want, sizeof want, ndim, shape);
        return ramc_error(RAMC_ERR_MISMATCH, "%s: tensor '%s': shape %s, expected %s", file->path, name,
                          got, want);
    }
    return st_read_f32(file, t, out);
}

/* ------------------------------------------------------------- writer */

typedef struct {
    char *name;
    st_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    size_t nbytes;
    unsigned char *data;
} wentry;

struct st_writer {
    wentry *entries;
    int n, cap;
    char **meta_keys, **meta_values;
    int n_meta, cap_meta;
};

st_writer *st_writer_new(void) { return ramc_calloc(1, sizeof(st_writer), "safetensors writer"); }

void st_writer_free(st_writer *w) {
    if (!w) return;
    for (int i = 0; i < w->n; i++) {
        free(w->entries[i].name);
        free(w->entries[i].data);
    }
    free(w->entries);
    for (int i = 0; i < w->n_meta; i++) {
        free(w->meta_keys[i]);
        free(w->meta_values[i]);
    }
    free(w->meta_keys);
    free(w->meta_values);
    free(w);
}

/* Validates name/shape and appends an entry whose data buffer the caller fills. */
static ramc_status writer_append(st_writer *w, const char *name, st_dtype dtype, int ndim,
                                 const int64_t *shape, wentry **out) {
    if (!w || !name || !dtype_valid(dtype) || ndim < 0 || ndim > ST_MAX_DIMS || (ndim && !shape))
        return ramc_error(RAMC_ERR_INVALID_ARG, "st_writer_add '%s': invalid argument", name ? name : "?");
    if (strcmp(name, "__metadata__") == 0)
        return ramc_error(RAMC_ERR_INVALID_ARG, "st_writer_add: '__metadata__' is reserved");
    for (int i = 0; i < w->n; i++)
        if (strcmp(w->entries[i].name, name) == 0)
            return ramc_error(RAMC_ERR_INVALID_ARG, "st_writer_add: tensor '%s' added twice", name);
    uint64_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0)
            return ramc_error(RAMC_ERR_INVALID_ARG, "st_writer_add '%s': negative dimension", name);
        if (shape[i] && numel > (UINT64_C(1) << 56) / (uint64_t)shape[i])
            return ramc_error(RAMC_ERR_LIMIT, "st_writer_add '%s': element count overflows", name);
        numel *= (uint64_t)shape[i];
    }
    uint64_t nbytes = numel * st_dtype_size(dtype);
    if (nbytes > SIZE_MAX / 2)
        return ramc_error(RAMC_ERR_LIMIT, "st_writer_add '%s': tensor too large", name);
    if (w->n == w->cap) {
        int cap = w->cap ? 2 * w->cap : 16;
        wentry *e = realloc(w->entries, sizeof(wentry) * (size_t)cap);
        if (!e) return ramc_error(RAMC_ERR_NOMEM, "st_writer_add '%s': out of memory", name);
        w->entries = e;
        w->cap = cap;
    }
    wentry *e = &w->entries[w->n];
    memset(e, 0, sizeof *e);
    e->name = dup_str(name);
    e->data = ramc_malloc((size_t)nbytes, "safetensors writer tensor");
    if (!e->name || !e->data) {
        free(e->name);
        free(e->data);
        return RAMC_ERR_NOMEM;
    }
    e->dtype = dtype;
    e->ndim = ndim;
    for (int i = 0; i < ndim; i++) e->shape[i] = shape[i];
    e->nbytes = (size_t)nbytes;
    w->n++;
    *out = e;
    return RAMC_OK;
}

static void put_le16(unsigned char *p, uint16_t v) {
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

static void put_le32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static void put_le64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

ramc_status st_writer_add(st_writer *w, const char *name, st_dtype dtype, int ndim,
                          const int64_t *shape, const void *data) {
    wentry *e = NULL;
    ramc_status st = writer_append(w, name, dtype, ndim, shape, &e);
    if (st != RAMC_OK) return st;
    if (e->nbytes && !data) {
        free(e->name);
        free(e->data);
        w->n--;
        return ramc_error(RAMC_ERR_INVALID_ARG, "st_writer_add '%s': NULL data", name);
    }
    /* Data is given in host order; files are little endian. */
    size_t es = st_dtype_size(dtype);
    if (host_little_endian() || es == 1) {
        if (e->nbytes) memcpy(e->data, data, e->nbytes);
    } else {
        const unsigned char *src = data;
        for (size_t i = 0; i < e->nbytes; i += es)
            for (size_t b = 0; b < es; b++) e->data[i + b] = src[i + es - 1 - b];
    }
    return RAMC_OK;
}

ramc_status st_writer_add_f32(st_writer *w, const char *name, st_dtype stored_as, int ndim,
                              const int64_t *shape, const float *data) {
    if (stored_as != ST_F32 && stored_as != ST_F16 && stored_as != ST_BF16)
        return ramc_error(RAMC_ERR_INVALID_ARG, "st_writer_add_f32 '%s': cannot store as %s",
                          name ? name : "?", st_dtype_name(stored_as));
    wentry *e = NULL;
    ramc_status st = writer_append(w, name, stored_as, ndim, shape, &e);
    if (st != RAMC_OK) return st;
    size_t n = e->nbytes / st_dtype_size(stored_as);
    if (n && !data) {
        free(e->name);
        free(e->data);
        w->n--;
        return ramc_error(RAMC_ERR_INVALID_ARG, "st_writer_add_f32 '%s': NULL data", name);
    }
    for (size_t i = 0; i < n; i++) {
        if (stored_as == ST_F32)
            put_le32(e->data + 4 * i, f32_bits(data[i]));
        else if (stored_as == ST_F16)
            put_le16(e->data + 2 * i, f32_to_f16(data[i]));
        else
            put_le16(e->data + 2 * i, f32_to_bf16(data[i]));
    }
    return RAMC_OK;
}

ramc_status st_writer_set_metadata(st_writer *w, const char *key, const char *value) {
    if (!w || !key || !value) return ramc_error(RAMC_ERR_INVALID_ARG, "st_writer_set_metadata: NULL argument");
    for (int i = 0; i < w->n_meta; i++) {
        if (strcmp(w->meta_keys[i], key) == 0) {
            char *v = dup_str(value);
            if (!v) return RAMC_ERR_NOMEM;
            free(w->meta_values[i]);
            w->meta_values[i] = v;
            return RAMC_OK;
        }
    }
    if (w->n_meta == w->cap_meta) {
        int cap = w->cap_meta ? 2 * w->cap_meta : 8;
        char **k = realloc(w->meta_keys, sizeof(char *) * (size_t)cap);
        if (!k) return ramc_error(RAMC_ERR_NOMEM, "st_writer_set_metadata: out of memory");
        w->meta_keys = k;
        char **v = realloc(w->meta_values, sizeof(char *) * (size_t)cap);
        if (!v) return ramc_error(RAMC_ERR_NOMEM, "st_writer_set_metadata: out of memory");
        w->meta_values = v;
        w->cap_meta = cap;
    }
    char *k = dup_str(key), *v = dup_str(value);
    if (!k || !v) {
        free(k);
        free(v);
        return RAMC_ERR_NOMEM;
    }
    w->meta_keys[w->n_meta] = k;
    w->meta_values[w->n_meta] = v;
    w->n_meta++;
    return RAMC_OK;
}

/* A growable string for the JSON header. */
typedef struct {
    char *s;
    size_t len, cap;
    int failed;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n) {
    if (b->failed) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = realloc(b->s, cap);
        if (!p) {
            b->failed = 1;
            return;
        }
        b->s = p;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void sb_str(sbuf *b, const char *s) { sb_add(b, s, strlen(s)); }

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...) {
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0) sb_add(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

static void sb_json_string(sbuf *b, const char *s) {
    sb_str(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            char esc[2] = {'\\', (char)*p};
            sb_add(b, esc, 2);
        } else if (*p < 0x20) {
            sb_printf(b, "\\u%04x", *p);
        } else {
            sb_add(b, (const char *)p, 1);
        }
    }
    sb_str(b, "\"");
}

/* Integers are printed by hand rather than through cJSON, which would print
 * large offsets in exponent notation that strict readers refuse. Tensors are
 * laid out back to back: the reference safetensors reader rejects gaps, and
 * padding the header to 8 bytes already aligns the data block. */
static int build_header(const st_writer *w, sbuf *b) {
    sb_str(b, "{");
    int first = 1;
    if (w->n_meta) {
        sb_str(b, "\"__metadata__\":{");
        for (int i = 0; i < w->n_meta; i++) {
            if (i) sb_str(b, ",");
            sb_json_string(b, w->meta_keys[i]);
            sb_str(b, ":");
            sb_json_string(b, w->meta_values[i]);
        }
        sb_str(b, "}");
        first = 0;
    }
    uint64_t off = 0;
    for (int i = 0; i < w->n; i++) {
        const wentry *e = &w->entries[i];
        if (!first) sb_str(b, ",");
        first = 0;
        sb_json_string(b, e->name);
        sb_printf(b, ":{\"dtype\":\"%s\",\"shape\":[", st_dtype_name(e->dtype));
        for (int d = 0; d < e->ndim; d++) sb_printf(b, d ? ",%" PRId64 : "%" PRId64, e->shape[d]);
        sb_printf(b, "],\"data_offsets\":[%" PRIu64 ",", off);
        off += e->nbytes;
        sb_printf(b, "%" PRIu64 "]}", off);
    }
    sb_str(b, "}");
    while (!b->failed && b->len % 8) sb_str(b, " ");
    return !b->failed;
}

/* Makes the rename itself durable. Best effort: some file systems refuse
 * fsync on a directory, and the data is already safe either way. */
static void sync_parent_dir(const char *path) {
    const char *slash = strrchr(path, '/');
    char *dir;
    if (!slash) {
        dir = dup_str(".");
    } else {
        size_t n = slash == path ? 1 : (size_t)(slash - path);
        dir = malloc(n + 1);
        if (dir) {
            memcpy(dir, path, n);
            dir[n] = '\0';
        }
    }
    if (!dir) return;
    int fd = open(dir, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(dir);
}

static int write_all(FILE *fp, const void *p, size_t n) { return n == 0 || fwrite(p, 1, n, fp) == n; }

ramc_status st_writer_save(st_writer *w, const char *path) {
    if (!w || !path) return ramc_error(RAMC_ERR_INVALID_ARG, "st_writer_save: NULL argument");
    sbuf hdr = {0};
    if (!build_header(w, &hdr)) {
        free(hdr.s);
        return ramc_error(RAMC_ERR_NOMEM, "%s: out of memory building the header", path);
    }
    size_t plen = strlen(path);
    char *tmp = ramc_malloc(plen + 12, "temporary path");
    if (!tmp) {
        free(hdr.s);
        return RAMC_ERR_NOMEM;
    }
    /* A fresh, unpredictable name created with O_EXCL (mkstemp): a fixed
     * name could be a symlink planted by someone else, and fopen would
     * follow it. */
    snprintf(tmp, plen + 12, "%s.tmp.XXXXXX", path);

    ramc_status st = RAMC_OK;
    int tfd = mkstemp(tmp);
    FILE *fp = NULL;
    if (tfd >= 0) {
        mode_t mask = umask(0); /* mkstemp makes 0600; give the usual mode */
        umask(mask);
        if (fchmod(tfd, 0666 & ~mask) != 0 || !(fp = fdopen(tfd, "wb"))) {
            int e = errno;
            close(tfd);
            unlink(tmp);
            errno = e;
        }
    }
    if (!fp) {
        st = ramc_error(RAMC_ERR_IO, "%s: cannot create a temporary file beside it: %s", path,
                        strerror(errno));
        goto done;
    }
    unsigned char len8[8];
    put_le64(len8, hdr.len);
    int ok = write_all(fp, len8, 8) && write_all(fp, hdr.s, hdr.len);
    for (int i = 0; ok && i < w->n; i++) ok = write_all(fp, w->entries[i].data, w->entries[i].nbytes);
    ok = ok && fflush(fp) == 0 && fsync(fileno(fp)) == 0;
    int saved = errno;
    if (fclose(fp) != 0 && ok) {
        ok = 0;
        saved = errno;
    }
    if (!ok) {
        st = ramc_error(RAMC_ERR_IO, "%s: write failed: %s", path, strerror(saved));
        unlink(tmp);
        goto done;
    }
    if (rename(tmp, path) != 0) {
        st = ramc_error(RAMC_ERR_IO, "%s: cannot rename %s into place: %s", path, tmp, strerror(errno));
        unlink(tmp);
        goto done;
    }
    sync_parent_dir(path);
done:
    free(tmp);
    free(hdr.s);
    return st;
}
