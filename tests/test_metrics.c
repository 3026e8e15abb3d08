/* Tests of src/eval/metrics.c and src/eval/report.c against spec §8.2's test
 * vector, hand-worked cases (arithmetic in the comments), a brute-force
 * reference on random tied data, and a JSON round trip. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/status.h"
#include "eval/metrics.h"
#include "eval/report.h"
#include "test.h"

#define TOL 1e-12

static metrics_topk topk1(const float *s, const float *y, int n, int C, int k) {
    metrics_topk m;
    memset(&m, 0, sizeof m);
    ramc_status st = metrics_topk_eval(s, y, n, C, k, &m, NULL, NULL, NULL, NULL);
    CHECK(st == RAMC_OK, "k=%d: %s", k, ramc_last_error());
    return m;
}

static void check_six(metrics_topk m, double op, double or_, double of1, double cp, double cr,
                      double cf1, const char *what) {
    const char *names[6] = {"OP", "OR", "OF1", "CP", "CR", "CF1"};
    const double got[6] = {m.OP, m.OR, m.OF1, m.CP, m.CR, m.CF1};
    const double want[6] = {op, or_, of1, cp, cr, cf1};
    for (int i = 0; i < 6; i++) {
        char b[128];
        snprintf(b, sizeof b, "%s %s", what, names[i]);
        CHECK_CLOSE(got[i], want[i], TOL, b);
    }
}

/* spec §8.2: 3 images x 4 classes. Image 2 has no positive; class 1 has no
 * positive (it counts 0 in CP and CR). */
static const float spec_s[12] = {0.9f, 0.1f, 0.5f, 0.3f, 0.2f, 0.8f,
                                 0.7f, 0.1f, 0.4f, 0.3f, 0.2f, 0.95f};
static const float spec_y[12] = {1, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0};

static void test_spec_vector(void) {
    /* k=1: picks c0 (tp), c1 (fp), c3 (fp): Σtp=1, n·k=3, positives 3.
     *   P = [1,0,0,0] -> CP .25; R = [1,0,0,0] -> CR .25 */
    check_six(topk1(spec_s, spec_y, 3, 4, 1), 1.0 / 3, 1.0 / 3, 1.0 / 3, 0.25, 0.25, 0.25,
              "spec k=1");
    /* k=2: {c0 tp, c2 fp}, {c1 fp, c2 tp}, {c3 fp, c0 fp}: Σtp=2 of 6, OR 2/3,
     *   OF1 = 2(1/3)(2/3)/1 = 4/9; P = [1/2,0,1/2,0] -> .25;
     *   R = [1,0,1,0] -> .5; CF1 = 2(.25)(.5)/.75 = 1/3 */
    check_six(topk1(spec_s, spec_y, 3, 4, 2), 1.0 / 3, 2.0 / 3, 4.0 / 9, 0.25, 0.5, 1.0 / 3,
              "spec k=2");
    /* k=3: {c0 tp, c2 fp, c3 tp}, {c1 fp, c2 tp, c0 fp}, {c3 fp, c0 fp, c1 fp}:
     *   Σtp=3 of 9, OR 1, OF1 = 2(1/3)/(4/3) = .5;
     *   P = [1/3, 0, 1/2, 1/2] -> 1/3; R = [1,0,1,1] -> .75;
     *   CF1 = 2(1/3)(3/4)/(13/12) = 6/13 */
    check_six(topk1(spec_s, spec_y, 3, 4, 3), 1.0 / 3, 1.0, 0.5, 1.0 / 3, 0.75, 6.0 / 13,
              "spec k=3");
    CHECK_CLOSE(6.0 / 13, 0.461538, 1e-6, "spec §8.2's printed CF1");
}

