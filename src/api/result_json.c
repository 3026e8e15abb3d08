/* Ranked labels of one image as JSON (result_json.h). */
#include "api/result_json.h"

#include <stdio.h>
#include <stdlib.h>

#include "io/file.h"

typedef struct {
    float score;
    int index;
} ranked;

static int cmp_ranked(const void *a, const void *b) {
    const ranked *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return x->index - y->index;
}

int result_rank(const float *scores, int C, const result_selection *sel, int *order) {
    /* the score travels with its index: no global for qsort to read */
    ranked *r = malloc((size_t)(C > 0 ? C : 1) * sizeof *r);
    if (!r) return -1;
    for (int c = 0; c < C; c++) r[c].score = scores[c], r[c].index = c;
    qsort(r, (size_t)C, sizeof *r, cmp_ranked);
    for (int c = 0; c < C; c++) order[c] = r[c].index;
    free(r);
    int shown = sel->top_k && sel->top_k < C ? sel->top_k : C;
    if (sel->label_thresholds) {
        /* each label against its own threshold: the passing ones, best first */
        int m = 0;
        for (int q = 0; q < C && m < shown; q++)
            if (scores[order[q]] >= sel->label_thresholds[order[q]]) order[m++] = order[q];
        shown = m;
    } else if (sel->threshold_set) {
        int m = 0;
        while (m < shown && scores[order[m]] >= sel->threshold) m++;
        shown = m;
    }
    return shown;
}

double result_round_score(float score) {
    char buf[32];
    snprintf(buf, sizeof buf, "%.6g", (double)score);
    return strtod(buf, NULL);
}

const char *result_score_name(ramc_score score) {
    return score == RAMC_SCORE_INDEPENDENT ? "independent" : "official";
}

cJSON *result_json(const char *image, const ramc_labels *labels, const int *order,
                   const float *scores, int n_shown, ramc_score score_type) {
    cJSON *obj = cJSON_CreateObject(), *list = cJSON_CreateArray();
    cJSON *name = json_string_utf8(image);
    if (!obj || !list || !name) {
        cJSON_Delete(obj);
        cJSON_Delete(list);
        cJSON_Delete(name);
        return NULL;
    }
    cJSON_AddItemToObject(obj, "image", name);
    cJSON_AddItemToObject(obj, "labels", list);
    for (int k = 0; k < n_shown; k++) {
        cJSON *e = cJSON_CreateObject();
        if (!e) goto fail;
        cJSON_AddItemToArray(list, e);
        if (!cJSON_AddStringToObject(e, "label", ramc_labels_name(labels, order[k])) ||
            !cJSON_AddNumberToObject(e, "score", result_round_score(scores[order[k]])))
            goto fail;
    }
    if (!cJSON_AddStringToObject(obj, "score_type", result_score_name(score_type))) goto fail;
    return obj;
fail:
    cJSON_Delete(obj);
    return NULL;
}
