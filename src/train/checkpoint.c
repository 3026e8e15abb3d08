/* Training checkpoints: save everything, load after checking everything. */
#include "train/checkpoint.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "io/safetensors.h"

#define VIS_PREFIX "clip_model.visual.transformer.resblocks."
#define CK_NAME (RAM_PARAM_NAME + 64)

static void bn_count_name(char *out, size_t size, const char *prefix, int layer, int s) {
    snprintf(out, size, "%s" VIS_PREFIX "%d.conv_adapter.conv_adapter_layers%d.1.num_batches_tracked",
             prefix, layer, s);
}

/* ------------------------------------------------------------------- save */

static ramc_status add_i64(st_writer *w, const char *name, int64_t n, const int64_t *v, int ndim) {
    int64_t shape[1] = {n};
    return st_writer_add(w, name, ST_I64, ndim, shape, v);
}

static ramc_status add_scalar(st_writer *w, const char *name, int64_t v) {
    return st_writer_add(w, name, ST_I64, 0, NULL, &v);
}

static ramc_status check_objects(const char *path, const ram_adapter *a, const ram_optimizer *opt,
                                 const ram_ema *ema) {
    for (int k = 0; k < opt->n_slots; k++) {
        const ram_optim_slot *s = &opt->slots[k];
        if (s->param >= a->n_params || strcmp(a->params[s->param].name, s->name) != 0 ||
            a->params[s->param].numel != s->numel)
            return ramc_error(RAMC_ERR_MISMATCH,
                              "%s: the optimiser's tensor '%s' does not match the adapter", path,
                              s->name);
    }
    ramc_status st = ema_check_layout(ema, a);
    if (st != RAMC_OK) return ramc_error_prefix(st, "%s", path);
    return RAMC_OK;
}

