/* The synthetic multi-label world of `ramc synth`; see synth.h and docs/synth.md. */
#include "synth/synth.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <zlib.h>

#include "image/image.h"
#include "io/file.h"

/* ------------------------------------------------------------- catalogues */

/* Saturated, far-apart colours plus white and black. Backgrounds are grey
 * with a faint tint, luminance 95..165 (see render_background), so neither
 * the saturated colours nor white (>= 235) and black (<= 35) can be mistaken
 * for background. The extra colours after the first eight are optional. */
static const struct {
    const char *name;
    uint8_t rgb[3];
} colour_catalog[] = {
    {"red", {215, 35, 35}},     {"green", {35, 165, 55}},   {"blue", {35, 75, 215}},
    {"yellow", {240, 215, 35}}, {"purple", {140, 55, 185}}, {"orange", {245, 135, 25}},
    {"white", {245, 245, 245}}, {"black", {25, 25, 25}},    {"pink", {245, 130, 195}},
    {"cyan", {30, 200, 215}},   {"brown", {125, 70, 30}},
};
#define N_COLOURS ((int)(sizeof colour_catalog / sizeof colour_catalog[0]))

enum { SH_CIRCLE, SH_SQUARE, SH_TRIANGLE, SH_STAR, SH_RING, SH_CROSS, SH_DIAMOND, SH_HEART,
       SH_HEXAGON, N_SHAPES };
/* Hexagon is last and not in the default set: at 14 pixels it is close to a circle. */
static const char *const shape_catalog[N_SHAPES] = {
    "circle", "square", "triangle", "star", "ring", "cross", "diamond", "heart", "hexagon"};

static const char *const texture_names[] = {"plain",   "striped", "shaded",
                                            "checkered", "mottled", "cluttered"};
#define N_TEXTURES 5    /* world v1 */
#define N_TEXTURES_V2 6 /* world v2 adds clutter */

int synth_catalog_colours(void) { return N_COLOURS; }
int synth_catalog_shapes(void) { return N_SHAPES; }
const char *synth_catalog_colour_name(int i) {
    return i >= 0 && i < N_COLOURS ? colour_catalog[i].name : NULL;
}
const char *synth_catalog_shape_name(int i) { return i >= 0 && i < N_SHAPES ? shape_catalog[i] : NULL; }
void synth_catalog_colour_rgb(int i, uint8_t rgb[3]) {
    if (i < 0 || i >= N_COLOURS) i = 0;
    memcpy(rgb, colour_catalog[i].rgb, 3);
}
const char *synth_texture_name(int t) { return t >= 0 && t < N_TEXTURES_V2 ? texture_names[t] : "?"; }

static const char *const split_names[SYNTH_N_SPLITS] = {"pretrain", "train", "test_zsl",
                                                        "test_gzsl"};
const char *synth_split_name(int s) { return s >= 0 && s < SYNTH_N_SPLITS ? split_names[s] : "?"; }

/* ------------------------------------------------------------- vocabulary */

/* Parses a comma-separated list of catalogue names into indices. */
static ramc_status parse_names(const char *list, const char *what, int n_catalog,
                               const char *(*name_of)(int), int max, int *out, int *n_out) {
    *n_out = 0;
    const char *p = list;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        while (len && (*p == ' ' || *p == '\t')) p++, len--;
        while (len && (p[len - 1] == ' ' || p[len - 1] == '\t')) len--;
        int found = -1;
        for (int i = 0; i < n_catalog; i++)
            if (strlen(name_of(i)) == len && !strncmp(name_of(i), p, len)) found = i;
        if (found < 0) {
            char known[512] = "";
            for (int i = 0; i < n_catalog; i++) {
                strncat(known, name_of(i), sizeof known - strlen(known) - 1);
                if (i + 1 < n_catalog) strncat(known, ", ", sizeof known - strlen(known) - 1);
            }
            return ramc_error(RAMC_ERR_INVALID_ARG, "%s: unknown name '%.*s' (known: %s)", what,
                              (int)(len > 64 ? 64 : len), p, known);
        }
        for (int i = 0; i < *n_out; i++)
            if (out[i] == found)
                return ramc_error(RAMC_ERR_INVALID_ARG, "%s: '%s' given twice", what, name_of(found));
        if (*n_out >= max) return ramc_error(RAMC_ERR_LIMIT, "%s: more than %d names", what, max);
        out[(*n_out)++] = found;
        if (!end) break;
        p = end + 1;
    }
    /* A compositional holdout needs a grid: with one colour (or shape) no
     * class could be held out while its words stay seen. */
    if (*n_out < 2) return ramc_error(RAMC_ERR_INVALID_ARG, "%s: at least 2 names are needed", what);
    return RAMC_OK;
}

ramc_status synth_vocab_make(const char *colours, const char *shapes, synth_vocab *out) {
    memset(out, 0, sizeof *out);
    ramc_status s = parse_names(colours && *colours ? colours : "red,green,blue,yellow,purple,orange,white,black",
                                "colours", N_COLOURS, synth_catalog_colour_name, SYNTH_MAX_COLOURS,
                                out->colour, &out->n_colours);
    if (s != RAMC_OK) return s;
    return parse_names(shapes && *shapes ? shapes : "circle,square,triangle,star,ring,cross,diamond,heart",
                       "shapes", N_SHAPES, synth_catalog_shape_name, SYNTH_MAX_SHAPES, out->shape,
                       &out->n_shapes);
}

int synth_vocab_classes(const synth_vocab *v) { return v->n_colours * v->n_shapes; }

void synth_class_name(const synth_vocab *v, int cls, char *buf, size_t size) {
    snprintf(buf, size, "%s %s", colour_catalog[v->colour[cls / v->n_shapes]].name,
             shape_catalog[v->shape[cls % v->n_shapes]]);
}

int synth_class_find(const synth_vocab *v, const char *name) {
    char buf[64];
    for (int c = 0; c < synth_vocab_classes(v); c++) {
        synth_class_name(v, c, buf, sizeof buf);
        if (!strcmp(buf, name)) return c;
    }
    return -1;
}

/* -------------------------------------------------------------- randomness */

static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t synth_image_seed(uint64_t seed, int split, long index) {
    uint64_t h = mix64(seed + 0x9e3779b97f4a7c15ull);
    h = mix64(h ^ ((uint64_t)(split + 1) * 0xd1b54a32d192ed03ull));
    return mix64(h ^ ((uint64_t)(index + 2) * 0x8cb92ba72f3d8dd7ull));
}

/* Uniform integer in [0, n): the top bits times n, so no modulo bias worth
 * mentioning for the small n used here. */
static int rand_below(ramc_rng *r, int n) { return (int)(rng_uniform(r) * n); }
static float rand_range(ramc_rng *r, double lo, double hi) { return (float)(lo + (hi - lo) * rng_uniform(r)); }

