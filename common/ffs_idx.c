// ffs_idx: IDX reader (MNIST / Fashion-MNIST). The whole file is read through
// zlib's gzread, which passes raw files through and inflates gzipped ones, into
// one buffer capped at FFS_IDX_MAX_BYTES; the header is then checked against
// the bytes actually present. Runs once at start-up, never in the frame loop;
// never trusts a declared size before the bytes are in hand.
#include "ffs_idx.h"
#include "ffs_log.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

// Largest decompressed file we accept (MNIST train images are ~45 MiB).
#define FFS_IDX_MAX_BYTES ((size_t)1 << 30)
// First buffer size; doubled as the file turns out larger.
#define FFS_IDX_FIRST_CHUNK ((size_t)1 << 16)

#define FFS_IDX_EXPECTED "(expected an IDX file of unsigned bytes)"

// ---- helpers ----


// zlib's last error message, without the "path: " that zlib puts in front.
static const char *s_gz_msg(gzFile gz, const char *path, int *zerr) {
  const char *msg = gzerror(gz, zerr);
  size_t plen = strlen(path);
  if (!strncmp(msg, path, plen) && !strncmp(msg + plen, ": ", 2)) msg += plen + 2;
  return msg;
}

// Reads the whole (possibly gzipped) file into *buf_p (caller frees).
// Allocation grows with the bytes actually read, so a lying header can't
// make us allocate more than the file holds.
static int s_read_all(const char *path, uint8_t **buf_p, size_t *len_p, char *err,
                      size_t errlen) {
  uint8_t *buf = NULL;
  size_t cap = 0, len = 0;
  errno = 0;
  gzFile gz = gzopen(path, "rb");
  if (!gz) {
    ffs_errf(err, errlen, "%s: cannot open: %s (expected a readable IDX file)", path,
          errno ? strerror(errno) : "out of memory");
    return -1;
  }
  gzbuffer(gz, 1 << 17);
  for (;;) {
    if (len == cap) {
      if (cap > FFS_IDX_MAX_BYTES) {
        ffs_errf(err, errlen,
              "%s: too large: more than %zu bytes (after decompression) "
              "(expected an IDX file of at most 1 GiB)",
              path, FFS_IDX_MAX_BYTES);
        goto fail;
      }
      // +1 so that a file of exactly the cap is told apart from a larger one
      size_t next = cap ? cap * 2 : FFS_IDX_FIRST_CHUNK;
      if (next > FFS_IDX_MAX_BYTES + 1) next = FFS_IDX_MAX_BYTES + 1;
      uint8_t *grown = realloc(buf, next);
      if (!grown) {
        ffs_errf(err, errlen, "%s: out of memory reading %zu bytes", path, next);
        goto fail;
      }
      buf = grown;
      cap = next;
    }
    size_t want = cap - len;
    if (want > (size_t)INT_MAX) want = (size_t)INT_MAX;
    int got = gzread(gz, buf + len, (unsigned)want);
    if (got < 0) {
      int zerr = 0;
      const char *msg = s_gz_msg(gz, path, &zerr);
      ffs_errf(err, errlen, "%s: read error: %s " FFS_IDX_EXPECTED, path, msg);
      goto fail;
    }
    if (got == 0) break;
    len += (size_t)got;
  }
  // A gzip stream cut short reads as a clean end of file; the error only
  // shows in gzerror / gzclose.
  int zerr = 0;
  const char *msg = s_gz_msg(gz, path, &zerr);
  if (zerr != Z_OK) {
    ffs_errf(err, errlen, "%s: corrupt or truncated gzip data: %s " FFS_IDX_EXPECTED, path,
          msg);
    goto fail;
  }
  int rc = gzclose(gz);
  gz = NULL;
  if (rc != Z_OK) {
    ffs_errf(err, errlen, "%s: corrupt or truncated gzip data (zlib error %d) " FFS_IDX_EXPECTED,
          path, rc);
    goto fail;
  }
  if (len > FFS_IDX_MAX_BYTES) {
    ffs_errf(err, errlen,
          "%s: too large: more than %zu bytes (after decompression) "
          "(expected an IDX file of at most 1 GiB)",
          path, FFS_IDX_MAX_BYTES);
    goto fail;
  }
  *buf_p = buf;
  *len_p = len;
  return 0;
fail:
  if (gz) gzclose(gz);
  free(buf);
  return -1;
}

static uint32_t s_be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static const char *s_type_name(uint8_t type) {
  switch (type) {
  case 0x08: return "unsigned byte";
  case 0x09: return "signed byte";
  case 0x0B: return "short";
  case 0x0C: return "int";
  case 0x0D: return "float";
  case 0x0E: return "double";
  default: return "unknown";
  }
}

