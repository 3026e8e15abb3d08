/* ramc preprocess: the official test-time image pipeline as a command.
 * Decode (Pillow-compatible), resize (Pillow-exact), optionally normalise,
 * and write the results. Every output is produced in memory first and then
 * written atomically, so a failure leaves no partial file behind. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "image/image.h"
#include "io/file.h"
#include "io/safetensors.h"
#include "ramc.h"

static const char usage_text[] =
    "usage: ramc preprocess IMAGE [--size S | --size WxH] [--filter bilinear|bicubic]\n"
    "                        [--out OUT.png] [--tensor OUT.safetensors] [--rgb OUT.rgb]\n"
    "                        [--mean m1,m2,m3 --std s1,s2,s3 | --clip-stats]\n"
    "\n"
    "Decodes IMAGE (JPEG or PNG) to RGB as Pillow's Image.open(...).convert(\"RGB\"),\n"
    "resizes it exactly as Pillow's Image.resize (the official test transform is\n"
    "--size 224 --filter bilinear; training uses bicubic) and writes:\n"
    "  --out OUT.png            the resized image as an 8-bit RGB PNG\n"
    "  --tensor OUT.safetensors the normalised tensor 'image' [1,3,H,W] float32,\n"
    "                           (x/255 - mean)/std as torchvision computes it\n"
    "  --rgb OUT.rgb            the resized pixels as raw interleaved RGB bytes\n"
    "At least one output is required. Without --size the image keeps its size.\n"
    "Normalisation defaults to RAM's mean = std = 0.5; --clip-stats selects CLIP's\n"
    "(0.48145466,0.4578275,0.40821073) / (0.26862954,0.26130258,0.27577711).\n";

static int usage_error(const char *fmt, const char *arg) {
    fprintf(stderr, "ramc preprocess: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nRun 'ramc preprocess --help' for the options.\n");
    return 2;
}

static int parse_int(const char *s, const char *end, int *out) {
    if (s == end) return 0;
    long v = 0;
    for (const char *p = s; p < end; p++) {
        if (*p < '0' || *p > '9') return 0;
        v = v * 10 + (*p - '0');
        if (v > 1000000) return 0;
    }
    *out = (int)v;
    return v > 0;
}

/* "S" or "WxH". */
static int parse_size(const char *s, int *w, int *h) {
    const char *x = strchr(s, 'x');
    if (!x) x = strchr(s, 'X');
    if (!x) {
        if (!parse_int(s, s + strlen(s), w)) return 0;
        *h = *w;
        return 1;
    }
    return parse_int(s, x, w) && parse_int(x + 1, x + strlen(x), h);
}

static int parse_triple(const char *s, float v[3]) {
    char *end;
    for (int i = 0; i < 3; i++) {
        errno = 0;
        v[i] = strtof(s, &end);
        if (end == s || errno) return 0;
        if (i < 2) {
            if (*end != ',') return 0;
            s = end + 1;
        }
    }
    return *end == '\0';
}

