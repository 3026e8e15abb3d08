/* Explanation pictures: heat maps of patch-grid quantities (a transport-plan
 * column, the LPD marginal) over an image, an overview grid with titles in a
 * tiny built-in bitmap font, and atomic PNG output. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"
#include "image/image.h"

/* ------------------------------------------------------------ colour map */

/* Jet-like ramp (dark blue, blue, cyan, yellow, red, dark red): the usual
 * attention-map look, where high mass reads as "hot". */
static void ramp(float t, float rgb[3]) {
    static const float stops[6][4] = {
        {0.000f, 0.0f, 0.0f, 0.5f}, {0.125f, 0.0f, 0.0f, 1.0f}, {0.375f, 0.0f, 1.0f, 1.0f},
        {0.625f, 1.0f, 1.0f, 0.0f}, {0.875f, 1.0f, 0.0f, 0.0f}, {1.000f, 0.5f, 0.0f, 0.0f},
    };
    if (!(t > 0)) t = 0; /* also NaN */
    if (t > 1) t = 1;
    int k = 0;
    while (k < 4 && t > stops[k + 1][0]) k++;
    float w = (t - stops[k][0]) / (stops[k + 1][0] - stops[k][0]);
    for (int c = 0; c < 3; c++) rgb[c] = stops[k][c + 1] + w * (stops[k + 1][c + 1] - stops[k][c + 1]);
}

static ramc_status alloc_image(ramc_image *img, long long w, long long h, const char *what) {
    ramc_status st = image_check_size(w, h, what);
    if (st != RAMC_OK) return st;
    img->rgb = ramc_malloc((size_t)w * (size_t)h * 3, what);
    if (!img->rgb) return RAMC_ERR_NOMEM;
    img->width = (int)w, img->height = (int)h;
    return RAMC_OK;
}

/* Bilinear sample positions along one axis: output pixel o of n maps to
 * patch coordinate (o + 0.5) * g / n - 0.5 (patch centres, as
 * align_corners=False), clamped to the grid. */
static void axis_weights(int n, int g, int *i0, int *i1, float *w) {
    for (int o = 0; o < n; o++) {
        float s = ((float)o + 0.5f) * (float)g / (float)n - 0.5f;
        if (s < 0) s = 0;
        if (s > (float)(g - 1)) s = (float)(g - 1);
        int a = (int)s;
        i0[o] = a;
        i1[o] = a + 1 < g ? a + 1 : a;
        w[o] = s - (float)a;
    }
}

/* Blends the heat map of `values` into dst (rows of `stride` bytes) over the
 * w x h pixels of src at the same layout. */
static ramc_status blend(const uint8_t *src, uint8_t *dst, int w, int h, size_t src_stride,
                         size_t dst_stride, const float *values, int grid, float alpha) {
    float vmax = 0;
    for (int i = 0; i < grid * grid; i++) {
        if (!isfinite(values[i]) || values[i] < 0)
            return ramc_error(RAMC_ERR_NUMERIC, "heatmap: value %d is not finite and >= 0", i);
        if (values[i] > vmax) vmax = values[i];
    }
    /* each map is scaled by its own maximum: plan columns carry mass 1/C in
     * total, so absolute values would wash out for large label sets */
    const float inv = vmax > 0 ? 1.0f / vmax : 0.0f;
    int *x0 = malloc((size_t)w * sizeof(int)), *x1 = malloc((size_t)w * sizeof(int));
    int *y0 = malloc((size_t)h * sizeof(int)), *y1 = malloc((size_t)h * sizeof(int));
    float *wx = malloc((size_t)w * sizeof(float)), *wy = malloc((size_t)h * sizeof(float));
    ramc_status st = x0 && x1 && y0 && y1 && wx && wy
                         ? RAMC_OK
                         : ramc_error(RAMC_ERR_NOMEM, "heatmap: out of memory");
    if (st == RAMC_OK) {
        axis_weights(w, grid, x0, x1, wx);
        axis_weights(h, grid, y0, y1, wy);
        for (int y = 0; y < h; y++) {
            const float *r0 = values + (size_t)y0[y] * grid, *r1 = values + (size_t)y1[y] * grid;
            for (int x = 0; x < w; x++) {
                float top = r0[x0[x]] + wx[x] * (r0[x1[x]] - r0[x0[x]]);
                float bot = r1[x0[x]] + wx[x] * (r1[x1[x]] - r1[x0[x]]);
                float rgb[3];
                ramp((top + wy[y] * (bot - top)) * inv, rgb);
                const uint8_t *s = src + y * src_stride + (size_t)x * 3;
                uint8_t *d = dst + y * dst_stride + (size_t)x * 3;
                for (int c = 0; c < 3; c++) {
                    float v = (1 - alpha) * (float)s[c] + alpha * 255.0f * rgb[c];
                    d[c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v + 0.5f);
                }
            }
        }
    }
    free(x0), free(x1), free(y0), free(y1), free(wx), free(wy);
    return st;
}

