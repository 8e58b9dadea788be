// ffs_wire: BOUND in, WIRE out (see ffs_wire.h): which of a receiver's
// endpoints each sender connects to.
#include "ffs_wire.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

void ffs_wire_init(ffs_wire_t *w, const ffs_topo_t *t) {
  assert(w && t);
  memset(w, 0, sizeof *w);
  w->t = t;
  w->n_edges = ffs_topo_edges(t, w->edges, FFS_MAX_EDGES);
}

int ffs_wire_bound(ffs_wire_t *w, int i, const char *host, const char *eps, char *err,
                   size_t errlen) {
  assert(w && i >= 0 && i < w->t->n_stages);
  char why[256];
  if (ffs_eps_check(eps, why, sizeof why) < 0) {
    snprintf(err, errlen, "its BOUND lists a bad endpoint: %s", why);
    return -1;
  }
  for (const char *c = host; *c; c++)
    if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
          *c == '.' || *c == '-' || *c == '_')) {
      snprintf(err, errlen, "its BOUND names its host with a character other than A-Z a-z 0-9 "
               ". - _");
      return -1;
    }
  if (!host[0]) {
    snprintf(err, errlen, "its BOUND names no host");
    return -1;
  }
  ffs_wire_stage_t *s = &w->st[i];
  snprintf(s->host, sizeof s->host, "%s", host);
  snprintf(s->eps, sizeof s->eps, "%s", eps);
  s->bound = 1;
  return 0;
}

int ffs_wire_all_bound(const ffs_wire_t *w) {
  for (int i = 0; i < w->t->n_stages; i++)
    if (!w->st[i].bound) return 0;
  return 1;
}

static ffs_chan_t s_chan(ffs_edge_type_t type) {
  switch (type) {
  case FFS_EDGE_REPORT: return FFS_CHAN_REP;
  case FFS_EDGE_FEEDBACK: return FFS_CHAN_FB;
  case FFS_EDGE_PEER: return FFS_CHAN_PEER;
  default: return FFS_CHAN_IN;
  }
}

// The endpoint of receiver r's channel key that a sender on host `host`
// uses: the local one (ipc, inproc) on r's own host, else tcp. 1 when it
// is local, 0 tcp, -1 none.
static int s_pick(const ffs_wire_stage_t *r, const char *key, const char *host, char *out,
                  size_t outlen) {
  char ep[FFS_EP_MAX];
  int same = !strcmp(r->host, host), got = -1;
  for (int nth = 0; ffs_eps_get(r->eps, key, nth, ep, sizeof ep) == 0; nth++) {
    int local = strncmp(ep, "tcp://", 6) != 0;
    if (local && !same) continue; // an ipc name on another host is another file
    if (got < 0 || (local && got == 0)) { // local wins on one host
      snprintf(out, outlen, "%s", ep);
      got = local;
    }
  }
  return got;
}

int ffs_wire_make(const ffs_wire_t *w, int i, int shm_ok, ffs_ctl_msg_t *m, char *err,
                  size_t errlen) {
  assert(w && m && i >= 0 && i < w->t->n_stages);
  memset(m, 0, sizeof *m);
  m->type = FFS_CTL_WIRE;
  int all_local = 1;
  char key[16], ep[FFS_EP_MAX], edge[16];
  for (int k = 0; k < w->n_edges; k++) {
    const ffs_edge_t *e = &w->edges[k];
    if (e->from != i) continue;
    const ffs_wire_stage_t *r = &w->st[e->to];
    ffs_chan_key(s_chan(e->type), e->sub, key, sizeof key);
    int local = s_pick(r, key, w->st[i].host, ep, sizeof ep);
    if (local < 0) {
      snprintf(err, errlen, "stage '%s' (host %s) cannot reach stage '%s' (host %s): it bound "
               "its '%s' input only where %s cannot connect (expected a tcp endpoint; a run "
               "over several hosts binds one)", w->t->stages[i].name, w->st[i].host,
               w->t->stages[e->to].name, r->host, key, w->st[i].host);
      return -1;
    }
    all_local &= local;
    snprintf(edge, sizeof edge, "%d", k);
    if (ffs_eps_add(m->wire.eps, sizeof m->wire.eps, edge, ep) < 0) {
      snprintf(err, errlen, "stage '%s': too many endpoints for one WIRE", w->t->stages[i].name);
      return -1;
    }
  }
  m->wire.shm = shm_ok && all_local;
  return 0;
}

int ffs_wire_sends_to(const ffs_wire_t *w, int from, int to) {
  for (int k = 0; k < w->n_edges; k++)
    if (w->edges[k].from == from && w->edges[k].to == to) return 1;
  return 0;
}
