// ffs_topo_forms: the topology loader's rules for the FFCL, recurrent and
// sharded forms, and shard expansion (see ffs_topo_forms.h). Part of the
// schema, cut from common/ffs_topo.c to keep each file readable; it never
// asserts on file content.
#include "ffs_topo_forms.h"

#include "ffs_kind.h"

#include <stdio.h>
#include <string.h>

// What a chain of supervised layers of `kind` (dp_layer, mirror_layer)
// needs of the rest of the file: no ticks, no stream, a readout scoring its
// class scores; then the source sends plain labelled rows. Returns 0 or -1.
static int s_supervised(ffs_yaml_ctx_t *c, const ffs_yaml_node_t *root, ffs_topo_t *t,
                        const ffs_kind_t *kind, int ro) {
  const ffs_yaml_node_t *stages = ffs_yaml_map_get(root, "stages");
  const ffs_yaml_node_t *train = ffs_yaml_map_get(root, "train");
  if (t->ticks > 1)
    return ffs_yaml_fail(c, ffs_yaml_map_get(train, "ticks"),
                         "train.ticks: %d, but %ss are not recurrent (expected ticks: 1)",
                         t->ticks, kind->name);
  if (t->stream)
    return ffs_yaml_fail(c, ffs_yaml_map_get(train, "mode"),
                         "train.mode: stream is not implemented for %ss (expected mode: "
                         "epochs)", kind->name);
  const ffs_yaml_node_t *prim = ffs_yaml_map_get(stages->kids[ro], "primary");
  if (prim && t->stages[ro].primary == FFS_INFER_ENERGY)
    return ffs_yaml_fail(c, prim,
                         "stage '%s': primary: energy needs goodness, which %ss have none "
                         "of (expected primary: softmax, the class scores)",
                         t->stages[ro].name, kind->name);
  t->stages[ro].primary = FFS_INFER_SOFTMAX;
  t->supervised = 1;
  t->pairs = t->triples = t->form_auto = 0; // one frame of labelled rows per batch
  return 0;
}

// The keys only a hidden layer of `kind` takes (kind->hidden_keys), refused
// on stage `i`, a chain's last layer. Returns 0 or -1.
static int s_refuse_hidden_keys(ffs_yaml_ctx_t *c, const ffs_yaml_node_t *stages,
                                const ffs_topo_t *t, const ffs_kind_t *kind, int i) {
  for (const char *const *key = kind->hidden_keys; key && *key; key++) {
    const ffs_yaml_node_t *v = ffs_yaml_map_get(stages->kids[i], *key);
    if (v)
      return ffs_yaml_fail(c, v,
                           "stage '%s': %s: a model's last layer learns from the label alone "
                           "(expected %s on hidden layers only)",
                           t->stages[i].name, *key, *key);
  }
  return 0;
}

// ---- validation: a chain with backward edges ----