int cmd_preprocess(int argc, char **argv) {
    const char *image = NULL, *out_png = NULL, *out_tensor = NULL, *out_rgb = NULL;
    const char *mean_arg = NULL, *std_arg = NULL;
    int width = 0, height = 0, clip_stats = 0;
    ramc_filter filter = RAMC_FILTER_BILINEAR;
    const char *filter_name = "bilinear";

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage_text, stdout);
            return 0;
        }
        if (!strcmp(a, "--clip-stats")) {
            clip_stats = 1;
            continue;
        }
        if (a[0] == '-' && a[1] == '-') {
            static const char *const takes_value[] = {"--size", "--filter", "--out", "--tensor",
                                                      "--rgb", "--mean", "--std"};
            int known = 0;
            for (size_t k = 0; k < sizeof takes_value / sizeof *takes_value; k++)
                if (!strcmp(a, takes_value[k])) known = 1;
            if (!known) return usage_error("unknown option '%s'", a);
            if (i + 1 >= argc) return usage_error("option '%s' needs a value", a);
            const char *v = argv[++i];
            if (!strcmp(a, "--size")) {
                if (!parse_size(v, &width, &height))
                    return usage_error("invalid --size '%s' (want S or WxH, positive)", v);
            } else if (!strcmp(a, "--filter")) {
                if (!strcmp(v, "bilinear")) filter = RAMC_FILTER_BILINEAR;
                else if (!strcmp(v, "bicubic")) filter = RAMC_FILTER_BICUBIC;
                else return usage_error("unknown --filter '%s' (bilinear or bicubic)", v);
                filter_name = v;
            } else if (!strcmp(a, "--out")) {
                out_png = v;
            } else if (!strcmp(a, "--tensor")) {
                out_tensor = v;
            } else if (!strcmp(a, "--rgb")) {
                out_rgb = v;
            } else if (!strcmp(a, "--mean")) {
                mean_arg = v;
            } else {
                std_arg = v;
            }
            continue;
        }
        if (image) return usage_error("unexpected argument '%s'", a);
        image = a;
    }
    if (!image) return usage_error("%s", "no input image given");
    if (!out_png && !out_tensor && !out_rgb)
        return usage_error("%s", "no output given (--out, --tensor or --rgb)");
    if (clip_stats && (mean_arg || std_arg))
        return usage_error("%s", "--clip-stats and --mean/--std are exclusive");
    if (!mean_arg != !std_arg) return usage_error("%s", "--mean and --std go together");

    float mean[3] = {0.5f, 0.5f, 0.5f}, std[3] = {0.5f, 0.5f, 0.5f};
    if (clip_stats) {
        const float cm[3] = {0.48145466f, 0.4578275f, 0.40821073f};
        const float cs[3] = {0.26862954f, 0.26130258f, 0.27577711f};
        memcpy(mean, cm, sizeof mean);
        memcpy(std, cs, sizeof std);
    }
    if (mean_arg && !parse_triple(mean_arg, mean))
        return usage_error("invalid --mean '%s' (want three comma-separated numbers)", mean_arg);
    if (std_arg && !parse_triple(std_arg, std))
        return usage_error("invalid --std '%s' (want three comma-separated numbers)", std_arg);

    ramc_image decoded = {0}, resized = {0};
    float *chw = NULL;
    uint8_t *png = NULL;
    size_t png_size = 0;
    st_writer *writer = NULL;
    int rc = 1;

    if (ramc_image_load(image, &decoded) != RAMC_OK) goto done;
    if (!width) {
        width = decoded.width;
        height = decoded.height;
    }
    if (ramc_image_resize(&decoded, width, height, filter, &resized) != RAMC_OK) {
        ramc_error_prefix(RAMC_ERR_INVALID_ARG, "%s", image);
        goto done;
    }
    if (out_tensor) {
        size_t count = (size_t)3 * width * height;
        chw = malloc(count * sizeof(float));
        if (!chw) {
            ramc_error(RAMC_ERR_NOMEM, "out of memory for the tensor");
            goto done;
        }
        /* the library's test transform (ramc_preprocess_image), so this
         * tensor is what ramc predict feeds the model for the same settings */
        ramc_preprocess_params pp = ramc_preprocess_default_params();
        pp.width = width, pp.height = height, pp.filter = filter;
        memcpy(pp.mean, mean, sizeof pp.mean);
        memcpy(pp.std, std, sizeof pp.std);
        if (ramc_preprocess_image(NULL, &decoded, &pp, chw) != RAMC_OK) goto done;
        writer = st_writer_new();
        if (!writer) goto done;
        int64_t shape[4] = {1, 3, height, width};
        char buf[160];
        if (st_writer_add_f32(writer, "image", ST_F32, 4, shape, chw) != RAMC_OK) goto done;
        snprintf(buf, sizeof buf, "%.9g,%.9g,%.9g", mean[0], mean[1], mean[2]);
        if (st_writer_set_metadata(writer, "mean", buf) != RAMC_OK) goto done;
        snprintf(buf, sizeof buf, "%.9g,%.9g,%.9g", std[0], std[1], std[2]);
        if (st_writer_set_metadata(writer, "std", buf) != RAMC_OK) goto done;
        if (st_writer_set_metadata(writer, "filter", filter_name) != RAMC_OK) goto done;
    }
    if (out_png && image_encode_png(&resized, &png, &png_size) != RAMC_OK) goto done;

    /* Everything that can fail on the input has; now the writes. */
    if (out_png && file_write_atomic(out_png, png, png_size) != RAMC_OK) goto done;
    if (out_rgb &&
        file_write_atomic(out_rgb, resized.rgb, (size_t)width * height * 3) != RAMC_OK)
        goto done;
    if (out_tensor && st_writer_save(writer, out_tensor) != RAMC_OK) goto done;
    rc = 0;
done:
    if (rc) cli_fail("preprocess");
    st_writer_free(writer);
    free(png);
    free(chw);
    ramc_image_free(&resized);
    ramc_image_free(&decoded);
    return rc;
}