static void shuffle(int *a, int n, ramc_rng *r) {
    for (int i = n - 1; i > 0; i--) {
        int j = rand_below(r, i + 1), t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

/* ---------------------------------------------------------------- holdout */

/* Removing class (c, k) keeps its colour and shape seen iff each still has
 * another seen class. */
static int can_hold_out(const synth_vocab *v, const uint8_t *unseen, int c, int k) {
    int row = 0, col = 0;
    for (int j = 0; j < v->n_shapes; j++) row += !unseen[c * v->n_shapes + j];
    for (int i = 0; i < v->n_colours; i++) col += !unseen[i * v->n_shapes + k];
    return row > 1 && col > 1;
}

ramc_status synth_choose_unseen(const synth_vocab *v, uint64_t seed, double fraction,
                                const char *list, uint8_t *is_unseen) {
    int C = v->n_colours, K = v->n_shapes, N = C * K;
    memset(is_unseen, 0, (size_t)N);
    if (list) {
        const char *p = list;
        while (*p) {
            const char *end = strchr(p, ',');
            size_t len = end ? (size_t)(end - p) : strlen(p);
            while (len && *p == ' ') p++, len--;
            while (len && p[len - 1] == ' ') len--;
            char name[64];
            if (len == 0 || len >= sizeof name)
                return ramc_error(RAMC_ERR_INVALID_ARG, "--unseen: empty or overlong label in '%s'", list);
            memcpy(name, p, len);
            name[len] = 0;
            int cls = synth_class_find(v, name);
            if (cls < 0)
                return ramc_error(RAMC_ERR_INVALID_ARG,
                                  "--unseen: '%s' is not a label of the vocabulary (\"colour shape\")", name);
            if (is_unseen[cls]) return ramc_error(RAMC_ERR_INVALID_ARG, "--unseen: '%s' given twice", name);
            if (!can_hold_out(v, is_unseen, cls / K, cls % K))
                return ramc_error(RAMC_ERR_INVALID_ARG,
                                  "--unseen: holding out '%s' too leaves the word '%s' or '%s' in no seen label",
                                  name, colour_catalog[v->colour[cls / K]].name,
                                  shape_catalog[v->shape[cls % K]]);
            is_unseen[cls] = 1;
            if (!end) break;
            p = end + 1;
        }
        int n = 0;
        for (int i = 0; i < N; i++) n += is_unseen[i];
        if (!n) return ramc_error(RAMC_ERR_INVALID_ARG, "--unseen: no label given");
        return RAMC_OK;
    }
    if (!(fraction > 0 && fraction < 1))
        return ramc_error(RAMC_ERR_INVALID_ARG, "--unseen-fraction %g: must be in (0, 1)", fraction);
    int want = (int)lround(fraction * N);
    int most = N - (C > K ? C : K); /* every row and column keeps one seen cell */
    if (want < 1)
        return ramc_error(RAMC_ERR_INVALID_ARG, "--unseen-fraction %g: holds out no label of %d", fraction, N);
    if (want > most)
        return ramc_error(RAMC_ERR_INVALID_ARG,
                          "--unseen-fraction %g: %d of %d labels; at most %d can be held out "
                          "while every colour and shape stays in a seen label",
                          fraction, want, N, most);
    /* Permute rows and columns, then take whole diagonals (i, i + d): each
     * diagonal holds out one class per colour and per shape, like the cells
     * of one symbol in a Latin square, so the holdout is balanced. */
    ramc_rng r;
    rng_seed(&r, synth_image_seed(seed, -1, 0));
    int pc[SYNTH_MAX_COLOURS], pk[SYNTH_MAX_SHAPES];
    for (int i = 0; i < C; i++) pc[i] = i;
    for (int i = 0; i < K; i++) pk[i] = i;
    shuffle(pc, C, &r);
    shuffle(pk, K, &r);
    int L = C > K ? C : K, got = 0;
    for (int d = 0; d < K && got < want; d++)
        for (int i = 0; i < L && got < want; i++) {
            int c = pc[i % C], k = pk[(i + d) % K], cls = c * K + k;
            if (is_unseen[cls] || !can_hold_out(v, is_unseen, c, k)) continue;
            is_unseen[cls] = 1;
            got++;
        }
    if (got < want)
        return ramc_error(RAMC_ERR_INVALID_ARG,
                          "--unseen-fraction %g: only %d of the %d labels asked for could be held out",
                          fraction, got, want);
    return RAMC_OK;
}

/* ------------------------------------------------------------------ scenes */

static void sample_scene_v2(const synth_vocab *v, const synth_scene_spec *spec, long index,
                            ramc_rng *r, synth_scene *out);

void synth_sample_scene(const synth_vocab *v, const synth_scene_spec *spec, long index,
                        ramc_rng *r, synth_scene *out) {
    if (spec->world == 2) {
        sample_scene_v2(v, spec, index, r, out);
        return;
    }
    memset(out, 0, sizeof *out);
    int span = spec->max_objects - spec->min_objects + 1;
    int n = spec->min_objects + rand_below(r, span);
    int first = spec->first[index % spec->n_first];
    /* The others come from the pool, distinct from each other and from the
     * first: a label list never repeats and a caption never names a class twice. */
    int cand[SYNTH_MAX_CLASSES], n_cand = 0;
    for (int i = 0; i < spec->n_pool; i++)
        if (spec->pool[i] != first) cand[n_cand++] = spec->pool[i];
    if (n > n_cand + 1) n = n_cand + 1;
    int cls[SYNTH_MAX_OBJECTS];
    cls[0] = first;
    for (int i = 1; i < n; i++) {
        int j = i - 1 + rand_below(r, n_cand - (i - 1)); /* partial Fisher-Yates */
        int t = cand[i - 1];
        cand[i - 1] = cand[j];
        cand[j] = t;
        cls[i] = cand[i - 1];
    }
    /* Draw order is random, so the required class is not always at the bottom. */
    shuffle(cls, n, r);

    /* Fewer objects, bigger objects: on 64x64, one object spans 26-41 pixels,
     * four span 14-23 (2-3 ViT patches of 8). */
    static const float rmin[] = {0.20f, 0.15f, 0.13f, 0.11f, 0.10f, 0.10f};
    static const float rmax[] = {0.32f, 0.25f, 0.21f, 0.18f, 0.15f, 0.14f};
    float S = (float)spec->size;
    out->texture = rand_below(r, N_TEXTURES);
    out->n = n;
    for (int i = 0; i < n; i++) {
        synth_object *o = &out->obj[i];
        o->cls = cls[i];
        o->colour = cls[i] / v->n_shapes;
        o->shape = cls[i] % v->n_shapes;
        float shrink = 1.0f;
        for (int attempt = 0; attempt < 400; attempt++) {
            if (attempt && attempt % 50 == 0) shrink *= 0.9f;
            o->radius = rand_range(r, rmin[n - 1] * S, rmax[n - 1] * S) * shrink;
            o->cx = rand_range(r, o->radius + 0.5, S - o->radius - 0.5);
            o->cy = rand_range(r, o->radius + 0.5, S - o->radius - 0.5);
            int ok = 1;
            for (int j = 0; j < i && ok; j++) {
                float dx = o->cx - out->obj[j].cx, dy = o->cy - out->obj[j].cy;
                float need = 0.9f * (o->radius + out->obj[j].radius);
                ok = dx * dx + dy * dy >= need * need;
            }
            if (ok) break; /* after 400 failures the last try stands (never seen at <= 6 objects) */
        }
        int kind = o->kind = v->shape[o->shape];
        /* Small tilts only: a square tilted 45 degrees would be a diamond. */
        o->angle = (kind == SH_CIRCLE || kind == SH_RING) ? 0.0f : rand_range(r, -0.26, 0.26);
        const uint8_t *base = colour_catalog[v->colour[o->colour]].rgb;
        for (int ch = 0; ch < 3; ch++) {
            int val = base[ch] + rand_below(r, 21) - 10;
            o->rgb[ch] = (uint8_t)(val < 0 ? 0 : val > 255 ? 255 : val);
        }
    }
}

/* -------------------------------------------------------------- rendering */

static int in_polygon(const float *xy, int n, float u, float v) {
    int in = 0;
    for (int i = 0, j = n - 1; i < n; j = i++) {
        float xi = xy[2 * i], yi = xy[2 * i + 1], xj = xy[2 * j], yj = xy[2 * j + 1];
        if ((yi > v) != (yj > v) && u < (xj - xi) * (v - yi) / (yj - yi) + xi) in = !in;
    }
    return in;
}

/* Polygon vertices in unit coordinates (bounding circle of radius 1, v up),
 * filled once; the values are the same on every run. */
static float tri_xy[6], star_xy[20], hex_xy[12];
static pthread_once_t polygons_once = PTHREAD_ONCE_INIT;
static void make_polygons(void) {
    const double pi = 3.14159265358979323846;
    for (int i = 0; i < 3; i++) {
        double a = pi / 2 + i * 2 * pi / 3;
        /* Lowered a little to centre its visual mass; the corners stay
         * within the bounding circle. */
        tri_xy[2 * i] = (float)(0.95 * cos(a));
        tri_xy[2 * i + 1] = (float)(0.95 * sin(a) - 0.1);
    }
    for (int i = 0; i < 10; i++) {
        double a = pi / 2 + i * pi / 5, rad = i % 2 ? 0.45 : 1.0;
        star_xy[2 * i] = (float)(rad * cos(a));
        star_xy[2 * i + 1] = (float)(rad * sin(a));
    }
    for (int i = 0; i < 6; i++) {
        double a = i * pi / 3;
        hex_xy[2 * i] = (float)(0.92 * cos(a));
        hex_xy[2 * i + 1] = (float)(0.92 * sin(a));
    }
}

/* Whether unit-coordinate point (u, v) lies inside a catalogue shape. Sizes
 * are tuned so that the shapes look about equally big. */
static int shape_inside(int kind, float u, float v) {
    float au = fabsf(u), av = fabsf(v), d2 = u * u + v * v;
    switch (kind) {
    case SH_CIRCLE: return d2 <= 0.85f * 0.85f;
    case SH_SQUARE: return au <= 0.70f && av <= 0.70f;
    case SH_TRIANGLE: return in_polygon(tri_xy, 3, u, v);
    case SH_STAR: return in_polygon(star_xy, 10, u, v);
    /* A thick ring: the hole (radius 0.5) is what sets it apart from a circle. */
    case SH_RING: return d2 <= 0.92f * 0.92f && d2 >= 0.50f * 0.50f;
    case SH_CROSS: return (au <= 0.28f && av <= 0.92f) || (av <= 0.28f && au <= 0.92f);
    /* Taller than wide, so it is never a tilted square. */
    case SH_DIAMOND: return au / 0.66f + av / 0.97f <= 1.0f;
    case SH_HEART: {
        float x = u * 1.2f, y = v * 1.2f + 0.15f, q = x * x + y * y - 1.0f;
        return q * q * q - x * x * y * y * y <= 0.0f;
    }
    case SH_HEXAGON: return in_polygon(hex_xy, 6, u, v);
    default: return 0;
    }
}

/* An object with its rotation precomputed. */
typedef struct {
    const synth_object *o;
    float cos_a, sin_a, inv_r;
} placed;

static float coverage(const placed *p, int px, int py) {
    int hits = 0;
    for (int sy = 0; sy < 4; sy++)
        for (int sx = 0; sx < 4; sx++) {
            float dx = px + (sx + 0.5f) * 0.25f - p->o->cx;
            float up = p->o->cy - (py + (sy + 0.5f) * 0.25f); /* image y points down */
            float u = (dx * p->cos_a + up * p->sin_a) * p->inv_r;
            float v = (-dx * p->sin_a + up * p->cos_a) * p->inv_r;
            hits += shape_inside(p->o->kind, u, v);
        }
    return hits / 16.0f;
}

float synth_object_coverage(const synth_object *o, int px, int py) {
    pthread_once(&polygons_once, make_polygons);
    placed p = {o, cosf(o->angle), sinf(o->angle), 1.0f / o->radius};
    return coverage(&p, px, py);
}

static int clamp255(float x) {
    int v = (int)lrintf(x);
    return v < 0 ? 0 : v > 255 ? 255 : v;
}

/* Low-contrast grey textures: they vary luminance only (the tint is fixed
 * per image), so they never carry an object colour, and none of them draws
 * a closed shape. */
static void render_background(int texture, int size, ramc_rng *r, uint8_t *rgb, float gain) {
    float S = (float)size, scale = S / 64.0f;
    float base = rand_range(r, 105, 155), tint[3];
    for (int c = 0; c < 3; c++) tint[c] = rand_range(r, -12, 12);
    float theta = rand_range(r, 0, 3.14159265f), ct = cosf(theta), st = sinf(theta);
    float amp = 0, period = 1, phase = 0;
    int cell = 1, ox = 0, oy = 0;
    enum { G = 16 };
    float grid[G + 2][G + 2];
    switch (texture) {
    case 1: /* stripes */
        amp = rand_range(r, 8, 16);
        period = rand_range(r, 5, 14) * scale;
        phase = rand_range(r, 0, 6.2831853f);
        break;
    case 2: /* linear gradient across the image */
        amp = rand_range(r, 12, 24);
        break;
    case 3: /* checker */
        amp = rand_range(r, 6, 11);
        cell = (int)(rand_range(r, 4, 10) * scale);
        if (cell < 2) cell = 2;
        ox = rand_below(r, cell);
        oy = rand_below(r, cell);
        break;
    case 4: /* smooth value noise, cells of 8-16 pixels at 64x64 */
        amp = rand_range(r, 10, 18);
        period = rand_range(r, 8, 16) * scale;
        for (int i = 0; i < G + 2; i++)
            for (int j = 0; j < G + 2; j++) grid[i][j] = rand_range(r, -1, 1);
        break;
    default: break;
    }
    amp *= gain; /* 1 in world v1: exact, so v1's bytes are unchanged */
    for (int y = 0; y < size; y++)
        for (int x = 0; x < size; x++) {
            float fx = x + 0.5f, fy = y + 0.5f, t = 0;
            switch (texture) {
            case 1: t = amp * sinf((fx * ct + fy * st) * 6.2831853f / period + phase); break;
            case 2: t = amp * ((fx - S / 2) * ct + (fy - S / 2) * st) / (S / 2); break;
            case 3: t = (((x + ox) / cell + (y + oy) / cell) & 1) ? amp : -amp; break;
            case 4: {
                float gx = fx / period, gy = fy / period;
                int ix = (int)gx, iy = (int)gy;
                if (ix > G) ix = G;
                if (iy > G) iy = G;
                float a = gx - ix, b = gy - iy;
                a = a * a * (3 - 2 * a); /* smoothstep: no visible grid lines */
                b = b * b * (3 - 2 * b);
                t = amp * ((1 - b) * ((1 - a) * grid[iy][ix] + a * grid[iy][ix + 1]) +
                           b * ((1 - a) * grid[iy + 1][ix] + a * grid[iy + 1][ix + 1]));
                break;
            }
            default: break;
            }
            uint8_t *p = rgb + ((size_t)y * size + x) * 3;
            for (int c = 0; c < 3; c++) p[c] = (uint8_t)clamp255(base + tint[c] + t);
        }
}

/* ---------------------------------------------------------------- world v2 */

/* Whether the centre of pixel (px, py) is inside a placed object: one
 * sample, enough to measure how much of an object stays visible. */
static int centre_inside(const placed *p, int px, int py) {
    float dx = px + 0.5f - p->o->cx, up = p->o->cy - (py + 0.5f);
    float u = (dx * p->cos_a + up * p->sin_a) * p->inv_r;
    float w = (-dx * p->sin_a + up * p->cos_a) * p->inv_r;
    return shape_inside(p->o->kind, u, w);
}

static placed place(const synth_object *o) {
    placed p = {o, cosf(o->angle), sinf(o->angle), 1.0f / o->radius};
    return p;
}

float synth_visible_fraction(const synth_scene *sc, int k, int size) {
    pthread_once(&polygons_once, make_polygons);
    if (k < 0 || k >= sc->n) return 0;
    placed pl[SYNTH_MAX_OBJECTS];
    for (int i = k; i < sc->n; i++) pl[i] = place(&sc->obj[i]);
    const synth_object *o = &sc->obj[k];
    int x0 = (int)floorf(o->cx - o->radius), x1 = (int)ceilf(o->cx + o->radius);
    int y0 = (int)floorf(o->cy - o->radius), y1 = (int)ceilf(o->cy + o->radius);
    if (x0 < 0) x0 = 0;
    if (y0 < 0) y0 = 0;
    if (x1 > size - 1) x1 = size - 1;
    if (y1 > size - 1) y1 = size - 1;
    int area = 0, visible = 0;
    for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++) {
            if (!centre_inside(&pl[k], x, y)) continue;
            area++;
            int covered = 0;
            for (int m = k + 1; m < sc->n && !covered; m++) covered = centre_inside(&pl[m], x, y);
            visible += !covered;
        }
    return area ? (float)visible / (float)area : 0.0f;
}

static void jitter_colour(const uint8_t *base, ramc_rng *r, uint8_t *out) {
    for (int ch = 0; ch < 3; ch++) {
        int val = base[ch] + rand_below(r, 21) - 10;
        out[ch] = (uint8_t)(val < 0 ? 0 : val > 255 ? 255 : val);
    }
}

/* Radii (fractions of the side) by object count: at 64x64 the smallest
 * object spans 8 pixels, one ViT patch; a lone object up to 36 pixels.
 * Drawn log-uniformly, so about half the objects of a busy image are small
 * (at most 2x2 patches). */
#define V2_RMIN 0.0625f
static const float v2_rmax[SYNTH_MAX_OBJECTS] = {0.28f, 0.24f, 0.21f, 0.19f,
                                                 0.17f, 0.16f, 0.15f, 0.14f};

static void sample_scene_v2(const synth_vocab *v, const synth_scene_spec *spec, long index,
                            ramc_rng *r, synth_scene *out) {
    memset(out, 0, sizeof *out);
    out->world = 2;
    int span = spec->max_objects - spec->min_objects + 1;
    int n = spec->min_objects + rand_below(r, span);
    int first = spec->first[index % spec->n_first];
    int cand[SYNTH_MAX_CLASSES], n_cand = 0;
    for (int i = 0; i < spec->n_pool; i++)
        if (spec->pool[i] != first) cand[n_cand++] = spec->pool[i];
    if (n > n_cand + 1) n = n_cand + 1;
    int cls[SYNTH_MAX_OBJECTS];
    cls[0] = first;
    for (int i = 1; i < n; i++) {
        int j = i - 1 + rand_below(r, n_cand - (i - 1));
        int t = cand[i - 1];
        cand[i - 1] = cand[j];
        cand[j] = t;
        cls[i] = cand[i - 1];
    }
    shuffle(cls, n, r);

    float S = (float)spec->size, lo = V2_RMIN * S, hi = v2_rmax[n - 1] * S;
    out->texture = rand_below(r, N_TEXTURES_V2);
    int placed_n = 0;
    for (int i = 0; i < n; i++) {
        synth_object *o = &out->obj[placed_n];
        o->cls = cls[i];
        o->colour = cls[i] / v->n_shapes;
        o->shape = cls[i] % v->n_shapes;
        int kind = o->kind = v->shape[o->shape];
        o->angle = (kind == SH_CIRCLE || kind == SH_RING) ? 0.0f : rand_range(r, -0.26, 0.26);
        jitter_colour(colour_catalog[v->colour[o->colour]].rgb, r, o->rgb);
        float shrink = 1.0f;
        int ok = 0;
        for (int attempt = 0; attempt < 400 && !ok; attempt++) {
            if (attempt && attempt % 50 == 0 && shrink > 0.6f) shrink *= 0.9f;
            float top = hi * shrink < lo ? lo : hi * shrink;
            o->radius = lo * powf(top / lo, (float)rng_uniform(r));
            o->cx = rand_range(r, o->radius + 0.5, S - o->radius - 0.5);
            o->cy = rand_range(r, o->radius + 0.5, S - o->radius - 0.5);
            /* Overlap is allowed (occlusion), stacking is not: centres at
             * least half the sum of radii apart, and every object below
             * keeps most of itself visible. */
            ok = 1;
            for (int j = 0; j < placed_n && ok; j++) {
                float dx = o->cx - out->obj[j].cx, dy = o->cy - out->obj[j].cy;
                float need = 0.5f * (o->radius + out->obj[j].radius);
                ok = dx * dx + dy * dy >= need * need;
            }
            out->n = placed_n + 1;
            for (int j = 0; j < placed_n && ok; j++)
                ok = synth_visible_fraction(out, j, spec->size) >= SYNTH_V2_MIN_VISIBLE;
        }
        /* A crowded image drops the object rather than break the visibility
         * promise; the class every image must hold (index 0 of cls before
         * the shuffle) is never dropped, so it keeps its last try. */
        if (ok || cls[i] == first) placed_n++;
        out->n = placed_n;
    }

    /* Distractors: 0-4, half strokes in a vocabulary colour, half grey
     * vocabulary shapes; greys avoid the background's mid-tones and the
     * white and black objects (>= 232, <= 38). */
    out->n_distractors = rand_below(r, SYNTH_MAX_DISTRACTORS + 1);
    for (int d = 0; d < out->n_distractors; d++) {
        synth_distractor *ds = &out->dis[d];
        ds->type = rand_below(r, 2);
        if (ds->type == SYNTH_DISTRACTOR_STROKE) {
            float len = rand_range(r, 0.15, 0.4) * S, a = rand_range(r, 0, 3.14159265f);
            float cx = rand_range(r, 0, S), cy = rand_range(r, 0, S);
            ds->x0 = cx - 0.5f * len * cosf(a), ds->y0 = cy - 0.5f * len * sinf(a);
            ds->x1 = cx + 0.5f * len * cosf(a), ds->y1 = cy + 0.5f * len * sinf(a);
            ds->width = rand_range(r, 0.02, 0.035) * S;
            jitter_colour(colour_catalog[v->colour[rand_below(r, v->n_colours)]].rgb, r, ds->o.rgb);
            ds->o.cls = -1;
        } else {
            synth_object *o = &ds->o;
            o->cls = o->colour = o->shape = -1;
            o->kind = v->shape[rand_below(r, v->n_shapes)];
            o->radius = lo * powf(0.14f * S / lo, (float)rng_uniform(r));
            o->cx = rand_range(r, o->radius + 0.5, S - o->radius - 0.5);
            o->cy = rand_range(r, o->radius + 0.5, S - o->radius - 0.5);
            o->angle = rand_range(r, -0.26, 0.26);
            int g = rand_below(r, 2) ? 160 + rand_below(r, 26) : 60 + rand_below(r, 26);
            o->rgb[0] = o->rgb[1] = o->rgb[2] = (uint8_t)g;
        }
    }
}

static void blend(uint8_t *q, const uint8_t *rgb, float a) {
    for (int c = 0; c < 3; c++) q[c] = (uint8_t)clamp255(q[c] * (1 - a) + rgb[c] * a);
}

static void render_object(const synth_object *o, int size, uint8_t *rgb) {
    placed p = place(o);
    int x0 = (int)floorf(o->cx - o->radius) - 1, x1 = (int)ceilf(o->cx + o->radius) + 1;
    int y0 = (int)floorf(o->cy - o->radius) - 1, y1 = (int)ceilf(o->cy + o->radius) + 1;
    if (x0 < 0) x0 = 0;
    if (y0 < 0) y0 = 0;
    if (x1 > size - 1) x1 = size - 1;
    if (y1 > size - 1) y1 = size - 1;
    for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++) {
            float a = coverage(&p, x, y);
            if (a > 0) blend(rgb + ((size_t)y * size + x) * 3, o->rgb, a);
        }
}

