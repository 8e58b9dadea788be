// check_saliency: the offline FF network and the maps of `ffstream
// saliency` (launch/ffs_ffnet.h, launch/ffs_saliency.h) on tiny random
// networks. Its forward is held to a forward written out in double here;
// each layer's goodness gradient to central finite differences of that
// double forward; occlusion to occluding by hand, and to a pixel the
// network ignores; the recurrent form through its ticks; the command to a
// run folder made here (a topology, its sets, checkpoints, test images),
// and every bad run folder to one line.
#include "ffs_check.h"
#include <math.h>
#include <png.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ffs_ckpt.h"
#include "ffs_ffnet.h"
#include "ffs_idx.h"
#include "ffs_rng.h"
#include "ffs_saliency.h"
#include "negatives.h"

static char s_dir[64];
static char s_err[1024];

static void s_setup(void) {
  ffs_check_mkdtemp(s_dir, sizeof s_dir, "check_saliency");
  s_err[0] = 0;
}

static void s_teardown(void) { ffs_check_rmtree(s_dir); }

// DIR/name with text in it; its path in out.
static void s_write(const char *name, const char *text, char *out, size_t outlen) {
  snprintf(out, outlen, "%s/%s", s_dir, name);
  FILE *f = fopen(out, "w");
  ck_assert_ptr_nonnull(f);
  fputs(text, f);
  fclose(f);
}

// Three tiny networks over 6 x 6 images and 4 classes: the label painted
// (ssq), the label painted with eval_average and a mean-of-squares and a
// min_ssq layer, and FFCL's label weights with the same. The readout's
// energy is l2 and l3 (every layer but the first).
static const char *const s_nets[] = {
    "data: {set: mnist, dim: 36, classes: 4}\n"
    "stages:\n"
    "  - {name: src, kind: source}\n"
    "  - {name: l1, kind: ff_layer, units: 12}\n"
    "  - {name: l2, kind: ff_layer, units: 10}\n"
    "  - {name: l3, kind: ff_layer, units: 8}\n"
    "  - {name: out, kind: readout}\n",
    "data: {set: mnist, dim: 36, classes: 4}\n"
    "layer: {eval_average: 0.9}\n"
    "stages:\n"
    "  - {name: src, kind: source}\n"
    "  - {name: l1, kind: ff_layer, units: 12}\n"
    "  - {name: l2, kind: ff_layer, units: 10, goodness: msq}\n"
    "  - {name: l3, kind: ff_layer, units: 8, goodness: min_ssq}\n"
    "  - {name: out, kind: readout}\n",
    "data: {set: mnist, dim: 36, classes: 4}\n"
    "train: {labels: separate}\n"
    "layer: {eval_average: 0.9}\n"
    "stages:\n"
    "  - {name: src, kind: source}\n"
    "  - {name: l1, kind: ff_layer, units: 12}\n"
    "  - {name: l2, kind: ff_layer, units: 10, goodness: msq}\n"
    "  - {name: l3, kind: ff_layer, units: 8, goodness: min_ssq}\n"
    "  - {name: out, kind: readout}\n"};

// ---- a reference forward in double ----

static void s_fill(ffs_rng_t *rng, float *v, int n, float scale) {
  for (int i = 0; i < n; i++) v[i] = scale * ffs_rng_normal(rng);
}

// Random biases (some units off), and averages unlike the weights, so that
// a forward through the wrong ones shows.
static void s_randomize(ffs_ffnet_t *n, uint64_t seed) {
  ffs_rng_t rng;
  ffs_rng_seed(&rng, seed, 9);
  for (int k = 0; k < ffs_ffnet_n_layers(n); k++) {
    ffs_ff_layer_t *l = ffs_ffnet_layer(n, k);
    int units = (int)(k == 0 ? 12 : k == 1 ? 10 : 8), in = k == 0 ? 36 : k == 1 ? 12 : 10;
    s_fill(&rng, ffs_ff_layer_bias(l), units, 0.3f);
    if (ffs_ff_layer_avg_weights(l)) {
      s_fill(&rng, ffs_ff_layer_avg_weights(l), units * in, 1.0f / sqrtf((float)in));
      s_fill(&rng, ffs_ff_layer_avg_bias(l), units, 0.3f);
    }
    if (ffs_ff_layer_label_weights(l)) s_fill(&rng, ffs_ff_layer_label_weights(l), 4 * units, 0.5f);
    if (ffs_ff_layer_avg_label_weights(l))
      s_fill(&rng, ffs_ff_layer_avg_label_weights(l), 4 * units, 0.5f);
  }
}

