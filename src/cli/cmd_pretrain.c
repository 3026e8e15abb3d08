/* ramc pretrain-clip: contrastive CLIP pre-training from scratch on
 * image<TAB>caption pairs (docs/pretrain.md). Parses the options, handles
 * signals and prints progress; the work is pretrain_clip in the library. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "train/pretrain.h"

static const char *usage_text =
    "usage: ramc pretrain-clip --data DIR_OR_TSV --out OUT_DIR [options]\n"
    "\n"
    "Trains a small CLIP from scratch on image<TAB>caption lines (DIR/pretrain.tsv,\n"
    "image paths relative to the TSV's folder): both towers, symmetric InfoNCE with\n"
    "a learnable logit scale, AdamW with linear warm-up and cosine decay per step.\n"
    "Writes OUT_DIR/clip.safetensors (OpenAI names), vocab.json + merges.txt (the\n"
    "captions' own BPE vocabulary), metrics.json, README.txt, checkpoint.safetensors.\n"
    "\n"
    "model:\n"
    "  --image-size N     input size (64)           --patch N          patch (8)\n"
    "  --vision-width N   (128)   --vision-layers N (4)   --vision-heads N (width/64)\n"
    "  --text-width N     (64)    --text-layers N   (4)   --text-heads N   (width/64)\n"
    "  --embed N          joint embedding (64)      --context N        tokens (77)\n"
    "training:\n"
    "  --epochs N (2)  --batch N (128)  --lr X (5e-4)  --wd X (0.1)\n"
    "  --warmup-steps N   (default 5% of all steps)  --seed S (0)\n"
    "  --holdout X        fraction of pairs held out for retrieval (0.1, at most 1000)\n"
    "  --workers N        image decoding threads (1)\n"
    "  --checkpoint-every N  steps between checkpoints (default: each epoch)\n"
    "  --max-steps N      stop after N steps (with a checkpoint)\n"
    "  --resume CKPT      continue from OUT_DIR/checkpoint.safetensors (same data,\n"
    "                     --seed, --batch and model options)\n"
    "  --quiet            no progress lines\n"
    "label contrast (optional, docs/pretrain.md):\n"
    "  --labels-file FILE one label per line (# comments); every image is also\n"
    "                     scored against all their prompts, the labels its caption\n"
    "                     names (whole words, any case) being the positives\n"
    "  --label-weight X   weight of that term in the loss (1)\n"
    "  --template T       prompt with one {} (default \"A photo of a {}.\")\n"
    "\n"
    "The head counts are stored in clip.safetensors' metadata, which every command\n"
    "reads when not given --vision-heads/--text-heads. Ctrl-C writes a checkpoint\n"
    "and stops.\n";

static volatile sig_atomic_t stop_requested;
static void on_signal(int sig) {
    (void)sig;
    stop_requested = 1;
}

typedef struct {
    int quiet, tty, labels;
    int64_t last_printed;
} progress_state;

static void progress(void *user, const pretrain_progress *p) {
    progress_state *ps = user;
    if (ps->quiet) return;
    /* a line per ~1% of the run, every epoch end and checkpoint; on a
     * terminal the line in between is redrawn in place */
    int64_t every = p->total_steps / 100 > 0 ? p->total_steps / 100 : 1;
    int line = p->epoch_end || p->step % every == 0 || p->step == p->total_steps;
    if (!line && !ps->tty) return;
    fprintf(stderr,
            "%sstep %lld/%lld  epoch %d/%d  loss %.4f (epoch avg %.4f)  acc %.2f  lr %.2e  "
            "scale %.1f  %.1f img/s",
            ps->tty ? "\r" : "", (long long)p->step, (long long)p->total_steps, p->epoch, p->epochs,
            p->loss, p->loss_avg, p->batch_acc, p->lr, exp(p->logit_scale), p->images_per_s);
    if (ps->labels) fprintf(stderr, "  label loss %.4f acc %.2f", p->label_loss, p->label_acc);
    fprintf(stderr, "%s%s", p->checkpointed ? "  [checkpoint]" : "", line ? "\n" : "");
    fflush(stderr);
}

static int parse_int(const char *s, long lo, long hi, long *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < lo || v > hi) return 0;
    *out = v;
    return 1;
}

static int parse_double(const char *s, double *out) {
    char *end;
    double v = strtod(s, &end);
    if (!*s || *end || !(v == v)) return 0;
    *out = v;
    return 1;
}

