/* The text cleanup of CLIP's SimpleTokenizer, reproduced on code points:
 *   ftfy.fix_text (6.3.1 defaults) -> html.unescape twice -> strip
 *   -> re.sub(r'\s+', ' ') -> strip -> str.lower()
 * Every step follows the Python function it stands for, including its odd
 * corners (entity prefixes without ';', C1 references, Final_Sigma), because
 * a single differing character changes the token ids. */
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

#include "text/text.h"
#include "text/text_tables.h"

#define PUSH(b, c) do { if (ramc_cpbuf_push((b), (c))) goto nomem; } while (0)

static ramc_status nomem_error(void) { return ramc_error(RAMC_ERR_NOMEM, "text cleanup: out of memory"); }

/* ----------------------------------------------------------- table lookups */

static const char *cp_lookup(const ramc_cp_entry *t, size_t n, uint32_t cp) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (t[mid].cp == cp) return t[mid].value;
        if (t[mid].cp < cp) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

static const char *str_lookup(const ramc_str_entry *t, size_t n, const char *key) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(t[mid].key, key);
        if (c == 0) return t[mid].value;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

static uint32_t mojibake_mask(uint32_t cp) {
    size_t lo = 0, hi = ramc_mojibake_classes_count;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (ramc_mojibake_classes[mid].cp == cp) return ramc_mojibake_classes[mid].mask;
        if (ramc_mojibake_classes[mid].cp < cp) lo = mid + 1;
        else hi = mid;
    }
    return 0;
}

/* Encodes code points [a, b) as UTF-8 into a NUL-terminated key; 0 if it
 * does not fit (then it cannot be an entity name either). */
static int key_utf8(const uint32_t *t, size_t a, size_t b, char *key, size_t cap) {
    size_t k = 0;
    for (size_t i = a; i < b; i++) {
        if (t[i] == 0 || k + 5 > cap) return 0;
        k += (size_t)ramc_utf8_put(t[i], (uint8_t *)key + k);
    }
    key[k] = 0;
    return 1;
}

/* ------------------------------------------------------------ html.unescape */

