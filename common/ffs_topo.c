// ffs_topo: the ffstream schema. A topology file's tree (common/ffs_yaml.c,
// which also splices in the --set overrides) is validated here into an
// ffs_topo_t: the keys, their types, ranges and defaults, the keys each kind
// of stage takes, the order of the stages, feedback edges, the recurrent and
// FFCL rules, and the expansion of sharded layers. Every error is one line,
// "FILE:LINE: what was wrong (expected ...)"; nothing asserts on the file.
// What the stages ask of the graph once loaded is in common/ffs_wiring.c.
#include "ffs_topo.h"

#include <assert.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "ffs_kind.h"
#include "ffs_topo_forms.h"
#include "ffs_topo_hosts.h"
#include "ffs_yaml.h"

// ---- schema vocabulary ----

static const char *const s_top_keys[] = {"name",   "seed",   "transport", "shm",      "tcp",
                                         "hosts",  "launch", "security",  "data",     "train",
                                         "layer",  "stages", "feedback",  NULL};
// top-level keys whose value is a mapping, addressable as --set BLOCK.KEY=...
static const char *const s_block_keys[] = {"tcp",  "launch", "security", "data",
                                           "train", "layer", NULL};
static const char *const s_data_keys[] = {"set",         "dir",        "dim", "classes",
                                          "train_limit", "test_limit", NULL};
static const char *const s_train_keys[] = {"epochs",    "batch",      "eval_batch",   "eval_every",
                                           "negatives", "hwm_frames", "ckpt_every_s", "labels",
                                           "ticks",     "timing",     "damping",      "score_ticks",
                                           "pace_us",   "pairs",      "triples",      "mode",
                                           "window",    "final_test", NULL};
static const char *const s_layer_keys[] = {
    "goodness", "theta",        "temp",     "optimizer",   "lr",
    "momentum", "weight_decay", "cooldown", "peer_lambda", "peer_decay",
    "update",   "eval_average", NULL};
// (the keys a stage of each kind may carry are in its kind's record:
// common/ffs_kind.h, stages/ffs_kinds.c)
static const char *const s_feedback_keys[] = {"from", "to", NULL};
// what --set may address: top-level keys, BLOCK.KEY, STAGE.KEY
static const ffs_yaml_override_spec_t s_override_spec = {s_top_keys, s_block_keys, "stages"};

static const char *const s_transport_names[] = {"ipc", "inproc", "tcp", NULL};
static const char *const s_goodness_names[] = {"ssq", "msq", "min_ssq", NULL};
static const char *const s_opt_names[] = {"sgd", "adam", NULL};
static const char *const s_update_names[] = {"frame", "pair", NULL};
static const char *const s_negatives_names[] = {"random", "hard", "hybrid", NULL};
static const char *const s_labels_names[] = {"overlay", "separate", NULL};
static const char *const s_timing_names[] = {"lockstep", "free-running", "pipelined", NULL};
static const char *const s_set_names[] = {"mnist", "fashion", NULL};
static const char *const s_mode_names[] = {"epochs", "stream", NULL};
// data.classes unless the file says otherwise, per data.set: the labels of
// the MNIST and Fashion-MNIST IDX files are the digits / garments 0..9
static const int s_set_classes[] = {10, 10};

// ---- validation: blocks ----

// "prefix" + "key" into buf, for messages.
static const char *s_label(char *buf, size_t cap, const char *prefix, const char *key) {
  snprintf(buf, cap, "%s%s", prefix, key);
  return buf;
}

int ffs_topo_layer_keys(ffs_yaml_ctx_t *c, const ffs_yaml_node_t *m, const char *prefix,
                        ffs_layer_cfg_t *l) {
  const struct {
    const char *key;
    int range;
    float *dst;
  } nums[] = {{"theta", FFS_YAML_NONNEG, &l->theta},
              {"temp", FFS_YAML_POSITIVE, &l->temp},
              {"lr", FFS_YAML_POSITIVE, &l->lr},
              {"momentum", FFS_YAML_UNIT, &l->momentum},
              {"weight_decay", FFS_YAML_NONNEG, &l->weight_decay},
              {"peer_lambda", FFS_YAML_NONNEG, &l->peer_lambda},
              {"peer_decay", FFS_YAML_UNIT, &l->peer_decay},
              {"eval_average", FFS_YAML_UNIT, &l->eval_average}};
  char label[96];
  const ffs_yaml_node_t *v;
  int e;
  if ((v = ffs_yaml_map_get(m, "goodness"))) {
    if (ffs_yaml_enum(c, v, s_label(label, sizeof label, prefix, "goodness"), s_goodness_names,
                      &e) < 0)
      return -1;
    l->goodness = (ffs_goodness_t)e;
  }
  if ((v = ffs_yaml_map_get(m, "optimizer"))) {
    if (ffs_yaml_enum(c, v, s_label(label, sizeof label, prefix, "optimizer"), s_opt_names, &e) < 0)
      return -1;
    l->opt = (ffs_opt_kind_t)e;
  }
  if ((v = ffs_yaml_map_get(m, "cooldown")) &&
      ffs_yaml_bool(c, v, s_label(label, sizeof label, prefix, "cooldown"), &l->cooldown) < 0)
    return -1;
  if ((v = ffs_yaml_map_get(m, "update"))) {
    if (ffs_yaml_enum(c, v, s_label(label, sizeof label, prefix, "update"), s_update_names, &e) < 0)
      return -1;
    l->update = (ffs_update_t)e;
  }
  for (size_t i = 0; i < sizeof nums / sizeof *nums; i++) {
    if (!(v = ffs_yaml_map_get(m, nums[i].key))) continue;
    s_label(label, sizeof label, prefix, nums[i].key);
    if (ffs_yaml_num(c, v, label, nums[i].range, nums[i].dst) < 0) return -1;
  }
  return 0;
}

