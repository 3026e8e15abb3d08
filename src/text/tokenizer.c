/* CLIP's byte-level BPE tokenizer (SimpleTokenizer) over the cleanup in
 * clean.c. Symbols are vocabulary ids throughout: every symbol BPE can
 * produce is a vocabulary entry, so a merge is a lookup of the id pair. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <zlib.h>

#include "ramc.h"
#include "core/setup.h"
#include "text/text.h"
#include "io/file.h"

#define N_MERGES_OFFICIAL 48894 /* lines 1..48894 of the official file: 49152 - 256 - 2 */
#define CACHE_SLOTS 16384
#define CACHE_MAX 8192          /* entries before the cache is emptied */
#define CACHE_PIECE_MAX 256     /* longer pieces are not cached */

typedef struct {
    char *key;
    size_t len;
    int32_t id;
} vocab_slot;

typedef struct {
    uint64_t key; /* 0 = empty */
    int32_t rank, merged;
} pair_slot;

typedef struct {
    char *key; /* NULL = empty */
    size_t len;
    int32_t *ids;
    int n;
} cache_slot;

struct ramc_tokenizer {
    vocab_slot *vocab;
    size_t vocab_cap, vocab_n;
    pair_slot *pairs;
    size_t pairs_cap;
    int32_t byte_id[256], byte_id_w[256];
    int32_t sot, eot;
    pthread_mutex_t lock;
    cache_slot *cache;
    size_t cache_n;
};

/* -------------------------------------------------------------- hashing */

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h;
}

static uint64_t mix64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

static int32_t vocab_get(const ramc_tokenizer *t, const char *s, size_t n) {
    size_t m = t->vocab_cap - 1;
    for (size_t i = hash_bytes(s, n) & m;; i = (i + 1) & m) {
        const vocab_slot *v = &t->vocab[i];
        if (!v->key) return -1;
        if (v->len == n && !memcmp(v->key, s, n)) return v->id;
    }
}

/* Later entries replace earlier ones, as Python's dict(zip(vocab, ids)). */
static int vocab_put(ramc_tokenizer *t, const char *s, size_t n, int32_t id) {
    size_t m = t->vocab_cap - 1;
    for (size_t i = hash_bytes(s, n) & m;; i = (i + 1) & m) {
        vocab_slot *v = &t->vocab[i];
        if (!v->key) {
            if (!(v->key = malloc(n + 1))) return -1;
            memcpy(v->key, s, n);
            v->key[n] = 0;
            v->len = n;
            v->id = id;
            t->vocab_n++;
            return 0;
        }
        if (v->len == n && !memcmp(v->key, s, n)) {
            v->id = id;
            return 0;
        }
    }
}

static const pair_slot *pair_get(const ramc_tokenizer *t, int32_t a, int32_t b) {
    uint64_t key = ((uint64_t)(uint32_t)(a + 1) << 32) | (uint32_t)(b + 1);
    size_t m = t->pairs_cap - 1;
    for (size_t i = mix64(key) & m;; i = (i + 1) & m) {
        if (t->pairs[i].key == key) return &t->pairs[i];
        if (!t->pairs[i].key) return NULL;
    }
}

/* A repeated pair takes the later rank, as dict(zip(merges, range(...))). */
static void pair_put(ramc_tokenizer *t, int32_t a, int32_t b, int32_t rank, int32_t merged) {
    uint64_t key = ((uint64_t)(uint32_t)(a + 1) << 32) | (uint32_t)(b + 1);
    size_t m = t->pairs_cap - 1;
    for (size_t i = mix64(key) & m;; i = (i + 1) & m) {
        if (!t->pairs[i].key || t->pairs[i].key == key) {
            t->pairs[i].key = key;
            t->pairs[i].rank = rank;
            t->pairs[i].merged = merged;
            return;
        }
    }
}

static size_t pow2_at_least(size_t n) {
    size_t c = 16;
    while (c < n) c *= 2;
    return c;
}

/* ------------------------------------------------------------ byte table */

/* bytes_to_unicode(): printable Latin-1 bytes map to themselves, the other
 * 68 to 256, 257, ... in byte order; `order` lists bytes in vocab order. */
static void byte_unicode(uint32_t cp[256], int order[256]) {
    int k = 0, extra = 0;
    for (int b = 0; b < 256; b++)
        if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255)) {
            cp[b] = (uint32_t)b;
            order[k++] = b;
        }
    for (int b = 0; b < 256; b++)
        if (!((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255))) {
            cp[b] = 256u + (uint32_t)extra++;
            order[k++] = b;
        }
}

