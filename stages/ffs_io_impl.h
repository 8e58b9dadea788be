// ffs_io_impl: the inside of ffs_io_t, shared by the stage runtime's four
// files, each using only those below it: ffs_io.c (sending, the encode
// buffers, bad-frame counts, the heartbeat), ffs_shards.c (gathering a
// sharded layer's slices, its partial sums), ffs_sockets.c (binding,
// wiring, CURVE) and ffs_stage.c (receiving, control, the loop). Stage
// kinds never include this; they see ffs_stage.h only.
#ifndef FFS_IO_IMPL_H
#define FFS_IO_IMPL_H

#include <stdatomic.h>
#include <zmq.h>

#include "ffs_shm.h"
#include "ffs_stage.h"

// Sharded frames being gathered at once. The shards compute within one frame
// of each other (ffs_io_allreduce), but each shard's slices reach the
// receiver through a pipe of their own: while one pipe is momentarily empty
// the receiver keeps reading the others, up to their send and receive
// high-water marks and the kernel's socket buffer ahead.
#define S_ASM_SLOTS(t) (2 * (t)->hwm_frames + 8)
#define S_PEER_WAIT_S 10.0 // longest wait for a sibling shard's partial sums

#define S_SHM_WAIT_S 1.0 // longest wait for a shared encode buffer to come
                         // free before a frame goes by copy instead
#define S_SLOT_REP (FFS_SHM_SLOTS - 1) // reader slot of the report channel; the
                                       // forward sockets take 0 .. FFS_MAX_SHARDS + 7
_Static_assert(FFS_MAX_SHARDS + 8 < S_SLOT_REP, "reader slots: shards, 8 side stages, the report");
#define S_SEND_BUFS 16 // encode buffers ZeroMQ may hold at once (>= the
                       // frames queued on a stage's outgoing sockets)
// outputs a stage may have: forward (shards and side stages), report, peers, feedback
#define S_MAX_OUT (FFS_MAX_SHARDS + 8 + 1 + FFS_MAX_SHARDS + FFS_MAX_FEEDBACK)

// An encode buffer lent to ZeroMQ (ffs_io_send). state: S_BUF_FREE,
// S_BUF_SENT (ZeroMQ holds it; its free callback sets it free again), or
// S_BUF_ORPHAN (the io closed while ZeroMQ held it: the callback frees it).
enum { S_BUF_FREE = 0, S_BUF_SENT, S_BUF_ORPHAN };
typedef struct {
  atomic_int state;
  size_t cap;
  uint8_t data[];
} s_send_buf_t;

// A frame being gathered from the slices of a sharded layer.
typedef struct {
  int used;
  ffs_chan_t chan;
  int sub;
  ffs_frame_hdr_t h;     // of the first slice
  uint32_t mask;         // shards seen
  uint32_t col0[FFS_FRAME_MAX_SHARDS], cols[FFS_FRAME_MAX_SHARDS];
  uint32_t aux;          // leading goodness columns (from the slice at col0 0)
  int has_roles, has_labels, has_cands, has_ids;
  uint32_t n_role[FFS_N_ROW_ROLES];
  uint8_t *roles, *labels, *cands, *ids; // (max_rows) each, ids (4 * max_rows)
  uint8_t *data;         // (max_rows, stride) float32 LE, slices at their col0
  uint32_t stride;       // columns per row in data (the channel's max)
} s_asm_t;

// Partial sums a sibling shard sent (ffs_io_allreduce); two per sibling,
// since a sibling may already be one frame ahead.
typedef struct {
  int valid;
  uint64_t seq;
  uint32_t n;
  float *v;
} s_pend_t;

