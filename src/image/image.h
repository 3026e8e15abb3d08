/* Image decoding, Pillow-exact resampling and PNG output (internal).
 *
 * The public entry points (ramc_image_load, ramc_image_resize,
 * ramc_image_to_tensor, ramc_image_free) are declared in ramc.h; this header
 * adds the bounds they enforce and the pieces the CLI needs. See
 * docs/preprocessing.md for what is bit-exact against Pillow 9.4.
 */
#ifndef RAMC_IMAGE_IMAGE_H
#define RAMC_IMAGE_IMAGE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/status.h"

/* Bounds checked on the declared size in a file's header, before any pixel
 * memory is allocated, so a tiny file claiming a huge image (a decompression
 * bomb) fails with RAMC_ERR_LIMIT instead of exhausting memory. 2^28 pixels
 * is 768 MiB of RGB; Pillow's own bomb error starts at ~179 Mpixels. The same
 * bounds apply to resize outputs. */
#define RAMC_IMAGE_MAX_SIDE 32768
#define RAMC_IMAGE_MAX_PIXELS (1ull << 28)
/* Files larger than this are refused before being read into memory. */
#define RAMC_IMAGE_MAX_FILE_BYTES (1ull << 30)
/* Progressive JPEGs may hold any number of scans, each a full pass over the
 * coefficients; real encoders use about ten. This caps a crafted file's cost. */
#define RAMC_JPEG_MAX_SCANS 1000

/* Checks width x height against the bounds above; `what` names the input. */
ramc_status image_check_size(long long width, long long height, const char *what);

/* Decoders for an in-memory file; `name` is used in error messages. The
 * caller has already recognised the format from the magic bytes. */
ramc_status image_decode_jpeg(const uint8_t *data, size_t size, const char *name,
                              ramc_image *out);
ramc_status image_decode_png(const uint8_t *data, size_t size, const char *name,
                             ramc_image *out);
/* Sniffs the format and dispatches; `name` is used in error messages. */
ramc_status image_decode_memory(const uint8_t *data, size_t size, const char *name,
                                ramc_image *out);

/* The size an image file declares (PNG IHDR, JPEG frame header), read
 * without decoding, and the file's size: what a decode of it will need, for
 * callers that bound the memory of several decodes at once. Refuses what
 * ramc_image_load refuses to open (not a regular file). */
ramc_status image_probe_file(const char *path, long long *width, long long *height,
                             long long *file_bytes);
int image_probe_jpeg(FILE *f, long long *width, long long *height); /* 1 if found */

/* Encodes `img` as an 8-bit RGB PNG into a malloc'd buffer. */
ramc_status image_encode_png(const ramc_image *img, uint8_t **data, size_t *size);
/* Writes `img` as a PNG to path.tmp.XXXXXX beside `path`, then renames it
 * over `path`, so a failure never leaves a partial file at `path`. */
ramc_status image_write_png(const ramc_image *img, const char *path);
/* Writes `img` as a baseline JPEG of the given quality (1..100) to `path`
 * (benchmarks and tests make their inputs with it); a failure removes it. */
ramc_status image_write_jpeg(const ramc_image *img, int quality, const char *path);

#endif
