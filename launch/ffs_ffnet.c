// ffs_ffnet: the offline FF network of `ffstream saliency`: one
// ffs_ff_layer_t per logical layer (a sharded layer's shards put together),
// in evaluation mode, chained on the normalized activity as the stages
// chain them (in the recurrent form, tick by tick with the top-down inputs
// and the damped state, as ff_layer_stage.c's lockstep timing does); energy
// inference as stages/readout/readout.c computes it; and the chain rule
// from one layer's goodness down to the pixels (through the ticks too).
// State and loading first, then the forwards, then the gradients.
// Allocates only in new(); never learns.
#include "ffs_ffnet.h"

#include <assert.h>
#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ffs_ckpt.h"
#include "ffs_kind.h"
#include "ffs_log.h"
#include "ffs_math.h"
#include "negatives.h"

#define S_EPS 1e-8f // the RMS normalization's guard, as every stage uses it

// ---- state ----

typedef struct {
  ffs_ff_layer_t *l;
  char name[FFS_NAME_MAX];
  int stage;        // its first stage (shard 0) in the topology
  int n_shards;
  int in_dim, units; // in_dim: the whole input, the top-down part included
  float sign;       // weight in the energy: +1, -1 (min_ssq), 0 (not an energy layer)
  int msq;          // goodness is the mean of squares (else the sum)
  // one image's forward, kept for the gradient
  float *a;         // (in_dim) the layer's input before its normalization
  float *act;       // (units) the relu activity its goodness is computed on
  float *out;       // (units) the label-free relu activity that goes on (normalized)
  // the recurrent form (ticks > 1)
  int below;        // width of the input from below (in_dim - the top-down width)
  int td_from;      // the layer whose state comes back as top-down input; -1 none
  float *x;         // (max_rows, in_dim) [normalized input from below | top-down]
  float *state;     // (max_rows, units) the damped activity
  float *now, *prev; // (max_rows, units) the normalized state this tick, last tick
  float *gsum;      // (max_rows) goodness over the scored ticks, then their mean
  float *tb, *tx, *ty, *ts; // (ticks, below / in_dim / units / units) one image's
                    // input from below, x, activity and state at each tick
  float *a_now, *a_state; // (ticks, units) gradients wrt now and state per tick
} s_layer_t;

struct ffs_ffnet {
  int dim, classes, overlay, labeled, max_rows, n_layers, widest;
  int ticks, score_from, score_to; // the recurrent form when ticks > 1
  float damping;
  char shard_names[FFS_MAX_STAGES][FFS_MAX_SHARDS][FFS_NAME_MAX]; // each layer's stages
  int shard_unit0[FFS_MAX_STAGES][FFS_MAX_SHARDS], shard_units[FFS_MAX_STAGES][FFS_MAX_SHARDS];
  s_layer_t layers[FFS_MAX_STAGES];
  float *x;      // (max_rows, dim) input rows with their label painted
  uint8_t *lab;  // (max_rows) the label of each row
  float *lg;     // (max_rows, classes) FFCL: one layer's goodness per label
  float *gz;     // (widest) gradient scratch: wrt a pre-activation
  float *gx;     // (widest) gradient scratch: wrt an input
  float *gc, *gb; // (widest) gradient scratch (the recurrent form)
};

void ffs_ffnet_destroy(ffs_ffnet_t **self_p) {
  assert(self_p);
  ffs_ffnet_t *n = *self_p;
  if (!n) return;
  for (int k = 0; k < n->n_layers; k++) {
    s_layer_t *L = &n->layers[k];
    ffs_ff_layer_destroy(&L->l);
    free(L->a), free(L->act), free(L->out);
    float *loops[] = {L->x, L->state, L->now, L->prev, L->gsum, L->tb, L->tx, L->ty, L->ts,
                      L->a_now, L->a_state};
    for (size_t i = 0; i < sizeof loops / sizeof loops[0]; i++) free(loops[i]);
  }
  free(n->x), free(n->lab), free(n->lg), free(n->gz), free(n->gx), free(n->gc), free(n->gb);
  free(n);
  *self_p = NULL;
}

