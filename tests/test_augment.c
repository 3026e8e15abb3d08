/* Training augmentation and test transform (src/data/augment.c). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/augment.h"
#include "test.h"

#define FIX RAMC_SOURCE_DIR "/tests/fixtures/images/"
#define S 64
#define N ((size_t)3 * S * S)

static float *alloc_t(void) { return calloc(N, sizeof(float)); }

static int same(const float *a, const float *b) { return memcmp(a, b, N * sizeof(float)) == 0; }

/* The reference when every random step is off: Pillow bicubic to S x S, then
 * (x/255 - 0.5)/0.5. Pad(10) + a crop at offset 10 is the identity. */
static void baseline(const ramc_image *img, float *out) {
    ramc_image r = {0, 0, NULL};
    const float m[3] = {0.5f, 0.5f, 0.5f};
    CHECK(ramc_image_resize(img, S, S, RAMC_FILTER_BICUBIC, &r) == RAMC_OK, "resize");
    CHECK(ramc_image_to_tensor(&r, m, m, out) == RAMC_OK, "to tensor");
    ramc_image_free(&r);
}

static ramc_augment_options only(void) {
    ramc_augment_options o = augment_default_options();
    o.image_size = S;
    augment_disable_all(&o);
    return o;
}

static double at(const float *t, int c, int y, int x) { return t[((size_t)c * S + y) * S + x]; }

static double channel_std(const float *t) {
    double s = 0, s2 = 0;
    for (size_t i = 0; i < N; i++) s += t[i], s2 += (double)t[i] * t[i];
    double m = s / N;
    return sqrt(s2 / N - m * m);
}

static double mean_of(const float *t) {
    double s = 0;
    for (size_t i = 0; i < N; i++) s += t[i];
    return s / N;
}

/* Sum of |horizontal differences|: blur lowers it. */
static double total_variation(const float *t) {
    double tv = 0;
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < S; y++)
            for (int x = 1; x < S; x++) tv += fabs(at(t, c, y, x) - at(t, c, y, x - 1));
    return tv;
}

