// negatives: wrong-label sampling for the source (see negatives.h).
#include "negatives.h"

#include <assert.h>

uint8_t ffs_negative_label(ffs_rng_t *rng, const float *probs, uint8_t truth) {
  assert(truth < FFS_NCLASSES);
  if (probs && probs[0] >= 0.0f) {
    float total = 0.0f;
    for (int c = 0; c < FFS_NCLASSES; c++)
      if (c != truth && probs[c] > 0.0f) total += probs[c];
    if (total > 1e-12f) {
      float u = ffs_rng_uniform(rng) * total;
      int last = -1;
      for (int c = 0; c < FFS_NCLASSES; c++) {
        if (c == truth || !(probs[c] > 0.0f)) continue;
        last = c;
        if ((u -= probs[c]) < 0.0f) return (uint8_t)c;
      }
      return (uint8_t)last; // rounding left u >= 0: the last candidate
    }
  }
  uint8_t l = (uint8_t)ffs_rng_below(rng, FFS_NCLASSES - 1);
  return l >= truth ? (uint8_t)(l + 1) : l; // uniform over the wrong labels
}
