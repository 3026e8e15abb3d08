/* A small seeded random generator (xoshiro256**, seeded by splitmix64), so
 * initialisation, shuffling and augmentation are reproducible from a seed on
 * every platform. The state is plain data: checkpoints save and restore it. */
#ifndef RAMC_CORE_RNG_H
#define RAMC_CORE_RNG_H

#include <stdint.h>

typedef struct {
    uint64_t s[4];
} ramc_rng;

void rng_seed(ramc_rng *r, uint64_t seed);
uint64_t rng_next(ramc_rng *r);
/* Uniform in [0, 1). */
double rng_uniform(ramc_rng *r);
/* Standard normal (Box-Muller; one value per call). */
double rng_normal(ramc_rng *r);

#endif
