/* The size bounds of image.h, apart from load.c: the decoders check them
 * and load.c dispatches to the decoders, so keeping both in load.c made
 * load.c and the decoders depend on each other. */
#include "image/image.h"

ramc_status image_check_size(long long width, long long height, const char *what) {
    if (width <= 0 || height <= 0)
        return ramc_error(RAMC_ERR_FORMAT, "%s: invalid image size %lldx%lld", what, width,
                          height);
    if (width > RAMC_IMAGE_MAX_SIDE || height > RAMC_IMAGE_MAX_SIDE)
        return ramc_error(RAMC_ERR_LIMIT, "%s: image size %lldx%lld exceeds the limit of %d pixels per side",
                          what, width, height, RAMC_IMAGE_MAX_SIDE);
    if ((unsigned long long)width * (unsigned long long)height > RAMC_IMAGE_MAX_PIXELS)
        return ramc_error(RAMC_ERR_LIMIT, "%s: image size %lldx%lld exceeds the limit of %llu pixels",
                          what, width, height, (unsigned long long)RAMC_IMAGE_MAX_PIXELS);
    return RAMC_OK;
}
