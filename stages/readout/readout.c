// readout: the tail of the pipeline. Joins the ff_layers' REPORT frames by
// sequence number in a bounded window (one FIFO per layer; a full FIFO stops
// reading that layer, which backpressures it), then: energy inference
// (argmax over candidate labels of the summed goodness of chosen layers) and
// a one-pass softmax readout trained online on neutral rows' normalized
// activity. Test error overall and per layer goes to the launcher per epoch.
// In train.mode: stream it scores each labelled sample's neutral row before
// the softmax learns from it (prequential: the layers stepped after the row
// went through), keeps a rolling accuracy, and publishes every sample's
// prediction on a PUB socket (`publish:`, proto/README.md section 10).
#include <math.h>
#include <msgpack.h>
#include <time.h>
#include <zmq.h>
#include <cblas.h>
#include <stdio.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ffs_ckpt.h"
#include "ffs_log.h"
#include "ffs_math.h"
#include "ffs_kind.h"
#include "ffs_stage.h"

#define S_WINDOW 16 // frames held per layer while the others catch up
#define S_MARKS_KEPT 8 // recent phase ends remembered to ignore a re-sent MARK
#define S_LAT_N 65536 // latest end-to-end latencies kept for the percentiles

typedef struct {
  ffs_frame_hdr_t h;
  int role;        // the report's rows: all neutral or all candidate
  uint8_t *labels; // (max_rows)
  uint8_t *cands;  // (max_rows)
  uint32_t *ids;   // (max_rows) sample ids
  int has_ids;
  float *data;     // (max_rows, 1 + units)
} s_slot_t;

typedef struct {
  int stage;             // index in the topology
  int units;
  int energy;            // counted in the energy sum
  int softmax;           // feeds the softmax readout
  int scores;            // reports class scores (the last dp_layer, a mirrored model's
                         // top): its argmax is the prediction, counted as the softmax
  int probe;             // a mirrored model's hidden layer: reports its activity, which a
                         // linear probe (this layer's own softmax head) learns to classify
  double cos_sum;        // probe layers: summed mean pairwise cosine of evaluation frames
  long cos_pairs;        //   over this many pairs
  float sign;            // +1: high goodness = positive; -1 for min_ssq
  s_slot_t fifo[S_WINDOW];
  int head, len;
  float *w_own, *b_own;  // (classes, units), (classes): this layer's own softmax head
  float *w_all;          // (classes, units): its block of the combined head
  uint64_t err_energy, err_softmax;
} s_layer_t;

typedef struct {
  const ffs_topo_t *topo;
  int index;
  int n_layers;
  s_layer_t layers[FFS_MAX_STAGES];
  int by_stage[FFS_MAX_STAGES]; // stage index -> layers[] index, -1 if none
  int max_rows;
  int mirror;            // twin pipelines: s_on_mirror scores the joined reports
  float lr;
  int classes;           // data.classes: softmax width, candidate rows per sample
  float *b_all;          // (classes) combined head bias
  float *logits, *dlog;  // (max_rows, classes)
  float *probs;          // (max_rows, classes) predictions sent back to the source
  float *score, *total;  // (classes) energy inference: one layer's, the sum
  uint64_t n_energy, err_energy, n_softmax, err_softmax, join_missed;
  long marks[S_MARKS_KEPT]; // phases (2 epoch + phase) whose MARK was handled
  int n_marks;
  float *lat, *hop;      // (S_LAT_N) this phase's end-to-end latencies and
                         // transport per hop (us); the latest S_LAT_N kept
  float *sorted;         // (S_LAT_N) scratch for the percentiles
  uint64_t n_lat;
  int hops;              // from the source to here through every layer
  // train.mode: stream
  uint8_t *win;          // (topo window) 1 = that scored sample was wrong, a ring
  int win_at, win_n, win_err;
  uint64_t preq_n, preq_err, next_window; // scored so far, errors; next window's end
  FILE *windows;         // out/prequential.csv: one line per completed window
  void *pub;             // PUB socket (publish:), NULL none
  uint8_t *msg;          // (S_MSG_MAX) one published message
  size_t msg_len;
  double real_minus_mono; // CLOCK_REALTIME - CLOCK_MONOTONIC (s): capture times
} s_readout_t;

typedef struct {         // a readout's own options, in its stage's kind_cfg
  char publish[256];     // a ZeroMQ endpoint to bind a PUB socket on ("" none)
} s_cfg_t;
_Static_assert(sizeof(s_cfg_t) <= FFS_KIND_CFG_MAX, "a readout's options fit kind_cfg");

#define S_MSG_MAX 8192 // a published message: a few keys and data.classes floats

// ---- softmax heads ----

// logits (rows, classes) = h (rows, units) @ w^T (+=) ; h rows are strided
static void s_head_forward(float *logits, const float *h, int ld, const float *w, int rows,
                           int units, int accumulate, int classes) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, classes, units, 1.0f, h, ld, w,
              units, accumulate ? 1.0f : 0.0f, logits, classes);
}

