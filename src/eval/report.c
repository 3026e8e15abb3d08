/* Evaluation reports as JSON (schema REPORT_SCHEMA, docs/metrics.md) and as
 * a plain-text table. The table printer is the one place in the library that
 * prints, and only to the FILE* its caller hands in. */
#include "eval/report.h"
#include "io/file.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "io/file.h"

static char *dup_str(const char *s, const char *what) {
    if (!s) s = "";
    size_t n = strlen(s) + 1;
    char *d = ramc_malloc(n, what);
    if (d) memcpy(d, s, n);
    return d;
}

void report_free(eval_report *r) {
    if (!r) return;
    if (r->class_names) {
        for (int j = 0; j < r->metrics.n_classes; j++) free(r->class_names[j]);
        free(r->class_names);
    }
    free(r->name);
    free(r->model);
    metrics_result_free(&r->metrics);
    free(r);
}

ramc_status report_new(const char *name, const char *model, const char *const *class_names,
                       metrics_result *metrics, eval_report **out) {
    if (!metrics || !out) return ramc_error(RAMC_ERR_INVALID_ARG, "report: NULL argument");
    *out = NULL;
    if (metrics->n_classes < 1 || metrics->n_k < 1 || !metrics->topk)
        return ramc_error(RAMC_ERR_INVALID_ARG, "report: metrics result is empty");
    int C = metrics->n_classes;
    if (class_names)
        for (int j = 0; j < C; j++)
            if (!class_names[j])
                return ramc_error(RAMC_ERR_INVALID_ARG, "report: class name %d is NULL", j);
    eval_report *r = ramc_calloc(1, sizeof *r, "evaluation report");
    if (!r) return RAMC_ERR_NOMEM;
    r->name = dup_str(name, "report name");
    r->model = dup_str(model, "report model name");
    if (!r->name || !r->model) goto nomem;
    if (class_names) {
        /* n_classes is read by report_free, so set it before the copies */
        r->metrics.n_classes = C;
        r->class_names = ramc_calloc((size_t)C, sizeof *r->class_names, "report class names");
        if (!r->class_names) goto nomem;
        for (int j = 0; j < C; j++)
            if (!(r->class_names[j] = dup_str(class_names[j], "report class name"))) goto nomem;
    }
    r->metrics = *metrics; /* move: the report frees the arrays from now on */
    memset(metrics, 0, sizeof *metrics);
    *out = r;
    return RAMC_OK;
nomem:
    /* the caller keeps its metrics: r->metrics holds no arrays yet */
    report_free(r);
    return RAMC_ERR_NOMEM;
}

/* ------------------------------------------------------------------ JSON */

/* NaN (undefined, as the official numpy code would yield) has no JSON
 * spelling: write null so every reader sees "undefined", not a number. */
static cJSON *num_or_null(double v) {
    return isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull();
}

/* Adds item to obj; a NULL item (allocation failure) clears *ok. */
static void add(cJSON *obj, const char *key, cJSON *item, int *ok) {
    if (!item || !cJSON_AddItemToObject(obj, key, item)) {
        cJSON_Delete(item);
        *ok = 0;
    }
}

static void push(cJSON *arr, cJSON *item, int *ok) {
    if (!item || !cJSON_AddItemToArray(arr, item)) {
        cJSON_Delete(item);
        *ok = 0;
    }
}

