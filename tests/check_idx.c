// check_idx: tests for common/ffs_idx (IDX reader, raw and gzipped, and the
// data set loader). Writes small hand-made IDX files into a fresh temp dir;
// every malformed file must be refused with a message naming it. The real
// MNIST split is checked only when $FFS_SOURCE_DIR/data holds it.
#include "ffs_idx.h"

#include "ffs_check.h"
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

// ---- fixture: one temp dir per test (a failing test leaves it for a look) ----

static char s_dir[64];

static void s_setup(void) {
  ffs_check_mkdtemp(s_dir, sizeof s_dir, "check_idx");
}

static void s_teardown(void) { ffs_check_rmtree(s_dir); }

// ---- helpers ----

static void s_join(char *out, size_t outlen, const char *name) {
  snprintf(out, outlen, "%s/%s", s_dir, name);
}

static void s_write(const char *name, const uint8_t *bytes, size_t len) {
  char path[512];
  s_join(path, sizeof path, name);
  FILE *f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  ck_assert_uint_eq(fwrite(bytes, 1, len, f), len);
  ck_assert_int_eq(fclose(f), 0);
}

static void s_write_gz(const char *name, const uint8_t *bytes, size_t len) {
  char path[512];
  s_join(path, sizeof path, name);
  gzFile gz = gzopen(path, "wb");
  ck_assert_ptr_nonnull(gz);
  ck_assert_int_eq(gzwrite(gz, bytes, (unsigned)len), (int)len);
  ck_assert_int_eq(gzclose(gz), Z_OK);
}

// Builds an IDX file in out: magic (0, 0, type, ndims), BE dims, payload.
static size_t s_idx(uint8_t *out, uint8_t type, int ndims, const uint32_t *dims,
                    const uint8_t *payload, size_t payload_len) {
  size_t at = 0;
  out[at++] = 0;
  out[at++] = 0;
  out[at++] = type;
  out[at++] = (uint8_t)ndims;
  for (int i = 0; i < ndims; i++) {
    out[at++] = (uint8_t)(dims[i] >> 24);
    out[at++] = (uint8_t)(dims[i] >> 16);
    out[at++] = (uint8_t)(dims[i] >> 8);
    out[at++] = (uint8_t)dims[i];
  }
  if (payload_len) memcpy(out + at, payload, payload_len);
  return at + payload_len;
}

// The good example: 3 images of 2x3 with pixel k = 15 * k (0..255), and
// labels 7, 0, 9.
enum { S_N = 3, S_ROWS = 2, S_COLS = 3, S_DIM = S_ROWS * S_COLS };
static const uint8_t s_labels[S_N] = {7, 0, 9};
#define S_CLASSES 10 // the MNIST files' data.classes

static size_t s_good_images(uint8_t *out) {
  uint8_t px[S_N * S_DIM];
  for (int k = 0; k < S_N * S_DIM; k++) px[k] = (uint8_t)(15 * k);
  uint32_t dims[3] = {S_N, S_ROWS, S_COLS};
  return s_idx(out, 0x08, 3, dims, px, sizeof px);
}

static size_t s_good_labels(uint8_t *out) {
  uint32_t dims[1] = {S_N};
  return s_idx(out, 0x08, 1, dims, s_labels, S_N);
}

// Writes train-{images,labels} raw (gz = 0) or gzipped (gz = 1).
static void s_write_good_split(int gz) {
  uint8_t img[64], lbl[64];
  size_t ni = s_good_images(img), nl = s_good_labels(lbl);
  if (gz) {
    s_write_gz("train-images-idx3-ubyte.gz", img, ni);
    s_write_gz("train-labels-idx1-ubyte.gz", lbl, nl);
  } else {
    s_write("train-images-idx3-ubyte", img, ni);
    s_write("train-labels-idx1-ubyte", lbl, nl);
  }
}

// Loads name from the temp dir and expects failure with every needle in err.
static void s_expect_fail(const char *name, const char *needle1, const char *needle2) {
  char path[512], err[512] = "";
  s_join(path, sizeof path, name);
  ffs_idx_t *idx = ffs_idx_load(path, err, sizeof err);
  ck_assert_msg(idx == NULL, "%s loaded but should not have", path);
  ck_assert_msg(strncmp(err, path, strlen(path)) == 0, "error does not start with the path: %s",
                err);
  ck_assert_msg(strstr(err, needle1), "error lacks \"%s\": %s", needle1, err);
  if (needle2) ck_assert_msg(strstr(err, needle2), "error lacks \"%s\": %s", needle2, err);
}

