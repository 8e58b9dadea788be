// mirror_layer stage: one layer of one of two mirrored models (model a or
// b, `model:`), mirror_layer.h for the objectives. A training frame goes
// forward at once, its activity also goes to the twin (the layer at the same
// depth of the other model) on a lateral edge, and its input, pre-activation
// and activity wait in `pending`, keyed by sequence number, until the twin's
// activity for the same frame comes; then the layer steps on its own loss
// against it. A twin frame that arrives first waits in `inbox`. Neither
// waits for the other forever: when one is full its oldest entry is given
// up, and at the end of an epoch's training so are the entries of earlier
// epochs; each is counted (summary.json: stash_expired for a frame whose
// twin never came, feedback_unknown for a twin frame whose own never did).
// With `head:`, the layer's label head steps with it (mirror_layer.h). The top
// layer learns from the label alone (binary cross-entropy), at once. Every
// layer reports every frame to the readout: hidden layers their activity
// (the readout's linear probes and collapse measure), the tops their class
// probabilities.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ffs_kind.h"
#include "ffs_log.h"
#include "ffs_math.h"
#include "ffs_rng.h"
#include "ffs_optim.h"
#include "ffs_stage.h"
#include "mirror_layer.h"

#define S_SLOTS 32 // frames kept waiting for their twin (and twin frames for theirs)

typedef struct {
  int used;
  ffs_frame_hdr_t h;
  long order;         // arrival order (the oldest is given up first)
  float *x, *a, *act; // pending: input, pre-activation, activity; inbox: act only
  uint8_t *labels;
} s_slot_t;

typedef struct {
  const ffs_topo_t *topo;
  int index, in_dim, units, max_rows;
  ffs_mirror_cfg_t cfg;
  ffs_dense_t *dense, *head; // head: the label head (NULL without `head:`)
  int classes;
  s_slot_t pending[S_SLOTS], inbox[S_SLOTS];
  long arrivals;
  float *a, *act, *dz, *scratch, *zh, *ph, *dzh; // zh, ph, dzh: the head's (rows, classes)
  uint32_t *ids;
  double t_frame;
} s_mirror_t;

// A frame made from the one being handled (ffs_io_send_from).
static int s_send(s_mirror_t *s, ffs_io_t *io, ffs_out_t out, const ffs_frame_hdr_t *in, uint8_t kind,
                  uint32_t rows, uint32_t cols, const ffs_frame_rows_t *r, const float *payload) {
  return ffs_io_send_from(io, out, in, kind, rows, cols, r, payload, s->t_frame);
}

// ---- pairing with the twin ----

static s_slot_t *s_find(s_slot_t *slots, uint64_t seq) {
  for (int k = 0; k < S_SLOTS; k++)
    if (slots[k].used && slots[k].h.seq == seq) return &slots[k];
  return NULL;
}

// A free slot; when none is, the oldest is given up (counted in *given_up).
static s_slot_t *s_take(s_mirror_t *s, s_slot_t *slots, uint64_t *given_up, const char *what) {
  s_slot_t *old = NULL;
  for (int k = 0; k < S_SLOTS; k++) {
    if (!slots[k].used) return &slots[k];
    if (!old || slots[k].order < old->order) old = &slots[k];
  }
  if (++*given_up <= 3)
    ffs_warn("%s for frame %llu never came: given up%s", what, (unsigned long long)old->h.seq,
             *given_up == 3 ? " (further ones counted)" : "");
  old->used = 0;
  return old;
}

