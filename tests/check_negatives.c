// check_negatives: the source's wrong-label sampling. A negative never
// carries the true label, whether uniform or drawn from a prediction, and a
// hard negative follows the predicted probabilities of the wrong classes.
// The label overlay paints exactly data.classes pixels.
#include "ffs_check.h"
#include <stdlib.h>

#include "negatives.h"
#include "ffs_frame.h" // FFS_LABEL_NONE

#define S_NCLASSES 10 // MNIST's data.classes, for the sampling tests

START_TEST(test_random_never_true_and_uniform) {
  ffs_rng_t rng;
  ffs_rng_seed(&rng, 1, 0);
  for (uint8_t truth = 0; truth < S_NCLASSES; truth++) {
    int count[S_NCLASSES] = {0};
    for (int i = 0; i < 9000; i++) count[ffs_negative_label(&rng, NULL, truth, S_NCLASSES)]++;
    ck_assert_int_eq(count[truth], 0);
    for (int c = 0; c < S_NCLASSES; c++)
      if (c != truth) ck_assert_msg(count[c] > 800 && count[c] < 1200, "class %d: %d", c, count[c]);
  }
}
END_TEST

START_TEST(test_hard_follows_wrong_class_probabilities) {
  ffs_rng_t rng;
  ffs_rng_seed(&rng, 2, 0);
  // most mass on the truth (3); among wrong classes, 7 is three times 5
  float p[S_NCLASSES] = {0, 0, 0, 0.9f, 0, 0.025f, 0, 0.075f, 0, 0};
  int count[S_NCLASSES] = {0};
  for (int i = 0; i < 40000; i++) count[ffs_negative_label(&rng, p, 3, S_NCLASSES)]++;
  ck_assert_int_eq(count[3], 0);
  ck_assert_int_eq(count[5] + count[7], 40000); // zero-probability classes never drawn
  double ratio = (double)count[7] / count[5];
  ck_assert_msg(ratio > 2.7 && ratio < 3.3, "ratio %g", ratio);
}
END_TEST

START_TEST(test_hard_degenerate_predictions_fall_back) {
  ffs_rng_t rng;
  ffs_rng_seed(&rng, 3, 0);
  float all_true[S_NCLASSES] = {0, 1, 0, 0, 0, 0, 0, 0, 0, 0};
  float none_yet[S_NCLASSES] = {-1, -1, -1, -1, -1, -1, -1, -1, -1, -1};
  float nan_wrong[S_NCLASSES] = {0, 0.5f, 0.0f / 0.0f, 0, 0, 0, 0, 0, 0, 0.5f};
  int seen[S_NCLASSES] = {0};
  for (int i = 0; i < 5000; i++) {
    ck_assert_int_ne(ffs_negative_label(&rng, all_true, 1, S_NCLASSES), 1);
    uint8_t l = ffs_negative_label(&rng, none_yet, 1, S_NCLASSES);
    ck_assert_int_ne(l, 1);
    seen[l]++;
    uint8_t m = ffs_negative_label(&rng, nan_wrong, 1, S_NCLASSES);
    ck_assert(m == 9); // the only wrong class with real probability mass
  }
  for (int c = 0; c < S_NCLASSES; c++) ck_assert(c == 1 ? seen[c] == 0 : seen[c] > 300);
}
END_TEST