// What this network cannot rebuild, as one line into err; 0 when it can.
static int s_refuse(const ffs_topo_t *t, char *err, size_t errlen) {
  for (int i = 0; i < t->n_stages; i++) {
    const ffs_kind_t *k = ffs_kind_of(t->stages[i].kind);
    if (k && k->role == FFS_ROLE_LAYER && t->stages[i].kind != FFS_STAGE_FF_LAYER) {
      ffs_errf(err, errlen, "%s: stage '%s' is a %s: saliency maps are for Forward-Forward "
               "runs (ff_layer stages) only", t->path, t->stages[i].name, k->name);
      return -1;
    }
  }
  const ffs_stage_cfg_t *ro = &t->stages[t->readout];
  if (ro->n_energy == 0) {
    ffs_errf(err, errlen, "%s: readout '%s' has no energy layers (energy: []): the maps "
             "follow the energy's goodness, so there is nothing to explain", t->path, ro->name);
    return -1;
  }
  return 0;
}

// The recurrent form's buffers, and each layer's top-down source as a layer
// index here. 0 or -1 (out of memory).
static int s_new_loops(ffs_ffnet_t *n, const int *layer_of) {
  size_t mr = (size_t)n->max_rows, T = (size_t)n->ticks;
  for (int k = 0; k < n->n_layers; k++) {
    s_layer_t *L = &n->layers[k];
    size_t u = (size_t)L->units;
    if (L->td_from >= 0) L->td_from = layer_of[L->td_from];
    L->x = malloc(sizeof(float) * mr * (size_t)L->in_dim);
    L->state = calloc(mr * u, sizeof(float));
    L->now = malloc(sizeof(float) * mr * u);
    L->prev = malloc(sizeof(float) * mr * u);
    L->gsum = malloc(sizeof(float) * mr);
    L->tb = malloc(sizeof(float) * T * (size_t)L->below);
    L->tx = malloc(sizeof(float) * T * (size_t)L->in_dim);
    L->ty = malloc(sizeof(float) * T * u);
    L->ts = malloc(sizeof(float) * T * u);
    L->a_now = malloc(sizeof(float) * T * u);
    L->a_state = malloc(sizeof(float) * T * u);
    if (!L->x || !L->state || !L->now || !L->prev || !L->gsum || !L->tb || !L->tx || !L->ty ||
        !L->ts || !L->a_now || !L->a_state)
      return -1;
  }
  return 0;
}