static void s_rms(double *out, const double *v, int n) {
  double ss = 0.0;
  for (int j = 0; j < n; j++) ss += v[j] * v[j];
  double d = sqrt(ss / n) + 1e-8;
  for (int j = 0; j < n; j++) out[j] = v[j] / d;
}

// Goodness of layer top for the input row x (36, label painted in the
// overlay form), label giving FFCL's label term; the averaged weights where
// the layer keeps them (what evaluation uses).
static double s_ref_goodness(ffs_ffnet_t *n, const double *x, int label, int top,
                             const int *msq) {
  double a[64], xn[64], s[64];
  int in = 36;
  memcpy(a, x, sizeof(double) * 36);
  for (int k = 0; k <= top; k++) {
    ffs_ff_layer_t *l = ffs_ffnet_layer(n, k);
    int units = k == 0 ? 12 : k == 1 ? 10 : 8;
    const float *w = ffs_ff_layer_avg_weights(l) ? ffs_ff_layer_avg_weights(l)
                                                 : ffs_ff_layer_weights(l);
    const float *b = ffs_ff_layer_avg_bias(l) ? ffs_ff_layer_avg_bias(l) : ffs_ff_layer_bias(l);
    const float *u = ffs_ff_layer_avg_label_weights(l) ? ffs_ff_layer_avg_label_weights(l)
                                                       : ffs_ff_layer_label_weights(l);
    s_rms(xn, a, in);
    double g = 0.0;
    for (int j = 0; j < units; j++) {
      s[j] = b[j];
      for (int i = 0; i < in; i++) s[j] += (double)w[j * in + i] * xn[i];
      double y = s[j] + (u ? u[label * units + j] : 0.0);
      if (y > 0.0) g += y * y;
    }
    if (k == top) return msq[k] ? g / units : g;
    for (int j = 0; j < units; j++) s[j] = s[j] > 0.0 ? s[j] : 0.0;
    s_rms(a, s, units);
    in = units;
  }
  return 0.0;
}

static ffs_ffnet_t *s_net(int which, ffs_topo_t *t) {
  char path[128];
  s_write("t.yaml", s_nets[which], path, sizeof path);
  ck_assert_msg(ffs_topo_load(t, path, NULL, 0, s_err, sizeof s_err) == 0, "%s", s_err);
  ffs_ffnet_t *n = ffs_ffnet_new(t, 64, s_err, sizeof s_err);
  ck_assert_msg(n != NULL, "%s", s_err);
  s_randomize(n, 5 + (uint64_t)which);
  return n;
}

static void s_image(float *x, uint64_t seed) {
  ffs_rng_t rng;
  ffs_rng_seed(&rng, seed, 1);
  for (int p = 0; p < 36; p++) x[p] = ffs_rng_uniform(&rng) < 0.4f ? 0.0f : ffs_rng_uniform(&rng);
}

// ---- the forward and the gradient ----

// The goodness of every layer and label, and the energy (l2 and l3, with
// min_ssq's sign), are the double forward's.
START_TEST(test_forward_matches_double) {
  static ffs_topo_t t;
  const int msq[3][3] = {{0, 0, 0}, {0, 1, 0}, {0, 1, 0}};
  const float sign3[3] = {1.0f, -1.0f, -1.0f};
  for (int which = 0; which < 3; which++) {
    ffs_ffnet_t *n = s_net(which, &t);
    ck_assert_int_eq(ffs_ffnet_overlay(n), which < 2);
    ck_assert_float_eq(ffs_ffnet_energy_sign(n, 0), 0.0f);
    ck_assert_float_eq(ffs_ffnet_energy_sign(n, 2), sign3[which]);
    float x[3 * 36], scores[3 * 4], per_layer[3 * 3 * 4];
    for (int i = 0; i < 3; i++) s_image(x + i * 36, 10 + (uint64_t)i);
    ffs_ffnet_scores(n, x, 3, scores, per_layer);
    for (int i = 0; i < 3; i++)
      for (int c = 0; c < 4; c++) {
        double row[36], energy = 0.0;
        float painted[36];
        memcpy(painted, x + i * 36, sizeof painted);
        if (which < 2) ffs_label_overlay(painted, c, 4);
        for (int p = 0; p < 36; p++) row[p] = painted[p];
        for (int k = 0; k < 3; k++) {
          double g = s_ref_goodness(n, row, c, k, msq[which]);
          ck_assert_double_eq_tol(per_layer[(i * 3 + k) * 4 + c], g, 1e-4 * (1.0 + fabs(g)));
          energy += (double)ffs_ffnet_energy_sign(n, k) * g;
        }
        ck_assert_double_eq_tol(scores[i * 4 + c], energy, 1e-4 * (1.0 + fabs(energy)));
        uint8_t lab = (uint8_t)c;
        float one;
        ffs_ffnet_score_label(n, x + i * 36, 1, &lab, &one);
        ck_assert_double_eq_tol(one, energy, 1e-4 * (1.0 + fabs(energy)));
      }
    ffs_ffnet_destroy(&n);
  }
}
END_TEST

