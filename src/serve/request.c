/* A predict or labels request's fields into a checked request_spec: the
 * same rules whether the fields came as multipart/form-data parts or as a
 * JSON object, so both kinds of client get the same limits and messages. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "io/file.h"
#include "serve/base64.h"
#include "serve/internal.h"

int request_fail(request_error *err, int status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    err->status = status;
    return 0;
}

void upload_free(upload *u) {
    free(u->name);
    free(u->data);
    memset(u, 0, sizeof *u);
}

void spec_free(request_spec *spec) {
    for (int i = 0; i < spec->n_images; i++) upload_free(&spec->images[i]);
    free(spec->images);
    for (int i = 0; i < spec->n_labels; i++) free(spec->labels[i]);
    free(spec->labels);
    free(spec->vocabulary);
    free(spec->template_str);
    memset(spec, 0, sizeof *spec);
}

/* ------------------------------------------------------------ labels */

static int push_label(request_spec *spec, const char *s, size_t len, const serve_options *opt,
                      request_error *err) {
    while (len && isspace((unsigned char)*s)) s++, len--;
    while (len && isspace((unsigned char)s[len - 1])) len--;
    const int index = spec->n_labels + 1;
    if (!len) return request_fail(err, 400, "label %d is empty", index);
    if (len > RAMC_MAX_LABEL_BYTES)
        return request_fail(err, 413, "label %d is %zu bytes, at most %d", index, len, RAMC_MAX_LABEL_BYTES);
    if (memchr(s, 0, len)) return request_fail(err, 400, "label %d holds a NUL byte", index);
    if (spec->n_labels == opt->max_labels)
        return request_fail(err, 413, "more than %d labels (the server's --max-labels)", opt->max_labels);
    char **v = realloc(spec->labels, (size_t)(spec->n_labels + 1) * sizeof *v);
    if (!v) return request_fail(err, 500, "out of memory");
    spec->labels = v;
    if (!(v[spec->n_labels] = malloc(len + 1))) return request_fail(err, 500, "out of memory");
    memcpy(v[spec->n_labels], s, len);
    v[spec->n_labels++][len] = 0;
    return 1;
}

static int labels_from_json_array(request_spec *spec, const cJSON *arr, const serve_options *opt,
                                  request_error *err) {
    const cJSON *item;
    int i = 0;
    cJSON_ArrayForEach(item, arr) {
        i++;
        if (!cJSON_IsString(item))
            return request_fail(err, 400, "labels: item %d is not a string", i);
        if (!push_label(spec, item->valuestring, strlen(item->valuestring), opt, err)) return 0;
    }
    return 1;
}

/* "labels": one name per line (blank lines skipped), or a JSON list of strings. */
static int labels_from_text(request_spec *spec, const char *text, size_t n, const serve_options *opt,
                            request_error *err) {
    size_t skip = 0;
    while (skip < n && isspace((unsigned char)text[skip])) skip++;
    if (skip < n && text[skip] == '[') {
        long at = 0;
        cJSON *arr = json_parse_whole(text, n, &at);
        if (!arr) return request_fail(err, 400, "labels: invalid JSON list near byte %ld", at);
        int ok = cJSON_IsArray(arr) ? labels_from_json_array(spec, arr, opt, err)
                                    : request_fail(err, 400, "labels: not a JSON list");
        cJSON_Delete(arr);
        return ok;
    }
    for (size_t i = 0; i < n;) {
        const char *line = text + i, *nl = memchr(line, '\n', n - i);
        size_t len = nl ? (size_t)(nl - line) : n - i;
        size_t k = 0;
        while (k < len && isspace((unsigned char)line[k])) k++;
        if (k < len && !push_label(spec, line, len, opt, err)) return 0;
        i += len + 1;
    }
    return 1;
}

/* ------------------------------------------------------------ scalars */

static int parse_top_k(request_spec *spec, const char *v, request_error *err) {
    char *end;
    errno = 0;
    long k = strtol(v, &end, 10);
    if (!*v || *end || errno || k < 0 || k > RAMC_MAX_LABELS)
        return request_fail(err, 400, "top_k: '%.40s' is not a whole number from 0 to %d", v, RAMC_MAX_LABELS);
    spec->sel.top_k = (int)k;
    return 1;
}

static int parse_threshold(request_spec *spec, const char *v, request_error *err) {
    char *end;
    float t = strtof(v, &end);
    if (!*v || *end || !(t >= 0 && t <= 1))
        return request_fail(err, 400, "threshold: '%.40s' is not a number from 0 to 1", v);
    spec->sel.threshold = t, spec->sel.threshold_set = 1;
    return 1;
}

/* "official" (or "ram") and "independent": RAM's scores as predict --score;
 * "clip": the plain CLIP baseline. */
