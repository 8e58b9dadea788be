// check_dp_layer: dual propagation's arithmetic (stages/dp_layer/dp_layer.h).
// With a small beta the dyads' differences give backprop's gradient (the
// rule `backprop` through the same calls, and finite differences of the
// loss); with beta > 0 one step is the papers' formula written out here by
// hand: s+ and s- of every layer, dW = -(1/beta)(s+ - s-) x^T.
#include "ffs_check.h"
#include <math.h>
#include <string.h>

#include "dp_layer.h"

#define S_ROWS 3
#define S_L 3 // layers: 6 -> 5 -> 4 -> 3 classes
static const int s_dims[S_L + 1] = {6, 5, 4, 3};
static const uint8_t s_labels[S_ROWS] = {2, 0, 1};

static ffs_layer_cfg_t s_sgd(float lr) { // W -= lr dW, b -= lr db
  return (ffs_layer_cfg_t){.opt = FFS_OPT_SGD, .lr = lr};
}

static void s_input(float *x) {
  for (int i = 0; i < S_ROWS * s_dims[0]; i++) x[i] = 0.5f + 0.4f * sinf(1.7f * (float)i);
}

// A network of S_L layers of `rule` (alpha, beta) with `loss` and `act`,
// seeded alike whatever the rule.
static void s_net_of(ffs_dp_layer_t *L[S_L], ffs_dp_rule_t rule, float alpha, float beta,
                     float lr, ffs_dp_loss_t loss, ffs_dp_act_t act) {
  ffs_layer_cfg_t lc = s_sgd(lr);
  for (int k = 0; k < S_L; k++) {
    ffs_dp_cfg_t dc = {.rule = rule, .alpha = alpha, .beta = beta, .loss = loss, .act = act,
                       .top = k == S_L - 1};
    L[k] = ffs_dp_layer_new(s_dims[k], s_dims[k + 1], S_ROWS, &lc, &dc, 11, (uint64_t)k);
    ck_assert_ptr_nonnull(L[k]);
    float *b = ffs_dense_bias(ffs_dp_layer_dense(L[k]));
    for (int j = 0; j < s_dims[k + 1]; j++) b[j] = 0.05f * (float)(j % 3);
  }
}

static void s_net(ffs_dp_layer_t *L[S_L], ffs_dp_rule_t rule, float alpha, float beta, float lr) {
  s_net_of(L, rule, alpha, beta, lr, FFS_DP_LOSS_CE, FFS_DP_RELU);
}

// One pass through the API as the stages make it: forward every layer
// (x[k] is layer k's input, a[k] its pre-activation), the top's loss, then
// the sweep down. dz[k]: each layer's pre-activation gradient.
typedef struct {
  float x[S_L + 1][S_ROWS * 6], a[S_L][S_ROWS * 5], dz[S_L][S_ROWS * 5];
} s_pass_t;
static void s_sweep(ffs_dp_layer_t *L[S_L], s_pass_t *p) {
  s_input(p->x[0]);
  for (int k = 0; k < S_L; k++) ffs_dp_layer_forward(L[k], p->x[k], S_ROWS, p->a[k], p->x[k + 1]);
  double loss;
  ck_assert_int_ge(ffs_dp_layer_top(L[S_L - 1], p->a[S_L - 1], s_labels, S_ROWS,
                                    p->dz[S_L - 1], &loss), 0);
  for (int k = S_L - 1; k > 0; k--) {
    float down[S_ROWS * 6];
    ffs_dp_layer_down(L[k], p->dz[k], S_ROWS, down);
    ffs_dp_layer_hidden(L[k - 1], p->a[k - 1], down, 0.0f, S_ROWS, p->dz[k - 1]);
  }
}

// Every layer's dz of pass pd (dual propagation, small beta) equals pb's
// (backprop) to 1e-3 of pb's largest in that layer, which must not be 0.
static void s_expect_same_dz(const s_pass_t *pd, const s_pass_t *pb) {
  for (int k = 0; k < S_L; k++) {
    double scale = 0;
    for (int i = 0; i < S_ROWS * s_dims[k + 1]; i++) scale = fmax(scale, fabs(pb->dz[k][i]));
    ck_assert_msg(scale > 1e-6, "layer %d has no gradient to compare", k + 1);
    for (int i = 0; i < S_ROWS * s_dims[k + 1]; i++)
      ck_assert_msg(fabs(pd->dz[k][i] - pb->dz[k][i]) <= 1e-3 * scale,
                    "layer %d dz[%d]: dual propagation %g, backprop %g", k + 1, i,
                    pd->dz[k][i], pb->dz[k][i]);
  }
}

