// check_npy: .npy files written row by row (common/ffs_npy.h) are what
// numpy.load reads: the shape, dtype and every value, after each append
// (the header is rewritten as rows arrive) and after close; a file that
// cannot be created is an error naming it.
#include "ffs_check.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ffs_npy.h"

static char s_tmp[256];

static void s_setup(void) { ffs_check_mkdtemp(s_tmp, sizeof s_tmp, "ffs_npy"); }
static void s_teardown(void) { ffs_check_rmtree(s_tmp); }

// What numpy says of path: "shape dtype sum" or the error.
static void s_numpy(const char *path, char *out, size_t outlen) {
  char cmd[1024];
  snprintf(cmd, sizeof cmd,
           "/usr/bin/python3 -c \"import sys, numpy; a = numpy.load(sys.argv[1]); "
           "print(a.shape, a.dtype, repr(float(a.astype('float64').sum())), "
           "repr(float(a[-1, -1])) if a.size else None)\" %s 2>&1",
           path);
  FILE *p = popen(cmd, "r");
  ck_assert_ptr_nonnull(p);
  size_t n = fread(out, 1, outlen - 1, p);
  out[n] = 0;
  pclose(p);
}

START_TEST(test_numpy_reads_what_was_streamed) {
  char path[300], err[256], got[512];
  snprintf(path, sizeof path, "%s/act.npy", s_tmp);
  ffs_npy_t *npy = ffs_npy_new(path, 3, err, sizeof err);
  ck_assert_msg(npy != NULL, "%s", err);
  s_numpy(path, got, sizeof got);
  ck_assert_msg(strstr(got, "(0, 3) float32 0.0 None") != NULL, "empty file: %s", got);
  float x[12];
  for (int i = 0; i < 12; i++) x[i] = 0.5f * (float)i - 1.0f;
  ck_assert_int_eq(ffs_npy_append(npy, x, 1, err, sizeof err), 0);
  ck_assert_int_eq(ffs_npy_append(npy, x + 3, 3, err, sizeof err), 0);
  ck_assert_uint_eq(ffs_npy_rows(npy), 4);
  // readable before close: a killed recorder leaves its rows so far
  s_numpy(path, got, sizeof got);
  ck_assert_msg(strstr(got, "(4, 3) float32 21.0 4.5") != NULL, "while open: %s", got);
  ck_assert_int_eq(ffs_npy_close(npy, err, sizeof err), 0);
  ffs_npy_destroy(&npy);
  ck_assert_ptr_null(npy);
  s_numpy(path, got, sizeof got);
  ck_assert_msg(strstr(got, "(4, 3) float32 21.0 4.5") != NULL, "closed: %s", got);
}
END_TEST

// A header with a 20-digit row count still fits its 128 bytes.
START_TEST(test_header_is_aligned) {
  char path[300], err[256];
  snprintf(path, sizeof path, "%s/h.npy", s_tmp);
  ffs_npy_t *npy = ffs_npy_new(path, 65536, err, sizeof err);
  ck_assert_msg(npy != NULL, "%s", err);
  ffs_npy_destroy(&npy);
  FILE *f = fopen(path, "rb");
  unsigned char h[128];
  ck_assert_int_eq(fread(h, 1, sizeof h, f), 128);
  fclose(f);
  ck_assert_int_eq(memcmp(h, "\x93NUMPY\x01\x00", 8), 0);
  ck_assert_int_eq(h[8] | h[9] << 8, 118);
  ck_assert_int_eq(h[127], '\n');
}
END_TEST

START_TEST(test_cannot_create_names_the_file) {
  char err[256] = "";
  ffs_npy_t *npy = ffs_npy_new("/nonexistent-dir/x.npy", 4, err, sizeof err);
  ck_assert_ptr_null(npy);
  ck_assert_msg(strstr(err, "/nonexistent-dir/x.npy") != NULL, "%s", err);
  ck_assert_ptr_null(ffs_npy_new("/tmp/zero.npy", 0, err, sizeof err));
}
END_TEST

int main(void) {
  Suite *s = suite_create("npy");
  TCase *tc = tcase_create("npy");
  tcase_add_checked_fixture(tc, s_setup, s_teardown);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_numpy_reads_what_was_streamed);
  tcase_add_test(tc, test_header_is_aligned);
  tcase_add_test(tc, test_cannot_create_names_the_file);
  suite_add_tcase(s, tc);
  return ffs_check_run(s);
}