/* ---------------------------------------------------------- construction */

static ramc_tokenizer *tok_new(size_t vocab_hint, size_t merges_hint) {
    ramc_tokenizer *t = ramc_calloc(1, sizeof *t, "tokenizer");
    if (!t) return NULL;
    t->vocab_cap = pow2_at_least(vocab_hint * 2);
    t->pairs_cap = pow2_at_least(merges_hint * 2);
    t->vocab = calloc(t->vocab_cap, sizeof *t->vocab);
    t->pairs = calloc(t->pairs_cap, sizeof *t->pairs);
    t->cache = calloc(CACHE_SLOTS, sizeof *t->cache);
    if (!t->vocab || !t->pairs || !t->cache) {
        free(t->vocab);
        free(t->pairs);
        free(t->cache);
        free(t);
        ramc_error(RAMC_ERR_NOMEM, "tokenizer: out of memory");
        return NULL;
    }
    pthread_mutex_init(&t->lock, NULL);
    return t;
}

static void cache_clear(ramc_tokenizer *t) {
    for (size_t i = 0; i < CACHE_SLOTS; i++) {
        free(t->cache[i].key);
        free(t->cache[i].ids);
        t->cache[i].key = NULL;
        t->cache[i].ids = NULL;
    }
    t->cache_n = 0;
}

void ramc_tokenizer_free(ramc_tokenizer *t) {
    if (!t) return;
    if (t->vocab)
        for (size_t i = 0; i < t->vocab_cap; i++) free(t->vocab[i].key);
    if (t->cache) cache_clear(t);
    free(t->vocab);
    free(t->pairs);
    free(t->cache);
    pthread_mutex_destroy(&t->lock);
    free(t);
}

/* Resolves the 512 initial symbols and the special tokens from the vocab. */
static ramc_status tok_finish(ramc_tokenizer *t, const char *what) {
    uint32_t cp[256];
    int order[256];
    byte_unicode(cp, order);
    for (int b = 0; b < 256; b++) {
        char s[16];
        int n = ramc_utf8_put(cp[b], (uint8_t *)s);
        t->byte_id[b] = vocab_get(t, s, (size_t)n);
        memcpy(s + n, "</w>", 4);
        t->byte_id_w[b] = vocab_get(t, s, (size_t)n + 4);
        if (t->byte_id[b] < 0 || t->byte_id_w[b] < 0)
            return ramc_error(RAMC_ERR_FORMAT, "%s: the byte symbol for byte 0x%02x is missing from the vocabulary",
                              what, b);
    }
    t->sot = vocab_get(t, "<|startoftext|>", 15);
    t->eot = vocab_get(t, "<|endoftext|>", 13);
    if (t->sot < 0 || t->eot < 0)
        return ramc_error(RAMC_ERR_FORMAT, "%s: <|startoftext|> or <|endoftext|> is missing from the vocabulary", what);
    return RAMC_OK;
}

/* ------------------------------------------------------------- file input */

/* The official vocabulary is 1.6 MB decompressed, Hugging Face's files a
 * few MB: anything past this bound is a gzip bomb, not a vocabulary. */
#define VOCAB_MAX_BYTES (256u << 20)

static ramc_status read_plain(const char *path, char **out, size_t *len) {
    return read_whole_file(path, VOCAB_MAX_BYTES, out, len);
}

