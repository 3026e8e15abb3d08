/* Contrastive CLIP pre-training from scratch (see pretrain.h, docs/pretrain.md).
 *
 * One step: images [B,3,S,S] and captions [B,L] -> both towers (training
 * forwards) -> symmetric InfoNCE -> backward into one flat gradient buffer
 * laid out as the weights -> AdamW over the flat arrays, the logit scale
 * kept apart (it lives outside the model's storage) and clamped to
 * [0, ln 100] after each step as open_clip does. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/clock.h"
#include "data/dataset.h"
#include "core/rng.h"
#include "data/loader.h"
#include "io/file.h"
#include "io/safetensors.h"
#include "image/image.h"
#include "train/clip_train.h"
#include "text/vocab_build.h"
#include "train/pretrain.h"

#define MAX_TSV_BYTES (1u << 30)
#define MAX_EVAL 1000
#define CKPT_KIND "ramc-pretrain-clip-checkpoint-v1"
#define PRETRAIN_MAX_LABELS 1024 /* label prompts ride along in every text batch */

pretrain_options pretrain_default_options(void) {
    pretrain_options o;
    memset(&o, 0, sizeof o);
    o.image_size = 64, o.patch_size = 8;
    o.vision_width = 128, o.vision_layers = 4, o.vision_heads = 0;
    o.text_width = 64, o.text_layers = 4, o.text_heads = 0;
    o.embed_dim = 64, o.context_length = 77;
    o.epochs = 2, o.batch = 128;
    o.lr = 5e-4, o.weight_decay = 0.1;
    o.beta1 = 0.9, o.beta2 = 0.98, o.eps = 1e-6;
    o.warmup_steps = -1;
    o.holdout = 0.1;
    o.workers = 1;
    o.label_weight = 1.0;
    return o;
}

/* ------------------------------------------------------------- pairs */

typedef struct {
    int n;
    char **paths, **captions; /* paths resolved against the TSV's folder */
    char *buf;
} pairs;

static void pairs_free(pairs *p) {
    for (int i = 0; i < p->n; i++) free(p->paths[i]);
    free(p->paths);
    free(p->captions);
    free(p->buf);
    memset(p, 0, sizeof *p);
}

static ramc_status read_pairs(const char *data, pairs *p, char *tsv, size_t tsv_size) {
    memset(p, 0, sizeof *p);
    struct stat sb;
    if (stat(data, &sb) != 0)
        return ramc_error(RAMC_ERR_IO, "%s: cannot open: %s", data, strerror(errno));
    if (S_ISDIR(sb.st_mode)) snprintf(tsv, tsv_size, "%s/pretrain.tsv", data);
    else snprintf(tsv, tsv_size, "%s", data);
    size_t len;
    ramc_status st = read_whole_file(tsv, MAX_TSV_BYTES, &p->buf, &len);
    if (st) return st;
    char dir[4200];
    file_parent_dir(tsv, dir, sizeof dir);
    int cap = 0, lineno = 0;
    for (char *line = p->buf; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        lineno++;
        size_t ll = strlen(line);
        if (ll && line[ll - 1] == '\r') line[--ll] = 0;
        char *next = nl ? nl + 1 : NULL;
        if (ll == 0) {
            line = next;
            continue;
        }
        char *tab = strchr(line, '\t');
        if (!tab || tab == line || !tab[1])
            return ramc_error(RAMC_ERR_FORMAT, "%s:%d: expected image_path<TAB>caption", tsv, lineno);
        *tab = 0;
        if (p->n == cap) {
            cap = cap ? 2 * cap : 1024;
            char **np = realloc(p->paths, (size_t)cap * sizeof *np);
            if (!np) return RAMC_ERR_NOMEM;
            p->paths = np;
            char **nc = realloc(p->captions, (size_t)cap * sizeof *nc);
            if (!nc) return RAMC_ERR_NOMEM;
            p->captions = nc;
        }
        size_t need = strlen(dir) + strlen(line) + 2;
        char *path = malloc(need);
        if (!path) return RAMC_ERR_NOMEM;
        if (line[0] == '/') snprintf(path, need, "%s", line);
        else snprintf(path, need, "%s/%s", dir, line);
        p->paths[p->n] = path;
        p->captions[p->n] = tab + 1;
        p->n++;
        line = next;
    }
    if (p->n == 0) return ramc_error(RAMC_ERR_FORMAT, "%s: no image<TAB>caption lines", tsv);
    return RAMC_OK;
}

static void shuffle(int *a, int n, uint64_t seed) {
    ramc_rng r;
    rng_seed(&r, seed);
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(rng_next(&r) % (uint64_t)(i + 1));
        int t = a[i];
        a[i] = a[j], a[j] = t;
    }
}

/* -------------------------------------------------------------- labels */

/* The labels of labels_file, their prompts and, per pair, which of them its
 * caption names: a label is named when its words occur in the caption as
 * whole words (ASCII case folded), so "red circle" is named by "a red circle
 * on stripes" and not by "a dark-red circles". */
