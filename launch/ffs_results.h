// ffs_results: what a run shows and leaves behind: the progress line, the
// lines per evaluated epoch, metrics.csv (a row per evaluation) and
// summary.json. The launcher collects the figures (the stages' STATS and
// RESULT messages); this module only formats them, and its formats are what
// tests/check_e2e.c and bench/ parse: change them only together.
#ifndef FFS_RESULTS_H
#define FFS_RESULTS_H

#include "ffs_ctl.h"
#include "ffs_topo.h"

// What the launcher knows of one stage, for the outputs.
typedef struct {
  int pid;               // its (latest) process; the launcher's in threads mode
  int core;              // the core it is pinned to
  int restarts;          // times the supervisor restarted it from its checkpoint
  char blas[16];         // OpenBLAS's kernels in the stage (its READY message)
  char host[FFS_CTL_HOST_MAX]; // the host it runs on (its BOUND message)
  ffs_ctl_stats_t stats; // its latest STATS (zero before the first)
} ffs_results_stage_t;

typedef struct ffs_results ffs_results_t;

// Opens out_dir/metrics.csv (appended to when resume and it exists). mode:
// "processes" or "threads", as summary.json says. quiet: no progress line.
// NULL when out of memory.
ffs_results_t *ffs_results_new(const ffs_topo_t *t, const char *out_dir, int resume,
                               const char *mode, int quiet);
void ffs_results_destroy(ffs_results_t **self_p);

// The placement plan the run goes with (launch/ffs_plan.h; kept, not copied):
// summary.json's "plan".
struct ffs_plan;
// train.mode: stream: the input's error that ended the stream early (copied),
// for summary.json's stream.input_error.
void ffs_results_set_input_error(ffs_results_t *self, const char *why);
void ffs_results_set_plan(ffs_results_t *self, const struct ffs_plan *plan);

// The run's clock starts (wall_s in every output counts from t0, ffs_now()).
void ffs_results_start(ffs_results_t *self, double t0);

// An evaluation's RESULT (the first of its phase): becomes the latest result,
// a row of metrics.csv and two lines on stdout. train_s, train_samples: the
// training time and samples of the run so far.
void ffs_results_on_result(ffs_results_t *self, const ffs_ctl_msg_t *m, double train_s,
                           long train_samples);

// The progress line (every 0.5 s on a terminal, every 10 s otherwise;
// nothing when quiet). last_epoch_done: the latest evaluated epoch, -1 none.
void ffs_results_progress(ffs_results_t *self, const ffs_results_stage_t *st, int last_epoch_done);
// Clears a progress line left on the terminal.
void ffs_results_end_progress(ffs_results_t *self);

// Writes out_dir/sets: the overrides the stages load the topology with, one
// a line (the user's --set list, then the planner's, as in OUT/plan), so
// that `ffstream saliency` rebuilds the network the checkpoints hold. Logs
// a warning when it cannot.
void ffs_results_write_sets(const char *out_dir, const char *const *sets, int n_sets);

// Writes out_dir/summary.json for exit code rc (0 ok, 130 interrupted, else failed).
void ffs_results_write_summary(ffs_results_t *self, const ffs_results_stage_t *st, int rc);
// The run's last lines on stdout: its result, if any, and where the summary is.
void ffs_results_print_final(const ffs_results_t *self);

#endif
