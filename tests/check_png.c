// check_png: the PNG writer (common/ffs_png.h). What it writes, libpng's
// own reader decodes back to the same size and the same bytes; a path it
// cannot write, or a write that fails inside libpng, is one line naming it
// and leaves nothing behind.
#include "ffs_check.h"
#include <png.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "ffs_png.h"

static char s_dir[64];

static void s_setup(void) { ffs_check_mkdtemp(s_dir, sizeof s_dir, "check_png"); }
static void s_teardown(void) { ffs_check_rmtree(s_dir); }

START_TEST(test_decodes_back) {
  const int w = 7, h = 5; // odd sizes: no row padding hides a mistake
  unsigned char rgb[5 * 7 * 3];
  for (int i = 0; i < w * h * 3; i++) rgb[i] = (unsigned char)(i * 37 + i / 3);
  char path[128], err[512];
  snprintf(path, sizeof path, "%s/a.png", s_dir);
  ck_assert_msg(ffs_png_write_rgb(path, rgb, w, h, err, sizeof err) == 0, "%s", err);
  png_image im = {.version = PNG_IMAGE_VERSION};
  ck_assert(png_image_begin_read_from_file(&im, path));
  ck_assert_uint_eq(im.width, (unsigned)w);
  ck_assert_uint_eq(im.height, (unsigned)h);
  ck_assert_uint_eq(im.format, PNG_FORMAT_RGB); // as written: 8-bit RGB, no alpha
  unsigned char back[sizeof rgb];
  ck_assert_uint_eq(PNG_IMAGE_SIZE(im), sizeof back);
  ck_assert(png_image_finish_read(&im, NULL, back, 0, NULL));
  ck_assert_int_eq(memcmp(back, rgb, sizeof rgb), 0);
  snprintf(path, sizeof path, "%s/a.png.tmp", s_dir);
  ck_assert_int_eq(access(path, F_OK), -1); // renamed into place
}
END_TEST

START_TEST(test_errors_are_one_line) {
  unsigned char rgb[3] = {1, 2, 3};
  char path[128], err[512];
  snprintf(path, sizeof path, "%s/no/such/dir/a.png", s_dir);
  ck_assert_int_eq(ffs_png_write_rgb(path, rgb, 1, 1, err, sizeof err), -1);
  ck_assert_msg(!strncmp(err, path, strlen(path)) && strstr(err, "cannot write"), "%s", err);
  ck_assert_ptr_null(strchr(err, '\n'));
  snprintf(path, sizeof path, "%s/b.png", s_dir);
  ck_assert_int_eq(ffs_png_write_rgb(path, rgb, 0, 1, err, sizeof err), -1);
  ck_assert_msg(strstr(err, "0 x 1 pixels"), "%s", err);
  ck_assert_int_eq(access(path, F_OK), -1);
}
END_TEST

// A full disk (a file size limit on this test's process): libpng's own
// write fails and longjmps back; one line, and no file, half or whole.
START_TEST(test_a_failing_write_inside_libpng) {
  enum { W = 256, H = 256 };
  unsigned char *rgb = malloc(W * H * 3);
  ck_assert_ptr_nonnull(rgb);
  unsigned x = 2463534242u; // xorshift noise: deflate cannot shrink it under the limit
  for (int i = 0; i < W * H * 3; i++) {
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    rgb[i] = (unsigned char)x;
  }
  signal(SIGXFSZ, SIG_IGN); // the write returns EFBIG instead
  struct rlimit lim = {4096, 4096};
  ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
  char path[128], err[512];
  snprintf(path, sizeof path, "%s/big.png", s_dir);
  ck_assert_int_eq(ffs_png_write_rgb(path, rgb, W, H, err, sizeof err), -1);
  ck_assert_msg(!strncmp(err, path, strlen(path)), "%s", err);
  ck_assert_ptr_null(strchr(err, '\n'));
  ck_assert_int_eq(access(path, F_OK), -1);
  snprintf(path, sizeof path, "%s/big.png.tmp", s_dir);
  ck_assert_int_eq(access(path, F_OK), -1);
  free(rgb);
}
END_TEST

static Suite *s_suite(void) {
  Suite *s = suite_create("png");
  TCase *core = tcase_create("core");
  tcase_add_checked_fixture(core, s_setup, s_teardown);
  tcase_add_test(core, test_decodes_back);
  tcase_add_test(core, test_errors_are_one_line);
  tcase_add_test(core, test_a_failing_write_inside_libpng);
  suite_add_tcase(s, core);
  return s;
}

int main(void) { return ffs_check_run(s_suite()); }
