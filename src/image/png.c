/* PNG decoding and encoding with libpng.
 *
 * Decoding reproduces Pillow 9.4's Image.open(...).convert("RGB") (checked
 * against it by tests/test_image.c): libpng only unpacks sub-byte samples
 * and de-interlaces; the conversion to RGB is done here, because Pillow's
 * rules are not libpng's:
 *   - 1/2/4-bit grey is scaled to 0..255 (x255, x85, x17);
 *   - 16-bit grey becomes Pillow mode "I", and I -> RGB clamps to 0..255, so
 *     a sample of 256 or more is white (not its high byte);
 *   - every other 16-bit sample keeps its high byte;
 *   - alpha is dropped, not composited; tRNS, gAMA, iCCP and sBIT are ignored;
 *   - palette indices beyond PLTE read Pillow's default palette, a grey ramp.
 * Chunks after the image data are not read. A checksum error in any chunk
 * that is read fails the load (Pillow does not check IDAT checksums).
 */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <png.h>

#include "image/image.h"
#include "io/file.h"

typedef struct {
    const uint8_t *data;
    size_t size, pos;
    char message[256];
} png_source;

static void on_png_error(png_structp png, png_const_charp msg) {
    png_source *src = png_get_error_ptr(png);
    snprintf(src->message, sizeof src->message, "%s", msg);
    png_longjmp(png, 1);
}

/* Benign errors arrive here as warnings (see png_set_benign_errors below),
 * and libpng files checksum mismatches under them. Pillow rejects a bad CRC
 * on every chunk before the image data; ramc also rejects one on IDAT, as
 * the pixels of such a file cannot be trusted. */
static void on_png_warning(png_structp png, png_const_charp msg) {
    if (strstr(msg, "CRC error")) png_error(png, msg);
}

static void ignore_png_warning(png_structp png, png_const_charp msg) {
    (void)png;
    (void)msg;
}

static void read_from_memory(png_structp png, png_bytep out, png_size_t n) {
    png_source *src = png_get_io_ptr(png);
    if (n > src->size - src->pos) png_error(png, "truncated file");
    memcpy(out, src->data + src->pos, n);
    src->pos += n;
}

static void convert_row(const uint8_t *in, uint8_t *dst, int w, int depth, int ctype,
                        const uint8_t *lut) {
    switch (ctype) {
    case PNG_COLOR_TYPE_GRAY:
        if (depth == 16) {
            for (int x = 0; x < w; x++) {
                unsigned v = (unsigned)in[2 * x] << 8 | in[2 * x + 1];
                dst[3 * x] = dst[3 * x + 1] = dst[3 * x + 2] = (uint8_t)(v > 255 ? 255 : v);
            }
        } else {
            int scale = depth == 1 ? 255 : depth == 2 ? 85 : depth == 4 ? 17 : 1;
            for (int x = 0; x < w; x++)
                dst[3 * x] = dst[3 * x + 1] = dst[3 * x + 2] = (uint8_t)(in[x] * scale);
        }
        break;
    case PNG_COLOR_TYPE_GRAY_ALPHA: {
        int step = depth == 16 ? 4 : 2;
        for (int x = 0; x < w; x++) dst[3 * x] = dst[3 * x + 1] = dst[3 * x + 2] = in[step * x];
        break;
    }
    case PNG_COLOR_TYPE_RGB:
    case PNG_COLOR_TYPE_RGB_ALPHA: {
        int bytes = depth == 16 ? 2 : 1;
        int step = (ctype == PNG_COLOR_TYPE_RGB ? 3 : 4) * bytes;
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++) dst[3 * x + c] = in[step * x + bytes * c];
        break;
    }
    case PNG_COLOR_TYPE_PALETTE:
        for (int x = 0; x < w; x++) memcpy(dst + 3 * x, lut + 3 * in[x], 3);
        break;
    }
}

/* libpng reserves a chunk's declared length before reading it (2 GB for a
 * 60-byte file whose text chunk claims 2^31-1 bytes), and its own bound on
 * ancillary chunks is not applied by every handler. So every length is
 * checked against the bytes left in the file first; walking the chunk
 * headers costs nothing next to decoding. A file cut after its last whole
 * chunk (no IEND) stays for libpng to judge. */
