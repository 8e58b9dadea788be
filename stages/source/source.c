// source: the head of the pipeline. Turns a data set into micro-batched
// DATA frames: in training, positive rows (true label overlaid) and negative
// rows (a wrong label, never the true one: uniformly random, or "hard": drawn
// from the readout's last softmax prediction for that sample, which comes
// back on a feedback edge), plus neutral rows when the readout trains a
// softmax (with train.pairs the positive and negative rows travel as one
// frame, positives first; with train.triples the neutral rows follow them);
// in evaluation, one row per candidate label (energy) and a neutral row
// (softmax). Every row carries its role (frame key `roles`). Each epoch's
// stream ends with a MARK frame.
// With train.labels: separate (FFCL) no label is painted: it travels in the
// frame header (cands), and a candidate frame has one row per sample.
// With train.ticks > 1 (recurrent) each frame of a batch is sent once per
// tick, with the same sequence number, the ticks of the batch's frames
// interleaved (P0 N0 U0 P1 N1 U1 ...) so that no layer waits idle.
// With train.mode: stream the training phase plays the source's feed
// (feed.h: the training set in file order, y4m video, CSV or UDP rows, a
// producer's frames) once, sample by sample as they come, each sample's
// neutral row riding before its step so that the readout scores it with the
// weights it meets (prequential), until the input ends or END arrives.
// All buffers are allocated in create; pump() never allocates.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ffs_idx.h"
#include "ffs_log.h"
#include "ffs_rng.h"
#include "ffs_kind.h"
#include "ffs_stage.h"
#include "feed.h"
#include "negatives.h"

#define S_QUEUE 64
#define S_HYBRID_BLURS 6 // Hinton: "repeatedly"; 6 passes give blobs a few pixels wide
#define S_NBUF 3         // frames per batch: positive, negative, neutral (eval: neutral, candidates)
#define S_PAST 256       // stream, unsupervised: frames kept to mix hybrid negatives from

typedef struct {
  int epoch;
  int phase; // FFS_PHASE_TRAIN / FFS_PHASE_EVAL
} s_phase_t;

typedef struct {
  const ffs_topo_t *topo;
  int index;
  int dim;                 // pixels per row
  int classes;             // data.classes: labels 0..classes-1
  double next_emit;        // train.pace_us: when the next frame may go out
  int batch, eval_batch;   // samples per frame
  int max_rows;            // rows in the largest frame
  int want_neutral;        // the readout trains / evaluates a softmax
  int want_candidates;     // the readout does energy inference
  ffs_dataset_t *train, *test;
  ffs_rng_t rng;
  uint32_t *order;         // (train->n) shuffled sample order
  s_phase_t queue[S_QUEUE];
  int q_head, q_len;
  int active;              // a phase is being streamed
  s_phase_t cur;
  int pos;                 // next sample of the current phase
  uint64_t seq;
  float *x[S_NBUF];        // (max_rows, dim) rows being built, one buffer per frame of a batch
  uint8_t *roles[S_NBUF], *labels[S_NBUF], *cands[S_NBUF]; // (max_rows)
  uint32_t *ids[S_NBUF];   // (max_rows)
  int hard;                // negatives drawn from predictions (FFS_NEG_HARD)
  int hybrid;              // unsupervised: no label overlay, hybrid negatives
  int separate;            // FFCL: the label travels in the header, never painted
  int plain;               // supervised chain (dp_layers): one frame of labelled rows per
                           // batch, no overlay, no negatives
  int pairs;               // train.pairs: positive + negative rows in one frame
  int triples;             // train.triples: ... and the neutral rows after them
  int ticks;               // recurrent: ticks per frame of a batch
  int img_h, img_w;        // image shape for the hybrid mask (h * w = dim)
  float *mask, *mask_tmp;  // (dim) hybrid mask and blur scratch
  float *pred;             // (train->n, classes) last prediction per sample; row[0] < 0 = none yet
  float *fb_rows;          // (max_rows, classes) decoded feedback frame
  // train.mode: stream
  ffs_feed_cfg_t feed_cfg; // the stage's feed keys
  ffs_feed_t *feed;        // open from create on, so a sensor is read from the start
  int stream;              // the training phase plays the feed
  float *sx;               // (batch, dim) samples popped for one frame
  uint8_t *sy;             // (batch) their labels (FFS_LABEL_NONE = unknown)
  uint32_t *sid;           // (batch) their stream indices (mod 2^32)
  uint64_t sts;            // capture time of the batch's first sample (ns)
  float *past;             // (S_PAST, dim) earlier frames: hybrid negatives' partners
  int n_past, past_at;
  uint64_t skipped_logged; // bad input counted so far and logged
  double skip_logged_at;   // when it was last logged (at most once a second)
  int end_asked;           // END arrived: the stream ends at the next pump
  char end_why[512];       // the stream ended early: its input's error ("" none)
} s_source_t;

