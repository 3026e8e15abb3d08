/* Safetensors reader/writer: half-precision conversions, round trips of
 * every dtype, metadata, atomic saves, and hostile files. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/half.h"
#include "io/safetensors.h"
#include "test.h"

static char tmpdir[256];

static const char *tmp_path(const char *name) {
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static uint32_t fbits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float bitsf(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static int file_exists(const char *p) { return access(p, F_OK) == 0; }

/* ------------------------------------------------------------- halves */

static void test_f16(void) {
    struct { float in; uint16_t out; } cases[] = {
        {1.0f, 0x3c00}, {-2.0f, 0xc000}, {0.0f, 0x0000}, {65504.0f, 0x7bff},
        {65519.0f, 0x7bff},                     /* just below the tie: stays finite */
        {65520.0f, 0x7c00},                     /* tie with odd 65504 goes to inf */
        {1e6f, 0x7c00}, {-1e6f, 0xfc00},
        {6e-8f, 0x0001},                        /* nearest subnormal 2^-24 */
        {0x1p-24f, 0x0001}, {0x1p-25f, 0x0000}, /* tie with 0 rounds to even 0 */
        {0x1.000002p-25f, 0x0001}, {0x1.8p-24f, 0x0002}, {0x1.4p-23f, 0x0002},
        {0x1p-14f, 0x0400}, {1023 * 0x1p-24f, 0x03ff}, {1023.5f * 0x1p-24f, 0x0400},
        {1.0f + 0x1p-11f, 0x3c00},              /* tie, even stays */
        {1.0f + 3 * 0x1p-11f, 0x3c02},          /* tie, odd rounds up */
        {INFINITY, 0x7c00}, {-INFINITY, 0xfc00},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        CHECK(f32_to_f16(cases[i].in) == cases[i].out, "f32_to_f16(%a) = 0x%04x, want 0x%04x",
              cases[i].in, f32_to_f16(cases[i].in), cases[i].out);
    CHECK(f32_to_f16(-0.0f) == 0x8000, "-0");
    CHECK(f32_to_f16(bitsf(0x3f801001)) == 0x3c01, "just past a tie rounds up");
    uint16_t hn = f32_to_f16(NAN);
    CHECK((hn & 0x7c00) == 0x7c00 && (hn & 0x3ff) != 0, "nan -> 0x%04x", hn);
    CHECK(f16_to_f32(0x0001) == 0x1p-24f, "min subnormal");
    CHECK(f16_to_f32(0x7bff) == 65504.0f, "max");
    CHECK(isinf(f16_to_f32(0x7c00)) && f16_to_f32(0x7c00) > 0, "inf");
    CHECK(isinf(f16_to_f32(0xfc00)) && f16_to_f32(0xfc00) < 0, "-inf");
    CHECK(isnan(f16_to_f32(0x7e00)), "nan");
    CHECK(f16_to_f32(0x8000) == 0 && signbit(f16_to_f32(0x8000)), "-0");
    CHECK(f16_to_f32(0xc000) == -2.0f, "-2");

    /* Every finite half survives half -> float -> half. */
    int bad = 0;
    for (uint32_t h = 0; h < 0x10000; h++) {
        if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) continue;
        if (f32_to_f16(f16_to_f32((uint16_t)h)) != h) bad++;
    }
    CHECK(bad == 0, "%d halves do not round trip", bad);

#ifdef __FLT16_MAX__
    /* Cross-check against the compiler's own (IEEE, round-to-nearest-even) conversion. */
    uint32_t state = 12345;
    int mism = 0;
    for (int i = 0; i < 2000000; i++) {
        state = state * 1664525u + 1013904223u;
        float f = bitsf(state);
        if (isnan(f)) continue;
        _Float16 h = (_Float16)f;
        uint16_t hb;
        memcpy(&hb, &h, 2);
        if (f32_to_f16(f) != hb) mism++;
        if (round_to_f16(f) != (float)h && !isnan(f)) mism++;
    }
    CHECK(mism == 0, "%d random floats convert differently from _Float16", mism);
#endif
}

