// ff_layer stage: wraps one ffs_ff_layer_t with the pipeline. For each DATA
// frame: forward, send the normalized activity on (first, so the next stage
// starts at once), report goodness (and activity for neutral rows the
// readout's softmax uses), then learn from the frame and forget it.
//
// Three forms, chosen by the topology (docs/ARCHITECTURE.md, "Cortical loops"):
// - plain FF: the label is painted into the input; feedback vectors from
//   later stages are kept latest-wins and only counted;
// - FFCL (train.labels: separate): the label comes in the frame header and
//   enters through the layer's label weights; a candidate row stands for one
//   sample and the layer reports the goodness of all data.classes labels;
// - recurrent (train.ticks > 1): a sample group arrives once per tick; the
//   layer's input is the activity from below (this tick) and its top-down
//   feedback from above (previous tick); its state is damped across ticks.
//   This is the only state kept per sample group, and only while it is in
//   flight; nothing is kept for a backward pass.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ff_layer.h"
#include "ffs_ckpt.h"
#include "ffs_log.h"
#include "ffs_math.h"
#include "ffs_optim.h"
#include "ffs_kind.h"
#include "ffs_stage.h"

#define S_SLOTS 8          // sample groups in flight at once (recurrent form)
#define S_HOLD_MAX_S 10.0  // lockstep: longest wait for a top-down vector

// One sample group in flight through the ticks of the recurrent form.
typedef struct {
  int used;
  uint64_t seq;    // the group's sequence number (the same on every tick)
  int tick;        // last tick computed
  int rows;
  float *state;    // (max_rows, units) damped relu activity
  float *gsum;     // (max_rows) goodness summed over the scored ticks
  float *td;       // (max_rows, td_dim) top-down vector (normalized) ...
  int td_tick;     // ... of this tick of the layer above; -1 = none yet
} s_slot_t;

typedef struct {
  const ffs_topo_t *topo;
  int index;
  int in_dim, units, max_rows;
  int shard, n_shards, group, unit0; // a shard owns units [unit0, unit0 + units)
  float *part;           // (max_rows + 2) a shard's partial sums, then the totals
  int report_activity;   // the readout's softmax reads this layer
  int labeled;           // FFCL: label weights, no painted label
  int classes;           // data.classes: rows of the label weights, candidates per sample
  int ticks, td_dim;     // recurrent form (ticks > 1) and its top-down width
  ffs_ff_layer_t *layer;
  float opt_state[FFS_FF_LAYER_OPT_SCALARS]; // the optimizer's scalars, as checkpointed
  float *x;              // (max_rows, in_dim + td_dim) recurrent: decoded input | top-down
  float *rep;            // (max_rows, 1 + units) goodness | activity
  float *out;            // (max_rows, units) recurrent: normalized damped state
  float *lg;             // (max_rows, classes) FFCL: goodness per candidate label
  float *fb;             // (max_rows, fb_cols) latest feedback vector(s)
  uint32_t fb_rows, fb_cols;
  uint32_t *ids;         // (max_rows) sample ids of the outgoing frame
  uint8_t *roles, *labels, *cands; // (max_rows) FFCL: expanded candidate rows
  s_slot_t slots[S_SLOTS];
  double hold_since;     // lockstep: when the held frame started waiting (0 = not)
  double t_frame;        // when the frame being handled arrived (for `work`)
} s_layer_t;

enum { S_FORWARD = FFS_OUT_FORWARD, S_REPORT = FFS_OUT_REPORT, S_FEEDBACK = FFS_OUT_FEEDBACK };

