/* ramc bench: speed and peak memory of the main workloads on a random CLIP
 * (docs/performance.md).
 *
 * Each scenario runs in a child process forked after the model is built:
 * the child shares the weights (copy-on-write, never written) and counts
 * them in its resident set, while what one scenario allocates cannot raise
 * another's peak. The child sends its result back through a pipe. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "bench/bench.h"
#include "bench/roof.h"
#include "core/clock.h"
#include "cli/cli.h"
#include "kernels/kernels.h"

/* baseline.md's per-image FLOP: plain ViT-B/16 at 224, and RAM's vision tower */
#define FLOP_VIT_B16 35.1e9
#define FLOP_RAM_B16 44e9

static void usage(FILE *f) {
    fprintf(f,
            "usage: ramc bench [--size vitb16|tiny] [--repeat N] [--warmup N] [--threads N]\n"
            "                  [--scenarios a,b,...] [--seed N] [--bf16] [--no-pack] [--no-fork]\n"
            "                  [--cache-labels N] [--no-roof] [--json] [--list]\n\n"
            "Times the main workloads on a CLIP with random weights (same cost as real ones;\n"
            "no files needed). Each scenario runs --warmup untimed calls, then --repeat\n"
            "timed ones (default 3 and 1), and reports images/s (or prompts/s): median,\n"
            "min, max; GFLOP/s (35.1 GFLOP per ViT-B/16 image, 44 for RAM); the peak\n"
            "resident memory of the scenario's own process (each runs in a forked child\n"
            "unless --no-fork); and the official implementation's figure with the ratio.\n"
            "It also prints the CPU, its vector extensions and the roof: this build's\n"
            "best float32 (and bf16) GFLOP/s on a 2048^3 linear layer, measured now\n"
            "(a few seconds; --no-roof skips it); each scenario then reports its\n"
            "GFLOP/s as a share of that roof, the only figure comparable across machines.\n"
            "--threads sets the threads (OpenMP and the GEMM backend) (default: all %ld cores).\n"
            "--bf16 runs the model's products in bf16 (as ramc_clip_params.bf16),\n"
            "--no-pack runs float32 on the stored weights (ramc_clip_params.pack_weights = 0).\n"
            "--cache-labels N: labels of the label_cache_10k scenario (default 10000): the\n"
            "random model and an adapter are written to a temporary folder (TMPDIR), then\n"
            "N distinct labels are encoded through ramc_labels_encode_cached into an empty\n"
            "cache (cold: text tower) and again (warm: every label read from the cache),\n"
            "each with the model loaded afresh; labels/s is the warm rate.\n"
            "--json prints one JSON object (schema in docs/performance.md).\n",
            sysconf(_SC_NPROCESSORS_ONLN));
}

typedef struct {
    int ok;
    bench_result r;
    double peak_rss_mb;
    int peak_reset; /* 1: VmHWM was reset at the start of the scenario */
    char error[512];
} outcome;

typedef struct {
    int tty, index, count;
} progress_state;

static void on_progress(void *user, const char *name, int done, int total, double last_s) {
    const progress_state *p = user;
    char line[200];
    if (done < total)
        snprintf(line, sizeof line, "bench [%d/%d] %s: run %d/%d%s", p->index + 1, p->count, name,
                 done + 1, total, "");
    else
        snprintf(line, sizeof line, "bench [%d/%d] %s: done", p->index + 1, p->count, name);
    char last[48] = "";
    if (done > 0) snprintf(last, sizeof last, " (last %.2f s)", last_s);
    if (p->tty)
        fprintf(stderr, "\r%s%s\033[K%s", line, last, done == total ? "\n" : "");
    else
        fprintf(stderr, "%s%s\n", line, last);
    fflush(stderr);
}

static void run_here(const ramc_clip *m, int sc, const bench_options *opt, int threads,
                     outcome *o) {
    memset(o, 0, sizeof *o);
    bench_set_threads(threads);
    o->peak_reset = bench_reset_peak_rss() == 0;
    if (bench_run(m, sc, opt, &o->r) == RAMC_OK) {
        o->ok = 1;
    } else {
        snprintf(o->error, sizeof o->error, "%s", ramc_last_error());
    }
    o->peak_rss_mb = bench_peak_rss_mb();
}