// ---- building rows ----

// Writes the label overlay into the first data.classes pixels of row:
// one-hot for a label, 1/classes everywhere for FFS_LABEL_NONE (the neutral
// label).
static void s_overlay(const s_source_t *s, float *row, int label) {
  if (s->hybrid || s->separate || s->plain) return; // the input itself never shows a label
  ffs_label_overlay(row, label, s->classes);
}

static uint8_t s_wrong_label(s_source_t *s, uint32_t k, uint8_t truth) {
  const float *probs = s->hard ? s->pred + (size_t)k * (size_t)s->classes : NULL;
  return ffs_negative_label(&s->rng, probs, truth, s->classes);
}

// Sends buffer p as one frame (sequence number seq, recurrent tick tick).
static int s_emit(s_source_t *s, ffs_io_t *io, int p, uint8_t phase, uint32_t rows, uint64_t seq,
                  int tick, uint64_t ts) {
  if (s->topo->pace_us > 0) { // a paced stream: wait for the next frame's time
    double wait = s->next_emit - ffs_now();
    if (wait > 0) {
      struct timespec ts = {(time_t)wait, (long)((wait - (double)(time_t)wait) * 1e9)};
      nanosleep(&ts, NULL);
    }
    s->next_emit = ffs_now() + 1e-6 * s->topo->pace_us;
  }
  ffs_frame_hdr_t h = {.kind = FFS_FRAME_DATA, .phase = phase, .seq = seq,
                       .epoch = (uint32_t)s->cur.epoch, .tick = (uint32_t)tick,
                       .stage = (uint32_t)s->index, .rows = rows, .cols = (uint32_t)s->dim,
                       .ts = ts ? ts : (uint64_t)(ffs_now() * 1e9)}; // the readout's latency
  ffs_io_stats(io)->frames++; // a source's frames are the ones it emits
  ffs_frame_rows_t r = {s->roles[p], s->labels[p], s->cands[p], s->ids[p]};
  return ffs_io_send(io, FFS_OUT_FORWARD, &h, &r, s->x[p]);
}

// Sends the nbuf frames of a batch (buffers 0..nbuf-1), each once per tick.
static int s_emit_batch(s_source_t *s, ffs_io_t *io, int nbuf, const uint32_t *rows,
                        uint8_t phase, uint64_t ts) {
  uint64_t seq0 = s->seq;
  s->seq += (uint64_t)nbuf;
  for (int tick = 0; tick < s->ticks; tick++)
    for (int p = 0; p < nbuf; p++)
      if (s_emit(s, io, p, phase, rows[p], seq0 + (uint64_t)p, tick, ts) < 0) return -1;
  return 0;
}

