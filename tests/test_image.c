/* Image decoding, resizing and normalisation against what Pillow 9.4 makes
 * of the same files (tests/fixtures/images, from
 * scripts/make_image_fixtures.py): every byte must match. Also the error
 * paths: truncated, corrupt, unknown and oversized inputs. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <zlib.h>

#include "image/image.h"
#include "ramc.h"
#include "test.h"

#define FIXTURES RAMC_SOURCE_DIR "/tests/fixtures/images"

static char tmpdir[256];

static uint8_t *read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *d = malloc(n > 0 ? (size_t)n : 1);
    if (d && fread(d, 1, (size_t)n, f) != (size_t)n) {
        free(d);
        d = NULL;
    }
    fclose(f);
    *size = (size_t)n;
    return d;
}

static int write_file(const char *path, const void *data, size_t size) {
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    int ok = fwrite(data, 1, size, f) == size;
    return fclose(f) == 0 && ok;
}

/* Reads a gzip fixture that must hold exactly `size` bytes. */
static uint8_t *read_gz(const char *name, size_t size) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", FIXTURES, name);
    gzFile g = gzopen(path, "rb");
    if (!g) return NULL;
    uint8_t *d = malloc(size + 1);
    int n = d ? gzread(g, d, (unsigned)size + 1) : -1;
    gzclose(g);
    if (n != (int)size) {
        fprintf(stderr, "%s: %d bytes, expected %zu\n", path, n, size);
        free(d);
        return NULL;
    }
    return d;
}

/* Counts differing bytes and reports the first, so a failure says where. */
static size_t compare_bytes(const uint8_t *got, const uint8_t *want, size_t n, int width,
                            const char *what) {
    size_t bad = 0, first = 0;
    int maxdiff = 0;
    for (size_t i = 0; i < n; i++)
        if (got[i] != want[i]) {
            if (!bad) first = i;
            bad++;
            int d = abs((int)got[i] - (int)want[i]);
            if (d > maxdiff) maxdiff = d;
        }
    if (bad) {
        size_t px = first / 3;
        fprintf(stderr,
                "  %s: %zu of %zu bytes differ (max |diff| %d); first at x=%zu y=%zu c=%zu: got %d want %d\n",
                what, bad, n, maxdiff, px % (size_t)width, px / (size_t)width, first % 3,
                got[first], want[first]);
    }
    return bad;
}

static cJSON *load_manifest(void) {
    size_t n = 0;
    uint8_t *text = read_file(FIXTURES "/manifest.json", &n);
    if (!text) return NULL;
    cJSON *j = cJSON_ParseWithLength((const char *)text, n);
    free(text);
    return j;
}

static ramc_filter filter_of(const char *s) {
    return !strcmp(s, "bicubic") ? RAMC_FILTER_BICUBIC : RAMC_FILTER_BILINEAR;
}