typedef struct {
    class_list names;
    char **prompts;       /* [K] the template filled with each label */
    unsigned char *named; /* [pairs, K] */
    int K;
} label_set;

static void label_set_free(label_set *ls) {
    for (int k = 0; ls->prompts && k < ls->K; k++) free(ls->prompts[k]);
    free(ls->prompts);
    free(ls->named);
    class_list_free(&ls->names);
    memset(ls, 0, sizeof *ls);
}

static int is_word_byte(unsigned char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80;
}

static int names_label(const char *caption, const char *label) {
    const size_t n = strlen(label);
    if (n == 0) return 0;
    for (const char *c = caption; *c; c++) {
        if (c != caption && is_word_byte((unsigned char)c[-1])) continue;
        if (strncasecmp(c, label, n) == 0 && !is_word_byte((unsigned char)c[n])) return 1;
    }
    return 0;
}

static ramc_status fill_prompt(const char *tmpl, const char *label, char **out) {
    const char *hole = strstr(tmpl, "{}");
    if (!hole || strstr(hole + 2, "{}"))
        return ramc_error(RAMC_ERR_INVALID_ARG, "pretrain: the template '%s' needs exactly one {}",
                          tmpl);
    const size_t need = strlen(tmpl) - 2 + strlen(label) + 1;
    if (!(*out = malloc(need))) return RAMC_ERR_NOMEM;
    snprintf(*out, need, "%.*s%s%s", (int)(hole - tmpl), tmpl, label, hole + 2);
    return RAMC_OK;
}

static ramc_status label_set_load(const pretrain_options *o, const pairs *p, label_set *ls) {
    memset(ls, 0, sizeof *ls);
    ramc_status st = class_list_load(o->labels_file, &ls->names);
    if (st) return st;
    ls->K = ls->names.n;
    if (ls->K < 1) return ramc_error(RAMC_ERR_FORMAT, "%s: no labels", o->labels_file);
    if (ls->K > PRETRAIN_MAX_LABELS)
        return ramc_error(RAMC_ERR_LIMIT, "%s: %d labels, at most %d for pre-training",
                          o->labels_file, ls->K, PRETRAIN_MAX_LABELS);
    ls->prompts = calloc((size_t)ls->K, sizeof(char *));
    ls->named = malloc((size_t)p->n * ls->K);
    if (!ls->prompts || !ls->named) return RAMC_ERR_NOMEM;
    const char *tmpl = o->template_str ? o->template_str : "A photo of a {}.";
    for (int k = 0; k < ls->K; k++)
        if ((st = fill_prompt(tmpl, ls->names.names[k], &ls->prompts[k]))) return st;
    for (int i = 0; i < p->n; i++)
        for (int k = 0; k < ls->K; k++)
            ls->named[(size_t)i * ls->K + k] = (unsigned char)names_label(p->captions[i],
                                                                          ls->names.names[k]);
    return RAMC_OK;
}

/* --------------------------------------------------------------- state */

typedef struct {
    const pretrain_options *o;
    char out[4096];
    ramc_clip *m, *g;
    clip_param *tab;
    int n_params;
    size_t total;
    float *grad, *adam_m, *adam_v;
    float scale, scale_m, scale_v; /* the logit scale and its moments */
    int64_t step;
    uint64_t seed;
    int batch, n_train, vocab_size;
    int n_labels;        /* 0 without labels_file */
    double label_weight;
} state;

static void path_in(const state *s, const char *name, char *buf, size_t size) {
    snprintf(buf, size, "%s/%s", s->out, name);
}

static char *shape_string(const ramc_clip_info *in, char *buf, size_t size) {
    snprintf(buf, size, "image %d patch %d vision %dx%d/%d text %dx%d/%d embed %d context %d vocab %d",
             in->image_size, in->patch_size, in->vision_width, in->vision_layers, in->vision_heads,
             in->text_width, in->text_layers, in->text_heads, in->embed_dim, in->context_length,
             in->vocab_size);
    return buf;
}

/* What a checkpoint must share with the run that resumes it. */
static char *data_identity(const state *s, char *buf, size_t size) {
    int n = snprintf(buf, size, "seed %llu batch %d train %d", (unsigned long long)s->seed, s->batch,
                     s->n_train);
    if (s->n_labels && n > 0 && (size_t)n < size)
        snprintf(buf + n, size - (size_t)n, " labels %d weight %g", s->n_labels, s->label_weight);
    return buf;
}

