// ffs_pin: hwloc topology discovery and binding. The hwloc topology is
// loaded per call (start-up only, never in a steady-state loop).
#include "ffs_pin.h"

#include "ffs_kind.h"

#include <hwloc.h>
#include <stdlib.h>

#include "ffs_log.h"

static hwloc_topology_t s_load(void) {
  hwloc_topology_t topo;
  if (hwloc_topology_init(&topo) < 0) return NULL;
  // only the cores this process may run on: `taskset -c 0 ffstream run ...`
  // runs the whole pipeline on core 0 (and a CPU quota set so is honoured)
  hwloc_topology_set_flags(topo, HWLOC_TOPOLOGY_FLAG_IS_THISSYSTEM |
                                     HWLOC_TOPOLOGY_FLAG_RESTRICT_TO_CPUBINDING);
  if (hwloc_topology_load(topo) < 0) {
    hwloc_topology_destroy(topo);
    return NULL;
  }
  return topo;
}

static int s_core_type(hwloc_topology_t topo) {
  return hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE) > 0 ? HWLOC_OBJ_CORE : HWLOC_OBJ_PU;
}

int ffs_pin_ncores(void) {
  hwloc_topology_t topo = s_load();
  if (!topo) return 1;
  int n = hwloc_get_nbobjs_by_type(topo, (hwloc_obj_type_t)s_core_type(topo));
  hwloc_topology_destroy(topo);
  return n > 0 ? n : 1;
}

int ffs_pin_plan(const ffs_topo_t *t, int ncores, int *cores) {
  if (ncores < 1) ncores = 1;
  double weight[FFS_MAX_STAGES], heaviest = 1.0;
  for (int i = 0; i < t->n_stages; i++) {
    const ffs_stage_cfg_t *s = &t->stages[i];
    // a kind's record says whether it weighs its weights (in x units) or
    // is light: a twentieth of the heaviest stage
    weight[i] = ffs_kind_of(s->kind)->light ? 0.0 : (double)s->in_dim * s->units;
    heaviest = weight[i] > heaviest ? weight[i] : heaviest;
  }
  for (int i = 0; i < t->n_stages; i++)
    if (ffs_kind_of(t->stages[i].kind)->light) weight[i] = heaviest / 20.0;
  double load[4096] = {0};
  if (ncores > 4096) ncores = 4096;
  int placed[FFS_MAX_STAGES] = {0};
  for (int i = 0; i < t->n_stages; i++)
    if (t->stages[i].core >= 0) {
      cores[i] = t->stages[i].core % ncores;
      load[cores[i]] += weight[i];
      placed[i] = 1;
    }
  for (;;) { // longest-processing-time-first onto the least loaded core
    int next = -1;
    for (int i = 0; i < t->n_stages; i++)
      if (!placed[i] && (next < 0 || weight[i] > weight[next])) next = i;
    if (next < 0) break;
    int best = 0;
    for (int c = 1; c < ncores; c++)
      if (load[c] < load[best]) best = c;
    cores[next] = best;
    load[best] += weight[next];
    placed[next] = 1;
  }
  int shared = 0;
  for (int i = 0; i < t->n_stages; i++)
    for (int j = 0; j < i; j++)
      if (cores[i] == cores[j]) {
        shared++;
        break;
      }
  return shared;
}

int ffs_pin_to_core(int core, int thread_only) {
  if (getenv("FFS_NO_PIN")) return 0;
  hwloc_topology_t topo = s_load();
  if (!topo) {
    ffs_warn("hwloc: cannot load the machine topology; running unpinned");
    return -1;
  }
  hwloc_obj_type_t type = (hwloc_obj_type_t)s_core_type(topo);
  int n = hwloc_get_nbobjs_by_type(topo, type);
  int rc = -1;
  if (n > 0) {
    if (core >= n) {
      ffs_warn("core %d does not exist (%d cores): wrapping to core %d", core, n, core % n);
      core %= n;
    }
    hwloc_obj_t obj = hwloc_get_obj_by_type(topo, type, (unsigned)core);
    if (obj) {
      hwloc_bitmap_t set = hwloc_bitmap_dup(obj->cpuset);
      hwloc_bitmap_singlify(set); // one PU: no migration between hyperthreads
      rc = hwloc_set_cpubind(topo, set, thread_only ? HWLOC_CPUBIND_THREAD : HWLOC_CPUBIND_PROCESS);
      hwloc_bitmap_free(set);
    }
  }
  if (rc < 0) ffs_warn("hwloc: could not bind to core %d; running unpinned", core);
  hwloc_topology_destroy(topo);
  return rc < 0 ? -1 : 0;
}
