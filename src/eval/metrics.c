/* Multi-label metrics: the official top-k OP/OR/OF1/CP/CR/CF1 and the
 * ML-ZSL mAP. See metrics.h for the contract and docs/metrics.md for the
 * definitions, edge cases and tie rules. */
#include "eval/metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"

/* ------------------------------------------------------------ validation */

/* Checks shapes and values once per public call so the loops below can
 * trust their input. Labels other than 0/1/-1 are rejected: the official code
 * counts tp/fp/fn with (pred+target)==2, (pred-target)==1, (pred-target)==-1,
 * so e.g. a 0.5 or 2 would silently fall out of every count there; an error
 * is more useful than reproducing that. */
static ramc_status check_inputs(const float *scores, const float *labels, int n, int C) {
    if (n < 0) return ramc_error(RAMC_ERR_INVALID_ARG, "metrics: negative image count %d", n);
    if (C < 1 || C > METRICS_MAX_CLASSES)
        return ramc_error(RAMC_ERR_INVALID_ARG, "metrics: class count %d outside [1, %d]", C,
                          METRICS_MAX_CLASSES);
    if (n > 0 && (!scores || !labels))
        return ramc_error(RAMC_ERR_INVALID_ARG, "metrics: NULL scores or labels");
    size_t total = (size_t)n * (size_t)C;
    for (size_t i = 0; i < total; i++) {
        if (isnan(scores[i]))
            return ramc_error(RAMC_ERR_NUMERIC, "metrics: score of image %zu, class %zu is NaN",
                              i / (size_t)C, i % (size_t)C);
        float y = labels[i];
        if (!(y == 0.0f || y == 1.0f || y == -1.0f))
            return ramc_error(RAMC_ERR_INVALID_ARG,
                              "metrics: label of image %zu, class %zu is %g (expected 0, 1 or -1)",
                              i / (size_t)C, i % (size_t)C, (double)y);
    }
    return RAMC_OK;
}

/* -1 reads as 0, as the official `targets[targets == -1] = 0`. */
static inline int is_pos(float y) { return y == 1.0f; }

/* 2ab/(a+b), 0 when both are 0, evaluated in the official order
 * (2*a*b/(a+b)); NaN propagates because NaN == 0 is false there too. */
static double f1_of(double a, double b) {
    if (a == 0.0 && b == 0.0) return 0.0;
    return 2.0 * a * b / (a + b);
}

/* ------------------------------------------------------------------ top-k */

/* Indices of the k largest entries of row s[0..C-1] into idx[0..k-1],
 * largest first; among equal scores the lower class index comes first.
 * Insertion into a k-long sorted buffer: O(C·k), and k is small (3, 5). */
static void row_topk(const float *s, int C, int k, int *idx) {
    int count = 0;
    for (int j = 0; j < C; j++) {
        float v = s[j];
        if (count == k && !(v > s[idx[k - 1]])) continue; /* equal never displaces a lower index */
        /* first position whose score is strictly smaller: equal scores stay
         * ahead of j because they have a lower index */
        int p = count < k ? count : k - 1;
        while (p > 0 && v > s[idx[p - 1]]) p--;
        int last = count < k ? count : k - 1;
        memmove(idx + p + 1, idx + p, (size_t)(last - p) * sizeof *idx);
        idx[p] = j;
        if (count < k) count++;
    }
}

