// ffs_saliency: the maps and the deletion test over an offline FF network
// (ffs_ffnet.h). Occlusion batches every occluded copy of an image as rows
// of one forward; attribution is the network's goodness gradient, signed
// and summed as the energy sums the layers; the deletion test removes
// pixels in a map's order and follows the class's probability. Buffers are
// allocated in new(); the maps and curves never allocate. What the command
// draws and writes is in ffs_saliency_cmd.c.
#include "ffs_saliency.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

// ---- state ----

// A pixel and its map value, sorted by value, largest first, then by index.
struct s_keyed {
  float v;
  int p;
};

struct ffs_saliency {
  ffs_ffnet_t *net;
  int dim, h, w, patch, classes, layers, masked;
  int n_patches;
  float *rows;     // (max(n_patches + 1, orders * steps), dim) images of one forward
  uint8_t *labels; // (n_patches + 1)
  float *scores;   // (max(n_patches + 1, orders * steps * classes))
  float *grad;     // (layers, dim)
  int *tiles;      // (n_patches) the patch's top-left pixel
  struct s_keyed *keyed; // (dim) pixels with their map values, while ordering
};

void ffs_saliency_destroy(ffs_saliency_t **self_p) {
  assert(self_p);
  ffs_saliency_t *s = *self_p;
  if (!s) return;
  free(s->rows), free(s->labels), free(s->scores), free(s->grad), free(s->tiles);
  free(s->keyed);
  free(s);
  *self_p = NULL;
}

ffs_saliency_t *ffs_saliency_new(ffs_ffnet_t *net, int h, int w, int patch) {
  assert(net && h > 0 && w > 0 && h * w == ffs_ffnet_dim(net) && patch >= 1);
  ffs_saliency_t *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->net = net, s->dim = h * w, s->h = h, s->w = w, s->patch = patch;
  s->classes = ffs_ffnet_classes(net), s->layers = ffs_ffnet_n_layers(net);
  s->masked = s->classes < s->dim ? s->classes : s->dim;
  s->n_patches = ((h + patch - 1) / patch) * ((w + patch - 1) / patch);
  size_t curves = (size_t)FFS_SALIENCY_MAX_ORDERS * FFS_SALIENCY_STEPS;
  size_t n_rows = (size_t)s->n_patches + 1 > curves ? (size_t)s->n_patches + 1 : curves;
  size_t n_scores = curves * (size_t)s->classes > n_rows ? curves * (size_t)s->classes : n_rows;
  s->rows = malloc(sizeof(float) * n_rows * (size_t)s->dim);
  s->labels = malloc(n_rows);
  s->scores = malloc(sizeof(float) * n_scores);
  s->grad = malloc(sizeof(float) * (size_t)s->layers * (size_t)s->dim);
  s->tiles = malloc(sizeof(int) * (size_t)s->n_patches);
  s->keyed = malloc(sizeof *s->keyed * (size_t)s->dim);
  if (!s->rows || !s->labels || !s->scores || !s->grad || !s->tiles || !s->keyed) {
    ffs_saliency_destroy(&s);
    return NULL;
  }
  int k = 0;
  for (int r = 0; r < h; r += patch)
    for (int c = 0; c < w; c += patch) s->tiles[k++] = r * w + c;
  return s;
}

int ffs_saliency_masked(const ffs_saliency_t *s) { return s->masked; }

// ---- maps ----

// Runs body with pix set to each pixel of the patch whose top-left pixel is
// p0 (a patch at the right or bottom edge may be narrower).
#define S_FOR_PATCH(s, p0, pix, body)                                                  \
  for (int pr_ = (p0) / (s)->w; pr_ < (p0) / (s)->w + (s)->patch && pr_ < (s)->h; pr_++) \
    for (int pc_ = (p0) % (s)->w; pc_ < (p0) % (s)->w + (s)->patch && pc_ < (s)->w; pc_++) { \
      int pix = pr_ * (s)->w + pc_;                                                     \
      body;                                                                             \
    }

