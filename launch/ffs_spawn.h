// ffs_spawn: how the launcher starts its stages and learns that one ended,
// behind one ops table, so that the launcher's supervision (restarts, LOST,
// re-driven MARKs; launch/ffs_launch.c) works the same over any of them.
// Spawners: processes (fork + exec of `ffstream stage`, one per stage,
// supervised), threads (`--threads`: one thread per stage over inproc://,
// not supervised: a thread cannot be killed alone), ssh (each stage through
// a command template on its host: ffs_spawn_proc.c), and the step spawners
// of Slurm and MPI (one `srun --multi-prog` or MPMD `mpirun` for all
// stages, each finding its stage from its rank: ffs_spawn_step.c).
#ifndef FFS_SPAWN_H
#define FFS_SPAWN_H

#include <stddef.h>
#include <stdint.h>

#include "ffs_topo.h"

// Where stage i stands, as far as its spawner knows.
typedef enum {
  FFS_SPAWN_NONE,    // not started, or ended and reaped
  FFS_SPAWN_RUNNING, // started and not ended
  FFS_SPAWN_ENDED    // ended, not reaped yet: it will not read another message
} ffs_spawn_state_t;

// How a stage ended.
typedef struct {
  int signaled; // 1: killed by signal `code` (kill -9, the OOM killer); 0: exited
  int code;     // the signal, or the exit status
} ffs_spawn_exit_t;

typedef struct ffs_spawner ffs_spawner_t;

typedef struct {
  const char *mode;  // what summary.json's "mode" says: "processes", "threads", "ssh",
                     // "slurm", "mpi"
  int supervised;    // 1: a stage may end alone (reap says so) and be started again
  int remote;        // 1: stages may run elsewhere: the launcher hears of a lost one
                     // only through its silence (launch.silent_s)
  // Starts every stage at once (NULL: start is called for each). The step
  // spawners start all in one command. 0, or -1 with a message in err.
  int (*start_all)(ffs_spawner_t *sp, int resume, char *err, size_t errlen);
  // Starts stage i (again, after it was reaped); resume: from its checkpoint.
  // inc[k]: times stage k was restarted so far (every stage's; the shared-
  // memory descriptors carry them). Returns 0, or -1 with a message in err.
  int (*start)(ffs_spawner_t *sp, int i, int resume, const uint32_t *inc, char *err,
               size_t errlen);
  // Without waiting: a stage that ended since the last call, reaped (its
  // state is NONE after), and how it ended. Returns its index, or -1 when none.
  int (*reap)(ffs_spawner_t *sp, ffs_spawn_exit_t *how);
  ffs_spawn_state_t (*state)(ffs_spawner_t *sp, int i);
  // Stage i's (latest) process id, for the user and summary.json.
  int (*pid)(ffs_spawner_t *sp, int i);
  // Makes every running stage stop soon even if it does not read its control
  // socket (it may be blocked on a full queue): it checkpoints and exits.
  // force: the run failed or was interrupted (processes get SIGTERM only then).
  void (*stop)(ffs_spawner_t *sp, int force);
  // Ends stage i now, without its checkpoint, and reaps it. NULL when a
  // spawner cannot end one stage alone (threads).
  void (*kill)(ffs_spawner_t *sp, int i);
  // Waits until every stage has ended and reaps them all (threads: joins).
  void (*wait_all)(ffs_spawner_t *sp);
  void (*destroy)(ffs_spawner_t **sp_p);
} ffs_spawn_ops_t;

// Every spawner starts with this (its own state follows).
struct ffs_spawner {
  const ffs_spawn_ops_t *ops;
};

// What a spawner needs to start any stage; owned by the caller, outlives it.
typedef struct {
  const ffs_topo_t *topo;
  const char *topo_path;     // processes: the topology file they load
  const char *exe;           // processes: the ffstream binary
  const char *const *sets;   // processes: --set overrides, as given
  int n_sets;
  int no_shm;                // processes: they get shm=false (ffs_shm_probe failed)
  const char *run_dir;       // endpoint namespace (ffs_topo_endpoint)
  const char *out_dir;       // run output folder (checkpoints)
  const int *cores;          // per stage: the core to pin it to
  void *zctx;                // threads: the ZeroMQ context they share (inproc://)
  // a networked run (tcp between processes; docs/MULTIHOST.md); NULL / 0 otherwise
  const char *ctl_ep;        // the launcher's control endpoint (tcp://ADDRESS:PORT)
  const char *keys_dir;      // CURVE: the folder of the run's key pair (absolute)
  const char *cwd;           // the folder the stages run in (the topology's relative
                             // paths, data.dir, are relative to it)
  int silent_s;              // processes: a stage stops after 3 x this without its
                             // launcher (the launcher died, or its host is cut off)
} ffs_spawn_cfg_t;

// NULL when out of memory.
ffs_spawner_t *ffs_spawn_processes_new(const ffs_spawn_cfg_t *cfg);
ffs_spawner_t *ffs_spawn_threads_new(const ffs_spawn_cfg_t *cfg);
ffs_spawner_t *ffs_spawn_ssh_new(const ffs_spawn_cfg_t *cfg);
ffs_spawner_t *ffs_spawn_slurm_new(const ffs_spawn_cfg_t *cfg);
ffs_spawner_t *ffs_spawn_mpi_new(const ffs_spawn_cfg_t *cfg);

// ---- the `ffstream stage` command line every process spawner runs ----
#define FFS_SPAWN_ARGV_MAX 200
typedef struct {
  const char *argv[FFS_SPAWN_ARGV_MAX]; // NULL-terminated
  int argc;
  char core[16], silent[16], incs[FFS_MAX_STAGES * 12]; // strings argv points into
} ffs_spawn_args_t;
// Stage i's command line; i < 0: the stage finds itself from its rank
// (SLURM_PROCID, OMPI_COMM_WORLD_RANK, PMIX_RANK, PMI_RANK) and pins itself to its
// rank on its node. inc: restarts so far per stage (NULL: none).
void ffs_spawn_stage_args(const ffs_spawn_cfg_t *c, int i, int resume, const uint32_t *inc,
                          ffs_spawn_args_t *a);
// argv as one command line a POSIX shell reads back into the same words
// (each quoted where needed). 0, or -1 when it does not fit outlen.
int ffs_spawn_shell_join(const char *const *argv, char *out, size_t outlen);

// Sets OPENBLAS_CORETYPE to the kernels the stages should run (SkylakeX on
// an AVX-512 CPU, FFS_BLAS_CORETYPE when set). Returns 1 when that changed
// it: OpenBLAS reads it once, when it loads, so only processes started
// afterwards (or this one, re-executed) get those kernels.
int ffs_spawn_set_blas_coretype(void);
// The environment every stage starts in: one BLAS thread per pinned stage
// (unless OPENBLAS_NUM_THREADS says otherwise) and the kernels above.
void ffs_spawn_prepare_env(void);

#endif
