// ffs_plan: chooses shards and the frame form for the cores a run may use.
//
// The model: a layer's work per sample is in_dim x units multiply-adds; a
// layer in k shards is k pieces of 1/k of that, each plus a fixed cost for
// the partial sums and the slices its neighbours gather (S_OVERHEAD of the
// heaviest layer's work at batch 100: a cost per frame, so at batch b it is
// 100 / b times that, and at batch 1 sharding never pays); light stages
// (source, readout, side stages) weigh a twentieth of the heaviest piece, as
// in ffs_pin_plan. Pieces go onto cores heaviest first, each to the least
// loaded core (ffs_pin_plan's placement), and the run is as fast as its
// busiest core. The planner tries every assignment of shards with at most
// layers + cores layer processes and keeps the fewest shards whose busiest
// core is within S_MIN_GAIN of the best (with more than S_MAX_TRIES
// assignments to try, a greedy path instead).
#include "ffs_plan.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ffs_kind.h"

#define S_OVERHEAD 0.04 // a shard's fixed cost per frame, as a share of the heaviest
                        // layer's work on a frame of 100 rows
#define S_MIN_GAIN 0.02 // more shards must lower the busiest core's load this much
#define S_MAX_TRIES 200000 // assignments the exhaustive search may try; beyond, a greedy path

typedef struct {
  int stage;    // index in the loaded topology
  double work;  // in_dim x units
  int can;      // may be sharded by the planner
  int max;      // most shards it may take
} s_layer_t;

// The busiest core's load with layer l in k[l] pieces, n_light light stages.
static double s_makespan(const s_layer_t *L, const int *k, int n, int n_light, int ncores,
                         double ovh) {
  double piece[FFS_MAX_STAGES + FFS_MAX_SHARDS * FFS_MAX_STAGES], load[FFS_MAX_STAGES * 2] = {0};
  int m = 0;
  double top = 0.0;
  for (int l = 0; l < n; l++)
    for (int s = 0; s < k[l]; s++) {
      piece[m] = L[l].work / k[l] + (k[l] > 1 ? ovh : 0.0);
      top = piece[m] > top ? piece[m] : top;
      m++;
    }
  for (int s = 0; s < n_light; s++) piece[m++] = top / 20.0;
  int nc = ncores < FFS_MAX_STAGES * 2 ? ncores : FFS_MAX_STAGES * 2;
  for (int placed = 0; placed < m; placed++) { // heaviest first, onto the least loaded core
    int next = placed;
    for (int j = placed + 1; j < m; j++)
      if (piece[j] > piece[next]) next = j;
    double w = piece[next];
    piece[next] = piece[placed], piece[placed] = w;
    int best = 0;
    for (int c = 1; c < nc; c++)
      if (load[c] < load[best]) best = c;
    load[best] += w;
  }
  double span = 0.0;
  for (int c = 0; c < nc; c++) span = load[c] > span ? load[c] : span;
  return span;
}

// Every assignment of shards to the layers that may take them, with at most
// budget layer processes in all, is tried twice: first for the busiest
// core's least load (best), then for the fewest shards among those within
// S_MIN_GAIN of it (a shard that gains less is not worth its process).
typedef struct {
  const s_layer_t *L;
  int n, n_light, ncores;
  double ovh; // a shard's fixed cost (s_makespan)
  int budget;
  int pass;        // 0: find best; 1: pick keep
  double best;     // the least busiest-core load
  int keep[FFS_MAX_STAGES];
  int keep_total;  // 0 = none picked yet
  double keep_span;
} s_search_t;

static void s_consider(s_search_t *x, const int *k, int total) {
  double s = s_makespan(x->L, k, x->n, x->n_light, x->ncores, x->ovh);
  if (x->pass == 0) {
    if (s < x->best) x->best = s;
    return;
  }
  if (s > x->best * (1.0 + S_MIN_GAIN)) return;
  if (!x->keep_total || total < x->keep_total || (total == x->keep_total && s < x->keep_span)) {
    memcpy(x->keep, k, sizeof(int) * (size_t)x->n);
    x->keep_total = total, x->keep_span = s;
  }
}

static void s_search(s_search_t *x, int *k, int l, int total) {
  if (l == x->n) {
    s_consider(x, k, total);
    return;
  }
  if (!x->L[l].can) {
    s_search(x, k, l + 1, total + k[l]);
    return;
  }
  int left = x->budget - total - (x->n - l - 1); // room for the layers after this one
  for (int s = 1; s <= x->L[l].max && s <= left; s++) {
    k[l] = s;
    s_search(x, k, l + 1, total + s);
  }
  k[l] = 1;
}

