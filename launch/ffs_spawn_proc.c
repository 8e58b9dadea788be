// ffs_spawn_proc: the processes spawner: each stage is a child process
// running `ffstream stage` (fork + exec), reaped with waitpid; the launcher
// restarts one that a signal killed. Only local children: a stage on another
// host needs a spawner of its own (ffs_spawn.h).
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ffs_spawn.h"

#define S_MAX_SETS 64 // --set overrides passed on

typedef struct {
  ffs_spawner_t base;
  ffs_spawn_cfg_t cfg;
  pid_t pid[FFS_MAX_STAGES];  // > 0 running or ended, not reaped; 0 never started
  int reaped[FFS_MAX_STAGES]; // pid[i] was reaped (kept for the summary)
} s_procs_t;

static int s_start(ffs_spawner_t *sp, int i, int resume, const uint32_t *inc, char *err,
                   size_t errlen) {
  s_procs_t *self = (s_procs_t *)sp;
  const ffs_spawn_cfg_t *c = &self->cfg;
  const ffs_topo_t *t = c->topo;
  char core[16];
  snprintf(core, sizeof core, "%d", c->cores[i]);
  const char *argv[16 + 2 * S_MAX_SETS];
  int a = 0;
  argv[a++] = c->exe;
  argv[a++] = "stage";
  argv[a++] = "--topology", argv[a++] = c->topo_path;
  argv[a++] = "--name", argv[a++] = t->stages[i].name;
  argv[a++] = "--run-dir", argv[a++] = c->run_dir;
  argv[a++] = "--out", argv[a++] = c->out_dir;
  argv[a++] = "--core", argv[a++] = core;
  if (resume) argv[a++] = "--resume";
  // after a restart every stage learns each one's incarnation (restarts so
  // far): the shared-memory descriptors it sends and accepts carry it
  char incs[FFS_MAX_STAGES * 12] = "";
  int any = 0;
  for (int k = 0, n = 0; k < t->n_stages; k++) {
    n += snprintf(incs + n, sizeof incs - (size_t)n, "%s%u", k ? "," : "", inc[k]);
    any |= inc[k] > 0;
  }
  if (any) argv[a++] = "--incarnations", argv[a++] = incs;
  for (int k = 0; k < c->n_sets && k < S_MAX_SETS; k++) argv[a++] = "--set", argv[a++] = c->sets[k];
  if (c->no_shm) argv[a++] = "--set", argv[a++] = "shm=false";
  argv[a] = NULL;
  pid_t pid = fork();
  if (pid < 0) {
    snprintf(err, errlen, "fork: %s", strerror(errno));
    return -1;
  }
  if (pid == 0) {
    execv(c->exe, (char *const *)argv);
    fprintf(stderr, "ffstream: cannot exec %s: %s\n", c->exe, strerror(errno));
    _exit(127);
  }
  self->pid[i] = pid, self->reaped[i] = 0;
  return 0;
}

static int s_reap(ffs_spawner_t *sp, ffs_spawn_exit_t *how) {
  s_procs_t *self = (s_procs_t *)sp;
  for (int i = 0; i < self->cfg.topo->n_stages; i++) {
    if (self->pid[i] <= 0 || self->reaped[i]) continue;
    int status;
    if (waitpid(self->pid[i], &status, WNOHANG) != self->pid[i]) continue;
    self->reaped[i] = 1;
    how->signaled = WIFSIGNALED(status);
    how->code = how->signaled ? WTERMSIG(status) : WEXITSTATUS(status);
    return i;
  }
  return -1;
}

static ffs_spawn_state_t s_state(ffs_spawner_t *sp, int i) {
  s_procs_t *self = (s_procs_t *)sp;
  pid_t pid = self->pid[i];
  if (pid <= 0 || self->reaped[i]) return FFS_SPAWN_NONE;
  siginfo_t si = {0}; // has it exited? (leaves it to reap)
  if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid)
    return FFS_SPAWN_ENDED;
  return FFS_SPAWN_RUNNING;
}

static int s_pid(ffs_spawner_t *sp, int i) { return (int)((s_procs_t *)sp)->pid[i]; }

static void s_stop(ffs_spawner_t *sp, int force) {
  s_procs_t *self = (s_procs_t *)sp;
  if (!force) return; // STOP on the control channel is enough
  for (int i = 0; i < self->cfg.topo->n_stages; i++)
    if (self->pid[i] > 0 && !self->reaped[i]) kill(self->pid[i], SIGTERM);
}

static void s_kill(ffs_spawner_t *sp, int i) {
  s_procs_t *self = (s_procs_t *)sp;
  if (self->pid[i] <= 0 || self->reaped[i]) return;
  kill(self->pid[i], SIGKILL);
  waitpid(self->pid[i], NULL, 0);
  self->reaped[i] = 1;
}

static void s_wait_all(ffs_spawner_t *sp) {
  s_procs_t *self = (s_procs_t *)sp;
  for (int i = 0; i < self->cfg.topo->n_stages; i++)
    if (self->pid[i] > 0 && !self->reaped[i]) {
      waitpid(self->pid[i], NULL, 0);
      self->reaped[i] = 1;
    }
}

static void s_destroy(ffs_spawner_t **sp_p) {
  free(*sp_p);
  *sp_p = NULL;
}

static const ffs_spawn_ops_t s_ops = {
    .mode = "processes", .supervised = 1, .start = s_start, .reap = s_reap, .state = s_state,
    .pid = s_pid, .stop = s_stop, .kill = s_kill, .wait_all = s_wait_all, .destroy = s_destroy};

ffs_spawner_t *ffs_spawn_processes_new(const ffs_spawn_cfg_t *cfg) {
  s_procs_t *self = calloc(1, sizeof *self);
  if (!self) return NULL;
  self->base.ops = &s_ops;
  self->cfg = *cfg;
  return &self->base;
}
