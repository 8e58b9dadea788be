// ffs_launch: the supervisor side of `ffstream run`. ---- spawn ---- starts
// the stages (processes via fork+exec of `ffstream stage`, or threads);
// ---- control ---- is the ROUTER loop that hears READY/STATS/SENT/TRAINED/
// RESULT/ERROR/BYE; ---- results ---- writes metrics.csv and summary.json.
// The launcher never computes on frames; it must never block on a stage.
#include "ffs_launch.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "ffs_log.h"
#include "ffs_pin.h"
#include "ffs_shm.h"
#include "ffs_stage.h"

volatile sig_atomic_t ffs_interrupted = 0;

static void s_on_signal(int sig) {
  (void)sig;
  ffs_interrupted = 1;
}

void ffs_install_signal_handlers(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = s_on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
}

#define S_READY_TIMEOUT_S 60.0
#define S_STOP_TIMEOUT_S 2.0
#define S_MAX_RESTARTS 3 // per stage and run

typedef struct {
  int ready, bye, failed;
  pid_t pid;
  int core;
  int restarts;     // times the supervisor restarted it from its checkpoint
  char blas[16];    // OpenBLAS's kernels in the stage (its READY line)
  int await_ready;  // restarted: re-drive the stream once it is READY again
  // latest STATS
  double frames, bad, busy, blocked, cpu, wall, samples, gpos, gneg, fbr, fbs, fbd, tds, tdk, shm;
  double lat[2][4]; // readout, per phase mode (train, eval): end-to-end frame
                    // latency p50, p99, transport per hop p50 (us), frames
} s_stage_t;

typedef struct {
  int epoch;
  double train_s, samples_per_s;
  double energy, softmax; // -1 = not measured
  int n_layers;
  char layer_name[FFS_MAX_STAGES][FFS_NAME_MAX];
  double layer_energy[FFS_MAX_STAGES], layer_softmax[FFS_MAX_STAGES];
  double wall_s;
} s_result_t;

typedef struct {
  const ffs_launch_opts_t *o;
  const ffs_topo_t *t;
  void *zctx, *ctl;
  char run_dir[128];
  char out_dir[FFS_PATH_MAX];
  s_stage_t st[FFS_MAX_STAGES];
  pthread_t thr[FFS_MAX_STAGES];
  ffs_stage_env_t env[FFS_MAX_STAGES];
  volatile sig_atomic_t thread_stop;
  int cores[FFS_MAX_STAGES];
  double t0, t_phase;      // run start; end of the previous phase at the readout
  double train_s_total;
  long train_samples_total;
  long train_n_sent;       // samples in the latest training phase the source sent
  s_result_t res;          // the latest evaluation's result (when have_res)
  int have_res;
  // The run's phases are commands k = 0, 1, ...: epoch e's training, then
  // its evaluation when it has one (s_cmd_at); none is stored, so a run may
  // have any number of epochs.
  long next_cmd, n_cmds;   // EPOCH commands sent / planned
  int last_epoch_done;     // last eval RESULT received (epoch), -1 none
  int streaming;           // the ready handshake is over: deaths are restarted
  long n_sent;             // phases the source reported SENT, in command order
  long done_base;          // every command before it reached the readout
  uint8_t *done_win;       // ... and from it on, done_win[k - done_base] says
  long done_cap;           // whether command k did (done_cap entries)
  int finished;
  char error[1024];
  FILE *metrics;
  int metrics_header;      // metrics.csv still needs its header line
  int nothing_to_do;       // --resume of a finished run
  int tty;
  int no_shm;              // the shared-memory probe failed: stages get shm=false
  double last_progress;
} s_run_t;

static int s_stage_index(const s_run_t *r, const char *name, size_t len) {
  for (int i = 0; i < r->t->n_stages; i++)
    if (strlen(r->t->stages[i].name) == len && !memcmp(r->t->stages[i].name, name, len)) return i;
  return -1;
}

