// check_math: the kernels of common/ against hand-worked values and naive
// loops: RMS normalization, goodness, the logistic FF loss and its
// derivative, softmax, linear maps, the optimizers, the RNG.
#include "ffs_check.h"
#include <math.h>
#include <stdlib.h>

#include "ffs_math.h"
#include "ffs_optim.h"
#include "ffs_rng.h"

START_TEST(test_rms_normalize_hand) {
  // row (3, 4): mean square = (9 + 16) / 2 = 12.5, rms = 3.5355339
  float x[4] = {3, 4, 0, 0}, out[4];
  ffs_rms_normalize(out, x, 2, 2, 0.0f);
  ck_assert_float_eq_tol(out[0], 3.0f / 3.5355339f, 1e-6f);
  ck_assert_float_eq_tol(out[1], 4.0f / 3.5355339f, 1e-6f);
  // mean square of a normalized row is 1
  ck_assert_float_eq_tol((out[0] * out[0] + out[1] * out[1]) / 2.0f, 1.0f, 1e-6f);
  // an all-zero row stays zero (eps guards the division)
  ffs_rms_normalize(out + 2, x + 2, 1, 2, 1e-8f);
  ck_assert_float_eq(out[2], 0.0f);
  ck_assert_float_eq(out[3], 0.0f);
}
END_TEST

START_TEST(test_goodness_hand) {
  float y[6] = {1, 2, 3, 0, 0.5f, 0};
  float g[2];
  ffs_goodness(g, y, 2, 3, FFS_GOODNESS_SSQ);
  ck_assert_float_eq_tol(g[0], 14.0f, 1e-6f);
  ck_assert_float_eq_tol(g[1], 0.25f, 1e-6f);
  ffs_goodness(g, y, 2, 3, FFS_GOODNESS_MSQ);
  ck_assert_float_eq_tol(g[0], 14.0f / 3.0f, 1e-6f);
  ffs_goodness(g, y, 2, 3, FFS_GOODNESS_MIN_SSQ);
  ck_assert_float_eq_tol(g[0], 14.0f, 1e-6f);
  // min_ssq flips the logit: low goodness means positive
  ck_assert_float_eq_tol(ffs_ff_logit(14.0f, 10.0f, 2.0f, FFS_GOODNESS_SSQ), 2.0f, 1e-6f);
  ck_assert_float_eq_tol(ffs_ff_logit(14.0f, 10.0f, 2.0f, FFS_GOODNESS_MIN_SSQ), -2.0f, 1e-6f);
}
END_TEST

START_TEST(test_ff_loss_hand) {
  // logit 0: p = 0.5, loss = log 2 either way
  ck_assert_float_eq_tol(ffs_ff_loss(0.0f, 1), 0.69314718f, 1e-6f);
  ck_assert_float_eq_tol(ffs_ff_loss(0.0f, 0), 0.69314718f, 1e-6f);
  // logit 2, positive: log(1 + e^-2) = 0.12692801
  ck_assert_float_eq_tol(ffs_ff_loss(2.0f, 1), 0.12692801f, 1e-6f);
  ck_assert_float_eq_tol(ffs_ff_loss(2.0f, 0), 2.12692801f, 1e-5f);
  // no overflow far out
  ck_assert_float_eq_tol(ffs_ff_loss(200.0f, 0), 200.0f, 1e-3f);
  ck_assert(isfinite(ffs_ff_loss(-200.0f, 0)));
  ck_assert_float_eq_tol(ffs_sigmoid(-200.0f), 0.0f, 1e-30f);
}
END_TEST

START_TEST(test_ff_dloss_dg_finite_difference) {
  const float theta = 5.0f, temp = 1.5f;
  ffs_goodness_t kinds[2] = {FFS_GOODNESS_SSQ, FFS_GOODNESS_MIN_SSQ};
  for (int k = 0; k < 2; k++)
    for (int pos = 0; pos < 2; pos++)
      for (float g = 0.5f; g < 12.0f; g += 1.7f) {
        float h = 1e-2f;
        float lp = ffs_ff_loss(ffs_ff_logit(g + h, theta, temp, kinds[k]), pos);
        float lm = ffs_ff_loss(ffs_ff_logit(g - h, theta, temp, kinds[k]), pos);
        float fd = (lp - lm) / (2 * h);
        float an = ffs_ff_dloss_dg(ffs_ff_logit(g, theta, temp, kinds[k]), pos, temp, kinds[k]);
        ck_assert_float_eq_tol(an, fd, 1e-3f);
      }
}
END_TEST

