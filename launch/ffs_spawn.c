// ffs_spawn: what every spawner shares: the environment the stages start in
// (OpenBLAS's threads and kernels). The spawners are ffs_spawn_proc.c
// (processes) and ffs_spawn_thread.c (threads); the interface is ffs_spawn.h.
#include "ffs_spawn.h"

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