ffs_ffnet_t *ffs_ffnet_new(const ffs_topo_t *t, int max_rows, char *err, size_t errlen) {
  assert(t && max_rows > 0);
  if (s_refuse(t, err, errlen) < 0) return NULL;
  ffs_ffnet_t *n = calloc(1, sizeof *n);
  if (!n) goto oom;
  n->classes = t->classes;
  n->labeled = t->labels == FFS_LABELS_SEPARATE;
  n->overlay = !n->labeled;
  n->max_rows = max_rows < t->classes ? t->classes : max_rows; // a sample's candidates fit
  n->dim = t->stages[0].out_dim;
  n->ticks = t->ticks, n->damping = t->damping;
  n->score_from = t->score_from, n->score_to = t->score_to;
  int layer_of[FFS_MAX_STAGES]; // a stage's layer here
  const ffs_stage_cfg_t *ro = &t->stages[t->readout];
  for (int i = 0; i < t->n_stages; i++) {
    const ffs_stage_cfg_t *st = &t->stages[i];
    if (st->kind != FFS_STAGE_FF_LAYER) continue;
    if (st->shard != 0) { // one more slice of the layer before
      s_layer_t *L = &n->layers[n->n_layers - 1];
      snprintf(n->shard_names[n->n_layers - 1][L->n_shards], FFS_NAME_MAX, "%s", st->name);
      n->shard_unit0[n->n_layers - 1][L->n_shards] = st->unit0;
      n->shard_units[n->n_layers - 1][L->n_shards++] = st->units;
      continue;
    }
    int k = layer_of[i] = n->n_layers++;
    s_layer_t *L = &n->layers[k];
    snprintf(L->name, sizeof L->name, "%s", st->layer_name);
    snprintf(n->shard_names[k][0], FFS_NAME_MAX, "%s", st->name);
    n->shard_unit0[k][0] = st->unit0, n->shard_units[k][0] = st->units;
    L->stage = i, L->n_shards = 1, L->units = st->out_dim;
    L->below = st->in_dim; // td_from: a stage index until s_new_loops
    L->td_from = t->ticks > 1 ? st->td_from : -1;
    L->in_dim = st->in_dim + (t->ticks > 1 ? st->td_dim : 0);
    L->msq = st->layer.goodness == FFS_GOODNESS_MSQ;
    for (int e = 0; e < ro->n_energy; e++)
      if (ro->energy[e] == i) L->sign = st->layer.goodness == FFS_GOODNESS_MIN_SSQ ? -1.0f : 1.0f;
    // the stages' stream, so that a fresh network draws the run's first weights
    L->l = ffs_ff_layer_new_labeled(L->in_dim, L->units, n->labeled ? n->classes : 0,
                                    n->max_rows, &st->layer, t->seed,
                                    (uint64_t)st->layer_index + 1000);
    L->a = malloc(sizeof(float) * (size_t)L->in_dim);
    L->act = malloc(sizeof(float) * (size_t)L->units);
    L->out = malloc(sizeof(float) * (size_t)L->units);
    if (!L->l || !L->a || !L->act || !L->out) goto oom;
    ffs_ff_layer_set_eval(L->l, 1); // eval_average's weights, as evaluation frames see
    if (L->in_dim > n->widest) n->widest = L->in_dim;
    if (L->units > n->widest) n->widest = L->units;
  }
  size_t mr = (size_t)n->max_rows;
  if (n->ticks > 1 && s_new_loops(n, layer_of) < 0) goto oom;
  n->x = malloc(sizeof(float) * mr * (size_t)n->dim);
  n->lab = malloc(mr);
  n->lg = malloc(sizeof(float) * mr * (size_t)n->classes);
  n->gz = malloc(sizeof(float) * (size_t)n->widest);
  n->gx = malloc(sizeof(float) * (size_t)n->widest);
  n->gc = malloc(sizeof(float) * (size_t)n->widest);
  n->gb = malloc(sizeof(float) * (size_t)n->widest);
  if (!n->x || !n->lab || !n->lg || !n->gz || !n->gx || !n->gc || !n->gb) goto oom;
  return n;
oom:
  ffs_ffnet_destroy(&n);
  ffs_errf(err, errlen, "%s: out of memory for the network", t->path);
  return NULL;
}

// One shard's file (or the layer's, unsharded) into rows [unit0, unit0 +
// units) of layer k's weights and averages.
static int s_load_shard(ffs_ffnet_t *n, int k, int s, const char *ckpt_dir, char *err,
                        size_t errlen) {
  s_layer_t *L = &n->layers[k];
  const char *name = n->shard_names[k][s];
  int unit0 = n->shard_unit0[k][s], units = n->shard_units[k][s], in = L->in_dim;
  char path[FFS_PATH_MAX + 64];
  snprintf(path, sizeof path, "%s/%s.safetensors", ckpt_dir, name);
  if (access(path, R_OK) < 0) {
    char other[FFS_PATH_MAX + 64];
    snprintf(other, sizeof other, "%s/%s.0.safetensors", ckpt_dir, name);
    if (L->n_shards == 1 && access(other, R_OK) == 0)
      ffs_errf(err, errlen, "%s: no such checkpoint, but %s is there: the run sharded layer "
               "'%s' (give its --set %s.shards=K)", path, other, L->name, L->name);
    else
      ffs_errf(err, errlen, "%s: cannot read the checkpoint of stage '%s': %s", path, name,
               strerror(errno));
    return -1;
  }
  ffs_ff_layer_t *l = L->l;
  float *w = ffs_ff_layer_weights(l), *b = ffs_ff_layer_bias(l);
  float *wa = ffs_ff_layer_avg_weights(l), *ba = ffs_ff_layer_avg_bias(l);
  float *u = ffs_ff_layer_label_weights(l), *ua = ffs_ff_layer_avg_label_weights(l);
  size_t row0 = (size_t)unit0 * (size_t)in;
  ffs_tensor_ref_t t[6];
  int m = 0;
  t[m++] = (ffs_tensor_ref_t){"w", 2, {units, in}, w + row0};
  t[m++] = (ffs_tensor_ref_t){"b", 1, {units, 0}, b + unit0};
  if (u) t[m++] = (ffs_tensor_ref_t){"u", 2, {n->classes, L->units}, u};
  int ends[2] = {m, m};
  if (wa) { // eval_average: evaluation used these
    t[m++] = (ffs_tensor_ref_t){"w_avg", 2, {units, in}, wa + row0};
    t[m++] = (ffs_tensor_ref_t){"b_avg", 1, {units, 0}, ba + unit0};
    if (ua) t[m++] = (ffs_tensor_ref_t){"u_avg", 2, {n->classes, L->units}, ua};
    ends[1] = m;
  }
  unsigned loaded = 0;
  if (ffs_ckpt_load_groups(path, t, ends, 2, &loaded, err, errlen) < 0) return -1;
  if (wa && !(loaded & 2u)) { // written without averages: the stage evaluated its weights
    memcpy(wa + row0, w + row0, sizeof(float) * (size_t)units * (size_t)in);
    memcpy(ba + unit0, b + unit0, sizeof(float) * (size_t)units);
    if (ua) memcpy(ua, u, sizeof(float) * (size_t)n->classes * (size_t)L->units);
  }
  return 0;
}

