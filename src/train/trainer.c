/* The training loop (see trainer.h). */
#include "train/trainer.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "core/clock.h"
#include "api/model_view.h"
#include "core/dist.h"
#include "core/rng.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "eval/evaluate.h"
#include "io/file.h"
#include "kernels/kernels.h"
#include "ram/ram_train.h"
#include "text/text.h"
#include "train/checkpoint.h"
#include "train/ema.h"
#include "train/optim.h"
#include "train/solver.h"

/* Everything one run holds; freed in one place. */
typedef struct {
    const ram_trainer_options *o;
    const ram_train_config *cfg;
    ramc_clip *clip;
    ram_adapter *adapter;
    ram_adapter *ema_view;       /* the EMA weights, for evaluation and the final file */
    ram_solver solver;           /* optimisers, schedule, EMA, step settings */
    ramc_model *live_model, *ema_model; /* views for evaluation, made on first use */
    ramc_rng rng;
    class_list seen, unseen, gzsl;
    int have_unseen;
    dataset train, zsl, gzsl_set;
    int have_zsl, have_gzsl;
    int32_t *tokens;             /* [Cs, L] seen prompts */
    float *teacher_text;         /* [Cs, D] */
    ram_text_cache text_cache;   /* seen prompts through the unprompted text blocks */
    ram_prefix_cache prefix_cache; /* cache_frozen_prefix: the frozen vision prefix per image */
    int *order;                  /* [n_train] fixed permutation */
    /* data-parallel: this process's `share` images of every batch, from
     * position share_off of it; shard [steps * share] the items it loads and
     * shard_pos their positions in `order` (augmentation seeds) */
    int rank, size, share, share_off;
    int *shard, *shard_pos;
    const char **paths;
    float *images, *targets;
    int *items;
    FILE *log;
    int lock_fd;                 /* held open (and flock'ed) for the whole run; -1 if none */
    char dir[4096];
    char *config_text;
    double start_time;
    int64_t steps_this_run, images_this_run;
} trainer;

static void emit(trainer *t, ram_train_event *ev) {
    ev->elapsed_s = monotonic_seconds() - t->start_time;
    if (t->o->callback) t->o->callback(t->o->user, ev);
}

static void message(trainer *t, const char *text) {
    ram_train_event ev = {.kind = TRAIN_EVENT_MESSAGE, .message = text};
    emit(t, &ev);
}

/* One JSON object per line; flushed so a crash never loses a logged line. */
static void log_json(trainer *t, cJSON *obj) {
    if (t->log) { /* rank 0 only */
        char *line = cJSON_PrintUnformatted(obj);
        if (line) {
            fprintf(t->log, "%s\n", line);
            fflush(t->log);
            free(line);
        }
    }
    cJSON_Delete(obj);
}

/* A warning: on the progress stream and as a "warning" event in log.jsonl. */
static void warn(trainer *t, const char *kind, const char *text) {
    message(t, text);
    cJSON *w = cJSON_CreateObject();
    cJSON_AddStringToObject(w, "event", "warning");
    cJSON_AddStringToObject(w, "kind", kind);
    cJSON_AddStringToObject(w, "message", text);
    log_json(t, w);
}

static ramc_status make_dir(const char *path) {
    if (mkdir(path, 0777) == 0 || errno == EEXIST) {
        struct stat sb;
        if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) return RAMC_OK;
    }
    return ramc_error(RAMC_ERR_IO, "%s: cannot create the output folder: %s", path, strerror(errno));
}

/* Two runs writing one folder would interleave checkpoints and logs: each
 * run takes an exclusive flock on DIR/.ramc.lock and keeps it to the end
 * (the kernel drops it if the process dies, so a stale file blocks nobody).
 * Then a new run refuses a folder that already holds a run, unless told to
 * overwrite it or it resumes that folder's own checkpoint. */
