// dp_layer stage: one dual-propagation layer in the pipeline (dp_layer.h
// for the rule). A training frame goes forward at once; a hidden layer keeps
// the frame's input and pre-activation in its stash, keyed by sequence
// number, until the term W^T (s+ - s-) of its upper neighbour for that frame
// comes back on the reliable backward edge; then it forms its dyad, sends
// its own term down, steps its weights and forgets the frame. The top layer
// applies the loss the moment a frame arrives. Nothing else is kept.
//
// Timing (train.timing): lockstep holds one frame in each stash, so exactly
// one batch is in flight, the dual propagation of the papers; pipelined lets
// layer k hold 2 (layers above) + 1 frames, enough to keep every stage busy,
// and a frame's feedback then meets weights that moved since its forward
// pass. A full stash defers the next input; a phase's MARK waits until the
// stash is empty, so an epoch's checkpoint holds all of its steps. An entry
// whose feedback never comes (a restarted neighbour lost it) is dropped after
// S_STASH_WAIT_S and counted; feedback for a frame not in the stash is
// counted and dropped.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dp_layer.h"
#include "ffs_kind.h"
#include "ffs_log.h"
#include "ffs_optim.h"
#include "ffs_stage.h"

#define S_STASH_MAX 32      // frames a stash may hold (the backward queue holds 64)
#define S_STASH_WAIT_S 10.0 // an entry older than this when the stash is in the way is lost

typedef struct {
  int used;
  ffs_frame_hdr_t h; // the frame's header (seq, epoch, rows ...)
  double t_in;       // when it came in
  float *x, *a;      // (max_rows, in_dim) input, (max_rows, units) pre-activation
} s_entry_t;

typedef struct {
  const ffs_topo_t *topo;
  int index;
  int in_dim, units, max_rows;
  ffs_dp_cfg_t cfg;
  ffs_dp_layer_t *layer;
  int bottom;     // the chain's first layer: sends nothing down
  int damp_below; // the layer below is dampened: its feedback carries this one's L
  int damp_said;  // the first L was logged
  int cap;        // stash capacity in frames (0: the top keeps none)
  s_entry_t stash[S_STASH_MAX];
  int held;
  float *a, *out, *dz, *down, *fb;
  uint32_t *ids;
  double t_frame;
} s_dp_t;

static const ffs_dp_cfg_t *s_cfg_of(const ffs_stage_cfg_t *st) {
  return (const ffs_dp_cfg_t *)(const void *)st->kind_cfg;
}

// A frame made from the one being handled (ffs_io_send_from).
static int s_send(s_dp_t *s, ffs_io_t *io, ffs_out_t out, const ffs_frame_hdr_t *in, uint8_t kind,
                  uint32_t rows, uint32_t cols, const ffs_frame_rows_t *r, const float *payload) {
  return ffs_io_send_from(io, out, in, kind, rows, cols, r, payload, s->t_frame);
}

static float s_lr_factor(const s_dp_t *s, uint32_t epoch) {
  const ffs_layer_cfg_t *c = &s->topo->stages[s->index].layer;
  return c->cooldown ? ffs_optim_cooldown((int)epoch, s->topo->epochs) : 1.0f;
}

// ---- the stash ----

static s_entry_t *s_find(s_dp_t *s, uint64_t seq) {
  for (int k = 0; k < s->cap; k++)
    if (s->stash[k].used && s->stash[k].h.seq == seq) return &s->stash[k];
  return NULL;
}

static void s_forget(s_dp_t *s, s_entry_t *e) {
  e->used = 0;
  s->held--;
}

// The stash is in the way of the next input: its oldest entry, when it has
// waited S_STASH_WAIT_S, is given up (its feedback was lost with a restarted
// neighbour). Returns 1 when room was made.
static int s_expire(s_dp_t *s, ffs_io_t *io) {
  s_entry_t *old = NULL;
  for (int k = 0; k < s->cap; k++)
    if (s->stash[k].used && (!old || s->stash[k].t_in < old->t_in)) old = &s->stash[k];
  if (!old || ffs_now() - old->t_in < S_STASH_WAIT_S) return 0;
  ffs_warn("no feedback for frame %llu after %.0f s: its step is given up",
           (unsigned long long)old->h.seq, S_STASH_WAIT_S);
  ffs_io_stats(io)->stash_expired++;
  s_forget(s, old);
  return 1;
}