// The mean cross-entropy of the network with its current weights, in double.
static double s_loss(ffs_dp_layer_t *L[S_L]) {
  double x[S_ROWS][6], y[S_ROWS][6];
  float xf[S_ROWS * 6];
  s_input(xf);
  for (int r = 0; r < S_ROWS; r++)
    for (int i = 0; i < s_dims[0]; i++) x[r][i] = xf[r * s_dims[0] + i];
  for (int k = 0; k < S_L; k++) {
    const float *w = ffs_dense_weights(ffs_dp_layer_dense(L[k]));
    const float *b = ffs_dense_bias(ffs_dp_layer_dense(L[k]));
    int in = s_dims[k], out = s_dims[k + 1];
    for (int r = 0; r < S_ROWS; r++)
      for (int j = 0; j < out; j++) {
        double a = b[j];
        for (int i = 0; i < in; i++) a += (double)w[j * in + i] * x[r][i];
        y[r][j] = k == S_L - 1 || a > 0 ? a : 0.0;
      }
    memcpy(x, y, sizeof x);
  }
  double loss = 0;
  for (int r = 0; r < S_ROWS; r++) {
    double m = x[r][0], z = 0;
    for (int c = 1; c < 3; c++) m = fmax(m, x[r][c]);
    for (int c = 0; c < 3; c++) z += exp(x[r][c] - m);
    loss += -(x[r][s_labels[r]] - m - log(z));
  }
  return loss / S_ROWS;
}

START_TEST(test_small_beta_is_backprop) {
  ffs_dp_layer_t *dp[S_L], *bp[S_L];
  // beta 0.01: small enough that no unit's nudges straddle relu's kink here,
  // large enough that float32's rounding of a +- beta fb stays below 1e-4
  s_net(dp, FFS_DP_DUALPROP, 0.5f, 1e-2f, 0.1f);
  s_net(bp, FFS_DP_BACKPROP, 0.5f, 1e-2f, 0.1f);
  static s_pass_t pd, pb;
  s_sweep(dp, &pd), s_sweep(bp, &pb);
  s_expect_same_dz(&pd, &pb);
  // backprop's dW = dz^T x is the loss's gradient: finite differences
  for (int k = 0; k < S_L; k++) {
    float *w = ffs_dense_weights(ffs_dp_layer_dense(bp[k]));
    int in = s_dims[k];
    for (int e = 0; e < s_dims[k + 1] * in; e += 3) {
      int j = e / in, i = e % in;
      double g = 0;
      for (int r = 0; r < S_ROWS; r++) g += pb.dz[k][r * s_dims[k + 1] + j] * pb.x[k][r * in + i];
      float keep = w[e];
      w[e] = keep + 1e-3f;
      double up = s_loss(bp);
      w[e] = keep - 1e-3f;
      double dn = s_loss(bp);
      w[e] = keep;
      double fd = (up - dn) / (2e-3);
      ck_assert_msg(fabs(fd - g) <= 2e-3 + 1e-2 * fabs(g), "layer %d w[%d][%d]: dz^T x %g, "
                    "finite differences %g", k + 1, j, i, g, fd);
    }
  }
  for (int k = 0; k < S_L; k++) ffs_dp_layer_destroy(&dp[k]), ffs_dp_layer_destroy(&bp[k]);
}
END_TEST