static ramc_status claim_output_dir(trainer *t) {
    char lock[4200];
    snprintf(lock, sizeof lock, "%s/.ramc.lock", t->dir);
    t->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0666);
    if (t->lock_fd < 0)
        return ramc_error(RAMC_ERR_IO, "%s: cannot create the lock file: %s", lock, strerror(errno));
    if (flock(t->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        if (e == EWOULDBLOCK)
            return ramc_error(RAMC_ERR_IO,
                              "%s: another ramc run is writing into this folder (it holds %s); "
                              "wait for it or choose another --output",
                              t->dir, lock);
        return ramc_error(RAMC_ERR_IO, "%s: cannot lock: %s", lock, strerror(e));
    }
    /* Temporaries of a run killed mid-write (names are random now, so a
     * later save no longer replaces them). Safe under the lock: no other
     * run is writing here. */
    DIR *d = opendir(t->dir);
    for (struct dirent *e; d && (e = readdir(d));) {
        static const char *const stems[] = {"checkpoint.safetensors.tmp.", "adapter.safetensors.tmp.",
                                            "adapter-ema.safetensors.tmp."};
        for (size_t k = 0; k < sizeof stems / sizeof *stems; k++)
            if (!strncmp(e->d_name, stems[k], strlen(stems[k]))) {
                char stale[4400];
                snprintf(stale, sizeof stale, "%s/%s", t->dir, e->d_name);
                unlink(stale);
            }
    }
    if (d) closedir(d);
    char ckpt[4200];
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", t->dir);
    struct stat cs;
    if (t->o->overwrite || lstat(ckpt, &cs) != 0) return RAMC_OK;
    if (t->o->resume) {
        /* resuming this very folder's checkpoint (by identity, not by name) */
        struct stat rs;
        if (stat(t->o->resume, &rs) == 0 && stat(ckpt, &cs) == 0 && rs.st_dev == cs.st_dev &&
            rs.st_ino == cs.st_ino)
            return RAMC_OK;
    }
    return ramc_error(RAMC_ERR_IO,
                      "%s: already holds a run (%s); --overwrite replaces it, --resume %s "
                      "continues it",
                      t->dir, ckpt, ckpt);
}

/* ------------------------------------------------------------- set-up */

static ramc_status load_classes(trainer *t) {
    const ram_train_config *cfg = t->cfg;
    ramc_status st;
    /* Label order: sorted by code point, as the official code (spec §9.1). */
    if (cfg->seen_classes[0]) {
        if ((st = class_list_load(cfg->seen_classes, &t->seen))) return st;
    } else if ((st = class_list_from_json(cfg->train, &t->seen))) {
        return ramc_error_prefix(st, "no seen_classes given, and the training file has no "
                                     "\"classes\" list");
    }
    if ((st = class_list_sort(&t->seen))) return st;
    if (cfg->unseen_classes[0]) {
        if ((st = class_list_load(cfg->unseen_classes, &t->unseen))) return st;
        if ((st = class_list_sort(&t->unseen))) return st;
        if ((st = class_list_gzsl(&t->seen, &t->unseen, &t->gzsl)))
            return ramc_error_prefix(st, "seen classes %s, unseen classes %s",
                                     cfg->seen_classes[0] ? cfg->seen_classes : cfg->train,
                                     cfg->unseen_classes);
        t->have_unseen = 1;
    }
    return RAMC_OK;
}

static ramc_status load_datasets(trainer *t) {
    const ram_train_config *cfg = t->cfg;
    dataset_options dopt = dataset_default_options();
    dopt.mode = cfg->dataset_mode;
    dopt.path_map = cfg->path_map[0] ? cfg->path_map : NULL;
    dopt.image_root = cfg->image_root[0] ? cfg->image_root : NULL;
    ramc_status st = dataset_load(cfg->train, &t->seen, &dopt, &t->train);
    if (st) return st;
    if (cfg->test_zsl[0]) {
        if (!t->have_unseen)
            return ramc_error(RAMC_ERR_INVALID_ARG,
                              "test_zsl is set but unseen_classes is not: ZSL evaluates on the "
                              "unseen labels");
        if ((st = dataset_load(cfg->test_zsl, &t->unseen, &dopt, &t->zsl))) return st;
        t->have_zsl = 1;
    }
    if (cfg->test_gzsl[0]) {
        const class_list *labels = t->have_unseen ? &t->gzsl : &t->seen;
        if ((st = dataset_load(cfg->test_gzsl, labels, &dopt, &t->gzsl_set))) return st;
        t->have_gzsl = 1;
    }
    if (t->train.n_items < cfg->batch_size)
        return ramc_error(RAMC_ERR_INVALID_ARG,
                          "%s: %d training images, fewer than one batch (batch_size %d)",
                          cfg->train, t->train.n_items, cfg->batch_size);
    return RAMC_OK;
}

