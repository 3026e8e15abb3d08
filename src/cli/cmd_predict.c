/* ramc predict: open-vocabulary multi-label recognition of image files.
 * A thin layer over ramc_model_load / ramc_labels_encode / ramc_predict:
 * gather the images, decode and preprocess them in batches, print the ranked
 * labels, and optionally write heat-map explanations. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "api/result_json.h"
#include "api/pipeline.h"
#include "cli/cli.h"
#include "data/dataset.h"
#include "io/file.h"
#include "ramc.h"

static const char usage_text[] =
    "usage: ramc predict [--clip WEIGHTS] [--adapter FILE] [--vision-heads N --text-heads N]\n"
    "                    (--labels \"a,b,c\" | --labels-file FILE) [--template \"A photo of a {}.\"]\n"
    "                    [--top-k K] [--threshold T] [--thresholds FILE]\n"
    "                    [--score official|independent] [--format json|tsv] [--baseline clip]\n"
    "                    [--batch N] [--explain DIR] [--vocab FILE] [--bf16] [--no-pack]\n"
    "                    [--follow-links] [--threads N] IMAGE_OR_DIR...\n"
    "       ramc predict ... --stdin           (image paths on standard input, one per line)\n"
    "\n"
    "Scores every label for every image with RAM (Recover and Match) and prints\n"
    "the best ones. Folders are searched recursively for .jpg/.jpeg/.png files\n"
    "(sorted by path; links to folders are not followed, each folder is searched\n"
    "once, at most 64 levels deep); images are resized straight to the model's input size\n"
    "(bilinear, as the official test transform) and normalised with mean = std = 0.5\n"
    "(ramc_preprocess_file). IMAGE '-' reads one image file from standard input.\n"
    "With --stdin the model is loaded once and each line of standard input is an\n"
    "image path, answered (and flushed) as soon as it is scored; in JSON a path\n"
    "that fails gets an {\"image\", \"error\"} line. Results never depend on the\n"
    "batch an image went in (per-image Sinkhorn stop, per-image towers).\n"
    "\n"
    "  --clip WEIGHTS       CLIP weights (.safetensors, OpenAI or Hugging Face names);\n"
    "                       default: the embedded model data/default/ (a small CLIP\n"
    "                       of the `ramc synth` world) with its RAM adapter, said on stderr\n"
    "  --adapter FILE       trained RAM adapter; without it: RAM's zero-shot path on\n"
    "                       the frozen CLIP (SAA + KCOT with LPD, no prompts/TSS)\n"
    "  --vision-heads N, --text-heads N  attention heads (default width/64)\n"
    "  --labels LIST        comma-separated label names\n"
    "  --labels-file FILE   one label per line (blank lines and lines starting with #\n"
    "                       are skipped)\n"
    "  --template T         prompt with one {} for the label (default \"A photo of a {}.\")\n"
    "  --top-k K            print the K best labels (default 5 without --threshold;\n"
    "                       0 = no limit)\n"
    "  --threshold T        print labels scoring at least T\n"
    "  --thresholds FILE    per-label thresholds: label<TAB>threshold lines (# comments);\n"
    "                       labels not in it use --threshold, else are an error;\n"
    "                       labels in it not asked for are ignored (one warning)\n"
    "  --score S            official (default): RAM's score, which sums to 1 over the\n"
    "                       labels asked, so its meaning changes with their number;\n"
    "                       independent: sigmoid((cos(image, label) - cos(image,\n"
    "                       reference prompt)) / global temperature), each label's\n"
    "                       own, the same whatever else is asked (docs/predict.md)\n"
    "  --format json|tsv    one JSON object per image (default), or\n"
    "                       image<TAB>label<TAB>score lines\n"
    "  --baseline clip      plain CLIP scores instead: softmax of exp(logit_scale)*cos\n"
    "  --batch N            images per forward pass (default 8; results do not\n"
    "                       depend on it)\n"
    "  --explain DIR        write PNG heat maps of the transport plan per printed label,\n"
    "                       of the LPD patch marginal, and an overview per image\n"
    "  --vocab FILE         CLIP BPE vocabulary (default: the one shipped in data/)\n"
    "  --label-cache DIR    keep encoded label features in DIR, keyed by the model\n"
    "                       files' content and the exact prompt: a later run with the\n"
    "                       same labels skips the text tower (safe to share)\n"
    "  --bf16               run the model's products in bfloat16 (AVX512-BF16, AMX):\n"
    "                       faster, scores within ~1e-2 of float32 (docs/performance.md)\n"
    "  --follow-links       also search folders reached through symbolic links\n"
    "                       (still each real folder once, so a loop ends)\n"
    "  --no-pack            float32 products on the stored weights: saves a packed\n"
    "                       copy (4 bytes per weight), ~40% slower at batch 1\n"
    "  --threads N          threads for the model (default: all cores, or OMP_NUM_THREADS)\n"
    "\n"
    "Environment: RAMC_BF16=1 as --bf16, RAMC_PACK=0 as --no-pack (and no bf16),\n"
    "RAMC_DATA_DIR the folder of the default model and vocabulary.\n"
    "\n"
    "Exit status: 0 success, 1 an image or file failed (the others are still\n"
    "printed), 2 bad usage.\n"
    "\n"
    "example:\n"
    "  ramc predict --clip ViT-B-16.safetensors --adapter ram_coco.safetensors \\\n"
    "      --labels \"person,dog,bicycle,car\" --top-k 3 --explain maps/ photos/\n";

#define MAX_LABELS_FILE_BYTES (16u << 20)
#define MAX_WALK_DEPTH 64
#define EXPLAIN_MIN_SIDE 224
#define OVERVIEW_MAX_LABELS 8

typedef struct {
    char **v;
    int n, cap;
} strlist;

static int strlist_push(strlist *l, const char *s, size_t len) {
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 16;
        char **v = realloc(l->v, (size_t)cap * sizeof *v);
        if (!v) return 0;
        l->v = v, l->cap = cap;
    }
    char *c = malloc(len + 1);
    if (!c) return 0;
    memcpy(c, s, len);
    c[len] = 0;
    l->v[l->n++] = c;
    return 1;
}

static void strlist_free(strlist *l) {
    for (int i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static int usage_error(const char *fmt, const char *arg) {
    fprintf(stderr, "ramc predict: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nRun 'ramc predict --help' for the options.\n");
    return 2;
}

/* ------------------------------------------------------------ labels */