static int is_digit(uint32_t c) { return c >= '0' && c <= '9'; }
static int is_hex(uint32_t c) { return is_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f'); }
static int is_alnum_ascii(uint32_t c) { return is_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z'); }

/* The value of a numeric reference as html._replace_charref computes it. */
static int push_charref(ramc_cpbuf *out, const uint32_t *t, size_t a, size_t b, int base) {
    uint64_t num = 0;
    for (size_t i = a; i < b; i++) {
        uint32_t d = is_digit(t[i]) ? t[i] - '0' : (t[i] | 0x20) - 'a' + 10;
        num = num * (uint64_t)base + d;
        if (num > 0x10FFFFu) num = 0x110000u; /* saturate: only "> 0x10FFFF" matters */
    }
    const char *fix = cp_lookup(ramc_html_invalid_charrefs, ramc_html_invalid_charrefs_count, (uint32_t)num);
    if (fix) return ramc_cpbuf_push_utf8(out, fix);
    if ((num >= 0xD800 && num <= 0xDFFF) || num > 0x10FFFF) return ramc_cpbuf_push(out, 0xFFFD);
    if (ramc_text_html_invalid_codepoint((uint32_t)num)) return 0;
    return ramc_cpbuf_push(out, (uint32_t)num);
}

ramc_status ramc_html_unescape(const uint32_t *t, size_t n, ramc_cpbuf *out) {
    out->n = 0;
    if (ramc_cpbuf_reserve(out, n)) return nomem_error();
    size_t i = 0;
    while (i < n) {
        if (t[i] != '&') {
            PUSH(out, t[i]);
            i++;
            continue;
        }
        size_t j = i + 1;
        if (j < n && t[j] == '#') {
            size_t k = j + 1;
            int base = 10;
            if (k < n && (t[k] == 'x' || t[k] == 'X') && k + 1 < n && is_hex(t[k + 1])) {
                base = 16;
                k++;
            }
            size_t d0 = k;
            while (k < n && (base == 16 ? is_hex(t[k]) : is_digit(t[k]))) k++;
            if (k == d0) { /* "&#" not followed by a number: left as is */
                PUSH(out, '&');
                i++;
                continue;
            }
            if (push_charref(out, t, d0, k, base)) goto nomem;
            if (k < n && t[k] == ';') k++;
            i = k;
            continue;
        }
        /* named: [^\t\n\f <&#;]{1,32};? */
        size_t k = j;
        while (k < n && k - j < 32 && t[k] != '\t' && t[k] != '\n' && t[k] != '\f' && t[k] != ' ' &&
               t[k] != '<' && t[k] != '&' && t[k] != '#' && t[k] != ';')
            k++;
        if (k == j) {
            PUSH(out, '&');
            i++;
            continue;
        }
        size_t end = (k < n && t[k] == ';') ? k + 1 : k;
        char key[32 * 4 + 8];
        const char *val = NULL;
        if (key_utf8(t, j, end, key, sizeof key)) val = str_lookup(ramc_html5_entities, ramc_html5_entities_count, key);
        if (val) {
            if (ramc_cpbuf_push_utf8(out, val)) goto nomem;
            i = end;
            continue;
        }
        /* the longest prefix (of at least 2 characters) that is an entity */
        size_t len = end - j, x;
        for (x = len - 1; x > 1; x--) {
            if (key_utf8(t, j, j + x, key, sizeof key) &&
                (val = str_lookup(ramc_html5_entities, ramc_html5_entities_count, key)))
                break;
        }
        if (x > 1 && val) {
            if (ramc_cpbuf_push_utf8(out, val)) goto nomem;
            for (size_t m = j + x; m < end; m++) PUSH(out, t[m]);
        } else {
            for (size_t m = i; m < end; m++) PUSH(out, t[m]);
        }
        i = end;
    }
    return RAMC_OK;
nomem:
    return nomem_error();
}

/* --------------------------------------------------- ftfy: unescape_html */

/* ftfy's own pass: &#?[0-9A-Za-z]{1,24}; replaced from html5 (names with ';'
 * only), its upper-cased extras, or html.unescape for numeric forms when that
 * consumes the ';'. */
static ramc_status ftfy_unescape(const uint32_t *t, size_t n, ramc_cpbuf *out) {
    ramc_cpbuf tmp = {0};
    out->n = 0;
    if (ramc_cpbuf_reserve(out, n)) return nomem_error();
    size_t i = 0;
    while (i < n) {
        if (t[i] == '&') {
            size_t j = i + 1;
            int numeric = j < n && t[j] == '#';
            if (numeric) j++;
            size_t k = j;
            while (k < n && k - j < 24 && is_alnum_ascii(t[k])) k++;
            if (k > j && k < n && t[k] == ';') {
                size_t end = k + 1;
                char key[64];
                const char *val = NULL;
                if (!numeric && key_utf8(t, j, end, key, sizeof key)) {
                    val = str_lookup(ramc_html5_entities, ramc_html5_entities_count, key);
                    if (!val) val = str_lookup(ramc_ftfy_upper_entities, ramc_ftfy_upper_entities_count, key);
                }
                if (val) {
                    if (ramc_cpbuf_push_utf8(out, val)) goto nomem;
                    i = end;
                    continue;
                }
                if (numeric) {
                    if (ramc_html_unescape(t + i, end - i, &tmp) != RAMC_OK) goto nomem;
                    int has_semi = 0;
                    for (size_t m = 0; m < tmp.n; m++) has_semi |= tmp.v[m] == ';';
                    if (!has_semi) {
                        for (size_t m = 0; m < tmp.n; m++) PUSH(out, tmp.v[m]);
                        i = end;
                        continue;
                    }
                }
                for (size_t m = i; m < end; m++) PUSH(out, t[m]);
                i = end;
                continue;
            }
        }
        PUSH(out, t[i]);
        i++;
    }
    ramc_cpbuf_free(&tmp);
    return RAMC_OK;
nomem:
    ramc_cpbuf_free(&tmp);
    return nomem_error();
}

/* ------------------------------------------------ ftfy: badness (is_bad) */

/* One position of a BADNESS_RE alternative: a union of mojibake classes,
 * explicit characters and a few ASCII/regex classes. */
enum { E_AZ = 1, E_az = 2, E_SPACE = 4, E_WORD = 8, E_ANY_NL = 16, E_NOT_AZaz = 32 };
typedef struct {
    uint32_t mask;
    const char *chars; /* UTF-8, NULL for none */
    unsigned flags;
} bad_elem;
typedef struct {
    int anchored;
    int len;
    bad_elem e[5];
} bad_pattern;

#define UA MJ_UA
#define LA MJ_LA
static const bad_pattern bad_patterns[] = {
    {0, 1, {{MJ_C1, 0, 0}}},
    {0, 2, {{MJ_BAD | LA | UA | MJ_BOX | MJ_SP | MJ_EP | MJ_CUR | MJ_NUM | MJ_LAW, 0, 0}, {MJ_BAD, 0, 0}}},
    {0, 3, {{0, 0, E_AZ | E_az}, {MJ_LC | MJ_UC, 0, 0}, {MJ_BAD, 0, 0}}},
    {0, 2, {{MJ_BAD, 0, 0}, {LA | UA | MJ_BOX | MJ_SP | MJ_EP | MJ_CUR | MJ_NUM | MJ_LAW, 0, 0}}},
    {0, 2, {{LA | MJ_LC | MJ_BOX | MJ_EP | MJ_CUR | MJ_NUM, 0, 0}, {UA, 0, 0}}},
    {0, 2, {{MJ_BOX | MJ_EP | MJ_CUR | MJ_NUM, 0, 0}, {LA, 0, 0}}},
    {0, 2, {{LA | MJ_BOX | MJ_EP, 0, 0}, {MJ_CUR, 0, 0}}},
    {0, 3, {{0, 0, E_SPACE}, {UA, 0, 0}, {MJ_CUR, 0, 0}}},
    {0, 2, {{UA | MJ_BOX, 0, 0}, {MJ_NUM | MJ_LAW, 0, 0}}},
    {0, 3, {{LA | UA | MJ_BOX | MJ_CUR | MJ_EP, 0, 0}, {MJ_SP, 0, 0}, {MJ_NUM, 0, 0}}},
    {0, 3, {{LA | UA | MJ_CUR | MJ_NUM | MJ_BOX | MJ_LAW, 0, 0}, {MJ_EP, 0, 0}, {MJ_SP, 0, 0}}},
    {0, 2, {{MJ_CUR | MJ_NUM | MJ_BOX, 0, 0}, {MJ_SP, 0, 0}}},
    {0, 3, {{0, 0, E_az}, {UA, 0, 0}, {MJ_SP | MJ_CUR, 0, 0}}},
    {0, 2, {{MJ_BOX, 0, 0}, {MJ_KAO, 0, 0}}},
    {0, 2, {{LA | UA | MJ_CUR | MJ_NUM | MJ_SP | MJ_EP | MJ_LAW, 0, 0}, {MJ_BOX, 0, 0}}},
    {0, 2, {{MJ_BOX, 0, 0}, {MJ_EP, 0, 0}}},
    {0, 3, {{LA | UA, 0, 0}, {MJ_SP | MJ_EP, 0, 0}, {0, 0, E_WORD}}},
    {0, 2, {{0, "Œœ", 0}, {0, 0, E_NOT_AZaz}}},
    {0, 2, {{UA, 0, 0}, {0, "°", 0}}},
    {0, 2, {{0, "ÂÃÎÐ", 0}, {MJ_SP | MJ_EP, "€œŠš¢£Ÿž\xc2\xa0\xc2\xad®©°·»–—´", 0}}},
    {0, 2, {{0, "×", 0}, {0, "²³", 0}}},
    {0, 4, {{0, "ØÙ", 0}, {MJ_COMMON | MJ_CUR | MJ_BAD | MJ_NUM | MJ_SP, "ŸŠ®°µ»", 0},
            {0, "ØÙ", 0}, {MJ_COMMON | MJ_CUR | MJ_BAD | MJ_NUM | MJ_SP, "ŸŠ®°µ»", 0}}},
    {0, 2, {{0, "à", 0}, {0, "²µ¹¼½¾", 0}}},
    {0, 2, {{0, "√", 0}, {0, "±∂†≠®™´≤≥¥µø", 0}}},
    {0, 2, {{0, "≈", 0}, {0, "°¢", 0}}},
    {0, 3, {{0, "‚", 0}, {0, "Ä", 0}, {0, "ìîïòôúùû†°¢π", 0}}},
    {0, 3, {{0, "‚", 0}, {0, "âó", 0}, {0, "àä°ê", 0}}},
    {0, 2, {{0, "в", 0}, {0, "Ђ", 0}}},
    {0, 3, {{0, "ВГРС", 0}, {MJ_C1 | MJ_BAD | MJ_SP | MJ_EP | MJ_CUR, "°µ", 0}, {0, "ВГРС", 0}}},
    {0, 5, {{0, "Г", 0}, {0, "ў", 0}, {0, "В", 0}, {0, "Ђ", 0}, {0, "В", 0}}}, /* + .[A-Za-z ] below */
    {0, 2, {{0, "Ã", 0}, {0, "\xc2\xa0¡", 0}}},
    {0, 3, {{0, 0, E_az}, {0, "ÃÂ", 0}, {0, " ", 0}}},
    {0, 4, {{0, 0, E_az}, {0, 0, E_SPACE}, {0, "ÃÂ", 0}, {0, " ", 0}}},
    {1, 2, {{0, "ÃÂ", 0}, {0, " ", 0}}},
    {0, 3, {{MJ_EP, ".,?!", E_az}, {0, "Â", 0}, {MJ_SP | MJ_EP, " ", 0}}},
    {0, 3, {{0, "β", 0}, {0, "€", 0}, {0, "™\xc2\xa0Ά\xc2\xad®°", 0}}},
    {0, 3, {{0, "ΒΓΞΟ", 0}, {MJ_C1 | MJ_BAD | MJ_SP | MJ_EP | MJ_CUR, "°", 0}, {0, "ΒΓΞΟ", 0}}},
    {0, 2, {{0, "ā", 0}, {0, "€", 0}}},
};
#undef UA
#undef LA

static int utf8_contains(const char *s, uint32_t c) {
    ramc_cpbuf b = {0};
    if (ramc_cpbuf_push_utf8(&b, s)) return 0;
    int found = 0;
    for (size_t i = 0; i < b.n && !found; i++) found = b.v[i] == c;
    ramc_cpbuf_free(&b);
    return found;
}

static int elem_match(const bad_elem *e, uint32_t c, uint32_t cmask) {
    if (e->mask & cmask) return 1;
    if ((e->flags & E_AZ) && c >= 'A' && c <= 'Z') return 1;
    if ((e->flags & E_az) && c >= 'a' && c <= 'z') return 1;
    if ((e->flags & E_SPACE) && ramc_py_isspace(c)) return 1;
    if ((e->flags & E_WORD) && (c == '_' || ramc_is_letter(c) || ramc_is_number(c))) return 1;
    if ((e->flags & E_ANY_NL) && c != '\n') return 1;
    if ((e->flags & E_NOT_AZaz) && !((c | 0x20) >= 'a' && (c | 0x20) <= 'z')) return 1;
    /* the explicit sets hold only these ASCII characters */
    if (e->chars && (c >= 0xA0 || c == ' ' || c == '.' || c == ',' || c == '?' || c == '!') &&
        utf8_contains(e->chars, c))
        return 1;
    return 0;
}

int ramc_ftfy_is_bad(const uint32_t *t, size_t n) {
    const size_t np = sizeof bad_patterns / sizeof bad_patterns[0];
    for (size_t i = 0; i < n; i++) {
        for (size_t p = 0; p < np; p++) {
            const bad_pattern *pat = &bad_patterns[p];
            if (pat->anchored && i != 0) continue;
            int extra = pat->len == 5 ? 2 : 0; /* only ГўВЂВ is followed by .[A-Za-z ] */
            if (i + (size_t)pat->len + (size_t)extra > n) continue;
            int ok = 1;
            for (int k = 0; k < pat->len && ok; k++)
                ok = elem_match(&pat->e[k], t[i + k], mojibake_mask(t[i + k]));
            if (ok && extra) {
                uint32_t a = t[i + 5], b = t[i + 6];
                ok = a != '\n' && (b == ' ' || ((b | 0x20) >= 'a' && (b | 0x20) <= 'z'));
            }
            if (ok) return 1;
        }
    }
    return 0;
}

/* ---------------------------------------------------- ftfy: fix_encoding */

/* A set of byte ranges: pairs lo,hi packed in a string. */
typedef struct {
    int len;
    const char *set[5];
} byte_pattern;

static int byte_in(const char *set, uint8_t b) {
    for (const unsigned char *p = (const unsigned char *)set; p[0]; p += 2)
        if (b >= p[0] && b <= p[1]) return 1;
    return 0;
}
/* 0x1A would terminate the C string; it is written as \x01\x01 is not
 * possible either, so sets that contain it carry a leading '\x1a' marker
 * handled by byte_in_x. */
static int byte_in_x(const char *set, uint8_t b) {
    if (set[0] == '!') return b == 0x1A || byte_in(set + 1, b);
    return byte_in(set, b);
}

static const byte_pattern altered_utf8[] = {
    {2, {"\xc2\xc3\xc5\xc5\xce\xce\xd0\xd0\xd9\xd9", "  "}},
    {3, {"\xe2\xe3", "  ", "\x80\x84\x86\x9f\xa1\xbf"}},
    {3, {"\xe0\xe3", "\x80\x84\x86\x9f\xa1\xbf", "  "}},
    {4, {"\xf0\xf0", "  ", "\x80\xbf", "\x80\xbf"}},
    {4, {"\xf0\xf0", "\x80\xbf", "  ", "\x80\xbf"}},
    {4, {"\xf0\xf0", "\x80\xbf", "\x80\xbf", "  "}},
};

/* '!' prefix: the set also holds byte 0x1A. */
static const byte_pattern lossy_utf8[] = {
    {2, {"\xc2\xdf", "!"}},
    {2, {"\xc2\xc3", "??"}},
    {5, {"\xed\xed", "\xa0\xaf", "!??", "\xed\xed", "\xb0\xbf"}}, /* + [\x1a?\x80-\xbf] */
    {5, {"\xed\xed", "\xa0\xaf", "!??\x80\xbf", "\xed\xed", "\xb0\xbf"}}, /* + [\x1a?] */
    {3, {"\xe0\xef", "!??", "!\x80\xbf"}},
    {3, {"\xe0\xef", "!\x80\xbf", "!??"}},
    {4, {"\xf0\xf4", "!??", "!\x80\xbf", "!\x80\xbf"}},
    {4, {"\xf0\xf4", "!\x80\xbf", "!??", "!\x80\xbf"}},
    {4, {"\xf0\xf4", "!\x80\xbf", "!\x80\xbf", "!??"}},
    {1, {"!"}},
};

static int match_bytes(const byte_pattern *p, const uint8_t *s, size_t n, size_t i) {
    if (i + (size_t)p->len > n) return 0;
    for (int k = 0; k < p->len; k++)
        if (!byte_in_x(p->set[k], s[i + k])) return 0;
    return 1;
}

typedef struct {
    uint8_t *v;
    size_t n, cap;
} bytebuf;

static int bb_push(bytebuf *b, uint8_t c) {
    if (b->n == b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 64;
        uint8_t *v = realloc(b->v, nc);
        if (!v) return -1;
        b->v = v;
        b->cap = nc;
    }
    b->v[b->n++] = c;
    return 0;
}

/* fixes.restore_byte_a0: "\xc3 " (unless a Portuguese contraction follows)
 * gets its a0 back, then spaces inside near-UTF-8 sequences become a0. */
static int restore_byte_a0(bytebuf *b) {
    bytebuf o = {0};
    static const char *const keep[] = {" ", "quele", "quela", "quilo", "s "};
    for (size_t i = 0; i < b->n; i++) {
        if (b->v[i] == 0xC3 && i + 1 < b->n && b->v[i + 1] == ' ') {
            int skip = 0;
            for (size_t k = 0; k < 5 && !skip; k++) {
                size_t l = strlen(keep[k]);
                skip = i + 2 + l <= b->n && !memcmp(b->v + i + 2, keep[k], l);
            }
            if (!skip) {
                if (bb_push(&o, 0xC3) || bb_push(&o, 0xA0) || bb_push(&o, ' ')) goto nomem;
                i++;
                continue;
            }
        }
        if (bb_push(&o, b->v[i])) goto nomem;
    }
    free(b->v);
    *b = o;
    for (size_t i = 0; i < b->n;) {
        int hit = 0;
        for (size_t p = 0; p < sizeof altered_utf8 / sizeof altered_utf8[0]; p++) {
            if (match_bytes(&altered_utf8[p], b->v, b->n, i)) {
                for (int k = 0; k < altered_utf8[p].len; k++)
                    if (b->v[i + k] == ' ') b->v[i + k] = 0xA0;
                i += (size_t)altered_utf8[p].len;
                hit = 1;
                break;
            }
        }
        if (!hit) i++;
    }
    return 0;
nomem:
    free(o.v);
    return -1;
}

static int lossy_match(const uint8_t *s, size_t n, size_t i, size_t p) {
    const byte_pattern *pat = &lossy_utf8[p];
    if (!match_bytes(pat, s, n, i)) return 0;
    if (p == 2 || p == 3) {
        if (i + 5 >= n) return 0;
        uint8_t c = s[i + 5];
        if (p == 2) return c == 0x1A || c == '?' || (c >= 0x80 && c <= 0xBF);
        return c == 0x1A || c == '?';
    }
    return pat->len;
}

static int replace_lossy(bytebuf *b) {
    bytebuf o = {0};
    for (size_t i = 0; i < b->n;) {
        int len = 0;
        for (size_t p = 0; p < sizeof lossy_utf8 / sizeof lossy_utf8[0] && !len; p++)
            if (lossy_match(b->v, b->n, i, p)) len = (p == 2 || p == 3) ? 6 : lossy_utf8[p].len;
        if (len) {
            if (bb_push(&o, 0xEF) || bb_push(&o, 0xBF) || bb_push(&o, 0xBD)) goto nomem;
            i += (size_t)len;
        } else {
            if (bb_push(&o, b->v[i])) goto nomem;
            i++;
        }
    }
    free(b->v);
    *b = o;
    return 0;
nomem:
    free(o.v);
    return -1;
}

/* UTF-8, plus (variants) CESU-8 surrogate pairs and the C0 80 form of NUL.
 * Returns 0 ok, -1 decode error, -2 no memory. */
static int decode_utf8_variants(const bytebuf *b, int variants, ramc_cpbuf *out) {
    out->n = 0;
    size_t bad;
    if (!variants) return ramc_utf8_decode(b->v, b->n, out, &bad);
    size_t i = 0, start = 0;
    const uint8_t *s = b->v;
    while (i < b->n) {
        int special = 0;
        uint32_t cp = 0;
        if (s[i] == 0xC0 && i + 1 < b->n && s[i + 1] == 0x80) {
            special = 2;
        } else if (s[i] == 0xED && i + 5 < b->n && s[i + 1] >= 0xA0 && s[i + 1] <= 0xAF &&
                   (s[i + 2] & 0xC0) == 0x80 && s[i + 3] == 0xED && s[i + 4] >= 0xB0 && s[i + 4] <= 0xBF &&
                   (s[i + 5] & 0xC0) == 0x80) {
            uint32_t hi = 0xD000 | ((uint32_t)(s[i + 1] & 0x3F) << 6) | (s[i + 2] & 0x3F);
            uint32_t lo = 0xD000 | ((uint32_t)(s[i + 4] & 0x3F) << 6) | (s[i + 5] & 0x3F);
            cp = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
            special = 6;
        }
        if (special) {
            int r = ramc_utf8_decode(s + start, i - start, out, &bad);
            if (r) return r;
            if (ramc_cpbuf_push(out, cp)) return -2;
            i += (size_t)special;
            start = i;
        } else {
            i++;
        }
    }
    return ramc_utf8_decode(s + start, b->n - start, out, &bad);
}

static int charmap_encode(int enc, const uint32_t *t, size_t n, bytebuf *b) {
    b->n = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = t[i];
        int byte = -1;
        if (c < 0x80 && c != 0x1A) {
            byte = (int)c;
        } else {
            if (ramc_charmaps[enc][0x1A] == c) byte = 0x1A;
            for (int k = 0x80; k < 0x100 && byte < 0; k++)
                if (ramc_charmaps[enc][k] == c) byte = k;
        }
        if (byte < 0) return 0;
        if (bb_push(b, (uint8_t)byte)) return -1;
    }
    return 1;
}

/* One step of ftfy's _fix_encoding_one_step_and_explain. Sets *changed. */
static ramc_status fix_encoding_step(ramc_cpbuf *text, int *changed) {
    *changed = 0;
    const uint32_t *t = text->v;
    size_t n = text->n;
    if (n == 0) return RAMC_OK;
    int ascii = 1;
    for (size_t i = 0; i < n && ascii; i++) ascii = t[i] < 0x80;
    if (ascii || !ramc_ftfy_is_bad(t, n)) return RAMC_OK;

    bytebuf b = {0};
    ramc_cpbuf fixed = {0};
    int latin1_possible = 0;
    for (int enc = 0; enc < RAMC_N_CHARMAPS; enc++) {
        int r = charmap_encode(enc, t, n, &b);
        if (r < 0) goto nomem;
        if (!r) continue;
        if (enc == 0) latin1_possible = 1;
        int macroman = !strcmp(ramc_charmap_names[enc], "macroman");
        if (!macroman) {
            int any = 0;
            for (size_t i = 0; i < b.n && !any; i++)
                for (size_t p = 0; p < sizeof altered_utf8 / sizeof altered_utf8[0] && !any; p++)
                    any = match_bytes(&altered_utf8[p], b.v, b.n, i);
            if (any && restore_byte_a0(&b)) goto nomem;
        }
        if (!strncmp(ramc_charmap_names[enc], "sloppy", 6) && replace_lossy(&b)) goto nomem;
        int variants = 0;
        for (size_t i = 0; i < b.n; i++) variants |= b.v[i] == 0xED || b.v[i] == 0xC0;
        int d = decode_utf8_variants(&b, variants, &fixed);
        if (d == -2) goto nomem;
        if (d == 0) {
            ramc_cpbuf_free(text);
            *text = fixed;
            *changed = 1; /* the caller compares texts; a same-text result ends its loop */
            free(b.v);
            return RAMC_OK;
        }
    }
    /* decode_inconsistent_utf8 (fixing UTF-8 runs inside otherwise clean text)
     * is not implemented: see docs/tokenizer.md. */
    if (latin1_possible) {
        fixed.n = 0;
        int ok = 1, differs = 0;
        for (size_t i = 0; i < n && ok; i++) {
            uint32_t c = ramc_cp1252_strict[t[i]];
            if (c == 0xFFFFFFFFu) ok = 0;
            else {
                differs |= c != t[i];
                if (ramc_cpbuf_push(&fixed, c)) goto nomem;
            }
        }
        if (ok && differs) {
            ramc_cpbuf_free(text);
            *text = fixed;
            *changed = 1;
            free(b.v);
            return RAMC_OK;
        }
    }
    int any_c1 = 0;
    for (size_t i = 0; i < n; i++) any_c1 |= t[i] >= 0x80 && t[i] <= 0x9F;
    if (any_c1) {
        for (size_t i = 0; i < n; i++)
            if (t[i] >= 0x80 && t[i] <= 0x9F) text->v[i] = ramc_charmaps[1][t[i]];
        *changed = 1;
    }
    free(b.v);
    ramc_cpbuf_free(&fixed);
    return RAMC_OK;
nomem:
    free(b.v);
    ramc_cpbuf_free(&fixed);
    return nomem_error();
}

static int same(const ramc_cpbuf *a, const ramc_cpbuf *b) {
    return a->n == b->n && (a->n == 0 || !memcmp(a->v, b->v, a->n * sizeof *a->v));
}

static ramc_status copy_buf(ramc_cpbuf *dst, const ramc_cpbuf *src) {
    if (ramc_cpbuf_reserve(dst, src->n)) return nomem_error();
    if (src->n) memcpy(dst->v, src->v, src->n * sizeof *src->v);
    dst->n = src->n;
    return RAMC_OK;
}

static ramc_status fix_encoding(ramc_cpbuf *text) {
    ramc_cpbuf prev = {0};
    ramc_status st = RAMC_OK;
    /* ftfy loops until a step changes nothing; the bound only guards
     * against a cycle, which ftfy's own steps cannot produce */
    for (int iter = 0; iter < 64; iter++) {
        if ((st = copy_buf(&prev, text))) break;
        int changed;
        if ((st = fix_encoding_step(text, &changed))) break;
        if (!changed || same(&prev, text)) break;
    }
    ramc_cpbuf_free(&prev);
    return st;
}

/* ----------------------------------------------- ftfy: the simple fixers */

static const struct { uint32_t cp; const char *s; } ligatures[] = {
    {0x132, "IJ"}, {0x133, "ij"}, {0x149, "\xca\xbcn"}, {0x1C4, "D\xc5\xbd"}, {0x1C5, "D\xc5\xbe"},
    {0x1C6, "d\xc5\xbe"}, {0x1C7, "LJ"}, {0x1C8, "Lj"}, {0x1C9, "lj"}, {0x1CA, "NJ"}, {0x1CB, "Nj"},
    {0x1CC, "nj"}, {0x1F1, "DZ"}, {0x1F2, "Dz"}, {0x1F3, "dz"}, {0xFB00, "ff"}, {0xFB01, "fi"},
    {0xFB02, "fl"}, {0xFB03, "ffi"}, {0xFB04, "ffl"}, {0xFB05, "\xc5\xbft"}, {0xFB06, "st"},
};

static int removed_control(uint32_t c) {
    return c <= 0x08 || c == 0x0B || (c >= 0x0E && c <= 0x1F) || c == 0x7F || (c >= 0x206A && c <= 0x206F) ||
           c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFC);
}

