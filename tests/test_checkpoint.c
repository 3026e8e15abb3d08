/* Training checkpoints: bitwise resume, atomic saves, corrupt files, and the
 * checkpoint doubling as an adapter file. Runs in the build folder. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/safetensors.h"
#include "model/clip.h"
#include "ram/ram.h"
#include "test.h"
#include "train/checkpoint.h"

#define WEIGHTS RAMC_GOLDEN_DIR "/tiny-s0/weights.safetensors"
#define STEPS_PER_EPOCH 3
#define N_STEPS 11
#define CONFIG_TEXT "{\"config\": \"coco\", \"note\": \"quotes \\\" and\\nnewlines\"}"

static ramc_clip *load_clip(void) {
    ramc_clip_params p = ramc_clip_default_params();
    p.vision_heads = 2;
    p.text_heads = 2;
    ramc_clip *m = NULL;
    CHECK(ramc_clip_load(WEIGHTS, &p, &m) == RAMC_OK && m, "load %s: %s", WEIGHTS,
          ramc_last_error());
    return m;
}

/* Everything a training run carries from one iteration to the next. */
typedef struct {
    ram_adapter *a;
    ram_optimizer *opt;
    ram_ema *ema;
    ramc_rng rng;
    ram_progress pr;
} run_state;

static void run_free(run_state *s) {
    ema_free(s->ema);
    optimizer_free(s->opt);
    ram_adapter_free(s->a);
    memset(s, 0, sizeof *s);
}

/* Optimiser + EMA + RNG for an existing adapter. */
static int run_attach(run_state *s, uint64_t seed) {
    ramc_status st = optimizer_create(s->a, NULL, &s->opt);
    if (st == RAMC_OK) st = ema_create(s->a, NULL, &s->ema);
    CHECK(st == RAMC_OK, "attach: %s", ramc_last_error());
    rng_seed(&s->rng, seed);
    memset(&s->pr, 0, sizeof s->pr);
    return st == RAMC_OK;
}

static int run_new(const ramc_clip *clip, const ram_config *cfg, uint64_t seed, run_state *s) {
    memset(s, 0, sizeof *s);
    ramc_status st = ram_adapter_create(clip, cfg, seed, 1, &s->a);
    CHECK(st == RAMC_OK, "create: %s", ramc_last_error());
    return st == RAMC_OK && run_attach(s, seed + 1000);
}

/* A stand-in for training: deterministic gradients from the step, the
 * parameters and the RNG (so the RNG state matters), BN statistics and counts
 * moving as a training forward would move them, epochs of STEPS_PER_EPOCH
 * iterations with the scheduler stepped and the EMA reset at each start. One
 * iteration has a NaN gradient, so a skipped step is part of the history. */
static void train_until(run_state *s, int64_t until) {
    while (s->pr.global_step < until) {
        if (s->pr.epoch == 0 || s->pr.step_in_epoch == STEPS_PER_EPOCH) {
            s->pr.epoch++;
            s->pr.step_in_epoch = 0;
            optimizer_set_epoch(s->opt, s->pr.epoch);
            CHECK(ema_reset(s->ema, s->a) == RAMC_OK, "ema_reset: %s", ramc_last_error());
        }
        optimizer_zero_grad(s->a);
        const float step = (float)s->pr.global_step;
        for (int i = 0; i < s->a->n_params; i++) {
            ram_param *p = &s->a->params[i];
            if (p->grad) {
                for (int64_t k = 0; k < p->numel; k++)
                    p->grad[k] = 0.01f * sinf(0.37f * step + 0.011f * (float)k + (float)i) +
                                 0.1f * p->data[k] + 1e-3f * (float)rng_uniform(&s->rng);
            } else { /* BN running statistics */
                for (int64_t k = 0; k < p->numel; k++)
                    p->data[k] = 0.9f * p->data[k] + 0.1f * (float)rng_normal(&s->rng);
            }
        }
        for (int v = 0; v < s->a->n_vision_adapted; v++) {
            s->a->tss[v].bn1_count++;
            s->a->tss[v].bn2_count++;
        }
        if (s->pr.global_step == 4) s->a->temperature_loc->grad[0] = NAN;
        ramc_status st = optimizer_step(s->opt, s->a);
        CHECK(st == (s->pr.global_step == 4 ? RAMC_ERR_NUMERIC : RAMC_OK), "step %lld: %s",
              (long long)s->pr.global_step, ramc_last_error());
        CHECK(ema_update(s->ema, s->a) == RAMC_OK, "ema_update: %s", ramc_last_error());
        s->pr.step_in_epoch++;
        s->pr.global_step++;
    }
}