static void s_learn(s_mirror_t *s, ffs_io_t *io, s_slot_t *own, const float *twin) {
  int rows = (int)own->h.rows;
  ffs_mirror_hidden(&s->cfg, s->cfg.pre ? own->a : own->act, twin, s->cfg.pre ? NULL : own->a,
                    own->labels, rows, s->units, s->dz, s->scratch);
  const ffs_layer_cfg_t *c = &s->topo->stages[s->index].layer;
  float lr = c->cooldown ? ffs_optim_cooldown((int)own->h.epoch, s->topo->epochs) : 1.0f;
  if (s->head) { // labels were checked when the frame came (s_on_data)
    memcpy(ffs_dense_input(s->head), own->act, sizeof(float) * (size_t)rows * (size_t)s->units);
    ffs_dense_forward(s->head, s->zh, rows);
    ffs_mirror_head(s->zh, ffs_dense_weights(s->head), own->a, own->labels, rows, s->units,
                    s->classes, s->cfg.head, s->ph, s->dzh, s->dz);
    ffs_dense_add_grad(s->head, s->dzh, rows, 0);
    ffs_dense_step(s->head, lr, NULL, NULL, NULL);
  }
  memcpy(ffs_dense_input(s->dense), own->x, sizeof(float) * (size_t)rows * (size_t)s->in_dim);
  ffs_dense_add_grad(s->dense, s->dz, rows, 0);
  ffs_dense_step(s->dense, lr, NULL, NULL, NULL);
  own->used = 0;
  ffs_io_stats(io)->fb_frames++;
}

static int s_on_twin(s_mirror_t *s, ffs_io_t *io, const ffs_frame_t *f) {
  if (f->h.kind != FFS_FRAME_FEEDBACK || f->h.rows < 1 || f->h.cols != (uint32_t)s->units)
    return -1;
  s_slot_t *own = s_find(s->pending, f->h.seq);
  if (own && own->h.rows != f->h.rows) return -1;
  if (own) {
    if (ffs_frame_copy_payload(s->act, f) < 0) return -1;
    s_learn(s, io, own, s->act);
    return 0;
  }
  s_slot_t *in = s_take(s, s->inbox, &ffs_io_stats(io)->fb_unknown, "this layer's own frame");
  if (ffs_frame_copy_payload(in->act, f) < 0) return -1;
  in->used = 1, in->h = f->h, in->order = s->arrivals++;
  return 0;
}

// ---- forward ----

static int s_on_data(s_mirror_t *s, ffs_io_t *io, const ffs_frame_t *f) {
  int rows = (int)f->h.rows, train = f->h.phase == FFS_PHASE_TRAIN;
  if (rows < 1) return -1;
  float *x = ffs_dense_input(s->dense);
  if (ffs_frame_copy_payload(x, f) < 0) return -1;
  ffs_dense_set_eval(s->dense, !train);
  ffs_dense_forward(s->dense, s->a, rows);
  ffs_frame_rows_t r = ffs_frame_rows_of(f, s->ids);
  long n = (long)rows * s->units;
  if (s->cfg.top) { // class probabilities to the readout; learns from the label at once
    if (train && !f->labels) return -1;
    if (!train) ffs_softmax_rows(memcpy(s->act, s->a, sizeof(float) * (size_t)n), rows, s->units);
    else if (ffs_mirror_top(s->a, f->labels, rows, s->units, s->act, s->dz) < 0) return -1;
    if (s_send(s, io, FFS_OUT_REPORT, &f->h, FFS_FRAME_REPORT, (uint32_t)rows,
               (uint32_t)s->units, &r, s->act) < 0)
      return -1;
    if (!train) return 0;
    const ffs_layer_cfg_t *c = &s->topo->stages[s->index].layer;
    float lr = c->cooldown ? ffs_optim_cooldown((int)f->h.epoch, s->topo->epochs) : 1.0f;
    ffs_dense_add_grad(s->dense, s->dz, rows, 0);
    ffs_dense_step(s->dense, lr, NULL, NULL, NULL);
    ffs_io_stats(io)->samples += (uint64_t)rows;
    return 0;
  }
  for (long k = 0; k < n; k++) s->act[k] = s->a[k] > 0.0f ? s->a[k] : 0.0f;
  if (s_send(s, io, FFS_OUT_FORWARD, &f->h, FFS_FRAME_DATA, (uint32_t)rows, (uint32_t)s->units,
             &r, s->act) < 0)
    return -1;
  if (s_send(s, io, FFS_OUT_REPORT, &f->h, FFS_FRAME_REPORT, (uint32_t)rows, (uint32_t)s->units,
             &r, s->act) < 0)
    return -1;
  if (!train) return 0;
  if (!f->labels && (s->cfg.objective == FFS_MIRROR_SUPCON || s->head)) return -1;
  for (int r = 0; s->head && r < rows; r++)
    if (f->labels[r] >= s->classes) return -1;
  ffs_frame_rows_t none = {0};
  if (s_send(s, io, FFS_OUT_FEEDBACK, &f->h, FFS_FRAME_FEEDBACK, (uint32_t)rows,
             (uint32_t)s->units, &none, s->cfg.pre ? s->a : s->act) < 0)
    return -1;
  ffs_stage_stats_t *st = ffs_io_stats(io);
  st->samples += (uint64_t)rows;
  s_slot_t *own = s_take(s, s->pending, &st->stash_expired, "the twin's activity");
  own->used = 1, own->h = f->h, own->order = s->arrivals++;
  memcpy(own->x, x, sizeof(float) * (size_t)rows * (size_t)s->in_dim);
  memcpy(own->a, s->a, sizeof(float) * (size_t)n);
  memcpy(own->act, s->act, sizeof(float) * (size_t)n);
  if (f->labels) memcpy(own->labels, f->labels, (size_t)rows);
  uint64_t held = 0;
  for (int k = 0; k < S_SLOTS; k++) held += s->pending[k].used;
  if (held > st->stash_max) st->stash_max = held;
  s_slot_t *in = s_find(s->inbox, f->h.seq);
  if (in && in->h.rows == f->h.rows) {
    s_learn(s, io, own, in->act);
    in->used = 0;
  }
  return 0;
}

