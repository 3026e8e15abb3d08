/* Class lists, dataset readers (official JSON, TSV), path remapping, GZSL
 * order, targets, statistics and the image check (src/data/dataset.h). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/dataset.h"
#include "test.h"

static char dir[256];

static const char *tmp_path(const char *name) {
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static void write_file(const char *path, const char *text, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(2);
    }
    fwrite(text, 1, len, f);
    fclose(f);
}

static void put(const char *name, const char *text) { write_file(tmp_path(name), text, strlen(text)); }

/* The error message holds every fragment given. */
#define CHECK_ERR(st, ...)                                                                  \
    do {                                                                                    \
        const char *frags_[] = {__VA_ARGS__, NULL};                                         \
        CHECK((st) != RAMC_OK, "expected a failure");                                       \
        for (int f_ = 0; frags_[f_]; f_++)                                                  \
            CHECK(strstr(ramc_last_error(), frags_[f_]) != NULL, "message '%s' lacks '%s'", \
                  ramc_last_error(), frags_[f_]);                                           \
    } while (0)

static ramc_status parse_json(const char *text, const class_list *cl, dataset_mode mode,
                              dataset *ds) {
    dataset_options o = dataset_default_options();
    o.mode = mode;
    return dataset_parse_json(text, strlen(text), "data/train.json", cl, &o, ds);
}

static void test_json_basic(void) {
    dataset ds;
    const char *j = "{\"images\": [[\"/mnt/a/1.jpg\", [\"tie\", \"tie\"]],"
                    " [\"/mnt/a/2.jpg\", [\"person\", \"cat\", \"person\"]]],"
                    " \"classes\": [\"tie\", \"person\", \"cat\"]}";
    ramc_status st = parse_json(j, NULL, DATASET_STRICT, &ds);
    CHECK(st == RAMC_OK, "%s", ramc_last_error());
    if (st != RAMC_OK) return;
    CHECK(ds.n_items == 2, "%d items", ds.n_items);
    CHECK(ds.classes.n == 3 && !strcmp(ds.classes.names[0], "cat") &&
              !strcmp(ds.classes.names[1], "person") && !strcmp(ds.classes.names[2], "tie"),
          "classes sorted");
    CHECK(ds.items[0].n_labels == 1 && ds.items[0].labels[0] == 2, "tie,tie -> {tie}");
    CHECK(ds.items[1].n_labels == 2 && ds.items[1].labels[0] == 0 && ds.items[1].labels[1] == 1,
          "person,cat,person -> {cat, person}");
    CHECK(ds.n_duplicates == 2, "duplicates %ld", ds.n_duplicates);
    CHECK(!strcmp(ds.items[0].path, "/mnt/a/1.jpg"), "absolute path kept: %s", ds.items[0].path);
    CHECK(!strcmp(ds.source, "data/train.json"), "source");

    float t[2 * 3];
    int idx[2] = {1, 0};
    CHECK(dataset_targets(&ds, idx, 2, t) == RAMC_OK, "targets");
    const float want[6] = {1, 1, 0, 0, 0, 1};
    CHECK(!memcmp(t, want, sizeof want), "multi-hot rows");
    int bad = 2;
    CHECK_ERR(dataset_targets(&ds, &bad, 1, t), "out of range");

    dataset_stats s;
    CHECK(dataset_compute_stats(&ds, &s) == RAMC_OK, "stats");
    CHECK(s.n_images == 2 && s.n_classes == 3 && s.n_labels == 3, "stats counts");
    CHECK_CLOSE(s.labels_per_image, 1.5, 1e-12, "labels per image");
    CHECK(s.min_labels == 1 && s.max_labels == 2 && s.n_empty == 0 && s.n_classes_unused == 0,
          "stats min/max");
    CHECK(s.images_per_class[0] == 1 && s.images_per_class[1] == 1 && s.images_per_class[2] == 1,
          "images per class");
    dataset_stats_free(&s);
    dataset_free(&ds);

    /* a given class list wins over the file's own (GZSL) */
    const char *names[] = {"tie", "cat", "person", "dog"};
    class_list cl;
    CHECK(class_list_from_names(names, 4, "given", &cl) == RAMC_OK, "%s", ramc_last_error());
    st = parse_json(j, &cl, DATASET_STRICT, &ds);
    CHECK(st == RAMC_OK, "%s", ramc_last_error());
    if (st == RAMC_OK) {
        CHECK(ds.classes.n == 4 && !strcmp(ds.classes.names[3], "dog"), "given order kept");
        CHECK(ds.items[0].labels[0] == 0, "tie is 0 in the given order");
        dataset_stats s2;
        dataset_compute_stats(&ds, &s2);
        CHECK(s2.n_classes_unused == 1, "dog unused");
        dataset_stats_free(&s2);
        dataset_free(&ds);
    }
    /* without "classes" the list must be given */
    CHECK_ERR(parse_json("{\"images\": [[\"a.jpg\", [\"cat\"]]]}", NULL, DATASET_STRICT, &ds),
              "data/train.json", "classes");
    st = parse_json("{\"images\": [[\"a.jpg\", [\"cat\"]]]}", &cl, DATASET_STRICT, &ds);
    CHECK(st == RAMC_OK, "%s", ramc_last_error());
    if (st == RAMC_OK) {
        CHECK(!strcmp(ds.items[0].path, "data/a.jpg"), "relative path against the file's folder: %s",
              ds.items[0].path);
        dataset_free(&ds);
    }
    class_list_free(&cl);
}

