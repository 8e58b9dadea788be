// ffs_shards: the runtime side of a layer that runs as several processes
// (`shards: k`): the next stage gathers the shards' slices of a frame back
// into one frame by seq (ffs_io_gather), and the shards of a layer sum their
// per-row partial sums over the peer channel (ffs_io_allreduce). Stage kinds
// know nothing of this; a lost slice or partial sum drops that frame only.
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ffs_io_impl.h"
#include "ffs_log.h"

// ---- gathering the slices of a sharded layer ----

// Shards of the layer that sends on chan/sub: 1 = whole frames only.
int ffs_io_expected_shards(const ffs_io_t *io, ffs_chan_t chan, int sub) {
  const ffs_topo_t *t = io->env->topo;
  const ffs_stage_cfg_t *me = &t->stages[io->env->index];
  if (chan == FFS_CHAN_IN) return me->in_from >= 0 ? t->stages[me->in_from].n_shards : 1;
  if (chan == FFS_CHAN_REP) return t->stages[sub].n_shards;
  return 1;
}

// The slot gathering frame seq on chan/sub, or a fresh one. When all are
// busy, the oldest is given up: one of its slices was lost (its shard was
// restarted, or its siblings gave up on that frame) and will never come.
static s_asm_t *s_asm_slot(ffs_io_t *io, const ffs_frame_t *f, ffs_chan_t chan, int sub,
                           const char *chan_name) {
  s_asm_t *fresh = NULL, *oldest = NULL;
  for (int k = 0; k < io->n_asm; k++) {
    s_asm_t *a = &io->asm_[k];
    if (a->used && a->chan == chan && a->sub == sub && a->h.seq == f->h.seq) return a;
    if (!a->used && !fresh) fresh = a;
    if (a->used && (!oldest || a->h.seq < oldest->h.seq)) oldest = a;
  }
  if (!fresh) {
    ffs_io_bad_frame(io, chan_name, "a sharded frame never got all its slices (dropped)");
    oldest->used = 0;
    fresh = oldest;
  }
  return fresh;
}