/* Ties: equal scores -> lower class index first.
 *   image 0 [.5 .5 .5 .1], y [0 0 1 0]; image 1 [.2 .7 .7 .7], y [0 0 0 1]
 *   k=2: image 0 -> {0,1}; image 1 -> {1,2}: no tp at all.
 *     class_pred = [1,2,1,0]; OP 0/4, OR 0/2, OF1 0 (both 0); C* all 0.
 *   k=3: image 0 -> {0,1,2} (tp c2); image 1 -> {1,2,3} (tp c3).
 *     class_pred = [1,2,2,1], tp = [0,0,1,1]; OP 2/6, OR 2/2, OF1 .5;
 *     P = [0,0,1/2,1] -> CP .375; R = [0,0,1,1] -> CR .5;
 *     CF1 = 2(.375)(.5)/.875 = 3/7. */
static void test_ties(void) {
    const float s[8] = {0.5f, 0.5f, 0.5f, 0.1f, 0.2f, 0.7f, 0.7f, 0.7f};
    const float y[8] = {0, 0, 1, 0, 0, 0, 0, 1};
    metrics_topk m;
    int64_t tp[4], np[4];
    CHECK(metrics_topk_eval(s, y, 2, 4, 2, &m, tp, np, NULL, NULL) == RAMC_OK, "%s",
          ramc_last_error());
    CHECK(np[0] == 1 && np[1] == 2 && np[2] == 1 && np[3] == 0, "k=2 preds %lld %lld %lld %lld",
          (long long)np[0], (long long)np[1], (long long)np[2], (long long)np[3]);
    check_six(m, 0, 0, 0, 0, 0, 0, "ties k=2");
    CHECK(metrics_topk_eval(s, y, 2, 4, 3, &m, tp, np, NULL, NULL) == RAMC_OK, "%s",
          ramc_last_error());
    CHECK(np[0] == 1 && np[1] == 2 && np[2] == 2 && np[3] == 1, "k=3 preds");
    CHECK(tp[0] == 0 && tp[1] == 0 && tp[2] == 1 && tp[3] == 1, "k=3 tp");
    check_six(m, 2.0 / 6, 1.0, 0.5, 0.375, 0.5, 3.0 / 7, "ties k=3");

    /* a tie behind a larger score: [.3 .9 .3 .3] k=2 -> {1, 0} */
    const float s2[4] = {0.3f, 0.9f, 0.3f, 0.3f}, y2[4] = {1, 0, 0, 0};
    CHECK(metrics_topk_eval(s2, y2, 1, 4, 2, &m, tp, np, NULL, NULL) == RAMC_OK, "%s",
          ramc_last_error());
    CHECK(np[0] == 1 && np[1] == 1 && np[2] == 0 && np[3] == 0, "tie behind max");
    /* -0.0 == +0.0 is a tie: [-0, +0] k=1 -> class 0 */
    const float s3[2] = {-0.0f, 0.0f}, y3[2] = {1, 0};
    CHECK(metrics_topk_eval(s3, y3, 1, 2, 1, &m, tp, np, NULL, NULL) == RAMC_OK, "%s",
          ramc_last_error());
    CHECK(np[0] == 1 && np[1] == 0 && m.tp == 1, "signed zeros tie");
}

/* k > C: C=3, k=5 -> k_used 3. scores [.1 .2 .3], y [1 0 1]: all three
 * predicted, tp 2 of 3: OP 2/3, OR 1, OF1 = 2(2/3)/(5/3) = .8;
 * P = [1,0,1] -> CP 2/3; R = [1,0,1] -> CR 2/3; CF1 2/3. */
static void test_k_above_c(void) {
    const float s[3] = {0.1f, 0.2f, 0.3f}, y[3] = {1, 0, 1};
    metrics_topk m = topk1(s, y, 1, 3, 5);
    CHECK(m.k == 5 && m.k_used == 3 && m.n_pred == 3, "k %d k_used %d n_pred %lld", m.k,
          m.k_used, (long long)m.n_pred);
    check_six(m, 2.0 / 3, 1.0, 0.8, 2.0 / 3, 2.0 / 3, 2.0 / 3, "k>C");
}