int main(void) {
    ramc_image img = {0, 0, NULL};
    if (ramc_image_load(FIX "cat_444.jpg", &img) != RAMC_OK) {
        fprintf(stderr, "cannot load fixture: %s\n", ramc_last_error());
        return 1;
    }
    ramc_image sq = {0, 0, NULL}; /* already S x S: resizes are copies */
    CHECK(ramc_image_resize(&img, S, S, RAMC_FILTER_BILINEAR, &sq) == RAMC_OK, "square");
    float *ref = alloc_t(), *out = alloc_t(), *out2 = alloc_t(), *sqref = alloc_t();
    const float half[3] = {0.5f, 0.5f, 0.5f};
    ramc_augment_trace tr;
    uint64_t seed = augment_sample_seed(1234, 0, 7);

    /* --- everything off: resize bicubic + normalise, exactly */
    baseline(&img, ref);
    ramc_augment_options o = only();
    CHECK(augment_train(&img, &o, seed, out, &tr) == RAMC_OK, "all off: %s", ramc_last_error());
    CHECK(same(out, ref), "all off equals bicubic resize + normalise");
    CHECK(tr.crop_x == 10 && tr.crop_y == 10, "all off crops at the centre (%d,%d)", tr.crop_x, tr.crop_y);
    /* On an S x S input the resizes are copies: train (all off) = test transform. */
    baseline(&sq, sqref);
    CHECK(augment_train(&sq, &o, seed, out, NULL) == RAMC_OK, "square all off");
    CHECK(augment_test(&sq, S, half, half, out2) == RAMC_OK, "test transform");
    CHECK(same(out, out2) && same(out, sqref), "all-off train equals the test transform on S x S");
    /* Test transform = Pillow bilinear + normalise; differs from bicubic. */
    {
        ramc_image r = {0, 0, NULL};
        CHECK(ramc_image_resize(&img, S, S, RAMC_FILTER_BILINEAR, &r) == RAMC_OK, "bilinear");
        CHECK(ramc_image_to_tensor(&r, half, half, out) == RAMC_OK, "tensor");
        CHECK(augment_test(&img, S, half, half, out2) == RAMC_OK, "test");
        CHECK(same(out, out2), "test transform = bilinear + normalise");
        CHECK(!same(out2, ref), "test transform (bilinear) differs from train resize (bicubic)");
        ramc_image_free(&r);
    }

    /* --- hflip alone mirrors exactly */
    o = only();
    o.hflip = 1, o.hflip_p = 1;
    CHECK(augment_train(&img, &o, seed, out, &tr) == RAMC_OK && tr.hflipped, "hflip");
    {
        int ok = 1;
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < S; y++)
                for (int x = 0; x < S; x++) ok &= at(out, c, y, x) == at(ref, c, y, S - 1 - x);
        CHECK(ok, "hflip is an exact mirror");
    }
    /* mirror (before the resize) on an S x S input: exact mirror as well */
    o = only();
    o.mirror = 1, o.mirror_p = 1;
    CHECK(augment_train(&sq, &o, seed, out, &tr) == RAMC_OK && tr.mirrored, "mirror");
    {
        int ok = 1;
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < S; y++)
                for (int x = 0; x < S; x++) ok &= at(out, c, y, x) == at(sqref, c, y, S - 1 - x);
        CHECK(ok, "mirror is an exact mirror");
    }
    /* p = 0.5: about half the samples flip; two flips cancel */
    {
        int flips = 0, hf = 0, both_ok = 1;
        o = only();
        o.mirror = o.hflip = 1;
        for (int i = 0; i < 400; i++) {
            CHECK(augment_train(&sq, &o, augment_sample_seed(5, 0, i), out, &tr) == RAMC_OK, "flip p");
            flips += tr.mirrored, hf += tr.hflipped;
            if (tr.mirrored && tr.hflipped) both_ok &= same(out, sqref);
        }
        CHECK(flips > 150 && flips < 250, "mirror rate %d/400", flips);
        CHECK(hf > 150 && hf < 250, "hflip rate %d/400", hf);
        CHECK(both_ok, "mirror + hflip is the identity on S x S");
    }

    /* --- pad + random crop shifts exactly, with zero (-1 normalised) fill */
    {
        o = only();
        o.pad_crop = 1;
        int lo = 99, hi = -1, shifted_ok = 1;
        for (int i = 0; i < 300; i++) {
            CHECK(augment_train(&img, &o, augment_sample_seed(9, 0, i), out, &tr) == RAMC_OK, "padcrop");
            int dx = tr.crop_x - 10, dy = tr.crop_y - 10;
            lo = tr.crop_x < lo ? tr.crop_x : lo, hi = tr.crop_x > hi ? tr.crop_x : hi;
            lo = tr.crop_y < lo ? tr.crop_y : lo, hi = tr.crop_y > hi ? tr.crop_y : hi;
            for (int c = 0; c < 3; c++)
                for (int y = 0; y < S; y++)
                    for (int x = 0; x < S; x++) {
                        int sy = y + dy, sx = x + dx;
                        double want = (sy < 0 || sy >= S || sx < 0 || sx >= S) ? -1.0 : at(ref, c, sy, sx);
                        shifted_ok &= at(out, c, y, x) == want;
                    }
        }
        CHECK(shifted_ok, "pad/crop output is the shifted baseline with -1 fill");
        CHECK(lo == 0 && hi == 20, "crop offsets cover 0..20 inclusive (got %d..%d)", lo, hi);
    }

    /* --- random erasing: one rectangle of N(0,1) values, the rest untouched */
    {
        o = only();
        o.erasing = 1, o.erasing_p = 1;
        int erased = 0, rest_ok = 1, area_ok = 1;
        double s = 0, s2 = 0;
        long cnt = 0;
        for (int i = 0; i < 200; i++) {
            CHECK(augment_train(&img, &o, augment_sample_seed(11, 0, i), out, &tr) == RAMC_OK, "erase");
            if (!tr.erased) continue;
            erased++;
            int h = tr.erase_h, w = tr.erase_w;
            double slack = (h + w) / 2.0 + 0.5;
            area_ok &= h < S && w < S && tr.erase_top >= 0 && tr.erase_left >= 0 &&
                       tr.erase_top + h <= S && tr.erase_left + w <= S &&
                       h * w >= 0.02 * S * S - slack && h * w <= S * S / 3.0 + slack;
            for (int c = 0; c < 3; c++)
                for (int y = 0; y < S; y++)
                    for (int x = 0; x < S; x++) {
                        int in = y >= tr.erase_top && y < tr.erase_top + h && x >= tr.erase_left &&
                                 x < tr.erase_left + w;
                        if (in) {
                            double v = at(out, c, y, x);
                            s += v, s2 += v * v, cnt++;
                        } else {
                            rest_ok &= at(out, c, y, x) == at(ref, c, y, x);
                        }
                    }
        }
        CHECK(erased >= 190, "erasing with p=1 places a rectangle nearly always (%d/200)", erased);
        CHECK(area_ok, "rectangles within the image and area bounds");
        CHECK(rest_ok, "pixels outside the rectangle unchanged");
        double m = s / cnt, sd = sqrt(s2 / cnt - m * m);
        CHECK(fabs(m) < 0.02 && fabs(sd - 1) < 0.02, "erase fill looks N(0,1): mean %g std %g", m, sd);
        o.erasing_p = 0.5;
        erased = 0;
        for (int i = 0; i < 400; i++) {
            CHECK(augment_train(&img, &o, augment_sample_seed(12, 0, i), out, &tr) == RAMC_OK, "erase");
            erased += tr.erased;
        }
        CHECK(erased > 150 && erased < 250, "erasing rate %d/400 at p=0.5", erased);
    }

    /* --- contrast: alpha 1 is the identity; alpha 1.25 widens the spread */
    o = only();
    o.contrast = 1, o.contrast_p = 1, o.contrast_min = o.contrast_max = 1;
    CHECK(augment_train(&img, &o, seed, out, &tr) == RAMC_OK && tr.applied[AUG_MEMBER_CONTRAST], "contrast");
    CHECK(same(out, ref), "contrast alpha=1 is the identity");
    o.contrast_min = o.contrast_max = 1.25;
    CHECK(augment_train(&img, &o, seed, out, NULL) == RAMC_OK, "contrast 1.25");
    CHECK(channel_std(out) > 1.15 * channel_std(ref), "contrast 1.25 widens the spread: %g vs %g",
          channel_std(out), channel_std(ref));

    /* --- multiply: 1 is the identity, 1.1 brightens */
    o = only();
    o.multiply = 1, o.multiply_min = o.multiply_max = 1;
    CHECK(augment_train(&img, &o, seed, out, NULL) == RAMC_OK && same(out, ref), "multiply 1 is the identity");
    o.multiply_min = o.multiply_max = 1.1;
    CHECK(augment_train(&img, &o, seed, out, NULL) == RAMC_OK, "multiply 1.1");
    CHECK(mean_of(out) > mean_of(ref) + 0.02, "multiply 1.1 brightens: %g vs %g", mean_of(out), mean_of(ref));
    {
        int per = 0;
        o.multiply_min = 0.9, o.multiply_max = 1.1;
        for (int i = 0; i < 400; i++) {
            CHECK(augment_train(&sq, &o, augment_sample_seed(13, 0, i), out, &tr) == RAMC_OK, "mul");
            per += tr.multiply_per_channel;
            CHECK(tr.multiply[0] >= 0.9 && tr.multiply[0] < 1.1, "multiplier %g", tr.multiply[0]);
            if (!tr.multiply_per_channel)
                CHECK(tr.multiply[1] == tr.multiply[0] && tr.multiply[2] == tr.multiply[0], "shared");
        }
        CHECK(per > 50 && per < 110, "multiply per-channel rate %d/400 (p=0.2)", per);
    }

    /* --- noise: scale 0 is the identity; the default is small and unbiased */
    o = only();
    o.noise = 1, o.noise_scale_min = o.noise_scale_max = 0;
    CHECK(augment_train(&img, &o, seed, out, NULL) == RAMC_OK && same(out, ref), "noise 0 is the identity");
    o.noise_scale_min = o.noise_scale_max = 0.015 * 255;
    CHECK(augment_train(&sq, &o, seed, out, &tr) == RAMC_OK, "noise");
    {
        double d = 0, dm = 0;
        for (size_t i = 0; i < N; i++) d += fabs(out[i] - sqref[i]), dm += out[i] - sqref[i];
        d /= N, dm /= N;
        /* |N(0, 3.825)| averages 3.05 levels = 0.024 normalised (less where clipped) */
        CHECK(d > 0.012 && d < 0.035, "noise magnitude %g", d);
        CHECK(fabs(dm) < 0.005, "noise bias %g", dm);
    }

    /* --- blur: sigma <= 0.2 is a no-op on 8-bit (documented); sigma 2 smooths */
    o = only();
    o.blur = 1, o.blur_p = 1;
    CHECK(augment_train(&img, &o, seed, out, &tr) == RAMC_OK && tr.applied[AUG_MEMBER_BLUR], "blur");
    CHECK(same(out, ref), "blur with sigma %g leaves 8-bit pixels unchanged", tr.blur_sigma);
    o.blur_sigma_min = o.blur_sigma_max = 2;
    CHECK(augment_train(&sq, &o, seed, out, NULL) == RAMC_OK, "blur 2");
    CHECK(total_variation(out) < 0.8 * total_variation(sqref), "blur sigma 2 smooths: %g vs %g",
          total_variation(out), total_variation(sqref));

    /* --- affine: identity parameters are the identity; a rotation moves pixels */
    o = only();
    o.affine = 1, o.affine_p = 1;
    o.affine_scale_min = o.affine_scale_max = 1, o.affine_translate_max = 0, o.affine_rotate_max = 0;
    CHECK(augment_train(&img, &o, seed, out, NULL) == RAMC_OK && same(out, ref), "affine identity");
    /* pure translation by a whole number of pixels: an exact shift with 0 fill */
    o.affine_rotate_max = 10;
    CHECK(augment_train(&img, &o, seed, out, &tr) == RAMC_OK, "affine rotate");
    CHECK(!same(out, ref) && fabs(tr.affine_rotate_deg) <= 10, "rotation %g changes the image",
          tr.affine_rotate_deg);
    {
        /* The centre pixel stays (nearly) in place under a small rotation
         * about the centre; compare on the S x S input. */
        o.affine_rotate_max = 5;
        CHECK(augment_train(&sq, &o, seed, out, &tr) == RAMC_OK, "affine sq");
        double dc = 0;
        for (int c = 0; c < 3; c++) dc += fabs(at(out, c, S / 2, S / 2) - at(sqref, c, S / 2, S / 2));
        CHECK(dc < 0.3, "rotation about the centre keeps the centre (%g)", dc);
        /* the corners rotate out of the frame and are filled with 0 = -1 */
        o.affine_rotate_max = 0, o.affine_translate_max = 0.1;
        o.affine_scale_min = o.affine_scale_max = 0.5;
        CHECK(augment_train(&sq, &o, seed, out, &tr) == RAMC_OK, "affine shrink");
        CHECK(at(out, 0, 0, 0) == -1 && at(out, 1, S - 1, S - 1) == -1, "shrunk image has a black border");
    }

    /* --- crop: pixel amounts within 0..10 percent per side, changes the image */
    o = only();
    o.crop = 1, o.crop_p = 1;
    {
        int ok = 1, changed = 0;
        for (int i = 0; i < 50; i++) {
            CHECK(augment_train(&img, &o, augment_sample_seed(17, 0, i), out, &tr) == RAMC_OK, "crop");
            ok &= tr.crop_px[0] >= 0 && tr.crop_px[0] <= 16 && tr.crop_px[2] >= 0 && tr.crop_px[2] <= 16;
            ok &= tr.crop_px[1] >= 0 && tr.crop_px[1] <= 24 && tr.crop_px[3] >= 0 && tr.crop_px[3] <= 24;
            changed += !same(out, ref);
        }
        CHECK(ok, "crop amounts within 10%% of each side");
        CHECK(changed >= 45, "crop changes the image (%d/50)", changed);
        o.crop_resize = AUG_CROP_RESIZE_BILINEAR;
        CHECK(augment_train(&img, &o, augment_sample_seed(17, 0, 3), out2, NULL) == RAMC_OK, "crop bilinear");
        CHECK(!same(out2, ref), "crop with Pillow bilinear resize also works");
    }

    /* --- full default pipeline: reproducible, index/epoch dependent, in range */
    {
        o = augment_default_options();
        o.image_size = S;
        CHECK(augment_train(&img, &o, augment_sample_seed(42, 3, 5), out, &tr) == RAMC_OK, "default");
        CHECK(augment_train(&img, &o, augment_sample_seed(42, 3, 5), out2, NULL) == RAMC_OK, "again");
        CHECK(same(out, out2), "same seed, epoch and index give identical output");
        CHECK(augment_train(&img, &o, augment_sample_seed(42, 3, 6), out2, NULL) == RAMC_OK, "other");
        CHECK(!same(out, out2), "a different index gives a different output");
        CHECK(augment_train(&img, &o, augment_sample_seed(42, 4, 5), out2, NULL) == RAMC_OK, "epoch");
        CHECK(!same(out, out2), "a different epoch gives a different output");
        CHECK(augment_sample_seed(1, 2, 3) != augment_sample_seed(1, 3, 2), "seed hash is ordered");

        int range_ok = 1, perm_ok = 1, orders_differ = 0, first_order[6];
        int count[AUG_MEMBER_COUNT] = {0};
        for (int i = 0; i < 500; i++) {
            CHECK(augment_train(&img, &o, augment_sample_seed(42, 0, i), out, &tr) == RAMC_OK, "run %d", i);
            int seen = 0;
            for (int k = 0; k < 6; k++) seen |= 1 << tr.order[k];
            perm_ok &= seen == 63;
            if (i == 0) memcpy(first_order, tr.order, sizeof first_order);
            else orders_differ += memcmp(first_order, tr.order, sizeof first_order) != 0;
            for (int k = 0; k < AUG_MEMBER_COUNT; k++) count[k] += tr.applied[k];
            for (int c = 0; c < 3; c++)
                for (int y = 0; y < S; y++)
                    for (int x = 0; x < S; x++) {
                        double v = at(out, c, y, x);
                        int in = tr.erased && y >= tr.erase_top && y < tr.erase_top + tr.erase_h &&
                                 x >= tr.erase_left && x < tr.erase_left + tr.erase_w;
                        range_ok &= isfinite(v) && (in || (v >= -1 && v <= 1));
                    }
        }
        CHECK(range_ok, "outputs finite, in [-1,1] outside the erased rectangle");
        CHECK(perm_ok && orders_differ > 400, "member order is a random permutation (%d differ)", orders_differ);
        CHECK(count[AUG_MEMBER_CROP] > 70 && count[AUG_MEMBER_CROP] < 130, "crop rate %d/500", count[0]);
        CHECK(count[AUG_MEMBER_AFFINE] > 70 && count[AUG_MEMBER_AFFINE] < 130, "affine rate %d/500",
              count[AUG_MEMBER_AFFINE]);
        CHECK(count[AUG_MEMBER_NOISE] == 500 && count[AUG_MEMBER_MULTIPLY] == 500, "always-on members");
    }

    /* --- switching one step off does not change the others' draws */
    {
        o = augment_default_options();
        o.image_size = S;
        ramc_augment_trace a, b;
        uint64_t sd = augment_sample_seed(3, 1, 4);
        CHECK(augment_train(&img, &o, sd, out, &a) == RAMC_OK, "a");
        o.contrast = 0;
        CHECK(augment_train(&img, &o, sd, out2, &b) == RAMC_OK, "b");
        CHECK(a.mirrored == b.mirrored && a.hflipped == b.hflipped && a.crop_x == b.crop_x &&
                  a.crop_y == b.crop_y && a.noise_scale == b.noise_scale && a.erased == b.erased &&
                  a.erase_h == b.erase_h,
              "other steps draw the same values");
    }

    /* --- option checks and bad inputs */
    o = augment_default_options();
    o.crop_p = 1.5;
    CHECK(augment_train(&img, &o, seed, out, NULL) == RAMC_ERR_INVALID_ARG, "crop_p 1.5 rejected");
    CHECK(strstr(ramc_last_error(), "crop_p") != NULL, "message names the field: %s", ramc_last_error());
    o = augment_default_options();
    o.multiply_min = 2, o.multiply_max = 1;
    CHECK(augment_check_options(&o) == RAMC_ERR_INVALID_ARG, "inverted range rejected");
    o = augment_default_options();
    o.image_size = 0;
    CHECK(augment_check_options(&o) == RAMC_ERR_INVALID_ARG, "size 0 rejected");
    ramc_image empty = {0, 0, NULL};
    o = augment_default_options();
    CHECK(augment_train(&empty, &o, seed, out, NULL) == RAMC_ERR_INVALID_ARG, "empty image rejected");
    CHECK(augment_test(&empty, S, half, half, out) == RAMC_ERR_INVALID_ARG, "empty image rejected (test)");

    /* --- tiny images survive every step */
    {
        uint8_t px[2 * 1 * 3] = {10, 200, 30, 250, 0, 128};
        ramc_image tiny = {2, 1, px};
        o = augment_default_options();
        o.image_size = 8;
        o.crop_p = o.blur_p = o.contrast_p = o.affine_p = 1;
        o.blur_sigma_min = 1, o.blur_sigma_max = 3;
        float t8[3 * 8 * 8];
        int ok = 1;
        for (int i = 0; i < 50; i++) {
            ok &= augment_train(&tiny, &o, augment_sample_seed(0, 0, i), t8, NULL) == RAMC_OK;
            for (int k = 0; k < 3 * 64; k++) ok &= isfinite(t8[k]);
        }
        CHECK(ok, "2x1 image through the full pipeline: %s", ramc_last_error());
    }

    free(ref), free(out), free(out2), free(sqref);
    ramc_image_free(&img);
    ramc_image_free(&sq);
    return test_summary("test_augment");
}
