// dp_layer: the dual-propagation objective on the dense block (Hoier,
// Staudt & Zach 2023; Hoier & Zach 2024; ../shared/ALGORITHMS.md section 4).
// Each neuron is a dyad (s+, s-). Forward, a layer computes a = W x + b and
// sends f(a) on (the top layer: a itself, the class scores). Backward, one
// top-down sweep: the top nudges its dyad with the loss,
//   s+ = a - (1 - alpha) beta dloss,  s- = a + alpha beta dloss,
// a hidden layer takes fb = W_above^T (s+_above - s-_above) and forms
//   s+ = f(a + (1 - alpha) fb),        s- = f(a - alpha fb);
// each layer's weights learn from dz = -(s+ - s-) / beta and its own input
// (dW = dz^T x, Hebbian and local), and it sends W^T (s+ - s-) down.
// Dampened (a hidden layer's `dampened: true`, after the 2024 paper's code):
// the dyad is pulled toward the forward state s0 = f(a) with a weight L that
// its upper neighbour's weights set, L = max(0, (||W_above||_2^2 - 1) / 2):
//   s+ = f((a + (1 - alpha) fb + L s0) / (1 + L)),
//   s- = f((a - alpha fb + L s0) / (1 + L)).
// The rule `backprop` is the same machinery in the limit beta -> 0: the top's
// dz is dloss, a hidden layer's dz = f'(a) * fb with fb = W_above^T dz_above,
// and the term sent down is W^T dz. Nothing here knows sockets or sequence
// numbers: the stage (dp_layer_stage.c) keeps each sample's input and
// pre-activation until its feedback comes.
#ifndef FFS_DP_LAYER_H
#define FFS_DP_LAYER_H

#include <stdint.h>

#include "ffs_dense.h"
#include "ffs_topo.h"

typedef enum { FFS_DP_DUALPROP = 0, FFS_DP_BACKPROP } ffs_dp_rule_t;
typedef enum { FFS_DP_LOSS_CE = 0, FFS_DP_LOSS_SE } ffs_dp_loss_t;
typedef enum { FFS_DP_RELU = 0, FFS_DP_TANH } ffs_dp_act_t;

// A dp_layer's own options (its stage's kind_cfg).
typedef struct {
  ffs_dp_rule_t rule; // dualprop | backprop
  float alpha;        // nudging split in [0, 1]: 0.5 symmetric (2023), 0 and 1 DP-top (2024)
  float beta;         // nudging strength (> 0)
  ffs_dp_loss_t loss; // the top layer's loss: ce (softmax cross-entropy) | se (squared error)
  ffs_dp_act_t act;   // hidden layers' f: relu | tanh (the top layer is linear)
  int dampened;       // a hidden layer's dyad is damped by L of the weights above
  int top;            // the chain's last layer (applies the loss; set by the stage)
} ffs_dp_cfg_t;

typedef struct ffs_dp_layer ffs_dp_layer_t;

// A layer of `units` over in_dim inputs for frames of up to max_rows rows;
// lc: optimizer, lr, momentum, weight_decay, eval_average; W ~ randn /
// sqrt(in_dim) from (seed, stream), b = 0. NULL when out of memory.
ffs_dp_layer_t *ffs_dp_layer_new(int in_dim, int units, int max_rows, const ffs_layer_cfg_t *lc,
                                 const ffs_dp_cfg_t *dc, uint64_t seed, uint64_t stream);
void ffs_dp_layer_destroy(ffs_dp_layer_t **self_p);
ffs_dense_t *ffs_dp_layer_dense(ffs_dp_layer_t *l);

// a (rows, units) = W x + b with the weights the dense block's mode selects
// (evaluation may see the averages); out (rows, units) = f(a), or a for the
// top layer. out may be NULL.
void ffs_dp_layer_forward(ffs_dp_layer_t *l, const float *x, int rows, float *a, float *out);

// The top layer: dz (rows, units) = dloss / rows for labels (0..units-1),
// the mean loss's gradient at the nudged output (ce: softmax(a) - onehot; se:
// a - onehot). *loss_sum: the loss summed over rows. Returns the rows whose
// argmax is not their label; -1 for a label out of range.
int ffs_dp_layer_top(ffs_dp_layer_t *l, const float *a, const uint8_t *labels, int rows, float *dz,
                     double *loss_sum);
// A hidden layer: dz (rows, units) from its pre-activation a and the term fb
// (rows, units) its upper neighbour sent: dualprop -(s+ - s-) / beta with the
// dyad damped by damp = L (0: undamped), backprop f'(a) * fb.
void ffs_dp_layer_hidden(const ffs_dp_layer_t *l, const float *a, const float *fb, float damp,
                         int rows, float *dz);
// The damping this layer's weights W (units, in_dim) set for the layer below:
// L = max(0, (sigma^2 - 1) / 2), sigma W's largest singular value, by power
// iteration on W^T W from the vector the last call ended with (the first
// call iterates FFS_DP_POWER_FIRST times from a random vector, later ones
// FFS_DP_POWER_ITERS: the weights move little between steps). *sigma, when
// not NULL: the estimate of sigma.
#define FFS_DP_POWER_FIRST 50
#define FFS_DP_POWER_ITERS 2
float ffs_dp_layer_damping(ffs_dp_layer_t *l, float *sigma);
// The term for the layer below, down (rows, in_dim): dualprop W^T (s+ - s-)
// = -beta dz W, backprop dz W, with the weights as they are now.
void ffs_dp_layer_down(ffs_dp_layer_t *l, const float *dz, int rows, float *down);
// The layer's step: gradient dz^T x (x: the input that forward saw), one
// optimizer step with lr * lr_factor.
void ffs_dp_layer_learn(ffs_dp_layer_t *l, const float *x, const float *dz, int rows,
                        float lr_factor);

#endif