// Run name from the file name: the stem, with characters a name may not hold
// replaced by '_' ("configs/mnist-ff.yaml" -> "mnist-ff").
static void s_default_name(const char *path, char *dst) {
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  const char *dot = strrchr(base, '.');
  size_t n = dot && dot > base ? (size_t)(dot - base) : strlen(base);
  if (n > FFS_NAME_MAX - 1) n = FFS_NAME_MAX - 1;
  for (size_t i = 0; i < n; i++) {
    char one[2] = {base[i], 0};
    dst[i] = ffs_yaml_name_ok(one, 1, sizeof one) ? base[i] : '_';
  }
  dst[n] = 0;
  if (!n) snprintf(dst, FFS_NAME_MAX, "run");
}

// name, seed, transport, tcp, data, train, layer. *dim gets data.dim.
// train.labels and the recurrent keys: ticks, timing, damping, score_ticks.
static int s_recurrent(ffs_yaml_ctx_t *c, const ffs_yaml_node_t *m, ffs_topo_t *t) {
  const ffs_yaml_node_t *v;
  char got[80];
  int e;
  t->labels = FFS_LABELS_OVERLAY;
  t->ticks = 1;
  t->timing = FFS_TIMING_LOCKSTEP;
  t->damping = 0.7f;
  if ((v = ffs_yaml_map_get(m, "labels"))) {
    if (ffs_yaml_enum(c, v, "train.labels", s_labels_names, &e) < 0) return -1;
    t->labels = (ffs_labels_t)e;
  }
  if ((v = ffs_yaml_map_get(m, "ticks")) && ffs_yaml_int(c, v, "train.ticks", 1, 64, &t->ticks) < 0)
    return -1;
  if ((v = ffs_yaml_map_get(m, "timing"))) {
    if (ffs_yaml_enum(c, v, "train.timing", s_timing_names, &e) < 0) return -1;
    t->timing = (ffs_timing_t)e;
  }
  if ((v = ffs_yaml_map_get(m, "damping"))) {
    if (ffs_yaml_num(c, v, "train.damping", FFS_YAML_POSITIVE, &t->damping) < 0) return -1;
    if (t->damping > 1.0f)
      return ffs_yaml_fail(c, v,
                           "train.damping: %g is above 1 (expected the weight of the newly "
                           "computed state, in (0, 1])",
                           (double)t->damping);
  }
  // Hinton scores ticks 3..5 of 8: the middle of the run, after the top-down
  // signal has settled in
  t->score_from = (3 * t->ticks) / 8, t->score_to = (5 * t->ticks) / 8;
  if ((v = ffs_yaml_map_get(m, "score_ticks"))) {
    if (v->type != FFS_YAML_SEQ || v->n != 2)
      return ffs_yaml_fail(c, v,
                           "train.score_ticks: expected [first, last], two tick numbers, got %s",
                           ffs_yaml_got(v, got, sizeof got));
    if (ffs_yaml_int(c, v->kids[0], "train.score_ticks[0]", 0, t->ticks - 1, &t->score_from) < 0 ||
        ffs_yaml_int(c, v->kids[1], "train.score_ticks[1]", t->score_from, t->ticks - 1,
                     &t->score_to) < 0)
      return -1;
  }
  return 0;
}

// One integer key of a block: its range and where it goes.
typedef struct {
  const char *key;
  long long lo, hi;
  int *dst;
} s_int_key_t;

// Reads the keys of keys[0..n) present in m, in that order, each labelled
// "BLOCK.KEY".
static int s_ints(ffs_yaml_ctx_t *c, const ffs_yaml_node_t *m, const char *block,
                  const s_int_key_t *keys, size_t n) {
  char label[64];
  const ffs_yaml_node_t *v;
  for (size_t i = 0; i < n; i++) {
    if (!(v = ffs_yaml_map_get(m, keys[i].key))) continue;
    snprintf(label, sizeof label, "%s.%s", block, keys[i].key);
    if (ffs_yaml_int(c, v, label, keys[i].lo, keys[i].hi, keys[i].dst) < 0) return -1;
  }
  return 0;
}

// The data block: which set, where, its row width and its class count (the
// set's own unless data.classes says otherwise). *dim gets data.dim.
static int s_data(ffs_yaml_ctx_t *c, const ffs_yaml_node_t *root, ffs_topo_t *t, int *dim) {
  const ffs_yaml_node_t *m, *v;
  int e = 0;
  if (ffs_yaml_block(c, root, "data", s_data_keys, &m) < 0) return -1;
  if ((v = ffs_yaml_map_get(m, "set")) && ffs_yaml_enum(c, v, "data.set", s_set_names, &e) < 0)
    return -1;
  snprintf(t->data_set, sizeof t->data_set, "%s", s_set_names[e]);
  snprintf(t->data_dir, sizeof t->data_dir, "data/%s", s_set_names[e]);
  if ((v = ffs_yaml_map_get(m, "dir")) &&
      ffs_yaml_str(c, v, "data.dir", t->data_dir, sizeof t->data_dir) < 0)
    return -1;
  *dim = 784;
  t->classes = s_set_classes[e];
  const s_int_key_t ints[] = {{"dim", 1, 1 << 20, dim},
                              {"classes", 2, 255, &t->classes}, // labels are bytes, 255 = none
                              {"train_limit", 0, INT_MAX, &t->train_limit},
                              {"test_limit", 0, INT_MAX, &t->test_limit}};
  return s_ints(c, m, "data", ints, sizeof ints / sizeof *ints);
}