static int same_adapter(const ram_adapter *x, const ram_adapter *y, const char *what) {
    int ok = x->n_params == y->n_params && x->n_vision_adapted == y->n_vision_adapted;
    for (int i = 0; ok && i < x->n_params; i++) {
        ok = !strcmp(x->params[i].name, y->params[i].name) &&
             x->params[i].numel == y->params[i].numel &&
             !memcmp(x->params[i].data, y->params[i].data,
                     (size_t)x->params[i].numel * sizeof(float));
        if (!ok) fprintf(stderr, "%s: tensor '%s' differs\n", what, x->params[i].name);
    }
    for (int v = 0; ok && v < x->n_vision_adapted; v++)
        ok = x->tss[v].bn1_count == y->tss[v].bn1_count &&
             x->tss[v].bn2_count == y->tss[v].bn2_count;
    return ok;
}

static void compare_runs(const run_state *x, const run_state *y, const char *what) {
    CHECK(same_adapter(x->a, y->a, what), "%s: adapters differ", what);
    const ram_optimizer *o = x->opt, *p = y->opt;
    int ok = o->n_slots == p->n_slots;
    for (int k = 0; ok && k < o->n_slots; k++) {
        const ram_optim_slot *s = &o->slots[k], *t = &p->slots[k];
        size_t bytes = (size_t)s->numel * sizeof(float);
        ok = s->numel == t->numel && !strcmp(s->name, t->name) &&
             (s->buf ? !memcmp(s->buf, t->buf, bytes)
                     : !memcmp(s->m, t->m, bytes) && !memcmp(s->v, t->v, bytes));
        if (!ok) fprintf(stderr, "%s: optimiser state of '%s' differs\n", what, s->name);
    }
    CHECK(ok, "%s: optimiser state differs", what);
    CHECK(!memcmp(o->step, p->step, sizeof o->step) && !memcmp(o->lr, p->lr, sizeof o->lr) &&
              o->epoch == p->epoch,
          "%s: optimiser counters differ (steps %lld/%lld)", what, (long long)o->step[0],
          (long long)p->step[0]);
    const ram_ema *e = x->ema, *f = y->ema;
    CHECK(e->offset[e->n_params] == f->offset[f->n_params] &&
              !memcmp(e->data, f->data, (size_t)e->offset[e->n_params] * sizeof(float)) &&
              !memcmp(e->bn_count, f->bn_count, (size_t)(2 * e->n_vision_adapted) * sizeof(int64_t)) &&
              e->updates == f->updates,
          "%s: EMA differs", what);
    CHECK(!memcmp(x->rng.s, y->rng.s, sizeof x->rng.s), "%s: RNG differs", what);
    CHECK(x->pr.epoch == y->pr.epoch && x->pr.step_in_epoch == y->pr.step_in_epoch &&
              x->pr.global_step == y->pr.global_step,
          "%s: progress differs", what);
}