// Fills row i of buffer p in role `role` (ffs_row_role_t) from image x of
// sample id k with true label truth (FFS_LABEL_NONE: unknown): the image with
// its label overlay (true, wrong, or neutral), or, for unsupervised hybrid
// negatives, the image mixed with `other` and no label. cands[] holds the
// label the row stands for (overlaid or not).
static void s_fill_row(s_source_t *s, int p, int i, const float *x, uint8_t truth, uint32_t k,
                       int role, const float *other) {
  float *row = s->x[p] + (long)i * s->dim;
  memcpy(row, x, sizeof(float) * (size_t)s->dim);
  if (s->hybrid && role == FFS_ROW_NEGATIVE) {
    // mix this image with another one through a blurred mask
    ffs_hybrid_mask(s->mask, s->mask_tmp, s->img_h, s->img_w, S_HYBRID_BLURS, &s->rng);
    ffs_hybrid_mix(row, row, other, s->mask, s->dim);
  }
  uint8_t lab = s->hybrid                   ? FFS_LABEL_NONE // no label shown
                : role == FFS_ROW_POSITIVE ? truth
                : role == FFS_ROW_NEGATIVE ? s_wrong_label(s, k, truth)
                                            : FFS_LABEL_NONE;
  s_overlay(s, row, lab);
  s->roles[p][i] = (uint8_t)role;
  s->labels[p][i] = truth;
  s->cands[p][i] = lab;
  s->ids[p][i] = k;
}

// Fills rows at..at+n-1 of buffer p from set at sample indices idx[] in role
// `role` (hybrid negatives mix with a random other sample of the set).
static void s_fill(s_source_t *s, int p, int at, const ffs_dataset_t *set, const uint32_t *idx,
                   int n, int role) {
  for (int j = 0; j < n; j++) {
    const float *other = NULL;
    if (s->hybrid && role == FFS_ROW_NEGATIVE)
      other = set->x + (long)ffs_rng_below(&s->rng, (uint32_t)set->n) * s->dim;
    s_fill_row(s, p, at + j, set->x + (long)idx[j] * s->dim, set->y[idx[j]], idx[j], role, other);
  }
}

// ---- phases ----

// A training batch: a positive, a negative and (for a softmax readout) a
// neutral frame; with train.pairs the positive and negative rows go as one
// frame, positives first; with train.triples the neutral rows follow them in
// the same frame.
static int s_train_batch(s_source_t *s, ffs_io_t *io, int n) {
  const uint32_t *idx = s->order + s->pos;
  static const int roles[S_NBUF] = {FFS_ROW_POSITIVE, FFS_ROW_NEGATIVE, FFS_ROW_NEUTRAL};
  uint32_t rows[S_NBUF] = {(uint32_t)n, (uint32_t)n, (uint32_t)n};
  int nbuf = s->want_neutral ? 3 : 2;
  if (s->plain) { // the samples with their labels (role positive: a true label)
    s_fill(s, 0, 0, s->train, idx, n, FFS_ROW_POSITIVE);
    nbuf = 1;
  } else if (s->triples && s->want_neutral) {
    for (int k = 0; k < 3; k++) s_fill(s, 0, k * n, s->train, idx, n, roles[k]);
    rows[0] = (uint32_t)(3 * n), nbuf = 1;
  } else if (s->pairs) { // (triples without a softmax readout: no neutral rows to add)
    for (int k = 0; k < 2; k++) s_fill(s, 0, k * n, s->train, idx, n, roles[k]);
    rows[0] = (uint32_t)(2 * n);
    nbuf = s->want_neutral ? 2 : 1;
    if (s->want_neutral) s_fill(s, 1, 0, s->train, idx, n, FFS_ROW_NEUTRAL);
  } else {
    for (int p = 0; p < nbuf; p++) s_fill(s, p, 0, s->train, idx, n, roles[p]);
  }
  if (s_emit_batch(s, io, nbuf, rows, FFS_PHASE_TRAIN, 0) < 0) return -1;
  ffs_io_stats(io)->samples += (uint64_t)n;
  return 0;
}