static int parse_score(request_spec *spec, const char *v, request_error *err) {
    if (!strcmp(v, "ram") || !strcmp(v, "official")) spec->baseline = 0, spec->score = RAMC_SCORE_OFFICIAL;
    else if (!strcmp(v, "independent")) spec->baseline = 0, spec->score = RAMC_SCORE_INDEPENDENT;
    else if (!strcmp(v, "clip")) spec->baseline = 1, spec->score = RAMC_SCORE_OFFICIAL;
    else
        return request_fail(err, 400,
                            "score: '%.40s' is not 'official', 'independent', 'ram' or 'clip'", v);
    return 1;
}

static int parse_flag(int *out, const char *name, const char *v, request_error *err) {
    static const char *const yes[] = {"1", "true", "yes", "on"}, *const no[] = {"", "0", "false", "no", "off"};
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++)
        if (!strcmp(v, yes[i])) return *out = 1;
    for (size_t i = 0; i < sizeof no / sizeof *no; i++)
        if (!strcmp(v, no[i])) return *out = 0, 1;
    return request_fail(err, 400, "%s: '%.40s' is not a yes/no value (true, false, 1, 0)", name, v);
}

static int set_string(char **dst, const char *name, const char *v, size_t max, request_error *err) {
    if (*dst) return request_fail(err, 400, "%s given twice", name);
    if (strlen(v) > max) return request_fail(err, 413, "%s: longer than %zu bytes", name, max);
    if (!(*dst = strdup(v))) return request_fail(err, 500, "out of memory");
    return 1;
}

/* One named field with a text value: the rules both forms share. */
static int apply_field(request_spec *spec, const char *key, const char *v, size_t n, int for_labels,
                       const serve_options *opt, request_error *err) {
    if (!strcmp(key, "labels")) {
        if (spec->labels) return request_fail(err, 400, "labels given twice");
        if (!labels_from_text(spec, v, n, opt, err)) return 0;
        if (!spec->n_labels) return request_fail(err, 400, "labels: no label names given");
        return 1;
    }
    if (!strcmp(key, "template")) return set_string(&spec->template_str, "template", v, RAMC_MAX_TEMPLATE_BYTES, err);
    if (!for_labels) {
        if (!strcmp(key, "vocabulary")) return set_string(&spec->vocabulary, "vocabulary", v, 256, err);
        if (!strcmp(key, "top_k")) return parse_top_k(spec, v, err);
        if (!strcmp(key, "threshold")) return parse_threshold(spec, v, err);
        if (!strcmp(key, "score")) return parse_score(spec, v, err);
        if (!strcmp(key, "explain")) return parse_flag(&spec->explain, "explain", v, err);
    }
    return request_fail(err, 400, "unknown field '%.60s'%s", key,
                        for_labels ? " (a vocabulary takes 'labels' and 'template')" : "");
}

static void spec_defaults(request_spec *spec) {
    memset(spec, 0, sizeof *spec);
    spec->sel.top_k = -1; /* not given yet */
}

/* The rules between fields, once all are in. */
static int spec_finish(request_spec *spec, int for_labels, const serve_options *opt, request_error *err) {
    if (spec->sel.top_k < 0) /* as ramc predict: 5 by default, every label above a threshold alone */
        spec->sel.top_k = spec->sel.threshold_set ? 0 : 5;
    if (for_labels) {
        if (!spec->labels) return request_fail(err, 400, "no 'labels' given");
        return 1;
    }
    if (!spec->labels == !spec->vocabulary)
        return request_fail(err, 400, "give exactly one of 'labels' and 'vocabulary'");
    if (spec->vocabulary && spec->template_str)
        return request_fail(err, 400, "'template' goes with 'labels'; a stored vocabulary has its own");
    if (!spec->n_images) return request_fail(err, 400, "no image given");
    if (spec->n_images > opt->max_images)
        return request_fail(err, 413, "%d images, at most %d in one request", spec->n_images, opt->max_images);
    if (spec->explain && spec->baseline)
        return request_fail(err, 400, "explain needs RAM's transport plan; not with score 'clip'");
    return 1;
}

/* ------------------------------------------------------------ forms */

int spec_from_form(request_spec *spec, upload *fields, int n_fields, upload *files, int n_files,
                   int for_labels, const serve_options *opt, request_error *err) {
    spec_defaults(spec);
    int ok = 1;
    for (int i = 0; i < n_fields && ok; i++)
        ok = apply_field(spec, fields[i].name, (const char *)fields[i].data, fields[i].size, for_labels,
                         opt, err);
    if (ok && for_labels && n_files)
        ok = request_fail(err, 400, "a vocabulary request takes no files ('%.60s')", files[0].name);
    if (ok && n_files) {
        spec->images = files, spec->n_images = n_files; /* the spec owns them now */
        files = NULL, n_files = 0;
    }
    for (int i = 0; i < n_files; i++) upload_free(&files[i]);
    if (files) free(files);
    return ok && spec_finish(spec, for_labels, opt, err);
}

