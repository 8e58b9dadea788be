// ff_layer stage: wraps one ffs_ff_layer_t with the pipeline. For each DATA
// frame: forward, send the normalized activity on (first, so the next stage
// starts at once), report goodness (and activity for neutral rows the
// readout's softmax uses), then learn from the frame and forget it.
// Feedback vectors from later stages are kept latest-wins and counted.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ff_layer.h"
#include "ffs_ckpt.h"
#include "ffs_log.h"
#include "ffs_optim.h"
#include "ffs_stage.h"

typedef struct {
  const ffs_topo_t *topo;
  int index;
  int in_dim, units, max_rows;
  int report_activity;   // the readout's softmax reads this layer
  ffs_ff_layer_t *layer;
  float *x;              // (max_rows, in_dim) decoded input
  float *rep;            // (max_rows, 1 + units) goodness | activity
  float *fb;             // (max_rows, fb_cols) latest feedback vector(s)
  uint32_t fb_rows, fb_cols;
  uint32_t *ids;         // (max_rows) sample ids of the current frame
  uint8_t *buf;          // encode buffer (forward, report, feedback)
  size_t buf_cap;
} s_layer_t;

static int s_send(s_layer_t *s, ffs_io_t *io, int which, const ffs_frame_t *in, uint8_t kind,
                  uint32_t cols, uint32_t aux, const float *payload) {
  ffs_frame_hdr_t h = in->h;
  h.kind = kind, h.stage = (uint32_t)s->index, h.cols = cols, h.aux = aux;
  if (kind == FFS_FRAME_MARK) h.rows = 0, h.cols = 0;
  const uint32_t *ids = NULL;
  if (in->ids && h.rows) { // pass sample ids on (hard negatives key on them)
    for (uint32_t r = 0; r < h.rows; r++) s->ids[r] = ffs_frame_id(in, r);
    ids = s->ids;
  }
  size_t len = ffs_frame_encode(s->buf, s->buf_cap, &h, in->labels, in->cands, ids, payload);
  if (!len) return -1;
  if (which == 0) return ffs_io_send_forward(io, s->buf, len);
  if (which == 1) return ffs_io_send_report(io, s->buf, len);
  for (int k = 0; k < ffs_io_n_feedback_out(io); k++) ffs_io_send_feedback(io, k, s->buf, len);
  return 0;
}

static int s_on_mark(s_layer_t *s, ffs_io_t *io, const ffs_frame_t *f) {
  if (s_send(s, io, 0, f, FFS_FRAME_MARK, 0, 0, NULL) < 0) return -1;
  if (s_send(s, io, 1, f, FFS_FRAME_MARK, 0, 0, NULL) < 0) return -1;
  if (f->h.mode == FFS_MODE_TRAIN) ffs_io_checkpoint(io); // epoch end
  return 0;
}

static int s_on_data(s_layer_t *s, ffs_io_t *io, const ffs_frame_t *f) {
  int rows = (int)f->h.rows;
  if (rows < 1 || ffs_frame_copy_payload(s->x, f) < 0) return -1; // empty or NaN/Inf
  ffs_ff_layer_forward(s->layer, s->x, rows);
  const float *yn = ffs_ff_layer_output(s->layer);
  const float *g = ffs_ff_layer_goodness(s->layer);
  if (s_send(s, io, 0, f, FFS_FRAME_DATA, (uint32_t)s->units, 0, yn) < 0) return -1;

  // the readout needs neutral rows (softmax) and candidate rows (energy)
  if (f->h.pol == FFS_POL_NEUTRAL || f->h.pol == FFS_POL_CANDIDATES) {
    int act = s->report_activity && f->h.pol == FFS_POL_NEUTRAL;
    int cols = 1 + (act ? s->units : 0);
    for (int r = 0; r < rows; r++) {
      float *o = s->rep + (long)r * cols;
      o[0] = g[r];
      if (act) memcpy(o + 1, yn + (long)r * s->units, sizeof(float) * (size_t)s->units);
    }
    if (s_send(s, io, 1, f, FFS_FRAME_REPORT, (uint32_t)cols, 1, s->rep) < 0) return -1;
  }
  if (ffs_io_n_feedback_out(io) > 0)
    s_send(s, io, 2, f, FFS_FRAME_FEEDBACK, (uint32_t)s->units, 0, yn);

  if (f->h.mode == FFS_MODE_TRAIN &&
      (f->h.pol == FFS_POL_POSITIVE || f->h.pol == FFS_POL_NEGATIVE)) {
    int pos = f->h.pol == FFS_POL_POSITIVE;
    const ffs_layer_cfg_t *c = &s->topo->stages[s->index].layer;
    float lr_factor = c->cooldown ? ffs_optim_cooldown((int)f->h.epoch, s->topo->epochs) : 1.0f;
    double gm = 0.0;
    for (int r = 0; r < rows; r++) gm += g[r];
    ffs_stage_stats_t *st = ffs_io_stats(io);
    *(pos ? &st->g_pos : &st->g_neg) = gm / rows;
    st->samples += (uint64_t)rows;
    ffs_ff_layer_learn(s->layer, rows, pos, lr_factor);
  }
  return 0;
}