/* All labels 0: OP = 0/(n·k) = 0 is defined; OR = 0/0 is NaN as in numpy,
 * and OF1 is NaN too (the official `p_o==0 and r_o==0` test fails on NaN, so
 * it evaluates 2·0·NaN/(0+NaN)). CP = CR = 0, CF1 = 0. mAP has no class. */
static void test_all_zero(void) {
    const float s[6] = {0.1f, 0.5f, 0.3f, 0.9f, 0.2f, 0.4f};
    const float y[6] = {0, 0, 0, 0, 0, 0};
    metrics_topk m = topk1(s, y, 2, 3, 1);
    CHECK(m.OP == 0.0, "OP %g", m.OP);
    CHECK(isnan(m.OR) && isnan(m.OF1), "OR %g OF1 %g", m.OR, m.OF1);
    CHECK(m.CP == 0.0 && m.CR == 0.0 && m.CF1 == 0.0, "class metrics");
    double map = 0;
    int used = -1;
    double ap[3];
    CHECK(metrics_average_precision(s, y, 2, 3, ap, NULL, &map, &used) == RAMC_OK, "%s",
          ramc_last_error());
    CHECK(isnan(map) && used == 0 && isnan(ap[0]) && isnan(ap[2]), "mAP %g used %d", map, used);

    /* no images at all: OP and OR are both 0/0 */
    metrics_topk e = topk1(NULL, NULL, 0, 3, 3);
    CHECK(isnan(e.OP) && isnan(e.OR) && isnan(e.OF1) && e.CP == 0 && e.CF1 == 0, "n=0");
}

/* -1 reads as 0: same numbers as the spec §8.2 vector with its zeros replaced by
 * -1. Other label values and NaN scores are refused. */
static void test_minus_one_and_errors(void) {
    float y[12];
    for (int i = 0; i < 12; i++) y[i] = spec_y[i] == 0 ? -1.0f : 1.0f;
    check_six(topk1(spec_s, y, 3, 4, 3), 1.0 / 3, 1.0, 0.5, 1.0 / 3, 0.75, 6.0 / 13, "-1 k=3");
    metrics_result r;
    const int ks[2] = {3, 5};
    CHECK(metrics_evaluate(spec_s, y, 3, 4, ks, 2, &r) == RAMC_OK, "%s", ramc_last_error());
    CHECK(r.class_pos[0] == 1 && r.class_pos[1] == 0 && r.map_classes == 3, "-1 positives");
    metrics_result_free(&r);

    metrics_topk m;
    y[5] = 0.5f;
    CHECK(metrics_topk_eval(spec_s, y, 3, 4, 1, &m, NULL, NULL, NULL, NULL) ==
              RAMC_ERR_INVALID_ARG, "label 0.5 refused");
    CHECK(strstr(ramc_last_error(), "image 1, class 1") != NULL, "message: %s",
          ramc_last_error());
    float s[12];
    memcpy(s, spec_s, sizeof s);
    s[3] = NAN;
    CHECK(metrics_topk_eval(s, spec_y, 3, 4, 1, &m, NULL, NULL, NULL, NULL) == RAMC_ERR_NUMERIC,
          "NaN score refused");
    CHECK(metrics_topk_eval(spec_s, spec_y, 3, 4, 0, &m, NULL, NULL, NULL, NULL) ==
              RAMC_ERR_INVALID_ARG, "k=0 refused");
    CHECK(metrics_topk_eval(spec_s, spec_y, 3, 0, 1, &m, NULL, NULL, NULL, NULL) ==
              RAMC_ERR_INVALID_ARG, "C=0 refused");
    CHECK(metrics_evaluate(spec_s, spec_y, 3, 4, ks, 0, &r) == RAMC_ERR_INVALID_ARG &&
              r.topk == NULL, "no k refused, output zeroed");
}

