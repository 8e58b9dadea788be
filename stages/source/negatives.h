// negatives: how the source shows labels. The label overlay painted into a
// row, and the wrong label of a negative row: uniform over the wrong
// classes, or "hard": in proportion to a predicted probability of each wrong
// class (never the true label). The class count is the topology's
// data.classes.
#ifndef FFS_NEGATIVES_H
#define FFS_NEGATIVES_H

#include <stdint.h>

#include "ffs_rng.h"

// Paints label into the first classes pixels of row: one-hot for a label
// in 0..classes-1, 1/classes in every label pixel for any other value (the
// neutral label, FFS_LABEL_NONE). row has at least classes pixels.
void ffs_label_overlay(float *row, int label, int classes);

// A wrong label for a sample whose true label is truth (< classes, 2..255).
// probs: classes predicted probabilities, or NULL (or probs[0] < 0,
// "no prediction yet", or no mass on any wrong class) for uniform.
uint8_t ffs_negative_label(ffs_rng_t *rng, const float *probs, uint8_t truth, int classes);

// Unsupervised negatives (Hinton 2022, section 3.2): a mask of random bits,
// blurred `blurs` times with the filter [1/4 1/2 1/4] horizontally and
// vertically (edges clamped), then thresholded at 0.5: large coherent regions
// of ones and zeros. mask, tmp: (h, w) floats; mask ends up all 0 or 1.
void ffs_hybrid_mask(float *mask, float *tmp, int h, int w, int blurs, ffs_rng_t *rng);

// out (n) = x1 * mask + x2 * (1 - mask): one image's regions, the other's elsewhere.
void ffs_hybrid_mix(float *out, const float *x1, const float *x2, const float *mask, int n);

#endif