static int s_eval_batch(s_source_t *s, ffs_io_t *io, int n) {
  uint32_t idx[1000];
  uint32_t rows[S_NBUF];
  int nbuf = 0;
  for (int i = 0; i < n; i++) idx[i] = (uint32_t)(s->pos + i);
  if (s->want_neutral || s->plain) {
    s_fill(s, nbuf, 0, s->test, idx, n, FFS_ROW_NEUTRAL);
    rows[nbuf++] = (uint32_t)n;
  }
  if (s->want_candidates && s->separate) {
    // FFCL: the layers score every label from one pass over the features
    s_fill(s, nbuf, 0, s->test, idx, n, FFS_ROW_CANDIDATE);
    rows[nbuf++] = (uint32_t)n;
  } else if (s->want_candidates) {
    for (int i = 0; i < n; i++)
      for (int c = 0; c < s->classes; c++) {
        int r = i * s->classes + c;
        float *row = s->x[nbuf] + (long)r * s->dim;
        memcpy(row, s->test->x + (long)idx[i] * s->dim, sizeof(float) * (size_t)s->dim);
        s_overlay(s, row, c);
        s->roles[nbuf][r] = FFS_ROW_CANDIDATE;
        s->labels[nbuf][r] = s->test->y[idx[i]];
        s->cands[nbuf][r] = (uint8_t)c;
        s->ids[nbuf][r] = idx[i];
      }
    rows[nbuf++] = (uint32_t)(n * s->classes);
  }
  return nbuf ? s_emit_batch(s, io, nbuf, rows, FFS_PHASE_EVAL, 0) : 0;
}

// ---- the stream ----

// Counts what the feed dropped and refused; a new refusal is logged (the
// latest one, at most once a second).
static void s_feed_counts(s_source_t *s, ffs_io_t *io) {
  if (!s->feed) return;
  ffs_stage_stats_t *st = ffs_io_stats(io);
  ffs_feed_counts(s->feed, &st->in_dropped, &st->in_skipped);
  if (st->in_skipped != s->skipped_logged && ffs_now() - s->skip_logged_at >= 1.0) {
    char why[512];
    ffs_warn("input: %llu refused so far; latest: %s", (unsigned long long)st->in_skipped,
             ffs_feed_last_skip(s->feed, why, sizeof why));
    s->skipped_logged = st->in_skipped, s->skip_logged_at = ffs_now();
  }
}

// Pops up to a batch of the samples waiting now (never waits for more).
// Returns how many, 0 when none waits, -1 when the input has ended.
static int s_stream_pop(s_source_t *s, ffs_io_t *io) {
  int n = 0;
  ffs_feed_meta_t m;
  s_feed_counts(s, io);
  while (n < s->batch) {
    int rc = ffs_feed_pop(s->feed, s->sx + (size_t)n * (size_t)s->dim, &m);
    if (rc <= 0) return n ? n : rc;
    if (n == 0) s->sts = m.ts_ns;
    s->sy[n] = m.label < 0 ? FFS_LABEL_NONE : (uint8_t)m.label;
    s->sid[n++] = (uint32_t)m.index;
  }
  return n;
}

