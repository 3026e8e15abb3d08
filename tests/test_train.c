/* End-to-end training on a tiny model with tiny generated images:
 * the loss falls, the metrics on the seen classes improve, resuming from a
 * checkpoint (mid-epoch) gives bitwise the same state as an uninterrupted
 * run, and a diverging run stops with an error and keeps the last checkpoint. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "api/model_view.h"
#include "core/rng.h"
#include "eval/evaluate.h"
#include "image/image.h"
#include "io/file.h"
#include "io/safetensors.h"
#include "train/trainer.h"
#include "test.h"

#define SIDE 32
static const char *colours[] = {"red", "green", "blue", "yellow", "white", "purple"};
static const uint8_t rgb[6][3] = {{220, 30, 30}, {30, 200, 40}, {30, 40, 220},
                                  {230, 220, 30}, {240, 240, 240}, {150, 40, 180}};

/* An image with a square of each label's colour on grey. */
static void make_image(const char *path, const int *labels, int n, ramc_rng *r) {
    ramc_image img = {SIDE, SIDE, malloc(SIDE * SIDE * 3)};
    memset(img.rgb, 90, SIDE * SIDE * 3);
    for (int k = 0; k < n; k++) {
        int x0 = (int)(rng_uniform(r) * 18), y0 = (int)(rng_uniform(r) * 18);
        for (int y = y0; y < y0 + 14; y++)
            for (int x = x0; x < x0 + 14; x++) memcpy(img.rgb + (y * SIDE + x) * 3, rgb[labels[k]], 3);
    }
    image_write_png(&img, path);
    free(img.rgb);
}

