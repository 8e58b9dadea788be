// mirror_layer: the objectives of two mirrored models that teach each other
// (Gananath R 2024, "Improved Forward-Forward Contrastive Learning";
// ../shared/ALGORITHMS.md section 3), on the dense block. Each layer of
// model A learns only from its own loss against the activity of the
// matching layer of model B (and B's from A's): the twin's activity is a
// fixed target, no gradient goes through it, none goes to the layer below.
// Hidden layers: h = relu(W x + b) on the plain input. The top layer:
// p = softmax(W x + b), binary cross-entropy with the one-hot label.
//
// Objectives of a hidden layer, per batch of rows (u_i: this layer's
// activity for sample i, v_j: the twin's for sample j, c_ij = cos(u_i, v_j)):
// - cosine (the paper's): mean over i of 1 - c_ii. Nothing stops both models
//   from agreeing on one constant vector: it collapses.
// - infonce: each sample's twin activity is its positive, the twin's
//   activity for the batch's other samples its negatives:
//   mean over i of -log(exp(c_ii / t) / sum_j exp(c_ij / t)).
// - supcon: as infonce, but every twin activity of a sample of the same
//   label is a positive (supervised contrastive): mean over i of
//   -mean over j in P(i) of log(exp(c_ij / t) / sum_k exp(c_ik / t)).
// Each returns dz (rows, units): the loss's gradient at the pre-activation
// (through relu, unless the layers compare pre-activations), which the dense
// block turns into its step.
#ifndef FFS_MIRROR_LAYER_H
#define FFS_MIRROR_LAYER_H

#include <stdint.h>

#include "ffs_dense.h"
#include "ffs_topo.h"

typedef enum { FFS_MIRROR_COSINE = 0, FFS_MIRROR_INFONCE, FFS_MIRROR_SUPCON } ffs_mirror_obj_t;

// A mirror_layer's own options (its stage's kind_cfg).
typedef struct {
  int model;                  // 0 (a) or 1 (b): which of the twin pipelines
  ffs_mirror_obj_t objective; // hidden layers: cosine | infonce | supcon
  float temp;                 // infonce / supcon temperature t (> 0; the key `tau`)
  int pre;                    // compare: 0 activity (relu(a), the paper's) | 1 preactivation
                              // (a itself: every unit gets a gradient; relu(a) still goes on)
  int top;                    // the model's last layer (set by the stage): BCE with the label
} ffs_mirror_cfg_t;

// Hidden layer objectives. u, v (rows, units); labels (rows) for supcon
// (NULL otherwise); a (rows, units) the pre-activation (relu's gate). Writes
// dz (rows, units) and returns the mean loss. scratch: rows * (rows + 1) floats.
// u and v are activities (relu), or pre-activations when a is NULL (no gate).
double ffs_mirror_hidden(const ffs_mirror_cfg_t *c, const float *u, const float *v,
                         const float *a, const uint8_t *labels, int rows, int units, float *dz,
                         float *scratch);

// The top layer: p (rows, classes) = softmax of z, then the mean binary
// cross-entropy over rows x classes against the one-hot labels, and its
// gradient dz (rows, classes) at z. Returns the loss, -1 for a label out of
// range.
double ffs_mirror_top(const float *z, const uint8_t *labels, int rows, int classes, float *p,
                      float *dz);

#endif
