/* The synthetic data generator (src/synth): the holdout keeps every word
 * seen, the files are byte-identical for a seed whatever the thread count,
 * labels / captions / pixels agree with the scenes, and the splits keep
 * their promises (no unseen label in train.json, every unseen label in
 * test_zsl.json). */
/* nftw is X/Open; the build only asks for POSIX 2008. */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/dataset.h"
#include "image/image.h"
#include "io/file.h"
#include "synth/synth.h"
#include "test.h"

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}
static void remove_tree(const char *dir) { nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS); }

static char *slurp(const char *dir, const char *name, size_t *len) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *data = NULL;
    size_t n = 0;
    if (read_whole_file(path, (size_t)1 << 30, &data, &n) != RAMC_OK) return NULL;
    if (len) *len = n;
    return data;
}

static int same_file(const char *a, const char *b, const char *name) {
    size_t na = 0, nb = 0;
    char *x = slurp(a, name, &na), *y = slurp(b, name, &nb);
    int same = x && y && na == nb && !memcmp(x, y, na);
    free(x);
    free(y);
    return same;
}

/* Whether `name` occurs in `text` as whole words. */
static int has_phrase(const char *text, const char *name) {
    size_t n = strlen(name);
    for (const char *p = strstr(text, name); p; p = strstr(p + 1, name)) {
        int left = p == text || p[-1] == ' ';
        char r = p[n];
        if (left && (r == 0 || r == ' ' || r == ',' || r == '.')) return 1;
    }
    return 0;
}

static void test_holdout(void) {
    synth_vocab v;
    CHECK(synth_vocab_make(NULL, NULL, &v) == RAMC_OK, "%s", ramc_last_error());
    CHECK(v.n_colours == 8 && v.n_shapes == 8, "default vocabulary %dx%d", v.n_colours, v.n_shapes);
    char name[64];
    synth_class_name(&v, 0 * 8 + 3, name, sizeof name);
    CHECK(!strcmp(name, "red star"), "class 3 is '%s'", name);
    CHECK(synth_class_find(&v, "blue ring") == 2 * 8 + 4, "find blue ring");
    CHECK(synth_class_find(&v, "blue  ring") == -1, "exact names only");

    const double fractions[] = {0.05, 0.25, 0.5, 0.875};
    for (uint64_t seed = 0; seed < 6; seed++)
        for (int f = 0; f < 4; f++) {
            uint8_t u[SYNTH_MAX_CLASSES];
            CHECK(synth_choose_unseen(&v, seed, fractions[f], NULL, u) == RAMC_OK, "%s", ramc_last_error());
            int n = 0, row_ok = 1, col_ok = 1, row_max = 0;
            for (int c = 0; c < 64; c++) n += u[c];
            for (int i = 0; i < 8; i++) {
                int rs = 0, cs = 0, ru = 0;
                for (int j = 0; j < 8; j++) {
                    rs += !u[i * 8 + j];
                    cs += !u[j * 8 + i];
                    ru += u[i * 8 + j];
                }
                row_ok &= rs > 0;
                col_ok &= cs > 0;
                if (ru > row_max) row_max = ru;
            }
            CHECK(n == (int)lround(fractions[f] * 64), "seed %d f %g: %d unseen", (int)seed, fractions[f], n);
            CHECK(row_ok && col_ok, "seed %d f %g: every colour and shape keeps a seen label", (int)seed,
                  fractions[f]);
            /* Diagonals: balanced, at most ceil(n / 8) per colour. */
            CHECK(row_max <= (n + 7) / 8, "seed %d f %g: %d unseen in one colour", (int)seed, fractions[f],
                  row_max);
        }
    uint8_t a[SYNTH_MAX_CLASSES], b[SYNTH_MAX_CLASSES];
    synth_choose_unseen(&v, 3, 0.25, NULL, a);
    synth_choose_unseen(&v, 3, 0.25, NULL, b);
    CHECK(!memcmp(a, b, 64), "the holdout is a function of the seed");
    synth_choose_unseen(&v, 4, 0.25, NULL, b);
    CHECK(memcmp(a, b, 64), "another seed, another holdout");

    CHECK(synth_choose_unseen(&v, 0, 0.9, NULL, a) == RAMC_ERR_INVALID_ARG, "0.9 leaves a word unseen");
    CHECK(synth_choose_unseen(&v, 0, 0.001, NULL, a) == RAMC_ERR_INVALID_ARG, "a fraction holding none");
    CHECK(synth_choose_unseen(&v, 0, 0, "red star, blue ring", a) == RAMC_OK, "%s", ramc_last_error());
    CHECK(a[synth_class_find(&v, "red star")] && a[synth_class_find(&v, "blue ring")], "list held out");
    CHECK(synth_choose_unseen(&v, 0, 0, "red stars", a) == RAMC_ERR_INVALID_ARG, "unknown label");
    CHECK(strstr(ramc_last_error(), "red stars") != NULL, "message names it: %s", ramc_last_error());
    CHECK(synth_choose_unseen(&v, 0, 0, "red star,red star", a) == RAMC_ERR_INVALID_ARG, "twice");
    CHECK(synth_choose_unseen(&v, 0, 0,
                              "red circle,red square,red triangle,red star,red ring,red cross,red diamond,red heart",
                              a) == RAMC_ERR_INVALID_ARG,
          "all red labels unseen leaves 'red' unseen");
    CHECK(synth_vocab_make("red,mauve", NULL, &v) == RAMC_ERR_INVALID_ARG, "unknown colour");
    CHECK(synth_vocab_make("red", NULL, &v) == RAMC_ERR_INVALID_ARG, "one colour is no grid");
    CHECK(synth_vocab_make("red,cyan,pink", "hexagon,star", &v) == RAMC_OK, "%s", ramc_last_error());
}