static void check_fixture(const cJSON *entry, int *n_decode, int *n_resize, int *n_tensor) {
    const char *file = cJSON_GetObjectItem(entry, "file")->valuestring;
    int w = cJSON_GetObjectItem(entry, "width")->valueint;
    int h = cJSON_GetObjectItem(entry, "height")->valueint;
    char path[512];
    snprintf(path, sizeof path, "%s/%s", FIXTURES, file);

    uint8_t *want = read_gz(cJSON_GetObjectItem(entry, "decoded")->valuestring, (size_t)w * h * 3);
    CHECK(want != NULL, "%s: decoded fixture missing", file);
    if (!want) return;
    ramc_image img = {0};
    ramc_status s = ramc_image_load(path, &img);
    CHECK(s == RAMC_OK, "%s: %s", file, ramc_last_error());
    if (s == RAMC_OK) {
        CHECK(img.width == w && img.height == h, "%s: size %dx%d, want %dx%d", file, img.width,
              img.height, w, h);
        if (img.width == w && img.height == h) {
            char what[600];
            snprintf(what, sizeof what, "%s decode", file);
            CHECK(compare_bytes(img.rgb, want, (size_t)w * h * 3, w, what) == 0,
                  "%s: decoded pixels differ from Pillow's", file);
            (*n_decode)++;
        }
    }
    ramc_image_free(&img);

    /* Resizes start from Pillow's decode, so they test the resampler alone. */
    ramc_image src = {w, h, want};
    const cJSON *r;
    cJSON_ArrayForEach(r, cJSON_GetObjectItem(entry, "resizes")) {
        int rw = cJSON_GetObjectItem(r, "width")->valueint;
        int rh = cJSON_GetObjectItem(r, "height")->valueint;
        const char *flt = cJSON_GetObjectItem(r, "filter")->valuestring;
        const char *rfile = cJSON_GetObjectItem(r, "file")->valuestring;
        uint8_t *rwant = read_gz(rfile, (size_t)rw * rh * 3);
        CHECK(rwant != NULL, "%s missing", rfile);
        if (!rwant) continue;
        ramc_image out = {0};
        s = ramc_image_resize(&src, rw, rh, filter_of(flt), &out);
        CHECK(s == RAMC_OK, "%s: %s", rfile, ramc_last_error());
        if (s == RAMC_OK) {
            CHECK(out.width == rw && out.height == rh, "%s: wrong size", rfile);
            char what[600];
            snprintf(what, sizeof what, "%s %dx%d -> %dx%d %s", file, w, h, rw, rh, flt);
            CHECK(compare_bytes(out.rgb, rwant, (size_t)rw * rh * 3, rw, what) == 0,
                  "%s: resized pixels differ from Pillow's", rfile);
            (*n_resize)++;
        }
        ramc_image_free(&out);
        free(rwant);
    }

    cJSON_ArrayForEach(r, cJSON_GetObjectItem(entry, "tensors")) {
        int rw = cJSON_GetObjectItem(r, "width")->valueint;
        int rh = cJSON_GetObjectItem(r, "height")->valueint;
        const char *flt = cJSON_GetObjectItem(r, "filter")->valuestring;
        const char *tfile = cJSON_GetObjectItem(r, "file")->valuestring;
        float mean[3], std[3];
        for (int c = 0; c < 3; c++) {
            mean[c] = (float)cJSON_GetArrayItem(cJSON_GetObjectItem(r, "mean"), c)->valuedouble;
            std[c] = (float)cJSON_GetArrayItem(cJSON_GetObjectItem(r, "std"), c)->valuedouble;
        }
        size_t count = (size_t)3 * rw * rh;
        float *twant = (float *)read_gz(tfile, count * sizeof(float));
        CHECK(twant != NULL, "%s missing", tfile);
        if (!twant) continue;
        ramc_image out = {0};
        float *got = malloc(count * sizeof(float));
        s = ramc_image_resize(&src, rw, rh, filter_of(flt), &out);
        if (s == RAMC_OK) s = ramc_image_to_tensor(&out, mean, std, got);
        CHECK(s == RAMC_OK, "%s: %s", tfile, ramc_last_error());
        if (s == RAMC_OK) {
            size_t bad = 0, first = 0;
            for (size_t i = 0; i < count; i++)
                if (memcmp(&got[i], &twant[i], sizeof(float)) != 0 && !bad++) first = i;
            CHECK(bad == 0, "%s: %zu of %zu floats differ, first [%zu] got %.9g want %.9g", tfile,
                  bad, count, first, got[first], twant[first]);
            (*n_tensor)++;
        }
        ramc_image_free(&out);
        free(got);
        free(twant);
    }
    free(want);
}

/* ------------------------------------------------------------ error paths */

static const char *tmp_path(const char *name) {
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    return path;
}

static void expect_load_error(const char *name, const void *data, size_t size, ramc_status want) {
    const char *path = tmp_path(name);
    CHECK(write_file(path, data, size), "cannot write %s", path);
    ramc_image img = {1, 1, NULL};
    ramc_status s = ramc_image_load(path, &img);
    CHECK(s == want, "%s: status %s (%s), want %s", name, ramc_status_name(s), ramc_last_error(),
          ramc_status_name(want));
    CHECK(img.rgb == NULL && img.width == 0, "%s: output not cleared on failure", name);
    CHECK(strstr(ramc_last_error(), name) != NULL, "%s: message does not name the file: %s", name,
          ramc_last_error());
    ramc_image_free(&img);
}

static void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* A minimal PNG whose header declares w x h (8-bit RGB) with valid CRCs and
 * a few bytes of image data. */
