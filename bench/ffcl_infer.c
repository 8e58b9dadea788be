// ffcl_infer: inference cost of FF energy against FFCL, side by side, on the
// same layer sizes, one core. FF energy runs every test image 10 times (one
// row per candidate label painted into the pixels) through every layer. FFCL
// runs each image once (features W x + b) and scores the 10 labels from the
// small label term relu(s + U[c]). Prints time and FLOPs per 100 images and
// the ratio. Weights are random: the cost does not depend on their values.
//   OPENBLAS_NUM_THREADS=1 ffcl_infer [in units units ...]   (default 784 500 500 500)
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>

#include "ff_layer.h"
#include "ffs_rng.h"
#include "ffs_stage.h"

#define S_NCLASSES 10
#define S_IMAGES 100 // one evaluation frame (train.eval_batch)
#define S_MAX_LAYERS 16

int main(int argc, char **argv) {
  int dims[S_MAX_LAYERS + 1] = {784, 500, 500, 500}, n = 4;
  if (argc > 1) {
    n = argc - 1 > S_MAX_LAYERS + 1 ? S_MAX_LAYERS + 1 : argc - 1;
    for (int i = 0; i < n; i++) {
      dims[i] = atoi(argv[i + 1]);
      if (dims[i] < 1 || dims[i] > 65536) {
        fprintf(stderr, "ffcl_infer: width %d: '%s' is not in 1..65536\n", i + 1, argv[i + 1]);
        return 2;
      }
    }
    if (n < 2) {
      fprintf(stderr, "ffcl_infer: expected an input width and at least one layer width\n");
      return 2;
    }
  }
  openblas_set_num_threads(1);
  ffs_layer_cfg_t cfg = {.goodness = FFS_GOODNESS_SSQ, .temp = 1.0f, .lr = 0.01f};
  const int rows_ff = S_IMAGES * S_NCLASSES, rows_cl = S_IMAGES;
  ffs_ff_layer_t *ff[S_MAX_LAYERS], *cl[S_MAX_LAYERS];
  for (int i = 0; i + 1 < n; i++) {
    ff[i] = ffs_ff_layer_new(dims[i], dims[i + 1], rows_ff, &cfg, 1, (uint64_t)i);
    cl[i] = ffs_ff_layer_new_labeled(dims[i], dims[i + 1], S_NCLASSES, rows_cl, &cfg, 1,
                                     (uint64_t)i);
    if (!ff[i] || !cl[i]) {
      fprintf(stderr, "ffcl_infer: out of memory\n");
      return 1;
    }
  }
  float *x = malloc(sizeof(float) * (size_t)rows_ff * (size_t)dims[0]);
  float *lg = malloc(sizeof(float) * (size_t)rows_cl * S_NCLASSES);
  ffs_rng_t rng;
  ffs_rng_seed(&rng, 7, 0);
  for (long i = 0; i < (long)rows_ff * dims[0]; i++) x[i] = ffs_rng_uniform(&rng);

  // FLOPs per 100 images: 2 per multiply-add of the features, 3 per unit and
  // candidate for the label term (add, relu, square-accumulate)
  double mac = 0.0, label = 0.0;
  for (int i = 0; i + 1 < n; i++) {
    mac += 2.0 * dims[i] * dims[i + 1];
    label += 3.0 * S_NCLASSES * dims[i + 1];
  }
  double flops_ff = rows_ff * mac, flops_cl = rows_cl * (mac + label);

  double best_ff = 1e9, best_cl = 1e9;
  for (int rep = 0; rep < 30; rep++) {
    double t0 = ffs_now();
    const float *in = x;
    for (int i = 0; i + 1 < n; i++) {
      ffs_ff_layer_forward(ff[i], in, rows_ff);
      in = ffs_ff_layer_output(ff[i]);
    }
    double t1 = ffs_now();
    in = x;
    for (int i = 0; i + 1 < n; i++) {
      ffs_ff_layer_forward_labeled(cl[i], in, rows_cl, NULL);
      ffs_ff_layer_label_goodness(cl[i], rows_cl, lg);
      in = ffs_ff_layer_output(cl[i]);
    }
    double t2 = ffs_now();
    if (t1 - t0 < best_ff) best_ff = t1 - t0;
    if (t2 - t1 < best_cl) best_cl = t2 - t1;
  }
  printf("network:");
  for (int i = 0; i < n; i++) printf("%s%d", i ? "-" : " ", dims[i]);
  printf("; per %d test images, 1 core, best of 30\n", S_IMAGES);
  printf("ff_energy: %.3f ms, %.1f MFLOP (%d rows per layer)\n", 1e3 * best_ff, flops_ff / 1e6,
         rows_ff);
  printf("ffcl:      %.3f ms, %.1f MFLOP (%d rows per layer + label term)\n", 1e3 * best_cl,
         flops_cl / 1e6, rows_cl);
  printf("ratio: %.1fx less time, %.1fx fewer FLOPs\n", best_ff / best_cl, flops_ff / flops_cl);
  for (int i = 0; i + 1 < n; i++) ffs_ff_layer_destroy(&ff[i]), ffs_ff_layer_destroy(&cl[i]);
  free(x), free(lg);
  return 0;
}