// At the end of epoch e's training, entries of earlier epochs are given up:
// their partner had a whole epoch to come (it was lost with a restarted
// twin, or never sent).
static void s_give_up_before(s_mirror_t *s, ffs_io_t *io, uint32_t epoch) {
  ffs_stage_stats_t *st = ffs_io_stats(io);
  for (int k = 0; k < S_SLOTS; k++) {
    if (s->pending[k].used && s->pending[k].h.epoch < epoch)
      s->pending[k].used = 0, st->stash_expired++;
    if (s->inbox[k].used && s->inbox[k].h.epoch < epoch) s->inbox[k].used = 0, st->fb_unknown++;
  }
}

static int s_on_frame(void *self, ffs_io_t *io, const ffs_frame_t *f, ffs_chan_t chan, int sub) {
  (void)sub;
  s_mirror_t *s = self;
  s->t_frame = ffs_now();
  if (chan == FFS_CHAN_FB) return s_on_twin(s, io, f);
  if (f->h.kind == FFS_FRAME_MARK) {
    ffs_frame_rows_t none = {0};
    if (s_send(s, io, FFS_OUT_FORWARD, &f->h, FFS_FRAME_MARK, 0, 0, &none, NULL) < 0) return -1;
    if (s_send(s, io, FFS_OUT_REPORT, &f->h, FFS_FRAME_MARK, 0, 0, &none, NULL) < 0) return -1;
    if (f->h.phase != FFS_PHASE_TRAIN) return 0;
    s_give_up_before(s, io, f->h.epoch);
    ffs_io_checkpoint(io); // epoch end
    return 0;
  }
  if (f->h.kind != FFS_FRAME_DATA) return -1;
  return s_on_data(s, io, f);
}

// ---- checkpoints: the dense blocks' (ffs_dense_save_blocks; the head's tensors "head.*") ----

static const char *const s_prefixes[] = {"", "head."};

static int s_save(void *self, const char *path, char *err, size_t errlen) {
  s_mirror_t *s = self;
  const ffs_stage_cfg_t *me = &s->topo->stages[s->index];
  const char *meta[] = {"stage", me->name, "kind", "mirror_layer", "model",
                        s->cfg.model ? "b" : "a"};
  ffs_dense_t *blocks[] = {s->dense, s->head};
  return ffs_dense_save_blocks(blocks, s_prefixes, s->head ? 2 : 1, path, meta, 3, err, errlen);
}

static int s_load(void *self, const char *path, char *err, size_t errlen) {
  s_mirror_t *s = self;
  ffs_dense_t *blocks[] = {s->dense, s->head};
  return ffs_dense_load_blocks(blocks, s_prefixes, s->head ? 2 : 1, path, err, errlen);
}

