// ff_layer: the FF objective (ALGORITHMS.md section 1) on a dense block
// (common/ffs_dense.h, which owns W, b, the input, the optimizer and the
// evaluation average): relu, goodness, the logistic loss, peer
// normalization and FFCL's label weights, turned into the pre-activation
// gradient the block steps on. State first, then the kernels (forward,
// loss, gradient, update). Never stores a frame's activations beyond the
// next forward: nothing is kept for a backward pass.
#include "ff_layer.h"

#include <assert.h>
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ffs_dense.h"
#include "ffs_math.h"
#include "ffs_optim.h"
#include "ffs_rng.h"

// ---- state ----

struct ffs_ff_layer {
  int in_dim, units, max_rows;
  int unit0, total_units; // a shard owns units [unit0, unit0 + units) of total_units
  float peer_avg;  // shard: mean peer mean over the whole layer (set from totals)
  float act_sum;   // shard: whole layer's sum of mean activities in the last forward
  ffs_layer_cfg_t cfg;
  float theta;     // resolved threshold
  ffs_dense_t *dense; // W, b, the input xn, their optimizer and averages
  float *peer;     // (units) running mean activity
  int pending;     // update: pair: a positive frame's gradient waits (in the
                   // block's, and gu) for its negative frame's
  float *y;        // (max_rows, units) relu activity
  float *yn;       // (max_rows, units) normalized activity
  float *g;        // (max_rows) goodness
  float *dz;       // (max_rows, units) gradient wrt pre-activation
  float *colsum;   // (units) scratch: sums of y over a frame's rows
  // FFCL label weights (n_labels > 0 only)
  int n_labels;
  float *u, *mu, *vu, *gu; // (n_labels, units) weights, optimizer state, gradient
  float *s;        // (max_rows, units) features W xn + b of the last forward
  uint8_t *lab;    // (max_rows) label of each row of the last forward
  float *ua;       // eval_average > 0: the moving average of u evaluation sees
};

static ffs_ff_layer_t *s_new(int in_dim, int units, int unit0, int total_units, int n_labels,
                             int max_rows, const ffs_layer_cfg_t *cfg, uint64_t seed,
                             uint64_t stream);

ffs_ff_layer_t *ffs_ff_layer_new(int in_dim, int units, int max_rows, const ffs_layer_cfg_t *cfg,
                                 uint64_t seed, uint64_t stream) {
  return ffs_ff_layer_new_labeled(in_dim, units, 0, max_rows, cfg, seed, stream);
}

ffs_ff_layer_t *ffs_ff_layer_new_labeled(int in_dim, int units, int n_labels, int max_rows,
                                         const ffs_layer_cfg_t *cfg, uint64_t seed,
                                         uint64_t stream) {
  return s_new(in_dim, units, 0, units, n_labels, max_rows, cfg, seed, stream);
}

ffs_ff_layer_t *ffs_ff_layer_new_shard(int in_dim, int units, int unit0, int total_units,
                                       int max_rows, const ffs_layer_cfg_t *cfg, uint64_t seed,
                                       uint64_t stream) {
  return s_new(in_dim, units, unit0, total_units, 0, max_rows, cfg, seed, stream);
}