/* Writes an official-format JSON set of n images drawing labels from [lo, hi). */
static void make_set(const char *dir, const char *name, int n, int lo, int hi, ramc_rng *r) {
    cJSON *root = cJSON_CreateObject(), *images = cJSON_AddArrayToObject(root, "images");
    char path[512];
    for (int i = 0; i < n; i++) {
        int labels[2], k = 1 + (rng_next(r) % 2);
        labels[0] = lo + (int)(rng_next(r) % (uint64_t)(hi - lo));
        labels[1] = lo + (labels[0] - lo + 1 + (int)(rng_next(r) % (uint64_t)(hi - lo - 1))) % (hi - lo);
        snprintf(path, sizeof path, "%s/%s%d.png", dir, name, i);
        make_image(path, labels, k, r);
        cJSON *item = cJSON_CreateArray(), *names = cJSON_CreateArray();
        cJSON_AddItemToArray(item, cJSON_CreateString(path));
        for (int j = 0; j < k; j++) cJSON_AddItemToArray(names, cJSON_CreateString(colours[labels[j]]));
        cJSON_AddItemToArray(item, names);
        cJSON_AddItemToArray(images, item);
    }
    char *text = cJSON_Print(root);
    snprintf(path, sizeof path, "%s/%s.json", dir, name);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    free(text);
    cJSON_Delete(root);
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

typedef struct {
    double first_epoch_loss, last_epoch_loss;
    int first_epoch_steps, last_epoch_steps, last_epoch;
} loss_track;

static void on_event(void *user, const ram_train_event *ev) {
    loss_track *lt = user;
    if (ev->kind != TRAIN_EVENT_STEP) return;
    if (ev->epoch == 1) lt->first_epoch_loss += ev->loss, lt->first_epoch_steps++;
    if (ev->epoch != lt->last_epoch) lt->last_epoch = ev->epoch, lt->last_epoch_loss = 0,
                                     lt->last_epoch_steps = 0;
    lt->last_epoch_loss += ev->loss, lt->last_epoch_steps++;
}

static void base_options(ram_trainer_options *o, const char *dir, const char *out) {
    memset(o, 0, sizeof *o);
    ram_train_config *c = &o->cfg;
    ram_train_config_init(c, RAM_PRESET_COCO);
    snprintf(c->model, sizeof c->model, "%s", RAMC_GOLDEN_DIR "/tiny-s0/weights.safetensors");
    snprintf(c->train, sizeof c->train, "%s/train.json", dir);
    snprintf(c->seen_classes, sizeof c->seen_classes, "%s/seen.txt", dir);
    snprintf(c->output_dir, sizeof c->output_dir, "%s/%s", dir, out);
    c->batch_size = 8;
    c->max_epochs = 4;
    c->warmup_epochs = 0;
    c->base_lr = 1e-2;
    c->base_lr_sgd = 1e-1;
    c->eval_period = 100;     /* no evaluation inside these runs */
    c->checkpoint_period = 1;
    c->log_period = 1;
    c->workers = 1;
    o->clip_params = ramc_clip_default_params();
    o->clip_params.vision_heads = 2;
    o->clip_params.text_heads = 2;
}

/* Every tensor of two checkpoints equal byte for byte. */
static int same_checkpoint(const char *a, const char *b) {
    st_file *fa = NULL, *fb = NULL;
    int same = st_open(a, &fa) == RAMC_OK && st_open(b, &fb) == RAMC_OK &&
               fa->n_tensors == fb->n_tensors;
    for (int i = 0; same && i < fa->n_tensors; i++) {
        const st_tensor *ta = &fa->tensors[i], *tb = st_find(fb, ta->name);
        same = tb && tb->nbytes == ta->nbytes && !memcmp(ta->data, tb->data, ta->nbytes);
        if (!same) fprintf(stderr, "checkpoints differ at %s\n", ta->name);
    }
    st_close(fa);
    st_close(fb);
    return same;
}

/* mAP of a model on a set (seen classes). */
static double map_of(ramc_clip *clip, ram_adapter *a, const char *set, const char *seen) {
    class_list cl = {0};
    dataset ds = {0};
    double map = NAN;
    if (class_list_load(seen, &cl) || class_list_sort(&cl) || dataset_load(set, &cl, NULL, &ds)) {
        fprintf(stderr, "%s\n", ramc_last_error());
        class_list_free(&cl);
        return map;
    }
    ramc_model *m = NULL;
    eval_report *r = NULL;
    if (api_model_view(clip, a, 0, &m) == RAMC_OK &&
        ram_evaluate(m, &ds, NULL, "seen", "test", NULL, &r) == RAMC_OK) {
        map = r->metrics.map;
        report_free(r);
    } else {
        fprintf(stderr, "%s\n", ramc_last_error());
    }
    ramc_model_free(m);
    dataset_free(&ds);
    class_list_free(&cl);
    return map;
}

int main(void) {
    char dir[] = "/tmp/ramc_train_XXXXXX", path[600], path2[600];
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    ramc_rng r;
    rng_seed(&r, 7);
    make_set(dir, "train", 48, 0, 4, &r);
    make_set(dir, "val", 24, 0, 4, &r);
    snprintf(path, sizeof path, "%s/seen.txt", dir);
    write_text(path, "red\ngreen\nblue\nyellow\n");

    /* 1. a full run: the loss falls */
    ram_trainer_options o;
    ram_train_summary sum;
    loss_track lt = {0};
    base_options(&o, dir, "full");
    o.callback = on_event;
    o.user = &lt;
    ramc_status st = ram_train_run(&o, &sum);
    CHECK(st == RAMC_OK, "full run: %s", ramc_last_error());
    CHECK(sum.global_step == 24 && !sum.interrupted, "24 steps, got %lld", (long long)sum.global_step);
    double first = lt.first_epoch_loss / lt.first_epoch_steps, last = lt.last_epoch_loss / lt.last_epoch_steps;
    CHECK(last < first - 0.05, "mean loss falls: first epoch %.4f, last epoch %.4f", first, last);
    snprintf(path, sizeof path, "%s/full/adapter.safetensors", dir);
    CHECK(access(path, F_OK) == 0, "final adapter written");
    snprintf(path, sizeof path, "%s/full/log.jsonl", dir);
    char *log = NULL;
    size_t log_len = 0;
    CHECK(read_whole_file(path, 1 << 24, &log, &log_len) == RAMC_OK, "log readable");
    CHECK(log && strstr(log, "\"event\":\"step\"") && strstr(log, "\"event\":\"done\""), "log lines");
    free(log);

    /* 2. metrics on the seen classes improve over the untrained adapter */
    ramc_clip *clip = NULL;
    ramc_clip_load(o.cfg.model, &o.clip_params, &clip);
    ram_adapter *trained = NULL, *initial = NULL;
    snprintf(path, sizeof path, "%s/full/adapter.safetensors", dir);
    CHECK(ram_adapter_load(path, clip, 0, &trained) == RAMC_OK, "load trained: %s", ramc_last_error());
    ram_config rc;
    CHECK(ram_train_config_model(&o.cfg, &clip->info, &rc) == RAMC_OK, "config model");
    CHECK(ram_adapter_create(clip, &rc, (uint64_t)o.cfg.seed, 0, &initial) == RAMC_OK, "initial");
    snprintf(path, sizeof path, "%s/val.json", dir);
    snprintf(path2, sizeof path2, "%s/seen.txt", dir);
    double map0 = map_of(clip, initial, path, path2), map1 = map_of(clip, trained, path, path2);
    CHECK(map1 > map0 + 0.02, "seen-class mAP improves: %.4f -> %.4f", map0, map1);
    ram_adapter_free(trained);
    ram_adapter_free(initial);
    ramc_clip_free(clip);

    /* 3. resume: 10 steps (mid-epoch 2), then resume to the end = the full run */
    base_options(&o, dir, "split");
    o.max_steps = 10;
    st = ram_train_run(&o, &sum);
    CHECK(st == RAMC_OK && sum.interrupted && sum.global_step == 10, "stopped at 10: %s",
          ramc_last_error());
    snprintf(path, sizeof path, "%s/split/checkpoint.safetensors", dir);
    base_options(&o, dir, "split");
    o.resume = path;
    st = ram_train_run(&o, &sum);
    CHECK(st == RAMC_OK && sum.global_step == 24, "resumed to 24: %s", ramc_last_error());
    snprintf(path, sizeof path, "%s/full/checkpoint.safetensors", dir);
    snprintf(path2, sizeof path2, "%s/split/checkpoint.safetensors", dir);
    CHECK(same_checkpoint(path, path2), "10 + 14 steps with a resume == 24 steps");

    /* 4. divergence: NaN/Inf stops with an error, the last checkpoint stays */
    base_options(&o, dir, "diverge");
    o.cfg.max_epochs = 1;
    st = ram_train_run(&o, &sum);
    CHECK(st == RAMC_OK, "one good epoch: %s", ramc_last_error());
    snprintf(path, sizeof path, "%s/diverge/checkpoint.safetensors", dir);
    char *before = NULL, *after = NULL;
    size_t n_before = 0, n_after = 0;
    read_whole_file(path, 1 << 28, &before, &n_before);
    base_options(&o, dir, "diverge");
    o.cfg.max_epochs = 3;
    o.cfg.base_lr = 1e30;
    o.cfg.base_lr_sgd = 1e30;
    o.resume = path;
    st = ram_train_run(&o, &sum);
    CHECK(st == RAMC_ERR_NUMERIC, "diverging run stops with a numeric error (%d): %s", st,
          ramc_last_error());
    read_whole_file(path, 1 << 28, &after, &n_after);
    CHECK(before && after && n_before == n_after && !memcmp(before, after, n_before),
          "the last good checkpoint is untouched");
    free(before);
    free(after);

    snprintf(path, sizeof path, "rm -rf %s", dir);
    if (system(path) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return test_summary("test_train");
}