// name, seed, transport, tcp, data, train, layer. *dim gets data.dim.
static int s_top(ffs_yaml_ctx_t *c, const ffs_yaml_node_t *root, ffs_topo_t *t, int *dim) {
  const ffs_yaml_node_t *m, *v;
  int e;
  s_default_name(t->path, t->name);
  if ((v = ffs_yaml_map_get(root, "name")) &&
      ffs_yaml_name(c, v, "name", 1, t->name, sizeof t->name) < 0)
    return -1;
  t->seed = 1;
  if ((v = ffs_yaml_map_get(root, "seed")) && ffs_yaml_u64(c, v, "seed", &t->seed) < 0) return -1;
  if ((v = ffs_yaml_map_get(root, "transport"))) {
    if (ffs_yaml_enum(c, v, "transport", s_transport_names, &e) < 0) return -1;
    t->transport = (ffs_transport_t)e;
  }
  t->shm = 1;
  if ((v = ffs_yaml_map_get(root, "shm")) && ffs_yaml_bool(c, v, "shm", &t->shm) < 0) return -1;

  if (ffs_topo_hosts_parse(c, root, t) < 0) return -1;

  if (s_data(c, root, t, dim) < 0) return -1;

  if (ffs_yaml_block(c, root, "train", s_train_keys, &m) < 0) return -1;
  t->epochs = 10;
  t->batch = 100;
  t->eval_batch = 100;
  t->eval_every = 1;
  t->negatives = FFS_NEG_RANDOM;
  t->hwm_frames = 4;
  t->ckpt_every_s = 10;
  const s_int_key_t sizes[] = {{"epochs", 1, INT_MAX, &t->epochs},
                               {"batch", 1, 10000, &t->batch},
                               {"eval_batch", 1, 1000, &t->eval_batch},
                               {"eval_every", 1, INT_MAX, &t->eval_every}};
  if (s_ints(c, m, "train", sizes, sizeof sizes / sizeof *sizes) < 0) return -1;
  if ((v = ffs_yaml_map_get(m, "negatives"))) {
    if (ffs_yaml_enum(c, v, "train.negatives", s_negatives_names, &e) < 0) return -1;
    t->negatives = (ffs_negatives_t)e;
  }
  if ((v = ffs_yaml_map_get(m, "pairs")) && ffs_yaml_bool(c, v, "train.pairs", &t->pairs) < 0)
    return -1;
  if ((v = ffs_yaml_map_get(m, "triples")) && ffs_yaml_bool(c, v, "train.triples", &t->triples) < 0)
    return -1;
  if (t->triples) t->pairs = 1; // a triple frame is a pair frame with the neutral rows
  t->form_auto = !ffs_yaml_map_get(m, "pairs") && !ffs_yaml_map_get(m, "triples");
  const s_int_key_t flow[] = {{"hwm_frames", 1, 1024, &t->hwm_frames},
                              {"ckpt_every_s", 0, 86400, &t->ckpt_every_s},
                              {"pace_us", 0, 1000000, &t->pace_us}};
  if (s_ints(c, m, "train", flow, sizeof flow / sizeof *flow) < 0) return -1;
  if (s_recurrent(c, m, t) < 0) return -1;
  if ((v = ffs_yaml_map_get(m, "mode")) &&
      ffs_yaml_enum(c, v, "train.mode", s_mode_names, &t->stream) < 0)
    return -1;
  t->window = 1000;
  const s_int_key_t stream[] = {{"window", 1, 1000000, &t->window}};
  if (s_ints(c, m, "train", stream, 1) < 0) return -1;
  if ((v = ffs_yaml_map_get(m, "final_test")) &&
      ffs_yaml_bool(c, v, "train.final_test", &t->final_test) < 0)
    return -1;
  if (t->stream) t->epochs = 1; // one pass over the input, however long it lasts

  if (ffs_yaml_block(c, root, "layer", s_layer_keys, &m) < 0) return -1;
  t->layer = (ffs_layer_cfg_t){.goodness = FFS_GOODNESS_SSQ,
                               .theta = 0.0f,
                               .temp = 1.0f,
                               .opt = FFS_OPT_SGD,
                               .lr = 0.01f,
                               .momentum = 0.9f,
                               .weight_decay = 0.001f,
                               .cooldown = 1,
                               .peer_lambda = 0.03f,
                               .peer_decay = 0.9f};
  return ffs_topo_layer_keys(c, m, "layer.", &t->layer);
}

// ---- validation: stages ----

// "stage 'l1'" once the name is known, else "stage 3" (1-based).
static const char *s_who(const ffs_topo_t *t, int i, char *buf, size_t cap) {
  if (t->stages[i].name[0])
    snprintf(buf, cap, "stage '%s'", t->stages[i].name);
  else
    snprintf(buf, cap, "stage %d", i + 1);
  return buf;
}

