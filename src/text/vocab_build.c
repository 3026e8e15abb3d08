/* Learns a small byte-level BPE vocabulary from a caption corpus and writes
 * it in Hugging Face form (see vocab_build.h). Corpora here are small (a few
 * dozen distinct words), so plain arrays and quadratic scans are enough. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/file.h"
#include "text/text.h"
#include "text/vocab_build.h"

/* GPT-2's bytes_to_unicode: printable bytes map to themselves, the others to
 * U+0100 onwards; order[k] is the byte of CLIP's k-th vocabulary entry. */
static void byte_unicode(uint32_t cp[256], int order[256]) {
    int k = 0, n = 0;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
        if (printable) cp[b] = (uint32_t)b, order[k++] = b;
    }
    for (int b = 0; b < 256; b++) {
        int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
        if (!printable) cp[b] = 256u + (uint32_t)n++, order[k++] = b;
    }
}

/* ------------------------------------------------------------ symbols */

typedef struct {
    char **s;
    int n, cap;
} strtab;

/* Index of s in t (added if new), -1 on NOMEM. Linear: tables stay small. */
static int intern(strtab *t, const char *s) {
    for (int i = 0; i < t->n; i++)
        if (!strcmp(t->s[i], s)) return i;
    if (t->n == t->cap) {
        int cap = t->cap ? 2 * t->cap : 256;
        char **ns = realloc(t->s, (size_t)cap * sizeof *ns);
        if (!ns) return -1;
        t->s = ns, t->cap = cap;
    }
    size_t l = strlen(s);
    if (!(t->s[t->n] = malloc(l + 1))) return -1;
    memcpy(t->s[t->n], s, l + 1);
    return t->n++;
}

static void strtab_free(strtab *t) {
    for (int i = 0; i < t->n; i++) free(t->s[i]);
    free(t->s);
    memset(t, 0, sizeof *t);
}

/* A distinct word: its symbols (indices into the symbol table) and count. */
typedef struct {
    int *sym, len;
    long count;
} word;

typedef struct {
    strtab words; /* the distinct pieces, as raw UTF-8 */
    long *counts;
    int counts_cap;
} corpus;

static int add_piece(corpus *c, const char *piece) {
    int before = c->words.n, i = intern(&c->words, piece);
    if (i < 0) return -1;
    if (c->words.n > c->counts_cap) {
        int cap = c->words.cap;
        long *nc = realloc(c->counts, (size_t)cap * sizeof *nc);
        if (!nc) return -1;
        c->counts = nc, c->counts_cap = cap;
    }
    if (c->words.n > before) c->counts[i] = 0;
    c->counts[i]++;
    return 0;
}

/* Splits one text into pieces as ramc_tokenize does (after the same clean-up):
 * contractions, runs of letters, single digits, runs of other non-space. */
static ramc_status split_text(corpus *c, const char *text, int index) {
    ramc_cpbuf in = {0}, clean = {0};
    size_t bad = 0;
    ramc_status st = RAMC_OK;
    char *piece = NULL;
    int r = ramc_utf8_decode((const uint8_t *)text, strlen(text), &in, &bad);
    if (r == -2) return RAMC_ERR_NOMEM;
    if (r) {
        ramc_cpbuf_free(&in);
        return ramc_error(RAMC_ERR_FORMAT, "caption %d: invalid UTF-8 at byte %zu", index + 1, bad);
    }
    if ((st = ramc_text_clean(in.v, in.n, &clean))) goto done;
    piece = malloc(clean.n * 4 + 1);
    if (!piece) {
        st = RAMC_ERR_NOMEM;
        goto done;
    }
    const uint32_t *v = clean.v;
    const size_t n = clean.n;
    for (size_t i = 0; i < n;) {
        size_t len = ramc_pretoken_length(v, n, i);
        if (!len) { /* whitespace */
            i++;
            continue;
        }
        size_t pb = 0;
        for (size_t k = 0; k < len; k++) pb += (size_t)ramc_utf8_put(v[i + k], (uint8_t *)piece + pb);
        piece[pb] = 0;
        if (add_piece(c, piece)) {
            st = RAMC_ERR_NOMEM;
            goto done;
        }
        i += len;
    }
done:
    free(piece);
    ramc_cpbuf_free(&in);
    ramc_cpbuf_free(&clean);
    return st;
}

