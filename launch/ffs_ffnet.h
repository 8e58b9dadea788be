// ffs_ffnet: a run's FF network rebuilt in one process, to look at what it
// learned (`ffstream saliency`): the layers are the stages' own
// ffs_ff_layer_t objects with the weights evaluation used (the moving
// averages under eval_average), chained as the pipeline chains them, and
// scored as the readout scores them (energy: the summed goodness of its
// energy layers, per candidate label). It adds the gradient of one layer's
// goodness with respect to the input pixels. It never learns.
#ifndef FFS_FFNET_H
#define FFS_FFNET_H

#include <stddef.h>
#include <stdint.h>

#include "ff_layer.h"
#include "ffs_topo.h"

typedef struct ffs_ffnet ffs_ffnet_t;

// The network of topology t (loaded with the run's overrides), its weights
// drawn as the stages draw them at the start; max_rows: most rows one
// forward takes (calls with more are cut into pieces of that size). Plain
// FF (label overlay), FFCL (train.labels: separate) and the recurrent form
// (train.ticks > 1, computed as lockstep timing computes it); a sharded
// layer is one layer here. Refuses, with one line in err, what it cannot
// rebuild: a chain of other layer kinds (dp_layer), a readout without
// energy layers. NULL then.
ffs_ffnet_t *ffs_ffnet_new(const ffs_topo_t *t, int max_rows, char *err, size_t errlen);
void ffs_ffnet_destroy(ffs_ffnet_t **self_p);

// Loads every layer from ckpt_dir/<stage>.safetensors (a sharded layer:
// one file per shard, each holding its rows, put together here): w, b,
// (FFCL) u, and with eval_average their averages w_avg, b_avg, u_avg, which
// evaluation uses (a file without them: the weights, as a stage would).
// Returns 0, or -1 with "PATH: what is wrong" in err.
int ffs_ffnet_load(ffs_ffnet_t *n, const char *ckpt_dir, char *err, size_t errlen);

int ffs_ffnet_dim(const ffs_ffnet_t *n);      // pixels per image (data.dim)
int ffs_ffnet_classes(const ffs_ffnet_t *n);  // candidate labels (data.classes)
int ffs_ffnet_n_layers(const ffs_ffnet_t *n); // ff_layers in chain order
int ffs_ffnet_overlay(const ffs_ffnet_t *n);  // 1: the label is painted into
                                              // the first classes pixels
const char *ffs_ffnet_layer_name(const ffs_ffnet_t *n, int k);
// Layer k's weight in the energy: +1, -1 (min_ssq: low goodness wins) or 0
// (not among the readout's energy layers).
float ffs_ffnet_energy_sign(const ffs_ffnet_t *n, int k);
// Layer k itself (borrowed; its weights are writable, for tests).
ffs_ff_layer_t *ffs_ffnet_layer(ffs_ffnet_t *n, int k);
// The weights and bias layer k evaluates with, (units, in_dim) and (units):
// the averages under eval_average, else the weights.
float *ffs_ffnet_eval_weights(ffs_ffnet_t *n, int k);
float *ffs_ffnet_eval_bias(ffs_ffnet_t *n, int k);

// Energy inference on images x (rows, dim) of raw pixels (the label is
// painted or given here): scores (rows, classes), each label's summed
// signed goodness of the energy layers, summed in layer order as the
// readout does; per_layer (rows, n_layers, classes), each layer's unsigned
// goodness (recurrent form: its mean over the scored ticks), or NULL. The
// prediction is the argmax of a row of scores.
void ffs_ffnet_scores(ffs_ffnet_t *n, const float *x, int rows, float *scores, float *per_layer);

// The energy score of one label per image: out (rows), labels[r] < classes.
void ffs_ffnet_score_label(ffs_ffnet_t *n, const float *x, int rows, const uint8_t *labels,
                           float *out);

// The gradient of each layer's goodness for image x (dim) under label
// `label` with respect to the raw pixels, through the RMS normalizations
// and ReLUs of the layers below it: grad (n_layers, dim), unsigned (the
// goodness itself, not its energy sign). For the first layer that is
// 2 W^T y taken back through the input's normalization. In the recurrent
// form the goodness is the mean over the scored ticks, and the gradient
// goes back through the ticks: the damped states and the top-down inputs. Painted label
// pixels get a gradient as any pixel does (the caller masks them).
void ffs_ffnet_goodness_grad(ffs_ffnet_t *n, const float *x, int label, float *grad);

#endif