START_TEST(test_linear_against_naive) {
  enum { B = 3, I = 5, O = 4 };
  ffs_rng_t rng;
  ffs_rng_seed(&rng, 7, 0);
  float x[B * I], w[O * I], b[O], out[B * O], dout[B * O], dw[O * I], db[O];
  for (int i = 0; i < B * I; i++) x[i] = ffs_rng_normal(&rng);
  for (int i = 0; i < O * I; i++) w[i] = ffs_rng_normal(&rng);
  for (int i = 0; i < O; i++) b[i] = ffs_rng_normal(&rng);
  for (int i = 0; i < B * O; i++) dout[i] = ffs_rng_normal(&rng);
  ffs_linear_forward(out, x, w, b, B, I, O);
  ffs_linear_backward_w(dw, db, dout, x, B, I, O, 0);
  for (int r = 0; r < B; r++)
    for (int o = 0; o < O; o++) {
      double s = b[o];
      for (int i = 0; i < I; i++) s += (double)x[r * I + i] * w[o * I + i];
      ck_assert_float_eq_tol(out[r * O + o], (float)s, 1e-5f);
    }
  for (int o = 0; o < O; o++) {
    double sb = 0;
    for (int r = 0; r < B; r++) sb += dout[r * O + o];
    ck_assert_float_eq_tol(db[o], (float)sb, 1e-5f);
    for (int i = 0; i < I; i++) {
      double s = 0;
      for (int r = 0; r < B; r++) s += (double)dout[r * O + o] * x[r * I + i];
      ck_assert_float_eq_tol(dw[o * I + i], (float)s, 1e-5f);
    }
  }
  // accumulate: a second call adds the same gradient again
  float dw1[O * I], db1[O];
  memcpy(dw1, dw, sizeof dw), memcpy(db1, db, sizeof db);
  ffs_linear_backward_w(dw, db, dout, x, B, I, O, 1);
  for (int o = 0; o < O; o++) {
    ck_assert_float_eq_tol(db[o], 2 * db1[o], 1e-5f);
    for (int i = 0; i < I; i++) ck_assert_float_eq_tol(dw[o * I + i], 2 * dw1[o * I + i], 1e-5f);
  }
}
END_TEST

START_TEST(test_softmax_and_argmax) {
  float x[3] = {1.0f, 2.0f, 3.0f};
  ffs_softmax_rows(x, 1, 3);
  // e^1, e^2, e^3 / sum: 0.09003057, 0.24472847, 0.66524096
  ck_assert_float_eq_tol(x[0], 0.09003057f, 1e-6f);
  ck_assert_float_eq_tol(x[2], 0.66524096f, 1e-6f);
  ck_assert_int_eq(ffs_argmax(x, 3), 2);
  float big[2] = {1000.0f, 999.0f};
  ffs_softmax_rows(big, 1, 2);
  ck_assert(isfinite(big[0]) && big[0] > big[1]);
}
END_TEST

START_TEST(test_sgd_smoothed_with_decay) {
  // one step by hand: m = 0.9*0 + 0.1*g = 0.1 g ; p -= lr (m + wd p)
  float p[2] = {1.0f, -2.0f}, g[2] = {0.5f, 1.0f}, m[2] = {0, 0};
  ffs_optim_step_t st = {.kind = FFS_OPT_SGD, .lr = 0.1f, .momentum = 0.9f, .weight_decay = 0.01f};
  ffs_optim_apply(p, g, m, NULL, 2, &st);
  ck_assert_float_eq_tol(m[0], 0.05f, 1e-7f);
  ck_assert_float_eq_tol(p[0], 1.0f - 0.1f * (0.05f + 0.01f), 1e-7f);
  ck_assert_float_eq_tol(p[1], -2.0f - 0.1f * (0.1f - 0.02f), 1e-7f);
}
END_TEST

START_TEST(test_adam_first_step) {
  // Adam's first bias-corrected step moves each parameter by lr * sign(g)
  float p[2] = {1.0f, 1.0f}, g[2] = {0.3f, -4.0f}, m[2] = {0}, v[2] = {0};
  ffs_optim_step_t st = {.kind = FFS_OPT_ADAM, .lr = 0.01f, .momentum = 0.9f, .beta2 = 0.999f,
                         .eps = 1e-8f, .step = 1};
  ffs_optim_apply(p, g, m, v, 2, &st);
  ck_assert_float_eq_tol(p[0], 0.99f, 1e-5f);
  ck_assert_float_eq_tol(p[1], 1.01f, 1e-5f);
}
END_TEST