static void test_limits(void) {
    synth_options o = synth_default_options();
    CHECK(synth_check_options(&o) == RAMC_OK, "defaults are valid");
    o.size = 20;
    CHECK(synth_check_options(&o) == RAMC_ERR_LIMIT, "size 20");
    CHECK(strstr(ramc_last_error(), "--size") != NULL, "names the option: %s", ramc_last_error());
    o = synth_default_options();
    o.n_train = SYNTH_MAX_IMAGES + 1;
    CHECK(synth_check_options(&o) == RAMC_ERR_LIMIT, "too many images");
    o = synth_default_options();
    o.max_objects = SYNTH_MAX_OBJECTS + 1;
    CHECK(synth_check_options(&o) == RAMC_ERR_LIMIT, "too many objects");
    o = synth_default_options();
    o.min_objects = 3;
    o.max_objects = 2;
    CHECK(synth_check_options(&o) == RAMC_ERR_LIMIT, "min > max");
    /* v2 goes to 8 objects, v1 stays at 6 */
    o = synth_default_options();
    CHECK(o.world == 2 && o.max_objects == 8 && o.strict_pretrain && o.pretrain_max_objects == 4,
          "v2 defaults: world %d, max %d, strict %d, pretrain max %d", o.world, o.max_objects,
          o.strict_pretrain, o.pretrain_max_objects);
    o.max_objects = 8;
    CHECK(synth_check_options(&o) == RAMC_OK, "8 objects in v2");
    o = synth_world_options(1);
    CHECK(o.world == 1 && o.max_objects == 4 && !o.strict_pretrain && !o.pretrain_max_objects,
          "v1 defaults as before");
    o.max_objects = 7;
    CHECK(synth_check_options(&o) == RAMC_ERR_LIMIT, "7 objects in v1");
    CHECK(strstr(ramc_last_error(), "v1") != NULL, "names the world: %s", ramc_last_error());
    o = synth_default_options();
    o.world = 3;
    CHECK(synth_check_options(&o) == RAMC_ERR_INVALID_ARG, "world 3");
}

