/* gemm_libs: oneDNN, OpenBLAS, BLIS and libxsmm on the matrix products RAM
 * runs, float32 and bf16, against a plain reference (docs/performance.md,
 * "GEMM libraries"; scripts/gemm_libs.sh writes its table there).
 *
 *   build/gemm_libs [--threads 2,1] [--rounds 3] [--min-time 0.15] [--shapes all|vit|text|tss|SUBSTR]
 *                   [--precision f32,bf16] [--no-roof] [--smoke]
 *
 * Every product is out[M, N] = inp[M, K] @ W[N, K]^T (gemm_libs.h). For each
 * thread count and shape the libraries take turns, in a different order each
 * round (drift and a neighbour's load then favour none); in a round each one
 * prepares (packs W if it packs: untimed), runs once to warm up, is checked
 * against a double-precision reference on 16 sampled rows, then runs until
 * --min-time seconds and at least 3 calls have passed. A round gives the
 * median and the best call; the table shows the median over rounds of the
 * round medians and the best call of all. A library whose result is off
 * (max |out - ref| / max |ref| over the sample above 2e-4, 3e-2 in bf16) is
 * reported WRONG and never wins.
 *
 * --smoke: small shapes with ragged edges (every library's partial blocks),
 * one round, checks only; exit status 1 when a library is wrong (ctest). */
#include <cblas.h>
#include <dnnl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench/roof.h"
#include "core/clock.h"
#include "gemm_libs.h"
#include "kernels/kernels.h"

#define MAX_ROUNDS 16
#define MAX_THREADS_LIST 4
#define SAMPLE_ROWS 16

/* ------------------------------------------------------------ shapes */

typedef struct {
    const char *name;
    const char *what;  /* where RAM runs it */
    int M, K, N;
    int today_packed;  /* 1: ramc runs it on a packed frozen weight; 0: dnnl_sgemm */
} shape;

/* ViT-B/16 at 224: 197 tokens per image, width 768, MLP 3072. Text tower:
 * width 512, MLP 2048, 77-token context, 65 COCO prompts. TSS (src/ram/tss.c,
 * default adapter: hidden H = embed dim 512, gate kernel 3): the 1x1 conv per
 * image (196 patches x 768 -> 512), the 3x3 conv as one im2col GEMM per
 * chunk of 4 images (784 x 9*768 -> 512), the label cross-attention over B*196
 * rows against 65 labels (logits: x 512 -> 65, mixing: x 65 -> 512) and the
 * final 1x1 conv per image (196 x 512 -> 768). TSS weights are trained, so
 * ramc runs them through dnnl_sgemm, not packed. */
static const shape g_shapes[] = {
    {"vit_b8_qkv", "ViT block, batch 8: qkv", 1576, 768, 2304, 1},
    {"vit_b8_attn_out", "ViT block, batch 8: attention out", 1576, 768, 768, 1},
    {"vit_b8_mlp_up", "ViT block, batch 8: MLP up", 1576, 768, 3072, 1},
    {"vit_b8_mlp_down", "ViT block, batch 8: MLP down", 1576, 3072, 768, 1},
    {"vit_b1_qkv", "ViT block, batch 1: qkv", 197, 768, 2304, 1},
    {"vit_b1_attn_out", "ViT block, batch 1: attention out", 197, 768, 768, 1},
    {"vit_b1_mlp_up", "ViT block, batch 1: MLP up", 197, 768, 3072, 1},
    {"vit_b1_mlp_down", "ViT block, batch 1: MLP down", 197, 3072, 768, 1},
    {"text_qkv", "text block, 65 prompts x 77 tokens: qkv", 5005, 512, 1536, 1},
    {"text_attn_out", "text block: attention out", 5005, 512, 512, 1},
    {"text_mlp_up", "text block: MLP up", 5005, 512, 2048, 1},
    {"text_mlp_down", "text block: MLP down", 5005, 2048, 512, 1},
    {"tss_conv1x1", "TSS 1x1 conv, per image", 196, 768, 512, 0},
    {"tss_b8_conv3x3", "TSS 3x3 conv (im2col), 4 images", 784, 6912, 512, 0},
    {"tss_b1_conv3x3", "TSS 3x3 conv (im2col), batch 1", 196, 6912, 512, 0},
    {"tss_b8_label_logits", "TSS label attention logits, batch 8, 65 labels", 1568, 512, 65, 0},
    {"tss_b8_label_mix", "TSS label attention mixing, batch 8, 65 labels", 1568, 65, 512, 0},
    {"tss_b1_label_logits", "TSS label attention logits, batch 1", 196, 512, 65, 0},
    {"tss_final", "TSS final 1x1 conv, per image", 196, 512, 768, 0},
};
#define N_SHAPES ((int)(sizeof g_shapes / sizeof g_shapes[0]))

