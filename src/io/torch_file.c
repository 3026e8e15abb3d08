/* PyTorch zip checkpoints (see torch_file.h). */
#include "io/torch_file.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zip.h>

#include "io/pickle.h"

#define TORCH_MAX_PICKLE_BYTES (256u << 20)
#define TORCH_MAX_TENSORS (1 << 20)
#define TORCH_MAX_MODULE_DEPTH 64
/* deflate cannot expand more than ~1032:1; a larger claim is a zip bomb */
#define TORCH_MAX_RATIO 1100

/* What a state dict may name; nothing here runs code when "called". */
static const char *const allowed_globals[] = {
    "collections.OrderedDict",
    "torch._utils._rebuild_tensor_v2",
    "torch._utils._rebuild_parameter",
    "torch._utils._rebuild_parameter_with_state",
    "torch.FloatStorage", "torch.HalfStorage", "torch.BFloat16Storage", "torch.DoubleStorage",
    "torch.LongStorage", "torch.IntStorage", "torch.ShortStorage", "torch.CharStorage",
    "torch.ByteStorage", "torch.BoolStorage",
    /* TorchScript's typed containers: recorded, never tensors we read */
    "torch.jit._pickle.restore_type_tag", "torch.jit._pickle.build_intlist",
    "torch.jit._pickle.build_doublelist", "torch.jit._pickle.build_boollist",
    "torch.jit._pickle.build_tensorlist",
    NULL};

static const struct {
    const char *name;
    st_dtype dtype;
} storage_types[] = {
    {"torch.FloatStorage", ST_F32}, {"torch.HalfStorage", ST_F16},  {"torch.BFloat16Storage", ST_BF16},
    {"torch.DoubleStorage", ST_F64}, {"torch.LongStorage", ST_I64}, {"torch.IntStorage", ST_I32},
    {"torch.ShortStorage", ST_I16}, {"torch.CharStorage", ST_I8},   {"torch.ByteStorage", ST_U8},
    {"torch.BoolStorage", ST_BOOL},
};

typedef struct {
    char key[64];
    st_dtype dtype;
    int64_t numel;
    unsigned char *bytes; /* owned by the storage table until the end */
} storage;

typedef struct {
    st_file *f;
    zip_t *zip;
    char prefix[512]; /* "archive/" */
    storage *storages;
    int n_storages, cap_storages;
    int cap_tensors;
    char what[1200];
} reader;

int torch_is_archive(const unsigned char *data, size_t size) {
    return size >= 4 && data[0] == 'P' && data[1] == 'K' && data[2] == 3 && data[3] == 4;
}

int torch_is_legacy(const unsigned char *data, size_t size) {
    /* a bare pickle (PROTO 2) holding the magic number 0x1950a86a20f9469cfc6c */
    static const unsigned char magic[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46,
                                          0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};
    return size >= sizeof magic && memcmp(data, magic, sizeof magic) == 0;
}

static ramc_status zip_fail(const reader *r, const char *entry, const char *why) {
    return ramc_error(RAMC_ERR_FORMAT, "%s: %s%s%s", r->f->path, entry ? entry : "",
                      entry ? ": " : "", why);
}

/* The whole entry `name` into a new buffer of exactly `expect` bytes
 * (expect < 0: any size up to `limit`). Messages name it as `label` (NULL:
 * the entry's name). */
static ramc_status read_entry(reader *r, const char *name, const char *label, int64_t expect,
                              size_t limit, unsigned char **out, size_t *len) {
    const char *entry = name;
    if (label) name = label;
    *out = NULL;
    zip_stat_t zs;
    zip_stat_init(&zs);
    if (zip_stat(r->zip, entry, 0, &zs) != 0) return zip_fail(r, name, "missing from the archive");
    if (!(zs.valid & ZIP_STAT_SIZE) || !(zs.valid & ZIP_STAT_COMP_SIZE))
        return zip_fail(r, name, "entry without a size");
    if (expect >= 0 && zs.size != (uint64_t)expect) {
        char why[160];
        snprintf(why, sizeof why, "holds %llu bytes, the pickle's storage needs %lld",
                 (unsigned long long)zs.size, (long long)expect);
        return zip_fail(r, name, why);
    }
    if (zs.size > limit) return zip_fail(r, name, "entry too large");
    if (zs.size > (uint64_t)TORCH_MAX_RATIO * zs.comp_size + 4096)
        return zip_fail(r, name, "compression ratio beyond what deflate gives (a zip bomb?)");
    unsigned char *buf = malloc(zs.size ? (size_t)zs.size : 1);
    if (!buf) return ramc_error(RAMC_ERR_NOMEM, "%s: %s: out of memory (%llu bytes)", r->f->path,
                                name, (unsigned long long)zs.size);
    zip_file_t *zf = zip_fopen(r->zip, entry, 0);
    if (!zf) {
        free(buf);
        return zip_fail(r, name, zip_strerror(r->zip));
    }
    zip_int64_t got = zs.size ? zip_fread(zf, buf, zs.size) : 0;
    int bad = got < 0 || (uint64_t)got != zs.size;
    zip_fclose(zf);
    if (bad) {
        free(buf);
        return zip_fail(r, name, "truncated or corrupt entry");
    }
    *out = buf;
    *len = (size_t)zs.size;
    return RAMC_OK;
}

