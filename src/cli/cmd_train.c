/* ramc train: train RAM's adapter and prompts on labelled images.
 * A thin layer over ram_train_run: assemble the configuration (preset, file,
 * flags), handle signals, show progress. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/dist.h"
#include "io/file.h"
#include "eval/report.h"
#include "train/checkpoint.h"
#include "train/trainer.h"

static const char usage_text[] =
    "usage: ramc train [--config FILE] [--preset coco|nus] [--set KEY=VALUE]...\n"
    "                  [--clip WEIGHTS] [--train FILE] [--seen-classes FILE]\n"
    "                  [--unseen-classes FILE] [--test-zsl FILE] [--test-gzsl FILE]\n"
    "                  [--image-root DIR] [--output DIR] [--resume CHECKPOINT]\n"
    "                  [--vision-heads N --text-heads N] [--max-steps N] [--fatal-missing]\n"
    "                  [--overwrite] [--bf16] [--threads N] [--quiet]\n"
    "\n"
    "Trains RAM's trainable parts (visual and text prompts, TSS adapters,\n"
    "temperatures) on the seen labels of a dataset, with the frozen CLIP and its\n"
    "SAA teacher, exactly as the official train.py. Settings come from the preset\n"
    "(default coco), then the config file, then the flags in order; every key of\n"
    "docs/datasets.md can be given with --set.\n"
    "\n"
    "  --config FILE        key = value lines (see docs/datasets.md)\n"
    "  --preset coco|nus    official COCO 48/17 or NUS-WIDE 925/81 configuration\n"
    "  --set KEY=VALUE      any config key, e.g. --set max_epochs=2\n"
    "  --clip WEIGHTS       CLIP weights (= --set model=WEIGHTS); default: the embedded\n"
    "                       model data/default/clip.safetensors (said on stderr)\n"
    "  --train FILE         training set: official JSON or TSV (path<TAB>a,b)\n"
    "  --seen-classes FILE, --unseen-classes FILE   one label per line\n"
    "  --test-zsl FILE, --test-gzsl FILE            evaluation sets\n"
    "  --image-root DIR     folder that relative image paths are joined to\n"
    "  --output DIR         checkpoints, adapters, reports and log.jsonl; a folder\n"
    "                       that already holds a run is refused, and so is one\n"
    "                       another run is writing into (DIR/.ramc.lock)\n"
    "  --overwrite          start a new run in a folder that holds one\n"
    "  --resume CHECKPOINT  continue a run exactly where it stopped (its config\n"
    "                       is used unless --config is given); writes into the\n"
    "                       checkpoint's own folder unless --output is given\n"
    "  --max-steps N        stop after N optimisation steps (with a checkpoint)\n"
    "  --fatal-missing      stop at an unreadable image (default: report it, skip it)\n"
    "  --bf16               the frozen vision tower's products in bf16 (= --set bf16=1):\n"
    "                       faster where the CPU has AMX or AVX512-BF16, not the\n"
    "                       official float32 regime (docs/performance.md, bf16 training)\n"
    "  --threads N          threads for the model's products (default: all cores, or\n"
    "                       OMP_NUM_THREADS); image decoding uses the config's workers\n"
    "  --quiet              no progress output\n"
    "\n"
    "Ctrl-C (SIGINT) or SIGTERM stops after the current step and writes a\n"
    "checkpoint; the exit status is then 130 (143 for SIGTERM). A NaN or Inf loss\n"
    "or gradient stops training with status 1 and keeps the last checkpoint.\n"
    "\n"
    "example:\n"
    "  ramc train --preset coco --clip ViT-B-16.safetensors --train train.json \\\n"
    "      --seen-classes seen.txt --unseen-classes unseen.txt \\\n"
    "      --test-zsl test_17.json --test-gzsl test_65.json --output runs/coco\n";

static volatile sig_atomic_t stop_requested;
static volatile sig_atomic_t stop_signal;

static void on_signal(int sig) {
    stop_requested = 1;
    stop_signal = sig;
}

/* ------------------------------------------------------------ progress */

typedef struct {
    int quiet, tty;
    int64_t last_plain;
    int log_period;
} progress;