/* ------------------------------------------------------------ JSON */

static int image_from_json(request_spec *spec, const cJSON *item, int index, request_error *err) {
    const char *name = NULL, *data = NULL;
    char fallback[32];
    if (cJSON_IsString(item)) {
        data = item->valuestring;
    } else if (cJSON_IsObject(item)) {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(item, "name");
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(item, "data");
        if (n && !cJSON_IsString(n)) return request_fail(err, 400, "images[%d].name is not a string", index);
        if (!cJSON_IsString(d)) return request_fail(err, 400, "images[%d].data: no base64 string", index);
        name = n ? n->valuestring : NULL, data = d->valuestring;
    } else {
        return request_fail(err, 400, "images[%d] is neither a base64 string nor {name, data}", index);
    }
    if (!name) snprintf(fallback, sizeof fallback, "image %d", index + 1), name = fallback;
    /* a data URL as a browser's FileReader makes it: "data:image/png;base64,...." */
    if (!strncmp(data, "data:", 5)) {
        const char *comma = strchr(data, ',');
        if (!comma || !strstr(data, ";base64,")) return request_fail(err, 400, "images[%d]: a data URL that is not base64", index);
        data = comma + 1;
    }
    upload u = {0};
    long bad = -1;
    if (!base64_decode(data, strlen(data), &u.data, &u.size, &bad)) {
        if (bad >= 0) return request_fail(err, 400, "images[%d]: invalid base64 at character %ld", index, bad);
        return request_fail(err, 400, "images[%d]: invalid base64 (its length cannot be)", index);
    }
    if (!(u.name = strdup(name))) {
        upload_free(&u);
        return request_fail(err, 500, "out of memory");
    }
    upload *v = realloc(spec->images, (size_t)(spec->n_images + 1) * sizeof *v);
    if (!v) {
        upload_free(&u);
        return request_fail(err, 500, "out of memory");
    }
    spec->images = v;
    v[spec->n_images++] = u;
    return 1;
}

/* A JSON value as the text a form field would carry. */
static int field_text(const cJSON *v, char *buf, size_t size, const char **out) {
    if (cJSON_IsString(v)) *out = v->valuestring;
    else if (cJSON_IsBool(v)) *out = cJSON_IsTrue(v) ? "true" : "false";
    else if (cJSON_IsNumber(v)) snprintf(buf, size, "%.9g", v->valuedouble), *out = buf;
    else return 0;
    return 1;
}

int spec_from_json(request_spec *spec, const char *body, size_t n, int for_labels,
                   const serve_options *opt, request_error *err) {
    spec_defaults(spec);
    long at = 0;
    cJSON *root = json_parse_whole(body, n, &at);
    if (!root) return request_fail(err, 400, "invalid JSON near byte %ld", at);
    int ok = cJSON_IsObject(root) ? 1 : request_fail(err, 400, "the JSON body is not an object");
    const cJSON *item;
    cJSON *fields = ok ? root : NULL;
    cJSON_ArrayForEach(item, fields) {
        const char *key = item->string;
        if (!strcmp(key, "images") && for_labels) {
            ok = request_fail(err, 400, "a vocabulary request takes no images");
        } else if (!strcmp(key, "images")) {
            if (!cJSON_IsArray(item)) {
                ok = request_fail(err, 400, "images: not a list");
                break;
            }
            if (cJSON_GetArraySize(item) > opt->max_images) {
                ok = request_fail(err, 413, "%d images, at most %d in one request", cJSON_GetArraySize(item),
                                  opt->max_images);
                break;
            }
            const cJSON *img;
            int i = 0;
            cJSON_ArrayForEach(img, item) if (!(ok = image_from_json(spec, img, i++, err))) break;
        } else if (!strcmp(key, "labels") && cJSON_IsArray(item)) {
            if (spec->labels) ok = request_fail(err, 400, "labels given twice");
            else ok = labels_from_json_array(spec, item, opt, err);
            if (ok && !spec->n_labels) ok = request_fail(err, 400, "labels: no label names given");
        } else {
            char buf[64];
            const char *text;
            if (!field_text(item, buf, sizeof buf, &text))
                ok = request_fail(err, 400, "%.60s: not a string, number or boolean", key);
            else
                ok = apply_field(spec, key, text, strlen(text), for_labels, opt, err);
        }
        if (!ok) break;
    }
    cJSON_Delete(root);
    return ok && spec_finish(spec, for_labels, opt, err);
}
