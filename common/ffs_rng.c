// ffs_rng: xorshift128+ seeded through splitmix64. Deterministic across
// platforms; used for weight init, shuffling and negative labels.
#include "ffs_rng.h"

#include <assert.h>
#include <math.h>

static uint64_t s_splitmix(uint64_t *x) {
  uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

void ffs_rng_seed(ffs_rng_t *rng, uint64_t seed, uint64_t stream) {
  uint64_t x = seed ^ (stream * 0xD1B54A32D192ED03ull);
  rng->s[0] = s_splitmix(&x);
  rng->s[1] = s_splitmix(&x);
  if (!rng->s[0] && !rng->s[1]) rng->s[1] = 1;
}

uint64_t ffs_rng_u64(ffs_rng_t *rng) {
  uint64_t s1 = rng->s[0];
  const uint64_t s0 = rng->s[1];
  rng->s[0] = s0;
  s1 ^= s1 << 23;
  rng->s[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
  return rng->s[1] + s0;
}

float ffs_rng_uniform(ffs_rng_t *rng) {
  return (float)(ffs_rng_u64(rng) >> 40) * (1.0f / 16777216.0f);
}

uint32_t ffs_rng_below(ffs_rng_t *rng, uint32_t n) {
  assert(n > 0);
  return (uint32_t)(((ffs_rng_u64(rng) >> 32) * (uint64_t)n) >> 32);
}

float ffs_rng_normal(ffs_rng_t *rng) {
  float u1 = ffs_rng_uniform(rng), u2 = ffs_rng_uniform(rng);
  if (u1 < 1e-12f) u1 = 1e-12f;
  return sqrtf(-2.0f * logf(u1)) * cosf(6.28318530718f * u2);
}

void ffs_rng_shuffle(ffs_rng_t *rng, uint32_t *idx, uint32_t n) {
  for (uint32_t i = n; i > 1; i--) {
    uint32_t j = ffs_rng_below(rng, i);
    uint32_t t = idx[i - 1];
    idx[i - 1] = idx[j];
    idx[j] = t;
  }
}
