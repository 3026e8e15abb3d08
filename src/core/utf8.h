/* Strict UTF-8 validation, shared by every reader of untrusted text. */
#ifndef RAMC_CORE_UTF8_H
#define RAMC_CORE_UTF8_H

#include <stddef.h>

/* Strict UTF-8 as Python's codec (no overlong forms, surrogates or code
 * points above U+10FFFF): returns the offset of the first bad byte, or -1
 * when all n bytes are valid. Byte order equals code-point order only for
 * valid UTF-8, and the tokenizer needs valid text. */
long utf8_invalid_at(const unsigned char *s, size_t n);

/* Unicode White_Space (U+00A0, U+3000, ...) and the invisible U+200B/U+FEFF. */
int utf8_is_space(unsigned cp);

/* Narrows [*s, *s + *n) past leading and trailing utf8_is_space code points. */
void utf8_trim_space(const char **s, size_t *n);

/* Whether s[0..n) holds nothing but utf8_is_space code points. */
int utf8_is_blank(const char *s, size_t n);

/* A malloc'd copy of the NUL-terminated s with every byte that is not part
 * of valid UTF-8 replaced by U+FFFD (as Python's errors="replace"), for
 * text that must go into JSON: a file name can hold any bytes. */
char *utf8_sanitize(const char *s);

#endif