int ffs_topo_check_backward(ffs_yaml_ctx_t *c, const ffs_yaml_node_t *root, ffs_topo_t *t) {
  const ffs_yaml_node_t *stages = ffs_yaml_map_get(root, "stages");
  const ffs_yaml_node_t *train = ffs_yaml_map_get(root, "train");
  int first = -1, last = -1, ro = -1;
  for (int i = 0; i < t->n_stages; i++) {
    const ffs_kind_t *k = ffs_kinds[t->stages[i].kind];
    if (k->role == FFS_ROLE_READOUT) ro = i;
    if (k->role != FFS_ROLE_LAYER) continue;
    if (first < 0) first = i;
    last = i;
  }
  if (first < 0 || ro < 0 || !ffs_kinds[t->stages[last].kind]->backward) {
    for (int i = first; i >= 0 && i <= last; i++)
      if (ffs_kinds[t->stages[i].kind]->backward)
        return ffs_yaml_fail(c, stages->kids[last],
                             "stage '%s': a %s in a chain that ends with a %s (expected every "
                             "layer of the chain to be a %s: its backward edges run from "
                             "the last layer down to the first)",
                             t->stages[last].name, ffs_kinds[t->stages[i].kind]->name,
                             ffs_kinds[t->stages[last].kind]->name,
                             ffs_kinds[t->stages[i].kind]->name);
    return 0;
  }
  const ffs_kind_t *kind = ffs_kinds[t->stages[last].kind];
  for (int i = first; i <= last; i++)
    if (ffs_kinds[t->stages[i].kind] != kind)
      return ffs_yaml_fail(c, stages->kids[i],
                           "stage '%s': a %s in a chain of %ss (expected every layer of the "
                           "chain to be a %s)",
                           t->stages[i].name, ffs_kinds[t->stages[i].kind]->name, kind->name,
                           kind->name);
  if (t->stages[last].units != t->classes)
    return ffs_yaml_fail(c, ffs_yaml_map_get(stages->kids[last], "units"),
                         "stage '%s': units: %d, but the last %s gives the class scores "
                         "(expected units: %d, data.classes)",
                         t->stages[last].name, t->stages[last].units, kind->name, t->classes);
  if (s_refuse_hidden_keys(c, stages, t, kind, last) < 0) return -1;
  for (int k = 0; k < t->n_feedback; k++) {
    const ffs_feedback_cfg_t *e = &t->feedback[k];
    if ((e->from >= first && e->from <= last) || (e->to >= first && e->to <= last))
      return ffs_yaml_failf(c, NULL, e->line,
                            "feedback %s -> %s: the %ss' backward edges are made for them "
                            "(expected no feedback: edge to or from a %s)",
                            t->stages[e->from].name, t->stages[e->to].name, kind->name,
                            kind->name);
  }
  if (t->timing == FFS_TIMING_FREE)
    return ffs_yaml_fail(c, ffs_yaml_map_get(train, "timing"),
                         "train.timing: free-running is the recurrent form's (expected "
                         "lockstep or pipelined for %ss)", kind->name);
  return s_supervised(c, root, t, kind, ro);
}

// ---- validation: twin pipelines ----

int ffs_topo_check_lateral(ffs_yaml_ctx_t *c, const ffs_yaml_node_t *root, ffs_topo_t *t) {
  const ffs_yaml_node_t *stages = ffs_yaml_map_get(root, "stages");
  const ffs_kind_t *kind = NULL;
  int ro = -1;
  for (int i = 0; i < t->n_stages; i++) {
    const ffs_kind_t *k = ffs_kinds[t->stages[i].kind];
    if (k->role == FFS_ROLE_READOUT) ro = i;
    if (k->role == FFS_ROLE_LAYER && k->lateral && !kind) kind = k;
  }
  if (!kind || ro < 0) return 0;
  int layer[2][FFS_MAX_STAGES], n[2] = {0, 0};
  for (int i = 0; i < t->n_stages; i++) {
    const ffs_stage_cfg_t *st = &t->stages[i];
    if (ffs_kinds[st->kind]->role != FFS_ROLE_LAYER) continue;
    if (ffs_kinds[st->kind] != kind)
      return ffs_yaml_fail(c, stages->kids[i],
                           "stage '%s': a %s among %ss (expected every layer to be a %s of "
                           "model a or b)",
                           st->name, ffs_kinds[st->kind]->name, kind->name, kind->name);
    layer[st->chain][n[st->chain]++] = i;
  }
  if (n[0] != n[1] || n[0] < 1)
    return ffs_yaml_fail(c, stages, "stages: model a has %d %ss, model b %d (expected two "
                         "models of as many layers, twins at each depth)", n[0], kind->name, n[1]);
  for (int d = 0; d < n[0]; d++) {
    ffs_stage_cfg_t *a = &t->stages[layer[0][d]], *b = &t->stages[layer[1][d]];
    if (a->units != b->units)
      return ffs_yaml_fail(c, ffs_yaml_map_get(stages->kids[layer[1][d]], "units"),
                           "stage '%s': units: %d, but its twin '%s' has %d (expected the "
                           "same width at each depth)", b->name, b->units, a->name, a->units);
    int top = d == n[0] - 1;
    a->twin = top ? -1 : layer[1][d], b->twin = top ? -1 : layer[0][d];
    for (int m = 0; top && m < 2; m++)
      if (s_refuse_hidden_keys(c, stages, t, kind, layer[m][d]) < 0) return -1;
    if (top && a->units != t->classes)
      return ffs_yaml_fail(c, ffs_yaml_map_get(stages->kids[layer[0][d]], "units"),
                           "stage '%s': units: %d, but a model's last layer gives the class "
                           "probabilities (expected units: %d, data.classes)",
                           a->name, a->units, t->classes);
  }
  if (t->n_feedback > 0)
    return ffs_yaml_failf(c, NULL, t->feedback[0].line,
                          "feedback: the %ss' lateral edges are made for them (expected no "
                          "feedback: edges)", kind->name);
  return s_supervised(c, root, t, kind, ro);
}