int ffs_ffnet_load(ffs_ffnet_t *n, const char *ckpt_dir, char *err, size_t errlen) {
  assert(n && ckpt_dir);
  for (int k = 0; k < n->n_layers; k++)
    for (int s = 0; s < n->layers[k].n_shards; s++)
      if (s_load_shard(n, k, s, ckpt_dir, err, errlen) < 0) return -1;
  return 0;
}

int ffs_ffnet_dim(const ffs_ffnet_t *n) { return n->dim; }
int ffs_ffnet_classes(const ffs_ffnet_t *n) { return n->classes; }
int ffs_ffnet_n_layers(const ffs_ffnet_t *n) { return n->n_layers; }
int ffs_ffnet_overlay(const ffs_ffnet_t *n) { return n->overlay; }
const char *ffs_ffnet_layer_name(const ffs_ffnet_t *n, int k) {
  assert(k >= 0 && k < n->n_layers);
  return n->layers[k].name;
}
float ffs_ffnet_energy_sign(const ffs_ffnet_t *n, int k) {
  assert(k >= 0 && k < n->n_layers);
  return n->layers[k].sign;
}
ffs_ff_layer_t *ffs_ffnet_layer(ffs_ffnet_t *n, int k) {
  assert(k >= 0 && k < n->n_layers);
  return n->layers[k].l;
}
float *ffs_ffnet_eval_weights(ffs_ffnet_t *n, int k) {
  ffs_ff_layer_t *l = ffs_ffnet_layer(n, k);
  float *avg = ffs_ff_layer_avg_weights(l);
  return avg ? avg : ffs_ff_layer_weights(l);
}
float *ffs_ffnet_eval_bias(ffs_ffnet_t *n, int k) {
  ffs_ff_layer_t *l = ffs_ffnet_layer(n, k);
  float *avg = ffs_ff_layer_avg_bias(l);
  return avg ? avg : ffs_ff_layer_bias(l);
}

// ---- forwards ----