static ramc_status save_checkpoint(state *s) {
    char path[4200], buf[512];
    path_in(s, "checkpoint.safetensors", path, sizeof path);
    st_writer *w = st_writer_new();
    if (!w) return RAMC_ERR_NOMEM;
    int64_t n = (int64_t)s->total, three = 3;
    float sc[3] = {s->scale, s->scale_m, s->scale_v};
    ramc_status st;
    if ((st = st_writer_add_f32(w, "params", ST_F32, 1, &n, s->m->storage)) ||
        (st = st_writer_add_f32(w, "adam_m", ST_F32, 1, &n, s->adam_m)) ||
        (st = st_writer_add_f32(w, "adam_v", ST_F32, 1, &n, s->adam_v)) ||
        (st = st_writer_add_f32(w, "logit_scale", ST_F32, 1, &three, sc)))
        goto done;
    if ((st = st_writer_set_metadata(w, "kind", CKPT_KIND)) ||
        (st = st_writer_set_metadata(w, "shape", shape_string(&s->m->info, buf, sizeof buf))))
        goto done;
    snprintf(buf, sizeof buf, "%lld", (long long)s->step);
    if ((st = st_writer_set_metadata(w, "step", buf))) goto done;
    if ((st = st_writer_set_metadata(w, "data", data_identity(s, buf, sizeof buf)))) goto done;
    st = st_writer_save(w, path);
done:
    st_writer_free(w);
    return st;
}

static ramc_status load_checkpoint(state *s, const char *path) {
    st_file *f = NULL;
    ramc_status st = st_open(path, &f);
    if (st) return st;
    char buf[512];
    const char *kind = st_metadata(f, "kind"), *shape = st_metadata(f, "shape");
    const char *step = st_metadata(f, "step"), *data = st_metadata(f, "data");
    if (!kind || strcmp(kind, CKPT_KIND) || !shape || !step || !data) {
        st = ramc_error(RAMC_ERR_FORMAT, "%s: not a pretrain-clip checkpoint", path);
        goto done;
    }
    if (strcmp(shape, shape_string(&s->m->info, buf, sizeof buf))) {
        st = ramc_error(RAMC_ERR_MISMATCH, "%s: model '%s', but the options give '%s'", path, shape,
                        buf);
        goto done;
    }
    if (strcmp(data, data_identity(s, buf, sizeof buf))) {
        st = ramc_error(RAMC_ERR_MISMATCH,
                        "%s: trained with '%s', but this run has '%s' (same data, --seed, "
                        "--batch and labels are needed to resume)", path, data, buf);
        goto done;
    }
    int64_t n = (int64_t)s->total, three = 3;
    float sc[3];
    if ((st = st_load_f32(f, "params", 1, &n, s->m->storage)) ||
        (st = st_load_f32(f, "adam_m", 1, &n, s->adam_m)) ||
        (st = st_load_f32(f, "adam_v", 1, &n, s->adam_v)) ||
        (st = st_load_f32(f, "logit_scale", 1, &three, sc)))
        goto done;
    s->scale = sc[0], s->scale_m = sc[1], s->scale_v = sc[2];
    char *end;
    long long v = strtoll(step, &end, 10);
    if (*end || v < 0) {
        st = ramc_error(RAMC_ERR_FORMAT, "%s: bad step '%s'", path, step);
        goto done;
    }
    s->step = v;
done:
    st_close(f);
    return st;
}

/* clip.safetensors in OpenAI / open_clip names, loadable by ramc_clip_load. */
static ramc_status save_model(const state *s, const char *path) {
    st_writer *w = st_writer_new();
    if (!w) return RAMC_ERR_NOMEM;
    ramc_status st = RAMC_OK;
    for (int i = 0; i < s->n_params && !st; i++)
        st = st_writer_add_f32(w, s->tab[i].name, ST_F32, s->tab[i].ndim, s->tab[i].shape,
                               s->m->storage + s->tab[i].offset);
    char buf[64];
    if (!st) st = st_writer_add_f32(w, "logit_scale", ST_F32, 0, NULL, &s->scale);
    if (!st) st = st_writer_set_metadata(w, "format", "pt");
    snprintf(buf, sizeof buf, "%d", s->m->info.vision_heads);
    if (!st) st = st_writer_set_metadata(w, "vision_heads", buf);
    snprintf(buf, sizeof buf, "%d", s->m->info.text_heads);
    if (!st) st = st_writer_set_metadata(w, "text_heads", buf);
    if (!st) st = st_writer_set_metadata(w, "tokenizer", "vocab.json + merges.txt in this folder");
    if (!st) st = st_writer_save(w, path);
    st_writer_free(w);
    return st;
}

/* ---------------------------------------------------------- evaluation */

/* Normalised features of the held-out images and captions through model m
 * (images loaded with the test transform), then top-1 retrieval both ways.
 * A retrieved caption counts as correct when its text equals the query's
 * (synthetic captions repeat), likewise a retrieved image by its caption. */