static ramc_status encode_prompts(trainer *t) {
    const ramc_clip_info *in = &t->clip->info;
    const int C = t->seen.n, L = in->context_length;
    char prompt[RAMC_MAX_LABEL_BYTES + 64];
    ramc_tokenizer *tok = NULL;
    ramc_status st = ramc_tokenizer_load_for_model(t->cfg->model, &tok);
    if (st) return st;
    t->tokens = malloc((size_t)C * L * sizeof(int32_t));
    t->teacher_text = malloc((size_t)C * in->embed_dim * sizeof(float));
    if (!t->tokens || !t->teacher_text) st = ramc_error(RAMC_ERR_NOMEM, "out of memory (prompts)");
    for (int c = 0; c < C && st == RAMC_OK; c++) {
        snprintf(prompt, sizeof prompt, "A photo of a %s.", t->seen.names[c]);
        st = ramc_tokenize(tok, prompt, t->tokens + (size_t)c * L, L);
    }
    ramc_tokenizer_free(tok);
    /* the frozen teacher's label features: computed once, as the official code */
    if (st == RAMC_OK) st = ram_encode_text(t->clip, NULL, t->tokens, C, t->teacher_text, NULL, NULL);
    return st;
}

static ramc_status build_model(trainer *t) {
    const ram_train_config *cfg = t->cfg;
    ram_config rc;
    ramc_status st = ram_train_config_model(cfg, &t->clip->info, &rc);
    if (st == RAMC_OK) st = ram_adapter_create(t->clip, &rc, (uint64_t)cfg->seed, 1, &t->adapter);
    if (st == RAMC_OK) st = ram_adapter_create(t->clip, &rc, (uint64_t)cfg->seed, 0, &t->ema_view);
    if (st == RAMC_OK) st = ram_solver_create(t->adapter, cfg, &t->solver);
    if (st) return st;
    /* float32: the CLIP stays thawed; bf16: its vision tower's products in bf16 */
    clip_freeze_for_training(t->clip, cfg->bf16);
    t->solver.step.text_cache = &t->text_cache;
    rng_seed(&t->rng, (uint64_t)cfg->seed);
    return RAMC_OK;
}

/* One permutation for every epoch, from the seed alone (the official code
 * shuffles the training list once). */
static ramc_status build_order(trainer *t) {
    const int n = t->train.n_items;
    t->order = malloc((size_t)n * sizeof *t->order);
    t->paths = malloc((size_t)n * sizeof *t->paths);
    if (!t->order || !t->paths) return ramc_error(RAMC_ERR_NOMEM, "out of memory (order)");
    ramc_rng r;
    rng_seed(&r, (uint64_t)t->cfg->seed ^ 0x5eed0fdeadbeefull);
    for (int i = 0; i < n; i++) t->order[i] = i, t->paths[i] = t->train.items[i].path;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(rng_next(&r) % (uint64_t)(i + 1));
        int tmp = t->order[i];
        t->order[i] = t->order[j];
        t->order[j] = tmp;
    }
    if (t->size == 1) return RAMC_OK;
    /* rank r loads images off_r .. off_r + share_r - 1 of every batch (the
     * first B % size ranks one more) */
    const int B = t->cfg->batch_size, P = t->size;
    const int64_t steps = n / B;
    t->share = B / P + (t->rank < B % P);
    t->share_off = t->rank * (B / P) + (t->rank < B % P ? t->rank : B % P);
    t->shard = malloc(((size_t)steps * t->share + 1) * sizeof(int));
    t->shard_pos = malloc(((size_t)steps * t->share + 1) * sizeof(int));
    if (!t->shard || !t->shard_pos) return ramc_error(RAMC_ERR_NOMEM, "out of memory (order)");
    for (int64_t k = 0, at = 0; k < steps; k++)
        for (int j = 0; j < t->share; j++, at++) {
            t->shard_pos[at] = (int)(k * B + t->share_off + j);
            t->shard[at] = t->order[t->shard_pos[at]];
        }
    return RAMC_OK;
}

