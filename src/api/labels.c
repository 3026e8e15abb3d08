/* ramc_labels: a label vocabulary and its text features, computed once per
 * (model, vocabulary) and reused for every image (DESIGN: label features
 * depend on the vocabulary and the adapter only). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "core/utf8.h"
#include "core/status.h"
#include "kernels/kernels.h"
#include "ram/ram_forward.h"

/* Labels per text-tower call: bounds the activations (n x 77 x width floats,
 * times the MLP's 4x) for large vocabularies on ViT-B-sized towers. */
#define TEXT_CHUNK 64

/* The template must hold exactly one "{}" and no other brace: the official
 * code fills it with Python's str.format, where other braces would mean
 * something else (or fail). */
static ramc_status check_template(const char *t) {
    size_t len = strlen(t);
    if (len > RAMC_MAX_TEMPLATE_BYTES)
        return ramc_error(RAMC_ERR_LIMIT, "template: %zu bytes, at most %d", len,
                          RAMC_MAX_TEMPLATE_BYTES);
    long bad = utf8_invalid_at((const unsigned char *)t, len);
    if (bad >= 0) return ramc_error(RAMC_ERR_FORMAT, "template: invalid UTF-8 at byte %ld", bad);
    const char *slot = strstr(t, "{}");
    if (!slot || strstr(slot + 2, "{}"))
        return ramc_error(RAMC_ERR_INVALID_ARG,
                          "template \"%s\": must contain exactly one \"{}\" where the label goes", t);
    for (const char *p = t; *p; p++)
        if ((*p == '{' || *p == '}') && p != slot && p != slot + 1)
            return ramc_error(RAMC_ERR_INVALID_ARG,
                              "template \"%s\": braces other than the one \"{}\" are not allowed", t);
    return RAMC_OK;
}

static ramc_status check_names(const char *const *names, int n) {
    if (!names || n <= 0)
        return ramc_error(RAMC_ERR_INVALID_ARG, "labels: the label list is empty");
    if (n > RAMC_MAX_LABELS)
        return ramc_error(RAMC_ERR_LIMIT, "labels: %d labels, at most %d", n, RAMC_MAX_LABELS);
    for (int i = 0; i < n; i++) {
        const char *s = names[i];
        if (!s) return ramc_error(RAMC_ERR_INVALID_ARG, "label %d: NULL name", i + 1);
        size_t len = strlen(s);
        if (len == 0 || utf8_is_blank(s, len))
            return ramc_error(RAMC_ERR_INVALID_ARG,
                              "label %d: empty name (nothing but white space, Unicode spaces included)",
                              i + 1);
        if (len > RAMC_MAX_LABEL_BYTES)
            return ramc_error(RAMC_ERR_LIMIT, "label %d: name of %zu bytes, at most %d", i + 1, len,
                              RAMC_MAX_LABEL_BYTES);
        long bad = utf8_invalid_at((const unsigned char *)s, len);
        if (bad >= 0)
            return ramc_error(RAMC_ERR_FORMAT, "label %d: invalid UTF-8 at byte %ld", i + 1, bad);
    }
    /* Duplicates would split one label's probability mass between two
     * entries of the softmax, silently lowering both scores. */
    for (int i = 0; i < n; i++)
        for (int j = 0; j < i; j++)
            if (!strcmp(names[i], names[j]))
                return ramc_error(RAMC_ERR_INVALID_ARG, "label %d \"%s\": duplicate of label %d",
                                  i + 1, names[i], j + 1);
    return RAMC_OK;
}

/* qsort has no context argument: each entry carries its row and length */
typedef struct {
    const int32_t *row;
    int index, len;
} token_row;

static int cmp_token_rows(const void *a, const void *b) {
    const token_row *x = a, *y = b;
    int c = memcmp(x->row, y->row, (size_t)x->len * sizeof *x->row);
    return c ? c : (x->index > y->index) - (x->index < y->index);
}

/* Two names that tokenize alike ("Red Star", "red star": CLIP lowercases and
 * folds white space) are one label to the model, and would split its score
 * between two entries: refused, naming both, rather than merged behind the
 * caller's back. */