static void test_bf16(void) {
    CHECK(f32_to_bf16(1.0f) == 0x3f80, "1");
    CHECK(f32_to_bf16(-2.0f) == 0xc000, "-2");
    CHECK(f32_to_bf16(1.0f + 0x1p-8f) == 0x3f80, "tie to even");
    CHECK(f32_to_bf16(1.0f + 3 * 0x1p-8f) == 0x3f82, "tie odd up");
    CHECK(f32_to_bf16(bitsf(0x3f808001)) == 0x3f81, "past tie");
    CHECK(f32_to_bf16(INFINITY) == 0x7f80 && f32_to_bf16(-INFINITY) == 0xff80, "inf");
    CHECK(f32_to_bf16(bitsf(0x7f7fffff)) == 0x7f80, "max float rounds to inf");
    CHECK(f32_to_bf16(bitsf(0x00010000)) == 0x0001, "subnormal");
    uint16_t n = f32_to_bf16(NAN);
    CHECK((n & 0x7f80) == 0x7f80 && (n & 0x7f), "nan 0x%04x", n);
    /* A NaN whose payload sits only in the low bits must not become inf. */
    uint16_t n2 = f32_to_bf16(bitsf(0x7f800001));
    CHECK((n2 & 0x7f) != 0, "low-payload nan 0x%04x", n2);
    CHECK(bf16_to_f32(0x3f80) == 1.0f && isinf(bf16_to_f32(0x7f80)) && isnan(bf16_to_f32(0x7fc0)), "bf16_to_f32");
    CHECK(round_to_f16(1.0f + 0x1p-12f) == 1.0f, "round_to_f16");
    CHECK(round_to_f16(0.1f) == 0.0999755859375f, "round_to_f16(0.1) = %a", round_to_f16(0.1f));
}

/* --------------------------------------------------------- round trip */