// The frames of n stream samples: every sample's neutral row, scored with the
// weights it meets, and the step's positive and negative rows: of the
// labelled samples, or (unsupervised) of every sample, its negative a hybrid
// with an earlier frame. With train.triples one frame (positives, negatives,
// neutrals: a layer steps after its forward pass), else the neutral frame
// goes first.
static int s_stream_batch(s_source_t *s, ffs_io_t *io, int n) {
  int learn[1000], nl = 0;
  for (int i = 0; i < n; i++)
    if (s->hybrid ? s->n_past > 0 : s->sy[i] != FFS_LABEL_NONE) learn[nl++] = i;
  int nbuf = 0, p = 0;
  uint32_t rows[S_NBUF] = {0};
  if (!s->triples) { // the neutral frame first
    for (int i = 0; i < n; i++)
      s_fill_row(s, 0, i, s->sx + (size_t)i * (size_t)s->dim, s->sy[i], s->sid[i],
                 FFS_ROW_NEUTRAL, NULL);
    rows[nbuf++] = (uint32_t)n;
    p = 1;
  }
  if (nl) {
    static const int roles[2] = {FFS_ROW_POSITIVE, FFS_ROW_NEGATIVE};
    for (int k = 0; k < 2; k++) {
      if (k == 1 && !s->pairs) p++, rows[nbuf++] = (uint32_t)nl; // separate P and N frames
      for (int j = 0; j < nl; j++) {
        int i = learn[j];
        const float *other = NULL;
        if (k == 1 && s->hybrid)
          other = s->past + (size_t)ffs_rng_below(&s->rng, (uint32_t)s->n_past) * (size_t)s->dim;
        int at = s->pairs ? k * nl + j : j;
        s_fill_row(s, p, at, s->sx + (size_t)i * (size_t)s->dim, s->sy[i], s->sid[i], roles[k],
                   other);
      }
    }
    if (s->pairs) rows[nbuf++] = (uint32_t)(2 * nl);
    else rows[nbuf - 1] = (uint32_t)nl;
  }
  if (s->triples) { // the neutral rows after the step's rows, in the same frame
    uint32_t at = nbuf ? rows[0] : 0;
    for (int i = 0; i < n; i++)
      s_fill_row(s, 0, (int)at + i, s->sx + (size_t)i * (size_t)s->dim, s->sy[i], s->sid[i],
                 FFS_ROW_NEUTRAL, NULL);
    rows[0] = at + (uint32_t)n, nbuf = 1;
  }
  for (int i = 0; s->hybrid && i < n; i++) { // kept to mix later negatives from
    memcpy(s->past + (size_t)s->past_at * (size_t)s->dim, s->sx + (size_t)i * (size_t)s->dim,
           sizeof(float) * (size_t)s->dim);
    s->past_at = (s->past_at + 1) % S_PAST;
    if (s->n_past < S_PAST) s->n_past++;
  }
  if (s_emit_batch(s, io, nbuf, rows, FFS_PHASE_TRAIN, s->sts) < 0) return -1;
  ffs_io_stats(io)->samples += (uint64_t)n;
  return 0;
}

// Sends the MARK that ends phase (epoch, phase) down the pipeline.
static int s_send_mark(s_source_t *s, ffs_io_t *io, int epoch, int phase) {
  ffs_frame_hdr_t h = {.kind = FFS_FRAME_MARK, .phase = (uint8_t)phase, .seq = s->seq++,
                       .epoch = (uint32_t)epoch, .stage = (uint32_t)s->index};
  return ffs_io_send(io, FFS_OUT_FORWARD, &h, NULL, NULL);
}

static int s_end_phase(s_source_t *s, ffs_io_t *io) {
  if (s_send_mark(s, io, s->cur.epoch, s->cur.phase) < 0) return -1;
  s->active = 0;
  if (s->stream && s->cur.phase == FFS_PHASE_TRAIN) {
    ffs_io_watch_fd(io, -1);
    s_feed_counts(s, io);
    if (s->feed && !s->end_asked)
      snprintf(s->end_why, sizeof s->end_why, "%s", ffs_feed_end_reason(s->feed));
    const char *why = s->end_why;
    if (why[0]) ffs_warn("the stream ended early after %d samples: %s", s->pos, why);
    else ffs_info("the stream ended after %d samples (%s)", s->pos,
                  s->end_asked ? "asked to end" : "end of input");
    ffs_feed_destroy(&s->feed); // a command is stopped, a socket closed
  }
  ffs_ctl_msg_t m = {.type = FFS_CTL_SENT};
  m.sent.epoch = s->cur.epoch, m.sent.mode = s->cur.phase != FFS_PHASE_TRAIN, m.sent.n = s->pos;
  snprintf(m.sent.why, sizeof m.sent.why, "%s", s->end_why);
  return ffs_io_send_ctl(io, &m);
}

