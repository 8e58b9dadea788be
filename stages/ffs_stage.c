// ffs_stage: the runtime under every stage kind. Read top to bottom: pin,
// sockets (ffs_sockets.c), create the stage, BOUND, the launcher's WIRE,
// READY, poll loop (control, data, feedback, reports, pump), final
// checkpoint, BYE. Bad frames are counted, logged a few times, and dropped;
// the loop never exits because of a peer's bytes. Sharded layers'
// gathering and partial sums are in ffs_shards.c.
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
#include "ffs_math.h"
#include "ffs_pin.h"


const ffs_stage_ops_t *ffs_stage_ops(ffs_stage_kind_t kind) {
  const ffs_kind_t *k = ffs_kind_of((int)kind);
  return k ? k->ops : NULL;
}

// ---- control ----

int ffs_io_send_ctl(ffs_io_t *io, const ffs_ctl_msg_t *m) {
  uint8_t buf[FFS_CTL_EPS_MAX + 1024]; // the largest message a stage sends: a BOUND
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
  if (rc < 0 && ffs_io_stopping(io))
    ; // its output could not go out: the stage is stopping, the frame goes with it
  else if (rc < 0)
    ffs_io_bad_frame(io, chan_name,
                     "rejected by the stage (wrong shape, kind or non-finite values)");
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
  uint8_t buf[FFS_CTL_EPS_MAX + 1024]; // the largest the launcher sends: a WIRE
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
  case FFS_CTL_WIRE:
    if (ffs_eps_check(m.wire.eps, why, sizeof why) < 0 ||
        ffs_io_wire(io, m.wire.eps, m.wire.shm, why, sizeof why) < 0)
      snprintf(io->ctl_failed, sizeof io->ctl_failed, "cannot wire the outputs: %.500s", why);
    return 0;
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

// BOUND: where the stage runs and where its inputs are bound.
static void s_send_bound(ffs_io_t *io) {
  ffs_ctl_msg_t m = {.type = FFS_CTL_BOUND};
  const char *host = io->env->host;
  char name[FFS_CTL_HOST_MAX] = "";
  if (!host) { // the host's own name (Slurm's name for it when a task of a step)
    const char *slurm = getenv("SLURMD_NODENAME");
    if (slurm && slurm[0]) snprintf(name, sizeof name, "%s", slurm);
    else if (gethostname(name, sizeof name - 1) < 0) snprintf(name, sizeof name, "?");
    host = name;
  }
  snprintf(m.bound.host, sizeof m.bound.host, "%s", host);
  snprintf(m.bound.eps, sizeof m.bound.eps, "%s", io->bound_eps);
  ffs_io_send_ctl(io, &m);
}

// Waits for the first WIRE (outputs connected). Returns 0 when wired, 1
// when told to stop first, -1 when polling failed (err set).
static int s_await_wire(ffs_io_t *io, char *err, size_t errlen) {
  while (!io->wired) {
    if (ffs_io_stopping(io) || io->ctl_failed[0]) return 1;
    zmq_pollitem_t it = {io->ctl, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&it, 1, 100) < 0 && zmq_errno() != EINTR) {
      snprintf(err, errlen, "zmq_poll: %s", zmq_strerror(zmq_errno()));
      return -1;
    }
    if ((it.revents & ZMQ_POLLIN) && s_on_control(io)) return 1;
    ffs_io_tick(io, 0); // the launcher watch
  }
  return 0;
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
  if (!env->thread_mode) { // frames from its own host may come through shared memory
    io->use_shm = t->shm && t->transport == FFS_TRANSPORT_IPC; // and WIRE's say
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
  ffs_flush_subnormals();
  if (env->out_dir && env->out_dir[0]) {
    char dir[FFS_PATH_MAX + 16];
    snprintf(dir, sizeof dir, "%s/ckpt", env->out_dir);
    mkdir(env->out_dir, 0755);
    mkdir(dir, 0755);
    snprintf(io->ckpt_path, sizeof io->ckpt_path, "%s/%s.safetensors", dir, me->name);
  }
  io->t_start = io->t_stats = ffs_now();
  if (ffs_io_open(io, err, sizeof err) < 0) goto fail;
  io->self = io->ops->create(env, io, err, sizeof err);
  if (!io->self) goto fail;
  if (env->resume && io->ops->load && io->ckpt_path[0] && access(io->ckpt_path, R_OK) == 0) {
    if (io->ops->load(io->self, io->ckpt_path, err, sizeof err) < 0) goto fail;
    ffs_info("resumed from %s", io->ckpt_path);
  }
  s_send_bound(io);
  int rc_wire = s_await_wire(io, err, sizeof err);
  if (rc_wire < 0) goto fail;
  if (rc_wire == 0) s_send_ready(io);

  double t_ckpt = ffs_now();
  int pumping = 0, stopping = rc_wire;
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
    ffs_io_tick(io, 0);
  }
  if (ffs_io_checkpoint(io) < 0) goto fail;
  if (io->ctl_failed[0]) {
    snprintf(err, sizeof err, "%s", io->ctl_failed);
    goto fail;
  }
  if (io->launcher_lost) {
    snprintf(err, sizeof err, "the launcher is unreachable (checkpoint written)");
    goto fail;
  }
  ffs_io_tick(io, 1);
  ffs_io_send_ctl(io, &(ffs_ctl_msg_t){.type = FFS_CTL_BYE});
  rc = 0;
fail:
  if (rc < 0) {
    ffs_error("%s", err[0] ? err : "stage failed");
    if (io->ctl) s_send_error(io, err);
  }
  if (io->holding) zmq_msg_close(&io->held);
  if (io->self) io->ops->destroy(&io->self);
  ffs_io_close(io);
  ffs_shm_maps_free(io->shm_maps); // after the last message that pointed into them
  free(io);
  return rc;
}
