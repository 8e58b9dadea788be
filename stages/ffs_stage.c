// ffs_stage: the runtime under every stage kind. Read top to bottom: pin,
// sockets, create the stage, READY, poll loop (control, data, feedback,
// reports, pump), final checkpoint, BYE. Bad frames are counted, logged a
// few times, and dropped; the loop never exits because of a peer's bytes.
// Sharded layers' gathering and partial sums are in ffs_shards.c.
#include "ffs_stage.h"

#include <assert.h>
#include <cblas.h>
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "ffs_io_impl.h"
#include "ffs_kind.h"
#include "ffs_log.h"
#include "ffs_pin.h"


#define S_STATS_EVERY_S 0.5

const ffs_stage_ops_t *ffs_stage_ops(ffs_stage_kind_t kind) {
  const ffs_kind_t *k = ffs_kind_of((int)kind);
  return k ? k->ops : NULL;
}

// ---- sockets ----

static void *s_socket(ffs_io_t *io, int type, int hwm, size_t max_msg) {
  void *s = zmq_socket(io->env->zctx, type);
  if (!s) return NULL;
  int linger = 0;
  zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
  if (hwm > 0) {
    zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof hwm);
  }
  if (max_msg > 0) {
    int64_t mx = (int64_t)max_msg;
    zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &mx, sizeof mx);
  }
  int timeout_ms = 100; // blocking sends wake up to check the stop flag
  zmq_setsockopt(s, ZMQ_SNDTIMEO, &timeout_ms, sizeof timeout_ms);
  return s;
}

static int s_bind(void *s, const char *ep, char *err, size_t errlen) {
  if (zmq_bind(s, ep) == 0) return 0;
  snprintf(err, errlen, "cannot bind %s: %s", ep, zmq_strerror(zmq_errno()));
  return -1;
}

static int s_connect(void *s, const char *ep, char *err, size_t errlen) {
  if (zmq_connect(s, ep) == 0) return 0;
  snprintf(err, errlen, "cannot connect to %s: %s", ep, zmq_strerror(zmq_errno()));
  return -1;
}

// Returns -1 with err set to ZeroMQ's last error (a socket could not be made).
static int s_zfail(char *err, size_t errlen) {
  snprintf(err, errlen, "zmq_socket: %s", zmq_strerror(zmq_errno()));
  return -1;
}

// The buffers every stage has: the sharded frames being gathered, and one
// encode buffer that fits every frame the stage sends (its output, a
// layer's report with the goodness column, its input width for the
// recurrent form's state, or the readout's class probabilities).
static int s_open_buffers(ffs_io_t *io, char *err, size_t errlen) {
  const ffs_topo_t *t = io->env->topo;
  const ffs_stage_cfg_t *me = &t->stages[io->env->index];
  io->asm_ = calloc((size_t)S_ASM_SLOTS(t), sizeof *io->asm_);
  io->n_asm = io->asm_ ? S_ASM_SLOTS(t) : 0;
  int cols = me->out_dim + 1;
  if (me->in_dim + me->td_dim > cols) cols = me->in_dim + me->td_dim;
  if (ffs_topo_feedback_cols(t, io->env->index) > cols)
    cols = ffs_topo_feedback_cols(t, io->env->index);
  io->enc_cap = ffs_frame_encoded_max((uint32_t)ffs_topo_max_rows(t), (uint32_t)cols);
  io->enc_buf = malloc(io->enc_cap);
  if (io->asm_ && io->enc_buf) return 0;
  snprintf(err, errlen, "out of memory");
  return -1;
}

// The launcher's control channel: a DEALER named after the stage.
static int s_open_control(ffs_io_t *io, char *err, size_t errlen) {
  const ffs_stage_env_t *env = io->env;
  const char *name = env->topo->stages[env->index].name;
  char ep[FFS_PATH_MAX + 64];
  if (!(io->ctl = s_socket(io, ZMQ_DEALER, 0, FFS_CTL_MSG_MAX))) return s_zfail(err, errlen);
  zmq_setsockopt(io->ctl, ZMQ_ROUTING_ID, name, strlen(name));
  int linger = 1000; // let READY/STATS/BYE reach the launcher
  zmq_setsockopt(io->ctl, ZMQ_LINGER, &linger, sizeof linger);
  ffs_topo_endpoint(env->topo, env->run_dir, 0, FFS_CHAN_CTL, 0, ep, sizeof ep);
  return s_connect(io->ctl, ep, err, errlen);
}