static ramc_status check_same_tokens(const char *const *names, const int32_t *tokens, int n, int L) {
    token_row *r = ramc_malloc((size_t)n * sizeof *r, "label order");
    if (!r) return RAMC_ERR_NOMEM;
    for (int i = 0; i < n; i++) r[i] = (token_row){tokens + (size_t)i * L, i, L};
    qsort(r, (size_t)n, sizeof *r, cmp_token_rows);
    ramc_status st = RAMC_OK;
    for (int k = 1; k < n && st == RAMC_OK; k++)
        if (!memcmp(r[k - 1].row, r[k].row, (size_t)L * sizeof *tokens))
            st = ramc_error(RAMC_ERR_INVALID_ARG,
                            "label %d \"%.200s\" and label %d \"%.200s\" give the same tokens "
                            "(case and spacing do not count): keep one",
                            r[k - 1].index + 1, names[r[k - 1].index], r[k].index + 1, names[r[k].index]);
    free(r);
    return st;
}

/* template with its "{}" replaced by name; malloc'd */
static char *fill_template(const char *t, const char *name) {
    const char *slot = strstr(t, "{}");
    size_t pre = (size_t)(slot - t), nl = strlen(name), post = strlen(slot + 2);
    char *s = ramc_malloc(pre + nl + post + 1, "prompt");
    if (!s) return NULL;
    memcpy(s, t, pre);
    memcpy(s + pre, name, nl);
    memcpy(s + pre + nl, slot + 2, post + 1);
    return s;
}

static ramc_status encode(const ramc_model *m, const ram_adapter *a, const int32_t *tokens, int n,
                          float *features) {
    const int L = m->clip->info.context_length, D = m->clip->info.embed_dim;
    for (int first = 0; first < n; first += TEXT_CHUNK) {
        int k = n - first < TEXT_CHUNK ? n - first : TEXT_CHUNK;
        ramc_status st = ram_encode_text(m->clip, a, tokens + (size_t)first * L, k,
                                         features + (size_t)first * D, NULL, NULL);
        if (st != RAMC_OK) return st;
    }
    return RAMC_OK;
}

/* Features of the labels in `tokens` [n, L] into lb, through the label
 * cache when cache_dir is set: hits are read, only the misses go through the
 * text tower, and are then stored. */
static ramc_status encode_all(const ramc_model *m, const int32_t *tokens, int n, int plain_too,
                              const char *cache_dir, ramc_labels *lb) {
    const int L = m->clip->info.context_length, D = m->clip->info.embed_dim;
    if (!cache_dir) {
        ramc_status st = encode(m, m->adapter, tokens, n, lb->features);
        if (st == RAMC_OK && plain_too) st = encode(m, NULL, tokens, n, lb->features_plain);
        return st;
    }
    char key[33];
    ramc_status st = label_cache_model_key(m, key);
    if (st != RAMC_OK) return st;
    int *miss = ramc_malloc((size_t)n * sizeof *miss, "label cache");
    int32_t *miss_tokens = ramc_malloc((size_t)n * L * sizeof *miss_tokens, "label cache");
    float *f = ramc_malloc((size_t)n * D * sizeof *f, "label cache");
    float *fp = plain_too ? ramc_malloc((size_t)n * D * sizeof *fp, "label cache") : NULL;
    int n_miss = 0;
    if (!miss || !miss_tokens || !f || (plain_too && !fp)) st = RAMC_ERR_NOMEM;
    for (int i = 0; st == RAMC_OK && i < n; i++) {
        const int32_t *t = tokens + (size_t)i * L;
        if (label_cache_get(cache_dir, key, t, L, D, lb->features + (size_t)i * D,
                            plain_too ? lb->features_plain + (size_t)i * D : NULL)) {
            lb->cache_hits++;
        } else {
            memcpy(miss_tokens + (size_t)n_miss * L, t, (size_t)L * sizeof *t);
            miss[n_miss++] = i;
        }
    }
    if (st == RAMC_OK && n_miss) {
        st = encode(m, m->adapter, miss_tokens, n_miss, f);
        if (st == RAMC_OK && plain_too) st = encode(m, NULL, miss_tokens, n_miss, fp);
        for (int k = 0; st == RAMC_OK && k < n_miss; k++) {
            const int i = miss[k];
            memcpy(lb->features + (size_t)i * D, f + (size_t)k * D, (size_t)D * sizeof *f);
            if (plain_too)
                memcpy(lb->features_plain + (size_t)i * D, fp + (size_t)k * D, (size_t)D * sizeof *fp);
            st = label_cache_put(cache_dir, key, miss_tokens + (size_t)k * L, L, D, f + (size_t)k * D,
                                 plain_too ? fp + (size_t)k * D : NULL);
        }
    }
    free(miss);
    free(miss_tokens);
    free(f);
    free(fp);
    return st;
}