// ---- validation: labels and recurrent loops ----

// FFCL label weights and the recurrent form: what each needs, and the
// top-down input every ff_layer gets in the recurrent form (one edge from
// an ff_layer above it at most).
int ffs_topo_check_forms(ffs_yaml_ctx_t *c, const ffs_yaml_node_t *root, ffs_topo_t *t) {
  const ffs_yaml_node_t *train = ffs_yaml_map_get(root, "train");
  const ffs_yaml_node_t *data = ffs_yaml_map_get(root, "data");
  int dim = t->stages[0].out_dim;
  if (t->labels == FFS_LABELS_OVERLAY && t->negatives != FFS_NEG_HYBRID && dim < t->classes) {
    // the label is painted into the first data.classes pixels of each row
    const ffs_yaml_node_t *at = ffs_yaml_map_get(data, "dim");
    return ffs_yaml_fail(c, at ? at : ffs_yaml_map_get(data, "classes"),
                         "data.dim: %d pixels cannot hold the label overlay of data.classes = %d "
                         "labels (expected data.dim >= data.classes, or train.labels: separate)",
                         dim, t->classes);
  }
  if (t->labels == FFS_LABELS_SEPARATE && t->negatives == FFS_NEG_HYBRID)
    return ffs_yaml_fail(
        c, ffs_yaml_map_get(train, "labels"),
        "train.labels: separate gives each layer the label, but hybrid negatives are "
        "unsupervised and carry none (expected labels: overlay, or negatives: random "
        "| hard)");
  if (t->ticks == 1) return 0;
  if (t->pairs) {
    const char *key = t->triples ? "triples" : "pairs";
    return ffs_yaml_fail(c, ffs_yaml_map_get(train, key),
                         "train.%s: the recurrent form (ticks > 1) sends positive and negative "
                         "frames tick by tick, never as one %s frame (expected %s: false, or "
                         "ticks: 1)",
                         key, key[0] == 'p' ? "pair" : "triple", key);
  }
  if (t->labels == FFS_LABELS_SEPARATE)
    return ffs_yaml_fail(
        c, ffs_yaml_map_get(train, "ticks"),
        "train.ticks: the recurrent form (ticks > 1) is not implemented together with "
        "labels: separate (expected ticks: 1, or labels: overlay)");
  int loops = 0;
  for (int k = 0; k < t->n_feedback; k++) {
    const ffs_feedback_cfg_t *e = &t->feedback[k];
    ffs_stage_cfg_t *to = &t->stages[e->to], *from = &t->stages[e->from];
    if (to->kind != FFS_STAGE_FF_LAYER) continue;
    if (from->kind != FFS_STAGE_FF_LAYER)
      return ffs_yaml_failf(
          c, NULL, e->line,
          "feedback %s -> %s: with train.ticks > 1 an ff_layer's feedback is its "
          "top-down input, so it must come from an ff_layer (expected from: one of "
          "the ff_layers after %s)",
          from->name, to->name, to->name);
    if (to->td_from >= 0)
      return ffs_yaml_failf(
          c, NULL, e->line,
          "feedback %s -> %s: %s already takes top-down input from %s; the recurrent "
          "form allows one edge into each ff_layer",
          from->name, to->name, to->name, t->stages[to->td_from].name);
    to->td_from = e->from;
    to->td_dim = from->units;
    loops++;
  }
  // a lockstep layer waits on its upper neighbour, which must never be more
  // than the readout's join window (16 reports) ahead of it
  if (t->timing == FFS_TIMING_LOCKSTEP && t->hwm_frames > 8)
    return ffs_yaml_fail(
        c, ffs_yaml_map_get(train, "hwm_frames"),
        "train.hwm_frames: %d is too deep for a lockstep recurrent run (expected at "
        "most 8: a layer waiting for its top-down vector must not fall more than the "
        "readout's 16-frame join window behind the layer above)",
        t->hwm_frames);
  if (!loops)
    return ffs_yaml_fail(c, ffs_yaml_map_get(train, "ticks"),
                         "train.ticks: %d ticks need at least one top-down feedback edge between "
                         "ff_layers (expected e.g. feedback: - {from: l2, to: l1})",
                         t->ticks);
  return 0;
}

// ---- sharded layers ----