// A shard's scratch for its siblings' partial sums (ffs_io_allreduce).
static int s_open_peer_sums(ffs_io_t *io, char *err, size_t errlen) {
  const ffs_stage_cfg_t *me = &io->env->topo->stages[io->env->index];
  if (me->n_shards <= 1) return 0;
  uint32_t n = (uint32_t)ffs_topo_max_rows(io->env->topo) + 2;
  io->peer_sum = malloc(sizeof(float) * n);
  io->peer_buf = malloc(ffs_frame_encoded_max(1, n));
  int ok = io->peer_sum && io->peer_buf;
  for (int k = 0; k < me->n_shards; k++)
    for (int j = 0; j < 2; j++) ok &= (io->pend[k][j].v = malloc(sizeof(float) * n)) != NULL;
  if (ok) return 0;
  snprintf(err, errlen, "out of memory");
  return -1;
}

// The inputs this stage binds: one per kind of edge that ends here (one per
// sending group for reports), each as wide as the widest edge into it and
// with the longest queue any of them asks for.
static int s_bind_inputs(ffs_io_t *io, const ffs_edge_t *e, int n, char *err, size_t errlen) {
  const ffs_stage_env_t *env = io->env;
  const ffs_topo_t *t = env->topo;
  uint32_t max_rows = (uint32_t)ffs_topo_max_rows(t);
  char ep[FFS_PATH_MAX + 64];
  int width[4] = {0}, hwm[4] = {0};
  for (int k = 0; k < n; k++) {
    if (e[k].to != env->index) continue;
    if (e[k].width > width[e[k].type]) width[e[k].type] = e[k].width;
    if (e[k].hwm > hwm[e[k].type]) hwm[e[k].type] = e[k].hwm;
    if (e[k].type != FFS_EDGE_REPORT || io->rep_in[e[k].sub]) continue;
    uint32_t cols = (uint32_t)e[k].width; // a report channel per sending group
    io->lim_rep[e[k].sub] = (ffs_frame_limits_t){max_rows, 0, cols};
    io->rep_in[e[k].sub] = s_socket(io, ZMQ_PULL, e[k].hwm, ffs_frame_encoded_max(max_rows, cols));
    if (!io->rep_in[e[k].sub]) return s_zfail(err, errlen);
    ffs_topo_endpoint(t, env->run_dir, env->index, FFS_CHAN_REP, e[k].sub, ep, sizeof ep);
    if (s_bind(io->rep_in[e[k].sub], ep, err, errlen)) return -1;
  }
  struct {
    ffs_edge_type_t type;
    ffs_chan_t chan;
    void **sock;
    ffs_frame_limits_t *lim; // NULL: the peer channel checks its own
    int exact;               // data: rows exactly as wide as the input
  } in[] = {{FFS_EDGE_DATA, FFS_CHAN_IN, &io->in, &io->lim_in, 1},
            {FFS_EDGE_FEEDBACK, FFS_CHAN_FB, &io->fb_in, &io->lim_fb, 0},
            {FFS_EDGE_PEER, FFS_CHAN_PEER, &io->peer_in, NULL, 0}};
  for (size_t k = 0; k < sizeof in / sizeof in[0]; k++) {
    uint32_t w = (uint32_t)width[in[k].type];
    if (!w) continue;
    uint32_t rows = in[k].type == FFS_EDGE_PEER ? 1 : max_rows;
    if (in[k].lim) *in[k].lim = (ffs_frame_limits_t){rows, in[k].exact ? w : 0, w};
    *in[k].sock = s_socket(io, ZMQ_PULL, hwm[in[k].type], ffs_frame_encoded_max(rows, w));
    if (!*in[k].sock) return s_zfail(err, errlen);
    ffs_topo_endpoint(t, env->run_dir, env->index, in[k].chan, 0, ep, sizeof ep);
    if (s_bind(*in[k].sock, ep, err, errlen)) return -1;
  }
  return 0;
}