// Loads the train split with data.classes = classes and expects a refusal
// naming both needles.
static void s_expect_classes_fail(int classes, const char *needle1, const char *needle2) {
  char err[1024] = "";
  ffs_dataset_t *ds = ffs_dataset_load(s_dir, "train", 0, classes, err, sizeof err);
  ck_assert_msg(ds == NULL, "data set loaded but should not have");
  ck_assert_msg(strstr(err, needle1), "error lacks \"%s\": %s", needle1, err);
  if (needle2) ck_assert_msg(strstr(err, needle2), "error lacks \"%s\": %s", needle2, err);
}

static void s_expect_dataset_fail(const char *needle1, const char *needle2) {
  s_expect_classes_fail(S_CLASSES, needle1, needle2);
}

static double s_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// ---- core ----

START_TEST(test_raw_images) {
  uint8_t buf[64];
  s_write("img", buf, s_good_images(buf));
  char path[512], err[256];
  s_join(path, sizeof path, "img");
  ffs_idx_t *idx = ffs_idx_load(path, err, sizeof err);
  ck_assert_msg(idx != NULL, "%s", err);
  ck_assert_int_eq(idx->n, S_N);
  ck_assert_int_eq(idx->rows, S_ROWS);
  ck_assert_int_eq(idx->cols, S_COLS);
  ck_assert_int_eq(idx->dim, S_DIM);
  for (int k = 0; k < S_N * S_DIM; k++) ck_assert_uint_eq(idx->data[k], 15 * k);
  ffs_idx_destroy(&idx);
  ck_assert_ptr_null(idx);
  ffs_idx_destroy(&idx); // idempotent
}
END_TEST

START_TEST(test_gz_same_as_raw) {
  uint8_t buf[64];
  size_t len = s_good_images(buf);
  s_write("img", buf, len);
  s_write_gz("img.gz", buf, len);
  char p1[512], p2[512], err[256];
  s_join(p1, sizeof p1, "img");
  s_join(p2, sizeof p2, "img.gz");
  ffs_idx_t *a = ffs_idx_load(p1, err, sizeof err);
  ck_assert_msg(a != NULL, "%s", err);
  ffs_idx_t *b = ffs_idx_load(p2, err, sizeof err);
  ck_assert_msg(b != NULL, "%s", err);
  ck_assert_int_eq(a->n, b->n);
  ck_assert_int_eq(a->rows, b->rows);
  ck_assert_int_eq(a->cols, b->cols);
  ck_assert_int_eq(a->dim, b->dim);
  ck_assert_int_eq(memcmp(a->data, b->data, (size_t)a->n * (size_t)a->dim), 0);
  ffs_idx_destroy(&a);
  ffs_idx_destroy(&b);
}
END_TEST

START_TEST(test_gz_detected_by_content) {
  // a gzipped file without the .gz name is still inflated
  uint8_t buf[64];
  s_write_gz("labels", buf, s_good_labels(buf));
  char path[512], err[256];
  s_join(path, sizeof path, "labels");
  ffs_idx_t *idx = ffs_idx_load(path, err, sizeof err);
  ck_assert_msg(idx != NULL, "%s", err);
  ck_assert_int_eq(idx->n, S_N);
  ck_assert_int_eq(idx->rows, 1);
  ck_assert_int_eq(idx->cols, 1);
  ck_assert_int_eq(idx->dim, 1);
  ck_assert_int_eq(memcmp(idx->data, s_labels, S_N), 0);
  ffs_idx_destroy(&idx);
}
END_TEST

static void s_check_good_dataset(const ffs_dataset_t *ds, int n) {
  ck_assert_int_eq(ds->n, n);
  ck_assert_int_eq(ds->dim, S_DIM);
  for (int k = 0; k < n * S_DIM; k++)
    ck_assert_float_eq_tol(ds->x[k], (float)(15 * k) / 255.0f, 1e-7f);
  ck_assert_float_eq(ds->x[0], 0.0f);
  if (n == S_N) ck_assert_float_eq(ds->x[S_N * S_DIM - 1], 1.0f);
  ck_assert_int_eq(memcmp(ds->y, s_labels, (size_t)n), 0);
}

