// ffs_results: the progress line, the epoch lines, metrics.csv and
// summary.json of `ffstream run` (see ffs_results.h). Pure formatting over
// figures the launcher hands in; it never talks to a stage. Every format
// here is parsed by tests/check_e2e.c and bench/*.sh|py.
#include "ffs_results.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ffs_log.h"
#include "ffs_pin.h"
#include "ffs_plan.h"
#include "ffs_stage.h" // ffs_now, ffs_stage_kind_str

typedef struct {
  int epoch;
  double train_s, samples_per_s;
  double energy, softmax; // -1 = not measured
  int n_layers;
  char layer_name[FFS_MAX_STAGES][FFS_NAME_MAX];
  double layer_energy[FFS_MAX_STAGES], layer_softmax[FFS_MAX_STAGES];
  double layer_cosine[FFS_MAX_STAGES]; // mean pairwise cosine (-2: not measured)
  double wall_s;
} s_result_t;

// train.mode: stream: the source's and the readout's counters.
typedef struct {
  double sent, dropped, refused, scored, errors, window, published;
} s_stream_t;

struct ffs_results {
  const ffs_topo_t *t;
  char out_dir[FFS_PATH_MAX];
  const char *mode;
  int quiet, tty;
  double t0, last_progress;
  FILE *metrics;
  int metrics_header; // metrics.csv still needs its header line
  s_result_t res;     // the latest evaluation's result (when have_res)
  int have_res;
  const ffs_plan_t *plan; // NULL = none
  double last_stream_row; // train.mode: stream: when metrics.csv last got a row
  char input_error[512];  // ... the input's error that ended it early ("" none)
  s_stream_t stream;      // ... its figures as summary.json gave them
  int have_stream;
};

void ffs_results_set_input_error(ffs_results_t *self, const char *why) {
  snprintf(self->input_error, sizeof self->input_error, "%s", why);
}

void ffs_results_set_plan(ffs_results_t *self, const ffs_plan_t *plan) { self->plan = plan; }

// "plan": the cores planned for, the frame form and each layer's shards,
// with what the planner chose (auto) and the line the run printed.
static void s_json_plan(FILE *f, const ffs_plan_t *p) {
  static const char *const forms[] = {"roles", "pairs", "triples"};
  char line[512];
  fprintf(f, "  \"plan\": {\"cores\": %d, \"form\": \"%s\", \"form_auto\": %s, \"kept\": %s, "
             "\"busiest_core_x_even\": %.3f, \"shards\": {",
          p->cores, forms[p->form], p->form_chosen ? "true" : "false", p->kept ? "true" : "false",
          p->balance);
  for (int l = 0; l < p->n_layers; l++)
    fprintf(f, "%s\"%s\": {\"shards\": %d, \"auto\": %s}", l ? ", " : "", p->layer[l],
            p->shards[l], p->chosen[l] ? "true" : "false");
  fprintf(f, "}, \"line\": \"%s\"},\n", ffs_plan_str(p, line, sizeof line));
}

ffs_results_t *ffs_results_new(const ffs_topo_t *t, const char *out_dir, int resume,
                               const char *mode, int quiet) {
  assert(t && out_dir && mode);
  ffs_results_t *self = calloc(1, sizeof *self);
  if (!self) return NULL;
  self->t = t, self->mode = mode, self->quiet = quiet;
  self->tty = isatty(STDOUT_FILENO) && !quiet;
  snprintf(self->out_dir, sizeof self->out_dir, "%s", out_dir);
  char path[FFS_PATH_MAX + 32];
  snprintf(path, sizeof path, "%s/metrics.csv", out_dir);
  self->metrics_header = !(resume && access(path, F_OK) == 0);
  self->metrics = fopen(path, resume ? "a" : "w");
  return self;
}

void ffs_results_destroy(ffs_results_t **self_p) {
  assert(self_p);
  ffs_results_t *self = *self_p;
  if (!self) return;
  if (self->metrics) fclose(self->metrics);
  free(self);
  *self_p = NULL;
}

void ffs_results_start(ffs_results_t *self, double t0) { self->t0 = t0; }

// ---- figures ----

// The run's headline test error: the readout's primary inference when it
// was measured, else the other one.
static double s_primary(const ffs_results_t *self, const s_result_t *x) {
  const ffs_stage_cfg_t *ro = &self->t->stages[self->t->readout];
  if (ro->primary == FFS_INFER_SOFTMAX && x->softmax >= 0) return x->softmax;
  return x->energy >= 0 ? x->energy : x->softmax;
}