static ramc_status check_chunk_lengths(const uint8_t *data, size_t size, const char *name) {
    size_t pos = 8;
    while (size - pos >= 8) {
        uint32_t len = (uint32_t)data[pos] << 24 | (uint32_t)data[pos + 1] << 16 |
                       (uint32_t)data[pos + 2] << 8 | data[pos + 3];
        char type[5];
        for (int i = 0; i < 4; i++) {
            unsigned char c = data[pos + 4 + i];
            type[i] = (char)((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ? c : '?');
        }
        type[4] = '\0';
        size_t left = size - pos - 8;
        if (len > left)
            return ramc_error(RAMC_ERR_FORMAT,
                              "%s: invalid PNG: chunk '%s' at byte %zu claims %lu bytes, but only %zu "
                              "are left in the file",
                              name, type, pos, (unsigned long)len, left);
        if (!memcmp(type, "IEND", 4)) break;
        pos += 8 + (size_t)len;
        if (size - pos < 4) break;
        pos += 4; /* CRC */
    }
    return RAMC_OK;
}

ramc_status image_decode_png(const uint8_t *data, size_t size, const char *name,
                             ramc_image *out) {
    png_source src = {data, size, 0, ""};
    uint8_t *volatile rgb = NULL;
    uint8_t *volatile raw = NULL;
    png_bytep *volatile rows = NULL;
    volatile ramc_status status = RAMC_OK;
    out->width = out->height = 0;
    out->rgb = NULL;
    ramc_status lengths = check_chunk_lengths(data, size, name);
    if (lengths != RAMC_OK) return lengths;

    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, on_png_error,
                                             on_png_warning);
    if (!png) return ramc_error(RAMC_ERR_NOMEM, "%s: cannot create a PNG decoder", name);
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        return ramc_error(RAMC_ERR_NOMEM, "%s: cannot create a PNG decoder", name);
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        free(rgb);
        free(raw);
        free(rows);
        if (status != RAMC_OK) return status;
        return ramc_error(RAMC_ERR_FORMAT, "%s: invalid PNG: %s", name, src.message);
    }
    png_set_read_fn(png, &src, read_from_memory);
    /* libpng's own 1e6-per-side cap would report a huge declared size as a
     * malformed header; lift it so our bound reports RAMC_ERR_LIMIT. */
    png_set_user_limits(png, 0x7fffffff, 0x7fffffff);
    /* What a compressed text or ICC chunk may inflate to: libpng drops a
     * larger one as a benign error (the pixels do not depend on it). */
    png_set_chunk_malloc_max(png, size < (8u << 20) ? (8u << 20) : size);
    png_set_chunk_cache_max(png, 1000);
    /* Pillow tolerates what libpng calls benign (e.g. trailing IDAT data). */
    png_set_benign_errors(png, 1);
    png_read_info(png, info);

    png_uint_32 w32, h32;
    int depth, ctype, interlace;
    png_get_IHDR(png, info, &w32, &h32, &depth, &ctype, &interlace, NULL, NULL);
    ramc_status s = image_check_size(w32, h32, name);
    if (s != RAMC_OK) {
        status = s;
        png_longjmp(png, 1);
    }
    int w = (int)w32, h = (int)h32;

    uint8_t lut[256 * 3];
    if (ctype == PNG_COLOR_TYPE_PALETTE) {
        for (int i = 0; i < 256; i++) lut[3 * i] = lut[3 * i + 1] = lut[3 * i + 2] = (uint8_t)i;
        png_colorp plte = NULL;
        int n = 0;
        if (!png_get_PLTE(png, info, &plte, &n)) {
            status = ramc_error(RAMC_ERR_FORMAT, "%s: invalid PNG: palette image without PLTE",
                                name);
            png_longjmp(png, 1);
        }
        for (int i = 0; i < n && i < 256; i++) {
            lut[3 * i] = plte[i].red;
            lut[3 * i + 1] = plte[i].green;
            lut[3 * i + 2] = plte[i].blue;
        }
    }
    if (depth < 8) png_set_packing(png);
    int passes = png_set_interlace_handling(png);
    png_read_update_info(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);

    rgb = malloc((size_t)w * (size_t)h * 3);
    /* Interlaced rows are assembled over several passes, so they need the
     * whole raw image; otherwise one row at a time suffices. */
    size_t raw_rows = passes > 1 ? (size_t)h : 1;
    raw = malloc(rowbytes * raw_rows);
    if (!rgb || !raw) {
        status = ramc_error(RAMC_ERR_NOMEM, "%s: out of memory for a %dx%d image", name, w, h);
        png_longjmp(png, 1);
    }
    if (passes > 1) {
        rows = malloc(sizeof(png_bytep) * (size_t)h);
        if (!rows) {
            status = ramc_error(RAMC_ERR_NOMEM, "%s: out of memory", name);
            png_longjmp(png, 1);
        }
        for (int y = 0; y < h; y++) rows[y] = raw + rowbytes * (size_t)y;
        png_read_image(png, rows);
        for (int y = 0; y < h; y++)
            convert_row(rows[y], rgb + (size_t)y * w * 3, w, depth, ctype, lut);
    } else {
        for (int y = 0; y < h; y++) {
            png_read_row(png, raw, NULL);
            convert_row(raw, rgb + (size_t)y * w * 3, w, depth, ctype, lut);
        }
    }
    /* Chunks after the image data are not read: Pillow does not need them
     * either, and a missing IEND should not fail an otherwise whole image. */
    png_destroy_read_struct(&png, &info, NULL);
    free(raw);
    free(rows);
    out->width = w;
    out->height = h;
    out->rgb = rgb;
    return RAMC_OK;
}