ramc_status checkpoint_save(const char *path, const ram_adapter *a, const ram_optimizer *opt,
                            const ram_ema *ema, const ramc_rng *rng, const ram_progress *progress,
                            const char *config_text) {
    if (!path || !a || !opt || !progress)
        return ramc_error(RAMC_ERR_INVALID_ARG, "checkpoint_save: NULL argument");
    ramc_status st = check_objects(path, a, opt, ema);
    if (st != RAMC_OK) return st;
    st_writer *w = st_writer_new();
    if (!w) return ramc_error(RAMC_ERR_NOMEM, "%s: out of memory", path);
    char n[CK_NAME];

    /* The adapter exactly as ram_adapter_save writes it, so the checkpoint
     * doubles as an adapter file. */
    for (int i = 0; i < a->n_params && st == RAMC_OK; i++) {
        const ram_param *p = &a->params[i];
        st = st_writer_add(w, p->name, ST_F32, p->ndim, p->shape, p->data);
    }
    for (int v = 0; v < a->n_vision_adapted && st == RAMC_OK; v++)
        for (int s = 1; s <= 2 && st == RAMC_OK; s++) {
            bn_count_name(n, sizeof n, "", a->vision_layers[v], s);
            st = add_scalar(w, n, s == 1 ? a->tss[v].bn1_count : a->tss[v].bn2_count);
        }

    for (int k = 0; k < opt->n_slots && st == RAMC_OK; k++) {
        const ram_optim_slot *s = &opt->slots[k];
        const ram_param *p = &a->params[s->param];
        if (s->buf) {
            snprintf(n, sizeof n, "optim.buf.%s", s->name);
            st = st_writer_add(w, n, ST_F32, p->ndim, p->shape, s->buf);
        } else {
            snprintf(n, sizeof n, "optim.m.%s", s->name);
            st = st_writer_add(w, n, ST_F32, p->ndim, p->shape, s->m);
            snprintf(n, sizeof n, "optim.v.%s", s->name);
            if (st == RAMC_OK) st = st_writer_add(w, n, ST_F32, p->ndim, p->shape, s->v);
        }
    }
    int64_t three[1] = {RAM_N_GROUPS};
    if (st == RAMC_OK) st = add_i64(w, "optim.step", RAM_N_GROUPS, opt->step, 1);
    if (st == RAMC_OK) st = st_writer_add(w, "optim.lr", ST_F64, 1, three, opt->lr);
    if (st == RAMC_OK) st = add_scalar(w, "optim.epoch", opt->epoch);

    if (ema) {
        for (int i = 0; i < a->n_params && st == RAMC_OK; i++) {
            const ram_param *p = &a->params[i];
            snprintf(n, sizeof n, "ema.%s", p->name);
            st = st_writer_add(w, n, ST_F32, p->ndim, p->shape, ema->data + ema->offset[i]);
        }
        for (int v = 0; v < a->n_vision_adapted && st == RAMC_OK; v++)
            for (int s = 1; s <= 2 && st == RAMC_OK; s++) {
                bn_count_name(n, sizeof n, "ema.", a->vision_layers[v], s);
                st = add_scalar(w, n, ema->bn_count[2 * v + s - 1]);
            }
        if (st == RAMC_OK) st = add_scalar(w, "ema.updates", ema->updates);
    }
    if (rng && st == RAMC_OK) {
        /* uint64 words stored bit for bit in an I64 tensor (safetensors has no
         * U64 in the readers we target). rng_normal keeps no cached value, so
         * the four words are the whole generator state. */
        int64_t words[4];
        memcpy(words, rng->s, sizeof words);
        st = add_i64(w, "rng.state", 4, words, 1);
    }
    if (st == RAMC_OK) st = add_scalar(w, "train.epoch", progress->epoch);
    if (st == RAMC_OK) st = add_scalar(w, "train.step_in_epoch", progress->step_in_epoch);
    if (st == RAMC_OK) st = add_scalar(w, "train.global_step", progress->global_step);
    if (st == RAMC_OK) st = st_writer_set_metadata(w, "format", RAMC_CHECKPOINT_FORMAT);
    if (st == RAMC_OK) st = st_writer_set_metadata(w, "version", RAMC_CHECKPOINT_VERSION);
    if (st == RAMC_OK && config_text) st = st_writer_set_metadata(w, "config", config_text);
    if (st == RAMC_OK) st = st_writer_save(w, path);
    else ramc_error_prefix(st, "%s", path);
    st_writer_free(w);
    return st;
}

/* ------------------------------------------------------------------- load */

/* One tensor the checkpoint must hold, and where it goes. */
typedef struct {
    char name[CK_NAME];
    st_dtype dtype;
    int ndim;
    int64_t shape[4];
    void *dst; /* float* (F32), int64_t* (I64) or double* (F64) */
    const st_tensor *t;
} ck_entry;

typedef struct {
    ck_entry *items;
    int n, cap;
} ck_list;

static ck_entry *ck_add(ck_list *l, st_dtype dtype, int ndim, const int64_t *shape, void *dst) {
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 128;
        ck_entry *items = realloc(l->items, (size_t)cap * sizeof *items);
        if (!items) return NULL;
        l->items = items;
        l->cap = cap;
    }
    ck_entry *e = &l->items[l->n++];
    memset(e, 0, sizeof *e);
    e->dtype = dtype;
    e->ndim = ndim;
    if (ndim) memcpy(e->shape, shape, (size_t)ndim * sizeof *shape);
    e->dst = dst;
    return e;
}

static void shape_str(char *out, size_t size, int ndim, const int64_t *shape) {
    size_t len = 0;
    len += (size_t)snprintf(out, size, "[");
    for (int d = 0; d < ndim && len < size; d++)
        len += (size_t)snprintf(out + len, size - len, d ? ",%lld" : "%lld", (long long)shape[d]);
    if (len < size) snprintf(out + len, size - len, "]");
}