// "1.23%", or "-" for a figure that was not measured (negative).
static const char *s_pct(char out[16], double v) {
  if (v < 0) snprintf(out, 16, "-");
  else snprintf(out, 16, "%.2f%%", 100.0 * v);
  return out;
}

// Fraction of wall time a stage computed (waiting on backpressure excluded).
static double s_utilization(const ffs_ctl_stats_t *s) {
  return s->wall > 0 ? (s->busy - s->blocked) / s->wall : 0.0;
}

// ---- per epoch ----

static void s_metrics_row(ffs_results_t *self, const s_result_t *x) {
  FILE *f = self->metrics;
  if (!f || self->t->stream) return; // a stream's rows are its own (s_stream_row)
  if (self->metrics_header) {
    self->metrics_header = 0;
    fprintf(f, "epoch,wall_s,train_s,train_samples_per_s,test_error,test_error_energy,test_error_softmax");
    for (int i = 0; i < x->n_layers; i++)
      fprintf(f, ",energy_%s,softmax_%s", x->layer_name[i], x->layer_name[i]);
    fputc('\n', f);
  }
  fprintf(f, "%d,%.3f,%.3f,%.1f,%.6f,%.6f,%.6f", x->epoch + 1, x->wall_s, x->train_s,
          x->samples_per_s, s_primary(self, x), x->energy, x->softmax);
  for (int i = 0; i < x->n_layers; i++)
    fprintf(f, ",%.6f,%.6f", x->layer_energy[i], x->layer_softmax[i]);
  fputc('\n', f);
  fflush(f);
}

static void s_print_epoch(const ffs_results_t *self, const s_result_t *x) {
  if (self->tty) fputs("\r\033[K", stdout);
  char e[16], m[16], p[16];
  printf("epoch %d/%d: test error %s (energy %s, softmax %s), %.0f train samples/s, %.1f s\n",
         x->epoch + 1, self->t->epochs, s_pct(p, s_primary(self, x)), s_pct(e, x->energy),
         s_pct(m, x->softmax), x->samples_per_s, x->wall_s);
  printf("    per layer (energy/softmax):");
  for (int k = 0; k < x->n_layers; k++)
    printf(" %s %s/%s", x->layer_name[k], s_pct(e, x->layer_energy[k]),
           s_pct(m, x->layer_softmax[k]));
  for (int k = 0, shown = 0; k < x->n_layers; k++)
    if (x->layer_cosine[k] >= -1.0)
      printf("%s %s %.3f", shown++ ? "," : "; pair cosine", x->layer_name[k], x->layer_cosine[k]);
  printf("\n");
  fflush(stdout);
}

void ffs_results_on_result(ffs_results_t *self, const ffs_ctl_msg_t *m, double train_s,
                           long train_samples) {
  assert(m->type == FFS_CTL_RESULT);
  s_result_t *x = &self->res;
  self->have_res = 1;
  memset(x, 0, sizeof *x);
  x->epoch = m->result.epoch;
  x->energy = m->result.energy;
  x->softmax = m->result.softmax;
  x->wall_s = ffs_now() - self->t0;
  x->train_s = train_s;
  x->samples_per_s = train_s > 0 ? (double)train_samples / train_s : 0;
  for (int k = 0; k < m->result.n_layers && k < FFS_MAX_STAGES; k++) {
    const ffs_ctl_layer_t *L = &m->result.layers[k];
    snprintf(x->layer_name[k], sizeof x->layer_name[k], "%s", L->name);
    x->layer_energy[k] = L->energy, x->layer_softmax[k] = L->softmax;
    x->layer_cosine[k] = L->cosine;
    x->n_layers++;
  }
  s_metrics_row(self, x);
  s_print_epoch(self, x);
}

// ---- progress ----


static s_stream_t s_stream_figures(const ffs_results_t *self, const ffs_results_stage_t *st) {
  const ffs_ctl_stats_t *src = &st[0].stats, *ro = &st[self->t->readout].stats;
  int have = ro->pn > 0;
  return (s_stream_t){(double)src->samples, (double)src->drop, (double)src->skip,
                      (double)ro->pn, (double)ro->pe, have ? ro->pw : -1.0, (double)ro->pub};
}

