// check_dense: the dense block under every layer rule (common/ffs_dense.h).
// Its forward is W xn + b; a slice of a block draws exactly the whole
// block's rows and leaves the generator where the whole block would; a step
// on a pre-activation gradient is the smoothed-gradient step written out by
// hand, the same whether the gradient came as factors (few rows) or through
// sgemm (many); evaluation sees the averages only when asked to; a layer of
// two blocks (a mirror_layer and its label head) saves and loads them in one
// checkpoint, each block's tensors under its prefix.
#include "ffs_check.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ffs_dense.h"

static ffs_layer_cfg_t s_cfg(float eval_average) {
  return (ffs_layer_cfg_t){.opt = FFS_OPT_SGD, .lr = 0.1f, .momentum = 0.9f,
                           .weight_decay = 0.01f, .eval_average = eval_average};
}

START_TEST(test_forward_and_slices) {
  ffs_layer_cfg_t cfg = s_cfg(0);
  ffs_rng_t r1, r2;
  ffs_rng_seed(&r1, 7, 3), ffs_rng_seed(&r2, 7, 3);
  ffs_dense_t *whole = ffs_dense_new(5, 4, 0, 4, 2, &cfg, &r1);
  ffs_dense_t *slice = ffs_dense_new(5, 2, 1, 4, 2, &cfg, &r2);
  ck_assert_ptr_nonnull(whole);
  ck_assert_ptr_nonnull(slice);
  ck_assert_int_eq(memcmp(ffs_dense_weights(slice), ffs_dense_weights(whole) + 5, 10 * 4), 0);
  ck_assert_float_eq(ffs_rng_normal(&r1), ffs_rng_normal(&r2)); // both after the whole block
  float *x = ffs_dense_input(whole), z[8];
  for (int i = 0; i < 10; i++) x[i] = 0.1f * (float)i - 0.3f;
  ffs_dense_bias(whole)[2] = 0.5f;
  ffs_dense_forward(whole, z, 2);
  const float *w = ffs_dense_weights(whole);
  for (int r = 0; r < 2; r++)
    for (int j = 0; j < 4; j++) {
      double want = j == 2 ? 0.5 : 0.0;
      for (int k = 0; k < 5; k++) want += (double)w[j * 5 + k] * x[r * 5 + k];
      ck_assert_double_eq_tol(z[r * 4 + j], want, 1e-6);
    }
  ffs_dense_destroy(&whole), ffs_dense_destroy(&slice);
  ck_assert_ptr_null(whole);
}
END_TEST

// m = 0.9 m + 0.1 dz^T x (m starts at 0: the first gradient with momentum),
// w -= lr (m + wd w): the same from 3 rows (factors) as from 12 (sgemm).
START_TEST(test_step_is_smoothed_gradient_descent) {
  for (int rows = 3; rows <= 12; rows += 9) {
    ffs_layer_cfg_t cfg = s_cfg(0);
    ffs_rng_t rng;
    ffs_rng_seed(&rng, 1, 1);
    ffs_dense_t *d = ffs_dense_new(3, 2, 0, 2, 12, &cfg, &rng);
    float w0[6], dz[24], *x = ffs_dense_input(d);
    memcpy(w0, ffs_dense_weights(d), sizeof w0);
    for (int i = 0; i < rows * 3; i++) x[i] = sinf((float)i);
    for (int i = 0; i < rows * 2; i++) dz[i] = cosf((float)i);
    ffs_dense_add_grad(d, dz, rows, 0);
    ffs_optim_step_t st;
    int averaged;
    float keep;
    ffs_dense_step(d, 1.0f, &st, &averaged, &keep);
    ck_assert_int_eq(st.step, 1);
    ck_assert_int_eq(averaged, 0);
    for (int j = 0; j < 2; j++)
      for (int k = 0; k < 3; k++) {
        double g = 0;
        for (int r = 0; r < rows; r++) g += (double)dz[r * 2 + j] * x[r * 3 + k];
        double m = 0.1 * g, want = w0[j * 3 + k] - 0.1 * (m + 0.01 * w0[j * 3 + k]);
        ck_assert_double_eq_tol(ffs_dense_weights(d)[j * 3 + k], want, 1e-5);
      }
    ffs_dense_destroy(&d);
  }
}
END_TEST