/* gzip or plain text (zlib reads a non-gzip file through unchanged). */
static ramc_status read_maybe_gz(const char *path, char **out, size_t *len) {
    int fd;
    ramc_status os = open_regular_file(path, &fd, NULL);
    if (os != RAMC_OK) return os;
    gzFile g = gzdopen(fd, "rb");
    if (!g) {
        close(fd);
        return ramc_error(RAMC_ERR_IO, "%s: cannot open", path);
    }
    size_t cap = 1 << 20, n = 0;
    char *buf = malloc(cap + 1);
    if (!buf) { gzclose(g); return ramc_error(RAMC_ERR_NOMEM, "%s: out of memory", path); }
    for (;;) {
        if (n == cap) {
            char *nb = realloc(buf, cap * 2 + 1);
            if (!nb) { free(buf); gzclose(g); return ramc_error(RAMC_ERR_NOMEM, "%s: out of memory", path); }
            buf = nb;
            cap *= 2;
        }
        unsigned want = (unsigned)((cap - n) > (1u << 30) ? (1u << 30) : (cap - n));
        int r = gzread(g, buf + n, want);
        if (r < 0) {
            int code;
            const char *msg = gzerror(g, &code);
            ramc_status st = ramc_error(RAMC_ERR_FORMAT, "%s: corrupt gzip data: %s", path, msg ? msg : "?");
            free(buf);
            gzclose(g);
            return st;
        }
        if (r == 0) {
            /* zlib reports a stream cut short only through gzerror */
            int code = Z_OK;
            gzerror(g, &code);
            if (code == Z_BUF_ERROR) {
                free(buf);
                gzclose(g);
                return ramc_error(RAMC_ERR_FORMAT, "%s: truncated gzip data", path);
            }
            break;
        }
        n += (size_t)r;
        if (n > VOCAB_MAX_BYTES) {
            free(buf);
            gzclose(g);
            return ramc_error(RAMC_ERR_LIMIT, "%s: more than %u bytes once decompressed", path,
                              VOCAB_MAX_BYTES);
        }
    }
    gzclose(g);
    buf[n] = 0;
    *out = buf;
    *len = n;
    return RAMC_OK;
}

static ramc_status check_text(const char *path, const char *buf, size_t len) {
    if (memchr(buf, 0, len)) return ramc_error(RAMC_ERR_FORMAT, "%s: not a gzip or UTF-8 text file (NUL bytes)", path);
    ramc_cpbuf tmp = {0};
    size_t bad = 0;
    int r = ramc_utf8_decode((const uint8_t *)buf, len, &tmp, &bad);
    ramc_cpbuf_free(&tmp);
    if (r == -2) return ramc_error(RAMC_ERR_NOMEM, "%s: out of memory", path);
    if (r) return ramc_error(RAMC_ERR_FORMAT, "%s: not a gzip or UTF-8 text file (invalid UTF-8 at byte %zu)", path, bad);
    return RAMC_OK;
}

/* Splits one line (NUL-terminated, modified in place) into exactly two
 * whitespace-separated fields. */
static int split_pair(char *line, char **a, size_t *alen, char **b, size_t *blen) {
    char *f[3];
    size_t fl[3];
    int nf = 0;
    char *p = line;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\v' || *p == '\f') p++;
        if (!*p) break;
        if (nf == 2) return 0;
        f[nf] = p;
        while (*p && !(*p == ' ' || *p == '\t' || *p == '\r' || *p == '\v' || *p == '\f')) p++;
        fl[nf] = (size_t)(p - f[nf]);
        nf++;
    }
    if (nf != 2) return 0;
    *a = f[0]; *alen = fl[0];
    *b = f[1]; *blen = fl[1];
    return 1;
}

/* Adds merge `rank` (a, b); the merged symbol's id comes from the vocab. */
static ramc_status add_merge(ramc_tokenizer *t, const char *what, size_t lineno, const char *a, size_t al,
                             const char *b, size_t bl, int32_t rank) {
    char stackbuf[256];
    char *cat = al + bl <= sizeof stackbuf ? stackbuf : malloc(al + bl);
    if (!cat) return ramc_error(RAMC_ERR_NOMEM, "%s: out of memory", what);
    memcpy(cat, a, al);
    memcpy(cat + al, b, bl);
    int32_t ia = vocab_get(t, a, al), ib = vocab_get(t, b, bl), im = vocab_get(t, cat, al + bl);
    if (cat != stackbuf) free(cat);
    if (ia < 0 || ib < 0 || im < 0)
        return ramc_error(RAMC_ERR_FORMAT, "%s: line %zu: merge '%.*s %.*s' uses a symbol missing from the vocabulary",
                          what, lineno, (int)al, a, (int)bl, b);
    pair_put(t, ia, ib, rank, im);
    return RAMC_OK;
}

