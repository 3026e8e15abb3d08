/* What the public API does for its users (ramc.h): the official test
 * transform as one call (against Pillow/torchvision fixtures), the model's
 * tokenizer read once, per-call thread counts, and the version string. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <zlib.h>

#include "io/file.h"
#include "ramc.h"
#include "test.h"

#define FIXTURES RAMC_SOURCE_DIR "/tests/fixtures/images"
#define DEFAULT_MODEL RAMC_SOURCE_DIR "/data/default"
#define SAMPLES RAMC_SOURCE_DIR "/data/samples"

/* A gzip fixture of exactly `size` bytes, or NULL. */
static void *read_gz(const char *name, size_t size) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", FIXTURES, name);
    gzFile g = gzopen(path, "rb");
    if (!g) return NULL;
    unsigned char *d = malloc(size + 1);
    int n = d ? gzread(g, d, (unsigned)size + 1) : -1;
    gzclose(g);
    if (n < 0 || (size_t)n != size) {
        free(d);
        return NULL;
    }
    return d;
}

static ramc_filter filter_of(const char *name) {
    return !strcmp(name, "bicubic") ? RAMC_FILTER_BICUBIC : RAMC_FILTER_BILINEAR;
}

/* ------------------------------------------------- preprocessing fixtures */

/* torchvision's Normalize over Pillow's resize of Pillow's decode: the
 * public call must give every float bit for bit, from the file and from
 * pixels in memory. */
static void check_tensor(const char *file, const uint8_t *decoded, int w, int h, const cJSON *t,
                         int *n) {
    int tw = cJSON_GetObjectItem(t, "width")->valueint;
    int th = cJSON_GetObjectItem(t, "height")->valueint;
    const char *tfile = cJSON_GetObjectItem(t, "file")->valuestring;
    ramc_preprocess_params p = ramc_preprocess_default_params();
    p.width = tw, p.height = th;
    p.filter = filter_of(cJSON_GetObjectItem(t, "filter")->valuestring);
    for (int c = 0; c < 3; c++) {
        p.mean[c] = (float)cJSON_GetArrayItem(cJSON_GetObjectItem(t, "mean"), c)->valuedouble;
        p.std[c] = (float)cJSON_GetArrayItem(cJSON_GetObjectItem(t, "std"), c)->valuedouble;
    }
    size_t count = (size_t)3 * tw * th;
    float *want = read_gz(tfile, count * sizeof(float));
    float *got = malloc(count * sizeof(float)), *got_mem = malloc(count * sizeof(float));
    CHECK(want && got && got_mem, "%s: fixture missing or no memory", tfile);
    if (want && got && got_mem) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", FIXTURES, file);
        ramc_status s = ramc_preprocess_file(NULL, path, &p, got);
        CHECK(s == RAMC_OK, "%s: %s", tfile, ramc_last_error());
        ramc_image img = {w, h, (uint8_t *)decoded};
        ramc_status s2 = ramc_preprocess_image(NULL, &img, &p, got_mem);
        CHECK(s2 == RAMC_OK, "%s (memory): %s", tfile, ramc_last_error());
        if (s == RAMC_OK && s2 == RAMC_OK) {
            size_t bad = 0, bad_mem = 0;
            for (size_t i = 0; i < count; i++) {
                bad += memcmp(&got[i], &want[i], sizeof(float)) != 0;
                bad_mem += memcmp(&got_mem[i], &want[i], sizeof(float)) != 0;
            }
            CHECK(bad == 0 && bad_mem == 0, "%s: %zu (file) and %zu (memory) of %zu floats differ",
                  tfile, bad, bad_mem, count);
            (*n)++;
        }
    }
    free(want), free(got), free(got_mem);
}

/* Every bilinear resize of the fixtures through ramc_preprocess_file with
 * mean 0, std 1: x/255 gives each pixel back exactly, so the resize inside
 * the call is Pillow's byte for byte. */
static void check_resize(const char *file, const cJSON *r, int *n) {
    if (strcmp(cJSON_GetObjectItem(r, "filter")->valuestring, "bilinear")) return;
    int rw = cJSON_GetObjectItem(r, "width")->valueint;
    int rh = cJSON_GetObjectItem(r, "height")->valueint;
    const char *rfile = cJSON_GetObjectItem(r, "file")->valuestring;
    uint8_t *want = read_gz(rfile, (size_t)rw * rh * 3);
    float *chw = malloc((size_t)3 * rw * rh * sizeof(float));
    CHECK(want && chw, "%s: fixture missing or no memory", rfile);
    if (want && chw) {
        ramc_preprocess_params p = ramc_preprocess_default_params();
        p.width = rw, p.height = rh;
        for (int c = 0; c < 3; c++) p.mean[c] = 0.0f, p.std[c] = 1.0f;
        char path[512];
        snprintf(path, sizeof path, "%s/%s", FIXTURES, file);
        ramc_status s = ramc_preprocess_file(NULL, path, &p, chw);
        CHECK(s == RAMC_OK, "%s: %s", rfile, ramc_last_error());
        if (s == RAMC_OK) {
            size_t bad = 0, plane = (size_t)rw * rh;
            for (size_t i = 0; i < plane; i++)
                for (int c = 0; c < 3; c++)
                    bad += lrintf(chw[c * plane + i] * 255.0f) != want[i * 3 + c];
            CHECK(bad == 0, "%s: %zu values differ from Pillow's pixels", rfile, bad);
            (*n)++;
        }
    }
    free(want), free(chw);
}