static void test_json_labels(void) {
    dataset ds;
    const char *unknown = "{\"images\": [[\"/a.jpg\", [\"cat\"]], [\"/b.jpg\", [\"cat\", \"dgo\"]]],"
                          " \"classes\": [\"cat\", \"dog\"]}";
    CHECK_ERR(parse_json(unknown, NULL, DATASET_STRICT, &ds), "data/train.json",
              "images[1][1][1]", "unknown label 'dgo'");
    ramc_status st = parse_json(unknown, NULL, DATASET_OFFICIAL, &ds);
    CHECK(st == RAMC_OK, "%s", ramc_last_error());
    if (st == RAMC_OK) {
        CHECK(ds.n_unknown_dropped == 1 && ds.items[1].n_labels == 1, "dropped silently");
        dataset_free(&ds);
    }
    const char *empty = "{\"images\": [[\"/a.jpg\", [\"cat\"]], [\"/b.jpg\", []], [\"/c.jpg\", [\"x\"]]],"
                        " \"classes\": [\"cat\", \"dog\"]}";
    CHECK_ERR(parse_json(empty, NULL, DATASET_STRICT, &ds), "images[1][1]", "empty label list");
    st = parse_json(empty, NULL, DATASET_OFFICIAL, &ds);
    CHECK(st == RAMC_OK, "%s", ramc_last_error());
    if (st == RAMC_OK) {
        /* [] and a list of only unknown labels both become all-negative */
        CHECK(ds.n_items == 3 && ds.n_empty == 2 && ds.items[1].n_labels == 0 &&
                  ds.items[2].n_labels == 0,
              "kept as all-negative");
        float t[3 * 2];
        int idx[3] = {0, 1, 2};
        dataset_targets(&ds, idx, 3, t);
        CHECK(t[0] == 1 && t[1] == 0 && t[2] == 0 && t[3] == 0 && t[4] == 0 && t[5] == 0,
              "all-negative targets");
        dataset_free(&ds);
    }
}