/* fix_c1_controls, fix_latin_ligatures, fix_character_width, uncurl_quotes,
 * fix_line_breaks, remove_terminal_escapes, remove_control_chars, in order.
 * (fix_surrogates has nothing to do: the input is valid UTF-8.) */
static ramc_status simple_fixers(ramc_cpbuf *text, ramc_cpbuf *tmp) {
    /* c1 controls, ligatures, width and quotes map characters one to many
     * independently, so one pass applies them in ftfy's order */
    tmp->n = 0;
    for (size_t i = 0; i < text->n; i++) {
        uint32_t c = text->v[i];
        if (c >= 0x80 && c <= 0x9F) c = ramc_charmaps[1][c];
        const char *rep = NULL;
        for (size_t k = 0; k < sizeof ligatures / sizeof ligatures[0] && !rep; k++)
            if (ligatures[k].cp == c) rep = ligatures[k].s;
        if (!rep && (c == 0x3000 || (c >= 0xFF01 && c <= 0xFFEF)))
            rep = cp_lookup(ramc_width_map, ramc_width_map_count, c);
        if (rep) {
            /* ligature and width outputs still go through the later steps */
            ramc_cpbuf r = {0};
            if (ramc_cpbuf_push_utf8(&r, rep)) { ramc_cpbuf_free(&r); goto nomem; }
            for (size_t k = 0; k < r.n; k++) {
                uint32_t d = r.v[k];
                if (d >= 0xFF01 && d <= 0xFFEF) {
                    const char *w = cp_lookup(ramc_width_map, ramc_width_map_count, d);
                    if (w) { if (ramc_cpbuf_push_utf8(tmp, w)) { ramc_cpbuf_free(&r); goto nomem; } continue; }
                }
                if (d == 0x2BC || (d >= 0x2018 && d <= 0x201B)) d = '\'';
                else if (d >= 0x201C && d <= 0x201F) d = '"';
                if (ramc_cpbuf_push(tmp, d)) { ramc_cpbuf_free(&r); goto nomem; }
            }
            ramc_cpbuf_free(&r);
            continue;
        }
        if (c == 0x2BC || (c >= 0x2018 && c <= 0x201B)) c = '\'';
        else if (c >= 0x201C && c <= 0x201F) c = '"';
        PUSH(tmp, c);
    }
    /* line breaks */
    text->n = 0;
    for (size_t i = 0; i < tmp->n; i++) {
        uint32_t c = tmp->v[i];
        if (c == '\r') {
            if (i + 1 < tmp->n && tmp->v[i + 1] == '\n') i++;
            c = '\n';
        } else if (c == 0x2028 || c == 0x2029 || c == 0x85) {
            c = '\n';
        }
        PUSH(text, c);
    }
    /* terminal escapes: ESC [ [0-9;]* [A-Za-z] */
    tmp->n = 0;
    for (size_t i = 0; i < text->n; i++) {
        if (text->v[i] == 0x1B && i + 1 < text->n && text->v[i + 1] == '[') {
            size_t k = i + 2;
            while (k < text->n && (is_digit(text->v[k]) || text->v[k] == ';')) k++;
            if (k < text->n && ((text->v[k] | 0x20) >= 'a' && (text->v[k] | 0x20) <= 'z')) {
                i = k;
                continue;
            }
        }
        PUSH(tmp, text->v[i]);
    }
    /* control characters */
    text->n = 0;
    for (size_t i = 0; i < tmp->n; i++)
        if (!removed_control(tmp->v[i])) PUSH(text, tmp->v[i]);
    return RAMC_OK;
nomem:
    return nomem_error();
}