// The outputs: one PUSH per edge that starts here, connected to the
// receiver's input for that kind of edge.
static int s_connect_outputs(ffs_io_t *io, const ffs_edge_t *e, int n, char *err, size_t errlen) {
  const ffs_stage_env_t *env = io->env;
  const ffs_topo_t *t = env->topo;
  char ep[FFS_PATH_MAX + 64];
  for (int k = 0; k < n; k++) {
    if (e[k].from != env->index) continue;
    void *s = s_socket(io, ZMQ_PUSH, e[k].hwm, 0);
    if (!s) return s_zfail(err, errlen);
    ffs_chan_t chan = FFS_CHAN_IN;
    switch (e[k].type) {
    case FFS_EDGE_DATA:
      io->slot_stage[io->n_fwd] = e[k].to; // its shared buffers' reader slot
      io->fwd[io->n_fwd++] = s;
      break;
    case FFS_EDGE_REPORT:
      io->slot_stage[S_SLOT_REP] = e[k].to;
      io->rep = s, chan = FFS_CHAN_REP;
      break;
    case FFS_EDGE_PEER:
      io->peer_out[t->stages[e[k].to].shard] = s, chan = FFS_CHAN_PEER;
      break;
    case FFS_EDGE_FEEDBACK:
      io->fb_reliable[io->n_fb_out] = e[k].policy == FFS_POLICY_RELIABLE;
      io->fb_out[io->n_fb_out++] = s, chan = FFS_CHAN_FB;
      break;
    }
    ffs_topo_endpoint(t, env->run_dir, e[k].to, chan, e[k].sub, ep, sizeof ep);
    if (s_connect(s, ep, err, errlen)) return -1;
  }
  return 0;
}

// Every socket but control: looping over the stage's edges.
static int s_open_edges(ffs_io_t *io, char *err, size_t errlen) {
  ffs_edge_t edges[FFS_MAX_EDGES];
  int n = ffs_topo_edges(io->env->topo, edges, FFS_MAX_EDGES);
  if (s_open_peer_sums(io, err, errlen) < 0) return -1;
  if (s_bind_inputs(io, edges, n, err, errlen) < 0) return -1;
  return s_connect_outputs(io, edges, n, err, errlen);
}

static int s_open_sockets(ffs_io_t *io, char *err, size_t errlen) {
  if (s_open_buffers(io, err, errlen) < 0 || s_open_control(io, err, errlen) < 0 ||
      s_open_edges(io, err, errlen) < 0)
    return -1;
  return 0;
}

static void s_close_sockets(ffs_io_t *io) {
  void **all[] = {&io->ctl, &io->in, &io->fb_in, &io->rep, &io->peer_in};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
    if (*all[i]) {
      zmq_close(*all[i]);
      *all[i] = NULL;
    }
  for (int i = 0; i < FFS_MAX_STAGES; i++)
    if (io->rep_in[i]) zmq_close(io->rep_in[i]), io->rep_in[i] = NULL;
  for (int k = 0; k < io->n_fb_out; k++) zmq_close(io->fb_out[k]);
  io->n_fb_out = 0;
  for (int k = 0; k < io->n_fwd; k++) zmq_close(io->fwd[k]);
  io->n_fwd = 0;
  for (int k = 0; k < FFS_MAX_SHARDS; k++) {
    if (io->peer_out[k]) zmq_close(io->peer_out[k]), io->peer_out[k] = NULL;
    free(io->pend[k][0].v), free(io->pend[k][1].v);
  }
  free(io->peer_sum), free(io->peer_buf);
  ffs_io_send_bufs_close(io);
  free(io->enc_buf), io->enc_buf = NULL;
  for (int k = 0; k < io->n_asm; k++) {
    s_asm_t *a = &io->asm_[k];
    free(a->roles), free(a->labels), free(a->cands), free(a->ids), free(a->data);
  }
  free(io->asm_), io->asm_ = NULL, io->n_asm = 0;
}

int ffs_io_send_ctl(ffs_io_t *io, const ffs_ctl_msg_t *m) {
  uint8_t buf[4096]; // the largest message a stage sends (a RESULT) takes < 3 KB
  size_t len = ffs_ctl_encode(buf, sizeof buf, m);
  if (len && ffs_io_send_blocking(io, io->ctl, buf, len) == 0) return 0;
  // the launcher waits on these messages (SENT, TRAINED, RESULT): losing one
  // would stall the run, so the stage fails instead, saying which
  if (!ffs_io_stopping(io) && !io->ctl_failed[0]) {
    char line[400];
    snprintf(io->ctl_failed, sizeof io->ctl_failed, "cannot send '%s' to the launcher: %s",
             ffs_ctl_str(m, line, sizeof line), len ? zmq_strerror(zmq_errno()) : "too long");
  }
  return -1;
}