/* Squared distance from (px, py) to the segment (x0, y0)-(x1, y1). */
static float segment_d2(float px, float py, float x0, float y0, float x1, float y1) {
    float dx = x1 - x0, dy = y1 - y0, l2 = dx * dx + dy * dy;
    float t = l2 > 0 ? ((px - x0) * dx + (py - y0) * dy) / l2 : 0;
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    float ex = px - (x0 + t * dx), ey = py - (y0 + t * dy);
    return ex * ex + ey * ey;
}

/* World v2's background (stronger textures, or clutter: thin grey bars over
 * value noise) and its distractors, all under the objects. */
static void render_v2_underlay(const synth_scene *sc, int size, ramc_rng *r, uint8_t *rgb) {
    float S = (float)size;
    int clutter = sc->texture == 5;
    render_background(clutter ? 4 : sc->texture, size, r, rgb, clutter ? 1.0f : 1.7f);
    if (clutter) {
        /* Bars, not blobs: open strokes of grey never read as a closed
         * vocabulary shape. */
        int bars = 10 + rand_below(r, 15);
        for (int b = 0; b < bars; b++) {
            float len = rand_range(r, 0.08, 0.25) * S, a = rand_range(r, 0, 3.14159265f);
            float cx = rand_range(r, 0, S), cy = rand_range(r, 0, S);
            float hw = 0.5f * rand_range(r, 0.03, 0.06) * S;
            float off = rand_range(r, 15, 35) * (rand_below(r, 2) ? 1.0f : -1.0f);
            float x0 = cx - 0.5f * len * cosf(a), y0 = cy - 0.5f * len * sinf(a);
            float x1 = cx + 0.5f * len * cosf(a), y1 = cy + 0.5f * len * sinf(a);
            int bx0 = (int)floorf(fminf(x0, x1) - hw), bx1 = (int)ceilf(fmaxf(x0, x1) + hw);
            int by0 = (int)floorf(fminf(y0, y1) - hw), by1 = (int)ceilf(fmaxf(y0, y1) + hw);
            for (int y = by0 < 0 ? 0 : by0; y <= by1 && y < size; y++)
                for (int x = bx0 < 0 ? 0 : bx0; x <= bx1 && x < size; x++) {
                    if (segment_d2(x + 0.5f, y + 0.5f, x0, y0, x1, y1) > hw * hw) continue;
                    uint8_t *q = rgb + ((size_t)y * size + x) * 3;
                    for (int c = 0; c < 3; c++) q[c] = (uint8_t)clamp255(q[c] + off);
                }
        }
    }
    for (int d = 0; d < sc->n_distractors; d++) {
        const synth_distractor *ds = &sc->dis[d];
        if (ds->type == SYNTH_DISTRACTOR_GREY_SHAPE) {
            render_object(&ds->o, size, rgb);
            continue;
        }
        float hw = 0.5f * ds->width;
        int bx0 = (int)floorf(fminf(ds->x0, ds->x1) - hw) - 1, bx1 = (int)ceilf(fmaxf(ds->x0, ds->x1) + hw) + 1;
        int by0 = (int)floorf(fminf(ds->y0, ds->y1) - hw) - 1, by1 = (int)ceilf(fmaxf(ds->y0, ds->y1) + hw) + 1;
        for (int y = by0 < 0 ? 0 : by0; y <= by1 && y < size; y++)
            for (int x = bx0 < 0 ? 0 : bx0; x <= bx1 && x < size; x++) {
                int hits = 0;
                for (int sy = 0; sy < 4; sy++)
                    for (int sx = 0; sx < 4; sx++)
                        hits += segment_d2(x + (sx + 0.5f) * 0.25f, y + (sy + 0.5f) * 0.25f, ds->x0,
                                           ds->y0, ds->x1, ds->y1) <= hw * hw;
                if (hits) blend(rgb + ((size_t)y * size + x) * 3, ds->o.rgb, hits / 16.0f);
            }
    }
}

