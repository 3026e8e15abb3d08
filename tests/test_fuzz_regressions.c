/* Replays the committed fuzz corpus (fuzz/corpus/<target>/) and crash
 * reproducers (fuzz/regressions/<target>/) through the fuzz targets' entry
 * functions, without libFuzzer, so the ordinary gcc build (and the ASan/UBSan
 * one) checks every input any fuzz run ever kept. Files named in
 * fuzz/known-crashes.txt ("<target>/<file>" per line) still crash and are
 * skipped until fixed. A target with an empty corpus is an error: the seeds
 * are what a short CI fuzz run starts from. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

#ifndef RAMC_SOURCE_DIR
#define RAMC_SOURCE_DIR "."
#endif

typedef struct {
    const char *name;
    void (*init)(void);
    int (*one)(const uint8_t *, size_t);
} target;

#define FUZZ_ENTRY(n) {#n, fuzz_init_##n, fuzz_one_##n},
static const target targets[] = {FUZZ_TARGETS(FUZZ_ENTRY)};
#undef FUZZ_ENTRY

static char **known;
static int n_known;

static void load_known(void) {
    FILE *f = fopen(RAMC_SOURCE_DIR "/fuzz/known-crashes.txt", "r");
    if (!f) return;
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        size_t n = strcspn(line, "\r\n");
        line[n] = '\0';
        char *s = line;
        while (*s == ' ' || *s == '\t') s++;
        if (!*s || *s == '#') continue;
        char **k = realloc(known, sizeof(char *) * (size_t)(n_known + 1));
        if (!k) break;
        known = k;
        known[n_known] = strdup(s);
        if (known[n_known]) n_known++;
    }
    fclose(f);
}

static int is_known(const char *target_name, const char *file) {
    char key[1024];
    snprintf(key, sizeof key, "%s/%s", target_name, file);
    for (int i = 0; i < n_known; i++)
        if (!strcmp(known[i], key)) return 1;
    return 0;
}

static int by_name(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs every regular file of dir (sorted, for a stable log); -1 if dir is
 * missing, else the number of files run. */
static int replay_dir(const target *t, const char *kind, long *skipped) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/fuzz/%s/%s", RAMC_SOURCE_DIR, kind, t->name);
    DIR *d = opendir(dir);
    if (!d) return -1;
    char **names = NULL;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue; /* ., .. and .gitkeep */
        char **nn = realloc(names, sizeof(char *) * (size_t)(n + 1));
        if (!nn) break;
        names = nn;
        if ((names[n] = strdup(e->d_name))) n++;
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, by_name);
    int run = 0;
    for (int i = 0; i < n; i++) {
        if (is_known(t->name, names[i])) {
            (*skipped)++;
            continue;
        }
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        FILE *f = fopen(path, "rb");
        if (!f) {
            fprintf(stderr, "cannot open %s\n", path);
            exit(1);
        }
        uint8_t *buf = NULL;
        size_t len = 0, cap = 0;
        for (;;) {
            if (len == cap) {
                cap = cap ? 2 * cap : 4096;
                uint8_t *nb = realloc(buf, cap);
                if (!nb) {
                    fprintf(stderr, "out of memory reading %s\n", path);
                    exit(1);
                }
                buf = nb;
            }
            size_t r = fread(buf + len, 1, cap - len, f);
            len += r;
            if (r == 0) break;
        }
        fclose(f);
        /* an exact-size copy, as libFuzzer hands inputs over: ASan then
         * flags a read past the end */
        uint8_t *exact = malloc(len ? len : 1);
        if (!exact) exit(1);
        if (len) memcpy(exact, buf, len);
        free(buf);
        /* named before the run: a sanitizer report or a failed check ends
         * the process, and this line then says which input did it */
        printf("  %s/%s/%s (%zu bytes)\n", kind, t->name, names[i], len);
        fflush(stdout);
        t->one(exact, len);
        free(exact);
        run++;
        free(names[i]);
        names[i] = NULL;
    }
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    return run;
}

int main(void) {
    load_known();
    int failures = 0;
    for (size_t i = 0; i < sizeof targets / sizeof *targets; i++) {
        const target *t = &targets[i];
        t->init();
        long skipped = 0;
        int corpus = replay_dir(t, "corpus", &skipped);
        int regressions = replay_dir(t, "regressions", &skipped);
        printf("%-13s corpus %d, regressions %d, known crashes skipped %ld\n", t->name,
               corpus < 0 ? 0 : corpus, regressions < 0 ? 0 : regressions, skipped);
        if (corpus <= 0) {
            fprintf(stderr, "FAIL: fuzz/corpus/%s is missing or empty\n", t->name);
            failures++;
        }
    }
    for (int i = 0; i < n_known; i++) free(known[i]);
    free(known);
    if (failures) return 1;
    printf("all fuzz inputs replayed\n");
    return 0;
}