static ramc_augment_options augment_options(const trainer *t) {
    const ram_train_config *cfg = t->cfg;
    ramc_augment_options a = augment_default_options();
    a.image_size = t->clip->info.image_size;
    for (int c = 0; c < 3; c++) a.mean[c] = (float)cfg->pixel_mean[c], a.std[c] = (float)cfg->pixel_std[c];
    a.hflip_p = cfg->flip_prob;
    a.hflip = cfg->flip_prob > 0;
    a.erasing_p = cfg->erase_prob;
    a.erasing = cfg->erase_prob > 0;
    a.pad = cfg->padding;
    a.pad_crop = cfg->padding > 0;
    return a;
}

/* ---------------------------------------------------------- evaluation */

static void on_eval_progress(void *user, int done, int total) {
    trainer *t = user;
    ram_train_event ev = {.kind = TRAIN_EVENT_EVAL_PROGRESS, .done = done, .total = total};
    emit(t, &ev);
}

static ramc_status write_report(trainer *t, const eval_report *r, int epoch) {
    char path[4200];
    snprintf(path, sizeof path, "%s/eval-epoch%d-%s-%s.json", t->dir, epoch, r->name, r->model);
    ramc_status st = report_write_json_file(r, path);
    if (st) return st;
    cJSON *line = cJSON_CreateObject();
    cJSON_AddStringToObject(line, "event", "eval");
    cJSON_AddNumberToObject(line, "epoch", epoch);
    cJSON *rep = report_to_json(r);
    if (rep) {
        /* the per-class table stays in the report file; the log keeps the summary */
        cJSON_DeleteItemFromObject(rep, "classes");
        cJSON_AddItemToObject(line, "report", rep);
    }
    log_json(t, line);
    return RAMC_OK;
}

/* Data-parallel: every process evaluates its share of the batches
 * (ram_eval_options.dist), rank 0 writes the reports. */
static ramc_status evaluate_all(trainer *t, int epoch) {
    if (!t->have_zsl && !t->have_gzsl) return RAMC_OK;
    const ram_train_config *cfg = t->cfg;
    ram_eval_options eo = ram_eval_default_options();
    eo.batch_size = cfg->eval_batch_size;
    eo.workers = cfg->workers;
    eo.per_image_sinkhorn = cfg->sinkhorn == SINKHORN_PER_IMAGE;
    for (int c = 0; c < 3; c++) eo.mean[c] = (float)cfg->pixel_mean[c], eo.std[c] = (float)cfg->pixel_std[c];
    eo.progress = on_eval_progress;
    eo.progress_user = t;
    eo.fatal_missing = t->o->fatal_missing;
    eo.variant = cfg->variant;
    eo.dist = t->o->dist;
    ramc_status st = ema_copy_to(t->solver.ema, t->ema_view);
    if (st) return st;
    /* kept for the whole run, so the model's tokenizer is read once */
    if (!t->live_model && (st = api_model_view(t->clip, t->adapter, 0, &t->live_model))) return st;
    if (!t->ema_model && (st = api_model_view(t->clip, t->ema_view, 0, &t->ema_model))) return st;
    const struct {
        const char *name;
        const dataset *ds;
        int enabled;
    } sets[2] = {{"zsl", &t->zsl, t->have_zsl}, {"gzsl", &t->gzsl_set, t->have_gzsl}};
    for (int m = 0; m < (t->solver.ema ? 2 : 1); m++)
        for (int s = 0; s < 2; s++) {
            if (!sets[s].enabled) continue;
            eval_report *r = NULL;
            int skipped = 0;
            st = ram_evaluate(m == 0 ? t->live_model : t->ema_model, sets[s].ds, &eo, sets[s].name,
                              m == 0 ? "live" : "ema", &skipped, &r);
            if (st) return st;
            if (skipped) {
                char note[256];
                snprintf(note, sizeof note, "%s: %d unreadable images skipped", sets[s].ds->source,
                         skipped);
                message(t, note);
            }
            ram_train_event ev = {.kind = TRAIN_EVENT_EVAL, .epoch = epoch, .report = r};
            emit(t, &ev);
            st = t->rank == 0 ? write_report(t, r, epoch) : RAMC_OK;
            report_free(r);
            if (st) return st;
        }
    return RAMC_OK;
}

/* --------------------------------------------------------- checkpoints */