static int s_pump(void *self, ffs_io_t *io) {
  s_source_t *s = self;
  if (!s->active) {
    if (!s->q_len) return 0;
    s->cur = s->queue[s->q_head];
    s->q_head = (s->q_head + 1) % S_QUEUE;
    s->q_len--;
    s->active = 1;
    s->pos = 0;
    if (s->stream && s->cur.phase == FFS_PHASE_TRAIN && s->feed) {
      char err[512];
      if (ffs_feed_start(s->feed, err, sizeof err) < 0) { // (fork, thread: resources)
        snprintf(s->end_why, sizeof s->end_why, "%s", err);
        ffs_error("the stream cannot start: %s", err);
        ffs_feed_destroy(&s->feed);
      } else {
        ffs_io_watch_fd(io, ffs_feed_fd(s->feed)); // sleep until samples wait
      }
    }
    else if (s->cur.phase == FFS_PHASE_TRAIN && s->train)
      ffs_rng_shuffle(&s->rng, s->order, (uint32_t)s->train->n);
  }
  if (s->stream && s->cur.phase == FFS_PHASE_TRAIN) {
    int n = !s->feed || s->end_asked ? -1 : s_stream_pop(s, io);
    if (n < 0) return s_end_phase(s, io) < 0 ? 0 : 1;
    if (n == 0) return 0; // nothing waits: the feed's fd wakes the poll
    int rc = s_stream_batch(s, io, n);
    s->pos += n;
    return rc < 0 ? 0 : 1;
  }
  if (!s->test && s->cur.phase == FFS_PHASE_EVAL) return s_end_phase(s, io) < 0 ? 0 : 1;
  const ffs_dataset_t *set = s->cur.phase == FFS_PHASE_TRAIN ? s->train : s->test;
  int per = s->cur.phase == FFS_PHASE_TRAIN ? s->batch : s->eval_batch;
  int n = set->n - s->pos < per ? set->n - s->pos : per;
  if (n <= 0) return s_end_phase(s, io) < 0 ? 0 : 1;
  int rc = s->cur.phase == FFS_PHASE_TRAIN ? s_train_batch(s, io, n) : s_eval_batch(s, io, n);
  s->pos += n;
  return rc < 0 ? 0 : 1;
}

// ---- control and feedback ----

// EPOCH (epoch, phase) queues a phase; MARK (epoch, phase) re-sends the end
// of a phase whose MARK was lost with a stage that died (the supervisor asks).
static int s_on_control(void *self, ffs_io_t *io, const ffs_ctl_msg_t *m) {
  s_source_t *s = self;
  if (m->type == FFS_CTL_END) { // the stream ends where it is (Ctrl-C, ffstream's END)
    if (!s->stream) return -1;
    s->end_asked = 1;
    return 0;
  }
  if (m->type != FFS_CTL_EPOCH && m->type != FFS_CTL_MARK) return -1;
  int epoch = m->phase.epoch, phase = m->phase.mode ? FFS_PHASE_EVAL : FFS_PHASE_TRAIN;
  if (epoch < 0) return -1;
  if (m->type == FFS_CTL_MARK) return s_send_mark(s, io, epoch, phase);
  if (s->q_len == S_QUEUE) {
    ffs_error("phase queue full; dropping EPOCH %d %s", epoch, m->phase.mode ? "eval" : "train");
    return -1;
  }
  s->queue[(s->q_head + s->q_len++) % S_QUEUE] = (s_phase_t){epoch, phase};
  return 0;
}

