// ffs_optim: parameter updates for one tensor: smoothed-gradient descent with
// weight decay (Hinton's FF recipe: G = m G + (1-m) grad) and Adam.
// The state (smoothed gradient, Adam moments) is owned by the caller and
// sized like the parameter; nothing allocates here.
#ifndef FFS_OPTIM_H
#define FFS_OPTIM_H

#include "ffs_topo.h"

typedef struct {
  ffs_opt_kind_t kind;
  float lr;           // step size for this update (after any cooldown)
  float momentum;     // gradient smoothing (sgd) or beta1 (adam)
  float beta2;        // adam only
  float eps;          // adam only
  float weight_decay; // added to the gradient as weight_decay * p
  long step;          // adam: 1-based update count (bias correction)
} ffs_optim_step_t;

// p (n) -= update from grad (n); m, v (n): optimizer state (v only for adam).
void ffs_optim_apply(float *p, const float *grad, float *m, float *v, long n,
                     const ffs_optim_step_t *st);

// Smoothed-gradient descent for a weight matrix w, m (n_out, n_in) whose
// gradient is a sum of a few outer products (a frame of 1-8 rows): one pass
// over w and m instead of writing the gradient out and reading it back.
//   m = keep * m + sum_r a[r]^T x[r]     (a: (rows, n_out), x: (rows, n_in))
//   w -= lr * (m + wd * w)               (only with step = 1)
// keep is the momentum for a step's first gradient, 1 for one more added to
// it; a holds (1 - momentum) * the gradient wrt the outputs. rows may be 0:
// with keep 1 and step 1 that is the step alone on the m already summed.
// With step, m is then multiplied by keep_next (the next step's momentum) in
// the same pass, so that the next step's first gradient is added with keep 1
// (sgemm with beta 1: no separate pass of OpenBLAS's over m to scale it).
void ffs_optim_sgd_outer(float *w, float *m, const float *a, const float *x, int rows,
                         int n_out, int n_in, float keep, int step, float lr, float wd,
                         float keep_next);

// Plain SGD (no momentum) on a gradient of a few outer products, with no
// optimizer state: w -= lr * (sum_r a[r]^T x[r] + wd * w), one pass over w
// alone. What ffs_optim_sgd_outer computes with momentum 0 and an m that is
// zero, bit for bit, without reading and writing m (at batch 1 the pass over
// w and m is what the step costs; w alone stays in a core's L2).
void ffs_optim_sgd_plain(float *w, const float *a, const float *x, int rows, int n_out, int n_in,
                         float lr, float wd);

// Exponential moving average of a parameter: avg = keep * avg + (1 - keep) * p.
void ffs_optim_average(float *avg, const float *p, long n, float keep);

// Learning-rate factor for Hinton's cooldown: 1 over the first half of the
// epochs, then decaying linearly toward 0 over the second half.
float ffs_optim_cooldown(int epoch, int epochs);

#endif
