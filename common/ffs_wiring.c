// ffs_wiring: the graph facts of a loaded topology (see ffs_wiring.h):
// endpoint names, chain order, frame sizes, feedback widths. Pure functions
// of the ffs_topo_t; only ffs_topo_remove_endpoints touches the file system.
#include "ffs_wiring.h"

#include "ffs_kind.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

void ffs_topo_endpoint(const ffs_topo_t *t, const char *run_dir, int stage, ffs_chan_t chan,
                       int sub, char *out, size_t outlen) {
  assert(t && out && outlen > 0);
  assert(chan == FFS_CHAN_CTL || (stage >= 0 && stage < t->n_stages));
  assert(chan != FFS_CHAN_REP || (sub >= 0 && sub < FFS_MAX_STAGES));
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

const char *ffs_chan_key(ffs_chan_t chan, int sub, char *out, size_t outlen) {
  switch (chan) {
  case FFS_CHAN_IN: snprintf(out, outlen, "in"); break;
  case FFS_CHAN_FB: snprintf(out, outlen, "fb"); break;
  case FFS_CHAN_PEER: snprintf(out, outlen, "peer"); break;
  case FFS_CHAN_REP: snprintf(out, outlen, "rep%d", sub); break;
  default: snprintf(out, outlen, "ctl"); break;
  }
  return out;
}

// ---- endpoint lists ----

int ffs_eps_add(char *list, size_t cap, const char *key, const char *ep) {
  assert(list && key && ep);
  size_t n = strlen(list);
  int w = snprintf(list + n, cap - n, "%s%s=%s", n ? " " : "", key, ep);
  if (w < 0 || (size_t)w >= cap - n) {
    list[n] = 0;
    return -1;
  }
  return 0;
}

int ffs_eps_get(const char *list, const char *key, int nth, char *out, size_t outlen) {
  assert(list && key && out && outlen > 0);
  size_t klen = strlen(key);
  for (const char *p = list; *p;) {
    while (*p == ' ') p++;
    const char *end = strchr(p, ' ');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    if (len > klen && !strncmp(p, key, klen) && p[klen] == '=' && nth-- == 0) {
      if (len - klen - 1 >= outlen) return -1;
      memcpy(out, p + klen + 1, len - klen - 1);
      out[len - klen - 1] = 0;
      return 0;
    }
    p += len;
  }
  return -1;
}

int ffs_eps_check(const char *list, char *why, size_t whylen) {
  static const char *const schemes[] = {"ipc://", "inproc://", "tcp://"};
  int n = 0;
  for (const char *p = list; *p;) {
    if (*p == ' ') {
      p++;
      continue;
    }
    const char *end = strchr(p, ' ');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    n++;
    const char *eq = memchr(p, '=', len);
    if (!eq || eq == p) {
      snprintf(why, whylen, "endpoint %d: expected KEY=ENDPOINT", n);
      return -1;
    }
    for (const char *k = p; k < eq; k++)
      if (!((*k >= 'a' && *k <= 'z') || (*k >= '0' && *k <= '9'))) {
        snprintf(why, whylen, "endpoint %d: a key of a-z and 0-9 expected", n);
        return -1;
      }
    if (len >= FFS_EP_MAX) {
      snprintf(why, whylen, "endpoint %d: %zu bytes (at most %d)", n, len, FFS_EP_MAX - 1);
      return -1;
    }
    int ok = 0;
    for (size_t s = 0; s < sizeof schemes / sizeof *schemes; s++)
      ok |= !strncmp(eq + 1, schemes[s], strlen(schemes[s]));
    for (const char *c = eq + 1; ok && c < p + len; c++) ok = *c > 0x20 && *c < 0x7f;
    if (!ok) {
      snprintf(why, whylen, "endpoint %d: expected ipc://, inproc:// or tcp:// and printable "
               "characters", n);
      return -1;
    }
    p += len;
  }
  return 0;
}

int ffs_topo_next(const ffs_topo_t *t, int i) {
  assert(t && i >= 0 && i < t->n_stages);
  return i + t->stages[i].n_shards - t->stages[i].shard;
}

int ffs_topo_max_rows(const ffs_topo_t *t) {
  int train = t->triples ? 3 * t->batch : t->pairs ? 2 * t->batch : t->batch;
  int eval = t->supervised ? t->eval_batch : t->eval_batch * t->classes; // candidate rows
  return train > eval ? train : eval;
}

int ffs_topo_feedback_cols(const ffs_topo_t *t, int from) {
  assert(t && from >= 0 && from < t->n_stages);
  if (ffs_kind_of(t->stages[from].kind)->backward) return t->stages[from].in_dim;
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

// ---- the graph of typed edges ----

static int s_add(ffs_edge_t *out, int n, int cap, ffs_edge_t e) {
  if (n < cap) out[n] = e;
  return n + 1;
}

int ffs_topo_edges(const ffs_topo_t *t, ffs_edge_t *out, int cap) {
  assert(t && (out || cap == 0));
  int n = 0, hwm = t->hwm_frames;
  for (int j = 0; j < t->n_stages; j++) { // data: into each layer from its in_from's group
    const ffs_stage_cfg_t *st = &t->stages[j];
    if (ffs_kind_of(st->kind)->role != FFS_ROLE_LAYER) continue;
    for (int i = 0; i < j; i++)
      if (t->stages[i].group == st->in_from)
        n = s_add(out, n, cap,
                  (ffs_edge_t){FFS_EDGE_DATA, FFS_POLICY_BLOCK, i, j, 0, st->in_dim, hwm});
  }
  for (int i = 0; i < t->n_stages; i++) { // then side stages, from the layer they name
    const ffs_stage_cfg_t *st = &t->stages[i];
    for (int j = t->readout + 1; j < t->n_stages; j++)
      if (t->stages[j].in_from == st->group && st->kind == FFS_STAGE_FF_LAYER)
        n = s_add(out, n, cap,
                  (ffs_edge_t){FFS_EDGE_DATA, FFS_POLICY_BLOCK, i, j, 0, t->stages[j].in_dim, hwm});
  }
  for (int i = 0; i < t->n_stages; i++) // reports: one channel per reporting layer's group
    if (ffs_topo_reports(t, i))
      n = s_add(out, n, cap,
                (ffs_edge_t){FFS_EDGE_REPORT, FFS_POLICY_BLOCK, i, t->readout, t->stages[i].group,
                             1 + t->stages[i].out_dim, hwm});
  for (int i = 0; i < t->n_stages; i++) { // peers: each shard to each sibling
    const ffs_stage_cfg_t *st = &t->stages[i];
    for (int k = 0; st->n_shards > 1 && k < st->n_shards; k++)
      if (k != st->shard)
        n = s_add(out, n, cap,
                  (ffs_edge_t){FFS_EDGE_PEER, FFS_POLICY_BLOCK, i, st->group + k, 0,
                               ffs_topo_max_rows(t) + 2, 16});
  }
  // feedback: latest wins, except a lockstep recurrent topology's top-down
  // edges between ff_layers, which carry at most one vector per sample group
  // in flight (a few) and must not lose one: their queue never fills
  int lockstep = t->ticks > 1 && t->timing == FFS_TIMING_LOCKSTEP;
  for (int k = 0; k < t->n_feedback; k++) {
    const ffs_feedback_cfg_t *e = &t->feedback[k];
    int reliable = lockstep && t->stages[e->from].kind == FFS_STAGE_FF_LAYER &&
                   t->stages[e->to].kind == FFS_STAGE_FF_LAYER;
    n = s_add(out, n, cap,
              (ffs_edge_t){FFS_EDGE_FEEDBACK, reliable ? FFS_POLICY_RELIABLE : FFS_POLICY_LATEST,
                           e->from, e->to, 0, ffs_topo_feedback_cols(t, e->from),
                           reliable ? 64 : 2});
  }
  // backward: each layer of a backward kind to the layer before it; one
  // frame per training frame in that layer's stash, which holds fewer than
  // the queue does, so a sender never waits long and none is lost
  for (int i = 0; i < t->readout; i++)
    if (ffs_kind_of(t->stages[i].kind)->backward &&
        ffs_kind_of(t->stages[i - 1].kind)->role == FFS_ROLE_LAYER)
      n = s_add(out, n, cap,
                (ffs_edge_t){FFS_EDGE_FEEDBACK, FFS_POLICY_RELIABLE, i, i - 1, 0,
                             ffs_topo_feedback_cols(t, i), 64});
  // lateral: each hidden layer of twin pipelines to its twin, one activity
  // frame per training frame; the receiver reads them as they come
  for (int i = 0; i < t->readout; i++)
    if (ffs_kind_of(t->stages[i].kind)->lateral && t->stages[i].twin >= 0)
      n = s_add(out, n, cap,
                (ffs_edge_t){FFS_EDGE_FEEDBACK, FFS_POLICY_RELIABLE, i, t->stages[i].twin, 0,
                             t->stages[i].out_dim, 64});
  return n;
}

int ffs_topo_reports(const ffs_topo_t *t, int i) {
  assert(t && i >= 0 && i < t->n_stages);
  const ffs_kind_t *k = ffs_kind_of(t->stages[i].kind);
  if (k->role != FFS_ROLE_LAYER) return 0;
  return k->backward ? ffs_topo_next(t, i) == t->readout : 1;
}

int ffs_topo_streamer(const ffs_topo_t *t) {
  ffs_edge_t e[FFS_MAX_EDGES];
  int n = ffs_topo_edges(t, e, FFS_MAX_EDGES), fed[FFS_MAX_STAGES] = {0};
  for (int k = 0; k < n; k++) fed[e[k].to] |= e[k].type == FFS_EDGE_DATA;
  for (int i = 0; i < t->n_stages; i++)
    if (!fed[i] && t->stages[i].kind == FFS_STAGE_SOURCE) return i;
  return 0; // a loaded topology has its source first
}
