/* Scratch arena (arena.h). */
#include "core/arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"

/* A slice that did not fit the block, kept on a list to free at the reset
 * past its start. */
struct arena_spill {
    arena_spill *next;
    size_t start; /* arena top before it was taken */
    void *data;
};

size_t arena_size(size_t bytes) {
    return (bytes + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
}

void *arena_alloc(ramc_arena *a, size_t bytes, const char *what) {
    if (!a) return ramc_malloc(bytes ? bytes : 1, what);
    const size_t n = arena_size(bytes ? bytes : 1);
    /* From the block only while no spill is live: the block then holds
     * exactly [0, top), so a reset to any mark is a plain move of top. */
    if (!a->spills && a->top + n <= a->cap) {
        void *p = a->base + a->top;
        a->top += n;
        if (a->top > a->peak) a->peak = a->top;
        return p;
    }
    arena_spill *s = malloc(sizeof *s);
    void *data = s ? aligned_alloc(ARENA_ALIGN, n) : NULL;
    if (!data) {
        free(s);
        ramc_error(RAMC_ERR_NOMEM, "out of memory allocating %zu bytes for %s", n, what);
        return NULL;
    }
    s->start = a->top, s->data = data, s->next = a->spills;
    a->spills = s;
    a->top += n;
    if (a->top > a->peak) a->peak = a->top;
    return data;
}

void *arena_calloc(ramc_arena *a, size_t count, size_t size, const char *what) {
    if (!a) return ramc_calloc(count ? count : 1, size ? size : 1, what);
    if (size && count > SIZE_MAX / size) {
        ramc_error(RAMC_ERR_NOMEM, "out of memory: %zu x %zu bytes for %s", count, size, what);
        return NULL;
    }
    void *p = arena_alloc(a, count * size, what);
    if (p) memset(p, 0, count * size);
    return p;
}

void arena_free(ramc_arena *a, void *p) {
    if (!a) free(p);
}

size_t arena_mark(const ramc_arena *a) { return a ? a->top : 0; }

void arena_reset(ramc_arena *a, size_t mark) {
    if (!a || mark > a->top) return;
    while (a->spills && a->spills->start >= mark) {
        arena_spill *s = a->spills;
        a->spills = s->next;
        free(s->data);
        free(s);
    }
    a->top = mark;
}

void arena_end_call(ramc_arena *a) {
    if (!a) return;
    arena_reset(a, 0);
    if (a->peak > a->cap && arena_reserve(a, a->peak) == RAMC_OK) a->grows++;
    a->peak = 0;
}

ramc_status arena_reserve(ramc_arena *a, size_t bytes) {
    if (!a || a->top) return ramc_error(RAMC_ERR_INVALID_ARG, "arena: reserve during a call");
    bytes = arena_size(bytes);
    if (bytes <= a->cap) return RAMC_OK;
    void *p = aligned_alloc(ARENA_ALIGN, bytes);
    if (!p)
        return ramc_error(RAMC_ERR_NOMEM, "out of memory reserving %zu bytes of scratch", bytes);
    free(a->base);
    a->base = p, a->cap = bytes;
    return RAMC_OK;
}

void arena_release(ramc_arena *a) {
    if (!a) return;
    arena_reset(a, 0);
    free(a->base);
    memset(a, 0, sizeof *a);
}
