#include "io/file.h"

#include "core/utf8.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

ramc_status read_whole_file(const char *path, size_t max_bytes, char **data, size_t *len) {
    *data = NULL;
    if (len) *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return ramc_error(RAMC_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(f);
        return ramc_error(RAMC_ERR_IO, "%s: not a regular file", path);
    }
    if ((unsigned long long)sb.st_size > max_bytes) {
        fclose(f);
        return ramc_error(RAMC_ERR_LIMIT, "%s: %lld bytes, more than the %zu allowed", path,
                          (long long)sb.st_size, max_bytes);
    }
    size_t n = (size_t)sb.st_size;
    char *buf = ramc_malloc(n + 1, path);
    if (!buf) {
        fclose(f);
        return RAMC_ERR_NOMEM;
    }
    if (fread(buf, 1, n, f) != n) {
        fclose(f);
        free(buf);
        return ramc_error(RAMC_ERR_IO, "%s: read failed", path);
    }
    fclose(f);
    buf[n] = '\0';
    *data = buf;
    if (len) *len = n;
    return RAMC_OK;
}

ramc_status json_load_file(const char *path, size_t max_bytes, cJSON **out) {
    char *text;
    size_t n;
    *out = NULL;
    ramc_status st = read_whole_file(path, max_bytes, &text, &n);
    if (st != RAMC_OK) return st;
    long bad = utf8_invalid_at((const unsigned char *)text, n);
    if (bad >= 0) {
        free(text);
        return ramc_error(RAMC_ERR_FORMAT, "%s: not valid UTF-8 (byte %ld); JSON text must be UTF-8",
                          path, bad);
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, n, &end, 0);
    if (!root) {
        long offset = end ? (long)(end - text) : -1;
        free(text);
        return ramc_error(RAMC_ERR_FORMAT, "%s: invalid JSON near byte %ld", path, offset);
    }
    free(text);
    *out = root;
    return RAMC_OK;
}
