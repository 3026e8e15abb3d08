/* Training augmentation and test transform (internal).
 *
 * augment_train reproduces the official per-sample training pipeline
 * (spec §7.1) on 8-bit RGB, then in normalised float; augment_test is the
 * evaluation transform (spec §7.2). docs/augmentation.md lists every step,
 * its parameters and where ramc deviates from imgaug/torchvision/timm.
 *
 * Randomness: every sample gets its own seed, augment_sample_seed(seed,
 * epoch, index), and every step draws from its own stream derived from that
 * seed. So a sample's result depends only on (seed, epoch, index, options,
 * image), never on thread scheduling, and switching one step off does not
 * change the random draws of the others.
 */
#ifndef RAMC_DATA_AUGMENT_H
#define RAMC_DATA_AUGMENT_H

#include <stdint.h>

#include "core/status.h"

/* The imgaug members of step 3, in their declaration order; the order in
 * which they run is a random permutation per image. */
enum {
    AUG_MEMBER_CROP = 0,
    AUG_MEMBER_BLUR = 1,
    AUG_MEMBER_CONTRAST = 2,
    AUG_MEMBER_NOISE = 3,
    AUG_MEMBER_MULTIPLY = 4,
    AUG_MEMBER_AFFINE = 5,
    AUG_MEMBER_COUNT = 6
};

/* How Crop(keep_size=True) resizes the cropped image back to its input size. */
typedef enum {
    /* What imgaug 0.4 does: imresize with interpolation=None picks
     * cv2.INTER_AREA when enlarging, i.e. exact area averaging. */
    AUG_CROP_RESIZE_AREA = 0,
    /* Pillow's bilinear (ramc_image_resize). */
    AUG_CROP_RESIZE_BILINEAR = 1
} aug_crop_resize;

/* Every probability and range of the pipeline; augment_default_options()
 * gives the official values. Each step has an on/off switch; a step that is
 * off is skipped without consuming the other steps' random numbers. A
 * "Sometimes(p)" step runs with probability *_p when it is on. */
typedef struct {
    int image_size;           /* S: output is [3,S,S]; 224 */
    float mean[3], std[3];    /* Normalize; 0.5, 0.5 */

    int mirror;               /* step 2, numpy "mirror" flip */
    double mirror_p;          /* 0.5 */

    int random_order;         /* imgaug Sequential(random_order=True); 1 */

    int crop;                 /* Sometimes(0.2, Crop(percent=(0, 0.1))) */
    double crop_p, crop_max;  /* 0.2, 0.1 (per side, independently) */
    int crop_resize;          /* aug_crop_resize; AUG_CROP_RESIZE_AREA */

    int blur;                 /* Sometimes(0.2, GaussianBlur(sigma=(0, 0.2))) */
    double blur_p, blur_sigma_min, blur_sigma_max; /* 0.2, 0, 0.2 */

    int contrast;             /* Sometimes(0.2, LinearContrast((0.75, 1.25))) */
    double contrast_p, contrast_min, contrast_max; /* 0.2, 0.75, 1.25 */
    double contrast_center;   /* 127: imgaug's int(255/2), see the docs */

    int noise;                /* AdditiveGaussianNoise(0, (0, 0.015*255), per_channel=0.2) */
    double noise_scale_min, noise_scale_max; /* 0, 3.825 (in 0..255 units) */
    double noise_per_channel_p;              /* 0.2 */

    int multiply;             /* Multiply((0.9, 1.1), per_channel=0.2) */
    double multiply_min, multiply_max, multiply_per_channel_p; /* 0.9, 1.1, 0.2 */

    int affine;               /* Sometimes(0.2, Affine(...)), bilinear, fill 0 */
    double affine_p;          /* 0.2 */
    double affine_scale_min, affine_scale_max; /* 0.9, 1.1 (x and y independently) */
    double affine_translate_max;               /* 0.1: U(-0.1, 0.1) of width/height */
    double affine_rotate_max;                  /* 10: U(-10, 10) degrees */

    int hflip;                /* step 5, RandomHorizontalFlip */
    double hflip_p;           /* 0.5 */

    int pad_crop;             /* steps 6-7: Pad(pad) + RandomCrop(S); off = centre crop */
    int pad;                  /* 10 */

    int erasing;              /* step 10, timm RandomErasing(mode='pixel') */
    double erasing_p;         /* 0.5 */
    double erasing_min_area, erasing_max_area;     /* 0.02, 1/3 of S*S */
    double erasing_min_aspect, erasing_max_aspect; /* 0.3, 1/0.3 (log-uniform) */
    int erasing_attempts;     /* 10 */
} ramc_augment_options;

/* What augment_train decided for one sample (for tests and debugging). */
typedef struct {
    int mirrored;
    int order[AUG_MEMBER_COUNT];   /* member ids in the order they ran */
    int applied[AUG_MEMBER_COUNT]; /* by member id: 1 if it was on and its
                                    * Sometimes() draw said run */
    int crop_px[4];                /* top, right, bottom, left */
    double blur_sigma, contrast_alpha, noise_scale;
    int noise_per_channel;
    double multiply[3];
    int multiply_per_channel;
    double affine_scale[2], affine_translate_px[2], affine_rotate_deg;
    int hflipped;
    int crop_x, crop_y;            /* RandomCrop offsets in the padded image */
    int erased;
    int erase_top, erase_left, erase_h, erase_w;
} ramc_augment_trace;

/* The official values (see each field). */
ramc_augment_options augment_default_options(void);
/* Switches every random step off (mirror, members, hflip, pad_crop,
 * erasing); the pipeline is then resize-bicubic + normalise. */
void augment_disable_all(ramc_augment_options *opt);
/* Checks ranges (probabilities in [0,1], min <= max, sizes > 0...). */
ramc_status augment_check_options(const ramc_augment_options *opt);

/* The per-sample seed: a hash of (seed, epoch, index). */
uint64_t augment_sample_seed(uint64_t seed, uint64_t epoch, uint64_t index);

/* Training pipeline: `in` (any size, 8-bit RGB) -> chw [3,S,S] normalised.
 * sample_seed from augment_sample_seed(). trace may be NULL. `in` is not
 * modified. */
ramc_status augment_train(const ramc_image *in, const ramc_augment_options *opt,
                          uint64_t sample_seed, float *chw, ramc_augment_trace *trace);

/* Test transform: Pillow bilinear resize to size x size, then
 * (x/255 - mean) / std. */
ramc_status augment_test(const ramc_image *in, int size, const float mean[3],
                         const float std[3], float *chw);

#endif