// A metrics.csv row a second while a stream plays: its rolling accuracy.
static void s_stream_row(ffs_results_t *self, const ffs_results_stage_t *st, double now) {
  FILE *f = self->metrics;
  if (!f || now - self->last_stream_row < 1.0) return;
  self->last_stream_row = now;
  if (self->metrics_header) {
    self->metrics_header = 0;
    fprintf(f, "wall_s,samples,samples_per_s,scored,prequential_accuracy,window_accuracy,"
               "dropped,refused,published\n");
  }
  s_stream_t x = s_stream_figures(self, st);
  double el = now - self->t0;
  fprintf(f, "%.3f,%.0f,%.1f,%.0f,%.6f,%.6f,%.0f,%.0f,%.0f\n", el, x.sent, el > 0 ? x.sent / el : 0,
          x.scored, x.scored > 0 ? 1.0 - x.errors / x.scored : -1.0, x.window, x.dropped,
          x.refused, x.published);
  fflush(f);
}

static void s_stream_progress(ffs_results_t *self, const ffs_results_stage_t *st, double now) {
  s_stream_t x = s_stream_figures(self, st);
  double el = now - self->t0;
  char line[512];
  int n = snprintf(line, sizeof line, "stream | %.0f samples, %.0f/s", x.sent,
                   el > 0 ? x.sent / el : 0.0);
  if (x.scored > 0)
    n += snprintf(line + n, sizeof line - (size_t)n,
                  " | prequential %.2f%% (last %d: %.2f%%)", 100 * (1 - x.errors / x.scored),
                  self->t->window, 100 * x.window);
  snprintf(line + n, sizeof line - (size_t)n, " | dropped %.0f | refused %.0f", x.dropped,
           x.refused);
  if (self->tty) printf("\r\033[K%s", line);
  else printf("%s\n", line);
  fflush(stdout);
}

void ffs_results_progress(ffs_results_t *self, const ffs_results_stage_t *st, int last_epoch_done) {
  double now = ffs_now();
  if (self->t->stream) s_stream_row(self, st, now);
  if (!self->quiet && self->t->stream && now - self->last_progress >= (self->tty ? 0.5 : 10.0)) {
    self->last_progress = now;
    s_stream_progress(self, st, now);
    return;
  }
  if (self->quiet || now - self->last_progress < (self->tty ? 0.5 : 10.0)) return;
  self->last_progress = now;
  const ffs_topo_t *t = self->t;
  int last_layer = t->readout - 1; // (a shard of) the last ff_layer
  double done = (double)st[last_layer].stats.samples / 2.0; // positive + negative rows
  double elapsed = now - self->t0;
  char line[1024];
  int n = snprintf(line, sizeof line, "epoch %d/%d | %.0f samples/s | util", last_epoch_done + 2 > t->epochs ? t->epochs : last_epoch_done + 2,
                   t->epochs, elapsed > 0 ? done / elapsed : 0.0);
  for (int i = 0; i < t->n_stages && n < (int)sizeof line - 64; i++) {
    double u = s_utilization(&st[i].stats);
    n += snprintf(line + n, sizeof line - (size_t)n, " %s %.0f%%", t->stages[i].name, 100 * u);
  }
  n += snprintf(line + n, sizeof line - (size_t)n, " | g+ %.0f g- %.0f (%s)", st[1].stats.gpos,
                st[1].stats.gneg, t->stages[1].name);
  if (self->have_res)
    snprintf(line + n, sizeof line - (size_t)n, " | last test error %.2f%%",
             100 * s_primary(self, &self->res));
  if (self->tty) printf("\r\033[K%s", line);
  else printf("%s\n", line);
  fflush(stdout);
}

void ffs_results_end_progress(ffs_results_t *self) {
  if (self->tty) fputs("\r\033[K", stdout);
}

// ---- summary.json ----

static void s_json_num(FILE *f, double v) {
  if (v < 0) fputs("null", f);
  else fprintf(f, "%.6g", v);
}