static ramc_status save_checkpoint(trainer *t, int epoch, int64_t step_in_epoch,
                                   int64_t global_step, ram_train_summary *sum) {
    if (t->rank != 0) return RAMC_OK; /* every process holds the same state */
    char path[4200];
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", t->dir);
    ram_progress p = {epoch, step_in_epoch, global_step};
    ramc_status st = checkpoint_save(path, t->adapter, t->solver.opt, t->solver.ema, &t->rng, &p, t->config_text);
    if (st) return st;
    snprintf(sum->checkpoint, sizeof sum->checkpoint, "%s", path);
    ram_train_event ev = {.kind = TRAIN_EVENT_CHECKPOINT, .epoch = epoch, .path = path,
                          .global_step = global_step};
    emit(t, &ev);
    cJSON *line = cJSON_CreateObject();
    cJSON_AddStringToObject(line, "event", "checkpoint");
    cJSON_AddItemToObject(line, "path", json_string_utf8(path)); /* any bytes */
    cJSON_AddNumberToObject(line, "epoch", epoch);
    cJSON_AddNumberToObject(line, "step_in_epoch", (double)step_in_epoch);
    cJSON_AddNumberToObject(line, "global_step", (double)global_step);
    log_json(t, line);
    return RAMC_OK;
}

static void log_step(trainer *t, const ram_train_event *ev) {
    cJSON *line = cJSON_CreateObject();
    cJSON_AddStringToObject(line, "event", "step");
    cJSON_AddNumberToObject(line, "epoch", ev->epoch);
    cJSON_AddNumberToObject(line, "step", (double)ev->step);
    cJSON_AddNumberToObject(line, "global_step", (double)ev->global_step);
    cJSON_AddNumberToObject(line, "loss", ev->loss);
    cJSON_AddNumberToObject(line, "loss_glb", ev->loss_glb);
    cJSON_AddNumberToObject(line, "loss_loc", ev->loss_loc);
    cJSON *lr = cJSON_AddArrayToObject(line, "lr");
    for (int g = 0; g < 3; g++) cJSON_AddItemToArray(lr, cJSON_CreateNumber(ev->lr[g]));
    cJSON_AddNumberToObject(line, "images_per_s", ev->images_per_s);
    cJSON_AddNumberToObject(line, "elapsed_s", ev->elapsed_s);
    if (t->size > 1) /* what rank 0 has sent to the others so far (payload) */
        cJSON_AddNumberToObject(line, "sent_bytes", (double)dist_bytes_sent(t->o->dist));
    log_json(t, line);
}

/* ---------------------------------------------------------------- loop */

static void trainer_free(trainer *t) {
    if (t->log) fclose(t->log);
    if (t->lock_fd >= 0) close(t->lock_fd); /* releases the flock */
    ramc_model_free(t->live_model);
    ramc_model_free(t->ema_model);
    ramc_clip_free(t->clip);
    ram_adapter_free(t->adapter);
    ram_adapter_free(t->ema_view);
    ram_solver_free(&t->solver);
    class_list_free(&t->seen);
    class_list_free(&t->unseen);
    class_list_free(&t->gzsl);
    dataset_free(&t->train);
    if (t->have_zsl) dataset_free(&t->zsl);
    if (t->have_gzsl) dataset_free(&t->gzsl_set);
    free(t->tokens);
    free(t->teacher_text);
    ram_text_cache_free(&t->text_cache);
    ram_prefix_cache_free(&t->prefix_cache);
    free(t->order);
    free(t->shard);
    free(t->shard_pos);
    free(t->paths);
    free(t->images);
    free(t->targets);
    free(t->items);
    free(t->config_text);
}

typedef struct {
    trainer *t;
    int unreadable;
} loader_ctx;

static void on_unreadable(void *user, const char *path, int item, ramc_status status,
                          const char *msg) {
    loader_ctx *lc = user;
    lc->unreadable++;
    message(lc->t, msg);
    (void)path, (void)item, (void)status;
}

