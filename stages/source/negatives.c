// negatives: wrong-label sampling for the source (see negatives.h).
#include "negatives.h"

#include <assert.h>

void ffs_label_overlay(float *row, int label, int classes) {
  assert(row && classes >= 2 && classes <= 255);
  float neutral = 1.0f / (float)classes; // 0.1f for ten classes, as before
  int one_hot = label >= 0 && label < classes;
  for (int c = 0; c < classes; c++) row[c] = !one_hot ? neutral : (c == label ? 1.0f : 0.0f);
}

uint8_t ffs_negative_label(ffs_rng_t *rng, const float *probs, uint8_t truth, int classes) {
  assert(classes >= 2 && classes <= 255 && truth < classes);
  if (probs && probs[0] >= 0.0f) {
    float total = 0.0f;
    for (int c = 0; c < classes; c++)
      if (c != truth && probs[c] > 0.0f) total += probs[c];
    if (total > 1e-12f) {
      float u = ffs_rng_uniform(rng) * total;
      int last = -1;
      for (int c = 0; c < classes; c++) {
        if (c == truth || !(probs[c] > 0.0f)) continue;
        last = c;
        if ((u -= probs[c]) < 0.0f) return (uint8_t)c;
      }
      return (uint8_t)last; // rounding left u >= 0: the last candidate
    }
  }
  uint8_t l = (uint8_t)ffs_rng_below(rng, (uint32_t)classes - 1);
  return l >= truth ? (uint8_t)(l + 1) : l; // uniform over the wrong labels
}

// One pass of [1/4 1/2 1/4] along rows (dx = 1) or columns (dx = w) of src
// into dst; out-of-image neighbours are clamped to the edge pixel.
static void s_blur(float *dst, const float *src, int h, int w, int vertical) {
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      int i = y * w + x;
      int prev = vertical ? (y > 0 ? i - w : i) : (x > 0 ? i - 1 : i);
      int next = vertical ? (y + 1 < h ? i + w : i) : (x + 1 < w ? i + 1 : i);
      dst[i] = 0.25f * src[prev] + 0.5f * src[i] + 0.25f * src[next];
    }
}

void ffs_hybrid_mask(float *mask, float *tmp, int h, int w, int blurs, ffs_rng_t *rng) {
  assert(h > 0 && w > 0 && blurs >= 0);
  for (int i = 0; i < h * w; i++) mask[i] = (float)(ffs_rng_u64(rng) >> 63);
  for (int b = 0; b < blurs; b++) {
    s_blur(tmp, mask, h, w, 0);
    s_blur(mask, tmp, h, w, 1);
  }
  for (int i = 0; i < h * w; i++) mask[i] = mask[i] > 0.5f ? 1.0f : 0.0f;
}

void ffs_hybrid_mix(float *out, const float *x1, const float *x2, const float *mask, int n) {
  for (int i = 0; i < n; i++) out[i] = x1[i] * mask[i] + x2[i] * (1.0f - mask[i]);
}
