/* Stored vocabularies: label sets encoded once (POST /v1/labels, or the
 * labels of an earlier predict request) and named by an id that later
 * requests give instead of the labels. The id of a label set is a digest of
 * its template and names, so the same vocabulary always gets the same id and
 * a request that repeats its labels reuses the encoded set; a lookup by
 * content also compares the names themselves, so a digest collision never
 * hands one client's labels to another. The store holds at most `max` sets;
 * when full, the least recently used set that no request is using gives way.
 * Thread-safe. */
#ifndef RAMC_SERVE_VOCAB_H
#define RAMC_SERVE_VOCAB_H

#include <pthread.h>
#include <stdint.h>

#include "ramc.h"

#define VOCAB_ID_BYTES 24

typedef struct vocab_entry {
    char id[VOCAB_ID_BYTES];   /* "v" + 16 hex digits, or a name given at start ("default") */
    char *template_str;        /* NULL: RAMC_DEFAULT_TEMPLATE */
    ramc_labels *labels;
    int refs;                  /* requests using it now: not evicted while > 0 */
    int pinned;                /* given at start: never evicted */
    uint64_t last_used;
} vocab_entry;

typedef struct {
    pthread_mutex_t lock;
    vocab_entry **v;           /* [n] */
    int n, max;
    uint64_t clock;
} vocab_store;

int vocab_store_init(vocab_store *s, int max); /* 0 out of memory */
void vocab_store_free(vocab_store *s);

/* The content id of a label set (template NULL: the default one). */
void vocab_content_id(const char *template_str, const char *const *names, int n,
                      char id[VOCAB_ID_BYTES]);

/* The entry named id, held for the caller (vocab_release), or NULL. */
vocab_entry *vocab_acquire(vocab_store *s, const char *id);
/* The entry holding exactly this label set (by content id, then names), held, or NULL. */
vocab_entry *vocab_acquire_same(vocab_store *s, const char *template_str,
                                const char *const *names, int n);
void vocab_release(vocab_store *s, vocab_entry *e);

/* Stores `labels` (ownership passes to the store) under id with its
 * template, and returns the stored entry, held. If the id is taken by the
 * same label set, that entry is returned and `labels` freed; by another set
 * (a digest collision) or when every stored set is in use, NULL is returned
 * with an error recorded (RAMC_ERR_LIMIT), and `labels` is left to the caller. */
vocab_entry *vocab_insert(vocab_store *s, const char *id, const char *template_str,
                          ramc_labels *labels, int pinned);

/* Calls fn for every stored entry, under the lock (fn must not call the store). */
void vocab_each(vocab_store *s, void (*fn)(const vocab_entry *e, void *arg), void *arg);

#endif