static void test_json_types(void) {
    dataset ds;
    struct {
        const char *json, *frag;
    } cases[] = {
        {"[1, 2]", "expected a JSON object"},
        {"{\"classes\": [\"a\"]}", "no \"images\""},
        {"{\"images\": {}, \"classes\": [\"a\"]}", "images: expected an array"},
        {"{\"images\": [], \"classes\": [\"a\"]}", "images: no entries"},
        {"{\"images\": [[\"/x\", [\"a\"]], 7], \"classes\": [\"a\"]}", "images[1]: expected [path"},
        {"{\"images\": [[\"/x\", [\"a\"], 3]], \"classes\": [\"a\"]}", "images[0]: expected [path"},
        {"{\"images\": [[\"/x\", [\"a\"]], [5, [\"a\"]]], \"classes\": [\"a\"]}", "images[1][0]: expected a string"},
        {"{\"images\": [[\"/x\", \"a\"]], \"classes\": [\"a\"]}", "images[0][1]: expected an array"},
        {"{\"images\": [[\"/x\", [\"a\"]], [\"/y\", [\"a\"]], [\"/z\", [\"a\", \"a\", null]]], \"classes\": [\"a\"]}",
         "images[2][1][2]: expected a string"},
        {"{\"images\": [[\"\", [\"a\"]]], \"classes\": [\"a\"]}", "images[0][0]: empty image path"},
        {"{\"images\": [[\"/x\", [\"a\"]]], \"classes\": \"a\"}", "classes: expected an array"},
        {"{\"images\": [[\"/x\", [\"a\"]]], \"classes\": [\"a\", 3]}", "classes[1]: expected a string"},
        {"{\"images\": [[\"/x\", [\"a\"]]], \"classes\": [\"a\", \"b\", \"a\"]}", "classes[2]: duplicate class 'a'"},
        {"{\"images\": [[\"/x\", [\"a\"]]], \"classes\": []}", "classes: empty"},
        {"{\"images\": [[\"/x\", [\"a\"]]], \"classes\": [\"a\", \"\"]}", "classes[1]: empty class name"},
        {"{\"images\": [[\"/x\", [\"a\"]]], \"classes\": [\"a\", \"b\\nc\"]}", "classes[1]: class name"},
        {"{\"images\": [[\"/x\", [\"a\"]]], \"classes\": [\"a\"", "invalid JSON"},
        {"not json", "invalid JSON near byte"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ramc_status st = parse_json(cases[i].json, NULL, DATASET_OFFICIAL, &ds);
        CHECK_ERR(st, "data/train.json", cases[i].frag);
        if (st == RAMC_OK) dataset_free(&ds);
    }
    /* from a file: bad JSON names the file */
    put("bad.json", "{\"images\": [");
    CHECK_ERR(dataset_load(tmp_path("bad.json"), NULL, NULL, &ds), tmp_path("bad.json"), "invalid JSON");
    CHECK_ERR(dataset_load(tmp_path("absent.json"), NULL, NULL, &ds), "absent.json", "cannot open");
}

static const char *path_of(const char *json_path, const char *map, const char *root,
                           dataset_mode mode, ramc_status *st_out) {
    static char out[1024];
    char j[512];
    snprintf(j, sizeof j, "{\"images\": [[\"%s\", [\"a\"]]], \"classes\": [\"a\"]}", json_path);
    dataset_options o = {mode, map, root};
    dataset ds;
    ramc_status st = dataset_parse_json(j, strlen(j), "/ann/test.json", NULL, &o, &ds);
    if (st_out) *st_out = st;
    if (st != RAMC_OK) return NULL;
    snprintf(out, sizeof out, "%s", ds.items[0].path);
    dataset_free(&ds);
    return out;
}

static void test_paths(void) {
    const char *orig = "/mnt/nas/COCO/trainval2014/x.jpg";
    struct {
        const char *path, *map, *root, *want;
    } cases[] = {
        {orig, NULL, NULL, orig},                                     /* absolute kept */
        {orig, NULL, "/data", orig},                                  /* root only for relative */
        {orig, "/mnt/nas/COCO=/data/coco", NULL, "/data/coco/trainval2014/x.jpg"},
        {orig, "/mnt/nas/COCO=>/data/coco", NULL, "/data/coco/trainval2014/x.jpg"},
        {orig, "/mnt/nas/COCO/=", "/data", "/data/trainval2014/x.jpg"},
        {orig, "/mnt/nas/COCO=", "/data/", "/data/trainval2014/x.jpg"},
        {orig, "/mnt/nas/COCO/=", NULL, "/ann/trainval2014/x.jpg"},  /* relative -> file's folder */
        {orig, "/mnt/nas/COCO/=img/", "/r", "/r/img/trainval2014/x.jpg"},
        {"img/y.jpg", NULL, NULL, "/ann/img/y.jpg"},
        {"img/y.jpg", NULL, "/r", "/r/img/y.jpg"},
        {"/other/z.jpg", "/mnt/nas/COCO=/data", NULL, "/other/z.jpg"}, /* official: unmatched kept */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ramc_status st;
        const char *got = path_of(cases[i].path, cases[i].map, cases[i].root, DATASET_OFFICIAL, &st);
        CHECK(got && !strcmp(got, cases[i].want), "case %zu: got %s, want %s (%s)", i,
              got ? got : "(error)", cases[i].want, ramc_last_error());
    }
    ramc_status st;
    CHECK(path_of("/other/z.jpg", "/mnt/nas/COCO=/data", NULL, DATASET_STRICT, &st) == NULL,
          "strict: unmatched path_map");
    CHECK_ERR(st, "images[0][0]", "does not start with the path_map prefix '/mnt/nas/COCO'");
    CHECK(path_of(orig, "=/data", NULL, DATASET_OFFICIAL, &st) == NULL, "empty OLD");
    CHECK_ERR(st, "path_map '=/data'");
    CHECK(path_of(orig, "nomap", NULL, DATASET_OFFICIAL, &st) == NULL, "no '='");
    CHECK_ERR(st, "expected OLD=NEW");
    /* a file in the current folder: relative paths stay relative */
    const char *j = "{\"images\": [[\"p.jpg\", [\"a\"]]], \"classes\": [\"a\"]}";
    dataset ds;
    st = dataset_parse_json(j, strlen(j), "test.json", NULL, NULL, &ds);
    CHECK(st == RAMC_OK && !strcmp(ds.items[0].path, "p.jpg"), "cwd-relative");
    if (st == RAMC_OK) dataset_free(&ds);
}

static void test_tsv(void) {
    dataset ds;
    const char *good = "\xEF\xBB\xBF# path<TAB>labels\n"
                       "\n"
                       "img/1.jpg\tcat, dog\r\n"
                       "  /abs/2.jpg \t dog \n"
                       "img/3.jpg\tbird,cat,cat\n";
    put("train.tsv", good);
    ramc_status st = dataset_load(tmp_path("train.tsv"), NULL, NULL, &ds);
    CHECK(st == RAMC_OK, "%s", ramc_last_error());
    if (st == RAMC_OK) {
        CHECK(ds.n_items == 3 && ds.classes.n == 3, "%d items %d classes", ds.n_items, ds.classes.n);
        CHECK(!strcmp(ds.classes.names[0], "bird") && !strcmp(ds.classes.names[2], "dog"),
              "classes from labels, sorted");
        CHECK(!strcmp(ds.items[0].path, tmp_path("img/1.jpg")), "relative to the file: %s",
              ds.items[0].path);
        CHECK(!strcmp(ds.items[1].path, "/abs/2.jpg"), "trimmed absolute: '%s'", ds.items[1].path);
        CHECK(ds.items[0].n_labels == 2 && ds.items[0].labels[0] == 1 && ds.items[0].labels[1] == 2,
              "labels 1");
        CHECK(ds.items[2].n_labels == 2 && ds.n_duplicates == 1, "cat,cat merged");
        dataset_free(&ds);
    }
    const char *names[] = {"cat", "dog"};
    class_list cl;
    class_list_from_names(names, 2, "given", &cl);
    CHECK_ERR(dataset_parse_tsv(good, strlen(good), "t.tsv", &cl, NULL, &ds), "t.tsv:5:",
              "unknown label 'bird'");
    dataset_options off = dataset_default_options();
    off.mode = DATASET_OFFICIAL;
    st = dataset_parse_tsv(good, strlen(good), "t.tsv", &cl, &off, &ds);
    CHECK(st == RAMC_OK && ds.n_unknown_dropped == 1, "official drops bird");
    if (st == RAMC_OK) dataset_free(&ds);

    struct {
        const char *text, *frag;
    } bad[] = {
        {"a.jpg\tcat\nb.jpg cat\n", "t.tsv:2: expected 'path<TAB>"},
        {"a.jpg\tcat\n\n# c\nb.jpg\tcat,,dog\n", "t.tsv:4: empty label name"},
        {"a.jpg\tcat,\n", "t.tsv:1: empty label name"},
        {"a.jpg\tcat\nb.jpg\t\n", "t.tsv:2: empty label list"},
        {"a.jpg\tcat\tdog\n", "t.tsv:1: more than one tab"},
        {"\tcat\n", "t.tsv:1: empty image path"},
        {"# only comments\n\n", "t.tsv: no images"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        st = dataset_parse_tsv(bad[i].text, strlen(bad[i].text), "t.tsv", &cl, NULL, &ds);
        CHECK_ERR(st, bad[i].frag);
        if (st == RAMC_OK) dataset_free(&ds);
    }
    /* official: an empty label field is an all-negative image */
    const char *emp = "a.jpg\tcat\nb.jpg\t\n";
    st = dataset_parse_tsv(emp, strlen(emp), "t.tsv", &cl, &off, &ds);
    CHECK(st == RAMC_OK && ds.n_empty == 1 && ds.items[1].n_labels == 0, "official empty kept");
    if (st == RAMC_OK) dataset_free(&ds);
    /* without a class list, label names are validated with the line */
    const char *badutf = "a.jpg\tcat\nb.jpg\tc\xC3\x28t\n";
    CHECK_ERR(dataset_parse_tsv(badutf, strlen(badutf), "t.tsv", NULL, NULL, &ds), "t.tsv:2:",
              "invalid UTF-8");
    /* a .txt that starts with '{' is read as JSON */
    put("sniff.txt", "  {\"images\": [[\"/x.jpg\", [\"cat\"]]], \"classes\": [\"cat\"]}");
    st = dataset_load(tmp_path("sniff.txt"), NULL, NULL, &ds);
    CHECK(st == RAMC_OK && ds.n_items == 1, "sniffed JSON: %s", ramc_last_error());
    if (st == RAMC_OK) dataset_free(&ds);
    class_list_free(&cl);
}

static void test_class_lists(void) {
    class_list cl;
    put("seen.txt", "# seen classes\n  cat \r\n\n dog\t\n# comment\nhot dog\n");
    ramc_status st = class_list_load(tmp_path("seen.txt"), &cl);
    CHECK(st == RAMC_OK, "%s", ramc_last_error());
    if (st == RAMC_OK) {
        CHECK(cl.n == 3 && !strcmp(cl.names[0], "cat") && !strcmp(cl.names[1], "dog") &&
                  !strcmp(cl.names[2], "hot dog"),
              "file order, trimmed");
        CHECK(class_list_find(&cl, "hot dog") == 2 && class_list_find(&cl, "Cat") == -1 &&
                  class_list_find(&cl, "ca") == -1,
              "find");
        class_list_free(&cl);
    }
    put("dup.txt", "cat\n\ndog\n# x\ncat\n");
    CHECK_ERR(class_list_load(tmp_path("dup.txt"), &cl), "dup.txt:5:", "duplicate class 'cat'",
              "first on line 1");
    put("utf.txt", "cat\ndog\nca\xC3\x28t\n");
    CHECK_ERR(class_list_load(tmp_path("utf.txt"), &cl), "utf.txt:3:", "invalid UTF-8");
    put("overlong.txt", "a\n\xC0\x80x\n");
    CHECK_ERR(class_list_load(tmp_path("overlong.txt"), &cl), "overlong.txt:2:", "invalid UTF-8");
    put("surrogate.txt", "\xED\xA0\x80\n");
    CHECK_ERR(class_list_load(tmp_path("surrogate.txt"), &cl), "surrogate.txt:1:", "invalid UTF-8");
    put("utf_ok.txt", "caf\xC3\xA9\n\xE7\x8C\xAB\n\xF0\x9F\x90\x88\n");
    st = class_list_load(tmp_path("utf_ok.txt"), &cl);
    CHECK(st == RAMC_OK && cl.n == 3, "valid multi-byte names: %s", ramc_last_error());
    if (st == RAMC_OK) class_list_free(&cl);
    put("empty.txt", "# nothing\n\n");
    CHECK_ERR(class_list_load(tmp_path("empty.txt"), &cl), "empty.txt", "no class names");
    {
        size_t n = DATASET_MAX_NAME_BYTES + 1;
        char *big = malloc(n + 8);
        memset(big, 'x', n);
        memcpy(big + n, "\n", 2);
        write_file(tmp_path("long.txt"), big, n + 1);
        free(big);
        CHECK_ERR(class_list_load(tmp_path("long.txt"), &cl), "long.txt:1:", "1025 bytes");
    }
    {
        /* 65537 distinct names */
        size_t cap = 65537 * 8, k = 0;
        char *text = malloc(cap);
        for (int i = 0; i < 65537; i++) k += (size_t)sprintf(text + k, "c%d\n", i);
        write_file(tmp_path("many.txt"), text, k);
        free(text);
        CHECK_ERR(class_list_load(tmp_path("many.txt"), &cl), "many.txt:65537:", "more than 65536");
    }
    const char *names[] = {"a", "b", "a"};
    CHECK_ERR(class_list_from_names(names, 3, "mine", &cl), "mine: [2]", "duplicate class 'a'");
    /* the "classes" field of a JSON file, sorted */
    put("c.json", "{\"images\": [], \"classes\": [\"tie\", \"Zebra\", \"a1\", \"a b\", \"apple\"]}");
    st = class_list_load(tmp_path("c.json"), &cl);
    CHECK(st == RAMC_OK, "%s", ramc_last_error());
    if (st == RAMC_OK) {
        const char *want[] = {"Zebra", "a b", "a1", "apple", "tie"};
        for (int i = 0; i < 5; i++)
            CHECK(!strcmp(cl.names[i], want[i]), "json classes [%d] %s, want %s", i, cl.names[i],
                  want[i]);
        CHECK(class_list_find(&cl, "tie") == 4, "index rebuilt after sorting");
        class_list_free(&cl);
    }
}

static void test_gzsl(void) {
    const char *seen_n[] = {"zebra", "apple", "Zebra", "a1", "a b"};
    const char *unseen_n[] = {"tie", "Cat", "\xC3\xA9t\xC3\xA9", "umbrella"};
    class_list seen, unseen, g;
    class_list_from_names(seen_n, 5, "seen", &seen);
    class_list_from_names(unseen_n, 4, "unseen", &unseen);
    ramc_status st = class_list_gzsl(&seen, &unseen, &g);
    CHECK(st == RAMC_OK, "%s", ramc_last_error());
    if (st == RAMC_OK) {
        /* Python: sorted(seen) + sorted(unseen); 'Zebra' < 'apple', 'a b' < 'a1', 'é' after ASCII */
        const char *want[] = {"Zebra", "a b", "a1", "apple", "zebra",
                              "Cat", "tie", "umbrella", "\xC3\xA9t\xC3\xA9"};
        CHECK(g.n == 9, "n %d", g.n);
        for (int i = 0; i < 9 && i < g.n; i++)
            CHECK(!strcmp(g.names[i], want[i]), "gzsl [%d] %s, want %s", i, g.names[i], want[i]);
        CHECK(class_list_find(&g, "Cat") == 5, "find in gzsl");
        class_list_free(&g);
    }
    /* inputs are untouched */
    CHECK(!strcmp(seen.names[0], "zebra"), "seen order kept");
    const char *clash[] = {"tie"};
    class_list c;
    class_list_from_names(clash, 1, "c", &c);
    CHECK(class_list_gzsl(&seen, &c, &g) == RAMC_OK && g.n == 6, "no overlap");
    class_list_free(&g);
    CHECK_ERR(class_list_gzsl(&c, &unseen, &g), "'tie' is both seen and unseen");
    class_list_free(&c);
    class_list_free(&seen);
    class_list_free(&unseen);

    /* COCO 48/17 (spec §9.2): unseen take GZSL indices 48..64 */
    const char *coco_unseen[] = {"umbrella", "tie", "snowboard", "skateboard", "sink", "scissors",
                                 "knife", "keyboard", "elephant", "dog", "cup", "cow", "couch",
                                 "cat", "cake", "bus", "airplane"};
    const char *coco_seen[] = {"zebra", "vase", "tv", "truck", "train", "toothbrush", "toilet",
        "toaster", "surfboard", "suitcase", "spoon", "skis", "sheep", "sandwich", "remote",
        "refrigerator", "pizza", "person", "oven", "orange", "mouse", "motorcycle", "microwave",
        "laptop", "kite", "horse", "handbag", "giraffe", "frisbee", "fork", "donut", "clock",
        "chair", "carrot", "car", "broccoli", "bowl", "bottle", "book", "boat", "bird", "bicycle",
        "bench", "bed", "bear", "banana", "backpack", "apple"};
    class_list_from_names(coco_seen, 48, "seen", &seen);
    class_list_from_names(coco_unseen, 17, "unseen", &unseen);
    st = class_list_gzsl(&seen, &unseen, &g);
    CHECK(st == RAMC_OK && g.n == 65, "coco gzsl");
    if (st == RAMC_OK) {
        CHECK(class_list_find(&g, "apple") == 0 && class_list_find(&g, "zebra") == 47 &&
                  class_list_find(&g, "airplane") == 48 && class_list_find(&g, "umbrella") == 64 &&
                  class_list_find(&g, "person") == 30,
              "coco indices");
        class_list_free(&g);
    }
    class_list_free(&seen);
    class_list_free(&unseen);
}

static int n_cb;
static char cb_path[1024];
static void on_missing(int index, const char *path, const char *reason, void *user) {
    n_cb++;
    snprintf(cb_path, sizeof cb_path, "%s", path);
    (void)index, (void)reason, (void)user;
}

static void test_check_images(void) {
    put("here.jpg", "x");
    char tsv[2048];
    snprintf(tsv, sizeof tsv, "here.jpg\tcat\nmissing.jpg\tcat\n%s\tcat\n", dir);
    put("check.tsv", tsv);
    dataset ds;
    ramc_status st = dataset_load(tmp_path("check.tsv"), NULL, NULL, &ds);
    CHECK(st == RAMC_OK, "%s", ramc_last_error());
    if (st != RAMC_OK) return;
    int missing = -1;
    CHECK(dataset_check_images(&ds, &missing, on_missing, NULL) == RAMC_OK, "check");
    CHECK(missing == 2 && n_cb == 2, "missing %d (a file absent, a folder)", missing);
    CHECK(strstr(cb_path, dir) != NULL, "callback path %s", cb_path);
    CHECK(dataset_check_images(&ds, &missing, NULL, NULL) == RAMC_OK && missing == 2, "no callback");
    dataset_free(&ds);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/ramc_test_dataset_XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 2;
    }
    test_json_basic();
    test_json_labels();
    test_json_types();
    test_paths();
    test_tsv();
    test_class_lists();
    test_gzsl();
    test_check_images();
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return test_summary("test_dataset");
}