START_TEST(test_hybrid_mask_is_binary_blurred_and_mixes_two_images) {
  enum { H = 28, W = 28, N = H * W };
  ffs_rng_t rng;
  ffs_rng_seed(&rng, 4, 0);
  float mask[N], tmp[N], x1[N], x2[N], out[N];
  for (int i = 0; i < N; i++) x1[i] = 1.0f + (float)i, x2[i] = -1.0f - (float)i;
  int same_neighbours = 0, pairs = 0, ones = 0;
  float raw[N];
  for (int rep = 0; rep < 20; rep++) {
    ffs_hybrid_mask(mask, tmp, H, W, 6, &rng);
    for (int i = 0; i < N; i++) {
      ck_assert(mask[i] == 0.0f || mask[i] == 1.0f); // binary
      ones += mask[i] == 1.0f;
    }
    for (int y = 0; y < H; y++)
      for (int x = 0; x + 1 < W; x++, pairs++)
        same_neighbours += mask[y * W + x] == mask[y * W + x + 1];
    ffs_hybrid_mix(out, x1, x2, mask, N);
    int from1 = 0, from2 = 0;
    for (int i = 0; i < N; i++) {
      ck_assert(out[i] == (mask[i] == 1.0f ? x1[i] : x2[i])); // each pixel from one image
      from1 += out[i] == x1[i], from2 += out[i] == x2[i];
    }
    ck_assert_int_gt(from1, 0); // both images contribute (a 784-pixel mask is never
    ck_assert_int_gt(from2, 0); // all ones or all zeros after 6 blurs of random bits)
  }
  // blurred: neighbours agree far more often than the 50 % of raw random bits
  double agree = (double)same_neighbours / pairs;
  ck_assert_msg(agree > 0.8, "neighbouring mask pixels agree %.2f of the time", agree);
  // and without blurring they agree about half the time (the test can tell)
  ffs_hybrid_mask(raw, tmp, H, W, 0, &rng);
  int raw_same = 0;
  for (int y = 0; y < H; y++)
    for (int x = 0; x + 1 < W; x++) raw_same += raw[y * W + x] == raw[y * W + x + 1];
  double raw_agree = (double)raw_same / (H * (W - 1));
  ck_assert_msg(raw_agree > 0.4 && raw_agree < 0.6, "raw agreement %.2f", raw_agree);
  // thresholding at 0.5 keeps the mask balanced on average
  double frac = (double)ones / (20.0 * N);
  ck_assert_msg(frac > 0.3 && frac < 0.7, "fraction of ones %.2f", frac);
}
END_TEST

START_TEST(test_overlay_paints_classes_pixels) {
  // three classes: a one-hot label or the neutral 1/3 in pixels 0..2, and
  // not one pixel more
  enum { CLASSES = 3, DIM = 8 };
  float row[DIM];
  for (int label = 0; label <= CLASSES; label++) {
    int l = label == CLASSES ? FFS_LABEL_NONE : label;
    for (int i = 0; i < DIM; i++) row[i] = 0.5f;
    ffs_label_overlay(row, l, CLASSES);
    for (int i = 0; i < CLASSES; i++) {
      float want = l == FFS_LABEL_NONE ? 1.0f / 3.0f : (i == l ? 1.0f : 0.0f);
      ck_assert_msg(row[i] == want, "label %d pixel %d: %g, expected %g", l, i, row[i], want);
    }
    for (int i = CLASSES; i < DIM; i++) ck_assert_msg(row[i] == 0.5f, "pixel %d painted", i);
  }
  // ten classes: the neutral label is 0.1 in each of ten pixels, as always
  float ten[12];
  for (int i = 0; i < 12; i++) ten[i] = 0.5f;
  ffs_label_overlay(ten, FFS_LABEL_NONE, S_NCLASSES);
  for (int i = 0; i < 12; i++) ck_assert(ten[i] == (i < S_NCLASSES ? 0.1f : 0.5f));
  // and a wrong label among three is one of the other two, both drawn
  ffs_rng_t rng;
  ffs_rng_seed(&rng, 5, 0);
  int count[CLASSES] = {0};
  for (int i = 0; i < 3000; i++) count[ffs_negative_label(&rng, NULL, 2, CLASSES)]++;
  ck_assert_int_eq(count[2], 0);
  ck_assert(count[0] > 1300 && count[1] > 1300);
}
END_TEST

static Suite *s_suite(void) {
  Suite *s = suite_create("negatives");
  TCase *core = tcase_create("core");
  tcase_add_test(core, test_random_never_true_and_uniform);
  tcase_add_test(core, test_hard_follows_wrong_class_probabilities);
  tcase_add_test(core, test_hard_degenerate_predictions_fall_back);
  tcase_add_test(core, test_hybrid_mask_is_binary_blurred_and_mixes_two_images);
  tcase_add_test(core, test_overlay_paints_classes_pixels);
  suite_add_tcase(s, core);
  return s;
}

int main(void) { return ffs_check_run(s_suite()); }