// ---- lifecycle ----

static void s_destroy(void **self_p) {
  s_mirror_t *s = *self_p;
  if (!s) return;
  ffs_dense_destroy(&s->dense);
  ffs_dense_destroy(&s->head);
  free(s->a), free(s->act), free(s->dz), free(s->scratch), free(s->ids);
  free(s->zh), free(s->ph), free(s->dzh);
  for (int k = 0; k < S_SLOTS; k++) {
    free(s->pending[k].x), free(s->pending[k].a), free(s->pending[k].act);
    free(s->pending[k].labels), free(s->inbox[k].act);
  }
  free(s);
  *self_p = NULL;
}

static void *s_create(const ffs_stage_env_t *env, ffs_io_t *io, char *err, size_t errlen) {
  const ffs_topo_t *t = env->topo;
  const ffs_stage_cfg_t *me = &t->stages[env->index];
  s_mirror_t *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->topo = t, s->index = env->index;
  memcpy(&s->cfg, me->kind_cfg, sizeof s->cfg);
  s->cfg.top = me->twin < 0; // the tops learn from the label, not from a twin
  s->in_dim = me->in_dim, s->units = me->units, s->max_rows = ffs_topo_max_rows(t);
  ffs_rng_t rng; // each layer its own stream: the two models start apart
  ffs_rng_seed(&rng, t->seed, (uint64_t)me->layer_index + 3000);
  s->dense = ffs_dense_new(s->in_dim, s->units, 0, s->units, s->max_rows, &me->layer, &rng);
  size_t mr = (size_t)s->max_rows, u = (size_t)s->units, in = (size_t)s->in_dim;
  s->classes = t->classes;
  int ok = s->dense != NULL;
  if (ok && !s->cfg.top && s->cfg.head > 0.0f) { // drawn after the layer's W, from its stream
    size_t k = (size_t)s->classes;
    ok &= (s->head = ffs_dense_new(s->units, s->classes, 0, s->classes, s->max_rows, &me->layer,
                                   &rng)) != NULL;
    ok &= (s->zh = malloc(sizeof(float) * mr * k)) != NULL;
    ok &= (s->ph = malloc(sizeof(float) * mr * k)) != NULL;
    ok &= (s->dzh = malloc(sizeof(float) * mr * k)) != NULL;
  }
  ok &= (s->a = malloc(sizeof(float) * mr * u)) != NULL;
  ok &= (s->act = malloc(sizeof(float) * mr * u)) != NULL;
  ok &= (s->dz = malloc(sizeof(float) * mr * u)) != NULL;
  ok &= (s->scratch = malloc(sizeof(float) * mr * (mr + 1))) != NULL;
  ok &= (s->ids = malloc(sizeof(uint32_t) * mr)) != NULL;
  for (int k = 0; ok && !s->cfg.top && k < S_SLOTS; k++) {
    s_slot_t *p = &s->pending[k];
    ok &= (p->x = malloc(sizeof(float) * mr * in)) != NULL;
    ok &= (p->a = malloc(sizeof(float) * mr * u)) != NULL;
    ok &= (p->act = malloc(sizeof(float) * mr * u)) != NULL;
    ok &= (p->labels = malloc(mr)) != NULL;
    ok &= (s->inbox[k].act = malloc(sizeof(float) * mr * u)) != NULL;
  }
  if (!ok) {
    snprintf(err, errlen, "out of memory for a %dx%d mirror_layer", s->units, s->in_dim);
    void *p = s;
    s_destroy(&p);
    return NULL;
  }
  if (!s->cfg.top)
    ffs_io_stats(io)->stash_bytes = (uint64_t)S_SLOTS * (sizeof(float) * mr * (in + 3 * u) + mr);
  return s;
}

// ---- the kind ----

static const char *const s_keys[] = {"name",  "kind",      "units", "core",     "host",
                                     "model", "objective", "tau",   "optimizer", "lr",
                                     "momentum", "weight_decay", "cooldown", "eval_average",
                                     "compare", "head", "twin", NULL};
