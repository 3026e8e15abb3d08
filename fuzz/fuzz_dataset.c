/* The part of the dataset targets that JSON and TSV share: options chosen by
 * the first input byte, and the checks on an accepted dataset. */
#include <stdlib.h>
#include <string.h>

#include "data/dataset.h"
#include "fuzz.h"
#include "fuzz_dataset.h"

/* A fixed class list for inputs that ask for one (flag bit 0): the names the
 * seeds use, so mutations find the "known label" paths. */
static class_list fixed_classes;
static int have_fixed;

void fuzz_dataset_init(void) {
    if (have_fixed) return;
    static const char *const names[] = {"cat", "dog", "hot dog", "tie", "a", "b", "Zebra"};
    ramc_status st = class_list_from_names(names, (int)(sizeof names / sizeof *names), "fixed",
                                           &fixed_classes);
    FUZZ_CHECK(st == RAMC_OK, "fixed class list: %s", ramc_last_error());
    have_fixed = 1;
}

static void check_dataset(const dataset *ds, const dataset_options *o, const char *name) {
    FUZZ_CHECK(ds->n_items >= 1 && ds->items, "accepted dataset without images");
    FUZZ_CHECK(ds->classes.n >= 1, "accepted dataset without classes");
    FUZZ_CHECK(ds->source && !strcmp(ds->source, name), "source '%s'", ds->source ? ds->source : "");
    int n_empty = 0;
    long n_labels = 0;
    for (int i = 0; i < ds->n_items; i++) {
        const dataset_item *it = &ds->items[i];
        FUZZ_CHECK(it->path && it->path[0], "item %d: empty path", i);
        FUZZ_CHECK(strlen(it->path) <= DATASET_MAX_PATH_BYTES, "item %d: path too long", i);
        FUZZ_CHECK(it->n_labels >= 0 && it->n_labels <= ds->classes.n, "item %d: %d labels", i,
                   it->n_labels);
        if (o->mode == DATASET_STRICT)
            FUZZ_CHECK(it->n_labels >= 1, "item %d: no labels in strict mode", i);
        for (int k = 0; k < it->n_labels; k++) {
            FUZZ_CHECK(it->labels[k] >= 0 && it->labels[k] < ds->classes.n, "item %d: label %d", i,
                       (int)it->labels[k]);
            FUZZ_CHECK(k == 0 || it->labels[k] > it->labels[k - 1], "item %d: labels not increasing",
                       i);
        }
        n_empty += it->n_labels == 0;
        n_labels += it->n_labels;
    }
    FUZZ_CHECK(n_empty == ds->n_empty, "n_empty %d, counted %d", ds->n_empty, n_empty);
    if (o->mode == DATASET_STRICT)
        FUZZ_CHECK(ds->n_unknown_dropped == 0, "strict mode dropped labels");

    dataset_stats stats;
    FUZZ_CHECK(dataset_compute_stats(ds, &stats) == RAMC_OK, "stats: %s", ramc_last_error());
    FUZZ_CHECK(stats.n_images == ds->n_items && stats.n_classes == ds->classes.n &&
                   stats.n_labels == n_labels && stats.n_empty == n_empty,
               "stats disagree with the items");
    long per_class = 0;
    for (int c = 0; c < ds->classes.n; c++) per_class += stats.images_per_class[c];
    FUZZ_CHECK(per_class == n_labels, "images_per_class sums to %ld, %ld labels", per_class,
               n_labels);
    dataset_stats_free(&stats);

    /* multi-hot targets of a few items; bounded so a big class list stays cheap */
    int n = ds->n_items < 4 ? ds->n_items : 4;
    float *t = malloc((size_t)n * (size_t)ds->classes.n * sizeof *t);
    int idx[4];
    for (int b = 0; b < n; b++) idx[b] = ds->n_items - 1 - b;
    if (t) {
        FUZZ_CHECK(dataset_targets(ds, idx, n, t) == RAMC_OK, "targets: %s", ramc_last_error());
        for (int b = 0; b < n; b++) {
            int ones = 0;
            for (int c = 0; c < ds->classes.n; c++) ones += t[(size_t)b * ds->classes.n + c] == 1.0f;
            FUZZ_CHECK(ones == ds->items[idx[b]].n_labels, "targets of item %d", idx[b]);
        }
        int bad = ds->n_items;
        FUZZ_CHECK(dataset_targets(ds, &bad, 1, t) != RAMC_OK, "target index past the end accepted");
        free(t);
    }
}

int fuzz_dataset_run(const uint8_t *data, size_t size, int json) {
    if (size < 1) return 0;
    fuzz_dataset_init();
    /* byte 0 picks the options; the rest is the file */
    unsigned flags = data[0];
    dataset_options o = dataset_default_options();
    o.mode = flags & 2 ? DATASET_OFFICIAL : DATASET_STRICT;
    if (flags & 4) o.path_map = flags & 8 ? "img/=>/abs/" : "/mnt=/data";
    else if (flags & 8) o.path_map = "/mnt/COCO="; /* mapped to "": made relative */
    if (flags & 16) o.image_root = "/images";
    const char *name = flags & 32 ? (json ? "set.json" : "set.tsv")
                                  : (json ? "sub/dir/set.json" : "/sub/set.tsv");
    const class_list *classes = flags & 1 ? &fixed_classes : NULL;

    char *text = fuzz_copy(data + 1, size - 1);
    if (!text) return 0;
    dataset ds;
    ramc_clear_error();
    ramc_status st = json ? dataset_parse_json(text, size - 1, name, classes, &o, &ds)
                          : dataset_parse_tsv(text, size - 1, name, classes, &o, &ds);
    if (st == RAMC_OK) {
        check_dataset(&ds, &o, name);
        if (classes) {
            FUZZ_CHECK(ds.classes.n == classes->n, "class list not kept");
        }
        dataset_free(&ds);
        if (json) {
            /* one JSON value and nothing after it: the same text with
             * garbage appended is refused (cJSON alone stops at the value) */
            char *tail = malloc(size - 1 + 9);
            if (tail) {
                memcpy(tail, text, size - 1);
                memcpy(tail + size - 1, "]}garbage", 9);
                dataset more;
                FUZZ_CHECK(dataset_parse_json(tail, size - 1 + 9, name, classes, &o, &more) != RAMC_OK,
                           "accepted a dataset followed by ']}garbage'");
                free(tail);
            }
        }
    } else {
        FUZZ_CHECK(ds.n_items == 0 && ds.items == NULL, "failed parse left items");
        fuzz_check_error_message(json ? "dataset_parse_json" : "dataset_parse_tsv");
    }
    free(text);
    return 0;
}
