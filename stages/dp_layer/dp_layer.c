// dp_layer: dual propagation's arithmetic on the dense block (dp_layer.h).
#include "dp_layer.h"

#include <assert.h>
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ffs_math.h"
#include "ffs_rng.h"

struct ffs_dp_layer {
  int in_dim, units, max_rows;
  ffs_dp_cfg_t cfg;
  ffs_dense_t *dense;
  float *pv, *pu; // (in_dim), (units): the power iteration's vectors
  int power_runs; // calls of ffs_dp_layer_damping so far
};

ffs_dp_layer_t *ffs_dp_layer_new(int in_dim, int units, int max_rows, const ffs_layer_cfg_t *lc,
                                 const ffs_dp_cfg_t *dc, uint64_t seed, uint64_t stream) {
  assert(in_dim > 0 && units > 0 && max_rows > 0 && lc && dc);
  ffs_dp_layer_t *l = calloc(1, sizeof *l);
  if (!l) return NULL;
  l->in_dim = in_dim, l->units = units, l->max_rows = max_rows, l->cfg = *dc;
  ffs_rng_t rng;
  ffs_rng_seed(&rng, seed, stream);
  l->dense = ffs_dense_new(in_dim, units, 0, units, max_rows, lc, &rng);
  l->pv = malloc(sizeof(float) * (size_t)in_dim);
  l->pu = malloc(sizeof(float) * (size_t)units);
  if (!l->dense || !l->pv || !l->pu) {
    ffs_dp_layer_destroy(&l);
    return NULL;
  }
  ffs_rng_t prng; // its own stream: the weights' draw is as without it
  ffs_rng_seed(&prng, seed, stream + 1000000);
  for (int i = 0; i < in_dim; i++) l->pv[i] = ffs_rng_normal(&prng);
  return l;
}

void ffs_dp_layer_destroy(ffs_dp_layer_t **self_p) {
  if (!self_p || !*self_p) return;
  ffs_dense_destroy(&(*self_p)->dense);
  free((*self_p)->pv), free((*self_p)->pu);
  free(*self_p);
  *self_p = NULL;
}

ffs_dense_t *ffs_dp_layer_dense(ffs_dp_layer_t *l) { return l->dense; }

static float s_f(ffs_dp_act_t act, float a) {
  return act == FFS_DP_TANH ? tanhf(a) : a > 0.0f ? a : 0.0f;
}

static float s_df(ffs_dp_act_t act, float a) {
  if (act == FFS_DP_TANH) {
    float t = tanhf(a);
    return 1.0f - t * t;
  }
  return a > 0.0f ? 1.0f : 0.0f;
}

void ffs_dp_layer_forward(ffs_dp_layer_t *l, const float *x, int rows, float *a, float *out) {
  assert(rows > 0 && rows <= l->max_rows);
  float *in = ffs_dense_input(l->dense);
  if (x != in) memcpy(in, x, sizeof(float) * (size_t)rows * (size_t)l->in_dim);
  ffs_dense_forward(l->dense, a, rows);
  if (!out) return;
  long n = (long)rows * l->units;
  if (l->cfg.top) {
    if (out != a) memcpy(out, a, sizeof(float) * (size_t)n);
    return;
  }
  for (long i = 0; i < n; i++) out[i] = s_f(l->cfg.act, a[i]);
}

int ffs_dp_layer_top(ffs_dp_layer_t *l, const float *a, const uint8_t *labels, int rows, float *dz,
                     double *loss_sum) {
  const int u = l->units;
  int wrong = 0;
  double loss = 0.0;
  for (int r = 0; r < rows; r++) {
    if (labels[r] >= u) return -1;
    const float *ar = a + (long)r * u;
    float *d = dz + (long)r * u;
    wrong += ffs_argmax(ar, u) != labels[r];
    if (l->cfg.loss == FFS_DP_LOSS_CE) {
      memcpy(d, ar, sizeof(float) * (size_t)u);
      ffs_softmax_rows(d, 1, u);
      loss -= log(d[labels[r]] > 1e-30f ? d[labels[r]] : 1e-30f);
      d[labels[r]] -= 1.0f;
    } else {
      for (int c = 0; c < u; c++) {
        d[c] = ar[c] - (c == labels[r] ? 1.0f : 0.0f);
        loss += 0.5 * d[c] * d[c];
      }
    }
    for (int c = 0; c < u; c++) d[c] /= (float)rows; // the batch's mean loss
  }
  if (loss_sum) *loss_sum = loss;
  return wrong;
}

