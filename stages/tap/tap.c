// tap: a side stage that records a layer's activity, as it streams past,
// to .npy files numpy opens: OUT/tap/<name>.npy (rows, the layer's units),
// its normalized activity, and OUT/tap/<name>.rows.npy (rows, 3): each
// row's label, candidate label (-1 where none) and epoch. It takes a data
// edge from the ff_layer it names (`layer:`) and sends nothing; the layer
// waits for it as for any stage downstream (backpressure), so a tap never
// loses a row. Which rows: `rows: neutral` (the rows the softmax readout
// sees: neutral frames and the neutral third of triple frames) or `all`;
// `phase: eval | train | all`. A restarted tap (kill -9) writes new files
// named <name>.<incarnation>.npy: what it wrote before stays as it was.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ffs_kind.h"
#include "ffs_log.h"
#include "ffs_npy.h"
#include "ffs_stage.h"

// ---- the kind ----

enum { S_ROWS_NEUTRAL = 0, S_ROWS_ALL };
enum { S_PHASE_EVAL = 0, S_PHASE_TRAIN, S_PHASE_ALL };

typedef struct { // a tap's options, in its stage's kind_cfg
  int rows, phase;
} s_cfg_t;
_Static_assert(sizeof(s_cfg_t) <= FFS_KIND_CFG_MAX, "a tap's options fit kind_cfg");

static const char *const s_keys[] = {"name", "kind", "core", "host", "layer", "rows", "phase", NULL};
static const char *const s_rows_names[] = {"neutral", "all", NULL};
static const char *const s_phase_names[] = {"eval", "train", "all", NULL};

static int s_parse(ffs_yaml_ctx_t *c, const ffs_yaml_node_t *item, const char *who,
                   ffs_stage_cfg_t *st) {
  s_cfg_t cfg = {S_ROWS_NEUTRAL, S_PHASE_EVAL};
  const ffs_yaml_node_t *v;
  char label[96];
  snprintf(label, sizeof label, "%s: rows", who);
  if ((v = ffs_yaml_map_get(item, "rows")) && ffs_yaml_enum(c, v, label, s_rows_names, &cfg.rows) < 0)
    return -1;
  snprintf(label, sizeof label, "%s: phase", who);
  if ((v = ffs_yaml_map_get(item, "phase")) &&
      ffs_yaml_enum(c, v, label, s_phase_names, &cfg.phase) < 0)
    return -1;
  memcpy(st->kind_cfg, &cfg, sizeof cfg);
  return 0;
}

extern const ffs_stage_ops_t ffs_tap_ops;
const ffs_kind_t ffs_kind_tap = {.name = "tap", .role = FFS_ROLE_SIDE, .keys = s_keys,
                                 .parse = s_parse, .light = 1, .ops = &ffs_tap_ops};

// ---- the stage ----

typedef struct {
  s_cfg_t cfg;
  int cols;           // the layer's units
  float *x;           // (max_rows, cols) a frame's payload
  float *meta;        // (max_rows, 3) label, candidate, epoch
  ffs_npy_t *act, *rows;
} s_tap_t;

static void s_destroy(void **self_p) {
  s_tap_t *s = *self_p;
  if (!s) return;
  char err[256];
  if ((s->act && ffs_npy_close(s->act, err, sizeof err) < 0) ||
      (s->rows && ffs_npy_close(s->rows, err, sizeof err) < 0))
    ffs_error("%s", err);
  ffs_npy_destroy(&s->act), ffs_npy_destroy(&s->rows);
  free(s->x), free(s->meta), free(s);
  *self_p = NULL;
}

static void *s_create(const ffs_stage_env_t *env, ffs_io_t *io, char *err, size_t errlen) {
  (void)io;
  const ffs_topo_t *t = env->topo;
  const ffs_stage_cfg_t *me = &t->stages[env->index];
  s_tap_t *s = calloc(1, sizeof *s);
  if (!s) goto oom;
  memcpy(&s->cfg, me->kind_cfg, sizeof s->cfg);
  s->cols = me->in_dim;
  size_t rows = (size_t)ffs_topo_max_rows(t);
  s->x = malloc(sizeof(float) * rows * (size_t)s->cols);
  s->meta = malloc(sizeof(float) * rows * 3);
  if (!s->x || !s->meta) goto oom;
  char dir[FFS_PATH_MAX + 16], path[FFS_PATH_MAX + 96], inc[24] = "";
  snprintf(dir, sizeof dir, "%s/tap", env->out_dir && env->out_dir[0] ? env->out_dir : ".");
  if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
    snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
    goto fail;
  }
  uint32_t n = env->incarnations ? env->incarnations[env->index] : 0;
  if (n) snprintf(inc, sizeof inc, ".%u", n);
  snprintf(path, sizeof path, "%s/%s%s.npy", dir, me->name, inc);
  if (!(s->act = ffs_npy_new(path, (uint32_t)s->cols, err, errlen))) goto fail;
  snprintf(path, sizeof path, "%s/%s%s.rows.npy", dir, me->name, inc);
  if (!(s->rows = ffs_npy_new(path, 3, err, errlen))) goto fail;
  return s;
oom:
  snprintf(err, errlen, "out of memory");
fail:
  s_destroy((void **)&s);
  return NULL;
}

static int s_on_frame(void *self, ffs_io_t *io, const ffs_frame_t *f, ffs_chan_t chan, int sub) {
  (void)io, (void)sub;
  s_tap_t *s = self;
  if (chan != FFS_CHAN_IN) return -1;
  if (f->h.kind == FFS_FRAME_MARK) return 0;
  if (f->h.kind != FFS_FRAME_DATA || (int)f->h.cols != s->cols) return -1;
  int eval = f->h.phase == FFS_PHASE_EVAL;
  if ((s->cfg.phase == S_PHASE_EVAL && !eval) || (s->cfg.phase == S_PHASE_TRAIN && eval)) return 0;
  uint32_t r0 = 0, r1 = f->h.rows; // the rows to record
  if (s->cfg.rows == S_ROWS_NEUTRAL) { // the frame's neutral run
    r0 = ffs_frame_role_start(f, FFS_ROW_NEUTRAL);
    r1 = r0 + f->n_role[FFS_ROW_NEUTRAL];
  }
  if (r0 >= r1) return 0;
  if (ffs_frame_copy_payload(s->x, f) < 0) return -1;
  for (uint32_t r = r0; r < r1; r++) {
    float *m = s->meta + 3 * (r - r0);
    m[0] = f->labels && f->labels[r] != FFS_LABEL_NONE ? (float)f->labels[r] : -1.0f;
    m[1] = f->cands && f->cands[r] != FFS_LABEL_NONE ? (float)f->cands[r] : -1.0f;
    m[2] = (float)f->h.epoch;
  }
  char err[512];
  if (ffs_npy_append(s->act, s->x + (size_t)r0 * (size_t)s->cols, r1 - r0, err, sizeof err) < 0 ||
      ffs_npy_append(s->rows, s->meta, r1 - r0, err, sizeof err) < 0) {
    ffs_error("%s", err); // a full disk: the frame is counted as bad, the run goes on
    return -1;
  }
  return 0;
}

const ffs_stage_ops_t ffs_tap_ops = {
    .kind = "tap",
    .create = s_create,
    .on_frame = s_on_frame,
    .destroy = s_destroy,
};