// Each layer's attribution is the central difference of its goodness in
// double (h = 1e-5): float arithmetic in the gradient, so agreement to
// 1e-3 of the largest component.
START_TEST(test_attribution_is_finite_differences) {
  static ffs_topo_t t;
  const int msq[3][3] = {{0, 0, 0}, {0, 1, 0}, {0, 1, 0}};
  for (int which = 0; which < 3; which++) {
    ffs_ffnet_t *n = s_net(which, &t);
    float x[36], grad[3 * 36];
    s_image(x, 20 + (uint64_t)which);
    int label = 1 + which;
    ffs_ffnet_goodness_grad(n, x, label, grad);
    float painted[36];
    memcpy(painted, x, sizeof painted);
    if (which < 2) ffs_label_overlay(painted, label, 4);
    for (int k = 0; k < 3; k++) {
      double fd[36], top = 0.0;
      for (int p = 0; p < 36; p++) {
        double row[36], h = 1e-5;
        for (int q = 0; q < 36; q++) row[q] = painted[q];
        row[p] += h;
        double up = s_ref_goodness(n, row, label, k, msq[which]);
        row[p] -= 2 * h;
        double down = s_ref_goodness(n, row, label, k, msq[which]);
        fd[p] = (up - down) / (2 * h);
        top = fabs(fd[p]) > top ? fabs(fd[p]) : top;
      }
      ck_assert_msg(top > 1e-3, "net %d layer %d: a flat goodness tests nothing", which, k);
      for (int p = 0; p < 36; p++)
        ck_assert_msg(fabs(grad[k * 36 + p] - fd[p]) <= 1e-3 * top,
                      "net %d layer %d pixel %d: gradient %g, finite differences %g", which, k,
                      p, (double)grad[k * 36 + p], fd[p]);
    }
    // the combined map: the energy's signs over l2 and l3, label pixels masked
    ffs_saliency_t *s = ffs_saliency_new(n, 6, 6, 1);
    float comb[36];
    ffs_saliency_attribution(s, x, label, NULL, comb);
    for (int p = 0; p < 36; p++) {
      float want = p < 4 ? 0.0f
                         : ffs_ffnet_energy_sign(n, 1) * grad[36 + p] +
                               ffs_ffnet_energy_sign(n, 2) * grad[72 + p];
      ck_assert_float_eq_tol(comb[p], want, 1e-6f * (1.0f + fabsf(want)));
    }
    ffs_saliency_destroy(&s);
    ffs_ffnet_destroy(&n);
  }
}
END_TEST

// ---- the recurrent form ----

// Four ticks, l2's state back to l1 and l3's to l2, ticks 1..3 scored.
static const char *s_loops =
    "data: {set: mnist, dim: 36, classes: 4}\n"
    "train: {ticks: 4, damping: 0.7, score_ticks: [1, 3]}\n"
    "stages:\n"
    "  - {name: src, kind: source}\n"
    "  - {name: l1, kind: ff_layer, units: 12}\n"
    "  - {name: l2, kind: ff_layer, units: 10}\n"
    "  - {name: l3, kind: ff_layer, units: 8}\n"
    "  - {name: out, kind: readout}\n"
    "feedback:\n"
    "  - {from: l2, to: l1}\n"
    "  - {from: l3, to: l2}\n";

// The recurrent forward of s_loops in double for one painted row x: each
// layer's goodness averaged over ticks 1..3, into g[3].
static void s_ref_loops(ffs_ffnet_t *n, const double *x, double *g) {
  static const int units[3] = {12, 10, 8}, below[3] = {36, 12, 10}, td[3] = {10, 8, 0};
  double state[3][12] = {{0}}, now[3][12] = {{0}}, prev[3][12], c[48], cn[48];
  for (int k = 0; k < 3; k++) g[k] = 0.0;
  for (int t = 0; t < 4; t++) {
    memcpy(prev, now, sizeof prev);
    for (int k = 0; k < 3; k++) {
      const float *w = ffs_ff_layer_weights(ffs_ffnet_layer(n, k));
      const float *b = ffs_ff_layer_bias(ffs_ffnet_layer(n, k));
      int in = below[k] + td[k];
      s_rms(c, k ? now[k - 1] : x, below[k]);
      for (int i = 0; i < td[k]; i++) c[below[k] + i] = t > 0 ? prev[k + 1][i] : 0.0;
      s_rms(cn, c, in);
      double d = t ? 0.7 : 1.0, gk = 0.0;
      for (int j = 0; j < units[k]; j++) {
        double z = b[j];
        for (int i = 0; i < in; i++) z += (double)w[j * in + i] * cn[i];
        double y = z > 0.0 ? z : 0.0;
        gk += y * y;
        state[k][j] = (1.0 - d) * state[k][j] + d * y;
      }
      s_rms(now[k], state[k], units[k]);
      if (t >= 1) g[k] += gk / 3.0;
    }
  }
}