static size_t make_png_header(uint8_t *buf, uint32_t w, uint32_t h) {
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    size_t n = 0;
    memcpy(buf, sig, 8);
    n = 8;
    put_be32(buf + n, 13);
    memcpy(buf + n + 4, "IHDR", 4);
    put_be32(buf + n + 8, w);
    put_be32(buf + n + 12, h);
    buf[n + 16] = 8;
    buf[n + 17] = 2;
    buf[n + 18] = buf[n + 19] = buf[n + 20] = 0;
    put_be32(buf + n + 21, (uint32_t)crc32(0, buf + n + 4, 17));
    n += 25;
    static const uint8_t idat[] = {0x78, 0x9c, 0x63, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01};
    put_be32(buf + n, sizeof idat);
    memcpy(buf + n + 4, "IDAT", 4);
    memcpy(buf + n + 8, idat, sizeof idat);
    put_be32(buf + n + 8 + sizeof idat, (uint32_t)crc32(0, buf + n + 4, 4 + sizeof idat));
    n += 12 + sizeof idat;
    return n;
}

/* Offset of the SOFn payload (after the length) in a JPEG, or 0. */
static size_t find_sof(const uint8_t *d, size_t n) {
    size_t i = 2;
    while (i + 4 <= n && d[i] == 0xff) {
        uint8_t m = d[i + 1];
        size_t len = (size_t)d[i + 2] << 8 | d[i + 3];
        if (m >= 0xc0 && m <= 0xc2) return i + 4;
        i += 2 + len;
    }
    return 0;
}

static void test_errors(void) {
    size_t n = 0;
    uint8_t *jpg = read_file(FIXTURES "/cat_444.jpg", &n);
    CHECK(jpg != NULL, "cat_444.jpg missing");
    if (jpg) {
        expect_load_error("truncated.jpg", jpg, n / 2, RAMC_ERR_FORMAT);
        expect_load_error("header_only.jpg", jpg, 300, RAMC_ERR_FORMAT);
        expect_load_error("soi_only.jpg", jpg, 3, RAMC_ERR_FORMAT);
        size_t sof = find_sof(jpg, n);
        CHECK(sof != 0, "no SOF in cat_444.jpg");
        if (sof) {
            /* 65000 x 65000: the largest a JPEG can declare, far past the limit. */
            jpg[sof + 1] = jpg[sof + 3] = 0xfd;
            jpg[sof + 2] = jpg[sof + 4] = 0xe8;
            expect_load_error("huge.jpg", jpg, n, RAMC_ERR_LIMIT);
            jpg[sof + 1] = jpg[sof + 2] = 0; /* height 0: invalid */
            expect_load_error("zero_height.jpg", jpg, n, RAMC_ERR_FORMAT);
        }
        free(jpg);
    }
    uint8_t *prog = read_file(FIXTURES "/astronaut_prog.jpg", &n);
    if (prog) {
        expect_load_error("truncated_prog.jpg", prog, n * 2 / 3, RAMC_ERR_FORMAT);
        free(prog);
    }

    uint8_t *png = read_file(FIXTURES "/cat_rgb.png", &n);
    CHECK(png != NULL, "cat_rgb.png missing");
    if (png) {
        expect_load_error("truncated.png", png, n / 2, RAMC_ERR_FORMAT);
        expect_load_error("sig_only.png", png, 8, RAMC_ERR_FORMAT);
        /* A flipped byte inside the image data breaks its CRC (and maybe
         * the deflate stream); one in IHDR breaks the header's CRC. */
        png[60] ^= 0x55;
        expect_load_error("corrupt_idat.png", png, n, RAMC_ERR_FORMAT);
        png[60] ^= 0x55;
        png[20] ^= 0x01;
        expect_load_error("corrupt_ihdr.png", png, n, RAMC_ERR_FORMAT);
        png[20] ^= 0x01;
        /* Without IEND the image is still whole: Pillow loads it, so must we. */
        const char *cut = tmp_path("no_iend.png");
        CHECK(write_file(cut, png, n - 12), "cannot write %s", cut);
        ramc_image ok = {0};
        CHECK(ramc_image_load(cut, &ok) == RAMC_OK, "no IEND: %s", ramc_last_error());
        ramc_image_free(&ok);
        free(png);
    }
    uint8_t buf[128];
    size_t len = make_png_header(buf, 100000, 100000);
    expect_load_error("huge.png", buf, len, RAMC_ERR_LIMIT);
    len = make_png_header(buf, 20000, 20000); /* each side fits, the area does not */
    expect_load_error("huge_area.png", buf, len, RAMC_ERR_LIMIT);
    len = make_png_header(buf, 0x7fffffff, 1);
    expect_load_error("widest.png", buf, len, RAMC_ERR_LIMIT);
    len = make_png_header(buf, 4, 4); /* 9 bytes of zlib data for 4 rows */
    expect_load_error("short_data.png", buf, len, RAMC_ERR_FORMAT);

    const char garbage[] = "this is not an image, just some text\n";
    expect_load_error("garbage.jpg", garbage, sizeof garbage - 1, RAMC_ERR_FORMAT);
    expect_load_error("empty.png", "", 0, RAMC_ERR_FORMAT);
    expect_load_error("anim.gif", "GIF89a\x01\x00\x01\x00", 10, RAMC_ERR_FORMAT);
    CHECK(strstr(ramc_last_error(), "GIF") != NULL, "GIF not named: %s", ramc_last_error());

    ramc_image img = {0};
    CHECK(ramc_image_load(tmp_path("does_not_exist.jpg"), &img) == RAMC_ERR_IO, "missing file: %s",
          ramc_last_error());
    CHECK(ramc_image_load(tmpdir, &img) == RAMC_ERR_IO, "directory: %s", ramc_last_error());

    /* Resize and tensor arguments. */
    uint8_t px[12] = {0, 50, 100, 150, 200, 250, 255, 1, 2, 3, 4, 5};
    ramc_image two = {2, 2, px}, out = {0};
    CHECK(ramc_image_resize(&two, 0, 5, RAMC_FILTER_BILINEAR, &out) == RAMC_ERR_INVALID_ARG,
          "zero width accepted");
    CHECK(ramc_image_resize(&two, 5, 5, (ramc_filter)7, &out) == RAMC_ERR_INVALID_ARG,
          "bad filter accepted");
    CHECK(ramc_image_resize(&two, 100000, 5, RAMC_FILTER_BILINEAR, &out) == RAMC_ERR_LIMIT,
          "huge output accepted");
    CHECK(ramc_image_resize(&two, 2, 2, RAMC_FILTER_BICUBIC, &out) == RAMC_OK &&
              memcmp(out.rgb, px, 12) == 0,
          "same-size resize is not a copy");
    ramc_image_free(&out);
    float t[12], mean[3] = {0.5f, 0.5f, 0.5f}, zero[3] = {1, 0, 1};
    CHECK(ramc_image_to_tensor(&two, mean, zero, t) == RAMC_ERR_INVALID_ARG, "std 0 accepted");
}