static void trim(const char **s, size_t *len) {
    while (*len && isspace((unsigned char)**s)) (*s)++, (*len)--;
    while (*len && isspace((unsigned char)(*s)[*len - 1])) (*len)--;
}

/* "a, b ,c" -> {"a","b","c"}; returns 0 on an empty item. */
static int split_labels(const char *arg, strlist *out) {
    const char *p = arg;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        const char *s = p;
        trim(&s, &len);
        if (!len || !strlist_push(out, s, len)) return 0;
        if (!comma) return 1;
        p = comma + 1;
    }
}

/* A labels file has the rules of a class list (one per line, UTF-8, blank
 * lines and # comments skipped, no duplicates, no NUL bytes): errors name
 * the file and line. */
static ramc_status read_labels_file(const char *path, strlist *out) {
    class_list cl;
    ramc_status st = class_list_load(path, &cl);
    if (st != RAMC_OK) return st;
    if (cl.n > RAMC_MAX_LABELS)
        st = ramc_error(RAMC_ERR_LIMIT, "%s: %d labels, at most %d", path, cl.n, RAMC_MAX_LABELS);
    for (int i = 0; i < cl.n && st == RAMC_OK; i++) {
        size_t len = strlen(cl.names[i]);
        if (len > RAMC_MAX_LABEL_BYTES)
            st = ramc_error(RAMC_ERR_LIMIT, "%s: label %d is %zu bytes, at most %d", path, i + 1,
                            len, RAMC_MAX_LABEL_BYTES);
        else if (!strlist_push(out, cl.names[i], len))
            st = ramc_error(RAMC_ERR_NOMEM, "%s: out of memory", path);
    }
    class_list_free(&cl);
    return st;
}

/* ------------------------------------------------------------ inputs */

static int has_image_ext(const char *name) {
    const char *dot = strrchr(name, '.');
    return dot && (!strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg") || !strcasecmp(dot, ".png"));
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Folders already walked, by device and inode: a folder reached twice (a
 * link loop such as "x -> .", or two links to one place under
 * --follow-links) is walked once, so no walk multiplies paths or runs on. */
typedef struct {
    struct { dev_t dev; ino_t ino; } *v;
    int n, cap;
    int follow_links;
} walk_ctx;

/* 1 if (dev, ino) was new and is now recorded, 0 if seen before, -1 out of memory */
static int walk_visit(walk_ctx *w, const struct stat *sb) {
    for (int i = 0; i < w->n; i++)
        if (w->v[i].dev == sb->st_dev && w->v[i].ino == sb->st_ino) return 0;
    if (w->n == w->cap) {
        int cap = w->cap ? 2 * w->cap : 64;
        void *v = realloc(w->v, (size_t)cap * sizeof *w->v);
        if (!v) return -1;
        w->v = v, w->cap = cap;
    }
    w->v[w->n].dev = sb->st_dev, w->v[w->n].ino = sb->st_ino;
    w->n++;
    return 1;
}

/* Appends the images under dir (sorted, recursive) to out. Links to folders
 * are followed only with --follow-links; links to files always are. Returns
 * 0 if something could not be read (reported on stderr), 1 otherwise. */
static int walk(const char *dir, const struct stat *dir_sb, int depth, walk_ctx *w, strlist *out) {
    if (depth > MAX_WALK_DEPTH) {
        fprintf(stderr, "ramc predict: %s: folders nested deeper than %d, skipped\n", dir,
                MAX_WALK_DEPTH);
        return 0;
    }
    int fresh = walk_visit(w, dir_sb);
    if (fresh < 0) {
        fprintf(stderr, "ramc predict: %s: out of memory\n", dir);
        return 0;
    }
    if (!fresh) {
        fprintf(stderr, "ramc predict: %s: folder already searched (a link loop?), skipped\n", dir);
        return 1;
    }
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "ramc predict: %s: %s\n", dir, strerror(errno));
        return 0;
    }
    strlist names = {0};
    struct dirent *e;
    int ok = 1;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            ok &= strlist_push(&names, e->d_name, strlen(e->d_name));
    closedir(d);
    if (names.n > 1) /* an empty folder has no array at all: qsort(NULL) is undefined */
        qsort(names.v, (size_t)names.n, sizeof *names.v, cmp_str);
    size_t dl = strlen(dir);
    int slash = dl && dir[dl - 1] == '/';
    for (int i = 0; i < names.n; i++) {
        size_t len = dl + 1 + strlen(names.v[i]);
        char *path = malloc(len + 1);
        if (!path) {
            ok = 0;
            break;
        }
        snprintf(path, len + 1, "%s%s%s", dir, slash ? "" : "/", names.v[i]);
        struct stat sb, lsb;
        int is_link = lstat(path, &lsb) == 0 && S_ISLNK(lsb.st_mode);
        if (stat(path, &sb) != 0) {
            /* a dangling link or a file that vanished: only worth a word if it looked like an image */
            if (has_image_ext(path)) {
                fprintf(stderr, "ramc predict: %s: %s\n", path, strerror(errno));
                ok = 0;
            }
        } else if (S_ISDIR(sb.st_mode)) {
            if (is_link && !w->follow_links)
                fprintf(stderr, "ramc predict: %s: link to a folder, not followed (--follow-links "
                                "follows them)\n", path);
            else
                ok &= walk(path, &sb, depth + 1, w, out);
        } else if (S_ISREG(sb.st_mode) && has_image_ext(path)) {
            ok &= strlist_push(out, path, strlen(path));
        }
        free(path);
    }
    strlist_free(&names);
    return ok;
}

