// ffs_topo_hosts: the loader's keys for where a run's processes go and how
// they reach each other: `tcp:` (one host's bind address and port range),
// `hosts:` (the machines a run spans), a stage's `host:`, `launch:` (which
// launcher starts the stages, and its commands) and `security:` (CURVE).
// Private to the topology loader (common/ffs_topo.c); errors name FILE:LINE.
#include "ffs_topo_hosts.h"

#include <stdio.h>
#include <string.h>

static const char *const s_tcp_keys[] = {"host", "ports", NULL};
static const char *const s_host_keys[] = {"name", "address", NULL};
static const char *const s_launch_keys[] = {"launcher", "ssh", "srun", "mpirun", "silent_s",
                                            "port", NULL};
static const char *const s_security_keys[] = {"curve", "keys", NULL};
static const char *const s_launcher_names[] = {"local", "ssh", "slurm", "mpi", NULL};

// An address other hosts can connect to: a host name or an IP literal, no
// scheme, port or spaces (it becomes tcp://ADDRESS:PORT).
static int s_address(ffs_yaml_ctx_t *c, const ffs_yaml_node_t *v, const char *label, char *dst,
                     size_t cap) {
  if (ffs_yaml_str(c, v, label, dst, cap) < 0) return -1;
  for (const char *p = dst; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
          *p == '.' || *p == '-' || *p == '_'))
      return ffs_yaml_fail(c, v, "%s: '%s' is not a host name or IPv4 address (expected "
                           "letters, digits, '.', '-' or '_', no scheme or port)", label, dst);
  if (!dst[0]) return ffs_yaml_fail(c, v, "%s: empty (expected a host name or address)", label);
  return 0;
}

static int s_tcp(ffs_yaml_ctx_t *c, const ffs_yaml_node_t *root, ffs_topo_t *t) {
  const ffs_yaml_node_t *m, *v;
  if (ffs_yaml_block(c, root, "tcp", s_tcp_keys, &m) < 0) return -1;
  snprintf(t->tcp_host, sizeof t->tcp_host, "127.0.0.1");
  if ((v = ffs_yaml_map_get(m, "host")) &&
      s_address(c, v, "tcp.host", t->tcp_host, sizeof t->tcp_host) < 0)
    return -1;
  if (!(v = ffs_yaml_map_get(m, "ports"))) return 0;
  if (v->type != FFS_YAML_SEQ || v->n != 2) {
    if (v->type == FFS_YAML_SCALAR && v->str && !strcmp(v->str, "0")) return 0;
    char got[80];
    return ffs_yaml_fail(c, v, "tcp.ports: expected [FIRST, LAST] (a range of ports the inputs "
                         "bind in) or 0 (any free port), got %s", ffs_yaml_got(v, got, sizeof got));
  }
  if (ffs_yaml_int(c, v->kids[0], "tcp.ports: FIRST", 1024, 65535, &t->tcp_port_lo) < 0 ||
      ffs_yaml_int(c, v->kids[1], "tcp.ports: LAST", t->tcp_port_lo, 65535, &t->tcp_port_hi) < 0)
    return -1;
  return 0;
}

static int s_hosts(ffs_yaml_ctx_t *c, const ffs_yaml_node_t *root, ffs_topo_t *t) {
  const ffs_yaml_node_t *hs = ffs_yaml_map_get(root, "hosts");
  char got[80], who[48], label[96], where[128];
  if (!hs || ffs_yaml_is_null(hs)) return 0;
  if (hs->type != FFS_YAML_SEQ)
    return ffs_yaml_fail(c, hs, "hosts: expected a sequence of {name, address}, got %s",
                         ffs_yaml_got(hs, got, sizeof got));
  if (hs->n > FFS_MAX_HOSTS)
    return ffs_yaml_fail(c, hs, "hosts: %d entries (expected at most %d)", hs->n, FFS_MAX_HOSTS);
  for (int i = 0; i < hs->n; i++) {
    const ffs_yaml_node_t *item = hs->kids[i], *v;
    snprintf(who, sizeof who, "hosts[%d]", i);
    if (item->type != FFS_YAML_MAP)
      return ffs_yaml_fail(c, item, "%s: expected {name: NAME, address: ADDRESS}, got %s", who,
                           ffs_yaml_got(item, got, sizeof got));
    if (ffs_yaml_check_keys(c, item, who, s_host_keys) < 0) return -1;
    for (int k = 0; k < 2; k++)
      if (!ffs_yaml_map_get(item, s_host_keys[k]))
        return ffs_yaml_fail(c, item, "%s: missing required key '%s'", who, s_host_keys[k]);
    snprintf(label, sizeof label, "%s: name", who);
    v = ffs_yaml_map_get(item, "name");
    if (ffs_yaml_name(c, v, label, 0, t->hosts[i].name, sizeof t->hosts[i].name) < 0) return -1;
    for (int j = 0; j < i; j++)
      if (!strcmp(t->hosts[j].name, t->hosts[i].name))
        return ffs_yaml_fail(c, v, "%s: duplicate host name '%s' (first at %s)", who,
                             t->hosts[i].name,
                             ffs_yaml_where(ffs_yaml_map_get(hs->kids[j], "name"), where,
                                            sizeof where));
    snprintf(label, sizeof label, "%s: address", who);
    if (s_address(c, ffs_yaml_map_get(item, "address"), label, t->hosts[i].address,
                  sizeof t->hosts[i].address) < 0)
      return -1;
  }
  t->n_hosts = hs->n;
  return 0;
}

