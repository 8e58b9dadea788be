// ffs_launch: `ffstream run`: starts one pinned process (or thread) per
// stage (ffs_spawn.h), wires them through endpoints derived from the
// topology, does the ready handshake, drives train/eval epochs over the
// control channel (ffs_ctl.h), supervises, and shuts everything down; the
// progress line, metrics.csv and summary.json are ffs_results.h.
#ifndef FFS_LAUNCH_H
#define FFS_LAUNCH_H

#include <signal.h>

#include "ffs_topo.h"

typedef struct {
  const char *topo_path;       // the topology file
  const char *const *sets;     // --set overrides, as given
  int n_sets;
  const char *out_dir;         // --out; NULL = runs/<name>-<time>
  int threads;                 // --threads: stages as threads over inproc://
  int quiet;                   // no progress line
  int resume;                  // out_dir holds a stopped run to continue
  const char *exe;             // path of the ffstream binary (for children)
  const struct ffs_plan *plan; // what the planner chose (already among sets); NULL = none
} ffs_launch_opts_t;

// Runs the topology to completion. Returns the process exit code:
// 0 success, 1 a stage failed, 2 bad topology or options, 130 interrupted.
int ffs_launch_run(const ffs_launch_opts_t *o, const ffs_topo_t *t);

// The flag SIGINT / SIGTERM set (the one mutable global, see STYLE.md).
extern volatile sig_atomic_t ffs_interrupted;
void ffs_install_signal_handlers(void);

#endif