/* N steps in one go == k steps, save, load into fresh objects, N-k steps. */
static void test_resume(const ramc_clip *clip, int64_t k) {
    char what[64], path[64];
    snprintf(what, sizeof what, "resume at %lld", (long long)k);
    snprintf(path, sizeof path, "ckpt_test_resume_%lld.safetensors", (long long)k);
    ram_config cfg = ram_config_preset(RAM_PRESET_COCO, &clip->info);
    run_state ref, part, resumed;
    memset(&resumed, 0, sizeof resumed);
    if (!run_new(clip, &cfg, 7, &ref) || !run_new(clip, &cfg, 7, &part)) goto out;
    train_until(&ref, N_STEPS);
    train_until(&part, k);
    CHECK(checkpoint_save(path, part.a, part.opt, part.ema, &part.rng, &part.pr, CONFIG_TEXT) ==
              RAMC_OK, "%s: save: %s", what, ramc_last_error());

    /* The checkpoint is also an adapter file. */
    ram_adapter *as_adapter = NULL;
    CHECK(ram_adapter_load(path, clip, 0, &as_adapter) == RAMC_OK, "%s: as adapter: %s", what,
          ramc_last_error());
    if (as_adapter) CHECK(same_adapter(as_adapter, part.a, what), "%s: adapter view differs", what);
    ram_adapter_free(as_adapter);

    /* Fresh objects: an adapter from the checkpoint itself, new optimiser and
     * EMA, an RNG seeded differently; everything must come from the file. */
    CHECK(ram_adapter_load(path, clip, 1, &resumed.a) == RAMC_OK, "%s: load adapter: %s", what,
          ramc_last_error());
    if (!resumed.a || !run_attach(&resumed, 99)) goto out;
    CHECK(checkpoint_load(path, resumed.a, resumed.opt, resumed.ema, &resumed.rng, &resumed.pr) ==
              RAMC_OK, "%s: load: %s", what, ramc_last_error());
    compare_runs(&part, &resumed, what);
    /* and into an adapter made from the config with another seed */
    run_state other;
    if (run_new(clip, &cfg, 12345, &other)) {
        CHECK(checkpoint_load(path, other.a, other.opt, other.ema, &other.rng, &other.pr) ==
                  RAMC_OK, "%s: load into a created adapter: %s", what, ramc_last_error());
        compare_runs(&part, &other, what);
    }
    run_free(&other);

    train_until(&resumed, N_STEPS);
    compare_runs(&ref, &resumed, what);
    char *config = NULL;
    CHECK(checkpoint_read_config(path, &config) == RAMC_OK && config &&
              !strcmp(config, CONFIG_TEXT), "%s: config text round trip: %s", what,
          config ? config : "(null)");
    free(config);
out:
    run_free(&ref);
    run_free(&part);
    run_free(&resumed);
    remove(path);
}

static int exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

static void test_atomic(const ramc_clip *clip) {
    ram_config cfg = ram_config_preset(RAM_PRESET_COCO, &clip->info);
    run_state s;
    if (!run_new(clip, &cfg, 3, &s)) goto out;
    /* Into a folder that does not exist: an error naming the path, no file, no .tmp. */
    const char *bad = "ckpt_test_no_such_dir/ck.safetensors";
    ramc_status st = checkpoint_save(bad, s.a, s.opt, s.ema, &s.rng, &s.pr, NULL);
    CHECK(st == RAMC_ERR_IO, "save into a missing folder: %s", ramc_status_name(st));
    CHECK(strstr(ramc_last_error(), bad) != NULL, "message names the path: %s", ramc_last_error());
    CHECK(!exists(bad) && !exists("ckpt_test_no_such_dir/ck.safetensors.tmp"), "debris left");
    /* Over a directory: the temporary file is written, the rename fails, and
     * the temporary file is removed again. */
    const char *dir = "ckpt_test_is_a_dir.safetensors";
    mkdir(dir, 0755);
    st = checkpoint_save(dir, s.a, s.opt, s.ema, &s.rng, &s.pr, NULL);
    CHECK(st == RAMC_ERR_IO, "save over a folder: %s", ramc_status_name(st));
    CHECK(!exists("ckpt_test_is_a_dir.safetensors.tmp"), ".tmp left after a failed rename");
    rmdir(dir);
    /* A good save over an existing checkpoint leaves no .tmp either. */
    const char *good = "ckpt_test_atomic.safetensors";
    CHECK(checkpoint_save(good, s.a, s.opt, s.ema, &s.rng, &s.pr, NULL) == RAMC_OK, "save: %s",
          ramc_last_error());
    train_until(&s, 2);
    CHECK(checkpoint_save(good, s.a, s.opt, s.ema, &s.rng, &s.pr, NULL) == RAMC_OK, "resave: %s",
          ramc_last_error());
    CHECK(exists(good) && !exists("ckpt_test_atomic.safetensors.tmp"), "after resave");
    remove(good);
out:
    run_free(&s);
}

