// ffs_dense: the dense block (see ffs_dense.h). ---- state ---- the
// parameters, the optimizer's state and the input buffer; ---- kernels ----
// forward, gradient, step. The weight update writes no gradient matrix
// with sgd: frames of up to S_FACTOR_ROWS rows keep theirs as factors
// until the step, larger ones go through one sgemm into the smoothed
// gradient (docs/ARCHITECTURE.md, "Placement").
#include "ffs_dense.h"

#include "ffs_ckpt.h"

#include <assert.h>
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "ffs_math.h"

// sgd: frames of at most this many rows (the streaming case) keep their
// weight gradient as factors (rows of dz and xn) until the step, which then
// reads and writes w and its smoothed gradient once.
enum { S_FACTOR_ROWS = 8 };

// ---- state ----

struct ffs_dense {
  int in_dim, units, max_rows;
  ffs_layer_cfg_t cfg;
  float *w;        // (units, in_dim)
  float *b;        // (units)
  float *mw, *vw;  // (units, in_dim) optimizer state for w (vw: adam only)
  float *mb, *vb;  // (units)
  float *gw, *gb;  // gradient waiting for the step (gw: adam only; sgd adds into mw)
  long step;       // steps taken
  float *xn;       // (max_rows, in_dim) normalized input of the next / last forward
  int m_open;      // sgd: mw already holds this step's decay (0 only before the first)
  int n_factor;    // sgd: rows of factors waiting for the step
  int m_grad;      // sgd: mw holds gradient of the step in progress (not only factors)
  float *fa, *fx;  // (S_FACTOR_ROWS, units) (1 - momentum) dz, (.., in_dim) xn
  float *wa, *ba;  // eval_average > 0: moving averages of w, b that evaluation sees
  int eval;        // the next forwards serve evaluation frames
};

ffs_dense_t *ffs_dense_new(int in_dim, int units, int unit0, int total_units, int max_rows,
                           const ffs_layer_cfg_t *cfg, ffs_rng_t *rng) {
  assert(in_dim > 0 && units > 0 && max_rows > 0 && cfg && rng);
  assert(unit0 >= 0 && unit0 + units <= total_units);
  ffs_dense_t *d = calloc(1, sizeof *d);
  if (!d) return NULL;
  d->in_dim = in_dim, d->units = units, d->max_rows = max_rows, d->cfg = *cfg;
  size_t nw = (size_t)units * (size_t)in_dim, nu = (size_t)units, nr = (size_t)max_rows;
  int adam = cfg->opt == FFS_OPT_ADAM;
  d->w = malloc(nw * sizeof(float));
  d->b = calloc(nu, sizeof(float));
  d->mw = calloc(nw, sizeof(float));
  d->mb = calloc(nu, sizeof(float));
  d->vw = adam ? calloc(nw, sizeof(float)) : NULL;
  d->vb = adam ? calloc(nu, sizeof(float)) : NULL;
  d->gw = adam ? malloc(nw * sizeof(float)) : NULL;
  d->gb = malloc(nu * sizeof(float));
  d->xn = malloc(nr * (size_t)in_dim * sizeof(float));
  d->fa = adam ? NULL : malloc(S_FACTOR_ROWS * nu * sizeof(float));
  d->fx = adam ? NULL : malloc(S_FACTOR_ROWS * (size_t)in_dim * sizeof(float));
  if (cfg->eval_average > 0.0f) {
    d->wa = malloc(nw * sizeof(float));
    d->ba = calloc(nu, sizeof(float));
  }
  if (!d->w || !d->b || !d->mw || !d->mb || !d->gb || !d->xn ||
      (adam && (!d->vw || !d->vb || !d->gw)) || (!adam && (!d->fa || !d->fx)) ||
      (cfg->eval_average > 0.0f && (!d->wa || !d->ba))) {
    ffs_dense_destroy(&d);
    return NULL;
  }
  float scale = 1.0f / sqrtf((float)in_dim);
  size_t before = (size_t)unit0 * (size_t)in_dim;
  size_t after = (size_t)(total_units - unit0 - units) * (size_t)in_dim;
  for (size_t i = 0; i < before; i++) (void)ffs_rng_normal(rng);
  for (size_t i = 0; i < nw; i++) d->w[i] = ffs_rng_normal(rng) * scale;
  for (size_t i = 0; i < after; i++) (void)ffs_rng_normal(rng);
  if (d->wa) memcpy(d->wa, d->w, nw * sizeof(float)); // the averages start from W
  return d;
}