static void test_fixtures(void) {
    cJSON *manifest = NULL;
    ramc_status s = json_load_file(FIXTURES "/manifest.json", 1 << 20, &manifest);
    CHECK(s == RAMC_OK, "manifest: %s", ramc_last_error());
    if (s != RAMC_OK) return;
    int n_tensor = 0, n_resize = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(manifest, "images")) {
        const char *file = cJSON_GetObjectItem(e, "file")->valuestring;
        int w = cJSON_GetObjectItem(e, "width")->valueint;
        int h = cJSON_GetObjectItem(e, "height")->valueint;
        uint8_t *decoded = read_gz(cJSON_GetObjectItem(e, "decoded")->valuestring, (size_t)w * h * 3);
        CHECK(decoded != NULL, "%s: decoded fixture missing", file);
        if (!decoded) continue;
        const cJSON *x;
        cJSON_ArrayForEach(x, cJSON_GetObjectItem(e, "tensors")) check_tensor(file, decoded, w, h, x, &n_tensor);
        cJSON_ArrayForEach(x, cJSON_GetObjectItem(e, "resizes")) check_resize(file, x, &n_resize);
        free(decoded);
    }
    printf("preprocess: %d tensors and %d bilinear resizes compared with Pillow/torchvision\n",
           n_tensor, n_resize);
    CHECK(n_tensor >= 2 && n_resize >= 15, "too few fixtures compared");
    cJSON_Delete(manifest);
}

/* The defaults are the official test transform at the model's size. */
static void test_model_defaults(const ramc_model *m) {
    const int S = ramc_model_get_info(m).image_size;
    const size_t count = (size_t)3 * S * S;
    float *got = malloc(count * sizeof(float)), *want = malloc(count * sizeof(float));
    ramc_image img = {0}, sized = {0};
    const float half[3] = {0.5f, 0.5f, 0.5f};
    ramc_status s = ramc_image_load(FIXTURES "/cat_444.jpg", &img);
    if (s == RAMC_OK) s = ramc_image_resize(&img, S, S, RAMC_FILTER_BILINEAR, &sized);
    if (s == RAMC_OK) s = ramc_image_to_tensor(&sized, half, half, want);
    CHECK(s == RAMC_OK && got, "reference transform: %s", ramc_last_error());
    if (s == RAMC_OK && got) {
        s = ramc_preprocess_file(m, FIXTURES "/cat_444.jpg", NULL, got);
        CHECK(s == RAMC_OK, "preprocess_file: %s", ramc_last_error());
        CHECK(s == RAMC_OK && !memcmp(got, want, count * sizeof(float)),
              "default preprocessing is not bilinear to %dx%d with mean = std = 0.5", S, S);
        memset(got, 0, count * sizeof(float));
        s = ramc_preprocess_image(m, &img, NULL, got);
        CHECK(s == RAMC_OK && !memcmp(got, want, count * sizeof(float)),
              "preprocess_image differs from preprocess_file");
    }

    /* errors name the problem; a file error names the file */
    ramc_preprocess_params p = ramc_preprocess_default_params();
    s = ramc_preprocess_file(NULL, FIXTURES "/cat_444.jpg", &p, got);
    CHECK(s == RAMC_ERR_INVALID_ARG && strstr(ramc_last_error(), "size"),
          "no model and no size: %s", ramc_last_error());
    p.std[1] = 0.0f;
    s = ramc_preprocess_file(m, FIXTURES "/cat_444.jpg", &p, got);
    CHECK(s == RAMC_ERR_INVALID_ARG && strstr(ramc_last_error(), "std"), "std 0: %s",
          ramc_last_error());
    s = ramc_preprocess_file(m, FIXTURES "/no_such.jpg", NULL, got);
    CHECK(s == RAMC_ERR_IO && strstr(ramc_last_error(), "no_such.jpg"), "missing file: %s",
          ramc_last_error());
    ramc_image_free(&img);
    ramc_image_free(&sized);
    free(got), free(want);
}

/* -------------------------------------------------------------- tokenizer */