/* "<dir>/data.pkl": the one pickle that describes the tensors. */
static ramc_status find_prefix(reader *r) {
    zip_int64_t n = zip_get_num_entries(r->zip, 0);
    int found = 0;
    for (zip_int64_t i = 0; i < n; i++) {
        const char *name = zip_get_name(r->zip, (zip_uint64_t)i, 0);
        if (!name) continue;
        const char *slash = strchr(name, '/');
        if (!slash || strcmp(slash + 1, "data.pkl") != 0) continue;
        if (found++) return zip_fail(r, NULL, "more than one data.pkl in the archive");
        size_t len = (size_t)(slash + 1 - name);
        if (len >= sizeof r->prefix) return zip_fail(r, name, "archive folder name too long");
        memcpy(r->prefix, name, len);
        r->prefix[len] = '\0';
    }
    if (!found)
        return zip_fail(r, NULL, "a zip archive without data.pkl: not a PyTorch checkpoint");
    return RAMC_OK;
}

static ramc_status check_byteorder(reader *r) {
    char name[600];
    snprintf(name, sizeof name, "%sbyteorder", r->prefix);
    zip_stat_t zs;
    if (zip_stat(r->zip, name, 0, &zs) != 0) return RAMC_OK; /* older files: little-endian */
    unsigned char *text;
    size_t len;
    ramc_status st = read_entry(r, name, NULL, -1, 64, &text, &len);
    if (st) return st;
    int little = len >= 6 && memcmp(text, "little", 6) == 0;
    free(text);
    return little ? RAMC_OK : zip_fail(r, name, "a big-endian checkpoint; only little-endian is read");
}

/* ("storage", StorageType, key, location, numel) -> the storage's bytes. */
static ramc_status get_storage(reader *r, const char *tensor, const pv *pid, const storage **out) {
    const pv *t = pid->args;
    if (!t || t->kind != PV_TUPLE || t->n < 5 || t->items[0]->kind != PV_STR ||
        strcmp(t->items[0]->s, "storage") != 0 || t->items[1]->kind != PV_GLOBAL ||
        t->items[2]->kind != PV_STR || t->items[4]->kind != PV_INT)
        return zip_fail(r, NULL, "a persistent id that is not a storage reference");
    const pv *type = t->items[1], *key = t->items[2];
    int64_t numel = t->items[4]->i;
    if (key->len == 0 || key->len >= sizeof r->storages[0].key || strchr(key->s, '/') ||
        strstr(key->s, ".."))
        return zip_fail(r, NULL, "a storage key that is not a plain name");
    for (int i = 0; i < r->n_storages; i++)
        if (strcmp(r->storages[i].key, key->s) == 0) {
            *out = &r->storages[i];
            return RAMC_OK;
        }
    int found = -1;
    for (size_t i = 0; i < sizeof storage_types / sizeof storage_types[0]; i++)
        if (strcmp(type->s, storage_types[i].name) == 0) found = (int)i;
    if (found < 0) return zip_fail(r, NULL, "an unknown storage type");
    const st_dtype dtype = storage_types[found].dtype;
    const size_t esize = st_dtype_size(dtype);
    if (numel < 0 || (uint64_t)numel > (UINT64_C(1) << 40) / esize)
        return zip_fail(r, NULL, "a storage with an impossible element count");
    if (r->n_storages == r->cap_storages) {
        int cap = r->cap_storages ? 2 * r->cap_storages : 64;
        storage *s = realloc(r->storages, (size_t)cap * sizeof *s);
        if (!s) return ramc_error(RAMC_ERR_NOMEM, "%s: out of memory", r->f->path);
        r->storages = s;
        r->cap_storages = cap;
    }
    storage *s = &r->storages[r->n_storages];
    memset(s, 0, sizeof *s);
    snprintf(s->key, sizeof s->key, "%s", key->s);
    s->dtype = dtype;
    s->numel = numel;
    char entry[700], label[1400];
    snprintf(entry, sizeof entry, "%sdata/%s", r->prefix, key->s);
    snprintf(label, sizeof label, "tensor '%.600s' (%s)", tensor, entry);
    size_t len;
    ramc_status st = read_entry(r, entry, label, numel * (int64_t)esize, SIZE_MAX, &s->bytes, &len);
    if (st) return st;
    r->n_storages++;
    *out = s;
    return RAMC_OK;
}

