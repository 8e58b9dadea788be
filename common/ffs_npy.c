// ffs_npy: float32 matrices as NumPy .npy files, rows appended as they
// stream past (see ffs_npy.h). Format 1.0: magic, version, a little-endian
// header length, a Python dict literal padded with spaces to a 64-byte
// boundary, then the rows, row-major.
#include "ffs_npy.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_HDR_BYTES 128 // magic to '\n': room for a 20-digit row count

struct ffs_npy {
  int fd;
  uint32_t cols;
  uint64_t rows;
  char path[512];
};

// Writes the 128-byte header for rows x cols into h.
static void s_header(char h[S_HDR_BYTES], uint64_t rows, uint32_t cols) {
  memset(h, ' ', S_HDR_BYTES);
  memcpy(h, "\x93NUMPY\x01\x00", 8);
  h[8] = (char)((S_HDR_BYTES - 10) & 0xff), h[9] = (char)((S_HDR_BYTES - 10) >> 8);
  char dict[S_HDR_BYTES];
  int n = snprintf(dict, sizeof dict,
                   "{'descr': '<f4', 'fortran_order': False, 'shape': (%" PRIu64 ", %" PRIu32
                   "), }",
                   rows, cols);
  memcpy(h + 10, dict, (size_t)n); // at most 91 bytes: fits before the '\n'
  h[S_HDR_BYTES - 1] = '\n';
}

static int s_write_all(int fd, const void *p, size_t n, off_t at) {
  const char *c = p;
  while (n > 0) {
    ssize_t k = at >= 0 ? pwrite(fd, c, n, at) : write(fd, c, n);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return -1;
    c += k, n -= (size_t)k;
    if (at >= 0) at += k;
  }
  return 0;
}

ffs_npy_t *ffs_npy_new(const char *path, uint32_t cols, char *err, size_t errlen) {
  if (cols == 0) {
    snprintf(err, errlen, "%s: a .npy of 0 columns", path);
    return NULL;
  }
  ffs_npy_t *self = calloc(1, sizeof *self);
  if (!self) {
    snprintf(err, errlen, "%s: out of memory", path);
    return NULL;
  }
  snprintf(self->path, sizeof self->path, "%s", path);
  self->cols = cols;
  self->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  char h[S_HDR_BYTES];
  s_header(h, 0, cols);
  if (self->fd < 0 || s_write_all(self->fd, h, sizeof h, -1) < 0) {
    snprintf(err, errlen, "%s: %s", path, strerror(errno));
    if (self->fd >= 0) close(self->fd);
    free(self);
    return NULL;
  }
  return self;
}

int ffs_npy_append(ffs_npy_t *self, const float *x, uint32_t rows, char *err, size_t errlen) {
  if (rows == 0) return 0;
  // float32 little-endian, as x86 and arm64 hold them
  if (s_write_all(self->fd, x, (size_t)rows * self->cols * sizeof(float), -1) < 0) {
    snprintf(err, errlen, "%s: %s", self->path, strerror(errno));
    return -1;
  }
  char h[S_HDR_BYTES];
  s_header(h, self->rows + rows, self->cols);
  if (s_write_all(self->fd, h, sizeof h, 0) < 0) {
    snprintf(err, errlen, "%s: %s", self->path, strerror(errno));
    return -1;
  }
  self->rows += rows;
  return 0;
}

uint64_t ffs_npy_rows(const ffs_npy_t *self) { return self->rows; }

int ffs_npy_close(ffs_npy_t *self, char *err, size_t errlen) {
  if (self->fd < 0) return 0;
  int rc = fsync(self->fd) < 0 ? -1 : 0;
  if (close(self->fd) < 0) rc = -1;
  self->fd = -1;
  if (rc < 0) snprintf(err, errlen, "%s: %s", self->path, strerror(errno));
  return rc;
}

void ffs_npy_destroy(ffs_npy_t **self_p) {
  if (!*self_p) return;
  char err[64];
  ffs_npy_close(*self_p, err, sizeof err);
  free(*self_p);
  *self_p = NULL;
}