/* ----------------------------------------------------------- explain */

/* File-name part from s: letters, digits, '.', '-', '_' kept, the rest '_',
 * at most max bytes (so names stay portable and never escape DIR). */
static void sanitise(const char *s, char *out, size_t max) {
    size_t n = 0;
    for (; *s && n < max; s++) {
        unsigned char c = (unsigned char)*s;
        /* no leading '.': no hidden files, no ".." */
        int keep = isalnum(c) || c == '-' || c == '_' || (c == '.' && n > 0);
        out[n] = keep ? (char)c : '_';
        n++;
    }
    if (!n) out[n++] = '_';
    out[n] = 0;
}

/* The image's file name without folder and extension, sanitised. */
static void base_name(const char *path, char *out, size_t max) {
    const char *slash = strrchr(path, '/');
    const char *b = slash ? slash + 1 : path;
    char tmp[256];
    snprintf(tmp, sizeof tmp, "%s", b);
    char *dot = strrchr(tmp, '.');
    if (dot && dot != tmp) *dot = 0;
    sanitise(tmp, out, max);
}

typedef struct {
    const char *dir;
    int display;  /* panel side in pixels */
    int grid;
    float alpha;
} explain_ctx;

static int write_png(const ramc_image *img, const char *path) {
    if (ramc_explain_write_png(img, path) != RAMC_OK) {
        fprintf(stderr, "ramc predict: %s\n", ramc_last_error());
        return 0;
    }
    return 1;
}

/* Heat maps for one image: the LPD marginal, each reported label's plan
 * column, and the overview. plan [N, C], lpd [N]. Returns 0 on a failure. */
static int explain_image(const explain_ctx *ex, const char *stem, const ramc_image *orig,
                         const ramc_labels *labels, const float *plan, const float *lpd,
                         const int *order, const float *scores, int n_shown) {
    const int N = ex->grid * ex->grid, C = ramc_labels_count(labels);
    ramc_image disp = {0}, pic = {0};
    char path[4096], label[96];
    int ok = 1;
    float *col = malloc((size_t)(n_shown ? n_shown : 1) * N * sizeof(float));
    char (*titles)[160] = malloc((size_t)(n_shown + 1) * sizeof *titles);
    const float **maps = malloc((size_t)(n_shown + 1) * sizeof *maps);
    const char **tptr = malloc((size_t)(n_shown + 1) * sizeof *tptr);
    if (!col || !titles || !maps || !tptr) {
        fprintf(stderr, "ramc predict: out of memory writing explanations\n");
        ok = 0;
        goto done;
    }
    /* the picture is shown as the model saw it (stretched to a square),
     * but at a size a person can look at */
    if (ramc_image_resize(orig, ex->display, ex->display, RAMC_FILTER_BILINEAR, &disp) != RAMC_OK) {
        fprintf(stderr, "ramc predict: %s\n", ramc_last_error());
        ok = 0;
        goto done;
    }
    snprintf(path, sizeof path, "%s/%s.lpd.png", ex->dir, stem);
    if (ramc_heatmap_overlay(&disp, lpd, ex->grid, ex->alpha, &pic) == RAMC_OK) {
        ok &= write_png(&pic, path);
        ramc_image_free(&pic);
    } else {
        fprintf(stderr, "ramc predict: %s: %s\n", path, ramc_last_error());
        ok = 0;
    }
    maps[0] = lpd;
    snprintf(titles[0], sizeof titles[0], "LPD");
    for (int k = 0; k < n_shown; k++) {
        const int c = order[k];
        float *m = col + (size_t)k * N;
        for (int i = 0; i < N; i++) m[i] = plan[(size_t)i * C + c];
        sanitise(ramc_labels_name(labels, c), label, 64);
        snprintf(path, sizeof path, "%s/%s.%02d-%s.png", ex->dir, stem, k + 1, label);
        if (ramc_heatmap_overlay(&disp, m, ex->grid, ex->alpha, &pic) == RAMC_OK) {
            ok &= write_png(&pic, path);
            ramc_image_free(&pic);
        } else {
            fprintf(stderr, "ramc predict: %s: %s\n", path, ramc_last_error());
            ok = 0;
        }
        maps[k + 1] = m;
        snprintf(titles[k + 1], sizeof titles[k + 1], "%s %.2f", ramc_labels_name(labels, c),
                 scores[c]);
    }
    for (int k = 0; k <= n_shown; k++) tptr[k] = titles[k];
    int n_over = n_shown < OVERVIEW_MAX_LABELS ? n_shown : OVERVIEW_MAX_LABELS;
    snprintf(path, sizeof path, "%s/%s.overview.png", ex->dir, stem);
    if (ramc_explain_overview(&disp, stem, maps, tptr, n_over + 1, ex->grid, ex->alpha, &pic) ==
        RAMC_OK) {
        ok &= write_png(&pic, path);
        ramc_image_free(&pic);
    } else {
        fprintf(stderr, "ramc predict: %s: %s\n", path, ramc_last_error());
        ok = 0;
    }
done:
    ramc_image_free(&disp);
    free(col);
    free(titles);
    free(maps);
    free(tptr);
    return ok;
}

