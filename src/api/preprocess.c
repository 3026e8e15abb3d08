/* The official test transform as one call (ramc.h: ramc_preprocess_*), so
 * that applications do not re-implement it: the ramc command uses it too. */
#include <math.h>

#include "api/api.h"
#include "core/status.h"

ramc_preprocess_params ramc_preprocess_default_params(void) {
    ramc_preprocess_params p = {.width = 0, .height = 0, .filter = RAMC_FILTER_BILINEAR,
                                .mean = {0.5f, 0.5f, 0.5f}, .std = {0.5f, 0.5f, 0.5f}};
    return p;
}

static ramc_status check(const ramc_model *m, const ramc_preprocess_params *p, int *W, int *H) {
    if (p->width < 0 || p->height < 0)
        return ramc_error(RAMC_ERR_INVALID_ARG, "preprocess: negative size %dx%d", p->width, p->height);
    if ((!p->width || !p->height) && !(m && m->clip))
        return ramc_error(RAMC_ERR_INVALID_ARG,
                          "preprocess: no model to take the input size from, and no size given");
    if (p->filter != RAMC_FILTER_BILINEAR && p->filter != RAMC_FILTER_BICUBIC)
        return ramc_error(RAMC_ERR_INVALID_ARG, "preprocess: unknown filter %d", p->filter);
    for (int c = 0; c < 3; c++)
        /* a zero or non-finite std would put Inf/NaN into every pixel, which
         * ramc_predict then refuses far from the cause */
        if (!isfinite(p->mean[c]) || !isfinite(p->std[c]) || p->std[c] == 0.0f)
            return ramc_error(RAMC_ERR_INVALID_ARG,
                              "preprocess: channel %d: mean %g, std %g (want finite, std non-zero)",
                              c, p->mean[c], p->std[c]);
    const int S = m && m->clip ? m->clip->info.image_size : 0;
    *W = p->width ? p->width : S;
    *H = p->height ? p->height : S;
    return RAMC_OK;
}

ramc_status ramc_preprocess_image(const ramc_model *m, const ramc_image *image,
                                  const ramc_preprocess_params *params, float *chw) {
    if (!image || !image->rgb || !chw)
        return ramc_error(RAMC_ERR_INVALID_ARG, "preprocess: NULL image or output");
    ramc_preprocess_params p = params ? *params : ramc_preprocess_default_params();
    int W = 0, H = 0;
    ramc_status st = check(m, &p, &W, &H);
    if (st != RAMC_OK) return st;
    ramc_image sized = {0};
    st = ramc_image_resize(image, W, H, (ramc_filter)p.filter, &sized);
    if (st == RAMC_OK) st = ramc_image_to_tensor(&sized, p.mean, p.std, chw);
    ramc_image_free(&sized);
    return st;
}

ramc_status ramc_preprocess_file(const ramc_model *m, const char *path,
                                 const ramc_preprocess_params *params, float *chw) {
    if (!path) return ramc_error(RAMC_ERR_INVALID_ARG, "preprocess: NULL path");
    ramc_image img = {0};
    ramc_status st = ramc_image_load(path, &img);
    if (st == RAMC_OK && (st = ramc_preprocess_image(m, &img, params, chw)) != RAMC_OK)
        ramc_error_prefix(st, "%s", path);
    ramc_image_free(&img);
    return st;
}