static ramc_status check_args(const ramc_image *image, int grid, float alpha) {
    if (!image || !image->rgb || image->width <= 0 || image->height <= 0)
        return ramc_error(RAMC_ERR_INVALID_ARG, "heatmap: no image");
    if (grid < 1 || grid > 4096) return ramc_error(RAMC_ERR_INVALID_ARG, "heatmap: grid %d", grid);
    if (!(alpha >= 0 && alpha <= 1))
        return ramc_error(RAMC_ERR_INVALID_ARG, "heatmap: alpha must be in [0, 1]");
    return RAMC_OK;
}

ramc_status ramc_heatmap_overlay(const ramc_image *image, const float *values, int grid,
                                 float alpha, ramc_image *out) {
    if (!out) return ramc_error(RAMC_ERR_INVALID_ARG, "heatmap: no output");
    memset(out, 0, sizeof *out);
    ramc_status st = check_args(image, grid, alpha);
    if (st != RAMC_OK) return st;
    if (!values) return ramc_error(RAMC_ERR_INVALID_ARG, "heatmap: no values");
    if ((st = alloc_image(out, image->width, image->height, "heatmap")) != RAMC_OK) return st;
    size_t stride = (size_t)image->width * 3;
    st = blend(image->rgb, out->rgb, image->width, image->height, stride, stride, values, grid, alpha);
    if (st != RAMC_OK) ramc_image_free(out);
    return st;
}

/* ------------------------------------------------------------------ font */

/* 3x5 pixel glyphs, one byte per row (bit 2 = left column). Capitals only:
 * titles are shown upper-case, which keeps the table small and legible. */
static const uint8_t *glyph(int ch) {
    static const struct { char c; uint8_t rows[5]; } font[] = {
        {'A', {2, 5, 7, 5, 5}}, {'B', {6, 5, 6, 5, 6}}, {'C', {3, 4, 4, 4, 3}},
        {'D', {6, 5, 5, 5, 6}}, {'E', {7, 4, 6, 4, 7}}, {'F', {7, 4, 6, 4, 4}},
        {'G', {3, 4, 5, 5, 3}}, {'H', {5, 5, 7, 5, 5}}, {'I', {7, 2, 2, 2, 7}},
        {'J', {1, 1, 1, 5, 2}}, {'K', {5, 5, 6, 5, 5}}, {'L', {4, 4, 4, 4, 7}},
        {'M', {5, 7, 7, 5, 5}}, {'N', {6, 5, 5, 5, 5}}, {'O', {2, 5, 5, 5, 2}},
        {'P', {6, 5, 6, 4, 4}}, {'Q', {2, 5, 5, 6, 3}}, {'R', {6, 5, 6, 5, 5}},
        {'S', {3, 4, 2, 1, 6}}, {'T', {7, 2, 2, 2, 2}}, {'U', {5, 5, 5, 5, 7}},
        {'V', {5, 5, 5, 5, 2}}, {'W', {5, 5, 7, 7, 5}}, {'X', {5, 5, 2, 5, 5}},
        {'Y', {5, 5, 2, 2, 2}}, {'Z', {7, 1, 2, 4, 7}}, {'0', {7, 5, 5, 5, 7}},
        {'1', {2, 6, 2, 2, 7}}, {'2', {6, 1, 2, 4, 7}}, {'3', {6, 1, 2, 1, 6}},
        {'4', {5, 5, 7, 1, 1}}, {'5', {7, 4, 6, 1, 6}}, {'6', {3, 4, 7, 5, 7}},
        {'7', {7, 1, 2, 2, 2}}, {'8', {7, 5, 7, 5, 7}}, {'9', {7, 5, 7, 1, 6}},
        {'.', {0, 0, 0, 0, 2}}, {',', {0, 0, 0, 2, 4}}, {'-', {0, 0, 7, 0, 0}},
        {'_', {0, 0, 0, 0, 7}}, {':', {0, 2, 0, 2, 0}}, {'(', {1, 2, 2, 2, 1}},
        {')', {4, 2, 2, 2, 4}}, {'/', {1, 1, 2, 4, 4}}, {'\'', {2, 2, 0, 0, 0}},
        {'"', {5, 5, 0, 0, 0}}, {'!', {2, 2, 2, 0, 2}}, {'?', {6, 1, 2, 0, 2}},
        {'&', {2, 5, 2, 5, 3}}, {'+', {0, 2, 7, 2, 0}}, {'=', {0, 7, 0, 7, 0}},
        {'%', {5, 1, 2, 4, 5}}, {'#', {5, 7, 5, 7, 5}}, {'*', {5, 2, 7, 2, 5}},
        {' ', {0, 0, 0, 0, 0}},
    };
    if (ch >= 'a' && ch <= 'z') ch -= 'a' - 'A';
    for (size_t i = 0; i < sizeof font / sizeof font[0]; i++)
        if (font[i].c == ch) return font[i].rows;
    return glyph('?');
}