void ffs_dense_destroy(ffs_dense_t **self_p) {
  assert(self_p);
  ffs_dense_t *d = *self_p;
  if (!d) return;
  float *bufs[] = {d->w, d->b, d->mw, d->vw, d->mb, d->vb, d->gw,
                   d->gb, d->xn, d->fa, d->fx, d->wa, d->ba};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
  free(d);
  *self_p = NULL;
}

// ---- kernels ----

float *ffs_dense_input(ffs_dense_t *d) { return d->xn; }
void ffs_dense_set_eval(ffs_dense_t *d, int eval) { d->eval = eval; }
int ffs_dense_eval(const ffs_dense_t *d) { return d->eval && d->wa; }

void ffs_dense_forward(ffs_dense_t *d, float *z, int rows) {
  assert(rows > 0 && rows <= d->max_rows);
  const int avg = ffs_dense_eval(d);
  ffs_linear_forward(z, d->xn, avg ? d->wa : d->w, avg ? d->ba : d->b, rows, d->in_dim, d->units);
}

// sgd: the factors waiting go into mw (w's smoothed gradient); with step,
// w steps on it as well and mw takes the next step's decay. One pass over w
// and mw either way; afterwards mw is open (holds its decay) for the next
// gradient.
static void s_w_flush(ffs_dense_t *d, int step, float lr) {
  if (!step && !d->n_factor) return;
  const ffs_layer_cfg_t *c = &d->cfg;
  if (step && c->momentum == 0.0f && d->m_open && !d->m_grad) {
    // no momentum and mw is zero (zeroed by the first step, never added to
    // since): the step is the factors' alone, without a pass over mw
    ffs_optim_sgd_plain(d->w, d->fa, d->fx, d->n_factor, d->units, d->in_dim, lr,
                        c->weight_decay);
    d->n_factor = 0;
    return;
  }
  d->m_grad = !step; // a flush without a step leaves gradient in mw
  ffs_optim_sgd_outer(d->w, d->mw, d->fa, d->fx, d->n_factor, d->units, d->in_dim,
                      d->m_open ? 1.0f : c->momentum, step, lr, c->weight_decay,
                      step ? c->momentum : 1.0f);
  d->n_factor = 0;
  d->m_open = 1;
}

void ffs_dense_add_grad(ffs_dense_t *d, const float *dz, int rows, int accumulate) {
  assert(rows > 0 && rows <= d->max_rows);
  const int u = d->units, in = d->in_dim;
  const int sgd = d->cfg.opt == FFS_OPT_SGD;
  ffs_linear_backward_w(sgd ? NULL : d->gw, d->gb, dz, d->xn, rows, in, u, accumulate);
  if (!sgd) return;
  // sgd: (1 - momentum) dz^T xn goes into the step in progress: as factors
  // while they are few, else by sgemm into mw
  const float a = 1.0f - d->cfg.momentum;
  if (d->n_factor + rows <= S_FACTOR_ROWS) {
    float *fa = d->fa + (long)d->n_factor * u;
    for (long i = 0; i < (long)rows * u; i++) fa[i] = a * dz[i];
    memcpy(d->fx + (long)d->n_factor * in, d->xn, sizeof(float) * (size_t)rows * (size_t)in);
    d->n_factor += rows;
    return;
  }
  s_w_flush(d, 0, 0.0f);
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, u, in, rows, a, dz, u, d->xn, in,
              d->m_open ? 1.0f : d->cfg.momentum, d->mw, in);
  d->m_open = 1, d->m_grad = 1;
}