// ---- forward ----

static int s_on_mark(s_dp_t *s, ffs_io_t *io, const ffs_frame_t *f) {
  if (s->held > 0 && !s_expire(s, io)) return FFS_FRAME_DEFER; // the phase's steps first
  ffs_frame_rows_t none = {0};
  if (s_send(s, io, FFS_OUT_FORWARD, &f->h, FFS_FRAME_MARK, 0, 0, &none, NULL) < 0) return -1;
  if (s->cfg.top && s_send(s, io, FFS_OUT_REPORT, &f->h, FFS_FRAME_MARK, 0, 0, &none, NULL) < 0)
    return -1;
  if (f->h.phase == FFS_PHASE_TRAIN) ffs_io_checkpoint(io); // epoch end
  return 0;
}

// The term down for the frame h: W^T (s+ - s-) from dz, with the damping L
// of this layer's weights when the layer below is dampened; sent before the
// step, so L is of the weights the term came through.
static int s_send_down(s_dp_t *s, ffs_io_t *io, const ffs_frame_hdr_t *h, int rows) {
  ffs_dp_layer_down(s->layer, s->dz, rows, s->down);
  ffs_frame_hdr_t hd = *h;
  float sigma = 0.0f;
  hd.damp = s->damp_below ? ffs_dp_layer_damping(s->layer, &sigma) : 0.0f;
  if (s->damp_below && !s->damp_said) {
    s->damp_said = 1;
    ffs_info("damping for the layer below: L = %.3f (largest singular value of W %.3f)",
             (double)hd.damp, (double)sigma);
  }
  ffs_frame_rows_t none = {0};
  return s_send(s, io, FFS_OUT_FEEDBACK, &hd, FFS_FRAME_FEEDBACK, (uint32_t)rows,
                (uint32_t)s->in_dim, &none, s->down);
}

// The top layer's training step: the loss's nudge, the term down, the step.
static int s_top_learn(s_dp_t *s, ffs_io_t *io, const ffs_frame_t *f, const float *x) {
  int rows = (int)f->h.rows;
  if (!f->labels) return -1;
  double loss;
  if (ffs_dp_layer_top(s->layer, s->a, f->labels, rows, s->dz, &loss) < 0) return -1;
  if (!s->bottom && s_send_down(s, io, &f->h, rows) < 0) return -1;
  ffs_dp_layer_learn(s->layer, x, s->dz, rows, s_lr_factor(s, f->h.epoch));
  ffs_io_stats(io)->samples += (uint64_t)rows;
  return 0;
}

static int s_on_data(s_dp_t *s, ffs_io_t *io, const ffs_frame_t *f) {
  int rows = (int)f->h.rows, train = f->h.phase == FFS_PHASE_TRAIN;
  if (rows < 1) return -1;
  if (train && !s->cfg.top && s->held == s->cap && !s_expire(s, io)) return FFS_FRAME_DEFER;
  ffs_dense_t *d = ffs_dp_layer_dense(s->layer);
  float *x = ffs_dense_input(d);
  if (ffs_frame_copy_payload(x, f) < 0) return -1; // NaN/Inf
  ffs_dense_set_eval(d, !train);
  ffs_dp_layer_forward(s->layer, x, rows, s->a, s->out);
  ffs_frame_rows_t r = ffs_frame_rows_of(f, s->ids);
  if (s->cfg.top) {
    if (!train) // the class scores, scored by the readout
      return s_send(s, io, FFS_OUT_REPORT, &f->h, FFS_FRAME_REPORT, (uint32_t)rows,
                    (uint32_t)s->units, &r, s->a);
    return s_top_learn(s, io, f, x);
  }
  if (train) { // kept until its feedback comes
    s_entry_t *e = NULL;
    for (int k = 0; !e && k < s->cap; k++)
      if (!s->stash[k].used) e = &s->stash[k];
    e->used = 1, e->h = f->h, e->t_in = ffs_now();
    memcpy(e->x, x, sizeof(float) * (size_t)rows * (size_t)s->in_dim);
    memcpy(e->a, s->a, sizeof(float) * (size_t)rows * (size_t)s->units);
    s->held++;
    ffs_stage_stats_t *st = ffs_io_stats(io);
    if ((uint64_t)s->held > st->stash_max) st->stash_max = (uint64_t)s->held;
    st->samples += (uint64_t)rows;
  }
  return s_send(s, io, FFS_OUT_FORWARD, &f->h, FFS_FRAME_DATA, (uint32_t)rows, (uint32_t)s->units,
                &r, s->out);
}

