/* Training augmentation (spec §7.1) and test transform (spec §7.2).
 * See augment.h for the contract and docs/augmentation.md for the choices. */
#include "data/augment.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"

#define AUG_PI 3.14159265358979323846

/* ------------------------------------------------------------ randomness */

/* splitmix64's finaliser: a bijective 64-bit mix, so distinct inputs never
 * collide and nearby inputs (index 7 vs 8) give unrelated outputs. */
static uint64_t mix64(uint64_t z) {
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t augment_sample_seed(uint64_t seed, uint64_t epoch, uint64_t index) {
    /* Chained rather than XORed together so that (epoch, index) = (1, 2) and
     * (2, 1) give different seeds. */
    uint64_t h = mix64(seed ^ 0x52414d4341554731ull); /* "RAMCAUG1" */
    h = mix64(h ^ epoch);
    h = mix64(h ^ (index * 0xd1b54a32d192ed03ull));
    return h;
}

/* The streams of one sample: one per step, so turning a step off leaves the
 * others' draws unchanged. */
enum {
    STREAM_MIRROR = 1,
    STREAM_ORDER,
    STREAM_MEMBER0, /* + member id */
    STREAM_HFLIP = STREAM_MEMBER0 + AUG_MEMBER_COUNT,
    STREAM_PADCROP,
    STREAM_ERASING
};

static void stream(ramc_rng *r, uint64_t sample_seed, int id) {
    rng_seed(r, mix64(sample_seed ^ mix64((uint64_t)id * 0x9e3779b97f4a7c15ull)));
}

static double uniform(ramc_rng *r, double lo, double hi) { return lo + (hi - lo) * rng_uniform(r); }

/* Uniform integer in [0, n] inclusive, unbiased (rejection), like Python's
 * random.randint(0, n) and torch.randint(0, n + 1). */
static int randint_incl(ramc_rng *r, int n) {
    if (n <= 0) return 0;
    uint64_t range = (uint64_t)n + 1;
    uint64_t limit = UINT64_MAX - UINT64_MAX % range;
    uint64_t x;
    do x = rng_next(r);
    while (x >= limit);
    return (int)(x % range);
}

/* ----------------------------------------------------------- 8-bit ops */

/* numpy's np.round (half to even), then clip to 0..255, as imgaug's
 * restore_dtypes_(round=True) does for uint8. */
static uint8_t to_u8(double v) {
    if (!(v > 0)) return 0; /* also NaN */
    if (v >= 255) return 255;
    return (uint8_t)nearbyint(v);
}

static void flip_lr(ramc_image *img) {
    for (int y = 0; y < img->height; y++) {
        uint8_t *row = img->rgb + (size_t)y * img->width * 3;
        for (int a = 0, b = img->width - 1; a < b; a++, b--)
            for (int c = 0; c < 3; c++) {
                uint8_t t = row[3 * a + c];
                row[3 * a + c] = row[3 * b + c];
                row[3 * b + c] = t;
            }
    }
}

/* cv2.INTER_AREA when enlarging (imgaug 0.4's choice for keep_size): each
 * output pixel averages the source pixels its footprint covers, which is at
 * most two per axis. Returns the two taps and the second's weight. */
static void area_taps(int in, int out, int d, int *s0, int *s1, double *f) {
    double scale = (double)in / out, inv = (double)out / in;
    int sx = (int)floor(d * scale);
    double fx = (d + 1) - (sx + 1) * inv;
    fx = fx <= 0 ? 0 : fx - floor(fx);
    if (sx >= in - 1) {
        sx = in - 1;
        fx = 0;
    }
    *s0 = sx;
    *s1 = sx + 1 < in ? sx + 1 : in - 1;
    *f = fx;
}

static ramc_status resize_area_up(const ramc_image *in, int W, int H, ramc_image *out) {
    uint8_t *dst = ramc_malloc((size_t)W * H * 3, "augment crop resize");
    int *xs = ramc_malloc(sizeof(int) * 2 * (size_t)W, "augment crop resize");
    double *xf = ramc_malloc(sizeof(double) * (size_t)W, "augment crop resize");
    if (!dst || !xs || !xf) {
        free(dst), free(xs), free(xf);
        return RAMC_ERR_NOMEM;
    }
    for (int x = 0; x < W; x++) area_taps(in->width, W, x, &xs[2 * x], &xs[2 * x + 1], &xf[x]);
    for (int y = 0; y < H; y++) {
        int y0, y1;
        double fy;
        area_taps(in->height, H, y, &y0, &y1, &fy);
        const uint8_t *r0 = in->rgb + (size_t)y0 * in->width * 3;
        const uint8_t *r1 = in->rgb + (size_t)y1 * in->width * 3;
        for (int x = 0; x < W; x++) {
            int a = xs[2 * x], b = xs[2 * x + 1];
            double fx = xf[x];
            for (int c = 0; c < 3; c++) {
                double top = r0[3 * a + c] * (1 - fx) + r0[3 * b + c] * fx;
                double bot = r1[3 * a + c] * (1 - fx) + r1[3 * b + c] * fx;
                dst[((size_t)y * W + x) * 3 + c] = to_u8(top * (1 - fy) + bot * fy);
            }
        }
    }
    free(xs);
    free(xf);
    out->width = W;
    out->height = H;
    out->rgb = dst;
    return RAMC_OK;
}

/* Crop(percent) with keep_size: trbl in pixels, then back to the input size. */
static ramc_status crop_keep_size(ramc_image *img, const int trbl[4], int filter) {
    int W = img->width, H = img->height;
    int x0 = trbl[3], x1 = W - trbl[1], y0 = trbl[0], y1 = H - trbl[2];
    if (x0 == 0 && y0 == 0 && x1 == W && y1 == H) return RAMC_OK;
    ramc_image sub = {x1 - x0, y1 - y0, NULL};
    sub.rgb = ramc_malloc((size_t)sub.width * sub.height * 3, "augment crop");
    if (!sub.rgb) return RAMC_ERR_NOMEM;
    for (int y = 0; y < sub.height; y++)
        memcpy(sub.rgb + (size_t)y * sub.width * 3, img->rgb + ((size_t)(y0 + y) * W + x0) * 3,
               (size_t)sub.width * 3);
    ramc_image res = {0, 0, NULL};
    ramc_status s = filter == AUG_CROP_RESIZE_BILINEAR
                        ? ramc_image_resize(&sub, W, H, RAMC_FILTER_BILINEAR, &res)
                        : resize_area_up(&sub, W, H, &res);
    ramc_image_free(&sub);
    if (s != RAMC_OK) return s;
    ramc_image_free(img);
    *img = res;
    return RAMC_OK;
}

/* imgaug's blur_gaussian_ with the cv2 backend: skipped below eps = 1e-3;
 * kernel size from sigma (3.3 sigma below 3, at least 5, odd), weights
 * exp(-x^2 / 2 sigma^2) normalised, border BORDER_REFLECT_101. */
static ramc_status gaussian_blur(ramc_image *img, double sigma) {
    if (!(sigma >= 1e-3)) return RAMC_OK;
    double kd = sigma < 3.0 ? 3.3 * sigma : sigma < 5.0 ? 2.9 * sigma : 2.6 * sigma;
    int ksize = (int)(kd > 5 ? kd : 5);
    if (ksize % 2 == 0) ksize++;
    int r = ksize / 2;
    double *k = ramc_malloc(sizeof(double) * (size_t)ksize, "augment blur");
    int W = img->width, H = img->height;
    float *tmp = ramc_malloc(sizeof(float) * (size_t)W * H * 3, "augment blur");
    if (!k || !tmp) {
        free(k), free(tmp);
        return RAMC_ERR_NOMEM;
    }
    double sum = 0;
    for (int i = 0; i < ksize; i++) sum += k[i] = exp(-(double)(i - r) * (i - r) / (2 * sigma * sigma));
    for (int i = 0; i < ksize; i++) k[i] /= sum;
/* reflect-101: -1 -> 1, n -> n-2; repeated for kernels wider than the image */
#define REFLECT101(p, n)                                                      \
    do {                                                                      \
        if ((n) == 1) { (p) = 0; break; }                                     \
        while ((p) < 0 || (p) >= (n)) (p) = (p) < 0 ? -(p) : 2 * ((n) - 1) - (p); \
    } while (0)
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            for (int c = 0; c < 3; c++) {
                double acc = 0;
                for (int i = -r; i <= r; i++) {
                    int xx = x + i;
                    REFLECT101(xx, W);
                    acc += k[i + r] * img->rgb[((size_t)y * W + xx) * 3 + c];
                }
                tmp[((size_t)y * W + x) * 3 + c] = (float)acc;
            }
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            for (int c = 0; c < 3; c++) {
                double acc = 0;
                for (int i = -r; i <= r; i++) {
                    int yy = y + i;
                    REFLECT101(yy, H);
                    acc += k[i + r] * tmp[((size_t)yy * W + x) * 3 + c];
                }
                img->rgb[((size_t)y * W + x) * 3 + c] = to_u8(acc);
            }
#undef REFLECT101
    free(k);
    free(tmp);
    return RAMC_OK;
}

/* imgaug adjust_contrast_linear: a lookup table center + alpha*(v - center). */
static void linear_contrast(ramc_image *img, double alpha, double center) {
    uint8_t lut[256];
    for (int v = 0; v < 256; v++) lut[v] = to_u8(center + alpha * (v - center));
    size_t n = (size_t)img->width * img->height * 3;
    for (size_t i = 0; i < n; i++) img->rgb[i] = lut[img->rgb[i]];
}

/* AdditiveGaussianNoise: one scale per image; per channel, or one value per
 * pixel shared by the three channels. */
static void additive_noise(ramc_image *img, ramc_rng *r, double scale, int per_channel) {
    size_t n = (size_t)img->width * img->height;
    for (size_t i = 0; i < n; i++) {
        uint8_t *p = img->rgb + 3 * i;
        if (per_channel) {
            for (int c = 0; c < 3; c++) p[c] = to_u8(p[c] + scale * rng_normal(r));
        } else {
            double e = scale * rng_normal(r);
            for (int c = 0; c < 3; c++) p[c] = to_u8(p[c] + e);
        }
    }
}

static void multiply(ramc_image *img, const double m[3]) {
    uint8_t lut[3][256];
    for (int c = 0; c < 3; c++)
        for (int v = 0; v < 256; v++) lut[c][v] = to_u8(v * m[c]);
    size_t n = (size_t)img->width * img->height;
    for (size_t i = 0; i < n; i++)
        for (int c = 0; c < 3; c++) img->rgb[3 * i + c] = lut[c][img->rgb[3 * i + c]];
}

/* imgaug Affine (cv2 backend, order 1, constant 0): the forward map is
 *   p' = C + R(rot) S(sx, sy) (p - C) + t,  C = (W/2 - 0.5, H/2 - 0.5),
 * i.e. scale and rotate about the centre of the pixel grid, then translate.
 * Each output pixel samples the source at the inverse map, bilinearly; taps
 * outside the image read 0 (cv2 BORDER_CONSTANT). */
static ramc_status affine(ramc_image *img, double sx, double sy, double tx, double ty, double deg) {
    int W = img->width, H = img->height;
    uint8_t *dst = ramc_malloc((size_t)W * H * 3, "augment affine");
    if (!dst) return RAMC_ERR_NOMEM;
    double cx = W / 2.0 - 0.5, cy = H / 2.0 - 0.5;
    double a = deg * AUG_PI / 180.0, co = cos(a), si = sin(a);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            double dx = x - cx - tx, dy = y - cy - ty;
            double u = (co * dx + si * dy) / sx + cx;
            double v = (-si * dx + co * dy) / sy + cy;
            double fu = floor(u), fv = floor(v);
            int x0 = (int)fu, y0 = (int)fv;
            double wx = u - fu, wy = v - fv;
            uint8_t *o = dst + ((size_t)y * W + x) * 3;
            if (!(fu > -2 && fu < W && fv > -2 && fv < H)) {
                o[0] = o[1] = o[2] = 0;
                continue;
            }
            for (int c = 0; c < 3; c++) {
                double acc = 0;
                for (int j = 0; j < 2; j++) {
                    int yy = y0 + j;
                    double wyj = j ? wy : 1 - wy;
                    if (yy < 0 || yy >= H || wyj == 0) continue;
                    for (int i = 0; i < 2; i++) {
                        int xx = x0 + i;
                        double wxi = i ? wx : 1 - wx;
                        if (xx < 0 || xx >= W || wxi == 0) continue;
                        acc += wyj * wxi * img->rgb[((size_t)yy * W + xx) * 3 + c];
                    }
                }
                o[c] = to_u8(acc);
            }
        }
    free(img->rgb);
    img->rgb = dst;
    return RAMC_OK;
}