/* Distinct file stems: an image's sanitised base name, with "-N" (its input
 * index) added when two inputs share a base name. */
typedef struct {
    const char *base;
    int index;
} stem_entry;

static int cmp_stem(const void *a, const void *b) {
    const stem_entry *x = a, *y = b;
    int c = strcmp(x->base, y->base);
    return c ? c : x->index - y->index;
}

static char **make_stems(const strlist *images) {
    const int n = images->n;
    char **stems = calloc((size_t)n, sizeof *stems);
    stem_entry *e = malloc((size_t)n * sizeof *e);
    int *dup = calloc((size_t)n, sizeof *dup);
    if (!stems || !e || !dup) goto fail;
    for (int i = 0; i < n; i++) {
        if (!(stems[i] = malloc(200))) goto fail;
        base_name(images->v[i], stems[i], 120);
        e[i].base = stems[i], e[i].index = i;
    }
    qsort(e, (size_t)n, sizeof *e, cmp_stem);
    for (int i = 1; i < n; i++)
        if (!strcmp(e[i].base, e[i - 1].base)) dup[e[i].index] = dup[e[i - 1].index] = 1;
    for (int i = 0; i < n; i++)
        if (dup[i]) snprintf(stems[i] + strlen(stems[i]), 200 - strlen(stems[i]), "-%d", i + 1);
    free(e);
    free(dup);
    return stems;
fail:
    if (stems)
        for (int i = 0; i < n; i++) free(stems[i]);
    free(stems);
    free(e);
    free(dup);
    return NULL;
}

/* ------------------------------------------------------------- output */

static void print_tsv_field(const char *s) {
    /* TSV cannot hold tabs or newlines inside a field */
    for (; *s; s++) putchar(*s == '\t' || *s == '\n' || *s == '\r' ? ' ' : *s);
}

static int print_result(int json, ramc_score score, const char *image, const ramc_labels *labels,
                        const int *order, const float *scores, int n) {
    if (!json) {
        for (int k = 0; k < n; k++) {
            print_tsv_field(image);
            putchar('\t');
            print_tsv_field(ramc_labels_name(labels, order[k]));
            printf("\t%.6g\n", (double)scores[order[k]]);
        }
        return 1;
    }
    /* the schema ramc serve answers with too (api/result_json.h) */
    cJSON *obj = result_json(image, labels, order, scores, n, score);
    char *text = obj ? cJSON_PrintUnformatted(obj) : NULL;
    if (text) puts(text);
    else fprintf(stderr, "ramc predict: out of memory printing %s\n", image);
    cJSON_free(text);
    cJSON_Delete(obj);
    return text != NULL;
}

/* --------------------------------------------------------------- main */

typedef struct {
    const char *clip, *adapter, *labels_arg, *labels_file, *template_str, *explain, *vocab, *label_cache;
    const char *thresholds_file;
    ramc_score score;
    int vision_heads, text_heads, top_k, top_k_set, json, baseline, batch, bf16, no_pack, follow_links;
    int threads, from_stdin;
    float threshold;
    int threshold_set;
} options;

static int parse_nonneg_int(const char *s, int max, int *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno || v < 0 || v > max) return 0;
    *out = (int)v;
    return 1;
}

/* ------------------------------------------------------------ batches */