struct ffs_io {
  const ffs_stage_env_t *env;
  const ffs_stage_ops_t *ops;
  void *self;
  void *ctl;                          // DEALER to the launcher
  void *ctl_mon;                      // PAIR: ctl's connection events (NULL: not watched)
  double ctl_down_since;              // ... the launcher unreachable since (0: reachable)
  int launcher_lost;                  // ... too long: the stage checkpoints and stops
  ffs_zap_t *zap;                     // CURVE: the ZAP handler of its inputs (NULL: none)
  char bound_eps[FFS_CTL_EPS_MAX];    // its inputs' endpoints (BOUND)
  struct {
    int edge;                         // its index in ffs_topo_edges' order
    void *sock;                       // PUSH (also in fwd, rep, peer_out or fb_out)
    char ep[FFS_EP_MAX];              // connected to ("": not yet)
  } out[S_MAX_OUT];
  int n_out;
  int wired;                          // the first WIRE came: outputs connected
  double t_start, t_stats;            // the loop's start; the latest STATS
  void *in;                           // PULL: forward input (NULL for source/readout)
  void *fb_in;                        // PULL: feedback input (NULL when none)
  void *fwd[FFS_MAX_SHARDS + 8];      // PUSH: the next stage's input (each shard's),
                                      // then each side stage's that takes our frames
  int n_fwd;                          // 0 at the end of the chain
  void *rep;                          // PUSH: the readout's report input (layers)
  void *rep_in[FFS_MAX_STAGES];       // PULL: readout's report inputs, by stage
  int rep_paused[FFS_MAX_STAGES];
  int watch_fd;                       // a stage's own fd polled with the sockets (a
                                      // source's feed: samples wait), -1 none
  void *fb_out[FFS_MAX_FEEDBACK];     // PUSH: outgoing feedback edges
  int fb_reliable[FFS_MAX_FEEDBACK];  // 1 = lockstep top-down edge: never drop
  int n_fb_out;
  void *peer_in;                      // PULL: a shard's siblings' partial sums
  void *peer_out[FFS_MAX_SHARDS];     // PUSH: to each sibling (NULL for itself)
  s_pend_t pend[FFS_MAX_SHARDS][2];
  float *peer_sum;                    // allreduce scratch
  uint8_t *peer_buf;                  // allreduce encode buffer
  char ctl_failed[640];               // a control line the launcher must get could
                                      // not be sent: the stage fails with this
  s_send_buf_t *send_buf[S_SEND_BUFS]; // encode buffers for zero-copy sends
  uint8_t *enc_buf;                   // encode buffer of the frames that are copied
  size_t enc_cap;                     // ... and the size of every encode buffer: the
                                      // largest frame this stage sends
  int use_shm;                        // transport ipc with shm: encode buffers are
                                      // shared memory, descriptors go over ZeroMQ
                                      // (0 again if opening one ever fails)
  ffs_shm_buf_t shm[S_SEND_BUFS];     // ... those buffers (fd -1 until first use)
  int slot_stage[FFS_SHM_SLOTS];      // ... reader slot -> the stage it sends to
                                      // (fwd[k]: slot k; rep: S_SLOT_REP), -1 none
  uint32_t inc[FFS_MAX_STAGES];       // each stage's incarnation (restarts) as known
                                      // here: descriptors carry it, LOST updates it
  int n_shm;                          // ... of which it uses 2 x hwm_frames + 2
  uint64_t shm_sent[S_SEND_BUFS];     // ... when each last went out (a frame count)
  uint64_t shm_count;
  int shm_gave_up;                    // none came free in S_SHM_WAIT_S: copies
                                      // without waiting until one is free again
  int shm_warned;
  ffs_shm_maps_t *shm_maps;           // receiving: senders' buffers mapped (ipc only)
  s_asm_t *asm_;                      // (n_asm) slots, their buffers allocated on first use
  int n_asm;
  ffs_frame_t gathered;               // the frame ffs_io_gather completed last
  zmq_msg_t held;                     // an input frame the stage deferred
  ffs_frame_t held_f;                 // ... decoded (borrows from held)
  int holding;
  ffs_frame_limits_t lim_in, lim_fb, lim_rep[FFS_MAX_STAGES];
  ffs_stage_stats_t stats;
  int bad_logged;
  char ckpt_path[FFS_PATH_MAX + 64];
};

// ---- ffs_io.c ----

// STATS to the launcher: every FFS_CTL_STATS_EVERY_S (or now when force), also
// while the stage waits on a full queue or a sibling shard, so the launcher
// hears from every stage that is alive; and the launcher watch (an
// unreachable launcher makes the stage stop). Never blocks unless force.
void ffs_io_tick(ffs_io_t *io, int force);

// Counts a bad frame on chan, and logs the first few with why.
void ffs_io_bad_frame(ffs_io_t *io, const char *chan, const char *why);
// Blocks until sent (backpressure); 0, or -1 when stopping or on error.
int ffs_io_send_blocking(ffs_io_t *io, void *sock, const void *buf, size_t len);
// The launcher restarted stage `stage` as incarnation inc (its LOST line).
void ffs_io_on_lost(ffs_io_t *io, int stage, uint32_t inc);
// At close: the encode buffers ZeroMQ no longer holds are freed.
void ffs_io_send_bufs_close(ffs_io_t *io);

// ---- ffs_shards.c ----

// Shards of the layer that sends on chan/sub: 1 = whole frames only.
int ffs_io_expected_shards(const ffs_io_t *io, ffs_chan_t chan, int sub);
// Adds slice f to its frame. Returns the whole frame once every shard's
// slice is in and they tile its columns exactly (valid until the next
// call), else NULL (waiting for more, or dropped as bad and counted).
const ffs_frame_t *ffs_io_gather(ffs_io_t *io, const ffs_frame_t *f, const ffs_frame_limits_t *lim,
                                 ffs_chan_t chan, int sub, const char *chan_name);

// ---- ffs_sockets.c ----

// The buffers, the control channel, the inputs bound (io->bound_eps lists
// them) and the outputs made, not connected. 0 or -1 with err set.
int ffs_io_open(ffs_io_t *io, char *err, size_t errlen);
// Connects the outputs to the endpoints eps names (a WIRE; again after a
// receiver's restart: only changed ones). shm: frames may use shared
// memory (decided at the first WIRE). 0 or -1 with err set.
int ffs_io_wire(ffs_io_t *io, const char *eps, int shm, char *err, size_t errlen);
// Closes every socket and frees the buffers.
void ffs_io_close(ffs_io_t *io);

#endif