static ramc_status load_official(const char *path, ramc_tokenizer **out) {
    char *buf = NULL;
    size_t len = 0;
    ramc_status st = read_maybe_gz(path, &buf, &len);
    if (st) return st;
    if ((st = check_text(path, buf, len))) { free(buf); return st; }

    /* line i starts at lines[i]; only lines 0..48894 are needed */
    char **lines = malloc((N_MERGES_OFFICIAL + 1) * sizeof *lines);
    if (!lines) { free(buf); return ramc_error(RAMC_ERR_NOMEM, "%s: out of memory", path); }
    size_t nl = 0;
    char *p = buf;
    while (nl < N_MERGES_OFFICIAL + 1) {
        lines[nl++] = p;
        char *nlp = memchr(p, '\n', len - (size_t)(p - buf));
        if (!nlp) break;
        *nlp = 0;
        p = nlp + 1;
    }
    if (nl < N_MERGES_OFFICIAL + 1) {
        st = ramc_error(RAMC_ERR_FORMAT, "%s: too few merges: %zu lines after the header, expected at least %d", path,
                        nl ? nl - 1 : 0, N_MERGES_OFFICIAL);
        goto done;
    }
    ramc_tokenizer *t = tok_new(49408, N_MERGES_OFFICIAL);
    if (!t) { st = RAMC_ERR_NOMEM; goto done; }
    uint32_t cp[256];
    int order[256];
    byte_unicode(cp, order);
    int32_t id = 0;
    char s[16];
    for (int k = 0; k < 256; k++) {
        int n = ramc_utf8_put(cp[order[k]], (uint8_t *)s);
        if (vocab_put(t, s, (size_t)n, id++)) goto nomem;
    }
    for (int k = 0; k < 256; k++) {
        int n = ramc_utf8_put(cp[order[k]], (uint8_t *)s);
        memcpy(s + n, "</w>", 4);
        if (vocab_put(t, s, (size_t)n + 4, id++)) goto nomem;
    }
    /* the merge results, in file order, then the two special tokens */
    char **pa = malloc(N_MERGES_OFFICIAL * 2 * sizeof *pa);
    size_t *pl = malloc(N_MERGES_OFFICIAL * 2 * sizeof *pl);
    if (!pa || !pl) { free(pa); free(pl); goto nomem; }
    for (size_t i = 1; i <= N_MERGES_OFFICIAL; i++) {
        char *a, *b;
        size_t al, bl;
        if (!split_pair(lines[i], &a, &al, &b, &bl)) {
            st = ramc_error(RAMC_ERR_FORMAT, "%s: line %zu: expected two symbols separated by a space", path, i + 1);
            free(pa); free(pl);
            ramc_tokenizer_free(t);
            goto done;
        }
        pa[2 * (i - 1)] = a; pl[2 * (i - 1)] = al;
        pa[2 * (i - 1) + 1] = b; pl[2 * (i - 1) + 1] = bl;
        char cat[512];
        if (al + bl > sizeof cat) {
            st = ramc_error(RAMC_ERR_FORMAT, "%s: line %zu: merge symbols too long", path, i + 1);
            free(pa); free(pl);
            ramc_tokenizer_free(t);
            goto done;
        }
        memcpy(cat, a, al);
        memcpy(cat + al, b, bl);
        if (vocab_put(t, cat, al + bl, id++)) { free(pa); free(pl); goto nomem; }
    }
    if (vocab_put(t, "<|startoftext|>", 15, id++) || vocab_put(t, "<|endoftext|>", 13, id++)) {
        free(pa); free(pl);
        goto nomem;
    }
    for (size_t i = 0; i < N_MERGES_OFFICIAL && !st; i++)
        st = add_merge(t, path, i + 2, pa[2 * i], pl[2 * i], pa[2 * i + 1], pl[2 * i + 1], (int32_t)i);
    free(pa);
    free(pl);
    if (!st) st = tok_finish(t, path);
    if (st) ramc_tokenizer_free(t);
    else *out = t;
    goto done;
nomem:
    ramc_tokenizer_free(t);
    st = ramc_error(RAMC_ERR_NOMEM, "%s: out of memory", path);
done:
    free(lines);
    free(buf);
    return st;
}

