// ffs_spawn_step: the step spawners, Slurm and MPI: every stage starts in
// one command that the cluster's own launcher runs, each task finding its
// stage from its rank (SLURM_PROCID; OMPI_COMM_WORLD_RANK, PMIX_RANK or PMI_RANK).
// Slurm: a --multi-prog file in OUT and one `srun` step inside the
// allocation the launcher runs in. MPI: one MPMD `mpirun` line, a context
// per stage (with -host when the topology places it). Not supervised: a
// stage cannot be restarted alone inside a step; a lost one is found by its
// silence and the run stops cleanly (`--resume` continues it).
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ffs_log.h"
#include "ffs_spawn.h"

#define S_WAIT_S 10.0 // longest wait for the step to end after every stage was told to

typedef struct {
  ffs_spawner_t base;
  ffs_spawn_cfg_t cfg;
  int mpi;                 // 0 Slurm, 1 MPI
  pid_t pid;               // the srun / mpirun process (0: not started)
  int ended, status;       // it ended, with this wait status
  int next_reap;           // stages reported ended so far, after it ended
  char line[65536];        // the command the shell runs
} s_step_t;

static double s_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// Appends text to self->line. 0, or -1 when it does not fit.
static int s_cat(s_step_t *self, const char *text) {
  size_t n = strlen(self->line), len = strlen(text);
  if (n + len + 1 > sizeof self->line) return -1;
  memcpy(self->line + n, text, len + 1);
  return 0;
}

// Slurm: OUT/multi-prog.conf, one line for every rank ("0-N-1 COMMAND":
// each task finds its stage from SLURM_PROCID), and the srun line.
static int s_slurm_line(s_step_t *self, const char *cmd, char *err, size_t errlen) {
  const ffs_spawn_cfg_t *c = &self->cfg;
  char path[FFS_PATH_MAX + 32], head[FFS_PATH_MAX + 512];
  snprintf(path, sizeof path, "%s/multi-prog.conf", c->out_dir);
  FILE *f = fopen(path, "w");
  if (!f) {
    snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
    return -1;
  }
  fprintf(f, "# ffstream: one task per stage of %s; each finds its stage from SLURM_PROCID\n",
          c->topo->path);
  fprintf(f, "0-%d %s\n", c->topo->n_stages - 1, cmd);
  if (fclose(f) != 0) {
    snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
    return -1;
  }
  snprintf(head, sizeof head, "exec %s --ntasks=%d --kill-on-bad-exit=0 --multi-prog ",
           c->topo->srun_cmd, c->topo->n_stages);
  char quoted[FFS_PATH_MAX + 64];
  const char *words[] = {path, NULL};
  if (ffs_spawn_shell_join(words, quoted, sizeof quoted) < 0) return -1;
  return s_cat(self, head) || s_cat(self, quoted) ? -1 : 0;
}

// MPI: an MPMD line, one context per stage in rank order (-host where the
// topology places it); every context runs the same command.
static int s_mpi_line(s_step_t *self, const char *cmd) {
  const ffs_topo_t *t = self->cfg.topo;
  char ctx[256];
  if (s_cat(self, "exec ") || s_cat(self, t->mpirun_cmd)) return -1;
  for (int i = 0; i < t->n_stages; i++) {
    if (t->n_hosts)
      snprintf(ctx, sizeof ctx, "%s -np 1 -host %s ", i ? " :" : "",
               t->hosts[t->stages[i].host].name);
    else
      snprintf(ctx, sizeof ctx, "%s -np 1 ", i ? " :" : "");
    if (s_cat(self, ctx) || s_cat(self, cmd)) return -1;
  }
  return 0;
}

static int s_start_all(ffs_spawner_t *sp, int resume, char *err, size_t errlen) {
  s_step_t *self = (s_step_t *)sp;
  err[0] = 0;
  ffs_spawn_args_t a;
  ffs_spawn_stage_args(&self->cfg, -1, resume, NULL, &a);
  char cmd[8192];
  self->line[0] = 0;
  if (ffs_spawn_shell_join(a.argv, cmd, sizeof cmd) < 0 ||
      (self->mpi ? s_mpi_line(self, cmd) : s_slurm_line(self, cmd, err, errlen)) < 0) {
    if (!err[0]) snprintf(err, errlen, "the %s command line is too long", sp->ops->mode);
    return -1;
  }
  ffs_info("%s: %.300s%s", sp->ops->mode, self->line + 5, strlen(self->line) > 305 ? " ..." : "");
  pid_t pid = fork();
  if (pid < 0) {
    snprintf(err, errlen, "fork: %s", strerror(errno));
    return -1;
  }
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c", self->line, (char *)NULL);
    _exit(127);
  }
  self->pid = pid, self->ended = 0, self->next_reap = 0;
  return 0;
}

