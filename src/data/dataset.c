/* Class lists and datasets: see dataset.h and docs/datasets.md. */
#include "data/dataset.h"
#include "core/utf8.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "io/file.h"

/* ------------------------------------------------------------------ text */

static int is_space(unsigned char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

/* Trims [*s, *s + *n) in place (ASCII whitespace only: names may contain
 * non-ASCII spaces on purpose, and Python's strip of the official lists was
 * never applied to them anyway). */
static void trim(const char **s, size_t *n) {
    while (*n && is_space((unsigned char)(*s)[0])) (*s)++, (*n)--;
    while (*n && is_space((unsigned char)(*s)[*n - 1])) (*n)--;
}

/* A UTF-8 byte-order mark is what Windows editors put first; it is not part
 * of the first name. */
static void skip_bom(const char **text, size_t *len) {
    if (*len >= 3 && (unsigned char)(*text)[0] == 0xEF && (unsigned char)(*text)[1] == 0xBB &&
        (unsigned char)(*text)[2] == 0xBF) {
        *text += 3;
        *len -= 3;
    }
}

/* Checks one class name; on a problem writes it to `why` and returns 0. */
static int name_ok(const char *s, size_t n, char *why, size_t why_size) {
    if (n == 0) {
        snprintf(why, why_size, "empty class name");
        return 0;
    }
    if (n > DATASET_MAX_NAME_BYTES) {
        snprintf(why, why_size, "class name of %zu bytes, more than the %d allowed", n,
                 DATASET_MAX_NAME_BYTES);
        return 0;
    }
    long bad = utf8_invalid_at((const unsigned char *)s, n);
    if (bad >= 0) {
        snprintf(why, why_size, "invalid UTF-8 at byte %ld of a class name", bad);
        return 0;
    }
    if (utf8_is_blank(s, n)) {
        /* U+00A0, U+3000...: a name nobody can see would still take a share of every score */
        snprintf(why, why_size, "class name of only (Unicode) white space");
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        /* a control character would break TSV lines, logs and prompts */
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7F) {
            /* s is a slice of a line, not a C string: bound the print by n */
            snprintf(why, why_size, "class name '%.*s' contains control character 0x%02x",
                     (int)(n < 200 ? n : 200), s, (unsigned char)s[i]);
            return 0;
        }
    }
    return 1;
}

