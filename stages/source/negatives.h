// negatives: how the source picks the wrong label of a negative row.
// Uniform over the wrong classes, or "hard": in proportion to a predicted
// probability of each wrong class. Never returns the true label.
#ifndef FFS_NEGATIVES_H
#define FFS_NEGATIVES_H

#include <stdint.h>

#include "ffs_rng.h"

#define FFS_NCLASSES 10

// A wrong label for a sample whose true label is truth (< FFS_NCLASSES).
// probs: FFS_NCLASSES predicted probabilities, or NULL (or probs[0] < 0,
// "no prediction yet", or no mass on any wrong class) for uniform.
uint8_t ffs_negative_label(ffs_rng_t *rng, const float *probs, uint8_t truth);

#endif