/* The reference prompt's features, filled once (labels are shared between
 * threads and stay const for their users). */
struct labels_lazy {
    pthread_mutex_t lock;
    int have_ref;
    float *ref, *ref_plain; /* [D] each; ref_plain == ref without deep text prompts */
};

ramc_status labels_reference(const ramc_labels *lb, const float **ref, const float **ref_plain) {
    struct labels_lazy *lz = lb->lazy;
    const ramc_model *m = lb->model;
    const int L = m->clip->info.context_length, D = lb->D;
    const int plain_too = lb->features_plain != lb->features;
    ramc_status st = RAMC_OK;
    pthread_mutex_lock(&lz->lock);
    if (!lz->have_ref) {
        lz->ref = ramc_malloc((size_t)2 * D * sizeof(float), "reference prompt");
        if (!lz->ref) st = RAMC_ERR_NOMEM;
        else lz->ref_plain = plain_too ? lz->ref + D : lz->ref;
        char key[33];
        int hit = 0;
        if (st == RAMC_OK && lb->cache_dir && (st = label_cache_model_key(m, key)) == RAMC_OK)
            hit = label_cache_get(lb->cache_dir, key, lb->ref_tokens, L, D, lz->ref,
                                  plain_too ? lz->ref_plain : NULL);
        if (st == RAMC_OK && !hit) {
            st = encode(m, m->adapter, lb->ref_tokens, 1, lz->ref);
            if (st == RAMC_OK && plain_too) st = encode(m, NULL, lb->ref_tokens, 1, lz->ref_plain);
            if (st == RAMC_OK && lb->cache_dir)
                st = label_cache_put(lb->cache_dir, key, lb->ref_tokens, L, D, lz->ref,
                                     plain_too ? lz->ref_plain : NULL);
        }
        if (st == RAMC_OK) {
            lz->have_ref = 1;
        } else {
            free(lz->ref);
            lz->ref = lz->ref_plain = NULL;
        }
    }
    *ref = lz->ref, *ref_plain = lz->ref_plain;
    pthread_mutex_unlock(&lz->lock);
    return st;
}