/* Checks one generated folder against the plan it came from. */
static void check_folder(const char *dir, const synth_options *o) {
    synth_plan *p = malloc(sizeof *p);
    CHECK(synth_plan_make(o, p) == RAMC_OK, "%s", ramc_last_error());
    const synth_vocab *v = &p->vocab;
    int N = synth_vocab_classes(v), S = o->size;
    char name[64];

    class_list seen = {0}, unseen = {0}, all = {0};
    char path[1024];
    snprintf(path, sizeof path, "%s/seen.txt", dir);
    CHECK(class_list_load(path, &seen) == RAMC_OK, "%s", ramc_last_error());
    snprintf(path, sizeof path, "%s/unseen.txt", dir);
    CHECK(class_list_load(path, &unseen) == RAMC_OK, "%s", ramc_last_error());
    snprintf(path, sizeof path, "%s/classes_all.txt", dir);
    CHECK(class_list_load(path, &all) == RAMC_OK, "%s", ramc_last_error());
    CHECK(seen.n == p->n_seen && unseen.n == p->n_unseen && all.n == N, "class counts %d %d %d",
          seen.n, unseen.n, all.n);
    for (int c = 0; c < N; c++) {
        synth_class_name(v, c, name, sizeof name);
        int in_seen = class_list_find(&seen, name) >= 0, in_unseen = class_list_find(&unseen, name) >= 0;
        CHECK(in_seen == !p->is_unseen[c] && in_unseen == p->is_unseen[c], "%s in the right list", name);
    }

    /* Every word of an unseen label is in some seen label. */
    for (int i = 0; i < unseen.n; i++) {
        char words[64];
        snprintf(words, sizeof words, "%s", unseen.names[i]);
        char *sp = strchr(words, ' ');
        *sp = 0;
        int colour_seen = 0, shape_seen = 0;
        for (int j = 0; j < seen.n; j++) {
            colour_seen |= has_phrase(seen.names[j], words);
            shape_seen |= has_phrase(seen.names[j], sp + 1);
        }
        CHECK(colour_seen && shape_seen, "the words of '%s' are seen", unseen.names[i]);
    }

    uint8_t *rgb = malloc((size_t)S * S * 3);
    dataset ds[SYNTH_N_SPLITS];
    memset(ds, 0, sizeof ds);
    /* Strict loading: an unknown label (an unseen one in train.json) fails. */
    snprintf(path, sizeof path, "%s/train.json", dir);
    CHECK(dataset_load(path, &seen, NULL, &ds[SYNTH_SPLIT_TRAIN]) == RAMC_OK, "%s", ramc_last_error());
    snprintf(path, sizeof path, "%s/test_zsl.json", dir);
    CHECK(dataset_load(path, &unseen, NULL, &ds[SYNTH_SPLIT_TEST_ZSL]) == RAMC_OK, "%s", ramc_last_error());
    snprintf(path, sizeof path, "%s/test_gzsl.json", dir);
    CHECK(dataset_load(path, &all, NULL, &ds[SYNTH_SPLIT_TEST_GZSL]) == RAMC_OK, "%s", ramc_last_error());
    const class_list *label_list[SYNTH_N_SPLITS] = {NULL, &seen, &unseen, &all};

    size_t tsv_len = 0;
    char *tsv = slurp(dir, "pretrain.tsv", &tsv_len);
    CHECK(tsv != NULL, "pretrain.tsv");
    char *line = tsv;
    int caption_has_word[SYNTH_MAX_COLOURS + SYNTH_MAX_SHAPES] = {0};
    int zsl_hit[SYNTH_MAX_CLASSES] = {0};
    long visible_failures = 0, pixel_failures = 0, bound_failures = 0;
    /* v2's promises: small objects, occlusion, distractors that are no label */
    long n_objects = 0, n_small = 0, n_occluded = 0, n_distractors = 0, n_pretrain_over = 0;
    int most_objects = 0, types_seen[2] = {0, 0};
    int v2 = o->world == 2;

    for (int sp = 0; sp < SYNTH_N_SPLITS; sp++) {
        if (sp != SYNTH_SPLIT_PRETRAIN)
            CHECK(ds[sp].n_items == p->count[sp], "%s: %d items, want %ld", synth_split_name(sp),
                  ds[sp].n_items, p->count[sp]);
        for (long i = 0; i < p->count[sp]; i++) {
            synth_scene sc;
            char caption[SYNTH_MAX_CAPTION];
            synth_example(p, sp, i, &sc, rgb, caption, sizeof caption);
            CHECK(sc.n >= o->min_objects && sc.n <= o->max_objects, "object count %d", sc.n);
            CHECK(sc.world == (v2 ? 2 : 0), "scene world %d", sc.world);
            if (sp == SYNTH_SPLIT_PRETRAIN && o->pretrain_max_objects)
                n_pretrain_over += sc.n > o->pretrain_max_objects;
            if (sp != SYNTH_SPLIT_PRETRAIN && sc.n > most_objects) most_objects = sc.n;
            if (!v2) CHECK(sc.n_distractors == 0, "v1 scene with distractors");
            n_distractors += sc.n_distractors;
            for (int d = 0; d < sc.n_distractors; d++) {
                const synth_distractor *ds = &sc.dis[d];
                types_seen[ds->type == SYNTH_DISTRACTOR_GREY_SHAPE] = 1;
                CHECK(ds->o.cls == -1, "a distractor has class %d", ds->o.cls);
                if (ds->type == SYNTH_DISTRACTOR_GREY_SHAPE)
                    CHECK(ds->o.rgb[0] == ds->o.rgb[1] && ds->o.rgb[1] == ds->o.rgb[2] &&
                              ds->o.rgb[0] >= 50 && ds->o.rgb[0] <= 200,
                          "grey distractor %d %d %d: not grey, or near white / black", ds->o.rgb[0],
                          ds->o.rgb[1], ds->o.rgb[2]);
            }

            /* The file holds exactly these pixels. */
            ramc_image img = {0};
            snprintf(path, sizeof path, "%s/images/%s/%06ld.png", dir, synth_split_name(sp), i);
            CHECK(ramc_image_load(path, &img) == RAMC_OK, "%s", ramc_last_error());
            CHECK(img.width == S && img.height == S && !memcmp(img.rgb, rgb, (size_t)S * S * 3),
                  "%s decodes to the rendered pixels", path);
            ramc_image_free(&img);

            /* Each object is visible in its own colour where it was drawn
             * and nothing later covers it. */
            for (int k = 0; k < sc.n; k++) {
                const synth_object *ob = &sc.obj[k];
                if (ob->cx - ob->radius < 0 || ob->cy - ob->radius < 0 || ob->cx + ob->radius > S ||
                    ob->cy + ob->radius > S)
                    bound_failures++;
                int visible = 0;
                double area = 0, uncovered = 0;
                for (int y = 0; y < S; y++)
                    for (int x = 0; x < S; x++) {
                        float a = synth_object_coverage(ob, x, y);
                        if (a <= 0) continue;
                        int covered = 0;
                        for (int m = k + 1; m < sc.n && !covered; m++)
                            covered = synth_object_coverage(&sc.obj[m], x, y) > 0;
                        area += a;
                        if (!covered) uncovered += a;
                        if (a < 1.0f || covered) continue;
                        visible++;
                        const uint8_t *px = rgb + ((size_t)y * S + x) * 3;
                        for (int ch = 0; ch < 3; ch++)
                            if (abs(px[ch] - ob->rgb[ch]) > 3) pixel_failures++;
                    }
                n_objects++;
                if (v2) {
                    /* Occlusion is allowed in v2 but each object keeps about
                     * half of itself (the placement measures it at pixel
                     * centres; these are 4x4 samples, and a covering object's
                     * anti-aliased edge counts as covering here). */
                    if (uncovered < 0.4 * area) visible_failures++;
                    n_occluded += uncovered < area;
                    /* small: at most 2x2 patches of 8 at 64x64 */
                    n_small += ob->radius <= 0.125f * S;
                } else if (visible < 0.1 * ob->radius * ob->radius) {
                    /* 0.1 r^2 of solid pixels: the smallest shape (a star) fills
                     * about 0.35 r^2 of its bounding circle's 3.14 r^2. */
                    visible_failures++;
                }
            }

            if (sp == SYNTH_SPLIT_PRETRAIN) {
                char *tab = strchr(line, '\t'), *nl = strchr(line, '\n');
                CHECK(tab && nl && tab < nl, "pretrain.tsv line %ld", i + 1);
                if (!tab || !nl) break;
                *nl = 0;
                char want_path[64];
                snprintf(want_path, sizeof want_path, "images/pretrain/%06ld.png", i);
                CHECK(!strncmp(line, want_path, (size_t)(tab - line)), "pretrain.tsv line %ld path", i + 1);
                CHECK(!strcmp(tab + 1, caption), "line %ld caption '%s', want '%s'", i + 1, tab + 1, caption);
                /* The caption names exactly the scene's classes. */
                for (int c = 0; c < N; c++) {
                    int in_scene = 0;
                    for (int k = 0; k < sc.n; k++) in_scene |= sc.obj[k].cls == c;
                    synth_class_name(v, c, name, sizeof name);
                    CHECK(has_phrase(caption, name) == in_scene, "caption '%s' and class '%s'", caption, name);
                    if (o->strict_pretrain && p->is_unseen[c])
                        CHECK(!has_phrase(caption, name), "strict: unseen '%s' in '%s'", name, caption);
                }
                for (int c = 0; c < v->n_colours; c++)
                    caption_has_word[c] |= has_phrase(caption, synth_catalog_colour_name(v->colour[c]));
                for (int k = 0; k < v->n_shapes; k++)
                    caption_has_word[SYNTH_MAX_COLOURS + k] |=
                        has_phrase(caption, synth_catalog_shape_name(v->shape[k]));
                line = nl + 1;
                continue;
            }

            /* The labels: train = all objects (all seen); test_zsl = the
             * unseen objects (at least one); test_gzsl = all objects. */
            int want[SYNTH_MAX_CLASSES] = {0}, n_unseen_obj = 0;
            for (int k = 0; k < sc.n; k++) {
                int c = sc.obj[k].cls;
                n_unseen_obj += p->is_unseen[c];
                if (sp == SYNTH_SPLIT_TRAIN) CHECK(!p->is_unseen[c], "train image %ld holds an unseen object", i);
                if (sp != SYNTH_SPLIT_TEST_ZSL || p->is_unseen[c]) want[c] = 1;
                if (sp == SYNTH_SPLIT_TEST_ZSL && p->is_unseen[c]) zsl_hit[c] = 1;
            }
            if (sp == SYNTH_SPLIT_TEST_ZSL) CHECK(n_unseen_obj >= 1, "test_zsl image %ld has no unseen object", i);
            if (i < ds[sp].n_items) {
                const dataset_item *it = &ds[sp].items[i];
                int n_want = 0;
                for (int c = 0; c < N; c++) n_want += want[c];
                CHECK(it->n_labels == n_want, "%s[%ld]: %d labels, want %d", synth_split_name(sp), i,
                      it->n_labels, n_want);
                for (int l = 0; l < it->n_labels; l++) {
                    int c = synth_class_find(v, label_list[sp]->names[it->labels[l]]);
                    CHECK(c >= 0 && want[c], "%s[%ld]: label '%s' not drawn", synth_split_name(sp), i,
                          label_list[sp]->names[it->labels[l]]);
                }
            }
        }
    }
    CHECK(visible_failures == 0, "%ld objects barely visible", visible_failures);
    CHECK(n_pretrain_over == 0, "%ld pre-training images above --pretrain-max-objects", n_pretrain_over);
    if (v2 && n_objects >= 200) {
        CHECK(n_small >= n_objects / 4, "only %ld of %ld objects small", n_small, n_objects);
        CHECK(n_occluded >= n_objects / 20, "only %ld of %ld objects partly occluded", n_occluded, n_objects);
        CHECK(n_distractors >= n_objects / 8 && types_seen[0] && types_seen[1],
              "%ld distractors (types %d %d) for %ld objects", n_distractors, types_seen[0],
              types_seen[1], n_objects);
        CHECK(most_objects == o->max_objects, "the busiest image has %d objects, want %d", most_objects,
              o->max_objects);
    }
    CHECK(pixel_failures == 0, "%ld object pixels off their colour", pixel_failures);
    CHECK(bound_failures == 0, "%ld objects outside the image", bound_failures);
    if (p->count[SYNTH_SPLIT_TEST_ZSL] >= p->n_unseen)
        for (int c = 0; c < N; c++)
            if (p->is_unseen[c]) {
                synth_class_name(v, c, name, sizeof name);
                CHECK(zsl_hit[c], "unseen '%s' never in test_zsl", name);
            }
    if (p->count[SYNTH_SPLIT_PRETRAIN] >= 64) {
        for (int c = 0; c < v->n_colours; c++)
            CHECK(caption_has_word[c], "colour '%s' in no caption", synth_catalog_colour_name(v->colour[c]));
        for (int k = 0; k < v->n_shapes; k++)
            CHECK(caption_has_word[SYNTH_MAX_COLOURS + k], "shape '%s' in no caption",
                  synth_catalog_shape_name(v->shape[k]));
    }
    CHECK(*line == 0, "pretrain.tsv has extra lines");

    size_t mlen = 0;
    char *manifest = slurp(dir, "manifest.json", &mlen);
    CHECK(manifest && strstr(manifest, v2 ? SYNTH_VERSION_V2 : SYNTH_VERSION), "manifest names the generator");
    CHECK(manifest && (strstr(manifest, "\"world\"") != NULL) == v2, "manifest names world v2 only");
    free(manifest);
    free(tsv);
    free(rgb);
    for (int sp = 0; sp < SYNTH_N_SPLITS; sp++) dataset_free(&ds[sp]);
    class_list_free(&seen);
    class_list_free(&unseen);
    class_list_free(&all);
    free(p);
}