// Names of the stages of a kind, "l1, l2, l3", for "expected" lists.
static const char *s_names_of(const ffs_topo_t *t, ffs_stage_kind_t kind, char *buf, size_t cap) {
  const char *names[FFS_MAX_STAGES + 1];
  int n = 0;
  for (int i = 0; i < t->n_stages; i++)
    if (t->stages[i].kind == kind) names[n++] = t->stages[i].name;
  names[n] = NULL;
  return ffs_yaml_join(buf, cap, names);
}

// A stage entry's kind, from the kind table, and its keys checked against
// the kind's list. NULL after an error.
static const ffs_kind_t *s_kind(ffs_yaml_ctx_t *c, const ffs_yaml_node_t *item, const char *who,
                                ffs_stage_cfg_t *st) {
  const char *names[FFS_MAX_STAGES + 1];
  char label[96], list[512], name[64];
  int n = 0, e;
  while (ffs_kinds[n] && n < FFS_MAX_STAGES) names[n] = ffs_kinds[n]->name, n++;
  names[n] = NULL;
  const ffs_yaml_node_t *v = ffs_yaml_map_get(item, "kind");
  if (!v) {
    ffs_yaml_fail(c, item, "%s: missing required key 'kind' (expected one of %s)", who,
                  ffs_yaml_join(list, sizeof list, names));
    return NULL;
  }
  snprintf(label, sizeof label, "%s: kind", who);
  if (ffs_yaml_enum(c, v, label, names, &e) < 0) return NULL;
  st->kind = (ffs_stage_kind_t)e;
  const ffs_kind_t *kind = ffs_kinds[e];
  for (int k = 0; k + 1 < item->n; k += 2) {
    const ffs_yaml_node_t *key = item->kids[k];
    if (ffs_yaml_in_list(key->str, kind->keys)) continue;
    ffs_yaml_clip(name, sizeof name, key->str);
    ffs_yaml_join(list, sizeof list, kind->keys);
    for (int other = 0; other < n; other++)
      if (ffs_yaml_in_list(key->str, ffs_kinds[other]->keys)) {
        ffs_yaml_fail(c, key, "%s: key '%s' does not apply to a %s (expected one of: %s)", who,
                      name, kind->name, list);
        return NULL;
      }
    ffs_yaml_fail(c, key, "%s: unknown key '%s' (expected one of: %s)", who, name, list);
    return NULL;
  }
  return kind;
}

// What a kind of its own reads: a side stage's `layer:` (required: the
// layer whose frames it takes; checked to be an ff_layer once all stages
// are read), then the kind's own keys through its parser.
static int s_stage_own(ffs_yaml_ctx_t *c, const ffs_yaml_node_t *item, const char *who,
                       const ffs_kind_t *kind, ffs_stage_cfg_t *st) {
  const ffs_yaml_node_t *v;
  char label[96];
  st->in_from = -1;
  if (kind->role == FFS_ROLE_SIDE) {
    if (!(v = ffs_yaml_map_get(item, "layer")))
      return ffs_yaml_fail(c, item, "%s: missing required key 'layer' (a %s takes the frames of "
                           "the ff_layer it names)", who, kind->name);
    snprintf(label, sizeof label, "%s: layer", who);
    if (ffs_yaml_name(c, v, label, 0, st->in_name, sizeof st->in_name) < 0) return -1;
  }
  return kind->parse ? kind->parse(c, item, who, st) : 0;
}

// One stage entry: name, kind, keys allowed for that kind, values. energy
// and softmax are resolved later (they name stages that may come after).
static int s_stage(ffs_yaml_ctx_t *c, const ffs_yaml_node_t *stages, ffs_topo_t *t, int i) {
  const ffs_yaml_node_t *item = stages->kids[i];
  ffs_stage_cfg_t *st = &t->stages[i];
  char who[64], label[96], got[80], where[128];
  const ffs_yaml_node_t *v;
  st->line = item->line;
  st->core = -1;
  st->td_from = -1;
  st->layer = t->layer;
  st->n_shards = 1, st->group = i, st->layer_index = i, st->twin = -1;
  s_who(t, i, who, sizeof who);
  if (item->type != FFS_YAML_MAP)
    return ffs_yaml_fail(c, item, "%s: expected a mapping with at least name and kind, got %s", who,
                         ffs_yaml_got(item, got, sizeof got));

  if (!(v = ffs_yaml_map_get(item, "name")))
    return ffs_yaml_fail(c, item, "%s: missing required key 'name'", who);
  snprintf(label, sizeof label, "%s: name", who);
  if (ffs_yaml_name(c, v, label, 0, st->name, sizeof st->name) < 0) return -1;
  if (ffs_yaml_in_list(st->name, s_top_keys))
    return ffs_yaml_fail(c, v,
                         "stage '%s': the name is reserved, it is a top-level key (--set %s.KEY "
                         "could not address the stage)",
                         st->name, st->name);
  for (int j = 0; j < i; j++)
    if (!strcmp(t->stages[j].name, st->name))
      return ffs_yaml_fail(
          c, v, "stage '%s': duplicate stage name (first at %s; names must be unique)", st->name,
          ffs_yaml_where(ffs_yaml_map_get(stages->kids[j], "name"), where, sizeof where));
  s_who(t, i, who, sizeof who);
  snprintf(st->layer_name, sizeof st->layer_name, "%s", st->name);

  const ffs_kind_t *kind = s_kind(c, item, who, st);
  if (!kind) return -1;

  snprintf(label, sizeof label, "%s: core", who);
  if ((v = ffs_yaml_map_get(item, "core")) && ffs_yaml_int(c, v, label, 0, 65535, &st->core) < 0)
    return -1;
  if (ffs_topo_hosts_stage(c, item, who, t, st) < 0) return -1;
  return s_stage_own(c, item, who, kind, st);
}