cJSON *report_to_json(const eval_report *r) {
    if (!r) {
        ramc_error(RAMC_ERR_INVALID_ARG, "report: NULL report");
        return NULL;
    }
    const metrics_result *m = &r->metrics;
    int C = m->n_classes, K = m->n_k, ok = 1;
    cJSON *root = cJSON_CreateObject();
    if (!root) goto nomem;
    add(root, "schema", cJSON_CreateString(REPORT_SCHEMA), &ok);
    add(root, "name", json_string_utf8(r->name), &ok); /* paths: any bytes */
    add(root, "model", json_string_utf8(r->model), &ok);
    add(root, "units", cJSON_CreateString("fraction"), &ok);
    add(root, "n_images", cJSON_CreateNumber(m->n_images), &ok);
    add(root, "n_classes", cJSON_CreateNumber(C), &ok);

    cJSON *ks = cJSON_CreateArray();
    add(root, "k", ks, &ok);
    cJSON *topk = cJSON_CreateArray();
    add(root, "topk", topk, &ok);
    if (!ok) goto nomem;
    for (int t = 0; t < K; t++) {
        const metrics_topk *q = &m->topk[t];
        push(ks, cJSON_CreateNumber(q->k), &ok);
        cJSON *o = cJSON_CreateObject();
        push(topk, o, &ok);
        if (!ok) goto nomem;
        add(o, "k", cJSON_CreateNumber(q->k), &ok);
        add(o, "k_used", cJSON_CreateNumber(q->k_used), &ok);
        add(o, "OP", num_or_null(q->OP), &ok);
        add(o, "OR", num_or_null(q->OR), &ok);
        add(o, "OF1", num_or_null(q->OF1), &ok);
        add(o, "CP", num_or_null(q->CP), &ok);
        add(o, "CR", num_or_null(q->CR), &ok);
        add(o, "CF1", num_or_null(q->CF1), &ok);
        add(o, "tp", cJSON_CreateNumber((double)q->tp), &ok);
        add(o, "n_pred", cJSON_CreateNumber((double)q->n_pred), &ok);
        add(o, "n_pos", cJSON_CreateNumber((double)q->n_pos), &ok);
    }
    add(root, "mAP", num_or_null(m->map), &ok);
    add(root, "mAP_classes", cJSON_CreateNumber(m->map_classes), &ok);

    cJSON *classes = cJSON_CreateArray();
    add(root, "classes", classes, &ok);
    if (!ok) goto nomem;
    for (int j = 0; j < C; j++) {
        cJSON *o = cJSON_CreateObject();
        push(classes, o, &ok);
        if (!ok) goto nomem;
        add(o, "index", cJSON_CreateNumber(j), &ok);
        add(o, "name", r->class_names ? cJSON_CreateString(r->class_names[j]) : cJSON_CreateNull(),
            &ok);
        add(o, "n_pos", cJSON_CreateNumber(m->class_pos ? (double)m->class_pos[j] : 0), &ok);
        add(o, "AP", num_or_null(m->class_ap ? m->class_ap[j] : NAN), &ok);
        cJSON *p = cJSON_CreateArray(), *rc = cJSON_CreateArray(), *tp = cJSON_CreateArray(),
              *np = cJSON_CreateArray();
        add(o, "P", p, &ok);
        add(o, "R", rc, &ok);
        add(o, "tp", tp, &ok);
        add(o, "n_pred", np, &ok);
        if (!ok) goto nomem;
        for (int t = 0; t < K; t++) {
            size_t i = (size_t)t * C + j;
            push(p, num_or_null(m->class_p[i]), &ok);
            push(rc, num_or_null(m->class_r[i]), &ok);
            push(tp, cJSON_CreateNumber((double)m->class_tp[i]), &ok);
            push(np, cJSON_CreateNumber((double)m->class_pred[i]), &ok);
        }
    }
    if (!ok) goto nomem;
    return root;
nomem:
    cJSON_Delete(root);
    ramc_error(RAMC_ERR_NOMEM, "report: out of memory building the JSON report");
    return NULL;
}

/* The formatted text with a trailing newline, malloc'd. */
static char *json_text(const eval_report *r, size_t *len) {
    cJSON *root = report_to_json(r);
    if (!root) return NULL;
    char *txt = cJSON_Print(root);
    cJSON_Delete(root);
    if (!txt) {
        ramc_error(RAMC_ERR_NOMEM, "report: out of memory printing the JSON report");
        return NULL;
    }
    size_t n = strlen(txt);
    char *out = ramc_malloc(n + 2, "JSON report text");
    if (out) {
        memcpy(out, txt, n);
        out[n] = '\n';
        out[n + 1] = '\0';
        *len = n + 1;
    }
    cJSON_free(txt);
    return out;
}

ramc_status report_write_json(const eval_report *r, FILE *f) {
    if (!f || !r) return ramc_error(RAMC_ERR_INVALID_ARG, "report: NULL stream or report");
    size_t len = 0;
    char *txt = json_text(r, &len); /* with r valid, only allocation can fail */
    if (!txt) return RAMC_ERR_NOMEM;
    size_t w = fwrite(txt, 1, len, f);
    free(txt);
    if (w != len || fflush(f) != 0)
        return ramc_error(RAMC_ERR_IO, "report: cannot write the JSON report");
    return RAMC_OK;
}

ramc_status report_write_json_file(const eval_report *r, const char *path) {
    if (!r) return ramc_error(RAMC_ERR_INVALID_ARG, "report: NULL report");
    if (!path || !*path) return ramc_error(RAMC_ERR_INVALID_ARG, "report: empty output path");
    size_t len = 0;
    char *txt = json_text(r, &len);
    if (!txt) return RAMC_ERR_NOMEM;
    ramc_status s = file_write_atomic(path, txt, len);
    free(txt);
    return s;
}

/* ----------------------------------------------------------------- table */

#define NAME_MAX_COLS 32