/* ------------------------------------------------------------- options */

ramc_augment_options augment_default_options(void) {
    ramc_augment_options o;
    memset(&o, 0, sizeof o);
    o.image_size = 224;
    for (int c = 0; c < 3; c++) o.mean[c] = o.std[c] = 0.5f;
    o.mirror = 1, o.mirror_p = 0.5;
    o.random_order = 1;
    o.crop = 1, o.crop_p = 0.2, o.crop_max = 0.1, o.crop_resize = AUG_CROP_RESIZE_AREA;
    o.blur = 1, o.blur_p = 0.2, o.blur_sigma_min = 0, o.blur_sigma_max = 0.2;
    o.contrast = 1, o.contrast_p = 0.2, o.contrast_min = 0.75, o.contrast_max = 1.25;
    o.contrast_center = 127;
    o.noise = 1, o.noise_scale_min = 0, o.noise_scale_max = 0.015 * 255, o.noise_per_channel_p = 0.2;
    o.multiply = 1, o.multiply_min = 0.9, o.multiply_max = 1.1, o.multiply_per_channel_p = 0.2;
    o.affine = 1, o.affine_p = 0.2, o.affine_scale_min = 0.9, o.affine_scale_max = 1.1;
    o.affine_translate_max = 0.1, o.affine_rotate_max = 10;
    o.hflip = 1, o.hflip_p = 0.5;
    o.pad_crop = 1, o.pad = 10;
    o.erasing = 1, o.erasing_p = 0.5, o.erasing_min_area = 0.02, o.erasing_max_area = 1.0 / 3;
    o.erasing_min_aspect = 0.3, o.erasing_max_aspect = 1 / 0.3, o.erasing_attempts = 10;
    return o;
}