static int s_on_feedback(s_layer_t *s, ffs_io_t *io, const ffs_frame_t *f) {
  if (f->h.kind != FFS_FRAME_FEEDBACK || f->h.rows < 1) return -1;
  if ((uint64_t)f->h.rows * f->h.cols > (uint64_t)s->max_rows * s->fb_cols) return -1;
  if (ffs_frame_copy_payload(s->fb, f) < 0) return -1;
  // Latest wins. The cortical-loop stages read s->fb as top-down input.
  s->fb_rows = f->h.rows;
  ffs_io_stats(io)->fb_frames++;
  return 0;
}

static int s_on_frame(void *self, ffs_io_t *io, const ffs_frame_t *f, ffs_chan_t chan, int sub) {
  s_layer_t *s = self;
  if (chan == FFS_CHAN_FB) return s_on_feedback(s, io, f);
  if (f->h.kind == FFS_FRAME_MARK) return s_on_mark(s, io, f);
  if (f->h.kind != FFS_FRAME_DATA) return -1;
  return s_on_data(s, io, f);
}

// ---- checkpoints ----

static void s_tensors(s_layer_t *s, ffs_tensor_ref_t t[3]) {
  t[0] = (ffs_tensor_ref_t){"w", 2, {s->units, s->in_dim}, ffs_ff_layer_weights(s->layer)};
  t[1] = (ffs_tensor_ref_t){"b", 1, {s->units, 0}, ffs_ff_layer_bias(s->layer)};
  t[2] = (ffs_tensor_ref_t){"peer_mean", 1, {s->units, 0}, ffs_ff_layer_peer_mean(s->layer)};
}

static int s_save(void *self, const char *path, char *err, size_t errlen) {
  s_layer_t *s = self;
  ffs_tensor_ref_t t[3];
  s_tensors(s, t);
  char theta[32];
  snprintf(theta, sizeof theta, "%g", (double)ffs_ff_layer_theta(s->layer));
  const char *meta[] = {"stage", s->topo->stages[s->index].name, "kind", "ff_layer", "theta", theta};
  return ffs_ckpt_save(path, t, 3, meta, 3, err, errlen);
}

static int s_load(void *self, const char *path, char *err, size_t errlen) {
  s_layer_t *s = self;
  ffs_tensor_ref_t t[3];
  s_tensors(s, t);
  return ffs_ckpt_load(path, t, 3, err, errlen);
}

// ---- lifecycle ----

static void s_destroy(void **self_p) {
  s_layer_t *s = *self_p;
  if (!s) return;
  ffs_ff_layer_destroy(&s->layer);
  free(s->x), free(s->rep), free(s->fb), free(s->ids), free(s->buf);
  free(s);
  *self_p = NULL;
}

static void *s_create(const ffs_stage_env_t *env, ffs_io_t *io, char *err, size_t errlen) {
  const ffs_topo_t *t = env->topo;
  const ffs_stage_cfg_t *me = &t->stages[env->index];
  const ffs_stage_cfg_t *ro = &t->stages[t->n_stages - 1];
  s_layer_t *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->topo = t, s->index = env->index;
  s->in_dim = me->in_dim, s->units = me->units;
  s->max_rows = t->batch > t->eval_batch * 10 ? t->batch : t->eval_batch * 10;
  for (int k = 0; k < ro->n_softmax; k++) s->report_activity |= ro->softmax[k] == env->index;
  for (int k = 0; k < t->n_feedback; k++)
    if (t->feedback[k].to == env->index) {
      int c = ffs_topo_feedback_cols(t, t->feedback[k].from);
      s->fb_cols = (uint32_t)(c > (int)s->fb_cols ? c : (int)s->fb_cols);
    }
  s->layer = ffs_ff_layer_new(s->in_dim, s->units, s->max_rows, &me->layer, t->seed,
                              (uint64_t)env->index + 1000);
  size_t widest = (size_t)(s->in_dim > s->units + 1 ? s->in_dim : s->units + 1);
  s->x = malloc(sizeof(float) * (size_t)s->max_rows * (size_t)s->in_dim);
  s->rep = malloc(sizeof(float) * (size_t)s->max_rows * (size_t)(s->units + 1));
  s->fb = s->fb_cols ? malloc(sizeof(float) * (size_t)s->max_rows * s->fb_cols) : NULL;
  s->buf_cap = ffs_frame_encoded_max((uint32_t)s->max_rows, (uint32_t)widest);
  s->buf = malloc(s->buf_cap);
  s->ids = malloc(sizeof(uint32_t) * (size_t)s->max_rows);
  if (!s->layer || !s->x || !s->rep || !s->buf || !s->ids || (s->fb_cols && !s->fb)) {
    snprintf(err, errlen, "out of memory for a %dx%d layer", s->units, s->in_dim);
    void *p = s;
    s_destroy(&p);
    return NULL;
  }
  return s;
}

const ffs_stage_ops_t ffs_ff_layer_ops = {
    .kind = "ff_layer",
    .create = s_create,
    .on_frame = s_on_frame,
    .save = s_save,
    .load = s_load,
    .destroy = s_destroy,
};