// The recurrent form: rows rows of in through the ticks, as lockstep
// timing runs them: at tick t a layer's input is [its input from below at
// t, normalized | the normalized state of its top-down layer at t - 1,
// zeros at t = 0], normalized again by the layer; its state is damped
// (the first tick takes the activity whole) and normalized for the next
// layer; gsum ends as the mean goodness of the scored ticks. record: one
// row, each tick's input from below, x, activity and state kept.
static void s_forward_loops(ffs_ffnet_t *n, const float *in, int rows, int record) {
  const int K = n->n_layers;
  for (int t = 0; t < n->ticks; t++) {
    for (int k = 0; k < K; k++) { // last tick's states, for the top-down inputs
      s_layer_t *L = &n->layers[k];
      float *was = L->prev;
      L->prev = L->now, L->now = was;
    }
    for (int k = 0; k < K; k++) {
      s_layer_t *L = &n->layers[k];
      const float *below = k ? n->layers[k - 1].now : in;
      const size_t nb = (size_t)L->below, nw = (size_t)L->in_dim, nu = (size_t)L->units;
      const size_t td = nw - nb;
      for (int r = 0; r < rows; r++) {
        float *xr = L->x + (size_t)r * nw;
        ffs_rms_normalize(xr, below + (size_t)r * nb, 1, (int)nb, S_EPS);
        if (td && t > 0)
          memcpy(xr + nb, n->layers[L->td_from].prev + (size_t)r * td, sizeof(float) * td);
        else if (td)
          memset(xr + nb, 0, sizeof(float) * td);
      }
      ffs_ff_layer_forward(L->l, L->x, rows);
      const float *yc = ffs_ff_layer_activity(L->l), *g = ffs_ff_layer_goodness(L->l);
      float d = t == 0 ? 1.0f : n->damping;
      for (size_t i = 0; i < (size_t)rows * nu; i++)
        L->state[i] = (1.0f - d) * L->state[i] + d * yc[i];
      ffs_rms_normalize(L->now, L->state, rows, (int)nu, S_EPS);
      if (t == 0) memset(L->gsum, 0, sizeof(float) * (size_t)rows);
      if (t >= n->score_from && t <= n->score_to)
        for (int r = 0; r < rows; r++) L->gsum[r] += g[r];
      if (record) {
        memcpy(L->tb + t * nb, below, sizeof(float) * nb);
        memcpy(L->tx + t * nw, L->x, sizeof(float) * nw);
        memcpy(L->ty + t * nu, yc, sizeof(float) * nu);
        memcpy(L->ts + t * nu, L->state, sizeof(float) * nu);
      }
    }
  }
  float scored = (float)(n->score_to - n->score_from + 1);
  for (int k = 0; k < K; k++)
    for (int r = 0; r < rows; r++) n->layers[k].gsum[r] /= scored;
}

// Layer k's goodness per row of the last forward; in the recurrent form
// the mean over the scored ticks, which the stage reports.
static const float *s_goodness(const ffs_ffnet_t *n, int k) {
  return n->ticks > 1 ? n->layers[k].gsum : ffs_ff_layer_goodness(n->layers[k].l);
}

// rows rows of in (rows, dim) through every layer, each normalizing its
// input as a stage does; labels: FFCL's label per row (NULL: none).
static void s_forward(ffs_ffnet_t *n, const float *in, int rows, const uint8_t *labels) {
  if (n->ticks > 1) {
    s_forward_loops(n, in, rows, 0);
    return;
  }
  for (int k = 0; k < n->n_layers; k++) {
    ffs_ff_layer_forward_labeled(n->layers[k].l, in, rows, n->labeled ? labels : NULL);
    in = ffs_ff_layer_output(n->layers[k].l);
  }
}

// Row r of n->x: image with label painted (overlay form), or as it is.
static void s_row(ffs_ffnet_t *n, int r, const float *image, int label) {
  float *row = n->x + (size_t)r * (size_t)n->dim;
  memcpy(row, image, sizeof(float) * (size_t)n->dim);
  if (n->overlay) ffs_label_overlay(row, label, n->classes);
  n->lab[r] = (uint8_t)label;
}

void ffs_ffnet_scores(ffs_ffnet_t *n, const float *x, int rows, float *scores,
                      float *per_layer) {
  assert(n && x && scores && rows >= 0);
  const int C = n->classes, K = n->n_layers, D = n->dim;
  // overlay: one row per image and label; FFCL: one row per image, the label
  // terms from the shared features (what the stage reports for candidates)
  int per_chunk = n->overlay ? n->max_rows / C : n->max_rows;
  for (int i0 = 0; i0 < rows; i0 += per_chunk) {
    int m = rows - i0 < per_chunk ? rows - i0 : per_chunk;
    memset(scores + (size_t)i0 * C, 0, sizeof(float) * (size_t)m * (size_t)C);
    if (n->overlay) {
      for (int i = 0; i < m; i++)
        for (int c = 0; c < C; c++) s_row(n, i * C + c, x + (size_t)(i0 + i) * D, c);
      s_forward(n, n->x, m * C, NULL);
    } else {
      s_forward(n, x + (size_t)i0 * D, m, NULL);
    }
    for (int k = 0; k < K; k++) {
      const s_layer_t *L = &n->layers[k];
      const float *g = n->lg;
      if (n->overlay) g = s_goodness(n, k); // (m * C), image-major
      else ffs_ff_layer_label_goodness(L->l, m, n->lg);
      for (int i = 0; i < m; i++)
        for (int c = 0; c < C; c++) {
          float gi = g[(size_t)i * C + c];
          if (per_layer) per_layer[((size_t)(i0 + i) * K + k) * C + c] = gi;
          if (L->sign != 0.0f) scores[(size_t)(i0 + i) * C + c] += L->sign * gi;
        }
    }
  }
}