// One step of alpha 0.3, beta 0.7 (far from the limit) against the papers'
// formulas computed here: the top dyad s+ - s- = -beta (softmax - onehot) / rows,
// each hidden dyad s+ = relu(a + (1-alpha) fb), s- = relu(a - alpha fb) with
// fb = W_above^T (s+ - s-)_above, and W -= lr (-(1/beta)(s+ - s-) x^T).
START_TEST(test_step_is_the_papers_formula) {
  const float alpha = 0.3f, beta = 0.7f, lr = 0.05f;
  ffs_dp_layer_t *L[S_L];
  s_net(L, FFS_DP_DUALPROP, alpha, beta, lr);
  static s_pass_t p;
  s_sweep(L, &p);
  // by hand, in double, from the forward pass's x and a
  double diff[S_L][S_ROWS][5];
  for (int r = 0; r < S_ROWS; r++) {
    const float *a = p.a[S_L - 1] + r * 3;
    double m = fmax(a[0], fmax(a[1], a[2])), z = 0, pr[3];
    for (int c = 0; c < 3; c++) z += exp(a[c] - m);
    for (int c = 0; c < 3; c++) {
      pr[c] = exp(a[c] - m) / z;
      double dl = (pr[c] - (c == s_labels[r])) / S_ROWS;
      double sp = a[c] - (1 - alpha) * beta * dl, sm = a[c] + alpha * beta * dl;
      diff[S_L - 1][r][c] = sp - sm;
    }
  }
  for (int k = S_L - 2; k >= 0; k--) {
    const float *wa = ffs_dense_weights(ffs_dp_layer_dense(L[k + 1]));
    int u = s_dims[k + 1], ua = s_dims[k + 2];
    for (int r = 0; r < S_ROWS; r++)
      for (int j = 0; j < u; j++) {
        double fb = 0;
        for (int c = 0; c < ua; c++) fb += wa[c * u + j] * diff[k + 1][r][c];
        double a = p.a[k][r * u + j];
        diff[k][r][j] = fmax(0, a + (1 - alpha) * fb) - fmax(0, a - alpha * fb);
      }
  }
  float before[S_L][30];
  for (int k = 0; k < S_L; k++)
    memcpy(before[k], ffs_dense_weights(ffs_dp_layer_dense(L[k])),
           sizeof(float) * (size_t)(s_dims[k] * s_dims[k + 1]));
  for (int k = 0; k < S_L; k++) ffs_dp_layer_learn(L[k], p.x[k], p.dz[k], S_ROWS, 1.0f);
  for (int k = 0; k < S_L; k++) {
    const float *w = ffs_dense_weights(ffs_dp_layer_dense(L[k]));
    int in = s_dims[k], u = s_dims[k + 1];
    for (int j = 0; j < u; j++)
      for (int i = 0; i < in; i++) {
        double dw = 0;
        for (int r = 0; r < S_ROWS; r++) dw += -(1.0 / beta) * diff[k][r][j] * p.x[k][r * in + i];
        double want = before[k][j * in + i] - lr * dw;
        ck_assert_msg(fabs(w[j * in + i] - want) <= 1e-6 + 1e-5 * fabs(want),
                      "layer %d w[%d][%d]: %g after the step, by hand %g", k + 1, j, i,
                      w[j * in + i], want);
      }
  }
  for (int k = 0; k < S_L; k++) ffs_dp_layer_destroy(&L[k]);
}
END_TEST

// alpha 0 and 1: the one-sided dyads (s+ = f(a + fb), s- = f(a); s+ = f(a),
// s- = f(a - fb)); a unit off on both sides gives nothing.
START_TEST(test_one_sided_dyads) {
  float a[4] = {1.0f, -2.0f, 0.1f, -0.1f}, fb[4] = {0.5f, 0.5f, -0.4f, 0.4f}, dz[4];
  for (int side = 0; side < 2; side++) {
    ffs_layer_cfg_t lc = s_sgd(0.1f);
    ffs_dp_cfg_t dc = {.rule = FFS_DP_DUALPROP, .alpha = (float)side, .beta = 0.5f};
    ffs_dp_layer_t *l = ffs_dp_layer_new(2, 4, 1, &lc, &dc, 1, 1);
    ck_assert_ptr_nonnull(l);
    ffs_dp_layer_hidden(l, a, fb, 0.0f, 1, dz);
    for (int i = 0; i < 4; i++) {
      double sp = side ? fmax(0, a[i]) : fmax(0, a[i] + fb[i]);
      double sm = side ? fmax(0, a[i] - fb[i]) : fmax(0, a[i]);
      ck_assert_double_eq_tol(dz[i], -(sp - sm) / 0.5, 1e-6);
    }
    ck_assert_float_eq(dz[1], 0.0f); // a = -2: off for either nudge
    ffs_dp_layer_destroy(&l);
  }
}
END_TEST