// dlog = (softmax(logits) - onehot(labels)) / rows ; returns errors counted.
// A row without a label (a stream's unlabelled sample) has no gradient.
static int s_softmax_grad(float *dlog, const float *logits, const uint8_t *labels, int rows,
                          int classes) {
  int errors = 0;
  for (int r = 0; r < rows; r++) {
    const float *l = logits + r * classes;
    float *d = dlog + r * classes;
    if (labels[r] >= classes) {
      memset(d, 0, sizeof(float) * (size_t)classes);
      continue;
    }
    errors += ffs_argmax(l, classes) != labels[r];
    memcpy(d, l, sizeof(float) * classes);
    ffs_softmax_rows(d, 1, classes);
    d[labels[r]] -= 1.0f;
    for (int c = 0; c < classes; c++) d[c] /= (float)rows;
  }
  return errors;
}

// w (classes, units) -= lr dlog^T (classes, rows) @ h (rows, units) ; b (classes) -= lr column sums
static void s_head_update(float *w, float *b, const float *dlog, const float *h, int ld,
                          int rows, int units, float lr, int classes) {
  if (w)
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, classes, units, rows, -lr, dlog,
                classes, h, ld, 1.0f, w, units);
  if (b)
    for (int r = 0; r < rows; r++)
      for (int c = 0; c < classes; c++) b[c] -= lr * dlog[r * classes + c];
}

// Sends the combined head's softmax for each training row back to the source
// (feedback edge readout -> source), keyed by sample id: the hard negatives
// of the next epoch are drawn from it. Never blocks; drops are counted.
static void s_send_predictions(s_readout_t *s, ffs_io_t *io, const s_slot_t *sl, int rows) {
  if (!ffs_io_n_feedback_out(io) || !sl->has_ids) return;
  memcpy(s->probs, s->logits, sizeof(float) * (size_t)rows * (size_t)s->classes);
  ffs_softmax_rows(s->probs, rows, s->classes);
  ffs_frame_hdr_t h = {.kind = FFS_FRAME_FEEDBACK, .phase = sl->h.phase,
                       .seq = sl->h.seq, .epoch = sl->h.epoch, .stage = (uint32_t)s->index,
                       .rows = (uint32_t)rows, .cols = (uint32_t)s->classes};
  ffs_frame_rows_t r = {.labels = sl->labels, .ids = sl->ids};
  ffs_io_send(io, FFS_OUT_FEEDBACK, &h, &r, s->probs);
}

// ---- the stream: prequential scores and published predictions ----

static int s_msg_write(void *data, const char *buf, size_t len) {
  s_readout_t *s = data;
  if (s->msg_len + len > S_MSG_MAX) return -1;
  memcpy(s->msg + s->msg_len, buf, len);
  s->msg_len += len;
  return 0;
}

static void s_pack_key(msgpack_packer *pk, const char *k) {
  msgpack_pack_str(pk, strlen(k));
  msgpack_pack_str_body(pk, k, strlen(k));
}

// Publishes row r of a neutral report: its index, capture time, prediction,
// probabilities (probs: NULL when there is no softmax), novelty (the energy
// layers' summed goodness), label and latency. Never blocks (PUB drops).
static void s_publish(s_readout_t *s, ffs_io_t *io, const s_slot_t *sl, int r, const float *probs) {
  float goodness = 0.0f;
  for (int i = 0; i < s->n_layers; i++) {
    const s_layer_t *L = &s->layers[i];
    const s_slot_t *ls = &L->fifo[L->head];
    if (L->energy || s->topo->stages[s->index].n_energy == 0)
      goodness += L->sign * ls->data[(long)r * ls->h.cols];
  }
  double now = ffs_now();
  msgpack_packer pk;
  s->msg_len = 0;
  msgpack_packer_init(&pk, s, s_msg_write);
  msgpack_pack_map(&pk, 8);
  s_pack_key(&pk, "v"), msgpack_pack_int(&pk, 1);
  s_pack_key(&pk, "index"), msgpack_pack_uint64(&pk, sl->has_ids ? sl->ids[r] : 0);
  double ts = sl->h.ts ? (double)sl->h.ts / 1e9 + s->real_minus_mono : 0.0;
  s_pack_key(&pk, "ts"), msgpack_pack_uint64(&pk, (uint64_t)(ts * 1e9));
  s_pack_key(&pk, "pred"), msgpack_pack_int(&pk, probs ? ffs_argmax(probs, s->classes) : -1);
  s_pack_key(&pk, "probs"), msgpack_pack_array(&pk, probs ? (size_t)s->classes : 0);
  for (int c = 0; probs && c < s->classes; c++) msgpack_pack_float(&pk, probs[c]);
  s_pack_key(&pk, "goodness"), msgpack_pack_float(&pk, goodness);
  s_pack_key(&pk, "label"), msgpack_pack_int(&pk, sl->labels[r] < s->classes ? sl->labels[r] : -1);
  s_pack_key(&pk, "latency_us"),
      msgpack_pack_float(&pk, sl->h.ts ? (float)((now * 1e9 - (double)sl->h.ts) / 1e3) : 0.0f);
  if (zmq_send(s->pub, s->msg, s->msg_len, ZMQ_DONTWAIT) == (int)s->msg_len)
    ffs_io_stats(io)->published++;
}

