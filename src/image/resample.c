/* Resizing that reproduces Pillow 9.4's Image.resize((w, h), BILINEAR or
 * BICUBIC) on 8-bit RGB byte for byte (as torchvision's Resize calls it).
 *
 * The scheme (Pillow's libImaging/Resample.c, reimplemented here):
 *  - a separable convolution, one 1-D kernel per output column/row;
 *  - when shrinking by s > 1 the filter is stretched by s (its support and
 *    argument scaled), which is what makes it antialiased;
 *  - each kernel's taps are computed in double, normalised to sum 1, then
 *    rounded half away from zero to 22-bit fixed point (32 bits - 8 for the
 *    sample - 2 headroom for negative lobes and overshoot);
 *  - the horizontal pass runs first, over only the rows the vertical pass
 *    will read, and its result is rounded and clipped to uint8 before the
 *    vertical pass reads it;
 *  - an axis whose size does not change is not filtered at all.
 * Any change of floating-point evaluation order moves some taps by one unit
 * in the last place of 2^-22 and flips pixels, so the expressions below keep
 * Pillow's order, and FMA contraction is disabled. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "image/image.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#define COEF_BITS 22

typedef double (*kernel_fn)(double x);

static double kernel_triangle(double x) {
    if (x < 0.0) x = -x;
    return x < 1.0 ? 1.0 - x : 0.0;
}

/* Keys' cubic convolution with a = -0.5 (Pillow's BICUBIC). The constants
 * a + 2 = 1.5 and a + 3 = 2.5 are exact, so folding them changes nothing. */