static void test_round_trip(void) {
    const char *path = tmp_path("all.safetensors");
    st_writer *w = st_writer_new();
    CHECK(w != NULL, "writer");
    float f32v[6] = {1.0f, -2.0f, 65504.0f, 6e-8f, INFINITY, 1.0f + 3 * 0x1p-11f};
    int64_t s23[2] = {2, 3}, s6[1] = {6}, s3[1] = {3}, s0[1] = {0}, s5[1] = {5};
    double f64v[3] = {1.5, -1e300, 0x1.0000001p0};
    int64_t i64v[3] = {INT64_MIN, -1, INT64_MAX};
    int32_t i32v[3] = {INT32_MIN, -7, 123456789};
    int16_t i16v[3] = {-32768, -1, 32767};
    int8_t i8v[3] = {-128, -1, 127};
    uint8_t u8v[3] = {0, 128, 255};
    uint8_t boolv[5] = {0, 1, 0, 1, 1};
    uint16_t f16raw[3] = {0x3c00, 0x0001, 0xfc00};
    float scalar = 4.6052f;

    CHECK(st_writer_add_f32(w, "f32", ST_F32, 2, s23, f32v) == RAMC_OK, "%s", ramc_last_error());
    CHECK(st_writer_add_f32(w, "as_f16", ST_F16, 1, s6, f32v) == RAMC_OK, "%s", ramc_last_error());
    CHECK(st_writer_add_f32(w, "as_bf16", ST_BF16, 1, s6, f32v) == RAMC_OK, "%s", ramc_last_error());
    CHECK(st_writer_add(w, "f64", ST_F64, 1, s3, f64v) == RAMC_OK, "%s", ramc_last_error());
    CHECK(st_writer_add(w, "i64", ST_I64, 1, s3, i64v) == RAMC_OK, "%s", ramc_last_error());
    CHECK(st_writer_add(w, "i32", ST_I32, 1, s3, i32v) == RAMC_OK, "%s", ramc_last_error());
    CHECK(st_writer_add(w, "i16", ST_I16, 1, s3, i16v) == RAMC_OK, "%s", ramc_last_error());
    CHECK(st_writer_add(w, "i8", ST_I8, 1, s3, i8v) == RAMC_OK, "%s", ramc_last_error());
    CHECK(st_writer_add(w, "u8", ST_U8, 1, s3, u8v) == RAMC_OK, "%s", ramc_last_error());
    CHECK(st_writer_add(w, "bool", ST_BOOL, 1, s5, boolv) == RAMC_OK, "%s", ramc_last_error());
    CHECK(st_writer_add(w, "f16raw", ST_F16, 1, s3, f16raw) == RAMC_OK, "%s", ramc_last_error());
    CHECK(st_writer_add_f32(w, "scalar", ST_F32, 0, NULL, &scalar) == RAMC_OK, "%s", ramc_last_error());
    CHECK(st_writer_add_f32(w, "empty", ST_F32, 1, s0, NULL) == RAMC_OK, "%s", ramc_last_error());
    CHECK(st_writer_add_f32(w, "f32", ST_F32, 1, s3, f32v) == RAMC_ERR_INVALID_ARG, "duplicate add refused");
    CHECK(st_writer_add(w, "bad", ST_I32, 1, (int64_t[]){-1}, i32v) == RAMC_ERR_INVALID_ARG, "negative dim");
    CHECK(st_writer_set_metadata(w, "format", "pt") == RAMC_OK, "meta");
    CHECK(st_writer_set_metadata(w, "quote\"key", "line\nbreak \\ \"q\"") == RAMC_OK, "meta");
    CHECK(st_writer_set_metadata(w, "format", "ramc") == RAMC_OK, "meta replace");
    CHECK(st_writer_save(w, path) == RAMC_OK, "save: %s", ramc_last_error());
    st_writer_free(w);

    CHECK(!file_exists(tmp_path("all.safetensors.tmp")), "tmp file left behind");

    /* The data block starts 8-aligned and the header is space-padded. */
    FILE *fp = fopen(path, "rb");
    unsigned char len8[8];
    CHECK(fp && fread(len8, 1, 8, fp) == 8, "read header length");
    if (fp) fclose(fp);
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++) hlen |= (uint64_t)len8[i] << (8 * i);
    CHECK(hlen % 8 == 0, "header length %" PRIu64 " not a multiple of 8", hlen);

    st_file *f = NULL;
    CHECK(st_open(path, &f) == RAMC_OK, "open: %s", ramc_last_error());
    if (!f) return;
    CHECK(f->n_tensors == 13, "n_tensors %d", f->n_tensors);
    CHECK(strcmp(f->tensors[0].name, "f32") == 0 && strcmp(f->tensors[12].name, "empty") == 0,
          "header order kept");
    CHECK(st_metadata(f, "format") && strcmp(st_metadata(f, "format"), "ramc") == 0, "metadata");
    CHECK(st_metadata(f, "quote\"key") && strcmp(st_metadata(f, "quote\"key"), "line\nbreak \\ \"q\"") == 0,
          "escaped metadata");
    CHECK(st_metadata(f, "absent") == NULL && f->n_metadata == 2, "metadata count");

    float got[6];
    const st_tensor *t = st_find(f, "f32");
    CHECK(t && t->dtype == ST_F32 && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 3 && t->numel == 6,
          "f32 entry");
    CHECK(st_load_f32(f, "f32", 2, s23, got) == RAMC_OK && memcmp(got, f32v, sizeof got) == 0, "f32 values");

    CHECK(st_load_f32(f, "as_f16", 1, s6, got) == RAMC_OK, "%s", ramc_last_error());
    int ok = 1;
    for (int i = 0; i < 6; i++) ok &= fbits(got[i]) == fbits(round_to_f16(f32v[i]));
    CHECK(ok, "f16 values");
    CHECK(got[3] == 0x1p-24f && got[5] == 1.0f + 0x1p-9f && got[2] == 65504.0f && isinf(got[4]), "f16 detail");
    t = st_find(f, "as_f16");
    const unsigned char *raw = t->data;
    CHECK(raw[0] == 0x00 && raw[1] == 0x3c && raw[2] == 0x00 && raw[3] == 0xc0, "f16 little-endian bytes");

    CHECK(st_load_f32(f, "as_bf16", 1, s6, got) == RAMC_OK, "%s", ramc_last_error());
    ok = 1;
    for (int i = 0; i < 6; i++) ok &= fbits(got[i]) == fbits(bf16_to_f32(f32_to_bf16(f32v[i])));
    CHECK(ok && got[0] == 1.0f && got[1] == -2.0f && got[2] == 65536.0f, "bf16 values");

    CHECK(st_load_f32(f, "f64", 1, s3, got) == RAMC_OK, "%s", ramc_last_error());
    CHECK(got[0] == 1.5f && isinf(got[1]) && got[1] < 0 && got[2] == 1.0f, "f64 values %g %g %g",
          got[0], got[1], got[2]);
    CHECK(st_load_f32(f, "f16raw", 1, s3, got) == RAMC_OK && got[0] == 1.0f && got[1] == 0x1p-24f &&
          isinf(got[2]) && got[2] < 0, "raw f16");

    int64_t iv[5];
    CHECK(st_read_i64(f, st_find(f, "i64"), iv) == RAMC_OK && iv[0] == INT64_MIN && iv[1] == -1 &&
          iv[2] == INT64_MAX, "i64");
    CHECK(st_read_i64(f, st_find(f, "i32"), iv) == RAMC_OK && iv[0] == INT32_MIN && iv[1] == -7 &&
          iv[2] == 123456789, "i32");
    CHECK(st_read_i64(f, st_find(f, "i16"), iv) == RAMC_OK && iv[0] == -32768 && iv[2] == 32767, "i16");
    CHECK(st_read_i64(f, st_find(f, "i8"), iv) == RAMC_OK && iv[0] == -128 && iv[1] == -1 && iv[2] == 127, "i8");
    CHECK(st_read_i64(f, st_find(f, "u8"), iv) == RAMC_OK && iv[1] == 128 && iv[2] == 255, "u8");
    CHECK(st_read_i64(f, st_find(f, "bool"), iv) == RAMC_OK && iv[0] == 0 && iv[1] == 1 && iv[4] == 1, "bool");
    CHECK(st_read_i64(f, st_find(f, "f32"), iv) == RAMC_ERR_MISMATCH, "f32 as int refused");
    CHECK(st_read_f32(f, st_find(f, "i32"), got) == RAMC_ERR_MISMATCH &&
          strstr(ramc_last_error(), "'i32'"), "int as float refused: %s", ramc_last_error());

    /* Scalars: [] and [1] both satisfy a 0-dim request. */
    CHECK(st_load_f32(f, "scalar", 0, NULL, got) == RAMC_OK && got[0] == 4.6052f, "scalar");
    t = st_find(f, "empty");
    CHECK(t && t->numel == 0 && t->nbytes == 0, "empty tensor");

    /* st_load_f32 errors name file and tensor. */
    CHECK(st_load_f32(f, "nope", 1, s3, got) == RAMC_ERR_MISMATCH, "missing");
    CHECK(strstr(ramc_last_error(), "all.safetensors") && strstr(ramc_last_error(), "missing tensor 'nope'"),
          "missing message: %s", ramc_last_error());
    int64_t s32[2] = {3, 2};
    CHECK(st_load_f32(f, "f32", 2, s32, got) == RAMC_ERR_MISMATCH, "shape");
    CHECK(strstr(ramc_last_error(), "all.safetensors") && strstr(ramc_last_error(), "'f32'") &&
          strstr(ramc_last_error(), "[2,3]") && strstr(ramc_last_error(), "[3,2]"),
          "shape message: %s", ramc_last_error());
    CHECK(st_load_f32(f, "f32", 1, s6, got) == RAMC_ERR_MISMATCH, "rank");
    st_close(f);

    /* A one-element [1] tensor is accepted as a scalar too. */
    w = st_writer_new();
    int64_t one[1] = {1};
    st_writer_add_f32(w, "s", ST_F32, 1, one, &scalar);
    CHECK(st_writer_save(w, tmp_path("s.safetensors")) == RAMC_OK, "save");
    st_writer_free(w);
    f = NULL;
    CHECK(st_open(tmp_path("s.safetensors"), &f) == RAMC_OK, "open");
    if (f) {
        got[0] = 0;
        CHECK(st_load_f32(f, "s", 0, NULL, got) == RAMC_OK && got[0] == scalar, "[1] as scalar");
        st_close(f);
    }

    /* An empty writer makes a valid file. */
    w = st_writer_new();
    CHECK(st_writer_save(w, tmp_path("none.safetensors")) == RAMC_OK, "save empty");
    st_writer_free(w);
    f = NULL;
    CHECK(st_open(tmp_path("none.safetensors"), &f) == RAMC_OK && f && f->n_tensors == 0, "open empty");
    st_close(f);

    /* A failed save (no such folder) reports I/O and leaves nothing behind. */
    w = st_writer_new();
    st_writer_add_f32(w, "x", ST_F32, 1, s3, f32v);
    const char *bad = tmp_path("no/such/dir/x.safetensors");
    CHECK(st_writer_save(w, bad) == RAMC_ERR_IO, "save into missing folder");
    CHECK(strstr(ramc_last_error(), "x.safetensors") != NULL, "message: %s", ramc_last_error());
    st_writer_free(w);

    /* Saving over an existing file replaces it. */
    w = st_writer_new();
    st_writer_add_f32(w, "replaced", ST_F32, 1, s3, f32v);
    CHECK(st_writer_save(w, path) == RAMC_OK, "overwrite");
    st_writer_free(w);
    f = NULL;
    CHECK(st_open(path, &f) == RAMC_OK && f && f->n_tensors == 1 && st_find(f, "replaced"), "overwritten");
    st_close(f);
    CHECK(!file_exists(tmp_path("all.safetensors.tmp")), "tmp file left behind");

    CHECK(st_open(tmp_path("does-not-exist.safetensors"), &f) == RAMC_ERR_IO && f == NULL, "missing file");
    CHECK(strstr(ramc_last_error(), "does-not-exist.safetensors") != NULL, "%s", ramc_last_error());
}