static int s_send(s_layer_t *s, ffs_io_t *io, int which, const ffs_frame_hdr_t *in, uint8_t kind,
                  uint32_t rows, uint32_t cols, uint32_t aux, const ffs_frame_rows_t *r,
                  const float *payload) {
  if (which == S_FORWARD && ffs_io_n_forward_out(io) == 0) return 0; // the last layer
  ffs_frame_hdr_t h = *in;
  h.kind = kind, h.stage = (uint32_t)s->group, h.rows = rows, h.cols = cols, h.aux = aux;
  if (kind == FFS_FRAME_MARK) h.rows = 0, h.cols = 0;
  if (h.ts) h.work_ns = in->work_ns + (uint64_t)((ffs_now() - s->t_frame) * 1e9);
  // a shard sends its slice of the layer's frame: forward, its units; in a
  // report, shard 0 also carries the goodness column in front
  h.nshards = (uint8_t)(s->n_shards > 1 ? s->n_shards : 0), h.shard = (uint8_t)s->shard;
  h.col0 = s->n_shards < 2 || kind == FFS_FRAME_MARK || s->shard == 0 ? 0
           : which == S_FORWARD                                       ? (uint32_t)s->unit0
                                                                      : 1u + (h.cols ? (uint32_t)s->unit0 : 0u);
  return ffs_io_send(io, (ffs_out_t)which, &h, r, payload);
}

static int s_on_mark(s_layer_t *s, ffs_io_t *io, const ffs_frame_t *f) {
  ffs_frame_rows_t none = {0};
  if (s_send(s, io, S_FORWARD, &f->h, FFS_FRAME_MARK, 0, 0, 0, &none, NULL) < 0) return -1;
  if (s_send(s, io, S_REPORT, &f->h, FFS_FRAME_MARK, 0, 0, 0, &none, NULL) < 0) return -1;
  if (f->h.phase == FFS_PHASE_TRAIN) ffs_io_checkpoint(io); // epoch end
  return 0;
}

// ---- reports ----

// Reports one run of rows the readout scores, rows [r0, r0 + n) of the
// frame, all of role `role`: neutral rows with their goodness and (for a
// softmax layer) their activity act, candidate rows with their goodness. g
// and act are per row of the frame.
static int s_report_run(s_layer_t *s, ffs_io_t *io, const ffs_frame_t *f, int role, uint32_t r0,
                        uint32_t n, const float *g, const float *act) {
  ffs_frame_hdr_t h = f->h;
  ffs_frame_rows_t r = ffs_frame_rows_of(f, s->ids);
  g += r0, act += (long)r0 * s->units, h.rows = n;
  if (r.roles) r.roles += r0;
  if (r.labels) r.labels += r0;
  if (r.cands) r.cands += r0;
  if (r.ids) r.ids += r0;
  int rows = (int)n;
  if (s->labeled && role == FFS_ROW_CANDIDATE) {
    // FFCL: one row per sample came in; the readout gets the usual groups of
    // data.classes candidate rows, each with that label's goodness
    ffs_ff_layer_label_goodness(s->layer, (int)(r0 + n), s->lg);
    for (int i = 0; i < rows; i++)
      for (int c = 0; c < s->classes; c++) {
        int k = i * s->classes + c;
        s->rep[k] = s->lg[(long)(r0 + (uint32_t)i) * s->classes + c];
        s->labels[k] = r.labels ? r.labels[i] : FFS_LABEL_NONE;
        s->cands[k] = (uint8_t)c;
        if (r.ids) s->ids[k] = ffs_frame_id(f, r0 + (uint32_t)i);
      }
    memset(s->roles, FFS_ROW_CANDIDATE, (size_t)rows * (size_t)s->classes);
    ffs_frame_rows_t ex = {s->roles, s->labels, s->cands, r.ids ? s->ids : NULL};
    return s_send(s, io, S_REPORT, &h, FFS_FRAME_REPORT, (uint32_t)(rows * s->classes), 1, 1,
                  &ex, s->rep);
  }
  int with_act = s->report_activity && role == FFS_ROW_NEUTRAL;
  int lead = s->shard == 0; // the goodness column (a layer's shard 0 carries it)
  int cols = lead + (with_act ? s->units : 0);
  for (int i = 0; i < rows; i++) {
    float *o = s->rep + (long)i * cols;
    if (lead) o[0] = g[i];
    if (with_act) memcpy(o + lead, act + (long)i * s->units, sizeof(float) * (size_t)s->units);
  }
  return s_send(s, io, S_REPORT, &h, FFS_FRAME_REPORT, (uint32_t)rows, (uint32_t)cols,
                (uint32_t)lead, &r, s->rep);
}

