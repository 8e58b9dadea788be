// ffs_idx: reader for IDX files (the MNIST / Fashion-MNIST format), raw or
// gzipped (detected from the content, not the name), any image size.
// A bad file is rejected with a message naming the file and what is wrong;
// nothing is trusted: dimensions are checked against the bytes present.
#ifndef FFS_IDX_H
#define FFS_IDX_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  int n;          // number of items
  int rows, cols; // image size (1 x 1 for a label file)
  int dim;        // rows * cols: bytes per item
  uint8_t *data;  // (n, dim) owned
} ffs_idx_t;

// Loads an IDX file of unsigned bytes (type 0x08) with 1 dim (labels) or
// 3 dims (images). Returns a new object, or NULL with "PATH: reason" in err.
ffs_idx_t *ffs_idx_load(const char *path, char *err, size_t errlen);
void ffs_idx_destroy(ffs_idx_t **self_p);

// A data set split: images scaled to [0,1] floats plus labels.
typedef struct {
  int n;          // samples
  int dim;        // pixels per sample
  float *x;       // (n, dim) in [0, 1], owned
  uint8_t *y;     // (n) labels 0..classes-1, owned
} ffs_dataset_t;

// Loads "<dir>/<split>-images-idx3-ubyte[.gz]" and "<split>-labels-idx1-ubyte[.gz]"
// (split = "train" or "t10k"), keeping the first `limit` samples (0 = all).
// Checks that counts match and that every label is < classes (the
// topology's data.classes, 2..255): the first one that is not is named with
// its file, value and index. Returns NULL with a message naming the file
// and the problem.
ffs_dataset_t *ffs_dataset_load(const char *dir, const char *split, int limit, int classes,
                                char *err, size_t errlen);
void ffs_dataset_destroy(ffs_dataset_t **self_p);

#endif