/* mAP by hand, 5 images x 2 classes (row-major [image][class]).
 *   class 0 scores .9 .8 .7 .6 .5, labels 1 0 1 0 1: positives at ranks 1,3,5
 *     AP0 = (1/1 + 2/3 + 3/5)/3 = (34/15)/3 = 34/45 = 0.755556
 *   class 1 scores .1 .4 .3 .2 .35, labels 0 1 0 1 0: ranking 1,4,2,3,0, so
 *     the positives (images 1, 3) sit at ranks 1 and 4:
 *     AP1 = (1/1 + 2/4)/2 = 0.75
 *   mAP = (34/45 + 3/4)/2 = 271/360 = 0.752778 */
static void test_map_hand(void) {
    const float s[10] = {0.9f, 0.1f, 0.8f, 0.4f, 0.7f, 0.3f, 0.6f, 0.2f, 0.5f, 0.35f};
    const float y[10] = {1, 0, 0, 1, 1, 0, 0, 1, 1, 0};
    double ap[3], map;
    int64_t pos[2];
    int used;
    CHECK(metrics_average_precision(s, y, 5, 2, ap, pos, &map, &used) == RAMC_OK, "%s",
          ramc_last_error());
    CHECK_CLOSE(ap[0], 34.0 / 45, TOL, "AP0");
    CHECK_CLOSE(ap[1], 0.75, TOL, "AP1");
    CHECK_CLOSE(map, 271.0 / 360, TOL, "mAP");
    CHECK(used == 2 && pos[0] == 3 && pos[1] == 2, "used %d pos %lld %lld", used,
          (long long)pos[0], (long long)pos[1]);

    /* A third class without positives is skipped, not averaged as 0. */
    float s3[15], y3[15];
    for (int i = 0; i < 5; i++) {
        s3[i * 3] = s[i * 2], s3[i * 3 + 1] = s[i * 2 + 1], s3[i * 3 + 2] = 0.5f;
        y3[i * 3] = y[i * 2], y3[i * 3 + 1] = y[i * 2 + 1], y3[i * 3 + 2] = 0;
    }
    CHECK(metrics_average_precision(s3, y3, 5, 3, ap, NULL, &map, &used) == RAMC_OK, "%s",
          ramc_last_error());
    CHECK_CLOSE(map, 271.0 / 360, TOL, "mAP with an empty class");
    CHECK(used == 2, "used %d", used);

    /* Ties in AP: all four scores equal -> image order 0,1,2,3.
     *   labels 0 1 0 1: ranks 2, 4 -> (1/2 + 2/4)/2 = 0.5
     *   labels 1 1 0 0: ranks 1, 2 -> 1 */
    const float st[4] = {0.5f, 0.5f, 0.5f, 0.5f};
    const float ya[4] = {0, 1, 0, 1}, yb[4] = {1, 1, 0, 0};
    CHECK(metrics_average_precision(st, ya, 4, 1, ap, NULL, &map, &used) == RAMC_OK, "ties a");
    CHECK_CLOSE(map, 0.5, TOL, "tied AP, positives late");
    CHECK(metrics_average_precision(st, yb, 4, 1, ap, NULL, &map, &used) == RAMC_OK, "ties b");
    CHECK_CLOSE(map, 1.0, TOL, "tied AP, positives first");

    /* Perfect ranking: every positive above every negative -> mAP 1.
     * Inverted: 4 images, 2 positives with the two LOWEST scores, ranks 3, 4:
     *   AP = (1/3 + 2/4)/2 = 5/12. Scores mix signs and ±Inf to exercise the
     *   float-to-key mapping. */
    const float sp[8] = {INFINITY, -1.0f, 2.0f, -INFINITY, -0.5f, 0.25f, -3.0f, 0.0f};
    const float yp[8] = {1, 0, 1, 0, 0, 1, 0, 1};
    /* class 0 scores +Inf 2 -.5 -3, labels 1 1 0 0: perfect
     * class 1 scores -1 -Inf .25 0, labels 0 0 1 1: perfect */
    CHECK(metrics_average_precision(sp, yp, 4, 2, ap, NULL, &map, &used) == RAMC_OK, "perfect");
    CHECK_CLOSE(map, 1.0, TOL, "perfect ranking");
    const float yi[8] = {0, 1, 0, 1, 1, 0, 1, 0};
    CHECK(metrics_average_precision(sp, yi, 4, 2, ap, NULL, &map, &used) == RAMC_OK, "inverted");
    CHECK_CLOSE(ap[0], 5.0 / 12, TOL, "inverted AP0");
    CHECK_CLOSE(ap[1], 5.0 / 12, TOL, "inverted AP1");
    CHECK_CLOSE(map, 5.0 / 12, TOL, "inverted mAP");
}

