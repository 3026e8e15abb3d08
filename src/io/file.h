/* Whole-file reads with size limits, and JSON files. */
#ifndef RAMC_IO_FILE_H
#define RAMC_IO_FILE_H

#include <stddef.h>
#include <stdio.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "core/status.h"

/* Opens a file the user named for reading. O_NONBLOCK makes open() return
 * at once on a FIFO (which would otherwise wait for a writer forever); the
 * fstat then refuses anything but a regular file (FIFO, folder, device such
 * as /dev/zero, socket), naming it, and the flag is cleared for the reads.
 * Returns the descriptor in *fd (caller closes) and, if sb, its stat. */
ramc_status open_regular_file(const char *path, int *fd, struct stat *sb);

/* The same, as a stdio stream (mode "rb"). */
ramc_status fopen_regular_file(const char *path, FILE **out, struct stat *sb);

/* Reads `path` into a NUL-terminated buffer (caller frees). Files larger than
 * max_bytes are refused with RAMC_ERR_LIMIT before anything is allocated. */
ramc_status read_whole_file(const char *path, size_t max_bytes, char **data, size_t *len);

/* Parses text[0..n) as one JSON value followed by nothing but white space
 * (cJSON alone stops after the value and accepts "]}garbage"). On failure
 * returns NULL and, if at, the byte offset of the problem. */
cJSON *json_parse_whole(const char *text, size_t n, long *at);

/* json_parse_whole with the error recorded: "NAME: invalid JSON near byte k"
 * or "NAME: data after the end of the JSON value at byte k". */
ramc_status json_parse_text(const char *text, size_t n, const char *name, cJSON **out);
ramc_status json_error(const char *name, int trailing, long at);

/* A JSON string of s that stays valid JSON whatever bytes s holds (a file
 * name can hold any): invalid UTF-8 becomes U+FFFD (utf8_sanitize). NULL
 * when out of memory. */
cJSON *json_string_utf8(const char *s);

/* Parses a JSON file; errors name the file and the offset of a syntax error. */
ramc_status json_load_file(const char *path, size_t max_bytes, cJSON **out);

/* Writes `size` bytes atomically (temporary file in the same folder, fsync,
 * rename). On failure nothing is left behind. */
ramc_status file_write_atomic(const char *path, const void *data, size_t size);
/* The same with durable = 0: no fsync, so a reader never sees a partial
 * file but a power cut may lose it (for many small generated files). */
ramc_status file_write_replace(const char *path, const void *data, size_t size, int durable);

/* The folder holding `path` into out[size]: "." for a bare name, "/" for a
 * file at the root (truncated to size - 1 bytes). */
void file_parent_dir(const char *path, char *out, size_t size);

#endif