static ramc_status topk_unchecked(const float *scores, const float *labels, int n, int C, int k,
                                  metrics_topk *out, int64_t *class_tp, int64_t *class_pred,
                                  double *class_p, double *class_r) {
    int ku = k < C ? k : C;
    int64_t *tp = ramc_calloc((size_t)C, sizeof *tp, "metrics tp counts");
    int64_t *np = ramc_calloc((size_t)C, sizeof *np, "metrics prediction counts");
    int64_t *pos = ramc_calloc((size_t)C, sizeof *pos, "metrics positive counts");
    int *idx = ramc_malloc((size_t)ku * sizeof *idx, "metrics top-k buffer");
    if (!tp || !np || !pos || !idx) {
        free(tp), free(np), free(pos), free(idx);
        return RAMC_ERR_NOMEM;
    }
    for (int i = 0; i < n; i++) {
        const float *s = scores + (size_t)i * C;
        const float *y = labels + (size_t)i * C;
        row_topk(s, C, ku, idx);
        for (int t = 0; t < ku; t++) {
            np[idx[t]]++;
            if (is_pos(y[idx[t]])) tp[idx[t]]++;
        }
        for (int j = 0; j < C; j++) pos[j] += is_pos(y[j]);
    }
    /* Per class, exactly as the official list comprehensions; the means are
     * Python's sum(list)/len(list): a left-to-right double sum. */
    int64_t sum_tp = 0, sum_np = 0, sum_pos = 0;
    double sum_p = 0.0, sum_r = 0.0;
    for (int j = 0; j < C; j++) {
        double p = tp[j] > 0 ? (double)tp[j] / (double)np[j] : 0.0;
        double r = tp[j] > 0 ? (double)tp[j] / (double)pos[j] : 0.0;
        sum_p += p;
        sum_r += r;
        sum_tp += tp[j];
        sum_np += np[j];
        sum_pos += pos[j];
        if (class_tp) class_tp[j] = tp[j];
        if (class_pred) class_pred[j] = np[j];
        if (class_p) class_p[j] = p;
        if (class_r) class_r[j] = r;
    }
    metrics_topk m;
    m.k = k;
    m.k_used = ku;
    m.tp = sum_tp;
    m.n_pred = sum_np;
    m.n_pos = sum_pos;
    /* numpy float64 0/0 is NaN (with a warning): keep it, do not invent 0 */
    m.OP = sum_np > 0 ? (double)sum_tp / (double)sum_np : NAN;
    m.OR = sum_pos > 0 ? (double)sum_tp / (double)sum_pos : NAN;
    m.OF1 = f1_of(m.OP, m.OR);
    m.CP = sum_p / (double)C;
    m.CR = sum_r / (double)C;
    m.CF1 = f1_of(m.CP, m.CR);
    *out = m;
    free(tp), free(np), free(pos), free(idx);
    return RAMC_OK;
}

ramc_status metrics_topk_eval(const float *scores, const float *labels, int n, int C, int k,
                              metrics_topk *out, int64_t *class_tp, int64_t *class_pred,
                              double *class_p, double *class_r) {
    if (!out) return ramc_error(RAMC_ERR_INVALID_ARG, "metrics: NULL output");
    if (k < 1) return ramc_error(RAMC_ERR_INVALID_ARG, "metrics: k = %d, must be >= 1", k);
    ramc_status s = check_inputs(scores, labels, n, C);
    if (s != RAMC_OK) return s;
    return topk_unchecked(scores, labels, n, C, k, out, class_tp, class_pred, class_p, class_r);
}

/* -------------------------------------------------------------------- AP */

/* Maps a float to a uint32 whose unsigned order is the float's order
 * DESCENDING, so an ascending sort ranks the largest score first. -0.0 is
 * folded onto +0.0 first because they compare equal and must tie. */
static inline uint32_t desc_key(float v) {
    if (v == 0.0f) v = 0.0f;
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    u = (u & 0x80000000u) ? ~u : (u | 0x80000000u); /* ascending-order key */
    return ~u;
}

/* Stable LSD radix sort of order[0..n-1] by key[order[i]], 8 bits a pass.
 * Stability with order starting as 0..n-1 is what gives "equal scores ->
 * lower image index first". Radix instead of qsort: 1006 classes × 100k
 * images would otherwise be ~1.7e9 comparator calls. */
static void radix_sort_desc(const uint32_t *key, uint32_t *order, uint32_t *tmp, int n) {
    if (n < 2) return;
    for (int shift = 0; shift < 32; shift += 8) {
        size_t cnt[257] = {0};
        for (int i = 0; i < n; i++) cnt[((key[order[i]] >> shift) & 0xFFu) + 1]++;
        if (cnt[((key[order[0]] >> shift) & 0xFFu) + 1] == (size_t)n) continue; /* one bucket */
        for (int b = 0; b < 256; b++) cnt[b + 1] += cnt[b];
        for (int i = 0; i < n; i++) tmp[cnt[(key[order[i]] >> shift) & 0xFFu]++] = order[i];
        memcpy(order, tmp, (size_t)n * sizeof *order);
    }
}