// The scores are the double forward's, and each layer's gradient its
// central differences, back through the ticks, the damped states and the
// top-down inputs.
START_TEST(test_recurrent_form) {
  static ffs_topo_t t;
  char path[128];
  s_write("t.yaml", s_loops, path, sizeof path);
  ck_assert_msg(ffs_topo_load(&t, path, NULL, 0, s_err, sizeof s_err) == 0, "%s", s_err);
  ffs_ffnet_t *n = ffs_ffnet_new(&t, 64, s_err, sizeof s_err);
  ck_assert_msg(n != NULL, "%s", s_err);
  s_randomize(n, 70);
  float x[36], scores[4], grad[3 * 36], painted[36];
  s_image(x, 71);
  ffs_ffnet_scores(n, x, 1, scores, NULL);
  double row[36], g[3];
  for (int c = 0; c < 4; c++) {
    memcpy(painted, x, sizeof painted);
    ffs_label_overlay(painted, c, 4);
    for (int p = 0; p < 36; p++) row[p] = painted[p];
    s_ref_loops(n, row, g);
    ck_assert_double_eq_tol(scores[c], g[1] + g[2], 1e-4 * (1.0 + fabs(g[1] + g[2])));
  }
  ffs_ffnet_goodness_grad(n, x, 3, grad); // painted holds label 3's row now
  for (int k = 0; k < 3; k++) {
    double fd[36], top = 0.0, up[3], down[3], h = 1e-5;
    for (int p = 0; p < 36; p++) {
      for (int q = 0; q < 36; q++) row[q] = painted[q];
      row[p] += h;
      s_ref_loops(n, row, up);
      row[p] -= 2 * h;
      s_ref_loops(n, row, down);
      fd[p] = (up[k] - down[k]) / (2 * h);
      top = fabs(fd[p]) > top ? fabs(fd[p]) : top;
    }
    ck_assert_msg(top > 1e-3, "layer %d: a flat goodness tests nothing", k);
    for (int p = 0; p < 36; p++)
      ck_assert_msg(fabs(grad[k * 36 + p] - fd[p]) <= 1e-3 * top,
                    "layer %d pixel %d: gradient %g, finite differences %g", k, p,
                    (double)grad[k * 36 + p], fd[p]);
  }
  ffs_ffnet_destroy(&n);
}
END_TEST

// ---- occlusion ----

// Each pixel's (or 2 x 2 patch's) drop is the score of the image minus the
// score with that patch set to 0, computed one image at a time.
START_TEST(test_occlusion_is_the_drop) {
  static ffs_topo_t t;
  for (int patch = 1; patch <= 4; patch += 3) {
    ffs_ffnet_t *n = s_net(1, &t);
    ffs_saliency_t *s = ffs_saliency_new(n, 6, 6, patch);
    float x[36], occ[36], y[36], before, after;
    s_image(x, 30);
    uint8_t lab = 2;
    ffs_saliency_occlusion(s, x, 2, occ);
    ffs_ffnet_score_label(n, x, 1, &lab, &before);
    int nonzero = 0;
    for (int p = 4; p < 36; p++) {
      int r0 = (p / 6) / patch * patch, c0 = (p % 6) / patch * patch;
      memcpy(y, x, sizeof y);
      for (int r = r0; r < r0 + patch && r < 6; r++)
        for (int c = c0; c < c0 + patch && c < 6; c++) y[r * 6 + c] = 0.0f;
      ffs_ffnet_score_label(n, y, 1, &lab, &after);
      ck_assert_float_eq_tol(occ[p], before - after, 1e-4f * (1.0f + fabsf(before)));
      nonzero += occ[p] != 0.0f;
    }
    for (int p = 0; p < 4; p++) ck_assert_float_eq(occ[p], 0.0f); // the label's pixels
    ck_assert_int_gt(nonzero, 8);
    ffs_saliency_destroy(&s);
    ffs_ffnet_destroy(&n);
  }
}
END_TEST