/* ----------------------------------------------- brute-force reference */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(void) {
    rng_state ^= rng_state << 13, rng_state ^= rng_state >> 7, rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 32);
}

/* Rank of entry a among entries of a vector under "larger first, lower index
 * first": 1 + #{b : v[b] > v[a] or (v[b] == v[a] and b < a)}. O(n^2), obvious. */
static int rank_of(const float *v, int stride, int n, int a) {
    int r = 1;
    for (int b = 0; b < n; b++)
        if (v[b * stride] > v[a * stride] || (v[b * stride] == v[a * stride] && b < a)) r++;
    return r;
}

static void test_random_reference(void) {
    enum { N = 60, C = 7 };
    static float s[N * C], y[N * C];
    for (int trial = 0; trial < 20; trial++) {
        for (int i = 0; i < N * C; i++) {
            /* few distinct values, both signs: lots of ties */
            s[i] = (float)((int)(rnd() % 9) - 4) * 0.25f;
            if (s[i] == 0 && (rnd() & 1)) s[i] = -0.0f;
            y[i] = (rnd() % 3 == 0) ? 1.0f : ((rnd() & 1) ? 0.0f : -1.0f);
        }
        if (trial == 0)
            for (int i = 0; i < N; i++) y[i * C + 6] = 0; /* one class without positives */
        const int ks[3] = {1, 3, 9};
        metrics_result m;
        CHECK(metrics_evaluate(s, y, N, C, ks, 3, &m) == RAMC_OK, "%s", ramc_last_error());
        for (int t = 0; t < 3; t++) {
            int ku = ks[t] < C ? ks[t] : C;
            int64_t tp[C] = {0}, np[C] = {0}, pos[C] = {0};
            for (int i = 0; i < N; i++)
                for (int j = 0; j < C; j++) {
                    int in = rank_of(s + i * C, 1, C, j) <= ku;
                    np[j] += in;
                    tp[j] += in && y[i * C + j] == 1;
                    pos[j] += y[i * C + j] == 1;
                }
            double sp = 0, sr = 0;
            int64_t stp = 0, spos = 0;
            for (int j = 0; j < C; j++) {
                CHECK(m.class_tp[t * C + j] == tp[j] && m.class_pred[t * C + j] == np[j],
                      "trial %d k %d class %d counts", trial, ks[t], j);
                sp += tp[j] ? (double)tp[j] / np[j] : 0;
                sr += tp[j] ? (double)tp[j] / pos[j] : 0;
                stp += tp[j], spos += pos[j];
            }
            CHECK_CLOSE(m.topk[t].OP, (double)stp / (N * ku), TOL, "random OP");
            CHECK_CLOSE(m.topk[t].OR, (double)stp / spos, TOL, "random OR");
            CHECK_CLOSE(m.topk[t].CP, sp / C, TOL, "random CP");
            CHECK_CLOSE(m.topk[t].CR, sr / C, TOL, "random CR");
        }
        double sum = 0;
        int used = 0;
        for (int j = 0; j < C; j++) {
            int npos = 0;
            for (int i = 0; i < N; i++) npos += y[i * C + j] == 1;
            if (!npos) {
                CHECK(isnan(m.class_ap[j]), "empty class AP is NaN");
                continue;
            }
            /* AP = mean over positives of (#positives ranked at or above it)/rank */
            double acc = 0;
            for (int a = 0; a < N; a++) {
                if (y[a * C + j] != 1) continue;
                int ra = rank_of(s + j, C, N, a), above = 0;
                for (int b = 0; b < N; b++)
                    if (y[b * C + j] == 1 && rank_of(s + j, C, N, b) <= ra) above++;
                acc += (double)above / ra;
            }
            CHECK_CLOSE(m.class_ap[j], acc / npos, 1e-12, "random AP");
            sum += acc / npos, used++;
        }
        CHECK(m.map_classes == used, "map classes");
        CHECK_CLOSE(m.map, sum / used, 1e-12, "random mAP");
        metrics_result_free(&m);
    }
}

