/* The label-cache scenario (label_cache_10k): the random model written to
 * files, so that it has what the cache keys on, and N labels encoded through
 * the cache cold, then warm, each with a model loaded afresh. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/bench_internal.h"
#include "core/rng.h"
#include "io/safetensors.h"
#include "train/clip_train.h"

/* Removes dir and what is under it, two levels deep (the label cache's
 * layout: dir/<model key>/<entry>); best effort. */
static void remove_tree(const char *dir, int depth) {
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[4600];
    while (d && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(path, sizeof path, "%.4300s/%.255s", dir, e->d_name);
        if (unlink(path) != 0 && depth > 0) remove_tree(path, depth - 1);
    }
    if (d) closedir(d);
    rmdir(dir);
}

/* The random CLIP as a safetensors file (float16, as the loader rounds the
 * weights to anyway; OpenAI names, head counts
 * in the metadata), so that it has what the label cache keys on: a file's
 * bytes. */
static ramc_status write_clip(const ramc_clip *m, const char *path) {
    int n = 0;
    clip_param *tab = ramc_malloc((size_t)CLIP_MAX_PARAMS(m) * sizeof *tab, "bench model file");
    st_writer *w = st_writer_new();
    ramc_status st = tab && w ? clip_param_table(m, tab, &n, NULL) : RAMC_ERR_NOMEM;
    for (int i = 0; i < n && st == RAMC_OK; i++)
        st = st_writer_add_f32(w, tab[i].name, ST_F16, tab[i].ndim, tab[i].shape, tab[i].data);
    if (st == RAMC_OK) st = st_writer_add_f32(w, "logit_scale", ST_F32, 0, NULL, &m->info.logit_scale);
    char heads[32];
    snprintf(heads, sizeof heads, "%d", m->info.vision_heads);
    if (st == RAMC_OK) st = st_writer_set_metadata(w, "vision_heads", heads);
    snprintf(heads, sizeof heads, "%d", m->info.text_heads);
    if (st == RAMC_OK) st = st_writer_set_metadata(w, "text_heads", heads);
    if (st == RAMC_OK) st = st_writer_save(w, path);
    if (w) st_writer_free(w);
    free(tab);
    return st;
}

/* Encodes all c->C names through the cache in sets of at most
 * RAMC_MAX_LABELS, with a model loaded afresh (a new process has no cache
 * key yet: hashing the weights file is part of its cost); returns the hits. */
static ramc_status encode_through_cache(bench_ctx *c, double *seconds, int *hits) {
    ramc_model *model = NULL;
    ramc_status st = ramc_model_load(c->clip_path, c->adapter_path, &c->load_params, &model);
    double t0 = monotonic_seconds();
    *hits = 0;
    for (int first = 0; first < c->C && st == RAMC_OK; first += RAMC_MAX_LABELS) {
        const int n = c->C - first < RAMC_MAX_LABELS ? c->C - first : RAMC_MAX_LABELS;
        ramc_labels *lb = NULL;
        st = ramc_labels_encode_cached(model, NULL, (const char *const *)c->names + first, n, NULL,
                                       c->cache, &lb);
        *hits += ramc_labels_cache_hits(lb);
        ramc_labels_free(lb);
    }
    *seconds = monotonic_seconds() - t0;
    ramc_model_free(model);
    return st;
}

/* The label-cache scenario's files: the random CLIP and a COCO adapter in a
 * fresh folder, and c->C distinct label names ("item 0", "item 1", ...). */
ramc_status label_cache_setup(bench_ctx *c, const ramc_clip *m, const bench_options *opt,
                                     uint64_t seed) {
    const char *tmp = opt->tmp_dir && *opt->tmp_dir ? opt->tmp_dir : "/tmp";
    snprintf(c->dir, sizeof c->dir, "%.4000s/ramc-bench-XXXXXX", tmp);
    if (!mkdtemp(c->dir)) {
        ramc_status st = ramc_error(RAMC_ERR_IO, "bench: cannot create a folder under %s", tmp);
        c->dir[0] = 0;
        return st;
    }
    snprintf(c->clip_path, sizeof c->clip_path, "%s/clip.safetensors", c->dir);
    snprintf(c->adapter_path, sizeof c->adapter_path, "%s/adapter.safetensors", c->dir);
    snprintf(c->cache, sizeof c->cache, "%s/cache", c->dir);
    ram_config cfg = ram_config_preset(RAM_PRESET_COCO, &m->info);
    ramc_status st = ram_adapter_create(m, &cfg, seed, 0, &c->a);
    if (st == RAMC_OK) st = ram_adapter_save(c->a, c->adapter_path);
    if (st == RAMC_OK) st = write_clip(m, c->clip_path);
    if (st != RAMC_OK) return st;
    c->load_params = ramc_clip_default_params();
    c->load_params.bf16 = opt->bf16;
    c->load_params.pack_weights = opt->frozen; /* as the bench's own model */
    if (!(c->names = ramc_calloc((size_t)c->C, sizeof *c->names, "bench label names")))
        return RAMC_ERR_NOMEM;
    for (int i = 0; i < c->C; i++) {
        char name[32];
        snprintf(name, sizeof name, "item %d", i);
        if (!(c->names[i] = ramc_malloc(strlen(name) + 1, "bench label name"))) return RAMC_ERR_NOMEM;
        memcpy(c->names[i], name, strlen(name) + 1);
    }
    return RAMC_OK;
}

ramc_status label_cache_run(bench_ctx *c) {
    /* each run starts from an empty cache; the model loads are not timed */
    remove_tree(c->cache, 1);
    ramc_status st = encode_through_cache(c, &c->phase[0], &c->cold_hits);
    if (st == RAMC_OK) st = encode_through_cache(c, &c->phase[1], &c->warm_hits);
    return st;
}

void label_cache_free(bench_ctx *c) {
    if (c->names)
        for (int i = 0; i < c->C; i++) free(c->names[i]);
    free(c->names);
    if (c->dir[0]) remove_tree(c->dir, 2);
}
