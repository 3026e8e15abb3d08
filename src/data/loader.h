/* A prefetching batch loader (internal).
 *
 * Worker threads decode images (ramc_image_load), run the training
 * augmentation or the test transform (data/augment.h) and hand the results
 * to the consumer, which packs them into float batches [B,3,S,S] in the
 * given order. The loader knows nothing about datasets: it takes an array of
 * paths and an order (a permutation, or any sequence, of indices into it).
 *
 * Determinism: the sample at position p of the order is augmented with
 * augment_sample_seed(seed, epoch, p), whoever computes it, and batches are
 * packed strictly in order by the consumer. Batches are therefore bitwise
 * identical for any number of workers, including 0 (everything done inline
 * in loader_next_batch).
 *
 * Unreadable images: the consumer meets them in order and reports each one
 * (path, status, message) through the callback, from the thread that calls
 * loader_next_batch, in order. With LOADER_SKIP the item is left out and the
 * batch is filled with the next good items (so later batches shift by one
 * item, deterministically); with LOADER_FATAL loader_next_batch fails with
 * the error naming the file, and keeps failing until the epoch is restarted.
 *
 * Threads: OpenBLAS has its own thread pool. On a small machine the workers
 * compete with it; workers = 1 (the default) on 2 cores is sensible, more
 * workers only help when decoding, not the model, is the bottleneck.
 */
#ifndef RAMC_DATA_LOADER_H
#define RAMC_DATA_LOADER_H

#include <stdint.h>

#include "core/status.h"
#include "data/augment.h"

typedef enum { LOADER_SKIP = 0, LOADER_FATAL = 1 } loader_error_policy;

/* Called once per unreadable item, from the consumer thread, in order. */
typedef void (*loader_report_fn)(void *user, const char *path, int item, ramc_status status,
                                 const char *message);
/* Decodes item `item` (paths[item] is its name) into *out, on a worker
 * thread (several at once): how a caller whose items are not files (standard
 * input, bytes in memory) feeds the loader. Errors must name the item. */
typedef ramc_status (*loader_decode_fn)(void *user, const char *path, int item, ramc_image *out);

typedef struct {
    int batch_size;       /* B; 32 */
    int workers;          /* worker threads, 0..64; 0 = inline; 1 */
    int prefetch_batches; /* how far workers may run ahead, in batches, 1..16; 2 */
    int drop_last;        /* drop a final partial batch; 1 (training); eval: 0 */
    int train;            /* 1: augment_train(augment); 0: augment_test */
    /* Training: all augmentation parameters, including image_size, mean and
     * std. Evaluation uses augment.image_size, .mean and .std only. */
    ramc_augment_options augment;
    uint64_t seed;        /* augmentation seed; 0 */
    /* [n_order] (copied): the position whose augmentation seed each item of
     * the order uses, in place of its own. A process of data-parallel
     * training loads its share of every batch and passes the positions of
     * those items in the whole order, so an image gets the same augmentation
     * for any number of processes. NULL: the item's own position. */
    const int *seed_positions;
    int on_error;         /* loader_error_policy; LOADER_SKIP */
    /* bytes of decodes in flight at once (loader.c); 0 = 1 GiB. An image
     * that needs more alone is decoded while nothing else is. */
    unsigned long long decode_budget;
    loader_report_fn report; /* may be NULL */
    void *report_user;
    /* NULL: ramc_image_load(paths[item]). With a decode function the decode
     * budget still reads the size from paths[item] when that is a file; when
     * it is not, each such decode runs alone. */
    loader_decode_fn decode;
    void *decode_user;
    /* 1: keep each decoded image (before the transform) for the consumer,
     * which gets it from loader_next_batch_decoded; 0 */
    int keep_decoded;
} ramc_loader_options;

typedef struct ramc_loader ramc_loader;

/* Defaults: training, official augmentation, B = 32, 1 worker, 2 batches
 * ahead, drop_last, skip unreadable images. */
ramc_loader_options loader_default_options(void);

/* Starts epoch `epoch`. `paths` (n_paths strings) must stay valid and
 * unchanged until loader_free; `order` (n_order indices into paths, copied)
 * is the sequence in which items are delivered. */
ramc_status loader_new(const char *const *paths, int n_paths, const int *order, int n_order,
                       const ramc_loader_options *opt, uint64_t epoch, ramc_loader **out);

/* Fills the next batch: images [batch_size,3,S,S] (the first *count are
 * valid), items [batch_size] (the path index of each image, the caller's
 * payload index). *count = 0: the epoch is over (also when drop_last dropped
 * a partial batch). On error (LOADER_FATAL, out of memory) returns the
 * status with ramc_last_error() naming the file. */
ramc_status loader_next_batch(ramc_loader *L, float *images, int *items, int *count);

/* loader_next_batch, and with keep_decoded the decoded images too:
 * decoded [batch_size]; decoded[k] is image k's original, now the caller's
 * (ramc_image_free). decoded may be NULL (they are then freed). */
ramc_status loader_next_batch_decoded(ramc_loader *L, float *images, int *items,
                                      ramc_image *decoded, int *count);

/* Stops the workers (waiting for the item each is working on) and starts
 * epoch `epoch` from the beginning of the same order. */
ramc_status loader_restart(ramc_loader *L, uint64_t epoch);

/* Batches this epoch if every image loads: n/B, rounded down with
 * drop_last, up without. Skipped items can only reduce it. */
int loader_num_batches(const ramc_loader *L);
/* The most decode memory (estimated bytes) in flight at once so far. */
unsigned long long loader_peak_decode_bytes(const ramc_loader *L);

/* Items skipped so far this epoch. */
int loader_skipped(const ramc_loader *L);

/* Stops and joins the workers (also mid-epoch) and frees everything. */
void loader_free(ramc_loader *L);

#endif
