/* Multi-label evaluation metrics (spec §8, docs/metrics.md).
 *
 * Top-k metrics reproduce the official utils/metrics.py::multilabel_evaluation
 * (OP, OR, OF1, CP, CR, CF1), including its edge cases; mAP follows the usual
 * ML-ZSL convention (the official code does not compute it). All values in
 * the structs are FRACTIONS in [0, 1] (or NaN where the official code would
 * produce NaN); only the printed report multiplies by 100.
 *
 * Inputs are the full score and label matrices, row-major [n, C] floats:
 * the evaluation stores every score, as the official code does. Memory is
 * the caller's two matrices (8·n·C bytes; NUS GZSL 1006 classes × 100k
 * images ≈ 805 MB) plus O(n + C·n_k) scratch here.
 *
 * Deterministic tie rules (the official one is whatever PyTorch's topk
 * returns, which is not specified for equal scores):
 *   - top-k per image: larger score first; equal scores -> lower class index
 *     first;
 *   - AP ranking per class: larger score first; equal scores -> lower image
 *     index first.
 *   -0.0 and +0.0 are equal. NaN scores are rejected (RAMC_ERR_NUMERIC);
 *   ±Inf are ordinary values.
 */
#ifndef RAMC_EVAL_METRICS_H
#define RAMC_EVAL_METRICS_H

#include <stdint.h>

#include "ramc.h"

/* Overall and class-averaged metrics at one k. */
typedef struct {
    int k;          /* as requested */
    int k_used;     /* min(k, C): torch.topk would raise for k > C; we clamp */
    double OP;      /* Σtp / Σ(tp+fp) = Σtp / (n·k_used); NaN if n = 0 */
    double OR;      /* Σtp / Σ(tp+fn) = Σtp / #positives; NaN if no positives */
    double OF1;     /* 2·OP·OR/(OP+OR); 0 if OP = OR = 0; NaN if OP or OR is NaN */
    double CP;      /* mean over ALL C classes of P_j (P_j = 0 when tp_j = 0) */
    double CR;      /* mean over ALL C classes of R_j (R_j = 0 when tp_j = 0) */
    double CF1;     /* 2·CP·CR/(CP+CR); 0 if CP = CR = 0 */
    int64_t tp;     /* Σ_j tp_j */
    int64_t n_pred; /* Σ_j (tp_j + fp_j) = n·k_used */
    int64_t n_pos;  /* Σ_j (tp_j + fn_j): positive labels in the matrix */
} metrics_topk;

/* Everything one evaluation produces. Arrays are owned; free with
 * metrics_result_free. Per-class arrays indexed [t * n_classes + j] hold the
 * values at topk[t]. */
typedef struct {
    int n_images, n_classes;
    int n_k;
    metrics_topk *topk; /* [n_k], in the order of the requested ks */
    double map;         /* mean AP over classes with >= 1 positive (fraction);
                           NaN if no class has a positive */
    int map_classes;    /* number of classes averaged into map */
    int64_t *class_pos; /* [C] positives per class */
    double *class_ap;   /* [C] AP_j (fraction); NaN for a class without positives */
    int64_t *class_tp;  /* [n_k*C] tp_j at top-k */
    int64_t *class_pred;/* [n_k*C] tp_j + fp_j: images whose top-k holds class j */
    double *class_p;    /* [n_k*C] P_j@k = tp_j/(tp_j+fp_j) if tp_j > 0 else 0 */
    double *class_r;    /* [n_k*C] R_j@k = tp_j/(tp_j+fn_j) if tp_j > 0 else 0 */
} metrics_result;

/* Largest accepted class count and k list length (bounds keep every size
 * computation far from overflow). */
#define METRICS_MAX_CLASSES 1000000
#define METRICS_MAX_K 64

/* Full evaluation: top-k metrics for each of ks[0..n_k-1] (each >= 1) plus AP
 * and mAP. scores, labels: [n, C] row-major. Labels must be 0, 1 or -1; -1 is
 * read as 0 (the official code does this in place; we never modify the
 * input). n may be 0 (then OP/OR/OF1/mAP are NaN). On failure *out is left
 * zeroed and the error is recorded with ramc_error. */
ramc_status metrics_evaluate(const float *scores, const float *labels, int n, int C,
                             const int *ks, int n_k, metrics_result *out);
void metrics_result_free(metrics_result *m);

/* One k only, as the official multilabel_evaluation(scores, labels, k).
 * class_tp/class_pred/class_p/class_r may each be NULL or point to [C]. */
ramc_status metrics_topk_eval(const float *scores, const float *labels, int n, int C, int k,
                              metrics_topk *out, int64_t *class_tp, int64_t *class_pred,
                              double *class_p, double *class_r);

/* AP per class (class_ap [C], NaN for classes without positives; may be
 * NULL), mAP over classes with positives (*map, fraction, NaN if none) and
 * how many classes that is (*map_classes). class_pos [C] may be NULL. */
ramc_status metrics_average_precision(const float *scores, const float *labels, int n, int C,
                                      double *class_ap, int64_t *class_pos, double *map,
                                      int *map_classes);

#endif
