#include "core/utf8.h"

#include <stdlib.h>
#include <string.h>

long utf8_invalid_at(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i], cp, min;
        size_t len;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            len = 2, cp = c & 0x1F, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3, cp = c & 0x0F, min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return (long)i;
        }
        if (i + len > n) return (long)i;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return (long)i;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return (long)i;
        i += len;
    }
    return -1;
}

/* Decodes one valid code point at s[0..n); returns its length, 0 if invalid. */
static size_t utf8_next(const unsigned char *s, size_t n, unsigned *cp) {
    long bad = utf8_invalid_at(s, n < 4 ? n : 4);
    size_t len = s[0] < 0x80 ? 1 : (s[0] & 0xE0) == 0xC0 ? 2 : (s[0] & 0xF0) == 0xE0 ? 3 : 4;
    if (bad == 0 || len > n) return 0;
    unsigned c = len == 1 ? s[0] : len == 2 ? s[0] & 0x1Fu : len == 3 ? s[0] & 0x0Fu : s[0] & 0x07u;
    for (size_t k = 1; k < len; k++) c = (c << 6) | (s[k] & 0x3Fu);
    *cp = c;
    return len;
}

int utf8_is_space(unsigned cp) {
    /* Unicode White_Space, plus the invisible ZERO WIDTH SPACE and BYTE ORDER
     * MARK that editors leave behind: none of them can carry a label. */
    return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200B) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
           cp == 0x205F || cp == 0x3000 || cp == 0xFEFF;
}

void utf8_trim_space(const char **s, size_t *n) {
    const unsigned char *p = (const unsigned char *)*s;
    size_t len = *n, k;
    unsigned cp;
    while (len && (k = utf8_next(p, len, &cp)) && utf8_is_space(cp)) p += k, len -= k;
    /* from the end: step back over continuation bytes to a code point's start */
    while (len) {
        size_t start = len - 1;
        while (start > 0 && (p[start] & 0xC0) == 0x80 && len - start < 4) start--;
        k = utf8_next(p + start, len - start, &cp);
        if (k != len - start || !utf8_is_space(cp)) break;
        len = start;
    }
    *s = (const char *)p;
    *n = len;
}

int utf8_is_blank(const char *s, size_t n) {
    utf8_trim_space(&s, &n);
    return n == 0;
}

char *utf8_sanitize(const char *s) {
    size_t n = strlen(s), out = 0;
    /* each invalid byte becomes the 3-byte U+FFFD */
    char *r = malloc(3 * n + 1);
    if (!r) return NULL;
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        unsigned cp;
        size_t k = utf8_next(p + i, n - i, &cp);
        if (k) {
            memcpy(r + out, p + i, k);
            out += k, i += k;
        } else {
            memcpy(r + out, "\xEF\xBF\xBD", 3);
            out += 3, i++;
        }
    }
    r[out] = '\0';
    return r;
}