void ffs_dense_step(ffs_dense_t *d, float lr_factor, ffs_optim_step_t *st_out, int *averaged,
                    float *keep) {
  const ffs_layer_cfg_t *c = &d->cfg;
  d->step++;
  ffs_optim_step_t st = {.kind = c->opt, .lr = c->lr * lr_factor, .momentum = c->momentum,
                         .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = c->weight_decay,
                         .step = d->step};
  if (st_out) *st_out = st;
  if (c->opt == FFS_OPT_SGD)
    s_w_flush(d, 1, st.lr);
  else
    ffs_optim_apply(d->w, d->gw, d->mw, d->vw, (long)d->units * d->in_dim, &st);
  st.weight_decay = 0.0f; // no decay on biases
  ffs_optim_apply(d->b, d->gb, d->mb, d->vb, d->units, &st);
  int avg = d->wa && d->step % FFS_DENSE_AVERAGE_EVERY == 0;
  float k = avg ? powf(c->eval_average, (float)FFS_DENSE_AVERAGE_EVERY) : 1.0f;
  if (avg) {
    ffs_optim_average(d->wa, d->w, (long)d->units * d->in_dim, k);
    ffs_optim_average(d->ba, d->b, d->units, k);
  }
  if (averaged) *averaged = avg;
  if (keep) *keep = k;
}

void ffs_dense_settle(ffs_dense_t *d) {
  if (d->cfg.opt == FFS_OPT_SGD) s_w_flush(d, 0, 0.0f);
}

// ---- parameters and state ----

float *ffs_dense_weights(ffs_dense_t *d) { return d->w; }
float *ffs_dense_bias(ffs_dense_t *d) { return d->b; }
float *ffs_dense_avg_weights(ffs_dense_t *d) { return d->wa; }
float *ffs_dense_avg_bias(ffs_dense_t *d) { return d->ba; }

void ffs_dense_restart_average(ffs_dense_t *d) {
  if (!d->wa) return;
  memcpy(d->wa, d->w, (size_t)d->units * (size_t)d->in_dim * sizeof(float));
  memcpy(d->ba, d->b, (size_t)d->units * sizeof(float));
}

ffs_dense_opt_t ffs_dense_opt(ffs_dense_t *d) {
  return (ffs_dense_opt_t){.m_w = d->mw, .m_b = d->mb, .v_w = d->vw, .v_b = d->vb,
                           .g_w = d->gw, .g_b = d->gb};
}

long ffs_dense_steps(const ffs_dense_t *d) { return d->step; }

int ffs_dense_m_open(const ffs_dense_t *d) {
  assert(d->n_factor == 0); // settled
  return d->m_open;
}

void ffs_dense_set_state(ffs_dense_t *d, long steps, int m_open) {
  d->step = steps;
  d->m_open = m_open;
  d->n_factor = 0;
}

// ---- checkpoints ----

enum { S_GROUPS = 3, S_PER_BLOCK = 11, S_NAME = 40 };
typedef char s_names_t[S_PER_BLOCK][S_NAME];

// One block's tensors, names prefixed, in the three groups (parameters,
// averages, optimizer state): group g into t[g][*n[g]...].
static void s_tensors(ffs_dense_t *d, const char *prefix, s_names_t nm,
                      ffs_tensor_ref_t t[S_GROUPS][FFS_CKPT_MAX_TENSORS], int n[S_GROUPS],
                      float *state) {
  int u = d->units, w = d->in_dim, k = 0;
  ffs_dense_opt_t o = ffs_dense_opt(d);
  int adam = d->cfg.opt == FFS_OPT_ADAM;
  static const char *const opt_names[2][7] = {
      {"sgd.m_w", "sgd.v_w", "sgd.g_w", "sgd.m_b", "sgd.v_b", "sgd.g_b", "sgd.state"},
      {"adam.m_w", "adam.v_w", "adam.g_w", "adam.m_b", "adam.v_b", "adam.g_b", "adam.state"}};
  const struct { int group; const char *name; float *data; int rows, cols; } all[S_PER_BLOCK] = {
      {0, "w", d->w, u, w},          {0, "b", d->b, u, 0},
      {1, "w_avg", d->wa, u, w},     {1, "b_avg", d->ba, u, 0},
      {2, opt_names[adam][0], o.m_w, u, w}, {2, opt_names[adam][1], o.v_w, u, w},
      {2, opt_names[adam][2], o.g_w, u, w}, {2, opt_names[adam][3], o.m_b, u, 0},
      {2, opt_names[adam][4], o.v_b, u, 0}, {2, opt_names[adam][5], o.g_b, u, 0},
      {2, opt_names[adam][6], state, 3, 0}};
  for (int j = 0; j < S_PER_BLOCK; j++) {
    if (!all[j].data) continue;
    snprintf(nm[k], S_NAME, "%s%s", prefix, all[j].name);
    int g = all[j].group;
    t[g][n[g]++] = (ffs_tensor_ref_t){nm[k++], all[j].cols ? 2 : 1,
                                      {all[j].rows, all[j].cols}, all[j].data};
  }
}