void synth_render(const synth_scene *scene, int size, ramc_rng *r, uint8_t *rgb) {
    pthread_once(&polygons_once, make_polygons);
    if (scene->world == 2) render_v2_underlay(scene, size, r, rgb);
    else render_background(scene->texture, size, r, rgb, 1.0f);
    for (int i = 0; i < scene->n; i++) {
        const synth_object *o = &scene->obj[i];
        placed p = {o, cosf(o->angle), sinf(o->angle), 1.0f / o->radius};
        int x0 = (int)floorf(o->cx - o->radius) - 1, x1 = (int)ceilf(o->cx + o->radius) + 1;
        int y0 = (int)floorf(o->cy - o->radius) - 1, y1 = (int)ceilf(o->cy + o->radius) + 1;
        if (x0 < 0) x0 = 0;
        if (y0 < 0) y0 = 0;
        if (x1 > size - 1) x1 = size - 1;
        if (y1 > size - 1) y1 = size - 1;
        for (int y = y0; y <= y1; y++)
            for (int x = x0; x <= x1; x++) {
                float a = coverage(&p, x, y);
                if (a <= 0) continue;
                uint8_t *q = rgb + ((size_t)y * size + x) * 3;
                for (int c = 0; c < 3; c++) q[c] = (uint8_t)clamp255(q[c] * (1 - a) + o->rgb[c] * a);
            }
    }
    /* Mild sensor noise everywhere, +-3 per channel: enough that flat areas
     * are not perfectly flat, far below the gaps between colours. */
    size_t n = (size_t)size * size * 3;
    for (size_t i = 0; i < n; i++) {
        uint64_t bits = rng_next(r);
        rgb[i] = (uint8_t)clamp255((float)rgb[i] + (float)(int)(bits % 7) - 3.0f);
    }
}

