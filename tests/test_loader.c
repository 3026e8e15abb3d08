/* Prefetching batch loader (src/data/loader.c). */
#include <stdlib.h>
#include <string.h>

#include "data/loader.h"
#include "image/image.h"
#include "test.h"

#define FIX RAMC_SOURCE_DIR "/tests/fixtures/images/"
#define S 32
#define B 4
#define ITEM ((size_t)3 * S * S)

static const char *good[] = {FIX "cat_444.jpg",    FIX "astronaut_prog.jpg", FIX "camera_grey.jpg",
                             FIX "camera_grey.png", FIX "cat_palette.png",    FIX "coffee_420.jpg",
                             FIX "logo_rgba.png",   FIX "rocket_420.jpg",     FIX "cat_rgb.png"};
#define NGOOD ((int)(sizeof good / sizeof good[0]))

typedef struct {
    int n;
    char paths[8][512];
    int items[8];
} reports;

static void on_report(void *user, const char *path, int item, ramc_status st, const char *msg) {
    reports *r = user;
    (void)st, (void)msg;
    if (r->n < 8) {
        snprintf(r->paths[r->n], sizeof r->paths[0], "%s", path);
        r->items[r->n] = item;
    }
    r->n++;
}

/* Runs a whole epoch; returns the number of batches, fills all images/items
 * (concatenated) and per-batch counts. */
static int run_epoch(const char *const *paths, int n_paths, const int *order, int n, ramc_loader_options o,
                     uint64_t epoch, float *all, int *all_items, int *counts, int max_batches, ramc_status *err) {
    ramc_loader *L = NULL;
    *err = loader_new(paths, n_paths, order, n, &o, epoch, &L);
    if (*err != RAMC_OK) return -1;
    float *img = malloc(sizeof(float) * ITEM * (size_t)o.batch_size);
    int *items = malloc(sizeof(int) * (size_t)o.batch_size);
    int nb = 0, total = 0;
    for (;;) {
        int count = 0;
        *err = loader_next_batch(L, img, items, &count);
        if (*err != RAMC_OK || count == 0) break;
        if (nb < max_batches) {
            counts[nb] = count;
            memcpy(all + (size_t)total * ITEM, img, sizeof(float) * ITEM * (size_t)count);
            memcpy(all_items + total, items, sizeof(int) * (size_t)count);
        }
        total += count;
        nb++;
    }
    free(img);
    free(items);
    loader_free(L);
    return nb;
}