static ramc_status nfc(ramc_cpbuf *text) {
    int ascii = 1;
    for (size_t i = 0; i < text->n && ascii; i++) ascii = text->v[i] < 0x80;
    if (ascii) return RAMC_OK;
    size_t blen = 0;
    uint8_t *u8 = malloc(text->n * 4 + 1);
    if (!u8) return nomem_error();
    for (size_t i = 0; i < text->n; i++) blen += (size_t)ramc_utf8_put(text->v[i], u8 + blen);
    utf8proc_uint8_t *res = NULL;
    utf8proc_ssize_t r = utf8proc_map(u8, (utf8proc_ssize_t)blen, &res, UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    free(u8);
    if (r < 0) {
        free(res);
        return ramc_error(RAMC_ERR_FORMAT, "text: NFC normalisation failed: %s", utf8proc_errmsg(r));
    }
    text->n = 0;
    size_t bad;
    int d = ramc_utf8_decode(res, (size_t)r, text, &bad);
    free(res);
    if (d) return d == -2 ? nomem_error() : ramc_error(RAMC_ERR_FORMAT, "text: NFC produced invalid UTF-8");
    return RAMC_OK;
}

/* fix_and_explain on one segment: repeat the fixers until nothing changes. */
static ramc_status fix_segment(const uint32_t *t, size_t n, int unescape, ramc_cpbuf *out) {
    ramc_cpbuf cur = {0}, orig = {0}, tmp = {0};
    ramc_status st = RAMC_OK;
    if (ramc_cpbuf_reserve(&cur, n)) return nomem_error();
    if (n) memcpy(cur.v, t, n * sizeof *t);
    cur.n = n;
    for (int iter = 0; iter < 64; iter++) {
        if ((st = copy_buf(&orig, &cur))) break;
        if (unescape) {
            if ((st = ftfy_unescape(cur.v, cur.n, &tmp))) break;
            if ((st = copy_buf(&cur, &tmp))) break;
        }
        if ((st = fix_encoding(&cur))) break;
        if ((st = simple_fixers(&cur, &tmp))) break;
        if ((st = nfc(&cur))) break;
        if (same(&cur, &orig)) break;
    }
    if (!st) {
        for (size_t i = 0; i < cur.n && !st; i++)
            if (ramc_cpbuf_push(out, cur.v[i])) st = nomem_error();
    }
    ramc_cpbuf_free(&cur);
    ramc_cpbuf_free(&orig);
    ramc_cpbuf_free(&tmp);
    return st;
}

ramc_status ramc_ftfy_fix_text(const uint32_t *t, size_t n, ramc_cpbuf *out) {
    out->n = 0;
    int unescape = 1;
    size_t pos = 0;
    while (pos < n) {
        size_t end = pos;
        while (end < n && t[end] != '\n') end++;
        if (end < n) end++; /* the segment keeps its '\n' */
        /* 1,000,000 code points is ftfy's max_decode_length */
        if (end - pos > 1000000) end = pos + 1000000;
        for (size_t i = pos; i < end && unescape; i++)
            if (t[i] == '<') unescape = 0; /* stays off for the rest of the text */
        ramc_status st = fix_segment(t + pos, end - pos, unescape, out);
        if (st) return st;
        pos = end;
    }
    return RAMC_OK;
}

/* ------------------------------------------------------- whitespace, lower */

static void py_strip(ramc_cpbuf *b) {
    size_t a = 0, e = b->n;
    while (a < e && ramc_py_isspace(b->v[a])) a++;
    while (e > a && ramc_py_isspace(b->v[e - 1])) e--;
    if (a) memmove(b->v, b->v + a, (e - a) * sizeof *b->v);
    b->n = e - a;
}

static ramc_status py_lower(const ramc_cpbuf *in, ramc_cpbuf *out) {
    out->n = 0;
    if (ramc_cpbuf_reserve(out, in->n)) return nomem_error();
    for (size_t i = 0; i < in->n; i++) {
        uint32_t c = in->v[i];
        if (c == 0x3A3) {
            /* CPython's Final_Sigma test */
            size_t j = i;
            while (j > 0 && ramc_text_is_case_ignorable(in->v[j - 1])) j--;
            int final = j > 0 && ramc_text_is_cased(in->v[j - 1]);
            if (final) {
                size_t k = i + 1;
                while (k < in->n && ramc_text_is_case_ignorable(in->v[k])) k++;
                final = k == in->n || !ramc_text_is_cased(in->v[k]);
            }
            PUSH(out, final ? 0x3C2 : 0x3C3);
            continue;
        }
        if (c < 0x80) {
            PUSH(out, (c >= 'A' && c <= 'Z') ? c + 32 : c);
            continue;
        }
        const char *l = cp_lookup(ramc_lower_map, ramc_lower_map_count, c);
        if (l) {
            if (ramc_cpbuf_push_utf8(out, l)) goto nomem;
        } else {
            PUSH(out, c);
        }
    }
    return RAMC_OK;
nomem:
    return nomem_error();
}

ramc_status ramc_text_clean(const uint32_t *t, size_t n, ramc_cpbuf *out) {
    ramc_cpbuf a = {0}, b = {0};
    ramc_status st;
    if ((st = ramc_ftfy_fix_text(t, n, &a))) goto done;
    if ((st = ramc_html_unescape(a.v, a.n, &b))) goto done;
    if ((st = ramc_html_unescape(b.v, b.n, &a))) goto done;
    py_strip(&a);
    /* \s+ -> ' ' with the regex module's \s */
    b.n = 0;
    for (size_t i = 0; i < a.n; i++) {
        if (ramc_regex_isspace(a.v[i])) {
            while (i + 1 < a.n && ramc_regex_isspace(a.v[i + 1])) i++;
            if (ramc_cpbuf_push(&b, ' ')) { st = nomem_error(); goto done; }
        } else if (ramc_cpbuf_push(&b, a.v[i])) {
            st = nomem_error();
            goto done;
        }
    }
    py_strip(&b);
    st = py_lower(&b, out);
done:
    ramc_cpbuf_free(&a);
    ramc_cpbuf_free(&b);
    return st;
}
