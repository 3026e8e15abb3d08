/* The adapter's parameter table: building it from a file, saving it. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "core/half.h"
#include "io/safetensors.h"
#include "kernels/kernels.h"
#include "ram/ram.h"
#include "ram/tss.h"

#define VIS_PREFIX "clip_model.visual.transformer.resblocks."
#define TXT_PREFIX "clip_model.transformer.resblocks."

/* A table entry to be created: name, shape, trainable. */
typedef struct {
    char name[RAM_PARAM_NAME];
    int ndim;
    int64_t shape[4];
    int trainable;
} param_spec;

typedef struct {
    param_spec *items;
    int n, cap;
} spec_list;

static ramc_status spec_add(spec_list *l, int trainable, int ndim, int64_t d0, int64_t d1,
                            int64_t d2, int64_t d3, const char *fmt, ...)
    __attribute__((format(printf, 8, 9)));

static ramc_status spec_add(spec_list *l, int trainable, int ndim, int64_t d0, int64_t d1,
                            int64_t d2, int64_t d3, const char *fmt, ...) {
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 64;
        param_spec *items = realloc(l->items, (size_t)cap * sizeof *items);
        if (!items) return ramc_error(RAMC_ERR_NOMEM, "out of memory building the adapter table");
        l->items = items;
        l->cap = cap;
    }
    param_spec *p = &l->items[l->n++];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->name, sizeof p->name, fmt, ap);
    va_end(ap);
    p->ndim = ndim;
    int64_t dims[4] = {d0, d1, d2, d3};
    memcpy(p->shape, dims, sizeof dims);
    p->trainable = trainable;
    return RAMC_OK;
}