const ffs_frame_t *ffs_io_gather(ffs_io_t *io, const ffs_frame_t *f, const ffs_frame_limits_t *lim,
                                 ffs_chan_t chan, int sub, const char *chan_name) {
  char why[160];
  int want = ffs_io_expected_shards(io, chan, sub), got = f->h.nshards > 1 ? f->h.nshards : 1;
  if (got != want) {
    snprintf(why, sizeof why, "%s of %d shard(s), expected %s of %d", got > 1 ? "a slice" : "a frame",
             got, want > 1 ? "slices" : "whole frames", want);
    ffs_io_bad_frame(io, chan_name, why);
    return NULL;
  }
  s_asm_t *a = s_asm_slot(io, f, chan, sub, chan_name);
  uint32_t rows = f->h.rows, sh = f->h.shard, stride = lim->max_cols;
  if (!a->used) {
    size_t need = (size_t)lim->max_rows * stride * 4, mr = lim->max_rows;
    if (!a->data || a->stride < stride) { // the largest frame this channel accepts
      free(a->data), free(a->roles), free(a->labels), free(a->cands), free(a->ids);
      a->data = malloc(need > 0 ? need : 1), a->stride = stride;
      a->roles = malloc(mr), a->labels = malloc(mr), a->cands = malloc(mr), a->ids = malloc(4 * mr);
    }
    if (!a->data || !a->roles || !a->labels || !a->cands || !a->ids) {
      ffs_io_bad_frame(io, chan_name, "out of memory gathering a sharded frame");
      return NULL;
    }
    a->used = 1, a->chan = chan, a->sub = sub, a->h = f->h, a->mask = 0, a->aux = 0;
    a->has_roles = f->roles != NULL, a->has_labels = f->labels != NULL;
    a->has_cands = f->cands != NULL, a->has_ids = f->ids != NULL;
    memcpy(a->n_role, f->n_role, sizeof a->n_role);
    if (f->roles) memcpy(a->roles, f->roles, rows);
    if (f->labels) memcpy(a->labels, f->labels, rows);
    if (f->cands) memcpy(a->cands, f->cands, rows);
    if (f->ids) memcpy(a->ids, f->ids, 4 * (size_t)rows);
  } else if (rows != a->h.rows || f->h.kind != a->h.kind || f->h.phase != a->h.phase ||
             f->h.epoch != a->h.epoch || memcmp(f->n_role, a->n_role, sizeof a->n_role)) {
    snprintf(why, sizeof why, "slices of frame %llu disagree on rows, kind, phase, roles or epoch",
             (unsigned long long)f->h.seq);
    ffs_io_bad_frame(io, chan_name, why);
    return NULL;
  }
  if (a->mask & (1u << sh)) {
    snprintf(why, sizeof why, "shard %u sent frame %llu twice", sh, (unsigned long long)f->h.seq);
    ffs_io_bad_frame(io, chan_name, why);
    return NULL;
  }
  for (uint32_t r = 0; r < rows && f->h.cols; r++)
    memcpy(a->data + ((size_t)r * a->stride + f->h.col0) * 4,
           f->payload + (size_t)r * f->h.cols * 4, (size_t)f->h.cols * 4);
  if (sh == 0) a->aux = f->h.aux;
  a->col0[sh] = f->h.col0, a->cols[sh] = f->h.cols;
  a->mask |= 1u << sh;
  if (a->mask != (1u << want) - 1u) return NULL;

  // complete: in col0 order, the slices must tile [0, total) without gaps
  a->used = 0;
  int order[FFS_FRAME_MAX_SHARDS];
  for (int k = 0; k < want; k++) {
    int j = k;
    for (; j > 0 && a->col0[order[j - 1]] > a->col0[k]; j--) order[j] = order[j - 1];
    order[j] = k;
  }
  uint32_t total = 0;
  for (int k = 0; k < want; k++) {
    if (a->col0[order[k]] != total) {
      snprintf(why, sizeof why, "the slices of frame %llu leave a gap or overlap at column %u",
               (unsigned long long)a->h.seq, total);
      ffs_io_bad_frame(io, chan_name, why);
      return NULL;
    }
    total += a->cols[order[k]];
  }
  for (uint32_t r = 1; r < rows && total; r++) // close up the rows
    memmove(a->data + (size_t)r * total * 4, a->data + (size_t)r * a->stride * 4,
            (size_t)total * 4);
  ffs_frame_t *whole = &io->gathered;
  *whole = (ffs_frame_t){.h = a->h};
  memcpy(whole->n_role, a->n_role, sizeof a->n_role);
  whole->roles = a->has_roles ? a->roles : NULL;
  whole->h.cols = total, whole->h.aux = a->aux;
  whole->h.shard = 0, whole->h.nshards = 0, whole->h.col0 = 0;
  whole->labels = a->has_labels ? a->labels : NULL;
  whole->cands = a->has_cands ? a->cands : NULL;
  whole->ids = a->has_ids ? a->ids : NULL;
  whole->payload = rows && total ? a->data : NULL;
  return whole;
}

// ---- the partial sums of a sharded layer ----

// Sibling s's partial sums for seq, or NULL. *ahead is set when s has
// already sent a later frame's: it lost this one, which then never comes.
static s_pend_t *s_pend_find(ffs_io_t *io, int s, uint64_t seq, int *ahead) {
  s_pend_t *hit = NULL;
  int later = 0;
  for (int j = 0; j < 2; j++) {
    s_pend_t *p = &io->pend[s][j];
    if (!p->valid) continue;
    if (p->seq == seq) hit = p;
    else if (p->seq > seq) later = 1;
  }
  if (!hit && later) *ahead = 1;
  return hit;
}