void augment_disable_all(ramc_augment_options *o) {
    o->mirror = o->crop = o->blur = o->contrast = o->noise = o->multiply = o->affine = 0;
    o->hflip = o->pad_crop = o->erasing = 0;
}

ramc_status augment_check_options(const ramc_augment_options *o) {
    if (!o) return ramc_error(RAMC_ERR_INVALID_ARG, "augment: NULL options");
    if (o->image_size <= 0 || o->image_size > 8192)
        return ramc_error(RAMC_ERR_INVALID_ARG, "augment: image_size %d not in 1..8192", o->image_size);
    for (int c = 0; c < 3; c++)
        if (!isfinite(o->mean[c]) || !isfinite(o->std[c]) || o->std[c] == 0)
            return ramc_error(RAMC_ERR_INVALID_ARG, "augment: mean/std of channel %d must be finite, std non-zero", c);
    const struct { const char *name; double v; } probs[] = {
        {"mirror_p", o->mirror_p}, {"crop_p", o->crop_p}, {"blur_p", o->blur_p},
        {"contrast_p", o->contrast_p}, {"noise_per_channel_p", o->noise_per_channel_p},
        {"multiply_per_channel_p", o->multiply_per_channel_p}, {"affine_p", o->affine_p},
        {"hflip_p", o->hflip_p}, {"erasing_p", o->erasing_p}, {"crop_max", o->crop_max}};
    for (size_t i = 0; i < sizeof probs / sizeof probs[0]; i++)
        if (!(probs[i].v >= 0 && probs[i].v <= 1))
            return ramc_error(RAMC_ERR_INVALID_ARG, "augment: %s = %g not in [0, 1]", probs[i].name, probs[i].v);
    if (o->crop_max >= 0.5)
        return ramc_error(RAMC_ERR_INVALID_ARG, "augment: crop_max %g must be below 0.5", o->crop_max);
    const struct { const char *name; double lo, hi, floor; } ranges[] = {
        {"blur_sigma", o->blur_sigma_min, o->blur_sigma_max, 0},
        {"contrast", o->contrast_min, o->contrast_max, 0},
        {"noise_scale", o->noise_scale_min, o->noise_scale_max, 0},
        {"multiply", o->multiply_min, o->multiply_max, 0},
        {"affine_scale", o->affine_scale_min, o->affine_scale_max, 1e-3},
        {"erasing_area", o->erasing_min_area, o->erasing_max_area, 0},
        {"erasing_aspect", o->erasing_min_aspect, o->erasing_max_aspect, 1e-6}};
    for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++)
        if (!(isfinite(ranges[i].lo) && isfinite(ranges[i].hi) && ranges[i].lo >= ranges[i].floor &&
              ranges[i].lo <= ranges[i].hi))
            return ramc_error(RAMC_ERR_INVALID_ARG, "augment: %s range [%g, %g] invalid", ranges[i].name,
                              ranges[i].lo, ranges[i].hi);
    if (!(o->affine_translate_max >= 0 && o->affine_translate_max <= 1) ||
        !(o->affine_rotate_max >= 0 && o->affine_rotate_max <= 180))
        return ramc_error(RAMC_ERR_INVALID_ARG, "augment: affine translate %g / rotate %g out of range",
                          o->affine_translate_max, o->affine_rotate_max);
    if (o->pad < 0 || o->pad > 4096)
        return ramc_error(RAMC_ERR_INVALID_ARG, "augment: pad %d not in 0..4096", o->pad);
    if (o->erasing_attempts < 0 || o->erasing_attempts > 1000)
        return ramc_error(RAMC_ERR_INVALID_ARG, "augment: erasing_attempts %d not in 0..1000",
                          o->erasing_attempts);
    if (o->crop_resize != AUG_CROP_RESIZE_AREA && o->crop_resize != AUG_CROP_RESIZE_BILINEAR)
        return ramc_error(RAMC_ERR_INVALID_ARG, "augment: unknown crop_resize %d", o->crop_resize);
    return RAMC_OK;
}