// Parses and checks an IDX buffer; want_ndims is 1, 3, or 0 for "1 or 3".
// Takes ownership of buf on success (and frees it on failure).
static ffs_idx_t *s_parse(const char *path, uint8_t *buf, size_t len, int want_ndims,
                          char *err, size_t errlen) {
  ffs_idx_t *self = NULL;
  const char *want_str = want_ndims == 1   ? "1 (labels)"
                         : want_ndims == 3 ? "3 (images)"
                                           : "1 (labels) or 3 (images)";
  if (len < 4) {
    ffs_errf(err, errlen,
          "%s: too short: %zu bytes, an IDX header needs at least 4 " FFS_IDX_EXPECTED, path,
          len);
    goto fail;
  }
  if (buf[0] != 0 || buf[1] != 0) {
    ffs_errf(err, errlen,
          "%s: bad magic: first bytes are 0x%02x 0x%02x, not 0x00 0x00 " FFS_IDX_EXPECTED, path,
          buf[0], buf[1]);
    goto fail;
  }
  if (buf[2] != 0x08) {
    ffs_errf(err, errlen,
          "%s: unsupported element type 0x%02x (%s), expected 0x08 (unsigned byte)", path,
          buf[2], s_type_name(buf[2]));
    goto fail;
  }
  int ndims = buf[3];
  if ((want_ndims && ndims != want_ndims) || (!want_ndims && ndims != 1 && ndims != 3)) {
    ffs_errf(err, errlen, "%s: has %d dimension%s, expected %s " FFS_IDX_EXPECTED, path, ndims,
          ndims == 1 ? "" : "s", want_str);
    goto fail;
  }
  size_t hdr = 4 + 4 * (size_t)ndims;
  if (len < hdr) {
    ffs_errf(err, errlen,
          "%s: truncated header: %zu bytes, %d dimensions need %zu " FFS_IDX_EXPECTED, path,
          len, ndims, hdr);
    goto fail;
  }
  uint32_t dims[3] = {1, 1, 1};
  char shape[64] = "";
  int at = 0;
  uint64_t total = 1;
  int overflow = 0;
  for (int i = 0; i < ndims; i++) {
    dims[i] = s_be32(buf + 4 + 4 * i);
    at += snprintf(shape + at, sizeof shape - (size_t)at, "%s%" PRIu32, i ? "x" : "",
                   dims[i]);
    if (dims[i] == 0) {
      ffs_errf(err, errlen, "%s: dimension %d is 0 (expected every size to be at least 1)",
            path, i);
      goto fail;
    }
    if (total > UINT64_MAX / dims[i]) overflow = 1;
    else total *= dims[i];
  }
  const char *what = ndims == 1 ? "labels" : "pixels";
  size_t present = len - hdr;
  if (overflow) {
    ffs_errf(err, errlen,
          "%s: truncated: header declares %s bytes of %s (more than 2^64), file holds %zu "
          FFS_IDX_EXPECTED,
          path, shape, what, present);
    goto fail;
  }
  if (total > present) {
    ffs_errf(err, errlen,
          "%s: truncated: header declares %s = %" PRIu64 " bytes of %s, file holds %zu "
          FFS_IDX_EXPECTED,
          path, shape, total, what, present);
    goto fail;
  }
  if (total < present) {
    ffs_errf(err, errlen,
          "%s: %zu bytes of trailing data: header declares %s = %" PRIu64
          " bytes of %s, file holds %zu " FFS_IDX_EXPECTED,
          path, present - (size_t)total, shape, total, what, present);
    goto fail;
  }
  // total == present <= 1 GiB, so every count below fits in an int
  self = calloc(1, sizeof *self);
  if (!self) {
    ffs_errf(err, errlen, "%s: out of memory", path);
    goto fail;
  }
  self->n = (int)dims[0];
  self->rows = (int)dims[1];
  self->cols = (int)dims[2];
  self->dim = self->rows * self->cols;
  memmove(buf, buf + hdr, present);
  uint8_t *shrunk = realloc(buf, present);
  self->data = shrunk ? shrunk : buf;
  return self;
fail:
  free(buf);
  return NULL;
}

static ffs_idx_t *s_load(const char *path, int want_ndims, char *err, size_t errlen) {
  uint8_t *buf = NULL;
  size_t len = 0;
  if (s_read_all(path, &buf, &len, err, errlen) != 0) return NULL;
  return s_parse(path, buf, len, want_ndims, err, errlen);
}

// ---- public: one IDX file ----

ffs_idx_t *ffs_idx_load(const char *path, char *err, size_t errlen) {
  assert(path);
  return s_load(path, 0, err, errlen);
}