// One labelled sample scored before learning: the totals, the rolling
// window, and a line in prequential.csv each time a window's worth is done.
static void s_score(s_readout_t *s, ffs_io_t *io, int wrong) {
  int w = s->topo->window;
  if (s->win_n == w) s->win_err -= s->win[s->win_at];
  else s->win_n++;
  s->win[s->win_at] = (uint8_t)wrong;
  s->win_err += wrong;
  s->win_at = (s->win_at + 1) % w;
  s->preq_n++, s->preq_err += (uint64_t)wrong;
  ffs_stage_stats_t *st = ffs_io_stats(io);
  st->preq_n = s->preq_n, st->preq_err = s->preq_err;
  st->preq_window = 1.0 - (double)s->win_err / (double)s->win_n;
  if (s->preq_n == s->next_window) {
    if (s->windows) {
      fprintf(s->windows, "%llu,%.6f\n", (unsigned long long)s->preq_n, st->preq_window);
      fflush(s->windows);
    }
    s->next_window += (uint64_t)w;
  }
}

// A stream's neutral rows, before the heads learn from them: scored (rows
// with a label) and published. logits: the combined head's, NULL when the
// readout has no softmax.
static void s_on_stream_rows(s_readout_t *s, ffs_io_t *io, const s_slot_t *sl, int rows,
                             const float *logits) {
  for (int r = 0; r < rows; r++) {
    float *p = NULL;
    if (logits) {
      p = s->probs + (size_t)r * (size_t)s->classes;
      memcpy(p, logits + (size_t)r * (size_t)s->classes, sizeof(float) * (size_t)s->classes);
      ffs_softmax_rows(p, 1, s->classes);
      if (sl->labels[r] < s->classes) s_score(s, io, ffs_argmax(p, s->classes) != sl->labels[r]);
    }
    if (s->pub) s_publish(s, io, sl, r, p);
  }
}

// Neutral rows: train (phase train) or score (phase eval) every softmax head.
static void s_on_neutral(s_readout_t *s, ffs_io_t *io, int train) {
  const s_slot_t *first = &s->layers[0].fifo[s->layers[0].head];
  int rows = (int)first->h.rows;
  const uint8_t *labels = first->labels;
  int have_all = 0;
  // combined head: bias + sum of every softmax layer's block
  for (int r = 0; r < rows; r++)
    memcpy(s->logits + r * s->classes, s->b_all, sizeof(float) * (size_t)s->classes);
  for (int i = 0; i < s->n_layers; i++) {
    s_layer_t *L = &s->layers[i];
    const s_slot_t *sl = &L->fifo[L->head];
    if (!L->softmax || sl->h.cols != (uint32_t)(1 + L->units)) continue;
    s_head_forward(s->logits, sl->data + 1, 1 + L->units, L->w_all, rows, L->units, 1, s->classes);
    have_all = 1;
  }
  int stream = train && s->topo->stream;
  if (stream) s_on_stream_rows(s, io, first, rows, have_all ? s->logits : NULL);
  if (!have_all) return;
  if (train && !stream) s_send_predictions(s, io, first, rows);
  int err = s_softmax_grad(s->dlog, s->logits, labels, rows, s->classes);
  if (train) {
    for (int i = 0; i < s->n_layers; i++) {
      s_layer_t *L = &s->layers[i];
      const s_slot_t *sl = &L->fifo[L->head];
      if (!L->softmax || sl->h.cols != (uint32_t)(1 + L->units)) continue;
      s_head_update(L->w_all, NULL, s->dlog, sl->data + 1, 1 + L->units, rows, L->units, s->lr,
                    s->classes);
    }
    s_head_update(NULL, s->b_all, s->dlog, NULL, 0, rows, 0, s->lr, s->classes);
  } else {
    s->n_softmax += (uint64_t)rows;
    s->err_softmax += (uint64_t)err;
  }
  // each softmax layer's own head
  for (int i = 0; i < s->n_layers; i++) {
    s_layer_t *L = &s->layers[i];
    const s_slot_t *sl = &L->fifo[L->head];
    if (!L->softmax || sl->h.cols != (uint32_t)(1 + L->units)) continue;
    for (int r = 0; r < rows; r++)
      memcpy(s->logits + r * s->classes, L->b_own, sizeof(float) * (size_t)s->classes);
    s_head_forward(s->logits, sl->data + 1, 1 + L->units, L->w_own, rows, L->units, 1, s->classes);
    int e = s_softmax_grad(s->dlog, s->logits, labels, rows, s->classes);
    if (train)
      s_head_update(L->w_own, L->b_own, s->dlog, sl->data + 1, 1 + L->units, rows, L->units, s->lr,
                    s->classes);
    else
      L->err_softmax += (uint64_t)e;
  }
}