/* Everything one batch needs, set up once by cmd_predict. */
typedef struct {
    const options *o;
    const ramc_model *model;
    const ramc_labels *labels;
    ramc_predict_params pp;
    explain_ctx ex;
    char **stems;                 /* explanation file stems, by image index; NULL without --explain */
    int N, C, BS;
    size_t per_image;             /* floats of one preprocessed image */
    float *tensor, *scores, *plan, *lpd;
    int *order, *ok_item;
    ramc_image *origs;
    int status;                   /* 1 once anything failed */
    ramc_state *state;            /* --stdin's scratch, sized once for one image */
    float *label_thresholds;      /* [C] with --thresholds, else NULL */
} predict_run;

#define MAX_STDIN_IMAGE_BYTES (1ull << 30)

/* Decodes an image file, or "-": one whole file read from standard input. */
static ramc_status load_input(const char *path, ramc_image *img) {
    if (strcmp(path, "-") != 0) return ramc_image_load(path, img);
    size_t size = 0, cap = 1 << 16;
    uint8_t *data = malloc(cap);
    while (data) {
        if (size == cap) {
            if (cap >= MAX_STDIN_IMAGE_BYTES) {
                free(data);
                return ramc_error(RAMC_ERR_LIMIT, "standard input: more than %llu bytes",
                                  (unsigned long long)MAX_STDIN_IMAGE_BYTES);
            }
            uint8_t *more = realloc(data, cap * 2);
            if (!more) break;
            data = more, cap *= 2;
        }
        size_t got = fread(data + size, 1, cap - size, stdin);
        size += got;
        if (got == 0) break;
    }
    if (!data) return ramc_error(RAMC_ERR_NOMEM, "standard input: out of memory");
    ramc_status st = ferror(stdin) ? ramc_error(RAMC_ERR_IO, "standard input: read error")
                     : size == 0   ? ramc_error(RAMC_ERR_FORMAT, "standard input: no image bytes")
                                   : ramc_image_decode(data, size, "standard input", img);
    free(data);
    return st;
}

/* A failed image: a message on stderr that names it, and with --stdin in
 * JSON an {"image", "error"} line, so a pipeline reading results line by line
 * hears about every path it wrote. */
static void report_failure(predict_run *r, const char *path, const char *msg) {
    if (strstr(msg, path)) fprintf(stderr, "ramc predict: %s\n", msg);
    else fprintf(stderr, "ramc predict: %s: %s\n", path, msg);
    r->status = 1;
    if (r->o->from_stdin && r->o->json) {
        cJSON *obj = cJSON_CreateObject();
        cJSON *name = json_string_utf8(path), *err = json_string_utf8(msg);
        if (obj && name && err) {
            cJSON_AddItemToObject(obj, "image", name);
            cJSON_AddItemToObject(obj, "error", err);
            char *text = cJSON_PrintUnformatted(obj);
            if (text) puts(text), fflush(stdout);
            cJSON_free(text);
        } else {
            cJSON_Delete(name);
            cJSON_Delete(err);
        }
        cJSON_Delete(obj);
    }
}

/* A forward pass failed: values the load checks let through can still
 * overflow there, so say which weights were in use. */
static void report_scoring_failure(predict_run *r) {
    const options *o = r->o;
    fprintf(stderr, "ramc predict: scoring with %s%s%s failed: %s\n", o->clip,
            o->adapter && !o->baseline ? " and " : "", o->adapter && !o->baseline ? o->adapter : "",
            ramc_last_error());
    r->status = 1;
}

/* Ranks, prints and (--explain) explains one image's scores s [C]; index is
 * the image's place among all images (its explanation file name), plan
 * [N,C], lpd [N] and orig only with --explain. */
static void show_result(predict_run *r, const char *path, int index, const float *s,
                        const float *plan, const float *lpd, const ramc_image *orig) {
    const options *o = r->o;
    const result_selection sel = {o->top_k, o->threshold_set, o->threshold, r->label_thresholds};
    int shown = result_rank(s, r->C, &sel, r->order);
    if (shown < 0) {
        fprintf(stderr, "ramc predict: out of memory ranking %s\n", path);
        r->status = 1;
        shown = 0;
    }
    if (!print_result(o->json, o->score, path, r->labels, r->order, s, shown)) r->status = 1;
    if (o->explain) {
        fflush(stdout);
        if (!explain_image(&r->ex, r->stems[index], orig, r->labels, plan, lpd, r->order, s, shown))
            r->status = 1;
    }
}

/* Decodes, scores and prints paths[0 .. n) (n <= BS) on this thread (the
 * paths read from standard input); `first` is the index of paths[0] among all
 * images (for the explanation file names). */
