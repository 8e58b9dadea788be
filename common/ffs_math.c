// ffs_math: kernels for FF stages. Heavy products go through CBLAS
// (OpenBLAS, one thread per pinned stage); the rest are plain loops over
// contiguous rows that the compiler vectorizes. Never allocates.
#include "ffs_math.h"
#include "ffs_rms.h"

#include <cblas.h>
#if defined(__SSE__)
#include <xmmintrin.h>
#endif
#include <math.h>

// ---- linear maps ----

void ffs_linear_forward(float *out, const float *in, const float *w, const float *b,
                        int batch, int in_dim, int out_dim) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, batch, out_dim, in_dim, 1.0f, in,
              in_dim, w, in_dim, 0.0f, out, out_dim);
  if (!b) return;
  for (int r = 0; r < batch; r++) {
    float *o = out + (long)r * out_dim;
    for (int j = 0; j < out_dim; j++) o[j] += b[j];
  }
}

void ffs_linear_backward_w(float *dw, float *db, const float *dout, const float *in,
                           int batch, int in_dim, int out_dim, int accumulate) {
  if (dw)
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out_dim, in_dim, batch, 1.0f, dout,
                out_dim, in, in_dim, accumulate ? 1.0f : 0.0f, dw, in_dim);
  if (!db) return;
  for (int j = 0; j < out_dim && !accumulate; j++) db[j] = 0.0f;
  for (int r = 0; r < batch; r++) {
    const float *d = dout + (long)r * out_dim;
    for (int j = 0; j < out_dim; j++) db[j] += d[j];
  }
}

FFS_VECTOR_LOOP void ffs_relu(float *y, long n) {
  for (long i = 0; i < n; i++) y[i] = y[i] > 0.0f ? y[i] : 0.0f;
}

// ---- normalization and goodness ----

FFS_VECTOR_LOOP void ffs_rms_normalize(float *out, const float *x, int rows, int cols, float eps) {
  for (int r = 0; r < rows; r++)
    ffs_row_rms(out + (long)r * cols, x + (long)r * cols, cols, eps);
}

FFS_VECTOR_LOOP void ffs_goodness(float *g, const float *y, int rows, int cols,
                                  ffs_goodness_t kind) {
  for (int r = 0; r < rows; r++) {
    float ss = (float)ffs_row_sumsq(y + (long)r * cols, cols);
    g[r] = kind == FFS_GOODNESS_MSQ ? ss / (float)cols : ss;
  }
}

// ---- the logistic FF loss ----

float ffs_ff_logit(float g, float theta, float temp, ffs_goodness_t kind) {
  return kind == FFS_GOODNESS_MIN_SSQ ? (theta - g) / temp : (g - theta) / temp;
}

float ffs_softplus(float x) { return x > 0.0f ? x + log1pf(expf(-x)) : log1pf(expf(x)); }

float ffs_sigmoid(float x) {
  if (x >= 0.0f) return 1.0f / (1.0f + expf(-x));
  float e = expf(x);
  return e / (1.0f + e);
}

float ffs_ff_loss(float logit, int positive) {
  return positive ? ffs_softplus(-logit) : ffs_softplus(logit);
}

float ffs_ff_dloss_dg(float logit, int positive, float temp, ffs_goodness_t kind) {
  // d softplus(-s)/ds = sigmoid(s) - 1 ; d softplus(s)/ds = sigmoid(s)
  float dl_ds = ffs_sigmoid(logit) - (positive ? 1.0f : 0.0f);
  float ds_dg = (kind == FFS_GOODNESS_MIN_SSQ ? -1.0f : 1.0f) / temp;
  return dl_ds * ds_dg;
}

// ---- softmax ----

void ffs_softmax_rows(float *x, int rows, int cols) {
  for (int r = 0; r < rows; r++) {
    float *xr = x + (long)r * cols;
    float mx = xr[0];
    for (int j = 1; j < cols; j++) mx = xr[j] > mx ? xr[j] : mx;
    float s = 0.0f;
    for (int j = 0; j < cols; j++) s += (xr[j] = expf(xr[j] - mx));
    for (int j = 0; j < cols; j++) xr[j] /= s;
  }
}

int ffs_argmax(const float *x, int n) {
  int best = 0;
  for (int i = 1; i < n; i++)
    if (x[i] > x[best]) best = i;
  return best;
}

void ffs_flush_subnormals(void) {
#if defined(__SSE__)
  _mm_setcsr(_mm_getcsr() | 0x8040u); // FTZ (bit 15) and DAZ (bit 6)
#endif
}

double ffs_mean_pair_cosine(const float *h, int rows, int cols, long *pairs) {
  double sum = 0;
  long n = 0;
  for (int i = 0; i < rows; i++) {
    const float *hi = h + (long)i * cols;
    double ni = 0;
    for (int k = 0; k < cols; k++) ni += (double)hi[k] * hi[k];
    for (int j = i + 1; j < rows; j++) {
      const float *hj = h + (long)j * cols;
      double nj = 0, d = 0;
      for (int k = 0; k < cols; k++) nj += (double)hj[k] * hj[k], d += (double)hi[k] * hj[k];
      sum += d / (sqrt(ni) * sqrt(nj) + 1e-12);
      n++;
    }
  }
  if (pairs) *pairs = n;
  return n ? sum / (double)n : 0.0;
}