/* The formula itself on all 256 levels, against values computed as
 * torchvision does (float32 x/255, then (v - 0.5)/0.5). */
static void test_tensor_levels(void) {
    uint8_t px[256 * 3];
    for (int i = 0; i < 256; i++) px[3 * i] = px[3 * i + 1] = px[3 * i + 2] = (uint8_t)i;
    ramc_image img = {256, 1, px};
    float mean[3] = {0.5f, 0.48145466f, 0.40821073f}, std[3] = {0.5f, 0.26862954f, 0.27577711f};
    float t[3 * 256];
    CHECK(ramc_image_to_tensor(&img, mean, std, t) == RAMC_OK, "%s", ramc_last_error());
    CHECK(t[0] == -1.0f && t[255] == 1.0f, "RAM range: %g .. %g", t[0], t[255]);
    /* 128/255 rounds to 0.50196081f; minus 0.5 and over 0.5 gives exactly this. */
    CHECK(t[128] == 0.0039216280f, "level 128: %.10g", t[128]);
    int bad = 0;
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < 256; i++) {
            volatile float v = (float)i / 255.0f;
            volatile float d = v - mean[c];
            float want = d / std[c];
            if (t[c * 256 + i] != want) bad++;
        }
    CHECK(bad == 0, "%d levels differ", bad);
}

