// ffs_pin: core placement with hwloc. Each stage pins itself to one core;
// when stages outnumber cores the plan wraps around and warns (it never
// fails a run: on a machine where binding is refused it warns and goes on).
#ifndef FFS_PIN_H
#define FFS_PIN_H

#include "ffs_topo.h"

// Number of cores hwloc sees (PUs when the machine reports no cores); >= 1.
int ffs_pin_ncores(void);

// Plans a core for every stage of t into cores[t->n_stages]: a stage's
// `core:` wins (wrapped modulo ncores); the rest are placed heaviest first
// (an ff_layer weighs in_dim * units, source and readout a twentieth of the
// heaviest layer) onto the core with the least weight so far.
// Returns how many stages share a core with another (0 = one core each).
int ffs_pin_plan(const ffs_topo_t *t, int ncores, int *cores);

// Binds the calling thread (thread_only = 1) or whole process to core.
// Returns 0, or -1 after a warning when binding is not possible.
int ffs_pin_to_core(int core, int thread_only);

#endif