// How many assignments s_search would try (counted by their totals).
static double s_count(const s_layer_t *L, const int *k, int n, int budget) {
  double ways[FFS_MAX_STAGES + 1] = {1.0}; // ways[t]: assignments so far with t shards in all
  for (int l = 0; l < n; l++) {
    double next[FFS_MAX_STAGES + 1] = {0};
    int lo = L[l].can ? 1 : k[l], hi = L[l].can ? L[l].max : k[l];
    for (int t = 0; t <= budget; t++)
      for (int s = lo; ways[t] > 0 && s <= hi && t + s <= budget; s++) next[t + s] += ways[t];
    memcpy(ways, next, sizeof ways);
  }
  double all = 0.0;
  for (int t = 0; t <= budget; t++) all += ways[t];
  return all;
}

// Too many layers for every assignment: one shard at a time to whichever
// layer lowers the busiest core's load most (or raises it least), up to the
// budget; of the path's points, the first within S_MIN_GAIN of its best.
static void s_greedy(const s_search_t *x, int *k) {
  int path[FFS_MAX_STAGES + 1][FFS_MAX_STAGES], steps = 0, total = 0;
  double span[FFS_MAX_STAGES + 1], best = 1e300;
  for (int l = 0; l < x->n; l++) total += k[l];
  for (;;) {
    memcpy(path[steps], k, sizeof(int) * (size_t)x->n);
    span[steps] = s_makespan(x->L, k, x->n, x->n_light, x->ncores, x->ovh);
    best = span[steps] < best ? span[steps] : best;
    if (steps == FFS_MAX_STAGES || total >= x->budget) break;
    int pick = -1;
    double pick_span = 1e300;
    for (int l = 0; l < x->n; l++) {
      if (!x->L[l].can || k[l] >= x->L[l].max) continue;
      k[l]++;
      double sp = s_makespan(x->L, k, x->n, x->n_light, x->ncores, x->ovh);
      k[l]--;
      if (sp < pick_span) pick = l, pick_span = sp;
    }
    if (pick < 0) break;
    k[pick]++, total++, steps++;
  }
  for (int p = 0; p <= steps; p++)
    if (span[p] <= best * (1.0 + S_MIN_GAIN)) {
      memcpy(k, path[p], sizeof(int) * (size_t)x->n);
      return;
    }
}

// 1 when stage i of t is an end of a feedback edge (a sharded layer cannot be).
static int s_on_feedback(const ffs_topo_t *t, int i) {
  for (int e = 0; e < t->n_feedback; e++)
    if (t->feedback[e].from == i || t->feedback[e].to == i) return 1;
  return 0;
}

static void s_add_set(ffs_plan_t *p, const char *key, const char *value) {
  if (p->n_sets == FFS_PLAN_MAX_SETS) return;
  snprintf(p->sets[p->n_sets++], FFS_PLAN_SET_LEN, "%s=%s", key, value);
}

// Gives shards to the layers at `shards: auto`; fills L and the plan's layers.
static void s_shards(const ffs_topo_t *t, int ncores, ffs_plan_t *p) {
  s_layer_t L[FFS_MAX_STAGES];
  int k[FFS_MAX_STAGES], n = 0, n_light = 0, others = 0; // others: stages that are no layer
  double heaviest = 1.0, total = 0.0;
  int shardable_form = t->ticks == 1 && t->labels == FFS_LABELS_OVERLAY;
  for (int i = 0; i < t->n_stages; i++) {
    const ffs_stage_cfg_t *st = &t->stages[i];
    if (st->kind != FFS_STAGE_FF_LAYER) {
      n_light += ffs_kind_of(st->kind)->light != 0;
      others++;
      continue;
    }
    if (st->shard > 0) continue; // a layer the file sharded: counted once, at its shard 0
    s_layer_t *l = &L[n];
    l->stage = i;
    l->work = (double)st->in_dim * st->out_dim;
    l->can = st->shards_auto && shardable_form && !s_on_feedback(t, i) &&
             strlen(st->name) + 3 < FFS_NAME_MAX;
    l->max = st->out_dim < FFS_MAX_SHARDS ? st->out_dim : FFS_MAX_SHARDS;
    if (l->max > ncores) l->max = ncores;
    k[n] = st->n_shards;
    heaviest = l->work > heaviest ? l->work : heaviest;
    total += l->work;
    n++;
  }
  int budget = n + ncores; // layer processes at most: the rest cannot run at once anyway
  if (budget > FFS_MAX_STAGES - others) budget = FFS_MAX_STAGES - others;
  double ovh = S_OVERHEAD * heaviest * 100.0 / (t->batch > 0 ? t->batch : 1);
  s_search_t x = {.L = L, .n = n, .n_light = n_light, .ncores = ncores, .ovh = ovh,
                  .budget = budget, .best = 1e300};
  int cur[FFS_MAX_STAGES];
  if (s_count(L, k, n, budget) > S_MAX_TRIES) {
    s_greedy(&x, k);
  } else {
    for (x.pass = 0; x.pass < 2; x.pass++) {
      memcpy(cur, k, sizeof(int) * (size_t)n);
      s_search(&x, cur, 0, 0);
    }
    if (x.keep_total) memcpy(k, x.keep, sizeof(int) * (size_t)n);
  }
  double span = s_makespan(L, k, n, n_light, ncores, ovh);
  p->n_layers = n;
  for (int l = 0; l < n; l++) {
    const ffs_stage_cfg_t *st = &t->stages[L[l].stage];
    snprintf(p->layer[l], FFS_NAME_MAX, "%s", st->layer_name);
    p->shards[l] = k[l];
    p->chosen[l] = L[l].can;
    char key[FFS_NAME_MAX + 8], value[16];
    snprintf(key, sizeof key, "%s.shards", st->layer_name);
    snprintf(value, sizeof value, "%d", k[l]);
    if (L[l].can && k[l] > 1) s_add_set(p, key, value);
  }
  double even = (total + n_light * heaviest / 20.0) / ncores;
  p->balance = even > 0 ? span / even : 1.0;
}