// A readout's energy / softmax list: distinct ff_layer names; at least one
// unless allow_empty (energy: [] switches energy inference off).
static int s_layer_list(ffs_yaml_ctx_t *c, const ffs_topo_t *t, const ffs_yaml_node_t *v,
                        const char *who, const char *key, int allow_empty, int *idx, int *n_out) {
  char names[512], got[80], name[64];
  s_names_of(t, FFS_STAGE_FF_LAYER, names, sizeof names);
  if (v->type == FFS_YAML_SEQ && v->n == 0 && allow_empty) {
    *n_out = 0;
    return 0;
  }
  if (v->type != FFS_YAML_SEQ || v->n == 0)
    return ffs_yaml_fail(c, v,
                         "%s: %s: expected a non-empty list of ff_layer names like [%s], got %s",
                         who, key, names, ffs_yaml_got(v, got, sizeof got));
  int n = 0;
  for (int i = 0; i < v->n; i++) {
    const ffs_yaml_node_t *it = v->kids[i];
    if (it->type != FFS_YAML_SCALAR)
      return ffs_yaml_fail(c, it, "%s: %s: expected an ff_layer name (one of: %s), got %s", who,
                           key, names, ffs_yaml_got(it, got, sizeof got));
    ffs_yaml_clip(name, sizeof name, it->str);
    int j = ffs_topo_find(t, it->str);
    if (j < 0)
      return ffs_yaml_fail(c, it, "%s: %s: no stage named '%s' (expected ff_layers: %s)", who, key,
                           name, names);
    if (t->stages[j].kind != FFS_STAGE_FF_LAYER)
      return ffs_yaml_fail(c, it, "%s: %s: '%s' is a %s, not an ff_layer (expected ff_layers: %s)",
                           who, key, name, ffs_stage_kind_str(t->stages[j].kind), names);
    for (int k = 0; k < n; k++)
      if (idx[k] == j) return ffs_yaml_fail(c, it, "%s: %s: '%s' is listed twice", who, key, name);
    idx[n++] = j; // distinct ff_layers, so n stays < FFS_MAX_STAGES
  }
  *n_out = n;
  return 0;
}

// The order rules: one source, first; one readout after the ff_layers (at
// least one); side stages (a tap) after the readout. Returns the readout's
// index, or -1.
static int s_graph(ffs_yaml_ctx_t *c, const ffs_yaml_node_t *stages, const ffs_topo_t *t) {
  int n = t->n_stages, src = -1, out = -1, layers = 0;
  char where[128];
  for (int i = 0; i < n; i++) {
    const ffs_stage_cfg_t *st = &t->stages[i];
    const ffs_yaml_node_t *at = stages->kids[i];
    ffs_role_t role = ffs_kinds[st->kind]->role;
    if (role == FFS_ROLE_SOURCE) {
      if (src >= 0)
        return ffs_yaml_fail(c, at,
                             "stage '%s': a second source (the first is '%s' at %s; expected "
                             "exactly one source, the first stage)",
                             st->name, t->stages[src].name,
                             ffs_yaml_where(stages->kids[src], where, sizeof where));
      src = i;
    }
    if (role == FFS_ROLE_READOUT) {
      if (out >= 0)
        return ffs_yaml_fail(c, at,
                             "stage '%s': a second readout (the first is '%s' at %s; expected "
                             "exactly one readout, after the ff_layers)",
                             st->name, t->stages[out].name,
                             ffs_yaml_where(stages->kids[out], where, sizeof where));
      out = i;
    }
  }
  for (int i = 0; i < n; i++) { // the order, once the source and readout are known
    const ffs_stage_cfg_t *st = &t->stages[i];
    ffs_role_t role = ffs_kinds[st->kind]->role;
    if (role == FFS_ROLE_LAYER && out >= 0 && i > out)
      return ffs_yaml_fail(c, stages->kids[out],
                           "stage '%s': the readout must come after every ff_layer ('%s' at %s "
                           "comes after it)",
                           t->stages[out].name, st->name,
                           ffs_yaml_where(stages->kids[i], where, sizeof where));
    if (role == FFS_ROLE_SIDE && (out < 0 || i < out))
      return ffs_yaml_fail(c, stages->kids[i],
                           "stage '%s': a %s before the readout (expected it after the "
                           "readout, with any other stages off the chain)",
                           st->name, ffs_kinds[st->kind]->name);
    layers += role == FFS_ROLE_LAYER;
  }
  if (src < 0)
    return ffs_yaml_fail(c, stages->kids[0],
                         "stages: no source (expected the first stage to have kind: source)");
  if (src != 0)
    return ffs_yaml_fail(c, stages->kids[src],
                         "stage '%s': the source must be the first stage (it is stage %d of %d)",
                         t->stages[src].name, src + 1, n);
  if (out < 0)
    return ffs_yaml_fail(c, stages->kids[n - 1],
                         "stages: no readout (expected the last stage to have kind: readout)");
  if (!layers)
    return ffs_yaml_fail(c, stages->kids[out],
                         "stage '%s': no ff_layer before the readout (expected one or more)",
                         t->stages[out].name);
  return out;
}

