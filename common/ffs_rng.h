// ffs_rng: a small seeded generator (xoshiro128+-style splitmix64 seeding)
// so every stage's randomness is reproducible from the topology's seed.
// State is a plain struct on the caller's side; no globals.
#ifndef FFS_RNG_H
#define FFS_RNG_H

#include <stdint.h>

typedef struct {
  uint64_t s[2]; // xorshift128+ state; never both zero
} ffs_rng_t;

// Seeds from (seed, stream): different streams give independent sequences.
void ffs_rng_seed(ffs_rng_t *rng, uint64_t seed, uint64_t stream);
uint64_t ffs_rng_u64(ffs_rng_t *rng);
// Uniform in [0, 1).
float ffs_rng_uniform(ffs_rng_t *rng);
// Uniform integer in [0, n), n > 0.
uint32_t ffs_rng_below(ffs_rng_t *rng, uint32_t n);
// Standard normal (Box-Muller).
float ffs_rng_normal(ffs_rng_t *rng);
// Fisher-Yates shuffle of idx[0..n).
void ffs_rng_shuffle(ffs_rng_t *rng, uint32_t *idx, uint32_t n);

#endif
