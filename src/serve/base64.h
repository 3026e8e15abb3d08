/* Base64 (RFC 4648, standard alphabet with padding): images arrive in JSON
 * requests as base64, heat maps leave as base64 PNG. */
#ifndef RAMC_SERVE_BASE64_H
#define RAMC_SERVE_BASE64_H

#include <stddef.h>
#include <stdint.h>

/* Decodes text[0..n) into a malloc'd buffer. White space (line breaks of
 * wrapped base64) is skipped; padding is optional, but anything else outside
 * the alphabet, or a length that cannot be base64, fails. Returns 0 on bad
 * input or out of memory (*bad_at: offset of the first bad character, or -1
 * for a bad length / no memory). */
int base64_decode(const char *text, size_t n, uint8_t **out, size_t *out_n, long *bad_at);

/* Encodes data[0..n) as a NUL-terminated malloc'd string; NULL out of memory. */
char *base64_encode(const uint8_t *data, size_t n);

#endif
