/* Units of ramc serve below HTTP: base64 both ways (RFC 4648's vectors and
 * what a decoder must refuse), and the shared ranking of predict and serve
 * (api/result_json.h: order, ties, top_k, threshold). */
#include <stdlib.h>
#include <string.h>

#include "api/result_json.h"
#include "serve/base64.h"
#include "test.h"

static void test_base64_vectors(void) {
    /* RFC 4648 section 10 */
    static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const coded[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (int i = 0; i < 7; i++) {
        char *e = base64_encode((const uint8_t *)plain[i], strlen(plain[i]));
        CHECK(e && !strcmp(e, coded[i]), "encode '%s': got '%s', want '%s'", plain[i], e ? e : "(null)", coded[i]);
        free(e);
        uint8_t *d = NULL;
        size_t n = 0;
        long bad = 0;
        int ok = base64_decode(coded[i], strlen(coded[i]), &d, &n, &bad);
        CHECK(ok && n == strlen(plain[i]) && !memcmp(d, plain[i], n), "decode '%s'", coded[i]);
        free(d);
    }
}

static void test_base64_lenient_and_strict(void) {
    uint8_t *d = NULL;
    size_t n = 0;
    long bad = 0;
    /* wrapped lines and missing padding are accepted */
    CHECK(base64_decode("Zm9v\r\nYmFy\n", 11, &d, &n, &bad) && n == 6 && !memcmp(d, "foobar", 6), "line breaks");
    free(d);
    CHECK(base64_decode("Zm8", 3, &d, &n, &bad) && n == 2 && !memcmp(d, "fo", 2), "no padding");
    free(d);
    /* refused: a character outside the alphabet (with its offset), data
     * after padding, a lone sextet, wrong padding */
    CHECK(!base64_decode("Zm9v*mFy", 8, &d, &n, &bad) && bad == 4 && !d, "'*' at 4: bad_at %ld", bad);
    CHECK(!base64_decode("Zg==Zg==", 8, &d, &n, &bad) && bad == 4, "data after padding: bad_at %ld", bad);
    CHECK(!base64_decode("Zm9vY", 5, &d, &n, &bad) && bad == -1, "a lone sextet");
    CHECK(!base64_decode("Zg=", 3, &d, &n, &bad), "one '=' where two belong");
    CHECK(!base64_decode("Zm8==", 5, &d, &n, &bad), "two '=' where one belongs");
    CHECK(!base64_decode("====", 4, &d, &n, &bad), "padding alone");
}

static void test_base64_round_trip(void) {
    uint8_t buf[300];
    unsigned x = 12345;
    for (size_t len = 0; len <= sizeof buf; len += 7) {
        for (size_t i = 0; i < len; i++) buf[i] = (uint8_t)((x = x * 1103515245u + 12345u) >> 16);
        char *e = base64_encode(buf, len);
        uint8_t *d = NULL;
        size_t n = 0;
        long bad = 0;
        CHECK(e && strlen(e) == (len + 2) / 3 * 4, "encoded length for %zu bytes", len);
        CHECK(e && base64_decode(e, strlen(e), &d, &n, &bad) && n == len && !memcmp(d, buf, len),
              "round trip of %zu bytes", len);
        free(e);
        free(d);
    }
}

static void test_rank(void) {
    const float s[6] = {0.1f, 0.3f, 0.05f, 0.3f, 0.25f, 0.0f};
    int order[6];
    result_selection all = {0, 0, 0, NULL};
    CHECK(result_rank(s, 6, &all, order) == 6, "top_k 0 shows every label");
    const int want[6] = {1, 3, 4, 0, 2, 5}; /* ties (1 and 3) in label order */
    CHECK(!memcmp(order, want, sizeof want), "order %d %d %d %d %d %d", order[0], order[1], order[2], order[3],
          order[4], order[5]);
    result_selection top2 = {2, 0, 0, NULL};
    CHECK(result_rank(s, 6, &top2, order) == 2, "top_k 2");
    result_selection thr = {0, 1, 0.25f, NULL};
    CHECK(result_rank(s, 6, &thr, order) == 3, "threshold 0.25 keeps 0.3, 0.3, 0.25");
    result_selection both = {2, 1, 0.25f, NULL};
    CHECK(result_rank(s, 6, &both, order) == 2, "top_k 2 within the threshold");
    result_selection none = {5, 1, 0.9f, NULL};
    CHECK(result_rank(s, 6, &none, order) == 0, "nothing reaches 0.9");
    /* per-label thresholds (--thresholds): each label against its own, best first */
    const float own[6] = {0.05f, 0.5f, 0.05f, 0.2f, 0.3f, 0.0f};
    result_selection per = {0, 0, 0, own};
    CHECK(result_rank(s, 6, &per, order) == 4, "labels 3, 0, 2, 5 reach their own thresholds");
    const int want_per[4] = {3, 0, 2, 5};
    CHECK(!memcmp(order, want_per, sizeof want_per), "per-label order %d %d %d %d", order[0],
          order[1], order[2], order[3]);
    result_selection per2 = {2, 1, 0.9f, own};
    CHECK(result_rank(s, 6, &per2, order) == 2 && order[0] == 3 && order[1] == 0,
          "top_k 2 of the passing labels; the per-label thresholds win over the single one");
    CHECK(result_round_score(0.123456789f) == 0.123457, "6 significant digits");
}

int main(void) {
    test_base64_vectors();
    test_base64_lenient_and_strict();
    test_base64_round_trip();
    test_rank();
    return test_summary("test_serve_units");
}