static int s_send(s_run_t *r, int stage, const char *msg) {
  const char *name = r->t->stages[stage].name;
  if (zmq_send(r->ctl, name, strlen(name), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) return -1;
  return zmq_send(r->ctl, msg, strlen(msg), ZMQ_DONTWAIT) < 0 ? -1 : 0;
}

// Sends a control line to stage i. Returns 0 when sent; 1 when not, because
// the stage has just died (the supervisor restarts it and re-drives what it
// missed); -1 otherwise, and the run's error names the stage and the line.
static int s_send_checked(s_run_t *r, int i, const char *msg);

// ---- spawn ----

static void *s_thread_main(void *arg) {
  ffs_stage_env_t *env = arg;
  ffs_stage_run(env);
  return NULL;
}

// Starts stage i as a thread, or as a process running `ffstream stage`
// (with --resume: from its checkpoint). Returns 0 or -1 with r->error set.
static int s_spawn_one(s_run_t *r, int i, int resume) {
  const ffs_topo_t *t = r->t;
  r->st[i].core = r->cores[i];
  if (r->o->threads) {
    r->env[i] = (ffs_stage_env_t){.topo = t, .index = i, .run_dir = r->run_dir,
                                  .out_dir = r->out_dir, .zctx = r->zctx,
                                  .stop = &r->thread_stop, .core = r->cores[i],
                                  .thread_mode = 1, .resume = resume};
    if (pthread_create(&r->thr[i], NULL, s_thread_main, &r->env[i]) != 0) {
      snprintf(r->error, sizeof r->error, "cannot start a thread for stage '%s'", t->stages[i].name);
      return -1;
    }
    r->st[i].pid = getpid();
    return 0;
  }
  char core[16];
  snprintf(core, sizeof core, "%d", r->cores[i]);
  const char *argv[16 + 2 * 64];
  int a = 0;
  argv[a++] = r->o->exe;
  argv[a++] = "stage";
  argv[a++] = "--topology", argv[a++] = r->o->topo_path;
  argv[a++] = "--name", argv[a++] = t->stages[i].name;
  argv[a++] = "--run-dir", argv[a++] = r->run_dir;
  argv[a++] = "--out", argv[a++] = r->out_dir;
  argv[a++] = "--core", argv[a++] = core;
  if (resume) argv[a++] = "--resume";
  // after a restart every stage learns each one's incarnation (restarts so
  // far): the shared-memory descriptors it sends and accepts carry it
  char inc[FFS_MAX_STAGES * 8] = "";
  int any = 0;
  for (int k = 0, n = 0; k < t->n_stages; k++) {
    n += snprintf(inc + n, sizeof inc - (size_t)n, "%s%d", k ? "," : "", r->st[k].restarts);
    any |= r->st[k].restarts > 0;
  }
  if (any) argv[a++] = "--incarnations", argv[a++] = inc;
  for (int k = 0; k < r->o->n_sets && k < 64; k++) argv[a++] = "--set", argv[a++] = r->o->sets[k];
  if (r->no_shm) argv[a++] = "--set", argv[a++] = "shm=false";
  argv[a] = NULL;
  pid_t pid = fork();
  if (pid < 0) {
    snprintf(r->error, sizeof r->error, "fork: %s", strerror(errno));
    return -1;
  }
  if (pid == 0) {
    execv(r->o->exe, (char *const *)argv);
    fprintf(stderr, "ffstream: cannot exec %s: %s\n", r->o->exe, strerror(errno));
    _exit(127);
  }
  r->st[i].pid = pid;
  return 0;
}

static int s_spawn(s_run_t *r) {
  for (int i = 0; i < r->t->n_stages; i++)
    if (s_spawn_one(r, i, r->o->resume) < 0) return -1;
  return 0;
}

// Reaps children that exited. A stage killed by a signal (kill -9, the OOM
// killer) while the run streams is restarted from its last checkpoint, up to
// S_MAX_RESTARTS times; any other early exit fails the run.
static void s_reap(s_run_t *r) {
  if (r->o->threads) return;
  for (int i = 0; i < r->t->n_stages; i++) {
    s_stage_t *s = &r->st[i];
    if (s->pid <= 0) continue;
    int status;
    pid_t p = waitpid(s->pid, &status, WNOHANG);
    if (p != s->pid) continue;
    s->pid = -s->pid; // remember it, mark it gone
    if (s->bye || r->error[0] || ffs_interrupted) continue;
    const char *name = r->t->stages[i].name;
    if (WIFSIGNALED(status) && r->streaming && !r->finished && s->restarts < S_MAX_RESTARTS) {
      s->restarts++;
      ffs_warn("stage '%s' (pid %d) was killed by signal %d: restarting it from its last "
               "checkpoint (restart %d of %d)",
               name, -s->pid, WTERMSIG(status), s->restarts, S_MAX_RESTARTS);
      s->ready = 0, s->await_ready = 1;
      if (s_spawn_one(r, i, 1) < 0) return;
      // the stages that sent it frames through shared memory take back the
      // buffers its dead process held, and address the new one from now on
      char lost[64];
      snprintf(lost, sizeof lost, "LOST %d %d", i, s->restarts);
      for (int j = 0; j < r->t->n_stages; j++)
        if (j != i && r->st[j].pid > 0 && s_send_checked(r, j, lost) < 0) return;
      continue;
    }
    if (WIFSIGNALED(status))
      snprintf(r->error, sizeof r->error, "stage '%s' was killed by signal %d%s", name,
               WTERMSIG(status), s->restarts >= S_MAX_RESTARTS ? " (no restarts left)" : "");
    else
      snprintf(r->error, sizeof r->error, "stage '%s' exited with status %d before finishing",
               name, WEXITSTATUS(status));
  }
}

// ---- control ----

static double s_kv(const char *line, const char *key) {
  char pat[40];
  snprintf(pat, sizeof pat, " %s=", key);
  const char *p = strstr(line, pat);
  return p ? strtod(p + strlen(pat), NULL) : -1.0;
}

// Command k's phase: *epoch, *mode (0 train, 1 eval). Epoch e's training is
// command e + e / eval_every (the evaluations before it come in between),
// its evaluation the next one when e ends an eval_every block or the run.
static int s_has_eval(const ffs_topo_t *t, long e) {
  return (e + 1) % t->eval_every == 0 || e == t->epochs - 1;
}
static long s_cmd_of(const ffs_topo_t *t, long e) { return e + e / t->eval_every; }
static long s_n_cmds(const ffs_topo_t *t) {
  return s_cmd_of(t, t->epochs - 1) + 1 + s_has_eval(t, t->epochs - 1);
}
static void s_cmd_at(const ffs_topo_t *t, long k, int *epoch, int *mode) {
  long e = k * t->eval_every / (t->eval_every + 1); // at or just below k's epoch
  while (e + 1 < t->epochs && s_cmd_of(t, e + 1) <= k) e++;
  *epoch = (int)e, *mode = k != s_cmd_of(t, e);
}
// Index of the command that streams phase (epoch, mode), or -1.
static long s_cmd_index(const ffs_topo_t *t, long epoch, int mode) {
  if (epoch < 0 || epoch >= t->epochs || (mode && !s_has_eval(t, epoch))) return -1;
  return s_cmd_of(t, epoch) + (mode ? 1 : 0);
}

static int s_is_done(const s_run_t *r, long k) {
  return k < r->done_base || (k - r->done_base < r->done_cap && r->done_win[k - r->done_base]);
}

// Marks command k done; the window of commands not all done moves on and
// grows as needed (phases complete nearly in order: it stays a few long).
// -1: out of memory, or k lies more than S_DONE_AHEAD_MAX phases past the
// first one not done (a progress file of another run).
#define S_DONE_AHEAD_MAX (1L << 20)
static int s_set_done(s_run_t *r, long k) {
  if (s_is_done(r, k)) return 0;
  long at = k - r->done_base;
  if (at >= S_DONE_AHEAD_MAX) return -1;
  if (at >= r->done_cap) {
    long cap = r->done_cap ? r->done_cap : 64;
    while (cap <= at) cap *= 2;
    uint8_t *w = realloc(r->done_win, (size_t)cap);
    if (!w) return -1;
    memset(w + r->done_cap, 0, (size_t)(cap - r->done_cap));
    r->done_win = w, r->done_cap = cap;
  }
  r->done_win[at] = 1;
  long n = 0;
  while (n < r->done_cap && r->done_win[n]) n++;
  if (n > 0) {
    memmove(r->done_win, r->done_win + n, (size_t)(r->done_cap - n));
    memset(r->done_win + r->done_cap - n, 0, (size_t)n);
    r->done_base += n;
  }
  return 0;
}

static int s_send_checked(s_run_t *r, int i, const char *msg) {
  if (s_send(r, i, msg) == 0) return 0;
  int err = zmq_errno();
  pid_t pid = r->st[i].pid;
  siginfo_t si = {0};
  if (pid <= 0 || r->st[i].await_ready ||
      (!r->o->threads && waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
       si.si_pid == pid))
    return 1;
  if (!r->error[0])
    snprintf(r->error, sizeof r->error, "cannot send '%s' to stage '%s': %s", msg,
             r->t->stages[i].name, zmq_strerror(err));
  return -1;
}

static void s_send_next_cmd(s_run_t *r) {
  if (r->next_cmd >= r->n_cmds) return;
  char msg[64];
  int epoch, mode;
  s_cmd_at(r->t, r->next_cmd, &epoch, &mode);
  snprintf(msg, sizeof msg, "EPOCH %d %s", epoch, mode ? "eval" : "train");
  // sent; or the source died, and its restart re-drives from n_sent
  if (s_send_checked(r, 0, msg) == 0) r->next_cmd++;
}

// Marks phase (epoch, mode) as having reached the readout. Returns 0 the
// first time, -1 for a duplicate (a MARK re-sent after a restart) or a
// phase the run does not have.
static int s_phase_done(s_run_t *r, int epoch, int mode) {
  long k = s_cmd_index(r->t, epoch, mode);
  if (k < 0 || s_is_done(r, k)) return -1;
  if (s_set_done(r, k) < 0) {
    snprintf(r->error, sizeof r->error,
             "phase %s of epoch %d finished more than %ld phases ahead of the first unfinished "
             "one (or out of memory)",
             mode ? "eval" : "train", epoch + 1, S_DONE_AHEAD_MAX);
    return -1;
  }
  // the run's progress, for --resume: one line per phase that completed
  char path[FFS_PATH_MAX + 32];
  snprintf(path, sizeof path, "%s/progress", r->out_dir);
  FILE *f = fopen(path, "a");
  if (f) fprintf(f, "%s %d\n", mode ? "evaluated" : "trained", epoch), fclose(f);
  return 0;
}

// --resume: marks the phases DIR/progress lists as done and starts the
// command stream at the first one that is not. Returns how many were done.
static int s_load_progress(s_run_t *r) {
  char path[FFS_PATH_MAX + 32], what[16];
  snprintf(path, sizeof path, "%s/progress", r->out_dir);
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  int epoch, n = 0;
  while (fscanf(f, "%15s %d", what, &epoch) == 2) {
    int eval = strcmp(what, "evaluated") == 0;
    long k = s_cmd_index(r->t, epoch, eval);
    if (k >= 0 && !s_is_done(r, k) && s_set_done(r, k) == 0) n++;
    if (eval && epoch > r->last_epoch_done) r->last_epoch_done = epoch;
  }
  fclose(f);
  while (r->next_cmd < r->n_cmds && s_is_done(r, r->next_cmd)) r->next_cmd++;
  r->n_sent = r->next_cmd;
  return n;
}

// A restarted stage is READY again. Frames that were inside the dead process
// are gone, the end-of-phase MARKs among them: ask the source to re-send the
// MARK of every phase it finished sending that has not reached the readout
// (the readout ignores a MARK it already saw). A restarted source has also
// lost its queue: the phases it had not finished are queued again (the one it
// was streaming starts over). A MARK that cannot be sent would stall the run:
// that is an error.
static void s_redrive(s_run_t *r, int stage) {
  if (stage == 0) {
    r->next_cmd = r->n_sent;
    s_send_next_cmd(r);
    s_send_next_cmd(r);
  }
  for (long k = r->done_base; k < r->n_sent; k++) {
    if (s_is_done(r, k)) continue;
    char msg[64];
    int epoch, mode;
    s_cmd_at(r->t, k, &epoch, &mode);
    snprintf(msg, sizeof msg, "MARK %d %s", epoch, mode ? "eval" : "train");
    if (s_send_checked(r, 0, msg) < 0) return;
  }
}

static void s_on_result(s_run_t *r, const char *line) {
  s_result_t *x = &r->res;
  r->have_res = 1;
  memset(x, 0, sizeof *x);
  x->epoch = (int)s_kv(line, "epoch");
  x->energy = s_kv(line, "energy");
  x->softmax = s_kv(line, "softmax");
  x->wall_s = ffs_now() - r->t0;
  x->train_s = r->train_s_total;
  x->samples_per_s = r->train_s_total > 0 ? (double)r->train_samples_total / r->train_s_total : 0;
  const char *p = line;
  while ((p = strstr(p, " layer=")) && x->n_layers < FFS_MAX_STAGES) {
    p += 7;
    const char *colon = strchr(p, ':');
    if (!colon) break;
    size_t len = (size_t)(colon - p) < FFS_NAME_MAX - 1 ? (size_t)(colon - p) : FFS_NAME_MAX - 1;
    memcpy(x->layer_name[x->n_layers], p, len);
    x->layer_name[x->n_layers][len] = 0;
    char *end;
    x->layer_energy[x->n_layers] = strtod(colon + 1, &end);
    x->layer_softmax[x->n_layers] = *end == ':' ? strtod(end + 1, NULL) : -1.0;
    x->n_layers++;
  }
  r->last_epoch_done = x->epoch;
  r->t_phase = ffs_now();
}

static double s_primary(const s_run_t *r, const s_result_t *x) {
  const ffs_stage_cfg_t *ro = &r->t->stages[r->t->n_stages - 1];
  if (ro->primary == FFS_INFER_SOFTMAX && x->softmax >= 0) return x->softmax;
  return x->energy >= 0 ? x->energy : x->softmax;
}

static void s_metrics_row(s_run_t *r, const s_result_t *x) {
  if (!r->metrics) return;
  if (r->metrics_header) {
    r->metrics_header = 0;
    fprintf(r->metrics, "epoch,wall_s,train_s,train_samples_per_s,test_error,test_error_energy,test_error_softmax");
    for (int i = 0; i < x->n_layers; i++)
      fprintf(r->metrics, ",energy_%s,softmax_%s", x->layer_name[i], x->layer_name[i]);
    fputc('\n', r->metrics);
  }
  fprintf(r->metrics, "%d,%.3f,%.3f,%.1f,%.6f,%.6f,%.6f", x->epoch + 1, x->wall_s, x->train_s,
          x->samples_per_s, s_primary(r, x), x->energy, x->softmax);
  for (int i = 0; i < x->n_layers; i++)
    fprintf(r->metrics, ",%.6f,%.6f", x->layer_energy[i], x->layer_softmax[i]);
  fputc('\n', r->metrics);
  fflush(r->metrics);
}

// "1.23%", or "-" for a figure that was not measured (negative).
static const char *s_pct(char out[16], double v) {
  if (v < 0) snprintf(out, 16, "-");
  else snprintf(out, 16, "%.2f%%", 100.0 * v);
  return out;
}

static void s_on_message(s_run_t *r, int i, char *line) {
  s_stage_t *s = &r->st[i];
  const char *name = r->t->stages[i].name;
  if (!strncmp(line, "READY", 5)) {
    s->ready = 1;
    const char *b = strstr(line, " blas=");
    if (b) sscanf(b + 6, "%15[A-Za-z0-9_]", s->blas);
    if (s->await_ready) {
      s->await_ready = 0;
      ffs_info("stage '%s' is back", name);
      s_redrive(r, i);
    }
  } else if (!strncmp(line, "STATS ", 6)) {
    char *l = line + 5; // keys are matched as " key="
    s->frames = s_kv(l, "frames"), s->bad = s_kv(l, "bad"), s->busy = s_kv(l, "busy");
    s->blocked = s_kv(l, "blocked"), s->cpu = s_kv(l, "cpu");
    s->wall = s_kv(l, "wall"), s->samples = s_kv(l, "samples");
    s->gpos = s_kv(l, "gpos"), s->gneg = s_kv(l, "gneg");
    s->fbr = s_kv(l, "fbr"), s->fbs = s_kv(l, "fbs"), s->fbd = s_kv(l, "fbd");
    s->tds = s_kv(l, "tds"), s->tdk = s_kv(l, "tdk"), s->shm = s_kv(l, "shm");
    const char *lk[2][4] = {{"l50", "l99", "h50", "ln"}, {"e50", "e99", "eh50", "en"}};
    for (int m = 0; m < 2; m++)
      for (int k = 0; k < 4; k++) s->lat[m][k] = s_kv(l, lk[m][k]);
  } else if (!strncmp(line, "SENT", 4)) {
    if (strstr(line, " train ")) r->train_n_sent = (long)s_kv(line, "n");
    if (r->n_sent < r->next_cmd) r->n_sent++;
    s_send_next_cmd(r);
  } else if (!strncmp(line, "TRAINED", 7)) {
    if (s_phase_done(r, (int)s_kv(line, "epoch"), 0) < 0) return; // duplicate
    double now = ffs_now();
    r->train_s_total += now - r->t_phase;
    r->train_samples_total += r->train_n_sent > 0 ? r->train_n_sent : 0;
    r->t_phase = now;
  } else if (!strncmp(line, "RESULT", 6)) {
    if (s_phase_done(r, (int)s_kv(line, "epoch"), 1) < 0) return; // duplicate
    s_on_result(r, line);
    s_result_t *x = &r->res;
    s_metrics_row(r, x);
    if (r->tty) fputs("\r\033[K", stdout);
    char e[16], m[16];
    printf("epoch %d/%d: test error %.2f%% (energy %s, softmax %s), %.0f train samples/s, %.1f s\n",
           x->epoch + 1, r->t->epochs, 100.0 * s_primary(r, x), s_pct(e, x->energy),
           s_pct(m, x->softmax), x->samples_per_s, x->wall_s);
    printf("    per layer (energy/softmax):");
    for (int k = 0; k < x->n_layers; k++)
      printf(" %s %s/%s", x->layer_name[k], s_pct(e, x->layer_energy[k]),
             s_pct(m, x->layer_softmax[k]));
    printf("\n");
    fflush(stdout);
    if (x->epoch >= r->t->epochs - 1) r->finished = 1;
  } else if (!strncmp(line, "ERROR", 5)) {
    s->failed = 1;
    if (!r->error[0]) snprintf(r->error, sizeof r->error, "stage '%s': %.900s", name, line + 6);
  } else if (!strncmp(line, "BYE", 3)) {
    s->bye = 1;
  }
}

// Receives every pending control message, waiting at most timeout_ms.
static void s_pump_ctl(s_run_t *r, int timeout_ms) {
  zmq_pollitem_t it = {r->ctl, 0, ZMQ_POLLIN, 0};
  if (zmq_poll(&it, 1, timeout_ms) <= 0) return;
  for (;;) {
    char id[64], line[2048];
    int n = zmq_recv(r->ctl, id, sizeof id, ZMQ_DONTWAIT);
    if (n < 0) return;
    int more = 0;
    size_t ml = sizeof more;
    zmq_getsockopt(r->ctl, ZMQ_RCVMORE, &more, &ml);
    if (!more) continue;
    int m = zmq_recv(r->ctl, line, sizeof line - 1, ZMQ_DONTWAIT);
    if (m < 0) return;
    line[m < (int)sizeof line - 1 ? m : (int)sizeof line - 1] = 0;
    // drain any further parts of a malformed multi-part message
    while (zmq_getsockopt(r->ctl, ZMQ_RCVMORE, &more, &ml) == 0 && more) {
      char junk[64];
      if (zmq_recv(r->ctl, junk, sizeof junk, ZMQ_DONTWAIT) < 0) break;
    }
    int i = s_stage_index(r, id, n < (int)sizeof id ? (size_t)n : sizeof id);
    if (i >= 0) s_on_message(r, i, line);
  }
}

// Fraction of wall time a stage computed (waiting on backpressure excluded).
static double s_utilization(const s_stage_t *s) {
  return s->wall > 0 ? (s->busy - s->blocked) / s->wall : 0.0;
}

static void s_progress(s_run_t *r) {
  double now = ffs_now();
  if (r->o->quiet || now - r->last_progress < (r->tty ? 0.5 : 10.0)) return;
  r->last_progress = now;
  const ffs_topo_t *t = r->t;
  int last_layer = t->n_stages - 2;
  double done = r->st[last_layer].samples / 2.0; // positive + negative rows
  double elapsed = now - r->t0;
  char line[1024];
  int n = snprintf(line, sizeof line, "epoch %d/%d | %.0f samples/s | util", r->last_epoch_done + 2 > t->epochs ? t->epochs : r->last_epoch_done + 2,
                   t->epochs, elapsed > 0 ? done / elapsed : 0.0);
  for (int i = 0; i < t->n_stages && n < (int)sizeof line - 64; i++) {
    double u = s_utilization(&r->st[i]);
    n += snprintf(line + n, sizeof line - (size_t)n, " %s %.0f%%", t->stages[i].name, 100 * u);
  }
  n += snprintf(line + n, sizeof line - (size_t)n, " | g+ %.0f g- %.0f (%s)", r->st[1].gpos,
                r->st[1].gneg, t->stages[1].name);
  if (r->have_res)
    snprintf(line + n, sizeof line - (size_t)n, " | last test error %.2f%%",
             100 * s_primary(r, &r->res));
  if (r->tty) printf("\r\033[K%s", line);
  else printf("%s\n", line);
  fflush(stdout);
}

// ---- results ----

static void s_json_num(FILE *f, double v) {
  if (v < 0) fputs("null", f);
  else fprintf(f, "%.6g", v);
}

static void s_write_summary(s_run_t *r, int rc) {
  char path[FFS_PATH_MAX + 32];
  snprintf(path, sizeof path, "%s/summary.json", r->out_dir);
  FILE *f = fopen(path, "w");
  if (!f) {
    ffs_error("cannot write %s: %s", path, strerror(errno));
    return;
  }
  const s_result_t *x = r->have_res ? &r->res : NULL;
  fprintf(f, "{\n  \"topology\": \"%s\",\n  \"name\": \"%s\",\n  \"status\": \"%s\",\n",
          r->t->path, r->t->name, rc == 0 ? "ok" : rc == 130 ? "interrupted" : "failed");
  fprintf(f, "  \"mode\": \"%s\",\n  \"cores\": %d,\n", r->o->threads ? "threads" : "processes",
          ffs_pin_ncores());
  fputs("  \"test_error\": ", f), s_json_num(f, x ? s_primary(r, x) : -1);
  fputs(",\n  \"test_error_energy\": ", f), s_json_num(f, x ? x->energy : -1);
  fputs(",\n  \"test_error_softmax\": ", f), s_json_num(f, x ? x->softmax : -1);
  fputs(",\n  \"test_error_per_layer\": {", f);
  for (int i = 0; x && i < x->n_layers; i++) {
    fprintf(f, "%s\"%s\": {\"energy\": ", i ? ", " : "", x->layer_name[i]);
    s_json_num(f, x->layer_energy[i]);
    fputs(", \"softmax\": ", f);
    s_json_num(f, x->layer_softmax[i]);
    fputc('}', f);
  }
  fprintf(f, "},\n  \"train_samples_per_s\": %.1f,\n", x ? x->samples_per_s : 0.0);
  fprintf(f, "  \"epochs\": %d,\n  \"epochs_completed\": %d,\n  \"wall_s\": %.3f,\n", r->t->epochs,
          x ? x->epoch + 1 : 0, ffs_now() - r->t0);
  const s_stage_t *ro = &r->st[r->t->n_stages - 1];
  const char *phase[2] = {"train", "eval"}, *what[3] = {"p50_us", "p99_us", "hop_p50_us"};
  fputs("  \"latency\": {", f); // per phase: the readout's latest figures (null: none)
  for (int m = 0; m < 2; m++) {
    int have = ro->lat[m][3] > 0;
    fprintf(f, "%s\"%s\": {", m ? ", " : "", phase[m]);
    for (int k = 0; k < 3; k++) {
      fprintf(f, "%s\"%s\": ", k ? ", " : "", what[k]);
      s_json_num(f, have ? ro->lat[m][k] : -1);
    }
    fprintf(f, ", \"frames\": %.0f}", have ? ro->lat[m][3] : 0.0);
  }
  fputs("},\n", f);
  fputs("  \"stages\": [\n", f);
  for (int i = 0; i < r->t->n_stages; i++) {
    const s_stage_t *s = &r->st[i];
    int pid = s->pid < 0 ? -s->pid : s->pid;
    fprintf(f,
            "    {\"name\": \"%s\", \"kind\": \"%s\", \"pid\": %d, \"core\": %d, \"frames\": %.0f, "
            "\"bad_frames\": %.0f, \"utilization\": %.4f, \"cpu_s\": %.3f, \"feedback_received\": %.0f, "
            "\"feedback_sent\": %.0f, \"feedback_dropped\": %.0f, \"topdown_stale\": %.0f, "
            "\"topdown_stale_ticks\": %.0f, \"shm_frames\": %.0f, \"blas\": \"%s\", "
            "\"restarts\": %d}%s\n",
            r->t->stages[i].name, ffs_stage_kind_str(r->t->stages[i].kind), pid, s->core,
            s->frames < 0 ? 0 : s->frames, s->bad < 0 ? 0 : s->bad,
            s_utilization(s), s->cpu < 0 ? 0 : s->cpu, s->fbr < 0 ? 0 : s->fbr,
            s->fbs < 0 ? 0 : s->fbs, s->fbd < 0 ? 0 : s->fbd, s->tds < 0 ? 0 : s->tds,
            s->tdk < 0 ? 0 : s->tdk, s->shm < 0 ? 0 : s->shm, s->blas, s->restarts,
            i + 1 < r->t->n_stages ? "," : "");
  }
  fputs("  ]\n}\n", f);
  fclose(f);
}

// ---- shutdown ----

static void s_shutdown(s_run_t *r) {
  for (int i = 0; i < r->t->n_stages; i++) s_send(r, i, "STOP");
  // A stage blocked on a full queue does not read its control socket; the
  // signal sets its stop flag, so it still checkpoints and exits in time.
  if (r->o->threads) r->thread_stop = 1;
  else if (ffs_interrupted || r->error[0])
    for (int i = 0; i < r->t->n_stages; i++)
      if (r->st[i].pid > 0) kill(r->st[i].pid, SIGTERM);
  double deadline = ffs_now() + S_STOP_TIMEOUT_S;
  for (;;) {
    s_pump_ctl(r, 20);
    s_reap(r);
    int alive = 0;
    for (int i = 0; i < r->t->n_stages; i++)
      alive += r->o->threads ? !r->st[i].bye && !r->st[i].failed : r->st[i].pid > 0;
    if (!alive || ffs_now() > deadline) break;
  }
  // a stage's last STATS and BYE are flushed before it exits, but may still
  // sit unread here after the reap: read them so the summary is final
  s_pump_ctl(r, 50);
  if (r->o->threads) {
    for (int i = 0; i < r->t->n_stages; i++) pthread_join(r->thr[i], NULL);
    return;
  }
  for (int i = 0; i < r->t->n_stages; i++)
    if (r->st[i].pid > 0) {
      ffs_warn("stage '%s' did not stop in %.0f s: killing it", r->t->stages[i].name, S_STOP_TIMEOUT_S);
      kill(r->st[i].pid, SIGKILL);
      waitpid(r->st[i].pid, NULL, 0);
      r->st[i].pid = -r->st[i].pid;
    }
}

static void s_remove_run_dir(s_run_t *r) {
  if (r->o->threads || r->t->transport != FFS_TRANSPORT_IPC) return;
  ffs_topo_remove_endpoints(r->t, r->run_dir); // the names are ffs_topo_endpoint's
  rmdir(r->run_dir);
}

// ---- the run ----

// mkdir -p: creates path and any missing parents. Returns 0 or -1 (errno).
static int s_mkdirs(const char *path) {
  char p[FFS_PATH_MAX];
  snprintf(p, sizeof p, "%s", path);
  for (char *c = p + 1; *c; c++) {
    if (*c != '/') continue;
    *c = 0;
    if (mkdir(p, 0755) < 0 && errno != EEXIST) return -1;
    *c = '/';
  }
  return mkdir(p, 0755) < 0 && errno != EEXIST ? -1 : 0;
}

// OpenBLAS 0.3.21 runs its AVX2 kernels on AVX-512 CPUs it does not know,
// and a machine-wide OPENBLAS_CORETYPE (this workplace sets Haswell) pins
// them too: the stages get SkylakeX kernels wherever AVX-512 is there.
// FFS_BLAS_CORETYPE, when set, is what they get instead.
int ffs_launch_set_blas_coretype(void) {
  const char *coretype = getenv("FFS_BLAS_CORETYPE"), *had = getenv("OPENBLAS_CORETYPE");
  __builtin_cpu_init();
  if (!coretype && __builtin_cpu_supports("avx512f")) coretype = "SkylakeX";
  if (!coretype || !coretype[0] || (had && !strcmp(had, coretype))) return 0;
  if (had)
    ffs_info("blas: the stages use OpenBLAS's %s kernels, not OPENBLAS_CORETYPE=%s from the "
             "environment (FFS_BLAS_CORETYPE chooses)", coretype, had);
  setenv("OPENBLAS_CORETYPE", coretype, 1);
  return 1;
}

int ffs_launch_run(const ffs_launch_opts_t *o, const ffs_topo_t *t) {
  s_run_t *r = calloc(1, sizeof *r);
  if (!r) return 1;
  r->o = o, r->t = t, r->last_epoch_done = -1;
  r->tty = isatty(STDOUT_FILENO) && !o->quiet;
  int rc = 1;
  if (o->out_dir) {
    snprintf(r->out_dir, sizeof r->out_dir, "%s", o->out_dir);
  } else {
    char stamp[32];
    time_t now = time(NULL);
    strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", localtime(&now));
    snprintf(r->out_dir, sizeof r->out_dir, "runs/%s-%s", t->name, stamp);
  }
  if (s_mkdirs(r->out_dir) < 0) {
    fprintf(stderr, "ffstream: cannot create output folder %s: %s\n", r->out_dir, strerror(errno));
    free(r);
    return 2;
  }
  if (o->threads) snprintf(r->run_dir, sizeof r->run_dir, "ffs-%d", (int)getpid());
  else {
    snprintf(r->run_dir, sizeof r->run_dir, "/tmp/ffs-%d", (int)getpid());
    mkdir(r->run_dir, 0700);
  }
  char path[FFS_PATH_MAX + 32];
  snprintf(path, sizeof path, "%s/metrics.csv", r->out_dir);
  r->metrics_header = !(o->resume && access(path, F_OK) == 0);
  r->metrics = fopen(path, o->resume ? "a" : "w");

  // children: one BLAS thread per pinned stage, and the fastest kernels
  // (threads mode: main() has already re-executed with them)
  setenv("OPENBLAS_NUM_THREADS", "1", 0);
  ffs_launch_set_blas_coretype();

  // frames through shared memory need /proc/<pid>/fd of a sibling stage;
  // where that is closed, every frame goes through ZeroMQ instead
  if (!o->threads && t->transport == FFS_TRANSPORT_IPC && t->shm) {
    char why[256];
    if (ffs_shm_probe(why, sizeof why) < 0) {
      ffs_warn("shared-memory frames are not available here (%s): every frame goes through "
               "ZeroMQ (shm: false)", why);
      r->no_shm = 1;
    }
  }

  int ncores = ffs_pin_ncores();
  int shared = ffs_pin_plan(t, ncores, r->cores);
  if (shared > 0)
    ffs_warn("%d stages on %d cores: %d stages share a core (pinning wraps around)", t->n_stages,
             ncores, shared);

  r->zctx = zmq_ctx_new();
  r->ctl = zmq_socket(r->zctx, ZMQ_ROUTER);
  // mandatory: a line for a stage that is not connected fails instead of
  // vanishing (s_send_checked); handover: a restarted stage takes its name
  // over from its dead process's connection at once
  int linger = 0, mandatory = 1, handover = 1;
  zmq_setsockopt(r->ctl, ZMQ_LINGER, &linger, sizeof linger);
  zmq_setsockopt(r->ctl, ZMQ_ROUTER_MANDATORY, &mandatory, sizeof mandatory);
  zmq_setsockopt(r->ctl, ZMQ_ROUTER_HANDOVER, &handover, sizeof handover);
  int64_t maxmsg = 1 << 16;
  zmq_setsockopt(r->ctl, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
  char ep[FFS_PATH_MAX + 64];
  ffs_topo_endpoint(t, r->run_dir, 0, FFS_CHAN_CTL, 0, ep, sizeof ep);
  if (zmq_bind(r->ctl, ep) < 0) {
    snprintf(r->error, sizeof r->error, "cannot bind the control socket %s: %s", ep,
             zmq_strerror(zmq_errno()));
    goto done;
  }
  r->n_cmds = s_n_cmds(t);
  if (o->resume) {
    int done = s_load_progress(r);
    if (r->next_cmd >= r->n_cmds) {
      printf("ffstream: %s: nothing to resume, all %d epochs are done\n", r->out_dir, t->epochs);
      r->nothing_to_do = 1; // and nothing to overwrite: summary.json stays as it is
      goto done;
    }
    int epoch, mode;
    s_cmd_at(t, r->next_cmd, &epoch, &mode);
    printf("ffstream: resuming %s after %d finished phases, at epoch %d\n", r->out_dir, done,
           epoch + 1);
  }
  printf("ffstream: %s: %d stages (%s) on %d cores, output in %s\n", t->path, t->n_stages,
         o->threads ? "threads" : "processes", ncores, r->out_dir);
  fflush(stdout);
  r->t0 = ffs_now();
  if (s_spawn(r) < 0) goto done;

  // ready handshake: nothing is streamed until every stage has bound its inputs
  for (;;) {
    s_pump_ctl(r, 50);
    s_reap(r);
    int ready = 0;
    for (int i = 0; i < t->n_stages; i++) ready += r->st[i].ready;
    if (ready == t->n_stages || r->error[0] || ffs_interrupted) break;
    if (ffs_now() - r->t0 > S_READY_TIMEOUT_S) {
      snprintf(r->error, sizeof r->error, "stages not ready after %.0f s", S_READY_TIMEOUT_S);
      break;
    }
  }
  if (!r->error[0] && !ffs_interrupted) {
    for (int i = 0; i < t->n_stages; i++)
      printf("  stage %-8s %-9s pid %-7d core %d\n", t->stages[i].name,
             ffs_stage_kind_str(t->stages[i].kind), (int)r->st[i].pid, r->cores[i]);
    r->t_phase = ffs_now();
    r->streaming = 1;
    s_send_next_cmd(r);
    s_send_next_cmd(r); // one phase queued ahead keeps the pipeline full
    while (!r->finished && !r->error[0] && !ffs_interrupted) {
      s_pump_ctl(r, 100);
      s_reap(r);
      s_progress(r);
    }
  }
done:
  if (r->tty) fputs("\r\033[K", stdout);
  if (ffs_interrupted) rc = 130;
  else if (r->error[0]) rc = 1;
  else rc = 0;
  if (r->error[0]) fprintf(stderr, "ffstream: %s\n", r->error);
  if (ffs_interrupted) fprintf(stderr, "ffstream: interrupted; stopping stages\n");
  s_shutdown(r);
  if (!r->nothing_to_do) s_write_summary(r, rc);
  if (r->metrics) fclose(r->metrics);
  zmq_close(r->ctl);
  zmq_ctx_term(r->zctx);
  s_remove_run_dir(r);
  if (r->have_res) {
    const s_result_t *x = &r->res;
    char e[16], m[16];
    printf("result: test error %.2f%% after %d epochs (energy %s, softmax %s), %.0f train "
           "samples/s, %.1f s wall\n",
           100 * s_primary(r, x), x->epoch + 1, s_pct(e, x->energy), s_pct(m, x->softmax),
           x->samples_per_s, ffs_now() - r->t0);
  }
  printf("summary: %s/summary.json\n", r->out_dir);
  free(r->done_win);
  free(r);
  return rc;
}
