/* Base64 encoding and decoding (base64.h). */
#include "serve/base64.h"

#include <stdlib.h>

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int sextet(unsigned char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

static int is_space(unsigned char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

int base64_decode(const char *text, size_t n, uint8_t **out, size_t *out_n, long *bad_at) {
    *out = NULL, *out_n = 0, *bad_at = -1;
    uint8_t *buf = malloc(n / 4 * 3 + 3);
    if (!buf) return 0;
    size_t len = 0;
    uint32_t acc = 0;
    int have = 0, pads = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)text[i];
        if (is_space(c)) continue;
        if (c == '=') {
            pads++;
            continue;
        }
        int v = sextet(c);
        if (v < 0 || pads) { /* a character outside the alphabet, or data after padding */
            *bad_at = (long)i;
            free(buf);
            return 0;
        }
        acc = acc << 6 | (uint32_t)v;
        if (++have == 4) {
            buf[len++] = (uint8_t)(acc >> 16), buf[len++] = (uint8_t)(acc >> 8), buf[len++] = (uint8_t)acc;
            acc = 0, have = 0;
        }
    }
    /* 1 leftover sextet cannot be; padding must complete the last quantum */
    if (have == 1 || pads > 2 || (pads && have + pads != 4)) {
        free(buf);
        return 0;
    }
    if (have == 2) buf[len++] = (uint8_t)(acc >> 4);
    if (have == 3) buf[len++] = (uint8_t)(acc >> 10), buf[len++] = (uint8_t)(acc >> 2);
    *out = buf, *out_n = len;
    return 1;
}

char *base64_encode(const uint8_t *data, size_t n) {
    char *s = malloc((n + 2) / 3 * 4 + 1), *p = s;
    if (!s) return NULL;
    size_t i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8 | data[i + 2];
        *p++ = alphabet[v >> 18], *p++ = alphabet[v >> 12 & 63], *p++ = alphabet[v >> 6 & 63], *p++ = alphabet[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)data[i] << 16 | (i + 1 < n ? (uint32_t)data[i + 1] << 8 : 0);
        *p++ = alphabet[v >> 18], *p++ = alphabet[v >> 12 & 63];
        *p++ = i + 1 < n ? alphabet[v >> 6 & 63] : '=';
        *p++ = '=';
    }
    *p = 0;
    return s;
}
