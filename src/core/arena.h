/* Scratch arena: the memory of one call, taken by bumping a pointer.
 *
 * A prediction needs the same temporaries every time (streams, block
 * scratch, the matching head), so rather than malloc and free them on every
 * call, a per-call state (ramc_state) keeps one block and hands out slices of
 * it. Each function takes its slices after arena_mark and gives them back with
 * arena_reset to that mark when its temporaries die, so the block's high
 * water is the deepest nesting of live temporaries, not their sum.
 *
 * The block is sized beforehand from the shapes of the call (the *_bytes
 * functions of each layer, summed by ramc_state_reserve); should a call need
 * more, the excess is malloc'ed as a spill, freed at the reset, and the block
 * grows to the call's peak at arena_end_call, so the next such call is
 * served from the block alone (grows counts these).
 *
 * A training step uses one the same way (ram_train_options.scratch, kept
 * across steps by ram_solver): its records and gradient buffers are slices
 * too, so after the block has grown to a step's peak a step allocates
 * nothing.
 *
 * Every function here accepts a NULL arena and then means plain heap memory:
 * arena_alloc is ramc_malloc and arena_free is free, so the same code runs
 * with or without one. One arena serves one thread at a time. */
#ifndef RAMC_CORE_ARENA_H
#define RAMC_CORE_ARENA_H

#include <stddef.h>

#include "ramc.h"

#define ARENA_ALIGN 64 /* a cache line, and the widest vector load */

typedef struct arena_spill arena_spill;

typedef struct {
    unsigned char *base; /* the block */
    size_t cap;          /* its bytes */
    size_t top;          /* bytes taken now, spills included */
    size_t peak;         /* the most taken at once since the last arena_end_call */
    arena_spill *spills; /* slices that did not fit, newest first */
    int grows;           /* times arena_end_call had to grow the block */
} ramc_arena;

/* `bytes` rounded up to ARENA_ALIGN: what one arena_alloc of them takes. */
size_t arena_size(size_t bytes);

/* `bytes` of scratch, ARENA_ALIGN-aligned; NULL (with RAMC_ERR_NOMEM
 * recorded, naming `what`) only when a spill or the heap fails. */
void *arena_alloc(ramc_arena *a, size_t bytes, const char *what);
/* arena_alloc of count * size bytes, zeroed. */
void *arena_calloc(ramc_arena *a, size_t count, size_t size, const char *what);
/* With an arena: nothing (arena_reset gives the bytes back). Without: free. */
void arena_free(ramc_arena *a, void *p);

/* Where the arena stands now (0 without one); arena_reset(a, mark) gives back
 * everything taken since. Marks nest as calls do. */
size_t arena_mark(const ramc_arena *a);
void arena_reset(ramc_arena *a, size_t mark);

/* The end of a call: everything is given back, and the block grows to the
 * call's peak if that was larger (the one allocation of a state's life
 * outside ramc_state_reserve). */
void arena_end_call(ramc_arena *a);

/* Makes the block at least `bytes` long; only between calls. */
ramc_status arena_reserve(ramc_arena *a, size_t bytes);
void arena_release(ramc_arena *a);

#endif