/* ------------------------------------------------------------ pipeline */

/* One imgaug member. Each draws everything it needs from its own stream:
 * first the Sometimes() coin, then its parameters. */
static ramc_status run_member(int id, ramc_image *img, const ramc_augment_options *o,
                              uint64_t sample_seed, ramc_augment_trace *t) {
    ramc_rng r;
    stream(&r, sample_seed, STREAM_MEMBER0 + id);
    switch (id) {
    case AUG_MEMBER_CROP: {
        if (!o->crop || !(rng_uniform(&r) < o->crop_p)) return RAMC_OK;
        t->applied[id] = 1;
        /* int(round(size * percent)), Python's half-to-even round */
        int W = img->width, H = img->height;
        int trbl[4];
        for (int k = 0; k < 4; k++) {
            double pct = uniform(&r, 0, o->crop_max);
            trbl[k] = (int)nearbyint((k % 2 == 0 ? H : W) * pct);
        }
        /* imgaug's prevent_zero_size: keep at least one row and column */
        while (trbl[0] + trbl[2] >= H) trbl[trbl[0] >= trbl[2] ? 0 : 2]--;
        while (trbl[1] + trbl[3] >= W) trbl[trbl[1] >= trbl[3] ? 1 : 3]--;
        memcpy(t->crop_px, trbl, sizeof trbl);
        return crop_keep_size(img, trbl, o->crop_resize);
    }
    case AUG_MEMBER_BLUR: {
        if (!o->blur || !(rng_uniform(&r) < o->blur_p)) return RAMC_OK;
        t->applied[id] = 1;
        t->blur_sigma = uniform(&r, o->blur_sigma_min, o->blur_sigma_max);
        return gaussian_blur(img, t->blur_sigma);
    }
    case AUG_MEMBER_CONTRAST: {
        if (!o->contrast || !(rng_uniform(&r) < o->contrast_p)) return RAMC_OK;
        t->applied[id] = 1;
        t->contrast_alpha = uniform(&r, o->contrast_min, o->contrast_max);
        linear_contrast(img, t->contrast_alpha, o->contrast_center);
        return RAMC_OK;
    }
    case AUG_MEMBER_NOISE: {
        if (!o->noise) return RAMC_OK;
        t->applied[id] = 1;
        t->noise_per_channel = rng_uniform(&r) < o->noise_per_channel_p;
        t->noise_scale = uniform(&r, o->noise_scale_min, o->noise_scale_max);
        if (t->noise_scale > 0) additive_noise(img, &r, t->noise_scale, t->noise_per_channel);
        return RAMC_OK;
    }
    case AUG_MEMBER_MULTIPLY: {
        if (!o->multiply) return RAMC_OK;
        t->applied[id] = 1;
        t->multiply_per_channel = rng_uniform(&r) < o->multiply_per_channel_p;
        t->multiply[0] = uniform(&r, o->multiply_min, o->multiply_max);
        for (int c = 1; c < 3; c++)
            t->multiply[c] = t->multiply_per_channel ? uniform(&r, o->multiply_min, o->multiply_max)
                                                     : t->multiply[0];
        multiply(img, t->multiply);
        return RAMC_OK;
    }
    case AUG_MEMBER_AFFINE: {
        if (!o->affine || !(rng_uniform(&r) < o->affine_p)) return RAMC_OK;
        t->applied[id] = 1;
        t->affine_scale[0] = uniform(&r, o->affine_scale_min, o->affine_scale_max);
        t->affine_scale[1] = uniform(&r, o->affine_scale_min, o->affine_scale_max);
        t->affine_translate_px[0] =
            uniform(&r, -o->affine_translate_max, o->affine_translate_max) * img->width;
        t->affine_translate_px[1] =
            uniform(&r, -o->affine_translate_max, o->affine_translate_max) * img->height;
        t->affine_rotate_deg = uniform(&r, -o->affine_rotate_max, o->affine_rotate_max);
        return affine(img, t->affine_scale[0], t->affine_scale[1], t->affine_translate_px[0],
                      t->affine_translate_px[1], t->affine_rotate_deg);
    }
    }
    return RAMC_OK;
}

