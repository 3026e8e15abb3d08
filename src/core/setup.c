/* Process-wide settings that used to come from the environment: the library
 * reads no environment variable (the ramc command does, and passes them
 * here), so an application decides what applies to it. */
#define _GNU_SOURCE /* dladdr */
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/* share/ramc of an installed tree, found from where this code was loaded from
 * (libramc.so, or a binary linked with libramc.a), so the tree can be moved:
 * "" when this is not an installed copy (a build tree). */
static char g_installed[4096];
static pthread_once_t g_installed_once = PTHREAD_ONCE_INIT;

static void find_installed_data(void) {
#if defined(RAMC_DATA_FROM_LIB) && defined(RAMC_DATA_FROM_BIN)
    Dl_info info;
    if (!dladdr((void *)&find_installed_data, &info) || !info.dli_fname) return;
    char self[4096];
    if (!realpath(info.dli_fname, self)) return;
    char *slash = strrchr(self, '/');
    if (!slash) return;
    *slash = '\0';
    const char *rel[2] = {RAMC_DATA_FROM_LIB, RAMC_DATA_FROM_BIN};
    for (int i = 0; i < 2; i++) {
        char dir[4096 + 512], probe[4096 + 600];
        snprintf(dir, sizeof dir, "%s/%s", self, rel[i]);
        snprintf(probe, sizeof probe, "%s/bpe_simple_vocab_16e6.txt.gz", dir);
        if (access(probe, R_OK) == 0 && strlen(dir) < sizeof g_installed) {
            snprintf(g_installed, sizeof g_installed, "%s", dir);
            return;
        }
    }
#endif
}

void core_data_dir(char *buf, size_t size) {
    if (!buf || size == 0) return;
    pthread_once(&g_installed_once, find_installed_data);
    /* copied under the lock: a concurrent ramc_set_data_dir never shows half a path */
    pthread_mutex_lock(&g_lock);
    snprintf(buf, size, "%s",
             g_data_dir[0] ? g_data_dir : g_installed[0] ? g_installed : RAMC_DATA_DIR);
    pthread_mutex_unlock(&g_lock);
}