/* Copies a safetensors file, leaving out `skip` and putting NaN at element 0
 * of `poison` (a float tensor). */
static int copy_edited(const char *src, const char *dst, const char *skip, const char *poison) {
    st_file *f = NULL;
    if (st_open(src, &f) != RAMC_OK) return 0;
    st_writer *w = st_writer_new();
    int ok = w != NULL;
    for (int i = 0; ok && i < f->n_tensors; i++) {
        const st_tensor *t = &f->tensors[i];
        if (skip && !strcmp(t->name, skip)) continue;
        if (poison && !strcmp(t->name, poison)) {
            float *x = malloc((size_t)t->numel * sizeof(float));
            ok = x && st_read_f32(f, t, x) == RAMC_OK;
            if (ok) {
                x[0] = NAN;
                ok = st_writer_add_f32(w, t->name, ST_F32, t->ndim, t->shape, x) == RAMC_OK;
            }
            free(x);
        } else {
            ok = st_writer_add(w, t->name, t->dtype, t->ndim, t->shape, t->data) == RAMC_OK;
        }
    }
    for (int i = 0; ok && i < f->n_metadata; i++)
        ok = st_writer_set_metadata(w, f->metadata_keys[i], f->metadata_values[i]) == RAMC_OK;
    if (ok) ok = st_writer_save(w, dst) == RAMC_OK;
    st_writer_free(w);
    st_close(f);
    return ok;
}

static int write_bytes(const char *path, const unsigned char *data, size_t n) {
    FILE *fp = fopen(path, "wb");
    if (!fp) return 0;
    int ok = fwrite(data, 1, n, fp) == n;
    return fclose(fp) == 0 && ok;
}

static unsigned char *read_all(const char *path, size_t *n) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    fseek(fp, 0, SEEK_END);
    long len = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)len);
    if (b && fread(b, 1, (size_t)len, fp) != (size_t)len) {
        free(b);
        b = NULL;
    }
    fclose(fp);
    *n = (size_t)len;
    return b;
}

/* Loads `path` into s, expecting `want`, a message naming the file and
 * `needle`, and s unchanged. */
static void expect_refused(run_state *s, const run_state *snapshot, const char *path,
                           ramc_status want, const char *needle) {
    ramc_status st = checkpoint_load(path, s->a, s->opt, s->ema, &s->rng, &s->pr);
    const char *msg = ramc_last_error();
    CHECK(st == want, "%s: status %s, want %s (%s)", path, ramc_status_name(st),
          ramc_status_name(want), msg);
    CHECK(strstr(msg, path) != NULL, "%s: message lacks the file: %s", path, msg);
    if (needle) CHECK(strstr(msg, needle) != NULL, "%s: message lacks '%s': %s", path, needle, msg);
    if (snapshot) compare_runs(snapshot, s, path);
}