void ffs_idx_destroy(ffs_idx_t **self_p) {
  assert(self_p);
  ffs_idx_t *self = *self_p;
  if (!self) return;
  free(self->data);
  free(self);
  *self_p = NULL;
}

// ---- public: a data set split ----

// Picks "<dir>/<name>" or "<dir>/<name>.gz", whichever exists (raw first).
static int s_find(const char *dir, const char *name, char *out, size_t outlen, char *err,
                  size_t errlen) {
  char raw[4096], gz[4096];
  int n1 = snprintf(raw, sizeof raw, "%s/%s", dir, name);
  int n2 = snprintf(gz, sizeof gz, "%s/%s.gz", dir, name);
  if (n1 < 0 || n2 < 0 || (size_t)n2 >= sizeof gz || (size_t)n2 >= outlen) {
    ffs_errf(err, errlen, "%s: data directory path is too long (expected under %zu bytes)", dir,
          sizeof gz - 32);
    return -1;
  }
  struct stat st;
  // A path that exists but can't be stat'ed for another reason (EACCES...)
  // is still tried, so the open error names the real cause.
  if (stat(raw, &st) == 0 || errno != ENOENT) {
    snprintf(out, outlen, "%s", raw);
    return 0;
  }
  if (stat(gz, &st) == 0 || errno != ENOENT) {
    snprintf(out, outlen, "%s", gz);
    return 0;
  }
  ffs_errf(err, errlen,
        "%s: not found, nor %s (expected MNIST-style IDX files there; run `make data`)", raw,
        gz);
  return -1;
}

ffs_dataset_t *ffs_dataset_load(const char *dir, const char *split, int limit, int classes,
                                char *err, size_t errlen) {
  assert(dir && split && classes >= 2 && classes <= 255);
  ffs_dataset_t *self = NULL;
  ffs_idx_t *img = NULL, *lbl = NULL;
  char img_path[4096], lbl_path[4096], name[256];

  if (limit < 0) {
    ffs_errf(err, errlen, "%s: sample limit %d is negative (expected 0 for all, or a count)",
          dir, limit);
    goto fail;
  }
  if (strlen(split) > 64 || strchr(split, '/')) {
    ffs_errf(err, errlen, "%s: bad split name \"%.64s\" (expected \"train\" or \"t10k\")", dir,
          split);
    goto fail;
  }
  snprintf(name, sizeof name, "%s-images-idx3-ubyte", split);
  if (s_find(dir, name, img_path, sizeof img_path, err, errlen) != 0) goto fail;
  snprintf(name, sizeof name, "%s-labels-idx1-ubyte", split);
  if (s_find(dir, name, lbl_path, sizeof lbl_path, err, errlen) != 0) goto fail;

  img = s_load(img_path, 3, err, errlen);
  if (!img) goto fail;
  lbl = s_load(lbl_path, 1, err, errlen);
  if (!lbl) goto fail;
  if (img->n != lbl->n) {
    ffs_errf(err, errlen, "%s: holds %d images but %s holds %d labels (expected the same count)",
          img_path, img->n, lbl_path, lbl->n);
    goto fail;
  }
  for (int i = 0; i < lbl->n; i++) {
    if (lbl->data[i] >= classes) {
      ffs_errf(err, errlen,
               "%s: label %d at index %d is out of range (expected 0..%d: data.classes is %d)",
               lbl_path, lbl->data[i], i, classes - 1, classes);
      goto fail;
    }
  }

  int n = (limit > 0 && limit < img->n) ? limit : img->n;
  self = calloc(1, sizeof *self);
  if (!self) goto oom;
  self->n = n;
  self->dim = img->dim;
  self->x = malloc((size_t)n * (size_t)img->dim * sizeof *self->x);
  self->y = malloc((size_t)n);
  if (!self->x || !self->y) goto oom;
  size_t count = (size_t)n * (size_t)img->dim;
  for (size_t i = 0; i < count; i++) self->x[i] = (float)img->data[i] / 255.0f;
  memcpy(self->y, lbl->data, (size_t)n);
  ffs_idx_destroy(&img);
  ffs_idx_destroy(&lbl);
  return self;

oom:
  ffs_errf(err, errlen, "%s: out of memory for %d samples", img_path, img ? img->n : 0);
fail:
  ffs_idx_destroy(&img);
  ffs_idx_destroy(&lbl);
  ffs_dataset_destroy(&self);
  return NULL;
}

void ffs_dataset_destroy(ffs_dataset_t **self_p) {
  assert(self_p);
  ffs_dataset_t *self = *self_p;
  if (!self) return;
  free(self->x);
  free(self->y);
  free(self);
  *self_p = NULL;
}