// The dampened dyad (the 2024 paper's code): both compartments pulled toward
// s0 = f(a) with weight L, s+ = f((a + (1-alpha) fb + L s0) / (1 + L)),
// s- = f((a - alpha fb + L s0) / (1 + L)), by hand in double; L = 0 is the
// undamped dyad to the bit.
START_TEST(test_dampened_dyad) {
  const float alpha = 0.3f, beta = 0.7f;
  float a[6] = {1.0f, -2.0f, 0.1f, -0.1f, 0.6f, 0.0f};
  float fb[6] = {0.5f, 0.5f, -0.4f, 0.4f, 3.0f, 1.0f};
  float dz[6], dz0[6], dzu[6];
  for (int act = 0; act < 2; act++) {
    ffs_layer_cfg_t lc = s_sgd(0.1f);
    ffs_dp_cfg_t dc = {.rule = FFS_DP_DUALPROP, .alpha = alpha, .beta = beta, .act = act,
                       .dampened = 1};
    ffs_dp_layer_t *l = ffs_dp_layer_new(2, 6, 1, &lc, &dc, 1, 1);
    ck_assert_ptr_nonnull(l);
    const double L = 1.5;
    ffs_dp_layer_hidden(l, a, fb, (float)L, 1, dz);
    for (int i = 0; i < 6; i++) {
      double s0 = act ? tanh(a[i]) : fmax(0, a[i]);
      double up = (a[i] + (1 - alpha) * fb[i] + L * s0) / (1 + L);
      double dn = (a[i] - alpha * fb[i] + L * s0) / (1 + L);
      double sp = act ? tanh(up) : fmax(0, up), sm = act ? tanh(dn) : fmax(0, dn);
      ck_assert_msg(fabs(dz[i] - (-(sp - sm) / beta)) <= 1e-6, "act %d unit %d: %g, by hand %g",
                    act, i, dz[i], -(sp - sm) / beta);
    }
    ffs_dp_layer_hidden(l, a, fb, 0.0f, 1, dz0);
    for (int i = 0; i < 6; i++) { // the undamped dyad, in float as it always was
      float up = a[i] + (1.0f - alpha) * fb[i], dn = a[i] - alpha * fb[i];
      float sp = act ? tanhf(up) : up > 0.0f ? up : 0.0f;
      float sm = act ? tanhf(dn) : dn > 0.0f ? dn : 0.0f;
      dzu[i] = -(sp - sm) * (1.0f / beta);
    }
    ck_assert(memcmp(dz0, dzu, sizeof dz0) == 0);
    ck_assert_msg(fabs(dz[4]) < fabs(dz0[4]), "L > 0 shrinks the dyad: %g against %g", dz[4],
                  dz0[4]);
    ffs_dp_layer_destroy(&l);
  }
}
END_TEST

// The damping a layer's weights set: L = max(0, (sigma^2 - 1) / 2) with sigma
// W's largest singular value; after W changes the warm power iteration
// follows it; a W with sigma <= 1 gives 0.
START_TEST(test_damping_is_the_spectral_norm) {
  ffs_layer_cfg_t lc = s_sgd(0.1f);
  ffs_dp_cfg_t dc = {.rule = FFS_DP_DUALPROP, .alpha = 0.5f, .beta = 1.0f};
  enum { U = 3, IN = 4 };
  ffs_dp_layer_t *l = ffs_dp_layer_new(IN, U, 1, &lc, &dc, 5, 2);
  ck_assert_ptr_nonnull(l);
  float *w = ffs_dense_weights(ffs_dp_layer_dense(l));
  // W = Q diag(3, 1, 0.5) R with rotations: singular values 3, 1, 0.5
  const double c = cos(0.7), sn = sin(0.7), cr = cos(0.3), sr = sin(0.3);
  const double sv[U] = {3.0, 1.0, 0.5};
  double q[U][U] = {{c, -sn, 0}, {sn, c, 0}, {0, 0, 1}};
  double r[U][IN] = {{cr, 0, sr, 0}, {0, 1, 0, 0}, {-sr, 0, cr, 0}};
  for (int i = 0; i < U; i++)
    for (int j = 0; j < IN; j++) {
      double v = 0;
      for (int k = 0; k < U; k++) v += q[i][k] * sv[k] * r[k][j];
      w[i * IN + j] = (float)v;
    }
  float sigma = 0.0f;
  ck_assert_double_eq_tol(ffs_dp_layer_damping(l, &sigma), (9.0 - 1.0) / 2.0, 1e-4);
  ck_assert_double_eq_tol(sigma, 3.0, 1e-5);
  for (int i = 0; i < U * IN; i++) w[i] *= 2.0f; // sigma 6
  ck_assert_double_eq_tol(ffs_dp_layer_damping(l, NULL), (36.0 - 1.0) / 2.0, 1e-3);
  for (int i = 0; i < U * IN; i++) w[i] *= 0.15f; // sigma 0.9
  ck_assert_float_eq(ffs_dp_layer_damping(l, &sigma), 0.0f);
  ck_assert_double_eq_tol(sigma, 0.9, 1e-5);
  ffs_dp_layer_destroy(&l);
}
END_TEST