ramc_status ramc_tokenizer_load_hf(const char *vocab_json, const char *merges_txt, ramc_tokenizer **out) {
    if (!vocab_json || !merges_txt || !out)
        return ramc_error(RAMC_ERR_INVALID_ARG, "ramc_tokenizer_load_hf: NULL argument");
    *out = NULL;
    char *vbuf, *mbuf;
    size_t vlen, mlen;
    ramc_status st = read_plain(vocab_json, &vbuf, &vlen);
    if (st) return st;
    cJSON *root = json_parse_whole(vbuf, vlen, NULL);
    free(vbuf);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return ramc_error(RAMC_ERR_FORMAT, "%s: not a JSON object of token -> id", vocab_json);
    }
    int nv = cJSON_GetArraySize(root);
    ramc_tokenizer *t = tok_new((size_t)nv + 2, 65536);
    if (!t) { cJSON_Delete(root); return RAMC_ERR_NOMEM; }
    for (cJSON *it = root->child; it; it = it->next) {
        if (!cJSON_IsNumber(it) || it->valuedouble != (double)(int32_t)it->valuedouble || it->valuedouble < 0) {
            st = ramc_error(RAMC_ERR_FORMAT, "%s: token '%s': id is not a non-negative integer", vocab_json,
                            it->string ? it->string : "?");
            break;
        }
        if (vocab_put(t, it->string, strlen(it->string), (int32_t)it->valuedouble)) {
            st = ramc_error(RAMC_ERR_NOMEM, "%s: out of memory", vocab_json);
            break;
        }
    }
    cJSON_Delete(root);
    if (st) { ramc_tokenizer_free(t); return st; }

    if ((st = read_plain(merges_txt, &mbuf, &mlen))) { ramc_tokenizer_free(t); return st; }
    if ((st = check_text(merges_txt, mbuf, mlen))) { free(mbuf); ramc_tokenizer_free(t); return st; }
    size_t lineno = 0;
    int32_t rank = 0;
    char *p = mbuf;
    while (p && *p && !st) {
        char *nl = strchr(p, '\n');
        if (nl) *nl = 0;
        lineno++;
        char *line = p;
        p = nl ? nl + 1 : NULL;
        if (lineno == 1 && !strncmp(line, "#version", 8)) continue;
        char *a, *b;
        size_t al, bl;
        int blank = 1;
        for (char *q = line; *q && blank; q++) blank = (*q == ' ' || *q == '\t' || *q == '\r');
        if (blank) continue;
        if (!split_pair(line, &a, &al, &b, &bl)) {
            st = ramc_error(RAMC_ERR_FORMAT, "%s: line %zu: expected two symbols separated by a space", merges_txt,
                            lineno);
            break;
        }
        if ((size_t)rank * 2 >= t->pairs_cap) {
            st = ramc_error(RAMC_ERR_LIMIT, "%s: more than %zu merges", merges_txt, t->pairs_cap / 2);
            break;
        }
        st = add_merge(t, merges_txt, lineno, a, al, b, bl, rank++);
    }
    free(mbuf);
    if (!st && rank == 0) st = ramc_error(RAMC_ERR_FORMAT, "%s: no merges", merges_txt);
    if (!st) st = tok_finish(t, vocab_json);
    if (st) { ramc_tokenizer_free(t); return st; }
    *out = t;
    return RAMC_OK;
}

void ramc_text_default_vocab_path(char *buf, size_t size) {
    char dir[4096];
    core_data_dir(dir, sizeof dir);
    /* a cut path would name some other file: leave it empty, which fails to open */
    if (snprintf(buf, size, "%s/bpe_simple_vocab_16e6.txt.gz", dir) >= (int)size && size) buf[0] = '\0';
}

ramc_status ramc_tokenizer_load_for_model(const char *weights_path, ramc_tokenizer **out) {
    if (!weights_path || !out)
        return ramc_error(RAMC_ERR_INVALID_ARG, "ramc_tokenizer_load_for_model: NULL argument");
    /* a model that brings its own vocabulary keeps it beside its weights */
    char dir[4096], vocab[4200], merges[4200];
    file_parent_dir(weights_path, dir, sizeof dir);
    snprintf(vocab, sizeof vocab, "%s/vocab.json", dir);
    snprintf(merges, sizeof merges, "%s/merges.txt", dir);
    struct stat sb;
    if (stat(vocab, &sb) == 0 && stat(merges, &sb) == 0) return ramc_tokenizer_load_hf(vocab, merges, out);
    char def[4096];
    ramc_text_default_vocab_path(def, sizeof def);
    return ramc_tokenizer_load(def, out);
}

ramc_status ramc_tokenizer_load(const char *path, ramc_tokenizer **out) {
    if (!path || !out) return ramc_error(RAMC_ERR_INVALID_ARG, "ramc_tokenizer_load: NULL argument");
    *out = NULL;
    struct stat sb;
    if (stat(path, &sb) != 0) return ramc_error(RAMC_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode)) {
        size_t n = strlen(path);
        char *v = malloc(n + 16), *m = malloc(n + 16);
        if (!v || !m) { free(v); free(m); return ramc_error(RAMC_ERR_NOMEM, "%s: out of memory", path); }
        snprintf(v, n + 16, "%s/vocab.json", path);
        snprintf(m, n + 16, "%s/merges.txt", path);
        ramc_status st = ramc_tokenizer_load_hf(v, m, out);
        free(v);
        free(m);
        return st;
    }
    return load_official(path, out);
}