/* ------------------------------------------------------------- encoding */

typedef struct {
    uint8_t *data;
    size_t size, cap;
    int nomem;
    char message[256];
} png_sink;

static void write_to_memory(png_structp png, png_bytep in, png_size_t n) {
    png_sink *sink = png_get_io_ptr(png);
    if (n > sink->cap - sink->size) {
        size_t cap = sink->cap ? sink->cap : 65536;
        while (cap - sink->size < n) cap *= 2;
        uint8_t *grown = realloc(sink->data, cap);
        if (!grown) {
            sink->nomem = 1;
            png_error(png, "out of memory");
        }
        sink->data = grown;
        sink->cap = cap;
    }
    memcpy(sink->data + sink->size, in, n);
    sink->size += n;
}

static void flush_nothing(png_structp png) { (void)png; }

static void on_png_write_error(png_structp png, png_const_charp msg) {
    png_sink *sink = png_get_error_ptr(png);
    snprintf(sink->message, sizeof sink->message, "%s", msg);
    png_longjmp(png, 1);
}

ramc_status image_encode_png(const ramc_image *img, uint8_t **data, size_t *size) {
    if (!img || !img->rgb || img->width <= 0 || img->height <= 0 || !data || !size)
        return ramc_error(RAMC_ERR_INVALID_ARG, "PNG encoder: empty image");
    png_sink sink = {NULL, 0, 0, 0, ""};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &sink, on_png_write_error,
                                              ignore_png_warning);
    if (!png) return ramc_error(RAMC_ERR_NOMEM, "cannot create a PNG encoder");
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        return ramc_error(RAMC_ERR_NOMEM, "cannot create a PNG encoder");
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        free(sink.data);
        return ramc_error(sink.nomem ? RAMC_ERR_NOMEM : RAMC_ERR_FORMAT, "PNG encoder: %s",
                          sink.message);
    }
    png_set_write_fn(png, &sink, write_to_memory, flush_nothing);
    png_set_IHDR(png, info, (png_uint_32)img->width, (png_uint_32)img->height, 8,
                 PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < img->height; y++)
        png_write_row(png, img->rgb + (size_t)y * img->width * 3);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    *data = sink.data;
    *size = sink.size;
    return RAMC_OK;
}

ramc_status image_write_png(const ramc_image *img, const char *path) {
    uint8_t *data = NULL;
    size_t size = 0;
    ramc_status s = image_encode_png(img, &data, &size);
    if (s != RAMC_OK) return ramc_error_prefix(s, "%s", path);
    s = file_write_atomic(path, data, size);
    free(data);
    return s;
}