void ffs_ffnet_score_label(ffs_ffnet_t *n, const float *x, int rows, const uint8_t *labels,
                           float *out) {
  assert(n && x && labels && out && rows >= 0);
  const int D = n->dim;
  for (int r0 = 0; r0 < rows; r0 += n->max_rows) {
    int m = rows - r0 < n->max_rows ? rows - r0 : n->max_rows;
    for (int r = 0; r < m; r++) {
      assert(labels[r0 + r] < n->classes);
      s_row(n, r, x + (size_t)(r0 + r) * D, labels[r0 + r]);
    }
    s_forward(n, n->x, m, n->lab);
    memset(out + r0, 0, sizeof(float) * (size_t)m);
    for (int k = 0; k < n->n_layers; k++) {
      const s_layer_t *L = &n->layers[k];
      const float *g = s_goodness(n, k);
      if (L->sign != 0.0f)
        for (int r = 0; r < m; r++) out[r0 + r] += L->sign * g[r];
    }
  }
}

// ---- the gradient ----

// The gradient through out = v / (rms(v) + eps) (one row of len values):
// given g = dL/dout, gv = dL/dv = g / d - v (v . g) / (len rms d^2), with
// d = rms + eps, the same rms the forward computed. gv may not be g.
static void s_rms_back(float *gv, const float *v, const float *g, int len) {
  double ss = 0.0, vg = 0.0;
  for (int j = 0; j < len; j++) ss += (double)v[j] * v[j], vg += (double)v[j] * g[j];
  double rms = (double)sqrtf((float)(ss / len)), d = rms + (double)S_EPS;
  double k2 = rms > 0.0 ? vg / ((double)len * rms * d * d) : 0.0;
  for (int j = 0; j < len; j++) gv[j] = (float)((double)g[j] / d - (double)v[j] * k2);
}

// The recurrent form's gradients: each layer's goodness (the mean over the
// scored ticks) back through the ticks. In reverse order of the forward,
// (tick, layer) by (tick, layer): the gradient wrt a layer's normalized
// state at a tick is complete by then (it comes from the layer above at the
// same tick and the top-down inputs of the next tick); it goes into the
// state, the state's into the previous tick's state and the activity, and
// the activity's down through the layer into its input from below and its
// top-down input.
static void s_grad_loops(ffs_ffnet_t *n, float *grad) {
  s_forward_loops(n, n->x, 1, 1);
  const int T = n->ticks, K = n->n_layers;
  const float coef = 1.0f / (float)(n->score_to - n->score_from + 1);
  for (int top = 0; top < K; top++) {
    float *gimg = grad + (size_t)top * n->dim;
    memset(gimg, 0, sizeof(float) * (size_t)n->dim);
    for (int k = 0; k < K; k++) {
      size_t bytes = sizeof(float) * (size_t)T * (size_t)n->layers[k].units;
      memset(n->layers[k].a_now, 0, bytes), memset(n->layers[k].a_state, 0, bytes);
    }
    for (int t = T - 1; t >= 0; t--)
      for (int k = K - 1; k >= 0; k--) {
        s_layer_t *L = &n->layers[k];
        const int nu = L->units, nw = L->in_dim, nb = L->below;
        float *as = L->a_state + (size_t)t * nu;
        const float *yc = L->ty + (size_t)t * nu;
        s_rms_back(n->gz, L->ts + (size_t)t * nu, L->a_now + (size_t)t * nu, nu);
        for (int j = 0; j < nu; j++) as[j] += n->gz[j];
        float d = t ? n->damping : 1.0f;
        float *as_before = t > 0 ? L->a_state + (size_t)(t - 1) * nu : NULL;
        for (int j = 0; as_before && j < nu; j++) as_before[j] += (1.0f - d) * as[j];
        int scored = k == top && t >= n->score_from && t <= n->score_to;
        float dgdy = scored ? (L->msq ? 2.0f / (float)nu : 2.0f) * coef : 0.0f;
        for (int j = 0; j < nu; j++) n->gz[j] = yc[j] > 0.0f ? d * as[j] + dgdy * yc[j] : 0.0f;
        cblas_sgemv(CblasRowMajor, CblasTrans, nu, nw, 1.0f, ffs_ffnet_eval_weights(n, k), nw,
                    n->gz, 1, 0.0f, n->gx, 1);
        s_rms_back(n->gc, L->tx + (size_t)t * nw, n->gx, nw); // the layer's own normalization
        if (L->td_from >= 0 && t > 0) { // the top-down input: that layer's state at t - 1
          s_layer_t *A = &n->layers[L->td_from];
          float *an = A->a_now + (size_t)(t - 1) * A->units;
          for (int i = 0; i < nw - nb; i++) an[i] += n->gc[nb + i];
        }
        s_rms_back(n->gb, L->tb + (size_t)t * nb, n->gc, nb); // the input from below's
        float *to = k ? n->layers[k - 1].a_now + (size_t)t * nb : gimg;
        for (int i = 0; i < nb; i++) to[i] += n->gb[i];
      }
  }
}

