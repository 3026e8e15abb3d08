/* ramc synth: writes a seeded synthetic multi-label data set (images,
 * pre-training captions, ZSL/GZSL splits). The work is synth_generate in
 * src/synth; this file parses options and prints progress. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "ramc.h"
#include "synth/synth.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: ramc synth --out DIR [--world v1|v2] [--seed N] [--size S] [--train N] [--test N]\n"
            "                  [--pretrain N] [--unseen-fraction F | --unseen LIST] [--min-objects N]\n"
            "                  [--max-objects N] [--pretrain-max-objects N] [--colours LIST]\n"
            "                  [--shapes LIST] [--strict-pretrain | --no-strict-pretrain]\n"
            "                  [--threads N] [--force] [--quiet]\n"
            "\n"
            "Generates a compositional multi-label data set: S x S RGB images of flat\n"
            "shapes on grey textured backgrounds, each object labelled \"colour shape\"\n"
            "(\"red star\"). Some colour x shape labels are held out as unseen, while every\n"
            "colour and every shape word stays in some seen label.\n"
            "  world v2 (default): 1-8 objects, down to one 8x8 patch at 64x64 (sizes\n"
            "    log-uniform), partial occlusion (each keeps >= half of itself visible),\n"
            "    0-4 unlabelled distractors (strokes in a vocabulary colour, grey\n"
            "    vocabulary shapes), stronger textures and clutter; unseen labels never\n"
            "    occur in pre-training captions (--strict-pretrain), pre-training images\n"
            "    hold at most 4 objects.\n"
            "  world v1: the original world (1-4 large, nearly separate objects, pre-training\n"
            "    on all labels), byte-identical to earlier releases for the same options.\n"
            "Writes into DIR:\n"
            "  images/<split>/NNNNNN.png      pretrain, train, test_zsl, test_gzsl\n"
            "  pretrain.tsv                   image<TAB>caption naming every object\n"
            "  classes_all.txt seen.txt unseen.txt   one label per line, sorted\n"
            "  train.json                     seen classes only (official JSON format)\n"
            "  test_zsl.json                  images with >= 1 unseen object; unseen labels only\n"
            "  test_gzsl.json                 images of all classes; all labels\n"
            "  manifest.json                  seed, counts, vocabulary, split definitions\n"
            "The same seed and options give byte-identical files.\n"
            "\n"
            "  --out DIR             output folder (created; must be empty unless --force)\n"
            "  --world v1|v2         which world (default v2); v1 changes the defaults below\n"
            "                        as marked\n"
            "  --seed N              random seed (default 0)\n"
            "  --size S              image side in pixels, %d-%d (default 64)\n"
            "  --pretrain N          pre-training images with captions (default 20000)\n"
            "  --train N             training images, seen classes only (default 8000)\n"
            "  --test N              images in each of test_zsl and test_gzsl (default 2000)\n"
            "  --unseen-fraction F   share of labels held out, 0 < F < 1 (default 0.25)\n"
            "  --unseen LIST         the held-out labels, comma-separated (\"red star,blue ring\")\n"
            "  --min-objects N       objects per image, at least (default 1)\n"
            "  --max-objects N       objects per image, at most, <= %d (default 8; v1: 4, <= 6)\n"
            "  --pretrain-max-objects N  at most N objects per pre-training image (default:\n"
            "                        4 in v2, --max-objects in v1)\n"
            "  --colours LIST        colours to use (default red,green,blue,yellow,purple,orange,\n"
            "                        white,black; also pink, cyan, brown)\n"
            "  --shapes LIST         shapes to use (default circle,square,triangle,star,ring,cross,\n"
            "                        diamond,heart; also hexagon)\n"
            "  --strict-pretrain     pre-training images hold seen labels only: unseen labels\n"
            "                        never occur as a phrase, only their words separately\n"
            "                        (default in v2)\n"
            "  --no-strict-pretrain  pre-training draws from all labels, as web data does\n"
            "                        (default in v1)\n"
            "  --threads N           worker threads (default: one per CPU, at most 16)\n"
            "  --objects             also write objects.jsonl: per image, each object's label,\n"
            "                        centre and radius in pixels, and whether it is labelled\n"
            "  --force               write into a non-empty DIR (files are replaced, none removed)\n"
            "  --quiet               no progress on stderr\n"
            "Counts are at most %d per split.\n",
            SYNTH_MIN_SIZE, SYNTH_MAX_SIZE, SYNTH_MAX_OBJECTS, SYNTH_MAX_IMAGES);
}

static int bad_usage(const char *fmt, const char *arg) {
    fprintf(stderr, "ramc synth: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nRun 'ramc synth --help' for the options.\n");
    return 2;
}

/* A whole-string integer in [lo, hi]. */
static int parse_long(const char *s, long long lo, long long hi, long long *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end || errno || v < lo || v > hi) return 0;
    *out = v;
    return 1;
}