/* ---------------------------------------------------------------- captions */

static const char *const count_words[] = {"zero", "one",  "two",   "three", "four",
                                          "five", "six", "seven", "eight"};

/* Appends with truncation; buf stays NUL-terminated. */
static void append(char *buf, size_t size, const char *s) {
    size_t len = strlen(buf);
    if (len + 1 < size) snprintf(buf + len, size - len, "%s", s);
}

static void object_phrase(const synth_vocab *v, const synth_object *o, char *buf, size_t size) {
    const char *col = colour_catalog[v->colour[o->colour]].name;
    /* "an orange star": English article by the first letter of the colour. */
    const char *art = strchr("aeiou", col[0]) ? "an" : "a";
    snprintf(buf, size, "%s %s %s", art, col, shape_catalog[v->shape[o->shape]]);
}

void synth_caption(const synth_vocab *v, const synth_scene *scene, ramc_rng *r, char *buf,
                   size_t size) {
    int order[SYNTH_MAX_OBJECTS], n = scene->n;
    for (int i = 0; i < n; i++) order[i] = i;
    shuffle(order, n, r); /* the caption order is unrelated to position or depth */
    char phrase[SYNTH_MAX_OBJECTS][64];
    for (int i = 0; i < n; i++) object_phrase(v, &scene->obj[order[i]], phrase[i], sizeof phrase[i]);
    /* "X", "X and Y", "X, Y and Z" */
    char list_and[SYNTH_MAX_CAPTION] = "", list_comma[SYNTH_MAX_CAPTION] = "";
    for (int i = 0; i < n; i++) {
        if (i) append(list_and, sizeof list_and, i == n - 1 ? " and " : ", ");
        append(list_and, sizeof list_and, phrase[i]);
        if (i) append(list_comma, sizeof list_comma, ", ");
        append(list_comma, sizeof list_comma, phrase[i]);
    }
    buf[0] = 0;
    switch (rand_below(r, 8)) {
    case 0: snprintf(buf, size, "%s", list_and); break;
    case 1: snprintf(buf, size, "a photo of %s", list_and); break;
    case 2: snprintf(buf, size, "an image of %s", list_and); break;
    case 3:
        snprintf(buf, size, "%s object%s: %s", count_words[n], n > 1 ? "s" : "", list_comma);
        break;
    case 4: snprintf(buf, size, "there is %s", list_and); break;
    case 5: snprintf(buf, size, "a picture showing %s", list_and); break;
    case 6:
        snprintf(buf, size, "%s on a %s background", list_and, texture_names[scene->texture]);
        break;
    default: snprintf(buf, size, "a synthetic scene with %s", list_and); break;
    }
}

/* ---------------------------------------------------------------- datasets */

synth_options synth_world_options(int world) {
    synth_options o;
    memset(&o, 0, sizeof o);
    o.world = world == 1 ? 1 : 2;
    o.seed = 0;
    o.size = 64;
    o.n_pretrain = 20000;
    o.n_train = 8000;
    o.n_test = 2000;
    o.min_objects = 1;
    o.max_objects = o.world == 1 ? 4 : 8;
    o.unseen_fraction = 0.25; /* COCO holds out 17 of 65 */
    if (o.world == 2) {
        /* An unseen label is an unseen combination everywhere, captions
         * included: zero-shot needs composition, not memory. */
        o.strict_pretrain = 1;
        o.pretrain_max_objects = 4;
    }
    return o;
}

synth_options synth_default_options(void) { return synth_world_options(2); }

ramc_status synth_check_options(const synth_options *o) {
    if (o->world != 1 && o->world != 2)
        return ramc_error(RAMC_ERR_INVALID_ARG, "--world %d: must be v1 or v2", o->world);
    int most = o->world == 1 ? SYNTH_MAX_OBJECTS_V1 : SYNTH_MAX_OBJECTS;
    if (o->size < SYNTH_MIN_SIZE || o->size > SYNTH_MAX_SIZE)
        return ramc_error(RAMC_ERR_LIMIT, "--size %d: must be between %d and %d", o->size,
                          SYNTH_MIN_SIZE, SYNTH_MAX_SIZE);
    const struct {
        const char *name;
        long n;
    } counts[] = {{"--pretrain", o->n_pretrain}, {"--train", o->n_train}, {"--test", o->n_test}};
    for (int i = 0; i < 3; i++)
        if (counts[i].n < 0 || counts[i].n > SYNTH_MAX_IMAGES)
            return ramc_error(RAMC_ERR_LIMIT, "%s %ld: must be between 0 and %d", counts[i].name,
                              counts[i].n, SYNTH_MAX_IMAGES);
    if (o->min_objects < 1 || o->min_objects > most)
        return ramc_error(RAMC_ERR_LIMIT, "--min-objects %d: must be between 1 and %d (world v%d)",
                          o->min_objects, most, o->world);
    if (o->max_objects < o->min_objects || o->max_objects > most)
        return ramc_error(RAMC_ERR_LIMIT,
                          "--max-objects %d: must be between --min-objects (%d) and %d (world v%d)",
                          o->max_objects, o->min_objects, most, o->world);
    if (o->pretrain_max_objects &&
        (o->pretrain_max_objects < o->min_objects || o->pretrain_max_objects > most))
        return ramc_error(RAMC_ERR_LIMIT,
                          "--pretrain-max-objects %d: must be between --min-objects (%d) and %d (world v%d)",
                          o->pretrain_max_objects, o->min_objects, most, o->world);
    if (o->threads < 0 || o->threads > 256)
        return ramc_error(RAMC_ERR_LIMIT, "--threads %d: must be between 0 and 256", o->threads);
    return RAMC_OK;
}

/* One generated image's record, kept for the text files. */
typedef struct {
    synth_scene scene;
    char caption[SYNTH_MAX_CAPTION];
} record;

typedef struct {
    const synth_plan *plan;
    const synth_options *opt;
    const char *dir;
    int split;
    long n;
    record *rec;
    atomic_long next, done;
    atomic_int failed;
    pthread_mutex_t lock;
    ramc_status status;
    char message[1024];
} job;

static void image_rel_path(int split, long i, char *buf, size_t size) {
    snprintf(buf, size, "images/%s/%06ld.png", split_names[split], i);
}

/* A PNG encoder tuned for many small images. image_write_png uses zlib's
 * default level and libpng's adaptive filters (about 1.1 ms per 64x64 image
 * here, 80% of the generation time); level 1 with the Sub filter on every
 * row is 4-5x faster and the files barely grow, since the pixel noise makes
 * them nearly incompressible anyway. The output depends only on the pixels
 * and zlib's deterministic deflate, so it is byte-reproducible. */
static void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Appends one chunk (length, type, data, CRC over type and data). */
static size_t put_chunk(uint8_t *out, const char *type, const uint8_t *data, uint32_t len) {
    put_be32(out, len);
    memcpy(out + 4, type, 4);
    if (len) memmove(out + 8, data, len);
    uLong crc = crc32(0L, out + 4, 4 + len);
    put_be32(out + 8 + len, (uint32_t)crc);
    return 12 + (size_t)len;
}

/* Encodes size x size RGB into `out` (capacity `cap`), returning the byte
 * count, or 0 if zlib fails or the buffer is too small. `scratch` holds
 * size * (3 * size + 1) bytes of filtered rows. */
static size_t encode_png(const uint8_t *rgb, int size, uint8_t *scratch, uint8_t *out, size_t cap) {
    size_t stride = (size_t)size * 3, raw = (size_t)size * (stride + 1);
    for (int y = 0; y < size; y++) {
        const uint8_t *row = rgb + (size_t)y * stride;
        uint8_t *f = scratch + (size_t)y * (stride + 1);
        f[0] = 1; /* Sub: each byte minus the byte one pixel to the left */
        for (size_t i = 0; i < stride; i++) f[1 + i] = (uint8_t)(row[i] - (i >= 3 ? row[i - 3] : 0));
    }
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (cap < 8 + 25 + 12 + 12) return 0;
    size_t pos = 0;
    memcpy(out, sig, 8);
    pos = 8;
    uint8_t ihdr[13];
    put_be32(ihdr, (uint32_t)size);
    put_be32(ihdr + 4, (uint32_t)size);
    ihdr[8] = 8;  /* bit depth */
    ihdr[9] = 2;  /* colour type RGB */
    ihdr[10] = 0; /* deflate */
    ihdr[11] = 0; /* adaptive filtering (per-row filter bytes) */
    ihdr[12] = 0; /* no interlace */
    pos += put_chunk(out + pos, "IHDR", ihdr, 13);
    /* Deflate straight into the IDAT chunk's data area. */
    uLongf zlen = (uLongf)(cap - pos - 12 - 12);
    if (compress2(out + pos + 8, &zlen, scratch, (uLong)raw, 1) != Z_OK) return 0;
    pos += put_chunk(out + pos, "IDAT", out + pos + 8, (uint32_t)zlen);
    pos += put_chunk(out + pos, "IEND", NULL, 0);
    return pos;
}