static ramc_status ap_unchecked(const float *scores, const float *labels, int n, int C,
                                double *class_ap, int64_t *class_pos, double *map,
                                int *map_classes) {
    size_t sz = n > 0 ? (size_t)n : 1;
    uint32_t *key = ramc_malloc(sz * sizeof *key, "AP sort keys");
    uint32_t *order = ramc_malloc(sz * sizeof *order, "AP ranking");
    uint32_t *tmp = ramc_malloc(sz * sizeof *tmp, "AP sort scratch");
    if (!key || !order || !tmp) {
        free(key), free(order), free(tmp);
        return RAMC_ERR_NOMEM;
    }
    double sum_ap = 0.0;
    int used = 0;
    for (int j = 0; j < C; j++) {
        int64_t npos = 0;
        for (int i = 0; i < n; i++) {
            key[i] = desc_key(scores[(size_t)i * C + j]);
            order[i] = (uint32_t)i;
            npos += is_pos(labels[(size_t)i * C + j]);
        }
        if (class_pos) class_pos[j] = npos;
        if (npos == 0) {
            /* skipped in the mean (the LESA/BiAM/MKT convention, spec §8.3) */
            if (class_ap) class_ap[j] = NAN;
            continue;
        }
        radix_sort_desc(key, order, tmp, n);
        /* AP_j = (1/npos) Σ over ranks r holding a positive of hits(r)/r */
        double acc = 0.0;
        int64_t hits = 0;
        for (int r = 0; r < n; r++) {
            if (is_pos(labels[(size_t)order[r] * C + j])) {
                hits++;
                acc += (double)hits / (double)(r + 1);
                if (hits == npos) break; /* later ranks add nothing */
            }
        }
        double ap = acc / (double)npos;
        if (class_ap) class_ap[j] = ap;
        sum_ap += ap;
        used++;
    }
    if (map) *map = used > 0 ? sum_ap / (double)used : NAN;
    if (map_classes) *map_classes = used;
    free(key), free(order), free(tmp);
    return RAMC_OK;
}

ramc_status metrics_average_precision(const float *scores, const float *labels, int n, int C,
                                      double *class_ap, int64_t *class_pos, double *map,
                                      int *map_classes) {
    ramc_status s = check_inputs(scores, labels, n, C);
    if (s != RAMC_OK) return s;
    return ap_unchecked(scores, labels, n, C, class_ap, class_pos, map, map_classes);
}

/* ------------------------------------------------------------------ all */

void metrics_result_free(metrics_result *m) {
    if (!m) return;
    free(m->topk);
    free(m->class_pos);
    free(m->class_ap);
    free(m->class_tp);
    free(m->class_pred);
    free(m->class_p);
    free(m->class_r);
    memset(m, 0, sizeof *m);
}

ramc_status metrics_evaluate(const float *scores, const float *labels, int n, int C,
                             const int *ks, int n_k, metrics_result *out) {
    if (!out) return ramc_error(RAMC_ERR_INVALID_ARG, "metrics: NULL output");
    memset(out, 0, sizeof *out);
    if (n_k < 1 || n_k > METRICS_MAX_K || !ks)
        return ramc_error(RAMC_ERR_INVALID_ARG, "metrics: %d values of k, expected 1..%d", n_k,
                          METRICS_MAX_K);
    for (int t = 0; t < n_k; t++)
        if (ks[t] < 1)
            return ramc_error(RAMC_ERR_INVALID_ARG, "metrics: k = %d, must be >= 1", ks[t]);
    ramc_status s = check_inputs(scores, labels, n, C);
    if (s != RAMC_OK) return s;

    metrics_result m = {0};
    m.n_images = n;
    m.n_classes = C;
    m.n_k = n_k;
    size_t kc = (size_t)n_k * (size_t)C;
    m.topk = ramc_calloc((size_t)n_k, sizeof *m.topk, "metrics per-k results");
    m.class_pos = ramc_calloc((size_t)C, sizeof *m.class_pos, "metrics class positives");
    m.class_ap = ramc_calloc((size_t)C, sizeof *m.class_ap, "metrics class AP");
    m.class_tp = ramc_calloc(kc, sizeof *m.class_tp, "metrics class tp");
    m.class_pred = ramc_calloc(kc, sizeof *m.class_pred, "metrics class predictions");
    m.class_p = ramc_calloc(kc, sizeof *m.class_p, "metrics class precision");
    m.class_r = ramc_calloc(kc, sizeof *m.class_r, "metrics class recall");
    if (!m.topk || !m.class_pos || !m.class_ap || !m.class_tp || !m.class_pred || !m.class_p ||
        !m.class_r) {
        metrics_result_free(&m);
        return RAMC_ERR_NOMEM;
    }
    for (int t = 0; t < n_k && s == RAMC_OK; t++) {
        size_t o = (size_t)t * C;
        s = topk_unchecked(scores, labels, n, C, ks[t], &m.topk[t], m.class_tp + o,
                           m.class_pred + o, m.class_p + o, m.class_r + o);
    }
    if (s == RAMC_OK)
        s = ap_unchecked(scores, labels, n, C, m.class_ap, m.class_pos, &m.map, &m.map_classes);
    if (s != RAMC_OK) {
        metrics_result_free(&m);
        return s;
    }
    *out = m;
    return RAMC_OK;
}