static void s_json_latency(FILE *f, const ffs_ctl_stats_t *ro) {
  // per phase: the readout's latest figures (null: none)
  const double lat[2][4] = {{ro->l50, ro->l99, ro->h50, (double)ro->ln},
                            {ro->e50, ro->e99, ro->eh50, (double)ro->en}};
  const char *phase[2] = {"train", "eval"}, *what[3] = {"p50_us", "p99_us", "hop_p50_us"};
  fputs("  \"latency\": {", f);
  for (int m = 0; m < 2; m++) {
    int have = lat[m][3] > 0;
    fprintf(f, "%s\"%s\": {", m ? ", " : "", phase[m]);
    for (int k = 0; k < 3; k++) {
      fprintf(f, "%s\"%s\": ", k ? ", " : "", what[k]);
      s_json_num(f, have ? lat[m][k] : -1);
    }
    fprintf(f, ", \"frames\": %.0f}", have ? lat[m][3] : 0.0);
  }
  fputs("},\n", f);
}

// s as a JSON string (quotes, backslashes and control characters escaped).
static void s_json_str(FILE *f, const char *s) {
  fputc('"', f);
  for (; *s; s++) {
    unsigned char ch = (unsigned char)*s;
    if (ch == '"' || ch == '\\') fprintf(f, "\\%c", ch);
    else if (ch < 0x20) fprintf(f, "\\u%04x", ch);
    else fputc(ch, f);
  }
  fputc('"', f);
}

static void s_json_stages(FILE *f, const ffs_topo_t *t, const ffs_results_stage_t *st) {
  fputs("  \"stages\": [\n", f);
  for (int i = 0; i < t->n_stages; i++) {
    const ffs_results_stage_t *s = &st[i];
    const ffs_ctl_stats_t *c = &s->stats;
    fprintf(f,
            "    {\"name\": \"%s\", \"kind\": \"%s\", \"pid\": %d, \"core\": %d, \"frames\": %.0f, "
            "\"bad_frames\": %.0f, \"utilization\": %.4f, \"cpu_s\": %.3f, \"feedback_received\": %.0f, "
            "\"feedback_sent\": %.0f, \"feedback_dropped\": %.0f, \"topdown_stale\": %.0f, "
            "\"topdown_stale_ticks\": %.0f, \"shm_frames\": %.0f, \"blas\": \"%s\", "
            "\"restarts\": %d, \"peers_refused\": %.0f, \"stash_max_frames\": %.0f, "
            "\"stash_bytes\": %.0f, \"stash_expired\": %.0f, \"feedback_unknown\": %.0f, "
            "\"host\": ",
            t->stages[i].name, ffs_stage_kind_str(t->stages[i].kind), s->pid, s->core,
            (double)c->frames, (double)c->bad, s_utilization(c), c->cpu < 0 ? 0 : c->cpu,
            (double)c->fbr, (double)c->fbs, (double)c->fbd, (double)c->tds, (double)c->tdk,
            (double)c->shm, s->blas, s->restarts, (double)c->ref, (double)c->stk,
            (double)c->stb, (double)c->stx, (double)c->fbu);
    s_json_str(f, s->host);
    fprintf(f, "}%s\n", i + 1 < t->n_stages ? "," : "");
  }
  fputs("  ]\n}\n", f);
}

// "stream": what played and how well it was predicted before it was learned
// (the windows from the readout's prequential.csv).
static void s_json_stream(ffs_results_t *self, FILE *f, const ffs_results_stage_t *st) {
  s_stream_t x = s_stream_figures(self, st);
  self->stream = x, self->have_stream = 1; // for the last line printed
  const ffs_ctl_stats_t *ro = &st[self->t->readout].stats;
  fprintf(f, "  \"stream\": {\"samples\": %.0f, \"scored\": %.0f, \"prequential_accuracy\": ",
          x.sent, x.scored);
  s_json_num(f, x.scored > 0 ? 1.0 - x.errors / x.scored : -1);
  fprintf(f, ", \"window\": %d, \"window_accuracy\": ", self->t->window);
  s_json_num(f, x.window);
  fprintf(f, ", \"dropped\": %.0f, \"refused\": %.0f, \"published\": %.0f, ", x.dropped,
          x.refused, x.published);
  fputs("\"latency_p50_us\": ", f), s_json_num(f, ro->ln ? ro->l50 : -1);
  fputs(", \"latency_p99_us\": ", f), s_json_num(f, ro->ln ? ro->l99 : -1);
  fputs(", \"input_error\": ", f);
  if (self->input_error[0]) s_json_str(f, self->input_error);
  else fputs("null", f);
  fputs(", \"windows\": [", f);
  char path[FFS_PATH_MAX + 32], line[128];
  snprintf(path, sizeof path, "%s/prequential.csv", self->out_dir);
  FILE *in = fopen(path, "r");
  int n = 0;
  double samples, acc;
  while (in && fgets(line, sizeof line, in))
    if (sscanf(line, "%lf,%lf", &samples, &acc) == 2)
      fprintf(f, "%s[%.0f, %.6f]", n++ ? ", " : "", samples, acc);
  if (in) fclose(in);
  fputs("]},\n", f);
}

