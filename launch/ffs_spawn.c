// ffs_spawn: what every spawner shares: the environment the stages start in
// (OpenBLAS's threads and kernels) and the `ffstream stage` command line.
// The spawners are ffs_spawn_proc.c (processes, ssh), ffs_spawn_thread.c
// (threads) and ffs_spawn_step.c (Slurm, MPI); the interface is ffs_spawn.h.
#include "ffs_spawn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ffs_log.h"

// OpenBLAS 0.3.21 runs its AVX2 kernels on AVX-512 CPUs it does not know,
// and a machine-wide OPENBLAS_CORETYPE (this workplace sets Haswell) pins
// them too: the stages get SkylakeX kernels wherever AVX-512 is there.
// FFS_BLAS_CORETYPE, when set, is what they get instead.
int ffs_spawn_set_blas_coretype(void) {
  const char *coretype = getenv("FFS_BLAS_CORETYPE"), *had = getenv("OPENBLAS_CORETYPE");
  __builtin_cpu_init();
  if (!coretype && __builtin_cpu_supports("avx512f")) coretype = "SkylakeX";
  if (!coretype || !coretype[0] || (had && !strcmp(had, coretype))) return 0;
  if (had)
    ffs_info("blas: the stages use OpenBLAS's %s kernels, not OPENBLAS_CORETYPE=%s from the "
             "environment (FFS_BLAS_CORETYPE chooses)", coretype, had);
  setenv("OPENBLAS_CORETYPE", coretype, 1);
  return 1;
}

void ffs_spawn_prepare_env(void) {
  // threads mode: main() has already re-executed with these kernels
  setenv("OPENBLAS_NUM_THREADS", "1", 0);
  ffs_spawn_set_blas_coretype();
}

// ---- the `ffstream stage` command line ----

void ffs_spawn_stage_args(const ffs_spawn_cfg_t *c, int i, int resume, const uint32_t *inc,
                          ffs_spawn_args_t *a) {
  const ffs_topo_t *t = c->topo;
  int n = 0;
  const char **v = a->argv;
  v[n++] = c->exe;
  v[n++] = "stage";
  v[n++] = "--topology", v[n++] = c->topo_path;
  if (i >= 0) {
    const ffs_stage_cfg_t *st = &t->stages[i];
    snprintf(a->core, sizeof a->core, "%d", c->cores[i]);
    v[n++] = "--name", v[n++] = st->name;
    v[n++] = "--core", v[n++] = a->core;
    if (t->n_hosts) {
      v[n++] = "--host", v[n++] = t->hosts[st->host].name;
      if (c->ctl_ep) v[n++] = "--bind", v[n++] = t->hosts[st->host].address;
    } else if (c->ctl_ep && t->launcher == FFS_LAUNCHER_LOCAL) {
      v[n++] = "--bind", v[n++] = t->tcp_host;
    }
  } else {
    v[n++] = "--core", v[n++] = "local"; // its rank on its node
  }
  v[n++] = "--run-dir", v[n++] = c->run_dir;
  v[n++] = "--out", v[n++] = c->out_dir;
  if (c->ctl_ep) v[n++] = "--ctl", v[n++] = c->ctl_ep;
  if (c->silent_s > 0) {
    snprintf(a->silent, sizeof a->silent, "%d", c->silent_s);
    v[n++] = "--silent-s", v[n++] = a->silent;
  }
  if (c->keys_dir) v[n++] = "--keys", v[n++] = c->keys_dir;
  if (c->cwd) v[n++] = "--cwd", v[n++] = c->cwd;
  if (resume) v[n++] = "--resume";
  // after a restart every stage learns each one's incarnation (restarts so
  // far): the shared-memory descriptors it sends and accepts carry it
  int any = 0;
  a->incs[0] = 0;
  for (int k = 0, w = 0; inc && k < t->n_stages; k++) {
    w += snprintf(a->incs + w, sizeof a->incs - (size_t)w, "%s%u", k ? "," : "", inc[k]);
    any |= inc[k] > 0;
  }
  if (any) v[n++] = "--incarnations", v[n++] = a->incs;
  for (int k = 0; k < c->n_sets && n + 4 < FFS_SPAWN_ARGV_MAX; k++)
    v[n++] = "--set", v[n++] = c->sets[k];
  if (c->no_shm) v[n++] = "--set", v[n++] = "shm=false";
  v[n] = NULL;
  a->argc = n;
}

int ffs_spawn_shell_join(const char *const *argv, char *out, size_t outlen) {
  size_t n = 0;
  out[0] = 0;
  for (int k = 0; argv[k]; k++) {
    const char *w = argv[k];
    int plain = w[0] != 0;
    for (const char *p = w; *p && plain; p++)
      plain = strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./=:,@+%",
                     *p) != NULL;
    if (n + 2 >= outlen) return -1;
    if (k) out[n++] = ' ';
    if (plain) {
      size_t len = strlen(w);
      if (n + len >= outlen) return -1;
      memcpy(out + n, w, len + 1);
      n += len;
      continue;
    }
    out[n++] = '\'';
    for (const char *p = w; *p; p++) { // ' becomes '\''
      if (n + 5 >= outlen) return -1;
      if (*p == '\'') memcpy(out + n, "'\\''", 4), n += 4;
      else out[n++] = *p;
    }
    out[n++] = '\'';
    out[n] = 0;
  }
  return 0;
}