/* ------------------------------------------------------------------- BPE */

/* bpe() of the official code on one piece's bytes; appends ids to *ids. */
static int bpe_word(const ramc_tokenizer *t, const uint8_t *s, size_t n, int32_t **ids, int *nids) {
    int32_t *w = malloc(n * sizeof *w);
    if (!w) return -1;
    for (size_t i = 0; i < n; i++) w[i] = i + 1 == n ? t->byte_id_w[s[i]] : t->byte_id[s[i]];
    size_t len = n;
    while (len > 1) {
        int32_t best_rank = INT32_MAX, first = -1, second = -1, merged = -1;
        for (size_t i = 0; i + 1 < len; i++) {
            const pair_slot *ps = pair_get(t, w[i], w[i + 1]);
            if (ps && ps->rank < best_rank) {
                best_rank = ps->rank;
                first = w[i];
                second = w[i + 1];
                merged = ps->merged;
            }
        }
        if (first < 0) break;
        size_t o = 0;
        for (size_t i = 0; i < len;) {
            if (i + 1 < len && w[i] == first && w[i + 1] == second) {
                w[o++] = merged;
                i += 2;
            } else {
                w[o++] = w[i++];
            }
        }
        len = o;
    }
    *ids = w;
    *nids = (int)len;
    return 0;
}

static int piece_ids(ramc_tokenizer *t, const uint8_t *s, size_t n, int32_t **ids, int *nids) {
    if (n == 15 && !memcmp(s, "<|startoftext|>", 15)) {
        if (!(*ids = malloc(sizeof **ids))) return -1;
        (*ids)[0] = t->sot;
        *nids = 1;
        return 0;
    }
    if (n == 13 && !memcmp(s, "<|endoftext|>", 13)) {
        if (!(*ids = malloc(sizeof **ids))) return -1;
        (*ids)[0] = t->eot;
        *nids = 1;
        return 0;
    }
    int cacheable = n <= CACHE_PIECE_MAX;
    size_t slot = 0;
    if (cacheable) {
        pthread_mutex_lock(&t->lock);
        size_t m = CACHE_SLOTS - 1;
        for (slot = hash_bytes((const char *)s, n) & m;; slot = (slot + 1) & m) {
            cache_slot *c = &t->cache[slot];
            if (!c->key) break;
            if (c->len == n && !memcmp(c->key, s, n)) {
                int32_t *copy = malloc((size_t)c->n * sizeof *copy);
                if (copy) memcpy(copy, c->ids, (size_t)c->n * sizeof *copy);
                *ids = copy;
                *nids = c->n;
                pthread_mutex_unlock(&t->lock);
                return copy ? 0 : -1;
            }
        }
        pthread_mutex_unlock(&t->lock);
    }
    if (bpe_word(t, s, n, ids, nids)) return -1;
    if (cacheable) {
        pthread_mutex_lock(&t->lock);
        if (t->cache_n >= CACHE_MAX) cache_clear(t);
        size_t m = CACHE_SLOTS - 1;
        for (slot = hash_bytes((const char *)s, n) & m; t->cache[slot].key; slot = (slot + 1) & m)
            if (t->cache[slot].len == n && !memcmp(t->cache[slot].key, s, n)) break;
        cache_slot *c = &t->cache[slot];
        if (!c->key) {
            char *k = malloc(n + 1);
            int32_t *v = malloc((size_t)(*nids ? *nids : 1) * sizeof *v);
            if (k && v) {
                memcpy(k, s, n);
                memcpy(v, *ids, (size_t)*nids * sizeof *v);
                c->key = k;
                c->len = n;
                c->ids = v;
                c->n = *nids;
                t->cache_n++;
            } else {
                free(k);
                free(v);
            }
        }
        pthread_mutex_unlock(&t->lock);
    }
    return 0;
}

static int fold_eq(uint32_t c, char p) {
    /* IGNORECASE in the `regex` module: after lower() only U+017F (long s)
     * still folds onto one of the pattern letters */
    if (c < 0x80) return (c >= 'A' && c <= 'Z' ? c + 32 : c) == (uint32_t)p;
    return p == 's' && c == 0x17F;
}