typedef struct {
    int enabled, tty;
    time_t started, last;
} progress_state;

/* At most one line a second (and each split's last), rewritten in place on
 * a terminal, one line each in a log. */
static void on_progress(const char *split, long done, long total, void *user) {
    progress_state *p = user;
    if (!p->enabled) return;
    time_t now = time(NULL);
    if (done != total && now == p->last) return;
    p->last = now;
    fprintf(stderr, "%sramc synth: %-9s %ld/%ld%s", p->tty ? "\r" : "", split, done, total,
            p->tty && done != total ? "" : "\n");
    fflush(stderr);
}

int cmd_synth(int argc, char **argv) {
    /* The world sets the defaults of the other options, so it is read first. */
    int world = 2;
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--world")) {
            const char *w = argv[i + 1];
            if (!strcmp(w, "v1") || !strcmp(w, "1")) world = 1;
            else if (!strcmp(w, "v2") || !strcmp(w, "2")) world = 2;
            else return bad_usage("invalid --world '%s' (want v1 or v2)", w);
        }
    synth_options o = synth_world_options(world);
    const char *out = NULL;
    int quiet = 0, have_fraction = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--force")) {
            o.force = 1;
            continue;
        }
        if (!strcmp(a, "--strict-pretrain") || !strcmp(a, "--no-strict-pretrain")) {
            o.strict_pretrain = !strcmp(a, "--strict-pretrain");
            continue;
        }
        if (!strcmp(a, "--objects")) {
            o.write_objects = 1;
            continue;
        }
        if (!strcmp(a, "--quiet")) {
            quiet = 1;
            continue;
        }
        static const char *const takes_value[] = {
            "--out", "--seed", "--size", "--train", "--test", "--pretrain", "--unseen-fraction",
            "--unseen", "--min-objects", "--max-objects", "--colours", "--colors", "--shapes",
            "--threads", "--world", "--pretrain-max-objects"};
        int known = 0;
        for (size_t k = 0; k < sizeof takes_value / sizeof *takes_value; k++)
            if (!strcmp(a, takes_value[k])) known = 1;
        if (!known) return bad_usage(a[0] == '-' ? "unknown option '%s'" : "unexpected argument '%s'", a);
        if (i + 1 >= argc) return bad_usage("option '%s' needs a value", a);
        const char *v = argv[++i];
        long long n = 0;
        if (!strcmp(a, "--out")) {
            out = v;
        } else if (!strcmp(a, "--world")) {
            /* read above */
        } else if (!strcmp(a, "--seed")) {
            char *end;
            errno = 0;
            unsigned long long s = strtoull(v, &end, 10);
            if (end == v || *end || errno || v[0] == '-')
                return bad_usage("invalid --seed '%s' (want a non-negative integer)", v);
            o.seed = s;
        } else if (!strcmp(a, "--size")) {
            if (!parse_long(v, SYNTH_MIN_SIZE, SYNTH_MAX_SIZE, &n))
                return bad_usage("invalid --size '%s' (want an integer from 32 to 512)", v);
            o.size = (int)n;
        } else if (!strcmp(a, "--train") || !strcmp(a, "--test") || !strcmp(a, "--pretrain")) {
            if (!parse_long(v, 0, SYNTH_MAX_IMAGES, &n))
                return bad_usage("invalid count '%s' (want an integer from 0 to 1000000)", v);
            if (!strcmp(a, "--train")) o.n_train = (long)n;
            else if (!strcmp(a, "--test")) o.n_test = (long)n;
            else o.n_pretrain = (long)n;
        } else if (!strcmp(a, "--unseen-fraction")) {
            char *end;
            errno = 0;
            double f = strtod(v, &end);
            if (end == v || *end || errno || !(f > 0 && f < 1))
                return bad_usage("invalid --unseen-fraction '%s' (want a number in (0, 1))", v);
            o.unseen_fraction = f;
            have_fraction = 1;
        } else if (!strcmp(a, "--unseen")) {
            o.unseen_list = v;
        } else if (!strcmp(a, "--min-objects") || !strcmp(a, "--max-objects") ||
                   !strcmp(a, "--pretrain-max-objects")) {
            int most = world == 1 ? SYNTH_MAX_OBJECTS_V1 : SYNTH_MAX_OBJECTS;
            if (!parse_long(v, 1, most, &n)) {
                char msg[96];
                snprintf(msg, sizeof msg, "invalid object count '%%s' (want an integer from 1 to %d in world v%d)",
                         most, world);
                return bad_usage(msg, v);
            }
            if (!strcmp(a, "--min-objects")) o.min_objects = (int)n;
            else if (!strcmp(a, "--max-objects")) o.max_objects = (int)n;
            else o.pretrain_max_objects = (int)n;
        } else if (!strcmp(a, "--colours") || !strcmp(a, "--colors")) {
            o.colours = v;
        } else if (!strcmp(a, "--shapes")) {
            o.shapes = v;
        } else {
            if (!parse_long(v, 1, 256, &n)) return bad_usage("invalid --threads '%s' (want 1 to 256)", v);
            o.threads = (int)n;
        }
    }
    if (!out) return bad_usage("%s", "no output folder given (--out DIR)");
    if (have_fraction && o.unseen_list) return bad_usage("%s", "--unseen-fraction and --unseen are exclusive");
    if (o.min_objects > o.max_objects) {
        /* Only --min-objects given above the default maximum: raise the maximum. */
        int max_given = 0;
        for (int i = 1; i < argc; i++) max_given |= !strcmp(argv[i], "--max-objects");
        if (max_given) return bad_usage("%s", "--min-objects is larger than --max-objects");
        o.max_objects = o.min_objects;
    }
    /* The same for the pre-training cap: a default cap below --min-objects
     * (v2's 4) follows it; a given one is checked by the plan. */
    if (o.pretrain_max_objects && o.pretrain_max_objects < o.min_objects) {
        int given = 0;
        for (int i = 1; i < argc; i++) given |= !strcmp(argv[i], "--pretrain-max-objects");
        if (!given) o.pretrain_max_objects = o.min_objects;
    }
    /* Likewise a cap above --max-objects. */
    if (o.pretrain_max_objects > o.max_objects) {
        int given = 0;
        for (int i = 1; i < argc; i++) given |= !strcmp(argv[i], "--pretrain-max-objects");
        if (!given) o.pretrain_max_objects = o.max_objects;
    }
    /* Options the parser cannot see alone (vocabulary names, the holdout)
     * are bad usage too, and are found before anything is written. */
    synth_plan *plan = malloc(sizeof *plan);
    if (!plan) {
        fprintf(stderr, "ramc synth: out of memory\n");
        return 1;
    }
    if (synth_plan_make(&o, plan) != RAMC_OK) {
        free(plan);
        fprintf(stderr, "ramc synth: %s\nRun 'ramc synth --help' for the options.\n", ramc_last_error());
        return 2;
    }
    int n_classes = synth_vocab_classes(&plan->vocab), n_unseen = plan->n_unseen;
    free(plan);
    long total = o.n_pretrain + o.n_train + 2 * o.n_test;
    progress_state ps = {!quiet && total >= 1000, isatty(2), time(NULL), time(NULL)};
    o.progress = on_progress;
    o.user = &ps;
    if (synth_generate(out, &o) != RAMC_OK) return cli_fail("synth");
    if (!quiet)
        fprintf(stderr, "ramc synth: wrote %ld images to %s (%d labels: %d seen, %d unseen) in %lds\n",
                total, out, n_classes, n_classes - n_unseen, n_unseen, (long)(time(NULL) - ps.started));
    return 0;
}