/* Runs scenario sc in a forked child; 0 on success. */
static int run_forked(const ramc_clip *m, int sc, const bench_options *opt, int threads,
                      outcome *o) {
    int fd[2];
    memset(o, 0, sizeof *o);
    if (pipe(fd) != 0) {
        snprintf(o->error, sizeof o->error, "pipe: %s", strerror(errno));
        return -1;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(o->error, sizeof o->error, "fork: %s", strerror(errno));
        close(fd[0]), close(fd[1]);
        return -1;
    }
    if (pid == 0) {
        close(fd[0]);
        outcome mine;
        run_here(m, sc, opt, threads, &mine);
        const char *p = (const char *)&mine;
        size_t left = sizeof mine;
        while (left > 0) {
            ssize_t w = write(fd[1], p, left);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) _exit(3);
            p += w, left -= (size_t)w;
        }
        close(fd[1]);
        _exit(mine.ok ? 0 : 1);
    }
    close(fd[1]);
    char *p = (char *)o;
    size_t got = 0;
    while (got < sizeof *o) {
        ssize_t r = read(fd[0], p + got, sizeof *o - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (got != sizeof *o) {
        memset(o, 0, sizeof *o);
        if (WIFSIGNALED(status))
            snprintf(o->error, sizeof o->error,
                     "the scenario's process was killed by signal %d (out of memory?)",
                     WTERMSIG(status));
        else
            snprintf(o->error, sizeof o->error, "the scenario's process exited with status %d",
                     WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        return -1;
    }
    return o->ok ? 0 : -1;
}

/* Comma-separated names -> indices; 0 on success. */
static int parse_scenarios(const char *list, int *idx, int *n) {
    *n = 0;
    char *copy = strdup(list);
    if (!copy) return -1;
    int rc = 0;
    for (char *save = NULL, *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int i = bench_scenario_find(t);
        if (i < 0) {
            fprintf(stderr, "ramc bench: unknown scenario '%s' (see ramc bench --list)\n", t);
            rc = -1;
            break;
        }
        int dup = 0;
        for (int k = 0; k < *n; k++) dup |= idx[k] == i;
        if (!dup) idx[(*n)++] = i;
    }
    free(copy);
    return rc == 0 && *n == 0 ? -1 : rc;
}

static int parse_int(const char *s, int lo, int hi, int *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return -1;
    *out = (int)v;
    return 0;
}

static cJSON *json_num_or_null(double v) { return v > 0 ? cJSON_CreateNumber(v) : cJSON_CreateNull(); }

/* bf16 only runs on packed weights (RAMC_PACK=0 leaves everything float32). */
static const char *precision_name(int bf16, int packed) { return packed && bf16 ? "bf16" : "f32"; }

/* The roof a scenario is measured against: bf16 runs against the bf16
 * probe, everything else against float32; 0 when not measured. */
static double roof_of(const bench_roof *roof, int bf16, int packed) {
    return packed && bf16 ? roof->bf16_gflops : roof->f32_gflops;
}

/* A scenario's share of the roof: RAM scenarios by their RAM FLOP count,
 * the others by theirs (training: the CLIP-equivalent rate). */
static double roof_share(const bench_result *r, double roof) {
    if (!(roof > 0)) return 0;
    return (r->gflops_ram > 0 ? r->gflops_ram : r->gflops) / roof;
}

static void print_json(const char *size, int threads, int bf16, int packed, int repeat, int warmup, int forked,
                       const bench_roof *roof, const int *idx, const outcome *res, int n) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "ramc_version", ramc_version());
    cJSON *mach = cJSON_AddObjectToObject(root, "machine");
    cJSON_AddNumberToObject(mach, "cpus", (double)sysconf(_SC_NPROCESSORS_ONLN));
    cJSON_AddStringToObject(mach, "blas", bench_blas_config());
    cJSON_AddStringToObject(mach, "blas_core", bench_blas_core());
    const char *ct = getenv("OPENBLAS_CORETYPE");
    if (ct) cJSON_AddStringToObject(mach, "openblas_coretype", ct);
    else cJSON_AddNullToObject(mach, "openblas_coretype");
    cJSON_AddNumberToObject(mach, "threads", threads);
    cJSON_AddStringToObject(mach, "gemm", kernels_gemm_backend());
    cJSON_AddStringToObject(mach, "cpu_model", roof->cpu_model);
    cJSON *isa = cJSON_AddObjectToObject(mach, "cpu_flags");
    cJSON_AddBoolToObject(isa, "avx2", roof->avx2);
    cJSON_AddBoolToObject(isa, "avx512f", roof->avx512f);
    cJSON_AddBoolToObject(isa, "avx512_bf16", roof->avx512_bf16);
    cJSON_AddBoolToObject(isa, "amx_tile", roof->amx_tile);
    cJSON *rf = cJSON_AddObjectToObject(mach, "roof_gflops");
    cJSON_AddItemToObject(rf, "f32", json_num_or_null(roof->f32_gflops));
    cJSON_AddItemToObject(rf, "bf16", json_num_or_null(roof->bf16_gflops));
    cJSON_AddNumberToObject(rf, "dim", ROOF_DIM);
    cJSON_AddNumberToObject(rf, "probe_s", roof->probe_s);
    /* ramc's own kernels: the level chosen at run time, the CPU's best, the build */
    cJSON_AddStringToObject(mach, "kernels_isa", kernels_isa_name(kernels_isa_get()));
    cJSON_AddStringToObject(mach, "cpu_isa", kernels_isa_name(kernels_isa_best()));
    cJSON_AddBoolToObject(mach, "cpu_avx512_bf16", kernels_cpu_has_bf16());
    cJSON_AddStringToObject(mach, "build", kernels_build_kind());
    cJSON_AddStringToObject(root, "precision", precision_name(bf16, packed));
    cJSON_AddBoolToObject(root, "packed_weights", packed);
    cJSON_AddStringToObject(root, "size", size);
    cJSON_AddNumberToObject(root, "repeat", repeat);
    cJSON_AddNumberToObject(root, "warmup", warmup);
    cJSON_AddStringToObject(root, "peak_rss_scope", forked ? "process per scenario" : "cumulative");
    /* The stated constants for ViT-B/16; for other sizes, the count from the
     * shapes that the scenarios used. */
    double fpi = 0, fpr = 0;
    for (int k = 0; k < n; k++) {
        const bench_scenario *sc = bench_scenario_get(idx[k]);
        if (!res[k].ok) continue;
        if (!fpi && !strcmp(sc->unit, "images/s")) fpi = res[k].r.flop_per_unit;
        if (!fpr && res[k].r.flop_per_unit_ram > 0 && sc->kind == BENCH_KIND_RAM)
            fpr = res[k].r.flop_per_unit_ram;
    }
    cJSON_AddItemToObject(root, "flop_per_image", json_num_or_null(fpi));
    cJSON_AddItemToObject(root, "flop_per_image_ram", json_num_or_null(fpr));
    cJSON *arr = cJSON_AddArrayToObject(root, "scenarios");
    for (int k = 0; k < n; k++) {
        const bench_scenario *sc = bench_scenario_get(idx[k]);
        const bench_result *r = &res[k].r;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", sc->name);
        cJSON_AddNumberToObject(o, "batch", sc->batch);
        cJSON_AddNumberToObject(o, "labels", r->cache_labels ? r->cache_labels : sc->labels);
        cJSON_AddStringToObject(o, "unit", sc->unit);
        if (!res[k].ok) {
            cJSON_AddStringToObject(o, "error", res[k].error);
            cJSON_AddItemToArray(arr, o);
            continue;
        }
        cJSON_AddNumberToObject(o, "median", r->median);
        cJSON_AddNumberToObject(o, "min", r->min);
        cJSON_AddNumberToObject(o, "max", r->max);
        cJSON_AddNumberToObject(o, "runs", r->runs);
        cJSON_AddNumberToObject(o, "flop_per_unit", r->flop_per_unit);
        cJSON_AddNumberToObject(o, "gflops", r->gflops);
        if (r->gflops_ram > 0) cJSON_AddNumberToObject(o, "gflops_ram", r->gflops_ram);
        cJSON_AddItemToObject(o, "roof_share",
                              json_num_or_null(roof_share(r, roof_of(roof, bf16, packed))));
        cJSON_AddItemToObject(o, "peak_rss_mb", json_num_or_null(res[k].peak_rss_mb));
        cJSON_AddNumberToObject(o, "setup_s", r->setup_s);
        if (r->model_only > 0) {
            /* predict_folder_e2e: the model alone on the same images, and end to end over it */
            cJSON_AddNumberToObject(o, "model_only", r->model_only);
            cJSON_AddNumberToObject(o, "e2e_ratio", r->median / r->model_only);
        }
        cJSON *ph = cJSON_AddObjectToObject(o, "phases_s");
        for (int p = 0; p < r->n_phases; p++) cJSON_AddNumberToObject(ph, r->phase_name[p], r->phase_s[p]);
        if (sc->kind == BENCH_KIND_LABEL_CACHE) {
            cJSON *hits = cJSON_AddObjectToObject(o, "cache_hits");
            cJSON_AddNumberToObject(hits, "cold", r->cold_hits);
            cJSON_AddNumberToObject(hits, "warm", r->warm_hits);
        }
        /* the official figures are for ViT-B/16 only */
        const int full = !strcmp(size, "vitb16");
        cJSON_AddItemToObject(o, "official", json_num_or_null(full ? sc->official : 0));
        cJSON_AddItemToObject(o, "official_peak_rss_mb", json_num_or_null(full ? sc->official_rss_mb : 0));
        cJSON_AddItemToObject(o, "ratio", json_num_or_null(full && sc->official > 0 ? r->median / sc->official : 0));
        cJSON_AddItemToArray(arr, o);
    }
    char *s = cJSON_Print(root);
    if (s) printf("%s\n", s);
    free(s);
    cJSON_Delete(root);
}

