/* Prefetching batch loader. See loader.h for the contract.
 *
 * Design: work is handed out per item, not per batch. Positions of the order
 * are claimed strictly in increasing order (next_claim) by whichever thread
 * is free, workers or the consumer, and each position owns the ring slot
 * pos % window until the consumer has used it. Workers may claim a position
 * only while it is less than `window` ahead of the consumer, which bounds
 * memory and keeps slots from being overwritten. The consumer walks the
 * positions in order, so skipping a bad item never depends on which thread
 * finished first.
 */
#include "data/loader.h"
#include "image/image.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOADER_MSG_BYTES 512
#define LOADER_MAX_WORKERS 64
/* Decoding is the loader's only large allocation: a 16384x16384 image is
 * 768 MiB of RGB before augmentation copies and crops it. Workers reserve
 * an estimate from this budget (bytes, across all workers and the
 * consumer) before decoding, from the size the file's header declares, so
 * a data set that lists huge images many times cannot multiply that by the
 * number of workers. An item whose estimate alone exceeds the budget is
 * decoded when nothing else is in flight. docs/limits.md. */
#define LOADER_DECODE_BUDGET_BYTES (1ull << 30)

typedef struct {
    int pos;         /* position of the order this slot holds */
    int done;        /* result ready */
    ramc_status status;
    char msg[LOADER_MSG_BYTES];
    ramc_image kept; /* keep_decoded: the decoded image until the consumer takes it */
} loader_slot;

struct ramc_loader {
    const char *const *paths;
    int n_paths;
    int *order;
    int *seed_pos;            /* [n] position for each item's seed, or NULL: its own (same block) */
    int n;
    ramc_loader_options opt;
    uint64_t epoch;
    int S;
    size_t item_floats; /* 3*S*S */
    int window;         /* items in flight at most */
    float *buf;         /* window * item_floats */
    loader_slot *slots;

    pthread_mutex_t mu;
    pthread_cond_t cv_work; /* a position became claimable, or stop */
    pthread_cond_t cv_done; /* a slot finished */
    pthread_cond_t cv_budget;  /* decode memory was given back */
    unsigned long long in_flight; /* bytes reserved by decodes running now */
    unsigned long long budget, peak;
    int next_claim;         /* first unclaimed position */
    int consumed;           /* first position the consumer has not used */
    int stop;
    pthread_t *threads;
    int n_threads;

    int skipped;
    int delivered;            /* batches handed out this epoch */
    ramc_status failed;       /* sticky fatal error, RAMC_OK if none */
    char failed_msg[2 * LOADER_MSG_BYTES];
};

ramc_loader_options loader_default_options(void) {
    ramc_loader_options o;
    memset(&o, 0, sizeof o);
    o.batch_size = 32;
    o.workers = 1;
    o.prefetch_batches = 2;
    o.drop_last = 1;
    o.train = 1;
    o.augment = augment_default_options();
    o.seed = 0;
    o.on_error = LOADER_SKIP;
    return o;
}

/* Waits until the decode of `path` fits the budget and reserves it; returns
 * the bytes reserved. The estimate: the file, its decoded RGB, and the
 * augmentation's copy and crop of it. A file whose header cannot be read
 * reserves the whole budget (it will most likely fail quickly anyway). */
static unsigned long long reserve_decode(ramc_loader *L, const char *path) {
    long long w, h, bytes;
    unsigned long long need = L->budget;
    if (image_probe_file(path, &w, &h, &bytes) == RAMC_OK && w >= 0 && h >= 0 && bytes >= 0 &&
        image_check_size(w, h, path) == RAMC_OK)
        need = (unsigned long long)bytes + 9ull * (unsigned long long)w * (unsigned long long)h;
    pthread_mutex_lock(&L->mu);
    while (L->in_flight > 0 && L->in_flight + need > L->budget)
        pthread_cond_wait(&L->cv_budget, &L->mu);
    L->in_flight += need;
    if (L->in_flight > L->peak) L->peak = L->in_flight;
    pthread_mutex_unlock(&L->mu);
    return need;
}

static void release_decode(ramc_loader *L, unsigned long long need) {
    pthread_mutex_lock(&L->mu);
    L->in_flight -= need;
    pthread_cond_broadcast(&L->cv_budget);
    pthread_mutex_unlock(&L->mu);
}