static size_t match_lit(const uint32_t *v, size_t n, size_t i, const char *lit) {
    size_t k = 0;
    for (; lit[k]; k++)
        if (i + k >= n || !fold_eq(v[i + k], lit[k])) return 0;
    return k;
}

size_t ramc_pretoken_length(const uint32_t *v, size_t n, size_t i) {
    size_t len = 0;
    if (v[i] == '<') {
        len = match_lit(v, n, i, "<|startoftext|>");
        if (!len) len = match_lit(v, n, i, "<|endoftext|>");
    } else if (v[i] == '\'') {
        static const char *const contr[] = {"'s", "'t", "'re", "'ve", "'m", "'ll", "'d"};
        for (size_t k = 0; k < 7 && !len; k++) len = match_lit(v, n, i, contr[k]);
    }
    if (len) return len;
    if (ramc_is_letter(v[i])) { /* \p{L}+ */
        len = 1;
        while (i + len < n && ramc_is_letter(v[i + len])) len++;
        return len;
    }
    if (ramc_is_number(v[i])) return 1; /* a single \p{N} */
    if (ramc_regex_isspace(v[i])) return 0;
    /* [^\s\p{L}\p{N}]+ */
    len = 1;
    while (i + len < n && !ramc_regex_isspace(v[i + len]) && !ramc_is_letter(v[i + len]) &&
           !ramc_is_number(v[i + len]))
        len++;
    return len;
}

ramc_status ramc_tokenize(const ramc_tokenizer *tok_c, const char *text, int32_t *ids, int context_length) {
    if (!tok_c || !text || !ids) return ramc_error(RAMC_ERR_INVALID_ARG, "ramc_tokenize: NULL argument");
    if (context_length < 1) return ramc_error(RAMC_ERR_INVALID_ARG, "ramc_tokenize: context_length %d < 1", context_length);
    /* only the per-piece cache changes, under its lock */
    ramc_tokenizer *tok = (ramc_tokenizer *)tok_c;
    ramc_cpbuf in = {0}, clean = {0};
    uint8_t *piece = NULL;
    int32_t *out = NULL;
    ramc_status st = RAMC_OK;
    size_t bad = 0, tl = strlen(text);
    int r = ramc_utf8_decode((const uint8_t *)text, tl, &in, &bad);
    if (r == -2) { st = ramc_error(RAMC_ERR_NOMEM, "text: out of memory"); goto done; }
    if (r) {
        st = ramc_error(RAMC_ERR_FORMAT, "text: invalid UTF-8 at byte %zu", bad);
        goto done;
    }
    if ((st = ramc_text_clean(in.v, in.n, &clean))) goto done;

    /* [SOT] + bpe + [EOT]: pieces beyond what fits are never needed */
    size_t cap = (size_t)context_length + 1, nout = 0;
    out = malloc((cap + 8) * sizeof *out);
    piece = malloc(clean.n * 4 + 1);
    if (!out || !piece) { st = ramc_error(RAMC_ERR_NOMEM, "text: out of memory"); goto done; }
    out[nout++] = tok->sot;
    const uint32_t *v = clean.v;
    size_t n = clean.n;
    for (size_t i = 0; i < n && nout < cap;) {
        size_t len = ramc_pretoken_length(v, n, i);
        if (!len) { /* whitespace separates pieces and is dropped */
            i++;
            continue;
        }
        size_t pb = 0;
        for (size_t k = 0; k < len; k++) pb += (size_t)ramc_utf8_put(v[i + k], piece + pb);
        int32_t *pids;
        int np;
        if (piece_ids(tok, piece, pb, &pids, &np)) { st = ramc_error(RAMC_ERR_NOMEM, "text: out of memory"); goto done; }
        for (int k = 0; k < np && nout < cap; k++) out[nout++] = pids[k];
        free(pids);
        i += len;
    }
    if (nout < cap) out[nout++] = tok->eot;
    if (nout > (size_t)context_length) {
        nout = (size_t)context_length;
        out[nout - 1] = tok->eot;
    }
    for (size_t k = 0; k < (size_t)context_length; k++) ids[k] = k < nout ? out[k] : 0;
done:
    ramc_cpbuf_free(&in);
    ramc_cpbuf_free(&clean);
    free(piece);
    free(out);
    return st;
}