// A side stage's `layer:` names an ff_layer: its frames come in, as wide as
// its units.
static int s_side_input(ffs_yaml_ctx_t *c, const ffs_yaml_node_t *item, ffs_topo_t *t, int i) {
  ffs_stage_cfg_t *st = &t->stages[i];
  int j = ffs_topo_find(t, st->in_name);
  if (j < 0 || t->stages[j].kind != FFS_STAGE_FF_LAYER)
    return ffs_yaml_fail(c, ffs_yaml_map_get(item, "layer"),
                         "stage '%s': layer: %s '%s' (expected the name of an ff_layer)", st->name,
                         j < 0 ? "no stage named" : "not an ff_layer:", st->in_name);
  int taps = 0;
  for (int k = 0; k < i; k++) taps += t->stages[k].in_from == j;
  if (taps >= 8)
    return ffs_yaml_fail(c, item, "stage '%s': more than 8 stages take the frames of '%s' "
                         "(expected at most 8)", st->name, st->in_name);
  st->in_from = j;
  st->in_dim = t->stages[j].out_dim;
  return 0;
}

static int s_stages(ffs_yaml_ctx_t *c, const ffs_yaml_node_t *root, ffs_topo_t *t, int dim) {
  const ffs_yaml_node_t *stages = ffs_yaml_map_get(root, "stages");
  char got[80], who[64];
  if (!stages)
    return ffs_yaml_fail(c, root,
                         "missing required key 'stages' (expected a sequence: the source, one "
                         "or more ff_layers, the readout)");
  if (stages->type != FFS_YAML_SEQ)
    return ffs_yaml_fail(c, stages,
                         "stages: expected a sequence of stages (the source, one or more "
                         "ff_layers, the readout), got %s",
                         ffs_yaml_got(stages, got, sizeof got));
  if (stages->n > FFS_MAX_STAGES)
    return ffs_yaml_fail(c, stages->kids[FFS_MAX_STAGES],
                         "stages: more than %d stages (expected at most %d)", FFS_MAX_STAGES,
                         FFS_MAX_STAGES);
  for (int i = 0; i < stages->n; i++) {
    if (s_stage(c, stages, t, i) < 0) return -1;
    t->n_stages = i + 1;
  }
  if (stages->n < 3)
    return ffs_yaml_fail(c, stages,
                         "stages: expected at least 3 stages (the source, one or more "
                         "ff_layers, the readout), got %d",
                         stages->n);
  int ro_i = s_graph(c, stages, t);
  if (ro_i < 0) return -1;

  // derived dimensions: each stage of the chain eats the previous stage's
  // rows; a side stage the rows of the layer it names
  int n = t->n_stages, n_ff = 0, ff[FFS_MAX_STAGES];
  for (int i = 0; i < n; i++) {
    ffs_stage_cfg_t *st = &t->stages[i];
    if (st->kind == FFS_STAGE_SOURCE) { // a live feed's own shape (width x height, columns
                                        // x window) gives the row, else data.dim
      const ffs_yaml_node_t *dv = ffs_yaml_map_get(ffs_yaml_map_get(root, "data"), "dim");
      if (st->out_dim && dv && st->out_dim != dim)
        return ffs_yaml_fail(c, dv, "data.dim: %d, but source '%s' makes rows of %d floats from "
                             "its feed's shape (remove data.dim or make them agree)",
                             dim, st->name, st->out_dim);
      if (!st->out_dim) st->out_dim = dim;
    }
    if (ffs_kinds[st->kind]->role == FFS_ROLE_LAYER) {
      int from = 0; // the layer before it in its chain, else the source
      for (int j = i - 1; j > 0 && !from; j--)
        if (ffs_kinds[t->stages[j].kind]->role == FFS_ROLE_LAYER && t->stages[j].chain == st->chain)
          from = j;
      st->in_dim = t->stages[from].out_dim;
      st->out_dim = st->units;
      if (st->kind == FFS_STAGE_FF_LAYER) ff[n_ff++] = i;
    }
    if (ffs_kinds[st->kind]->role == FFS_ROLE_SIDE && s_side_input(c, stages->kids[i], t, i) < 0)
      return -1;
  }

  // the readout's lists: default all ff_layers but the first (all if only one)
  ffs_stage_cfg_t *ro = &t->stages[ro_i];
  const ffs_yaml_node_t *item = stages->kids[ro_i], *v;
  s_who(t, ro_i, who, sizeof who);
  int skip = n_ff > 1;
  ro->n_energy = ro->n_softmax = n_ff - skip;
  memcpy(ro->energy, ff + skip, (size_t)(n_ff - skip) * sizeof *ff);
  memcpy(ro->softmax, ff + skip, (size_t)(n_ff - skip) * sizeof *ff);
  if ((v = ffs_yaml_map_get(item, "energy")) &&
      s_layer_list(c, t, v, who, "energy", 1, ro->energy, &ro->n_energy) < 0)
    return -1;
  if ((v = ffs_yaml_map_get(item, "softmax")) &&
      s_layer_list(c, t, v, who, "softmax", 0, ro->softmax, &ro->n_softmax) < 0)
    return -1;
  return 0;
}