// Feedback from the readout: per training row, its softmax prediction and the
// sample id. Kept per sample for hard negatives; malformed frames are refused.
static int s_on_frame(void *self, ffs_io_t *io, const ffs_frame_t *f, ffs_chan_t chan, int sub) {
  s_source_t *s = self;
  if (chan != FFS_CHAN_FB || f->h.kind != FFS_FRAME_FEEDBACK || f->h.rows < 1) return -1;
  if (!s->pred) return -1; // a stream keeps no per-sample predictions
  if (f->h.cols != (uint32_t)s->classes || !f->ids || f->h.rows > (uint32_t)s->max_rows) return -1;
  if (ffs_frame_copy_payload(s->fb_rows, f) < 0) return -1;
  for (uint32_t r = 0; r < f->h.rows; r++) {
    uint32_t k = ffs_frame_id(f, r);
    const float *p = s->fb_rows + (size_t)r * (size_t)s->classes;
    int ok = k < (uint32_t)s->train->n;
    for (int c = 0; ok && c < s->classes; c++) ok = p[c] >= 0.0f && p[c] <= 1.0f;
    if (ok) memcpy(s->pred + (size_t)k * (size_t)s->classes, p, sizeof(float) * (size_t)s->classes);
  }
  ffs_io_stats(io)->fb_frames++;
  return 0;
}

// ---- lifecycle ----

static void s_destroy(void **self_p) {
  s_source_t *s = *self_p;
  if (!s) return;
  ffs_dataset_destroy(&s->train);
  ffs_dataset_destroy(&s->test);
  for (int p = 0; p < S_NBUF; p++)
    free(s->x[p]), free(s->roles[p]), free(s->labels[p]), free(s->cands[p]), free(s->ids[p]);
  ffs_feed_destroy(&s->feed);
  free(s->order);
  free(s->pred), free(s->fb_rows), free(s->mask), free(s->mask_tmp);
  free(s->sx), free(s->sy), free(s->sid), free(s->past);
  free(s);
  *self_p = NULL;
}