/* The _rebuild_tensor_v2 call inside a value, if it is a tensor or a parameter. */
static const pv *tensor_call(const pv *v) {
    if (!v || v->kind != PV_CALL) return NULL;
    if (strcmp(v->fn->s, "torch._utils._rebuild_parameter") == 0 ||
        strcmp(v->fn->s, "torch._utils._rebuild_parameter_with_state") == 0)
        return v->args->n >= 1 ? tensor_call(v->args->items[0]) : NULL;
    return strcmp(v->fn->s, "torch._utils._rebuild_tensor_v2") == 0 ? v : NULL;
}

static int int_tuple(const pv *t, int64_t *out, int max) {
    if (!t || t->kind != PV_TUPLE || t->n > max) return -1;
    for (int i = 0; i < t->n; i++) {
        if (t->items[i]->kind != PV_INT) return -1;
        out[i] = t->items[i]->i;
    }
    return t->n;
}

/* Copies the strided view (offset, size, stride) of a storage into a new
 * contiguous tensor named `name`. */
static ramc_status add_tensor(reader *r, const char *name, const pv *call) {
    st_file *f = r->f;
    const pv *a = call->args;
    int64_t size[ST_MAX_DIMS], stride[ST_MAX_DIMS];
    if (a->n < 4 || a->items[0]->kind != PV_PERSID || a->items[1]->kind != PV_INT)
        return zip_fail(r, name, "a tensor record without storage, offset, size and stride");
    int ndim = int_tuple(a->items[2], size, ST_MAX_DIMS);
    if (ndim < 0 || int_tuple(a->items[3], stride, ST_MAX_DIMS) != ndim)
        return zip_fail(r, name, "a tensor with a bad size or stride (or too many dimensions)");
    const storage *s = NULL;
    ramc_status st = get_storage(r, name, a->items[0], &s);
    if (st) return st;
    const int64_t offset = a->items[1]->i;
    int64_t numel = 1, last = offset;
    int contiguous = 1;
    for (int d = ndim - 1, expect = 1; d >= 0; d--) {
        if (size[d] < 0 || stride[d] < 0 || size[d] > (INT64_C(1) << 40))
            return zip_fail(r, name, "a negative or huge size or stride");
        if (size[d] == 0) numel = 0;
        else {
            if (numel > (INT64_C(1) << 40) / size[d]) return zip_fail(r, name, "too many elements");
            numel *= size[d];
            last += (size[d] - 1) * stride[d];
        }
        if (size[d] != 1 && stride[d] != expect) contiguous = 0;
        expect *= size[d] ? size[d] : 1;
    }
    if (offset < 0 || (numel && last >= s->numel))
        return zip_fail(r, name, "a view that runs past the end of its storage");
    for (int i = 0; i < f->n_tensors; i++)
        if (strcmp(f->tensors[i].name, name) == 0) return zip_fail(r, name, "a second tensor of this name");
    if (f->n_tensors >= TORCH_MAX_TENSORS) return zip_fail(r, NULL, "too many tensors");
    if (f->n_tensors == r->cap_tensors) {
        int cap = r->cap_tensors ? 2 * r->cap_tensors : 256;
        st_tensor *t = realloc(f->tensors, (size_t)cap * sizeof *t);
        void **owned = realloc(f->owned, (size_t)cap * sizeof *owned);
        if (t) f->tensors = t;
        if (owned) f->owned = owned;
        if (!t || !owned) return ramc_error(RAMC_ERR_NOMEM, "%s: out of memory", f->path);
        r->cap_tensors = cap;
    }
    const size_t esize = st_dtype_size(s->dtype);
    unsigned char *data = malloc(numel ? (size_t)numel * esize : 1);
    char *tname = malloc(strlen(name) + 1);
    if (!data || !tname) {
        free(data);
        free(tname);
        return ramc_error(RAMC_ERR_NOMEM, "%s: out of memory (tensor '%s')", f->path, name);
    }
    strcpy(tname, name);
    if (contiguous) {
        if (numel) memcpy(data, s->bytes + (size_t)offset * esize, (size_t)numel * esize);
    } else {
        /* odometer over the indices, last dimension fastest */
        int64_t idx[ST_MAX_DIMS] = {0}, src = offset;
        for (int64_t e = 0; e < numel; e++) {
            memcpy(data + (size_t)e * esize, s->bytes + (size_t)src * esize, esize);
            for (int d = ndim - 1; d >= 0; d--) {
                src += stride[d];
                if (++idx[d] < size[d]) break;
                src -= stride[d] * size[d];
                idx[d] = 0;
            }
        }
    }
    st_tensor *t = &f->tensors[f->n_tensors];
    memset(t, 0, sizeof *t);
    t->name = tname;
    t->dtype = s->dtype;
    t->ndim = ndim;
    for (int d = 0; d < ndim; d++) t->shape[d] = size[d];
    t->numel = numel;
    t->nbytes = (size_t)numel * esize;
    t->data = data;
    f->owned[f->n_tensors] = data;
    f->n_tensors++;
    f->n_owned = f->n_tensors;
    return RAMC_OK;
}