// ---- class scores (a chain of dp_layers) ----

// Evaluation rows of the last layer's class scores: argmax against the label.
static void s_on_scores(s_readout_t *s, int train) {
  s_layer_t *L = &s->layers[0];
  const s_slot_t *sl = &L->fifo[L->head];
  if (train) return; // the layer learned from its loss itself
  int wrong = 0;
  for (uint32_t r = 0; r < sl->h.rows; r++)
    wrong += ffs_argmax(sl->data + (size_t)r * (size_t)s->classes, s->classes) != sl->labels[r];
  s->n_softmax += sl->h.rows, s->err_softmax += (uint64_t)wrong;
  L->err_softmax += (uint64_t)wrong;
}

// Twin pipelines (mirror_layers): the hidden layers' activity trains their
// linear probes (training frames) and is scored and measured for collapse
// (evaluation); the two tops' class probabilities are scored each and
// averaged, which is the run's prediction.
static void s_on_mirror(s_readout_t *s, int train) {
  const s_slot_t *first = &s->layers[0].fifo[s->layers[0].head];
  int rows = (int)first->h.rows, c = s->classes;
  const uint8_t *labels = first->labels;
  float *mean = s->probs; // (rows, classes): the tops' mean probabilities
  memset(mean, 0, sizeof(float) * (size_t)rows * (size_t)c);
  for (int i = 0; i < s->n_layers; i++) {
    s_layer_t *L = &s->layers[i];
    const float *h = L->fifo[L->head].data;
    if (L->scores) {
      for (int r = 0; !train && r < rows; r++) {
        L->err_softmax += ffs_argmax(h + (size_t)r * c, c) != labels[r];
        for (int k = 0; k < c; k++) mean[(size_t)r * c + k] += h[(size_t)r * c + k];
      }
      continue;
    }
    for (int r = 0; r < rows; r++) memcpy(s->logits + (size_t)r * c, L->b_own, sizeof(float) * c);
    s_head_forward(s->logits, h, L->units, L->w_own, rows, L->units, 1, c);
    int err = s_softmax_grad(s->dlog, s->logits, labels, rows, c);
    if (train) {
      s_head_update(L->w_own, L->b_own, s->dlog, h, L->units, rows, L->units, s->lr, c);
      continue;
    }
    L->err_softmax += (uint64_t)err;
    long pairs;
    L->cos_sum += ffs_mean_pair_cosine(h, rows, L->units, &pairs) * (double)pairs;
    L->cos_pairs += pairs;
  }
  if (train) return;
  for (int r = 0; r < rows; r++) s->err_softmax += ffs_argmax(mean + (size_t)r * c, c) != labels[r];
  s->n_softmax += (uint64_t)rows;
}

// ---- energy inference ----

// Candidate rows come in groups of data.classes (one per label) per sample.
static void s_on_candidates(s_readout_t *s) {
  const s_slot_t *first = &s->layers[0].fifo[s->layers[0].head];
  int rows = (int)first->h.rows;
  for (int base = 0; base + s->classes <= rows; base += s->classes) {
    int ok = 1;
    for (int c = 0; c < s->classes; c++) ok &= first->cands[base + c] == c;
    if (!ok) continue; // not a candidate group: ignore rather than guess
    uint8_t truth = first->labels[base];
    float *total = s->total, *score = s->score;
    memset(total, 0, sizeof(float) * (size_t)s->classes);
    for (int i = 0; i < s->n_layers; i++) {
      s_layer_t *L = &s->layers[i];
      const s_slot_t *sl = &L->fifo[L->head];
      for (int c = 0; c < s->classes; c++)
        score[c] = L->sign * sl->data[(long)(base + c) * sl->h.cols];
      L->err_energy += ffs_argmax(score, s->classes) != truth;
      if (L->energy)
        for (int c = 0; c < s->classes; c++) total[c] += score[c];
    }
    s->err_energy += ffs_argmax(total, s->classes) != truth;
    s->n_energy++;
  }
}

// ---- epoch ends ----

// A phase's MARK may come twice when a stage was restarted (the source
// re-sends MARKs that may have been lost): the second one is ignored.
static int s_seen_mark(s_readout_t *s, const ffs_frame_hdr_t *h) {
  long key = 2L * h->epoch + h->phase;
  for (int k = 0; k < S_MARKS_KEPT; k++)
    if (s->marks[k] == key) return 1;
  s->marks[s->n_marks++ % S_MARKS_KEPT] = key;
  return 0;
}

static int s_cmp_float(const void *a, const void *b) {
  float x = *(const float *)a, y = *(const float *)b;
  return x < y ? -1 : x > y;
}

// The q-quantile of v[0..n) (sorted into s->sorted).
static float s_quantile(s_readout_t *s, const float *v, size_t n, double q) {
  memcpy(s->sorted, v, n * sizeof(float));
  qsort(s->sorted, n, sizeof(float), s_cmp_float);
  return s->sorted[(size_t)(q * (double)n)];
}