// A pixel the network ignores changes nothing when occluded. Under the RMS
// normalization "ignores" takes two things: its column of the first
// layer's weights is 0, and that layer's bias is 0 (the pixel still scales
// the normalized input, and relu(W x / r) = relu(W x) / r only without a
// bias; the next layer's normalization then takes r out). The energy is l2
// and l3, so the energy does not move; a pixel the network uses does.
START_TEST(test_occluding_an_ignored_pixel_changes_nothing) {
  static ffs_topo_t t;
  ffs_ffnet_t *n = s_net(0, &t);
  ffs_ff_layer_t *l1 = ffs_ffnet_layer(n, 0);
  const int ignored = 20, used = 21;
  for (int j = 0; j < 12; j++) ffs_ff_layer_weights(l1)[j * 36 + ignored] = 0.0f;
  memset(ffs_ff_layer_bias(l1), 0, sizeof(float) * 12);
  ffs_saliency_t *s = ffs_saliency_new(n, 6, 6, 1);
  float x[36], occ[36];
  s_image(x, 40);
  x[ignored] = 0.9f, x[used] = 0.9f;
  for (int c = 0; c < 4; c++) {
    uint8_t lab = (uint8_t)c;
    float score;
    ffs_ffnet_score_label(n, x, 1, &lab, &score);
    ffs_saliency_occlusion(s, x, c, occ);
    ck_assert_msg(fabsf(occ[ignored]) <= 1e-5f * (1.0f + fabsf(score)),
                  "class %d: occluding the ignored pixel moved the energy %g by %g", c,
                  (double)score, (double)occ[ignored]);
    ck_assert_msg(fabsf(occ[used]) > 1e-3f * (1.0f + fabsf(score)),
                  "class %d: occluding a used pixel moved nothing (%g)", c, (double)occ[used]);
  }
  ffs_saliency_destroy(&s);
  ffs_ffnet_destroy(&n);
}
END_TEST

// ---- the deletion test ----

// Orders put the label's pixels last; the curve starts at the image's own
// probability and ends where every pixel is gone, whatever the order.
START_TEST(test_deletion_curves) {
  static ffs_topo_t t;
  ffs_ffnet_t *n = s_net(0, &t);
  ffs_saliency_t *s = ffs_saliency_new(n, 6, 6, 1);
  float x[36], map[36], sc[4], p[2 * FFS_SALIENCY_STEPS];
  int orders[2 * 36];
  s_image(x, 50);
  for (int q = 0; q < 36; q++) map[q] = (float)((q * 7) % 36);
  ffs_saliency_order(s, map, orders);
  for (int i = 0; i + 1 < 32; i++) ck_assert_float_ge(map[orders[i]], map[orders[i + 1]]);
  for (int i = 32; i < 36; i++) ck_assert_int_eq(orders[i], i - 32);
  ffs_rng_t rng;
  ffs_rng_seed(&rng, 1, 0);
  ffs_saliency_random_order(s, &rng, orders + 36);
  int seen[36] = {0};
  for (int i = 0; i < 36; i++) seen[orders[36 + i]]++;
  for (int q = 0; q < 36; q++) ck_assert_int_eq(seen[q], 1);
  ffs_ffnet_scores(n, x, 1, sc, NULL);
  int cls = 1;
  ffs_saliency_deletion(s, x, cls, orders, 2, p);
  double sum = 0.0;
  for (int c = 0; c < 4; c++) sum += exp((double)sc[c] - sc[cls]);
  for (int m = 0; m < 2; m++) {
    const float *pm = p + m * FFS_SALIENCY_STEPS;
    ck_assert_float_eq_tol(pm[0], (float)(1.0 / sum), 1e-5f);
    ck_assert_float_eq_tol(pm[FFS_SALIENCY_STEPS - 1], p[FFS_SALIENCY_STEPS - 1], 1e-6f);
  }
  float flat[FFS_SALIENCY_STEPS];
  for (int k = 0; k < FFS_SALIENCY_STEPS; k++) flat[k] = k < 10 ? 1.0f : 0.0f;
  ck_assert_double_eq_tol(ffs_saliency_auc(flat), 0.475, 1e-9); // 9.5 of 20 intervals
  ffs_saliency_destroy(&s);
  ffs_ffnet_destroy(&n);
}
END_TEST

// ---- the command on a run folder ----