static int cmp_int(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

/* Collects the block indices named by tensors "<prefix>N.<suffix>". */
static ramc_status find_layers(const st_file *f, const char *prefix, const char *suffix,
                               int *layers, int *n) {
    *n = 0;
    size_t plen = strlen(prefix);
    for (int i = 0; i < f->n_tensors; i++) {
        const char *name = f->tensors[i].name;
        if (strncmp(name, prefix, plen) != 0) continue;
        char *end;
        long layer = strtol(name + plen, &end, 10);
        if (end == name + plen || *end != '.' || strcmp(end + 1, suffix) != 0) continue;
        if (*n == RAM_MAX_LAYERS)
            return ramc_error(RAMC_ERR_LIMIT, "%s: more than %d adapted blocks", f->path,
                              RAM_MAX_LAYERS);
        layers[(*n)++] = (int)layer;
    }
    qsort(layers, (size_t)*n, sizeof *layers, cmp_int);
    return RAMC_OK;
}

static ramc_status tensor_dims(const st_file *f, const char *name, int ndim, int64_t *dims) {
    const st_tensor *t = st_find(f, name);
    if (!t) return ramc_error(RAMC_ERR_MISMATCH, "%s: missing tensor '%s'", f->path, name);
    if (t->ndim != ndim)
        return ramc_error(RAMC_ERR_MISMATCH, "%s: tensor '%s' has %d dimensions, expected %d",
                          f->path, name, t->ndim, ndim);
    for (int d = 0; d < ndim; d++) dims[d] = t->shape[d];
    return RAMC_OK;
}

/* The list of every tensor the adapter must hold, from the layers present. */
static ramc_status build_specs(const ram_adapter *a, const ramc_clip_info *in, spec_list *l) {
    const int W = in->vision_width, Wt = in->text_width, H = a->hidden, k = a->gate_kernel;
    ramc_status st = RAMC_OK;
    st |= spec_add(l, 1, 0, 1, 0, 0, 0, "temperature");
    st |= spec_add(l, 1, 0, 1, 0, 0, 0, "temperature_loc");
    for (int j = 0; j < a->n_text_prompted; j++)
        st |= spec_add(l, 1, 2, a->n_txt_prompts, Wt, 0, 0, TXT_PREFIX "%d.deep_embeds",
                       a->text_layers[j]);
    for (int v = 0; v < a->n_vision_adapted; v++) {
        int i = a->vision_layers[v];
        st |= spec_add(l, 1, 2, a->n_vis_prompts, W, 0, 0, VIS_PREFIX "%d.adapt_embeds", i);
        const char *ca = VIS_PREFIX "%d.conv_adapter.";
        char p[RAM_PARAM_NAME];
        snprintf(p, sizeof p, ca, i);
        st |= spec_add(l, 1, 4, H, W, 1, 1, "%sconv_adapter_layers1.0.weight", p);
        st |= spec_add(l, 1, 4, H, W, 3, 3, "%sconv_adapter_layers2.0.weight", p);
        for (int s = 1; s <= 2; s++) {
            st |= spec_add(l, 1, 1, H, 0, 0, 0, "%sconv_adapter_layers%d.1.weight", p, s);
            st |= spec_add(l, 1, 1, H, 0, 0, 0, "%sconv_adapter_layers%d.1.bias", p, s);
            st |= spec_add(l, 0, 1, H, 0, 0, 0, "%sconv_adapter_layers%d.1.running_mean", p, s);
            st |= spec_add(l, 0, 1, H, 0, 0, 0, "%sconv_adapter_layers%d.1.running_var", p, s);
        }
        st |= spec_add(l, 1, 4, 2, 2, k, k, "%sconv_adapter_layers.weight", p);
        st |= spec_add(l, 1, 4, W, H, 1, 1, "%sconv_adapter_final.weight", p);
        static const char *norms[3] = {"adapter_norm_q1", "adapter_norm_q2", "adapter_norm_kv"};
        for (int n = 0; n < 3; n++) {
            st |= spec_add(l, 1, 1, H, 0, 0, 0, "%s%s.weight", p, norms[n]);
            st |= spec_add(l, 1, 1, H, 0, 0, 0, "%s%s.bias", p, norms[n]);
        }
    }
    return st ? RAMC_ERR_NOMEM : RAMC_OK;
}

ram_param *ram_adapter_find(const ram_adapter *a, const char *name) {
    for (int i = 0; i < a->n_params; i++)
        if (!strcmp(a->params[i].name, name)) return &a->params[i];
    return NULL;
}

int ram_vision_adapted_index(const ram_adapter *a, int layer) {
    for (int v = 0; v < a->n_vision_adapted; v++)
        if (a->vision_layers[v] == layer) return v;
    return -1;
}

int ram_text_prompted_index(const ram_adapter *a, int layer) {
    for (int j = 0; j < a->n_text_prompted; j++)
        if (a->text_layers[j] == layer) return j;
    return -1;
}

/* Points the named views (tss[], deep_prompts[], temperatures) into the table. */
static void bind_views(ram_adapter *a) {
    char n[RAM_PARAM_NAME + 64];
    a->temperature = ram_adapter_find(a, "temperature");
    a->temperature_loc = ram_adapter_find(a, "temperature_loc");
    for (int j = 0; j < a->n_text_prompted; j++) {
        snprintf(n, sizeof n, TXT_PREFIX "%d.deep_embeds", a->text_layers[j]);
        a->deep_prompts[j] = ram_adapter_find(a, n);
    }
    for (int v = 0; v < a->n_vision_adapted; v++) {
        ram_tss *t = &a->tss[v];
        int i = a->vision_layers[v];
#define BIND(field, suffix)                                                        \
    snprintf(n, sizeof n, VIS_PREFIX "%d.%s", i, suffix);                         \
    t->field = ram_adapter_find(a, n)
        BIND(prompts, "adapt_embeds");
        BIND(conv1_w, "conv_adapter.conv_adapter_layers1.0.weight");
        BIND(bn1_w, "conv_adapter.conv_adapter_layers1.1.weight");
        BIND(bn1_b, "conv_adapter.conv_adapter_layers1.1.bias");
        BIND(bn1_mean, "conv_adapter.conv_adapter_layers1.1.running_mean");
        BIND(bn1_var, "conv_adapter.conv_adapter_layers1.1.running_var");
        BIND(conv2_w, "conv_adapter.conv_adapter_layers2.0.weight");
        BIND(bn2_w, "conv_adapter.conv_adapter_layers2.1.weight");
        BIND(bn2_b, "conv_adapter.conv_adapter_layers2.1.bias");
        BIND(bn2_mean, "conv_adapter.conv_adapter_layers2.1.running_mean");
        BIND(bn2_var, "conv_adapter.conv_adapter_layers2.1.running_var");
        BIND(gate_w, "conv_adapter.conv_adapter_layers.weight");
        BIND(final_w, "conv_adapter.conv_adapter_final.weight");
        BIND(norm_q1_w, "conv_adapter.adapter_norm_q1.weight");
        BIND(norm_q1_b, "conv_adapter.adapter_norm_q1.bias");
        BIND(norm_q2_w, "conv_adapter.adapter_norm_q2.weight");
        BIND(norm_q2_b, "conv_adapter.adapter_norm_q2.bias");
        BIND(norm_kv_w, "conv_adapter.adapter_norm_kv.weight");
        BIND(norm_kv_b, "conv_adapter.adapter_norm_kv.bias");
#undef BIND
    }
}

/* num_batches_tracked of BN s (1 or 2) of vision block `layer`; 0 when absent. */
static ramc_status read_bn_count(const st_file *f, int layer, int s, int64_t *count) {
    char n[RAM_PARAM_NAME + 64];
    snprintf(n, sizeof n, VIS_PREFIX "%d.conv_adapter.conv_adapter_layers%d.1.num_batches_tracked",
             layer, s);
    const st_tensor *t = st_find(f, n);
    *count = 0;
    if (!t) return RAMC_OK;
    if (t->numel != 1)
        return ramc_error(RAMC_ERR_MISMATCH, "%s: tensor '%s' should be a scalar", f->path, n);
    return st_read_i64(f, t, count);
}

/* Reads the adaptation's shape (layers, prompt counts, widths) from the file. */
static ramc_status read_layout(const st_file *f, const ramc_clip_info *in, ram_adapter *a) {
    ramc_status st;
    int64_t d[4] = {0};
    if ((st = find_layers(f, VIS_PREFIX, "adapt_embeds", a->vision_layers, &a->n_vision_adapted)))
        return st;
    if ((st = find_layers(f, TXT_PREFIX, "deep_embeds", a->text_layers, &a->n_text_prompted)))
        return st;
    for (int v = 0; v < a->n_vision_adapted; v++)
        if (a->vision_layers[v] < 0 || a->vision_layers[v] >= in->vision_layers)
            return ramc_error(RAMC_ERR_MISMATCH, "%s: adapted vision block %d, the model has %d",
                              f->path, a->vision_layers[v], in->vision_layers);
    for (int j = 0; j < a->n_text_prompted; j++)
        if (a->text_layers[j] < 0 || a->text_layers[j] >= in->text_layers)
            return ramc_error(RAMC_ERR_MISMATCH, "%s: prompted text block %d, the model has %d",
                              f->path, a->text_layers[j], in->text_layers);
    char n[RAM_PARAM_NAME + 64];
    if (a->n_vision_adapted > 0) {
        int i = a->vision_layers[0];
        snprintf(n, sizeof n, VIS_PREFIX "%d.adapt_embeds", i);
        if ((st = tensor_dims(f, n, 2, d))) return st;
        a->n_vis_prompts = (int)d[0];
        snprintf(n, sizeof n, VIS_PREFIX "%d.conv_adapter.conv_adapter_layers1.0.weight", i);
        if ((st = tensor_dims(f, n, 4, d))) return st;
        a->hidden = (int)d[0];
        snprintf(n, sizeof n, VIS_PREFIX "%d.conv_adapter.conv_adapter_layers.weight", i);
        if ((st = tensor_dims(f, n, 4, d))) return st;
        a->gate_kernel = (int)d[2];
        if (a->hidden != in->embed_dim)
            return ramc_error(RAMC_ERR_MISMATCH,
                              "%s: adapter hidden width %d differs from the CLIP embed dim %d "
                              "(TSS cross-attends to the text features)",
                              f->path, a->hidden, in->embed_dim);
        if (a->gate_kernel % 2 == 0 || a->gate_kernel < 1)
            return ramc_error(RAMC_ERR_MISMATCH, "%s: gate kernel %d must be odd", f->path,
                              a->gate_kernel);
    }
    if (a->n_text_prompted > 0) {
        snprintf(n, sizeof n, TXT_PREFIX "%d.deep_embeds", a->text_layers[0]);
        if ((st = tensor_dims(f, n, 2, d))) return st;
        a->n_txt_prompts = (int)d[0];
        if (a->n_txt_prompts < 1 || a->n_txt_prompts >= in->context_length - 1)
            return ramc_error(RAMC_ERR_MISMATCH, "%s: %d text prompt tokens do not fit a %d-token "
                              "context", f->path, a->n_txt_prompts, in->context_length);
    }
    return RAMC_OK;
}

/* Allocates the table for a's layout (set before the call), zero-filled. */
static ramc_status adapter_alloc(ram_adapter *a, const ramc_clip_info *in, int with_grads,
                                 const char *what) {
    spec_list specs = {0};
    ramc_status st = build_specs(a, in, &specs);
    if (st != RAMC_OK) {
        free(specs.items);
        return st;
    }
    size_t total = 0;
    for (int i = 0; i < specs.n; i++) {
        int64_t numel = 1;
        for (int d = 0; d < specs.items[i].ndim; d++) numel *= specs.items[i].shape[d];
        total += (size_t)numel * ((with_grads && specs.items[i].trainable) ? 2 : 1);
    }
    a->storage = ramc_calloc(total, sizeof(float), what);
    a->params = ramc_calloc((size_t)specs.n, sizeof *a->params, what);
    if (!a->storage || !a->params) {
        free(specs.items);
        return RAMC_ERR_NOMEM;
    }
    float *next = a->storage;
    for (int i = 0; i < specs.n; i++) {
        const param_spec *s = &specs.items[i];
        ram_param *p = &a->params[a->n_params++];
        snprintf(p->name, sizeof p->name, "%s", s->name);
        p->ndim = s->ndim;
        memcpy(p->shape, s->shape, sizeof p->shape);
        p->numel = 1;
        for (int d = 0; d < s->ndim; d++) p->numel *= s->shape[d];
        p->trainable = s->trainable;
        p->data = next;
        next += p->numel;
        if (with_grads && s->trainable) {
            p->grad = next;
            next += p->numel;
        }
    }
    free(specs.items);
    bind_views(a);
    return RAMC_OK;
}

/* Finite is not enough for two kinds of value: a temperature divides the
 * logits (0 or below makes every score NaN in Sinkhorn, far from this
 * file), and a BatchNorm variance goes under a square root. */
static ramc_status check_param_range(const char *path, const ram_param *p) {
    size_t len = strlen(p->name);
    int temperature = !strcmp(p->name, "temperature") || !strcmp(p->name, "temperature_loc");
    int variance = len >= 11 && !strcmp(p->name + len - 11, "running_var");
    for (int64_t e = 0; (temperature || variance) && e < p->numel; e++) {
        if (temperature && !(p->data[e] > 0))
            return ramc_error(RAMC_ERR_NUMERIC, "%s: tensor '%s' is %g: a temperature must be positive",
                              path, p->name, (double)p->data[e]);
        if (variance && !(p->data[e] >= 0))
            return ramc_error(RAMC_ERR_NUMERIC,
                              "%s: tensor '%s': element %lld is %g: a variance cannot be negative", path,
                              p->name, (long long)e, (double)p->data[e]);
    }
    return RAMC_OK;
}

ramc_status ram_adapter_load(const char *path, const ramc_clip *clip, int with_grads,
                             ram_adapter **out) {
    *out = NULL;
    st_file *f = NULL;
    ram_adapter *a = calloc(1, sizeof *a);
    if (!a) return ramc_error(RAMC_ERR_NOMEM, "out of memory loading %s", path);
    ramc_status st = st_open(path, &f);
    if (st == RAMC_OK) st = read_layout(f, &clip->info, a);
    if (st == RAMC_OK) st = adapter_alloc(a, &clip->info, with_grads, path);
    for (int i = 0; st == RAMC_OK && i < a->n_params; i++) {
        ram_param *p = &a->params[i];
        st = st_load_f32(f, p->name, p->ndim, p->shape, p->data);
        for (int64_t e = 0; st == RAMC_OK && e < p->numel; e++)
            if (!isfinite(p->data[e]))
                st = ramc_error(RAMC_ERR_NUMERIC, "%s: tensor '%s' holds NaN or Inf", path, p->name);
        if (st == RAMC_OK) st = check_param_range(path, p);
    }
    for (int v = 0; st == RAMC_OK && v < a->n_vision_adapted; v++) {
        st = read_bn_count(f, a->vision_layers[v], 1, &a->tss[v].bn1_count);
        if (st == RAMC_OK) st = read_bn_count(f, a->vision_layers[v], 2, &a->tss[v].bn2_count);
    }
    st_close(f);
    if (st != RAMC_OK) {
        ram_adapter_free(a);
        return st;
    }
    *out = a;
    return RAMC_OK;
}

ram_config ram_config_preset(ram_preset preset, const ramc_clip_info *in) {
    /* The official configs name blocks of the 12-layer ViT-B/16: COCO adapts
     * vision and text blocks 9-11, NUS text blocks 6-11. On other depths the
     * same count of last blocks is used. */
    ram_config c;
    memset(&c, 0, sizeof c);
    c.n_vision_adapted = in->vision_layers < 3 ? in->vision_layers : 3;
    for (int i = 0; i < c.n_vision_adapted; i++)
        c.vision_layers[i] = in->vision_layers - c.n_vision_adapted + i;
    int text_last = preset == RAM_PRESET_NUS ? 6 : 3;
    c.n_text_prompted = in->text_layers < text_last ? in->text_layers : text_last;
    for (int j = 0; j < c.n_text_prompted; j++)
        c.text_layers[j] = in->text_layers - c.n_text_prompted + j;
    c.n_vis_prompts = 8;
    c.n_txt_prompts = 4;
    c.gate_kernel = 3;
    c.temperature_loc = preset == RAM_PRESET_NUS ? 2e-4f : 2e-3f;
    return c;
}

/* U(-bound, bound) rounded to fp16 as the official convert_weights does to
 * freshly initialised convolutions. */
static void init_uniform_f16(ram_param *p, float bound, ramc_rng *rng) {
    for (int64_t i = 0; i < p->numel; i++)
        p->data[i] = round_to_f16((float)((2.0 * rng_uniform(rng) - 1.0) * bound));
}

static void init_constant(ram_param *p, float value) {
    for (int64_t i = 0; i < p->numel; i++) p->data[i] = value;
}

ramc_status ram_adapter_create(const ramc_clip *clip, const ram_config *cfg, uint64_t seed,
                               int with_grads, ram_adapter **out) {
    const ramc_clip_info *in = &clip->info;
    *out = NULL;
    if (cfg->n_vision_adapted < 0 || cfg->n_vision_adapted > RAM_MAX_LAYERS ||
        cfg->n_text_prompted < 0 || cfg->n_text_prompted > RAM_MAX_LAYERS)
        return ramc_error(RAMC_ERR_INVALID_ARG, "adapter config: too many adapted blocks");
    for (int v = 0; v < cfg->n_vision_adapted; v++)
        if (cfg->vision_layers[v] < 0 || cfg->vision_layers[v] >= in->vision_layers ||
            (v && cfg->vision_layers[v] <= cfg->vision_layers[v - 1]))
            return ramc_error(RAMC_ERR_INVALID_ARG,
                              "adapter config: vision blocks must increase within 0..%d",
                              in->vision_layers - 1);
    for (int j = 0; j < cfg->n_text_prompted; j++)
        if (cfg->text_layers[j] < 0 || cfg->text_layers[j] >= in->text_layers ||
            (j && cfg->text_layers[j] <= cfg->text_layers[j - 1]))
            return ramc_error(RAMC_ERR_INVALID_ARG,
                              "adapter config: text blocks must increase within 0..%d",
                              in->text_layers - 1);
    if (cfg->gate_kernel < 1 || cfg->gate_kernel % 2 == 0 || cfg->n_vis_prompts < 0 ||
        cfg->n_txt_prompts < 1 || cfg->n_txt_prompts >= in->context_length - 1 ||
        !(cfg->temperature_loc > 0))
        return ramc_error(RAMC_ERR_INVALID_ARG,
                          "adapter config: need an odd gate kernel, 1..%d text prompts, "
                          "a positive local temperature",
                          in->context_length - 2);
    ram_adapter *a = calloc(1, sizeof *a);
    if (!a) return ramc_error(RAMC_ERR_NOMEM, "out of memory creating an adapter");
    a->n_vision_adapted = cfg->n_vision_adapted;
    memcpy(a->vision_layers, cfg->vision_layers, sizeof a->vision_layers);
    a->n_text_prompted = cfg->n_text_prompted;
    memcpy(a->text_layers, cfg->text_layers, sizeof a->text_layers);
    a->n_vis_prompts = cfg->n_vis_prompts;
    a->n_txt_prompts = cfg->n_txt_prompts;
    a->hidden = in->embed_dim;
    a->gate_kernel = cfg->gate_kernel;
    ramc_status st = adapter_alloc(a, &clip->info, with_grads, "new adapter");
    if (st != RAMC_OK) {
        ram_adapter_free(a);
        return st;
    }
    ramc_rng rng;
    rng_seed(&rng, seed);
    /* spec §2.6: prompts N(0, 0.02); convs kaiming-uniform(a=sqrt 5) = U(±1/sqrt(fan_in));
     * BatchNorm and LayerNorm affine 1, 0; running stats 0, 1. */
    for (int i = 0; i < a->n_params; i++) {
        ram_param *p = &a->params[i];
        const char *n = p->name;
        size_t len = strlen(n);
        if (strstr(n, "embeds")) {
            for (int64_t e = 0; e < p->numel; e++) p->data[e] = (float)(0.02 * rng_normal(&rng));
        } else if (p->ndim == 4) {
            int64_t fan_in = p->shape[1] * p->shape[2] * p->shape[3];
            init_uniform_f16(p, (float)(1.0 / sqrt((double)fan_in)), &rng);
        } else if (len > 12 && !strcmp(n + len - 12, "running_mean")) {
            init_constant(p, 0.0f);
        } else if ((len > 11 && !strcmp(n + len - 11, "running_var")) ||
                   (len > 7 && !strcmp(n + len - 7, ".weight"))) {
            init_constant(p, 1.0f);
        } else {
            init_constant(p, 0.0f);
        }
    }
    a->temperature->data[0] = 1.0f / expf(in->logit_scale);
    a->temperature_loc->data[0] = cfg->temperature_loc;
    *out = a;
    return RAMC_OK;
}

ramc_status ram_adapter_save(const ram_adapter *a, const char *path) {
    st_writer *w = st_writer_new();
    if (!w) return ramc_error(RAMC_ERR_NOMEM, "out of memory saving %s", path);
    ramc_status st = RAMC_OK;
    for (int i = 0; i < a->n_params && st == RAMC_OK; i++) {
        const ram_param *p = &a->params[i];
        st = st_writer_add_f32(w, p->name, ST_F32, p->ndim, p->shape, p->data);
    }
    char n[RAM_PARAM_NAME + 64];
    for (int v = 0; v < a->n_vision_adapted && st == RAMC_OK; v++)
        for (int s = 1; s <= 2 && st == RAMC_OK; s++) {
            snprintf(n, sizeof n,
                     VIS_PREFIX "%d.conv_adapter.conv_adapter_layers%d.1.num_batches_tracked",
                     a->vision_layers[v], s);
            int64_t count = s == 1 ? a->tss[v].bn1_count : a->tss[v].bn2_count;
            st = st_writer_add(w, n, ST_I64, 0, NULL, &count);
        }
    if (st == RAMC_OK) st = st_writer_save(w, path);
    st_writer_free(w);
    return st;
}

ramc_status ram_adapter_freeze(ram_adapter *a, int pack, int bf16) {
    if (!a || a->frozen || a->frozen_bf16 || !a->n_vision_adapted) return RAMC_OK;
    const ram_param *w0 = a->tss[0].conv2_w;
    const int H = (int)w0->shape[0], W = (int)w0->shape[1], k = (int)w0->shape[2];
    const size_t per = (size_t)H * W * k * k;
    if (bf16) {
        const size_t per1 = (size_t)H * W, all = per1 + per;
        a->frozen_bf16 = ramc_malloc(all * a->n_vision_adapted * sizeof(uint16_t), "bf16 TSS weights");
        float *wk = ramc_malloc(per * sizeof(float), "TSS weight reorder");
        if (!a->frozen_bf16 || !wk) {
            free(wk);
            return RAMC_ERR_NOMEM;
        }
        for (int v = 0; v < a->n_vision_adapted; v++) {
            uint16_t *w1 = a->frozen_bf16 + all * v, *w2 = w1 + per1;
            float_to_bf16(w1, a->tss[v].conv1_w->data, (long)per1); /* 1x1: [H, W] as stored */
            tss_reorder_conv_weight(wk, a->tss[v].conv2_w->data, H, W, k);
            float_to_bf16(w2, wk, (long)per);
            a->tss[v].conv1_wb = w1, a->tss[v].conv2_wb = w2;
        }
        free(wk);
        return RAMC_OK;
    }
    a->frozen = ramc_malloc(per * a->n_vision_adapted * sizeof(float), "frozen TSS weights");
    if (!a->frozen) return RAMC_ERR_NOMEM;
    for (int v = 0; v < a->n_vision_adapted; v++) {
        float *wk = a->frozen + per * v;
        tss_reorder_conv_weight(wk, a->tss[v].conv2_w->data, H, W, k);
        a->tss[v].conv2_wk = wk;
    }
    /* only matmul_forward reads the copies, so the packed ones may replace them */
    if (pack) kernels_freeze_weights(a->frozen, per * a->n_vision_adapted * sizeof(float), 0, 1);
    return RAMC_OK;
}

void ram_adapter_free(ram_adapter *a) {
    if (!a) return;
    if (a->frozen) kernels_forget_weights(a->frozen);
    free(a->frozen);
    free(a->frozen_bf16);
    free(a->storage);
    free(a->params);
    free(a);
}
