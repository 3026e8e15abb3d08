/* Where the embedded default model lives, found like the default vocabulary
 * (ramc_text_default_vocab_path): in the data folder of ramc_set_data_dir, so
 * an installed or relocated tree can point elsewhere (the ramc command sets
 * it from $RAMC_DATA_DIR), else the one fixed at build time. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/setup.h"
#include "ramc.h"

ramc_status ramc_default_model_paths(char *clip_path, char *adapter_path, size_t size) {
    if (!clip_path || !adapter_path || size == 0)
        return ramc_error(RAMC_ERR_INVALID_ARG, "default_model_paths: NULL or empty buffer");
    char dir[4096];
    core_data_dir(dir, sizeof dir);
    int a = snprintf(clip_path, size, "%s/default/clip.safetensors", dir);
    int b = snprintf(adapter_path, size, "%s/default/adapter.safetensors", dir);
    if (a < 0 || b < 0 || (size_t)a >= size || (size_t)b >= size)
        return ramc_error(RAMC_ERR_INVALID_ARG, "default_model_paths: data folder path '%s' too long",
                          dir);
    struct stat sb;
    if (stat(clip_path, &sb) != 0)
        return ramc_error(RAMC_ERR_IO, "%s: the embedded default model is missing (%s); point "
                          "the data folder (RAMC_DATA_DIR for the ramc command, "
                          "ramc_set_data_dir) at the folder holding default/, or give --clip",
                          clip_path, strerror(errno));
    return RAMC_OK;
}