/* Tensors of a state dict; "module." (DataParallel) is dropped from names. */
static ramc_status read_state_dict(reader *r, const pv *dict) {
    for (int i = 0; i + 1 < dict->n; i += 2) {
        const pv *key = dict->items[i], *call = tensor_call(dict->items[i + 1]);
        if (!call) continue; /* epoch counters, optimiser settings, ... */
        if (key->kind != PV_STR) return zip_fail(r, NULL, "a state dict key that is not a string");
        const char *name = strncmp(key->s, "module.", 7) == 0 ? key->s + 7 : key->s;
        ramc_status st = add_tensor(r, name, call);
        if (st) return st;
    }
    return RAMC_OK;
}

/* A TorchScript module: its attributes, submodules as dotted prefixes. */
static ramc_status read_module(reader *r, const pv *obj, const char *prefix, int depth) {
    if (depth > TORCH_MAX_MODULE_DEPTH)
        return zip_fail(r, NULL, "TorchScript modules nested more than 64 deep");
    const pv *attrs = obj->state;
    if (!attrs || attrs->kind != PV_DICT) return RAMC_OK;
    char name[1024];
    for (int i = 0; i + 1 < attrs->n; i += 2) {
        const pv *key = attrs->items[i], *value = attrs->items[i + 1];
        if (key->kind != PV_STR) continue;
        int n = snprintf(name, sizeof name, "%s%s", prefix, key->s);
        if (n < 0 || (size_t)n >= sizeof name - 1) return zip_fail(r, prefix, "a name too long");
        const pv *call = tensor_call(value);
        ramc_status st = RAMC_OK;
        if (call) st = add_tensor(r, name, call);
        else if (value->kind == PV_OBJECT) {
            strcat(name, ".");
            st = read_module(r, value, name, depth + 1);
        }
        if (st) return st;
    }
    return RAMC_OK;
}

ramc_status torch_read_archive(st_file *f, const unsigned char *data, size_t size) {
    reader r;
    memset(&r, 0, sizeof r);
    r.f = f;
    zip_error_t ze;
    zip_error_init(&ze);
    zip_source_t *src = zip_source_buffer_create(data, size, 0, &ze);
    if (src) {
        r.zip = zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &ze);
        if (!r.zip) zip_source_free(src);
    }
    if (!r.zip) {
        ramc_status st = ramc_error(RAMC_ERR_FORMAT, "%s: not a readable zip archive (%s)", f->path,
                                    zip_error_strerror(&ze));
        zip_error_fini(&ze);
        return st;
    }
    zip_error_fini(&ze);
    pickle *p = NULL;
    const pv *root = NULL;
    unsigned char *pkl = NULL;
    size_t pkl_len = 0;
    ramc_status st = find_prefix(&r);
    if (st == RAMC_OK) st = check_byteorder(&r);
    char name[600];
    snprintf(name, sizeof name, "%sdata.pkl", r.prefix);
    if (st == RAMC_OK) st = read_entry(&r, name, NULL, -1, TORCH_MAX_PICKLE_BYTES, &pkl, &pkl_len);
    snprintf(r.what, sizeof r.what, "%s: %s", f->path, name);
    pickle_options po = {allowed_globals, 1, r.what};
    if (st == RAMC_OK) st = pickle_load(pkl, pkl_len, &po, &p, &root);
    if (st == RAMC_OK) {
        const pv *sd = pv_dict_get(root, "state_dict");
        if (sd && sd->kind == PV_DICT) st = read_state_dict(&r, sd);
        else if (root->kind == PV_DICT) st = read_state_dict(&r, root);
        else if (root->kind == PV_OBJECT) st = read_module(&r, root, "", 0);
        else st = zip_fail(&r, name, "holds neither a state dict nor a TorchScript module");
    }
    if (st == RAMC_OK && f->n_tensors == 0) st = zip_fail(&r, name, "holds no tensors");
    for (int i = 0; i < r.n_storages; i++) free(r.storages[i].bytes);
    free(r.storages);
    pickle_free(p);
    free(pkl);
    zip_discard(r.zip);
    return st;
}