/* Generates images until none is left; on the calling thread it also
 * reports progress, so the callback never runs concurrently. */
static void run_job(job *jb, int reporting) {
    int S = jb->opt->size;
    size_t raw = (size_t)S * (3 * (size_t)S + 1);
    size_t cap = raw + raw / 100 + 1024; /* deflate's worst case plus chunks */
    uint8_t *rgb = malloc((size_t)S * S * 3), *scratch = malloc(raw), *png = malloc(cap);
    size_t dlen = strlen(jb->dir);
    char *path = malloc(dlen + 64);
    if (!rgb || !path || !scratch || !png) {
        pthread_mutex_lock(&jb->lock);
        if (!atomic_load(&jb->failed)) {
            jb->status = RAMC_ERR_NOMEM;
            snprintf(jb->message, sizeof jb->message, "out of memory for an image buffer");
        }
        atomic_store(&jb->failed, 1);
        pthread_mutex_unlock(&jb->lock);
        free(rgb);
        free(path);
        free(scratch);
        free(png);
        return;
    }
    long report_every = jb->n / 100 > 50 ? jb->n / 100 : 50;
    long last_report = 0;
    for (;;) {
        long i = atomic_fetch_add(&jb->next, 1);
        if (i >= jb->n || atomic_load(&jb->failed)) break;
        record *rec = &jb->rec[i];
        synth_example(jb->plan, jb->split, i, &rec->scene, rgb, rec->caption, sizeof rec->caption);
        memcpy(path, jb->dir, dlen);
        path[dlen] = '/';
        image_rel_path(jb->split, i, path + dlen + 1, 62);
        size_t len = encode_png(rgb, S, scratch, png, cap);
        /* no fsync per image (it doubled the run time for 20k files); the text
         * files, manifest.json last, are written durably */
        ramc_status s = len ? file_write_replace(path, png, len, 0)
                            : ramc_error(RAMC_ERR_FORMAT, "%s: PNG encoding failed", path);
        if (s != RAMC_OK) {
            /* ramc_error's message is per thread: carry it to the caller. */
            pthread_mutex_lock(&jb->lock);
            if (!atomic_load(&jb->failed)) {
                jb->status = s;
                snprintf(jb->message, sizeof jb->message, "%s", ramc_last_error());
            }
            atomic_store(&jb->failed, 1);
            pthread_mutex_unlock(&jb->lock);
            break;
        }
        long done = atomic_fetch_add(&jb->done, 1) + 1;
        if (reporting && jb->opt->progress && done - last_report >= report_every) {
            last_report = done;
            jb->opt->progress(split_names[jb->split], done, jb->n, jb->opt->user);
        }
    }
    free(rgb);
    free(path);
    free(scratch);
    free(png);
}

static void *worker_main(void *arg) {
    run_job(arg, 0);
    return NULL;
}

static int thread_count(const synth_options *o) {
    if (o->threads > 0) return o->threads;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 16 ? 16 : (int)n;
}

static ramc_status generate_split(const char *dir, const synth_plan *p, int split, record *rec) {
    const synth_options *o = &p->opt;
    long n = p->count[split];
    job jb;
    memset(&jb, 0, sizeof jb);
    jb.plan = p;
    jb.opt = o;
    jb.dir = dir;
    jb.split = split;
    jb.n = n;
    jb.rec = rec;
    atomic_init(&jb.next, 0);
    atomic_init(&jb.done, 0);
    atomic_init(&jb.failed, 0);
    pthread_mutex_init(&jb.lock, NULL);
    int T = thread_count(o);
    if (T > n) T = n > 0 ? (int)n : 1;
    pthread_t tid[256];
    int started = 0;
    for (int t = 1; t < T; t++) {
        if (pthread_create(&tid[started], NULL, worker_main, &jb) != 0) break; /* fewer threads is fine */
        started++;
    }
    run_job(&jb, 1);
    for (int t = 0; t < started; t++) pthread_join(tid[t], NULL);
    pthread_mutex_destroy(&jb.lock);
    if (atomic_load(&jb.failed)) return ramc_error(jb.status, "%s", jb.message);
    if (o->progress) o->progress(split_names[split], n, n, o->user);
    return RAMC_OK;
}

/* A growable text buffer; `failed` latches out-of-memory. */
typedef struct {
    char *p;
    size_t len, cap;
    int failed;
} text;

static void put(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(text *t, const char *fmt, ...) {
    if (t->failed) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->p ? t->p + t->len : NULL, t->p ? t->cap - t->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->failed = 1;
            return;
        }
        if (t->p && (size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = t->cap ? t->cap : 4096;
        while (cap - t->len <= (size_t)n) cap *= 2;
        char *grown = realloc(t->p, cap);
        if (!grown) {
            t->failed = 1;
            return;
        }
        t->p = grown;
        t->cap = cap;
    }
}

static ramc_status write_text(const char *dir, const char *name, text *t) {
    ramc_status s;
    char *path = malloc(strlen(dir) + strlen(name) + 2);
    if (t->failed || !path) {
        s = ramc_error(RAMC_ERR_NOMEM, "%s/%s: out of memory", dir, name);
    } else {
        sprintf(path, "%s/%s", dir, name);
        s = file_write_atomic(path, t->p ? t->p : "", t->len);
    }
    free(path);
    free(t->p);
    memset(t, 0, sizeof *t);
    return s;
}

static int cmp_name(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Class names sorted in byte order (the official sorted()): the label order
 * of the JSON "classes" fields and the .txt class lists. */
typedef struct {
    int n;
    char names[SYNTH_MAX_CLASSES][48];
    const char *sorted[SYNTH_MAX_CLASSES];
} name_table;

static void class_subset(const synth_vocab *v, const uint8_t *is_unseen, int want_unseen, int all,
                         name_table *t) {
    t->n = 0;
    for (int c = 0; c < synth_vocab_classes(v); c++)
        if (all || is_unseen[c] == want_unseen) {
            synth_class_name(v, c, t->names[t->n], sizeof t->names[t->n]);
            t->sorted[t->n] = t->names[t->n];
            t->n++;
        }
    qsort(t->sorted, (size_t)t->n, sizeof t->sorted[0], cmp_name);
}

static void put_list(text *t, const name_table *nt) {
    for (int i = 0; i < nt->n; i++) put(t, "%s\n", nt->sorted[i]);
}

/* The official JSON format: {"images": [[path, [labels]], ...], "classes": [...]}.
 * One image per line keeps the file diffable. Names are plain ASCII words
 * from the catalogues, so no escaping is needed. */
static void put_dataset_json(text *t, const synth_vocab *v, int split, const record *rec, long n,
                             const uint8_t *keep, const name_table *classes) {
    put(t, "{\"images\": [");
    char name[48], path[64];
    for (long i = 0; i < n; i++) {
        image_rel_path(split, i, path, sizeof path);
        put(t, "%s\n  [\"%s\", [", i ? "," : "", path);
        int first = 1;
        for (int k = 0; k < rec[i].scene.n; k++) {
            if (!keep[rec[i].scene.obj[k].cls]) continue;
            synth_class_name(v, rec[i].scene.obj[k].cls, name, sizeof name);
            put(t, "%s\"%s\"", first ? "" : ", ", name);
            first = 0;
        }
        put(t, "]]");
    }
    put(t, "\n],\n\"classes\": [");
    for (int i = 0; i < classes->n; i++) put(t, "%s\"%s\"", i ? ", " : "", classes->sorted[i]);
    put(t, "]}\n");
}

/* objects.jsonl: one line per image of every split, with each object's label,
 * centre and bounding radius in pixels and whether the split's labels name it
 * (unseen objects of a training-free split are drawn but not labelled). It is
 * what a size-resolved evaluation needs (scripts/clip_probe.py reports top-1
 * by object size from it); the dataset files themselves stay in the official
 * format. */
static void put_objects_jsonl(text *t, const synth_vocab *v, int split, const record *rec, long n,
                              const uint8_t *keep) {
    char name[48], path[64];
    for (long i = 0; i < n; i++) {
        image_rel_path(split, i, path, sizeof path);
        put(t, "{\"split\": \"%s\", \"image\": \"%s\", \"objects\": [", split_names[split], path);
        for (int k = 0; k < rec[i].scene.n; k++) {
            const synth_object *o = &rec[i].scene.obj[k];
            synth_class_name(v, o->cls, name, sizeof name);
            put(t, "%s{\"label\": \"%s\", \"cx\": %.2f, \"cy\": %.2f, \"radius\": %.2f, \"labelled\": %s}",
                k ? ", " : "", name, o->cx, o->cy, o->radius, keep[o->cls] ? "true" : "false");
        }
        put(t, "]}\n");
    }
}

static int is_empty_dir(const char *dir, int *empty) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    struct dirent *e;
    *empty = 1;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            *empty = 0;
            break;
        }
    closedir(d);
    return 0;
}

