/* The persistent label cache (ramc_labels_encode_cached): a second encode
 * reads every label from it and gives bitwise the same scores; a changed
 * template, adapter or weights file never meets stale features; a damaged
 * entry is recomputed. (Two processes sharing one folder: tests/cli_pipeline.sh,
 * with separate ramc processes: a fork here would inherit OpenMP's threads.) */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ramc.h"
#include "test.h"

#define CLIP RAMC_SOURCE_DIR "/data/default/clip.safetensors"
#define ADAPTER RAMC_SOURCE_DIR "/data/default/adapter.safetensors"
#define IMAGE RAMC_SOURCE_DIR "/data/samples/black-ring.png"

static const char *const names[] = {"red star", "blue circle", "black ring", "green heart",
                                    "white star", "yellow square"};
enum { C = 6 };

/* RAM's scores of the sample image for a label set */
static void scores_of(const ramc_model *m, const ramc_labels *lb, float *s) {
    const int S = ramc_model_get_info(m).image_size;
    float *x = malloc((size_t)3 * S * S * sizeof *x);
    CHECK(x && ramc_preprocess_file(m, IMAGE, NULL, x) == RAMC_OK, "preprocess: %s", ramc_last_error());
    CHECK(ramc_predict(m, lb, x, 1, NULL, s, NULL, NULL) == RAMC_OK, "predict: %s", ramc_last_error());
    free(x);
}

static int encode(const ramc_model *m, const char *dir, const char *tmpl, float *s) {
    ramc_labels *lb = NULL;
    ramc_status st = ramc_labels_encode_cached(m, NULL, names, C, tmpl, dir, &lb);
    CHECK(st == RAMC_OK, "encode: %s", ramc_last_error());
    if (st) return -1;
    scores_of(m, lb, s);
    int hits = ramc_labels_cache_hits(lb);
    ramc_labels_free(lb);
    return hits;
}

/* Entry files under dir/<key>/ (and temporaries left behind) */
static int count_files(const char *dir, int *temps) {
    int n = 0;
    *temps = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char sub[4096];
        snprintf(sub, sizeof sub, "%.3000s/%.255s", dir, e->d_name);
        DIR *k = opendir(sub);
        struct dirent *f;
        while (k && (f = readdir(k))) {
            if (strstr(f->d_name, ".lf")) n++;
            if (!strncmp(f->d_name, ".tmp", 4)) (*temps)++;
        }
        if (k) closedir(k);
    }
    if (d) closedir(d);
    return n;
}

int main(void) {
    char dir[] = "/tmp/ramc-label-cache-XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    char cache[4200];
    snprintf(cache, sizeof cache, "%s/cache", dir);
    ramc_model *m = NULL, *bare = NULL;
    CHECK(ramc_model_load(CLIP, ADAPTER, NULL, &m) == RAMC_OK, "load: %s", ramc_last_error());
    CHECK(ramc_model_load(CLIP, NULL, NULL, &bare) == RAMC_OK, "load: %s", ramc_last_error());
    if (!m || !bare) return test_summary("test_label_cache");

    float plain[C], cold[C], warm[C], other[C];
    ramc_labels *lb = NULL;
    CHECK(ramc_labels_encode(m, NULL, names, C, NULL, &lb) == RAMC_OK, "encode");
    scores_of(m, lb, plain);
    ramc_labels_free(lb);

    CHECK(encode(m, cache, NULL, cold) == 0, "a fresh cache has no hits");
    CHECK(!memcmp(cold, plain, sizeof cold), "the cold cache changes the scores");
    int temps;
    CHECK(count_files(cache, &temps) == C && temps == 0, "one entry per label, no temporaries");
    CHECK(encode(m, cache, NULL, warm) == C, "a second encode reads every label");
    CHECK(!memcmp(warm, plain, sizeof warm), "cached features change the scores");

    /* another template, another adapter: nothing stale is reused */
    CHECK(encode(m, cache, "a drawing of a {}", other) == 0, "another template hits the cache");
    CHECK(encode(bare, cache, NULL, other) == 0, "another adapter hits the cache");
    CHECK(encode(bare, cache, NULL, other) == C, "the bare model's own entries are found");

    /* another weights file (one byte of a tensor changed) gets another key */
    char copy[4200];
    snprintf(copy, sizeof copy, "%s/clip.safetensors", dir);
    FILE *in = fopen(CLIP, "rb"), *out = fopen(copy, "wb");
    long size = 0;
    if (in && out) {
        int ch;
        while ((ch = fgetc(in)) != EOF) fputc(ch, out), size++;
    }
    if (in) fclose(in);
    if (out) {
        fseek(out, size - 3, SEEK_SET); /* the last tensor's last bytes */
        fputc(0x3f, out);
        fclose(out);
    }
    /* the model's tokenizer files travel with it */
    char cp[4600];
    snprintf(cp, sizeof cp, "cp '%s/data/default/vocab.json' '%s/data/default/merges.txt' '%s/'",
             RAMC_SOURCE_DIR, RAMC_SOURCE_DIR, dir);
    CHECK(system(cp) == 0, "copy the tokenizer files");
    ramc_model *changed = NULL;
    CHECK(ramc_model_load(copy, ADAPTER, NULL, &changed) == RAMC_OK, "load copy: %s", ramc_last_error());
    if (changed)
        CHECK(encode(changed, cache, NULL, other) == 0, "a changed weights file reuses features");

    /* a damaged entry is recomputed, not trusted */
    DIR *d = opendir(cache);
    struct dirent *e;
    char victim[4800] = "";
    while (d && (e = readdir(d)) && !victim[0]) {
        if (e->d_name[0] == '.') continue;
        char sub[4300];
        snprintf(sub, sizeof sub, "%.3000s/%.255s", cache, e->d_name);
        DIR *k = opendir(sub);
        struct dirent *f;
        while (k && (f = readdir(k)))
            if (strstr(f->d_name, ".lf")) {
                snprintf(victim, sizeof victim, "%.4300s/%.255s", sub, f->d_name);
                break;
            }
        if (k) closedir(k);
    }
    if (d) closedir(d);
    CHECK(victim[0] && truncate(victim, 20) == 0, "truncate an entry");
    /* The cache holds four keys (two models, another template, the changed
     * weights) and which one the entry belonged to depends on the folder's
     * order; every key's hit count drops by at most one, so the four lose
     * exactly one hit between them. */
    if (changed) {
        int h1 = encode(m, cache, NULL, warm), h2 = encode(bare, cache, NULL, other);
        CHECK(!memcmp(warm, plain, sizeof warm), "scores after a damaged entry");
        int h3 = encode(m, cache, "a drawing of a {}", other), h4 = encode(changed, cache, NULL, other);
        CHECK(h1 + h2 + h3 + h4 == 4 * C - 1, "a truncated entry was used (hits %d + %d + %d + %d)",
              h1, h2, h3, h4);
        CHECK(encode(m, cache, NULL, warm) == C && encode(bare, cache, NULL, other) == C &&
                  encode(m, cache, "a drawing of a {}", other) == C &&
                  encode(changed, cache, NULL, other) == C,
              "the damaged entry was rewritten");
        ramc_model_free(changed);
    }

    ramc_model_free(m);
    ramc_model_free(bare);
    char cmd[4400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return test_summary("test_label_cache");
}
