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

// Learning-rate factor for Hinton's cooldown: 1 over the first half of the
// epochs, then decaying linearly toward 0 over the second half.
float ffs_optim_cooldown(int epoch, int epochs);

#endif
