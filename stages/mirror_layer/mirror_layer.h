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
// The objective's gradient is scaled by `twin:` (default 1; 0 leaves the
// label head alone: the twin's part measured by its absence).
// And, with `head: w` > 0, a label head: a linear softmax classifier of the
// layer's own on its activity, whose cross-entropy with the label (weight w)
// the layer's step adds to the objective's; the head steps on it too. It is
// the layer's: no gradient leaves the process for it either.
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
  float head;                 // hidden layers: the label head's weight (0: none; the key `head`)
  float twin;                 // hidden layers: the objective's weight (the key `twin`, default 1;
                              // 0: the twin's activity is paired but not learned from)
  int top;                    // the model's last layer (set by the stage): BCE with the label
} ffs_mirror_cfg_t;

// Hidden layer objectives. u, v (rows, units); labels (rows) for supcon
// (NULL otherwise); a (rows, units) the pre-activation (relu's gate). Writes
// dz (rows, units) and returns the mean loss. scratch: rows * (rows + 1) floats.
// u and v are activities (relu), or pre-activations when a is NULL (no gate).
double ffs_mirror_hidden(const ffs_mirror_cfg_t *c, const float *u, const float *v,
                         const float *a, const uint8_t *labels, int rows, int units, float *dz,
                         float *scratch);

// The label head: zh (rows, classes) = the head's W_h act + b_h, wh (classes,
// units) its weights, a (rows, units) the layer's pre-activation. Writes
// p = softmax(zh), dzh (rows, classes) = weight * dCE/dzh (the head's step),
// adds weight * dCE/d act through relu (a > 0) to dz (rows, units); returns the
// mean cross-entropy, -1 for a label out of range.
double ffs_mirror_head(const float *zh, const float *wh, const float *a, const uint8_t *labels,
                       int rows, int units, int classes, double weight, float *p, float *dzh,
                       float *dz);

// The top layer: p (rows, classes) = softmax of z, then the mean binary
// cross-entropy over rows x classes against the one-hot labels, and its
// gradient dz (rows, classes) at z. Returns the loss, -1 for a label out of
// range.
double ffs_mirror_top(const float *z, const uint8_t *labels, int rows, int classes, float *p,
                      float *dz);

#endif