// ---- backward ----

static int s_on_feedback(s_dp_t *s, ffs_io_t *io, const ffs_frame_t *f) {
  if (f->h.kind != FFS_FRAME_FEEDBACK || f->h.rows < 1 || f->h.cols != (uint32_t)s->units)
    return -1;
  ffs_stage_stats_t *st = ffs_io_stats(io);
  s_entry_t *e = s->cfg.top ? NULL : s_find(s, f->h.seq);
  if (!e) { // a frame this process never stashed (lost with a restart, or given up)
    st->fb_unknown++;
    if (st->fb_unknown <= 3)
      ffs_warn("feedback for frame %llu, which is not in the stash: dropped%s",
               (unsigned long long)f->h.seq, st->fb_unknown == 3 ? " (further ones counted)" : "");
    return 0;
  }
  int rows = (int)e->h.rows;
  if (f->h.rows != e->h.rows) return -1;
  if (ffs_frame_copy_payload(s->fb, f) < 0) return -1;
  st->fb_frames++;
  ffs_dp_layer_hidden(s->layer, e->a, s->fb, s->cfg.dampened ? f->h.damp : 0.0f, rows, s->dz);
  if (!s->bottom && s_send_down(s, io, &e->h, rows) < 0) return -1;
  ffs_dp_layer_learn(s->layer, e->x, s->dz, rows, s_lr_factor(s, e->h.epoch));
  s_forget(s, e);
  return 0;
}

static int s_on_frame(void *self, ffs_io_t *io, const ffs_frame_t *f, ffs_chan_t chan, int sub) {
  (void)sub;
  s_dp_t *s = self;
  s->t_frame = ffs_now();
  if (chan == FFS_CHAN_FB) return s_on_feedback(s, io, f);
  if (f->h.kind == FFS_FRAME_MARK) return s_on_mark(s, io, f);
  if (f->h.kind != FFS_FRAME_DATA) return -1;
  return s_on_data(s, io, f);
}

// ---- checkpoints ----

// A dense block's checkpoint (ffs_dense_save).
static int s_save(void *self, const char *path, char *err, size_t errlen) {
  s_dp_t *s = self;
  const ffs_stage_cfg_t *me = &s->topo->stages[s->index];
  const char *meta[] = {"stage", me->name, "kind", "dp_layer", "layer", me->layer_name};
  return ffs_dense_save(ffs_dp_layer_dense(s->layer), path, meta, 3, err, errlen);
}

static int s_load(void *self, const char *path, char *err, size_t errlen) {
  s_dp_t *s = self;
  return ffs_dense_load(ffs_dp_layer_dense(s->layer), path, err, errlen);
}

// ---- lifecycle ----

static void s_destroy(void **self_p) {
  s_dp_t *s = *self_p;
  if (!s) return;
  ffs_dp_layer_destroy(&s->layer);
  free(s->a), free(s->out), free(s->dz), free(s->down), free(s->fb), free(s->ids);
  for (int k = 0; k < S_STASH_MAX; k++) free(s->stash[k].x), free(s->stash[k].a);
  free(s);
  *self_p = NULL;
}

// Layers of the chain after stage i (the dp_layers above it).
static int s_above(const ffs_topo_t *t, int i) {
  int n = 0;
  for (int j = i + 1; j < t->readout; j++)
    n += ffs_kind_of(t->stages[j].kind)->role == FFS_ROLE_LAYER;
  return n;
}