/* ---------------------------------------------------------- hostile */

/* Writes 8-byte length `hlen`, the header text and `data_len` zero bytes. */
static const char *write_raw(const char *name, uint64_t hlen, const char *header, size_t data_len) {
    const char *p = tmp_path(name);
    FILE *fp = fopen(p, "wb");
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)(hlen >> (8 * i));
    fwrite(len8, 1, 8, fp);
    fwrite(header, 1, strlen(header), fp);
    for (size_t i = 0; i < data_len; i++) fputc(0, fp);
    fclose(fp);
    return p;
}

static const char *write_header(const char *name, const char *header, size_t data_len) {
    return write_raw(name, strlen(header), header, data_len);
}

static const char *write_bytes(const char *name, const void *bytes, size_t n) {
    const char *p = tmp_path(name);
    FILE *fp = fopen(p, "wb");
    if (n) fwrite(bytes, 1, n, fp);
    fclose(fp);
    return p;
}

static void expect_bad(const char *path, const char *file_tag, const char *tensor, const char *what) {
    st_file *f = (st_file *)(uintptr_t)1;
    ramc_status st = st_open(path, &f);
    CHECK(st == RAMC_ERR_FORMAT, "%s: status %d (%s)", what, st, ramc_last_error());
    CHECK(f == NULL, "%s: out not cleared", what);
    CHECK(strstr(ramc_last_error(), file_tag) != NULL, "%s: message lacks the file name: %s", what,
          ramc_last_error());
    if (tensor)
        CHECK(strstr(ramc_last_error(), tensor) != NULL, "%s: message lacks the tensor name: %s", what,
              ramc_last_error());
    if (st == RAMC_OK) st_close(f);
}

