// ffs_wiring: what the stages and the launcher ask a loaded topology about
// the graph: the endpoint of every channel, the next stage of the chain, the
// widest frame, the width of a feedback vector, and the ipc files a run
// leaves behind. The one place endpoint names are made: nothing else may
// rebuild them. The functions keep the ffs_topo_ prefix: they are questions
// asked of an ffs_topo_t, and never fail on a valid one.
#ifndef FFS_WIRING_H
#define FFS_WIRING_H

#include <stddef.h>

#include "ffs_topo.h"

typedef enum {
  FFS_CHAN_IN = 0, // a stage's forward input (PULL, bound by the receiver)
  FFS_CHAN_FB,     // a stage's feedback input (PULL, bound by the receiver)
  FFS_CHAN_REP,    // the readout's report input from stage `sub` (PULL)
  FFS_CHAN_CTL,    // the launcher's control socket (ROUTER); stage ignored
  FFS_CHAN_PEER,   // a shard's input for its siblings' partial sums (PULL)
} ffs_chan_t;

// Writes the endpoint of one channel into out (never longer than outlen-1):
//   ipc:    ipc://<run_dir>/<stage name>.in | .fb | .peer | .rep<sub> ; <run_dir>/ctl
//   inproc: inproc://<run_dir>/<same names>
//   tcp:    tcp://<host>:<port>, port = tcp_port for ctl, else
//           tcp_port + 1 + stage*FFS_TCP_PORTS_PER_STAGE + {in:0, fb:1, peer:2, rep:3+sub}
#define FFS_TCP_PORTS_PER_STAGE (3 + FFS_MAX_STAGES)
void ffs_topo_endpoint(const ffs_topo_t *t, const char *run_dir, int stage, ffs_chan_t chan,
                       int sub, char *out, size_t outlen);

// Removes every ipc socket file the stages of t may have bound in run_dir
// (all the names ffs_topo_endpoint can give there); missing files are fine.
// Does nothing for inproc and tcp. The folder itself is left to the caller.
void ffs_topo_remove_endpoints(const ffs_topo_t *t, const char *run_dir);

// Index of the first stage after stage i's shard group (the next stage of the
// chain; for an unsharded stage simply i + 1).
int ffs_topo_next(const ffs_topo_t *t, int i);

// The most rows any frame of this topology carries: a training batch (twice
// that with train.pairs, three times with train.triples), or data.classes
// candidate rows per evaluated sample.
int ffs_topo_max_rows(const ffs_topo_t *t);

// Width of the vectors stage `from` sends on a feedback edge: its units, or
// data.classes class probabilities for the readout.
int ffs_topo_feedback_cols(const ffs_topo_t *t, int from);

#endif