START_TEST(test_dataset_raw) {
  s_write_good_split(0);
  char err[512];
  ffs_dataset_t *ds = ffs_dataset_load(s_dir, "train", 0, S_CLASSES, err, sizeof err);
  ck_assert_msg(ds != NULL, "%s", err);
  s_check_good_dataset(ds, S_N);
  ffs_dataset_destroy(&ds);
  ck_assert_ptr_null(ds);
}
END_TEST

START_TEST(test_dataset_gz_only) {
  s_write_good_split(1);
  char err[512];
  ffs_dataset_t *ds = ffs_dataset_load(s_dir, "train", 0, S_CLASSES, err, sizeof err);
  ck_assert_msg(ds != NULL, "%s", err);
  s_check_good_dataset(ds, S_N);
  ffs_dataset_destroy(&ds);
}
END_TEST

START_TEST(test_dataset_limit) {
  s_write_good_split(0);
  char err[512];
  ffs_dataset_t *ds = ffs_dataset_load(s_dir, "train", 2, S_CLASSES, err, sizeof err);
  ck_assert_msg(ds != NULL, "%s", err);
  s_check_good_dataset(ds, 2);
  ffs_dataset_destroy(&ds);
  ds = ffs_dataset_load(s_dir, "train", 100, S_CLASSES, err, sizeof err); // more than there is
  ck_assert_msg(ds != NULL, "%s", err);
  s_check_good_dataset(ds, S_N);
  ffs_dataset_destroy(&ds);
}
END_TEST

// Loads the real MNIST / Fashion-MNIST test splits (make test fetches them).
static const char *s_source_dir(void) {
  const char *dir = getenv("FFS_SOURCE_DIR");
#ifdef FFS_SOURCE_DIR
  if (!dir) dir = FFS_SOURCE_DIR;
#endif
  return dir;
}

static void s_check_real(const char *sub, const char *probe) {
  const char *src = s_source_dir();
  ck_assert_msg(src != NULL, "no source folder to find data/%s in (FFS_SOURCE_DIR)", sub);
  char dir[1024], path[1100], err[1024];
  snprintf(dir, sizeof dir, "%s/data/%s", src, sub);
  snprintf(path, sizeof path, "%s/%s", dir, probe);
  // make test fetches the data first; a missing file is a failure, never a pass
  ck_assert_msg(access(path, R_OK) == 0, "%s: missing (run `make data`)", path);
  ffs_dataset_t *ds = ffs_dataset_load(dir, "t10k", 0, S_CLASSES, err, sizeof err);
  ck_assert_msg(ds != NULL, "%s", err);
  ck_assert_int_eq(ds->n, 10000);
  ck_assert_int_eq(ds->dim, 784);
  float lo = 1, hi = 0;
  int count[10] = {0};
  for (size_t k = 0; k < (size_t)ds->n * 784; k++) {
    if (ds->x[k] < lo) lo = ds->x[k];
    if (ds->x[k] > hi) hi = ds->x[k];
  }
  for (int i = 0; i < ds->n; i++) count[ds->y[i]]++;
  ck_assert_float_eq(lo, 0.0f);
  ck_assert_float_eq(hi, 1.0f);
  for (int c = 0; c < 10; c++) ck_assert_int_gt(count[c], 800); // every class present
  ffs_dataset_destroy(&ds);
}

START_TEST(test_real_mnist) { s_check_real("mnist", "train-labels-idx1-ubyte"); }
END_TEST

START_TEST(test_real_fashion) { s_check_real("fashion", "train-labels-idx1-ubyte.gz"); }
END_TEST

// ---- limits ----

START_TEST(test_truncated) {
  uint8_t buf[64];
  size_t len = s_good_images(buf);
  s_write("img", buf, len - 8);
  s_expect_fail("img", "truncated", "3x2x3 = 18 bytes of pixels, file holds 10");
  s_write("hdr", buf, 10); // cut inside the dimensions
  s_expect_fail("hdr", "truncated header", NULL);
}
END_TEST

START_TEST(test_truncated_gzip) {
  uint8_t buf[4096];
  uint32_t dims[3] = {4, 16, 16};
  uint8_t px[1024];
  for (int k = 0; k < 1024; k++) px[k] = (uint8_t)(k * 7 + k / 3);
  size_t len = s_idx(buf, 0x08, 3, dims, px, sizeof px);
  s_write_gz("img.gz", buf, len);
  // chop the gzip stream: its trailer and part of the deflate data
  char path[512];
  s_join(path, sizeof path, "img.gz");
  struct stat st;
  ck_assert_int_eq(stat(path, &st), 0);
  ck_assert_int_eq(truncate(path, st.st_size - 20), 0);
  s_expect_fail("img.gz", "gzip", NULL);
}
END_TEST