/* Name, dtype and shape of one expected tensor; for floats also finiteness
 * (read into `scratch`, which holds the largest tensor). */
static ramc_status ck_validate(const st_file *f, ck_entry *e, float *scratch) {
    const st_tensor *t = st_find(f, e->name);
    if (!t) return ramc_error(RAMC_ERR_MISMATCH, "%s: missing tensor '%s'", f->path, e->name);
    if (t->dtype != e->dtype)
        return ramc_error(RAMC_ERR_MISMATCH, "%s: tensor '%s' is %s, expected %s", f->path, e->name,
                          st_dtype_name(t->dtype), st_dtype_name(e->dtype));
    int same = t->ndim == e->ndim;
    for (int d = 0; same && d < e->ndim; d++) same = t->shape[d] == e->shape[d];
    if (!same) {
        char got[128], want[128];
        shape_str(got, sizeof got, t->ndim, t->shape);
        shape_str(want, sizeof want, e->ndim, e->shape);
        return ramc_error(RAMC_ERR_MISMATCH, "%s: tensor '%s': shape %s, expected %s", f->path,
                          e->name, got, want);
    }
    if (e->dtype == ST_F32) {
        ramc_status st = st_read_f32(f, t, scratch);
        if (st != RAMC_OK) return st;
        for (int64_t i = 0; i < t->numel; i++)
            if (!isfinite(scratch[i]))
                return ramc_error(RAMC_ERR_NUMERIC, "%s: tensor '%s' holds NaN or Inf", f->path,
                                  e->name);
    }
    e->t = t;
    return RAMC_OK;
}

/* Little-endian F64 (safetensors byte order; this code base assumes a
 * little-endian host like the rest of the readers). Not necessarily aligned. */
static void read_f64(const st_tensor *t, double *out) {
    memcpy(out, t->data, (size_t)t->numel * sizeof(double));
}

static int is_known_tensor(const ck_list *l, const char *name, int have_ema, int have_rng) {
    for (int i = 0; i < l->n; i++)
        if (!strcmp(l->items[i].name, name)) return 1;
    /* State the caller chose not to restore is allowed to be present. */
    if (!have_ema && !strncmp(name, "ema.", 4)) return 1;
    if (!have_rng && !strcmp(name, "rng.state")) return 1;
    return 0;
}

/* A file written by checkpoint_save, in a version this build reads; CLIP
 * weights or an adapter file given as a checkpoint end here. */
static ramc_status check_identity(const st_file *f, const char *path) {
    const char *format = st_metadata(f, "format"), *version = st_metadata(f, "version");
    if (!format || strcmp(format, RAMC_CHECKPOINT_FORMAT) != 0)
        return ramc_error(RAMC_ERR_FORMAT, "%s: not a ramc training checkpoint (metadata format "
                          "is '%s', expected '%s'; CLIP weights and adapters cannot be resumed)",
                          path, format ? format : "(none)", RAMC_CHECKPOINT_FORMAT);
    if (!version || strcmp(version, RAMC_CHECKPOINT_VERSION) != 0)
        return ramc_error(RAMC_ERR_FORMAT, "%s: checkpoint version '%s', this build reads '%s'",
                          path, version ? version : "(none)", RAMC_CHECKPOINT_VERSION);
    return RAMC_OK;
}