/* ragged edges: partial blocks in every dimension, odd K */
static const shape g_smoke_shapes[] = {
    {"smoke_a", "ragged", 37, 96, 80, 1},
    {"smoke_b", "ragged, odd K", 70, 65, 130, 0},
    {"smoke_c", "K a multiple of 64", 33, 256, 64, 1},
};
#define N_SMOKE ((int)(sizeof g_smoke_shapes / sizeof g_smoke_shapes[0]))

/* ------------------------------------------------- oneDNN and OpenBLAS */

void openblas_set_num_threads(int);

static void *onednn_packed_prepare_p(const float *W, int N, int K, int bf16) {
    kernels_freeze_weights(W, (size_t)N * K * sizeof(float), bf16, 0);
    return (void *)W;
}
static void *onednn_packed_prepare(const float *W, int M, int N, int K, int threads) {
    (void)M, (void)threads;
    return onednn_packed_prepare_p(W, N, K, 0);
}
static void *onednn_packed_bf16_prepare(const float *W, int M, int N, int K, int threads) {
    (void)M, (void)threads;
    return onednn_packed_prepare_p(W, N, K, 1);
}
/* ramc's linear layer on a frozen weight, as the model runs it */
static int onednn_packed_run(void *p, float *out, const float *inp, const float *W, int M, int N,
                             int K) {
    (void)p;
    return matmul_forward_packed(out, inp, W, NULL, M, K, N, MATMUL_PLAIN);
}
static void onednn_packed_release(void *p) { kernels_thaw_weights(p); }

static char g_dnnl_isa[32];
static const char *onednn_isa(void) {
    const int isa = (int)dnnl_get_effective_cpu_isa();
    const char *name = isa == dnnl_cpu_isa_avx512_core_amx    ? "avx512_core_amx"
                       : isa == dnnl_cpu_isa_avx512_core_bf16 ? "avx512_core_bf16"
                       : isa == dnnl_cpu_isa_avx512_core_vnni ? "avx512_core_vnni"
                       : isa == dnnl_cpu_isa_avx512_core      ? "avx512_core"
                       : isa == dnnl_cpu_isa_avx2_vnni        ? "avx2_vnni"
                       : isa == dnnl_cpu_isa_avx2             ? "avx2"
                                                               : NULL;
    if (name) return name;
    snprintf(g_dnnl_isa, sizeof g_dnnl_isa, "isa 0x%x", isa);
    return g_dnnl_isa;
}

static void *plain_prepare(const float *W, int M, int N, int K, int threads) {
    (void)W, (void)M, (void)N, (void)K, (void)threads;
    return (void *)1;
}
static void plain_release(void *p) { (void)p; }
/* ramc's gemm(): dnnl_sgemm, which repacks W on every call */
static int onednn_sgemm_run(void *p, float *out, const float *inp, const float *W, int M, int N,
                            int K) {
    (void)p;
    gemm(0, 1, M, N, K, 1.0f, inp, K, W, K, 0.0f, out, N);
    return 0;
}

/* ramc holds OpenBLAS's own pool at one thread (gemm.c); here it gets the
 * measurement's threads, and gives them back afterwards. */
static void *openblas_prepare(const float *W, int M, int N, int K, int threads) {
    (void)W, (void)M, (void)N, (void)K;
    openblas_set_num_threads(threads);
    return (void *)1;
}
static int openblas_run(void *p, float *out, const float *inp, const float *W, int M, int N,
                        int K) {
    (void)p;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, inp, K, W, K, 0.0f, out, N);
    return 0;
}
static void openblas_release(void *p) {
    (void)p;
    openblas_set_num_threads(1);
}
static char g_openblas_isa[160];
static const char *openblas_isa(void) {
    snprintf(g_openblas_isa, sizeof g_openblas_isa, "%s (%s)", openblas_get_corename(),
             openblas_get_config());
    return g_openblas_isa;
}

static const gemm_lib lib_onednn_packed = {"oneDNN packed", 0, onednn_packed_prepare,
                                           onednn_packed_run, onednn_packed_release, onednn_isa};