void ffs_dp_layer_hidden(const ffs_dp_layer_t *l, const float *a, const float *fb, float damp,
                         int rows, float *dz) {
  const long n = (long)rows * l->units;
  const ffs_dp_act_t act = l->cfg.act;
  if (l->cfg.rule == FFS_DP_BACKPROP) {
    for (long i = 0; i < n; i++) dz[i] = s_df(act, a[i]) * fb[i];
    return;
  }
  // the dyad: s+ = f(a + (1 - alpha) fb), s- = f(a - alpha fb), both
  // compartments pulled toward s0 = f(a) with weight L = damp (for L = 0,
  // base = a and k = 1 exactly: the undamped dyad to the bit)
  const float alpha = l->cfg.alpha, inv_beta = 1.0f / l->cfg.beta;
  const float k = 1.0f / (1.0f + damp);
  for (long i = 0; i < n; i++) {
    float base = a[i] + damp * s_f(act, a[i]);
    float sp = s_f(act, (base + (1.0f - alpha) * fb[i]) * k);
    float sm = s_f(act, (base - alpha * fb[i]) * k);
    dz[i] = -(sp - sm) * inv_beta;
  }
}

float ffs_dp_layer_damping(ffs_dp_layer_t *l, float *sigma_out) {
  const float *w = ffs_dense_weights(l->dense); // (units, in_dim)
  const int u = l->units, in = l->in_dim;
  int iters = l->power_runs++ ? FFS_DP_POWER_ITERS : FFS_DP_POWER_FIRST;
  double sigma = 0.0;
  for (int it = 0; it < iters; it++) {
    // v <- W^T W v / |W^T W v|; sigma = |W v| for the unit v before the step
    double nv = cblas_snrm2(in, l->pv, 1);
    if (!(nv > 0.0) || !isfinite(nv)) { // a zero or broken vector: start over
      for (int i = 0; i < in; i++) l->pv[i] = (float)((i % 7) + 1);
      nv = cblas_snrm2(in, l->pv, 1);
    }
    cblas_sscal(in, (float)(1.0 / nv), l->pv, 1);
    cblas_sgemv(CblasRowMajor, CblasNoTrans, u, in, 1.0f, w, in, l->pv, 1, 0.0f, l->pu, 1);
    sigma = cblas_snrm2(u, l->pu, 1);
    cblas_sgemv(CblasRowMajor, CblasTrans, u, in, 1.0f, w, in, l->pu, 1, 0.0f, l->pv, 1);
  }
  if (sigma_out) *sigma_out = (float)sigma;
  double damp = (sigma * sigma - 1.0) / 2.0;
  return damp > 0.0 ? (float)damp : 0.0f;
}

void ffs_dp_layer_down(ffs_dp_layer_t *l, const float *dz, int rows, float *down) {
  // down (rows, in) = scale dz (rows, units) W (units, in); W^T (s+ - s-) is
  // -beta dz W since s+ - s- = -beta dz
  float scale = l->cfg.rule == FFS_DP_BACKPROP ? 1.0f : -l->cfg.beta;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, l->in_dim, l->units, scale, dz,
              l->units, ffs_dense_weights(l->dense), l->in_dim, 0.0f, down, l->in_dim);
}

void ffs_dp_layer_learn(ffs_dp_layer_t *l, const float *x, const float *dz, int rows,
                        float lr_factor) {
  float *in = ffs_dense_input(l->dense);
  if (x != in) memcpy(in, x, sizeof(float) * (size_t)rows * (size_t)l->in_dim);
  ffs_dense_add_grad(l->dense, dz, rows, 0);
  ffs_dense_step(l->dense, lr_factor, NULL, NULL, NULL);
}
