/* tag_image: the smallest useful program on the installed libramc.
 *
 *   cc tag_image.c $(pkg-config --cflags --libs ramc) -o tag_image
 *   ./tag_image photo.jpg "cat,dog,red star"
 *
 * Loads the default model that ships with ramc (or CLIP weights and an adapter
 * given as the 3rd and 4th arguments), encodes the labels, runs the official
 * test transform and RAM, and prints each label's score, best first. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ramc.h>

static int fail(const char *what) {
    fprintf(stderr, "tag_image: %s: %s\n", what, ramc_last_error());
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: tag_image IMAGE LABEL[,LABEL...] [CLIP ADAPTER]\n");
        return 2;
    }
    char clip[4096], adapter[4096];
    if (argc >= 5) {
        snprintf(clip, sizeof clip, "%s", argv[3]);
        snprintf(adapter, sizeof adapter, "%s", argv[4]);
    } else if (ramc_default_model_paths(clip, adapter, sizeof clip) != RAMC_OK) {
        return fail("default model");
    }
    ramc_model *model = NULL;
    if (ramc_model_load(clip, adapter, NULL, &model) != RAMC_OK) return fail("model");

    /* labels: split the comma-separated list in place */
    char *list = malloc(strlen(argv[2]) + 1); /* strdup is not C11 */
    if (!list) return 1;
    strcpy(list, argv[2]);
    const char *names[64];
    int n = 0;
    for (char *tok = strtok(list, ","); tok && n < 64; tok = strtok(NULL, ",")) names[n++] = tok;
    ramc_labels *labels = NULL;
    if (ramc_labels_encode(model, NULL, names, n, NULL, &labels) != RAMC_OK) return fail("labels");

    const int S = ramc_model_get_info(model).image_size;
    float *image = malloc((size_t)3 * S * S * sizeof *image), *scores = malloc((size_t)n * sizeof *scores);
    if (!image || !scores) return 1;
    if (ramc_preprocess_file(model, argv[1], NULL, image) != RAMC_OK) return fail(argv[1]);
    if (ramc_predict(model, labels, image, 1, NULL, scores, NULL, NULL) != RAMC_OK) return fail("predict");

    printf("ramc %s, %s\n", ramc_version(), argv[1]);
    for (int k = 0; k < n; k++) { /* best first: selection by the largest remaining */
        int best = 0;
        for (int c = 1; c < n; c++)
            if (scores[c] > scores[best]) best = c;
        printf("%-24s %.4f\n", ramc_labels_name(labels, best), scores[best]);
        scores[best] = -1;
    }
    free(image);
    free(scores);
    free(list);
    ramc_labels_free(labels);
    ramc_model_free(model);
    return 0;
}