void ffs_saliency_occlusion(ffs_saliency_t *s, const float *x, int label, float *out) {
  assert(s && x && out && label >= 0 && label < s->classes);
  const size_t D = (size_t)s->dim;
  memcpy(s->rows, x, sizeof(float) * D); // row 0: the image itself
  int n = 1;
  for (int k = 0; k < s->n_patches; k++) {
    int any = 0;
    S_FOR_PATCH(s, s->tiles[k], p, any |= x[p] != 0.0f);
    if (!any) continue; // already the background: nothing to take away
    float *row = s->rows + (size_t)n * D;
    memcpy(row, x, sizeof(float) * D);
    S_FOR_PATCH(s, s->tiles[k], p, row[p] = 0.0f);
    n++;
  }
  memset(s->labels, label, (size_t)n);
  ffs_ffnet_score_label(s->net, s->rows, n, s->labels, s->scores);
  n = 1;
  for (int k = 0; k < s->n_patches; k++) {
    int any = 0;
    S_FOR_PATCH(s, s->tiles[k], p, any |= x[p] != 0.0f);
    float drop = any ? s->scores[0] - s->scores[n++] : 0.0f;
    S_FOR_PATCH(s, s->tiles[k], p, out[p] = drop);
  }
  for (int p = 0; p < s->masked; p++) out[p] = 0.0f;
}

void ffs_saliency_attribution(ffs_saliency_t *s, const float *x, int label, float *per_layer,
                              float *combined) {
  assert(s && x && combined && label >= 0 && label < s->classes);
  const size_t D = (size_t)s->dim;
  ffs_ffnet_goodness_grad(s->net, x, label, s->grad);
  memset(combined, 0, sizeof(float) * D);
  for (int k = 0; k < s->layers; k++) {
    float *g = s->grad + (size_t)k * D;
    for (int p = 0; p < s->masked; p++) g[p] = 0.0f;
    float sign = ffs_ffnet_energy_sign(s->net, k);
    if (sign != 0.0f)
      for (size_t p = 0; p < D; p++) combined[p] += sign * g[p];
  }
  if (per_layer) memcpy(per_layer, s->grad, sizeof(float) * D * (size_t)s->layers);
}

// ---- the deletion test ----

static int s_by_value(const void *a, const void *b) {
  const struct s_keyed *x = a, *y = b;
  if (x->v != y->v) return x->v > y->v ? -1 : 1;
  return (x->p > y->p) - (x->p < y->p);
}

void ffs_saliency_order(ffs_saliency_t *s, const float *map, int *order) {
  assert(s && map && order);
  int n = s->dim - s->masked;
  struct s_keyed *k = s->keyed;
  for (int i = 0; i < n; i++) {
    int p = s->masked + i;
    k[i] = (struct s_keyed){isnan(map[p]) ? -INFINITY : map[p], p};
  }
  qsort(k, (size_t)n, sizeof *k, s_by_value);
  for (int i = 0; i < n; i++) order[i] = k[i].p;
  for (int p = 0; p < s->masked; p++) order[n + p] = p;
}

void ffs_saliency_random_order(const ffs_saliency_t *s, ffs_rng_t *rng, int *order) {
  assert(s && rng && order);
  int n = s->dim - s->masked;
  for (int i = 0; i < n; i++) order[i] = s->masked + i;
  for (int i = n - 1; i > 0; i--) { // Fisher-Yates
    int j = (int)ffs_rng_below(rng, (uint32_t)(i + 1));
    int t = order[i];
    order[i] = order[j], order[j] = t;
  }
  for (int p = 0; p < s->masked; p++) order[n + p] = p;
}

void ffs_saliency_deletion(ffs_saliency_t *s, const float *x, int cls, const int *orders,
                           int n_orders, float *p) {
  assert(s && x && orders && p && n_orders >= 1 && n_orders <= FFS_SALIENCY_MAX_ORDERS);
  assert(cls >= 0 && cls < s->classes);
  const size_t D = (size_t)s->dim;
  const int C = s->classes, S = FFS_SALIENCY_STEPS;
  for (int m = 0; m < n_orders; m++) {
    const int *order = orders + (size_t)m * D;
    for (int k = 0; k < S; k++) {
      float *row = s->rows + ((size_t)m * S + (size_t)k) * D;
      memcpy(row, x, sizeof(float) * D);
      int removed = (int)lround((double)k * (double)D / (S - 1));
      for (int i = 0; i < removed; i++) row[order[i]] = 0.0f;
    }
  }
  ffs_ffnet_scores(s->net, s->rows, n_orders * S, s->scores, NULL);
  for (int r = 0; r < n_orders * S; r++) {
    const float *sc = s->scores + (size_t)r * C;
    double top = sc[0], sum = 0.0;
    for (int c = 1; c < C; c++) top = sc[c] > top ? sc[c] : top;
    for (int c = 0; c < C; c++) sum += exp((double)sc[c] - top);
    p[r] = (float)(exp((double)sc[cls] - top) / sum);
  }
}

double ffs_saliency_auc(const float *p) {
  double a = 0.0;
  for (int k = 0; k + 1 < FFS_SALIENCY_STEPS; k++) a += 0.5 * ((double)p[k] + p[k + 1]);
  return a / (FFS_SALIENCY_STEPS - 1);
}