/* Runs epochs from (epoch, step_in_epoch) on. */
static ramc_status train_loop(trainer *t, int epoch, int64_t step_in_epoch, int64_t global_step,
                              ram_train_summary *sum) {
    const ram_train_config *cfg = t->cfg;
    const int B = cfg->batch_size, Cs = t->seen.n;
    const int64_t steps = t->train.n_items / B;
    ramc_status st = RAMC_OK;
    loader_ctx lc = {t, 0};
    ramc_loader_options lo = loader_default_options();
    lo.batch_size = t->size > 1 ? t->share : B;
    lo.workers = cfg->workers;
    lo.drop_last = 1;
    lo.train = cfg->augment; /* augment = 0: the evaluation transform, the same pixels every epoch */
    lo.augment = augment_options(t);
    lo.seed = (uint64_t)cfg->seed;
    lo.on_error = t->o->fatal_missing ? LOADER_FATAL : LOADER_SKIP;
    lo.report = on_unreadable;
    lo.report_user = &lc;
    const int *order = t->order;
    int n_order = t->train.n_items;
    if (t->size > 1) {
        /* skipping an image would shift one process's batches only */
        lo.on_error = LOADER_FATAL;
        lo.seed_positions = t->shard_pos;
        order = t->shard;
        n_order = (int)(steps * t->share);
    }

    if (cfg->cache_frozen_prefix && !t->prefix_cache.entry) {
        /* config validation refused it with augmentation on */
        if ((st = ram_prefix_cache_init(&t->prefix_cache, t->train.n_items,
                                        (size_t)cfg->cache_frozen_prefix_mb << 20)))
            return st;
        t->solver.step.prefix_cache = &t->prefix_cache;
    }

    for (; epoch <= cfg->max_epochs; epoch++, step_in_epoch = 0) {
        sum->epoch = epoch;
        /* a resumed mid-epoch run has its EMA from the checkpoint */
        if ((st = ram_solver_begin_epoch(&t->solver, t->adapter, epoch, step_in_epoch == 0)))
            return st;
        ramc_loader *loader = NULL;
        if ((st = loader_new(t->paths, t->train.n_items, order, n_order, &lo, (uint64_t)epoch,
                             &loader)))
            return st;
        int count = 0;
        /* skip what a resumed run already did: same batches, same augmentation */
        for (int64_t k = 0; k < step_in_epoch && st == RAMC_OK; k++)
            st = loader_next_batch(loader, t->images, t->items, &count);
        while (st == RAMC_OK) {
            /* 2: the stop flag, 1: max_steps */
            int stop = t->o->stop && *t->o->stop ? 2
                       : t->o->max_steps && global_step >= t->o->max_steps ? 1 : 0;
            /* a signal reaches the processes at different moments (or only
             * one of them): all stop at the first step boundary where any of
             * them saw it */
            if (t->size > 1 && (st = dist_max_int(t->o->dist, &stop))) break;
            if (stop) {
                loader_free(loader);
                sum->interrupted = 1;
                sum->stop_requested = stop == 2;
                sum->global_step = global_step;
                return save_checkpoint(t, epoch, step_in_epoch, global_step, sum);
            }
            if ((st = loader_next_batch(loader, t->images, t->items, &count)) || count == 0) break;
            if ((st = dataset_targets(&t->train, t->items, count, t->targets))) break;
            ram_train_result res;
            t->solver.step.prefix_keys = t->items; /* the batch's training-set indices */
            st = ram_solver_step(&t->solver, t->clip, t->adapter, t->images, count, t->tokens, Cs,
                                 t->teacher_text, t->targets, &res);
            double loss = st ? 0 : res.loss, lg = st ? 0 : res.loss_glb, ll = st ? 0 : res.loss_loc;
            ram_train_result_free(&res);
            if (st) {
                ramc_error_prefix(st, "epoch %d step %lld", epoch, (long long)step_in_epoch + 1);
                break;
            }
            step_in_epoch++, global_step++;
            t->steps_this_run++;
            t->images_this_run += t->size > 1 ? B : count;
            sum->last_loss = loss;
            ram_train_event ev = {.kind = TRAIN_EVENT_STEP, .epoch = epoch,
                                  .max_epochs = cfg->max_epochs, .step = step_in_epoch,
                                  .steps_per_epoch = steps, .global_step = global_step,
                                  .total_steps = steps * cfg->max_epochs, .loss = loss,
                                  .loss_glb = lg, .loss_loc = ll};
            for (int g = 0; g < 3; g++) ev.lr[g] = t->solver.opt->lr[g];
            double elapsed = monotonic_seconds() - t->start_time;
            ev.images_per_s = elapsed > 0 ? (double)t->images_this_run / elapsed : 0;
            emit(t, &ev);
            if (cfg->log_period > 0 && (global_step % cfg->log_period == 0 || step_in_epoch == steps))
                log_step(t, &ev);
        }
        loader_free(loader);
        if (st) return st;
        if (step_in_epoch == 0)
            return ramc_error(RAMC_ERR_IO, "%s: epoch %d had no complete batch: %d images could "
                              "not be read", cfg->train, epoch, lc.unreadable);
        ram_train_event ev = {.kind = TRAIN_EVENT_EPOCH_END, .epoch = epoch,
                              .max_epochs = cfg->max_epochs, .global_step = global_step,
                              .loss = sum->last_loss};
        emit(t, &ev);
        if (t->solver.step.prefix_cache) {
            const ram_prefix_cache *pc = &t->prefix_cache;
            char line[320];
            snprintf(line, sizeof line,
                     "frozen-prefix cache after epoch %d: %ld images held (%.0f MiB of %d), steps "
                     "served from it %ld, computed %ld%s",
                     epoch, pc->stored, (double)pc->bytes / 1048576.0, cfg->cache_frozen_prefix_mb,
                     pc->hits, pc->misses,
                     pc->over_limit ? "; images over the limit are recomputed every epoch "
                                      "(raise cache_frozen_prefix_mb)"
                                    : "");
            message(t, line);
        }
        int last = epoch == cfg->max_epochs;
        /* the checkpoint points at the start of the next epoch */
        if ((cfg->checkpoint_period > 0 && epoch % cfg->checkpoint_period == 0) || last)
            if ((st = save_checkpoint(t, epoch + 1, 0, global_step, sum))) return st;
        if ((cfg->eval_period > 0 && epoch % cfg->eval_period == 0) || last)
            if ((st = evaluate_all(t, epoch))) return st;
    }
    sum->global_step = global_step;
    return RAMC_OK;
}

