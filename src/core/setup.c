/* Process-wide settings that used to come from the environment: the library
 * reads no environment variable (the ramc command does, and passes them
 * here), so an application decides what applies to it. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "core/setup.h"

#ifndef RAMC_DATA_DIR
#define RAMC_DATA_DIR "data"
#endif
#ifndef RAMC_VERSION_STRING
#error "RAMC_VERSION_STRING comes from CMakeLists.txt (project VERSION)"
#endif

const char *ramc_version(void) { return RAMC_VERSION_STRING; }

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static char g_data_dir[4096]; /* "" = the folder fixed at build time */

ramc_status ramc_set_data_dir(const char *dir) {
    if (dir && strlen(dir) >= sizeof g_data_dir)
        return ramc_error(RAMC_ERR_LIMIT, "data folder '%.200s...': longer than %zu bytes", dir,
                          sizeof g_data_dir - 1);
    pthread_mutex_lock(&g_lock);
    snprintf(g_data_dir, sizeof g_data_dir, "%s", dir ? dir : "");
    pthread_mutex_unlock(&g_lock);
    return RAMC_OK;
}

void core_data_dir(char *buf, size_t size) {
    if (!buf || size == 0) return;
    /* copied under the lock: a concurrent ramc_set_data_dir never shows half a path */
    pthread_mutex_lock(&g_lock);
    snprintf(buf, size, "%s", g_data_dir[0] ? g_data_dir : RAMC_DATA_DIR);
    pthread_mutex_unlock(&g_lock);
}
