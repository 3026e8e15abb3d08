/* Reading an image file: bounds, format sniffing, dispatch to a decoder. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "image/image.h"
#include "io/file.h"

/* Names formats we recognise but do not decode, so the error says what the
 * file is rather than just "unknown". */
static const char *other_format(const uint8_t *d, size_t n) {
    if (n >= 6 && (!memcmp(d, "GIF87a", 6) || !memcmp(d, "GIF89a", 6))) return "GIF";
    if (n >= 2 && !memcmp(d, "BM", 2)) return "BMP";
    if (n >= 12 && !memcmp(d, "RIFF", 4) && !memcmp(d + 8, "WEBP", 4)) return "WebP";
    if (n >= 4 && (!memcmp(d, "II*\0", 4) || !memcmp(d, "MM\0*", 4))) return "TIFF";
    if (n >= 12 && !memcmp(d + 4, "ftyp", 4)) return "HEIF/AVIF";
    if (n >= 12 && !memcmp(d, "\0\0\0\x0cjP  ", 8)) return "JPEG 2000";
    return NULL;
}

ramc_status image_decode_memory(const uint8_t *data, size_t size, const char *name,
                                ramc_image *out) {
    static const uint8_t png_magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (size >= 3 && data[0] == 0xff && data[1] == 0xd8 && data[2] == 0xff)
        return image_decode_jpeg(data, size, name, out);
    if (size >= 8 && !memcmp(data, png_magic, 8)) return image_decode_png(data, size, name, out);
    if (size == 0) return ramc_error(RAMC_ERR_FORMAT, "%s: empty file", name);
    const char *other = other_format(data, size);
    if (other)
        return ramc_error(RAMC_ERR_FORMAT, "%s: %s images are not supported (only JPEG and PNG)",
                          name, other);
    return ramc_error(RAMC_ERR_FORMAT, "%s: not a JPEG or PNG file (unrecognised leading bytes)",
                      name);
}

ramc_status ramc_image_load(const char *path, ramc_image *out) {
    if (!path || !out) return ramc_error(RAMC_ERR_INVALID_ARG, "ramc_image_load: NULL argument");
    out->width = out->height = 0;
    out->rgb = NULL;
    FILE *f;
    struct stat st;
    ramc_status os = fopen_regular_file(path, &f, &st);
    if (os != RAMC_OK) return os;
    if ((unsigned long long)st.st_size > RAMC_IMAGE_MAX_FILE_BYTES) {
        fclose(f);
        return ramc_error(RAMC_ERR_LIMIT, "%s: file of %lld bytes exceeds the limit of %llu bytes",
                          path, (long long)st.st_size, (unsigned long long)RAMC_IMAGE_MAX_FILE_BYTES);
    }
    size_t size = (size_t)st.st_size;
    uint8_t *data = ramc_malloc(size, "image file");
    if (!data) {
        fclose(f);
        return ramc_error_prefix(RAMC_ERR_NOMEM, "%s", path);
    }
    size_t got = size ? fread(data, 1, size, f) : 0;
    int read_error = ferror(f);
    fclose(f);
    if (got != size || read_error) {
        free(data);
        return ramc_error(RAMC_ERR_IO, "%s: read error", path);
    }
    ramc_status s = image_decode_memory(data, size, path, out);
    free(data);
    return s;
}

void ramc_image_free(ramc_image *img) {
    if (!img) return;
    free(img->rgb);
    img->rgb = NULL;
    img->width = img->height = 0;
}

ramc_status image_probe_file(const char *path, long long *width, long long *height,
                             long long *file_bytes) {
    *width = *height = *file_bytes = -1;
    FILE *f;
    struct stat st;
    ramc_status s = fopen_regular_file(path, &f, &st);
    if (s != RAMC_OK) return s;
    *file_bytes = (long long)st.st_size;
    uint8_t head[24];
    size_t got = fread(head, 1, sizeof head, f);
    int ok = 0;
    if (got == sizeof head && !memcmp(head, "\x89PNG\r\n\x1a\n", 8) && !memcmp(head + 12, "IHDR", 4)) {
        *width = (long long)head[16] << 24 | head[17] << 16 | head[18] << 8 | head[19];
        *height = (long long)head[20] << 24 | head[21] << 16 | head[22] << 8 | head[23];
        ok = 1;
    } else if (got >= 3 && head[0] == 0xFF && head[1] == 0xD8 && head[2] == 0xFF) {
        rewind(f);
        ok = image_probe_jpeg(f, width, height);
    }
    fclose(f);
    if (!ok) return ramc_error(RAMC_ERR_FORMAT, "%s: no JPEG or PNG image size found", path);
    return RAMC_OK;
}

ramc_status ramc_image_decode(const uint8_t *data, size_t size, const char *name, ramc_image *out) {
    if (!data || !out) return ramc_error(RAMC_ERR_INVALID_ARG, "ramc_image_decode: NULL argument");
    out->width = out->height = 0;
    out->rgb = NULL;
    if (!name) name = "image";
    if (size > RAMC_IMAGE_MAX_FILE_BYTES)
        return ramc_error(RAMC_ERR_LIMIT, "%s: %zu bytes exceed the limit of %llu bytes", name, size,
                          (unsigned long long)RAMC_IMAGE_MAX_FILE_BYTES);
    return image_decode_memory(data, size, name, out);
}
