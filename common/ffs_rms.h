// ffs_rms: the row kernels of RMS normalization, inline, so that ffs_math
// (rows of floats) and ffs_frame (a payload's rows, at any address, read in
// place) compute them alike, bit for bit, without the frame decoder linking
// the math library. Call them from FFS_VECTOR_LOOP functions (ffs_math.h):
// they are compiled, and vectorized, for each CPU the caller is.
#ifndef FFS_RMS_H
#define FFS_RMS_H

#include <math.h>

// Floats at any address (a frame's payload), read so that the loops over
// them vectorize as over a plain array.
typedef float ffs_ufloat __attribute__((aligned(1), may_alias));

// A row's sum of squares: 16 float partial sums (a vector's worth, summed
// lane by lane, so no reassociation is needed to vectorize), then in double.
static inline double ffs_row_sumsq(const ffs_ufloat *x, int n) {
  float acc[16] = {0};
  int j = 0;
  for (; j + 16 <= n; j += 16)
    for (int k = 0; k < 16; k++) acc[k] += x[j + k] * x[j + k];
  double ss = 0.0;
  for (int k = 0; k < 16; k++) ss += acc[k];
  for (; j < n; j++) ss += (double)x[j] * x[j];
  return ss;
}

// out = x / (sqrt(mean of x^2) + eps), one row of n values; out may be x.
static inline void ffs_row_rms(float *out, const ffs_ufloat *x, int n, float eps) {
  float inv = 1.0f / (sqrtf((float)(ffs_row_sumsq(x, n) / n)) + eps);
  for (int j = 0; j < n; j++) out[j] = x[j] * inv;
}

#endif
