// ffs_sockets: a stage's sockets, under the loop in ffs_stage.c: the control
// channel to the launcher (watched, so that a stage whose launcher is gone
// checkpoints and stops), its inputs bound where its senders reach them (a
// local ipc/inproc name, and a free tcp port when the run spans hosts), its
// outputs made at start and connected when the launcher's WIRE names their
// receivers' endpoints (again after a receiver was restarted elsewhere). On
// a networked run every socket speaks CURVE with the run's keys.
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zmq.h>

#include "ffs_io_impl.h"
#include "ffs_log.h"

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

// Returns -1 with err set to ZeroMQ's last error (a socket could not be made).
static int s_zfail(char *err, size_t errlen) {
  snprintf(err, errlen, "zmq_socket: %s", zmq_strerror(zmq_errno()));
  return -1;
}

// ---- buffers ----

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

// ---- control ----

// The launcher's control channel: a DEALER named after the stage. Its
// monitor tells the stage when the connection drops (ffs_io_tick); over tcp
// ZeroMQ's heartbeats find a peer that went silent without closing.
static int s_open_control(ffs_io_t *io, char *err, size_t errlen) {
  const ffs_stage_env_t *env = io->env;
  const char *name = env->topo->stages[env->index].name;
  char ep[FFS_EP_MAX], mon[64];
  if (!(io->ctl = s_socket(io, ZMQ_DEALER, 0, FFS_CTL_MSG_MAX))) return s_zfail(err, errlen);
  zmq_setsockopt(io->ctl, ZMQ_ROUTING_ID, name, strlen(name));
  int linger = 1000; // let READY/STATS/BYE reach the launcher
  zmq_setsockopt(io->ctl, ZMQ_LINGER, &linger, sizeof linger);
  if (env->ctl_ep) snprintf(ep, sizeof ep, "%s", env->ctl_ep);
  else ffs_topo_endpoint(env->topo, env->run_dir, 0, FFS_CHAN_CTL, 0, ep, sizeof ep);
  if (!strncmp(ep, "tcp://", 6) && env->silent_s > 0) {
    int ivl = 1000, timeout = 1000 * env->silent_s;
    zmq_setsockopt(io->ctl, ZMQ_HEARTBEAT_IVL, &ivl, sizeof ivl);
    zmq_setsockopt(io->ctl, ZMQ_HEARTBEAT_TIMEOUT, &timeout, sizeof timeout);
  }
  if (env->keys && ffs_curve_client(env->keys, io->ctl) < 0) {
    snprintf(err, errlen, "cannot make the control socket a CURVE client: %s",
             zmq_strerror(zmq_errno()));
    return -1;
  }
  if (env->silent_s > 0) { // the launcher watch
    snprintf(mon, sizeof mon, "inproc://ffs-ctl-mon-%p", (void *)io);
    if (zmq_socket_monitor(io->ctl, mon, ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED) < 0 ||
        !(io->ctl_mon = zmq_socket(env->zctx, ZMQ_PAIR)) || zmq_connect(io->ctl_mon, mon) < 0) {
      snprintf(err, errlen, "cannot watch the control socket: %s", zmq_strerror(zmq_errno()));
      return -1;
    }
    int zero = 0;
    zmq_setsockopt(io->ctl_mon, ZMQ_LINGER, &zero, sizeof zero);
    io->ctl_down_since = ffs_now(); // until the first connection
  }
  if (zmq_connect(io->ctl, ep) == 0) return 0;
  snprintf(err, errlen, "cannot connect to the launcher at %s: %s", ep, zmq_strerror(zmq_errno()));
  return -1;
}

// ---- inputs ----

// Binds sock on a free port of addr: the first free one of tcp.ports, or
// one the OS picks. A port in use is skipped, never fatal while the range
// has another. Writes the endpoint bound into out. 0 or -1.
static int s_bind_tcp(ffs_io_t *io, void *sock, const char *addr, char *out, size_t outlen,
                      char *err, size_t errlen) {
  const ffs_topo_t *t = io->env->topo;
  char ep[FFS_EP_MAX];
  int lo = t->tcp_port_lo, hi = t->tcp_port_hi;
  for (int port = lo; port <= hi; port++) {
    if (port) snprintf(ep, sizeof ep, "tcp://%s:%d", addr, port);
    else snprintf(ep, sizeof ep, "tcp://%s:*", addr);
    if (zmq_bind(sock, ep) == 0) {
      size_t len = outlen;
      if (zmq_getsockopt(sock, ZMQ_LAST_ENDPOINT, out, &len) < 0) break;
      return 0;
    }
    if (zmq_errno() != EADDRINUSE) break;
  }
  if (lo && zmq_errno() == EADDRINUSE)
    snprintf(err, errlen, "cannot bind on %s: every port of tcp.ports %d..%d is in use", addr, lo,
             hi);
  else
    snprintf(err, errlen, "cannot bind %s: %s", ep, zmq_strerror(zmq_errno()));
  return -1;
}

