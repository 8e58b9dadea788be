// ffs_topo_forms: the loader's rules for the FFCL, recurrent and sharded
// forms (what each needs of the rest of the file, what they cannot be
// combined with), the label overlay's room, and the expansion of sharded
// layers into one stage per shard. Private to the topology loader
// (common/ffs_topo.c calls these after the stages and feedback edges are
// read); errors are one line naming FILE:LINE, like the rest of the schema.
#ifndef FFS_TOPO_FORMS_H
#define FFS_TOPO_FORMS_H

#include "ffs_topo.h"
#include "ffs_yaml.h"

// The label overlay fits in data.dim; FFCL labels and the recurrent form:
// what each needs, and the top-down input (td_from, td_dim) every ff_layer
// gets in the recurrent form. Returns 0 or -1 with the error written.
int ffs_topo_check_forms(ffs_yaml_ctx_t *c, const ffs_yaml_node_t *root, ffs_topo_t *t);

// A chain of layers with backward edges (dp_layer, ffs_kind_t.backward):
// every layer of the chain is of that kind, the last one has data.classes
// units, no `feedback:` edge touches them, no ticks, no stream; the source
// then sends plain labelled rows (t->supervised) and the readout scores the
// last layer's class scores as its softmax. Returns 0 or -1.
int ffs_topo_check_backward(ffs_yaml_ctx_t *c, const ffs_yaml_node_t *root, ffs_topo_t *t);

// Two twin pipelines (a layer kind with ffs_kind_t.lateral: mirror_layer):
// every layer of the graph is of that kind, chains 0 and 1 have as many
// layers with the same widths, each chain's last layer has data.classes
// units; the twins are paired (twin), no `feedback:` edge touches them, no
// ticks, no stream; the source sends plain labelled rows (t->supervised)
// and the readout scores the tops as its softmax. Returns 0 or -1.
int ffs_topo_check_lateral(ffs_yaml_ctx_t *c, const ffs_yaml_node_t *root, ffs_topo_t *t);

// Expands every ff_layer with shards: k > 1 into k consecutive stages named
// <name>.0 .. <name>.<k-1>, each owning a contiguous slice of the units, and
// renumbers the readout's lists and the feedback edges. Returns 0 or -1.
int ffs_topo_expand_shards(ffs_yaml_ctx_t *c, const ffs_yaml_node_t *root, ffs_topo_t *t);

#endif
