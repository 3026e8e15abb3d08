/* JPEG decoding with libjpeg(-turbo), matching what Pillow 9.4 hands to
 * Image.convert("RGB") on the same library: default islow IDCT and fancy
 * upsampling; 1 component -> "L" replicated to RGB; 3 components -> the
 * library's RGB; 4 components -> Pillow's inverted "CMYK;I" then its
 * cmyk2rgb. EXIF orientation is ignored, as Pillow's open/convert do. */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>

#include "image/image.h"

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
    int truncated;
    int corrupt; /* a corrupt-data warning: corrupt_message holds the first */
    char corrupt_message[JMSG_LENGTH_MAX];
    int too_many_scans;
} jpeg_error_ctx;

/* libjpeg's default error_exit calls exit(); ours records the message and
 * unwinds to the setjmp in image_decode_jpeg. */
static void on_error(j_common_ptr cinfo) {
    jpeg_error_ctx *ctx = (jpeg_error_ctx *)cinfo->err;
    cinfo->err->format_message(cinfo, ctx->message);
    longjmp(ctx->jump, 1);
}

/* Warnings are not printed (library code stays silent). libjpeg reports
 * missing or damaged scan data only as warnings and goes on, filling the
 * rest of the image with grey: JWRN_JPEG_EOF when the bytes run out,
 * JWRN_HIT_MARKER when a marker (even a proper end-of-image) cuts the scan
 * short, and the other corrupt-data warnings below. Pillow ignores all but
 * the first; ramc refuses them all, so no image is scored that was not
 * wholly decoded. Extraneous bytes between markers lose no pixel data and
 * stay accepted (some cameras write them). */
static void on_message(j_common_ptr cinfo, int level) {
    jpeg_error_ctx *ctx = (jpeg_error_ctx *)cinfo->err;
    if (level < 0) {
        cinfo->err->num_warnings++;
        int code = cinfo->err->msg_code;
        if (code == JWRN_JPEG_EOF) ctx->truncated = 1;
        else if (code == JWRN_HIT_MARKER || code == JWRN_MUST_RESYNC || code == JWRN_HUFF_BAD_CODE ||
                 code == JWRN_ARITH_BAD_CODE || code == JWRN_BOGUS_PROGRESSION ||
                 code == JWRN_NOT_SEQUENTIAL) {
            if (!ctx->corrupt) cinfo->err->format_message(cinfo, ctx->corrupt_message);
            ctx->corrupt = 1;
        }
    }
}

static void on_output(j_common_ptr cinfo) { (void)cinfo; }

static void on_progress(j_common_ptr cinfo) {
    j_decompress_ptr d = (j_decompress_ptr)cinfo;
    if (d->input_scan_number > RAMC_JPEG_MAX_SCANS) {
        jpeg_error_ctx *ctx = (jpeg_error_ctx *)cinfo->err;
        ctx->too_many_scans = 1;
        snprintf(ctx->message, sizeof ctx->message, "more than %d progressive scans",
                 RAMC_JPEG_MAX_SCANS);
        longjmp(ctx->jump, 1);
    }
}

/* Pillow's MULDIV255: a*b/255 rounded, without a division. */
static inline int muldiv255(int a, int b) {
    int t = a * b + 128;
    return ((t >> 8) + t) >> 8;
}

static inline uint8_t clip8(int v) { return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v); }