// Binds input sock of channel chan (sub: a report's group) where its
// senders reach it: the local name (not with transport tcp), and a tcp port
// when the run spans hosts. Lists what it bound in io->bound_eps.
static int s_bind_input(ffs_io_t *io, void *sock, ffs_chan_t chan, int sub, char *err,
                        size_t errlen) {
  const ffs_stage_env_t *env = io->env;
  char ep[FFS_EP_MAX], key[16], what[FFS_NAME_MAX + 24];
  ffs_chan_key(chan, sub, key, sizeof key);
  if (io->zap) { // CURVE: only the run's key gets in (before any bind)
    snprintf(what, sizeof what, "%s %s", env->topo->stages[env->index].name, key);
    if (ffs_zap_server(io->zap, sock, what) < 0) {
      snprintf(err, errlen, "cannot make input '%s' a CURVE server: %s", key,
               zmq_strerror(zmq_errno()));
      return -1;
    }
  }
  if (env->topo->transport != FFS_TRANSPORT_TCP) {
    // the run folder of ipc names: made here too, on a host the launcher is not on
    if (!env->thread_mode) mkdir(env->run_dir, 0700);
    ffs_topo_endpoint(env->topo, env->run_dir, env->index, chan, sub, ep, sizeof ep);
    if (zmq_bind(sock, ep) < 0) {
      snprintf(err, errlen, "cannot bind %s: %s", ep, zmq_strerror(zmq_errno()));
      return -1;
    }
    if (ffs_eps_add(io->bound_eps, sizeof io->bound_eps, key, ep) < 0) goto full;
  }
  if (env->bind_addr) {
    if (s_bind_tcp(io, sock, env->bind_addr, ep, sizeof ep, err, errlen) < 0) return -1;
    if (ffs_eps_add(io->bound_eps, sizeof io->bound_eps, key, ep) < 0) goto full;
  }
  return 0;
full:
  snprintf(err, errlen, "too many endpoints to report (at most %d bytes)", FFS_CTL_EPS_MAX);
  return -1;
}

// The inputs this stage binds: one per kind of edge that ends here (one per
// sending group for reports), each as wide as the widest edge into it and
// with the longest queue any of them asks for.
static int s_bind_inputs(ffs_io_t *io, const ffs_edge_t *e, int n, char *err, size_t errlen) {
  const ffs_stage_env_t *env = io->env;
  const ffs_topo_t *t = env->topo;
  uint32_t max_rows = (uint32_t)ffs_topo_max_rows(t);
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
    if (s_bind_input(io, io->rep_in[e[k].sub], FFS_CHAN_REP, e[k].sub, err, errlen)) return -1;
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
    if (s_bind_input(io, *in[k].sock, in[k].chan, 0, err, errlen)) return -1;
  }
  return 0;
}

// ---- outputs ----

// The outputs: one PUSH per edge that starts here, connected by the WIRE
// that names the receiver's endpoint (ffs_io_wire).
static int s_make_outputs(ffs_io_t *io, const ffs_edge_t *e, int n, char *err, size_t errlen) {
  const ffs_stage_env_t *env = io->env;
  const ffs_topo_t *t = env->topo;
  for (int k = 0; k < n; k++) {
    if (e[k].from != env->index) continue;
    assert(io->n_out < S_MAX_OUT);
    void *s = s_socket(io, ZMQ_PUSH, e[k].hwm, 0);
    if (!s) return s_zfail(err, errlen);
    if (env->keys && ffs_curve_client(env->keys, s) < 0) {
      zmq_close(s);
      snprintf(err, errlen, "cannot make an output a CURVE client: %s", zmq_strerror(zmq_errno()));
      return -1;
    }
    io->out[io->n_out].edge = k, io->out[io->n_out].sock = s, io->out[io->n_out].ep[0] = 0;
    io->n_out++;
    switch (e[k].type) {
    case FFS_EDGE_DATA:
      io->slot_stage[io->n_fwd] = e[k].to; // its shared buffers' reader slot
      io->fwd[io->n_fwd++] = s;
      break;
    case FFS_EDGE_REPORT:
      io->slot_stage[S_SLOT_REP] = e[k].to;
      io->rep = s;
      break;
    case FFS_EDGE_PEER: io->peer_out[t->stages[e[k].to].shard] = s; break;
    case FFS_EDGE_FEEDBACK:
      io->fb_reliable[io->n_fb_out] = e[k].policy == FFS_POLICY_RELIABLE;
      io->fb_out[io->n_fb_out++] = s;
      break;
    }
  }
  return 0;
}

