/* Counts OpenMP parallel regions (thread wake-ups) per outlined function:
 * an LD_PRELOAD module that wraps libgomp's GOMP_parallel, the call GCC
 * emits for every `#pragma omp parallel`, oneDNN's included. A region whose
 * if() clause is false arrives with threads = 1 and wakes nobody: those are
 * counted apart. At exit it writes "woken serial file offset symbol" lines
 * to $OMP_REGIONS_OUT (or stderr);
 * scripts/omp_regions.sh turns two runs into regions per call. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

typedef void (*gomp_parallel_fn)(void (*)(void *), void *, unsigned, unsigned);

#define SLOTS 4096 /* open addressing on the outlined function's address */
static void *slot_fn[SLOTS];
static unsigned long slot_count[SLOTS], slot_serial[SLOTS], total;

void GOMP_parallel(void (*fn)(void *), void *data, unsigned threads, unsigned flags) {
    static gomp_parallel_fn real;
    if (!real) real = (gomp_parallel_fn)dlsym(RTLD_NEXT, "GOMP_parallel");
    /* regions are started by one thread at a time in ramc (no nesting), so
     * the table needs no lock; the counts are atomic for safety */
    unsigned h = (unsigned)(((uintptr_t)fn >> 4) % SLOTS);
    while (slot_fn[h] && slot_fn[h] != (void *)fn) h = (h + 1) % SLOTS;
    slot_fn[h] = (void *)fn;
    __atomic_fetch_add(threads == 1 ? &slot_serial[h] : &slot_count[h], 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&total, 1, __ATOMIC_RELAXED);
    real(fn, data, threads, flags);
}

__attribute__((destructor)) static void write_counts(void) {
    const char *path = getenv("OMP_REGIONS_OUT");
    FILE *f = path ? fopen(path, "w") : stderr;
    if (!f) return;
    fprintf(f, "total %lu\n", total);
    for (int i = 0; i < SLOTS; i++) {
        if (!slot_fn[i]) continue;
        Dl_info in;
        const int found = dladdr(slot_fn[i], &in);
        const uintptr_t base = found ? (uintptr_t)in.dli_fbase : 0;
        fprintf(f, "%lu %lu %s 0x%lx %s\n", slot_count[i], slot_serial[i], found ? in.dli_fname : "?",
                (unsigned long)((uintptr_t)slot_fn[i] - base),
                found && in.dli_sname ? in.dli_sname : "-");
    }
    if (path) fclose(f);
}
