/* Internal interface of the CLIP text pipeline: code-point buffers, Unicode
 * properties as Python sees them, and the cleanup that precedes BPE. */
#ifndef RAMC_TEXT_TEXT_H
#define RAMC_TEXT_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

/* A growable array of Unicode code points (Python's view of a str). */
typedef struct {
    uint32_t *v;
    size_t n, cap;
} ramc_cpbuf;

int ramc_cpbuf_reserve(ramc_cpbuf *b, size_t cap);
int ramc_cpbuf_push(ramc_cpbuf *b, uint32_t cp);
int ramc_cpbuf_push_utf8(ramc_cpbuf *b, const char *s); /* s: trusted UTF-8 */
void ramc_cpbuf_free(ramc_cpbuf *b);

/* Decodes strict UTF-8 (as Python's 'utf-8' codec). Returns -1 and the byte
 * offset of the first error in *bad_at on failure, 0 on success, -2 on NOMEM. */
int ramc_utf8_decode(const uint8_t *s, size_t len, ramc_cpbuf *out, size_t *bad_at);
/* Appends the UTF-8 encoding of cp to out (at most 4 bytes), returns length. */
int ramc_utf8_put(uint32_t cp, uint8_t *out);

/* Python's str.isspace(). */
int ramc_py_isspace(uint32_t cp);
/* The `regex` module's \s (Unicode White_Space): isspace() minus U+1C..U+1F. */
int ramc_regex_isspace(uint32_t cp);
int ramc_is_letter(uint32_t cp); /* \p{L} */
int ramc_is_number(uint32_t cp); /* \p{N} */
/* CPython's Final_Sigma context properties, and html's invalid code points. */
int ramc_text_is_cased(uint32_t cp);
int ramc_text_is_case_ignorable(uint32_t cp);
int ramc_text_html_invalid_codepoint(uint32_t cp);

/* The whole cleanup of the official tokenizer:
 * whitespace_clean(basic_clean(text)).lower(). */
ramc_status ramc_text_clean(const uint32_t *text, size_t n, ramc_cpbuf *out);

/* Pieces of ftfy.fix_text / html.unescape, exposed for tests. */
ramc_status ramc_ftfy_fix_text(const uint32_t *text, size_t n, ramc_cpbuf *out);
ramc_status ramc_html_unescape(const uint32_t *text, size_t n, ramc_cpbuf *out);
int ramc_ftfy_is_bad(const uint32_t *text, size_t n);

/* The default BPE file: bpe_simple_vocab_16e6.txt.gz in the data folder
 * (ramc_set_data_dir, else the one the library was built with). */
void ramc_text_default_vocab_path(char *buf, size_t size);

/* CLIP's pre-tokenisation regex (special tokens, contractions, \p{L}+, one
 * \p{N}, runs of other non-space characters) at position i of cleaned text
 * v[0..n): the length of the piece starting there, or 0 when v[i] is
 * whitespace, which separates pieces and is dropped. */
size_t ramc_pretoken_length(const uint32_t *v, size_t n, size_t i);

#endif