// A phase ended: its latency figures go to the stats the launcher reads.
static void s_latency_stats(s_readout_t *s, ffs_io_t *io, int phase) {
  size_t n = s->n_lat < S_LAT_N ? (size_t)s->n_lat : S_LAT_N;
  s->n_lat = 0;
  if (!n) return;
  ffs_stage_stats_t *st = ffs_io_stats(io);
  st->lat_p50_us[phase] = s_quantile(s, s->lat, n, 0.5);
  st->lat_p99_us[phase] = s_quantile(s, s->lat, n, 0.99);
  st->hop_p50_us[phase] = s_quantile(s, s->hop, n, 0.5);
  st->lat_n[phase] = n;
}

static void s_on_mark(s_readout_t *s, ffs_io_t *io, const ffs_frame_hdr_t *h) {
  if (s_seen_mark(s, h)) return;
  s_latency_stats(s, io, h->phase == FFS_PHASE_EVAL);
  if (s->join_missed) { // frames lost with a restarted stage left groups incomplete
    ffs_warn("epoch %u %s: %llu report groups could not be joined and were dropped", h->epoch + 1,
             h->phase == FFS_PHASE_TRAIN ? "training" : "evaluation",
             (unsigned long long)s->join_missed);
    s->join_missed = 0;
  }
  if (h->phase == FFS_PHASE_TRAIN) {
    ffs_io_checkpoint(io);
    ffs_io_send_ctl(io, &(ffs_ctl_msg_t){.type = FFS_CTL_TRAINED, .trained.epoch = (int32_t)h->epoch});
    return;
  }
  ffs_ctl_msg_t m = {.type = FFS_CTL_RESULT};
  m.result.epoch = (int32_t)h->epoch;
  m.result.n_energy = s->n_energy, m.result.n_softmax = s->n_softmax;
  m.result.energy = s->n_energy ? (double)s->err_energy / (double)s->n_energy : -1.0;
  m.result.softmax = s->n_softmax ? (double)s->err_softmax / (double)s->n_softmax : -1.0;
  for (int i = 0; i < s->n_layers && i < FFS_MAX_STAGES; i++) {
    s_layer_t *L = &s->layers[i];
    ffs_ctl_layer_t *out = &m.result.layers[m.result.n_layers++];
    snprintf(out->name, sizeof out->name, "%s", s->topo->stages[L->stage].layer_name);
    out->energy = s->n_energy ? (double)L->err_energy / (double)s->n_energy : -1.0;
    out->cosine = L->cos_pairs ? L->cos_sum / (double)L->cos_pairs : -2.0;
    L->cos_sum = 0, L->cos_pairs = 0;
    int scored = L->softmax || L->scores || L->probe;
    out->softmax = scored && s->n_softmax ? (double)L->err_softmax / (double)s->n_softmax : -1.0;
    L->err_energy = L->err_softmax = 0;
  }
  ffs_io_send_ctl(io, &m);
  s->n_energy = s->err_energy = s->n_softmax = s->err_softmax = 0;
}

// ---- the join ----

static void s_pop_head(s_readout_t *s, ffs_io_t *io, s_layer_t *L) {
  L->head = (L->head + 1) % S_WINDOW;
  if (L->len-- == S_WINDOW) ffs_io_pause_report(io, L->stage, 0);
}

static void s_try_join(s_readout_t *s, ffs_io_t *io) {
  for (;;) {
    uint64_t lo = UINT64_MAX, hi = 0;
    for (int i = 0; i < s->n_layers; i++) {
      s_layer_t *L = &s->layers[i];
      if (!L->len) return; // wait for the slowest layer
      uint64_t q = L->fifo[L->head].h.seq;
      lo = q < lo ? q : lo, hi = q > hi ? q : hi;
    }
    if (lo != hi) { // some layer never reported `lo`: it cannot complete
      for (int i = 0; i < s->n_layers; i++)
        if (s->layers[i].fifo[s->layers[i].head].h.seq == lo) s_pop_head(s, io, &s->layers[i]);
      s->join_missed++;
      continue;
    }
    const s_slot_t *first = &s->layers[0].fifo[s->layers[0].head];
    const ffs_frame_hdr_t *h = &first->h;
    int rows_agree = 1;
    for (int i = 1; i < s->n_layers; i++) {
      const s_slot_t *o = &s->layers[i].fifo[s->layers[i].head];
      rows_agree &= o->h.rows == h->rows && o->role == first->role;
    }
    if (h->ts && h->kind != FFS_FRAME_MARK) { // every layer's report is in: end to end
      uint64_t work = 0; // the compute on the longest path: the deepest layer's
      for (int i = 0; i < s->n_layers; i++) {
        uint64_t w = s->layers[i].fifo[s->layers[i].head].h.work_ns;
        work = w > work ? w : work;
      }
      double lat = (ffs_now() * 1e9 - (double)h->ts) / 1e3;
      s->lat[s->n_lat % S_LAT_N] = (float)lat;
      s->hop[s->n_lat++ % S_LAT_N] = (float)((lat - (double)work / 1e3) / s->hops);
    }
    if (!rows_agree) s->join_missed++;
    else if (h->kind == FFS_FRAME_MARK) s_on_mark(s, io, h);
    else if (s->mirror) s_on_mirror(s, h->phase == FFS_PHASE_TRAIN);
    else if (s->layers[0].scores) s_on_scores(s, h->phase == FFS_PHASE_TRAIN);
    else if (first->role == FFS_ROW_NEUTRAL) s_on_neutral(s, io, h->phase == FFS_PHASE_TRAIN);
    else if (first->role == FFS_ROW_CANDIDATE && h->phase == FFS_PHASE_EVAL) s_on_candidates(s);
    for (int i = 0; i < s->n_layers; i++) s_pop_head(s, io, &s->layers[i]);
  }
}

