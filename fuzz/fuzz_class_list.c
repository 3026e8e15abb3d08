/* Fuzz target: class_list_load, the class-list reader (one name per line, or
 * the "classes" field of a dataset JSON when the path ends in ".json"), plus
 * the list operations every caller applies to its result.
 * Input layout: byte 0 bit 0 chooses the ".json" reading, the rest is the file
 * (written to a per-process temporary file, since the reader takes a path). */
#include <stdlib.h>
#include <string.h>

#include "core/utf8.h"
#include "data/dataset.h"
#include "fuzz.h"

void fuzz_init_class_list(void) {}

static void check_list(const class_list *cl, int sorted) {
    FUZZ_CHECK(cl->n >= 1 && cl->n <= DATASET_MAX_CLASSES, "accepted list of %d names", cl->n);
    for (int i = 0; i < cl->n; i++) {
        const char *s = cl->names[i];
        FUZZ_CHECK(s && s[0], "name %d empty", i);
        /* U+00A0, U+3000... alone would make a label nobody can see */
        FUZZ_CHECK(s && !utf8_is_blank(s, strlen(s)), "name %d is only white space", i);
        FUZZ_CHECK(strlen(s) <= DATASET_MAX_NAME_BYTES, "name %d too long", i);
        /* names are unique, so lookup finds each at its own index */
        FUZZ_CHECK(class_list_find(cl, s) == i, "find('%s') = %d, expected %d", s,
                   class_list_find(cl, s), i);
        if (sorted && i)
            FUZZ_CHECK(class_name_compare(&cl->names[i - 1], &cl->names[i]) < 0,
                       "names %d, %d out of order", i - 1, i);
    }
}

int fuzz_one_class_list(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int json = data[0] & 1;
    char path[1024];
    if (fuzz_temp_file(json ? "classes.json" : "classes.txt", data + 1, size - 1, path,
                       sizeof path) != 0)
        return 0;
    class_list cl;
    ramc_clear_error();
    if (class_list_load(path, &cl) != RAMC_OK) {
        FUZZ_CHECK(cl.n == 0 && cl.names == NULL, "failed load left names");
        fuzz_check_error_message("class_list_load");
        return 0;
    }
    check_list(&cl, json); /* the JSON reading is sorted(classes) */

    /* building the same names again must give the same list */
    class_list again;
    FUZZ_CHECK(class_list_from_names((const char *const *)cl.names, cl.n, "again", &again) ==
                   RAMC_OK,
               "class_list_from_names refused loaded names: %s", ramc_last_error());
    FUZZ_CHECK(again.n == cl.n, "rebuilt list has %d names", again.n);

    /* sorting a copy keeps every name, in code-point order */
    class_list sorted;
    FUZZ_CHECK(class_list_copy(&cl, &sorted) == RAMC_OK, "copy: %s", ramc_last_error());
    FUZZ_CHECK(class_list_sort(&sorted) == RAMC_OK, "sort: %s", ramc_last_error());
    check_list(&sorted, 1);
    for (int i = 0; i < cl.n; i++)
        FUZZ_CHECK(class_list_find(&sorted, cl.names[i]) >= 0, "'%s' lost by sorting", cl.names[i]);

    /* GZSL order of two disjoint halves holds every name; a list with itself
     * overlaps and must be refused */
    if (cl.n >= 2) {
        int k = cl.n / 2;
        class_list seen, unseen, gzsl;
        FUZZ_CHECK(class_list_from_names((const char *const *)cl.names, k, "seen", &seen) == RAMC_OK &&
                       class_list_from_names((const char *const *)cl.names + k, cl.n - k, "unseen",
                                             &unseen) == RAMC_OK,
                   "halves: %s", ramc_last_error());
        FUZZ_CHECK(class_list_gzsl(&seen, &unseen, &gzsl) == RAMC_OK, "gzsl: %s", ramc_last_error());
        FUZZ_CHECK(gzsl.n == cl.n, "gzsl has %d names, expected %d", gzsl.n, cl.n);
        for (int i = 0; i < cl.n; i++)
            FUZZ_CHECK(class_list_find(&gzsl, cl.names[i]) >= 0, "'%s' lost by gzsl", cl.names[i]);
        class_list_free(&gzsl);
        class_list_free(&seen);
        class_list_free(&unseen);
    }
    class_list self;
    FUZZ_CHECK(class_list_gzsl(&cl, &cl, &self) != RAMC_OK, "gzsl of a list with itself accepted");

    class_list_free(&sorted);
    class_list_free(&again);
    class_list_free(&cl);
    return 0;
}