// Reports the rows the readout scores: the frame's neutral run (the softmax
// heads) and its candidate run (the energy), each as a report of its own.
static int s_report(s_layer_t *s, ffs_io_t *io, const ffs_frame_t *f, const float *g,
                    const float *act) {
  static const int scored[] = {FFS_ROW_NEUTRAL, FFS_ROW_CANDIDATE};
  for (int k = 0; k < 2; k++) {
    uint32_t n = f->n_role[scored[k]];
    if (n && s_report_run(s, io, f, scored[k], ffs_frame_role_start(f, scored[k]), n, g, act) < 0)
      return -1;
  }
  return 0;
}

// Learns from a training frame's positive and negative rows (its first
// n_pos + n_neg rows, the last forward): one step on both where it has both;
// its neutral and candidate rows only went on.
static void s_learn(s_layer_t *s, ffs_io_t *io, const ffs_frame_t *f, const float *g) {
  int n_pos = (int)f->n_role[FFS_ROW_POSITIVE], rows = n_pos + (int)f->n_role[FFS_ROW_NEGATIVE];
  if (f->h.phase != FFS_PHASE_TRAIN || rows == 0) return;
  const ffs_layer_cfg_t *c = &s->topo->stages[s->index].layer;
  float lr_factor = c->cooldown ? ffs_optim_cooldown((int)f->h.epoch, s->topo->epochs) : 1.0f;
  double gp = 0.0, gn = 0.0;
  for (int r = 0; r < rows; r++) *(r < n_pos ? &gp : &gn) += g[r];
  ffs_stage_stats_t *st = ffs_io_stats(io);
  if (n_pos) st->g_pos = gp / n_pos;
  if (n_pos < rows) st->g_neg = gn / (rows - n_pos);
  st->samples += (uint64_t)rows;
  if (n_pos > 0 && n_pos < rows)
    ffs_ff_layer_learn_pair(s->layer, rows, n_pos, lr_factor);
  else
    ffs_ff_layer_learn(s->layer, rows, n_pos > 0, lr_factor);
}