void ffs_io_pause_report(ffs_io_t *io, int sub, int paused) {
  assert(sub >= 0 && sub < FFS_MAX_STAGES);
  io->rep_paused[sub] = paused;
}

void ffs_io_watch_fd(ffs_io_t *io, int fd) { io->watch_fd = fd; }

ffs_stage_stats_t *ffs_io_stats(ffs_io_t *io) { return &io->stats; }

int ffs_io_checkpoint(ffs_io_t *io) {
  if (!io->ops->save || !io->ckpt_path[0]) return 0;
  char err[512];
  if (io->ops->save(io->self, io->ckpt_path, err, sizeof err) < 0) {
    ffs_error("checkpoint failed: %s", err);
    return -1;
  }
  return 0;
}

// ---- receiving ----

// Offers decoded frame f to the stage. Returns what on_frame returned.
static int s_dispatch(ffs_io_t *io, const ffs_frame_t *f, ffs_chan_t chan, int sub,
                      const char *chan_name) {
  double t0 = ffs_now(), c0 = ffs_thread_cpu();
  int rc = io->ops->on_frame(io->self, io, f, chan, sub);
  if (rc == FFS_FRAME_DEFER && chan != FFS_CHAN_IN) rc = -1; // only input frames may wait
  if (rc < 0)
    ffs_io_bad_frame(io, chan_name, "rejected by the stage (wrong shape, kind or non-finite values)");
  else if (rc == 0)
    io->stats.frames++;
  io->stats.busy_s += ffs_now() - t0;
  io->stats.cpu_s += ffs_thread_cpu() - c0;
  return rc;
}

// The hint is the buffer's header (mapped at a page boundary) with the
// reader's slot in its low bits.
static void s_shm_msg_free(void *data, void *hint) {
  (void)data;
  uintptr_t v = (uintptr_t)hint;
  ffs_shm_release((ffs_shm_hdr_t *)(v & ~(uintptr_t)(FFS_SHM_SLOTS - 1)),
                  (int)(v & (FFS_SHM_SLOTS - 1)));
}

// Turns msg, a shared-memory descriptor, into a message over the frame's
// bytes in the sender's buffer, handed back when the message is closed.
static int s_shm_msg(ffs_io_t *io, zmq_msg_t *msg, char *why, size_t whylen) {
  if (!io->shm_maps) {
    snprintf(why, whylen, "a shared-memory frame descriptor, but the transport is not ipc");
    return -1;
  }
  uint8_t *data;
  size_t len;
  ffs_shm_hdr_t *h;
  int slot;
  uint32_t inc = io->inc[io->env->index];
  if (ffs_shm_resolve(io->shm_maps, zmq_msg_data(msg), zmq_msg_size(msg), inc, &data, &len, &h,
                      &slot, why, whylen) < 0)
    return -1;
  assert(((uintptr_t)h & (FFS_SHM_SLOTS - 1)) == 0);
  zmq_msg_close(msg);
  if (zmq_msg_init_data(msg, data, len, s_shm_msg_free, (void *)((uintptr_t)h | (uintptr_t)slot)) <
      0) {
    ffs_shm_release(h, slot);
    zmq_msg_init(msg);
    snprintf(why, whylen, "zmq_msg_init_data: %s", zmq_strerror(zmq_errno()));
    return -1;
  }
  io->stats.shm_frames++;
  return 0;
}

