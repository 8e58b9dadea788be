// ff_layer: one Forward-Forward layer as a library object: relu(W x + b) on
// RMS-normalized input, goodness per row, the logistic FF loss, and a local
// update from that loss alone (plus peer normalization). The ff_layer stage
// wraps it with sockets; tests call it directly. Buffers are allocated once
// in new(); forward/learn never allocate.
#ifndef FFS_FF_LAYER_H
#define FFS_FF_LAYER_H

#include <stdint.h>

#include "ffs_topo.h"

typedef struct ffs_ff_layer ffs_ff_layer_t;

// A layer of `units` ReLUs over in_dim inputs, for frames of up to max_rows.
// W ~ randn / sqrt(in_dim) from (seed, stream); b = 0; peer means start 0.5.
ffs_ff_layer_t *ffs_ff_layer_new(int in_dim, int units, int max_rows, const ffs_layer_cfg_t *cfg,
                                 uint64_t seed, uint64_t stream);
// The FFCL form (train.labels: separate): the same layer plus label weights
// U (n_labels, units). The features s = W x + b do not see the label; the
// goodness of a row with label c is computed on relu(s + U[c]), and the
// activity sent on is the label-free relu(s), normalized. U ~ randn/sqrt(n_labels).
ffs_ff_layer_t *ffs_ff_layer_new_labeled(int in_dim, int units, int n_labels, int max_rows,
                                         const ffs_layer_cfg_t *cfg, uint64_t seed,
                                         uint64_t stream);
// One shard of a sharded layer (topology key `shards`): the units
// [unit0, unit0 + units) of a layer of total_units units. Its weights are
// exactly those rows of the whole layer's (same seed and stream), and its
// threshold is the whole layer's. After each forward, the caller sums the
// shards' partials (ffs_ff_layer_partials) over all shards and hands the
// totals back (ffs_ff_layer_set_totals) before reading the goodness or the
// output, or learning. Not for the FFCL form.
ffs_ff_layer_t *ffs_ff_layer_new_shard(int in_dim, int units, int unit0, int total_units,
                                       int max_rows, const ffs_layer_cfg_t *cfg, uint64_t seed,
                                       uint64_t stream);
void ffs_ff_layer_destroy(ffs_ff_layer_t **self_p);

// Runs x (rows, in_dim) through the layer: normalizes x, computes
// y = relu(W xn + b), goodness per row and the normalized activity.
void ffs_ff_layer_forward(ffs_ff_layer_t *l, const float *x, int rows);
// The same for a labeled layer: labels[r] selects row r's label term (a value
// >= n_labels, e.g. 255, or labels == NULL: none, goodness of relu(s)).
void ffs_ff_layer_forward_labeled(ffs_ff_layer_t *l, const float *x, int rows,
                                  const uint8_t *labels);
// The same forwards on an input the caller has already normalized (each row
// to unit RMS, eps 1e-8) into ffs_ff_layer_input's buffer, (max_rows,
// in_dim): a stage decodes a frame straight into it (ffs_frame_payload_rms).
float *ffs_ff_layer_input(ffs_ff_layer_t *l);
void ffs_ff_layer_forward_normalized(ffs_ff_layer_t *l, int rows, const uint8_t *labels);
// FFCL inference: after a forward, the goodness of every row under every
// label, out (rows, n_labels). Costs O(rows * n_labels * units): the feature
// part W x is shared by all candidates.
void ffs_ff_layer_label_goodness(const ffs_ff_layer_t *l, int rows, float *out);
// Whether the next forwards serve evaluation frames (1) or training frames
// (0, the start): with cfg eval_average > 0, evaluation forwards use the
// moving averages of the weights instead of the weights.
void ffs_ff_layer_set_eval(ffs_ff_layer_t *l, int eval);

// A shard, after a forward: writes rows + 2 partial sums into out: each row's
// sum of squared activities over this shard's units, then the sum of its
// units' peer means, then the sum over its units of their mean activity over
// the forward's first mean_rows rows (its positive rows: all of a positive
// frame, the first half of a pair frame). Returns rows + 2.
int ffs_ff_layer_partials(const ffs_ff_layer_t *l, int rows, int mean_rows, float *out);
// A shard: the same sums over all shards (in the same layout). Completes the
// forward: goodness and normalized output now cover the whole layer.
void ffs_ff_layer_set_totals(ffs_ff_layer_t *l, int rows, const float *totals);

