// ffs_math: the numeric kernels every stage uses: CBLAS-backed linear maps,
// RMS row normalization, goodness functions, the logistic FF loss, softmax.
// Pure functions in the llm.c style: outputs first, inputs const, shapes in
// comments. Nothing here allocates; callers own every buffer.
#ifndef FFS_MATH_H
#define FFS_MATH_H

#include "ffs_topo.h"

// The element-wise loops are compiled for AVX-512, AVX2 and plain x86-64 and
// the CPU picks at load time (gcc's function multiversioning), so one binary
// runs everywhere and vectorizes as wide as the machine allows.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(FFS_NO_CLONES)
#define FFS_VECTOR_LOOP __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define FFS_VECTOR_LOOP
#endif

// out (batch, out_dim) = in (batch, in_dim) @ w^T (w: (out_dim, in_dim)) + b (out_dim).
// b may be NULL.
void ffs_linear_forward(float *out, const float *in, const float *w, const float *b,
                        int batch, int in_dim, int out_dim);

// dw (out_dim, in_dim) = dout^T (batch, out_dim) @ in (batch, in_dim);
// db (out_dim) = column sums of dout (each skipped when NULL). Both
// overwrite, or with accumulate = 1 add to what dw and db hold.
void ffs_linear_backward_w(float *dw, float *db, const float *dout, const float *in,
                           int batch, int in_dim, int out_dim, int accumulate);

// In place y = max(y, 0) over n values.
void ffs_relu(float *y, long n);

// Divides each row of x (rows, cols) by its root-mean-square, so that the
// row's mean square becomes 1 (Hinton's normalization: the length carries
// the goodness, only the direction goes on). eps guards an all-zero row.
void ffs_rms_normalize(float *out, const float *x, int rows, int cols, float eps);

// Goodness of each row of y (rows, cols): ssq = sum y^2, msq = mean y^2,
// min_ssq = sum y^2 as well (the sign is flipped in the logit instead).
void ffs_goodness(float *g, const float *y, int rows, int cols, ffs_goodness_t kind);

// The logit whose sigmoid is p(positive): (g - theta)/temp, or
// (theta - g)/temp for min_ssq (positives should have LOW goodness).
float ffs_ff_logit(float g, float theta, float temp, ffs_goodness_t kind);

// softplus(x) = log(1 + e^x), computed without overflow.
float ffs_softplus(float x);
float ffs_sigmoid(float x);

// FF loss of one row: softplus(-logit) for a positive row, softplus(logit)
// for a negative one; and its derivative with respect to the row's goodness.
float ffs_ff_loss(float logit, int positive);
float ffs_ff_dloss_dg(float logit, int positive, float temp, ffs_goodness_t kind);

// In place softmax over each row of x (rows, cols).
void ffs_softmax_rows(float *x, int rows, int cols);

// Index of the largest of n values (first on ties).
int ffs_argmax(const float *x, int n);

// Mean cosine between the rows of h (rows, cols) over all pairs of different
// rows: 1 when every row points the same way (a collapsed representation).
// *pairs: how many pairs (0 when rows < 2; the mean is then 0).
double ffs_mean_pair_cosine(const float *h, int rows, int cols, long *pairs);

// The calling thread (and threads it starts afterwards) flushes subnormal
// floats to zero, results and inputs alike (x86 MXCSR FTZ and DAZ; a no-op
// elsewhere). Gradients of confidently classified samples fall below 1e-38;
// left subnormal, every sgemm and optimizer pass over them runs several
// times slower (measured: a dp_layer 3.4x slower per step by epoch 4).
void ffs_flush_subnormals(void);

#endif
