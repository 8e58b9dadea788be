// ffs_optim: element-wise update loops (memory-bound, vectorized by the
// compiler); called once per training frame per tensor.
#include "ffs_optim.h"

#include <math.h>

#include "ffs_math.h"

FFS_VECTOR_LOOP void ffs_optim_apply(float *p, const float *grad, float *m, float *v, long n,
                     const ffs_optim_step_t *st) {
  const float mom = st->momentum, wd = st->weight_decay, lr = st->lr;
  if (st->kind == FFS_OPT_SGD) {
    for (long i = 0; i < n; i++) {
      m[i] = mom * m[i] + (1.0f - mom) * grad[i];
      p[i] -= lr * (m[i] + wd * p[i]);
    }
    return;
  }
  const float b2 = st->beta2, eps = st->eps;
  const float c1 = 1.0f - powf(mom, (float)st->step);
  const float c2 = 1.0f - powf(b2, (float)st->step);
  for (long i = 0; i < n; i++) {
    float g = grad[i] + wd * p[i];
    m[i] = mom * m[i] + (1.0f - mom) * g;
    v[i] = b2 * v[i] + (1.0f - b2) * g * g;
    p[i] -= lr * (m[i] / c1) / (sqrtf(v[i] / c2) + eps);
  }
}

FFS_VECTOR_LOOP void ffs_optim_sgd_outer(float *w, float *m, const float *a, const float *x,
                                         int rows, int n_out, int n_in, float keep, int step,
                                         float lr, float wd, float keep_next) {
  for (int j = 0; j < n_out; j++) {
    float *mj = m + (long)j * n_in, *wj = w + (long)j * n_in;
    // each row of m and w is read and written once from memory; the passes
    // below it run in L1
    if (keep != 1.0f) // 1: m already holds this step's decay; leave it clean
      for (int i = 0; i < n_in; i++) mj[i] *= keep;
    for (int r = 0; r < rows; r++) {
      const float arj = a[(long)r * n_out + j];
      const float *xr = x + (long)r * n_in;
      if (arj != 0.0f)
        for (int i = 0; i < n_in; i++) mj[i] += arj * xr[i];
    }
    if (step && keep_next != 1.0f) // the step, and the next step's decay of m
      for (int i = 0; i < n_in; i++) {
        wj[i] -= lr * (mj[i] + wd * wj[i]);
        mj[i] *= keep_next;
      }
    else if (step)
      for (int i = 0; i < n_in; i++) wj[i] -= lr * (mj[i] + wd * wj[i]);
  }
}

FFS_VECTOR_LOOP void ffs_optim_sgd_plain(float *w, const float *a, const float *x, int rows,
                                         int n_out, int n_in, float lr, float wd) {
  for (int j = 0; j < n_out; j++) {
    float *wj = w + (long)j * n_in;
    if (rows == 1) { // batch 1's neutral-free step: one outer product
      const float a0 = a[j], *x0 = x;
      for (int i = 0; i < n_in; i++) wj[i] -= lr * (a0 * x0[i] + wd * wj[i]);
    } else if (rows == 2) { // a pair frame: positive and negative row
      const float a0 = a[j], a1 = a[n_out + j], *x0 = x, *x1 = x + n_in;
      for (int i = 0; i < n_in; i++) wj[i] -= lr * ((a0 * x0[i] + a1 * x1[i]) + wd * wj[i]);
    } else {
      for (int i = 0; i < n_in; i++) {
        float g = 0.0f;
        for (int r = 0; r < rows; r++) g += a[(long)r * n_out + j] * x[(long)r * n_in + i];
        wj[i] -= lr * (g + wd * wj[i]);
      }
    }
  }
}

FFS_VECTOR_LOOP void ffs_optim_average(float *avg, const float *p, long n, float keep) {
  const float a = 1.0f - keep;
  for (long i = 0; i < n; i++) avg[i] += a * (p[i] - avg[i]);
}

float ffs_optim_cooldown(int epoch, int epochs) {
  if (epochs <= 1) return 1.0f;
  float f = 2.0f * (float)(epochs - epoch) / (float)epochs;
  return f < 1.0f ? f : 1.0f;
}