static int s_launch(ffs_yaml_ctx_t *c, const ffs_yaml_node_t *root, ffs_topo_t *t) {
  const ffs_yaml_node_t *m, *v;
  int e;
  if (ffs_yaml_block(c, root, "launch", s_launch_keys, &m) < 0) return -1;
  snprintf(t->ssh_cmd, sizeof t->ssh_cmd, "ssh -o BatchMode=yes {host} {cmd}");
  snprintf(t->srun_cmd, sizeof t->srun_cmd, "srun");
  snprintf(t->mpirun_cmd, sizeof t->mpirun_cmd, "mpirun --bind-to none");
  t->silent_s = 5;
  if ((v = ffs_yaml_map_get(m, "launcher"))) {
    if (ffs_yaml_enum(c, v, "launch.launcher", s_launcher_names, &e) < 0) return -1;
    t->launcher = (ffs_launcher_t)e;
  }
  if ((v = ffs_yaml_map_get(m, "ssh"))) {
    if (ffs_yaml_str(c, v, "launch.ssh", t->ssh_cmd, sizeof t->ssh_cmd) < 0) return -1;
    if (!strstr(t->ssh_cmd, "{cmd}"))
      return ffs_yaml_fail(c, v, "launch.ssh: '%s' has no {cmd} (expected a command template "
                           "such as \"ssh {host} {cmd}\")", t->ssh_cmd);
  }
  if ((v = ffs_yaml_map_get(m, "srun")) &&
      ffs_yaml_str(c, v, "launch.srun", t->srun_cmd, sizeof t->srun_cmd) < 0)
    return -1;
  if ((v = ffs_yaml_map_get(m, "mpirun")) &&
      ffs_yaml_str(c, v, "launch.mpirun", t->mpirun_cmd, sizeof t->mpirun_cmd) < 0)
    return -1;
  if ((v = ffs_yaml_map_get(m, "silent_s")) &&
      ffs_yaml_int(c, v, "launch.silent_s", 1, 3600, &t->silent_s) < 0)
    return -1;
  if ((v = ffs_yaml_map_get(m, "port")) &&
      ffs_yaml_int(c, v, "launch.port", 0, 65535, &t->ctl_port) < 0)
    return -1;
  return 0;
}

static int s_security(ffs_yaml_ctx_t *c, const ffs_yaml_node_t *root, ffs_topo_t *t) {
  const ffs_yaml_node_t *m, *v;
  if (ffs_yaml_block(c, root, "security", s_security_keys, &m) < 0) return -1;
  t->curve = 1;
  if ((v = ffs_yaml_map_get(m, "curve")) && ffs_yaml_bool(c, v, "security.curve", &t->curve) < 0)
    return -1;
  if ((v = ffs_yaml_map_get(m, "keys")) &&
      ffs_yaml_str(c, v, "security.keys", t->keys_dir, sizeof t->keys_dir) < 0)
    return -1;
  return 0;
}

int ffs_topo_hosts_parse(ffs_yaml_ctx_t *c, const ffs_yaml_node_t *root, ffs_topo_t *t) {
  if (s_tcp(c, root, t) < 0 || s_hosts(c, root, t) < 0 || s_launch(c, root, t) < 0 ||
      s_security(c, root, t) < 0)
    return -1;
  return 0;
}

int ffs_topo_hosts_stage(ffs_yaml_ctx_t *c, const ffs_yaml_node_t *item, const char *who,
                         const ffs_topo_t *t, ffs_stage_cfg_t *st) {
  const ffs_yaml_node_t *v = ffs_yaml_map_get(item, "host");
  char name[FFS_NAME_MAX], label[96], list[512] = "";
  st->host = 0;
  if (!v) return 0;
  snprintf(label, sizeof label, "%s: host", who);
  if (ffs_yaml_name(c, v, label, 0, name, sizeof name) < 0) return -1;
  for (int h = 0; h < t->n_hosts; h++)
    if (!strcmp(t->hosts[h].name, name)) {
      st->host = h;
      return 0;
    }
  for (int h = 0, n = 0; h < t->n_hosts && n < (int)sizeof list; h++)
    n += snprintf(list + n, sizeof list - (size_t)n, "%s%s", h ? ", " : "", t->hosts[h].name);
  return ffs_yaml_fail(c, v, "%s: no host named '%s' in hosts: (expected one of: %s)", label, name,
                       t->n_hosts ? list : "none; add a hosts: block");
}

const char *ffs_launcher_str(ffs_launcher_t l) {
  return l >= FFS_LAUNCHER_LOCAL && l <= FFS_LAUNCHER_MPI ? s_launcher_names[l] : "?";
}

int ffs_launcher_parse(const char *s, ffs_launcher_t *out) {
  for (int k = 0; s_launcher_names[k]; k++)
    if (!strcmp(s, s_launcher_names[k])) {
      *out = (ffs_launcher_t)k;
      return 0;
    }
  return -1;
}
