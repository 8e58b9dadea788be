// ffs_saliency: FF-native saliency maps of a finished run (`ffstream
// saliency`, docs/SALIENCY.md) and the deletion test that measures them.
// Two maps, both from the goodness that decides the class
// (../shared/ALGORITHMS.md section 5): goodness occlusion (the drop in one
// label's energy score when a pixel or patch is set to the background, 0)
// and goodness attribution (the gradient of each energy layer's goodness
// with respect to the pixels, summed with the energy's signs). The label
// pixels (the first data.classes) are masked out of every map.
#ifndef FFS_SALIENCY_H
#define FFS_SALIENCY_H

#include <stdint.h>

#include "ffs_ffnet.h"
#include "ffs_rng.h"

// ---- maps ----

typedef struct ffs_saliency ffs_saliency_t;

// Maps of net's images, h x w pixels (h * w = its dim), occlusion by square
// patches of side patch (1 = each pixel). NULL when out of memory.
ffs_saliency_t *ffs_saliency_new(ffs_ffnet_t *net, int h, int w, int patch);
void ffs_saliency_destroy(ffs_saliency_t **self_p);

// Pixels masked out of every map: the first data.classes, where the label
// is painted (the same count in the FFCL form, for maps that compare).
int ffs_saliency_masked(const ffs_saliency_t *s);

// Occlusion map of image x (dim) for label: out (dim), at each pixel the
// drop of label's energy score when the pixel's patch (tiles of side patch
// from the top left; the last ones may be narrower) is set to 0. All
// occluded copies go through one forward as rows; a patch that is already
// 0 changes nothing and gets 0 without one.
void ffs_saliency_occlusion(ffs_saliency_t *s, const float *x, int label, float *out);

// Attribution map of image x for label: per_layer (n_layers, dim), the
// gradient of each layer's goodness (NULL: not wanted), and combined (dim),
// the sum over the energy layers of sign * that gradient: the gradient of
// label's energy score.
void ffs_saliency_attribution(ffs_saliency_t *s, const float *x, int label, float *per_layer,
                              float *combined);

// ---- the deletion test ----

// Points of a deletion curve: 0 %, 5 %, ..., 100 % of the pixels removed.
#define FFS_SALIENCY_STEPS 21
// Most curves ffs_saliency_deletion takes at once.
#define FFS_SALIENCY_MAX_ORDERS 8

// order (dim): the pixels by map value, largest first (ties: lower index
// first), the masked pixels last.
void ffs_saliency_order(ffs_saliency_t *s, const float *map, int *order);
// order (dim): a random order from rng, the masked pixels last.
void ffs_saliency_random_order(const ffs_saliency_t *s, ffs_rng_t *rng, int *order);

// Deletion curves of image x for class cls, one per order (n_orders of
// them, orders (n_orders, dim)): p (n_orders, FFS_SALIENCY_STEPS), after
// setting the first round(k * dim / 20) pixels of the order to 0, the
// probability of cls in the softmax over the candidate labels' energy
// scores. All curves' images go through one forward.
void ffs_saliency_deletion(ffs_saliency_t *s, const float *x, int cls, const int *orders,
                           int n_orders, float *p);
// The area under a deletion curve (FFS_SALIENCY_STEPS points over [0, 1],
// trapezoids).
double ffs_saliency_auc(const float *p);

// ---- the command ----

typedef struct {
  const char *run_dir;   // a finished run's output folder (summary.json, sets, ckpt/)
  const char *out_dir;   // where pictures and tables go; NULL = RUN_DIR/saliency
  const char *topology;  // NULL = summary.json's "topology"
  const char *const *sets; // --set overrides, after RUN_DIR/sets
  int n_sets;
  int images;            // maps for the first N test images [8]
  int cls;               // maps for this class; -1 = each image's predicted one
  int patch;             // occlusion patch side [1]
  int deletion;          // run the deletion test instead of drawing maps
  int test_limit;        // deletion: the first N test images [1000]
  int scale;             // pictures: each pixel this many pixels wide [4]
} ffs_saliency_opts_t;

// `ffstream saliency`: loads the run, then draws the maps (pictures, class
// means, a grid, saliency.json) or runs the deletion test (a table on
// stdout, deletion.csv). Returns 0, or -1 with one line in err naming what
// was wrong and where.
int ffs_saliency_run(const ffs_saliency_opts_t *o, char *err, size_t errlen);

#endif