// Receives one message from sock (non-blocking), decodes and dispatches it.
// An input frame the stage defers is kept in io->held.
static void s_recv_one(ffs_io_t *io, void *sock, const ffs_frame_limits_t *lim, ffs_chan_t chan,
                       int sub, const char *chan_name) {
  zmq_msg_t msg;
  zmq_msg_init(&msg);
  if (zmq_msg_recv(&msg, sock, ZMQ_DONTWAIT) < 0) {
    zmq_msg_close(&msg);
    return;
  }
  ffs_frame_t f;
  char why[256];
  if (ffs_shm_is_desc(zmq_msg_data(&msg), zmq_msg_size(&msg)) &&
      s_shm_msg(io, &msg, why, sizeof why) < 0) {
    ffs_io_bad_frame(io, chan_name, why);
    zmq_msg_close(&msg);
    return;
  }
  if (ffs_frame_decode(&f, zmq_msg_data(&msg), zmq_msg_size(&msg), lim, why, sizeof why) < 0) {
    ffs_io_bad_frame(io, chan_name, why);
  } else if (f.h.kind == FFS_FRAME_PARTIAL) {
    ffs_io_bad_frame(io, chan_name, "partial sums belong on a shard's peer channel");
  } else if (f.h.nshards > 1 || ffs_io_expected_shards(io, chan, sub) > 1) {
    const ffs_frame_t *whole = ffs_io_gather(io, &f, lim, chan, sub, chan_name);
    if (whole && s_dispatch(io, whole, chan, sub, chan_name) == FFS_FRAME_DEFER)
      ffs_io_bad_frame(io, chan_name, "a gathered frame cannot be deferred");
  } else if (s_dispatch(io, &f, chan, sub, chan_name) == FFS_FRAME_DEFER) {
    zmq_msg_init(&io->held);
    zmq_msg_move(&io->held, &msg);
    // decode again: a very small message lives inside zmq_msg_t and moved
    io->holding = ffs_frame_decode(&io->held_f, zmq_msg_data(&io->held), zmq_msg_size(&io->held),
                                   lim, why, sizeof why) == 0;
    if (!io->holding) zmq_msg_close(&io->held);
  }
  zmq_msg_close(&msg);
}

// Offers the held input frame again (after feedback arrived, or a timeout).
static void s_retry_held(ffs_io_t *io) {
  if (!io->holding || s_dispatch(io, &io->held_f, FFS_CHAN_IN, 0, "input") == FFS_FRAME_DEFER)
    return;
  zmq_msg_close(&io->held);
  io->holding = 0;
}

// Handles one control message. Returns 1 when the stage must stop. A
// malformed one is logged and ignored.
static int s_on_control(ffs_io_t *io) {
  uint8_t buf[1024]; // the launcher's messages take a few dozen bytes
  int n = zmq_recv(io->ctl, buf, sizeof buf, ZMQ_DONTWAIT);
  if (n < 0) return 0;
  ffs_ctl_msg_t m;
  char why[256], line[256];
  if (n > (int)sizeof buf) {
    ffs_warn("control message of %d bytes refused (at most %zu)", n, sizeof buf);
    return 0;
  }
  if (ffs_ctl_decode(&m, buf, (size_t)n, why, sizeof why) < 0) {
    ffs_warn("control message refused: %s", why);
    return 0;
  }
  switch (m.type) {
  case FFS_CTL_STOP: return 1;
  case FFS_CTL_CKPT: ffs_io_checkpoint(io); return 0;
  case FFS_CTL_LOST:
    if (m.lost.incarnation >= 0) ffs_io_on_lost(io, m.lost.stage, (uint32_t)m.lost.incarnation);
    return 0;
  default:
    if (!io->ops->on_control || io->ops->on_control(io->self, io, &m) < 0)
      ffs_warn("control message not understood: '%s'", ffs_ctl_str(&m, line, sizeof line));
    return 0;
  }
}

static void s_send_stats(ffs_io_t *io, double wall_s) {
  const ffs_stage_stats_t *s = &io->stats;
  ffs_ctl_msg_t m = {.type = FFS_CTL_STATS};
  m.stats.frames = s->frames, m.stats.bad = s->bad_frames, m.stats.samples = s->samples;
  m.stats.busy = s->busy_s, m.stats.blocked = s->blocked_s, m.stats.cpu = s->cpu_s;
  m.stats.wall = wall_s, m.stats.gpos = s->g_pos, m.stats.gneg = s->g_neg;
  m.stats.fbr = s->fb_frames, m.stats.fbs = s->fb_sent, m.stats.fbd = s->fb_dropped;
  m.stats.tds = s->td_stale, m.stats.tdk = s->td_stale_ticks, m.stats.shm = s->shm_frames;
  m.stats.l50 = s->lat_p50_us[0], m.stats.l99 = s->lat_p99_us[0], m.stats.h50 = s->hop_p50_us[0];
  m.stats.ln = s->lat_n[0];
  m.stats.e50 = s->lat_p50_us[1], m.stats.e99 = s->lat_p99_us[1], m.stats.eh50 = s->hop_p50_us[1];
  m.stats.en = s->lat_n[1];
  m.stats.drop = s->in_dropped, m.stats.skip = s->in_skipped;
  m.stats.pn = s->preq_n, m.stats.pe = s->preq_err, m.stats.pw = s->preq_window;
  m.stats.pub = s->published;
  ffs_io_send_ctl(io, &m);
}