static void *s_create(const ffs_stage_env_t *env, ffs_io_t *io, char *err, size_t errlen) {
  const ffs_topo_t *t = env->topo;
  s_source_t *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->topo = t;
  s->index = env->index;
  s->dim = t->stages[env->index].out_dim;
  s->classes = t->classes; // the loader checked that the overlay fits in dim
  s->batch = t->batch;
  s->eval_batch = t->eval_batch > 1000 ? 1000 : t->eval_batch;
  s->want_neutral = t->want_neutral;
  s->want_candidates = t->want_candidates;
  ffs_rng_seed(&s->rng, t->seed, (uint64_t)env->index);
  memcpy(&s->feed_cfg, t->stages[env->index].kind_cfg, sizeof s->feed_cfg);
  s->stream = t->stream;
  // epochs: both splits; a stream: the training split only to play it (feed
  // idx), the test split only for the test after it (train.final_test)
  if (!s->stream || s->feed_cfg.kind == FFS_FEED_IDX) {
    s->train = ffs_dataset_load(t->data_dir, "train", t->train_limit, t->classes, err, errlen);
    if (!s->train) goto fail;
  }
  if (!s->stream || t->final_test) {
    s->test = ffs_dataset_load(t->data_dir, "t10k", t->test_limit, t->classes, err, errlen);
    if (!s->test) goto fail;
  }
  const ffs_dataset_t *sets[2] = {s->train, s->test};
  for (int k = 0; k < 2; k++)
    if (sets[k] && sets[k]->dim != s->dim) {
      snprintf(err, errlen, "%s: images have %d pixels but the source's rows have %d (data.dim "
               "or the feed's shape, %s)", t->data_dir, sets[k]->dim, s->dim, t->path);
      goto fail;
    }
  int max_rows = s->max_rows = ffs_topo_max_rows(t);
  int n_train = s->train ? s->train->n : 0;
  s->order = malloc(sizeof(uint32_t) * (size_t)(n_train ? n_train : 1));
  int ok = 1;
  for (int p = 0; p < S_NBUF; p++) {
    ok &= (s->x[p] = malloc(sizeof(float) * (size_t)max_rows * (size_t)s->dim)) != NULL;
    ok &= (s->labels[p] = malloc((size_t)max_rows)) != NULL;
    ok &= (s->roles[p] = malloc((size_t)max_rows)) != NULL;
    ok &= (s->cands[p] = malloc((size_t)max_rows)) != NULL;
    ok &= (s->ids[p] = malloc(sizeof(uint32_t) * (size_t)max_rows)) != NULL;
  }
  s->hard = t->negatives == FFS_NEG_HARD;
  s->hybrid = t->negatives == FFS_NEG_HYBRID;
  s->separate = t->labels == FFS_LABELS_SEPARATE;
  s->plain = t->supervised;
  s->ticks = t->ticks;
  s->pairs = t->pairs;
  s->triples = t->triples;
  // image shape for the mask: square when dim is a square (28 x 28), else one row
  s->img_h = 1, s->img_w = s->dim;
  for (int side = 1; side * side <= s->dim; side++)
    if (side * side == s->dim) s->img_h = s->img_w = side;
  s->mask = malloc(sizeof(float) * (size_t)s->dim);
  s->mask_tmp = malloc(sizeof(float) * (size_t)s->dim);
  size_t n_pred = s->stream ? 0 : (size_t)n_train * (size_t)s->classes;
  s->pred = n_pred ? malloc(sizeof(float) * n_pred) : NULL;
  s->fb_rows = malloc(sizeof(float) * (size_t)max_rows * (size_t)s->classes);
  s->sx = malloc(sizeof(float) * (size_t)s->batch * (size_t)s->dim);
  s->sy = malloc((size_t)s->batch);
  s->sid = malloc(sizeof(uint32_t) * (size_t)s->batch);
  s->past = s->stream && s->hybrid ? malloc(sizeof(float) * S_PAST * (size_t)s->dim) : NULL;
  if (!ok || !s->order || (n_pred && !s->pred) || !s->fb_rows || !s->mask || !s->mask_tmp ||
      !s->sx || !s->sy || !s->sid || (s->stream && s->hybrid && !s->past)) {
    snprintf(err, errlen, "out of memory");
    goto fail;
  }
  for (int i = 0; i < n_train; i++) s->order[i] = (uint32_t)i;
  for (size_t i = 0; i < n_pred; i++) s->pred[i] = -1.0f; // none yet
  if (s->stream) {
    s->feed = ffs_feed_new(&s->feed_cfg, s->dim, s->classes, s->train, err, errlen);
    if (!s->feed) goto fail;
    ffs_info("source: streams feed %s, rows of %d floats", ffs_feed_kind_str(s->feed_cfg.kind),
             s->dim);
  } else {
    ffs_info("source: %d train / %d test samples of %d pixels from %s", s->train->n,
             s->test->n, s->dim, t->data_dir);
  }
  return s;
fail:;
  void *p = s;
  s_destroy(&p);
  return NULL;
}

static const char *const s_keys[] = {"name",    "kind",     "core", "host", "feed",         "input",
                                     "command", "bind",     "labels", "width",        "height",
                                     "planes",  "columns",  "header", "label_column", "window",
                                     "hop",     "overflow", "queue",  NULL};
extern const ffs_stage_ops_t ffs_source_ops;

// A source's own keys: its feed (feed.h). A live feed sets the row width.
static int s_parse(ffs_yaml_ctx_t *c, const ffs_yaml_node_t *item, const char *who,
                   ffs_stage_cfg_t *st) {
  ffs_feed_cfg_t cfg;
  if (ffs_feed_parse(c, item, who, &cfg, &st->out_dim) < 0) return -1;
  st->live = cfg.kind != FFS_FEED_IDX;
  memcpy(st->kind_cfg, &cfg, sizeof cfg);
  return 0;
}

const ffs_kind_t ffs_kind_source = {.name = "source", .role = FFS_ROLE_SOURCE, .keys = s_keys,
                                    .parse = s_parse, .light = 1, .ops = &ffs_source_ops};

const ffs_stage_ops_t ffs_source_ops = {
    .kind = "source",
    .create = s_create,
    .on_frame = s_on_frame,
    .on_control = s_on_control,
    .pump = s_pump,
    .destroy = s_destroy,
};