/* Decode and transform position `pos` into its slot. Runs without the lock:
 * the slot and its buffer belong to the claimant until it marks it done. */
static void process(ramc_loader *L, int pos) {
    loader_slot *sl = &L->slots[pos % L->window];
    float *dst = L->buf + (size_t)(pos % L->window) * L->item_floats;
    int item = L->order[pos];
    const char *path = L->paths[item];
    ramc_image img = {0, 0, NULL};
    ramc_status s;
    if (!path) {
        s = ramc_error(RAMC_ERR_INVALID_ARG, "item %d has no path", item);
    } else {
        unsigned long long need = reserve_decode(L, path);
        s = L->opt.decode ? L->opt.decode(L->opt.decode_user, path, item, &img)
                          : ramc_image_load(path, &img);
        if (s == RAMC_OK)
            s = L->opt.train ? augment_train(&img, &L->opt.augment,
                                             augment_sample_seed(L->opt.seed, L->epoch,
                                                                 (uint64_t)(L->seed_pos ? L->seed_pos[pos] : pos)),
                                             dst, NULL)
                             : augment_test(&img, L->S, L->opt.augment.mean, L->opt.augment.std, dst);
        if (s == RAMC_OK && L->opt.keep_decoded) {
            sl->kept = img; /* the consumer's once it reaches this position */
            img = (ramc_image){0, 0, NULL};
        }
        ramc_image_free(&img);
        release_decode(L, need);
    }
    sl->status = s;
    /* The message is per thread: copy it before the next call overwrites it. */
    if (s != RAMC_OK) snprintf(sl->msg, sizeof sl->msg, "%s", ramc_last_error());
    else sl->msg[0] = 0;
}

static int claimable(const ramc_loader *L) {
    return L->next_claim < L->n && L->next_claim < L->consumed + L->window;
}

/* Claims the next position; the caller holds the lock and checked claimable. */
static int claim(ramc_loader *L) {
    int pos = L->next_claim++;
    loader_slot *sl = &L->slots[pos % L->window];
    sl->pos = pos;
    sl->done = 0;
    return pos;
}

static void finish(ramc_loader *L, int pos) {
    pthread_mutex_lock(&L->mu);
    L->slots[pos % L->window].done = 1;
    pthread_cond_broadcast(&L->cv_done);
    pthread_mutex_unlock(&L->mu);
}

static void *worker_main(void *arg) {
    ramc_loader *L = arg;
    pthread_mutex_lock(&L->mu);
    for (;;) {
        while (!L->stop && !claimable(L)) pthread_cond_wait(&L->cv_work, &L->mu);
        if (L->stop) break;
        int pos = claim(L);
        pthread_mutex_unlock(&L->mu);
        process(L, pos);
        finish(L, pos);
        pthread_mutex_lock(&L->mu);
    }
    pthread_mutex_unlock(&L->mu);
    return NULL;
}

static void stop_workers(ramc_loader *L) {
    pthread_mutex_lock(&L->mu);
    L->stop = 1;
    pthread_cond_broadcast(&L->cv_work);
    pthread_mutex_unlock(&L->mu);
    /* A worker in the middle of an item finishes it first (decoding cannot
     * be interrupted), so this waits at most one item's time. */
    for (int i = 0; i < L->n_threads; i++) pthread_join(L->threads[i], NULL);
    L->n_threads = 0;
}

static ramc_status start_epoch(ramc_loader *L, uint64_t epoch) {
    L->epoch = epoch;
    L->next_claim = L->consumed = 0;
    L->stop = 0;
    L->skipped = L->delivered = 0;
    L->failed = RAMC_OK;
    L->failed_msg[0] = 0;
    for (int i = 0; i < L->window; i++) {
        L->slots[i].done = 0, L->slots[i].pos = -1;
        ramc_image_free(&L->slots[i].kept); /* left by a previous epoch stopped mid-way */
    }
    for (int i = 0; i < L->opt.workers; i++) {
        if (pthread_create(&L->threads[i], NULL, worker_main, L) != 0) {
            stop_workers(L);
            return ramc_error(RAMC_ERR_NOMEM, "loader: cannot start worker thread %d", i);
        }
        L->n_threads = i + 1;
    }
    return RAMC_OK;
}