/* ------------------------------------------------------------- reports */

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    if (b) b[n] = 0;
    fclose(f);
    return b;
}

static double jnum(const cJSON *o, const char *key) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(it) ? it->valuedouble : -12345;
}

static void test_report(void) {
    const int ks[3] = {1, 3, 5};
    metrics_result m;
    CHECK(metrics_evaluate(spec_s, spec_y, 3, 4, ks, 3, &m) == RAMC_OK, "%s", ramc_last_error());
    const char *names[4] = {"person", "bicycle", "a very long class name that will be cut", "cat"};
    eval_report *r = NULL;
    CHECK(report_new("zsl", "ema", names, &m, &r) == RAMC_OK && r, "%s", ramc_last_error());
    if (!r) return;
    CHECK(m.topk == NULL, "metrics moved into the report");

    char dir[] = "/tmp/ramc_test_metrics_XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    char path[128];
    snprintf(path, sizeof path, "%s/report.json", dir);
    CHECK(report_write_json_file(r, path) == RAMC_OK, "%s", ramc_last_error());
    char *txt = slurp(path);
    CHECK(txt != NULL, "read back %s", path);
    cJSON *j = txt ? cJSON_Parse(txt) : NULL;
    CHECK(j != NULL, "parse JSON");
    if (j) {
        const cJSON *it;
        it = cJSON_GetObjectItemCaseSensitive(j, "schema");
        CHECK(cJSON_IsString(it) && !strcmp(it->valuestring, REPORT_SCHEMA), "schema");
        it = cJSON_GetObjectItemCaseSensitive(j, "name");
        CHECK(cJSON_IsString(it) && !strcmp(it->valuestring, "zsl"), "name");
        it = cJSON_GetObjectItemCaseSensitive(j, "model");
        CHECK(cJSON_IsString(it) && !strcmp(it->valuestring, "ema"), "model");
        it = cJSON_GetObjectItemCaseSensitive(j, "units");
        CHECK(cJSON_IsString(it) && !strcmp(it->valuestring, "fraction"), "units");
        CHECK(jnum(j, "n_images") == 3 && jnum(j, "n_classes") == 4, "sizes");
        const cJSON *kk = cJSON_GetObjectItemCaseSensitive(j, "k");
        CHECK(cJSON_GetArraySize(kk) == 3 && cJSON_GetArrayItem(kk, 2)->valuedouble == 5, "k list");
        const cJSON *tk = cJSON_GetObjectItemCaseSensitive(j, "topk");
        CHECK(cJSON_GetArraySize(tk) == 3, "topk entries");
        const cJSON *t2 = cJSON_GetArrayItem(tk, 1); /* k = 3 */
        CHECK(jnum(t2, "k") == 3 && jnum(t2, "k_used") == 3, "k 3");
        CHECK_CLOSE(jnum(t2, "OP"), 1.0 / 3, 1e-15, "json OP");
        CHECK_CLOSE(jnum(t2, "CF1"), 6.0 / 13, 1e-15, "json CF1 (round trip exact)");
        CHECK(jnum(t2, "tp") == 3 && jnum(t2, "n_pred") == 9 && jnum(t2, "n_pos") == 3, "counts");
        const cJSON *t3 = cJSON_GetArrayItem(tk, 2); /* k = 5 > C = 4 */
        CHECK(jnum(t3, "k") == 5 && jnum(t3, "k_used") == 4, "k clamped in JSON");
        /* mAP: class 0 AP 1 (image 0 ranks first), class 2 AP 1 (0.7 highest),
         * class 3 positive is image 0 at .3 behind image 2's .95 -> rank 2,
         * AP 1/2; class 1 skipped. mAP = 2.5/3 */
        CHECK_CLOSE(jnum(j, "mAP"), 2.5 / 3, 1e-15, "json mAP");
        CHECK(jnum(j, "mAP_classes") == 3, "mAP classes");
        const cJSON *cl = cJSON_GetObjectItemCaseSensitive(j, "classes");
        CHECK(cJSON_GetArraySize(cl) == 4, "classes");
        const cJSON *c1 = cJSON_GetArrayItem(cl, 1);
        it = cJSON_GetObjectItemCaseSensitive(c1, "name");
        CHECK(cJSON_IsString(it) && !strcmp(it->valuestring, "bicycle"), "class name");
        CHECK(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(c1, "AP")), "NaN AP is null");
        CHECK(jnum(c1, "n_pos") == 0 && jnum(c1, "index") == 1, "class 1 fields");
        const cJSON *c0 = cJSON_GetArrayItem(cl, 0);
        const cJSON *p0 = cJSON_GetObjectItemCaseSensitive(c0, "P");
        const cJSON *r0 = cJSON_GetObjectItemCaseSensitive(c0, "R");
        /* class 0 at k=3: tp 1 of 3 predictions, 1 positive */
        CHECK(cJSON_GetArraySize(p0) == 3 && cJSON_GetArraySize(r0) == 3, "per-k arrays");
        CHECK_CLOSE(cJSON_GetArrayItem(p0, 1)->valuedouble, 1.0 / 3, 1e-15, "class 0 P@3");
        CHECK_CLOSE(cJSON_GetArrayItem(r0, 1)->valuedouble, 1.0, 1e-15, "class 0 R@3");
        cJSON_Delete(j);
    }
    free(txt);
    /* no temporary file left beside the report */
    char cmd[256];
    snprintf(cmd, sizeof cmd, "ls %s | wc -l", dir);
    FILE *p = popen(cmd, "r");
    int count = -1;
    if (p) {
        if (fscanf(p, "%d", &count) != 1) count = -1;
        pclose(p);
    }
    CHECK(count == 1, "files in %s: %d", dir, count);
    unlink(path);
    rmdir(dir);
    CHECK(report_write_json_file(r, "/nonexistent_dir_ramc/x.json") == RAMC_ERR_IO,
          "unwritable path");

    /* the table */
    FILE *f = tmpfile();
    CHECK(f != NULL, "tmpfile");
    if (f) {
        CHECK(report_print_table(f, r, 1) == RAMC_OK, "%s", ramc_last_error());
        long n = ftell(f);
        rewind(f);
        char *b = calloc(1, (size_t)n + 1);
        if (b && fread(b, 1, (size_t)n, f) == (size_t)n) {
            CHECK(strstr(b, "33.33") != NULL, "percent with 2 decimals");
            CHECK(strstr(b, "46.15") != NULL, "CF1@3 = 6/13 in percent");
            CHECK(strstr(b, "83.33") != NULL, "mAP in percent");
            CHECK(strstr(b, "nan") != NULL, "NaN AP printed as nan");
            CHECK(strstr(b, "k = 5 exceeds") != NULL, "k clamp note");
            CHECK(strstr(b, "a very long class name that wil~") != NULL, "long name cut");
            if (test_failed_count) fputs(b, stderr);
        }
        free(b);
        fclose(f);
    }
    report_free(r);
}

int main(void) {
    test_spec_vector();
    test_ties();
    test_k_above_c();
    test_all_zero();
    test_minus_one_and_errors();
    test_map_hand();
    test_random_reference();
    test_report();
    return test_summary("test_metrics");
}