static const gemm_lib lib_onednn_sgemm = {"oneDNN sgemm", 0, plain_prepare, onednn_sgemm_run,
                                          plain_release, onednn_isa};
static const gemm_lib lib_openblas = {"OpenBLAS", 0, openblas_prepare, openblas_run,
                                      openblas_release, openblas_isa};
static const gemm_lib lib_onednn_packed_bf16 = {"oneDNN packed bf16", 1, onednn_packed_bf16_prepare,
                                                onednn_packed_run, onednn_packed_release, onednn_isa};

/* Column 0 of each precision is ramc's packed path; the others are compared to it. */
static const gemm_lib *const g_libs_f32[] = {&lib_onednn_packed, &lib_onednn_sgemm, &lib_openblas,
                                             &gemm_lib_blis, &gemm_lib_xsmm_brgemm,
                                             &gemm_lib_xsmm_omp};
static const gemm_lib *const g_libs_bf16[] = {&lib_onednn_packed_bf16, &gemm_lib_xsmm_brgemm_bf16};
#define N_LIBS_F32 ((int)(sizeof g_libs_f32 / sizeof g_libs_f32[0]))
#define N_LIBS_BF16 ((int)(sizeof g_libs_bf16 / sizeof g_libs_bf16[0]))
#define MAX_LIBS 8

/* oneDNN's own name for the implementation it picks for this shape (e.g.
 * brg:avx512_core_amx), for a matmul made the way gemm_packed.c makes it. */
static void onednn_impl(const shape *s, int bf16, char *buf, size_t cap) {
    snprintf(buf, cap, "?");
    static dnnl_engine_t eng;
    if (!eng && dnnl_engine_create(&eng, dnnl_cpu, 0) != dnnl_success) return;
    dnnl_memory_desc_t src, wei, dst;
    dnnl_dims_t ds = {s->M, s->K}, dw = {s->K, s->N}, dd = {s->M, s->N};
    dnnl_memory_desc_init_by_tag(&src, 2, ds, bf16 ? dnnl_bf16 : dnnl_f32, dnnl_ab);
    dnnl_memory_desc_init_by_tag(&wei, 2, dw, bf16 ? dnnl_bf16 : dnnl_f32, dnnl_format_tag_any);
    dnnl_memory_desc_init_by_tag(&dst, 2, dd, dnnl_f32, dnnl_ab);
    dnnl_matmul_desc_t md;
    dnnl_primitive_desc_t pd;
    if (dnnl_matmul_desc_init(&md, &src, &wei, NULL, &dst) != dnnl_success ||
        dnnl_primitive_desc_create(&pd, &md, NULL, eng, NULL) != dnnl_success)
        return;
    const char *impl = NULL;
    if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) == dnnl_success && impl)
        snprintf(buf, cap, "%s", impl);
    dnnl_primitive_desc_destroy(pd);
}

/* ------------------------------------------------------- measurement */