START_TEST(test_evaluation_sees_the_average) {
  ffs_layer_cfg_t cfg = s_cfg(0.5f);
  ffs_rng_t rng;
  ffs_rng_seed(&rng, 2, 2);
  ffs_dense_t *d = ffs_dense_new(2, 1, 0, 1, 1, &cfg, &rng);
  float *x = ffs_dense_input(d), z_train, z_eval, dz = 1.0f;
  x[0] = 1.0f, x[1] = -1.0f;
  for (int s = 0; s < FFS_DENSE_AVERAGE_EVERY; s++) {
    ffs_dense_add_grad(d, &dz, 1, 0);
    ffs_dense_step(d, 1.0f, NULL, NULL, NULL);
  }
  ffs_dense_forward(d, &z_train, 1);
  ffs_dense_set_eval(d, 1);
  ck_assert_int_eq(ffs_dense_eval(d), 1);
  ffs_dense_forward(d, &z_eval, 1);
  ck_assert_float_ne(z_train, z_eval); // the average lags the weights
  ffs_dense_restart_average(d);
  ffs_dense_forward(d, &z_eval, 1);
  ck_assert_float_eq(z_train, z_eval);
  ffs_dense_destroy(&d);
}
END_TEST

// Two Adam blocks with averages, one step each, saved as "" and "head.";
// fresh blocks load them back bit for bit (weights, averages, step counts);
// a file of the first block alone is refused for two, naming the head's tensor.
START_TEST(test_blocks_checkpoint) {
  ffs_layer_cfg_t cfg = s_cfg(0.9f);
  cfg.opt = FFS_OPT_ADAM;
  ffs_rng_t rng;
  ffs_rng_seed(&rng, 3, 1);
  ffs_dense_t *d[2] = {ffs_dense_new(6, 4, 0, 4, 3, &cfg, &rng), ffs_dense_new(4, 3, 0, 3, 3, &cfg,
                                                                               &rng)};
  ffs_dense_t *e[2] = {ffs_dense_new(6, 4, 0, 4, 3, &cfg, &rng), ffs_dense_new(4, 3, 0, 3, 3, &cfg,
                                                                               &rng)};
  float dz[12];
  for (int b = 0; b < 2; b++) {
    for (int i = 0; i < (b ? 12 : 18); i++) ffs_dense_input(d[b])[i] = 0.05f * (float)i - 0.2f;
    for (int i = 0; i < 12; i++) dz[i] = 0.1f * (float)(i % 5) - 0.2f;
    for (int k = 0; k < 5; k++) { // past the averages' cadence
      ffs_dense_add_grad(d[b], dz, 3, 0);
      ffs_dense_step(d[b], 1.0f, NULL, NULL, NULL);
    }
  }
  char path[] = "/tmp/check_dense_XXXXXX", err[256];
  int fd = mkstemp(path);
  ck_assert_int_ge(fd, 0);
  close(fd);
  const char *prefix[] = {"", "head."}, *meta[] = {"stage", "a1"};
  ck_assert_int_eq(ffs_dense_save_blocks(d, prefix, 2, path, meta, 1, err, sizeof err), 0);
  ck_assert_msg(ffs_dense_load_blocks(e, prefix, 2, path, err, sizeof err) == 0, "%s", err);
  for (int b = 0; b < 2; b++) {
    int n = b ? 12 : 24;
    ck_assert_int_eq(memcmp(ffs_dense_weights(e[b]), ffs_dense_weights(d[b]), 4 * (size_t)n), 0);
    ck_assert_int_eq(memcmp(ffs_dense_avg_weights(e[b]), ffs_dense_avg_weights(d[b]),
                            4 * (size_t)n), 0);
    ck_assert_int_eq(ffs_dense_steps(e[b]), 5);
  }
  ck_assert(memcmp(ffs_dense_weights(e[1]), ffs_dense_weights(e[0]), 12 * 4) != 0);
  ck_assert_int_eq(ffs_dense_save(d[0], path, meta, 1, err, sizeof err), 0);
  ck_assert_int_eq(ffs_dense_load_blocks(e, prefix, 2, path, err, sizeof err), -1);
  ck_assert_msg(strstr(err, "head.w") != NULL, "%s", err);
  unlink(path);
  for (int b = 0; b < 2; b++) ffs_dense_destroy(&d[b]), ffs_dense_destroy(&e[b]);
}
END_TEST

int main(void) {
  Suite *s = suite_create("dense");
  TCase *tc = tcase_create("dense");
  tcase_add_test(tc, test_forward_and_slices);
  tcase_add_test(tc, test_step_is_smoothed_gradient_descent);
  tcase_add_test(tc, test_evaluation_sees_the_average);
  tcase_add_test(tc, test_blocks_checkpoint);
  suite_add_tcase(s, tc);
  return ffs_check_run(s);
}