ramc_status loader_new(const char *const *paths, int n_paths, const int *order, int n_order,
                       const ramc_loader_options *opt, uint64_t epoch, ramc_loader **out) {
    if (!out) return ramc_error(RAMC_ERR_INVALID_ARG, "loader: NULL output");
    *out = NULL;
    if (!opt || (n_paths > 0 && !paths) || (n_order > 0 && !order) || n_paths < 0 || n_order < 0)
        return ramc_error(RAMC_ERR_INVALID_ARG, "loader: NULL or negative arguments");
    if (opt->batch_size <= 0 || opt->batch_size > 65536)
        return ramc_error(RAMC_ERR_INVALID_ARG, "loader: batch_size %d not in 1..65536", opt->batch_size);
    if (opt->workers < 0 || opt->workers > LOADER_MAX_WORKERS)
        return ramc_error(RAMC_ERR_INVALID_ARG, "loader: workers %d not in 0..%d", opt->workers,
                          LOADER_MAX_WORKERS);
    if (opt->prefetch_batches < 1 || opt->prefetch_batches > 16)
        return ramc_error(RAMC_ERR_INVALID_ARG, "loader: prefetch_batches %d not in 1..16",
                          opt->prefetch_batches);
    if (opt->on_error != LOADER_SKIP && opt->on_error != LOADER_FATAL)
        return ramc_error(RAMC_ERR_INVALID_ARG, "loader: unknown on_error policy %d", opt->on_error);
    ramc_status s = augment_check_options(&opt->augment);
    if (s != RAMC_OK) return ramc_error_prefix(s, "loader");
    for (int i = 0; i < n_order; i++)
        if (order[i] < 0 || order[i] >= n_paths)
            return ramc_error(RAMC_ERR_INVALID_ARG, "loader: order[%d] = %d not in 0..%d", i, order[i],
                              n_paths - 1);

    ramc_loader *L = ramc_calloc(1, sizeof *L, "loader");
    if (!L) return RAMC_ERR_NOMEM;
    L->paths = paths;
    L->n_paths = n_paths;
    L->n = n_order;
    L->opt = *opt;
    L->S = opt->augment.image_size;
    L->item_floats = (size_t)3 * L->S * L->S;
    L->budget = opt->decode_budget ? opt->decode_budget : LOADER_DECODE_BUDGET_BYTES;
    long long window = (long long)opt->batch_size * opt->prefetch_batches;
    /* No point holding more slots than items (an eval set smaller than one
     * batch), but keep at least one. */
    if (window > n_order) window = n_order > 0 ? n_order : 1;
    L->window = (int)window;
    L->order = ramc_malloc(sizeof(int) * (size_t)(n_order > 0 ? n_order : 1) * 2, "loader order");
    L->slots = ramc_calloc((size_t)L->window, sizeof(loader_slot), "loader slots");
    L->buf = ramc_malloc(sizeof(float) * L->item_floats * (size_t)L->window, "loader buffers");
    L->threads = ramc_calloc((size_t)(opt->workers > 0 ? opt->workers : 1), sizeof(pthread_t),
                             "loader threads");
    if (!L->order || !L->slots || !L->buf || !L->threads) {
        free(L->order), free(L->slots), free(L->buf), free(L->threads), free(L);
        return RAMC_ERR_NOMEM;
    }
    if (n_order > 0) memcpy(L->order, order, sizeof(int) * (size_t)n_order);
    if (n_order > 0 && opt->seed_positions) {
        L->seed_pos = L->order + n_order;
        memcpy(L->seed_pos, opt->seed_positions, sizeof(int) * (size_t)n_order);
    }
    pthread_mutex_init(&L->mu, NULL);
    pthread_cond_init(&L->cv_work, NULL);
    pthread_cond_init(&L->cv_done, NULL);
    pthread_cond_init(&L->cv_budget, NULL);
    s = start_epoch(L, epoch);
    if (s != RAMC_OK) {
        loader_free(L);
        return s;
    }
    *out = L;
    return RAMC_OK;
}

ramc_status loader_next_batch(ramc_loader *L, float *images, int *items, int *count) {
    return loader_next_batch_decoded(L, images, items, NULL, count);
}