static ramc_status evaluate(const ramc_clip *m, const pairs *p, const int *idx, int n,
                            const int32_t *tokens, int L, const ramc_loader_options *lo_in,
                            double *i2t, double *t2i, double *chance) {
    const int D = m->info.embed_dim, S = m->info.image_size, Bc = 64;
    ramc_status st;
    float *fi = ramc_malloc((size_t)n * D * sizeof(float), "evaluation");
    float *ft = ramc_malloc((size_t)n * D * sizeof(float), "evaluation");
    float *img = ramc_malloc((size_t)Bc * 3 * S * S * sizeof(float), "evaluation");
    int32_t *tk = ramc_malloc((size_t)Bc * L * sizeof(int32_t), "evaluation");
    int *items = ramc_malloc(Bc * sizeof(int), "evaluation");
    char *ok_i = ramc_calloc((size_t)n, 1, "evaluation");
    clip_vision_acts va = {0};
    clip_text_acts ta = {0};
    ramc_loader *ld = NULL;
    if (!fi || !ft || !img || !tk || !items || !ok_i) {
        st = RAMC_ERR_NOMEM;
        goto done;
    }
    if ((st = clip_vision_acts_alloc(&va, m, Bc)) || (st = clip_text_acts_alloc(&ta, m, Bc))) goto done;
    ramc_loader_options lo = *lo_in;
    lo.batch_size = Bc, lo.drop_last = 0, lo.on_error = LOADER_FATAL;
    if ((st = loader_new((const char *const *)p->paths, p->n, idx, n, &lo, 0, &ld))) goto done;
    int done_n = 0, cnt;
    while (!(st = loader_next_batch(ld, img, items, &cnt)) && cnt > 0) {
        if ((st = clip_vision_forward_train(m, &va, img, cnt, fi + (size_t)done_n * D))) goto done;
        done_n += cnt;
    }
    if (st) goto done;
    for (int i = 0; i < n; i += Bc) {
        int c = n - i < Bc ? n - i : Bc;
        for (int k = 0; k < c; k++)
            memcpy(tk + (size_t)k * L, tokens + (size_t)idx[i + k] * L, (size_t)L * sizeof(int32_t));
        if ((st = clip_text_forward_train(m, &ta, tk, c, ft + (size_t)i * D))) goto done;
    }
    for (int i = 0; i < n; i++) { /* normalise */
        double a = 0, b = 0;
        for (int d = 0; d < D; d++) a += (double)fi[i * D + d] * fi[i * D + d], b += (double)ft[i * D + d] * ft[i * D + d];
        a = 1 / fmax(sqrt(a), 1e-12), b = 1 / fmax(sqrt(b), 1e-12);
        for (int d = 0; d < D; d++) fi[i * D + d] *= (float)a, ft[i * D + d] *= (float)b;
    }
    int ci = 0, ct = 0, distinct = 0;
    for (int i = 0; i < n; i++) {
        int bi = 0, bt = 0;
        double si = -INFINITY, stt = -INFINITY;
        for (int j = 0; j < n; j++) {
            double dij = 0, dji = 0;
            for (int d = 0; d < D; d++) dij += (double)fi[i * D + d] * ft[j * D + d], dji += (double)ft[i * D + d] * fi[j * D + d];
            if (dij > si) si = dij, bi = j;
            if (dji > stt) stt = dji, bt = j;
        }
        const char *cap = p->captions[idx[i]];
        ci += !strcmp(p->captions[idx[bi]], cap);
        ct += !strcmp(p->captions[idx[bt]], cap);
        int first = 1;
        for (int j = 0; j < i && first; j++) first = strcmp(p->captions[idx[j]], cap) != 0;
        distinct += first;
    }
    *i2t = (double)ci / n, *t2i = (double)ct / n;
    /* a random ranking finds a caption equal to the query's with probability
     * (copies of it)/n; averaged over queries: sum over captions of k^2 / n^2 */
    double ch = 0;
    for (int i = 0; i < n; i++) {
        int k = 0;
        for (int j = 0; j < n; j++) k += !strcmp(p->captions[idx[j]], p->captions[idx[i]]);
        ch += (double)k / n;
    }
    *chance = ch / n;
    (void)distinct;
done:
    loader_free(ld);
    clip_vision_acts_free(&va);
    clip_text_acts_free(&ta);
    free(fi);
    free(ft);
    free(img);
    free(tk);
    free(items);
    free(ok_i);
    return st;
}

/* ------------------------------------------------------------ training */

static double lr_at(const pretrain_options *o, int64_t step, int64_t warmup, int64_t total) {
    /* open_clip cosine_lr: linear warm-up over `warmup` steps, then cosine to 0 */
    if (step < warmup) return o->lr * (double)(step + 1) / (double)warmup;
    double e = (double)(step - warmup), es = (double)(total - warmup);
    if (es <= 0) return o->lr;
    return 0.5 * (1.0 + cos(M_PI * e / es)) * o->lr;
}