static ramc_status labels_encode(const ramc_model *m, const ramc_tokenizer *tok,
                                 const char *const *names, int n, const char *template_str,
                                 const char *cache_dir, ramc_labels **out) {
    if (!out) return ramc_error(RAMC_ERR_INVALID_ARG, "labels_encode: no output pointer");
    *out = NULL;
    if (!m || !m->clip) return ramc_error(RAMC_ERR_INVALID_ARG, "labels_encode: no model");
    const char *tmpl = template_str ? template_str : RAMC_DEFAULT_TEMPLATE;
    ramc_status st = check_template(tmpl);
    if (st == RAMC_OK) st = check_names(names, n);
    if (st != RAMC_OK) return st;

    const int L = m->clip->info.context_length, D = m->clip->info.embed_dim;
    if (!tok && (st = model_tokenizer(m, &tok)) != RAMC_OK) return st;
    const int plain_too = m->adapter && m->adapter->n_text_prompted > 0;
    ramc_labels *lb = ramc_calloc(1, sizeof *lb, "labels");
    int32_t *tokens = ramc_malloc((size_t)n * L * sizeof(int32_t), "label tokens");
    int32_t *probe = ramc_malloc((size_t)(L + 1) * sizeof(int32_t), "label tokens");
    if (!lb || !tokens || !probe) {
        st = RAMC_ERR_NOMEM;
        goto fail;
    }
    lb->model = m, lb->n = n, lb->D = D;
    if ((lb->lazy = ramc_calloc(1, sizeof *lb->lazy, "labels")))
        pthread_mutex_init(&lb->lazy->lock, NULL);
    lb->ref_tokens = ramc_malloc((size_t)L * sizeof(int32_t), "reference prompt");
    if (!lb->lazy || !lb->ref_tokens) {
        st = RAMC_ERR_NOMEM;
        goto fail;
    }
    if (cache_dir && !(lb->cache_dir = ramc_malloc(strlen(cache_dir) + 1, "label cache"))) {
        st = RAMC_ERR_NOMEM;
        goto fail;
    }
    if (cache_dir) memcpy(lb->cache_dir, cache_dir, strlen(cache_dir) + 1);
    /* the reference prompt's tokens now, while the tokenizer is at hand (the
     * caller's may be gone by the first independent score) */
    char *ref_prompt = fill_template(tmpl, "");
    if (!ref_prompt) {
        st = RAMC_ERR_NOMEM;
        goto fail;
    }
    st = ramc_tokenize(tok, ref_prompt, lb->ref_tokens, L);
    free(ref_prompt);
    if (st != RAMC_OK) {
        ramc_error_prefix(st, "the reference prompt");
        goto fail;
    }
    lb->names = ramc_calloc((size_t)n, sizeof(char *), "label names");
    lb->features = ramc_malloc((size_t)n * D * sizeof(float), "label features");
    lb->features_plain =
        plain_too ? ramc_malloc((size_t)n * D * sizeof(float), "label features") : lb->features;
    if (!lb->names || !lb->features || !lb->features_plain) {
        st = RAMC_ERR_NOMEM;
        goto fail;
    }
    for (int i = 0; i < n; i++) {
        size_t len = strlen(names[i]);
        if (!(lb->names[i] = ramc_malloc(len + 1, "label name"))) {
            st = RAMC_ERR_NOMEM;
            goto fail;
        }
        memcpy(lb->names[i], names[i], len + 1);
        char *prompt = fill_template(tmpl, names[i]);
        if (!prompt) {
            st = RAMC_ERR_NOMEM;
            goto fail;
        }
        /* The official tokenize(..., truncate=True) would cut an over-long
         * prompt silently, scoring a label that is not the one asked for:
         * one token more than the context shows whether anything was cut. */
        st = ramc_tokenize(tok, prompt, probe, L + 1);
        if (st == RAMC_OK && probe[L] != 0) {
            st = ramc_error(RAMC_ERR_LIMIT,
                            "label %d \"%.60s%s\": its prompt needs more than the model's %d tokens "
                            "and would be cut; shorten the label",
                            i + 1, names[i], strlen(names[i]) > 60 ? "..." : "", L);
            free(prompt);
            goto fail;
        }
        if (st == RAMC_OK) memcpy(tokens + (size_t)i * L, probe, (size_t)L * sizeof *probe);
        free(prompt);
        if (st != RAMC_OK) {
            ramc_error_prefix(st, "label %d", i + 1);
            goto fail;
        }
    }
    if ((st = check_same_tokens(names, tokens, n, L)) != RAMC_OK) goto fail;
    if ((st = encode_all(m, tokens, n, plain_too, cache_dir, lb)) != RAMC_OK) goto fail;
    free(tokens);
    free(probe);
    *out = lb;
    return RAMC_OK;
fail:
    free(tokens);
    free(probe);
    ramc_labels_free(lb);
    return st;
}

ramc_status ramc_labels_encode(const ramc_model *m, const ramc_tokenizer *tok,
                               const char *const *names, int n, const char *template_str,
                               ramc_labels **out) {
    int saved = kernels_threads_begin(m ? m->threads : 0);
    ramc_status st = labels_encode(m, tok, names, n, template_str, NULL, out);
    kernels_threads_end(saved);
    return st;
}

ramc_status ramc_labels_encode_cached(const ramc_model *m, const ramc_tokenizer *tok,
                                      const char *const *names, int n, const char *template_str,
                                      const char *cache_dir, ramc_labels **out) {
    if (cache_dir && !*cache_dir) cache_dir = NULL;
    int saved = kernels_threads_begin(m ? m->threads : 0);
    ramc_status st = labels_encode(m, tok, names, n, template_str, cache_dir, out);
    kernels_threads_end(saved);
    return st;
}

int ramc_labels_cache_hits(const ramc_labels *lb) { return lb ? lb->cache_hits : 0; }

void ramc_labels_free(ramc_labels *lb) {
    if (!lb) return;
    if (lb->names)
        for (int i = 0; i < lb->n; i++) free(lb->names[i]);
    free(lb->names);
    if (lb->features_plain != lb->features) free(lb->features_plain);
    free(lb->features);
    free(lb->ref_tokens);
    free(lb->cache_dir);
    if (lb->lazy) {
        pthread_mutex_destroy(&lb->lazy->lock);
        free(lb->lazy->ref);
        free(lb->lazy);
    }
    free(lb);
}

int ramc_labels_count(const ramc_labels *lb) { return lb ? lb->n : 0; }

const char *ramc_labels_name(const ramc_labels *lb, int i) {
    return lb && i >= 0 && i < lb->n ? lb->names[i] : NULL;
}