ramc_status loader_next_batch_decoded(ramc_loader *L, float *images, int *items,
                                      ramc_image *decoded, int *count) {
    if (count) *count = 0;
    if (!L || !images || !items || !count)
        return ramc_error(RAMC_ERR_INVALID_ARG, "loader: NULL argument to next_batch");
    if (L->failed != RAMC_OK) return ramc_error(L->failed, "%s", L->failed_msg);
    const int B = L->opt.batch_size;
    int got = 0;
    while (got < B) {
        pthread_mutex_lock(&L->mu);
        if (L->consumed >= L->n) {
            pthread_mutex_unlock(&L->mu);
            break;
        }
        int pos = L->consumed;
        loader_slot *sl = &L->slots[pos % L->window];
        if (L->next_claim == pos) {
            /* Nobody has started it (no workers, or all busy): do it here
             * rather than wait idle. */
            claim(L);
            pthread_mutex_unlock(&L->mu);
            process(L, pos);
            pthread_mutex_lock(&L->mu);
            sl->done = 1;
        }
        while (!(sl->done && sl->pos == pos)) pthread_cond_wait(&L->cv_done, &L->mu);
        pthread_mutex_unlock(&L->mu);

        /* The slot is ours until `consumed` moves past it. */
        int item = L->order[pos];
        int bad = sl->status != RAMC_OK;
        if (!bad) {
            memcpy(images + (size_t)got * L->item_floats, L->buf + (size_t)(pos % L->window) * L->item_floats,
                   sizeof(float) * L->item_floats);
            if (decoded) decoded[got] = sl->kept;
            else ramc_image_free(&sl->kept);
            sl->kept = (ramc_image){0, 0, NULL};
            items[got++] = item;
        } else {
            const char *path = L->paths[item] ? L->paths[item] : "(null)";
            if (L->opt.report) L->opt.report(L->opt.report_user, path, item, sl->status, sl->msg);
            if (L->opt.on_error == LOADER_FATAL) {
                /* Name the file even if the decoder's message does not. */
                if (strstr(sl->msg, path))
                    snprintf(L->failed_msg, sizeof L->failed_msg, "loader: item %d: %s", item, sl->msg);
                else
                    snprintf(L->failed_msg, sizeof L->failed_msg, "loader: %s: %s", path, sl->msg);
                L->failed = sl->status;
            } else {
                L->skipped++;
            }
        }
        pthread_mutex_lock(&L->mu);
        L->consumed++;
        pthread_cond_broadcast(&L->cv_work);
        pthread_mutex_unlock(&L->mu);
        if (L->failed != RAMC_OK) return ramc_error(L->failed, "%s", L->failed_msg);
    }
    if (got < B && L->opt.drop_last) {
        for (int k = 0; decoded && k < got; k++) ramc_image_free(&decoded[k]);
        got = 0;
    }
    if (got > 0) L->delivered++;
    *count = got;
    return RAMC_OK;
}

ramc_status loader_restart(ramc_loader *L, uint64_t epoch) {
    if (!L) return ramc_error(RAMC_ERR_INVALID_ARG, "loader: NULL loader");
    stop_workers(L);
    return start_epoch(L, epoch);
}

int loader_num_batches(const ramc_loader *L) {
    if (!L) return 0;
    int B = L->opt.batch_size;
    return L->opt.drop_last ? L->n / B : (L->n + B - 1) / B;
}

unsigned long long loader_peak_decode_bytes(const ramc_loader *L) {
    if (!L) return 0;
    pthread_mutex_lock((pthread_mutex_t *)&L->mu);
    unsigned long long p = L->peak;
    pthread_mutex_unlock((pthread_mutex_t *)&L->mu);
    return p;
}

int loader_skipped(const ramc_loader *L) { return L ? L->skipped : 0; }

void loader_free(ramc_loader *L) {
    if (!L) return;
    stop_workers(L);
    for (int i = 0; i < L->window; i++) ramc_image_free(&L->slots[i].kept);
    pthread_mutex_destroy(&L->mu);
    pthread_cond_destroy(&L->cv_work);
    pthread_cond_destroy(&L->cv_done);
    pthread_cond_destroy(&L->cv_budget);
    free(L->order);
    free(L->slots);
    free(L->buf);
    free(L->threads);
    free(L);
}
