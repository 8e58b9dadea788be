// sgemm_peak: single-core sgemm throughput of the BLAS ffstream links, on the
// shapes an ff_layer runs at batch 100 (forward: 100 x in -> units; weight
// gradient: units x in over 100 rows) and on 1000^3. Prints GFLOP/s per shape
// and the best, which bench/throughput.sh uses as the physical limit.
//   OPENBLAS_NUM_THREADS=1 [OPENBLAS_CORETYPE=SkylakeX] sgemm_peak [seconds]
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double s_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// GFLOP/s of C(m,n) = A(m,k) B(k,n)^T style products for `seconds`.
static double s_rate(int m, int n, int k, int trans_a, double seconds) {
  float *a = malloc(sizeof(float) * (size_t)m * k), *b = malloc(sizeof(float) * (size_t)n * k);
  float *c = malloc(sizeof(float) * (size_t)m * n);
  for (long i = 0; i < (long)m * k; i++) a[i] = (float)(i % 7) * 0.1f;
  for (long i = 0; i < (long)n * k; i++) b[i] = (float)(i % 5) * 0.1f;
  long reps = 0;
  double t0 = s_now(), t;
  do {
    if (trans_a) // (m x k)^T stored as k x m: the weight-gradient shape
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, m, n, k, 1.0f, a, m, b, n, 0.0f, c, n);
    else
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, a, k, b, k, 0.0f, c, n);
    reps++;
  } while ((t = s_now() - t0) < seconds);
  free(a), free(b), free(c);
  return 2.0 * m * n * k * reps / t / 1e9;
}

int main(int argc, char **argv) {
  double seconds = argc > 1 ? atof(argv[1]) : 1.0;
  openblas_set_num_threads(1);
  struct { const char *what; int m, n, k, t; } shapes[] = {
      {"forward 100x784 -> 1000", 100, 1000, 784, 0},
      {"forward 100x1000 -> 1000", 100, 1000, 1000, 0},
      {"gradient 1000x784 over 100 rows", 1000, 784, 100, 1},
      {"gradient 1000x1000 over 100 rows", 1000, 1000, 100, 1},
      {"square 1000^3", 1000, 1000, 1000, 0},
  };
  double best = 0;
  printf("OpenBLAS %s, core %s\n", openblas_get_config(), openblas_get_corename());
  for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
    double r = s_rate(shapes[i].m, shapes[i].n, shapes[i].k, shapes[i].t, seconds);
    printf("%-34s %7.1f GFLOP/s\n", shapes[i].what, r);
    best = r > best ? r : best;
  }
  printf("peak %.1f GFLOP/s\n", best);
  return 0;
}