int ffs_io_wire(ffs_io_t *io, const char *eps, int shm, char *err, size_t errlen) {
  char key[16], ep[FFS_EP_MAX];
  for (int k = 0; k < io->n_out; k++) {
    snprintf(key, sizeof key, "%d", io->out[k].edge);
    if (ffs_eps_get(eps, key, 0, ep, sizeof ep) < 0) {
      snprintf(err, errlen, "the launcher's WIRE names no endpoint for output edge %d",
               io->out[k].edge);
      return -1;
    }
    if (!strcmp(ep, io->out[k].ep)) continue;
    // the receiver was restarted (its port changed): frames queued for the
    // old endpoint go with it, as they went with the dead process
    if (io->out[k].ep[0]) zmq_disconnect(io->out[k].sock, io->out[k].ep);
    if (zmq_connect(io->out[k].sock, ep) < 0) {
      snprintf(err, errlen, "cannot connect to %s: %s", ep, zmq_strerror(zmq_errno()));
      return -1;
    }
    snprintf(io->out[k].ep, sizeof io->out[k].ep, "%s", ep);
  }
  if (!io->wired) io->use_shm = io->use_shm && shm; // once: buffers may be out already
  io->wired = 1;
  return 0;
}

// ---- the whole set ----

int ffs_io_open(ffs_io_t *io, char *err, size_t errlen) {
  const ffs_stage_env_t *env = io->env;
  ffs_edge_t edges[FFS_MAX_EDGES];
  int n = ffs_topo_edges(env->topo, edges, FFS_MAX_EDGES);
  if (s_open_buffers(io, err, errlen) < 0 || s_open_peer_sums(io, err, errlen) < 0) return -1;
  if (env->keys && !(io->zap = ffs_zap_start(env->zctx, env->keys, err, errlen))) return -1;
  if (s_open_control(io, err, errlen) < 0) return -1;
  if (s_bind_inputs(io, edges, n, err, errlen) < 0) return -1;
  return s_make_outputs(io, edges, n, err, errlen);
}

void ffs_io_close(ffs_io_t *io) {
  if (io->ctl_mon) {
    zmq_socket_monitor(io->ctl, NULL, 0);
    zmq_close(io->ctl_mon), io->ctl_mon = NULL;
  }
  void **all[] = {&io->ctl, &io->in, &io->fb_in, &io->peer_in};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
    if (*all[i]) {
      zmq_close(*all[i]);
      *all[i] = NULL;
    }
  for (int i = 0; i < FFS_MAX_STAGES; i++)
    if (io->rep_in[i]) zmq_close(io->rep_in[i]), io->rep_in[i] = NULL;
  for (int k = 0; k < io->n_out; k++) zmq_close(io->out[k].sock);
  io->n_out = io->n_fb_out = io->n_fwd = 0, io->rep = NULL;
  for (int k = 0; k < FFS_MAX_SHARDS; k++) {
    io->peer_out[k] = NULL;
    free(io->pend[k][0].v), free(io->pend[k][1].v);
  }
  ffs_zap_destroy(&io->zap); // after the sockets it served
  free(io->peer_sum), free(io->peer_buf);
  ffs_io_send_bufs_close(io);
  free(io->enc_buf), io->enc_buf = NULL;
  for (int k = 0; k < io->n_asm; k++) {
    s_asm_t *a = &io->asm_[k];
    free(a->roles), free(a->labels), free(a->cands), free(a->ids), free(a->data);
  }
  free(io->asm_), io->asm_ = NULL, io->n_asm = 0;
}