// Every block's tensors, group after group: t and ends as ffs_ckpt_load_groups takes them.
static int s_gather(ffs_dense_t *const *d, const char *const *prefix, int n_blocks,
                    s_names_t *nm, float (*state)[3], ffs_tensor_ref_t *t, int ends[S_GROUPS]) {
  ffs_tensor_ref_t g[S_GROUPS][FFS_CKPT_MAX_TENSORS];
  int n[S_GROUPS] = {0}, total = 0;
  for (int b = 0; b < n_blocks; b++) s_tensors(d[b], prefix[b], nm[b], g, n, state[b]);
  for (int k = 0; k < S_GROUPS; k++) {
    for (int j = 0; j < n[k]; j++) t[total++] = g[k][j];
    ends[k] = total;
  }
  return total;
}

int ffs_dense_save_blocks(ffs_dense_t *const *d, const char *const *prefix, int n_blocks,
                          const char *path, const char *const *meta, int n_meta, char *err,
                          size_t errlen) {
  assert(n_blocks >= 1 && n_blocks <= FFS_DENSE_CKPT_BLOCKS);
  ffs_tensor_ref_t t[FFS_CKPT_MAX_TENSORS];
  s_names_t nm[FFS_DENSE_CKPT_BLOCKS];
  float state[FFS_DENSE_CKPT_BLOCKS][3];
  int ends[S_GROUPS];
  for (int b = 0; b < n_blocks; b++) {
    ffs_dense_settle(d[b]);
    state[b][0] = (float)(d[b]->step & 0xFFFFF), state[b][1] = (float)(d[b]->step >> 20);
    state[b][2] = (float)d[b]->m_open;
  }
  int n = s_gather(d, prefix, n_blocks, nm, state, t, ends);
  return ffs_ckpt_save(path, t, n, meta, n_meta, err, errlen);
}

int ffs_dense_load_blocks(ffs_dense_t *const *d, const char *const *prefix, int n_blocks,
                          const char *path, char *err, size_t errlen) {
  assert(n_blocks >= 1 && n_blocks <= FFS_DENSE_CKPT_BLOCKS);
  ffs_tensor_ref_t t[FFS_CKPT_MAX_TENSORS];
  s_names_t nm[FFS_DENSE_CKPT_BLOCKS];
  float state[FFS_DENSE_CKPT_BLOCKS][3] = {{0}};
  int ends[S_GROUPS];
  s_gather(d, prefix, n_blocks, nm, state, t, ends);
  unsigned loaded;
  if (ffs_ckpt_load_groups(path, t, ends, S_GROUPS, &loaded, err, errlen) < 0) return -1;
  if (ends[1] > ends[0] && !(loaded & 2u))
    for (int b = 0; b < n_blocks; b++) ffs_dense_restart_average(d[b]);
  if (!(loaded & 4u)) return 0; // the optimizer starts fresh
  for (int b = 0; b < n_blocks; b++) {
    const float *st = state[b];
    int whole = 1;
    for (int k = 0; k < 3; k++) whole &= st[k] >= 0.0f && st[k] == (float)(long)st[k];
    if (!whole || st[0] >= (float)(1 << 20) || st[2] > 1.0f) {
      snprintf(err, errlen, "%s: tensor '%s%s.state' holds %g %g %g, expected steps (low, high "
               "20 bits) and 0 or 1", path, prefix[b],
               d[b]->cfg.opt == FFS_OPT_ADAM ? "adam" : "sgd", (double)st[0], (double)st[1],
               (double)st[2]);
      return -1;
    }
  }
  for (int b = 0; b < n_blocks; b++)
    ffs_dense_set_state(d[b], (long)state[b][0] + ((long)state[b][1] << 20), (int)state[b][2]);
  return 0;
}

int ffs_dense_save(ffs_dense_t *d, const char *path, const char *const *meta, int n_meta,
                   char *err, size_t errlen) {
  const char *prefix = "";
  return ffs_dense_save_blocks(&d, &prefix, 1, path, meta, n_meta, err, errlen);
}

int ffs_dense_load(ffs_dense_t *d, const char *path, char *err, size_t errlen) {
  const char *prefix = "";
  return ffs_dense_load_blocks(&d, &prefix, 1, path, err, errlen);
}