int cmd_pretrain(int argc, char **argv) {
    pretrain_options o = pretrain_default_options();
    progress_state ps = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage_text, stdout);
            return 0;
        }
        if (!strcmp(a, "--quiet")) {
            ps.quiet = 1;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "ramc pretrain-clip: %s needs a value (or is unknown)\n\n%s", a, usage_text);
            return 2;
        }
        const char *v = argv[++i];
        long n = 0;
        double x = 0;
        int ok = 1;
        struct {
            const char *name;
            int *dst;
            long lo, hi;
        } ints[] = {{"--image-size", &o.image_size, 1, 4096},   {"--patch", &o.patch_size, 1, 1024},
                    {"--vision-width", &o.vision_width, 1, 8192}, {"--vision-layers", &o.vision_layers, 1, 256},
                    {"--vision-heads", &o.vision_heads, 1, 1024}, {"--text-width", &o.text_width, 1, 8192},
                    {"--text-layers", &o.text_layers, 1, 256},  {"--text-heads", &o.text_heads, 1, 1024},
                    {"--embed", &o.embed_dim, 1, 8192},         {"--context", &o.context_length, 2, 4096},
                    {"--epochs", &o.epochs, 1, 1000000},        {"--batch", &o.batch, 2, 65536},
                    {"--workers", &o.workers, 0, 64}};
        int matched = 0;
        for (size_t k = 0; k < sizeof ints / sizeof ints[0]; k++)
            if (!strcmp(a, ints[k].name)) {
                matched = 1;
                ok = parse_int(v, ints[k].lo, ints[k].hi, &n);
                if (ok) *ints[k].dst = (int)n;
            }
        if (matched) {
        } else if (!strcmp(a, "--data")) o.data = v;
        else if (!strcmp(a, "--out")) o.out_dir = v;
        else if (!strcmp(a, "--resume")) o.resume = v;
        else if (!strcmp(a, "--labels-file")) o.labels_file = v;
        else if (!strcmp(a, "--template")) o.template_str = v;
        else if (!strcmp(a, "--label-weight"))
            ok = parse_double(v, &o.label_weight) && o.label_weight >= 0 && o.label_weight <= 1e6;
        else if (!strcmp(a, "--lr")) ok = parse_double(v, &o.lr) && o.lr > 0;
        else if (!strcmp(a, "--wd")) ok = parse_double(v, &o.weight_decay) && o.weight_decay >= 0;
        else if (!strcmp(a, "--holdout")) ok = parse_double(v, &o.holdout) && o.holdout >= 0 && o.holdout < 1;
        else if (!strcmp(a, "--warmup-steps")) ok = parse_int(v, 0, 1L << 40, &n), o.warmup_steps = n;
        else if (!strcmp(a, "--checkpoint-every")) ok = parse_int(v, 0, 1L << 40, &n), o.checkpoint_every = n;
        else if (!strcmp(a, "--max-steps")) ok = parse_int(v, 0, 1L << 40, &n), o.max_steps = n;
        else if (!strcmp(a, "--seed")) ok = parse_double(v, &x) && x >= 0 && x < 1.8e19, o.seed = (uint64_t)x;
        else {
            fprintf(stderr, "ramc pretrain-clip: unknown option %s\n\n%s", a, usage_text);
            return 2;
        }
        if (!ok) {
            fprintf(stderr, "ramc pretrain-clip: bad value '%s' for %s\n", v, a);
            return 2;
        }
    }
    if (!o.data || !o.out_dir) {
        fprintf(stderr, "ramc pretrain-clip: --data and --out are required\n\n%s", usage_text);
        return 2;
    }
    ps.tty = isatty(2);
    ps.labels = o.labels_file != NULL;
    o.progress = progress, o.progress_user = &ps;
    o.stop = &stop_requested;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    pretrain_result r;
    if (pretrain_clip(&o, &r) != RAMC_OK) return cli_fail("pretrain-clip");
    if (r.interrupted) {
        fprintf(stderr,
                "ramc pretrain-clip: stopped after step %lld; continue with --resume "
                "%s/checkpoint.safetensors\n",
                (long long)r.steps, o.out_dir);
        return stop_requested ? 130 : 0;
    }
    printf("pairs %d (train %d, held out %d), vocabulary %d, steps %lld, %.1f s, %.1f images/s\n",
           r.n_pairs, r.n_train, r.n_eval, r.vocab_size, (long long)r.steps, r.seconds, r.images_per_s);
    printf("loss: first epoch %.4f, last epoch %.4f\n", r.first_loss, r.final_loss);
    if (r.n_labels)
        printf("labels %d: %d of %d training captions name at least one\n", r.n_labels,
               r.n_labelled, r.n_train);
    if (r.n_eval > 0)
        printf("held-out retrieval top-1 (%d pairs): image->text %.3f, text->image %.3f (chance %.3f)\n",
               r.n_eval, r.i2t_top1, r.t2i_top1, r.chance);
    printf("wrote %s/clip.safetensors, vocab.json, merges.txt, metrics.json, README.txt\n", o.out_dir);
    return 0;
}