static char *dup_n(const char *s, size_t n, const char *what) {
    char *p = ramc_malloc(n + 1, what);
    if (!p) return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

/* ----------------------------------------------------------- class lists */

int class_name_compare(const void *a, const void *b) {
    /* strcmp compares as unsigned char, which on UTF-8 is code-point order:
     * exactly Python's sorted() on str. */
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static uint32_t name_hash(const char *s) {
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

/* Slot of `name`: either holding it or the empty slot where it would go. */
static int slot_of(const class_list *cl, const char *name) {
    uint32_t mask = (uint32_t)cl->n_slots - 1;
    uint32_t i = name_hash(name) & mask;
    while (cl->slots[i] >= 0 && strcmp(cl->names[cl->slots[i]], name) != 0) i = (i + 1) & mask;
    return (int)i;
}

static ramc_status rehash(class_list *cl, int min_slots) {
    int ns = 16;
    while (ns < min_slots) ns *= 2;
    int32_t *slots = ramc_malloc((size_t)ns * sizeof *slots, "class index");
    if (!slots) return RAMC_ERR_NOMEM;
    for (int i = 0; i < ns; i++) slots[i] = -1;
    free(cl->slots);
    cl->slots = slots;
    cl->n_slots = ns;
    for (int j = 0; j < cl->n; j++) {
        int s = slot_of(cl, cl->names[j]);
        if (cl->slots[s] < 0) cl->slots[s] = j; /* duplicates: first one wins */
    }
    return RAMC_OK;
}

/* Appends a name (copied) unless present. *index gets its index; *added
 * whether it is new. Capacity grows geometrically (cap kept in *cap). */
static ramc_status cl_add(class_list *cl, int *cap, const char *name, size_t len, int *index,
                          int *added) {
    char *copy = dup_n(name, len, "class name");
    if (!copy) return RAMC_ERR_NOMEM;
    if (cl->n_slots == 0 || 2 * (cl->n + 1) > cl->n_slots) {
        ramc_status st = rehash(cl, 2 * (cl->n + 1));
        if (st != RAMC_OK) {
            free(copy);
            return st;
        }
    }
    int s = slot_of(cl, copy);
    if (cl->slots[s] >= 0) {
        *index = cl->slots[s];
        *added = 0;
        free(copy);
        return RAMC_OK;
    }
    if (cl->n == *cap) {
        int nc = *cap ? 2 * *cap : 64;
        char **names = realloc(cl->names, (size_t)nc * sizeof *names);
        if (!names) {
            free(copy);
            return ramc_error(RAMC_ERR_NOMEM, "out of memory growing a class list");
        }
        cl->names = names;
        *cap = nc;
    }
    cl->names[cl->n] = copy;
    cl->slots[s] = cl->n;
    *index = cl->n++;
    *added = 1;
    return RAMC_OK;
}

void class_list_free(class_list *cl) {
    if (!cl) return;
    for (int i = 0; i < cl->n; i++) free(cl->names[i]);
    free(cl->names);
    free(cl->slots);
    memset(cl, 0, sizeof *cl);
}

int class_list_find(const class_list *cl, const char *name) {
    if (!cl || cl->n_slots == 0 || !name) return -1;
    return cl->slots[slot_of(cl, name)];
}

ramc_status class_list_from_names(const char *const *names, int n, const char *what,
                                  class_list *out) {
    memset(out, 0, sizeof *out);
    if (!what) what = "class list";
    if (n < 0 || (n > 0 && !names))
        return ramc_error(RAMC_ERR_INVALID_ARG, "%s: bad name array", what);
    if (n > DATASET_MAX_CLASSES)
        return ramc_error(RAMC_ERR_LIMIT, "%s: %d classes, more than the %d allowed", what, n,
                          DATASET_MAX_CLASSES);
    class_list cl = {0};
    int cap = 0;
    for (int i = 0; i < n; i++) {
        char why[400];
        if (!names[i]) {
            class_list_free(&cl);
            return ramc_error(RAMC_ERR_INVALID_ARG, "%s: [%d]: missing name", what, i);
        }
        size_t len = strlen(names[i]);
        if (!name_ok(names[i], len, why, sizeof why)) {
            class_list_free(&cl);
            return ramc_error(RAMC_ERR_FORMAT, "%s: [%d]: %s", what, i, why);
        }
        int idx, added;
        ramc_status st = cl_add(&cl, &cap, names[i], len, &idx, &added);
        if (st != RAMC_OK) {
            class_list_free(&cl);
            return st;
        }
        if (!added) {
            class_list_free(&cl);
            return ramc_error(RAMC_ERR_FORMAT, "%s: [%d]: duplicate class '%.200s' (also [%d])",
                              what, i, names[i], idx);
        }
    }
    *out = cl;
    return RAMC_OK;
}

ramc_status class_list_sort(class_list *cl) {
    if (cl->n > 1) qsort(cl->names, (size_t)cl->n, sizeof *cl->names, class_name_compare);
    return rehash(cl, 2 * cl->n + 2);
}

ramc_status class_list_copy(const class_list *src, class_list *out) {
    return class_list_from_names((const char *const *)src->names, src->n, "class list", out);
}

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

ramc_status class_list_load(const char *path, class_list *out) {
    memset(out, 0, sizeof *out);
    if (ends_with(path, ".json")) return class_list_from_json(path, out);
    char *data;
    size_t len;
    ramc_status st = read_whole_file(path, DATASET_MAX_FILE_BYTES, &data, &len);
    if (st != RAMC_OK) return st;
    const char *p = data;
    skip_bom(&p, &len);
    const char *end = p + len;
    class_list cl = {0};
    int cap = 0, lines_cap = 0;
    int *first_line = NULL; /* line of each class, for duplicate messages */
    int line = 0;
    while (p < end) {
        line++;
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        const char *s = p;
        size_t n = (size_t)(le - p);
        p = nl ? nl + 1 : end;
        trim(&s, &n);
        if (n == 0 || s[0] == '#') continue;
        if (memchr(s, '\0', n)) {
            st = ramc_error(RAMC_ERR_FORMAT, "%s:%d: NUL byte in a class name", path, line);
            goto fail;
        }
        char why[400];
        if (!name_ok(s, n, why, sizeof why)) {
            st = ramc_error(RAMC_ERR_FORMAT, "%s:%d: %s", path, line, why);
            goto fail;
        }
        if (cl.n >= DATASET_MAX_CLASSES) {
            st = ramc_error(RAMC_ERR_LIMIT, "%s:%d: more than %d classes", path, line,
                            DATASET_MAX_CLASSES);
            goto fail;
        }
        int idx, added;
        st = cl_add(&cl, &cap, s, n, &idx, &added);
        if (st != RAMC_OK) goto fail;
        if (!added) {
            st = ramc_error(RAMC_ERR_FORMAT, "%s:%d: duplicate class '%.200s' (first on line %d)",
                            path, line, cl.names[idx], first_line[idx]);
            goto fail;
        }
        if (cl.n > lines_cap) {
            int nc = lines_cap ? 2 * lines_cap : 64;
            int *fl = realloc(first_line, (size_t)nc * sizeof *fl);
            if (!fl) {
                st = ramc_error(RAMC_ERR_NOMEM, "out of memory reading %s", path);
                goto fail;
            }
            first_line = fl;
            lines_cap = nc;
        }
        first_line[idx] = line;
    }
    free(first_line);
    free(data);
    if (cl.n == 0) {
        class_list_free(&cl);
        return ramc_error(RAMC_ERR_FORMAT, "%s: no class names", path);
    }
    *out = cl;
    return RAMC_OK;
fail:
    free(first_line);
    free(data);
    class_list_free(&cl);
    return st;
}

/* Reads json["classes"] (array of strings) into a list, file order. */
static ramc_status classes_from_json_field(const cJSON *root, const char *name, class_list *out) {
    memset(out, 0, sizeof *out);
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, "classes");
    if (!arr)
        return ramc_error(RAMC_ERR_FORMAT,
                          "%s: no \"classes\" field (give a class list instead)", name);
    if (!cJSON_IsArray(arr))
        return ramc_error(RAMC_ERR_FORMAT, "%s: classes: expected an array of strings", name);
    int n = cJSON_GetArraySize(arr);
    if (n > DATASET_MAX_CLASSES)
        return ramc_error(RAMC_ERR_LIMIT, "%s: classes: %d names, more than the %d allowed", name,
                          n, DATASET_MAX_CLASSES);
    if (n == 0) return ramc_error(RAMC_ERR_FORMAT, "%s: classes: empty", name);
    class_list cl = {0};
    int cap = 0, i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, arr) {
        char why[400];
        if (!cJSON_IsString(it) || !it->valuestring) {
            class_list_free(&cl);
            return ramc_error(RAMC_ERR_FORMAT, "%s: classes[%d]: expected a string", name, i);
        }
        size_t len = strlen(it->valuestring);
        if (!name_ok(it->valuestring, len, why, sizeof why)) {
            class_list_free(&cl);
            return ramc_error(RAMC_ERR_FORMAT, "%s: classes[%d]: %s", name, i, why);
        }
        int idx, added;
        ramc_status st = cl_add(&cl, &cap, it->valuestring, len, &idx, &added);
        if (st != RAMC_OK) {
            class_list_free(&cl);
            return st;
        }
        if (!added) {
            class_list_free(&cl);
            return ramc_error(RAMC_ERR_FORMAT,
                              "%s: classes[%d]: duplicate class '%.200s' (also classes[%d])",
                              name, i, it->valuestring, idx);
        }
        i++;
    }
    *out = cl;
    return RAMC_OK;
}

ramc_status class_list_from_json(const char *path, class_list *out) {
    memset(out, 0, sizeof *out);
    cJSON *root;
    ramc_status st = json_load_file(path, DATASET_MAX_FILE_BYTES, &root);
    if (st != RAMC_OK) return st;
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return ramc_error(RAMC_ERR_FORMAT, "%s: expected a JSON object at the top level", path);
    }
    st = classes_from_json_field(root, path, out);
    cJSON_Delete(root);
    if (st != RAMC_OK) return st;
    st = class_list_sort(out); /* the official class map is sorted(classes) */
    if (st != RAMC_OK) class_list_free(out);
    return st;
}