static void s_slow_down(const ffs_topo_t *t, int index) {
  int ms = t->stages[index].delay_ms;
  if (ms <= 0) return;
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

// ---- plain FF and FFCL: one frame, one pass ----

static int s_on_data(s_layer_t *s, ffs_io_t *io, const ffs_frame_t *f) {
  int rows = (int)f->h.rows;
  // decoded straight into the layer's input, each row normalized on the way
  if (rows < 1 || ffs_frame_payload_rms(ffs_ff_layer_input(s->layer), f, 1e-8f) < 0)
    return -1; // empty or NaN/Inf
  if (s->labeled) {
    // the label of a positive / negative row is its overlay label (cands);
    // neutral and candidate rows have none: features only
    int with_label = f->n_role[FFS_ROW_POSITIVE] + f->n_role[FFS_ROW_NEGATIVE] > 0;
    if (with_label && !f->cands) return -1;
    ffs_ff_layer_forward_normalized(s->layer, rows, with_label ? f->cands : NULL);
  } else {
    ffs_ff_layer_forward_normalized(s->layer, rows, NULL);
  }
  if (s->n_shards > 1) { // goodness and norm are sums over all the layer's units
    int pos = (int)f->n_role[FFS_ROW_POSITIVE]; // peer means come from positive rows
    int n = ffs_ff_layer_partials(s->layer, rows, pos ? pos : rows, s->part);
    if (ffs_io_allreduce(io, f->h.seq, s->part, n) < 0) return 0; // dropped, logged
    ffs_ff_layer_set_totals(s->layer, rows, s->part);
  }
  const float *yn = ffs_ff_layer_output(s->layer);
  const float *g = ffs_ff_layer_goodness(s->layer);
  ffs_frame_rows_t r = ffs_frame_rows_of(f, s->ids);
  if (s_send(s, io, S_FORWARD, &f->h, FFS_FRAME_DATA, (uint32_t)rows, (uint32_t)s->units, 0, &r,
             yn) < 0)
    return -1;
  // the readout needs neutral rows (softmax) and candidate rows (energy)
  if (s_report(s, io, f, g, yn) < 0) return -1;
  if (ffs_io_n_feedback_out(io) > 0)
    s_send(s, io, S_FEEDBACK, &f->h, FFS_FRAME_FEEDBACK, (uint32_t)rows, (uint32_t)s->units, 0, &r,
           yn);
  s_learn(s, io, f, g);
  return 0;
}

// ---- recurrent form ----

static s_slot_t *s_slot_find(s_layer_t *s, uint64_t seq) {
  for (int k = 0; k < S_SLOTS; k++)
    if (s->slots[k].used && s->slots[k].seq == seq) return &s->slots[k];
  return NULL;
}

// A fresh slot for a group's first tick. When all are taken, the oldest
// group is given up: its frames were lost (a restarted neighbour), since
// only a few groups (positive, negative, neutral) are ever in flight.
static s_slot_t *s_slot_new(s_layer_t *s, uint64_t seq, int rows) {
  s_slot_t *sl = s_slot_find(s, seq);
  for (int k = 0; !sl && k < S_SLOTS; k++)
    if (!s->slots[k].used) sl = &s->slots[k];
  if (!sl) {
    sl = &s->slots[0];
    for (int k = 1; k < S_SLOTS; k++)
      if (s->slots[k].seq < sl->seq) sl = &s->slots[k];
    ffs_warn("recurrent: gave up sample group %llu (tick %d) to make room",
             (unsigned long long)sl->seq, sl->tick);
  }
  sl->used = 1, sl->seq = seq, sl->tick = -1, sl->rows = rows, sl->td_tick = -1;
  memset(sl->gsum, 0, sizeof(float) * (size_t)rows);
  return sl;
}

static int s_on_data_recurrent(s_layer_t *s, ffs_io_t *io, const ffs_frame_t *f) {
  const ffs_topo_t *t = s->topo;
  int rows = (int)f->h.rows, tick = (int)f->h.tick, u = s->units;
  if (rows < 1 || tick >= s->ticks) return -1;
  s_slot_t *sl = tick == 0 ? s_slot_new(s, f->h.seq, rows) : s_slot_find(s, f->h.seq);
  if (!sl || sl->rows != rows || sl->tick != tick - 1) return -1; // a tick out of order
  // top-down input: the layer above's state at tick - 1
  int have_td = s->td_dim && tick > 0 && sl->td_tick == tick - 1;
  if (s->td_dim && tick > 0 && !have_td) {
    if (t->timing == FFS_TIMING_LOCKSTEP) {
      double now = ffs_now();
      if (!s->hold_since) s->hold_since = now;
      if (now - s->hold_since < S_HOLD_MAX_S) return FFS_FRAME_DEFER;
      ffs_warn("lockstep: no top-down vector for group %llu tick %d after %.0f s; going on "
               "without it",
               (unsigned long long)f->h.seq, tick - 1, S_HOLD_MAX_S);
    }
    ffs_stage_stats_t *st = ffs_io_stats(io);
    st->td_stale++;
    if (sl->td_tick >= 0) st->td_stale_ticks += (uint64_t)(tick - 1 - sl->td_tick);
  }
  s->hold_since = 0;
  s_slow_down(t, s->index);

  // x = [below (normalized) | top-down (normalized, or zeros before any)]
  const int in = s->in_dim, w = in + s->td_dim;
  if (ffs_frame_copy_payload(s->out, f) < 0) return -1; // (rows, in), then widened
  for (int r = 0; r < rows; r++) {
    float *xr = s->x + (long)r * w;
    ffs_rms_normalize(xr, s->out + (long)r * in, 1, in, 1e-8f);
    if (!s->td_dim) continue;
    if (sl->td_tick >= 0 && tick > 0)
      memcpy(xr + in, sl->td + (long)r * s->td_dim, sizeof(float) * (size_t)s->td_dim);
    else
      memset(xr + in, 0, sizeof(float) * (size_t)s->td_dim);
  }
  ffs_ff_layer_forward(s->layer, s->x, rows);
  const float *g = ffs_ff_layer_goodness(s->layer);

  // damped state: new = (1 - d) old + d computed; the first tick takes the
  // computed activity whole. Sent on (normalized) forward and top-down.
  const float *yc = ffs_ff_layer_activity(s->layer);
  float d = tick == 0 ? 1.0f : t->damping;
  for (long i = 0; i < (long)rows * u; i++) sl->state[i] = (1.0f - d) * sl->state[i] + d * yc[i];
  ffs_rms_normalize(s->out, sl->state, rows, u, 1e-8f);
  sl->tick = tick;
  if (tick >= t->score_from && tick <= t->score_to)
    for (int r = 0; r < rows; r++) sl->gsum[r] += g[r];

  ffs_frame_rows_t rr = ffs_frame_rows_of(f, s->ids);
  if (s_send(s, io, S_FORWARD, &f->h, FFS_FRAME_DATA, (uint32_t)rows, (uint32_t)u, 0, &rr,
             s->out) < 0)
    return -1;
  if (tick + 1 < s->ticks && ffs_io_n_feedback_out(io) > 0 &&
      s_send(s, io, S_FEEDBACK, &f->h, FFS_FRAME_FEEDBACK, (uint32_t)rows, (uint32_t)u, 0, &rr,
             s->out) < 0)
    return -1;
  s_learn(s, io, f, g);
  if (tick + 1 == s->ticks) {
    // the group's last tick: report the goodness averaged over the scored
    // ticks and the final state, then forget the group
    float n = (float)(t->score_to - t->score_from + 1);
    for (int r = 0; r < rows; r++) sl->gsum[r] /= n;
    if (s_report(s, io, f, sl->gsum, s->out) < 0) return -1;
    sl->used = 0;
  }
  return 0;
}

// ---- feedback ----

static int s_on_feedback(s_layer_t *s, ffs_io_t *io, const ffs_frame_t *f) {
  if (f->h.kind != FFS_FRAME_FEEDBACK || f->h.rows < 1) return -1;
  if ((uint64_t)f->h.rows * f->h.cols > (uint64_t)s->max_rows * s->fb_cols) return -1;
  ffs_io_stats(io)->fb_frames++;
  if (s->ticks > 1) {
    // top-down vector for one sample group at one tick
    if (f->h.cols != (uint32_t)s->td_dim) return -1;
    s_slot_t *sl = s_slot_find(s, f->h.seq);
    if (!sl || sl->rows != (int)f->h.rows || (int)f->h.tick <= sl->td_tick) return 0; // too late
    if (ffs_frame_copy_payload(sl->td, f) < 0) return -1;
    sl->td_tick = (int)f->h.tick;
    return 0;
  }
  // latest wins; plain FF only counts what arrives
  if (ffs_frame_copy_payload(s->fb, f) < 0) return -1;
  s->fb_rows = f->h.rows;
  return 0;
}

static int s_on_frame(void *self, ffs_io_t *io, const ffs_frame_t *f, ffs_chan_t chan, int sub) {
  s_layer_t *s = self;
  s->t_frame = ffs_now();
  if (chan == FFS_CHAN_FB) return s_on_feedback(s, io, f);
  if (f->h.kind == FFS_FRAME_MARK) return s_on_mark(s, io, f);
  if (f->h.kind != FFS_FRAME_DATA) return -1;
  ffs_ff_layer_set_eval(s->layer, f->h.phase == FFS_PHASE_EVAL); // eval_average's weights
  if (s->ticks > 1) return s_on_data_recurrent(s, io, f);
  s_slow_down(s->topo, s->index);
  return s_on_data(s, io, f);
}

// ---- checkpoints ----

// Three groups of tensors: the parameters (w, b, peer_mean; u: labeled);
// with eval_average, their moving averages (w_avg, b_avg; u_avg); the
// optimizer's state, named for its kind so that another optimizer's finds
// none (sgd.m_w, sgd.m_b, sgd.g_b, labeled: sgd.m_u, sgd.g_u, then
// sgd.state, its scalars; adam: the same with adam.v_w, adam.v_b,
// adam.g_w, adam.v_u). ends[g] is where group g ends.
enum { S_GROUPS = 3 };
static int s_tensors(s_layer_t *s, ffs_tensor_ref_t t[FFS_CKPT_MAX_TENSORS], int ends[S_GROUPS]) {
  int w = s->in_dim + s->td_dim, n = 0;
  t[n++] = (ffs_tensor_ref_t){"w", 2, {s->units, w}, ffs_ff_layer_weights(s->layer)};
  t[n++] = (ffs_tensor_ref_t){"b", 1, {s->units, 0}, ffs_ff_layer_bias(s->layer)};
  t[n++] = (ffs_tensor_ref_t){"peer_mean", 1, {s->units, 0}, ffs_ff_layer_peer_mean(s->layer)};
  if (s->labeled)
    t[n++] = (ffs_tensor_ref_t){"u", 2, {s->classes, s->units},
                                ffs_ff_layer_label_weights(s->layer)};
  ends[0] = n;
  if (ffs_ff_layer_avg_weights(s->layer)) {
    t[n++] = (ffs_tensor_ref_t){"w_avg", 2, {s->units, w}, ffs_ff_layer_avg_weights(s->layer)};
    t[n++] = (ffs_tensor_ref_t){"b_avg", 1, {s->units, 0}, ffs_ff_layer_avg_bias(s->layer)};
    if (s->labeled)
      t[n++] = (ffs_tensor_ref_t){"u_avg", 2, {s->classes, s->units},
                                  ffs_ff_layer_avg_label_weights(s->layer)};
  }
  ends[1] = n;
  ffs_ff_layer_opt_t o = ffs_ff_layer_opt(s->layer);
  int adam = s->topo->stages[s->index].layer.opt == FFS_OPT_ADAM;
  static const char *const names[2][10] = {
      {"sgd.m_w", "sgd.v_w", "sgd.g_w", "sgd.m_b", "sgd.v_b", "sgd.g_b", "sgd.m_u", "sgd.v_u",
       "sgd.g_u", "sgd.state"},
      {"adam.m_w", "adam.v_w", "adam.g_w", "adam.m_b", "adam.v_b", "adam.g_b", "adam.m_u",
       "adam.v_u", "adam.g_u", "adam.state"}};
  const struct { float *data; int rows, cols; } opt[] = {
      {o.m_w, s->units, w},          {o.v_w, s->units, w},          {o.g_w, s->units, w},
      {o.m_b, s->units, 0},          {o.v_b, s->units, 0},          {o.g_b, s->units, 0},
      {o.m_u, s->classes, s->units}, {o.v_u, s->classes, s->units}, {o.g_u, s->classes, s->units},
      {s->opt_state, FFS_FF_LAYER_OPT_SCALARS, 0}};
  for (size_t k = 0; k < sizeof opt / sizeof opt[0]; k++)
    if (opt[k].data)
      t[n++] = (ffs_tensor_ref_t){names[adam][k], opt[k].cols ? 2 : 1,
                                  {opt[k].rows, opt[k].cols}, opt[k].data};
  ends[2] = n;
  return n;
}

static int s_save(void *self, const char *path, char *err, size_t errlen) {
  s_layer_t *s = self;
  ffs_tensor_ref_t t[FFS_CKPT_MAX_TENSORS];
  int ends[S_GROUPS];
  int n = s_tensors(s, t, ends);
  ffs_ff_layer_settle(s->layer); // the optimizer's whole state in its buffers
  ffs_ff_layer_opt_scalars(s->layer, s->opt_state);
  char theta[32];
  snprintf(theta, sizeof theta, "%g", (double)ffs_ff_layer_theta(s->layer));
  char unit0[16];
  snprintf(unit0, sizeof unit0, "%d", s->unit0);
  const ffs_stage_cfg_t *me = &s->topo->stages[s->index];
  const char *meta[] = {"stage", me->name, "kind",  "ff_layer", "theta",
                        theta,   "layer", me->layer_name, "unit0", unit0};
  return ffs_ckpt_save(path, t, n, meta, 5, err, errlen);
}

// A checkpoint written without eval_average has no averages: a run that
// turns it on resumes from the weights, and its averages start from them
// (as a fresh layer's start from its initial weights). One written before
// the optimizer's state was checkpointed (or by an optimizer of another
// kind) leaves the optimizer fresh.
static int s_load(void *self, const char *path, char *err, size_t errlen) {
  s_layer_t *s = self;
  ffs_tensor_ref_t t[FFS_CKPT_MAX_TENSORS];
  int ends[S_GROUPS];
  s_tensors(s, t, ends);
  unsigned loaded;
  if (ffs_ckpt_load_groups(path, t, ends, S_GROUPS, &loaded, err, errlen) < 0) return -1;
  if (ends[1] > ends[0] && !(loaded & 2u)) {
    ffs_ff_layer_restart_average(s->layer);
    ffs_info("%s has no moving averages (written without eval_average): they start from its "
             "weights", path);
  }
  if (!(loaded & 4u)) {
    ffs_info("%s has no optimizer state for this layer's optimizer: it starts fresh", path);
  } else if (ffs_ff_layer_set_opt_scalars(s->layer, s->opt_state) < 0) {
    snprintf(err, errlen, "%s: tensor '%s' holds %g %g %g %g, expected whole numbers: steps "
             "(low, high 20 bits), pending (0 or 1), opened (0 or 1)", path, t[ends[2] - 1].name,
             (double)s->opt_state[0], (double)s->opt_state[1], (double)s->opt_state[2],
             (double)s->opt_state[3]);
    return -1;
  }
  return 0;
}

// ---- lifecycle ----

static void s_destroy(void **self_p) {
  s_layer_t *s = *self_p;
  if (!s) return;
  ffs_ff_layer_destroy(&s->layer);
  free(s->x), free(s->rep), free(s->out), free(s->lg), free(s->fb), free(s->ids);
  free(s->roles), free(s->labels), free(s->cands), free(s->part);
  for (int k = 0; k < S_SLOTS; k++) free(s->slots[k].state), free(s->slots[k].gsum), free(s->slots[k].td);
  free(s);
  *self_p = NULL;
}

static void *s_create(const ffs_stage_env_t *env, ffs_io_t *io, char *err, size_t errlen) {
  const ffs_topo_t *t = env->topo;
  const ffs_stage_cfg_t *me = &t->stages[env->index];
  s_layer_t *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->topo = t, s->index = env->index;
  s->in_dim = me->in_dim, s->units = me->units;
  s->shard = me->shard, s->n_shards = me->n_shards, s->group = me->group, s->unit0 = me->unit0;
  s->labeled = t->labels == FFS_LABELS_SEPARATE;
  s->ticks = t->ticks, s->td_dim = t->ticks > 1 ? me->td_dim : 0;
  s->max_rows = ffs_topo_max_rows(t);
  s->classes = t->classes;
  s->report_activity = me->report_activity;
  for (int k = 0; k < t->n_feedback; k++)
    if (t->feedback[k].to == env->index) {
      int c = ffs_topo_feedback_cols(t, t->feedback[k].from);
      s->fb_cols = (uint32_t)(c > (int)s->fb_cols ? c : (int)s->fb_cols);
    }
  int w = s->in_dim + s->td_dim;
  // the stream is the layer's index in the file, so a sharded layer's shards
  // draw exactly the unsharded layer's weights
  uint64_t stream = (uint64_t)me->layer_index + 1000;
  s->layer = s->n_shards > 1
                 ? ffs_ff_layer_new_shard(w, s->units, s->unit0, me->out_dim, s->max_rows,
                                          &me->layer, t->seed, stream)
                 : ffs_ff_layer_new_labeled(w, s->units, s->labeled ? s->classes : 0,
                                            s->max_rows, &me->layer, t->seed, stream);
  size_t mr = (size_t)s->max_rows, widest = (size_t)(w > s->units + 1 ? w : s->units + 1);
  int ok = s->layer != NULL;
  // the recurrent form's input and state (a plain layer decodes its input
  // straight into the layer)
  ok &= s->ticks == 1 || (s->x = malloc(sizeof(float) * mr * (size_t)w)) != NULL;
  ok &= (s->rep = malloc(sizeof(float) * mr * (size_t)(s->units + 1))) != NULL;
  ok &= s->ticks == 1 || (s->out = malloc(sizeof(float) * mr * (size_t)widest)) != NULL;
  ok &= (s->lg = malloc(sizeof(float) * mr * (size_t)s->classes)) != NULL;
  ok &= !s->fb_cols || (s->fb = malloc(sizeof(float) * mr * s->fb_cols)) != NULL;
  ok &= (s->ids = malloc(sizeof(uint32_t) * mr)) != NULL;
  ok &= (s->part = malloc(sizeof(float) * (mr + 2))) != NULL;
  ok &= (s->labels = malloc(mr)) != NULL && (s->cands = malloc(mr)) != NULL;
  ok &= (s->roles = malloc(mr)) != NULL;
  for (int k = 0; ok && s->ticks > 1 && k < S_SLOTS; k++) {
    s_slot_t *sl = &s->slots[k];
    ok &= (sl->state = malloc(sizeof(float) * mr * (size_t)s->units)) != NULL;
    ok &= (sl->gsum = malloc(sizeof(float) * mr)) != NULL;
    ok &= !s->td_dim || (sl->td = malloc(sizeof(float) * mr * (size_t)s->td_dim)) != NULL;
  }
  if (!ok) {
    snprintf(err, errlen, "out of memory for a %dx%d layer", s->units, w);
    void *p = s;
    s_destroy(&p);
    return NULL;
  }
  return s;
}

static const char *const s_keys[] = {
    "name",      "kind",     "units",    "core", "host", "goodness", "theta",       "temp",
    "optimizer", "lr",       "momentum", "weight_decay", "cooldown", "peer_lambda", "peer_decay",
    "update",    "delay_ms", "shards",   "eval_average", NULL};
extern const ffs_stage_ops_t ffs_ff_layer_ops;

// An ff_layer's keys: units (required), the layer keys over the top-level
// `layer:` block's, delay_ms and shards.
static int s_parse(ffs_yaml_ctx_t *c, const ffs_yaml_node_t *item, const char *who,
                   ffs_stage_cfg_t *st) {
  const ffs_yaml_node_t *v;
  char label[96];
  if (!(v = ffs_yaml_map_get(item, "units")))
    return ffs_yaml_fail(c, item, "%s: missing required key 'units' (an ff_layer needs units: "
                         "1..65536)", who);
  snprintf(label, sizeof label, "%s: units", who);
  if (ffs_yaml_int(c, v, label, 1, 65536, &st->units) < 0) return -1;
  snprintf(label, sizeof label, "%s: ", who);
  if (ffs_topo_layer_keys(c, item, label, &st->layer) < 0) return -1;
  snprintf(label, sizeof label, "%s: delay_ms", who);
  if ((v = ffs_yaml_map_get(item, "delay_ms")) &&
      ffs_yaml_int(c, v, label, 0, 10000, &st->delay_ms) < 0)
    return -1;
  snprintf(label, sizeof label, "%s: shards", who);
  st->shards_auto = 1; // absent or `auto`: the launcher's planner chooses
  if ((v = ffs_yaml_map_get(item, "shards")) &&
      !(v->type == FFS_YAML_SCALAR && !strcmp(v->str, "auto"))) {
    if (ffs_yaml_int(c, v, label, 1, FFS_MAX_SHARDS, &st->n_shards) < 0) return -1;
    st->shards_auto = 0;
  }
  if (st->n_shards > st->units)
    return ffs_yaml_fail(c, v, "%s: shards: %d shards of %d units leave a shard without units "
                         "(expected at most %d)", who, st->n_shards, st->units, st->units);
  return 0;
}

const ffs_kind_t ffs_kind_ff_layer = {.name = "ff_layer", .role = FFS_ROLE_LAYER, .keys = s_keys,
                                      .parse = s_parse, .ops = &ffs_ff_layer_ops};

const ffs_stage_ops_t ffs_ff_layer_ops = {
    .kind = "ff_layer",
    .create = s_create,
    .on_frame = s_on_frame,
    .save = s_save,
    .load = s_load,
    .destroy = s_destroy,
};
