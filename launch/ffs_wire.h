// ffs_wire: the launcher's half of endpoint discovery. Each stage binds its
// inputs where it runs and reports them (BOUND: its host, its endpoints);
// once every stage has, each gets a WIRE naming, per output edge, the
// receiver's local endpoint when both run on one host (ipc, and shared
// memory when all of a stage's outputs stay there) or its tcp endpoint.
// No port is derived from another: a stage that restarts on a new port is
// simply wired again. Pure bookkeeping: no socket here.
#ifndef FFS_WIRE_H
#define FFS_WIRE_H

#include <stddef.h>

#include "ffs_ctl.h"
#include "ffs_topo.h"
#include "ffs_wiring.h"

typedef struct {
  int bound;                      // its BOUND came (since it last started)
  char host[FFS_CTL_HOST_MAX];    // the host it said it runs on
  char eps[FFS_CTL_EPS_MAX];      // its inputs' endpoints
} ffs_wire_stage_t;

typedef struct {
  const ffs_topo_t *t;
  int n_edges;
  ffs_edge_t edges[FFS_MAX_EDGES];
  ffs_wire_stage_t st[FFS_MAX_STAGES];
} ffs_wire_t;

void ffs_wire_init(ffs_wire_t *w, const ffs_topo_t *t);
// Stage i's BOUND (off the wire: checked). 0, or -1 with the reason in err.
int ffs_wire_bound(ffs_wire_t *w, int i, const char *host, const char *eps, char *err,
                   size_t errlen);
// 1 when every stage's BOUND has come.
int ffs_wire_all_bound(const ffs_wire_t *w);
// Stage i's WIRE into *m. shm_ok: shared memory is possible at all (the
// topology's shm and the launcher's probe). 0, or -1 with err naming the
// receiver that has no endpoint stage i can reach.
int ffs_wire_make(const ffs_wire_t *w, int i, int shm_ok, ffs_ctl_msg_t *m, char *err,
                  size_t errlen);
// 1 when stage from has an edge to stage to (it must be wired again after
// to restarts).
int ffs_wire_sends_to(const ffs_wire_t *w, int from, int to);

#endif
