// ffs_ckpt: per-stage checkpoints in the safetensors format (8-byte LE header
// length, JSON header, raw little-endian tensors), so Python's safetensors,
// numpy or torch open them directly. Writes are atomic: temp file, fsync,
// rename. Reads check every offset and shape against the file size.
#ifndef FFS_CKPT_H
#define FFS_CKPT_H

#include <stddef.h>

#define FFS_CKPT_MAX_TENSORS 32

typedef struct {
  const char *name; // tensor name, e.g. "w"
  int ndim;         // 1 or 2
  int shape[2];     // (rows, cols) or (n)
  float *data;      // shape[0]*shape[1] (or shape[0]) floats
} ffs_tensor_ref_t;

// Writes n tensors (F32) plus string metadata pairs (meta[2k]=key,
// meta[2k+1]=value, n_meta pairs) to path atomically. Returns 0 or -1 (err set).
int ffs_ckpt_save(const char *path, const ffs_tensor_ref_t *t, int n,
                  const char *const *meta, int n_meta, char *err, size_t errlen);

// Reads the tensors named in t[] from path into their data buffers; each
// tensor must exist with exactly the given shape and dtype F32.
// Returns 0, or -1 with "PATH: reason" in err (buffers may be partly written).
int ffs_ckpt_load(const char *path, const ffs_tensor_ref_t *t, int n, char *err,
                  size_t errlen);

// The same, with t[n_required..n) optional as a group: a file that has none
// of them loads the required ones (*n_loaded = n_required), one that has
// all of them loads every tensor (*n_loaded = n); one that has some of them
// is an error naming the first missing.
int ffs_ckpt_load_some(const char *path, const ffs_tensor_ref_t *t, int n, int n_required,
                       int *n_loaded, char *err, size_t errlen);

// The general form: t[0, ends[0]) required, then groups g = 1..n_groups-1
// of t[ends[g-1], ends[g]), each optional as a group (all of it or none of
// it, as above). Bit g of *loaded says group g was read (bit 0 always).
int ffs_ckpt_load_groups(const char *path, const ffs_tensor_ref_t *t, const int *ends,
                         int n_groups, unsigned *loaded, char *err, size_t errlen);

#endif