int main(void) {
    /* 23 items over 9 files, some repeated (same file, different position:
     * different augmentation) */
    enum { NO = 23 };
    int order[NO];
    for (int i = 0; i < NO; i++) order[i] = (i * 5 + 2) % NGOOD;
    ramc_loader_options o = loader_default_options();
    o.batch_size = B;
    o.augment.image_size = S;
    o.seed = 77;

    float *ref = malloc(sizeof(float) * ITEM * NO), *got = malloc(sizeof(float) * ITEM * NO);
    int ref_items[NO], got_items[NO], ref_counts[8], got_counts[8];
    ramc_status err;

    /* --- training: identical for 0..3 workers, in the given order, drop_last */
    o.workers = 0;
    int nb = run_epoch(good, NGOOD, order, NO, o, 0, ref, ref_items, ref_counts, 8, &err);
    CHECK(err == RAMC_OK && nb == NO / B, "inline epoch: %d batches (%s)", nb, ramc_last_error());
    int order_ok = 1;
    for (int i = 0; i < nb * B; i++) order_ok &= ref_items[i] == order[i];
    CHECK(order_ok, "items come in the given order");
    for (int w = 1; w <= 3; w++) {
        for (int pf = 1; pf <= 3; pf += 2) {
            o.workers = w, o.prefetch_batches = pf;
            int nb2 = run_epoch(good, NGOOD, order, NO, o, 0, got, got_items, got_counts, 8, &err);
            CHECK(err == RAMC_OK && nb2 == nb, "%d workers: %d batches", w, nb2);
            CHECK(memcmp(got, ref, sizeof(float) * ITEM * (size_t)(nb * B)) == 0 &&
                      memcmp(got_items, ref_items, sizeof(int) * (size_t)(nb * B)) == 0,
                  "%d workers, prefetch %d: bitwise identical batches", w, pf);
        }
    }
    /* each item equals augment_train of that file with the position's seed */
    {
        ramc_image im = {0, 0, NULL};
        float *one = malloc(sizeof(float) * ITEM);
        CHECK(ramc_image_load(good[order[6]], &im) == RAMC_OK, "load");
        CHECK(augment_train(&im, &o.augment, augment_sample_seed(77, 0, 6), one, NULL) == RAMC_OK, "aug");
        CHECK(memcmp(one, ref + 6 * ITEM, sizeof(float) * ITEM) == 0, "item 6 = augment_train(seed, 0, 6)");
        ramc_image_free(&im);
        free(one);
    }
    /* a shard (one process of data-parallel training: positions 1 and 2 of
     * every batch of 4) with seed_positions gets exactly those images of the
     * whole order's batches: the augmentation does not depend on how the
     * batch is split. Without seed_positions it would differ. */
    {
        enum { SHARE = 2, OFF = 1 };
        int shard[NO], pos[NO], n_shard = 0;
        for (int k = 0; k < NO / B; k++)
            for (int j = 0; j < SHARE; j++, n_shard++) {
                pos[n_shard] = k * B + OFF + j;
                shard[n_shard] = order[pos[n_shard]];
            }
        ramc_loader_options so = o;
        so.batch_size = SHARE, so.workers = 2, so.seed_positions = pos;
        int nbs = run_epoch(good, NGOOD, shard, n_shard, so, 0, got, got_items, got_counts, 8, &err);
        int same = err == RAMC_OK && nbs == NO / B;
        for (int i = 0; i < n_shard && same; i++)
            same = memcmp(got + (size_t)i * ITEM, ref + (size_t)pos[i] * ITEM, sizeof(float) * ITEM) == 0 &&
                   got_items[i] == shard[i];
        CHECK(same, "a shard with seed_positions: the whole order's images at those positions (%d batches)", nbs);
        so.seed_positions = NULL;
        run_epoch(good, NGOOD, shard, n_shard, so, 0, got, got_items, got_counts, 8, &err);
        CHECK(memcmp(got, ref + (size_t)pos[0] * ITEM, sizeof(float) * ITEM) != 0,
              "without seed_positions the shard's first image is augmented otherwise");
    }
    /* another epoch augments differently; the same epoch again is identical */
    o.workers = 2, o.prefetch_batches = 2;
    run_epoch(good, NGOOD, order, NO, o, 1, got, got_items, got_counts, 8, &err);
    CHECK(memcmp(got, ref, sizeof(float) * ITEM * B) != 0, "epoch 1 differs from epoch 0");

    /* --- eval: no drop_last, test transform */
    {
        ramc_loader_options e = o;
        e.train = 0, e.drop_last = 0, e.workers = 2;
        int nbe = run_epoch(good, NGOOD, order, NO, e, 0, got, got_items, got_counts, 8, &err);
        CHECK(err == RAMC_OK && nbe == (NO + B - 1) / B && got_counts[nbe - 1] == NO % B,
              "eval keeps the partial batch: %d batches, last %d", nbe, got_counts[nbe - 1]);
        ramc_image im = {0, 0, NULL};
        float *one = malloc(sizeof(float) * ITEM);
        int ok = 1;
        for (int i = 0; i < NO; i++) {
            ok &= ramc_image_load(good[order[i]], &im) == RAMC_OK;
            ok &= augment_test(&im, S, e.augment.mean, e.augment.std, one) == RAMC_OK;
            ok &= memcmp(one, got + (size_t)i * ITEM, sizeof(float) * ITEM) == 0 && got_items[i] == order[i];
            ramc_image_free(&im);
        }
        CHECK(ok, "eval batches hold the test transform of each item, in order");
        free(one);
        /* loader_num_batches */
        ramc_loader *L = NULL;
        CHECK(loader_new(good, NGOOD, order, NO, &e, 0, &L) == RAMC_OK, "new");
        CHECK(loader_num_batches(L) == 6, "eval batches %d", loader_num_batches(L));
        loader_free(L);
        CHECK(loader_new(good, NGOOD, order, NO, &o, 0, &L) == RAMC_OK, "new");
        CHECK(loader_num_batches(L) == 5, "train batches %d", loader_num_batches(L));
        loader_free(L);
    }

    /* --- a missing and a corrupt file with the skip policy */
    const char *paths[NGOOD + 2];
    for (int i = 0; i < NGOOD; i++) paths[i] = good[i];
    paths[NGOOD] = FIX "does_not_exist.jpg";
    paths[NGOOD + 1] = FIX "manifest.json"; /* not an image */
    int order2[NO + 2];
    /* positions 5 and 13 are bad */
    for (int i = 0, k = 0; i < NO + 2; i++) order2[i] = i == 5 ? NGOOD : i == 13 ? NGOOD + 1 : order[k++];
    {
        int nbs[4];
        float *first = malloc(sizeof(float) * ITEM * (NO + 2));
        int first_items[NO + 2];
        for (int w = 0; w <= 3; w++) {
            reports rep = {0};
            ramc_loader_options s = o;
            s.workers = w, s.train = 0, s.drop_last = 0;
            s.report = on_report, s.report_user = &rep;
            nbs[w] = run_epoch(paths, NGOOD + 2, order2, NO + 2, s, 0, got, got_items, got_counts, 8, &err);
            CHECK(err == RAMC_OK, "skip policy does not fail (%d workers)", w);
            CHECK(rep.n == 2 && strcmp(rep.paths[0], paths[NGOOD]) == 0 &&
                      strcmp(rep.paths[1], paths[NGOOD + 1]) == 0 && rep.items[0] == NGOOD,
                  "both bad files reported by path, in order (%d reports)", rep.n);
            int ok = 1;
            for (int i = 0; i < NO; i++) ok &= got_items[i] == order[i];
            CHECK(ok, "skipped items are left out and the batches filled with the next items");
            if (w == 0) memcpy(first, got, sizeof(float) * ITEM * NO), memcpy(first_items, got_items, sizeof(int) * NO);
            else CHECK(memcmp(first, got, sizeof(float) * ITEM * NO) == 0, "skip result identical for %d workers", w);
        }
        CHECK(nbs[0] == 6 && nbs[3] == 6, "23 good items in 6 batches");
        free(first);
        /* skip with drop_last, training */
        reports rep = {0};
        ramc_loader_options s = o;
        s.workers = 3, s.report = on_report, s.report_user = &rep;
        ramc_loader *L = NULL;
        CHECK(loader_new(paths, NGOOD + 2, order2, NO + 2, &s, 0, &L) == RAMC_OK, "new");
        float *img = malloc(sizeof(float) * ITEM * B);
        int items[B], count, batches = 0;
        while (loader_next_batch(L, img, items, &count) == RAMC_OK && count > 0) {
            batches++;
            CHECK(count == B, "full batch");
        }
        CHECK(batches == 5 && loader_skipped(L) == 2 && rep.n == 2, "train skip: %d batches, %d skipped", batches,
              loader_skipped(L));
        loader_free(L);

        /* --- fatal policy: next_batch fails naming the file */
        s.on_error = LOADER_FATAL;
        s.report = NULL;
        CHECK(loader_new(paths, NGOOD + 2, order2, NO + 2, &s, 0, &L) == RAMC_OK, "new fatal");
        ramc_status st = loader_next_batch(L, img, items, &count);
        CHECK(st == RAMC_OK && count == B, "first batch is fine");
        st = loader_next_batch(L, img, items, &count);
        CHECK(st == RAMC_ERR_IO && count == 0, "second batch (holding the missing file) fails: %d", st);
        CHECK(strstr(ramc_last_error(), "does_not_exist.jpg") != NULL, "error names the file: %s", ramc_last_error());
        st = loader_next_batch(L, img, items, &count);
        CHECK(st == RAMC_ERR_IO && strstr(ramc_last_error(), "does_not_exist.jpg"), "the error is sticky");
        /* restart clears it and gives the same first batch */
        CHECK(loader_restart(L, 0) == RAMC_OK, "restart");
        st = loader_next_batch(L, img, items, &count);
        CHECK(st == RAMC_OK && count == B && memcmp(img, ref, sizeof(float) * ITEM * B) == 0,
              "after restart the first batch is as before");
        loader_free(L);
        free(img);
    }

    /* --- freeing mid-epoch, right after creation, empty orders */
    {
        ramc_loader *L = NULL;
        o.workers = 3, o.prefetch_batches = 4;
        CHECK(loader_new(good, NGOOD, order, NO, &o, 0, &L) == RAMC_OK, "new");
        loader_free(L); /* workers are busy: must not hang */
        CHECK(loader_new(good, NGOOD, order, NO, &o, 0, &L) == RAMC_OK, "new");
        float *img = malloc(sizeof(float) * ITEM * B);
        int items[B], count = -1;
        CHECK(loader_next_batch(L, img, items, &count) == RAMC_OK && count == B, "one batch");
        CHECK(loader_restart(L, 2) == RAMC_OK, "restart mid-epoch");
        CHECK(loader_next_batch(L, img, items, &count) == RAMC_OK && count == B, "one batch after restart");
        loader_free(L);
        CHECK(loader_new(good, NGOOD, order, 0, &o, 0, &L) == RAMC_OK, "empty order");
        CHECK(loader_next_batch(L, img, items, &count) == RAMC_OK && count == 0, "empty epoch");
        loader_free(L);
        /* fewer items than a batch with drop_last: nothing */
        CHECK(loader_new(good, NGOOD, order, 3, &o, 0, &L) == RAMC_OK, "3 items");
        CHECK(loader_next_batch(L, img, items, &count) == RAMC_OK && count == 0, "partial batch dropped");
        loader_free(L);
        free(img);
        loader_free(NULL);
    }

    /* --- decode memory budget: 4 workers over 12 copies of one image may not
     * hold more decodes than the budget allows, and the batches do not
     * change. A budget below one image decodes one at a time. */
    {
        long long w, h, fb;
        CHECK(image_probe_file(good[0], &w, &h, &fb) == RAMC_OK && w > 0 && h > 0 && fb > 0,
              "probe %s", good[0]);
        CHECK(image_probe_file(FIX "cat_rgb.png", &w, &h, &fb) == RAMC_OK && w > 0 && h > 0,
              "probe png");
        CHECK(image_probe_file(FIX, &w, &h, &fb) != RAMC_OK, "probe refuses a folder");
        CHECK(image_probe_file(good[0], &w, &h, &fb) == RAMC_OK, "probe again");
        unsigned long long need = (unsigned long long)fb + 9ull * (unsigned long long)(w * h);
        int same[12] = {0};
        ramc_loader_options bo = o;
        bo.workers = 4;
        bo.batch_size = 4;
        float *ref_b = malloc(sizeof(float) * ITEM * 12), *got_b = malloc(sizeof(float) * ITEM * 12);
        int ri[12], rc[3];
        ramc_status e1;
        int nb1 = run_epoch(good, NGOOD, same, 12, bo, 3, ref_b, ri, rc, 3, &e1);
        unsigned long long budgets[2] = {need * 5 / 2, 1};
        for (int k = 0; k < 2; k++) {
            bo.decode_budget = budgets[k];
            ramc_loader *L = NULL;
            CHECK(loader_new(good, NGOOD, same, 12, &bo, 3, &L) == RAMC_OK, "budget loader");
            float *img = malloc(sizeof(float) * ITEM * 4);
            int items[4], count, total = 0;
            while (L && loader_next_batch(L, img, items, &count) == RAMC_OK && count > 0) {
                if (total + count <= 12) memcpy(got_b + (size_t)total * ITEM, img, sizeof(float) * ITEM * (size_t)count);
                total += count;
            }
            unsigned long long peak = loader_peak_decode_bytes(L);
            unsigned long long cap = budgets[k] > need ? budgets[k] : need;
            CHECK(peak >= need && peak <= cap, "budget %llu: peak %llu, one image %llu", budgets[k], peak, need);
            CHECK(total == 12 && nb1 == 3 && e1 == RAMC_OK && rel_err(got_b, ref_b, ITEM * 12) == 0,
                  "budget %llu: same batches", budgets[k]);
            free(img);
            loader_free(L);
        }
        free(ref_b);
        free(got_b);
    }

    /* --- argument checks */
    {
        ramc_loader *L = NULL;
        int bad_order[2] = {0, NGOOD};
        CHECK(loader_new(good, NGOOD, bad_order, 2, &o, 0, &L) == RAMC_ERR_INVALID_ARG && !L, "index out of range");
        ramc_loader_options b = o;
        b.batch_size = 0;
        CHECK(loader_new(good, NGOOD, order, NO, &b, 0, &L) == RAMC_ERR_INVALID_ARG, "batch 0");
        b = o, b.workers = 1000;
        CHECK(loader_new(good, NGOOD, order, NO, &b, 0, &L) == RAMC_ERR_INVALID_ARG, "1000 workers");
        b = o, b.augment.erasing_p = -1;
        CHECK(loader_new(good, NGOOD, order, NO, &b, 0, &L) == RAMC_ERR_INVALID_ARG, "bad augment options");
    }

    free(ref);
    free(got);
    return test_summary("test_loader");
}
