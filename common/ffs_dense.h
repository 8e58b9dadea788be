// ffs_dense: the dense block under every layer rule: z = W xn + b on an
// RMS-normalized input, the weights' optimizer (smoothed gradient or Adam)
// fed a pre-activation gradient dz, and the moving average of the weights
// that evaluation may see. It knows no objective: FF goodness, a nudged
// minus free difference or a contrastive term turn activity into dz
// elsewhere (stages/ff_layer/ff_layer.c is the FF one). Buffers are
// allocated once in new(); forward, gradient and step never allocate.
#ifndef FFS_DENSE_H
#define FFS_DENSE_H

#include <stdint.h>

#include "ffs_optim.h"
#include "ffs_rng.h"
#include "ffs_topo.h"

typedef struct ffs_dense ffs_dense_t;

// The average takes in the weights every this many steps (with the decay
// raised to that power): a pass over W once per FFS_DENSE_AVERAGE_EVERY steps.
#define FFS_DENSE_AVERAGE_EVERY 4

// Units [unit0, unit0 + units) of a block of total_units units over in_dim
// inputs, for frames of up to max_rows rows; cfg gives the optimizer
// (opt, lr, momentum, weight_decay) and eval_average. W ~ randn / sqrt(in_dim)
// drawn from rng: the whole block's draws in order, this slice's rows kept
// (rng is left after the whole block's W, for what the caller draws next);
// b = 0. NULL when out of memory.
ffs_dense_t *ffs_dense_new(int in_dim, int units, int unit0, int total_units, int max_rows,
                           const ffs_layer_cfg_t *cfg, ffs_rng_t *rng);
void ffs_dense_destroy(ffs_dense_t **self_p);

// The input buffer (max_rows, in_dim): the caller writes the normalized
// input of the next forward here (a stage decodes a frame straight into it).
float *ffs_dense_input(ffs_dense_t *d);
// Whether the next forwards serve evaluation frames (1) or training frames
// (0, the start): with eval_average > 0, evaluation uses the averages.
void ffs_dense_set_eval(ffs_dense_t *d, int eval);
int ffs_dense_eval(const ffs_dense_t *d);

// z (rows, units) = W xn + b over the input buffer's first rows, with the
// weights the mode selects.
void ffs_dense_forward(ffs_dense_t *d, float *z, int rows);

// Adds the gradient of a pre-activation gradient dz (rows, units), taken
// with the last forward's input, to the step in progress: W's through the
// fused optimizer (sgd: as outer-product factors for frames of up to 8
// rows, else one sgemm into the smoothed gradient), b's into the bias
// gradient, added to what it holds when accumulate, else replacing it.
void ffs_dense_add_grad(ffs_dense_t *d, const float *dz, int rows, int accumulate);

// One optimizer step with lr * lr_factor on the gradient gathered, and the
// averages' update on their cadence. Returns the step's parameters
// (*st: kind, lr, momentum, step count) for parameters of the caller's that
// step with the block (FFCL's label weights); 1 in *averaged when the
// averages took the weights in on this step, with keep in *keep.
void ffs_dense_step(ffs_dense_t *d, float lr_factor, ffs_optim_step_t *st, int *averaged,
                    float *keep);

// sgd: the gradient factors waiting go into the smoothed gradient (the
// arithmetic is unchanged); before reading the optimizer state.
void ffs_dense_settle(ffs_dense_t *d);

// Parameters and state (borrowed, writable for checkpoint loading).
float *ffs_dense_weights(ffs_dense_t *d);     // (units, in_dim)
float *ffs_dense_bias(ffs_dense_t *d);        // (units)
float *ffs_dense_avg_weights(ffs_dense_t *d); // NULL when eval_average is off
float *ffs_dense_avg_bias(ffs_dense_t *d);
// The averages start again from the weights (after loading weights that
// came without averages). No-op when eval_average is off.
void ffs_dense_restart_average(ffs_dense_t *d);
typedef struct {
  float *m_w, *m_b; // smoothed gradient (sgd) / first moment (adam)
  float *v_w, *v_b; // adam's second moment (NULL for sgd)
  float *g_w, *g_b; // gradient waiting for the step (g_w: adam only; sgd
                    // keeps W's in m_w)
} ffs_dense_opt_t;
ffs_dense_opt_t ffs_dense_opt(ffs_dense_t *d);
// Steps taken, and whether the smoothed gradient already holds the next
// step's decay (sgd), for checkpoints. Settle first.
long ffs_dense_steps(const ffs_dense_t *d);
int ffs_dense_m_open(const ffs_dense_t *d);
void ffs_dense_set_state(ffs_dense_t *d, long steps, int m_open);

// The checkpoint of a layer that is a dense block and nothing more
// (dp_layer, mirror_layer): its parameters (w, b); with eval_average their
// averages (w_avg, b_avg); the optimizer's state named for its kind
// (adam.m_w ... or sgd.m_w ...) and its scalars (*.state: steps, low and high
// 20 bits, and whether sgd's smoothed gradient is open). save settles first;
// meta: n_meta key/value pairs. load: a file without averages restarts them
// from the weights, one without this optimizer's state leaves it fresh.
// Both return 0, or -1 with the error in err.
int ffs_dense_save(ffs_dense_t *d, const char *path, const char *const *meta, int n_meta,
                   char *err, size_t errlen);
int ffs_dense_load(ffs_dense_t *d, const char *path, char *err, size_t errlen);

// The same for a layer of up to FFS_DENSE_CKPT_BLOCKS blocks in one file
// (mirror_layer's block and its label head): block k's tensors are named
// with prefix[k] in front ("" for the layer's own, "head." ...); every
// block's parameters are required, averages and optimizer state optional
// as one group each.
#define FFS_DENSE_CKPT_BLOCKS 2
int ffs_dense_save_blocks(ffs_dense_t *const *d, const char *const *prefix, int n_blocks,
                          const char *path, const char *const *meta, int n_meta, char *err,
                          size_t errlen);
int ffs_dense_load_blocks(ffs_dense_t *const *d, const char *const *prefix, int n_blocks,
                          const char *path, char *err, size_t errlen);

#endif
