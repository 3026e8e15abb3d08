/* The store of encoded vocabularies (vocab.h). */
#include "serve/vocab.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"

int vocab_store_init(vocab_store *s, int max) {
    memset(s, 0, sizeof *s);
    s->v = calloc((size_t)(max > 0 ? max : 1), sizeof *s->v);
    if (!s->v) return 0;
    s->max = max;
    pthread_mutex_init(&s->lock, NULL);
    return 1;
}

static void entry_free(vocab_entry *e) {
    ramc_labels_free(e->labels);
    free(e->template_str);
    free(e);
}

void vocab_store_free(vocab_store *s) {
    if (!s->v) return;
    for (int i = 0; i < s->n; i++) entry_free(s->v[i]);
    free(s->v);
    pthread_mutex_destroy(&s->lock);
    memset(s, 0, sizeof *s);
}

/* FNV-1a, 64 bits: an id, not a security boundary (lookups compare content) */
static uint64_t fnv(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

void vocab_content_id(const char *template_str, const char *const *names, int n,
                      char id[VOCAB_ID_BYTES]) {
    const char *t = template_str ? template_str : RAMC_DEFAULT_TEMPLATE;
    uint64_t h = fnv(0xcbf29ce484222325ull, t, strlen(t) + 1); /* the NULs separate the parts */
    for (int i = 0; i < n; i++) h = fnv(h, names[i], strlen(names[i]) + 1);
    snprintf(id, VOCAB_ID_BYTES, "v%016llx", (unsigned long long)h);
}

static int same_content(const vocab_entry *e, const char *template_str, const char *const *names,
                        int n) {
    const char *a = e->template_str ? e->template_str : RAMC_DEFAULT_TEMPLATE;
    const char *b = template_str ? template_str : RAMC_DEFAULT_TEMPLATE;
    if (strcmp(a, b) || ramc_labels_count(e->labels) != n) return 0;
    for (int i = 0; i < n; i++)
        if (strcmp(ramc_labels_name(e->labels, i), names[i])) return 0;
    return 1;
}

static vocab_entry *find(vocab_store *s, const char *id) {
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->v[i]->id, id)) return s->v[i];
    return NULL;
}

static void hold(vocab_store *s, vocab_entry *e) {
    e->refs++;
    e->last_used = ++s->clock;
}

vocab_entry *vocab_acquire(vocab_store *s, const char *id) {
    pthread_mutex_lock(&s->lock);
    vocab_entry *e = find(s, id);
    if (e) hold(s, e);
    pthread_mutex_unlock(&s->lock);
    return e;
}

vocab_entry *vocab_acquire_same(vocab_store *s, const char *template_str,
                                const char *const *names, int n) {
    char id[VOCAB_ID_BYTES];
    vocab_content_id(template_str, names, n, id);
    pthread_mutex_lock(&s->lock);
    vocab_entry *e = find(s, id);
    if (e && !same_content(e, template_str, names, n)) e = NULL;
    if (e) hold(s, e);
    pthread_mutex_unlock(&s->lock);
    return e;
}

void vocab_release(vocab_store *s, vocab_entry *e) {
    if (!e) return;
    pthread_mutex_lock(&s->lock);
    e->refs--;
    pthread_mutex_unlock(&s->lock);
}

vocab_entry *vocab_insert(vocab_store *s, const char *id, const char *template_str,
                          ramc_labels *labels, int pinned) {
    vocab_entry *fresh = calloc(1, sizeof *fresh);
    char *tcopy = template_str ? strdup(template_str) : NULL;
    if (!fresh || (template_str && !tcopy)) {
        free(fresh);
        free(tcopy);
        ramc_error(RAMC_ERR_NOMEM, "vocabulary store: out of memory");
        return NULL;
    }
    snprintf(fresh->id, sizeof fresh->id, "%s", id);
    fresh->template_str = tcopy, fresh->labels = labels, fresh->pinned = pinned;
    const int n = ramc_labels_count(labels);
    const char **names = malloc((size_t)n * sizeof *names);
    if (!names) {
        free(fresh);
        free(tcopy);
        ramc_error(RAMC_ERR_NOMEM, "vocabulary store: out of memory");
        return NULL;
    }
    for (int i = 0; i < n; i++) names[i] = ramc_labels_name(labels, i);

    vocab_entry *result = NULL;
    pthread_mutex_lock(&s->lock);
    vocab_entry *old = find(s, id);
    if (old) {
        if (same_content(old, template_str, names, n)) {
            hold(s, old);
            result = old;
        } else {
            ramc_error(RAMC_ERR_LIMIT, "vocabulary id %s is taken by another label set", id);
        }
    } else {
        int slot = s->n;
        if (s->n == s->max) {
            /* the least recently used set nobody is using gives way */
            slot = -1;
            for (int i = 0; i < s->n; i++)
                if (!s->v[i]->pinned && !s->v[i]->refs &&
                    (slot < 0 || s->v[i]->last_used < s->v[slot]->last_used))
                    slot = i;
            if (slot >= 0) entry_free(s->v[slot]);
        } else {
            s->n++;
        }
        if (slot < 0) {
            ramc_error(RAMC_ERR_LIMIT, "the vocabulary store is full (%d sets, all in use)", s->max);
        } else {
            s->v[slot] = fresh;
            hold(s, fresh);
            result = fresh;
        }
    }
    pthread_mutex_unlock(&s->lock);
    free(names);
    if (result != fresh) {
        fresh->labels = NULL; /* not ours to free unless stored */
        free(fresh->template_str);
        free(fresh);
        if (result) ramc_labels_free(labels); /* the same set was there already */
    }
    return result;
}

void vocab_each(vocab_store *s, void (*fn)(const vocab_entry *e, void *arg), void *arg) {
    pthread_mutex_lock(&s->lock);
    for (int i = 0; i < s->n; i++) fn(s->v[i], arg);
    pthread_mutex_unlock(&s->lock);
}