/* timm 0.5.4 RandomErasing(mode='pixel', max_count=1) on the normalised
 * tensor: a rectangle of i.i.d. N(0,1) values in all channels. */
static void random_erasing(float *chw, int S, const ramc_augment_options *o, uint64_t sample_seed,
                           ramc_augment_trace *t) {
    ramc_rng r;
    stream(&r, sample_seed, STREAM_ERASING);
    /* timm: `if random.random() > probability: return` */
    if (rng_uniform(&r) > o->erasing_p) return;
    double area = (double)S * S;
    double la = log(o->erasing_min_aspect), lb = log(o->erasing_max_aspect);
    for (int attempt = 0; attempt < o->erasing_attempts; attempt++) {
        double target = uniform(&r, o->erasing_min_area, o->erasing_max_area) * area;
        double aspect = exp(uniform(&r, la, lb));
        /* Python's round(): half to even, as nearbyint in the default mode */
        int h = (int)nearbyint(sqrt(target * aspect));
        int w = (int)nearbyint(sqrt(target / aspect));
        if (w < S && h < S) {
            int top = randint_incl(&r, S - h), left = randint_incl(&r, S - w);
            for (int c = 0; c < 3; c++)
                for (int y = top; y < top + h; y++)
                    for (int x = left; x < left + w; x++)
                        chw[((size_t)c * S + y) * S + x] = (float)rng_normal(&r);
            t->erased = 1;
            t->erase_top = top, t->erase_left = left, t->erase_h = h, t->erase_w = w;
            return;
        }
    }
}