static void test_png_roundtrip(void) {
    size_t n = 0;
    ramc_image img = {0}, back = {0};
    if (ramc_image_load(FIXTURES "/coffee_420.jpg", &img) != RAMC_OK) {
        CHECK(0, "%s", ramc_last_error());
        return;
    }
    uint8_t *png = NULL;
    CHECK(image_encode_png(&img, &png, &n) == RAMC_OK, "%s", ramc_last_error());
    CHECK(image_decode_memory(png, n, "roundtrip", &back) == RAMC_OK, "%s", ramc_last_error());
    CHECK(back.width == img.width && back.height == img.height && back.rgb &&
              memcmp(back.rgb, img.rgb, (size_t)img.width * img.height * 3) == 0,
          "PNG round trip changed the pixels");
    const char *path = tmp_path("atomic.png");
    CHECK(image_write_png(&img, path) == RAMC_OK, "%s", ramc_last_error());
    size_t m = 0;
    uint8_t *disk = read_file(path, &m);
    CHECK(disk && m == n && memcmp(disk, png, n) == 0, "written PNG differs from the encoding");
    CHECK(image_write_png(&img, tmp_path("no/such/dir/x.png")) == RAMC_ERR_IO,
          "write into a missing folder: %s", ramc_last_error());
    free(disk);
    free(png);
    ramc_image_free(&back);
    ramc_image_free(&img);
}

/* Recomputes every chunk CRC so that mutations reach libpng's decoding
 * instead of all stopping at the checksum test. */
static void fix_png_crcs(uint8_t *d, size_t n) {
    size_t i = 8;
    while (i + 12 <= n) {
        size_t len = (size_t)d[i] << 24 | (size_t)d[i + 1] << 16 | (size_t)d[i + 2] << 8 | d[i + 3];
        if (len > n - i - 12) break;
        put_be32(d + i + 8 + len, (uint32_t)crc32(0, d + i + 4, (uInt)(4 + len)));
        i += 12 + len;
    }
}

/* Mutated files must decode or fail cleanly (run under the sanitizers by
 * RAMC_SANITIZE builds). A fixed generator keeps failures reproducible. */
static void test_mutations(const char *name, int rounds) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", FIXTURES, name);
    size_t n = 0;
    uint8_t *orig = read_file(path, &n);
    CHECK(orig != NULL, "%s missing", name);
    if (!orig) return;
    uint8_t *buf = malloc(n);
    uint32_t state = 12345;
    int ok = 0, failed = 0, odd = 0;
    for (int r = 0; r < rounds; r++) {
        memcpy(buf, orig, n);
        int flips = 1 + r % 4;
        for (int f = 0; f < flips; f++) {
            state = state * 1664525u + 1013904223u;
            size_t at = (state >> 8) % n;
            state = state * 1664525u + 1013904223u;
            buf[at] ^= (uint8_t)(1u << ((state >> 24) & 7));
        }
        size_t len = r % 5 == 4 ? (state >> 4) % n : n;
        if (n > 8 && buf[1] == 'P' && r % 2) fix_png_crcs(buf, len);
        ramc_image img = {0};
        ramc_status s = image_decode_memory(buf, len, name, &img);
        if (s == RAMC_OK) {
            ok++;
            if (!img.rgb || img.width <= 0 || img.height <= 0) odd++;
        } else {
            failed++;
            if (img.rgb || (s != RAMC_ERR_FORMAT && s != RAMC_ERR_LIMIT)) odd++;
        }
        ramc_image_free(&img);
    }
    CHECK(odd == 0, "%s: %d mutated inputs gave an inconsistent result", name, odd);
    printf("mutations of %s: %d decoded, %d rejected\n", name, ok, failed);
    free(buf);
    free(orig);
}

static void cleanup_tmpdir(void) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "test_image.XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    cJSON *manifest = load_manifest();
    CHECK(manifest != NULL, "cannot read %s/manifest.json", FIXTURES);
    if (manifest) {
        int n_images = 0, n_decode = 0, n_resize = 0, n_tensor = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, cJSON_GetObjectItem(manifest, "images")) {
            check_fixture(e, &n_decode, &n_resize, &n_tensor);
            n_images++;
        }
        printf("fixtures: %d images, %d decodes, %d resizes, %d tensors compared with Pillow\n",
               n_images, n_decode, n_resize, n_tensor);
        CHECK(n_images >= 15 && n_resize >= 30 && n_tensor >= 3, "too few fixtures compared");
        cJSON_Delete(manifest);
    }
    test_tensor_levels();
    test_errors();
    test_png_roundtrip();
    test_mutations("cat_interlaced.png", 300);
    test_mutations("camera_pal4_short.png", 300);
    test_mutations("coffee_cmyk.jpg", 200);
    test_mutations("astronaut_prog.jpg", 100);
    cleanup_tmpdir();
    return test_summary("test_image");
}
