// ffs_stage: the one interface every stage kind implements, and the runtime
// that runs any stage: pin, open sockets, ready handshake, poll loop, stats,
// checkpoints, clean exit. A stage kind only says what to do with a frame or
// a control command; it never touches a socket directly (it calls ffs_io_*).
// The same code runs as a process (ipc/tcp) or as a thread (inproc).
#ifndef FFS_STAGE_H
#define FFS_STAGE_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "ffs_ctl.h"
#include "ffs_curve.h"
#include "ffs_frame.h"
#include "ffs_topo.h"
#include "ffs_wiring.h"

typedef struct ffs_io ffs_io_t; // a running stage's sockets and counters

// Everything a stage needs to start; owned by the caller, outlives the stage.
typedef struct {
  const ffs_topo_t *topo;
  int index;              // this stage's index in topo->stages
  const char *run_dir;    // endpoint namespace (see ffs_topo_endpoint)
  const char *out_dir;    // run output folder; checkpoints go to out_dir/ckpt
  void *zctx;             // ZeroMQ context (shared by threads in --threads mode)
  volatile sig_atomic_t *stop; // set asynchronously to end the stage
  int core;               // core to pin to (-1 = do not pin)
  int thread_mode;        // 1 = runs as a thread: pin the thread, not the process
  int resume;             // 1 = load out_dir/ckpt/<name>.safetensors at start
  const uint32_t *incarnations; // per stage index: times the launcher restarted
                                // it so far (NULL: none ever was)
  // many hosts (docs/MULTIHOST.md); all NULL / 0 for a one-host run
  const char *ctl_ep;     // the launcher's control endpoint (NULL: the local one,
                          // ffs_topo_endpoint's)
  const char *host;       // the host it runs on, as the run names it (NULL: its
                          // host name)
  const char *bind_addr;  // its inputs also bind tcp://bind_addr:PORT (NULL: no tcp)
  const ffs_curve_keys_t *keys; // the run's CURVE keys: every tcp socket and
                          // every socket of a networked run uses them (NULL: plaintext)
  int silent_s;           // the launcher unreachable this long x 3: checkpoint and
                          // stop (0: never)
} ffs_stage_env_t;

// Counters every stage keeps; the runtime sends them to the launcher.
typedef struct {
  uint64_t frames;     // frames handled (all channels)
  uint64_t bad_frames; // frames dropped: undecodable, wrong shape, non-finite
  uint64_t fb_frames;  // feedback vectors received
  uint64_t fb_sent;    // feedback vectors sent
  uint64_t fb_dropped; // feedback vectors dropped (receiver busy: latest wins)
  uint64_t shm_frames; // frames received through shared memory (ffs_shm.h)
  uint64_t samples;    // training rows handled (positive + negative)
  double busy_s;       // seconds inside frame handlers and pump
  double blocked_s;    // of which waiting on a full downstream queue
                       // (utilization = (busy - blocked) / wall)
  double cpu_s;        // CPU time of the stage's thread inside the same
                       // handlers (busy_s minus the time the OS ran others)
  double g_pos, g_neg; // mean goodness of the latest positive / negative frame
  uint64_t td_stale;   // recurrent: ticks computed without the previous tick's
                       // top-down vector (free-running, or a lockstep wait that timed out)
  uint64_t td_stale_ticks; // summed age of the top-down vectors used, in ticks beyond 1
  // readout, per phase mode (0 train, 1 eval), over the latest such phase:
  // end-to-end latency of a frame, from the source's emitting it to its last
  // layer's report joining here, and the transport's share of it per hop
  // ((latency - the compute the frame carries in `work`) / hops)
  double lat_p50_us[2], lat_p99_us[2], hop_p50_us[2];
  uint64_t lat_n[2];
  // train.mode: stream
  uint64_t in_dropped;  // source: samples its feed dropped (overflow: drop_oldest)
  uint64_t in_skipped;  // source: input refused (bad CSV rows, UDP garbage, bad frames)
  uint64_t preq_n, preq_err; // readout: labelled samples scored before learning, errors
  double preq_window;   // readout: accuracy over the latest train.window of them (-1 none)
  uint64_t published;   // readout: predictions published (out.publish)
  // dp_layer: its stash (frames kept until their feedback comes)
  uint64_t stash_max;     // most frames held at once
  uint64_t stash_bytes;   // memory the stash holds
  uint64_t stash_expired; // entries given up (no feedback within the wait)
  uint64_t fb_unknown;    // feedback for a frame not in the stash: dropped
} ffs_stage_stats_t;

// on_frame may return this for an input frame it cannot handle yet (lockstep:
// its top-down vector has not arrived). The runtime keeps the frame, stops
// reading the input, and offers the frame again after each feedback frame.
#define FFS_FRAME_DEFER 1

