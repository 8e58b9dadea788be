// check_mirror_layer: the mirrored models' objectives
// (stages/mirror_layer/mirror_layer.h). Each hidden objective's dz (the
// gradient at the pre-activation, through relu, the twin's activity held
// fixed), the label head's gradients (at the head's logits and, through its
// weights and relu, at the layer's pre-activation) and the top's binary
// cross-entropy gradient match central finite differences of the loss; the
// collapse measure is 1 for parallel rows and 0 for orthogonal ones.
#include "ffs_check.h"
#include <math.h>
#include <string.h>

#include "ffs_math.h"
#include "mirror_layer.h"

#define S_R 5
#define S_U 7

static void s_fill(float *x, int n, float phase) {
  for (int i = 0; i < n; i++) x[i] = 0.8f * sinf(0.9f * (float)i + phase) + 0.15f;
}

// The hidden loss as a function of the pre-activation a (u = relu(a)).
static double s_hidden_loss(const ffs_mirror_cfg_t *c, const float *a, const float *v,
                            const uint8_t *labels) {
  float u[S_R * S_U], dz[S_R * S_U], scratch[S_R * (S_R + 1)];
  for (int i = 0; i < S_R * S_U; i++) u[i] = a[i] > 0 ? a[i] : 0;
  return ffs_mirror_hidden(c, u, v, a, labels, S_R, S_U, dz, scratch);
}

START_TEST(test_hidden_gradients) {
  static const uint8_t labels[S_R] = {1, 0, 1, 2, 0};
  for (int obj = 0; obj < 3; obj++) {
    // the objective at weight 0.6 (`twin:`): dz is 0.6 times the loss's gradient
    ffs_mirror_cfg_t c = {.objective = (ffs_mirror_obj_t)obj, .temp = 0.5f, .twin = 0.6f};
    float a[S_R * S_U], v[S_R * S_U], u[S_R * S_U], dz[S_R * S_U], scratch[S_R * (S_R + 1)];
    s_fill(a, S_R * S_U, 0.3f);
    s_fill(v, S_R * S_U, 1.7f);
    for (int i = 0; i < S_R * S_U; i++) v[i] = fabsf(v[i]); // a twin's relu activity
    for (int i = 0; i < S_R * S_U; i++) u[i] = a[i] > 0 ? a[i] : 0;
    ffs_mirror_hidden(&c, u, v, a, labels, S_R, S_U, dz, scratch);
    int checked = 0;
    for (int i = 0; i < S_R * S_U; i++) {
      if (fabsf(a[i]) < 0.02f) continue; // too near relu's kink for a difference
      float keep = a[i];
      a[i] = keep + 1e-3f;
      double up = s_hidden_loss(&c, a, v, labels);
      a[i] = keep - 1e-3f;
      double dn = s_hidden_loss(&c, a, v, labels);
      a[i] = keep;
      double fd = 0.6 * (up - dn) / 2e-3;
      ck_assert_msg(fabs(fd - dz[i]) <= 1e-3 + 2e-2 * fabs(fd),
                    "objective %d, a[%d] = %g: dz %g, finite differences %g", obj, i, a[i], dz[i],
                    fd);
      checked += a[i] > 0;
    }
    ck_assert_int_gt(checked, S_R * S_U / 3);
  }
}
END_TEST

// The head's cross-entropy (weight w) as a function of the layer's
// pre-activation a and the head's weights wh (zh = wh relu(a), no bias).
#define S_K 3
static double s_head_loss(const float *a, const float *wh, const uint8_t *labels, double w) {
  float zh[S_R * S_K] = {0}, p[S_R * S_K], dzh[S_R * S_K], dz[S_R * S_U] = {0};
  for (int r = 0; r < S_R; r++)
    for (int k = 0; k < S_K; k++)
      for (int u = 0; u < S_U; u++)
        zh[r * S_K + k] += wh[k * S_U + u] * (a[r * S_U + u] > 0 ? a[r * S_U + u] : 0);
  return w * ffs_mirror_head(zh, wh, a, labels, S_R, S_U, S_K, w, p, dzh, dz);
}

