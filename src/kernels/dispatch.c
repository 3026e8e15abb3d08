/* Run-time choice of the instruction-set level for the kernels of kernels.c
 * (kernels.h: kernels_isa). The build is portable (baseline x86-64) and
 * kernels.c is compiled once per level; each public kernel here forwards to
 * the variant of the current level.
 *
 * The level is detected once, on first use, from the CPU and the OS (the
 * compiler's __builtin_cpu_supports checks that the OS saves the AVX and
 * AVX-512 registers). kernels_isa_set changes it for every thread; it is meant
 * for tests and benchmarks, between calls, since a kernel already running
 * finishes at the level it started with. */
#include "kernels/kernels.h"
#include "kernels/kernels_levels.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#if defined(__x86_64__) && defined(__linux__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#define KERNELS_DECLARE_LEVEL_(name, params, args) \
    void name##_generic params;                    \
    void name##_avx2 params;                       \
    void name##_avx512 params;
KERNELS_PER_LEVEL(KERNELS_DECLARE_LEVEL_)

static const char *const level_names[KERNELS_ISA_COUNT] = {"generic", "avx2", "avx512"};

/* -1: not detected yet. */
static atomic_int g_best = -1, g_level = -1;

static int detect(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    const int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    const int avx512 = avx2 && __builtin_cpu_supports("avx512f") &&
                       __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
                       __builtin_cpu_supports("avx512vl");
    return avx512 ? KERNELS_ISA_AVX512 : avx2 ? KERNELS_ISA_AVX2 : KERNELS_ISA_GENERIC;
#else
    return KERNELS_ISA_GENERIC;
#endif
}

kernels_isa kernels_isa_best(void) {
    int b = atomic_load_explicit(&g_best, memory_order_relaxed);
    if (b < 0) {
        /* Detection is idempotent: two threads racing here store the same value. */
        b = detect();
        atomic_store_explicit(&g_best, b, memory_order_relaxed);
    }
    return (kernels_isa)b;
}

static inline int current_level(void) {
    int l = atomic_load_explicit(&g_level, memory_order_relaxed);
    if (l >= 0) return l;
    int expected = -1;
    l = (int)kernels_isa_best();
    /* Only the first setter wins, so an explicit kernels_isa_set is never undone. */
    if (!atomic_compare_exchange_strong(&g_level, &expected, l)) l = expected;
    return l;
}

kernels_isa kernels_isa_get(void) { return (kernels_isa)current_level(); }

int kernels_isa_set(kernels_isa level) {
    if ((int)level < 0 || (int)level >= KERNELS_ISA_COUNT || level > kernels_isa_best()) return -1;
    atomic_store_explicit(&g_level, (int)level, memory_order_relaxed);
    return 0;
}

const char *kernels_isa_name(kernels_isa level) {
    return (int)level >= 0 && (int)level < KERNELS_ISA_COUNT ? level_names[level] : NULL;
}

int kernels_isa_parse(const char *name) {
    for (int i = 0; name && i < KERNELS_ISA_COUNT; i++)
        if (!strcmp(name, level_names[i])) return i;
    return -1;
}

int kernels_cpu_has_bf16(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512bf16") != 0;
#else
    return 0;
#endif
}

/* attention_bf16.c, compiled with -mavx512bf16 (and AMX where the compiler
 * has it) when the compiler knows the flag (RAMC_HAVE_AVX512BF16,
 * CMakeLists.txt). */
int attention_bf16_forward_avx512bf16(float *out, float *lse, const float *q, const float *k,
                                      const float *v, long batch_stride, long row_stride, int B,
                                      int Tq, int Tk, int C, int n_heads, int causal, int amx);
int attention_bf16_has_amx(void);

/* AMX: the CPU has AMX-TILE and AMX-BF16 (CPUID leaf 7: EDX bits 24, 22)
 * and Linux lets this process use the tile data (arch_prctl
 * ARCH_REQ_XCOMP_PERM for XFEATURE_XTILEDATA, once; oneDNN asks the same). */
static atomic_int g_amx = -1;

