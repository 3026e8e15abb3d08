/* The persistent label cache (api.h; docs/predict.md "Label cache").
 *
 * Label features depend on the CLIP weights, how they were loaded (heads,
 * fp16 rounding, bf16, packed products: each moves the last bits), the
 * adapter (deep prompts) and the prompt's token ids, which already fold in
 * the label, the template and the tokenizer. The model key digests the
 * first three, the entry name the last, so a changed model or prompt can
 * never meet a stale entry, and each entry also stores its token ids and is
 * only used when they match.
 *
 * Digest: two 64-bit multiply-xorshift lanes over the bytes (a fast
 * non-cryptographic hash: the cache is the user's own folder, and its only
 * adversary is an accidental collision, ~2^-128). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api.h"
#include "core/status.h"

#define ENTRY_MAGIC "RAMCLF01"

typedef struct {
    uint64_t a, b;
    uint64_t n;
} digest;

static uint64_t mix(uint64_t x) {
    x ^= x >> 31;
    x *= 0x7fb5d329728ea185ull;
    x ^= x >> 27;
    x *= 0x81dadef4bc2dd44dull;
    x ^= x >> 33;
    return x;
}

static void digest_init(digest *d) { d->a = 0x243f6a8885a308d3ull, d->b = 0x13198a2e03707344ull, d->n = 0; }

static void digest_add(digest *d, const void *data, size_t size) {
    const unsigned char *p = data;
    for (size_t i = 0; i < size; i += 8) {
        uint64_t w = 0;
        memcpy(&w, p + i, size - i < 8 ? size - i : 8);
        d->a = mix(d->a ^ w) + 0x9e3779b97f4a7c15ull;
        d->b = mix(d->b + w + d->n) ^ 0xc2b2ae3d27d4eb4full;
        d->n++;
    }
}

static void digest_hex(const digest *d, char out[33]) {
    uint64_t a = mix(d->a ^ d->n), b = mix(d->b + d->n * 0x165667b19e3779f9ull);
    snprintf(out, 33, "%016llx%016llx", (unsigned long long)a, (unsigned long long)b);
}

static ramc_status digest_file(digest *d, const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return ramc_error(RAMC_ERR_IO, "%s: cannot read for the label cache key: %s", path, strerror(errno));
    size_t cap = 1 << 22, got;
    unsigned char *buf = malloc(cap);
    if (!buf) {
        fclose(f);
        return ramc_error(RAMC_ERR_NOMEM, "label cache: out of memory");
    }
    while ((got = fread(buf, 1, cap, f)) > 0) digest_add(d, buf, got);
    int bad = ferror(f);
    free(buf);
    fclose(f);
    return bad ? ramc_error(RAMC_ERR_IO, "%s: read error", path) : RAMC_OK;
}

ramc_status label_cache_model_key(const ramc_model *m, char key[33]) {
    model_lazy *lz = m->lazy;
    ramc_status st = RAMC_OK;
    pthread_mutex_lock(&lz->lock);
    if (!lz->have_key && !m->clip->path) {
        st = ramc_error(RAMC_ERR_INVALID_ARG, "label cache: the model was not loaded from a file, so "
                                              "it has no content key");
    } else if (!lz->have_key) {
        digest d;
        digest_init(&d);
        st = digest_file(&d, m->clip->path);
        const ramc_clip_info *in = &m->clip->info;
        int settings[4] = {m->bf16, m->packed, in->vision_heads, in->text_heads};
        digest_add(&d, settings, sizeof settings);
        digest_add(&d, in, sizeof *in);
        if (m->adapter)
            for (int i = 0; i < m->adapter->n_params; i++) {
                const ram_param *p = &m->adapter->params[i];
                digest_add(&d, p->name, strlen(p->name));
                digest_add(&d, p->data, (size_t)p->numel * sizeof(float));
            }
        else
            digest_add(&d, "no adapter", 10);
        if (st == RAMC_OK) {
            digest_hex(&d, lz->cache_key);
            lz->have_key = 1;
        }
    }
    if (st == RAMC_OK) memcpy(key, lz->cache_key, 33);
    pthread_mutex_unlock(&lz->lock);
    return st;
}

static void entry_path(char *out, size_t size, const char *dir, const char *model_key,
                       const int32_t *tokens, int L) {
    digest d;
    digest_init(&d);
    digest_add(&d, tokens, (size_t)L * sizeof *tokens);
    char name[33];
    digest_hex(&d, name);
    snprintf(out, size, "%s/%s/%s.lf", dir, model_key, name);
}

/* Entry layout: magic[8], int32 L, int32 D, int32 has_plain, tokens[L],
 * features[D], plain[D] if has_plain; little-endian as the host. */
int label_cache_get(const char *dir, const char *model_key, const int32_t *tokens, int L, int D,
                    float *features, float *plain) {
    char path[4600];
    entry_path(path, sizeof path, dir, model_key, tokens, L);
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    char magic[8];
    int32_t head[3];
    int32_t *stored = malloc((size_t)L * sizeof *stored);
    int ok = stored && fread(magic, 1, 8, f) == 8 && !memcmp(magic, ENTRY_MAGIC, 8) &&
             fread(head, sizeof head, 1, f) == 1 && head[0] == L && head[1] == D &&
             head[2] == (plain != NULL) && fread(stored, sizeof *stored, (size_t)L, f) == (size_t)L &&
             !memcmp(stored, tokens, (size_t)L * sizeof *tokens) &&
             fread(features, sizeof(float), (size_t)D, f) == (size_t)D &&
             (!plain || fread(plain, sizeof(float), (size_t)D, f) == (size_t)D) && fgetc(f) == EOF;
    free(stored);
    fclose(f);
    return ok;
}

ramc_status label_cache_put(const char *dir, const char *model_key, const int32_t *tokens, int L,
                            int D, const float *features, const float *plain) {
    char path[4600], folder[4600], tmp[4700];
    snprintf(folder, sizeof folder, "%s/%s", dir, model_key);
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return ramc_error(RAMC_ERR_IO, "%s: cannot create the label cache: %s", dir, strerror(errno));
    if (mkdir(folder, 0777) != 0 && errno != EEXIST)
        return ramc_error(RAMC_ERR_IO, "%s: cannot create: %s", folder, strerror(errno));
    entry_path(path, sizeof path, dir, model_key, tokens, L);
    snprintf(tmp, sizeof tmp, "%s/.tmp-XXXXXX", folder);
    int fd = mkstemp(tmp);
    if (fd < 0) return ramc_error(RAMC_ERR_IO, "%s: cannot write to the label cache: %s", folder, strerror(errno));
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        close(fd);
        unlink(tmp);
        return ramc_error(RAMC_ERR_IO, "%s: %s", tmp, strerror(errno));
    }
    int32_t head[3] = {L, D, plain != NULL};
    int ok = fwrite(ENTRY_MAGIC, 1, 8, f) == 8 && fwrite(head, sizeof head, 1, f) == 1 &&
             fwrite(tokens, sizeof *tokens, (size_t)L, f) == (size_t)L &&
             fwrite(features, sizeof(float), (size_t)D, f) == (size_t)D &&
             (!plain || fwrite(plain, sizeof(float), (size_t)D, f) == (size_t)D);
    ok = (fclose(f) == 0) && ok;
    /* rename is atomic: a concurrent reader sees the old entry, none, or this one */
    if (!ok || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return ramc_error(RAMC_ERR_IO, "%s: cannot write the label cache entry: %s", path, strerror(e));
    }
    return RAMC_OK;
}