static void predict_batch(predict_run *r, char *const *paths, int n, int first) {
    const options *o = r->o;
    const int N = r->N, C = r->C;
    int loaded = 0; /* decoded images, packed at the front of tensor */
    for (int k = 0; k < n; k++) {
        const char *path = paths[k];
        ramc_image img = {0};
        r->ok_item[k] = 0;
        /* decoded here rather than by ramc_preprocess_file: --explain draws on the original */
        ramc_status st = load_input(path, &img);
        if (st == RAMC_OK)
            st = ramc_preprocess_image(r->model, &img, NULL, r->tensor + (size_t)loaded * r->per_image);
        if (st != RAMC_OK) {
            /* the decoders' messages name the file; make sure one does */
            report_failure(r, path, ramc_last_error());
            ramc_image_free(&img);
            continue;
        }
        if (o->explain) r->origs[loaded] = img;
        else ramc_image_free(&img);
        r->ok_item[k] = 1;
        loaded++;
    }
    if (loaded == 0) return;
    if (ramc_predict_with_state(r->state, r->labels, r->tensor, loaded, &r->pp, r->scores, r->plan,
                                r->lpd) !=
        RAMC_OK) {
        report_scoring_failure(r);
        for (int j = 0; j < loaded; j++) ramc_image_free(&r->origs[j]);
        return;
    }
    for (int k = 0, j = 0; k < n; k++) {
        if (!r->ok_item[k]) continue;
        show_result(r, paths[k], first + k, r->scores + (size_t)j * C,
                    o->explain ? r->plan + (size_t)j * N * C : NULL,
                    o->explain ? r->lpd + (size_t)j * N : NULL, &r->origs[j]);
        if (o->explain) ramc_image_free(&r->origs[j]);
        j++;
    }
    fflush(stdout);
}

/* The images given on the command line and found in folders: decoded on a
 * worker thread while the model scores the previous batch (api/pipeline.h). */
static ramc_status decode_input(void *user, const char *path, int item, ramc_image *img) {
    (void)user, (void)item;
    return load_input(path, img);
}

static void on_pipeline_item(void *user, const predict_pipeline_item *it) {
    predict_run *r = user;
    if (it->status != RAMC_OK) {
        report_failure(r, it->name, it->error);
        return;
    }
    show_result(r, it->name, it->index, it->scores, it->plan, it->lpd, it->image);
    fflush(stdout);
}

static void predict_files(predict_run *r, char *const *paths, int n) {
    predict_pipeline_options po = predict_pipeline_default_options();
    po.batch = r->BS;
    po.params = r->pp;
    po.keep_images = po.want_plan = r->o->explain != NULL;
    po.decode = decode_input;
    if (predict_pipeline_run(r->model, r->labels, (const char *const *)paths, n, &po, on_pipeline_item,
                             r, NULL) != RAMC_OK)
        report_scoring_failure(r);
}

