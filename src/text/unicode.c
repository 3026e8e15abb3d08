/* Code-point buffers, UTF-8 and the Unicode properties the tokenizer needs.
 * Properties come from tables generated from Python (text_tables.c) rather
 * than from utf8proc, so that they follow the Unicode version of the
 * reference (Python 3.11, Unicode 14.0) whatever libutf8proc is installed. */
#include <stdlib.h>
#include <string.h>

#include "text/text.h"
#include "text/text_tables.h"

int ramc_cpbuf_reserve(ramc_cpbuf *b, size_t cap) {
    if (cap <= b->cap) return 0;
    size_t nc = b->cap ? b->cap : 16;
    while (nc < cap) nc *= 2;
    uint32_t *v = realloc(b->v, nc * sizeof *v);
    if (!v) return -1;
    b->v = v;
    b->cap = nc;
    return 0;
}

int ramc_cpbuf_push(ramc_cpbuf *b, uint32_t cp) {
    if (b->n == b->cap && ramc_cpbuf_reserve(b, b->n + 1)) return -1;
    b->v[b->n++] = cp;
    return 0;
}

int ramc_cpbuf_push_utf8(ramc_cpbuf *b, const char *s) {
    size_t bad;
    return ramc_utf8_decode((const uint8_t *)s, strlen(s), b, &bad) ? -1 : 0;
}

void ramc_cpbuf_free(ramc_cpbuf *b) {
    free(b->v);
    b->v = NULL;
    b->n = b->cap = 0;
}

int ramc_utf8_decode(const uint8_t *s, size_t len, ramc_cpbuf *out, size_t *bad_at) {
    if (ramc_cpbuf_reserve(out, out->n + len)) return -2;
    size_t i = 0;
    while (i < len) {
        uint8_t c = s[i];
        uint32_t cp;
        size_t k;
        if (c < 0x80) {
            out->v[out->n++] = c;
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) { k = 1; cp = c & 0x1F; }
        else if (c >= 0xE0 && c <= 0xEF) { k = 2; cp = c & 0x0F; }
        else if (c >= 0xF0 && c <= 0xF4) { k = 3; cp = c & 0x07; }
        else { *bad_at = i; return -1; }
        for (size_t j = 1; j <= k; j++) {
            if (i + j >= len || (s[i + j] & 0xC0) != 0x80) { *bad_at = i; return -1; }
            cp = (cp << 6) | (s[i + j] & 0x3F);
        }
        /* overlong forms, surrogates and values past U+10FFFF are errors */
        if ((k == 2 && cp < 0x800) || (k == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF)) {
            *bad_at = i;
            return -1;
        }
        out->v[out->n++] = cp;
        i += k + 1;
    }
    return 0;
}

int ramc_utf8_put(uint32_t cp, uint8_t *o) {
    if (cp < 0x80) { o[0] = (uint8_t)cp; return 1; }
    if (cp < 0x800) { o[0] = (uint8_t)(0xC0 | (cp >> 6)); o[1] = (uint8_t)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        o[0] = (uint8_t)(0xE0 | (cp >> 12)); o[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (uint8_t)(0xF0 | (cp >> 18)); o[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F)); o[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

int ramc_py_isspace(uint32_t c) {
    if (c < 0x80) return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20);
    return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 ||
           c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

int ramc_regex_isspace(uint32_t c) { return ramc_py_isspace(c) && !(c >= 0x1C && c <= 0x1F); }

static int in_ranges(const ramc_cp_range *r, size_t n, uint32_t c) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (c < r[mid].lo) hi = mid;
        else if (c > r[mid].hi) lo = mid + 1;
        else return 1;
    }
    return 0;
}

int ramc_is_letter(uint32_t c) {
    if (c < 0x80) return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
    return in_ranges(ramc_letter_ranges, ramc_letter_ranges_count, c);
}

int ramc_is_number(uint32_t c) {
    if (c < 0x80) return c >= '0' && c <= '9';
    return in_ranges(ramc_number_ranges, ramc_number_ranges_count, c);
}

int ramc_text_is_cased(uint32_t c) { return in_ranges(ramc_cased_ranges, ramc_cased_ranges_count, c); }
int ramc_text_is_case_ignorable(uint32_t c) {
    return in_ranges(ramc_case_ignorable_ranges, ramc_case_ignorable_ranges_count, c);
}
int ramc_text_html_invalid_codepoint(uint32_t c) {
    return in_ranges(ramc_html_invalid_codepoints, ramc_html_invalid_codepoints_count, c);
}