static int s_on_frame(void *self, ffs_io_t *io, const ffs_frame_t *f, ffs_chan_t chan, int sub) {
  s_readout_t *s = self;
  if (chan != FFS_CHAN_REP || sub < 0 || sub >= FFS_MAX_STAGES || s->by_stage[sub] < 0) return -1;
  if (f->h.kind != FFS_FRAME_REPORT && f->h.kind != FFS_FRAME_MARK) return -1;
  s_layer_t *L = &s->layers[s->by_stage[sub]];
  int role = f->n_role[FFS_ROW_CANDIDATE] == f->h.rows ? FFS_ROW_CANDIDATE : FFS_ROW_NEUTRAL;
  if (f->h.kind == FFS_FRAME_REPORT && (L->scores || L->probe)) {
    // class scores, or a probe layer's activity, of labelled rows
    uint32_t cols = L->scores ? (uint32_t)s->classes : (uint32_t)L->units;
    if (role != FFS_ROW_NEUTRAL || f->h.aux != 0 || f->h.cols != cols) return -1;
    if (f->h.rows < 1 || !f->labels || !f->cands) return -1;
    for (uint32_t r = 0; r < f->h.rows; r++)
      if (f->labels[r] >= s->classes) return -1;
  } else if (f->h.kind == FFS_FRAME_REPORT) {
    // a report's rows are all neutral (softmax) or all candidates (energy)
    if (f->n_role[role] != f->h.rows) return -1;
    if (f->h.aux != 1 || f->h.rows < 1 || !f->labels || !f->cands) return -1;
    // activity columns only from layers the softmax reads (the slot is sized so)
    if (f->h.cols != 1 && !(L->softmax && f->h.cols == (uint32_t)(1 + L->units))) return -1;
    // (a stream's neutral rows may come without a label)
    int unlabelled_ok = s->topo->stream && role == FFS_ROW_NEUTRAL;
    for (uint32_t r = 0; r < f->h.rows; r++)
      if (f->labels[r] >= s->classes && !(unlabelled_ok && f->labels[r] == FFS_LABEL_NONE))
        return -1;
    // neutral rows show no label
    for (uint32_t r = 0; role == FFS_ROW_NEUTRAL && r < f->h.rows; r++)
      if (f->cands[r] != FFS_LABEL_NONE) return -1;
  }
  s_slot_t *sl = &L->fifo[(L->head + L->len) % S_WINDOW];
  if (f->h.rows && ffs_frame_copy_payload(sl->data, f) < 0) return -1;
  sl->h = f->h, sl->role = role;
  sl->has_ids = f->ids != NULL;
  if (f->h.rows) {
    memcpy(sl->labels, f->labels, f->h.rows);
    memcpy(sl->cands, f->cands, f->h.rows);
    for (uint32_t r = 0; sl->has_ids && r < f->h.rows; r++) sl->ids[r] = ffs_frame_id(f, r);
  }
  if (++L->len == S_WINDOW) ffs_io_pause_report(io, sub, 1);
  s_try_join(s, io);
  return 0;
}

// ---- checkpoints ----

static int s_tensors(s_readout_t *s, ffs_tensor_ref_t *t, char names[][48]) {
  int n = 0;
  t[n++] = (ffs_tensor_ref_t){"b_all", 1, {s->classes, 0}, s->b_all};
  for (int i = 0; i < s->n_layers && n + 3 <= FFS_CKPT_MAX_TENSORS; i++) {
    s_layer_t *L = &s->layers[i];
    if (!L->softmax) continue;
    const char *nm = s->topo->stages[L->stage].layer_name;
    snprintf(names[n], 48, "w_all.%s", nm);
    t[n] = (ffs_tensor_ref_t){names[n], 2, {s->classes, L->units}, L->w_all}, n++;
    snprintf(names[n], 48, "w.%s", nm);
    t[n] = (ffs_tensor_ref_t){names[n], 2, {s->classes, L->units}, L->w_own}, n++;
    snprintf(names[n], 48, "b.%s", nm);
    t[n] = (ffs_tensor_ref_t){names[n], 1, {s->classes, 0}, L->b_own}, n++;
  }
  return n;
}