static ffs_ff_layer_t *s_new(int in_dim, int units, int unit0, int total_units, int n_labels,
                             int max_rows, const ffs_layer_cfg_t *cfg, uint64_t seed,
                             uint64_t stream) {
  assert(in_dim > 0 && units > 0 && n_labels >= 0 && n_labels <= 255 && max_rows > 0 && cfg);
  assert(unit0 >= 0 && unit0 + units <= total_units && (total_units == units || !n_labels));
  ffs_ff_layer_t *l = calloc(1, sizeof *l);
  if (!l) return NULL;
  l->in_dim = in_dim, l->units = units, l->max_rows = max_rows, l->cfg = *cfg;
  l->unit0 = unit0, l->total_units = total_units;
  l->theta = cfg->theta > 0 ? cfg->theta
             : cfg->goodness == FFS_GOODNESS_MSQ ? 1.0f
                                                 : (float)total_units;
  ffs_rng_t rng;
  ffs_rng_seed(&rng, seed, stream); // W first (the block's), then U
  l->dense = ffs_dense_new(in_dim, units, unit0, total_units, max_rows, cfg, &rng);
  size_t nu = (size_t)units, nr = (size_t)max_rows;
  int adam = cfg->opt == FFS_OPT_ADAM;
  l->peer = malloc(nu * sizeof(float));
  l->y = malloc(nr * nu * sizeof(float));
  l->yn = malloc(nr * nu * sizeof(float));
  l->g = malloc(nr * sizeof(float));
  l->dz = malloc(nr * nu * sizeof(float));
  l->colsum = malloc(nu * sizeof(float));
  if (n_labels) {
    size_t nl = (size_t)n_labels * nu;
    l->n_labels = n_labels;
    l->u = malloc(nl * sizeof(float));
    l->mu = calloc(nl, sizeof(float));
    l->vu = adam ? calloc(nl, sizeof(float)) : NULL;
    l->gu = malloc(nl * sizeof(float));
    l->s = malloc(nr * nu * sizeof(float));
    l->lab = malloc(nr);
    l->ua = cfg->eval_average > 0.0f ? malloc(nl * sizeof(float)) : NULL;
  }
  if (!l->dense || !l->peer || !l->y || !l->yn || !l->g || !l->dz || !l->colsum ||
      (n_labels && (!l->u || !l->mu || !l->gu || !l->s || !l->lab || (adam && !l->vu) ||
                    (cfg->eval_average > 0.0f && !l->ua)))) {
    ffs_ff_layer_destroy(&l);
    return NULL;
  }
  for (size_t j = 0; j < nu; j++) l->peer[j] = 0.5f;
  float uscale = n_labels ? 1.0f / sqrtf((float)n_labels) : 0.0f;
  for (size_t i = 0; i < (size_t)n_labels * nu; i++) l->u[i] = ffs_rng_normal(&rng) * uscale;
  if (l->ua) memcpy(l->ua, l->u, (size_t)n_labels * nu * sizeof(float));
  return l;
}

void ffs_ff_layer_destroy(ffs_ff_layer_t **self_p) {
  assert(self_p);
  ffs_ff_layer_t *l = *self_p;
  if (!l) return;
  ffs_dense_destroy(&l->dense);
  float *bufs[] = {l->peer, l->y, l->yn, l->g, l->dz, l->u, l->mu, l->vu, l->gu, l->s, l->ua,
                   l->colsum};
  free(l->lab);
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
  free(l);
  *self_p = NULL;
}

// ---- kernels ----

void ffs_ff_layer_forward(ffs_ff_layer_t *l, const float *x, int rows) {
  ffs_ff_layer_forward_labeled(l, x, rows, NULL);
}

void ffs_ff_layer_set_eval(ffs_ff_layer_t *l, int eval) { ffs_dense_set_eval(l->dense, eval); }

void ffs_ff_layer_forward_labeled(ffs_ff_layer_t *l, const float *x, int rows,
                                  const uint8_t *labels) {
  assert(rows > 0 && rows <= l->max_rows);
  ffs_rms_normalize(ffs_dense_input(l->dense), x, rows, l->in_dim, 1e-8f);
  ffs_ff_layer_forward_normalized(l, rows, labels);
}

float *ffs_ff_layer_input(ffs_ff_layer_t *l) { return ffs_dense_input(l->dense); }

void ffs_ff_layer_forward_normalized(ffs_ff_layer_t *l, int rows, const uint8_t *labels) {
  assert(rows > 0 && rows <= l->max_rows);
  const int u = l->units;
  // evaluation with eval_average: the averaged weights (the block's, and u's)
  const float *uw = ffs_dense_eval(l->dense) ? l->ua : l->u;
  if (l->total_units != u) { // a shard: partial goodness; yn waits for the totals
    ffs_dense_forward(l->dense, l->y, rows);
    ffs_relu(l->y, (long)rows * u);
    ffs_goodness(l->g, l->y, rows, u, FFS_GOODNESS_SSQ);
    return;
  }
  if (!l->n_labels) {
    ffs_dense_forward(l->dense, l->y, rows);
    ffs_relu(l->y, (long)rows * u);
    ffs_rms_normalize(l->yn, l->y, rows, u, 1e-8f);
  } else {
    // FFCL: features s go on (as relu(s), normalized); y = relu(s + U[label])
    ffs_dense_forward(l->dense, l->s, rows);
    for (int r = 0; r < rows; r++) {
      const float *sr = l->s + (long)r * u;
      float *yr = l->y + (long)r * u, *fr = l->yn + (long)r * u;
      int c = labels ? labels[r] : 255;
      l->lab[r] = (uint8_t)c;
      for (int j = 0; j < u; j++) fr[j] = sr[j] > 0.0f ? sr[j] : 0.0f;
      if (c < l->n_labels) {
        const float *uc = uw + (long)c * u;
        for (int j = 0; j < u; j++) yr[j] = sr[j] + uc[j] > 0.0f ? sr[j] + uc[j] : 0.0f;
      } else {
        memcpy(yr, fr, sizeof(float) * (size_t)u);
      }
    }
    ffs_rms_normalize(l->yn, l->yn, rows, u, 1e-8f);
  }
  ffs_goodness(l->g, l->y, rows, u, l->cfg.goodness);
}