void ffs_ffnet_goodness_grad(ffs_ffnet_t *n, const float *x, int label, float *grad) {
  assert(n && x && grad && label >= 0 && label < n->classes);
  // the forward of this one image, each layer's input and activities kept
  s_row(n, 0, x, label);
  if (n->ticks > 1) {
    s_grad_loops(n, grad);
    return;
  }
  const float *in = n->x;
  for (int k = 0; k < n->n_layers; k++) {
    s_layer_t *L = &n->layers[k];
    memcpy(L->a, in, sizeof(float) * (size_t)L->in_dim);
    size_t bytes = sizeof(float) * (size_t)L->units;
    if (n->labeled) { // what goes on is relu(s), the goodness's relu(s + u[label])
      ffs_ff_layer_forward_labeled(L->l, L->a, 1, NULL);
      memcpy(L->out, ffs_ff_layer_activity(L->l), bytes);
    }
    ffs_ff_layer_forward_labeled(L->l, L->a, 1, n->labeled ? n->lab : NULL);
    memcpy(L->act, ffs_ff_layer_activity(L->l), bytes);
    if (!n->labeled) memcpy(L->out, L->act, bytes);
    in = ffs_ff_layer_output(L->l);
  }
  // each layer's goodness, down the chain: dG/dz = 2 y (y = 0 where the unit
  // is off), dG/dxn = W^T dG/dz, back through the input's normalization, and
  // below the first layer through the layer below's output normalization
  // and its relu
  for (int top = 0; top < n->n_layers; top++) {
    const s_layer_t *T = &n->layers[top];
    float dgdy = T->msq ? 2.0f / (float)T->units : 2.0f;
    for (int j = 0; j < T->units; j++) n->gz[j] = dgdy * T->act[j];
    for (int k = top;; k--) {
      const s_layer_t *L = &n->layers[k];
      cblas_sgemv(CblasRowMajor, CblasTrans, L->units, L->in_dim, 1.0f,
                  ffs_ffnet_eval_weights(n, k), L->in_dim, n->gz, 1, 0.0f, n->gx, 1);
      float *gk = grad + (size_t)top * n->dim;
      if (k == 0) {
        s_rms_back(gk, L->a, n->gx, L->in_dim);
        break;
      }
      // L->a is the layer below's normalized output: its own normalization,
      // then the one of the layer below's output, then its relu
      const s_layer_t *B = &n->layers[k - 1];
      s_rms_back(n->gz, L->a, n->gx, L->in_dim);
      s_rms_back(n->gx, B->out, n->gz, B->units);
      for (int j = 0; j < B->units; j++) n->gz[j] = B->out[j] > 0.0f ? n->gx[j] : 0.0f;
    }
  }
}