// ---- the loop ----

// Frames of batch 100 are 300-400 KB, over glibc's threshold for serving an
// allocation with its own mmap: every frame ZeroMQ received or sent would be
// mapped, zeroed page by page by the kernel and unmapped again (perf showed
// clear_page_erms in every stage and I/O thread). Keep freed memory instead.
static void s_keep_freed_memory(void) {
  mallopt(M_MMAP_THRESHOLD, 32 << 20); // glibc's largest; bigger blocks still map
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
  mallopt(M_TOP_PAD, 16 << 20);
}

// READY: the stage's sockets are bound and connected; it may be streamed to.
static void s_send_ready(ffs_io_t *io) {
  ffs_ctl_msg_t m = {.type = FFS_CTL_READY};
  m.ready.core = io->env->core, m.ready.pid = (int32_t)getpid();
  // the kernels OpenBLAS chose when it loaded
  snprintf(m.ready.blas, sizeof m.ready.blas, "%.15s", openblas_get_corename());
  ffs_io_send_ctl(io, &m);
}

// ERROR: the stage failed, and why (without waiting: it is on its way out).
static void s_send_error(ffs_io_t *io, const char *err) {
  ffs_ctl_msg_t m = {.type = FFS_CTL_ERROR};
  snprintf(m.error.text, sizeof m.error.text, "%s", err);
  uint8_t buf[FFS_CTL_TEXT_MAX + 64];
  size_t len = ffs_ctl_encode(buf, sizeof buf, &m);
  if (len) zmq_send(io->ctl, buf, len, ZMQ_DONTWAIT);
}

// Waits for the control, input, feedback and report sockets (not at all
// while pumping) and handles what arrived; *stopping is set on STOP.
// Returns 0, or -1 with err set when polling fails.
static int s_poll_once(ffs_io_t *io, int pumping, int *stopping, char *err, size_t errlen) {
  const ffs_topo_t *t = io->env->topo;
  zmq_pollitem_t items[5 + FFS_MAX_STAGES];
  int who[5 + FFS_MAX_STAGES], n = 0;
  items[n] = (zmq_pollitem_t){io->ctl, 0, ZMQ_POLLIN, 0}, who[n++] = -1;
  // the stage's own fd only wakes the poll: its pump reads what is there
  if (io->watch_fd >= 0)
    items[n] = (zmq_pollitem_t){NULL, io->watch_fd, ZMQ_POLLIN, 0}, who[n++] = -4;
  if (io->in && !io->holding) items[n] = (zmq_pollitem_t){io->in, 0, ZMQ_POLLIN, 0}, who[n++] = -2;
  if (io->fb_in) items[n] = (zmq_pollitem_t){io->fb_in, 0, ZMQ_POLLIN, 0}, who[n++] = -3;
  for (int i = 0; i < t->n_stages; i++)
    if (io->rep_in[i] && !io->rep_paused[i])
      items[n] = (zmq_pollitem_t){io->rep_in[i], 0, ZMQ_POLLIN, 0}, who[n++] = i;
  // a held frame waits for feedback, but is retried every 10 ms regardless
  // (the stage decides when waiting longer is pointless)
  if (zmq_poll(items, n, pumping ? 0 : io->holding ? 10 : 100) < 0 && zmq_errno() != EINTR) {
    snprintf(err, errlen, "zmq_poll: %s", zmq_strerror(zmq_errno()));
    return -1;
  }
  for (int k = 0; k < n; k++) {
    if (!(items[k].revents & ZMQ_POLLIN)) continue;
    if (who[k] == -4) continue;
    if (who[k] == -1) *stopping = s_on_control(io);
    else if (who[k] == -2) s_recv_one(io, io->in, &io->lim_in, FFS_CHAN_IN, 0, "input");
    else if (who[k] == -3) {
      // drain what has arrived, then give a held frame its chance
      for (int burst = 0; burst < 64 && !ffs_io_stopping(io); burst++) {
        uint64_t before = io->stats.frames + io->stats.bad_frames;
        s_recv_one(io, io->fb_in, &io->lim_fb, FFS_CHAN_FB, 0, "feedback");
        if (io->stats.frames + io->stats.bad_frames == before) break; // queue empty
      }
    }
    else if (!io->rep_paused[who[k]])
      s_recv_one(io, io->rep_in[who[k]], &io->lim_rep[who[k]], FFS_CHAN_REP, who[k], "report");
  }
  return 0;
}

