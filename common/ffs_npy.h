// ffs_npy: writes float32 matrices as NumPy .npy files (format 1.0) that
// numpy.load opens, rows appended as they stream past. The header has room
// for any row count and is rewritten after each append's rows are written,
// so the file on disk is always a valid .npy of the rows appended so far,
// even if the process is killed (a row being written is not yet counted).
// Used by the tap stage to record a layer's activity; no allocation per row.
#ifndef FFS_NPY_H
#define FFS_NPY_H

#include <stddef.h>
#include <stdint.h>

typedef struct ffs_npy ffs_npy_t;

// Creates path (truncating it) for rows of cols float32 values. NULL with a
// message naming the file in err on failure.
ffs_npy_t *ffs_npy_new(const char *path, uint32_t cols, char *err, size_t errlen);

// Appends rows x cols values (row-major). 0, or -1 with a message.
int ffs_npy_append(ffs_npy_t *self, const float *x, uint32_t rows, char *err, size_t errlen);

// Rows written so far.
uint64_t ffs_npy_rows(const ffs_npy_t *self);

// Flushes to disk (fsync) and closes the file. 0, or -1 with a message.
int ffs_npy_close(ffs_npy_t *self, char *err, size_t errlen);

// Frees self (closing first if needed) and nulls the caller's pointer.
void ffs_npy_destroy(ffs_npy_t **self_p);

#endif
