// ffs_spawn_thread: the threads spawner (`--threads`): each stage runs
// ffs_stage_run on a thread of the launcher's process, over inproc://
// endpoints in a shared ZeroMQ context. Not supervised: a thread cannot be
// killed alone, so a stage's end is only ever the run's end.
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "ffs_spawn.h"
#include "ffs_stage.h"

typedef struct s_threads s_threads_t;

typedef struct {
  ffs_stage_env_t env;
  pthread_t thr;
  int started, joined;
  atomic_int returned; // ffs_stage_run has returned
} s_thread_t;

struct s_threads {
  ffs_spawner_t base;
  ffs_spawn_cfg_t cfg;
  volatile sig_atomic_t stop; // every stage's stop flag
  s_thread_t th[FFS_MAX_STAGES];
};

static void *s_thread_main(void *arg) {
  s_thread_t *th = arg;
  ffs_stage_run(&th->env);
  atomic_store(&th->returned, 1);
  return NULL;
}

static int s_start(ffs_spawner_t *sp, int i, int resume, const uint32_t *inc, char *err,
                   size_t errlen) {
  (void)inc; // a thread is never restarted
  s_threads_t *self = (s_threads_t *)sp;
  const ffs_spawn_cfg_t *c = &self->cfg;
  s_thread_t *th = &self->th[i];
  th->env = (ffs_stage_env_t){.topo = c->topo, .index = i, .run_dir = c->run_dir,
                              .out_dir = c->out_dir, .zctx = c->zctx, .stop = &self->stop,
                              .core = c->cores[i], .thread_mode = 1, .resume = resume};
  atomic_store(&th->returned, 0);
  if (pthread_create(&th->thr, NULL, s_thread_main, th) != 0) {
    snprintf(err, errlen, "cannot start a thread for stage '%s'", c->topo->stages[i].name);
    return -1;
  }
  th->started = 1, th->joined = 0;
  return 0;
}

static int s_reap(ffs_spawner_t *sp, ffs_spawn_exit_t *how) {
  (void)sp, (void)how;
  return -1; // not supervised: threads are joined at the end (s_wait_all)
}

static ffs_spawn_state_t s_state(ffs_spawner_t *sp, int i) {
  const s_thread_t *th = &((s_threads_t *)sp)->th[i];
  return th->started && !th->joined && !atomic_load(&th->returned) ? FFS_SPAWN_RUNNING
                                                                   : FFS_SPAWN_NONE;
}

static int s_pid(ffs_spawner_t *sp, int i) {
  (void)sp, (void)i;
  return (int)getpid();
}

static void s_stop(ffs_spawner_t *sp, int force) {
  (void)force; // the flag costs a stage nothing: always set
  ((s_threads_t *)sp)->stop = 1;
}

static void s_wait_all(ffs_spawner_t *sp) {
  s_threads_t *self = (s_threads_t *)sp;
  for (int i = 0; i < self->cfg.topo->n_stages; i++) {
    s_thread_t *th = &self->th[i];
    if (th->started && !th->joined) pthread_join(th->thr, NULL), th->joined = 1;
  }
}

static void s_destroy(ffs_spawner_t **sp_p) {
  free(*sp_p);
  *sp_p = NULL;
}

static const ffs_spawn_ops_t s_ops = {
    .mode = "threads", .supervised = 0, .start = s_start, .reap = s_reap, .state = s_state,
    .pid = s_pid, .stop = s_stop, .kill = NULL, .wait_all = s_wait_all, .destroy = s_destroy};

ffs_spawner_t *ffs_spawn_threads_new(const ffs_spawn_cfg_t *cfg) {
  s_threads_t *self = calloc(1, sizeof *self);
  if (!self) return NULL;
  self->base.ops = &s_ops;
  self->cfg = *cfg;
  return &self->base;
}