ramc_status checkpoint_load(const char *path, ram_adapter *a, ram_optimizer *opt, ram_ema *ema,
                            ramc_rng *rng, ram_progress *progress) {
    if (!path || !a || !opt || !progress)
        return ramc_error(RAMC_ERR_INVALID_ARG, "checkpoint_load: NULL argument");
    ramc_status st = check_objects(path, a, opt, ema);
    if (st != RAMC_OK) return st;
    st_file *f = NULL;
    if ((st = st_open(path, &f)) != RAMC_OK) return st;
    if ((st = check_identity(f, path)) != RAMC_OK) {
        st_close(f);
        return st;
    }

    /* Integer and double state is staged here and committed at the end. */
    int nv = a->n_vision_adapted;
    int64_t *bn = calloc((size_t)(4 * nv + 1), sizeof *bn); /* live [2nv], EMA [2nv] */
    int64_t steps[RAM_N_GROUPS] = {0}, opt_epoch = 0, ema_updates = 0, words[4] = {0};
    int64_t prog[3] = {0};
    double lrs[RAM_N_GROUPS] = {0};
    ck_list l = {0};
    int64_t max_numel = 1;
    char n[CK_NAME];
    ck_entry *e;
    int nomem = !bn;
    static const int64_t three[1] = {RAM_N_GROUPS}, four[1] = {4};

#define ADD(dtype, ndim, shape, dst, ...)                                          \
    do {                                                                           \
        e = nomem ? NULL : ck_add(&l, dtype, ndim, shape, dst);                    \
        if (!e) nomem = 1;                                                         \
        else snprintf(e->name, sizeof e->name, __VA_ARGS__);                       \
    } while (0)

    for (int i = 0; i < a->n_params; i++) {
        ram_param *p = &a->params[i];
        if (p->numel > max_numel) max_numel = p->numel;
        ADD(ST_F32, p->ndim, p->shape, p->data, "%s", p->name);
    }
    for (int v = 0; v < nv; v++)
        for (int s = 1; s <= 2; s++) {
            bn_count_name(n, sizeof n, "", a->vision_layers[v], s);
            ADD(ST_I64, 0, NULL, &bn[2 * v + s - 1], "%s", n);
        }
    for (int k = 0; k < opt->n_slots; k++) {
        ram_optim_slot *s = &opt->slots[k];
        const ram_param *p = &a->params[s->param];
        if (s->buf) {
            ADD(ST_F32, p->ndim, p->shape, s->buf, "optim.buf.%s", s->name);
        } else {
            ADD(ST_F32, p->ndim, p->shape, s->m, "optim.m.%s", s->name);
            ADD(ST_F32, p->ndim, p->shape, s->v, "optim.v.%s", s->name);
        }
    }
    ADD(ST_I64, 1, three, steps, "optim.step");
    ADD(ST_F64, 1, three, lrs, "optim.lr");
    ADD(ST_I64, 0, NULL, &opt_epoch, "optim.epoch");
    if (ema) {
        for (int i = 0; i < a->n_params; i++) {
            ram_param *p = &a->params[i];
            ADD(ST_F32, p->ndim, p->shape, ema->data + ema->offset[i], "ema.%s", p->name);
        }
        for (int v = 0; v < nv; v++)
            for (int s = 1; s <= 2; s++) {
                bn_count_name(n, sizeof n, "ema.", a->vision_layers[v], s);
                ADD(ST_I64, 0, NULL, &bn[2 * nv + 2 * v + s - 1], "%s", n);
            }
        ADD(ST_I64, 0, NULL, &ema_updates, "ema.updates");
    }
    if (rng) ADD(ST_I64, 1, four, words, "rng.state");
    ADD(ST_I64, 0, NULL, &prog[0], "train.epoch");
    ADD(ST_I64, 0, NULL, &prog[1], "train.step_in_epoch");
    ADD(ST_I64, 0, NULL, &prog[2], "train.global_step");
#undef ADD

    float *scratch = nomem ? NULL : ramc_malloc((size_t)max_numel * sizeof(float), path);
    if (nomem || !scratch) st = ramc_error(RAMC_ERR_NOMEM, "%s: out of memory loading", path);

    /* Pass 1: everything expected is there, well-formed and finite, and
     * nothing unexpected is (a checkpoint of a bigger adapter must not load
     * silently into a smaller one). */
    for (int i = 0; st == RAMC_OK && i < l.n; i++) st = ck_validate(f, &l.items[i], scratch);
    for (int i = 0; st == RAMC_OK && i < f->n_tensors; i++)
        if (!is_known_tensor(&l, f->tensors[i].name, ema != NULL, rng != NULL))
            st = ramc_error(RAMC_ERR_MISMATCH,
                            "%s: tensor '%s' has no place in this adapter/optimiser (checkpoint "
                            "of a different configuration?)",
                            path, f->tensors[i].name);
    /* Integers read now (staging only) so their ranges can be checked. */
    for (int i = 0; st == RAMC_OK && i < l.n; i++) {
        ck_entry *c = &l.items[i];
        if (c->dtype == ST_I64) st = st_read_i64(f, c->t, (int64_t *)c->dst);
        else if (c->dtype == ST_F64) read_f64(c->t, (double *)c->dst);
    }
    for (int i = 0; st == RAMC_OK && i < 4 * nv; i++)
        if (bn[i] < 0) st = ramc_error(RAMC_ERR_FORMAT, "%s: negative BatchNorm count", path);
    for (int g = 0; st == RAMC_OK && g < RAM_N_GROUPS; g++)
        if (steps[g] < 0 || !isfinite(lrs[g]) || lrs[g] < 0)
            st = ramc_error(RAMC_ERR_FORMAT, "%s: tensor 'optim.step'/'optim.lr': group %s has "
                            "step %lld, lr %g", path, ram_group_name((ram_group)g),
                            (long long)steps[g], lrs[g]);
    if (st == RAMC_OK && (prog[0] < 0 || prog[1] < 0 || prog[2] < 0 || ema_updates < 0))
        st = ramc_error(RAMC_ERR_FORMAT, "%s: negative epoch or step counter", path);
    if (st == RAMC_OK && rng && !(words[0] | words[1] | words[2] | words[3]))
        st = ramc_error(RAMC_ERR_FORMAT, "%s: tensor 'rng.state' is all zero (not a valid "
                        "xoshiro256** state)", path);

    /* Pass 2: commit. Reads of validated tensors do not fail. */
    for (int i = 0; st == RAMC_OK && i < l.n; i++)
        if (l.items[i].dtype == ST_F32) st = st_read_f32(f, l.items[i].t, (float *)l.items[i].dst);
    if (st == RAMC_OK) {
        for (int v = 0; v < nv; v++) {
            a->tss[v].bn1_count = bn[2 * v];
            a->tss[v].bn2_count = bn[2 * v + 1];
        }
        memcpy(opt->step, steps, sizeof steps);
        memcpy(opt->lr, lrs, sizeof lrs);
        opt->epoch = opt_epoch;
        if (ema) {
            memcpy(ema->bn_count, bn + 2 * nv, (size_t)(2 * nv) * sizeof *bn);
            ema->updates = ema_updates;
        }
        if (rng) memcpy(rng->s, words, sizeof words);
        progress->epoch = prog[0];
        progress->step_in_epoch = prog[1];
        progress->global_step = prog[2];
    }
    free(scratch);
    free(l.items);
    free(bn);
    st_close(f);
    return st;
}

ramc_status checkpoint_read_config(const char *path, char **config_text) {
    *config_text = NULL;
    st_file *f = NULL;
    ramc_status st = st_open(path, &f);
    if (st != RAMC_OK) return st;
    if ((st = check_identity(f, path)) != RAMC_OK) {
        st_close(f);
        return st;
    }
    const char *c = st_metadata(f, "config");
    if (!c)
        st = ramc_error(RAMC_ERR_FORMAT, "%s: a ramc checkpoint without its training configuration "
                        "(no 'config' in the metadata): cannot resume from it", path);
    else {
        size_t len = strlen(c);
        *config_text = ramc_malloc(len + 1, path);
        if (*config_text) memcpy(*config_text, c, len + 1);
        else st = RAMC_ERR_NOMEM;
    }
    st_close(f);
    return st;
}