void ffs_ff_layer_label_goodness(const ffs_ff_layer_t *l, int rows, float *out) {
  assert(l->n_labels > 0 && rows > 0 && rows <= l->max_rows);
  const int u = l->units;
  const float *uw = ffs_dense_eval(l->dense) ? l->ua : l->u; // as the forward chose
  for (int r = 0; r < rows; r++) {
    const float *sr = l->s + (long)r * u;
    for (int c = 0; c < l->n_labels; c++) {
      const float *uc = uw + (long)c * u;
      float ssq = 0.0f; // ffs_goodness sums in another order: equal up to rounding
      for (int j = 0; j < u; j++) {
        float z = sr[j] + uc[j];
        if (z > 0.0f) ssq += z * z;
      }
      out[(long)r * l->n_labels + c] = l->cfg.goodness == FFS_GOODNESS_MSQ ? ssq / (float)u : ssq;
    }
  }
}

// colsum (u) = the sums over rows of y (rows, u), row by row (contiguous,
// vectorized), in float as the forward's own sums are.
FFS_VECTOR_LOOP static void s_col_sums(float *colsum, const float *y, int rows, int u) {
  for (int j = 0; j < u; j++) colsum[j] = 0.0f;
  for (int r = 0; r < rows; r++)
    for (int j = 0; j < u; j++) colsum[j] += y[(long)r * u + j];
}

int ffs_ff_layer_partials(const ffs_ff_layer_t *l, int rows, int mean_rows, float *out) {
  assert(rows > 0 && rows <= l->max_rows && mean_rows > 0 && mean_rows <= rows);
  const int u = l->units;
  memcpy(out, l->g, sizeof(float) * (size_t)rows); // the forward's partial sums of squares
  double peer = 0.0, act = 0.0;
  for (int j = 0; j < u; j++) peer += l->peer[j];
  s_col_sums(l->colsum, l->y, mean_rows, u);
  for (int j = 0; j < u; j++) act += l->colsum[j];
  out[rows] = (float)peer;
  out[rows + 1] = (float)(act / mean_rows);
  return rows + 2;
}

void ffs_ff_layer_set_totals(ffs_ff_layer_t *l, int rows, const float *tot) {
  assert(rows > 0 && rows <= l->max_rows);
  const int u = l->units;
  const float n = (float)l->total_units;
  for (int r = 0; r < rows; r++) {
    l->g[r] = l->cfg.goodness == FFS_GOODNESS_MSQ ? tot[r] / n : tot[r];
    float inv = 1.0f / (sqrtf(tot[r] / n) + 1e-8f); // the whole row's RMS norm
    const float *yr = l->y + (long)r * u;
    float *o = l->yn + (long)r * u;
    for (int j = 0; j < u; j++) o[j] = yr[j] * inv;
  }
  l->peer_avg = tot[rows] / n;
  l->act_sum = tot[rows + 1];
}

const float *ffs_ff_layer_goodness(const ffs_ff_layer_t *l) { return l->g; }
const float *ffs_ff_layer_output(const ffs_ff_layer_t *l) { return l->yn; }
const float *ffs_ff_layer_activity(const ffs_ff_layer_t *l) { return l->y; }

// Mean FF loss of the last forward's rows [r0, r1), all of one polarity.
static double s_mean_loss(const ffs_ff_layer_t *l, int r0, int r1, int positive) {
  double sum = 0.0;
  for (int r = r0; r < r1; r++)
    sum += ffs_ff_loss(ffs_ff_logit(l->g[r], l->theta, l->cfg.temp, l->cfg.goodness), positive);
  return sum / (r1 - r0);
}

float ffs_ff_layer_loss(const ffs_ff_layer_t *l, int rows, int positive) {
  return (float)s_mean_loss(l, 0, rows, positive);
}

static void s_dz(ffs_ff_layer_t *l, int rows, int n_pos, int accumulate);

void ffs_ff_layer_grad(ffs_ff_layer_t *l, int rows, int positive, float *gw, float *gb) {
  s_dz(l, rows, positive ? rows : 0, 0);
  ffs_linear_backward_w(gw, gb, l->dz, ffs_dense_input(l->dense), rows, l->in_dim, l->units, 0);
}