static void *s_create(const ffs_stage_env_t *env, ffs_io_t *io, char *err, size_t errlen) {
  const ffs_topo_t *t = env->topo;
  const ffs_stage_cfg_t *me = &t->stages[env->index];
  s_dp_t *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->topo = t, s->index = env->index, s->cfg = *s_cfg_of(me);
  s->cfg.top = env->index + 1 == t->readout; // the chain's last layer applies the loss
  s->in_dim = me->in_dim, s->units = me->units, s->max_rows = ffs_topo_max_rows(t);
  s->bottom = ffs_kind_of(t->stages[env->index - 1].kind)->role != FFS_ROLE_LAYER;
  s->damp_below = !s->bottom && s_cfg_of(&t->stages[env->index - 1])->dampened;
  int above = s_above(t, env->index);
  s->cap = s->cfg.top ? 0 : t->timing == FFS_TIMING_LOCKSTEP ? 1 : 2 * above + 1;
  if (s->cap > S_STASH_MAX) s->cap = S_STASH_MAX;
  s->layer = ffs_dp_layer_new(s->in_dim, s->units, s->max_rows, &me->layer, &s->cfg, t->seed,
                              (uint64_t)me->layer_index + 2000);
  size_t mr = (size_t)s->max_rows, u = (size_t)s->units, in = (size_t)s->in_dim;
  int ok = s->layer != NULL;
  ok &= (s->a = malloc(sizeof(float) * mr * u)) != NULL;
  ok &= (s->out = malloc(sizeof(float) * mr * u)) != NULL;
  ok &= (s->dz = malloc(sizeof(float) * mr * u)) != NULL;
  ok &= (s->fb = malloc(sizeof(float) * mr * u)) != NULL;
  ok &= (s->down = malloc(sizeof(float) * mr * in)) != NULL;
  ok &= (s->ids = malloc(sizeof(uint32_t) * mr)) != NULL;
  for (int k = 0; ok && k < s->cap; k++) {
    ok &= (s->stash[k].x = malloc(sizeof(float) * mr * in)) != NULL;
    ok &= (s->stash[k].a = malloc(sizeof(float) * mr * u)) != NULL;
  }
  if (!ok) {
    snprintf(err, errlen, "out of memory for a %dx%d dp_layer with a stash of %d frames",
             s->units, s->in_dim, s->cap);
    void *p = s;
    s_destroy(&p);
    return NULL;
  }
  ffs_io_stats(io)->stash_bytes = (uint64_t)s->cap * sizeof(float) * mr * (in + u);
  if (s->cfg.dampened && me->layer.weight_decay > 0.0f)
    ffs_warn("dp_layer %s: dampened with weight_decay %g: the damped gradients are tens of "
             "times smaller than undamped ones, and the decay added to them can shrink the "
             "weights to nothing (weight_decay: 0 is advised; docs/RESULTS.md, dual propagation)",
             me->name, (double)me->layer.weight_decay);
  ffs_info("dp_layer %s: %s%s, alpha %g, beta %g, stash of %d frames (%.1f MB)", me->name,
           s->cfg.rule == FFS_DP_BACKPROP ? "backprop" : "dual propagation",
           s->cfg.dampened ? " (dampened)" : "", (double)s->cfg.alpha, (double)s->cfg.beta, s->cap,
           (double)ffs_io_stats(io)->stash_bytes / 1e6);
  return s;
}

// ---- the kind ----

static const char *const s_keys[] = {"name",     "kind",         "units",    "core",
                                     "host",     "rule",         "alpha",    "beta",
                                     "loss",     "act",          "optimizer", "lr",
                                     "momentum", "weight_decay", "cooldown", "eval_average",
                                     "dampened", NULL};
static const char *const s_hidden_keys[] = {"dampened", NULL};
static const char *const s_rules[] = {"dualprop", "backprop", NULL};
static const char *const s_losses[] = {"ce", "se", NULL};
static const char *const s_acts[] = {"relu", "tanh", NULL};
extern const ffs_stage_ops_t ffs_dp_layer_ops;
_Static_assert(sizeof(ffs_dp_cfg_t) <= FFS_KIND_CFG_MAX, "a dp_layer's options fit kind_cfg");