static void test_hostile(void) {
    expect_bad(write_bytes("empty.safetensors", "", 0), "empty.safetensors", NULL, "empty file");
    expect_bad(write_bytes("four.safetensors", "\x10\0\0\0", 4), "four.safetensors", NULL, "4-byte file");
    expect_bad(write_raw("hlong.safetensors", 1000, "{}", 0), "hlong.safetensors", NULL,
               "header longer than file");
    expect_bad(write_raw("habsurd.safetensors", UINT64_C(1) << 40, "{}", 0), "habsurd.safetensors", NULL,
               "absurd header length");
    expect_bad(write_raw("hmax.safetensors", UINT64_MAX, "{}", 0), "hmax.safetensors", NULL,
               "header length 2^64-1");
    expect_bad(write_header("json.safetensors", "{\"a\": {\"dtype\": ", 0), "json.safetensors", NULL,
               "invalid JSON");
    expect_bad(write_header("trail.safetensors", "{} {}", 0), "trail.safetensors", NULL,
               "data after the JSON object");
    expect_bad(write_header("arr.safetensors", "[1,2,3]", 0), "arr.safetensors", NULL, "non-object JSON");
    expect_bad(write_header("dtype.safetensors",
                            "{\"w\":{\"dtype\":\"F8\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2),
               "dtype.safetensors", "'w'", "unknown dtype");
    expect_bad(write_header("nodtype.safetensors", "{\"w\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8),
               "nodtype.safetensors", "'w'", "missing dtype");
    expect_bad(write_header("trunc.safetensors",
                            "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 12),
               "trunc.safetensors", "'w'", "truncated data");
    expect_bad(write_header("mism.safetensors",
                            "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,20]}}", 24),
               "mism.safetensors", "'w'", "shape mismatching byte range");
    expect_bad(write_header("neg.safetensors",
                            "{\"w\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,0]}}", 8),
               "neg.safetensors", "'w'", "negative shape");
    expect_bad(write_header("frac.safetensors",
                            "{\"w\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,6]}}", 8),
               "frac.safetensors", "'w'", "non-integer shape");
    expect_bad(write_header("strshape.safetensors",
                            "{\"w\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}", 8),
               "strshape.safetensors", "'w'", "string shape");
    expect_bad(write_header("dims.safetensors",
                            "{\"w\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", 8),
               "dims.safetensors", "'w'", "too many dims");
    expect_bad(write_header("ovf.safetensors",
                            "{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],"
                            "\"data_offsets\":[0,0]}}", 8),
               "ovf.safetensors", "'w'", "numel overflow");
    expect_bad(write_header("range.safetensors",
                            "{\"visual.proj\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[10,18]}}", 12),
               "range.safetensors", "'visual.proj'", "offsets out of range");
    expect_bad(write_header("hugeoff.safetensors",
                            "{\"w\":{\"dtype\":\"U8\",\"shape\":[1],"
                            "\"data_offsets\":[18446744073709551615,18446744073709551616]}}", 8),
               "hugeoff.safetensors", "'w'", "offsets beyond 2^64");
    expect_bad(write_header("backw.safetensors",
                            "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", 8),
               "backw.safetensors", "'w'", "begin > end");
    expect_bad(write_header("offs3.safetensors",
                            "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 8),
               "offs3.safetensors", "'w'", "three offsets");
    expect_bad(write_header("overlap.safetensors",
                            "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                            "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12),
               "overlap.safetensors", "'b'", "overlapping offsets");
    expect_bad(write_header("contain.safetensors",
                            "{\"big\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                            "\"c\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[16,20]},"
                            "\"in\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 20),
               "contain.safetensors", "'in'", "contained range");
    expect_bad(write_header("dup.safetensors",
                            "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                            "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8),
               "dup.safetensors", "'a'", "duplicate names");
    expect_bad(write_header("meta.safetensors", "{\"__metadata__\":{\"k\":3}}", 0), "meta.safetensors",
               NULL, "non-string metadata");
    expect_bad(write_header("meta2.safetensors", "{\"__metadata__\":[\"k\"]}", 0), "meta2.safetensors",
               NULL, "non-object metadata");
    expect_bad(write_header("entry.safetensors", "{\"w\":[1,2]}", 0), "entry.safetensors", "'w'",
               "non-object entry");

    /* Good files the validator must not refuse: a gap between tensors, empty
     * tensors anywhere, trailing whitespace after the JSON. */
    st_file *f = NULL;
    const char *ok = write_header("gap.safetensors",
                                  "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                                  "\"z\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[2,2]},"
                                  "\"b\":{\"dtype\":\"I16\",\"shape\":[1],\"data_offsets\":[6,8]}}   ", 8);
    CHECK(st_open(ok, &f) == RAMC_OK, "gap file: %s", ramc_last_error());
    CHECK(f && f->n_tensors == 3, "gap file tensors");
    st_close(f);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/ramc_st_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_f16();
    test_bf16();
    test_round_trip();
    test_hostile();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return test_summary("test_safetensors");
}