// One row of dL/dz: a * y (the relu gate is implicit: y = 0 wherever the
// unit is off) minus the peer-normalization pull lam * (peer_avg - peer).
FFS_VECTOR_LOOP static void s_dz_row(float *restrict dz, const float *restrict y,
                                     const float *restrict peer, int u, float a, float lam,
                                     float peer_avg) {
  if (lam > 0.0f)
    for (int j = 0; j < u; j++) dz[j] = a * y[j] - lam * (peer_avg - peer[j]);
  else
    for (int j = 0; j < u; j++) dz[j] = a * y[j];
}

// dz: the gradient wrt the pre-activation of the mean loss of rows
// [0, n_pos) as positives plus the mean loss of the rest as negatives (one
// of the two may be empty); and U's (gu), or added to what gu holds.
static void s_dz(ffs_ff_layer_t *l, int rows, int n_pos, int accumulate) {
  const int u = l->units;
  const ffs_layer_cfg_t *c = &l->cfg;
  // dG/dy = 2y (ssq, min_ssq) or 2y/units (msq); the relu gate is implicit:
  // y = 0 wherever the unit is off.
  float dgdy = c->goodness == FFS_GOODNESS_MSQ ? 2.0f / (float)l->total_units : 2.0f;
  // Peer normalization: push each unit's running mean toward the layer's
  // mean, applied to every row and NOT gated by the relu so dead units revive.
  float peer_avg = 0.0f;
  if (c->peer_lambda > 0.0f && l->total_units != u) {
    peer_avg = l->peer_avg; // a shard: the whole layer's, from the totals
  } else if (c->peer_lambda > 0.0f) {
    for (int j = 0; j < u; j++) peer_avg += l->peer[j];
    peer_avg /= (float)u;
  }
  for (int r = 0; r < rows; r++) {
    int positive = r < n_pos;
    float n = (float)(positive ? n_pos : rows - n_pos); // rows of this polarity
    float logit = ffs_ff_logit(l->g[r], l->theta, c->temp, c->goodness);
    float dldg = ffs_ff_dloss_dg(logit, positive, c->temp, c->goodness) / n;
    s_dz_row(l->dz + (long)r * u, l->y + (long)r * u, l->peer, u, dldg * dgdy,
             c->peer_lambda / n, peer_avg);
  }
  if (l->n_labels) { // dL/dU[c] = sum of dz over the rows labeled c
    if (!accumulate) memset(l->gu, 0, sizeof(float) * (size_t)l->n_labels * (size_t)u);
    for (int r = 0; r < rows; r++) {
      if (l->lab[r] >= l->n_labels) continue;
      float *gc = l->gu + (long)l->lab[r] * u;
      const float *dr = l->dz + (long)r * u;
      for (int j = 0; j < u; j++) gc[j] += dr[j];
    }
  }
}

static void s_step(ffs_ff_layer_t *l, float lr_factor);

// Peer normalization's running means, from the last forward's first n rows
// (its positive rows).
static void s_peer_update(ffs_ff_layer_t *l, int n) {
  const ffs_layer_cfg_t *c = &l->cfg;
  if (c->peer_lambda <= 0.0f) return;
  s_col_sums(l->colsum, l->y, n, l->units);
  for (int j = 0; j < l->units; j++)
    l->peer[j] = c->peer_decay * l->peer[j] + (1.0f - c->peer_decay) * l->colsum[j] / (float)n;
  // a shard: the same update of the whole layer's mean, from the totals
  if (l->total_units != l->units)
    l->peer_avg = c->peer_decay * l->peer_avg +
                  (1.0f - c->peer_decay) * l->act_sum / (float)l->total_units;
}

float ffs_ff_layer_learn(ffs_ff_layer_t *l, int rows, int positive, float lr_factor) {
  const ffs_layer_cfg_t *c = &l->cfg;
  float loss = ffs_ff_layer_loss(l, rows, positive);
  if (positive) s_peer_update(l, rows);
  // update: pair sums a positive frame's gradient with the next negative
  // frame's and steps once (a positive without its negative steps alone)
  int pair = c->update == FFS_UPDATE_PAIR;
  if (pair && positive && l->pending) s_step(l, lr_factor);
  int accumulate = pair && !positive && l->pending;
  s_dz(l, rows, positive ? rows : 0, accumulate);
  ffs_dense_add_grad(l->dense, l->dz, rows, accumulate);
  l->pending = pair && positive;
  if (!l->pending) s_step(l, lr_factor);
  return loss;
}