START_TEST(test_cooldown) {
  ck_assert_float_eq(ffs_optim_cooldown(0, 60), 1.0f);
  ck_assert_float_eq(ffs_optim_cooldown(30, 60), 1.0f);
  ck_assert_float_eq_tol(ffs_optim_cooldown(45, 60), 0.5f, 1e-6f);
  ck_assert_float_eq_tol(ffs_optim_cooldown(59, 60), 2.0f / 60.0f, 1e-6f);
}
END_TEST

START_TEST(test_rng_reproducible_and_ranges) {
  ffs_rng_t a, b, c;
  ffs_rng_seed(&a, 42, 1);
  ffs_rng_seed(&b, 42, 1);
  ffs_rng_seed(&c, 42, 2);
  int same_c = 1;
  for (int i = 0; i < 100; i++) {
    uint64_t x = ffs_rng_u64(&a);
    ck_assert_uint_eq(x, ffs_rng_u64(&b));
    same_c &= x == ffs_rng_u64(&c);
  }
  ck_assert(!same_c);
  double mean = 0, var = 0;
  int counts[9] = {0};
  for (int i = 0; i < 90000; i++) {
    float u = ffs_rng_uniform(&a);
    ck_assert(u >= 0.0f && u < 1.0f);
    counts[ffs_rng_below(&a, 9)]++;
    float n = ffs_rng_normal(&a);
    mean += n, var += (double)n * n;
  }
  mean /= 90000, var = var / 90000 - mean * mean;
  ck_assert(fabs(mean) < 0.02 && fabs(var - 1.0) < 0.03);
  for (int k = 0; k < 9; k++) ck_assert(counts[k] > 9000 && counts[k] < 11000);
  uint32_t idx[50];
  for (uint32_t i = 0; i < 50; i++) idx[i] = i;
  ffs_rng_shuffle(&a, idx, 50);
  int seen[50] = {0};
  for (int i = 0; i < 50; i++) seen[idx[i]]++;
  for (int i = 0; i < 50; i++) ck_assert_int_eq(seen[i], 1);
}
END_TEST

// Plain SGD without optimizer state equals the momentum path with momentum 0
// and a zero m, for 1, 2 and 5 rows of factors (and leaves no state).
START_TEST(test_sgd_plain_is_momentum_zero) {
  enum { O = 7, I = 13 };
  for (int rows = 1; rows <= 5; rows += rows == 2 ? 3 : 1) {
    float w1[O * I], w2[O * I], m[O * I], a[5 * O], x[5 * I];
    for (int k = 0; k < O * I; k++) w1[k] = w2[k] = 0.01f * (float)((k * 37) % 23 - 11);
    for (int k = 0; k < 5 * O; k++) a[k] = 0.1f * (float)((k * 11) % 7 - 3);
    for (int k = 0; k < 5 * I; k++) x[k] = 0.05f * (float)((k * 5) % 13 - 6);
    memset(m, 0, sizeof m);
    ffs_optim_sgd_outer(w1, m, a, x, rows, O, I, 0.0f, 1, 0.3f, 0.01f, 0.0f);
    ffs_optim_sgd_plain(w2, a, x, rows, O, I, 0.3f, 0.01f);
    for (int k = 0; k < O * I; k++) {
      ck_assert_float_eq_tol(w1[k], w2[k], 1e-6f);
      // the step did move w: a hand sum for this weight
      int j = k / I, i = k % I;
      float g = 0.0f, w0 = 0.01f * (float)((k * 37) % 23 - 11);
      for (int r = 0; r < rows; r++) g += a[r * O + j] * x[r * I + i];
      ck_assert_float_eq_tol(w2[k], w0 - 0.3f * (g + 0.01f * w0), 1e-6f);
    }
  }
}
END_TEST

static Suite *s_suite(void) {
  Suite *s = suite_create("math");
  TCase *core = tcase_create("core");
  tcase_add_test(core, test_rms_normalize_hand);
  tcase_add_test(core, test_goodness_hand);
  tcase_add_test(core, test_ff_loss_hand);
  tcase_add_test(core, test_ff_dloss_dg_finite_difference);
  tcase_add_test(core, test_linear_against_naive);
  tcase_add_test(core, test_softmax_and_argmax);
  tcase_add_test(core, test_sgd_smoothed_with_decay);
  tcase_add_test(core, test_adam_first_step);
  tcase_add_test(core, test_cooldown);
  tcase_add_test(core, test_sgd_plain_is_momentum_zero);
  tcase_add_test(core, test_rng_reproducible_and_ranges);
  suite_add_tcase(s, core);
  return s;
}

int main(void) { return ffs_check_run(s_suite()); }
