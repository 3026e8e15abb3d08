/* Whole-file writes that never leave a partial file under the final name. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/file.h"

ramc_status file_write_atomic(const char *path, const void *data, size_t size) {
    return file_write_replace(path, data, size, 1);
}

ramc_status file_write_replace(const char *path, const void *data, size_t size, int durable) {
    if (!path || !*path) return ramc_error(RAMC_ERR_INVALID_ARG, "empty output path");
    size_t n = strlen(path);
    char *tmp = ramc_malloc(n + 16, "temporary file name");
    if (!tmp) return RAMC_ERR_NOMEM;
    /* Same folder as the target, so rename() stays on one file system and
     * replaces the target in a single step. */
    snprintf(tmp, n + 16, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        ramc_status s = ramc_error(RAMC_ERR_IO, "%s: cannot create a temporary file: %s", path,
                                   strerror(errno));
        free(tmp);
        return s;
    }
    const uint8_t *p = data;
    size_t left = size;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) goto fail;
        p += w;
        left -= (size_t)w;
    }
    /* mkstemp creates 0600; give the file the usual permissions. */
    mode_t mask = umask(0);
    umask(mask);
    if (fchmod(fd, 0666 & ~mask) != 0) goto fail;
    if (durable && fsync(fd) != 0) goto fail;
    if (close(fd) != 0) {
        fd = -1;
        goto fail;
    }
    fd = -1;
    if (rename(tmp, path) != 0) goto fail;
    free(tmp);
    return RAMC_OK;
fail:;
    int e = errno;
    if (fd >= 0) close(fd);
    unlink(tmp);
    free(tmp);
    return ramc_error(RAMC_ERR_IO, "%s: cannot write: %s", path, strerror(e));
}