// The squared-error top and tanh units: the top's dz is (a - onehot) / rows
// and its loss half the squared error; with beta small, dual propagation's
// dz in every layer is backprop's (f' = 1 - tanh^2).
START_TEST(test_squared_error_and_tanh) {
  ffs_dp_layer_t *dp[S_L], *bp[S_L];
  s_net_of(dp, FFS_DP_DUALPROP, 0.5f, 1e-2f, 0.1f, FFS_DP_LOSS_SE, FFS_DP_TANH);
  s_net_of(bp, FFS_DP_BACKPROP, 0.5f, 1e-2f, 0.1f, FFS_DP_LOSS_SE, FFS_DP_TANH);
  static s_pass_t pd, pb;
  s_sweep(dp, &pd), s_sweep(bp, &pb);
  double loss = 0, want = 0;
  float dz[S_ROWS * 3];
  ffs_dp_layer_top(bp[S_L - 1], pb.a[S_L - 1], s_labels, S_ROWS, dz, &loss);
  for (int r = 0; r < S_ROWS; r++)
    for (int c = 0; c < 3; c++) {
      double e = pb.a[S_L - 1][r * 3 + c] - (c == s_labels[r]);
      want += 0.5 * e * e;
      ck_assert_double_eq_tol(dz[r * 3 + c], e / S_ROWS, 1e-7);
    }
  ck_assert_double_eq_tol(loss, want, 1e-6);
  for (int k = 0; k < S_L - 1; k++) { // a hidden layer's output is tanh(a)
    for (int i = 0; i < S_ROWS * s_dims[k + 1]; i++)
      ck_assert_double_eq_tol(pb.x[k + 1][i], tanh(pb.a[k][i]), 1e-6);
  }
  s_expect_same_dz(&pd, &pb);
  // backprop's hidden dz by hand: (1 - tanh(a)^2) * (W_above^T dz_above)
  for (int k = S_L - 2; k >= 0; k--) {
    const float *wa = ffs_dense_weights(ffs_dp_layer_dense(bp[k + 1]));
    int u = s_dims[k + 1], ua = s_dims[k + 2];
    for (int r = 0; r < S_ROWS; r++)
      for (int j = 0; j < u; j++) {
        double fb = 0, t = tanh(pb.a[k][r * u + j]);
        for (int c = 0; c < ua; c++) fb += wa[c * u + j] * pb.dz[k + 1][r * ua + c];
        ck_assert_double_eq_tol(pb.dz[k][r * u + j], (1 - t * t) * fb, 1e-6);
      }
  }
  for (int k = 0; k < S_L; k++) ffs_dp_layer_destroy(&dp[k]), ffs_dp_layer_destroy(&bp[k]);
}
END_TEST

// A label out of range is refused, not indexed.
START_TEST(test_top_refuses_bad_labels) {
  ffs_layer_cfg_t lc = s_sgd(0.1f);
  ffs_dp_cfg_t dc = {.rule = FFS_DP_DUALPROP, .alpha = 0.5f, .beta = 1.0f, .top = 1};
  ffs_dp_layer_t *l = ffs_dp_layer_new(2, 3, 2, &lc, &dc, 1, 1);
  float a[6] = {0}, dz[6];
  uint8_t bad[2] = {1, 3};
  ck_assert_int_eq(ffs_dp_layer_top(l, a, bad, 2, dz, NULL), -1);
  ffs_dp_layer_destroy(&l);
}
END_TEST

int main(void) {
  Suite *s = suite_create("dp_layer");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, test_small_beta_is_backprop);
  tcase_add_test(tc, test_step_is_the_papers_formula);
  tcase_add_test(tc, test_one_sided_dyads);
  tcase_add_test(tc, test_top_refuses_bad_labels);
  tcase_add_test(tc, test_dampened_dyad);
  tcase_add_test(tc, test_squared_error_and_tanh);
  tcase_add_test(tc, test_damping_is_the_spectral_norm);
  suite_add_tcase(s, tc);
  return ffs_check_run(s);
}
