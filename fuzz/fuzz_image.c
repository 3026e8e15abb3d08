/* Fuzz target: the image path of prediction: decode (JPEG or PNG, sniffed
 * from the bytes), resize with Pillow's filters, convert to a tensor.
 * The whole input is the file; its last two bytes also choose the resize
 * output size (1..64 per side) so the fuzzer explores the resampler's
 * shapes without a separate header. Decoder size limits (image.h) keep
 * declared-size bombs from allocating more than RAMC_IMAGE_MAX_PIXELS. */
#include <math.h>
#include <stdlib.h>

#include "fuzz.h"
#include "image/image.h"

void fuzz_init_image(void) {}

int fuzz_one_image(const uint8_t *data, size_t size) {
    ramc_image img = {0, 0, NULL};
    ramc_clear_error();
    if (image_decode_memory(data, size, "fuzz-input", &img) != RAMC_OK) {
        FUZZ_CHECK(img.rgb == NULL, "failed decode left pixels");
        fuzz_check_error_message("image_decode_memory");
        return 0;
    }
    FUZZ_CHECK(img.rgb && img.width >= 1 && img.height >= 1 &&
                   image_check_size(img.width, img.height, "decoded") == RAMC_OK,
               "decoded image %dx%d", img.width, img.height);
    /* touch every pixel so ASan sees a short pixel buffer */
    unsigned sum = 0;
    size_t n = (size_t)img.width * (size_t)img.height * 3;
    for (size_t i = 0; i < n; i++) sum += img.rgb[i];
    (void)sum;

    int w = 1 + (size >= 1 ? data[size - 1] % 64 : 0);
    int h = 1 + (size >= 2 ? data[size - 2] % 64 : 0);
    ramc_filter filter = size >= 3 && data[size - 3] & 1 ? RAMC_FILTER_BICUBIC : RAMC_FILTER_BILINEAR;
    ramc_image small = {0, 0, NULL};
    ramc_status st = ramc_image_resize(&img, w, h, filter, &small);
    FUZZ_CHECK(st == RAMC_OK, "resize %dx%d -> %dx%d: %s", img.width, img.height, w, h,
               ramc_last_error());
    FUZZ_CHECK(small.width == w && small.height == h && small.rgb, "resize gave %dx%d", small.width,
               small.height);
    float *chw = malloc(sizeof(float) * 3 * (size_t)w * (size_t)h);
    if (chw) {
        static const float mean[3] = {0.5f, 0.5f, 0.5f}, std[3] = {0.5f, 0.5f, 0.5f};
        FUZZ_CHECK(ramc_image_to_tensor(&small, mean, std, chw) == RAMC_OK, "to_tensor: %s",
                   ramc_last_error());
        for (size_t i = 0; i < 3 * (size_t)w * (size_t)h; i++)
            FUZZ_CHECK(isfinite(chw[i]) && chw[i] >= -1.0f && chw[i] <= 1.0f, "tensor[%zu] = %g", i,
                       (double)chw[i]);
        free(chw);
    }
    ramc_image_free(&small);
    ramc_image_free(&img);
    return 0;
}
