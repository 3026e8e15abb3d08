#include "io/file.h"

#include "core/utf8.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *file_kind(mode_t m) {
    if (S_ISDIR(m)) return "a folder";
    if (S_ISFIFO(m)) return "a FIFO (named pipe)";
    if (S_ISCHR(m)) return "a character device";
    if (S_ISBLK(m)) return "a block device";
    if (S_ISSOCK(m)) return "a socket";
    return "not a regular file";
}

ramc_status open_regular_file(const char *path, int *fd, struct stat *sb) {
    *fd = -1;
    int f = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (f < 0) return ramc_error(RAMC_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat s;
    if (fstat(f, &s) != 0) {
        int e = errno;
        close(f);
        return ramc_error(RAMC_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(s.st_mode)) {
        close(f);
        return ramc_error(RAMC_ERR_IO, "%s: is %s, not a regular file", path, file_kind(s.st_mode));
    }
    int flags = fcntl(f, F_GETFL);
    if (flags < 0 || fcntl(f, F_SETFL, flags & ~O_NONBLOCK) != 0) {
        int e = errno;
        close(f);
        return ramc_error(RAMC_ERR_IO, "%s: cannot clear O_NONBLOCK: %s", path, strerror(e));
    }
    *fd = f;
    if (sb) *sb = s;
    return RAMC_OK;
}

ramc_status fopen_regular_file(const char *path, FILE **out, struct stat *sb) {
    *out = NULL;
    int fd;
    ramc_status st = open_regular_file(path, &fd, sb);
    if (st != RAMC_OK) return st;
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        int e = errno;
        close(fd);
        return ramc_error(RAMC_ERR_IO, "%s: cannot open: %s", path, strerror(e));
    }
    *out = f;
    return RAMC_OK;
}

ramc_status read_whole_file(const char *path, size_t max_bytes, char **data, size_t *len) {
    *data = NULL;
    if (len) *len = 0;
    FILE *f;
    struct stat sb;
    ramc_status st = fopen_regular_file(path, &f, &sb);
    if (st != RAMC_OK) return st;
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

/* Whether the failure at `at` is data after a complete value (for the message). */
static int text_trailing(const char *text, size_t n, long at) {
    if (at <= 0 || (size_t)at >= n) return 0;
    cJSON *v = cJSON_ParseWithLength(text, (size_t)at);
    int whole = v != NULL;
    cJSON_Delete(v);
    return whole;
}

ramc_status json_error(const char *name, int trailing, long at) {
    if (trailing)
        return ramc_error(RAMC_ERR_FORMAT, "%s: data after the end of the JSON value at byte %ld", name, at);
    return ramc_error(RAMC_ERR_FORMAT, "%s: invalid JSON near byte %ld", name, at);
}

ramc_status json_parse_text(const char *text, size_t n, const char *name, cJSON **out) {
    long at = -1;
    *out = json_parse_whole(text, n, &at);
    if (*out) return RAMC_OK;
    return json_error(name, text_trailing(text, n, at), at);
}

cJSON *json_parse_whole(const char *text, size_t n, long *at) {
    const char *end = NULL;
    if (at) *at = -1;
    cJSON *root = cJSON_ParseWithLengthOpts(text, n, &end, 0);
    if (!root) {
        if (at && end) *at = (long)(end - text);
        return NULL;
    }
    size_t k = (size_t)(end - text);
    while (k < n && (text[k] == ' ' || text[k] == '\t' || text[k] == '\n' || text[k] == '\r')) k++;
    if (k < n) {
        cJSON_Delete(root);
        if (at) *at = (long)k;
        return NULL;
    }
    return root;
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
    long offset = -1;
    cJSON *root = json_parse_whole(text, n, &offset);
    if (!root) {
        ramc_status st2 = json_error(path, text_trailing(text, n, offset), offset);
        free(text);
        return st2;
    }
    free(text);
    *out = root;
    return RAMC_OK;
}

cJSON *json_string_utf8(const char *s) {
    char *clean = utf8_sanitize(s ? s : "");
    if (!clean) return NULL;
    cJSON *v = cJSON_CreateString(clean);
    free(clean);
    return v;
}

void file_parent_dir(const char *path, char *out, size_t size) {
    if (!out || size == 0) return;
    const char *slash = strrchr(path, '/');
    if (!slash) {
        snprintf(out, size, ".");
        return;
    }
    size_t n = slash == path ? 1 : (size_t)(slash - path);
    snprintf(out, size, "%.*s", (int)(n < size ? n : size - 1), path);
}