float ffs_ff_layer_learn_pair(ffs_ff_layer_t *l, int rows, int n_pos, float lr_factor) {
  assert(n_pos > 0 && n_pos < rows && rows <= l->max_rows);
  float loss = (float)(s_mean_loss(l, 0, n_pos, 1) + s_mean_loss(l, n_pos, rows, 0));
  if (l->pending) s_step(l, lr_factor); // update: pair's positive frame, alone
  l->pending = 0;
  s_peer_update(l, n_pos);
  s_dz(l, rows, n_pos, 0);
  ffs_dense_add_grad(l->dense, l->dz, rows, 0);
  s_step(l, lr_factor);
  return loss;
}

// One optimizer step: the block's W and b, and (FFCL) U with the same step.
static void s_step(ffs_ff_layer_t *l, float lr_factor) {
  ffs_optim_step_t st;
  int averaged;
  float keep;
  ffs_dense_step(l->dense, lr_factor, &st, &averaged, &keep);
  if (!l->n_labels) return;
  ffs_optim_apply(l->u, l->gu, l->mu, l->vu, (long)l->n_labels * l->units, &st);
  if (averaged && l->ua) ffs_optim_average(l->ua, l->u, (long)l->n_labels * l->units, keep);
}

ffs_ff_layer_opt_t ffs_ff_layer_opt(ffs_ff_layer_t *l) {
  ffs_dense_opt_t d = ffs_dense_opt(l->dense);
  return (ffs_ff_layer_opt_t){.m_w = d.m_w, .m_b = d.m_b, .v_w = d.v_w, .v_b = d.v_b,
                              .m_u = l->mu, .v_u = l->vu, .g_w = d.g_w, .g_b = d.g_b,
                              .g_u = l->gu};
}

void ffs_ff_layer_settle(ffs_ff_layer_t *l) { ffs_dense_settle(l->dense); }

enum { S_STEP_LOW = 1 << 20 };

void ffs_ff_layer_opt_scalars(const ffs_ff_layer_t *l, float *out) {
  long step = ffs_dense_steps(l->dense);
  out[0] = (float)(step % S_STEP_LOW);
  out[1] = (float)(step / S_STEP_LOW);
  out[2] = (float)l->pending;
  out[3] = (float)ffs_dense_m_open(l->dense); // asserts it settled
}

int ffs_ff_layer_set_opt_scalars(ffs_ff_layer_t *l, const float *in) {
  for (int k = 0; k < FFS_FF_LAYER_OPT_SCALARS; k++)
    if (!(in[k] >= 0.0f && in[k] == floorf(in[k]))) return -1; // also NaN
  if (in[0] >= (float)S_STEP_LOW || in[1] >= (float)S_STEP_LOW || in[2] > 1.0f || in[3] > 1.0f)
    return -1;
  ffs_dense_set_state(l->dense, (long)in[1] * S_STEP_LOW + (long)in[0], (int)in[3]);
  l->pending = (int)in[2];
  return 0;
}

float *ffs_ff_layer_weights(ffs_ff_layer_t *l) { return ffs_dense_weights(l->dense); }
float *ffs_ff_layer_bias(ffs_ff_layer_t *l) { return ffs_dense_bias(l->dense); }
void ffs_ff_layer_restart_average(ffs_ff_layer_t *l) {
  ffs_dense_restart_average(l->dense);
  if (l->ua) memcpy(l->ua, l->u, (size_t)l->n_labels * (size_t)l->units * sizeof(float));
}

float *ffs_ff_layer_avg_weights(ffs_ff_layer_t *l) { return ffs_dense_avg_weights(l->dense); }
float *ffs_ff_layer_avg_bias(ffs_ff_layer_t *l) { return ffs_dense_avg_bias(l->dense); }
float *ffs_ff_layer_avg_label_weights(ffs_ff_layer_t *l) { return l->ua; }
float *ffs_ff_layer_peer_mean(ffs_ff_layer_t *l) { return l->peer; }
float ffs_ff_layer_theta(const ffs_ff_layer_t *l) { return l->theta; }
float *ffs_ff_layer_label_weights(ffs_ff_layer_t *l) { return l->u; }
const float *ffs_ff_layer_label_grad(const ffs_ff_layer_t *l) { return l->gu; }
int ffs_ff_layer_n_labels(const ffs_ff_layer_t *l) { return l->n_labels; }