ramc_status class_list_gzsl(const class_list *seen, const class_list *unseen, class_list *out) {
    memset(out, 0, sizeof *out);
    if (seen->n + unseen->n > DATASET_MAX_CLASSES)
        return ramc_error(RAMC_ERR_LIMIT, "GZSL classes: %d, more than the %d allowed",
                          seen->n + unseen->n, DATASET_MAX_CLASSES);
    for (int i = 0; i < unseen->n; i++)
        if (class_list_find(seen, unseen->names[i]) >= 0)
            return ramc_error(RAMC_ERR_MISMATCH, "class '%.200s' is both seen and unseen",
                              unseen->names[i]);
    int n = seen->n + unseen->n;
    char **tmp = ramc_malloc((size_t)(n ? n : 1) * sizeof *tmp, "GZSL class list");
    if (!tmp) return RAMC_ERR_NOMEM;
    for (int i = 0; i < seen->n; i++) tmp[i] = seen->names[i];
    for (int i = 0; i < unseen->n; i++) tmp[seen->n + i] = unseen->names[i];
    /* each block sorted on its own: seen first, then unseen (spec §9.1) */
    qsort(tmp, (size_t)seen->n, sizeof *tmp, class_name_compare);
    qsort(tmp + seen->n, (size_t)unseen->n, sizeof *tmp, class_name_compare);
    ramc_status st = class_list_from_names((const char *const *)tmp, n, "GZSL classes", out);
    free(tmp);
    return st;
}

/* -------------------------------------------------------------- datasets */

dataset_options dataset_default_options(void) {
    dataset_options o = {DATASET_STRICT, NULL, NULL};
    return o;
}

void dataset_free(dataset *ds) {
    if (!ds) return;
    for (int i = 0; i < ds->n_items; i++) {
        free(ds->items[i].path);
        free(ds->items[i].labels);
    }
    free(ds->items);
    class_list_free(&ds->classes);
    free(ds->source);
    memset(ds, 0, sizeof *ds);
}

