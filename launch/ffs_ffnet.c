// ffs_ffnet: the offline FF network of `ffstream saliency`: one
// ffs_ff_layer_t per logical layer (a sharded layer's shards put together),
// in evaluation mode, chained on the normalized activity as the stages
// chain them; energy inference as stages/readout/readout.c computes it; and
// the chain rule from one layer's goodness down to the pixels. State and
// loading first, then the forwards, then the gradient. Allocates only in
// new(); never learns.
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
#include "negatives.h"

#define S_EPS 1e-8f // the RMS normalization's guard, as every stage uses it

// ---- state ----

typedef struct {
  ffs_ff_layer_t *l;
  char name[FFS_NAME_MAX];
  int stage;        // its first stage (shard 0) in the topology
  int n_shards;
  int in_dim, units;
  float sign;       // weight in the energy: +1, -1 (min_ssq), 0 (not an energy layer)
  int msq;          // goodness is the mean of squares (else the sum)
  // one image's forward, kept for the gradient
  float *a;         // (in_dim) the layer's input before its normalization
  float *act;       // (units) the relu activity its goodness is computed on
  float *out;       // (units) the label-free relu activity that goes on (normalized)
} s_layer_t;

struct ffs_ffnet {
  int dim, classes, overlay, labeled, max_rows, n_layers, widest;
  char shard_names[FFS_MAX_STAGES][FFS_MAX_SHARDS][FFS_NAME_MAX]; // each layer's stages
  int shard_unit0[FFS_MAX_STAGES][FFS_MAX_SHARDS], shard_units[FFS_MAX_STAGES][FFS_MAX_SHARDS];
  s_layer_t layers[FFS_MAX_STAGES];
  float *x;      // (max_rows, dim) input rows with their label painted
  uint8_t *lab;  // (max_rows) the label of each row
  float *lg;     // (max_rows, classes) FFCL: one layer's goodness per label
  float *gz;     // (widest) gradient scratch: wrt a pre-activation
  float *gx;     // (widest) gradient scratch: wrt an input
};

void ffs_ffnet_destroy(ffs_ffnet_t **self_p) {
  assert(self_p);
  ffs_ffnet_t *n = *self_p;
  if (!n) return;
  for (int k = 0; k < n->n_layers; k++) {
    s_layer_t *L = &n->layers[k];
    ffs_ff_layer_destroy(&L->l);
    free(L->a), free(L->act), free(L->out);
  }
  free(n->x), free(n->lab), free(n->lg), free(n->gz), free(n->gx);
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
  if (t->ticks > 1) {
    ffs_errf(err, errlen, "%s: train.ticks: %d (the recurrent form): saliency maps are not "
             "implemented for it (expected ticks: 1)", t->path, t->ticks);
    return -1;
  }
  const ffs_stage_cfg_t *ro = &t->stages[t->readout];
  if (ro->n_energy == 0) {
    ffs_errf(err, errlen, "%s: readout '%s' has no energy layers (energy: []): the maps "
             "follow the energy's goodness, so there is nothing to explain", t->path, ro->name);
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
    int k = n->n_layers++;
    s_layer_t *L = &n->layers[k];
    snprintf(L->name, sizeof L->name, "%s", st->layer_name);
    snprintf(n->shard_names[k][0], FFS_NAME_MAX, "%s", st->name);
    n->shard_unit0[k][0] = st->unit0, n->shard_units[k][0] = st->units;
    L->stage = i, L->n_shards = 1, L->in_dim = st->in_dim, L->units = st->out_dim;
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
  n->x = malloc(sizeof(float) * mr * (size_t)n->dim);
  n->lab = malloc(mr);
  n->lg = malloc(sizeof(float) * mr * (size_t)n->classes);
  n->gz = malloc(sizeof(float) * (size_t)n->widest);
  n->gx = malloc(sizeof(float) * (size_t)n->widest);
  if (!n->x || !n->lab || !n->lg || !n->gz || !n->gx) goto oom;
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

// rows rows of in (rows, dim) through every layer, each normalizing its
// input as a stage does; labels: FFCL's label per row (NULL: none).
static void s_forward(ffs_ffnet_t *n, const float *in, int rows, const uint8_t *labels) {
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
      if (n->overlay) g = ffs_ff_layer_goodness(L->l); // (m * C), image-major
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
      const float *g = ffs_ff_layer_goodness(L->l);
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

void ffs_ffnet_goodness_grad(ffs_ffnet_t *n, const float *x, int label, float *grad) {
  assert(n && x && grad && label >= 0 && label < n->classes);
  // the forward of this one image, each layer's input and activities kept
  s_row(n, 0, x, label);
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