typedef struct {
    int na;                        /* the library cannot run this shape */
    int wrong;                     /* failed the check in some round */
    double err;                    /* worst relative error seen */
    double med[MAX_ROUNDS];        /* GFLOP/s of the round's median call */
    double best;                   /* GFLOP/s of the best call of all rounds */
} lib_result;

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median_of(const double *v, int n) {
    double t[256];
    if (n > 256) n = 256;
    memcpy(t, v, (size_t)n * sizeof *t);
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

/* The sampled rows and their reference, in double. */
static void sample_rows(int M, int *rows) {
    for (int i = 0; i < SAMPLE_ROWS; i++) rows[i] = (int)((long)i * (M - 1) / (SAMPLE_ROWS - 1));
}

static void reference(double *ref, const int *rows, const float *inp, const float *W, int N,
                      int K) {
    for (int i = 0; i < SAMPLE_ROWS; i++)
        for (int n = 0; n < N; n++) {
            double acc = 0;
            const float *a = inp + (size_t)rows[i] * K, *w = W + (size_t)n * K;
            for (int k = 0; k < K; k++) acc += (double)a[k] * w[k];
            ref[(size_t)i * N + n] = acc;
        }
}

/* max |out - ref| / max |ref| over the sample; +inf for NaN or infinity */
static double rel_error(const float *out, const double *ref, const int *rows, int N) {
    double err = 0, mag = 0;
    for (int i = 0; i < SAMPLE_ROWS; i++)
        for (int n = 0; n < N; n++) {
            const double o = out[(size_t)rows[i] * N + n], r = ref[(size_t)i * N + n];
            if (!isfinite(o)) return INFINITY;
            if (fabs(o - r) > err) err = fabs(o - r);
            if (fabs(r) > mag) mag = fabs(r);
        }
    return mag > 0 ? err / mag : err;
}

typedef struct {
    int rounds;
    double min_time;
    int smoke;
} run_opts;

/* One library's turn in one round. */
static void measure(const gemm_lib *lib, const shape *s, int threads, int round,
                    const run_opts *o, const float *inp, const float *W, float *out,
                    const double *ref, const int *rows, lib_result *r) {
    const double flop = 2.0 * s->M * s->N * (double)s->K;
    void *st = lib->prepare(W, s->M, s->N, s->K, threads);
    if (!st) {
        r->na = 1;
        return;
    }
    for (size_t i = 0; i < (size_t)s->M * s->N; i++) out[i] = NAN;
    if (lib->run(st, out, inp, W, s->M, s->N, s->K) != 0) {
        r->na = 1;
        lib->release(st);
        return;
    }
    const double err = rel_error(out, ref, rows, s->N);
    if (err > r->err || isnan(err)) r->err = err;
    if (!(err <= (lib->bf16 ? 3e-2 : 2e-4))) r->wrong = 1;
    double times[256];
    int n = 0;
    if (!o->smoke) {
        const double start = monotonic_seconds();
        while (n < 256 && (n < 3 || monotonic_seconds() - start < o->min_time)) {
            const double t0 = monotonic_seconds();
            lib->run(st, out, inp, W, s->M, s->N, s->K);
            times[n++] = monotonic_seconds() - t0;
        }
        const double med = median_of(times, n);
        r->med[round] = flop / med / 1e9;
        for (int i = 0; i < n; i++)
            if (flop / times[i] / 1e9 > r->best) r->best = flop / times[i] / 1e9;
    }
    lib->release(st);
}

static void fill(float *x, size_t n, unsigned seed, float scale) {
    unsigned v = seed;
    for (size_t i = 0; i < n; i++) {
        v = v * 1664525u + 1013904223u;
        x[i] = scale * ((float)(v >> 8) / 16777216.0f * 2.0f - 1.0f);
    }
}

static void read_loadavg(char *buf, size_t cap) {
    snprintf(buf, cap, "?");
    FILE *f = fopen("/proc/loadavg", "r");
    if (!f) return;
    if (fgets(buf, (int)cap, f)) buf[strcspn(buf, "\n")] = '\0';
    fclose(f);
}

static int shape_selected(const shape *s, const char *sel) {
    if (!strcmp(sel, "all")) return 1;
    if (!strcmp(sel, "vit")) return !strncmp(s->name, "vit_", 4);
    if (!strcmp(sel, "text")) return !strncmp(s->name, "text_", 5);
    if (!strcmp(sel, "tss")) return !strncmp(s->name, "tss_", 4);
    return strstr(s->name, sel) != NULL;
}

static void fmt_rate(char *buf, size_t cap, const lib_result *r, int rounds) {
    if (r->na)
        snprintf(buf, cap, "n/a");
    else if (r->wrong)
        snprintf(buf, cap, "WRONG (err %.1e)", r->err);
    else
        snprintf(buf, cap, "%.0f (%.0f)", median_of(r->med, rounds), r->best);
}

int main(int argc, char **argv) {
    int threads_list[MAX_THREADS_LIST] = {2, 1}, n_threads = 2;
    run_opts o = {3, 0.15, 0};
    const char *shapes_sel = "all";
    int do_f32 = 1, do_bf16 = 1, roof_probe = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--threads") && v) {
            n_threads = 0;
            for (char *p = (char *)v; *p && n_threads < MAX_THREADS_LIST;) {
                threads_list[n_threads++] = (int)strtol(p, &p, 10);
                if (*p == ',') p++;
                else break;
            }
            i++;
        } else if (!strcmp(a, "--rounds") && v) {
            o.rounds = atoi(v), i++;
        } else if (!strcmp(a, "--min-time") && v) {
            o.min_time = atof(v), i++;
        } else if (!strcmp(a, "--shapes") && v) {
            shapes_sel = v, i++;
        } else if (!strcmp(a, "--precision") && v) {
            do_f32 = strstr(v, "f32") != NULL, do_bf16 = strstr(v, "bf16") != NULL, i++;
        } else if (!strcmp(a, "--no-roof")) {
            roof_probe = 0;
        } else if (!strcmp(a, "--smoke")) {
            o.smoke = 1;
        } else {
            fprintf(stderr,
                    "usage: gemm_libs [--threads 2,1] [--rounds 3] [--min-time 0.15] "
                    "[--shapes all|vit|text|tss|SUBSTR] [--precision f32,bf16] [--no-roof] "
                    "[--smoke]\n");
            return 2;
        }
    }
    if (o.rounds < 1) o.rounds = 1;
    if (o.rounds > MAX_ROUNDS) o.rounds = MAX_ROUNDS;
    if (o.smoke) o.rounds = 1, roof_probe = 0;
    for (int t = 0; t < n_threads; t++)
        if (threads_list[t] < 1) threads_list[t] = 1;
    kernels_init();
    const int have_blis = gemm_blis_open();
    const shape *shapes = o.smoke ? g_smoke_shapes : g_shapes;
    const int n_shapes = o.smoke ? N_SMOKE : N_SHAPES;

    char load0[128], load1[128];
    read_loadavg(load0, sizeof load0);
    bench_roof roof[MAX_THREADS_LIST];
    time_t now = time(NULL);
    char date[64];
    strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", gmtime(&now));
    const dnnl_version_t *dv = dnnl_version();
    printf("gemm_libs, %s, %ld CPUs; rounds %d, at least %.2f s and 3 calls per library and round\n\n",
           date, sysconf(_SC_NPROCESSORS_ONLN), o.rounds, o.min_time);
    printf("- load average at start: %s\n", load0);
    printf("- oneDNN %d.%d.%d: %s\n", dv->major, dv->minor, dv->patch, onednn_isa());
    printf("- OpenBLAS: %s\n", openblas_isa());
    printf("- BLIS: %s\n", have_blis ? gemm_lib_blis.isa() : "absent (libblis.so.4 not found)");
    printf("- libxsmm %s: %s\n", gemm_xsmm_version(), gemm_lib_xsmm_omp.isa());

    int failures = 0;
    for (int t = 0; t < n_threads; t++) {
        const int threads = threads_list[t];
        const int saved = kernels_threads_begin(threads);
        bench_roof_measure(threads, roof_probe, &roof[t]);
        if (t == 0) printf("- CPU: %s (avx512_bf16 %d, amx_tile %d)\n", roof[t].cpu_model,
                           roof[t].avx512_bf16, roof[t].amx_tile);
        if (roof_probe)
            printf("- roof, %d thread%s (%dx%dx%d packed oneDNN linear, best call): %.0f GFLOP/s float32, "
                   "%.0f bf16\n",
                   threads, threads > 1 ? "s" : "", ROOF_DIM, ROOF_DIM, ROOF_DIM, roof[t].f32_gflops,
                   roof[t].bf16_gflops);
        kernels_threads_end(saved);
    }
    fflush(stdout);

    /* results[thread][shape][precision][lib] */
    static lib_result res[MAX_THREADS_LIST][N_SHAPES][2][MAX_LIBS];
    memset(res, 0, sizeof res);
    char impl[2][N_SHAPES][64];
    for (int si = 0; si < n_shapes; si++) {
        const shape *s = &shapes[si];
        if (!shape_selected(s, o.smoke ? "all" : shapes_sel)) continue;
        float *inp = malloc((size_t)s->M * s->K * sizeof(float));
        float *W = aligned_alloc(4096, ((size_t)s->N * s->K * sizeof(float) + 4095) / 4096 * 4096);
        float *out = malloc((size_t)s->M * s->N * sizeof(float));
        double *ref = malloc((size_t)SAMPLE_ROWS * s->N * sizeof(double));
        if (!inp || !W || !out || !ref) {
            fprintf(stderr, "gemm_libs: out of memory\n");
            return 1;
        }
        /* activations of unit size, weights of a trained layer's */
        fill(inp, (size_t)s->M * s->K, 1u + si, 1.0f);
        fill(W, (size_t)s->N * s->K, 1000u + si, 0.05f);
        int rows[SAMPLE_ROWS];
        sample_rows(s->M, rows);
        reference(ref, rows, inp, W, s->N, s->K);
        onednn_impl(s, 0, impl[0][si], sizeof impl[0][si]);
        onednn_impl(s, 1, impl[1][si], sizeof impl[1][si]);
        for (int t = 0; t < n_threads; t++) {
            const int threads = threads_list[t];
            const int saved = kernels_threads_begin(threads);
            for (int p = 0; p < 2; p++) {
                if ((p == 0 && !do_f32) || (p == 1 && !do_bf16)) continue;
                const gemm_lib *const *libs = p ? g_libs_bf16 : g_libs_f32;
                const int nl = p ? N_LIBS_BF16 : N_LIBS_F32;
                for (int r = 0; r < o.rounds; r++)
                    for (int j = 0; j < nl; j++) {
                        const int li = (j + r) % nl; /* a different order every round */
                        measure(libs[li], s, threads, r, &o, inp, W, out, ref, rows,
                                &res[t][si][p][li]);
                    }
                for (int li = 0; li < nl; li++) {
                    const lib_result *lr = &res[t][si][p][li];
                    if (lr->wrong) {
                        failures++;
                        fprintf(stderr, "gemm_libs: %s is WRONG on %s (%d x %d x %d, %d threads): "
                                "relative error %.2e\n", libs[li]->name, s->name, s->M, s->K, s->N,
                                threads, lr->err);
                    }
                }
                fprintf(stderr, "gemm_libs: %s, %d thread%s, %s done\n", s->name, threads,
                        threads > 1 ? "s" : "", p ? "bf16" : "f32");
            }
            kernels_threads_end(saved);
        }
        free(inp), free(W), free(out), free(ref);
    }
    read_loadavg(load1, sizeof load1);

    if (o.smoke) {
        printf("\nsmoke: %d wrong result%s\n", failures, failures == 1 ? "" : "s");
        return failures ? 1 : 0;
    }
    printf("- load average at end: %s\n", load1);

    for (int p = 0; p < 2; p++) {
        if ((p == 0 && !do_f32) || (p == 1 && !do_bf16)) continue;
        const gemm_lib *const *libs = p ? g_libs_bf16 : g_libs_f32;
        const int nl = p ? N_LIBS_BF16 : N_LIBS_F32;
        printf("\n%s, GFLOP/s: median of the round medians (best call)\n\n", p ? "bf16 (float32 accumulation)" : "float32");
        printf("| product | M x K x N | thr |");
        for (int li = 0; li < nl; li++) printf(" %s |", libs[li]->name);
        printf(" fastest | vs today | rounds won | roof %% | oneDNN impl |\n|---|---|---|");
        for (int li = 0; li < nl + 5; li++) printf("---|");
        printf("\n");
        for (int si = 0; si < n_shapes; si++) {
            const shape *s = &shapes[si];
            if (!shape_selected(s, shapes_sel)) continue;
            for (int t = 0; t < n_threads; t++) {
                const lib_result *lr = res[t][si][p];
                /* today: the packed path for frozen weights, dnnl_sgemm for the
                 * TSS (trained) ones; in bf16 only the packed path exists */
                const int today = p == 0 && !s->today_packed ? 1 : 0;
                printf("| %s | %d x %d x %d | %d |", s->name, s->M, s->K, s->N, threads_list[t]);
                int fastest = -1;
                double fastest_rate = 0;
                for (int li = 0; li < nl; li++) {
                    char cell[48];
                    fmt_rate(cell, sizeof cell, &lr[li], o.rounds);
                    printf(" %s%s%s |", li == today ? "*" : "", cell, li == today ? "*" : "");
                    if (lr[li].na || lr[li].wrong) continue;
                    const double m = median_of(lr[li].med, o.rounds);
                    if (m > fastest_rate) fastest_rate = m, fastest = li;
                }
                if (fastest < 0 || lr[today].na || lr[today].wrong) {
                    printf(" %s | | | | %s |\n", fastest < 0 ? "none" : libs[fastest]->name,
                           impl[p][si]);
                    continue;
                }
                int won = 0;
                for (int r = 0; r < o.rounds; r++) won += lr[fastest].med[r] > lr[today].med[r];
                const double vs = fastest_rate / median_of(lr[today].med, o.rounds);
                const double rf = p ? roof[t].bf16_gflops : roof[t].f32_gflops;
                char roofs[16] = "";
                if (rf > 0) snprintf(roofs, sizeof roofs, "%.0f%%", 100.0 * fastest_rate / rf);
                char wons[16] = "";
                if (fastest != today) snprintf(wons, sizeof wons, "%d/%d", won, o.rounds);
                printf(" %s | %.2fx | %s | %s | %s |\n", libs[fastest]->name, vs, wons, roofs,
                       impl[p][si]);
            }
        }
    }
    return failures ? 1 : 0;
}