static ramc_status make_dir(const char *path) {
    if (mkdir(path, 0777) == 0 || errno == EEXIST) {
        struct stat st;
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) return RAMC_OK;
        return ramc_error(RAMC_ERR_IO, "%s: exists and is not a folder", path);
    }
    return ramc_error(RAMC_ERR_IO, "%s: cannot create the folder: %s", path, strerror(errno));
}

static ramc_status prepare_dir(const char *dir, int force) {
    struct stat st;
    if (stat(dir, &st) == 0) {
        if (!S_ISDIR(st.st_mode)) return ramc_error(RAMC_ERR_IO, "%s: exists and is not a folder", dir);
        int empty = 1;
        if (is_empty_dir(dir, &empty) != 0)
            return ramc_error(RAMC_ERR_IO, "%s: cannot list the folder: %s", dir, strerror(errno));
        if (!empty && !force)
            return ramc_error(RAMC_ERR_INVALID_ARG,
                              "%s: the folder is not empty (use --force to write into it anyway)", dir);
        return RAMC_OK;
    }
    /* Create missing parents too, like mkdir -p. */
    size_t n = strlen(dir);
    char *p = malloc(n + 1);
    if (!p) return ramc_error(RAMC_ERR_NOMEM, "%s: out of memory", dir);
    memcpy(p, dir, n + 1);
    ramc_status s = RAMC_OK;
    for (size_t i = 1; i <= n && s == RAMC_OK; i++)
        if (p[i] == '/' || p[i] == 0) {
            char keep = p[i];
            p[i] = 0;
            if (i == n || p[i + 1] != '/') s = make_dir(p);
            p[i] = keep;
        }
    free(p);
    return s;
}

static cJSON *json_names(const name_table *t) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < t->n; i++) cJSON_AddItemToArray(a, cJSON_CreateString(t->sorted[i]));
    return a;
}

static ramc_status write_manifest(const char *dir, const synth_options *o, const synth_vocab *v,
                                  const name_table *all, const name_table *seen,
                                  const name_table *unseen, const long *counts, record *const *rec,
                                  const uint8_t *is_unseen) {
    cJSON *m = cJSON_CreateObject();
    if (!m) return ramc_error(RAMC_ERR_NOMEM, "%s/manifest.json: out of memory", dir);
    int v2 = o->world == 2;
    cJSON_AddStringToObject(m, "generator", v2 ? SYNTH_VERSION_V2 : SYNTH_VERSION);
    /* v1's manifest keeps its old bytes: the new fields are v2's only. */
    if (v2) cJSON_AddStringToObject(m, "world", "v2");
    /* JSON numbers are doubles: a seed beyond 2^53 is kept exact as a string. */
    if (o->seed <= (1ull << 53)) cJSON_AddNumberToObject(m, "seed", (double)o->seed);
    else {
        char buf[32];
        snprintf(buf, sizeof buf, "%llu", (unsigned long long)o->seed);
        cJSON_AddStringToObject(m, "seed", buf);
    }
    cJSON_AddNumberToObject(m, "size", o->size);
    cJSON_AddNumberToObject(m, "min_objects", o->min_objects);
    cJSON_AddNumberToObject(m, "max_objects", o->max_objects);
    if (v2) cJSON_AddNumberToObject(m, "pretrain_max_objects",
                                    o->pretrain_max_objects ? o->pretrain_max_objects : o->max_objects);
    cJSON_AddBoolToObject(m, "strict_pretrain", o->strict_pretrain);
    cJSON *cnt = cJSON_AddObjectToObject(m, "counts");
    for (int s = 0; s < SYNTH_N_SPLITS; s++) cJSON_AddNumberToObject(cnt, split_names[s], (double)counts[s]);

    cJSON *voc = cJSON_AddObjectToObject(m, "vocabulary");
    cJSON *cols = cJSON_AddArrayToObject(voc, "colours");
    for (int i = 0; i < v->n_colours; i++) {
        cJSON *c = cJSON_CreateObject();
        cJSON_AddStringToObject(c, "name", colour_catalog[v->colour[i]].name);
        const uint8_t *rgb = colour_catalog[v->colour[i]].rgb;
        int irgb[3] = {rgb[0], rgb[1], rgb[2]};
        cJSON_AddItemToObject(c, "rgb", cJSON_CreateIntArray(irgb, 3));
        cJSON_AddItemToArray(cols, c);
    }
    cJSON *shp = cJSON_AddArrayToObject(voc, "shapes");
    for (int i = 0; i < v->n_shapes; i++)
        cJSON_AddItemToArray(shp, cJSON_CreateString(shape_catalog[v->shape[i]]));
    cJSON_AddItemToObject(voc, "textures",
                          cJSON_CreateStringArray(texture_names, v2 ? N_TEXTURES_V2 : N_TEXTURES));
    if (v2) {
        cJSON_AddStringToObject(voc, "distractors",
                                "0-4 per image, never labelled or captioned: strokes in a vocabulary "
                                "colour, vocabulary shapes in grey");
        char buf[160];
        snprintf(buf, sizeof buf,
                 "radius %.4g-%.4g x size, log-uniform (%d objects: at most %.4g); each keeps >= %g visible",
                 V2_RMIN, v2_rmax[0], SYNTH_MAX_OBJECTS, v2_rmax[SYNTH_MAX_OBJECTS - 1],
                 SYNTH_V2_MIN_VISIBLE);
        cJSON_AddStringToObject(voc, "object_sizes", buf);
    }
    cJSON_AddStringToObject(voc, "label_form", "colour shape");

    cJSON_AddItemToObject(m, "classes", json_names(all));
    cJSON_AddItemToObject(m, "seen", json_names(seen));
    cJSON_AddItemToObject(m, "unseen", json_names(unseen));
    if (o->unseen_list) cJSON_AddStringToObject(m, "unseen_rule", "given list (--unseen)");
    else {
        char buf[160];
        snprintf(buf, sizeof buf,
                 "fraction %g: seeded Latin-square diagonals of the colour x shape grid", o->unseen_fraction);
        cJSON_AddStringToObject(m, "unseen_rule", buf);
    }

    static const char *const files[SYNTH_N_SPLITS] = {"pretrain.tsv", "train.json", "test_zsl.json",
                                                      "test_gzsl.json"};
    const char *drawn[SYNTH_N_SPLITS] = {
        o->strict_pretrain ? "seen classes only" : "all classes (seen and unseen)", "seen classes only",
        "at least one unseen class per image; other objects from all classes",
        "all classes"};
    static const char *const labels[SYNTH_N_SPLITS] = {
        "caption naming every object", "seen classes (all objects)",
        "unseen classes only (seen objects are present but unlabelled)", "all classes"};
    cJSON *splits = cJSON_AddObjectToObject(m, "splits");
    char name[48];
    for (int s = 0; s < SYNTH_N_SPLITS; s++) {
        cJSON *sp = cJSON_AddObjectToObject(splits, split_names[s]);
        cJSON_AddStringToObject(sp, "file", files[s]);
        char folder[48];
        snprintf(folder, sizeof folder, "images/%s", split_names[s]);
        cJSON_AddStringToObject(sp, "images", folder);
        cJSON_AddNumberToObject(sp, "count", (double)counts[s]);
        cJSON_AddStringToObject(sp, "objects_from", drawn[s]);
        cJSON_AddStringToObject(sp, "labels", labels[s]);
        /* How often each class is drawn: the evidence that the split keeps
         * its promise (no unseen class in train, every one in test_zsl). */
        cJSON *lc = cJSON_AddObjectToObject(sp, "objects_per_class");
        long per[SYNTH_MAX_CLASSES] = {0};
        for (long i = 0; i < counts[s]; i++)
            for (int k = 0; k < rec[s][i].scene.n; k++) per[rec[s][i].scene.obj[k].cls]++;
        for (int c = 0; c < synth_vocab_classes(v); c++) {
            synth_class_name(v, c, name, sizeof name);
            cJSON_AddNumberToObject(lc, name, (double)per[c]);
        }
        (void)is_unseen;
    }
    char *textout = cJSON_Print(m);
    cJSON_Delete(m);
    if (!textout) return ramc_error(RAMC_ERR_NOMEM, "%s/manifest.json: out of memory", dir);
    text t = {textout, strlen(textout), strlen(textout) + 1, 0};
    put(&t, "\n");
    /* cJSON's buffer came from malloc, so write_text can free it. */
    return write_text(dir, "manifest.json", &t);
}