START_TEST(test_wrong_magic) {
  uint8_t buf[64];
  size_t len = s_good_images(buf);
  buf[0] = 0x1f; // neither IDX nor a real gzip stream
  buf[1] = 0x00;
  s_write("img", buf, len);
  s_expect_fail("img", "magic", "0x1f 0x00");
}
END_TEST

START_TEST(test_wrong_type) {
  uint8_t buf[64];
  size_t len = s_good_images(buf);
  buf[2] = 0x0D; // float
  s_write("img", buf, len);
  s_expect_fail("img", "type 0x0d (float)", "0x08");
}
END_TEST

START_TEST(test_wrong_ndims) {
  uint8_t buf[64], px[6] = {0};
  uint32_t dims[2] = {2, 3};
  s_write("two", buf, s_idx(buf, 0x08, 2, dims, px, 6));
  s_expect_fail("two", "2 dimensions", "expected 1 (labels) or 3 (images)");
}
END_TEST

START_TEST(test_zero_dim) {
  uint8_t buf[64];
  uint32_t dims[3] = {3, 0, 3};
  s_write("img", buf, s_idx(buf, 0x08, 3, dims, NULL, 0));
  s_expect_fail("img", "dimension 1 is 0", NULL);
}
END_TEST

START_TEST(test_trailing_bytes) {
  uint8_t buf[64];
  size_t len = s_good_images(buf);
  buf[len] = 0xAB;
  buf[len + 1] = 0xCD;
  s_write("img", buf, len + 2);
  s_expect_fail("img", "2 bytes of trailing data", NULL);
}
END_TEST

START_TEST(test_short_and_empty) {
  uint8_t buf[2] = {0, 0};
  s_write("short", buf, 2);
  s_expect_fail("short", "too short", NULL);
  s_write("empty", buf, 0);
  s_expect_fail("empty", "too short", NULL);
  s_expect_fail("no-such-file", "cannot open", NULL);
}
END_TEST

START_TEST(test_huge_declared_size) {
  // Declares ~2^96 bytes, and then MNIST's 47 MB, with 16 bytes present: both
  // must be refused at once, without allocating what the header claims.
  uint8_t buf[64], px[16] = {0};
  uint32_t huge[3] = {0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu};
  uint32_t mnist[3] = {60000, 28, 28};
  s_write("huge", buf, s_idx(buf, 0x08, 3, huge, px, sizeof px));
  s_write("mnist", buf, s_idx(buf, 0x08, 3, mnist, px, sizeof px));
  uint32_t one[1] = {0xFFFFFFFFu};
  s_write("labels", buf, s_idx(buf, 0x08, 1, one, px, sizeof px));
  double t0 = s_now();
  s_expect_fail("huge", "truncated", "4294967295x4294967295x4294967295");
  s_expect_fail("mnist", "truncated", "60000x28x28 = 47040000 bytes of pixels, file holds 16");
  s_expect_fail("labels", "truncated", "4294967295 = 4294967295 bytes of labels");
  ck_assert_msg(s_now() - t0 < 1.0, "refusing tiny files took %.2f s", s_now() - t0);
}
END_TEST

START_TEST(test_count_mismatch) {
  uint8_t img[64], lbl[64];
  uint32_t two[1] = {2};
  s_write("train-images-idx3-ubyte", img, s_good_images(img));
  s_write("train-labels-idx1-ubyte", lbl, s_idx(lbl, 0x08, 1, two, s_labels, 2));
  s_expect_dataset_fail("holds 3 images but", "holds 2 labels");
}
END_TEST

START_TEST(test_label_out_of_range) {
  uint8_t img[64], lbl[64], bad[3] = {1, 10, 2};
  uint32_t three[1] = {3};
  s_write("train-images-idx3-ubyte", img, s_good_images(img));
  s_write("train-labels-idx1-ubyte", lbl, s_idx(lbl, 0x08, 1, three, bad, 3));
  s_expect_dataset_fail("train-labels-idx1-ubyte: label 10 at index 1", "expected 0..9");
}
END_TEST

