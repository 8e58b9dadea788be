// ffs_kinds: the one table of stage kinds (common/ffs_kind.h). A new kind is
// a folder under stages/ with its ffs_kind_t record and ops, and one line
// here. The first three are the chain's built-in kinds, in
// ffs_stage_kind_t's order.
#include "ffs_kind.h"

extern const ffs_kind_t ffs_kind_source, ffs_kind_ff_layer, ffs_kind_readout, ffs_kind_tap,
    ffs_kind_dp_layer, ffs_kind_mirror_layer;

const ffs_kind_t *const ffs_kinds[] = {
    &ffs_kind_source,   // stages/source: reads a data set, makes positives and negatives
    &ffs_kind_ff_layer, // stages/ff_layer: a Forward-Forward layer
    &ffs_kind_readout,  // stages/readout: joins reports, test error
    &ffs_kind_tap,      // stages/tap: records a layer's activity to .npy files
    &ffs_kind_dp_layer, // stages/dp_layer: a dual-propagation layer (or backprop's)
    &ffs_kind_mirror_layer, // stages/mirror_layer: a layer of one of two mirrored models
    NULL,
};

const ffs_kind_t *ffs_kind_of(int k) {
  int n = 0;
  while (ffs_kinds[n]) n++;
  return k >= 0 && k < n ? ffs_kinds[k] : NULL;
}
