// ffs_kind: what a stage kind is to the rest of ffstream, in one record:
// its name in topology files, where it sits in the graph, the keys it takes
// and their parser, its weight for placement, and its ops (what it does
// with frames: stages/ffs_stage.h). The records are listed in one table,
// ffs_kinds (stages/ffs_kinds.c): a new kind is a folder under stages/ with
// its record and ops, plus one line there. The loader, the placement, the
// runtime and the launcher only ever read these records.
#ifndef FFS_KIND_H
#define FFS_KIND_H

#include "ffs_topo.h"
#include "ffs_yaml.h"

typedef enum {
  FFS_ROLE_SOURCE = 0, // the chain's first stage: streams the phases it is sent
  FFS_ROLE_LAYER,      // a layer of the chain: frames in from the stage before,
                       // out to the next, reports to the readout
  FFS_ROLE_READOUT,    // the chain's last stage: joins the layers' reports
  FFS_ROLE_SIDE,       // off the chain, listed after the readout: takes a data
                       // edge from the layer it names (`layer:`), sends nothing
} ffs_role_t;

struct ffs_stage_ops; // stages/ffs_stage.h

typedef struct {
  const char *name;        // as written after `kind:`
  ffs_role_t role;
  const char *const *keys; // every key its stage entry may hold (name, kind, core too)
  // Reads its own keys of stage entry item into st (st->kind_cfg for what is
  // its own, or the fields of ffs_stage_cfg_t the runtime reads); errors as
  // FILE:LINE through c. NULL: no keys of its own. name, kind, core and a
  // side stage's layer are read by the loader.
  int (*parse)(ffs_yaml_ctx_t *c, const ffs_yaml_node_t *item, const char *who,
               ffs_stage_cfg_t *st);
  int light;               // placement: 1 = weighs a twentieth of the heaviest stage;
                           // 0 = as its weights do (in_dim x units)
  int backward;            // a layer kind: 1 = each of its layers has a reliable backward
                           // edge to the layer before it (dual propagation's W^T (s+ - s-),
                           // one frame per training frame, keyed by sequence number; never
                           // dropped); the chain's layers are then all of this kind
  int lateral;             // a layer kind of two twin pipelines (mirror_layer): each layer
                           // belongs to chain 0 or 1 (its `chain`), takes its frames from
                           // the layer before it in its own chain, and each hidden layer
                           // has a reliable lateral edge to its twin, the layer at the same
                           // depth of the other chain; every layer reports
  const char *const *hidden_keys; // keys only a hidden layer may hold (a lateral kind's
                                  // objective against its twin, a dp_layer's damping): the
                                  // loader refuses them on a chain's last layer
  const struct ffs_stage_ops *ops;
} ffs_kind_t;

// The table (NULL-terminated); index = ffs_stage_cfg_t.kind. The built-in
// kinds come first, in ffs_stage_kind_t's order.
extern const ffs_kind_t *const ffs_kinds[];

// The record of kind k (an index into ffs_kinds), or NULL.
const ffs_kind_t *ffs_kind_of(int k);

// For a kind's parser: reads the layer keys present in m (the top-level
// `layer:` block, or a stage entry overriding it) over l; prefix starts each
// label in errors ("layer." or "stage 'l1': "). Returns 0 or -1.
int ffs_topo_layer_keys(ffs_yaml_ctx_t *c, const ffs_yaml_node_t *m, const char *prefix,
                        ffs_layer_cfg_t *l);

#endif