static int s_start(ffs_spawner_t *sp, int i, int resume, const uint32_t *inc, char *err,
                   size_t errlen) {
  (void)i, (void)resume, (void)inc;
  snprintf(err, errlen, "%s: a stage cannot be started alone inside a step", sp->ops->mode);
  return -1;
}

static void s_poll_end(s_step_t *self) {
  if (self->pid <= 0 || self->ended) return;
  if (waitpid(self->pid, &self->status, WNOHANG) == self->pid) self->ended = 1;
}

// Once the step ended, every stage ended with it: reported one by one.
static int s_reap(ffs_spawner_t *sp, ffs_spawn_exit_t *how) {
  s_step_t *self = (s_step_t *)sp;
  s_poll_end(self);
  if (!self->ended || self->next_reap >= self->cfg.topo->n_stages) return -1;
  how->signaled = WIFSIGNALED(self->status);
  how->code = how->signaled ? WTERMSIG(self->status) : WEXITSTATUS(self->status);
  return self->next_reap++;
}

static ffs_spawn_state_t s_state(ffs_spawner_t *sp, int i) {
  s_step_t *self = (s_step_t *)sp;
  if (self->pid <= 0 || (self->ended && i < self->next_reap)) return FFS_SPAWN_NONE;
  s_poll_end(self);
  return self->ended ? FFS_SPAWN_ENDED : FFS_SPAWN_RUNNING;
}

static int s_pid(ffs_spawner_t *sp, int i) {
  (void)i;
  return (int)((s_step_t *)sp)->pid;
}

static void s_stop(ffs_spawner_t *sp, int force) {
  s_step_t *self = (s_step_t *)sp;
  // srun and mpirun pass SIGTERM on to every task
  if (force && self->pid > 0 && !self->ended) kill(self->pid, SIGTERM);
}

static void s_wait_all(ffs_spawner_t *sp) {
  s_step_t *self = (s_step_t *)sp;
  double t0 = s_now();
  while (self->pid > 0 && !self->ended) {
    s_poll_end(self);
    if (self->ended) break;
    if (s_now() - t0 > S_WAIT_S) {
      ffs_warn("%s did not end %.0f s after its stages were told to stop: killing it",
               sp->ops->mode, S_WAIT_S);
      kill(self->pid, SIGKILL);
      waitpid(self->pid, &self->status, 0);
      self->ended = 1;
      break;
    }
    usleep(20000);
  }
  self->next_reap = self->cfg.topo->n_stages;
}

static void s_destroy(ffs_spawner_t **sp_p) {
  free(*sp_p);
  *sp_p = NULL;
}

static const ffs_spawn_ops_t s_slurm_ops = {
    .mode = "slurm", .remote = 1, .start_all = s_start_all, .start = s_start, .reap = s_reap,
    .state = s_state, .pid = s_pid, .stop = s_stop, .wait_all = s_wait_all,
    .destroy = s_destroy};
static const ffs_spawn_ops_t s_mpi_ops = {
    .mode = "mpi", .remote = 1, .start_all = s_start_all, .start = s_start, .reap = s_reap,
    .state = s_state, .pid = s_pid, .stop = s_stop, .wait_all = s_wait_all,
    .destroy = s_destroy};

static ffs_spawner_t *s_new(const ffs_spawn_cfg_t *cfg, int mpi) {
  s_step_t *self = calloc(1, sizeof *self);
  if (!self) return NULL;
  self->base.ops = mpi ? &s_mpi_ops : &s_slurm_ops;
  self->cfg = *cfg;
  self->mpi = mpi;
  return &self->base;
}

ffs_spawner_t *ffs_spawn_slurm_new(const ffs_spawn_cfg_t *cfg) { return s_new(cfg, 0); }
ffs_spawner_t *ffs_spawn_mpi_new(const ffs_spawn_cfg_t *cfg) { return s_new(cfg, 1); }
