// ffs_png: libpng's write path wrapped in one call. libpng reports errors
// by calling an error handler that must not return: it longjmps back to the
// setjmp in ffs_png_write_rgb, which cleans up and returns -1 with the
// message libpng gave. The file is written to "<path>.tmp" and renamed, so
// a failed write leaves no half picture under the final name.
#include "ffs_png.h"

#include <assert.h>
#include <errno.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

// What the error handler writes into (reached through png_get_error_ptr).
typedef struct {
  char msg[200];
} s_png_err_t;

static void s_on_error(png_structp png, png_const_charp msg) {
  s_png_err_t *e = png_get_error_ptr(png);
  snprintf(e->msg, sizeof e->msg, "%s", msg);
  png_longjmp(png, 1);
}

static void s_on_warning(png_structp png, png_const_charp msg) { (void)png, (void)msg; }

int ffs_png_write_rgb(const char *path, const uint8_t *rgb, int width, int height, char *err,
                      size_t errlen) {
  assert(path && rgb && err);
  if (width < 1 || height < 1 || width > 1 << 20 || height > 1 << 20) {
    snprintf(err, errlen, "%s: %d x %d pixels (expected 1..%d each way)", path, width, height,
             1 << 20);
    return -1;
  }
  char tmp[4096];
  if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
    snprintf(err, errlen, "%.200s...: path too long", path);
    return -1;
  }
  FILE *volatile f = fopen(tmp, "wb");
  if (!f) {
    snprintf(err, errlen, "%s: cannot write: %s", path, strerror(errno));
    return -1;
  }
  s_png_err_t e = {{0}};
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &e, s_on_error, s_on_warning);
  png_infop info = png ? png_create_info_struct(png) : NULL;
  if (!png || !info) {
    png_destroy_write_struct(&png, NULL);
    fclose(f);
    remove(tmp);
    snprintf(err, errlen, "%s: out of memory for libpng", path);
    return -1;
  }
  if (setjmp(png_jmpbuf(png))) { // libpng failed somewhere below: e.msg says what
    png_destroy_write_struct(&png, &info);
    fclose(f);
    remove(tmp);
    snprintf(err, errlen, "%s: libpng: %s", path, e.msg[0] ? e.msg : "write failed");
    return -1;
  }
  png_init_io(png, f);
  png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8, PNG_COLOR_TYPE_RGB,
               PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  for (int r = 0; r < height; r++) png_write_row(png, rgb + (size_t)r * (size_t)width * 3);
  png_write_end(png, info);
  png_destroy_write_struct(&png, &info);
  int bad = ferror(f);
  if (fclose(f) != 0 || bad) {
    remove(tmp);
    snprintf(err, errlen, "%s: write failed: %s", path, strerror(errno));
    return -1;
  }
  if (rename(tmp, path) < 0) {
    snprintf(err, errlen, "%s: cannot rename %s into place: %s", path, tmp, strerror(errno));
    remove(tmp);
    return -1;
  }
  return 0;
}