// DIR/data: IDX files of 3 test images of 6 x 6 pixels, labels 0..3.
static void s_write_idx(void) {
  char path[128];
  snprintf(path, sizeof path, "%s/data", s_dir);
  ck_assert_int_eq(mkdir(path, 0755), 0);
  unsigned char img[16 + 3 * 36], lab[8 + 3] = {0, 0, 8, 1, 0, 0, 0, 3, 3, 0, 2};
  unsigned char head[16] = {0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 6, 0, 0, 0, 6};
  memcpy(img, head, 16);
  for (int i = 0; i < 3 * 36; i++) img[16 + i] = (unsigned char)((i * 37) % 7 < 3 ? 0 : i * 53);
  const struct { const char *name; const unsigned char *b; size_t n; } f[2] = {
      {"t10k-images-idx3-ubyte", img, sizeof img}, {"t10k-labels-idx1-ubyte", lab, sizeof lab}};
  for (int k = 0; k < 2; k++) {
    snprintf(path, sizeof path, "%s/data/%s", s_dir, f[k].name);
    FILE *out = fopen(path, "wb");
    ck_assert_ptr_nonnull(out);
    ck_assert_uint_eq(fwrite(f[k].b, 1, f[k].n, out), f[k].n);
    fclose(out);
  }
}

// DIR/t.yaml: l1 of 20 units, which the run's sets make 12.
static void s_write_topology(void) {
  char text[512], path[128];
  snprintf(text, sizeof text,
           "data: {set: mnist, dir: %s/data, dim: 36, classes: 4}\n"
           "stages:\n"
           "  - {name: src, kind: source}\n"
           "  - {name: l1, kind: ff_layer, units: 20}\n"
           "  - {name: l2, kind: ff_layer, units: 10}\n"
           "  - {name: l3, kind: ff_layer, units: 8}\n"
           "  - {name: out, kind: readout}\n", s_dir);
  s_write("t.yaml", text, path, sizeof path);
}

// Layer k's w and b, rows [row0, row0 + rows), into DIR/run/ckpt/name.
static void s_save_layer(ffs_ffnet_t *n, int k, const char *name, int row0, int rows, int in) {
  char path[160];
  snprintf(path, sizeof path, "%s/run/ckpt/%s.safetensors", s_dir, name);
  ffs_ff_layer_t *l = ffs_ffnet_layer(n, k);
  ffs_tensor_ref_t t[2] = {{"w", 2, {rows, in}, ffs_ff_layer_weights(l) + row0 * in},
                           {"b", 1, {rows, 0}, ffs_ff_layer_bias(l) + row0}};
  ck_assert_msg(ffs_ckpt_save(path, t, 2, NULL, 0, s_err, sizeof s_err) == 0, "%s", s_err);
}

// DIR/run as `ffstream run` leaves it: summary.json naming DIR/t.yaml, sets
// (l1.units=12), ckpt/ with a random network of those sizes. Returns the
// network (the caller destroys it) loaded into t.
static ffs_ffnet_t *s_make_run(ffs_topo_t *t) {
  char path[160], text[256];
  s_write_idx();
  s_write_topology();
  snprintf(path, sizeof path, "%s/run", s_dir);
  ck_assert_int_eq(mkdir(path, 0755), 0);
  snprintf(path, sizeof path, "%s/run/ckpt", s_dir);
  ck_assert_int_eq(mkdir(path, 0755), 0);
  snprintf(text, sizeof text, "{\n  \"topology\": \"%s/t.yaml\",\n  \"name\": \"t\"\n}\n", s_dir);
  s_write("run/summary.json", text, path, sizeof path);
  s_write("run/sets", "l1.units=12\ntrain.triples=true\n", path, sizeof path);
  snprintf(path, sizeof path, "%s/t.yaml", s_dir);
  const char *set = "l1.units=12";
  ck_assert_msg(ffs_topo_load(t, path, &set, 1, s_err, sizeof s_err) == 0, "%s", s_err);
  ffs_ffnet_t *n = ffs_ffnet_new(t, 64, s_err, sizeof s_err);
  ck_assert_msg(n != NULL, "%s", s_err);
  s_randomize(n, 77);
  s_save_layer(n, 0, "l1", 0, 12, 36);
  s_save_layer(n, 1, "l2", 0, 10, 12);
  s_save_layer(n, 2, "l3", 0, 8, 10);
  return n;
}

static ffs_saliency_opts_t s_opts(const char *run) {
  return (ffs_saliency_opts_t){.run_dir = run, .images = 3, .cls = -1, .patch = 1,
                               .test_limit = 3, .scale = 4};
}

static int s_lines(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  int n = 0, ch;
  while ((ch = fgetc(f)) != EOF) n += ch == '\n';
  fclose(f);
  return n;
}