static ramc_status adamw_step(state *s, double lr, float dscale) {
    const pretrain_options *o = s->o;
    for (size_t i = 0; i < s->total; i++)
        if (!isfinite(s->grad[i])) {
            for (int p = 0; p < s->n_params; p++)
                if (i >= s->tab[p].offset && i < s->tab[p].offset + s->tab[p].numel)
                    return ramc_error(RAMC_ERR_NUMERIC,
                                      "step %lld: gradient of '%s' is not finite (lower --lr?)",
                                      (long long)s->step + 1, s->tab[p].name);
        }
    if (!isfinite(dscale))
        return ramc_error(RAMC_ERR_NUMERIC, "step %lld: logit scale gradient is not finite",
                          (long long)s->step + 1);
    const int64_t t = s->step + 1;
    const double bc1 = 1.0 - pow(o->beta1, (double)t), bc2 = 1.0 - pow(o->beta2, (double)t);
    const float b1 = (float)o->beta1, b2 = (float)o->beta2, eps = (float)o->eps;
    const float step_size = (float)(lr / bc1), rbc2 = (float)(1.0 / sqrt(bc2));
    float *w = s->m->storage;
    for (int p = 0; p < s->n_params; p++) {
        const clip_param *e = &s->tab[p];
        const float decay = e->decay ? (float)(1.0 - lr * o->weight_decay) : 1.0f;
        for (size_t i = e->offset; i < e->offset + e->numel; i++) {
            float g = s->grad[i];
            s->adam_m[i] = b1 * s->adam_m[i] + (1 - b1) * g;
            s->adam_v[i] = b2 * s->adam_v[i] + (1 - b2) * g * g;
            w[i] = w[i] * decay - step_size * s->adam_m[i] / (sqrtf(s->adam_v[i]) * rbc2 + eps);
        }
    }
    s->scale_m = b1 * s->scale_m + (1 - b1) * dscale;
    s->scale_v = b2 * s->scale_v + (1 - b2) * dscale * dscale;
    s->scale -= step_size * s->scale_m / (sqrtf(s->scale_v) * rbc2 + eps);
    if (s->scale < 0) s->scale = 0;
    if (s->scale > CLIP_MAX_LOGIT_SCALE) s->scale = CLIP_MAX_LOGIT_SCALE;
    s->step = t;
    return RAMC_OK;
}

static ramc_status write_text(const char *path, const char *text) {
    return file_write_atomic(path, text, strlen(text));
}