static void print_table(const char *size, int threads, int bf16, int packed, const bench_roof *roof,
                        const int *idx, const outcome *res, int n) {
    const int full = !strcmp(size, "vitb16");
    char isa[128];
    printf("ramc %s bench: size %s, %ld CPUs, %d threads, GEMM %s (OpenBLAS %s kernels), %s%s\n",
           ramc_version(), size, sysconf(_SC_NPROCESSORS_ONLN), threads, kernels_gemm_backend(),
           bench_blas_core(), precision_name(bf16, packed),
           packed ? ", packed weights" : "");
    printf("kernels %s; build %s\n", kernels_isa_describe(isa, sizeof isa), kernels_build_kind());
    printf("cpu: %s (avx2 %s, avx512f %s, avx512_bf16 %s, amx %s)\n", roof->cpu_model,
           roof->avx2 ? "yes" : "no", roof->avx512f ? "yes" : "no",
           roof->avx512_bf16 ? "yes" : "no", roof->amx_tile ? "yes" : "no");
    if (roof->f32_gflops > 0) {
        printf("roof: %.0f GFLOP/s float32", roof->f32_gflops);
        if (roof->bf16_gflops > 0) printf(", %.0f bf16", roof->bf16_gflops);
        printf(" (%d^3 linear layer, packed weights, %d threads, measured now)\n", ROOF_DIM, threads);
    }
    const double rf = roof_of(roof, bf16, packed);
    printf("%-22s %5s %6s %9s %9s %9s %-9s %8s %8s %6s %9s %9s %6s\n", "scenario", "batch", "labels",
           "median", "min", "max", "unit", "GFLOP/s", "RAM GF/s", "roof%", "peak MB", "official",
           "ratio");
    for (int k = 0; k < n; k++) {
        const bench_scenario *sc = bench_scenario_get(idx[k]);
        const bench_result *r = &res[k].r;
        if (!res[k].ok) {
            printf("%-22s %5d %6d  FAILED: %s\n", sc->name, sc->batch, sc->labels, res[k].error);
            continue;
        }
        char ram[16] = "-", off[16] = "-", ratio[16] = "-", share[16] = "-";
        if (r->gflops_ram > 0) snprintf(ram, sizeof ram, "%.1f", r->gflops_ram);
        if (rf > 0) snprintf(share, sizeof share, "%.0f", 100.0 * roof_share(r, rf));
        if (full && sc->official > 0) {
            snprintf(off, sizeof off, "%.2f", sc->official);
            snprintf(ratio, sizeof ratio, "%.2f", r->median / sc->official);
        }
        printf("%-22s %5d %6d %9.3f %9.3f %9.3f %-9s %8.1f %8s %6s %9.0f %9s %6s\n", sc->name,
               sc->batch, r->cache_labels ? r->cache_labels : sc->labels, r->median, r->min, r->max,
               sc->unit, r->gflops, ram, share, res[k].peak_rss_mb, off, ratio);
    }
    for (int k = 0; k < n; k++) {
        const bench_result *r = &res[k].r;
        if (!res[k].ok || r->n_phases < 2) continue;
        printf("  %s phases (median s per call):", bench_scenario_get(idx[k])->name);
        for (int p = 0; p < r->n_phases; p++) printf(" %s %.3f", r->phase_name[p], r->phase_s[p]);
        if (bench_scenario_get(idx[k])->kind == BENCH_KIND_LABEL_CACHE)
            printf("; cache hits: cold %d, warm %d of %d", r->cold_hits, r->warm_hits, r->cache_labels);
        printf("\n");
    }
    for (int k = 0; k < n; k++) {
        const bench_result *r = &res[k].r;
        if (!res[k].ok || r->model_only <= 0) continue;
        const bench_scenario *sc = bench_scenario_get(idx[k]);
        printf("  %s: end to end %.3f %s, the model alone %.3f %s on the same images at batch %d: "
               "ratio %.3f (goal >= 0.90)\n",
               sc->name, r->median, sc->unit, r->model_only, sc->unit, sc->batch, r->median / r->model_only);
    }
}