/* Path remapping, prepared once per load. */
typedef struct {
    dataset_mode mode;
    char *map_old, *map_new; /* NULL: no path_map */
    char *root;              /* folder for relative paths; "" = current folder */
} path_rules;

static void path_rules_free(path_rules *r) {
    free(r->map_old);
    free(r->map_new);
    free(r->root);
}

static ramc_status path_rules_init(path_rules *r, const dataset_options *o, const char *name) {
    memset(r, 0, sizeof *r);
    r->mode = o->mode;
    if (o->mode != DATASET_STRICT && o->mode != DATASET_OFFICIAL)
        return ramc_error(RAMC_ERR_INVALID_ARG, "%s: unknown dataset mode %d", name, (int)o->mode);
    if (o->path_map && o->path_map[0]) {
        /* "=>" wins when present so that OLD may itself contain '=' */
        const char *sep = strstr(o->path_map, "=>");
        size_t seplen = 2;
        if (!sep) sep = strchr(o->path_map, '='), seplen = 1;
        if (!sep || sep == o->path_map)
            return ramc_error(RAMC_ERR_INVALID_ARG,
                              "path_map '%.200s': expected OLD=NEW with a non-empty OLD prefix",
                              o->path_map);
        r->map_old = dup_n(o->path_map, (size_t)(sep - o->path_map), "path_map");
        r->map_new = dup_n(sep + seplen, strlen(sep + seplen), "path_map");
        if (!r->map_old || !r->map_new) {
            path_rules_free(r);
            return RAMC_ERR_NOMEM;
        }
    }
    if (o->image_root && o->image_root[0]) {
        r->root = dup_n(o->image_root, strlen(o->image_root), "image_root");
    } else {
        /* default: the dataset file's folder, like a relative link */
        const char *slash = strrchr(name, '/');
        r->root = slash ? dup_n(name, (size_t)(slash - name + (slash == name)), "image root")
                        : dup_n("", 0, "image root");
    }
    if (!r->root) {
        path_rules_free(r);
        return RAMC_ERR_NOMEM;
    }
    return RAMC_OK;
}

/* Resolves one path; on a problem writes it to `why` and returns an error
 * code without a message (the caller knows the entry). */
static ramc_status resolve_path(const path_rules *r, const char *raw, size_t raw_len, char **out,
                                char *why, size_t why_size) {
    *out = NULL;
    if (raw_len == 0) {
        snprintf(why, why_size, "empty image path");
        return RAMC_ERR_FORMAT;
    }
    if (memchr(raw, '\0', raw_len)) {
        snprintf(why, why_size, "NUL byte in the image path");
        return RAMC_ERR_FORMAT;
    }
    const char *head = "", *rest = raw;
    size_t head_len = 0, rest_len = raw_len;
    int mapped_to_empty = 0;
    if (r->map_old) {
        size_t ol = strlen(r->map_old);
        if (raw_len >= ol && memcmp(raw, r->map_old, ol) == 0) {
            mapped_to_empty = r->map_new[0] == '\0';
            head = r->map_new;
            head_len = strlen(r->map_new);
            rest = raw + ol;
            rest_len = raw_len - ol;
        } else if (r->mode == DATASET_STRICT) {
            snprintf(why, why_size, "path '%.*s' does not start with the path_map prefix '%.200s'",
                     (int)(raw_len < 200 ? raw_len : 200), raw, r->map_old);
            return RAMC_ERR_FORMAT;
        }
    }
    /* mapped = head + rest; relative results are joined to the root */
    /* a prefix mapped to "" makes the rest relative ("/mnt/COCO=" turns
     * "/mnt/COCO/a.jpg" into "a.jpg"), so that it joins the image root */
    if (mapped_to_empty)
        while (rest_len && rest[0] == '/') rest++, rest_len--;
    int absolute = head_len ? head[0] == '/' : rest_len && rest[0] == '/';
    size_t root_len = absolute ? 0 : strlen(r->root);
    int need_slash = root_len && r->root[root_len - 1] != '/';
    size_t total = root_len + (size_t)need_slash + head_len + rest_len;
    if (total == 0) {
        snprintf(why, why_size, "image path '%.*s' maps to an empty path",
                 (int)(raw_len < 200 ? raw_len : 200), raw);
        return RAMC_ERR_FORMAT;
    }
    if (total > DATASET_MAX_PATH_BYTES) {
        snprintf(why, why_size, "image path of %zu bytes after remapping, more than the %d allowed",
                 total, DATASET_MAX_PATH_BYTES);
        return RAMC_ERR_LIMIT;
    }
    char *p = malloc(total + 1);
    if (!p) {
        snprintf(why, why_size, "out of memory");
        return RAMC_ERR_NOMEM;
    }
    size_t k = 0;
    memcpy(p + k, r->root, root_len), k += root_len;
    if (need_slash) p[k++] = '/';
    memcpy(p + k, head, head_len), k += head_len;
    memcpy(p + k, rest, rest_len), k += rest_len;
    p[k] = '\0';
    *out = p;
    return RAMC_OK;
}