START_TEST(test_label_beyond_data_classes) {
  // labels 7, 0, 9 are fine for ten classes and for 9 only up to index 1;
  // with data.classes = 3 the first bad one is 7 at index 0
  s_write_good_split(0);
  s_expect_classes_fail(3, "train-labels-idx1-ubyte: label 7 at index 0", "expected 0..2");
  s_expect_classes_fail(9, "train-labels-idx1-ubyte: label 9 at index 2", "data.classes is 9");
  char err[1024] = "";
  ffs_dataset_t *ds = ffs_dataset_load(s_dir, "train", 0, 255, err, sizeof err);
  ck_assert_msg(ds != NULL, "%s", err); // more classes than the labels use is fine
  ffs_dataset_destroy(&ds);
}
END_TEST

START_TEST(test_swapped_files) {
  // a label file where the images should be: refused for its dimensions
  uint8_t lbl[64];
  size_t len = s_good_labels(lbl);
  s_write("train-images-idx3-ubyte", lbl, len);
  s_write("train-labels-idx1-ubyte", lbl, len);
  s_expect_dataset_fail("train-images-idx3-ubyte: has 1 dimension", "expected 3 (images)");
}
END_TEST

START_TEST(test_missing_files) {
  char raw[512], gz[512], err[1024] = "";
  s_join(raw, sizeof raw, "t10k-images-idx3-ubyte");
  s_join(gz, sizeof gz, "t10k-images-idx3-ubyte.gz");
  ffs_dataset_t *ds = ffs_dataset_load(s_dir, "t10k", 0, S_CLASSES, err, sizeof err);
  ck_assert_ptr_null(ds);
  ck_assert_msg(strstr(err, raw) && strstr(err, gz), "error lacks both paths: %s", err);
  ck_assert_msg(strstr(err, "make data"), "error lacks the hint: %s", err);
  // images present, labels missing: the labels' paths are named
  uint8_t img[64];
  s_write("train-images-idx3-ubyte", img, s_good_images(img));
  s_join(raw, sizeof raw, "train-labels-idx1-ubyte");
  s_expect_dataset_fail(raw, "make data");
}
END_TEST

START_TEST(test_negative_limit_and_null_err) {
  s_write_good_split(0);
  char err[256] = "";
  ck_assert_ptr_null(ffs_dataset_load(s_dir, "train", -1, S_CLASSES, err, sizeof err));
  ck_assert_msg(strstr(err, "negative"), "%s", err);
  // a caller without an error buffer gets NULL, not a crash
  ck_assert_ptr_null(ffs_dataset_load(s_dir, "nope", 0, S_CLASSES, NULL, 0));
  ck_assert_ptr_null(ffs_idx_load("/nonexistent/x", NULL, 0));
}
END_TEST

// ---- suite ----

static Suite *s_suite(void) {
  Suite *s = suite_create("ffs_idx");
  TCase *core = tcase_create("core");
  tcase_add_checked_fixture(core, s_setup, s_teardown);
  tcase_add_test(core, test_raw_images);
  tcase_add_test(core, test_gz_same_as_raw);
  tcase_add_test(core, test_gz_detected_by_content);
  tcase_add_test(core, test_dataset_raw);
  tcase_add_test(core, test_dataset_gz_only);
  tcase_add_test(core, test_dataset_limit);
  tcase_add_test(core, test_real_mnist);
  tcase_add_test(core, test_real_fashion);
  tcase_set_timeout(core, 60); // the real splits under sanitizers
  suite_add_tcase(s, core);

  TCase *limits = tcase_create("limits");
  tcase_add_checked_fixture(limits, s_setup, s_teardown);
  tcase_add_test(limits, test_truncated);
  tcase_add_test(limits, test_truncated_gzip);
  tcase_add_test(limits, test_wrong_magic);
  tcase_add_test(limits, test_wrong_type);
  tcase_add_test(limits, test_wrong_ndims);
  tcase_add_test(limits, test_zero_dim);
  tcase_add_test(limits, test_trailing_bytes);
  tcase_add_test(limits, test_short_and_empty);
  tcase_add_test(limits, test_huge_declared_size);
  tcase_add_test(limits, test_count_mismatch);
  tcase_add_test(limits, test_label_out_of_range);
  tcase_add_test(limits, test_label_beyond_data_classes);
  tcase_add_test(limits, test_swapped_files);
  tcase_add_test(limits, test_missing_files);
  tcase_add_test(limits, test_negative_limit_and_null_err);
  suite_add_tcase(s, limits);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(s_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
