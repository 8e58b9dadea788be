// ffs_plan: the launcher's placement planner. Given the cores a run may use
// and its layers' sizes, it chooses how many shards each ff_layer left at
// `shards: auto` gets and, where the file names neither train.pairs nor
// train.triples, how training frames travel. What it chooses reaches every
// stage as --set overrides (so a stage loads the same topology as the
// launcher), is said in one line at start-up and goes into summary.json.
#ifndef FFS_PLAN_H
#define FFS_PLAN_H

#include "ffs_topo.h"

#define FFS_PLAN_MAX_SETS 24
#define FFS_PLAN_SET_LEN 80

typedef enum { FFS_FORM_ROLES = 0, FFS_FORM_PAIRS, FFS_FORM_TRIPLES } ffs_form_t;

typedef struct ffs_plan {
  int cores;                  // the cores it planned for
  ffs_form_t form;            // the frame form the run uses (chosen or given)
  int form_chosen;            // 1 = the planner chose it (train.pairs/triples absent)
  int n_layers;               // ff_layers, in file order
  char layer[FFS_MAX_STAGES][FFS_NAME_MAX];
  int shards[FFS_MAX_STAGES]; // shards of each (chosen or given)
  int chosen[FFS_MAX_STAGES]; // 1 = the planner chose it (shards: auto)
  double balance;             // the busiest core's share of the work, over a perfect split
  char sets[FFS_PLAN_MAX_SETS][FFS_PLAN_SET_LEN]; // "l1.shards=2", "train.triples=true"
  int n_sets;
  int kept;                   // a resumed run: the sets are its first run's
} ffs_plan_t;

// Plans t (loaded with shards: auto layers unexpanded) for ncores cores: the
// frame form (where train.pairs and train.triples are both absent): triple
// frames when the readout takes neutral rows and batches hold 2 rows or
// more, else pair frames; a frame per role in the recurrent form. Shards
// (for layers at shards: auto): see ffs_plan.c.
// Never fails: a layer that cannot be sharded (recurrent or FFCL forms, an
// end of a feedback edge) keeps 1 shard, and a form the topology forbids is
// not chosen.
void ffs_plan_make(const ffs_topo_t *t, int ncores, ffs_plan_t *p);

// The plan in one line: "planned for 2 cores: l1 in 2 shards (auto), l2 1
// (auto), l3 1 (auto); triple frames (auto); busiest core 1.02 x even".
const char *ffs_plan_str(const ffs_plan_t *p, char *buf, size_t cap);

// Writes the plan's overrides to path, one per line; reads them back into p
// (a resumed run keeps the plan its checkpoints were written under).
// Return 0 or -1.
int ffs_plan_save(const ffs_plan_t *p, const char *path);
int ffs_plan_load_sets(ffs_plan_t *p, const char *path);

#endif
