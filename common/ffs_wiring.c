// ffs_wiring: the graph facts of a loaded topology (see ffs_wiring.h):
// endpoint names, chain order, frame sizes, feedback widths. Pure functions
// of the ffs_topo_t; only ffs_topo_remove_endpoints touches the file system.
#include "ffs_wiring.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

void ffs_topo_endpoint(const ffs_topo_t *t, const char *run_dir, int stage, ffs_chan_t chan,
                       int sub, char *out, size_t outlen) {
  assert(t && out && outlen > 0);
  assert(chan == FFS_CHAN_CTL || (stage >= 0 && stage < t->n_stages));
  assert(chan != FFS_CHAN_REP || (sub >= 0 && sub < FFS_MAX_STAGES));
  if (t->transport == FFS_TRANSPORT_TCP) {
    int port = t->tcp_port;
    if (chan != FFS_CHAN_CTL)
      port += 1 + stage * FFS_TCP_PORTS_PER_STAGE +
              (chan == FFS_CHAN_IN     ? 0
               : chan == FFS_CHAN_FB   ? 1
               : chan == FFS_CHAN_PEER ? 2
                                       : 3 + sub);
    snprintf(out, outlen, "tcp://%s:%d", t->tcp_host, port);
    return;
  }
  assert(run_dir);
  const char *scheme = t->transport == FFS_TRANSPORT_INPROC ? "inproc" : "ipc";
  // an ipc path longer than the OS allows (~107) is cut here; the launcher
  // picks run dirs short enough that it never is
  switch (chan) {
  case FFS_CHAN_IN:
    snprintf(out, outlen, "%s://%s/%s.in", scheme, run_dir, t->stages[stage].name);
    break;
  case FFS_CHAN_FB:
    snprintf(out, outlen, "%s://%s/%s.fb", scheme, run_dir, t->stages[stage].name);
    break;
  case FFS_CHAN_REP:
    snprintf(out, outlen, "%s://%s/%s.rep%d", scheme, run_dir, t->stages[stage].name, sub);
    break;
  case FFS_CHAN_PEER:
    snprintf(out, outlen, "%s://%s/%s.peer", scheme, run_dir, t->stages[stage].name);
    break;
  case FFS_CHAN_CTL:
  default:
    snprintf(out, outlen, "%s://%s/ctl", scheme, run_dir);
    break;
  }
}

int ffs_topo_next(const ffs_topo_t *t, int i) {
  assert(t && i >= 0 && i < t->n_stages);
  return i + t->stages[i].n_shards - t->stages[i].shard;
}

int ffs_topo_max_rows(const ffs_topo_t *t) {
  int train = t->triples ? 3 * t->batch : t->pairs ? 2 * t->batch : t->batch;
  int eval = t->eval_batch * t->classes;
  return train > eval ? train : eval;
}

int ffs_topo_feedback_cols(const ffs_topo_t *t, int from) {
  assert(t && from >= 0 && from < t->n_stages);
  return t->stages[from].kind == FFS_STAGE_READOUT ? t->classes : t->stages[from].out_dim;
}

// Unlinks the file behind one ipc endpoint ("ipc://PATH").
static void s_unlink_ipc(const ffs_topo_t *t, const char *run_dir, int stage, ffs_chan_t chan,
                         int sub) {
  static const char scheme[] = "ipc://";
  char ep[FFS_PATH_MAX + 2 * FFS_NAME_MAX];
  ffs_topo_endpoint(t, run_dir, stage, chan, sub, ep, sizeof ep);
  if (!strncmp(ep, scheme, sizeof scheme - 1)) unlink(ep + sizeof scheme - 1);
}

void ffs_topo_remove_endpoints(const ffs_topo_t *t, const char *run_dir) {
  assert(t && run_dir);
  if (t->transport != FFS_TRANSPORT_IPC) return;
  for (int i = 0; i < t->n_stages; i++) {
    s_unlink_ipc(t, run_dir, i, FFS_CHAN_IN, 0);
    s_unlink_ipc(t, run_dir, i, FFS_CHAN_FB, 0);
    s_unlink_ipc(t, run_dir, i, FFS_CHAN_PEER, 0);
    for (int k = 0; k < t->n_stages; k++)
      s_unlink_ipc(t, run_dir, i, FFS_CHAN_REP, k);
  }
  s_unlink_ipc(t, run_dir, 0, FFS_CHAN_CTL, 0);
}