static void test_corrupt(const ramc_clip *clip) {
    ram_config cfg = ram_config_preset(RAM_PRESET_COCO, &clip->info);
    run_state s, snap, small;
    memset(&small, 0, sizeof small);
    const char *good = "ckpt_test_good.safetensors";
    unsigned char *bytes = NULL;
    if (!run_new(clip, &cfg, 5, &s) || !run_new(clip, &cfg, 5, &snap)) goto out;
    train_until(&s, 4);
    CHECK(checkpoint_save(good, s.a, s.opt, s.ema, &s.rng, &s.pr, NULL) == RAMC_OK, "save: %s",
          ramc_last_error());
    /* `snap` is the state the refused loads must leave alone (the fresh one). */
    train_until(&snap, 0);

    size_t n = 0;
    bytes = read_all(good, &n);
    CHECK(bytes && n > 64, "read back");
    if (!bytes) goto out;
    /* truncated */
    CHECK(write_bytes("ckpt_test_truncated.safetensors", bytes, n / 2), "write");
    expect_refused(&snap, &snap, "ckpt_test_truncated.safetensors", RAMC_ERR_FORMAT, NULL);
    /* header bytes scrambled */
    unsigned char *junk = malloc(n);
    memcpy(junk, bytes, n);
    memset(junk + 8, '#', 16);
    CHECK(write_bytes("ckpt_test_garbled.safetensors", junk, n), "write");
    free(junk);
    expect_refused(&snap, &snap, "ckpt_test_garbled.safetensors", RAMC_ERR_FORMAT, NULL);
    /* a tensor missing */
    CHECK(copy_edited(good, "ckpt_test_missing.safetensors", "optim.v.temperature", NULL), "copy");
    expect_refused(&snap, &snap, "ckpt_test_missing.safetensors", RAMC_ERR_MISMATCH,
                   "optim.v.temperature");
    /* NaN in a parameter */
    CHECK(copy_edited(good, "ckpt_test_nan.safetensors", NULL, "temperature_loc"), "copy");
    expect_refused(&snap, &snap, "ckpt_test_nan.safetensors", RAMC_ERR_NUMERIC, "temperature_loc");
    /* a plain adapter file is not a checkpoint */
    CHECK(ram_adapter_save(s.a, "ckpt_test_adapter.safetensors") == RAMC_OK, "adapter save");
    expect_refused(&snap, &snap, "ckpt_test_adapter.safetensors", RAMC_ERR_FORMAT, "checkpoint");

    /* another layout: an adapter with fewer adapted blocks */
    ram_config c2 = cfg;
    c2.n_vision_adapted = 2;
    c2.vision_layers[0] = 2;
    c2.vision_layers[1] = 3;
    if (run_new(clip, &c2, 5, &small))
        expect_refused(&small, NULL, good, RAMC_ERR_MISMATCH, "clip_model.visual");
    /* wider prompts: shape mismatch named */
    run_free(&small);
    c2 = cfg;
    c2.n_vis_prompts = 4;
    if (run_new(clip, &c2, 5, &small))
        expect_refused(&small, NULL, good, RAMC_ERR_MISMATCH, "adapt_embeds");
    /* an existing-file load still works after all of that */
    CHECK(checkpoint_load(good, snap.a, snap.opt, snap.ema, &snap.rng, &snap.pr) == RAMC_OK,
          "good load: %s", ramc_last_error());
    compare_runs(&s, &snap, "good load");
    /* the EMA may be left out on load; asking for one a file lacks is an error */
    CHECK(checkpoint_load(good, snap.a, snap.opt, NULL, NULL, &snap.pr) == RAMC_OK,
          "load without EMA/RNG: %s", ramc_last_error());
    CHECK(checkpoint_save("ckpt_test_noema.safetensors", s.a, s.opt, NULL, NULL, &s.pr, NULL) ==
              RAMC_OK, "save without EMA: %s", ramc_last_error());
    expect_refused(&snap, NULL, "ckpt_test_noema.safetensors", RAMC_ERR_MISMATCH, "ema.");
out:
    free(bytes);
    run_free(&s);
    run_free(&snap);
    run_free(&small);
    static const char *files[] = {"ckpt_test_good.safetensors", "ckpt_test_truncated.safetensors",
                                  "ckpt_test_garbled.safetensors", "ckpt_test_missing.safetensors",
                                  "ckpt_test_nan.safetensors", "ckpt_test_adapter.safetensors",
                                  "ckpt_test_noema.safetensors"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) remove(files[i]);
}

int main(void) {
    ramc_clip *clip = load_clip();
    if (clip) {
        test_resume(clip, 5); /* mid-epoch, after the skipped step */
        test_resume(clip, 6); /* at an epoch boundary */
        test_resume(clip, 3); /* before the skipped step */
        test_atomic(clip);
        test_corrupt(clip);
        ramc_clip_free(clip);
    }
    return test_summary("test_checkpoint");
}