ramc_status augment_train(const ramc_image *in, const ramc_augment_options *o, uint64_t sample_seed,
                          float *chw, ramc_augment_trace *trace) {
    if (!in || !in->rgb || in->width <= 0 || in->height <= 0 || !chw)
        return ramc_error(RAMC_ERR_INVALID_ARG, "augment: NULL or empty image");
    ramc_status s = augment_check_options(o);
    if (s != RAMC_OK) return s;
    ramc_augment_trace local;
    ramc_augment_trace *t = trace ? trace : &local;
    memset(t, 0, sizeof *t);
    const int S = o->image_size;

    ramc_image img = {in->width, in->height, NULL};
    img.rgb = ramc_malloc((size_t)in->width * in->height * 3, "augment image");
    if (!img.rgb) return RAMC_ERR_NOMEM;
    memcpy(img.rgb, in->rgb, (size_t)in->width * in->height * 3);

    ramc_rng r;
    /* 2. mirror */
    stream(&r, sample_seed, STREAM_MIRROR);
    if (o->mirror && rng_uniform(&r) < o->mirror_p) {
        flip_lr(&img);
        t->mirrored = 1;
    }
    /* 3. imgaug members in a random order (numpy permutation = Fisher-Yates) */
    for (int i = 0; i < AUG_MEMBER_COUNT; i++) t->order[i] = i;
    if (o->random_order) {
        stream(&r, sample_seed, STREAM_ORDER);
        for (int i = AUG_MEMBER_COUNT - 1; i > 0; i--) {
            int j = randint_incl(&r, i), tmp = t->order[i];
            t->order[i] = t->order[j];
            t->order[j] = tmp;
        }
    }
    for (int i = 0; i < AUG_MEMBER_COUNT && s == RAMC_OK; i++)
        s = run_member(t->order[i], &img, o, sample_seed, t);
    /* 4. Resize((S, S), BICUBIC), Pillow-exact */
    ramc_image sized = {0, 0, NULL};
    if (s == RAMC_OK) s = ramc_image_resize(&img, S, S, RAMC_FILTER_BICUBIC, &sized);
    ramc_image_free(&img);
    if (s != RAMC_OK) return ramc_error_prefix(s, "augment");
    /* 5. RandomHorizontalFlip */
    stream(&r, sample_seed, STREAM_HFLIP);
    if (o->hflip && rng_uniform(&r) < o->hflip_p) {
        flip_lr(&sized);
        t->hflipped = 1;
    }
    /* 6-7. Pad(pad, fill 0) + RandomCrop(S): torchvision draws top (i) then
     * left (j). Off: the centre crop, i.e. the image unchanged. */
    t->crop_x = t->crop_y = o->pad;
    if (o->pad_crop && o->pad > 0) {
        stream(&r, sample_seed, STREAM_PADCROP);
        t->crop_y = randint_incl(&r, 2 * o->pad);
        t->crop_x = randint_incl(&r, 2 * o->pad);
        int dx = t->crop_x - o->pad, dy = t->crop_y - o->pad;
        if (dx || dy) {
            uint8_t *dst = ramc_calloc((size_t)S * S * 3, 1, "augment pad crop");
            if (!dst) {
                ramc_image_free(&sized);
                return RAMC_ERR_NOMEM;
            }
            /* output (y, x) = input (y + dy, x + dx), 0 outside */
            for (int y = 0; y < S; y++) {
                int sy = y + dy;
                if (sy < 0 || sy >= S) continue;
                int xa = dx < 0 ? -dx : 0, xb = dx > 0 ? S - dx : S;
                if (xb > xa)
                    memcpy(dst + ((size_t)y * S + xa) * 3, sized.rgb + ((size_t)sy * S + xa + dx) * 3,
                           (size_t)(xb - xa) * 3);
            }
            free(sized.rgb);
            sized.rgb = dst;
        }
    }
    /* 8-9. ToTensor + Normalize */
    s = ramc_image_to_tensor(&sized, o->mean, o->std, chw);
    ramc_image_free(&sized);
    if (s != RAMC_OK) return s;
    /* 10. RandomErasing */
    if (o->erasing) random_erasing(chw, S, o, sample_seed, t);
    return RAMC_OK;
}

ramc_status augment_test(const ramc_image *in, int size, const float mean[3], const float std[3],
                         float *chw) {
    if (!in || !in->rgb || in->width <= 0 || in->height <= 0 || !chw)
        return ramc_error(RAMC_ERR_INVALID_ARG, "test transform: NULL or empty image");
    if (size <= 0) return ramc_error(RAMC_ERR_INVALID_ARG, "test transform: size %d", size);
    ramc_image sized = {0, 0, NULL};
    ramc_status s = ramc_image_resize(in, size, size, RAMC_FILTER_BILINEAR, &sized);
    if (s != RAMC_OK) return s;
    s = ramc_image_to_tensor(&sized, mean, std, chw);
    ramc_image_free(&sized);
    return s;
}