/* ------------------------------------------------------------ output */

typedef struct {
    char *p;
    size_t n, cap;
} sbuf;

static int put(sbuf *b, const char *s, size_t l) {
    if (b->n + l + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + l + 1) cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np) return -1;
        b->p = np, b->cap = cap;
    }
    memcpy(b->p + b->n, s, l);
    b->n += l;
    b->p[b->n] = 0;
    return 0;
}

static int puts_(sbuf *b, const char *s) { return put(b, s, strlen(s)); }

/* "symbol": id, with JSON escapes for '"' and '\' (the only ASCII symbols
 * that need one: bytes_to_unicode maps every control byte above U+00FF) */
static int put_entry(sbuf *b, const char *sym, int id, int first) {
    char num[32];
    if (!first && puts_(b, ",")) return -1;
    if (puts_(b, "\"")) return -1;
    for (const char *p = sym; *p; p++) {
        if ((*p == '"' || *p == '\\') && put(b, "\\", 1)) return -1;
        if (put(b, p, 1)) return -1;
    }
    snprintf(num, sizeof num, "\": %d", id);
    return puts_(b, num);
}

ramc_status vocab_build(const char *const *texts, int n, const char *vocab_json,
                        const char *merges_txt, int *vocab_size) {
    corpus c = {0};
    strtab syms = {0};
    word *w = NULL;
    int nw = 0, *merge_a = NULL, *merge_b = NULL, *merge_r = NULL, nm = 0;
    sbuf vj = {0}, mt = {0};
    ramc_status st = RAMC_OK;
    uint32_t cp[256];
    int order[256];
    byte_unicode(cp, order);

    for (int i = 0; i < n && !st; i++) st = split_text(&c, texts[i], i);
    if (st) goto done;

    /* the 512 base symbols first: ids follow the symbol table's order */
    char s[32];
    for (int pass = 0; pass < 2; pass++)
        for (int k = 0; k < 256; k++) {
            int l = ramc_utf8_put(cp[order[k]], (uint8_t *)s);
            memcpy(s + l, pass ? "</w>" : "", pass ? 5 : 1);
            if (intern(&syms, s) < 0) goto nomem;
        }
    nw = c.words.n;
    w = calloc((size_t)(nw ? nw : 1), sizeof *w);
    if (!w) goto nomem;
    for (int i = 0; i < nw; i++) {
        const uint8_t *p = (const uint8_t *)c.words.s[i];
        size_t l = strlen(c.words.s[i]);
        w[i].count = c.counts[i];
        w[i].len = (int)l;
        if (!(w[i].sym = malloc(l * sizeof(int)))) goto nomem;
        for (size_t k = 0; k < l; k++) {
            int idx = 0;
            while (order[idx] != p[k]) idx++; /* the byte's position in CLIP's order */
            w[i].sym[k] = idx + (k + 1 == l ? 256 : 0);
        }
    }

    merge_a = malloc(VOCAB_BUILD_MAX_MERGES * sizeof(int));
    merge_b = malloc(VOCAB_BUILD_MAX_MERGES * sizeof(int));
    merge_r = malloc(VOCAB_BUILD_MAX_MERGES * sizeof(int));
    if (!merge_a || !merge_b || !merge_r) goto nomem;
    for (;;) {
        /* most frequent adjacent pair; ties: smallest (a, b) strings */
        long best = 0;
        int ba = -1, bb = -1;
        for (int i = 0; i < nw; i++)
            for (int k = 0; k + 1 < w[i].len; k++) {
                int a = w[i].sym[k], b = w[i].sym[k + 1];
                if (ba == a && bb == b) continue;
                long cnt = 0;
                for (int j = 0; j < nw; j++)
                    for (int q = 0; q + 1 < w[j].len; q++)
                        if (w[j].sym[q] == a && w[j].sym[q + 1] == b) cnt += w[j].count;
                int better = cnt > best;
                if (cnt == best && ba >= 0) {
                    int ca = strcmp(syms.s[a], syms.s[ba]);
                    better = ca < 0 || (ca == 0 && strcmp(syms.s[b], syms.s[bb]) < 0);
                }
                if (better) best = cnt, ba = a, bb = b;
            }
        if (ba < 0) break; /* every word is one symbol */
        if (nm == VOCAB_BUILD_MAX_MERGES) {
            st = ramc_error(RAMC_ERR_LIMIT, "%s: the captions need more than %d merges", vocab_json,
                            VOCAB_BUILD_MAX_MERGES);
            goto done;
        }
        size_t la = strlen(syms.s[ba]), lb = strlen(syms.s[bb]);
        char *cat = malloc(la + lb + 1);
        if (!cat) goto nomem;
        memcpy(cat, syms.s[ba], la);
        memcpy(cat + la, syms.s[bb], lb + 1);
        int r = intern(&syms, cat);
        free(cat);
        if (r < 0) goto nomem;
        merge_a[nm] = ba, merge_b[nm] = bb, merge_r[nm] = r, nm++;
        /* merge left to right, non-overlapping, as the tokenizer applies it */
        for (int i = 0; i < nw; i++) {
            int o = 0;
            for (int k = 0; k < w[i].len; k++) {
                if (k + 1 < w[i].len && w[i].sym[k] == ba && w[i].sym[k + 1] == bb) {
                    w[i].sym[o++] = r;
                    k++;
                } else {
                    w[i].sym[o++] = w[i].sym[k];
                }
            }
            w[i].len = o;
        }
    }

    if (nm == 0) {
        /* a corpus of one-byte words needs no merge, but merges.txt may not be
         * empty: one harmless merge (the first byte symbol with its </w> form) */
        char two[32];
        snprintf(two, sizeof two, "%s%s", syms.s[0], syms.s[256]);
        int r = intern(&syms, two);
        if (r < 0) goto nomem;
        merge_a[0] = 0, merge_b[0] = 256, merge_r[0] = r, nm = 1;
    }

    /* vocab.json: the symbol table (bases, then merge results in order; a
     * result met twice keeps its first id), then the special tokens */
    if (puts_(&vj, "{")) goto nomem;
    for (int i = 0; i < syms.n; i++)
        if (put_entry(&vj, syms.s[i], i, i == 0)) goto nomem;
    if (put_entry(&vj, "<|startoftext|>", syms.n, 0) || put_entry(&vj, "<|endoftext|>", syms.n + 1, 0) ||
        puts_(&vj, "}\n"))
        goto nomem;
    if (puts_(&mt, "#version: 0.2\n")) goto nomem;
    for (int i = 0; i < nm; i++)
        if (puts_(&mt, syms.s[merge_a[i]]) || puts_(&mt, " ") || puts_(&mt, syms.s[merge_b[i]]) ||
            puts_(&mt, "\n"))
            goto nomem;
    if ((st = file_write_atomic(vocab_json, vj.p, vj.n))) goto done;
    if ((st = file_write_atomic(merges_txt, mt.p, mt.n))) goto done;
    if (vocab_size) *vocab_size = syms.n + 2;
    goto done;
nomem:
    st = ramc_error(RAMC_ERR_NOMEM, "%s: out of memory building the vocabulary", vocab_json);
done:
    for (int i = 0; i < nw; i++) free(w[i].sym);
    free(w);
    free(merge_a);
    free(merge_b);
    free(merge_r);
    free(vj.p);
    free(mt.p);
    strtab_free(&syms);
    strtab_free(&c.words);
    free(c.counts);
    return st;
}
