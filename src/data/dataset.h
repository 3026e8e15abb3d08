/* Class lists and multi-label datasets (spec §9, docs/datasets.md).
 *
 * A class list is the model's label order: label index j <-> prompt j.
 * A dataset is a list of (image path, distinct class indices) read from the
 * official JSON format or a plain TSV file, with its labels mapped onto a
 * class list. Images are not opened at load time (a 100k-image list would
 * take minutes); dataset_check_images() does that on request.
 *
 * Every error names the file and the entry or line, e.g.
 *   "train.json: images[17][1][2]: expected a string"
 *   "train.tsv:12: unknown label 'zebar'"
 */
#ifndef RAMC_DATA_DATASET_H
#define RAMC_DATA_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

#define DATASET_MAX_CLASSES 65536       /* names in one class list */
#define DATASET_MAX_NAME_BYTES 1024     /* bytes of one class name (UTF-8) */
#define DATASET_MAX_PATH_BYTES 4096     /* bytes of one image path after remapping */
#define DATASET_MAX_ITEMS (1 << 24)     /* images in one dataset */
#define DATASET_MAX_FILE_BYTES ((size_t)1 << 30) /* a dataset or class-list file */

/* ------------------------------------------------------------ class lists */

typedef struct {
    int n;          /* number of classes */
    char **names;   /* [n] NUL-terminated UTF-8, owned */
    /* private: open-addressing hash of names -> index, for label lookup */
    int32_t *slots;
    int n_slots;
} class_list;

/* Python's str ordering (code-point order), which for valid UTF-8 is plain
 * byte order: ' ' < '1' < 'Z' < 'a'. A qsort comparator over (char *). */
int class_name_compare(const void *a, const void *b);

/* Builds a list from `n` names in the given order (copied). Each name must be
 * non-empty valid UTF-8 without control characters and at most
 * DATASET_MAX_NAME_BYTES long; duplicates are refused. `what` names the
 * source in messages ("seen.txt"); entry i is reported as "what: [i]". */
ramc_status class_list_from_names(const char *const *names, int n, const char *what,
                                  class_list *out);

/* Reads one name per line: surrounding whitespace (and a trailing \r) is
 * stripped, blank lines and lines starting with '#' are skipped, file order
 * is kept. Errors name the file and line ("seen.txt:7: duplicate class
 * 'cat' (first on line 3)"). A path ending in ".json" is read as an official
 * dataset file instead: its "classes" field, sorted (class_list_from_json). */
ramc_status class_list_load(const char *path, class_list *out);

/* The official class map of a dataset JSON: sorted(json["classes"]). */
ramc_status class_list_from_json(const char *path, class_list *out);

/* Sorts in Python code-point order, in place. */
ramc_status class_list_sort(class_list *cl);

ramc_status class_list_copy(const class_list *src, class_list *out);

/* The GZSL label order of spec §9.1: sorted(seen) + sorted(unseen). A name
 * in both lists is an error. */
ramc_status class_list_gzsl(const class_list *seen, const class_list *unseen, class_list *out);

/* Index of `name` (exact bytes), or -1. */
int class_list_find(const class_list *cl, const char *name);

void class_list_free(class_list *cl);

/* --------------------------------------------------------------- datasets */

typedef enum {
    /* Default for user data: an unknown label, an empty label list or a
     * path_map that does not match is an error naming the entry. */
    DATASET_STRICT = 0,
    /* The official loader: unknown labels are dropped (and counted), an image
     * with no remaining labels is kept as all-negative (and counted). */
    DATASET_OFFICIAL = 1
} dataset_mode;

typedef struct {
    dataset_mode mode;
    /* "OLD=NEW" (or "OLD=>NEW"): a path starting with OLD has that prefix
     * replaced by NEW. Applied first, to the path as written. NULL/"": none. */
    const char *path_map;
    /* Folder that relative paths (after path_map) are joined to.
     * NULL/"": the folder of the dataset file. Absolute paths are kept. */
    const char *image_root;
} dataset_options;

dataset_options dataset_default_options(void); /* strict, no remapping */

typedef struct {
    char *path;       /* resolved image path */
    int n_labels;     /* distinct class indices */
    int32_t *labels;  /* [n_labels] increasing indices into the class list */
} dataset_item;

typedef struct {
    int n_items;
    dataset_item *items;
    class_list classes;      /* the label order (a copy of the one given) */
    char *source;            /* the file it was read from */
    /* what the loader tolerated (official mode) or merged */
    long n_unknown_dropped;  /* unknown label occurrences dropped */
    long n_duplicates;       /* repeated labels within one image, merged */
    int n_empty;             /* images without any label (all-negative) */
} dataset;

/* Reads a dataset file. Format: JSON when the path ends in ".json" or the
 * first non-blank byte is '{'; otherwise TSV ("path<TAB>label1,label2" per
 * line, blank lines and '#' lines skipped).
 * classes: the label order to map onto; NULL takes it from the file: the
 * sorted "classes" field of a JSON file, or the sorted set of all labels of
 * a TSV file. opts may be NULL (dataset_default_options()). */
ramc_status dataset_load(const char *path, const class_list *classes,
                         const dataset_options *opts, dataset *out);

/* The same, from memory; `name` stands for the file in messages and its
 * folder resolves relative paths when opts->image_root is not set. */
ramc_status dataset_parse_json(const char *text, size_t len, const char *name,
                               const class_list *classes, const dataset_options *opts,
                               dataset *out);
ramc_status dataset_parse_tsv(const char *text, size_t len, const char *name,
                              const class_list *classes, const dataset_options *opts,
                              dataset *out);

void dataset_free(dataset *ds);

/* Multi-hot targets for a batch: out [n, ds->classes.n] = 1 where item
 * idx[b] has class c, else 0. An index outside the dataset is an error. */
ramc_status dataset_targets(const dataset *ds, const int *idx, int n, float *out);

typedef struct {
    int n_images, n_classes;
    long n_labels;           /* distinct (image, class) pairs */
    double labels_per_image; /* mean */
    int min_labels, max_labels;
    int n_empty;             /* images without labels */
    int n_classes_unused;    /* classes no image has */
    int *images_per_class;   /* [n_classes], owned: free with dataset_stats_free */
} dataset_stats;

ramc_status dataset_compute_stats(const dataset *ds, dataset_stats *out);
void dataset_stats_free(dataset_stats *st);

/* Called once per image that cannot be read: its index, path and why. */
typedef void (*dataset_missing_fn)(int index, const char *path, const char *reason, void *user);

/* Checks that every image path names a readable regular file. Sets
 * *n_missing and calls `cb` (may be NULL) for each missing one. Missing
 * images are not an error of this function: it returns RAMC_OK. */
ramc_status dataset_check_images(const dataset *ds, int *n_missing, dataset_missing_fn cb,
                                 void *user);

#endif
