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

// Unsupervised negatives (Hinton 2022, section 3.2): a mask of random bits,
// blurred `blurs` times with the filter [1/4 1/2 1/4] horizontally and
// vertically (edges clamped), then thresholded at 0.5: large coherent regions
// of ones and zeros. mask, tmp: (h, w) floats; mask ends up all 0 or 1.
void ffs_hybrid_mask(float *mask, float *tmp, int h, int w, int blurs, ffs_rng_t *rng);

// out (n) = x1 * mask + x2 * (1 - mask): one image's regions, the other's elsewhere.
void ffs_hybrid_mix(float *out, const float *x1, const float *x2, const float *mask, int n);

#endif