int ffs_stage_run(const ffs_stage_env_t *env) {
  const ffs_topo_t *t = env->topo;
  const ffs_stage_cfg_t *me = &t->stages[env->index];
  ffs_log_set_name(me->name);
  ffs_io_t *io = calloc(1, sizeof *io);
  if (!io) return -1;
  io->env = env;
  io->ops = ffs_stage_ops(me->kind);
  io->watch_fd = -1;
  for (int k = 0; k < S_SEND_BUFS; k++) io->shm[k].fd = -1;
  for (int k = 0; k < FFS_SHM_SLOTS; k++) io->slot_stage[k] = -1;
  for (int i = 0; env->incarnations && i < t->n_stages; i++) io->inc[i] = env->incarnations[i];
  if (t->transport == FFS_TRANSPORT_IPC) { // one host: frames may come through shared memory
    io->use_shm = t->shm;
    // as many frames in flight per stage as its sockets' queues held before
    int n = 2 * t->hwm_frames + 2;
    io->n_shm = n < S_SEND_BUFS ? n : S_SEND_BUFS;
    if (!(io->shm_maps = ffs_shm_maps_new())) {
      free(io);
      return -1;
    }
  }
  char err[1024] = "";
  int rc = -1;

  s_keep_freed_memory();
  if (env->core >= 0) ffs_pin_to_core(env->core, env->thread_mode);
  openblas_set_num_threads(1); // one pinned stage, one BLAS thread
  if (env->out_dir && env->out_dir[0]) {
    char dir[FFS_PATH_MAX + 16];
    snprintf(dir, sizeof dir, "%s/ckpt", env->out_dir);
    mkdir(env->out_dir, 0755);
    mkdir(dir, 0755);
    snprintf(io->ckpt_path, sizeof io->ckpt_path, "%s/%s.safetensors", dir, me->name);
  }
  if (s_open_sockets(io, err, sizeof err) < 0) goto fail;
  io->self = io->ops->create(env, io, err, sizeof err);
  if (!io->self) goto fail;
  if (env->resume && io->ops->load && io->ckpt_path[0] && access(io->ckpt_path, R_OK) == 0) {
    if (io->ops->load(io->self, io->ckpt_path, err, sizeof err) < 0) goto fail;
    ffs_info("resumed from %s", io->ckpt_path);
  }
  s_send_ready(io);

  double t_start = ffs_now(), t_stats = t_start, t_ckpt = t_start;
  int pumping = 0, stopping = 0;
  while (!stopping && !ffs_io_stopping(io) && !io->ctl_failed[0]) {
    if (s_poll_once(io, pumping, &stopping, err, sizeof err) < 0) goto fail;
    if (io->holding) s_retry_held(io);
    if (io->ops->pump && !stopping) {
      double t0 = ffs_now(), c0 = ffs_thread_cpu();
      pumping = io->ops->pump(io->self, io);
      if (pumping) io->stats.busy_s += ffs_now() - t0, io->stats.cpu_s += ffs_thread_cpu() - c0;
    }
    double now = ffs_now();
    if (t->ckpt_every_s > 0 && now - t_ckpt >= t->ckpt_every_s) {
      ffs_io_checkpoint(io); // what a restarted stage resumes from
      t_ckpt = now;
    }
    if (now - t_stats >= S_STATS_EVERY_S) {
      s_send_stats(io, now - t_start);
      t_stats = now;
    }
  }
  if (ffs_io_checkpoint(io) < 0) goto fail;
  if (io->ctl_failed[0]) {
    snprintf(err, sizeof err, "%s", io->ctl_failed);
    goto fail;
  }
  s_send_stats(io, ffs_now() - t_start);
  ffs_io_send_ctl(io, &(ffs_ctl_msg_t){.type = FFS_CTL_BYE});
  rc = 0;
fail:
  if (rc < 0) {
    ffs_error("%s", err[0] ? err : "stage failed");
    if (io->ctl) s_send_error(io, err);
  }
  if (io->holding) zmq_msg_close(&io->held);
  if (io->self) io->ops->destroy(&io->self);
  s_close_sockets(io);
  ffs_shm_maps_free(io->shm_maps); // after the last message that pointed into them
  free(io);
  return rc;
}
