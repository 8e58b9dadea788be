// ffs_spawn_proc: the processes spawner: each stage is a child process
// running `ffstream stage` (fork + exec), reaped with waitpid; the launcher
// restarts one that a signal killed. The ssh spawner is the same with each
// child a shell running launch.ssh ("ssh {host} {cmd}", or "ip netns exec
// {host} {cmd}" for hosts that are network namespaces): the child's end is
// the remote stage's end, as ssh reports it.
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ffs_spawn.h"

typedef struct {
  ffs_spawner_t base;
  ffs_spawn_cfg_t cfg;
  pid_t pid[FFS_MAX_STAGES];  // > 0 running or ended, not reaped; 0 never started
  int reaped[FFS_MAX_STAGES]; // pid[i] was reaped (kept for the summary)
  int ssh;                    // 1: through launch.ssh, a shell command per stage
  char line[8192];            // ssh: the command the shell runs
} s_procs_t;

// Expands launch.ssh for stage i: {host} the host's name, {address} its
// address, {cmd} the stage's command line (shell-quoted; a template that
// runs it through a remote shell, as ssh does, reads the same words).
static int s_ssh_line(s_procs_t *self, int i, const ffs_spawn_args_t *a, char *err,
                      size_t errlen) {
  const ffs_topo_t *t = self->cfg.topo;
  const char *host = t->hosts[t->stages[i].host].name, *addr = t->hosts[t->stages[i].host].address;
  char cmd[6144];
  if (ffs_spawn_shell_join(a->argv, cmd, sizeof cmd) < 0) goto long_;
  size_t n = (size_t)snprintf(self->line, sizeof self->line, "exec ");
  for (const char *p = t->ssh_cmd; *p;) {
    const char *val = NULL;
    size_t skip = 1;
    if (!strncmp(p, "{host}", 6)) val = host, skip = 6;
    else if (!strncmp(p, "{address}", 9)) val = addr, skip = 9;
    else if (!strncmp(p, "{cmd}", 5)) val = cmd, skip = 5;
    size_t len = val ? strlen(val) : 1;
    if (n + len + 1 >= sizeof self->line) goto long_;
    memcpy(self->line + n, val ? val : p, len);
    n += len, p += skip;
  }
  self->line[n] = 0;
  return 0;
long_:
  snprintf(err, errlen, "stage '%s': its launch.ssh command is longer than %zu bytes",
           t->stages[i].name, sizeof self->line - 1);
  return -1;
}

static int s_start(ffs_spawner_t *sp, int i, int resume, const uint32_t *inc, char *err,
                   size_t errlen) {
  s_procs_t *self = (s_procs_t *)sp;
  const ffs_spawn_cfg_t *c = &self->cfg;
  ffs_spawn_args_t a;
  ffs_spawn_stage_args(c, i, resume, inc, &a);
  const char *sh[4] = {"/bin/sh", "-c", self->line, NULL}; // "exec ...": the child is the command
  const char *const *argv = a.argv;
  if (self->ssh && s_ssh_line(self, i, &a, err, errlen) < 0) return -1;
  if (self->ssh) argv = sh;
  pid_t pid = fork();
  if (pid < 0) {
    snprintf(err, errlen, "fork: %s", strerror(errno));
    return -1;
  }
  if (pid == 0) {
    execv(argv[0], (char *const *)argv);
    fprintf(stderr, "ffstream: cannot exec %s: %s\n", argv[0], strerror(errno));
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
static const ffs_spawn_ops_t s_ssh_ops = {
    .mode = "ssh", .supervised = 1, .remote = 1, .start = s_start, .reap = s_reap,
    .state = s_state, .pid = s_pid, .stop = s_stop, .kill = s_kill, .wait_all = s_wait_all,
    .destroy = s_destroy};

static ffs_spawner_t *s_new(const ffs_spawn_cfg_t *cfg, int ssh) {
  s_procs_t *self = calloc(1, sizeof *self);
  if (!self) return NULL;
  self->base.ops = ssh ? &s_ssh_ops : &s_ops;
  self->cfg = *cfg;
  self->ssh = ssh;
  return &self->base;
}

ffs_spawner_t *ffs_spawn_processes_new(const ffs_spawn_cfg_t *cfg) { return s_new(cfg, 0); }
ffs_spawner_t *ffs_spawn_ssh_new(const ffs_spawn_cfg_t *cfg) { return s_new(cfg, 1); }