int cmd_bench(int argc, char **argv) {
    const char *size = "vitb16", *list = NULL;
    int repeat = 3, warmup = 1, json = 0, fork_each = 1, bf16 = 0, pack = 1, probe_roof = 1;
    int cache_labels = 0;
    int threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    long long seed = 1;
    if (threads < 1) threads = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--list")) {
            for (int k = 0; k < bench_scenario_count(); k++)
                printf("%-22s %s\n", bench_scenario_get(k)->name, bench_scenario_get(k)->description);
            return 0;
        } else if (!strcmp(a, "--json")) {
            json = 1;
        } else if (!strcmp(a, "--bf16")) {
            bf16 = 1;
        } else if (!strcmp(a, "--no-pack")) {
            pack = 0;
        } else if (!strcmp(a, "--no-fork")) {
            fork_each = 0;
        } else if (!strcmp(a, "--no-roof")) {
            probe_roof = 0;
        } else if (!strcmp(a, "--size") && v) {
            size = argv[++i];
            if (strcmp(size, "vitb16") && strcmp(size, "tiny")) {
                fprintf(stderr, "ramc bench: --size must be vitb16 or tiny\n");
                return 2;
            }
        } else if (!strcmp(a, "--scenarios") && v) {
            list = argv[++i];
        } else if ((!strcmp(a, "--repeat") || !strcmp(a, "--warmup") || !strcmp(a, "--threads") ||
                    !strcmp(a, "--seed") || !strcmp(a, "--cache-labels")) && v) {
            int x, lo = !strcmp(a, "--warmup") || !strcmp(a, "--seed") ? 0 : 1;
            if (parse_int(v, lo, 1000000, &x)) {
                fprintf(stderr, "ramc bench: %s needs an integer >= %d\n", a, lo);
                return 2;
            }
            i++;
            if (!strcmp(a, "--repeat")) repeat = x;
            else if (!strcmp(a, "--warmup")) warmup = x;
            else if (!strcmp(a, "--threads")) threads = x;
            else if (!strcmp(a, "--cache-labels")) cache_labels = x;
            else seed = x;
        } else {
            fprintf(stderr, "ramc bench: unknown or incomplete option '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    int n = bench_scenario_count(), *idx = calloc((size_t)n, sizeof *idx);
    outcome *res = calloc((size_t)n, sizeof *res);
    if (!idx || !res) {
        free(idx), free(res);
        fprintf(stderr, "ramc bench: out of memory\n");
        return 1;
    }
    if (list) {
        if (parse_scenarios(list, idx, &n)) {
            free(idx), free(res);
            return 2;
        }
    } else {
        for (int k = 0; k < n; k++) idx[k] = k;
    }

    const bench_size bs = !strcmp(size, "tiny") ? BENCH_SIZE_TINY : BENCH_SIZE_VITB16;
    ramc_clip_info shape = bench_clip_shape(bs);
    ramc_clip *m = NULL;
    double t0 = monotonic_seconds();
    fprintf(stderr, "bench: building a random %s CLIP...\n", size);
    if (clip_create_random(&shape, (uint64_t)seed, &m) != RAMC_OK) {
        free(idx), free(res);
        return cli_fail("bench");
    }
    ramc_clip_params cp = ramc_clip_default_params();
    cp.bf16 = bf16, cp.pack_weights = pack;
    cli_env_clip_params(&cp);
    bf16 = cp.bf16;
    const int packed = clip_pack_as_loaded(m, &cp);
    fprintf(stderr, "bench: built in %.1f s; %d scenarios, %d warm-up + %d timed runs each, %d threads\n",
            monotonic_seconds() - t0, n, warmup, repeat, threads);

    bench_options opt = {.warmup = warmup, .repeat = repeat, .seed = (uint64_t)seed,
                         .frozen = packed, .bf16 = bf16, .cache_labels = cache_labels,
                         .tmp_dir = getenv("TMPDIR")};
    if (bs == BENCH_SIZE_VITB16) opt.flop_per_image = FLOP_VIT_B16, opt.flop_per_image_ram = FLOP_RAM_B16;
    progress_state ps = {.tty = isatty(2), .count = n};
    opt.progress = on_progress;
    opt.progress_user = &ps;
    int failed = 0;
    for (int k = 0; k < n; k++) {
        ps.index = k;
        int rc;
        if (fork_each) {
            rc = run_forked(m, idx[k], &opt, threads, &res[k]);
        } else {
            run_here(m, idx[k], &opt, threads, &res[k]);
            rc = res[k].ok ? 0 : -1;
        }
        const bench_scenario *sc = bench_scenario_get(idx[k]);
        if (rc) {
            failed++;
            fprintf(stderr, "ramc bench: %s: %s\n", sc->name, res[k].error);
        } else {
            /* the result at once, so that a long run interrupted later keeps it */
            fprintf(stderr, "bench: %s: %.3f %s (min %.3f, max %.3f), %.1f GFLOP/s, peak %.0f MB\n",
                    sc->name, res[k].r.median, sc->unit, res[k].r.min, res[k].r.max,
                    res[k].r.gflops, res[k].peak_rss_mb);
        }
    }
    /* The roof, after the scenarios: measured by the same build, threads and
     * machine state. Not before them: the scenarios' processes are forked
     * from this one, and a fork after OpenMP has started its threads hangs
     * the child's first parallel region (libgomp does not survive fork). */
    bench_roof roof;
    if (bench_roof_measure(threads, probe_roof, &roof) != RAMC_OK) {
        ramc_clip_free(m);
        free(idx), free(res);
        return cli_fail("bench");
    }
    if (probe_roof)
        fprintf(stderr, "bench: roof %.0f GFLOP/s float32, %.0f bf16 (%.1f s probe)\n",
                roof.f32_gflops, roof.bf16_gflops, roof.probe_s);

    if (json)
        print_json(size, threads, bf16, packed, repeat, warmup, fork_each, &roof, idx, res, n);
    else
        print_table(size, threads, bf16, packed, &roof, idx, res, n);
    ramc_clip_free(m);
    free(idx), free(res);
    return failed ? 1 : 0;
}