// Reads the partial sums waiting on the peer channel into io->pend.
static void s_peer_drain(ffs_io_t *io, uint64_t seq) {
  const ffs_stage_cfg_t *me = &io->env->topo->stages[io->env->index];
  ffs_frame_limits_t lim = {1, 0, (uint32_t)ffs_topo_max_rows(io->env->topo) + 2};
  for (;;) {
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    if (zmq_msg_recv(&msg, io->peer_in, ZMQ_DONTWAIT) < 0) {
      zmq_msg_close(&msg);
      return;
    }
    ffs_frame_t f;
    char why[256];
    if (ffs_frame_decode(&f, zmq_msg_data(&msg), zmq_msg_size(&msg), &lim, why, sizeof why) < 0) {
      ffs_io_bad_frame(io, "peer", why);
    } else if (f.h.kind != FFS_FRAME_PARTIAL || f.h.rows != 1 || f.h.nshards != me->n_shards ||
               f.h.shard == me->shard || f.h.stage != (uint32_t)(me->group + f.h.shard)) {
      ffs_io_bad_frame(io, "peer", "not a partial-sums frame from a sibling shard");
    } else if (f.h.seq >= seq) { // older ones are leftovers of a frame given up on
      s_pend_t *p = &io->pend[f.h.shard][0], *q = &io->pend[f.h.shard][1];
      if (p->valid && (!q->valid || q->seq < p->seq)) p = q; // replace the older
      if (ffs_frame_copy_payload(p->v, &f) < 0) ffs_io_bad_frame(io, "peer", "non-finite partial sums");
      else p->valid = 1, p->seq = f.h.seq, p->n = f.h.cols;
    }
    zmq_msg_close(&msg);
  }
}

int ffs_io_allreduce(ffs_io_t *io, uint64_t seq, float *v, int n) {
  const ffs_stage_cfg_t *me = &io->env->topo->stages[io->env->index];
  int k = me->n_shards;
  if (k <= 1) return 0;
  assert(n > 0 && n <= ffs_topo_max_rows(io->env->topo) + 2);
  ffs_frame_hdr_t h = {.kind = FFS_FRAME_PARTIAL, .seq = seq, .stage = (uint32_t)io->env->index,
                       .rows = 1, .cols = (uint32_t)n, .shard = (uint8_t)me->shard,
                       .nshards = (uint8_t)k};
  size_t len = ffs_frame_encode(io->peer_buf, ffs_frame_encoded_max(1, (uint32_t)n), &h, NULL, v);
  for (int s = 0; s < k; s++)
    if (s != me->shard && (!len || ffs_io_send_blocking(io, io->peer_out[s], io->peer_buf, len) < 0))
      return -1;
  double t0 = ffs_now();
  s_pend_t *got[FFS_MAX_SHARDS] = {0};
  for (;;) {
    int missing = 0, lost = 0;
    for (int s = 0; s < k; s++)
      if (s != me->shard && !(got[s] = s_pend_find(io, s, seq, &lost))) missing++;
    if (!missing) break;
    if (lost || ffs_io_stopping(io) || ffs_now() - t0 > S_PEER_WAIT_S) {
      ffs_warn("frame %llu: %s; the frame is dropped", (unsigned long long)seq,
               lost ? "a sibling shard lost it" : "no partial sums from a sibling shard");
      io->stats.blocked_s += ffs_now() - t0;
      return -1;
    }
    // control waits in its socket until the frame is done: the loop, not
    // a frame handler, handles it (a STOP is then at most S_PEER_WAIT_S late;
    // a stop by signal is seen here at once)
    zmq_pollitem_t it = {io->peer_in, 0, ZMQ_POLLIN, 0};
    zmq_poll(&it, 1, 100);
    if (it.revents & ZMQ_POLLIN) s_peer_drain(io, seq);
    ffs_io_tick(io, 0); // alive, waiting on a sibling
  }
  io->stats.blocked_s += ffs_now() - t0; // waiting on siblings is not work
  for (int s = 0; s < k; s++)
    if (got[s] && got[s]->n != (uint32_t)n) { // same frame, so the same rows
      ffs_warn("frame %llu: a sibling shard sent %u partial sums, expected %d; the frame is "
               "dropped", (unsigned long long)seq, got[s]->n, n);
      got[s]->valid = 0;
      return -1;
    }
  // summed in shard order, so every shard gets bit-identical totals
  for (int i = 0; i < n; i++) {
    float acc = 0.0f;
    for (int s = 0; s < k; s++) acc += s == me->shard ? v[i] : got[s]->v[i];
    io->peer_sum[i] = acc;
  }
  memcpy(v, io->peer_sum, sizeof(float) * (size_t)n);
  for (int s = 0; s < k; s++)
    if (got[s]) got[s]->valid = 0;
  return 0;
}