START_TEST(test_head_gradients) {
  static const uint8_t labels[S_R] = {2, 0, 1, 2, 0};
  const double w = 0.7;
  float a[S_R * S_U], wh[S_K * S_U], zh[S_R * S_K] = {0}, p[S_R * S_K], dzh[S_R * S_K];
  float dz[S_R * S_U];
  s_fill(a, S_R * S_U, 0.3f);
  s_fill(wh, S_K * S_U, 2.1f);
  for (int i = 0; i < S_R * S_U; i++) dz[i] = 0.25f; // the head adds to what dz holds
  for (int r = 0; r < S_R; r++)
    for (int k = 0; k < S_K; k++)
      for (int u = 0; u < S_U; u++)
        zh[r * S_K + k] += wh[k * S_U + u] * (a[r * S_U + u] > 0 ? a[r * S_U + u] : 0);
  double loss = ffs_mirror_head(zh, wh, a, labels, S_R, S_U, S_K, w, p, dzh, dz);
  ck_assert(loss > 0);
  int checked = 0;
  for (int i = 0; i < S_R * S_U; i++) { // at the pre-activation
    if (fabsf(a[i]) < 0.02f) continue;
    float keep = a[i];
    a[i] = keep + 1e-3f;
    double up = s_head_loss(a, wh, labels, w);
    a[i] = keep - 1e-3f;
    double dn = s_head_loss(a, wh, labels, w);
    a[i] = keep;
    double fd = (up - dn) / 2e-3, got = dz[i] - 0.25;
    ck_assert_msg(fabs(fd - got) <= 1e-4 + 1e-2 * fabs(fd), "a[%d]: dz %g, finite differences %g",
                  i, got, fd);
    checked += a[i] > 0;
  }
  ck_assert_int_gt(checked, S_R * S_U / 3);
  for (int k = 0; k < S_K; k++) // at the head's weights: dW_kj = sum_r dzh_rk relu(a_rj)
    for (int j = 0; j < S_U; j++) {
      double got = 0;
      for (int r = 0; r < S_R; r++)
        got += dzh[r * S_K + k] * (a[r * S_U + j] > 0 ? a[r * S_U + j] : 0);
      float keep = wh[k * S_U + j];
      wh[k * S_U + j] = keep + 1e-3f;
      double up = s_head_loss(a, wh, labels, w);
      wh[k * S_U + j] = keep - 1e-3f;
      double dn = s_head_loss(a, wh, labels, w);
      wh[k * S_U + j] = keep;
      double fd = (up - dn) / 2e-3;
      ck_assert_msg(fabs(fd - got) <= 1e-4 + 1e-2 * fabs(fd), "wh[%d][%d]: %g, differences %g",
                    k, j, got, fd);
    }
  uint8_t bad[S_R] = {2, 0, 3, 2, 0}; // 3 is no class of S_K
  ck_assert(ffs_mirror_head(zh, wh, a, bad, S_R, S_U, S_K, w, p, dzh, dz) < 0);
}
END_TEST

START_TEST(test_top_gradient) {
  static const uint8_t labels[S_R] = {2, 0, 1, 2, 0};
  float z[S_R * 3], p[S_R * 3], dz[S_R * 3], pp[S_R * 3], dd[S_R * 3];
  s_fill(z, S_R * 3, 0.5f);
  double loss = ffs_mirror_top(z, labels, S_R, 3, p, dz);
  ck_assert(loss > 0);
  for (int r = 0; r < S_R; r++) { // p: the softmax of z
    double sum = 0;
    for (int k = 0; k < 3; k++) sum += p[r * 3 + k];
    ck_assert_double_eq_tol(sum, 1.0, 1e-6);
  }
  for (int i = 0; i < S_R * 3; i++) {
    float keep = z[i];
    z[i] = keep + 1e-3f;
    double up = ffs_mirror_top(z, labels, S_R, 3, pp, dd);
    z[i] = keep - 1e-3f;
    double dn = ffs_mirror_top(z, labels, S_R, 3, pp, dd);
    z[i] = keep;
    double fd = (up - dn) / 2e-3;
    ck_assert_msg(fabs(fd - dz[i]) <= 1e-4 + 1e-2 * fabs(fd), "z[%d]: dz %g, finite differences %g",
                  i, dz[i], fd);
  }
  uint8_t bad[S_R] = {0, 3, 0, 0, 0};
  ck_assert(ffs_mirror_top(z, bad, S_R, 3, p, dz) < 0);
}
END_TEST

START_TEST(test_pair_cosine) {
  float same[3 * 4] = {1, 2, 0, 1, 2, 4, 0, 2, 0.5f, 1, 0, 0.5f};
  float orth[2 * 4] = {1, 0, 0, 0, 0, 3, 0, 0};
  long pairs;
  ck_assert_double_eq_tol(ffs_mean_pair_cosine(same, 3, 4, &pairs), 1.0, 1e-6);
  ck_assert_int_eq(pairs, 3);
  ck_assert_double_eq_tol(ffs_mean_pair_cosine(orth, 2, 4, &pairs), 0.0, 1e-9);
  ck_assert_double_eq_tol(ffs_mean_pair_cosine(orth, 1, 4, &pairs), 0.0, 1e-9);
  ck_assert_int_eq(pairs, 0);
}
END_TEST

int main(void) {
  Suite *s = suite_create("mirror_layer");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, test_hidden_gradients);
  tcase_add_test(tc, test_head_gradients);
  tcase_add_test(tc, test_top_gradient);
  tcase_add_test(tc, test_pair_cosine);
  suite_add_tcase(s, tc);
  return ffs_check_run(s);
}