int cmd_predict(int argc, char **argv) {
    options o = {.json = 1, .batch = 8, .top_k = 5};
    strlist inputs = {0}, images = {0}, names = {0};
    int status = 0, only_inputs = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (only_inputs || a[0] != '-' || !a[1]) {
            if (!strlist_push(&inputs, a, strlen(a))) return 1;
            continue;
        }
        if (!strcmp(a, "--")) { only_inputs = 1; continue; }
        if (!strcmp(a, "--bf16")) { o.bf16 = 1; continue; }
        if (!strcmp(a, "--no-pack")) { o.no_pack = 1; continue; }
        if (!strcmp(a, "--follow-links")) { o.follow_links = 1; continue; }
        if (!strcmp(a, "--stdin")) { o.from_stdin = 1; continue; }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage_text, stdout);
            strlist_free(&inputs);
            return 0;
        }
        static const char *const with_value[] = {
            "--clip", "--adapter", "--vocab", "--vision-heads", "--text-heads", "--labels",
            "--labels-file", "--template", "--top-k", "--batch", "--explain", "--threshold",
            "--format", "--baseline", "--threads", "--label-cache", "--score", "--thresholds"};
        int known = 0;
        for (size_t k = 0; k < sizeof with_value / sizeof *with_value; k++) known |= !strcmp(a, with_value[k]);
        if (!known || !v) {
            strlist_free(&inputs);
            return usage_error(known ? "%s needs a value" : "unknown option '%s'", a);
        }
        int ok = 1;
        if (!strcmp(a, "--clip")) o.clip = v;
        else if (!strcmp(a, "--adapter")) o.adapter = v;
        else if (!strcmp(a, "--vocab")) o.vocab = v;
        else if (!strcmp(a, "--label-cache")) o.label_cache = v;
        else if (!strcmp(a, "--thresholds")) o.thresholds_file = v;
        else if (!strcmp(a, "--score")) ok = cli_parse_score(v, &o.score);
        else if (!strcmp(a, "--vision-heads")) ok = parse_nonneg_int(v, 4096, &o.vision_heads) && o.vision_heads;
        else if (!strcmp(a, "--text-heads")) ok = parse_nonneg_int(v, 4096, &o.text_heads) && o.text_heads;
        else if (!strcmp(a, "--labels")) o.labels_arg = v;
        else if (!strcmp(a, "--labels-file")) o.labels_file = v;
        else if (!strcmp(a, "--template")) o.template_str = v;
        else if (!strcmp(a, "--top-k")) ok = parse_nonneg_int(v, RAMC_MAX_LABELS, &o.top_k), o.top_k_set = 1;
        else if (!strcmp(a, "--batch")) ok = parse_nonneg_int(v, RAMC_MAX_BATCH, &o.batch) && o.batch;
        else if (!strcmp(a, "--explain")) o.explain = v;
        else if (!strcmp(a, "--threads")) ok = parse_nonneg_int(v, 4096, &o.threads) && o.threads;
        else if (!strcmp(a, "--threshold")) {
            char *end;
            o.threshold = strtof(v, &end);
            ok = *v && !*end && o.threshold >= 0 && o.threshold <= 1;
            o.threshold_set = 1;
        } else if (!strcmp(a, "--format")) {
            ok = !strcmp(v, "json") || !strcmp(v, "tsv");
            o.json = !strcmp(v, "json");
        } else if (!strcmp(a, "--baseline")) {
            ok = !strcmp(v, "clip");
            o.baseline = 1;
        }
        if (!ok) {
            fprintf(stderr, "ramc predict: invalid value '%s' for %s\n", v, a);
            strlist_free(&inputs);
            return 2;
        }
        i++;
    }
    int dashes = 0;
    for (int i = 0; i < inputs.n; i++) dashes += !strcmp(inputs.v[i], "-");
    const char *problem = !o.labels_arg == !o.labels_file      ? "give exactly one of --labels and --labels-file%s"
                          : inputs.n == 0 && !o.from_stdin       ? "no images or folders given%s"
                          : inputs.n > 0 && o.from_stdin         ? "--stdin reads the image paths from standard input: give no others%s"
                          : o.from_stdin && o.explain            ? "--explain is not available with --stdin%s"
                          : dashes > 1                           ? "'-' (an image on standard input) may be given once%s"
                          : o.baseline && o.explain              ? "--explain needs RAM's transport plan; not with --baseline clip%s"
                                                                 : NULL;
    if (problem) {
        strlist_free(&inputs);
        return usage_error(problem, "");
    }
    if (o.labels_arg && !split_labels(o.labels_arg, &names)) {
        strlist_free(&inputs);
        strlist_free(&names);
        return usage_error("--labels: empty label name in '%s'", o.labels_arg);
    }
    /* a threshold alone: every label above it */
    if ((o.threshold_set || o.thresholds_file) && !o.top_k_set) o.top_k = 0;

    /* No weights given: the embedded default model, announced on stderr so a
     * user never mistakes its scores for those of a model they meant to use.
     * Its adapter comes along only when no --adapter was given either (and is
     * of no use to --baseline clip). */
    static char default_clip[4096], default_adapter[4096];
    if (!o.clip) {
        if (ramc_default_model_paths(default_clip, default_adapter, sizeof default_clip) != RAMC_OK) {
            strlist_free(&inputs);
            strlist_free(&names);
            fprintf(stderr, "ramc predict: no --clip given and %s\n", ramc_last_error());
            return 1;
        }
        o.clip = default_clip;
        if (!o.adapter && !o.baseline) {
            o.adapter = default_adapter;
            fprintf(stderr, "ramc predict: no --clip given: using the embedded default model %s "
                            "and its adapter %s\n", default_clip, default_adapter);
        } else {
            fprintf(stderr, "ramc predict: no --clip given: using the embedded default model %s\n",
                    default_clip);
        }
    }

    ramc_model *model = NULL;
    ramc_labels *labels = NULL;
    ramc_tokenizer *tok = NULL;
    char **stems = NULL;
    float *tensor = NULL, *scores = NULL, *plan = NULL, *lpd = NULL, *label_thresholds = NULL;
    int *order = NULL, *ok_item = NULL;
    ramc_image *origs = NULL;
    if (o.labels_file) {
        if (read_labels_file(o.labels_file, &names) != RAMC_OK) {
            status = cli_fail("predict");
            goto done;
        }
        if (names.n == 0) {
            fprintf(stderr, "ramc predict: %s: no labels in the file\n", o.labels_file);
            status = 1;
            goto done;
        }
    }

    /* gather the images first: a typo in a path should not cost a model load */
    walk_ctx wc = {.follow_links = o.follow_links};
    int n_dirs = 0;
    for (int i = 0; i < inputs.n; i++) {
        struct stat sb;
        if (!strcmp(inputs.v[i], "-")) {
            if (!strlist_push(&images, "-", 1)) status = 1;
        } else if (stat(inputs.v[i], &sb) != 0) {
            fprintf(stderr, "ramc predict: %s: %s\n", inputs.v[i], strerror(errno));
            status = 1;
        } else if (S_ISDIR(sb.st_mode)) {
            if (!walk(inputs.v[i], &sb, 0, &wc, &images)) status = 1;
            n_dirs++;
        } else if (!strlist_push(&images, inputs.v[i], strlen(inputs.v[i]))) {
            status = 1;
        }
    }
    free(wc.v);
    if (images.n == 0 && !o.from_stdin) {
        fprintf(stderr, "ramc predict: no .jpg/.jpeg/.png images found");
        for (int i = 0, shown = 0; i < inputs.n; i++) {
            struct stat sb;
            if (stat(inputs.v[i], &sb) != 0 || !S_ISDIR(sb.st_mode)) continue;
            if (shown == 3) {
                fprintf(stderr, ", ... (%d folders)", n_dirs);
                break;
            }
            fprintf(stderr, "%s %s", shown++ ? "," : " in", inputs.v[i]);
        }
        fputc('\n', stderr);
        status = 1;
        goto done;
    }

    ramc_clip_params cp = ramc_clip_default_params();
    cp.vision_heads = o.vision_heads, cp.text_heads = o.text_heads, cp.bf16 = o.bf16, cp.pack_weights = !o.no_pack;
    cp.threads = o.threads;
    cli_env_clip_params(&cp);
    if (ramc_model_load(o.clip, o.adapter, &cp, &model) != RAMC_OK) {
        status = cli_fail("predict");
        goto done;
    }
    if (o.vocab && ramc_tokenizer_load(o.vocab, &tok) != RAMC_OK) {
        status = cli_fail("predict");
        goto done;
    }
    ramc_status lst = ramc_labels_encode_cached(model, tok, (const char *const *)names.v, names.n,
                                                o.template_str, o.label_cache, &labels);
    if (lst != RAMC_OK) {
        if (o.labels_file) ramc_error_prefix(lst, "%s", o.labels_file); /* which list is at fault */
        status = cli_fail("predict");
        goto done;
    }
    if (o.thresholds_file) {
        /* read before any image is scored: a bad file must not leave half the output */
        if (!(label_thresholds = malloc((size_t)names.n * sizeof *label_thresholds))) {
            fprintf(stderr, "ramc predict: out of memory\n");
            status = 1;
            goto done;
        }
        if (cli_read_thresholds(o.thresholds_file, (const char *const *)names.v, names.n,
                                o.threshold_set ? &o.threshold : NULL, label_thresholds) != RAMC_OK) {
            status = cli_fail("predict");
            goto done;
        }
    }
    const ramc_clip_info info = ramc_model_get_info(model);
    const int S = info.image_size, N = info.n_patches, C = names.n, BS = o.batch;
    const size_t per_image = (size_t)3 * S * S;
    explain_ctx ex = {o.explain, S > EXPLAIN_MIN_SIDE ? S : EXPLAIN_MIN_SIDE, info.grid, 0.5f};
    if (o.explain) {
        if (mkdir(o.explain, 0777) != 0 && errno != EEXIST) {
            fprintf(stderr, "ramc predict: %s: %s\n", o.explain, strerror(errno));
            status = 1;
            goto done;
        }
        if (!(stems = make_stems(&images))) {
            fprintf(stderr, "ramc predict: out of memory\n");
            status = 1;
            goto done;
        }
    }
    tensor = malloc((size_t)BS * per_image * sizeof(float));
    scores = malloc((size_t)BS * C * sizeof(float));
    order = malloc((size_t)C * sizeof(int));
    ok_item = malloc((size_t)BS * sizeof(int));
    origs = calloc((size_t)BS, sizeof *origs);
    if (o.explain) {
        plan = malloc((size_t)BS * N * C * sizeof(float));
        lpd = malloc((size_t)BS * N * sizeof(float));
    }
    if (!tensor || !scores || !order || !ok_item || !origs || (o.explain && (!plan || !lpd))) {
        fprintf(stderr, "ramc predict: out of memory for a batch of %d images and %d labels\n", BS, C);
        status = 1;
        goto done;
    }
    predict_run run = {&o, model, labels, ramc_predict_default_params(), ex, stems, N, C, BS,
                       per_image, tensor, scores, plan, lpd, order, ok_item, origs, 0, NULL, NULL};
    run.pp.mode = o.baseline ? RAMC_PREDICT_CLIP_BASELINE : RAMC_PREDICT_RAM;
    run.pp.score = o.score;
    run.label_thresholds = label_thresholds;
    /* files and folders: the decoding pipeline, which has its own state */
    if (images.n > 0) predict_files(&run, images.v, images.n);
    /* --stdin scores one image at a time on a state of its own */
    if (o.from_stdin && (ramc_state_create(model, &run.state) != RAMC_OK ||
                         ramc_state_reserve(run.state, 1, C, &run.pp) != RAMC_OK)) {
        fprintf(stderr, "ramc predict: %s\n", ramc_last_error());
        status = 1;
        ramc_state_free(run.state);
        goto done;
    }
    if (o.from_stdin) {
        /* one path per line, each answered as soon as it is scored: a
         * pipeline sees its results while it is still writing paths */
        char *line = NULL;
        size_t cap = 0;
        ssize_t len;
        int line_no = 0;
        while ((len = getline(&line, &cap, stdin)) >= 0) {
            line_no++;
            while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
            if (len == 0) continue;
            if ((size_t)len != strlen(line)) {
                fprintf(stderr, "ramc predict: standard input line %d: a NUL byte in the path\n", line_no);
                run.status = 1;
                continue;
            }
            char *one[1] = {line};
            predict_batch(&run, one, 1, 0);
        }
        free(line);
    }
    if (run.status) status = 1;
    ramc_state_free(run.state);

done:
    if (stems)
        for (int i = 0; i < images.n; i++) free(stems[i]);
    free(stems);
    free(tensor);
    free(scores);
    free(plan);
    free(lpd);
    free(label_thresholds);
    free(order);
    free(ok_item);
    free(origs);
    ramc_labels_free(labels);
    ramc_tokenizer_free(tok);
    ramc_model_free(model);
    strlist_free(&inputs);
    strlist_free(&images);
    strlist_free(&names);
    return status;
}
