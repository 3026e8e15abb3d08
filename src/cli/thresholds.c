/* --score and --thresholds FILE, shared by the commands that print scores.
 *
 * A thresholds file gives each label its own threshold (docs/predict.md,
 * "Per-label thresholds"):
 *
 *   # comment
 *   red star<TAB>0.62
 *   blue circle<TAB>0.5
 *
 * one label and one number in [0, 1] per line, separated by one TAB; blank
 * lines and lines starting with # are skipped; spaces around either field
 * are ignored. An asked label listed twice, a missing TAB, a second TAB or a
 * bad number is an error naming the file and line; so is an asked label the
 * file does not list, unless a fallback (--threshold) is given. Labels of the file that were
 * not asked for are allowed (one file can serve every subset of a
 * vocabulary: that is what independent scores are for) and summed up in one
 * warning, so that a misspelt label does not pass unnoticed. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/result_json.h"
#include "cli/cli.h"
#include "core/status.h"

#define MAX_THRESHOLDS_LINES 1000000

int cli_parse_score(const char *value, ramc_score *out) {
    if (!strcmp(value, "official")) *out = RAMC_SCORE_OFFICIAL;
    else if (!strcmp(value, "independent")) *out = RAMC_SCORE_INDEPENDENT;
    else return 0;
    return 1;
}

const char *cli_score_name(ramc_score score) { return result_score_name(score); }

static char *trim_in_place(char *s) {
    while (*s == ' ') s++;
    size_t n = strlen(s);
    while (n && s[n - 1] == ' ') s[--n] = 0;
    return s;
}

ramc_status cli_read_thresholds(const char *path, const char *const *labels, int n,
                                const float *fallback, float *out) {
    FILE *f = fopen(path, "rb");
    if (!f) return ramc_error(RAMC_ERR_IO, "%s: %s", path, strerror(errno));
    int *line_of = calloc((size_t)(n ? n : 1), sizeof *line_of); /* 0: label not in the file */
    if (!line_of) {
        fclose(f);
        return ramc_error(RAMC_ERR_NOMEM, "%s: out of memory", path);
    }
    ramc_status st = RAMC_OK;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int line_no = 0, not_asked = 0, first_not_asked = 0;
    char first_name[80] = "";
    while (st == RAMC_OK && (len = getline(&line, &cap, f)) >= 0) {
        if (++line_no > MAX_THRESHOLDS_LINES) {
            st = ramc_error(RAMC_ERR_LIMIT, "%s: more than %d lines", path, MAX_THRESHOLDS_LINES);
            break;
        }
        if ((size_t)len != strlen(line)) {
            st = ramc_error(RAMC_ERR_FORMAT, "%s:%d: a NUL byte in the line", path, line_no);
            break;
        }
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        char *s = trim_in_place(line);
        if (!*s || *s == '#') continue;
        char *tab = strchr(s, '\t');
        if (!tab) {
            st = ramc_error(RAMC_ERR_FORMAT, "%s:%d: expected label<TAB>threshold, found no TAB",
                            path, line_no);
            break;
        }
        *tab = 0;
        char *name = trim_in_place(s), *value = trim_in_place(tab + 1);
        if (strchr(value, '\t')) {
            st = ramc_error(RAMC_ERR_FORMAT, "%s:%d: more than one TAB (label<TAB>threshold)", path,
                            line_no);
            break;
        }
        if (!*name) {
            st = ramc_error(RAMC_ERR_FORMAT, "%s:%d: empty label", path, line_no);
            break;
        }
        char *end;
        errno = 0;
        double t = *value ? strtod(value, &end) : NAN;
        if (!*value || *end || errno || !isfinite(t) || t < 0 || t > 1) {
            st = ramc_error(RAMC_ERR_FORMAT, "%s:%d: threshold '%.40s' of \"%.80s\" is not a number "
                            "in [0, 1]", path, line_no, value, name);
            break;
        }
        int c = 0;
        while (c < n && strcmp(labels[c], name)) c++;
        if (c == n) {
            if (!not_asked++) {
                first_not_asked = line_no;
                snprintf(first_name, sizeof first_name, "%s", name);
            }
            continue;
        }
        if (line_of[c]) {
            st = ramc_error(RAMC_ERR_FORMAT, "%s:%d: \"%.80s\" already has a threshold on line %d",
                            path, line_no, name, line_of[c]);
            break;
        }
        line_of[c] = line_no;
        out[c] = (float)t;
    }
    if (st == RAMC_OK && ferror(f)) st = ramc_error(RAMC_ERR_IO, "%s: read error", path);
    for (int c = 0; st == RAMC_OK && c < n; c++) {
        if (line_of[c]) continue;
        if (fallback) out[c] = *fallback;
        else st = ramc_error(RAMC_ERR_INVALID_ARG, "%s: no threshold for label \"%.80s\" (add a "
                             "line for it, or give --threshold T for the labels not in the file)",
                             path, labels[c]);
    }
    if (st == RAMC_OK && not_asked)
        fprintf(stderr, "ramc: warning: %s: %d label%s not asked for, ignored (the first, line %d: "
                        "\"%s\")\n", path, not_asked, not_asked > 1 ? "s" : "", first_not_asked,
                first_name);
    free(line);
    free(line_of);
    fclose(f);
    return st;
}