ramc_status synth_plan_make(const synth_options *o, synth_plan *p) {
    memset(p, 0, sizeof *p);
    ramc_status s = synth_check_options(o);
    if (s != RAMC_OK) return s;
    p->opt = *o;
    p->opt.progress = NULL;
    p->opt.user = NULL;
    synth_vocab *v = &p->vocab;
    if ((s = synth_vocab_make(o->colours, o->shapes, v)) != RAMC_OK) return s;
    int N = synth_vocab_classes(v);
    if ((s = synth_choose_unseen(v, o->seed, o->unseen_fraction, o->unseen_list, p->is_unseen)) != RAMC_OK)
        return s;
    int all[SYNTH_MAX_CLASSES], seen[SYNTH_MAX_CLASSES], unseen[SYNTH_MAX_CLASSES];
    for (int c = 0; c < N; c++) {
        all[c] = c;
        if (p->is_unseen[c]) unseen[p->n_unseen++] = c;
        else seen[p->n_seen++] = c;
    }
    if (o->min_objects > p->n_seen)
        return ramc_error(RAMC_ERR_INVALID_ARG,
                          "--min-objects %d: images of seen classes only cannot hold that many "
                          "distinct objects (%d seen classes)", o->min_objects, p->n_seen);
    /* Per split: which classes come first (cycled, so each occurs once the
     * split has that many images) and which fill the rest. */
    const int *src_first[SYNTH_N_SPLITS] = {o->strict_pretrain ? seen : all, seen, unseen, all};
    int n_src_first[SYNTH_N_SPLITS] = {o->strict_pretrain ? p->n_seen : N, p->n_seen, p->n_unseen, N};
    const int *src_pool[SYNTH_N_SPLITS] = {o->strict_pretrain ? seen : all, seen, all, all};
    int n_src_pool[SYNTH_N_SPLITS] = {o->strict_pretrain ? p->n_seen : N, p->n_seen, N, N};
    long counts[SYNTH_N_SPLITS] = {o->n_pretrain, o->n_train, o->n_test, o->n_test};
    for (int sp = 0; sp < SYNTH_N_SPLITS; sp++) {
        p->count[sp] = counts[sp];
        p->n_first[sp] = n_src_first[sp];
        memcpy(p->first[sp], src_first[sp], sizeof(int) * (size_t)n_src_first[sp]);
        p->n_pool[sp] = n_src_pool[sp];
        memcpy(p->pool[sp], src_pool[sp], sizeof(int) * (size_t)n_src_pool[sp]);
        ramc_rng r;
        rng_seed(&r, synth_image_seed(o->seed, sp, -1));
        shuffle(p->first[sp], p->n_first[sp], &r);
    }
    return RAMC_OK;
}

void synth_example(const synth_plan *p, int split, long index, synth_scene *scene, uint8_t *rgb,
                   char *caption, size_t caption_size) {
    int most = p->opt.max_objects;
    if (split == SYNTH_SPLIT_PRETRAIN && p->opt.pretrain_max_objects) most = p->opt.pretrain_max_objects;
    synth_scene_spec spec = {p->first[split], p->n_first[split], p->pool[split], p->n_pool[split],
                             p->opt.min_objects, most, p->opt.size, p->opt.world};
    ramc_rng r;
    rng_seed(&r, synth_image_seed(p->opt.seed, split, index));
    synth_sample_scene(&p->vocab, &spec, index, &r, scene);
    /* The caption draws from its own stream, so rendering or not (rgb NULL)
     * gives the same caption. */
    ramc_rng rc;
    rng_seed(&rc, synth_image_seed(p->opt.seed ^ 0x5bd1e995u, split, index));
    if (rgb) synth_render(scene, p->opt.size, &r, rgb);
    if (caption) synth_caption(&p->vocab, scene, &rc, caption, caption_size);
}

ramc_status synth_generate(const char *dir, const synth_options *o) {
    if (!dir || !*dir) return ramc_error(RAMC_ERR_INVALID_ARG, "no output folder given");
    synth_plan *plan = malloc(sizeof *plan);
    if (!plan) return ramc_error(RAMC_ERR_NOMEM, "%s: out of memory", dir);
    ramc_status s = synth_plan_make(o, plan);
    if (s == RAMC_OK) s = prepare_dir(dir, o->force);
    const synth_vocab *vp = &plan->vocab;
    const synth_vocab v = *vp;
    int N = synth_vocab_classes(&v);
    const uint8_t *is_unseen = plan->is_unseen;
    long *counts = plan->count;
    record *rec[SYNTH_N_SPLITS] = {NULL};

    for (int sp = 0; sp < SYNTH_N_SPLITS && s == RAMC_OK; sp++) {
        rec[sp] = calloc(counts[sp] ? (size_t)counts[sp] : 1, sizeof(record));
        if (!rec[sp]) {
            s = ramc_error(RAMC_ERR_NOMEM, "%s: out of memory for %ld %s records", dir, counts[sp],
                           split_names[sp]);
            break;
        }
        if (!counts[sp]) continue;
        char *sub = malloc(strlen(dir) + 32);
        if (!sub) {
            s = ramc_error(RAMC_ERR_NOMEM, "%s: out of memory", dir);
            break;
        }
        sprintf(sub, "%s/images", dir);
        s = make_dir(sub);
        sprintf(sub, "%s/images/%s", dir, split_names[sp]);
        if (s == RAMC_OK) s = make_dir(sub);
        free(sub);
        if (s != RAMC_OK) break;
        plan->opt.progress = o->progress;
        plan->opt.user = o->user;
        s = generate_split(dir, plan, sp, rec[sp]);
    }

    if (s == RAMC_OK) {
        /* 3 x 25 KiB: off the stack */
        name_table *ta = malloc(sizeof *ta), *ts = malloc(sizeof *ts), *tu = malloc(sizeof *tu);
        if (!ta || !ts || !tu) s = ramc_error(RAMC_ERR_NOMEM, "%s: out of memory", dir);
        if (s == RAMC_OK) {
            class_subset(&v, is_unseen, 0, 1, ta);
            class_subset(&v, is_unseen, 0, 0, ts);
            class_subset(&v, is_unseen, 1, 0, tu);
            text t = {0};
            put_list(&t, ta);
            s = write_text(dir, "classes_all.txt", &t);
            if (s == RAMC_OK) {
                put_list(&t, ts);
                s = write_text(dir, "seen.txt", &t);
            }
            if (s == RAMC_OK) {
                put_list(&t, tu);
                s = write_text(dir, "unseen.txt", &t);
            }
            if (s == RAMC_OK) {
                char path[64];
                for (long i = 0; i < counts[SYNTH_SPLIT_PRETRAIN]; i++) {
                    image_rel_path(SYNTH_SPLIT_PRETRAIN, i, path, sizeof path);
                    put(&t, "%s\t%s\n", path, rec[SYNTH_SPLIT_PRETRAIN][i].caption);
                }
                s = write_text(dir, "pretrain.tsv", &t);
            }
            uint8_t keep_seen[SYNTH_MAX_CLASSES], keep_all[SYNTH_MAX_CLASSES];
            for (int c = 0; c < N; c++) {
                keep_seen[c] = !is_unseen[c];
                keep_all[c] = 1;
            }
            if (s == RAMC_OK) {
                put_dataset_json(&t, &v, SYNTH_SPLIT_TRAIN, rec[SYNTH_SPLIT_TRAIN],
                                 counts[SYNTH_SPLIT_TRAIN], keep_seen, ts);
                s = write_text(dir, "train.json", &t);
            }
            if (s == RAMC_OK) {
                put_dataset_json(&t, &v, SYNTH_SPLIT_TEST_ZSL, rec[SYNTH_SPLIT_TEST_ZSL],
                                 counts[SYNTH_SPLIT_TEST_ZSL], is_unseen, tu);
                s = write_text(dir, "test_zsl.json", &t);
            }
            if (s == RAMC_OK) {
                put_dataset_json(&t, &v, SYNTH_SPLIT_TEST_GZSL, rec[SYNTH_SPLIT_TEST_GZSL],
                                 counts[SYNTH_SPLIT_TEST_GZSL], keep_all, ta);
                s = write_text(dir, "test_gzsl.json", &t);
            }
            if (s == RAMC_OK && o->write_objects) {
                const uint8_t *keeps[SYNTH_N_SPLITS];
                keeps[SYNTH_SPLIT_PRETRAIN] = keep_all; /* captions name every object */
                keeps[SYNTH_SPLIT_TRAIN] = keep_seen;
                keeps[SYNTH_SPLIT_TEST_ZSL] = is_unseen;
                keeps[SYNTH_SPLIT_TEST_GZSL] = keep_all;
                for (int sp = 0; sp < SYNTH_N_SPLITS; sp++)
                    put_objects_jsonl(&t, &v, sp, rec[sp], counts[sp], keeps[sp]);
                s = write_text(dir, "objects.jsonl", &t);
            }
            /* Last: a manifest means the folder is complete. */
            if (s == RAMC_OK) s = write_manifest(dir, o, &v, ta, ts, tu, counts, rec, is_unseen);
        }
        free(ta);
        free(ts);
        free(tu);
    }
    for (int sp = 0; sp < SYNTH_N_SPLITS; sp++) free(rec[sp]);
    free(plan);
    return s;
}