static int s_save(void *self, const char *path, char *err, size_t errlen) {
  s_readout_t *s = self;
  ffs_tensor_ref_t t[FFS_CKPT_MAX_TENSORS];
  char names[FFS_CKPT_MAX_TENSORS][48];
  int n = s_tensors(s, t, names);
  const char *meta[] = {"stage", s->topo->stages[s->index].name, "kind", "readout"};
  return ffs_ckpt_save(path, t, n, meta, 2, err, errlen);
}

static int s_load(void *self, const char *path, char *err, size_t errlen) {
  s_readout_t *s = self;
  ffs_tensor_ref_t t[FFS_CKPT_MAX_TENSORS];
  char names[FFS_CKPT_MAX_TENSORS][48];
  int n = s_tensors(s, t, names);
  return ffs_ckpt_load(path, t, n, err, errlen);
}

// ---- lifecycle ----

static void s_destroy(void **self_p) {
  s_readout_t *s = *self_p;
  if (!s) return;
  for (int i = 0; i < s->n_layers; i++) {
    s_layer_t *L = &s->layers[i];
    for (int k = 0; k < S_WINDOW; k++)
      free(L->fifo[k].labels), free(L->fifo[k].cands), free(L->fifo[k].ids), free(L->fifo[k].data);
    free(L->w_own), free(L->b_own), free(L->w_all);
  }
  free(s->lat), free(s->hop), free(s->sorted);
  if (s->pub) zmq_close(s->pub);
  if (s->windows) fclose(s->windows);
  free(s->win), free(s->msg);
  free(s->b_all), free(s->logits), free(s->dlog), free(s->probs);
  free(s->score), free(s->total);
  free(s);
  *self_p = NULL;
}