/* Draws text at (x, y) with pixels scaled by `scale`, clipped to max_w
 * pixels of width (ending in ".." when cut). Non-ASCII UTF-8 sequences show
 * as one '?'. */
static void draw_text(uint8_t *rgb, int img_w, int img_h, int x, int y, int scale, int max_w,
                      const char *text) {
    const int adv = 4 * scale;
    int max_chars = max_w / adv;
    if (max_chars <= 0) return;
    char buf[256];
    int n = 0;
    size_t len = strlen(text);
    for (size_t i = 0; i < len && n < (int)sizeof buf - 1; i++) {
        unsigned char c = (unsigned char)text[i];
        if ((c & 0xC0) == 0x80) continue;
        buf[n++] = c < 0x80 && c >= 0x20 ? (char)c : '?';
    }
    buf[n] = 0;
    if (n > max_chars) {
        n = max_chars;
        if (n >= 3) buf[n - 1] = buf[n - 2] = '.';
        buf[n] = 0;
    }
    for (int k = 0; k < n; k++) {
        const uint8_t *g = glyph(buf[k]);
        for (int r = 0; r < 5; r++)
            for (int col = 0; col < 3; col++) {
                if (!(g[r] & (4 >> col))) continue;
                for (int dy = 0; dy < scale; dy++)
                    for (int dx = 0; dx < scale; dx++) {
                        int px = x + k * adv + col * scale + dx, py = y + r * scale + dy;
                        if (px < 0 || py < 0 || px >= img_w || py >= img_h) continue;
                        memset(rgb + ((size_t)py * img_w + px) * 3, 255, 3);
                    }
            }
    }
}

/* -------------------------------------------------------------- overview */

#define OVERVIEW_COLS 5
#define OVERVIEW_GAP 4
#define OVERVIEW_BACKGROUND 40

ramc_status ramc_explain_overview(const ramc_image *image, const char *image_title,
                                  const float *const *maps, const char *const *titles,
                                  int n_maps, int grid, float alpha, ramc_image *out) {
    if (!out) return ramc_error(RAMC_ERR_INVALID_ARG, "overview: no output");
    memset(out, 0, sizeof *out);
    ramc_status st = check_args(image, grid, alpha);
    if (st != RAMC_OK) return st;
    if (n_maps < 0 || n_maps > 10000 || (n_maps > 0 && !maps))
        return ramc_error(RAMC_ERR_INVALID_ARG, "overview: bad map list");
    const int pw = image->width, ph = image->height, panels = 1 + n_maps;
    const int cols = panels < OVERVIEW_COLS ? panels : OVERVIEW_COLS;
    const int rows = (panels + cols - 1) / cols;
    /* the font grows with the panel so titles stay readable at any size */
    const int scale = pw >= 448 ? 4 : pw >= 160 ? 2 : 1;
    const int title_h = 5 * scale + 2 * OVERVIEW_GAP;
    const long long W = (long long)cols * (pw + OVERVIEW_GAP) + OVERVIEW_GAP;
    const long long H = (long long)rows * (ph + title_h) + OVERVIEW_GAP;
    if ((st = alloc_image(out, W, H, "overview")) != RAMC_OK) return st;
    memset(out->rgb, OVERVIEW_BACKGROUND, (size_t)W * (size_t)H * 3);
    const size_t stride = (size_t)W * 3, src_stride = (size_t)pw * 3;
    for (int p = 0; p < panels && st == RAMC_OK; p++) {
        int x = OVERVIEW_GAP + (p % cols) * (pw + OVERVIEW_GAP);
        int y = (p / cols) * (ph + title_h);
        const char *title = p == 0 ? image_title : titles ? titles[p - 1] : NULL;
        if (title) draw_text(out->rgb, (int)W, (int)H, x, y + OVERVIEW_GAP, scale, pw, title);
        uint8_t *dst = out->rgb + (size_t)(y + title_h) * stride + (size_t)x * 3;
        if (p == 0) {
            for (int r = 0; r < ph; r++) memcpy(dst + r * stride, image->rgb + r * src_stride, src_stride);
        } else {
            if (!maps[p - 1]) st = ramc_error(RAMC_ERR_INVALID_ARG, "overview: map %d missing", p);
            else st = blend(image->rgb, dst, pw, ph, src_stride, stride, maps[p - 1], grid, alpha);
        }
    }
    if (st != RAMC_OK) ramc_image_free(out);
    return st;
}

ramc_status ramc_explain_write_png(const ramc_image *image, const char *path) {
    if (!image || !image->rgb || !path)
        return ramc_error(RAMC_ERR_INVALID_ARG, "write_png: no image or path");
    return image_write_png(image, path);
}