static int copy_file(const char *from, const char *to) {
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    int ok = a && b;
    char buf[65536];
    size_t n;
    while (ok && (n = fread(buf, 1, sizeof buf, a)) > 0) ok = fwrite(buf, 1, n, b) == n;
    if (a) fclose(a);
    if (b && fclose(b) != 0) ok = 0;
    return ok;
}

/* The model reads its vocabulary (vocab.json + merges.txt beside its
 * weights) on the first label encoding and never again: with the files
 * gone, and no fallback vocabulary in the data folder, a second encoding
 * still works and gives the same features, while a new model on the same
 * weights cannot encode at all. */
static void test_tokenizer_once(void) {
    char dir[] = "/tmp/ramc_api_XXXXXX", empty[] = "/tmp/ramc_api_data_XXXXXX";
    CHECK(mkdtemp(dir) && mkdtemp(empty), "mkdtemp");
    char clip[600], vocab[600], merges[600];
    snprintf(clip, sizeof clip, "%s/clip.safetensors", dir);
    snprintf(vocab, sizeof vocab, "%s/vocab.json", dir);
    snprintf(merges, sizeof merges, "%s/merges.txt", dir);
    CHECK(copy_file(DEFAULT_MODEL "/clip.safetensors", clip) &&
              copy_file(DEFAULT_MODEL "/vocab.json", vocab) &&
              copy_file(DEFAULT_MODEL "/merges.txt", merges),
          "cannot copy the default model");
    CHECK(ramc_set_data_dir(empty) == RAMC_OK, "set_data_dir: %s", ramc_last_error());

    const char *names[] = {"black circle", "white star", "green heart"};
    ramc_model *m = NULL, *fresh = NULL;
    ramc_labels *first = NULL, *second = NULL, *none = NULL;
    ramc_status s = ramc_model_load(clip, NULL, NULL, &m);
    CHECK(s == RAMC_OK, "model_load: %s", ramc_last_error());
    if (s == RAMC_OK) {
        s = ramc_labels_encode(m, NULL, names, 3, NULL, &first);
        CHECK(s == RAMC_OK, "first encoding: %s", ramc_last_error());
        CHECK(unlink(vocab) == 0 && unlink(merges) == 0, "cannot remove the vocabulary");
        s = ramc_labels_encode(m, NULL, names, 3, NULL, &second);
        CHECK(s == RAMC_OK, "second encoding, vocabulary removed: %s", ramc_last_error());

        /* the same features: the kept tokenizer, not some fallback */
        const int D = ramc_model_get_info(m).embed_dim;
        ramc_predict_params pp = ramc_predict_default_params();
        pp.mode = RAMC_PREDICT_CLIP_BASELINE;
        const int S = ramc_model_get_info(m).image_size;
        float *img = malloc((size_t)3 * S * S * sizeof(float));
        float sa[3], sb[3];
        CHECK(img && D > 0, "no memory");
        if (img && first && second &&
            ramc_preprocess_file(m, FIXTURES "/cat_444.jpg", NULL, img) == RAMC_OK &&
            ramc_predict(m, first, img, 1, &pp, sa, NULL, NULL) == RAMC_OK &&
            ramc_predict(m, second, img, 1, &pp, sb, NULL, NULL) == RAMC_OK)
            CHECK(!memcmp(sa, sb, sizeof sa), "scores differ: %g %g %g vs %g %g %g", sa[0], sa[1],
                  sa[2], sb[0], sb[1], sb[2]);
        else
            CHECK(0, "predict: %s", ramc_last_error());
        free(img);

        /* proof that the file was needed: a new model has nothing to read */
        s = ramc_model_load(clip, NULL, NULL, &fresh);
        CHECK(s == RAMC_OK, "second model_load: %s", ramc_last_error());
        if (s == RAMC_OK) {
            s = ramc_labels_encode(fresh, NULL, names, 3, NULL, &none);
            CHECK(s == RAMC_ERR_IO && strstr(ramc_last_error(), "bpe_simple_vocab"),
                  "a new model without any vocabulary encoded labels (%s: %s)",
                  ramc_status_name(s), ramc_last_error());
        }
    }
    ramc_labels_free(first);
    ramc_labels_free(second);
    ramc_labels_free(none);
    ramc_model_free(m);
    ramc_model_free(fresh);
    CHECK(ramc_set_data_dir(NULL) == RAMC_OK, "reset data dir");
    unlink(clip);
    rmdir(dir);
    rmdir(empty);
}

/* ---------------------------------------------------------------- threads */

/* 1 and 2 threads give valid scores that agree to float rounding; the
 * caller's own OpenMP setting is what it was after each call. */