// ---- validation: feedback edges ----

static int s_feedback(ffs_yaml_ctx_t *c, const ffs_yaml_node_t *root, ffs_topo_t *t) {
  const ffs_yaml_node_t *fb = ffs_yaml_map_get(root, "feedback");
  char got[80], who[64], names[1024], where[128];
  if (!fb || ffs_yaml_is_null(fb)) return 0;
  if (fb->type != FFS_YAML_SEQ)
    return ffs_yaml_fail(c, fb,
                         "feedback: expected a sequence of edges (- from: l2 / to: l1), got %s",
                         ffs_yaml_got(fb, got, sizeof got));
  if (fb->n > FFS_MAX_FEEDBACK)
    return ffs_yaml_fail(c, fb->kids[FFS_MAX_FEEDBACK],
                         "feedback: more than %d edges (expected at most %d)", FFS_MAX_FEEDBACK,
                         FFS_MAX_FEEDBACK);
  const char *all[FFS_MAX_STAGES + 1];
  for (int i = 0; i < t->n_stages; i++)
    all[i] = t->stages[i].name;
  all[t->n_stages] = NULL;
  ffs_yaml_join(names, sizeof names, all);
  for (int i = 0; i < fb->n; i++) {
    const ffs_yaml_node_t *item = fb->kids[i];
    snprintf(who, sizeof who, "feedback %d", i + 1);
    if (item->type != FFS_YAML_MAP)
      return ffs_yaml_fail(c, item, "%s: expected a mapping with from and to, got %s", who,
                           ffs_yaml_got(item, got, sizeof got));
    if (ffs_yaml_check_keys(c, item, who, s_feedback_keys) < 0) return -1;
    int end[2];
    for (int k = 0; k < 2; k++) {
      const char *key = s_feedback_keys[k];
      const ffs_yaml_node_t *v = ffs_yaml_map_get(item, key);
      if (!v)
        return ffs_yaml_fail(c, item, "%s: missing required key '%s' (expected a stage name: %s)",
                             who, key, names);
      end[k] = v->type == FFS_YAML_SCALAR ? ffs_topo_find(t, v->str) : -1;
      if (end[k] < 0)
        return ffs_yaml_fail(c, v, "%s: %s: no stage named %s (expected one of: %s)", who, key,
                             ffs_yaml_got(v, got, sizeof got), names);
    }
    const char *from = t->stages[end[0]].name, *to = t->stages[end[1]].name;
    // from later than to implies the kinds: the source is first and the
    // readout last, so from is an ff_layer or the readout, to the source or
    // an ff_layer
    if (end[0] <= end[1])
      return ffs_yaml_fail(c, item,
                           "feedback %s -> %s: 'from' must be a later stage than 'to' "
                           "(feedback flows backward, from a later stage to an earlier one)",
                           from, to);
    for (int j = 0; j < i; j++)
      if (t->feedback[j].from == end[0] && t->feedback[j].to == end[1])
        return ffs_yaml_fail(c, item, "feedback %s -> %s: duplicate edge (first at %s)", from, to,
                             ffs_yaml_where(fb->kids[j], where, sizeof where));
    t->feedback[i] = (ffs_feedback_cfg_t){.from = end[0], .to = end[1], .line = item->line};
    t->n_feedback = i + 1;
  }
  return 0;
}

// ---- validation: whole file ----

