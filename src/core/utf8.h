/* Strict UTF-8 validation, shared by every reader of untrusted text. */
#ifndef RAMC_CORE_UTF8_H
#define RAMC_CORE_UTF8_H

#include <stddef.h>

/* Strict UTF-8 as Python's codec (no overlong forms, surrogates or code
 * points above U+10FFFF): returns the offset of the first bad byte, or -1
 * when all n bytes are valid. Byte order equals code-point order only for
 * valid UTF-8, and the tokenizer needs valid text. */
long utf8_invalid_at(const unsigned char *s, size_t n);

#endif