static const char *const s_models[] = {"a", "b", NULL};
static const char *const s_hidden_keys[] = {"objective", "tau", "compare", "head", "twin",
                                            NULL};
static const char *const s_objectives[] = {"cosine", "infonce", "supcon", NULL};
static const char *const s_compares[] = {"activity", "preactivation", NULL};
extern const ffs_stage_ops_t ffs_mirror_layer_ops;
_Static_assert(sizeof(ffs_mirror_cfg_t) <= FFS_KIND_CFG_MAX, "a mirror_layer's options fit");

// A mirror_layer's keys: units and model (required), objective, tau,
// compare, head, twin (hidden layers only), and the optimizer's layer keys over
// the top-level `layer:` block's.
static int s_parse(ffs_yaml_ctx_t *c, const ffs_yaml_node_t *item, const char *who,
                   ffs_stage_cfg_t *st) {
  const ffs_yaml_node_t *v;
  char label[96];
  int e;
  ffs_mirror_cfg_t cfg = {.objective = FFS_MIRROR_COSINE, .temp = 0.1f, .twin = 1.0f};
  if (!(v = ffs_yaml_map_get(item, "units")))
    return ffs_yaml_fail(c, item, "%s: missing required key 'units' (a mirror_layer needs "
                         "units: 1..65536)", who);
  snprintf(label, sizeof label, "%s: units", who);
  if (ffs_yaml_int(c, v, label, 1, 65536, &st->units) < 0) return -1;
  if (!(v = ffs_yaml_map_get(item, "model")))
    return ffs_yaml_fail(c, item, "%s: missing required key 'model' (a mirror_layer belongs to "
                         "model a or model b)", who);
  snprintf(label, sizeof label, "%s: model", who);
  if (ffs_yaml_enum(c, v, label, s_models, &cfg.model) < 0) return -1;
  snprintf(label, sizeof label, "%s: objective", who);
  if ((v = ffs_yaml_map_get(item, "objective"))) {
    if (ffs_yaml_enum(c, v, label, s_objectives, &e) < 0) return -1;
    cfg.objective = (ffs_mirror_obj_t)e;
  }
  snprintf(label, sizeof label, "%s: compare", who);
  if ((v = ffs_yaml_map_get(item, "compare")) &&
      ffs_yaml_enum(c, v, label, s_compares, &cfg.pre) < 0)
    return -1;
  snprintf(label, sizeof label, "%s: tau", who);
  if ((v = ffs_yaml_map_get(item, "tau")) &&
      ffs_yaml_num(c, v, label, FFS_YAML_POSITIVE, &cfg.temp) < 0)
    return -1;
  snprintf(label, sizeof label, "%s: head", who);
  if ((v = ffs_yaml_map_get(item, "head")) &&
      ffs_yaml_num(c, v, label, FFS_YAML_NONNEG, &cfg.head) < 0)
    return -1;
  snprintf(label, sizeof label, "%s: twin", who);
  if ((v = ffs_yaml_map_get(item, "twin")) &&
      ffs_yaml_num(c, v, label, FFS_YAML_NONNEG, &cfg.twin) < 0)
    return -1;
  snprintf(label, sizeof label, "%s: ", who);
  if (ffs_topo_layer_keys(c, item, label, &st->layer) < 0) return -1;
  st->chain = cfg.model;
  st->n_shards = 1, st->shards_auto = 0; // one process a layer
  memcpy(st->kind_cfg, &cfg, sizeof cfg);
  return 0;
}

const ffs_kind_t ffs_kind_mirror_layer = {.name = "mirror_layer", .role = FFS_ROLE_LAYER,
                                          .keys = s_keys, .parse = s_parse, .lateral = 1,
                                          .hidden_keys = s_hidden_keys,
                                          .ops = &ffs_mirror_layer_ops};

const ffs_stage_ops_t ffs_mirror_layer_ops = {
    .kind = "mirror_layer",
    .create = s_create,
    .on_frame = s_on_frame,
    .save = s_save,
    .load = s_load,
    .destroy = s_destroy,
};