static int s_validate(ffs_yaml_ctx_t *c, const ffs_yaml_node_t *root, ffs_topo_t *t) {
  int dim = 0;
  if (ffs_yaml_check_keys(c, root, NULL, s_top_keys) < 0) return -1;
  if (s_top(c, root, t, &dim) < 0) return -1;
  if (s_stages(c, root, t, dim) < 0) return -1;
  if (s_feedback(c, root, t) < 0) return -1;
  if (!t->stream && t->stages[0].live)
    return ffs_yaml_fail(c, ffs_yaml_map_get(ffs_yaml_map_get(root, "stages")->kids[0], "feed"),
                         "source '%s': a live feed is played once as it comes (expected "
                         "train.mode: stream)", t->stages[0].name);
  if (t->stream && t->negatives == FFS_NEG_HARD)
    return ffs_yaml_fail(c, ffs_yaml_map_get(ffs_yaml_map_get(root, "train"), "negatives"),
                         "train.negatives: hard draws a sample's negative from its prediction "
                         "in the previous epoch, but train.mode: stream sees each sample once "
                         "(expected random or hybrid)");
  if (t->negatives == FFS_NEG_HARD) {
    // the predictions travel back on a feedback edge readout -> source
    int readout = ffs_topo_find_readout(t), edge = 0;
    for (int k = 0; k < t->n_feedback; k++)
      edge |= t->feedback[k].from == readout && t->feedback[k].to == 0;
    const ffs_yaml_node_t *at = ffs_yaml_map_get(ffs_yaml_map_get(root, "train"), "negatives");
    // (the readout's softmax list is never empty, so predictions exist)
    if (!edge)
      return ffs_yaml_fail(
          c, at,
          "train.negatives: hard needs a feedback edge from the readout to the source "
          "(expected feedback: - {from: %s, to: %s})",
          t->stages[readout].name, t->stages[0].name);
  }
  if (ffs_topo_check_backward(c, root, t) < 0) return -1;
  if (ffs_topo_check_lateral(c, root, t) < 0) return -1;
  if (ffs_topo_check_forms(c, root, t) < 0) return -1;
  if (ffs_topo_expand_shards(c, root, t) < 0) return -1;
  // facts one kind needs of another's configuration, resolved once here
  t->readout = ffs_topo_find_readout(t);
  const ffs_stage_cfg_t *ro = &t->stages[t->readout];
  // each layer's frames come from the layer before it in its chain (that
  // layer's group), or from the source
  for (int i = 0; i < t->n_stages; i++) {
    ffs_stage_cfg_t *st = &t->stages[i];
    if (ffs_kinds[st->kind]->role != FFS_ROLE_LAYER) continue;
    st->in_from = 0;
    for (int j = st->group - 1; j > 0 && !st->in_from; j--)
      if (ffs_kinds[t->stages[j].kind]->role == FFS_ROLE_LAYER && t->stages[j].chain == st->chain)
        st->in_from = t->stages[j].group;
  }
  // (a stream's neutral rows are also its predictions and novelty scores)
  t->want_neutral = ro->n_softmax > 0 || t->stream;
  t->want_candidates = ro->n_energy > 0;
  for (int i = 0; i < t->n_stages; i++)
    for (int k = 0; k < ro->n_softmax; k++)
      t->stages[i].report_activity |=
          t->stages[i].kind == FFS_STAGE_FF_LAYER && ro->softmax[k] == t->stages[i].group;
  // the readout's entry in the file (sharding added stages: found by name)
  const ffs_yaml_node_t *stages = ffs_yaml_map_get(root, "stages"), *ro_node = stages;
  for (int i = 0; i < stages->n; i++) {
    const ffs_yaml_node_t *nm = ffs_yaml_map_get(stages->kids[i], "name");
    if (nm && nm->str && !strcmp(nm->str, ro->name)) ro_node = stages->kids[i];
  }
  if (ro->primary == FFS_INFER_ENERGY && ro->n_energy == 0)
    return ffs_yaml_fail(
        c, ffs_yaml_map_get(ro_node, "primary") ? ffs_yaml_map_get(ro_node, "primary") : ro_node,
        "stage '%s': primary: energy needs a non-empty energy list (expected "
        "primary: softmax, or energy: [layers])",
        ro->name);
  if (t->negatives == FFS_NEG_HYBRID && ro->n_energy > 0)
    return ffs_yaml_fail(
        c, ffs_yaml_map_get(ro_node, "energy") ? ffs_yaml_map_get(ro_node, "energy") : ro_node,
        "stage '%s': hybrid negatives carry no label, so there is no energy to "
        "compare across labels (expected energy: [] and primary: softmax)",
        ro->name);
  return 0;
}

// ---- public API ----

int ffs_topo_load(ffs_topo_t *t, const char *path, const char *const *overrides, int n_overrides,
                  char *err, size_t errlen) {
  assert(t && path && err && errlen > 0);
  assert(n_overrides >= 0 && (overrides || n_overrides == 0));
  ffs_yaml_ctx_t c = {.path = path, .err = err, .errlen = errlen};
  ffs_yaml_node_t *root = NULL;
  int rc = -1;
  memset(t, 0, sizeof *t);
  err[0] = 0;
  if (strlen(path) >= sizeof t->path) {
    ffs_yaml_failf(&c, NULL, 0, "path longer than %zu bytes", sizeof t->path - 1);
    goto fail;
  }
  snprintf(t->path, sizeof t->path, "%s", path);
  if (ffs_yaml_load(&c, &root) < 0) goto fail;
  if (!root || ffs_yaml_is_null(root)) {
    ffs_yaml_failf(&c, NULL, 1, "empty topology file (expected a mapping with at least 'stages')");
    goto fail;
  }
  if (root->type != FFS_YAML_MAP) {
    char list[256], got[80];
    ffs_yaml_fail(&c, root, "top level: expected a mapping of keys (%s), got %s",
                  ffs_yaml_join(list, sizeof list, s_top_keys),
                  ffs_yaml_got(root, got, sizeof got));
    goto fail;
  }
  for (int i = 0; i < n_overrides; i++) {
    assert(overrides[i]);
    if (ffs_yaml_override(&c, root, overrides[i], &s_override_spec) < 0) goto fail;
  }
  if (s_validate(&c, root, t) < 0) goto fail;
  rc = 0;
fail:
  ffs_yaml_destroy(&root);
  if (rc < 0) memset(t, 0, sizeof *t); // never hand back a half-validated topology
  return rc;
}

int ffs_topo_find_readout(const ffs_topo_t *t) {
  for (int i = 0; i < t->n_stages; i++)
    if (t->stages[i].kind == FFS_STAGE_READOUT) return i;
  return -1;
}

int ffs_topo_find(const ffs_topo_t *t, const char *name) {
  assert(t && name);
  for (int i = 0; i < t->n_stages; i++)
    if (!strcmp(t->stages[i].name, name)) return i;
  return -1;
}

const char *ffs_stage_kind_str(ffs_stage_kind_t k) {
  const ffs_kind_t *kind = ffs_kind_of((int)k);
  return kind ? kind->name : "unknown";
}