ramc_status image_decode_jpeg(const uint8_t *data, size_t size, const char *name,
                              ramc_image *out) {
    struct jpeg_decompress_struct cinfo;
    struct jpeg_progress_mgr progress;
    jpeg_error_ctx err;
    /* Touched after setjmp and needed after a longjmp, hence volatile. */
    uint8_t *volatile rgb = NULL;
    uint8_t *volatile row = NULL;
    volatile ramc_status status = RAMC_OK;

    out->width = out->height = 0;
    out->rgb = NULL;
    if ((unsigned long long)size > (unsigned long)-1)
        return ramc_error(RAMC_ERR_LIMIT, "%s: file too large", name);

    memset(&err, 0, sizeof err);
    cinfo.err = jpeg_std_error(&err.pub);
    err.pub.error_exit = on_error;
    err.pub.emit_message = on_message;
    err.pub.output_message = on_output;
    if (setjmp(err.jump)) {
        jpeg_destroy_decompress(&cinfo);
        free(rgb);
        free(row);
        if (status != RAMC_OK) return status; /* already recorded */
        return ramc_error(err.too_many_scans ? RAMC_ERR_LIMIT : RAMC_ERR_FORMAT,
                          "%s: invalid JPEG: %s", name, err.message);
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    progress.progress_monitor = on_progress;
    cinfo.progress = &progress;
    jpeg_read_header(&cinfo, TRUE);
    if (err.truncated) {
        status = ramc_error(RAMC_ERR_FORMAT, "%s: truncated JPEG (ends inside the header)", name);
        longjmp(err.jump, 1);
    }

    int comps = cinfo.num_components;
    if (comps == 1) {
        cinfo.out_color_space = JCS_GRAYSCALE;
    } else if (comps == 3) {
        cinfo.out_color_space = JCS_RGB;
    } else if (comps == 4) {
        /* libjpeg turns YCCK into CMYK itself; the inversion and the CMYK ->
         * RGB formula below are Pillow's. */
        cinfo.out_color_space = JCS_CMYK;
    } else {
        status = ramc_error(RAMC_ERR_FORMAT, "%s: unsupported JPEG with %d components", name,
                            comps);
        longjmp(err.jump, 1);
    }
    ramc_status s = image_check_size(cinfo.image_width, cinfo.image_height, name);
    if (s != RAMC_OK) {
        status = s;
        longjmp(err.jump, 1);
    }
    cinfo.dct_method = JDCT_ISLOW;
    cinfo.do_fancy_upsampling = TRUE;
    cinfo.scale_num = cinfo.scale_denom = 1;

    jpeg_start_decompress(&cinfo);
    int w = (int)cinfo.output_width, h = (int)cinfo.output_height;
    int oc = cinfo.output_components;
    if (oc != comps || w != (int)cinfo.image_width || h != (int)cinfo.image_height) {
        status = ramc_error(RAMC_ERR_FORMAT, "%s: unexpected JPEG output layout", name);
        longjmp(err.jump, 1);
    }
    rgb = malloc((size_t)w * (size_t)h * 3);
    row = malloc((size_t)w * (size_t)oc);
    if (!rgb || !row) {
        status = ramc_error(RAMC_ERR_NOMEM, "%s: out of memory for a %dx%d image", name, w, h);
        longjmp(err.jump, 1);
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        int y = (int)cinfo.output_scanline;
        JSAMPROW rows[1] = {oc == 3 ? (JSAMPROW)(rgb + (size_t)y * w * 3) : (JSAMPROW)row};
        if (jpeg_read_scanlines(&cinfo, rows, 1) != 1) {
            status = ramc_error(RAMC_ERR_FORMAT, "%s: JPEG decoder stalled at row %d", name, y);
            longjmp(err.jump, 1);
        }
        uint8_t *dst = rgb + (size_t)y * w * 3;
        if (oc == 1) {
            for (int x = 0; x < w; x++) dst[3 * x] = dst[3 * x + 1] = dst[3 * x + 2] = row[x];
        } else if (oc == 4) {
            for (int x = 0; x < w; x++) {
                const uint8_t *p = row + 4 * x;
                /* Pillow reads CMYK JPEGs as Adobe-inverted ("CMYK;I"). */
                int c = 255 - p[0], m = 255 - p[1], yy = 255 - p[2], k = 255 - p[3];
                int nk = 255 - k;
                dst[3 * x] = clip8(nk - muldiv255(c, nk));
                dst[3 * x + 1] = clip8(nk - muldiv255(m, nk));
                dst[3 * x + 2] = clip8(nk - muldiv255(yy, nk));
            }
        }
        if (err.truncated || err.corrupt) break;
    }
    if (err.truncated) {
        status = ramc_error(RAMC_ERR_FORMAT, "%s: truncated JPEG (data ends before the image does)",
                            name);
        longjmp(err.jump, 1);
    }
    if (err.corrupt) {
        status = ramc_error(RAMC_ERR_FORMAT, "%s: incomplete or corrupt JPEG scan data (%s)", name,
                            err.corrupt_message);
        longjmp(err.jump, 1);
    }
    /* a progressive file may end (with a proper EOI) before a component's
     * first scan: nothing of that component was decoded */
    if (cinfo.progressive_mode && cinfo.coef_bits)
        for (int c = 0; c < comps; c++)
            if (cinfo.coef_bits[c][0] < 0) {
                status = ramc_error(RAMC_ERR_FORMAT,
                                    "%s: incomplete progressive JPEG (no scan for component %d)",
                                    name, c + 1);
                longjmp(err.jump, 1);
            }
    /* The image is complete; garbage after it (which finish_decompress may
     * choke on) should not fail a load that Pillow accepts. */
    jpeg_abort_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    free(row);
    out->width = w;
    out->height = h;
    out->rgb = rgb;
    return RAMC_OK;
}

int image_probe_jpeg(FILE *f, long long *width, long long *height) {
    struct jpeg_decompress_struct cinfo;
    jpeg_error_ctx err;
    memset(&err, 0, sizeof err);
    cinfo.err = jpeg_std_error(&err.pub);
    err.pub.error_exit = on_error;
    err.pub.emit_message = on_message;
    err.pub.output_message = on_output;
    if (setjmp(err.jump)) {
        jpeg_destroy_decompress(&cinfo);
        return 0;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_stdio_src(&cinfo, f); /* reads only as far as the frame header */
    jpeg_read_header(&cinfo, TRUE);
    *width = cinfo.image_width;
    *height = cinfo.image_height;
    jpeg_destroy_decompress(&cinfo);
    return 1;
}

/* ------------------------------------------------------------ encoding */

/* The encoder's warnings are not printed either (library code stays silent). */
static void no_output(j_common_ptr cinfo) { (void)cinfo; }

ramc_status image_write_jpeg(const ramc_image *img, int quality, const char *path) {
    if (!img || !img->rgb || img->width <= 0 || img->height <= 0 || !path)
        return ramc_error(RAMC_ERR_INVALID_ARG, "write JPEG: empty image or no path");
    FILE *f = fopen(path, "wb");
    if (!f) return ramc_error(RAMC_ERR_IO, "%s: cannot create", path);
    struct jpeg_compress_struct c;
    jpeg_error_ctx err;
    memset(&err, 0, sizeof err);
    c.err = jpeg_std_error(&err.pub);
    err.pub.error_exit = on_error;
    err.pub.output_message = no_output;
    if (setjmp(err.jump)) {
        jpeg_destroy_compress(&c);
        fclose(f);
        remove(path);
        return ramc_error(RAMC_ERR_IO, "%s: JPEG encoding failed: %s", path, err.message);
    }
    jpeg_create_compress(&c);
    jpeg_stdio_dest(&c, f);
    c.image_width = (JDIMENSION)img->width;
    c.image_height = (JDIMENSION)img->height;
    c.input_components = 3;
    c.in_color_space = JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, quality, TRUE);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = (JSAMPROW)(img->rgb + (size_t)c.next_scanline * (size_t)img->width * 3);
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    if (fclose(f) != 0) {
        remove(path);
        return ramc_error(RAMC_ERR_IO, "%s: write failed", path);
    }
    return RAMC_OK;
}