/* "%*.2f" of 100·v, or "nan" right-aligned in the same width. */
static void pct(FILE *f, double v, int width) {
    if (isnan(v))
        fprintf(f, "%*s", width, "nan");
    else
        fprintf(f, "%*.2f", width, 100.0 * v);
}

/* Code points in the first `bytes` bytes of UTF-8 s: a display width that is
 * right for the Latin class names and at worst a little off for wide scripts. */
static int utf8_cols(const char *s, size_t bytes) {
    int c = 0;
    for (size_t i = 0; i < bytes; i++) c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

/* Byte length of the longest prefix of s with at most `cols` code points,
 * never cutting a multi-byte sequence. */
static size_t utf8_prefix(const char *s, int cols) {
    size_t i = 0;
    int c = 0;
    while (s[i]) {
        if (((unsigned char)s[i] & 0xC0) != 0x80) {
            if (c == cols) break;
            c++;
        }
        i++;
    }
    return i;
}

/* Writes the name cut to `width` code points (a "~" marks a cut) and pads. */
static void name_cell(FILE *f, const char *s, int width) {
    size_t full = strlen(s);
    int cols = utf8_cols(s, full);
    if (cols <= width) {
        fprintf(f, "%s%*s", s, width - cols, "");
    } else {
        size_t b = utf8_prefix(s, width - 1);
        fprintf(f, "%.*s~", (int)b, s);
    }
}

ramc_status report_print_table(FILE *f, const eval_report *r, int per_class) {
    if (!f || !r) return ramc_error(RAMC_ERR_INVALID_ARG, "report: NULL argument");
    const metrics_result *m = &r->metrics;
    int C = m->n_classes, K = m->n_k;
    fprintf(f, "evaluation: %s   model: %s   images: %d   classes: %d\n", r->name, r->model,
            m->n_images, C);
    fprintf(f, "values in percent (2 decimals); nan = undefined\n\n");
    fprintf(f, "%5s | %7s %7s %7s | %7s %7s %7s\n", "k", "OP", "OR", "OF1", "CP", "CR", "CF1");
    fprintf(f, "------+-------------------------+------------------------\n");
    for (int t = 0; t < K; t++) {
        const metrics_topk *q = &m->topk[t];
        fprintf(f, "%5d | ", q->k);
        pct(f, q->OP, 7), fputc(' ', f), pct(f, q->OR, 7), fputc(' ', f), pct(f, q->OF1, 7);
        fputs(" | ", f);
        pct(f, q->CP, 7), fputc(' ', f), pct(f, q->CR, 7), fputc(' ', f), pct(f, q->CF1, 7);
        fputc('\n', f);
    }
    for (int t = 0; t < K; t++)
        if (m->topk[t].k_used != m->topk[t].k)
            fprintf(f, "note: k = %d exceeds the %d classes; the top %d were used\n",
                    m->topk[t].k, C, m->topk[t].k_used);
    fprintf(f, "\nmAP: ");
    pct(f, m->map, 0);
    fprintf(f, "   (mean AP over the %d of %d classes with at least one positive)\n",
            m->map_classes, C);

    if (per_class) {
        int w = 4; /* at least as wide as the "name" heading */
        if (r->class_names)
            for (int j = 0; j < C; j++) {
                int c = utf8_cols(r->class_names[j], strlen(r->class_names[j]));
                if (c > w) w = c;
            }
        if (w > NAME_MAX_COLS) w = NAME_MAX_COLS;
        fprintf(f, "\n%6s  ", "#");
        name_cell(f, "name", w);
        fprintf(f, " %8s %7s", "n_pos", "AP");
        for (int t = 0; t < K; t++) {
            char hp[24], hr[24];
            snprintf(hp, sizeof hp, "P@%d", m->topk[t].k);
            snprintf(hr, sizeof hr, "R@%d", m->topk[t].k);
            fprintf(f, " %7s %7s", hp, hr);
        }
        fputc('\n', f);
        for (int j = 0; j < C; j++) {
            fprintf(f, "%6d  ", j);
            name_cell(f, r->class_names ? r->class_names[j] : "-", w);
            fprintf(f, " %8lld ", (long long)m->class_pos[j]);
            pct(f, m->class_ap[j], 7);
            for (int t = 0; t < K; t++) {
                size_t i = (size_t)t * C + j;
                fputc(' ', f), pct(f, m->class_p[i], 7);
                fputc(' ', f), pct(f, m->class_r[i], 7);
            }
            fputc('\n', f);
        }
    }
    if (ferror(f) || fflush(f) != 0)
        return ramc_error(RAMC_ERR_IO, "report: cannot write the table");
    return RAMC_OK;
}