// A dp_layer's keys: units (required), rule, alpha, beta, loss, act, dampened, and the
// optimizer's layer keys over the top-level `layer:` block's. Its stash and
// its place in the chain are the loader's and the stage's to work out.
static int s_parse(ffs_yaml_ctx_t *c, const ffs_yaml_node_t *item, const char *who,
                   ffs_stage_cfg_t *st) {
  const ffs_yaml_node_t *v;
  char label[96];
  ffs_dp_cfg_t cfg = {.rule = FFS_DP_DUALPROP, .alpha = 0.5f, .beta = 1.0f,
                      .loss = FFS_DP_LOSS_CE, .act = FFS_DP_RELU};
  if (!(v = ffs_yaml_map_get(item, "units")))
    return ffs_yaml_fail(c, item, "%s: missing required key 'units' (a dp_layer needs units: "
                         "1..65536)", who);
  snprintf(label, sizeof label, "%s: units", who);
  if (ffs_yaml_int(c, v, label, 1, 65536, &st->units) < 0) return -1;
  snprintf(label, sizeof label, "%s: ", who);
  if (ffs_topo_layer_keys(c, item, label, &st->layer) < 0) return -1;
  int e;
  snprintf(label, sizeof label, "%s: rule", who);
  if ((v = ffs_yaml_map_get(item, "rule"))) {
    if (ffs_yaml_enum(c, v, label, s_rules, &e) < 0) return -1;
    cfg.rule = (ffs_dp_rule_t)e;
  }
  snprintf(label, sizeof label, "%s: loss", who);
  if ((v = ffs_yaml_map_get(item, "loss"))) {
    if (ffs_yaml_enum(c, v, label, s_losses, &e) < 0) return -1;
    cfg.loss = (ffs_dp_loss_t)e;
  }
  snprintf(label, sizeof label, "%s: act", who);
  if ((v = ffs_yaml_map_get(item, "act"))) {
    if (ffs_yaml_enum(c, v, label, s_acts, &e) < 0) return -1;
    cfg.act = (ffs_dp_act_t)e;
  }
  snprintf(label, sizeof label, "%s: alpha", who);
  if ((v = ffs_yaml_map_get(item, "alpha")) &&
      ffs_yaml_num(c, v, label, FFS_YAML_NONNEG, &cfg.alpha) < 0)
    return -1;
  if (v && (cfg.alpha < 0.0f || cfg.alpha > 1.0f))
    return ffs_yaml_fail(c, v, "%s: alpha: %g (expected a number in [0, 1]: 0.5 symmetric, 0 "
                         "or 1 one-sided)", who, (double)cfg.alpha);
  snprintf(label, sizeof label, "%s: beta", who);
  if ((v = ffs_yaml_map_get(item, "beta")) &&
      ffs_yaml_num(c, v, label, FFS_YAML_POSITIVE, &cfg.beta) < 0)
    return -1;
  snprintf(label, sizeof label, "%s: dampened", who);
  if ((v = ffs_yaml_map_get(item, "dampened")) && ffs_yaml_bool(c, v, label, &cfg.dampened) < 0)
    return -1;
  if (cfg.dampened && cfg.rule == FFS_DP_BACKPROP)
    return ffs_yaml_fail(c, v, "%s: dampened: true damps the dyads of rule dualprop (expected "
                         "no dampened with rule: backprop, which has no dyads)", who);
  st->n_shards = 1, st->shards_auto = 0; // a dp_layer is one process
  memcpy(st->kind_cfg, &cfg, sizeof cfg);
  return 0;
}

const ffs_kind_t ffs_kind_dp_layer = {.name = "dp_layer", .role = FFS_ROLE_LAYER, .keys = s_keys,
                                      .parse = s_parse, .backward = 1,
                                      .hidden_keys = s_hidden_keys, .ops = &ffs_dp_layer_ops};

const ffs_stage_ops_t ffs_dp_layer_ops = {
    .kind = "dp_layer",
    .create = s_create,
    .on_frame = s_on_frame,
    .save = s_save,
    .load = s_load,
    .destroy = s_destroy,
};