ramc_status pretrain_clip(const pretrain_options *o, pretrain_result *res) {
    memset(res, 0, sizeof *res);
    res->i2t_top1 = res->t2i_top1 = -1;
    if (!o->data || !o->out_dir)
        return ramc_error(RAMC_ERR_INVALID_ARG, "pretrain: no data or output folder");
    if (o->epochs < 1 || o->batch < 2 || !(o->lr > 0) || o->weight_decay < 0 || o->holdout < 0 ||
        o->holdout >= 1)
        return ramc_error(RAMC_ERR_INVALID_ARG,
                          "pretrain: need epochs >= 1, batch >= 2, lr > 0, wd >= 0, holdout in [0,1)");
    state s = {.o = o, .seed = o->seed};
    snprintf(s.out, sizeof s.out, "%s", o->out_dir);
    if (mkdir(s.out, 0777) != 0 && errno != EEXIST)
        return ramc_error(RAMC_ERR_IO, "%s: cannot create: %s", s.out, strerror(errno));

    pairs p;
    char tsv[4200], path[4200], path2[4200];
    ramc_status st = read_pairs(o->data, &p, tsv, sizeof tsv);
    int *order = NULL, *train_idx = NULL, *eval_idx = NULL, *items = NULL;
    int32_t *tokens = NULL, *btok = NULL;
    float *images = NULL, *fi = NULL, *ft = NULL, *dfi = NULL, *dft = NULL;
    char **train_caps = NULL;
    label_set ls = {0};
    unsigned char *bpos = NULL;
    float *dfi_label = NULL;
    ramc_tokenizer *tok = NULL;
    ramc_loader *ld = NULL;
    ramc_clip *reloaded = NULL;
    clip_vision_acts va = {0};
    clip_text_acts ta = {0};
    if (st) goto done;
    res->n_pairs = p.n;

    /* held-out split: a seeded permutation; the last n_eval pairs are held out */
    int n_eval = (int)(p.n * o->holdout);
    if (n_eval > MAX_EVAL) n_eval = MAX_EVAL;
    const int n_train = p.n - n_eval;
    if (n_train < 2) {
        st = ramc_error(RAMC_ERR_INVALID_ARG, "%s: %d pairs leave %d for training; need 2", tsv, p.n,
                        n_train);
        goto done;
    }
    if (o->labels_file && (st = label_set_load(o, &p, &ls))) goto done;
    const int K = ls.K; /* 0 without labels */
    s.n_labels = K, s.label_weight = o->label_weight;
    order = malloc((size_t)p.n * sizeof(int));
    train_caps = malloc(((size_t)n_train + K) * sizeof(char *));
    if (!order || !train_caps) goto nomem;
    for (int i = 0; i < p.n; i++) order[i] = i;
    shuffle(order, p.n, o->seed ^ 0x5eedULL);
    train_idx = order, eval_idx = order + n_train;
    res->n_train = s.n_train = n_train, res->n_eval = n_eval;
    s.batch = o->batch < n_train ? o->batch : n_train;

    if (K) {
        for (int i = 0; i < n_train; i++)
            for (int k = 0; k < K; k++)
                if (ls.named[(size_t)train_idx[i] * K + k]) {
                    res->n_labelled++;
                    break;
                }
        res->n_labels = K;
        if (res->n_labelled == 0) {
            st = ramc_error(RAMC_ERR_FORMAT, "%s: no training caption of %s names one of its labels",
                            o->labels_file, tsv);
            goto done;
        }
    }

    /* the vocabulary of the training captions (and of the label prompts) */
    for (int i = 0; i < n_train; i++) train_caps[i] = p.captions[train_idx[i]];
    for (int k = 0; k < K; k++) train_caps[n_train + k] = ls.prompts[k];
    path_in(&s, "vocab.json", path, sizeof path);
    path_in(&s, "merges.txt", path2, sizeof path2);
    if ((st = vocab_build((const char *const *)train_caps, n_train + K, path, path2,
                          &s.vocab_size)))
        goto done;
    res->vocab_size = s.vocab_size;
    if ((st = ramc_tokenizer_load(s.out, &tok))) goto done;
    const int L = o->context_length;
    tokens = malloc((size_t)p.n * L * sizeof(int32_t));
    if (!tokens) goto nomem;
    for (int i = 0; i < p.n; i++)
        if ((st = ramc_tokenize(tok, p.captions[i], tokens + (size_t)i * L, L))) {
            st = ramc_error(st, "%s: caption %d ('%s'): %s", tsv, i + 1, p.captions[i], ramc_last_error());
            goto done;
        }

    /* the model, CLIP's initialisation; logit scale ln(1/0.07) */
    ramc_clip_info shape = {0};
    shape.image_size = o->image_size, shape.patch_size = o->patch_size;
    shape.vision_width = o->vision_width, shape.vision_layers = o->vision_layers;
    shape.vision_heads = o->vision_heads ? o->vision_heads : o->vision_width / 64;
    shape.vision_mlp = 4 * o->vision_width;
    shape.text_width = o->text_width, shape.text_layers = o->text_layers;
    shape.text_heads = o->text_heads ? o->text_heads : o->text_width / 64;
    shape.text_mlp = 4 * o->text_width;
    shape.context_length = L, shape.vocab_size = s.vocab_size, shape.embed_dim = o->embed_dim;
    if (shape.vision_heads < 1 || shape.text_heads < 1) {
        st = ramc_error(RAMC_ERR_INVALID_ARG, "pretrain: a width below 64 needs its heads given");
        goto done;
    }
    if ((st = clip_create_random(&shape, o->seed, &s.m))) goto done;
    s.tab = malloc((size_t)CLIP_MAX_PARAMS(s.m) * sizeof *s.tab);
    if (!s.tab) goto nomem;
    if ((st = clip_param_table(s.m, s.tab, &s.n_params, &s.total))) goto done;
    s.grad = ramc_calloc(s.total * 3, sizeof(float), "gradients and AdamW moments");
    if (!s.grad) goto nomem;
    s.adam_m = s.grad + s.total, s.adam_v = s.adam_m + s.total;
    if ((st = clip_shadow(s.m, s.grad, &s.g))) goto done;
    s.scale = logf(1.0f / 0.07f);
    if (o->resume && (st = load_checkpoint(&s, o->resume))) goto done;

    const int B = s.batch, S = o->image_size, D = o->embed_dim;
    const int64_t spe = n_train / B, total = spe * o->epochs;
    const int64_t warmup = o->warmup_steps >= 0 ? (o->warmup_steps ? o->warmup_steps : 1)
                                                : (total / 20 > 0 ? total / 20 : 1);
    /* the text batch is the B captions, then the K label prompts (if any) */
    const int BT = B + K;
    images = malloc((size_t)B * 3 * S * S * sizeof(float));
    btok = malloc((size_t)BT * L * sizeof(int32_t));
    items = malloc((size_t)B * sizeof(int));
    fi = malloc(((size_t)B * D * 3 + (size_t)BT * D * 2) * sizeof(float));
    if (!images || !btok || !items || !fi) goto nomem;
    dfi = fi + (size_t)B * D, dfi_label = dfi + (size_t)B * D;
    ft = dfi_label + (size_t)B * D, dft = ft + (size_t)BT * D;
    if (K) {
        if (!(bpos = malloc((size_t)B * K))) goto nomem;
        for (int k = 0; k < K; k++)
            if ((st = ramc_tokenize(tok, ls.prompts[k], btok + (size_t)(B + k) * L, L))) {
                st = ramc_error(st, "%s: label %d ('%s'): %s", o->labels_file, k + 1,
                                ls.names.names[k], ramc_last_error());
                goto done;
            }
    }
    if ((st = clip_vision_acts_alloc(&va, s.m, B)) || (st = clip_text_acts_alloc(&ta, s.m, BT)))
        goto done;

    ramc_loader_options lo = loader_default_options();
    lo.train = 0; /* the test transform: resize + centre crop, normalised with 0.5 as RAM */
    lo.augment.image_size = S;
    for (int c = 0; c < 3; c++) lo.augment.mean[c] = 0.5f, lo.augment.std[c] = 0.5f;
    lo.batch_size = B, lo.drop_last = 1, lo.workers = o->workers, lo.on_error = LOADER_FATAL;

    const double t0 = monotonic_seconds();
    int64_t images_done = 0;
    double first_epoch_loss = NAN, last_epoch_loss = NAN;
    int *eorder = malloc((size_t)n_train * sizeof(int));
    if (!eorder) goto nomem;
    while (s.step < total && !st) {
        const int epoch = (int)(s.step / spe); /* 0-based */
        const int64_t pos = s.step - (int64_t)epoch * spe; /* batches already done this epoch */
        memcpy(eorder, train_idx, (size_t)n_train * sizeof(int));
        shuffle(eorder, n_train, o->seed * 1000003ULL + (uint64_t)epoch + 1);
        const int start = (int)(pos * B);
        if ((st = loader_new((const char *const *)p.paths, p.n, eorder + start, n_train - start, &lo,
                             (uint64_t)epoch, &ld)))
            break;
        double loss_sum = 0;
        int loss_n = 0;
        int cnt;
        while (s.step < (int64_t)(epoch + 1) * spe) {
            if ((st = loader_next_batch(ld, images, items, &cnt))) break;
            if (cnt < B) break;
            for (int k = 0; k < B; k++)
                memcpy(btok + (size_t)k * L, tokens + (size_t)items[k] * L, (size_t)L * sizeof(int32_t));
            for (int k = 0; k < B && K; k++)
                memcpy(bpos + (size_t)k * K, ls.named + (size_t)items[k] * K, (size_t)K);
            double loss, label_loss = 0;
            float dscale, dscale_label = 0;
            int correct, labelled = 0, label_correct = 0;
            memset(s.grad, 0, s.total * sizeof(float));
            if ((st = clip_vision_forward_train(s.m, &va, images, B, fi)) ||
                (st = clip_text_forward_train(s.m, &ta, btok, BT, ft)) ||
                (st = clip_contrastive_loss(fi, ft, B, D, s.scale, &loss, dfi, dft, &dscale,
                                            &correct, NULL)))
                break;
            if (K) { /* + w * label loss: its gradients join the captions' */
                const float w = (float)o->label_weight;
                float *dlab = dft + (size_t)B * D;
                if ((st = clip_label_loss(fi, ft + (size_t)B * D, bpos, B, K, D, s.scale,
                                          &label_loss, dfi_label, dlab, &dscale_label, &labelled,
                                          &label_correct)))
                    break;
                for (size_t i = 0; i < (size_t)B * D; i++) dfi[i] += w * dfi_label[i];
                for (size_t i = 0; i < (size_t)K * D; i++) dlab[i] *= w;
                dscale += w * dscale_label;
            }
            if (!isfinite(loss) || !isfinite(label_loss)) {
                st = ramc_error(RAMC_ERR_NUMERIC, "step %lld: the loss is not finite (lower --lr?)",
                                (long long)s.step + 1);
                break;
            }
            if ((st = clip_vision_backward(s.m, &va, dfi, s.g)) ||
                (st = clip_text_backward(s.m, &ta, dft, s.g)))
                break;
            const double lr = lr_at(o, s.step, warmup, total);
            if ((st = adamw_step(&s, lr, dscale))) break;
            images_done += B;
            loss_sum += loss, loss_n++;
            pretrain_progress pg = {.step = s.step, .total_steps = total, .epoch = epoch + 1,
                                    .epochs = o->epochs, .loss = loss, .loss_avg = loss_sum / loss_n,
                                    .lr = lr, .logit_scale = s.scale,
                                    .images_per_s = images_done / (monotonic_seconds() - t0 + 1e-9),
                                    .batch_acc = (double)correct / B,
                                    .label_loss = label_loss,
                                    .label_acc = labelled ? (double)label_correct / labelled : 0};
            const int epoch_end = s.step == (int64_t)(epoch + 1) * spe;
            const int stop = (o->stop && *o->stop) || (o->max_steps && s.step >= o->max_steps);
            if (epoch_end || stop || (o->checkpoint_every && s.step % o->checkpoint_every == 0)) {
                if ((st = save_checkpoint(&s))) break;
                pg.checkpointed = 1;
            }
            pg.epoch_end = epoch_end;
            if (o->progress) o->progress(o->progress_user, &pg);
            if (stop) {
                res->interrupted = 1;
                break;
            }
        }
        loader_free(ld);
        ld = NULL;
        if (loss_n) {
            if (isnan(first_epoch_loss)) first_epoch_loss = loss_sum / loss_n;
            last_epoch_loss = loss_sum / loss_n;
        }
        if (res->interrupted) break;
    }
    free(eorder);
    if (st) goto done;
    res->steps = s.step;
    res->first_loss = first_epoch_loss, res->final_loss = last_epoch_loss;
    res->seconds = monotonic_seconds() - t0;
    res->images_per_s = images_done / (res->seconds + 1e-9);
    if (res->interrupted) goto done;

    /* the model, then retrieval through it as every other command loads it
     * (fp16-rounded like the official build_model) */
    path_in(&s, "clip.safetensors", path, sizeof path);
    if ((st = save_model(&s, path))) goto done;
    ramc_clip_params cp = ramc_clip_default_params();
    cp.vision_heads = shape.vision_heads, cp.text_heads = shape.text_heads;
    if ((st = ramc_clip_load(path, &cp, &reloaded))) goto done;
    if (n_eval > 0 &&
        (st = evaluate(reloaded, &p, eval_idx, n_eval, tokens, L, &lo, &res->i2t_top1,
                       &res->t2i_top1, &res->chance)))
        goto done;

    char text[16384], sh[512];
    snprintf(text, sizeof text,
             "{\"pairs\": %d, \"train\": %d, \"held_out\": %d, \"vocab_size\": %d, \"steps\": %lld, "
             "\"first_epoch_loss\": %.6f, \"final_epoch_loss\": %.6f, \"logit_scale\": %.6f, "
             "\"retrieval_i2t_top1\": %.6f, \"retrieval_t2i_top1\": %.6f, \"retrieval_chance\": %.6f, "
             "\"seconds\": %.1f, \"images_per_s\": %.2f, \"labels\": %d, \"labelled_pairs\": %d, "
             "\"label_weight\": %g}\n",
             p.n, n_train, n_eval, s.vocab_size, (long long)s.step, res->first_loss, res->final_loss,
             s.scale, res->i2t_top1, res->t2i_top1, res->chance, res->seconds, res->images_per_s,
             K, res->n_labelled, K ? o->label_weight : 0.0);
    path_in(&s, "metrics.json", path, sizeof path);
    if ((st = write_text(path, text))) goto done;
    snprintf(text, sizeof text,
             "CLIP pre-trained from scratch by `ramc pretrain-clip` on %s (%d pairs, %d held out).\n"
             "\n"
             "model      clip.safetensors, OpenAI / open_clip tensor names, float32, with logit_scale\n"
             "           (%s; vision heads %d, text heads %d: pass --vision-heads/--text-heads\n"
             "           where they differ from width/64)\n"
             "tokenizer  vocab.json + merges.txt (Hugging Face form): CLIP's byte-level BPE with the\n"
             "           merges learned on these captions only. Ids 0-511 are the byte symbols,\n"
             "           then one per merge; <|startoftext|> = %d and <|endoftext|> = %d are the two\n"
             "           largest ids, so EOT pooling by argmax works. Words outside the captions\n"
             "           still encode, byte by byte. Load with ramc_tokenizer_load(\"<this folder>\"),\n"
             "           `ramc tokenize --hf-vocab vocab.json --hf-merges merges.txt`, or\n"
             "           `ramc predict --vocab <this folder>`; ramc_tokenizer_load_for_model finds\n"
             "           them beside clip.safetensors. CLIP's own vocabulary does NOT fit this model.\n"
             "images     64x64 style inputs: resize + centre crop to %d, normalised with mean = std = 0.5\n"
             "           (RAM's test transform)\n"
             "metrics    metrics.json: loss, held-out retrieval top-1 (image->text %.3f, text->image\n"
             "           %.3f, chance %.3f)\n",
             tsv, p.n, n_eval, shape_string(&s.m->info, sh, sizeof sh), shape.vision_heads,
             shape.text_heads, s.vocab_size - 2, s.vocab_size - 1, S, res->i2t_top1, res->t2i_top1,
             res->chance);
    path_in(&s, "README.txt", path, sizeof path);
    st = write_text(path, text);
    goto done;
nomem:
    st = ramc_error(RAMC_ERR_NOMEM, "pretrain: out of memory");
done:
    loader_free(ld);
    clip_vision_acts_free(&va);
    clip_text_acts_free(&ta);
    ramc_clip_free(reloaded);
    ramc_clip_free(s.g);
    ramc_clip_free(s.m);
    ramc_tokenizer_free(tok);
    free(s.tab);
    free(s.grad);
    free(order);
    free(train_caps);
    label_set_free(&ls);
    free(bpos);
    free(tokens);
    free(btok);
    free(items);
    free(images);
    free(fi);
    pairs_free(&p);
    return st;
}
