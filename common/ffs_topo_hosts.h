// ffs_topo_hosts: the loader's rules for `tcp:`, `hosts:`, a stage's
// `host:`, `launch:` and `security:` (where the processes of a run go, how
// they are started, how their tcp sockets are secured). Private to the
// topology loader, except the launcher names that the command line shares.
#ifndef FFS_TOPO_HOSTS_H
#define FFS_TOPO_HOSTS_H

#include "ffs_topo.h"
#include "ffs_yaml.h"

// The top-level blocks tcp, hosts, launch and security. 0 or -1.
int ffs_topo_hosts_parse(ffs_yaml_ctx_t *c, const ffs_yaml_node_t *root, ffs_topo_t *t);
// A stage entry's `host:` (a name in hosts:); st->host = 0 without one.
int ffs_topo_hosts_stage(ffs_yaml_ctx_t *c, const ffs_yaml_node_t *item, const char *who,
                         const ffs_topo_t *t, ffs_stage_cfg_t *st);

// "local", "ssh", "slurm", "mpi".
const char *ffs_launcher_str(ffs_launcher_t l);
// The launcher named s. 0, or -1 for an unknown name.
int ffs_launcher_parse(const char *s, ffs_launcher_t *out);

#endif