static int int_compare(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* Growing item array. */
typedef struct {
    dataset ds;
    int cap;
    int32_t *scratch; /* label indices of the current item */
    int scratch_cap;
} builder;

static ramc_status builder_label(builder *b, int32_t idx) {
    if (b->ds.items[b->ds.n_items].n_labels == b->scratch_cap) {
        int nc = b->scratch_cap ? 2 * b->scratch_cap : 64;
        int32_t *s = realloc(b->scratch, (size_t)nc * sizeof *s);
        if (!s) return ramc_error(RAMC_ERR_NOMEM, "out of memory reading labels");
        b->scratch = s;
        b->scratch_cap = nc;
    }
    b->scratch[b->ds.items[b->ds.n_items].n_labels++] = idx;
    return RAMC_OK;
}

/* Opens a new item (path already resolved, taken over). */
static ramc_status builder_begin(builder *b, char *path, const char *name) {
    if (b->ds.n_items >= DATASET_MAX_ITEMS) {
        free(path);
        return ramc_error(RAMC_ERR_LIMIT, "%s: more than %d images", name, DATASET_MAX_ITEMS);
    }
    if (b->ds.n_items == b->cap) {
        int nc = b->cap ? 2 * b->cap : 1024;
        if (nc > DATASET_MAX_ITEMS + 1) nc = DATASET_MAX_ITEMS + 1;
        dataset_item *it = realloc(b->ds.items, (size_t)nc * sizeof *it);
        if (!it) {
            free(path);
            return ramc_error(RAMC_ERR_NOMEM, "out of memory reading %s", name);
        }
        b->ds.items = it;
        b->cap = nc;
    }
    dataset_item *it = &b->ds.items[b->ds.n_items];
    it->path = path;
    it->n_labels = 0;
    it->labels = NULL;
    return RAMC_OK;
}

/* Closes the current item: sorts and merges its labels (set semantics). */
static ramc_status builder_end(builder *b) {
    dataset_item *it = &b->ds.items[b->ds.n_items];
    int n = it->n_labels;
    if (n > 1) qsort(b->scratch, (size_t)n, sizeof *b->scratch, int_compare);
    int m = 0;
    for (int i = 0; i < n; i++)
        if (m == 0 || b->scratch[i] != b->scratch[m - 1]) b->scratch[m++] = b->scratch[i];
    b->ds.n_duplicates += n - m;
    it->n_labels = m;
    it->labels = malloc((size_t)(m ? m : 1) * sizeof *it->labels);
    if (!it->labels) {
        free(it->path);
        return ramc_error(RAMC_ERR_NOMEM, "out of memory storing labels");
    }
    if (m) memcpy(it->labels, b->scratch, (size_t)m * sizeof *it->labels);
    if (m == 0) b->ds.n_empty++;
    b->ds.n_items++;
    return RAMC_OK;
}

/* Frees the item in progress (not yet counted in n_items). */
static void builder_abort_item(builder *b) {
    if (b->ds.items && b->ds.n_items < b->cap) {
        free(b->ds.items[b->ds.n_items].path);
        b->ds.items[b->ds.n_items].path = NULL;
    }
}

static void builder_free(builder *b) {
    dataset_free(&b->ds);
    free(b->scratch);
}

static ramc_status builder_finish(builder *b, const char *name, dataset *out) {
    free(b->scratch);
    b->scratch = NULL;
    b->ds.source = dup_n(name, strlen(name), "dataset name");
    if (!b->ds.source) {
        dataset_free(&b->ds);
        return RAMC_ERR_NOMEM;
    }
    *out = b->ds;
    return RAMC_OK;
}

ramc_status dataset_parse_json(const char *text, size_t len, const char *name,
                               const class_list *classes, const dataset_options *opts,
                               dataset *out) {
    memset(out, 0, sizeof *out);
    dataset_options defaults = dataset_default_options();
    if (!opts) opts = &defaults;
    cJSON *root;
    ramc_status pst = json_parse_text(text, len, name, &root);
    if (pst != RAMC_OK) return pst;
    builder b;
    memset(&b, 0, sizeof b);
    path_rules rules;
    ramc_status st = path_rules_init(&rules, opts, name);
    if (st != RAMC_OK) {
        cJSON_Delete(root);
        return st;
    }
    if (!cJSON_IsObject(root)) {
        st = ramc_error(RAMC_ERR_FORMAT, "%s: expected a JSON object at the top level", name);
        goto done;
    }
    /* the label order: given, else the file's own sorted class list */
    if (classes) st = class_list_copy(classes, &b.ds.classes);
    else if ((st = classes_from_json_field(root, name, &b.ds.classes)) == RAMC_OK)
        st = class_list_sort(&b.ds.classes);
    if (st != RAMC_OK) goto done;

    const cJSON *images = cJSON_GetObjectItemCaseSensitive(root, "images");
    if (!images) {
        st = ramc_error(RAMC_ERR_FORMAT, "%s: no \"images\" field", name);
        goto done;
    }
    if (!cJSON_IsArray(images)) {
        st = ramc_error(RAMC_ERR_FORMAT, "%s: images: expected an array", name);
        goto done;
    }
    int i = 0;
    const cJSON *entry;
    cJSON_ArrayForEach(entry, images) {
        if (!cJSON_IsArray(entry) || cJSON_GetArraySize(entry) != 2) {
            st = ramc_error(RAMC_ERR_FORMAT,
                            "%s: images[%d]: expected [path, [label, ...]] (an array of 2)",
                            name, i);
            goto done;
        }
        const cJSON *jpath = cJSON_GetArrayItem(entry, 0), *jlabels = cJSON_GetArrayItem(entry, 1);
        if (!cJSON_IsString(jpath) || !jpath->valuestring) {
            st = ramc_error(RAMC_ERR_FORMAT, "%s: images[%d][0]: expected a string (the image path)",
                            name, i);
            goto done;
        }
        if (!cJSON_IsArray(jlabels)) {
            st = ramc_error(RAMC_ERR_FORMAT,
                            "%s: images[%d][1]: expected an array of label names", name, i);
            goto done;
        }
        char why[600], *path;
        st = resolve_path(&rules, jpath->valuestring, strlen(jpath->valuestring), &path, why,
                          sizeof why);
        if (st != RAMC_OK) {
            st = ramc_error(st, "%s: images[%d][0]: %s", name, i, why);
            goto done;
        }
        if ((st = builder_begin(&b, path, name)) != RAMC_OK) goto done;
        int k = 0;
        const cJSON *lab;
        cJSON_ArrayForEach(lab, jlabels) {
            if (!cJSON_IsString(lab) || !lab->valuestring) {
                builder_abort_item(&b);
                st = ramc_error(RAMC_ERR_FORMAT, "%s: images[%d][1][%d]: expected a string", name,
                                i, k);
                goto done;
            }
            int idx = class_list_find(&b.ds.classes, lab->valuestring);
            if (idx < 0) {
                if (opts->mode == DATASET_STRICT) {
                    builder_abort_item(&b);
                    st = ramc_error(RAMC_ERR_FORMAT,
                                    "%s: images[%d][1][%d]: unknown label '%.200s' (not among "
                                    "the %d classes)",
                                    name, i, k, lab->valuestring, b.ds.classes.n);
                    goto done;
                }
                b.ds.n_unknown_dropped++; /* official: silently dropped */
            } else if ((st = builder_label(&b, idx)) != RAMC_OK) {
                builder_abort_item(&b);
                goto done;
            }
            k++;
        }
        if (k == 0 && opts->mode == DATASET_STRICT) {
            builder_abort_item(&b);
            st = ramc_error(RAMC_ERR_FORMAT, "%s: images[%d][1]: empty label list", name, i);
            goto done;
        }
        if ((st = builder_end(&b)) != RAMC_OK) goto done;
        i++;
    }
    if (b.ds.n_items == 0) {
        st = ramc_error(RAMC_ERR_FORMAT, "%s: images: no entries", name);
        goto done;
    }
    st = builder_finish(&b, name, out);
    path_rules_free(&rules);
    cJSON_Delete(root);
    return st;
done:
    path_rules_free(&rules);
    cJSON_Delete(root);
    builder_free(&b);
    return st;
}

/* One TSV line split into its path and label field. */
typedef struct {
    const char *path, *labels;
    size_t path_len, labels_len;
} tsv_line;

/* Splits a non-blank, non-comment line; on a problem writes `why`. */
static int tsv_split(const char *s, size_t n, tsv_line *t, char *why, size_t why_size) {
    const char *tab = memchr(s, '\t', n);
    if (!tab) {
        snprintf(why, why_size, "expected 'path<TAB>label1,label2,...' (no tab)");
        return 0;
    }
    t->path = s;
    t->path_len = (size_t)(tab - s);
    t->labels = tab + 1;
    t->labels_len = n - t->path_len - 1;
    trim(&t->path, &t->path_len);
    trim(&t->labels, &t->labels_len);
    if (memchr(t->labels, '\t', t->labels_len)) {
        snprintf(why, why_size, "more than one tab (labels are separated by commas)");
        return 0;
    }
    return 1;
}

/* Next label of a comma-separated field: [*s, *s+*n) -> piece, advance. */
static int next_label(const char **field, size_t *field_len, const char **lab, size_t *lab_len) {
    if (*field_len == 0 && *field == NULL) return 0;
    const char *comma = memchr(*field, ',', *field_len);
    size_t piece = comma ? (size_t)(comma - *field) : *field_len;
    *lab = *field;
    *lab_len = piece;
    trim(lab, lab_len);
    if (comma) {
        *field_len -= piece + 1;
        *field = comma + 1;
    } else {
        *field = NULL; /* done after this one */
        *field_len = 0;
    }
    return 1;
}

/* Calls `fn` per data line with its number; stops on the first error. */
typedef ramc_status (*tsv_line_fn)(const tsv_line *t, int line, void *user);

static ramc_status tsv_each(const char *text, size_t len, const char *name, tsv_line_fn fn,
                            void *user) {
    skip_bom(&text, &len);
    const char *p = text, *end = text + len;
    int line = 0;
    while (p < end) {
        line++;
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        const char *s = p;
        size_t n = (size_t)(le - p);
        p = nl ? nl + 1 : end;
        if (n && s[n - 1] == '\r') n--;
        const char *ts = s;
        size_t tn = n;
        trim(&ts, &tn);
        if (tn == 0 || ts[0] == '#') continue;
        tsv_line t;
        char why[300];
        if (!tsv_split(s, n, &t, why, sizeof why))
            return ramc_error(RAMC_ERR_FORMAT, "%s:%d: %s", name, line, why);
        ramc_status st = fn(&t, line, user);
        if (st != RAMC_OK) return st;
    }
    return RAMC_OK;
}

typedef struct {
    const char *name;
    class_list *cl;
    int cap;
} tsv_collect;

/* First pass without a class list: every label becomes a class. */
static ramc_status tsv_collect_line(const tsv_line *t, int line, void *user) {
    tsv_collect *c = user;
    const char *field = t->labels, *lab;
    size_t flen = t->labels_len, llen;
    if (flen == 0) return RAMC_OK;
    while (next_label(&field, &flen, &lab, &llen)) {
        char why[400];
        if (llen == 0)
            return ramc_error(RAMC_ERR_FORMAT, "%s:%d: empty label name (stray comma?)", c->name,
                              line);
        if (!name_ok(lab, llen, why, sizeof why))
            return ramc_error(RAMC_ERR_FORMAT, "%s:%d: %s", c->name, line, why);
        int idx, added;
        ramc_status st = cl_add(c->cl, &c->cap, lab, llen, &idx, &added);
        if (st != RAMC_OK) return st;
        if (c->cl->n > DATASET_MAX_CLASSES)
            return ramc_error(RAMC_ERR_LIMIT, "%s:%d: more than %d distinct labels", c->name,
                              line, DATASET_MAX_CLASSES);
    }
    return RAMC_OK;
}

typedef struct {
    const char *name;
    builder *b;
    const path_rules *rules;
    dataset_mode mode;
} tsv_read;

static ramc_status tsv_read_line(const tsv_line *t, int line, void *user) {
    tsv_read *r = user;
    builder *b = r->b;
    char why[600], *path;
    ramc_status st = resolve_path(r->rules, t->path, t->path_len, &path, why, sizeof why);
    if (st != RAMC_OK) return ramc_error(st, "%s:%d: %s", r->name, line, why);
    if ((st = builder_begin(b, path, r->name)) != RAMC_OK) return st;
    const char *field = t->labels, *lab;
    size_t flen = t->labels_len, llen;
    int k = 0;
    while (t->labels_len > 0 && next_label(&field, &flen, &lab, &llen)) {
        if (llen == 0) {
            builder_abort_item(b);
            return ramc_error(RAMC_ERR_FORMAT, "%s:%d: empty label name (stray comma?)", r->name,
                              line);
        }
        char buf[DATASET_MAX_NAME_BYTES + 1];
        int idx = -1;
        if (llen <= DATASET_MAX_NAME_BYTES) {
            memcpy(buf, lab, llen);
            buf[llen] = '\0';
            idx = class_list_find(&b->ds.classes, buf);
        }
        if (idx < 0) {
            if (r->mode == DATASET_STRICT) {
                builder_abort_item(b);
                return ramc_error(RAMC_ERR_FORMAT,
                                  "%s:%d: unknown label '%.*s' (not among the %d classes)",
                                  r->name, line, (int)(llen > 200 ? 200 : llen), lab,
                                  b->ds.classes.n);
            }
            b->ds.n_unknown_dropped++;
        } else if ((st = builder_label(b, idx)) != RAMC_OK) {
            builder_abort_item(b);
            return st;
        }
        k++;
    }
    if (k == 0 && r->mode == DATASET_STRICT) {
        builder_abort_item(b);
        return ramc_error(RAMC_ERR_FORMAT, "%s:%d: empty label list", r->name, line);
    }
    return builder_end(b);
}

ramc_status dataset_parse_tsv(const char *text, size_t len, const char *name,
                              const class_list *classes, const dataset_options *opts,
                              dataset *out) {
    memset(out, 0, sizeof *out);
    dataset_options defaults = dataset_default_options();
    if (!opts) opts = &defaults;
    if (memchr(text, '\0', len))
        return ramc_error(RAMC_ERR_FORMAT, "%s: NUL byte in a text file", name);
    builder b;
    memset(&b, 0, sizeof b);
    path_rules rules;
    ramc_status st = path_rules_init(&rules, opts, name);
    if (st != RAMC_OK) return st;
    if (classes) {
        st = class_list_copy(classes, &b.ds.classes);
    } else {
        tsv_collect c = {name, &b.ds.classes, 0};
        st = tsv_each(text, len, name, tsv_collect_line, &c);
        if (st == RAMC_OK && b.ds.classes.n == 0)
            st = ramc_error(RAMC_ERR_FORMAT, "%s: no labels at all (give a class list)", name);
        if (st == RAMC_OK) st = class_list_sort(&b.ds.classes);
    }
    if (st == RAMC_OK) {
        tsv_read r = {name, &b, &rules, opts->mode};
        st = tsv_each(text, len, name, tsv_read_line, &r);
    }
    if (st == RAMC_OK && b.ds.n_items == 0)
        st = ramc_error(RAMC_ERR_FORMAT, "%s: no images", name);
    path_rules_free(&rules);
    if (st != RAMC_OK) {
        builder_free(&b);
        return st;
    }
    return builder_finish(&b, name, out);
}

ramc_status dataset_load(const char *path, const class_list *classes, const dataset_options *opts,
                         dataset *out) {
    memset(out, 0, sizeof *out);
    char *text;
    size_t len;
    ramc_status st = read_whole_file(path, DATASET_MAX_FILE_BYTES, &text, &len);
    if (st != RAMC_OK) return st;
    size_t i = 0;
    while (i < len && is_space((unsigned char)text[i])) i++;
    int json = ends_with(path, ".json") || (i < len && text[i] == '{');
    st = json ? dataset_parse_json(text, len, path, classes, opts, out)
              : dataset_parse_tsv(text, len, path, classes, opts, out);
    free(text);
    return st;
}

ramc_status dataset_targets(const dataset *ds, const int *idx, int n, float *out) {
    int C = ds->classes.n;
    if (n < 0 || (n > 0 && (!idx || !out)))
        return ramc_error(RAMC_ERR_INVALID_ARG, "dataset_targets: bad arguments");
    memset(out, 0, (size_t)n * (size_t)C * sizeof *out);
    for (int b = 0; b < n; b++) {
        if (idx[b] < 0 || idx[b] >= ds->n_items)
            return ramc_error(RAMC_ERR_INVALID_ARG, "%s: item %d out of range (%d images)",
                              ds->source ? ds->source : "dataset", idx[b], ds->n_items);
        const dataset_item *it = &ds->items[idx[b]];
        for (int j = 0; j < it->n_labels; j++) out[(size_t)b * C + it->labels[j]] = 1.0f;
    }
    return RAMC_OK;
}

ramc_status dataset_compute_stats(const dataset *ds, dataset_stats *out) {
    memset(out, 0, sizeof *out);
    out->n_images = ds->n_items;
    out->n_classes = ds->classes.n;
    out->images_per_class =
        ramc_calloc((size_t)(ds->classes.n ? ds->classes.n : 1), sizeof(int), "class counts");
    if (!out->images_per_class) return RAMC_ERR_NOMEM;
    out->min_labels = ds->n_items ? ds->items[0].n_labels : 0;
    for (int i = 0; i < ds->n_items; i++) {
        const dataset_item *it = &ds->items[i];
        out->n_labels += it->n_labels;
        if (it->n_labels < out->min_labels) out->min_labels = it->n_labels;
        if (it->n_labels > out->max_labels) out->max_labels = it->n_labels;
        if (it->n_labels == 0) out->n_empty++;
        for (int j = 0; j < it->n_labels; j++) out->images_per_class[it->labels[j]]++;
    }
    out->labels_per_image = ds->n_items ? (double)out->n_labels / ds->n_items : 0.0;
    for (int c = 0; c < ds->classes.n; c++)
        if (out->images_per_class[c] == 0) out->n_classes_unused++;
    return RAMC_OK;
}

void dataset_stats_free(dataset_stats *st) {
    if (!st) return;
    free(st->images_per_class);
    st->images_per_class = NULL;
}

ramc_status dataset_check_images(const dataset *ds, int *n_missing, dataset_missing_fn cb,
                                 void *user) {
    int missing = 0;
    for (int i = 0; i < ds->n_items; i++) {
        const char *p = ds->items[i].path;
        struct stat sb;
        const char *reason = NULL;
        if (stat(p, &sb) != 0) reason = strerror(errno);
        else if (!S_ISREG(sb.st_mode)) reason = "not a regular file";
        else if (access(p, R_OK) != 0) reason = strerror(errno);
        if (reason) {
            missing++;
            if (cb) cb(i, p, reason, user);
        }
    }
    if (n_missing) *n_missing = missing;
    return RAMC_OK;
}