static void test_generate(void) {
    char base[] = "/tmp/test_synth.XXXXXX";
    if (!mkdtemp(base)) {
        CHECK(0, "mkdtemp");
        return;
    }
    char a[256], b[256], c[256];
    snprintf(a, sizeof a, "%s/a", base);
    snprintf(b, sizeof b, "%s/b/nested", base);
    snprintf(c, sizeof c, "%s/c", base);

    synth_options o = synth_default_options();
    o.seed = 7;
    o.n_pretrain = 150;
    o.n_train = 120;
    o.n_test = 60;
    o.threads = 3;
    CHECK(synth_generate(a, &o) == RAMC_OK, "%s", ramc_last_error());
    check_folder(a, &o);

    /* Byte-identical with another thread count (and a folder made with its parents). */
    o.threads = 1;
    CHECK(synth_generate(b, &o) == RAMC_OK, "%s", ramc_last_error());
    const char *files[] = {"pretrain.tsv", "classes_all.txt", "seen.txt", "unseen.txt", "train.json",
                           "test_zsl.json", "test_gzsl.json", "manifest.json"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++)
        CHECK(same_file(a, b, files[i]), "%s differs between runs", files[i]);
    long diff_images = 0;
    long counts[SYNTH_N_SPLITS] = {o.n_pretrain, o.n_train, o.n_test, o.n_test};
    for (int sp = 0; sp < SYNTH_N_SPLITS; sp++)
        for (long i = 0; i < counts[sp]; i++) {
            char rel[64];
            snprintf(rel, sizeof rel, "images/%s/%06ld.png", synth_split_name(sp), i);
            diff_images += !same_file(a, b, rel);
        }
    CHECK(diff_images == 0, "%ld images differ between runs", diff_images);

    /* A non-empty folder is refused and left alone; --force writes. */
    size_t before = 0;
    char *old = slurp(a, "train.json", &before);
    o.seed = 8;
    CHECK(synth_generate(a, &o) == RAMC_ERR_INVALID_ARG, "non-empty folder refused");
    CHECK(strstr(ramc_last_error(), a) != NULL, "the message names the folder: %s", ramc_last_error());
    CHECK(same_file(a, b, "train.json"), "a refused run changed nothing");
    o.force = 1;
    CHECK(synth_generate(a, &o) == RAMC_OK, "%s", ramc_last_error());
    CHECK(!same_file(a, b, "train.json"), "--force wrote the new data set");
    free(old);

    /* World v1 with its old defaults still passes its own checks (its bytes
     * are compared with the old generator's in tests/cli_synth.sh). */
    char d1[256];
    snprintf(d1, sizeof d1, "%s/v1", base);
    synth_options w1 = synth_world_options(1);
    w1.seed = 7;
    w1.n_pretrain = 100;
    w1.n_train = 60;
    w1.n_test = 40;
    CHECK(synth_generate(d1, &w1) == RAMC_OK, "%s", ramc_last_error());
    check_folder(d1, &w1);

    /* --strict-pretrain, another vocabulary, 96x96, 2-6 objects (v1). */
    synth_options s = synth_world_options(1);
    s.seed = 11;
    s.size = 96;
    s.n_pretrain = 80;
    s.n_train = 40;
    s.n_test = 30;
    s.min_objects = 2;
    s.max_objects = 6;
    s.colours = "red,green,blue,yellow,white,pink";
    s.shapes = "circle,square,star,ring,hexagon";
    s.unseen_fraction = 0.3;
    s.strict_pretrain = 1;
    CHECK(synth_generate(c, &s) == RAMC_OK, "%s", ramc_last_error());
    check_folder(c, &s);

    /* The same in v2, 96x96, 3-8 objects, pre-training on all labels, a cap
     * of 3 objects per pre-training image. */
    char e[256];
    snprintf(e, sizeof e, "%s/e", base);
    s.world = 2;
    s.min_objects = 3;
    s.max_objects = 8;
    s.pretrain_max_objects = 3;
    s.strict_pretrain = 0;
    s.colours = NULL;
    s.shapes = NULL;
    CHECK(synth_generate(e, &s) == RAMC_OK, "%s", ramc_last_error());
    check_folder(e, &s);

    remove_tree(base);
}

int main(void) {
    test_holdout();
    test_limits();
    test_generate();
    return test_summary("test_synth");
}
