/* Whole-file reads with size limits, and JSON files. */
#ifndef RAMC_IO_FILE_H
#define RAMC_IO_FILE_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "core/status.h"

/* Reads `path` into a NUL-terminated buffer (caller frees). Files larger than
 * max_bytes are refused with RAMC_ERR_LIMIT before anything is allocated. */
ramc_status read_whole_file(const char *path, size_t max_bytes, char **data, size_t *len);

/* Parses a JSON file; errors name the file and the offset of a syntax error. */
ramc_status json_load_file(const char *path, size_t max_bytes, cJSON **out);

#endif