static double kernel_cubic(double x) {
    const double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

typedef struct {
    int taps;      /* stride of `weights`: the most taps any kernel has */
    int *first;    /* [out] first input index read */
    int *count;    /* [out] number of input samples read */
    int32_t *weights; /* [out][taps] fixed-point weights */
} kernels;

static void kernels_free(kernels *k) {
    free(k->first);
    free(k->count);
    free(k->weights);
}

static ramc_status kernels_make(int in_size, int out_size, ramc_filter filter, kernels *k) {
    kernel_fn fn = filter == RAMC_FILTER_BICUBIC ? kernel_cubic : kernel_triangle;
    double base_support = filter == RAMC_FILTER_BICUBIC ? 2.0 : 1.0;
    /* Pillow passes the source box as floats and subtracts them in float. */
    double scale = (double)((float)in_size - 0.0f) / out_size;
    double stretch = scale < 1.0 ? 1.0 : scale;
    double support = base_support * stretch;
    int taps = (int)ceil(support) * 2 + 1;

    memset(k, 0, sizeof *k);
    k->taps = taps;
    k->first = malloc(sizeof(int) * (size_t)out_size);
    k->count = malloc(sizeof(int) * (size_t)out_size);
    k->weights = calloc((size_t)out_size * (size_t)taps, sizeof(int32_t));
    double *w = malloc(sizeof(double) * (size_t)taps);
    if (!k->first || !k->count || !k->weights || !w) {
        free(w);
        kernels_free(k);
        return ramc_error(RAMC_ERR_NOMEM, "resize: out of memory for %d kernels of %d taps",
                          out_size, taps);
    }
    for (int o = 0; o < out_size; o++) {
        double center = 0.0 + (o + 0.5) * scale;
        double inv = 1.0 / stretch;
        /* Truncation toward zero, as Pillow's (int) cast. */
        int lo = (int)(center - support + 0.5);
        if (lo < 0) lo = 0;
        int hi = (int)(center + support + 0.5);
        if (hi > in_size) hi = in_size;
        int n = hi - lo;
        double sum = 0.0;
        for (int i = 0; i < n; i++) {
            w[i] = fn((i + lo - center + 0.5) * inv);
            sum += w[i];
        }
        int32_t *dst = k->weights + (size_t)o * taps;
        for (int i = 0; i < n; i++) {
            double v = sum != 0.0 ? w[i] / sum : w[i];
            double f = v * (1 << COEF_BITS);
            dst[i] = (int32_t)(v < 0 ? -0.5 + f : 0.5 + f);
        }
        k->first[o] = lo;
        k->count[o] = n;
    }
    free(w);
    return RAMC_OK;
}

/* Pillow's clip8: the accumulator (which started at half a unit, so this
 * rounds) divided by 2^22 with floor, then saturated to 0..255. */
static inline uint8_t fixed_to_u8(int64_t acc) {
    if (acc < 0) return 0;
    int64_t v = acc >> COEF_BITS;
    return (uint8_t)(v > 255 ? 255 : v);
}

/* Rows [row0, row0 + rows) of `in` (width in_w) -> `out` (width out_w). */
static void pass_horizontal(const uint8_t *in, int in_w, int row0, int rows, uint8_t *out,
                            int out_w, const kernels *k) {
    for (int y = 0; y < rows; y++) {
        const uint8_t *src = in + (size_t)(row0 + y) * in_w * 3;
        uint8_t *dst = out + (size_t)y * out_w * 3;
        for (int x = 0; x < out_w; x++) {
            const int32_t *wt = k->weights + (size_t)x * k->taps;
            const uint8_t *s = src + (size_t)k->first[x] * 3;
            int64_t a0 = 1 << (COEF_BITS - 1), a1 = a0, a2 = a0;
            for (int i = 0; i < k->count[x]; i++) {
                a0 += (int64_t)s[3 * i] * wt[i];
                a1 += (int64_t)s[3 * i + 1] * wt[i];
                a2 += (int64_t)s[3 * i + 2] * wt[i];
            }
            dst[3 * x] = fixed_to_u8(a0);
            dst[3 * x + 1] = fixed_to_u8(a1);
            dst[3 * x + 2] = fixed_to_u8(a2);
        }
    }
}

/* `in` holds rows starting at source row `row0`; kernels index source rows. */
static void pass_vertical(const uint8_t *in, int w, int row0, uint8_t *out, int out_h,
                          const kernels *k) {
    size_t stride = (size_t)w * 3;
    for (int y = 0; y < out_h; y++) {
        const int32_t *wt = k->weights + (size_t)y * k->taps;
        const uint8_t *src = in + (size_t)(k->first[y] - row0) * stride;
        uint8_t *dst = out + (size_t)y * stride;
        for (size_t j = 0; j < stride; j++) {
            int64_t acc = 1 << (COEF_BITS - 1);
            for (int i = 0; i < k->count[y]; i++) acc += (int64_t)src[i * stride + j] * wt[i];
            dst[j] = fixed_to_u8(acc);
        }
    }
}

ramc_status ramc_image_resize(const ramc_image *in, int width, int height, ramc_filter filter,
                              ramc_image *out) {
    if (!in || !out || !in->rgb || in->width <= 0 || in->height <= 0)
        return ramc_error(RAMC_ERR_INVALID_ARG, "resize: empty input image");
    if (filter != RAMC_FILTER_BILINEAR && filter != RAMC_FILTER_BICUBIC)
        return ramc_error(RAMC_ERR_INVALID_ARG, "resize: unknown filter %d", (int)filter);
    if (width <= 0 || height <= 0)
        return ramc_error(RAMC_ERR_INVALID_ARG, "resize: invalid output size %dx%d", width,
                          height);
    ramc_status s = image_check_size(width, height, "resize output");
    if (s != RAMC_OK) return s;

    size_t out_bytes = (size_t)width * (size_t)height * 3;
    uint8_t *dst = malloc(out_bytes);
    if (!dst) return ramc_error(RAMC_ERR_NOMEM, "resize: out of memory for %dx%d", width, height);
    if (width == in->width && height == in->height) {
        memcpy(dst, in->rgb, out_bytes);
        out->width = width;
        out->height = height;
        out->rgb = dst;
        return RAMC_OK;
    }
    int need_h = width != in->width, need_v = height != in->height;

    /* The vertical kernels are needed even when that pass is skipped: they
     * say which source rows the horizontal pass must produce. */
    kernels kv, kh;
    s = kernels_make(in->height, height, filter, &kv);
    if (s != RAMC_OK) {
        free(dst);
        return s;
    }
    int row_first = kv.first[0];
    int row_end = kv.first[height - 1] + kv.count[height - 1];

    uint8_t *tmp = NULL;
    const uint8_t *vsrc = in->rgb;
    int vsrc_row0 = 0, vsrc_w = in->width;
    if (need_h) {
        s = kernels_make(in->width, width, filter, &kh);
        if (s != RAMC_OK) {
            kernels_free(&kv);
            free(dst);
            return s;
        }
        int rows = row_end - row_first;
        uint8_t *hout = need_v ? malloc((size_t)width * (size_t)rows * 3) : dst;
        if (!hout) {
            kernels_free(&kh);
            kernels_free(&kv);
            free(dst);
            return ramc_error(RAMC_ERR_NOMEM, "resize: out of memory");
        }
        /* Without a vertical pass the kernels above span every row. */
        pass_horizontal(in->rgb, in->width, row_first, rows, hout, width, &kh);
        kernels_free(&kh);
        if (need_v) tmp = hout;
        vsrc = hout;
        vsrc_row0 = row_first;
        vsrc_w = width;
    }
    if (need_v) pass_vertical(vsrc, vsrc_w, vsrc_row0, dst, height, &kv);
    kernels_free(&kv);
    free(tmp);
    out->width = width;
    out->height = height;
    out->rgb = dst;
    return RAMC_OK;
}

ramc_status ramc_image_to_tensor(const ramc_image *in, const float mean[3], const float std[3],
                                 float *chw) {
    if (!in || !in->rgb || !mean || !std || !chw || in->width <= 0 || in->height <= 0)
        return ramc_error(RAMC_ERR_INVALID_ARG, "image to tensor: NULL or empty argument");
    for (int c = 0; c < 3; c++)
        if (!(std[c] != 0.0f) || !isfinite(std[c]) || !isfinite(mean[c]))
            return ramc_error(RAMC_ERR_INVALID_ARG,
                              "image to tensor: mean/std of channel %d must be finite, std non-zero",
                              c);
    size_t plane = (size_t)in->width * (size_t)in->height;
    for (int c = 0; c < 3; c++) {
        float *dst = chw + (size_t)c * plane;
        const float m = mean[c], sd = std[c];
        for (size_t i = 0; i < plane; i++) {
            /* torchvision: ToTensor divides by 255 in float32, Normalize
             * subtracts then divides; the same two roundings, in that order. */
            float v = (float)in->rgb[3 * i + (size_t)c] / 255.0f;
            dst[i] = (v - m) / sd;
        }
    }
    return RAMC_OK;
}