typedef struct ffs_stage_ops {
  const char *kind;
  // Builds the stage; NULL with a message in err on failure (e.g. bad data).
  void *(*create)(const ffs_stage_env_t *env, ffs_io_t *io, char *err, size_t errlen);
  // A decoded, shape-checked frame from channel chan (FFS_CHAN_IN / FB /
  // REP with sub = the reporting stage). Returns 0, -1 to drop it as bad, or
  // FFS_FRAME_DEFER (input channel only) to have it offered again later.
  int (*on_frame)(void *self, ffs_io_t *io, const ffs_frame_t *f, ffs_chan_t chan, int sub);
  // A control message from the launcher other than STOP / CKPT / LOST
  // (decoded and checked, ffs_ctl.h). Returns 0, or -1 when the kind does not
  // take it (logged). May be NULL.
  int (*on_control)(void *self, ffs_io_t *io, const ffs_ctl_msg_t *m);
  // Called when nothing else is pending; returns 1 while it has more work
  // (the source streams its epochs from here). May be NULL.
  int (*pump)(void *self, ffs_io_t *io);
  // Writes the stage's parameters to path (safetensors). May be NULL.
  int (*save)(void *self, const char *path, char *err, size_t errlen);
  // Loads the parameters from path. May be NULL.
  int (*load)(void *self, const char *path, char *err, size_t errlen);
  void (*destroy)(void **self_p);
} ffs_stage_ops_t;

// The ops table for a kind; NULL for an unknown kind.
const ffs_stage_ops_t *ffs_stage_ops(ffs_stage_kind_t kind);

// Runs stage env->index until STOP, the stop flag, or a fatal error.
// Returns 0 on a clean stop, -1 on failure (reported to the launcher too).
int ffs_stage_run(const ffs_stage_env_t *env);

// ---- what a stage may call from its callbacks ----

// Where ffs_io_send sends a frame.
typedef enum {
  FFS_OUT_FORWARD = 0, // the next stage (each of its shards): blocks for
                       // backpressure, never drops
  FFS_OUT_REPORT,      // the readout (a layer's report): blocks, never drops
  FFS_OUT_FEEDBACK,    // every outgoing feedback edge: never blocks; when a
                       // receiver is full the frame is dropped and counted.
                       // Exception: a lockstep recurrent topology's top-down
                       // edges (ff_layer to ff_layer) must not lose a vector
                       // and wait like a forward send (docs/ARCHITECTURE.md)
} ffs_out_t;
// Encodes the frame h with its per-row arrays (rows: roles, labels, cands,
// ids, each NULL = absent; NULL = none of them) and payload (rows, cols) and sends it to `out`. Frames
// of 64 KB and more leave without a copy (over ipc through shared memory);
// nothing of the caller's is kept. Returns 0 (also when `out` has no
// socket, e.g. the last layer's forward), or -1 when the stage is stopping
// or the frame is wider than this stage's outputs.
int ffs_io_send(ffs_io_t *io, ffs_out_t out, const ffs_frame_hdr_t *h, const ffs_frame_rows_t *rows,
                const float *payload);
// A frame made from the one being handled (in): of kind `kind`, rows x cols
// (none for a MARK), sent by this stage whole (no shard slice, aux 0, damp
// kept for a FEEDBACK only), its work_ns grown by the time since t_frame
// (when the frame came in); then as ffs_io_send. For the kinds that are one process a layer.
int ffs_io_send_from(ffs_io_t *io, ffs_out_t out, const ffs_frame_hdr_t *in, uint8_t kind,
                     uint32_t rows, uint32_t cols, const ffs_frame_rows_t *r, const float *payload,
                     double t_frame);
int ffs_io_n_feedback_out(const ffs_io_t *io);
// Sockets a forward frame goes to: 0 for the last ff_layer (the readout
// takes reports only), which then need not encode its forward frames.
int ffs_io_n_forward_out(const ffs_io_t *io);
// A shard of a sharded layer: sums v (n floats) over all shards of its layer
// for frame seq (an allreduce over the peer channels: v goes to every
// sibling, theirs come back). Every shard gets bit-identical sums. Returns 0,
// or -1 when the stage is stopping or a sibling lost this frame (then drop
// it). A no-op for an unsharded stage.
int ffs_io_allreduce(ffs_io_t *io, uint64_t seq, float *v, int n);
// Sends a control message to the launcher (SENT, TRAINED, RESULT, ...). A
// message that cannot be sent fails the stage (the launcher waits on it).
int ffs_io_send_ctl(ffs_io_t *io, const ffs_ctl_msg_t *m);
// Pauses (1) or resumes (0) reading the report channel of stage sub.
void ffs_io_pause_report(ffs_io_t *io, int sub, int paused);
// Writes a checkpoint now (the runtime names the file). Returns 0 or -1.
int ffs_io_checkpoint(ffs_io_t *io);
ffs_stage_stats_t *ffs_io_stats(ffs_io_t *io);
// Polls fd (readable = the stage has work for its pump) with the sockets, so
// a stage whose pump has nothing to do sleeps until then. -1 = none.
void ffs_io_watch_fd(ffs_io_t *io, int fd);
int ffs_io_stopping(const ffs_io_t *io);

// Monotonic clock in seconds.
double ffs_now(void);
// CPU time of the calling thread in seconds.
double ffs_thread_cpu(void);

#endif
