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

// Writes the local endpoint of one channel into out (never longer than
// outlen-1): the name a stage binds for senders on its own host.
//   ipc:    ipc://<run_dir>/<stage name>.in | .fb | .peer | .rep<sub> ; <run_dir>/ctl
//   inproc: inproc://<run_dir>/<same names> (transport inproc: threads)
// tcp endpoints are not derived: a stage binds a free port and reports the
// endpoint it got (BOUND), and the launcher hands each sender its
// receivers' endpoints (WIRE). transport: tcp binds no local endpoint.
void ffs_topo_endpoint(const ffs_topo_t *t, const char *run_dir, int stage, ffs_chan_t chan,
                       int sub, char *out, size_t outlen);

// The key a channel goes by in an endpoint list: "in", "fb", "peer", "rep<sub>".
const char *ffs_chan_key(ffs_chan_t chan, int sub, char *out, size_t outlen);

// ---- endpoint lists (BOUND's and WIRE's eps) ----
// A list is space-separated KEY=ENDPOINT tokens; a key may appear more than
// once (a channel bound over ipc and tcp).

// Appends KEY=ep to list (cap bytes). 0, or -1 when it does not fit.
int ffs_eps_add(char *list, size_t cap, const char *key, const char *ep);
// The nth (from 0) endpoint of key in list, copied into out. 0, or -1 when
// there is no such one (or it does not fit outlen).
int ffs_eps_get(const char *list, const char *key, int nth, char *out, size_t outlen);
// Checks a list that came off a socket: every token KEY=SCHEME://REST with
// KEY of [a-z0-9], SCHEME ipc, inproc or tcp, REST printable, no token over
// FFS_EP_MAX - 1 bytes. 0, or -1 with the reason in why.
#define FFS_EP_MAX (FFS_PATH_MAX + 64)
int ffs_eps_check(const char *list, char *why, size_t whylen);

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

// Width of the vectors stage `from` sends on a feedback edge: its units,
// data.classes class probabilities for the readout, or, for a layer with a
// backward edge (ffs_kind_t.backward), its input's width.
int ffs_topo_feedback_cols(const ffs_topo_t *t, int from);

// ---- the graph of typed edges ----
// Every socket pair of a run is one edge: the receiver binds one input per
// kind of edge (per sub for reports), the sender connects one output per
// edge. Stages open their sockets by looping over their edges, never by
// asking their kind or position.
typedef enum {
  FFS_EDGE_DATA = 0,  // frames forward: the chain, and a layer to its side stages
  FFS_EDGE_REPORT,    // a layer's report to the readout (sub = its group)
  FFS_EDGE_FEEDBACK,  // a topology's feedback: edge, backward
  FFS_EDGE_PEER,      // a shard's partial sums to a sibling
} ffs_edge_type_t;
typedef enum {
  FFS_POLICY_BLOCK = 0, // a full queue makes the sender wait (backpressure); never drops
  FFS_POLICY_LATEST,    // never waits: when the receiver is full the vector is dropped
  FFS_POLICY_RELIABLE,  // never dropped, waits like block (lockstep top-down vectors)
} ffs_edge_policy_t;
typedef struct {
  ffs_edge_type_t type;
  ffs_edge_policy_t policy;
  int from, to; // stage indices
  int sub;      // the receiver's channel: a report's sending group; 0 otherwise
  int width;    // the widest row the edge carries (the receiver's limit)
  int hwm;      // queue length in messages, on both sides
} ffs_edge_t;
#define FFS_MAX_EDGES (FFS_MAX_STAGES * (FFS_MAX_SHARDS + 8) + FFS_MAX_FEEDBACK)

// Writes the topology's edges into out (at most cap; FFS_MAX_EDGES always
// suffice) in a fixed order: data, reports, peers, feedback, each by
// sender. Returns how many.
int ffs_topo_edges(const ffs_topo_t *t, ffs_edge_t *out, int cap);

// The stage that streams: the one no data edge enters (the source). The
// launcher sends it the phases.
int ffs_topo_streamer(const ffs_topo_t *t);
// Whether stage i sends reports to the readout: every ff_layer and every
// layer of twin pipelines; of a chain with backward edges, only its last
// layer (the class scores).
int ffs_topo_reports(const ffs_topo_t *t, int i);

#endif