void ffs_results_write_sets(const char *out_dir, const char *const *sets, int n_sets) {
  char path[FFS_PATH_MAX + 16];
  snprintf(path, sizeof path, "%s/sets", out_dir);
  FILE *f = fopen(path, "w");
  int ok = f != NULL;
  for (int k = 0; ok && k < n_sets; k++) ok = fprintf(f, "%s\n", sets[k]) > 0;
  if (f && fclose(f) != 0) ok = 0;
  if (!ok)
    ffs_warn("cannot write %s: %s (`ffstream saliency` on this run will need its --set list "
             "again)", path, strerror(errno));
}

void ffs_results_write_summary(ffs_results_t *self, const ffs_results_stage_t *st, int rc) {
  char path[FFS_PATH_MAX + 32];
  snprintf(path, sizeof path, "%s/summary.json", self->out_dir);
  FILE *f = fopen(path, "w");
  if (!f) {
    ffs_error("cannot write %s: %s", path, strerror(errno));
    return;
  }
  const ffs_topo_t *t = self->t;
  const s_result_t *x = self->have_res ? &self->res : NULL;
  fprintf(f, "{\n  \"topology\": \"%s\",\n  \"name\": \"%s\",\n  \"status\": \"%s\",\n",
          t->path, t->name, rc == 0 ? "ok" : rc == 130 ? "interrupted" : "failed");
  fprintf(f, "  \"mode\": \"%s\",\n  \"cores\": %d,\n", self->mode, ffs_pin_ncores());
  if (self->plan) s_json_plan(f, self->plan);
  fputs("  \"test_error\": ", f), s_json_num(f, x ? s_primary(self, x) : -1);
  fputs(",\n  \"test_error_energy\": ", f), s_json_num(f, x ? x->energy : -1);
  fputs(",\n  \"test_error_softmax\": ", f), s_json_num(f, x ? x->softmax : -1);
  fputs(",\n  \"test_error_per_layer\": {", f);
  for (int i = 0; x && i < x->n_layers; i++) {
    fprintf(f, "%s\"%s\": {\"energy\": ", i ? ", " : "", x->layer_name[i]);
    s_json_num(f, x->layer_energy[i]);
    fputs(", \"softmax\": ", f);
    s_json_num(f, x->layer_softmax[i]);
    if (x->layer_cosine[i] >= -1.0) fprintf(f, ", \"pair_cosine\": %.4f", x->layer_cosine[i]);
    fputc('}', f);
  }
  fprintf(f, "},\n  \"train_samples_per_s\": %.1f,\n", x ? x->samples_per_s : 0.0);
  fprintf(f, "  \"epochs\": %d,\n  \"epochs_completed\": %d,\n  \"wall_s\": %.3f,\n", t->epochs,
          x ? x->epoch + 1 : 0, ffs_now() - self->t0);
  s_json_latency(f, &st[t->readout].stats);
  if (t->stream) s_json_stream(self, f, st);
  s_json_stages(f, t, st);
  fclose(f);
}

void ffs_results_print_final(const ffs_results_t *self) {
  if (self->have_res) {
    const s_result_t *x = &self->res;
    char e[16], m[16], p[16];
    printf("result: test error %s after %d epochs (energy %s, softmax %s), %.0f train "
           "samples/s, %.1f s wall\n",
           s_pct(p, s_primary(self, x)), x->epoch + 1, s_pct(e, x->energy), s_pct(m, x->softmax),
           x->samples_per_s, ffs_now() - self->t0);
  }
  if (self->t->stream && self->have_stream) {
    const s_stream_t *x = &self->stream;
    printf("stream: %.0f samples, prequential accuracy %.2f%% over %.0f labelled (last %d: "
           "%.2f%%), %.0f dropped, %.0f refused, %.0f predictions published\n",
           x->sent, x->scored > 0 ? 100 * (1 - x->errors / x->scored) : 0.0, x->scored,
           self->t->window, 100 * x->window, x->dropped, x->refused, x->published);
  }
  printf("summary: %s/summary.json\n", self->out_dir);
}