// The maps of three images: the files saliency.json names, a grid whose
// first column is the input images' grey levels, the class means; then the
// deletion test's table.
START_TEST(test_maps_and_deletion_of_a_run) {
  static ffs_topo_t t;
  ffs_ffnet_t *n = s_make_run(&t);
  char run[128], path[256];
  snprintf(run, sizeof run, "%s/run", s_dir);
  ffs_saliency_opts_t o = s_opts(run);
  ck_assert_msg(ffs_saliency_run(&o, s_err, sizeof s_err) == 0, "%s", s_err);
  png_image im = {.version = PNG_IMAGE_VERSION};
  snprintf(path, sizeof path, "%s/saliency/grid.png", run);
  ck_assert(png_image_begin_read_from_file(&im, path));
  ck_assert_uint_eq(im.width, 4 * 24 + 5 * 8); // 4 tiles of 6 x 4 pixels, gaps of 2 x 4
  ck_assert_uint_eq(im.height, 3 * 24 + 4 * 8);
  im.format = PNG_FORMAT_RGB;
  unsigned char *px = malloc(PNG_IMAGE_SIZE(im));
  ck_assert(png_image_finish_read(&im, NULL, px, 0, NULL));
  ffs_dataset_t *d = ffs_dataset_load(t.data_dir, "t10k", 0, 4, s_err, sizeof s_err);
  ck_assert_msg(d != NULL, "%s", s_err);
  for (int i = 0; i < 3; i++)
    for (int p = 0; p < 36; p++) { // each image pixel's 4 x 4 block, top-left corner
      int y = 8 + i * 32 + (p / 6) * 4 + 3, xx = 8 + (p % 6) * 4 + 3;
      int grey = (int)lroundf(255.0f * d->x[i * 36 + p]);
      ck_assert_int_eq(px[(y * im.width + xx) * 3], grey);
    }
  ck_assert_int_eq(px[0], 160); // the grey between tiles
  free(px);
  float sc[3 * 4];
  ffs_ffnet_scores(n, d->x, 3, sc, NULL);
  for (int i = 0; i < 3; i++) {
    int pred = 0;
    for (int c = 1; c < 4; c++) pred = sc[i * 4 + c] > sc[i * 4 + pred] ? c : pred;
    snprintf(path, sizeof path, "%s/saliency/%04d-label%d-pred%d-class%d-occlusion.png", run, i,
             d->y[i], pred, pred);
    ck_assert_msg(access(path, R_OK) == 0, "%s is not there", path);
    snprintf(path, sizeof path, "%s/saliency/mean-class%d-attribution.png", run, pred);
    ck_assert_msg(access(path, R_OK) == 0, "%s is not there", path);
  }
  snprintf(path, sizeof path, "%s/saliency/saliency.json", run);
  ck_assert_int_gt(s_lines(path), 10);
  o.deletion = 1;
  ck_assert_msg(ffs_saliency_run(&o, s_err, sizeof s_err) == 0, "%s", s_err);
  snprintf(path, sizeof path, "%s/saliency/deletion.csv", run);
  ck_assert_int_eq(s_lines(path), 5); // header, occlusion, attribution, x input, random
  ffs_dataset_destroy(&d);
  ffs_ffnet_destroy(&n);
}
END_TEST

// err is one line that contains what.
static void s_expect(const char *what) {
  ck_assert_msg(strstr(s_err, what), "expected '%s' in: %s", what, s_err);
  ck_assert_msg(!strchr(s_err, '\n'), "not one line: %s", s_err);
}