// A stream's outputs: out/prequential.csv (window ends) and the PUB socket.
static int s_open_stream_outputs(s_readout_t *s, const ffs_stage_env_t *env, char *err,
                                 size_t errlen) {
  s_cfg_t cfg;
  memcpy(&cfg, s->topo->stages[s->index].kind_cfg, sizeof cfg);
  if (env->out_dir && env->out_dir[0]) {
    char path[FFS_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/prequential.csv", env->out_dir);
    int fresh = !env->resume || access(path, F_OK) != 0;
    if (!(s->windows = fopen(path, fresh ? "w" : "a"))) {
      snprintf(err, errlen, "%s: %s", path, strerror(errno));
      return -1;
    }
    if (fresh) fprintf(s->windows, "samples,window_accuracy\n");
  }
  if (!cfg.publish[0]) return 0;
  int linger = 0, hwm = 10000;
  s->pub = zmq_socket(env->zctx, ZMQ_PUB);
  if (!s->pub || zmq_setsockopt(s->pub, ZMQ_LINGER, &linger, sizeof linger) < 0 ||
      zmq_setsockopt(s->pub, ZMQ_SNDHWM, &hwm, sizeof hwm) < 0 ||
      zmq_bind(s->pub, cfg.publish) < 0) {
    snprintf(err, errlen, "%s: publish: cannot bind %s: %s", s->topo->stages[s->index].name,
             cfg.publish, zmq_strerror(zmq_errno()));
    return -1;
  }
  ffs_info("publishing predictions on %s", cfg.publish);
  return 0;
}

static void *s_create(const ffs_stage_env_t *env, ffs_io_t *io, char *err, size_t errlen) {
  const ffs_topo_t *t = env->topo;
  const ffs_stage_cfg_t *me = &t->stages[env->index];
  s_readout_t *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->topo = t, s->index = env->index, s->lr = me->softmax_lr;
  s->max_rows = ffs_topo_max_rows(t);
  s->classes = t->classes;
  int ok = 1;
  for (int i = 0; i < FFS_MAX_STAGES; i++) s->by_stage[i] = -1;
  for (int k = 0; k < S_MARKS_KEPT; k++) s->marks[k] = -1;
  for (int i = 0; i < t->n_stages; i++) {
    // a sharded layer reports once, gathered, on its shard 0's channel
    if (!ffs_topo_reports(t, i) || t->stages[i].shard != 0) continue;
    s_layer_t *L = &s->layers[s->n_layers];
    s->by_stage[i] = s->n_layers++;
    L->stage = i, L->units = t->stages[i].out_dim;
    L->sign = t->stages[i].layer.goodness == FFS_GOODNESS_MIN_SSQ ? -1.0f : 1.0f;
    for (int k = 0; k < me->n_energy; k++) L->energy |= me->energy[k] == i;
    for (int k = 0; k < me->n_softmax; k++) L->softmax |= me->softmax[k] == i;
    const ffs_kind_t *kind = ffs_kind_of(t->stages[i].kind);
    L->probe = kind->lateral && t->stages[i].twin >= 0;
    L->scores = kind->backward || (kind->lateral && t->stages[i].twin < 0);
    s->mirror |= kind->lateral;
    int cols = L->scores || L->probe ? L->units : 1 + (L->softmax ? L->units : 0);
    for (int k = 0; k < S_WINDOW; k++) {
      L->fifo[k].labels = malloc((size_t)s->max_rows);
      L->fifo[k].cands = malloc((size_t)s->max_rows);
      L->fifo[k].ids = malloc(sizeof(uint32_t) * (size_t)s->max_rows);
      L->fifo[k].data = malloc(sizeof(float) * (size_t)s->max_rows * (size_t)(cols > 1 ? cols : 1));
      ok &= L->fifo[k].labels && L->fifo[k].cands && L->fifo[k].ids && L->fifo[k].data;
    }
    if (L->softmax || L->probe) {
      L->w_own = calloc((size_t)s->classes * (size_t)L->units, sizeof(float));
      L->b_own = calloc((size_t)s->classes, sizeof(float));
      L->w_all = calloc((size_t)s->classes * (size_t)L->units, sizeof(float));
      ok &= L->w_own && L->b_own && L->w_all;
    }
  }
  s->b_all = calloc((size_t)s->classes, sizeof(float));
  s->lat = malloc(sizeof(float) * S_LAT_N);
  s->hop = malloc(sizeof(float) * S_LAT_N);
  s->sorted = malloc(sizeof(float) * S_LAT_N);
  ok &= s->lat && s->hop && s->sorted;
  for (int i = 1; i < t->readout; i = ffs_topo_next(t, i)) s->hops++; // layers
  s->hops++; // and the last one's report
  s->logits = malloc(sizeof(float) * (size_t)s->max_rows * (size_t)s->classes);
  s->dlog = malloc(sizeof(float) * (size_t)s->max_rows * (size_t)s->classes);
  s->probs = malloc(sizeof(float) * (size_t)s->max_rows * (size_t)s->classes);
  s->score = malloc(sizeof(float) * (size_t)s->classes);
  s->total = malloc(sizeof(float) * (size_t)s->classes);
  ok &= s->b_all && s->logits && s->dlog && s->probs && s->score && s->total;
  if (t->stream) {
    s->win = calloc((size_t)t->window, 1);
    s->msg = malloc(S_MSG_MAX);
    ok &= s->win && s->msg;
    s->next_window = (uint64_t)t->window;
    struct timespec rt, mt;
    clock_gettime(CLOCK_REALTIME, &rt), clock_gettime(CLOCK_MONOTONIC, &mt);
    s->real_minus_mono = (double)(rt.tv_sec - mt.tv_sec) + 1e-9 * (double)(rt.tv_nsec - mt.tv_nsec);
    ffs_io_stats(io)->preq_window = -1.0;
  }
  if (!ok || s->n_layers == 0) {
    snprintf(err, errlen, s->n_layers ? "out of memory" : "%s: readout has no layer to read", t->path);
    void *p = s;
    s_destroy(&p);
    return NULL;
  }
  if (t->stream && s_open_stream_outputs(s, env, err, errlen) < 0) {
    void *p = s;
    s_destroy(&p);
    return NULL;
  }
  return s;
}

static const char *const s_keys[] = {"name",    "kind",       "core", "host", "energy",
                                     "softmax", "softmax_lr", "primary", "publish", NULL};
extern const ffs_stage_ops_t ffs_readout_ops;
static const char *const s_infer_names[] = {"energy", "softmax", NULL};

// A readout's own keys: softmax_lr and primary. energy and softmax name
// layers; the loader resolves them once every stage is read.
static int s_parse(ffs_yaml_ctx_t *c, const ffs_yaml_node_t *item, const char *who,
                   ffs_stage_cfg_t *st) {
  const ffs_yaml_node_t *v;
  char label[96];
  int e;
  st->softmax_lr = 0.01f;
  st->primary = FFS_INFER_ENERGY;
  snprintf(label, sizeof label, "%s: softmax_lr", who);
  if ((v = ffs_yaml_map_get(item, "softmax_lr")) &&
      ffs_yaml_num(c, v, label, FFS_YAML_POSITIVE, &st->softmax_lr) < 0)
    return -1;
  snprintf(label, sizeof label, "%s: primary", who);
  if ((v = ffs_yaml_map_get(item, "primary"))) {
    if (ffs_yaml_enum(c, v, label, s_infer_names, &e) < 0) return -1;
    st->primary = (ffs_infer_t)e;
  }
  s_cfg_t cfg = {{0}};
  snprintf(label, sizeof label, "%s: publish", who);
  if ((v = ffs_yaml_map_get(item, "publish")) &&
      ffs_yaml_str(c, v, label, cfg.publish, sizeof cfg.publish) < 0)
    return -1;
  memcpy(st->kind_cfg, &cfg, sizeof cfg);
  return 0;
}

const ffs_kind_t ffs_kind_readout = {.name = "readout", .role = FFS_ROLE_READOUT, .keys = s_keys,
                                     .parse = s_parse, .light = 1, .ops = &ffs_readout_ops};

const ffs_stage_ops_t ffs_readout_ops = {
    .kind = "readout",
    .create = s_create,
    .on_frame = s_on_frame,
    .save = s_save,
    .load = s_load,
    .destroy = s_destroy,
};
