// ffs_io: the sending half of the stage runtime, under ffs_stage.c (the
// loop) and ffs_shards.c (a sharded layer's gathering and partial sums):
// blocking sends with backpressure, the encode buffers lent for zero-copy
// and shared-memory frames, ffs_io_send (encode + send for stage kinds),
// feedback's latest-wins sends, and the counters of bad frames. It calls
// nothing above it.
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "ffs_io_impl.h"
#include "ffs_log.h"

#define S_BAD_LOG_MAX 5 // log the first few bad frames, then only count

double ffs_thread_cpu(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double ffs_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// ---- the heartbeat ----

static void s_send_stats(ffs_io_t *io, int wait) {
  const ffs_stage_stats_t *s = &io->stats;
  ffs_ctl_msg_t m = {.type = FFS_CTL_STATS};
  m.stats.frames = s->frames, m.stats.bad = s->bad_frames, m.stats.samples = s->samples;
  m.stats.busy = s->busy_s, m.stats.blocked = s->blocked_s, m.stats.cpu = s->cpu_s;
  m.stats.wall = ffs_now() - io->t_start, m.stats.gpos = s->g_pos, m.stats.gneg = s->g_neg;
  m.stats.fbr = s->fb_frames, m.stats.fbs = s->fb_sent, m.stats.fbd = s->fb_dropped;
  m.stats.tds = s->td_stale, m.stats.tdk = s->td_stale_ticks, m.stats.shm = s->shm_frames;
  m.stats.l50 = s->lat_p50_us[0], m.stats.l99 = s->lat_p99_us[0], m.stats.h50 = s->hop_p50_us[0];
  m.stats.ln = s->lat_n[0];
  m.stats.e50 = s->lat_p50_us[1], m.stats.e99 = s->lat_p99_us[1], m.stats.eh50 = s->hop_p50_us[1];
  m.stats.en = s->lat_n[1];
  m.stats.drop = s->in_dropped, m.stats.skip = s->in_skipped;
  m.stats.pn = s->preq_n, m.stats.pe = s->preq_err, m.stats.pw = s->preq_window;
  m.stats.pub = s->published;
  m.stats.ref = io->zap ? ffs_zap_refused(io->zap) : 0;
  m.stats.stk = s->stash_max, m.stats.stb = s->stash_bytes, m.stats.stx = s->stash_expired;
  m.stats.fbu = s->fb_unknown;
  if (wait) {
    ffs_io_send_ctl(io, &m);
    return;
  }
  uint8_t buf[1024]; // a STATS takes ~400 bytes
  size_t len = ffs_ctl_encode(buf, sizeof buf, &m);
  if (len) zmq_send(io->ctl, buf, len, ZMQ_DONTWAIT); // the next one follows soon
}

// Reads the control socket's connection events. The launcher is lost once
// it has been unreachable for 3 x silent_s: the launcher gives up on a
// stage after silent_s, so by then nothing will come back for this one.
static void s_watch_launcher(ffs_io_t *io, double now) {
  if (!io->ctl_mon) return;
  for (;;) {
    zmq_msg_t ev;
    zmq_msg_init(&ev);
    if (zmq_msg_recv(&ev, io->ctl_mon, ZMQ_DONTWAIT) < 0) {
      zmq_msg_close(&ev);
      break;
    }
    uint16_t id = 0;
    if (zmq_msg_size(&ev) >= 2) memcpy(&id, zmq_msg_data(&ev), 2);
    int more = zmq_msg_more(&ev);
    zmq_msg_close(&ev);
    while (more) { // the event's second part: the endpoint
      zmq_msg_init(&ev);
      if (zmq_msg_recv(&ev, io->ctl_mon, ZMQ_DONTWAIT) < 0) more = 0;
      else more = zmq_msg_more(&ev);
      zmq_msg_close(&ev);
    }
    if (id == ZMQ_EVENT_CONNECTED) io->ctl_down_since = 0;
    else if (id == ZMQ_EVENT_DISCONNECTED && io->ctl_down_since == 0) io->ctl_down_since = now;
  }
  if (io->ctl_down_since > 0 && now - io->ctl_down_since > 3.0 * io->env->silent_s &&
      !io->launcher_lost) {
    io->launcher_lost = 1;
    ffs_error("the launcher has been unreachable for %.0f s: writing a checkpoint and stopping",
              now - io->ctl_down_since);
  }
}

void ffs_io_tick(ffs_io_t *io, int force) {
  double now = ffs_now();
  if (!force && now - io->t_stats < FFS_CTL_STATS_EVERY_S) return;
  io->t_stats = now;
  if (io->wired || force) s_send_stats(io, force);
  s_watch_launcher(io, now);
}

// ---- sending ----

int ffs_io_stopping(const ffs_io_t *io) { return *io->env->stop != 0 || io->launcher_lost; }

// Blocks until msg is sent (backpressure); on success msg is left empty.
// The time spent waiting is not work, so it is counted apart and left out
// of the stage's utilization.
static int s_send_msg_blocking(ffs_io_t *io, void *sock, zmq_msg_t *msg) {
  if (zmq_msg_send(msg, sock, ZMQ_DONTWAIT) >= 0) return 0;
  double t0 = ffs_now();
  int rc = 0;
  while (zmq_msg_send(msg, sock, 0) < 0) {
    if ((zmq_errno() != EAGAIN && zmq_errno() != EINTR) || ffs_io_stopping(io)) {
      rc = -1;
      break;
    }
    if (sock != io->ctl) ffs_io_tick(io, 0); // still alive, only waiting
  }
  io->stats.blocked_s += ffs_now() - t0;
  return rc;
}

int ffs_io_send_blocking(ffs_io_t *io, void *sock, const void *buf, size_t len) {
  zmq_msg_t msg; // a copy of buf, as zmq_send would make
  if (zmq_msg_init_size(&msg, len) < 0) return -1;
  memcpy(zmq_msg_data(&msg), buf, len);
  int rc = s_send_msg_blocking(io, sock, &msg);
  zmq_msg_close(&msg);
  return rc;
}

// Frames from this size on go to ZeroMQ without a copy (a batch-100 frame
// is 300-400 KB; a batch-1 frame, 2-3 KB, is cheaper to copy).
#define S_ZERO_COPY_MIN (64 << 10)

// ZeroMQ's free callback (often on its I/O thread): the buffer is free
// again, or freed if its io has closed meanwhile.
static void s_send_buf_release(void *data, void *hint) {
  (void)data;
  s_send_buf_t *b = hint;
  if (atomic_exchange(&b->state, S_BUF_FREE) == S_BUF_ORPHAN) free(b);
}

// A shared-memory encode buffer (transport ipc; io->n_shm of them, as many
// frames as the sockets' queues held in flight): a free one, opened on
// first use (or reopened when too small). When every one is still being
// read downstream, waits for the one sent longest ago (counted as blocked
// time, as a full socket's wait is), a few milliseconds at a time, since
// another may come free first (a report read later than a forward frame).
// NULL: stopping, or none came free within S_SHM_WAIT_S (a consumer
// stalled, or died holding buffers until the launcher's LOST gives them
// back): the frame goes by copy, with ZeroMQ's backpressure, and so does
// every frame after it until a buffer is free again, without waiting.
static uint8_t *s_shm_frame_buf(ffs_io_t *io, size_t cap, int *lent) {
  double t0 = 0;
  for (;;) {
    int oldest = -1;
    for (int k = 0; k < io->n_shm; k++) {
      ffs_shm_buf_t *b = &io->shm[k];
      if (b->fd >= 0 && !ffs_shm_buf_idle(b)) {
        if (oldest < 0 || io->shm_sent[k] < io->shm_sent[oldest]) oldest = k;
        continue;
      }
      if (b->fd >= 0 && b->cap < cap) ffs_shm_buf_close(b);
      char err[256];
      if (b->fd < 0 && ffs_shm_buf_open(b, cap, err, sizeof err) < 0) {
        ffs_warn("%s; large frames are copied from now on", err);
        io->use_shm = 0;
        return NULL;
      }
      *lent = k;
      io->shm_gave_up = 0;
      if (t0 > 0) io->stats.blocked_s += ffs_now() - t0;
      return b->data;
    }
    if (io->shm_gave_up) return NULL;
    double now = ffs_now();
    if (t0 == 0) t0 = now;
    if (ffs_io_stopping(io) || now - t0 > S_SHM_WAIT_S) {
      io->stats.blocked_s += now - t0;
      if (!ffs_io_stopping(io)) {
        io->shm_gave_up = 1;
        if (!io->shm_warned++)
          ffs_warn("no shared frame buffer came free in %.0f s (a consumer stalled or died "
                   "holding some): copying frames until one does", S_SHM_WAIT_S);
      }
      return NULL;
    }
    ffs_shm_buf_wait(&io->shm[oldest], 2);
  }
}

// An encode buffer of cap bytes that the next frame can leave in without a
// copy (*lent: its index, -1 for none: NULL), shared memory over ipc.
static uint8_t *s_frame_buf(ffs_io_t *io, size_t cap, int *lent) {
  *lent = -1;
  if (io->use_shm) return s_shm_frame_buf(io, cap, lent);
  for (int k = 0; k < S_SEND_BUFS; k++) {
    s_send_buf_t *b = io->send_buf[k];
    if (!b) { // first use of this slot: the only allocation
      if (!(b = malloc(sizeof *b + cap))) return NULL;
      atomic_init(&b->state, S_BUF_FREE);
      b->cap = cap;
      io->send_buf[k] = b;
    }
    if (b->cap >= cap && atomic_load(&b->state) == S_BUF_FREE) {
      *lent = k;
      return b->data;
    }
  }
  return NULL;
}

// Sends buf (len bytes) on each of n > 0 sockets (socks[k] reads shared
// buffers as slot first + k): without a copy when buf is lent buffer `lent`
// (of s_frame_buf; -1: buf is the io's own) and large, else copied.
static int s_send_frame(ffs_io_t *io, void *const *socks, int first, int n, const void *buf,
                        size_t len, int lent) {
  if (io->use_shm && lent >= 0 && len >= S_ZERO_COPY_MIN) {
    ffs_shm_buf_t *sb = &io->shm[lent];
    io->shm_sent[lent] = ++io->shm_count;
    uint32_t mask = 0;
    for (int k = 0; k < n; k++) mask |= 1u << (first + k);
    ffs_shm_buf_send(sb, mask);
    for (int k = 0; k < n; k++) {
      uint8_t desc[FFS_SHM_DESC_LEN]; // all that goes over ZeroMQ
      ffs_shm_buf_desc(sb, len, first + k, io->inc[io->slot_stage[first + k]], desc);
      if (ffs_io_send_blocking(io, socks[k], desc, sizeof desc) < 0) {
        for (; k < n; k++) ffs_shm_buf_reclaim(sb, first + k); // these never got it
        return -1;
      }
    }
    return 0;
  }
  s_send_buf_t *b = lent >= 0 && !io->use_shm ? io->send_buf[lent] : NULL;
  if (!b || len < S_ZERO_COPY_MIN) { // copied: a small frame, or the io's own buffer
    for (int k = 0; k < n; k++)
      if (ffs_io_send_blocking(io, socks[k], buf, len) < 0) return -1;
    return 0;
  }
  atomic_store(&b->state, S_BUF_SENT);
  zmq_msg_t msg;
  if (zmq_msg_init_data(&msg, b->data, len, s_send_buf_release, b) < 0) {
    atomic_store(&b->state, S_BUF_FREE);
    return -1;
  }
  int rc = 0;
  for (int k = 0; k < n && rc == 0; k++) {
    zmq_msg_t one; // each socket gets a reference to the same bytes
    zmq_msg_init(&one);
    if (zmq_msg_copy(&one, &msg) < 0 || s_send_msg_blocking(io, socks[k], &one) < 0) rc = -1;
    zmq_msg_close(&one);
  }
  zmq_msg_close(&msg); // the callback runs once the last reference is sent
  return rc;
}

// At close: free the buffers ZeroMQ no longer holds; those it still holds
// are freed by their callback.
void ffs_io_send_bufs_close(ffs_io_t *io) {
  for (int k = 0; k < S_SEND_BUFS; k++) ffs_shm_buf_close(&io->shm[k]);
  for (int k = 0; k < S_SEND_BUFS; k++) {
    s_send_buf_t *b = io->send_buf[k];
    if (b && atomic_exchange(&b->state, S_BUF_ORPHAN) == S_BUF_FREE) free(b);
    io->send_buf[k] = NULL;
  }
}

int ffs_io_n_feedback_out(const ffs_io_t *io) { return io->n_fb_out; }
int ffs_io_n_forward_out(const ffs_io_t *io) { return io->n_fwd; }


// The launcher restarted stage `stage` as incarnation inc: the shared
// buffers whose frames went to its dead process come back (their readers
// will never release them; the new process drops descriptors meant for the
// old one), and descriptors from now on are meant for the new one.
void ffs_io_on_lost(ffs_io_t *io, int stage, uint32_t inc) {
  if (stage < 0 || stage >= io->env->topo->n_stages) return;
  io->inc[stage] = inc;
  int n = 0;
  for (int slot = 0; slot < FFS_SHM_SLOTS; slot++) {
    if (io->slot_stage[slot] != stage) continue;
    for (int k = 0; k < S_SEND_BUFS; k++) n += ffs_shm_buf_reclaim(&io->shm[k], slot);
  }
  if (n > 0)
    ffs_info("%d shared frame buffers held by the lost process of '%s' are free again", n,
             io->env->topo->stages[stage].name);
}

// Feedback edge k: latest wins (dropped and counted when the receiver is
// full), except a lockstep top-down edge, which waits like a forward send.
static int s_send_feedback(ffs_io_t *io, int k, const void *buf, size_t len) {
  assert(k >= 0 && k < io->n_fb_out);
  if (io->fb_reliable[k]) {
    if (ffs_io_send_blocking(io, io->fb_out[k], buf, len) < 0) return -1;
    io->stats.fb_sent++;
    return 0;
  }
  if (zmq_send(io->fb_out[k], buf, len, ZMQ_DONTWAIT) < 0) {
    io->stats.fb_dropped++; // latest wins: the receiver still has an older one
    return 0;
  }
  io->stats.fb_sent++;
  return 0;
}

int ffs_io_send(ffs_io_t *io, ffs_out_t out, const ffs_frame_hdr_t *h, const ffs_frame_rows_t *rows,
                const float *payload) {
  int n = out == FFS_OUT_FORWARD ? io->n_fwd : out == FFS_OUT_REPORT ? io->rep != NULL : io->n_fb_out;
  if (n == 0) return 0;
  // feedback may be dropped: never into a lent buffer, which would wait
  int lent = -1;
  uint8_t *buf = out == FFS_OUT_FEEDBACK ? NULL : s_frame_buf(io, io->enc_cap, &lent);
  if (!buf) buf = io->enc_buf, lent = -1;
  size_t len = ffs_frame_encode(buf, io->enc_cap, h, rows, payload);
  if (!len) { // a programming error: the kind sends wider frames than its stage's widths
    ffs_error("a frame of %u x %u does not fit the %zu-byte encode buffer", h->rows, h->cols,
              io->enc_cap);
    return -1;
  }
  if (out == FFS_OUT_FORWARD) return s_send_frame(io, io->fwd, 0, n, buf, len, lent);
  if (out == FFS_OUT_REPORT) return s_send_frame(io, &io->rep, S_SLOT_REP, n, buf, len, lent);
  for (int k = 0; k < n; k++)
    if (s_send_feedback(io, k, buf, len) < 0) return -1;
  return 0;
}

int ffs_io_send_from(ffs_io_t *io, ffs_out_t out, const ffs_frame_hdr_t *in, uint8_t kind,
                     uint32_t rows, uint32_t cols, const ffs_frame_rows_t *r, const float *payload,
                     double t_frame) {
  ffs_frame_hdr_t h = *in;
  h.kind = kind, h.stage = (uint32_t)io->env->index, h.rows = rows, h.cols = cols, h.aux = 0;
  h.nshards = 0, h.shard = 0, h.col0 = 0;
  if (kind != FFS_FRAME_FEEDBACK) h.damp = 0.0f;
  if (kind == FFS_FRAME_MARK) h.rows = 0, h.cols = 0;
  if (h.ts) h.work_ns = in->work_ns + (uint64_t)((ffs_now() - t_frame) * 1e9);
  return ffs_io_send(io, out, &h, r, payload);
}

void ffs_io_bad_frame(ffs_io_t *io, const char *chan, const char *why) {
  io->stats.bad_frames++;
  if (io->bad_logged < S_BAD_LOG_MAX) {
    io->bad_logged++;
    ffs_warn("dropped a bad frame on %s: %s%s", chan, why,
             io->bad_logged == S_BAD_LOG_MAX ? " (further bad frames are only counted)" : "");
  }
}