static void format_duration(char *buf, size_t n, double s) {
    if (!(s >= 0) || s > 1e7) {
        snprintf(buf, n, "--:--:--");
        return;
    }
    long t = (long)s;
    snprintf(buf, n, "%02ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
}

static void on_event(void *user, const ram_train_event *ev) {
    progress *p = user;
    char eta[32], el[32];
    switch (ev->kind) {
    case TRAIN_EVENT_START:
        if (!p->quiet)
            fprintf(stderr, "ramc train: %lld steps per epoch, %d epochs, starting at epoch %d\n",
                    (long long)ev->steps_per_epoch, ev->max_epochs, ev->epoch);
        break;
    case TRAIN_EVENT_STEP: {
        if (p->quiet) break;
        int64_t left = ev->total_steps - ev->global_step;
        double eta_s = ev->global_step > 0 && ev->elapsed_s > 0
                           ? ev->elapsed_s / (double)ev->global_step * (double)left
                           : -1;
        format_duration(eta, sizeof eta, eta_s);
        format_duration(el, sizeof el, ev->elapsed_s);
        if (p->tty) {
            int width = 24, filled = ev->steps_per_epoch
                                         ? (int)(width * ev->step / ev->steps_per_epoch)
                                         : width;
            char bar[32];
            for (int i = 0; i < width; i++) bar[i] = i < filled ? '#' : '.';
            bar[width] = '\0';
            fprintf(stderr, "\repoch %d/%d [%s] %lld/%lld loss %.4f %.2f img/s elapsed %s ETA %s ",
                    ev->epoch, ev->max_epochs, bar, (long long)ev->step,
                    (long long)ev->steps_per_epoch, ev->loss, ev->images_per_s, el, eta);
            if (ev->step == ev->steps_per_epoch) fputc('\n', stderr);
        } else if (ev->global_step - p->last_plain >= p->log_period ||
                   ev->step == ev->steps_per_epoch) {
            p->last_plain = ev->global_step;
            fprintf(stderr, "epoch %d/%d step %lld/%lld loss %.4f (glb %.4f loc %.4f) %.2f img/s "
                    "elapsed %s ETA %s\n",
                    ev->epoch, ev->max_epochs, (long long)ev->step, (long long)ev->steps_per_epoch,
                    ev->loss, ev->loss_glb, ev->loss_loc, ev->images_per_s, el, eta);
        }
        break;
    }
    case TRAIN_EVENT_EVAL_PROGRESS:
        if (!p->quiet && p->tty) fprintf(stderr, "\revaluating %d/%d ", ev->done, ev->total);
        break;
    case TRAIN_EVENT_EVAL:
        if (p->tty && !p->quiet) fputc('\n', stderr);
        report_print_table(stdout, ev->report, 0);
        fflush(stdout);
        break;
    case TRAIN_EVENT_CHECKPOINT:
        if (!p->quiet) fprintf(stderr, "checkpoint: %s\n", ev->path);
        break;
    case TRAIN_EVENT_MESSAGE:
        fprintf(stderr, "%sramc train: %s\n", p->tty ? "\n" : "", ev->message);
        break;
    case TRAIN_EVENT_EPOCH_END:
        break;
    }
}

/* ---------------------------------------------------------------- main */

/* Flags that are shortcuts for config keys. */
static const struct {
    const char *flag, *key;
} shortcuts[] = {
    {"--clip", "model"},           {"--train", "train"},
    {"--seen-classes", "seen_classes"}, {"--unseen-classes", "unseen_classes"},
    {"--test-zsl", "test_zsl"},    {"--test-gzsl", "test_gzsl"},
    {"--image-root", "image_root"}, {"--output", "output_dir"},
};

int cmd_train(int argc, char **argv) {
    ram_trainer_options o;
    memset(&o, 0, sizeof o);
    o.clip_params = ramc_clip_default_params();
    const char *config_file = NULL, *preset = NULL;
    int quiet = 0;
    /* first pass: options that decide where the configuration starts */
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage_text, stdout);
            printf("\nData-parallel over MPI: %s\n",
                   dist_built_with_mpi() ? "yes (mpirun -np N ramc train ..., docs/distributed.md)"
                                         : "no (this build has no MPI)");
            return 0;
        }
        if (i + 1 < argc && !strcmp(argv[i], "--config")) config_file = argv[++i];
        else if (i + 1 < argc && !strcmp(argv[i], "--preset")) preset = argv[++i];
        else if (i + 1 < argc && !strcmp(argv[i], "--resume")) o.resume = argv[++i];
    }
    ram_preset pr = RAM_PRESET_COCO;
    if (preset) {
        if (!strcmp(preset, "coco")) pr = RAM_PRESET_COCO;
        else if (!strcmp(preset, "nus")) pr = RAM_PRESET_NUS;
        else {
            fprintf(stderr, "ramc train: unknown preset '%s' (coco or nus)\n", preset);
            return 2;
        }
    }
    ram_train_config_init(&o.cfg, pr);
    if (config_file) {
        if (ram_train_config_load(&o.cfg, config_file)) return cli_fail("train");
    } else if (o.resume) {
        char *text = NULL;
        if (checkpoint_read_config(o.resume, &text)) return cli_fail("train");
        ramc_status st = ram_train_config_parse(&o.cfg, text, strlen(text), o.resume);
        free(text);
        if (st) return cli_fail("train");
        /* A resumed run writes beside its checkpoint (or where --output says),
         * never into the folder recorded inside it: resuming a copy must not
         * overwrite the original run. */
        file_parent_dir(o.resume, o.cfg.output_dir, sizeof o.cfg.output_dir);
    }
    /* second pass: everything else, in order */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has_value = i + 1 < argc;
        if (!strcmp(a, "--config") || !strcmp(a, "--preset") || !strcmp(a, "--resume")) {
            i++;
            continue;
        }
        if (!strcmp(a, "--quiet")) {
            quiet = 1;
            continue;
        }
        if (!strcmp(a, "--fatal-missing")) {
            o.fatal_missing = 1;
            continue;
        }
        if (!strcmp(a, "--overwrite")) {
            o.overwrite = 1;
            continue;
        }
        if (!strcmp(a, "--bf16")) {
            if (ram_train_config_set(&o.cfg, "bf16=1", "--bf16")) return cli_usage_error("train");
            continue;
        }
        if (has_value && !strcmp(a, "--threads")) {
            if (!cli_parse_threads("train", argv[++i], &o.clip_params.threads)) return 2;
            continue;
        }
        if (has_value && !strcmp(a, "--set")) {
            if (ram_train_config_set(&o.cfg, argv[++i], "--set")) return cli_usage_error("train");
            continue;
        }
        if (has_value && (!strcmp(a, "--vision-heads") || !strcmp(a, "--text-heads") ||
                          !strcmp(a, "--max-steps"))) {
            char *end;
            long long v = strtoll(argv[++i], &end, 10);
            if (*end || v < 0) {
                fprintf(stderr, "ramc train: %s needs a non-negative integer\n", a);
                return 2;
            }
            if (!strcmp(a, "--vision-heads")) o.clip_params.vision_heads = (int)v;
            else if (!strcmp(a, "--text-heads")) o.clip_params.text_heads = (int)v;
            else o.max_steps = v;
            continue;
        }
        int matched = 0;
        for (size_t s = 0; s < sizeof shortcuts / sizeof shortcuts[0] && !matched; s++)
            if (has_value && !strcmp(a, shortcuts[s].flag)) {
                if (ram_train_config_apply(&o.cfg, shortcuts[s].key, argv[++i], a))
                    return cli_fail("train");
                matched = 1;
            }
        if (matched) continue;
        fprintf(stderr, "ramc train: unknown or incomplete option '%s'\n\n%s", a, usage_text);
        return 2;
    }
    if (!o.cfg.train[0] || !o.cfg.output_dir[0]) {
        fprintf(stderr, "ramc train: --train and --output (or train, output_dir in the config) "
                        "are required\n");
        return 2;
    }
    if (!o.cfg.model[0]) {
        /* the backbone defaults to the embedded CLIP (its adapter is not used:
         * training makes a new one); said aloud, as in ramc predict */
        char clip[4096], adapter[4096];
        if (ramc_default_model_paths(clip, adapter, sizeof clip) != RAMC_OK) {
            fprintf(stderr, "ramc train: no --clip given and %s\n", ramc_last_error());
            return 1;
        }
        if (ram_train_config_apply(&o.cfg, "model", clip, "default model")) return cli_fail("train");
        fprintf(stderr, "ramc train: no --clip given: using the embedded default model %s as the "
                        "backbone\n", clip);
    }

    cli_env_clip_params(&o.clip_params);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    o.stop = &stop_requested;

    ramc_dist *dist = NULL;
    int rc = cli_join_processes("train", &dist);
    if (rc) return rc;
    o.dist = dist;
    const int rank = dist_rank(dist), size = dist_size(dist);

    progress p = {quiet, isatty(fileno(stderr)), 0, o.cfg.log_period > 0 ? o.cfg.log_period : 50};
    /* rank 0 speaks for the job; the others only report their errors */
    o.callback = rank == 0 ? on_event : NULL;
    o.user = &p;
    ram_train_summary sum;
    ramc_status st = ram_train_run(&o, &sum);
    if (st && size > 1) {
        /* the other processes may be waiting for this one in an exchange:
         * only stopping the whole job ends them */
        fprintf(stderr, "ramc train: process %d of %d: %s; stopping the job\n", rank, size,
                ramc_last_error());
        fflush(stderr);
        dist_abort(dist, 1);
    }
    dist_finalize(dist);
    if (st) return cli_fail("train");
    /* another process's signal stops this one too: exit as if it was ours */
    const int stop_status = 128 + (stop_requested ? (int)stop_signal : SIGTERM);
    if (rank != 0) return sum.stop_requested ? stop_status : 0;
    if (sum.stop_requested) {
        fprintf(stderr, "ramc train: stopped at step %lld; resume with: ramc train --resume %s\n",
                (long long)sum.global_step, sum.checkpoint);
        return stop_status;
    }
    if (!quiet)
        fprintf(stderr, "ramc train: %s after %lld steps (last loss %.4f); outputs in %s\n",
                sum.interrupted ? "stopped" : "done", (long long)sum.global_step, sum.last_loss,
                o.cfg.output_dir);
    return 0;
}
