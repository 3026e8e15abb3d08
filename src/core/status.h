/* Status codes and the per-thread error message.
 *
 * Library code never exits or aborts: a function that can fail returns a
 * ramc_status and, on failure, records a human-readable message with
 * ramc_error(). The message always names the file (or input) and the problem,
 * e.g. "weights.safetensors: tensor 'visual.proj': shape [64,31], expected [64,32]".
 * Callers read it with ramc_last_error() (declared in ramc.h).
 */
#ifndef RAMC_CORE_STATUS_H
#define RAMC_CORE_STATUS_H

#include "ramc.h"

/* Records a printf-style message for this thread and returns `code`, so a
 * failing path reads:  return ramc_error(RAMC_ERR_FORMAT, "%s: ...", path); */
ramc_status ramc_error(ramc_status code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prefixes the current message with "context: " (keeps the original code). */
ramc_status ramc_error_prefix(ramc_status code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* malloc/calloc that record RAMC_ERR_NOMEM with `what` on failure. */
void *ramc_malloc(size_t bytes, const char *what);
void *ramc_calloc(size_t count, size_t size, const char *what);

#endif