static ramc_status train_run(const ram_trainer_options *o, ram_train_summary *sum) {
    trainer t;
    memset(&t, 0, sizeof t);
    t.lock_fd = -1;
    memset(sum, 0, sizeof *sum);
    t.o = o;
    t.cfg = &o->cfg;
    t.start_time = monotonic_seconds();
    const ram_train_config *cfg = t.cfg;
    ramc_status st = ram_train_config_validate(cfg, "training config");
    if (st) goto done;
    if (!cfg->model[0] || !cfg->train[0] || !cfg->output_dir[0]) {
        st = ramc_error(RAMC_ERR_INVALID_ARG, "training needs model, train and output_dir to be set");
        goto done;
    }
    snprintf(t.dir, sizeof t.dir, "%s", cfg->output_dir);
    t.rank = dist_rank(o->dist);
    t.size = dist_size(o->dist);
    if (t.size > cfg->batch_size) {
        st = ramc_error(RAMC_ERR_INVALID_ARG, "batch_size %d cannot be split over %d processes: "
                        "each needs at least one image of every batch", cfg->batch_size, t.size);
        goto done;
    }
    /* rank 0 alone writes into the output folder */
    if (t.rank == 0 && ((st = make_dir(t.dir)) || (st = claim_output_dir(&t)))) goto done;
    if ((st = ram_train_config_dump(cfg, &t.config_text))) goto done;
    if ((st = ramc_clip_load(cfg->model, &o->clip_params, &t.clip))) goto done;
    /* Packed float32 copies measured no faster for a training step (and cost
     * memory); build_model freezes the vision tower again for bf16 training. */
    clip_thaw(t.clip);
    if (cfg->image_size && cfg->image_size != t.clip->info.image_size) {
        st = ramc_error(RAMC_ERR_MISMATCH, "image_size %d differs from the model's %d (positional "
                        "embeddings are not resized)", cfg->image_size, t.clip->info.image_size);
        goto done;
    }
    if ((st = load_classes(&t)) || (st = load_datasets(&t)) || (st = encode_prompts(&t)) ||
        (st = build_model(&t)) || (st = build_order(&t)))
        goto done;
    const int B = cfg->batch_size, S = t.clip->info.image_size;
    t.solver.step.dist = o->dist;
    t.images = malloc((size_t)B * 3 * S * S * sizeof(float));
    t.targets = malloc((size_t)B * t.seen.n * sizeof(float));
    t.items = malloc((size_t)B * sizeof(int));
    if (!t.images || !t.targets || !t.items) {
        st = ramc_error(RAMC_ERR_NOMEM, "out of memory (batch buffers)");
        goto done;
    }
    char log_path[4200];
    snprintf(log_path, sizeof log_path, "%s/log.jsonl", t.dir);
    t.log = t.rank == 0 ? fopen(log_path, "a") : NULL;
    if (!t.log && t.rank == 0) {
        st = ramc_error(RAMC_ERR_IO, "%s: cannot open for writing: %s", log_path, strerror(errno));
        goto done;
    }

    ram_progress p = {1, 0, 0};
    if (o->resume && (st = checkpoint_load(o->resume, t.adapter, t.solver.opt, t.solver.ema, &t.rng, &p)))
        goto done;
    cJSON *start = cJSON_CreateObject();
    cJSON_AddStringToObject(start, "event", o->resume ? "resume" : "start");
    cJSON_AddStringToObject(start, "config", t.config_text);
    cJSON_AddNumberToObject(start, "train_images", t.train.n_items);
    cJSON_AddNumberToObject(start, "seen_labels", t.seen.n);
    cJSON_AddNumberToObject(start, "epoch", (double)p.epoch);
    cJSON_AddNumberToObject(start, "global_step", (double)p.global_step);
    cJSON_AddNumberToObject(start, "processes", t.size);
    log_json(&t, start);
    char warning[1024];
    if (ram_schedule_check(cfg, warning, sizeof warning)) warn(&t, "schedule", warning);
    if (cfg->bf16 && !kernels_cpu_has_bf16())
        /* oneDNN emulates bf16 or declines it (the products then stay
         * float32): the run is correct, only not the faster one asked for */
        warn(&t, "bf16", "bf16 = 1, but this CPU has no AVX512-BF16: the bf16 products are "
                         "emulated or run in float32, and will not be faster");
    ram_train_event ev = {.kind = TRAIN_EVENT_START, .epoch = (int)p.epoch,
                          .max_epochs = cfg->max_epochs,
                          .steps_per_epoch = t.train.n_items / B,
                          .global_step = p.global_step,
                          .total_steps = (int64_t)(t.train.n_items / B) * cfg->max_epochs};
    emit(&t, &ev);
    st = train_loop(&t, (int)p.epoch, p.step_in_epoch, p.global_step, sum);
    if (st == RAMC_OK && !sum->interrupted && t.rank == 0) {
        char path[4200];
        snprintf(path, sizeof path, "%s/adapter.safetensors", t.dir);
        if ((st = ram_adapter_save(t.adapter, path))) goto done;
        if (t.solver.ema) {
            if ((st = ema_copy_to(t.solver.ema, t.ema_view))) goto done;
            snprintf(path, sizeof path, "%s/adapter-ema.safetensors", t.dir);
            if ((st = ram_adapter_save(t.ema_view, path))) goto done;
        }
    }
    cJSON *end = cJSON_CreateObject();
    cJSON_AddStringToObject(end, "event", st ? "error" : sum->interrupted ? "stopped" : "done");
    if (st) cJSON_AddItemToObject(end, "error", json_string_utf8(ramc_last_error()));
    cJSON_AddNumberToObject(end, "global_step", (double)sum->global_step);
    cJSON_AddNumberToObject(end, "last_loss", sum->last_loss);
    cJSON_AddNumberToObject(end, "elapsed_s", monotonic_seconds() - t.start_time);
    if (t.size > 1) {
        cJSON_AddNumberToObject(end, "processes", t.size);
        cJSON_AddNumberToObject(end, "sent_bytes", (double)dist_bytes_sent(o->dist));
    }
    log_json(&t, end);
done:
    trainer_free(&t);
    return st;
}

ramc_status ram_train_run(const ram_trainer_options *o, ram_train_summary *sum) {
    int saved = kernels_threads_begin(o ? o->clip_params.threads : 0);
    ramc_status st = train_run(o, sum);
    kernels_threads_end(saved);
    return st;
}