static int amx_usable(void) {
    int a = atomic_load_explicit(&g_amx, memory_order_relaxed);
    if (a >= 0) return a;
    a = 0;
#if defined(RAMC_HAVE_AVX512BF16) && defined(__x86_64__) && defined(__linux__)
    unsigned eax, ebx, ecx, edx;
    if (attention_bf16_has_amx() && __get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) &&
        (edx >> 24 & 1) && (edx >> 22 & 1))
        a = syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XTILEDATA */) == 0;
#endif
    atomic_store_explicit(&g_amx, a, memory_order_relaxed);
    return a;
}

static atomic_int g_bf16_cap = KERNELS_BF16_AMX;

kernels_bf16_kind kernels_bf16_attention_kind(void) {
#ifdef RAMC_HAVE_AVX512BF16
    if (current_level() != KERNELS_ISA_AVX512 || !kernels_cpu_has_bf16()) return KERNELS_BF16_NONE;
    const int cap = atomic_load_explicit(&g_bf16_cap, memory_order_relaxed);
    if (cap >= KERNELS_BF16_AMX && amx_usable()) return KERNELS_BF16_AMX;
    return cap >= KERNELS_BF16_DPBF16 ? KERNELS_BF16_DPBF16 : KERNELS_BF16_NONE;
#else
    return KERNELS_BF16_NONE;
#endif
}

void kernels_bf16_attention_cap(kernels_bf16_kind cap) {
    atomic_store_explicit(&g_bf16_cap, (int)cap, memory_order_relaxed);
}

const char *kernels_bf16_kind_name(kernels_bf16_kind kind) {
    return kind == KERNELS_BF16_AMX      ? "amx"
           : kind == KERNELS_BF16_DPBF16 ? "avx512_bf16"
                                         : "float32";
}

static atomic_int g_bf16_force = -1;

void kernels_bf16_attention_force(int mode) {
    atomic_store_explicit(&g_bf16_force, mode < 0 ? -1 : mode != 0, memory_order_relaxed);
}

int attention_bf16_pays(int Tk, int causal) {
    const int force = atomic_load_explicit(&g_bf16_force, memory_order_relaxed);
    return force >= 0 ? force : !causal && Tk >= 128;
}

int kernels_bf16_attention_native(void) {
    return kernels_bf16_attention_kind() != KERNELS_BF16_NONE;
}

void attention_fused_forward_bf16(float *out, float *lse, const float *q, const float *k,
                                  const float *v, long batch_stride, long row_stride, int B,
                                  int Tq, int Tk, int C, int n_heads, int causal) {
#ifdef RAMC_HAVE_AVX512BF16
    const kernels_bf16_kind kind = kernels_bf16_attention_kind();
    if (n_heads > 0 && C / n_heads <= 128 && kind != KERNELS_BF16_NONE &&
        attention_bf16_forward_avx512bf16(out, lse, q, k, v, batch_stride, row_stride, B, Tq, Tk,
                                          C, n_heads, causal, kind == KERNELS_BF16_AMX) == 0)
        return;
#endif
    attention_fused_forward(out, lse, q, k, v, batch_stride, row_stride, B, Tq, Tk, C, n_heads,
                            causal);
}

const char *kernels_isa_describe(char *buf, size_t size) {
    const kernels_isa now = kernels_isa_get(), best = kernels_isa_best();
    snprintf(buf, size, "%s (CPU: %s%s%s)", kernels_isa_name(now), kernels_isa_name(best),
             kernels_cpu_has_bf16() ? ", avx512_bf16" : "", now != best ? "; level set lower" : "");
    return buf;
}

const char *kernels_build_kind(void) {
#ifdef RAMC_BUILD_NATIVE
    return "native (-march=native: for CPUs like the build machine's only)";
#else
    return "portable (baseline x86-64; ramc's kernels choose their level at run time)";
#endif
}

#define KERNELS_DISPATCH_(name, params, args)     \
    void name params {                            \
        switch (current_level()) {                \
        case KERNELS_ISA_AVX512: name##_avx512 args; return; \
        case KERNELS_ISA_AVX2: name##_avx2 args; return;     \
        default: name##_generic args; return;                \
        }                                         \
    }
KERNELS_PER_LEVEL(KERNELS_DISPATCH_)