// Expands every ff_layer with shards: k > 1 into k consecutive stages named
// <name>.0 .. <name>.<k-1>, each owning a contiguous slice of the units, and
// renumbers the readout's lists and the feedback edges. What sharding does
// not support yet is refused here, by the line of its `shards` key.
int ffs_topo_expand_shards(ffs_yaml_ctx_t *c, const ffs_yaml_node_t *root, ffs_topo_t *t) {
  const ffs_yaml_node_t *stages = ffs_yaml_map_get(root, "stages");
  int total = 0, any = 0;
  for (int i = 0; i < t->n_stages; i++) {
    const ffs_stage_cfg_t *st = &t->stages[i];
    total += st->n_shards;
    if (st->n_shards == 1) continue;
    any = 1;
    const ffs_yaml_node_t *at = ffs_yaml_map_get(stages->kids[i], "shards");
    if (t->ticks > 1 || t->labels == FFS_LABELS_SEPARATE)
      return ffs_yaml_fail(c, at,
                           "stage '%s': shards: a layer cannot be sharded in %s yet (expected "
                           "shards: 1, or train.ticks: 1 and train.labels: overlay)",
                           st->name,
                           t->ticks > 1 ? "the recurrent form (train.ticks > 1)"
                                        : "the FFCL form (train.labels: separate)");
    for (int k = 0; k < t->n_feedback; k++) {
      const ffs_feedback_cfg_t *e = &t->feedback[k];
      if (e->from == i || e->to == i)
        return ffs_yaml_failf(
            c, NULL, e->line,
            "feedback %s -> %s: '%s' is sharded (shards: %d) and a sharded layer "
            "cannot start or end a feedback edge yet (expected shards: 1 on '%s', "
            "or no such edge)",
            t->stages[e->from].name, t->stages[e->to].name, st->name, st->n_shards, st->name);
    }
    if (strlen(st->name) + (st->n_shards > 10 ? 3 : 2) >= FFS_NAME_MAX)
      return ffs_yaml_fail(
          c, at,
          "stage '%s': shards: its shards' names (%s.0 ...) would be longer than %d "
          "characters (expected a shorter stage name)",
          st->name, st->name, FFS_NAME_MAX - 1);
  }
  if (!any) return 0;
  if (total > FFS_MAX_STAGES)
    return ffs_yaml_fail(
        c, stages, "stages: with their shards the stages make %d processes (expected at most %d)",
        total, FFS_MAX_STAGES);
  ffs_stage_cfg_t old[FFS_MAX_STAGES];
  int first[FFS_MAX_STAGES], n_old = t->n_stages, n = 0;
  memcpy(old, t->stages, sizeof(ffs_stage_cfg_t) * (size_t)n_old);
  for (int i = 0; i < n_old; i++) {
    const ffs_stage_cfg_t *o = &old[i];
    first[i] = n;
    for (int k = 0; k < o->n_shards; k++, n++) {
      ffs_stage_cfg_t *st = &t->stages[n];
      *st = *o;
      st->group = first[i], st->shard = k;
      if (o->n_shards == 1) continue;
      int base = o->units / o->n_shards, extra = o->units % o->n_shards;
      size_t len = strlen(o->name); // checked above: the suffix fits
      snprintf(st->name + len, sizeof st->name - len, ".%d", k);
      st->units = base + (k < extra);
      st->unit0 = k * base + (k < extra ? k : extra);
      if (o->core >= 0) st->core = o->core + k;
    }
  }
  t->n_stages = n; // stage names hold no '.', so shard names are new ones
  ffs_stage_cfg_t *ro = &t->stages[ffs_topo_find_readout(t)];
  for (int i = 0; i < n; i++) // a side stage's layer
    if (t->stages[i].in_from >= 0) t->stages[i].in_from = first[t->stages[i].in_from];
  for (int k = 0; k < ro->n_energy; k++)
    ro->energy[k] = first[ro->energy[k]];
  for (int k = 0; k < ro->n_softmax; k++)
    ro->softmax[k] = first[ro->softmax[k]];
  for (int k = 0; k < t->n_feedback; k++) {
    t->feedback[k].from = first[t->feedback[k].from];
    t->feedback[k].to = first[t->feedback[k].to];
  }
  for (int i = 0; i < n; i++)
    if (t->stages[i].td_from >= 0) t->stages[i].td_from = first[t->stages[i].td_from];
  return 0;
}