// Results of the last forward (borrowed; valid until the next forward).
const float *ffs_ff_layer_goodness(const ffs_ff_layer_t *l); // (rows)
const float *ffs_ff_layer_output(const ffs_ff_layer_t *l);   // (rows, units) normalized
const float *ffs_ff_layer_activity(const ffs_ff_layer_t *l); // (rows, units) relu, the
                                                             // goodness's (label term included)

// Mean FF loss of the last forward's rows, all positive or all negative.
float ffs_ff_layer_loss(const ffs_ff_layer_t *l, int rows, int positive);

// Gradient of that mean loss (plus the peer-normalization term when
// peer_lambda > 0) with respect to W and b, into gw (units, in_dim), gb (units);
// for a labeled layer also U's, kept inside (ffs_ff_layer_label_grad).
void ffs_ff_layer_grad(ffs_ff_layer_t *l, int rows, int positive, float *gw, float *gb);

// One local learning step on the last forward's rows: updates the peer
// means (positive rows), computes the gradient, applies the optimizer with
// lr * lr_factor. With update: pair, a positive frame's gradient is kept and
// the step comes with the next negative frame, on both gradients summed.
// Returns the mean loss before the step.
float ffs_ff_layer_learn(ffs_ff_layer_t *l, int rows, int positive, float lr_factor);
// The same for a pair frame: rows [0, n_pos) positive, the rest their
// negatives. One step on both polarities' gradients summed, as update: pair
// takes for a positive frame and its negative frame (a positive frame still
// waiting steps first). Returns the two mean losses summed.
float ffs_ff_layer_learn_pair(ffs_ff_layer_t *l, int rows, int n_pos, float lr_factor);

// Parameters (borrowed, writable for checkpoint loading).
float *ffs_ff_layer_weights(ffs_ff_layer_t *l);   // (units, in_dim)
float *ffs_ff_layer_bias(ffs_ff_layer_t *l);      // (units)
float *ffs_ff_layer_peer_mean(ffs_ff_layer_t *l); // (units)
float *ffs_ff_layer_label_weights(ffs_ff_layer_t *l); // (n_labels, units); NULL if unlabeled
// eval_average's moving averages, shaped as above; NULL when it is off.
float *ffs_ff_layer_avg_weights(ffs_ff_layer_t *l);
float *ffs_ff_layer_avg_bias(ffs_ff_layer_t *l);
float *ffs_ff_layer_avg_label_weights(ffs_ff_layer_t *l);
// Restarts the averages from the current weights (after loading weights
// that came without averages). No-op when eval_average is off.
void ffs_ff_layer_restart_average(ffs_ff_layer_t *l);
// The optimizer's state, for checkpoints: its buffers, shaped as the
// parameters they belong to (NULL where this layer's optimizer keeps none),
// and its scalars. Settle the layer first (ffs_ff_layer_settle): the
// gradient factors that frames of at most 8 rows keep until the step go
// into the smoothed gradient, as the step would put them (the arithmetic is
// unchanged). A layer given all of it back continues exactly as the one
// that was saved.
typedef struct {
  float *m_w, *m_b;       // smoothed gradient (sgd) / first moment (adam)
  float *v_w, *v_b;       // adam's second moment
  float *m_u, *v_u;       // the same for the FFCL label weights
  float *g_w, *g_b, *g_u; // the gradient of a positive frame that waits for its
                          // negative (update: pair); g_w only with adam (sgd
                          // keeps it in m_w)
} ffs_ff_layer_opt_t;
ffs_ff_layer_opt_t ffs_ff_layer_opt(ffs_ff_layer_t *l);
void ffs_ff_layer_settle(ffs_ff_layer_t *l);
// Steps taken (low and high 20 bits), a positive frame waiting (0 / 1), the
// smoothed gradient opened for the next step (0 / 1), as floats.
enum { FFS_FF_LAYER_OPT_SCALARS = 4 };
void ffs_ff_layer_opt_scalars(const ffs_ff_layer_t *l, float *out);
// -1 when in does not hold such values (nothing is changed then).
int ffs_ff_layer_set_opt_scalars(ffs_ff_layer_t *l, const float *in);
const float *ffs_ff_layer_label_grad(const ffs_ff_layer_t *l); // U's last gradient
int ffs_ff_layer_n_labels(const ffs_ff_layer_t *l);
float ffs_ff_layer_theta(const ffs_ff_layer_t *l);

#endif