void ffs_plan_make(const ffs_topo_t *t, int ncores, ffs_plan_t *p) {
  memset(p, 0, sizeof *p);
  p->cores = ncores < 1 ? 1 : ncores;
  p->form = t->triples ? FFS_FORM_TRIPLES : t->pairs ? FFS_FORM_PAIRS : FFS_FORM_ROLES;
  if (t->form_auto && t->ticks == 1) {
    // one frame per batch where a softmax readout takes neutral rows, the
    // pair otherwise: fewer, larger frames, one step on both polarities. At
    // batch 1 a 3-row forward is OpenBLAS's slow path (docs/PERFORMANCE.md):
    // pairs there
    p->form_chosen = 1;
    p->form = t->want_neutral && t->batch > 1 ? FFS_FORM_TRIPLES : FFS_FORM_PAIRS;
    s_add_set(p, p->form == FFS_FORM_TRIPLES ? "train.triples" : "train.pairs", "true");
  }
  s_shards(t, p->cores, p);
}

const char *ffs_plan_str(const ffs_plan_t *p, char *buf, size_t cap) {
  static const char *const forms[] = {"a frame per role", "pair frames", "triple frames"};
  size_t n =
      (size_t)snprintf(buf, cap, "planned for %d core%s:", p->cores, p->cores > 1 ? "s" : "");
  if (p->n_layers == 0) { // dp_layers: one process each, one frame per batch
    snprintf(buf + n, cap - n, " no ff_layer to shard, no frame form to choose");
    return buf;
  }
  for (int l = 0; l < p->n_layers && n < cap; l++)
    n += (size_t)snprintf(buf + n, cap - n, "%s %s %d shard%s%s", l ? "," : "", p->layer[l],
                          p->shards[l], p->shards[l] > 1 ? "s" : "", p->chosen[l] ? " (auto)" : "");
  if (n < cap)
    n += (size_t)snprintf(buf + n, cap - n, "; %s%s; busiest core %.2f x even", forms[p->form],
                          p->form_chosen ? " (auto)" : "", p->balance);
  return buf;
}

int ffs_plan_save(const ffs_plan_t *p, const char *path) {
  FILE *f = fopen(path, "w");
  if (!f) return -1;
  for (int k = 0; k < p->n_sets; k++) fprintf(f, "%s\n", p->sets[k]);
  return fclose(f) == 0 ? 0 : -1;
}

int ffs_plan_load_sets(ffs_plan_t *p, const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  char line[256];
  int rc = 0;
  p->n_sets = 0;
  while (rc == 0 && fgets(line, sizeof line, f)) {
    size_t n = strcspn(line, "\n");
    line[n] = 0;
    if (!n) continue;
    if (n >= FFS_PLAN_SET_LEN || p->n_sets == FFS_PLAN_MAX_SETS || !strchr(line, '=')) {
      errno = EINVAL; // not a file this planner wrote
      rc = -1;
      break;
    }
    memcpy(p->sets[p->n_sets++], line, n + 1);
  }
  fclose(f);
  return rc;
}