static void test_threads(void) {
    ramc_clip_params cp = ramc_clip_default_params();
    cp.threads = 1;
    ramc_model *m = NULL;
    ramc_labels *lb = NULL;
    ramc_status s = ramc_model_load(DEFAULT_MODEL "/clip.safetensors",
                                    DEFAULT_MODEL "/adapter.safetensors", &cp, &m);
    CHECK(s == RAMC_OK, "model_load: %s", ramc_last_error());
    if (s != RAMC_OK) return;
    test_model_defaults(m);

    const char *names[] = {"black circle", "black ring", "green heart", "white star", "black star"};
    const int C = 5, B = 2, S = ramc_model_get_info(m).image_size;
    omp_set_num_threads(3);
    s = ramc_labels_encode(m, NULL, names, C, NULL, &lb);
    CHECK(s == RAMC_OK, "labels: %s", ramc_last_error());
    CHECK(omp_get_max_threads() == 3, "labels_encode left %d threads, the caller had 3",
          omp_get_max_threads());
    float *img = malloc((size_t)B * 3 * S * S * sizeof(float));
    float s1[10], s2[10];
    if (lb && img) {
        s = ramc_preprocess_file(m, SAMPLES "/black-ring.png", NULL, img);
        if (s == RAMC_OK)
            s = ramc_preprocess_file(m, SAMPLES "/green-heart+black-star+white-star.png", NULL,
                                     img + (size_t)3 * S * S);
        CHECK(s == RAMC_OK, "samples: %s", ramc_last_error());
        ramc_predict_params pp = ramc_predict_default_params();
        ramc_status a = ramc_predict(m, lb, img, B, &pp, s1, NULL, NULL); /* the model's 1 */
        pp.threads = 2;
        ramc_status b = ramc_predict(m, lb, img, B, &pp, s2, NULL, NULL);
        CHECK(a == RAMC_OK && b == RAMC_OK, "predict: %s", ramc_last_error());
        CHECK(omp_get_max_threads() == 3, "predict left %d threads, the caller had 3",
              omp_get_max_threads());
        if (a == RAMC_OK && b == RAMC_OK) {
            for (int i = 0; i < B; i++) {
                double sum1 = 0, sum2 = 0;
                for (int c = 0; c < C; c++) {
                    CHECK(isfinite(s1[i * C + c]) && s1[i * C + c] >= 0, "score not a probability");
                    sum1 += s1[i * C + c], sum2 += s2[i * C + c];
                }
                CHECK_CLOSE(sum1, 1.0, 1e-5, "1-thread scores sum");
                CHECK_CLOSE(sum2, 1.0, 1e-5, "2-thread scores sum");
            }
            CHECK(rel_err(s2, s1, (size_t)B * C) < 1e-4, "1 vs 2 threads: relative error %g",
                  rel_err(s2, s1, (size_t)B * C));
            /* what the small default model sees, whatever the thread count
             * (the truth is in the file names): the second image's best label
             * is one of its three objects, and the black ring's scores go
             * mostly to the black labels (its CLIP knows colours; the shape of
             * an unseen label like this one it gets wrong at times) */
            int best1 = 0, best2 = 0;
            for (int c = 1; c < C; c++) {
                if (s1[C + c] > s1[C + best1]) best1 = c;
                if (s2[C + c] > s2[C + best2]) best2 = c;
            }
            CHECK(best1 >= 2 && best2 >= 2, "green-heart+...png: best labels %s / %s",
                  names[best1], names[best2]);
            CHECK(s1[0] + s1[1] + s1[4] > 0.75f, "black-ring.png: black labels %g, green heart %g, "
                  "white star %g", s1[0] + s1[1] + s1[4], s1[2], s1[3]);
        }
        pp.threads = -1;
        CHECK(ramc_predict(m, lb, img, B, &pp, s2, NULL, NULL) == RAMC_ERR_INVALID_ARG,
              "negative thread count accepted");
    }
    free(img);
    ramc_labels_free(lb);
    ramc_model_free(m);
}

/* ---------------------------------------------------------------- version */

static void test_version(void) {
    const char *v = ramc_version();
    CHECK(v && *v, "empty version");
    char want[256], got[256] = "";
    snprintf(want, sizeof want, "ramc %s\n", v);
    FILE *p = popen("'" RAMC_BINARY "' --version", "r");
    CHECK(p != NULL, "cannot run %s", RAMC_BINARY);
    if (!p) return;
    /* the first line is the version; the build and kernel levels follow */
    if (!fgets(got, sizeof got, p)) got[0] = '\0';
    char rest[512];
    while (fgets(rest, sizeof rest, p)) {
    }
    CHECK(pclose(p) == 0, "ramc --version failed");
    CHECK(!strcmp(got, want), "ramc --version printed '%s', ramc_version() is '%s'", got, v);
}

int main(void) {
    test_fixtures();
    test_tokenizer_once();
    test_threads();
    test_version();
    return test_summary("test_api");
}
