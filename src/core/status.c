#include "core/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local char last_error[1024];

const char *ramc_last_error(void) { return last_error; }

void ramc_clear_error(void) { last_error[0] = '\0'; }

ramc_status ramc_error(ramc_status code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return code;
}

ramc_status ramc_error_prefix(ramc_status code, const char *fmt, ...) {
    char prefix[512], old[sizeof last_error];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, last_error, sizeof old);
    /* bounded pieces: the joined message may be cut, never overflow */
    snprintf(last_error, sizeof last_error, "%.400s: %.600s", prefix, old);
    return code;
}

void *ramc_malloc(size_t bytes, const char *what) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) ramc_error(RAMC_ERR_NOMEM, "out of memory allocating %zu bytes for %s", bytes, what);
    return p;
}

void *ramc_calloc(size_t count, size_t size, const char *what) {
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) ramc_error(RAMC_ERR_NOMEM, "out of memory allocating %zu x %zu bytes for %s", count, size, what);
    return p;
}

const char *ramc_status_name(ramc_status s) {
    switch (s) {
    case RAMC_OK: return "ok";
    case RAMC_ERR_IO: return "I/O error";
    case RAMC_ERR_FORMAT: return "malformed input";
    case RAMC_ERR_INVALID_ARG: return "invalid argument";
    case RAMC_ERR_NOMEM: return "out of memory";
    case RAMC_ERR_MISMATCH: return "mismatch";
    case RAMC_ERR_LIMIT: return "limit exceeded";
    case RAMC_ERR_NUMERIC: return "non-finite value";
    }
    return "unknown error";
}