START_TEST(test_bad_run_folders_say_what_is_wrong) {
  static ffs_topo_t t;
  ffs_ffnet_t *n = s_make_run(&t);
  char run[128], path[256];
  snprintf(run, sizeof run, "%s/run", s_dir);
  ffs_saliency_opts_t o = s_opts("/nonexistent/run");
  ck_assert_int_eq(ffs_saliency_run(&o, s_err, sizeof s_err), -1);
  s_expect("/nonexistent/run: ");
  o = s_opts(s_dir); // a folder, but no run's
  ck_assert_int_eq(ffs_saliency_run(&o, s_err, sizeof s_err), -1);
  s_expect("summary.json");
  o = s_opts(run); // the run's --set list is what makes l1 12 wide
  snprintf(path, sizeof path, "%s/sets", run);
  ck_assert_int_eq(remove(path), 0);
  ck_assert_int_eq(ffs_saliency_run(&o, s_err, sizeof s_err), -1);
  s_expect("l1.safetensors: tensor 'w' has shape [12,36], expected [20,36]");
  const char *set = "l1.units=12";
  o.sets = &set, o.n_sets = 1;
  ck_assert_msg(ffs_saliency_run(&o, s_err, sizeof s_err) == 0, "%s", s_err);
  s_save_layer(n, 2, "l3", 0, 5, 10); // rows missing
  ck_assert_int_eq(ffs_saliency_run(&o, s_err, sizeof s_err), -1);
  s_expect("l3.safetensors: tensor 'w' has shape [5,10], expected [8,10]");
  snprintf(path, sizeof path, "%s/ckpt/l2.safetensors", run);
  ck_assert_int_eq(remove(path), 0);
  ck_assert_int_eq(ffs_saliency_run(&o, s_err, sizeof s_err), -1);
  s_expect("ckpt/l2.safetensors: cannot read the checkpoint of stage 'l2'");
  const char *bad = "l9.units=3";
  o.sets = &bad;
  ck_assert_int_eq(ffs_saliency_run(&o, s_err, sizeof s_err), -1);
  s_expect("--set l9.units=3");
  s_write("dp.yaml",
          "data: {set: mnist, dim: 36, classes: 4}\n"
          "stages:\n"
          "  - {name: src, kind: source}\n"
          "  - {name: l1, kind: dp_layer, units: 8}\n"
          "  - {name: top, kind: dp_layer, units: 4}\n"
          "  - {name: out, kind: readout}\n", path, sizeof path);
  o = s_opts(run);
  o.topology = path;
  ck_assert_int_eq(ffs_saliency_run(&o, s_err, sizeof s_err), -1);
  s_expect("stage 'l1' is a dp_layer: saliency maps are for Forward-Forward runs");
  ffs_ffnet_destroy(&n);
}
END_TEST

// A layer the run sharded: each shard's file holds its rows; together they
// are the layer, and the scores are the unsharded network's.
START_TEST(test_sharded_layer_is_its_shards_together) {
  static ffs_topo_t t, t2;
  ffs_ffnet_t *n = s_make_run(&t);
  char ckpt[160];
  snprintf(ckpt, sizeof ckpt, "%s/run/ckpt", s_dir);
  s_save_layer(n, 1, "l2.0", 0, 5, 12);
  s_save_layer(n, 1, "l2.1", 5, 5, 12);
  const char *sets[2] = {"l1.units=12", "l2.shards=2"};
  ck_assert_msg(ffs_topo_load(&t2, t.path, sets, 2, s_err, sizeof s_err) == 0, "%s", s_err);
  ffs_ffnet_t *sh = ffs_ffnet_new(&t2, 64, s_err, sizeof s_err);
  ck_assert_int_eq(ffs_ffnet_n_layers(sh), 3);
  ck_assert_msg(ffs_ffnet_load(sh, ckpt, s_err, sizeof s_err) == 0, "%s", s_err);
  float x[36], a[4], b[4];
  s_image(x, 60);
  ffs_ffnet_scores(n, x, 1, a, NULL);
  ffs_ffnet_scores(sh, x, 1, b, NULL);
  for (int c = 0; c < 4; c++) ck_assert_float_eq(a[c], b[c]);
  char path[200];
  snprintf(path, sizeof path, "%s/l2.safetensors", ckpt);
  ck_assert_int_eq(remove(path), 0); // a sharded run's files, loaded as unsharded
  ffs_ffnet_t *whole = ffs_ffnet_new(&t, 64, s_err, sizeof s_err);
  ck_assert_int_eq(ffs_ffnet_load(whole, ckpt, s_err, sizeof s_err), -1);
  s_expect("l2.0.safetensors is there: the run sharded layer 'l2' (give its --set l2.shards=K)");
  ffs_ffnet_destroy(&whole), ffs_ffnet_destroy(&sh), ffs_ffnet_destroy(&n);
}
END_TEST

Suite *s_suite(void) {
  Suite *s = suite_create("saliency");
  TCase *core = tcase_create("core");
  tcase_add_checked_fixture(core, s_setup, s_teardown);
  tcase_add_test(core, test_forward_matches_double);
  tcase_add_test(core, test_attribution_is_finite_differences);
  tcase_add_test(core, test_recurrent_form);
  tcase_add_test(core, test_occlusion_is_the_drop);
  tcase_add_test(core, test_occluding_an_ignored_pixel_changes_nothing);
  tcase_add_test(core, test_deletion_curves);
  suite_add_tcase(s, core);
  TCase *run = tcase_create("run");
  tcase_add_checked_fixture(run, s_setup, s_teardown);
  tcase_add_test(run, test_maps_and_deletion_of_a_run);
  tcase_add_test(run, test_bad_run_folders_say_what_is_wrong);
  tcase_add_test(run, test_sharded_layer_is_its_shards_together);
  suite_add_tcase(s, run);
  return s;
}

int main(void) { return ffs_check_run(s_suite()); }
