// ffs_launch: `ffstream run`'s orchestration: plans the run's phases (and
// where a resumed run goes on), opens the control socket (tcp with CURVE
// when the run spans hosts), starts the stages through a spawner
// (ffs_spawn.h), wires them (BOUND, WIRE: ffs_wire.h), READY, drives the
// phases over the control channel (ffs_ctl.h), supervises (a stage killed by
// a signal is restarted from its checkpoint, the others told LOST, the lost
// MARKs re-driven; a remote stage that goes silent stops the run cleanly)
// and shuts down; what the run shows and writes is
// ffs_results.h. The launcher never computes on frames; it must never block
// on a stage.
#include "ffs_launch.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "ffs_ctl.h"
#include "ffs_curve.h"
#include "ffs_kind.h"
#include "ffs_log.h"
#include "ffs_pin.h"
#include "ffs_plan.h"
#include "ffs_results.h"
#include "ffs_shm.h"
#include "ffs_spawn.h"
#include "ffs_stage.h"
#include "ffs_topo_hosts.h"
#include "ffs_wire.h"

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

// A stage as the supervisor sees it (what the outputs show is in rep[]).
typedef struct {
  int ready, bye, failed;
  int await_ready;  // restarted: re-drive the stream once it is READY again
} s_stage_t;

typedef struct {
  const ffs_launch_opts_t *o;
  const ffs_topo_t *t;
  void *zctx, *ctl;
  ffs_spawner_t *sp;       // starts and reaps the stages
  ffs_results_t *res;      // progress line, metrics.csv, summary.json
  char run_dir[128];
  char out_dir[FFS_PATH_MAX];
  s_stage_t st[FFS_MAX_STAGES];
  ffs_results_stage_t rep[FFS_MAX_STAGES]; // pid, core, restarts, blas, latest STATS
  int cores[FFS_MAX_STAGES];
  double t0, t_phase;      // run start; end of the previous phase at the readout
  double train_s_total;
  long train_samples_total;
  long train_n_sent;       // samples in the latest training phase the source sent
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
  int streamer;            // the stage no data edge enters: it streams the phases
  int finished;
  char error[1024];
  int keep_summary;        // a --resume that runs nothing leaves summary.json as it is
  int end_sent;            // train.mode: stream: the first Ctrl-C asked the source to end
  int no_shm;              // the shared-memory probe failed: stages get shm=false
  ffs_wire_t wire;         // what each stage bound; the WIREs
  int wired;               // every stage was wired once (later BOUNDs: restarts)
  double last_rx[FFS_MAX_STAGES]; // when each stage was last heard from
  // a networked run: tcp between the processes (docs/MULTIHOST.md)
  int networked;
  char ctl_ep[FFS_EP_MAX];     // the control socket's endpoint, as bound
  char keys_dir[FFS_PATH_MAX]; // CURVE: the run's keys (absolute)
  char cwd[FFS_PATH_MAX];
  ffs_curve_keys_t keys;
  ffs_zap_t *zap;
  uint8_t rx[FFS_CTL_MSG_MAX]; // a control message off the socket
  uint8_t tx[FFS_CTL_EPS_MAX + 1024]; // one to a stage (a WIRE is the largest)
} s_run_t;

static int s_stage_index(const s_run_t *r, const char *name, size_t len) {
  for (int i = 0; i < r->t->n_stages; i++)
    if (strlen(r->t->stages[i].name) == len && !memcmp(r->t->stages[i].name, name, len)) return i;
  return -1;
}

// ---- phases ----

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

// ---- control ----

static int s_send(s_run_t *r, int stage, const ffs_ctl_msg_t *m) {
  const char *name = r->t->stages[stage].name;
  size_t len = ffs_ctl_encode(r->tx, sizeof r->tx, m);
  assert(len > 0);
  if (zmq_send(r->ctl, name, strlen(name), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) return -1;
  return zmq_send(r->ctl, r->tx, len, ZMQ_DONTWAIT) < 0 ? -1 : 0;
}

// Sends a control message to stage i. Returns 0 when sent; 1 when not, because
// the stage has just died (the supervisor restarts it and re-drives what it
// missed); -1 otherwise, and the run's error names the stage and the message.
static int s_send_checked(s_run_t *r, int i, const ffs_ctl_msg_t *m) {
  if (s_send(r, i, m) == 0) return 0;
  int err = zmq_errno();
  if (r->st[i].await_ready || r->sp->ops->state(r->sp, i) != FFS_SPAWN_RUNNING) return 1;
  char line[128];
  if (!r->error[0])
    snprintf(r->error, sizeof r->error, "cannot send '%s' to stage '%s': %s",
             ffs_ctl_str(m, line, sizeof line), r->t->stages[i].name, zmq_strerror(err));
  return -1;
}

static void s_send_next_cmd(s_run_t *r) {
  if (r->next_cmd >= r->n_cmds) return;
  int epoch, mode;
  s_cmd_at(r->t, r->next_cmd, &epoch, &mode);
  ffs_ctl_msg_t m = {.type = FFS_CTL_EPOCH, .phase = {.epoch = epoch, .mode = mode}};
  // sent; or the source died, and its restart re-drives from n_sent
  if (s_send_checked(r, r->streamer, &m) == 0) r->next_cmd++;
}

// A restarted stage is READY again. Frames that were inside the dead process
// are gone, the end-of-phase MARKs among them: ask the source to re-send the
// MARK of every phase it finished sending that has not reached the readout
// (the readout ignores a MARK it already saw). A restarted source has also
// lost its queue: the phases it had not finished are queued again (the one it
// was streaming starts over). A MARK that cannot be sent would stall the run:
// that is an error.
static void s_redrive(s_run_t *r, int stage) {
  if (stage == r->streamer) {
    r->next_cmd = r->n_sent;
    s_send_next_cmd(r);
    s_send_next_cmd(r);
  }
  for (long k = r->done_base; k < r->n_sent; k++) {
    if (s_is_done(r, k)) continue;
    int epoch, mode;
    s_cmd_at(r->t, k, &epoch, &mode);
    ffs_ctl_msg_t m = {.type = FFS_CTL_MARK, .phase = {.epoch = epoch, .mode = mode}};
    if (s_send_checked(r, r->streamer, &m) < 0) return;
  }
}

// Sends stage i its WIRE. 0, or -1 with r->error set.
static int s_wire(s_run_t *r, int i) {
  ffs_ctl_msg_t m;
  char why[512];
  if (ffs_wire_make(&r->wire, i, r->t->shm && !r->no_shm, &m, why, sizeof why) < 0) {
    snprintf(r->error, sizeof r->error, "%s", why);
    return -1;
  }
  return s_send_checked(r, i, &m) < 0 ? -1 : 0;
}

// BOUND: where stage i's inputs are. After the first wiring (a restarted
// stage, maybe on new ports) it is wired, and so is every stage sending to it.
static void s_on_bound(s_run_t *r, int i, const ffs_ctl_msg_t *m) {
  char why[300];
  if (ffs_wire_bound(&r->wire, i, m->bound.host, m->bound.eps, why, sizeof why) < 0) {
    if (!r->error[0])
      snprintf(r->error, sizeof r->error, "stage '%s': %s", r->t->stages[i].name, why);
    return;
  }
  snprintf(r->rep[i].host, sizeof r->rep[i].host, "%s", m->bound.host);
  if (!r->wired) return;
  if (s_wire(r, i) < 0) return;
  for (int j = 0; j < r->t->n_stages; j++)
    if (j != i && ffs_wire_sends_to(&r->wire, j, i) &&
        r->sp->ops->state(r->sp, j) == FFS_SPAWN_RUNNING && s_wire(r, j) < 0)
      return;
}

static void s_on_ready(s_run_t *r, int i, const ffs_ctl_msg_t *m) {
  s_stage_t *s = &r->st[i];
  s->ready = 1;
  snprintf(r->rep[i].blas, sizeof r->rep[i].blas, "%s", m->ready.blas);
  // where it really runs: a step spawner's tasks (Slurm, MPI) pin themselves
  if (r->sp->ops->start_all) r->rep[i].pid = m->ready.pid, r->rep[i].core = m->ready.core;
  if (s->await_ready) {
    s->await_ready = 0;
    ffs_info("stage '%s' is back", r->t->stages[i].name);
    s_redrive(r, i);
  }
}

static void s_on_message(s_run_t *r, int i, const ffs_ctl_msg_t *m) {
  s_stage_t *s = &r->st[i];
  const char *name = r->t->stages[i].name;
  char line[128];
  switch (m->type) {
  case FFS_CTL_BOUND: s_on_bound(r, i, m); break;
  case FFS_CTL_READY: s_on_ready(r, i, m); break;
  case FFS_CTL_STATS: r->rep[i].stats = m->stats; break;
  case FFS_CTL_SENT:
    if (!m->sent.mode) r->train_n_sent = m->sent.n;
    if (!m->sent.mode && m->sent.why[0]) {
      fprintf(stderr, "ffstream: the stream ended early: %s\n", m->sent.why);
      ffs_results_set_input_error(r->res, m->sent.why);
    }
    if (r->n_sent < r->next_cmd) r->n_sent++;
    s_send_next_cmd(r);
    break;
  case FFS_CTL_TRAINED: {
    if (s_phase_done(r, m->trained.epoch, 0) < 0) return; // duplicate
    double now = ffs_now();
    r->train_s_total += now - r->t_phase;
    r->train_samples_total += r->train_n_sent > 0 ? r->train_n_sent : 0;
    r->t_phase = now;
    break;
  }
  case FFS_CTL_RESULT:
    if (s_phase_done(r, m->result.epoch, 1) < 0) return; // duplicate
    ffs_results_on_result(r->res, m, r->train_s_total, r->train_samples_total);
    r->last_epoch_done = m->result.epoch;
    r->t_phase = ffs_now();
    if (m->result.epoch >= r->t->epochs - 1) r->finished = 1;
    break;
  case FFS_CTL_ERROR:
    s->failed = 1;
    if (!r->error[0]) snprintf(r->error, sizeof r->error, "stage '%s': %.900s", name, m->error.text);
    break;
  case FFS_CTL_BYE: s->bye = 1; break;
  default:
    ffs_warn("stage '%s' sent a message only the launcher sends: '%s'", name,
             ffs_ctl_str(m, line, sizeof line));
  }
}

// Receives every pending control message, waiting at most timeout_ms. A
// malformed one is logged, naming its stage, and ignored.
static void s_pump_ctl(s_run_t *r, int timeout_ms) {
  zmq_pollitem_t it = {r->ctl, 0, ZMQ_POLLIN, 0};
  if (zmq_poll(&it, 1, timeout_ms) <= 0) return;
  for (;;) {
    char id[64], why[256];
    int n = zmq_recv(r->ctl, id, sizeof id, ZMQ_DONTWAIT);
    if (n < 0) return;
    int more = 0;
    size_t ml = sizeof more;
    zmq_getsockopt(r->ctl, ZMQ_RCVMORE, &more, &ml);
    if (!more) continue;
    int m = zmq_recv(r->ctl, r->rx, sizeof r->rx, ZMQ_DONTWAIT);
    if (m < 0) return;
    // drain any further parts of a malformed multi-part message
    int parts = 0;
    while (zmq_getsockopt(r->ctl, ZMQ_RCVMORE, &more, &ml) == 0 && more) {
      char junk[64];
      if (zmq_recv(r->ctl, junk, sizeof junk, ZMQ_DONTWAIT) < 0) break;
      parts++;
    }
    int i = s_stage_index(r, id, n < (int)sizeof id ? (size_t)n : sizeof id);
    if (i < 0) continue;
    ffs_ctl_msg_t msg;
    if (parts) snprintf(why, sizeof why, "%d parts more than one", parts);
    if (parts || ffs_ctl_decode(&msg, r->rx, m < (int)sizeof r->rx ? (size_t)m : sizeof r->rx,
                                why, sizeof why) < 0)
      ffs_warn("stage '%s': control message refused: %s", r->t->stages[i].name, why);
    else
      s_on_message(r, i, &msg);
    r->last_rx[i] = ffs_now();
  }
}

// ---- supervision ----

// Starts stage i through the spawner (resume: from its checkpoint). Returns 0
// or -1 with r->error set.
static int s_start(s_run_t *r, int i, int resume) {
  uint32_t inc[FFS_MAX_STAGES];
  for (int k = 0; k < r->t->n_stages; k++) inc[k] = (uint32_t)r->rep[k].restarts;
  if (r->sp->ops->start(r->sp, i, resume, inc, r->error, sizeof r->error) < 0) return -1;
  r->rep[i].core = r->cores[i];
  r->rep[i].pid = r->sp->ops->pid(r->sp, i);
  return 0;
}

// Stage i was killed by signal sig while the run streams: starts it again
// from its last checkpoint and tells every other stage. Returns 0 or -1.
static int s_restart(s_run_t *r, int i, int sig) {
  ffs_results_stage_t *rep = &r->rep[i];
  rep->restarts++;
  ffs_warn("stage '%s' (pid %d) was killed by signal %d: restarting it from its last "
           "checkpoint (restart %d of %d)",
           r->t->stages[i].name, rep->pid, sig, rep->restarts, S_MAX_RESTARTS);
  r->st[i].ready = 0, r->st[i].await_ready = 1;
  r->wire.st[i].bound = 0;
  if (s_start(r, i, 1) < 0) return -1;
  // the stages that sent it frames through shared memory take back the
  // buffers its dead process held, and address the new one from now on
  ffs_ctl_msg_t lost = {.type = FFS_CTL_LOST, .lost = {.stage = i, .incarnation = rep->restarts}};
  for (int j = 0; j < r->t->n_stages; j++)
    if (j != i && r->sp->ops->state(r->sp, j) != FFS_SPAWN_NONE &&
        s_send_checked(r, j, &lost) < 0)
      return -1;
  return 0;
}

// Reaps stages that ended. A stage killed by a signal (kill -9, the OOM
// killer) while the run streams is restarted from its last checkpoint, up to
// S_MAX_RESTARTS times; any other early end fails the run.
static void s_reap(s_run_t *r) {
  ffs_spawn_exit_t how;
  int i;
  while ((i = r->sp->ops->reap(r->sp, &how)) >= 0) {
    if (r->st[i].bye || r->error[0] || ffs_interrupted) continue;
    const char *name = r->t->stages[i].name;
    int restarts = r->rep[i].restarts;
    if (how.signaled && r->streaming && !r->finished && restarts < S_MAX_RESTARTS) {
      if (s_restart(r, i, how.code) < 0) return;
      continue;
    }
    if (how.signaled)
      snprintf(r->error, sizeof r->error, "stage '%s' was killed by signal %d%s", name, how.code,
               restarts >= S_MAX_RESTARTS ? " (no restarts left)" : "");
    else
      snprintf(r->error, sizeof r->error, "stage '%s' exited with status %d before finishing",
               name, how.code);
  }
}

// ---- shutdown ----

static void s_shutdown(s_run_t *r) {
  ffs_spawner_t *sp = r->sp;
  for (int i = 0; i < r->t->n_stages; i++) s_send(r, i, &(ffs_ctl_msg_t){.type = FFS_CTL_STOP});
  // A stage blocked on a full queue does not read its control socket; the
  // spawner sets its stop flag (a signal), so it still checkpoints and exits in time.
  sp->ops->stop(sp, ffs_interrupted || r->error[0]);
  double deadline = ffs_now() + S_STOP_TIMEOUT_S;
  for (;;) {
    s_pump_ctl(r, 20);
    s_reap(r);
    int alive = 0;
    for (int i = 0; i < r->t->n_stages; i++) alive += sp->ops->state(sp, i) != FFS_SPAWN_NONE;
    if (!alive || ffs_now() > deadline) break;
  }
  // a stage's last STATS and BYE are flushed before it exits, but may still
  // sit unread here after the reap: read them so the summary is final
  s_pump_ctl(r, 50);
  for (int i = 0; sp->ops->kill && i < r->t->n_stages; i++)
    if (sp->ops->state(sp, i) == FFS_SPAWN_RUNNING) {
      ffs_warn("stage '%s' did not stop in %.0f s: killing it", r->t->stages[i].name, S_STOP_TIMEOUT_S);
      sp->ops->kill(sp, i);
    }
  sp->ops->wait_all(sp);
}

static void s_remove_run_dir(s_run_t *r) {
  if (r->o->threads || r->t->transport != FFS_TRANSPORT_IPC) return;
  ffs_topo_remove_endpoints(r->t, r->run_dir); // the names are ffs_topo_endpoint's
  rmdir(r->run_dir);
}

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

// ---- the run ----

// Output folder, run folder (the ipc endpoints), the stages' environment,
// the shared-memory probe and the cores. Returns 0, or 2 (bad output folder).
static int s_prepare(s_run_t *r) {
  const ffs_launch_opts_t *o = r->o;
  const ffs_topo_t *t = r->t;
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
    return 2;
  }
  if (o->threads) snprintf(r->run_dir, sizeof r->run_dir, "ffs-%d", (int)getpid());
  else {
    snprintf(r->run_dir, sizeof r->run_dir, "/tmp/ffs-%d", (int)getpid());
    mkdir(r->run_dir, 0700);
  }
  ffs_spawn_prepare_env(); // children: one BLAS thread per pinned stage, the fastest kernels
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
  r->networked = t->launcher != FFS_LAUNCHER_LOCAL || t->n_hosts > 0 ||
                 t->transport == FFS_TRANSPORT_TCP;
  if (r->networked && o->threads) {
    fprintf(stderr, "ffstream: --threads runs every stage in this process: it takes neither "
            "launch.launcher %s, hosts: nor transport tcp\n", ffs_launcher_str(t->launcher));
    return 2;
  }
  if (t->n_hosts > 1 && t->launcher == FFS_LAUNCHER_LOCAL) {
    fprintf(stderr, "ffstream: %s places stages on %d hosts: start them with --launcher ssh, "
            "slurm or mpi\n", t->path, t->n_hosts);
    return 2;
  }
  if (!getcwd(r->cwd, sizeof r->cwd)) r->cwd[0] = 0;
  if (t->n_hosts > 1) { // each host pins its own stages: 0, 1, ... of its cores
    int used[FFS_MAX_HOSTS] = {0};
    for (int i = 0; i < t->n_stages; i++) {
      const ffs_stage_cfg_t *st = &t->stages[i];
      r->cores[i] = st->core >= 0 ? st->core : used[st->host]++ % ncores;
    }
    return 0;
  }
  int shared = ffs_pin_plan(t, ncores, r->cores);
  if (shared > 0)
    ffs_warn("%d stages on %d cores: %d stages share a core (pinning wraps around)", t->n_stages,
             ncores, shared);
  return 0;
}

// The ZeroMQ context, the spawner and the results. Returns 0 or -1.
static int s_create(s_run_t *r) {
  const ffs_launch_opts_t *o = r->o;
  r->zctx = zmq_ctx_new();
  ffs_spawn_cfg_t cfg = {.topo = r->t, .topo_path = o->topo_path, .exe = o->exe, .sets = o->sets,
                         .n_sets = o->n_sets, .no_shm = r->no_shm, .run_dir = r->run_dir,
                         .out_dir = r->out_dir, .cores = r->cores, .zctx = r->zctx};
  cfg.silent_s = r->t->silent_s; // a stage whose launcher died stops by itself
  if (r->networked) {
    cfg.ctl_ep = r->ctl_ep;
    cfg.keys_dir = r->t->curve ? r->keys_dir : NULL; // (both filled in before any start)
    cfg.cwd = r->cwd[0] ? r->cwd : NULL;
  }
  switch (o->threads ? -1 : (int)r->t->launcher) {
  case -1: r->sp = ffs_spawn_threads_new(&cfg); break;
  case FFS_LAUNCHER_SSH: r->sp = ffs_spawn_ssh_new(&cfg); break;
  case FFS_LAUNCHER_SLURM: r->sp = ffs_spawn_slurm_new(&cfg); break;
  case FFS_LAUNCHER_MPI: r->sp = ffs_spawn_mpi_new(&cfg); break;
  default: r->sp = ffs_spawn_processes_new(&cfg); break;
  }
  if (!r->zctx || !r->sp) return -1;
  r->res = ffs_results_new(r->t, r->out_dir, o->resume, r->sp->ops->mode, o->quiet);
  return r->res ? 0 : -1;
}

// Binds the ROUTER the stages connect to: the local endpoint, or for a
// networked run tcp on the first host's address (tcp.host without hosts:)
// at launch.port or a free port, a CURVE server when security.curve.
// Returns 0 or -1 with r->error set.
static int s_open_ctl(s_run_t *r) {
  const ffs_topo_t *t = r->t;
  r->ctl = zmq_socket(r->zctx, ZMQ_ROUTER);
  // mandatory: a message for a stage that is not connected fails instead of
  // vanishing (s_send_checked); handover: a restarted stage takes its name
  // over from its dead process's connection at once
  int linger = 0, mandatory = 1, handover = 1;
  zmq_setsockopt(r->ctl, ZMQ_LINGER, &linger, sizeof linger);
  zmq_setsockopt(r->ctl, ZMQ_ROUTER_MANDATORY, &mandatory, sizeof mandatory);
  zmq_setsockopt(r->ctl, ZMQ_ROUTER_HANDOVER, &handover, sizeof handover);
  int64_t maxmsg = FFS_CTL_MSG_MAX;
  zmq_setsockopt(r->ctl, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
  char ep[FFS_EP_MAX];
  if (!r->networked) {
    ffs_topo_endpoint(t, r->run_dir, 0, FFS_CHAN_CTL, 0, ep, sizeof ep);
  } else {
    int ivl = 1000, timeout = 1000 * t->silent_s; // a dead peer's connection is closed
    zmq_setsockopt(r->ctl, ZMQ_HEARTBEAT_IVL, &ivl, sizeof ivl);
    zmq_setsockopt(r->ctl, ZMQ_HEARTBEAT_TIMEOUT, &timeout, sizeof timeout);
    if (r->zap && ffs_zap_server(r->zap, r->ctl, "the launcher's control socket") < 0) {
      snprintf(r->error, sizeof r->error, "cannot make the control socket a CURVE server: %s",
               zmq_strerror(zmq_errno()));
      return -1;
    }
    const char *addr = t->n_hosts ? t->hosts[0].address : t->tcp_host;
    if (t->ctl_port) snprintf(ep, sizeof ep, "tcp://%s:%d", addr, t->ctl_port);
    else snprintf(ep, sizeof ep, "tcp://%s:*", addr);
  }
  if (zmq_bind(r->ctl, ep) < 0) {
    snprintf(r->error, sizeof r->error, "cannot bind the control socket %s: %s%s", ep,
             zmq_strerror(zmq_errno()),
             r->networked ? " (the launcher runs on the first host of hosts:, or on tcp.host)"
                          : "");
    return -1;
  }
  size_t len = sizeof r->ctl_ep;
  if (zmq_getsockopt(r->ctl, ZMQ_LAST_ENDPOINT, r->ctl_ep, &len) < 0)
    snprintf(r->ctl_ep, sizeof r->ctl_ep, "%s", ep);
  return 0;
}

// A networked run's keys: security.keys, or OUT/keys (a fresh pair made
// at the run's start, kept for --resume). Loads them and starts the ZAP
// handler. Without CURVE, says plainly what that means. 0 or -1.
static int s_open_keys(s_run_t *r) {
  const ffs_topo_t *t = r->t;
  if (!t->curve) {
    ffs_warn("security.curve is false: the run's tcp sockets are plaintext; anyone who reaches "
             "their ports can read the frames and inject their own");
    return 0;
  }
  if (!ffs_curve_available()) {
    snprintf(r->error, sizeof r->error, "this libzmq cannot do CURVE (zmq_has(\"curve\") is 0): "
             "install a libzmq built with libsodium, or set security.curve: false");
    return -1;
  }
  char dir[FFS_PATH_MAX];
  if (t->keys_dir[0]) snprintf(dir, sizeof dir, "%.500s", t->keys_dir);
  else snprintf(dir, sizeof dir, "%.500s/keys", r->out_dir);
  char *abs = realpath(dir, NULL);
  if (!abs) { // none yet: the run's own pair
    if (t->keys_dir[0]) {
      snprintf(r->error, sizeof r->error, "security.keys: %.400s: %s (make a pair with "
               "`ffstream keys %.400s`)", dir, strerror(errno), dir);
      return -1;
    }
    if (ffs_curve_write_pair(dir, "run", 0, r->error, sizeof r->error) < 0) return -1;
    abs = realpath(dir, NULL);
  }
  if (!abs || strlen(abs) >= sizeof r->keys_dir) {
    snprintf(r->error, sizeof r->error, "the keys folder %.400s: %s", dir,
             abs ? "path too long" : strerror(errno));
    free(abs);
    return -1;
  }
  snprintf(r->keys_dir, sizeof r->keys_dir, "%s", abs);
  free(abs);
  if (ffs_curve_load(r->keys_dir, "run", &r->keys, r->error, sizeof r->error) < 0) return -1;
  r->zap = ffs_zap_start(r->zctx, &r->keys, r->error, sizeof r->error);
  return r->zap ? 0 : -1;
}

// --resume: a stage with a checkpoint of its own finds it under its name; a
// layer sharded otherwise than when the checkpoints were written would start
// from scratch (its checkpoints are named for the shards), so that is an
// error naming both. Returns 0 or -1 with r->error set.
static int s_check_ckpt_names(s_run_t *r) {
  const ffs_topo_t *t = r->t;
  char mine[FFS_PATH_MAX + 96], other[FFS_PATH_MAX + 96];
  for (int i = 0; i < t->n_stages; i++) {
    const ffs_stage_cfg_t *st = &t->stages[i];
    const ffs_stage_ops_t *ops = ffs_kind_of(st->kind)->ops;
    if (!ops || !ops->save) continue;
    snprintf(mine, sizeof mine, "%s/ckpt/%s.safetensors", r->out_dir, st->name);
    if (access(mine, F_OK) == 0) continue;
    if (st->n_shards > 1) // sharded now: written whole?
      snprintf(other, sizeof other, "%s/ckpt/%s.safetensors", r->out_dir, st->layer_name);
    else // whole now: written in shards?
      snprintf(other, sizeof other, "%s/ckpt/%s.0.safetensors", r->out_dir, st->name);
    if (access(other, F_OK) != 0) continue;
    snprintf(r->error, sizeof r->error,
             "--resume: %.200s/ckpt holds %.80s but no checkpoint for stage '%s': layer '%s' "
             "was written with other shards than it has now (its plan: OUT/plan); resume with "
             "the shards it was written with", r->out_dir, strrchr(other, '/') + 1, st->name,
             st->layer_name);
    return -1;
  }
  return 0;
}

// The phases to run; with --resume, from the first unfinished one. Returns 0,
// or 1 when a resumed run has nothing left to do.
static int s_plan(s_run_t *r) {
  const ffs_topo_t *t = r->t;
  r->n_cmds = s_n_cmds(t);
  if (r->o->resume) {
    int done = s_load_progress(r);
    if (r->next_cmd >= r->n_cmds) {
      printf("ffstream: %s: nothing to resume, all %d epochs are done\n", r->out_dir, t->epochs);
      r->keep_summary = 1; // nothing to do: summary.json stays as it is
      return 1;
    }
    if (s_check_ckpt_names(r) < 0) {
      r->keep_summary = 1; // refused before anything ran: the stopped run's summary stays
      return -1;
    }
    int epoch, mode;
    s_cmd_at(t, r->next_cmd, &epoch, &mode);
    printf("ffstream: resuming %s after %d finished phases, at epoch %d\n", r->out_dir, done,
           epoch + 1);
  }
  printf("ffstream: %s: %d stages (%s) on %d cores, output in %s\n", t->path, t->n_stages,
         r->sp->ops->mode, ffs_pin_ncores(), r->out_dir);
  if (r->o->plan) { // said once; kept in OUT/plan so that --resume runs the same
    char line[512], path[FFS_PATH_MAX + 16];
    printf("ffstream: %s%s\n", ffs_plan_str(r->o->plan, line, sizeof line),
           r->o->plan->kept ? " (the resumed run's plan)" : "");
    snprintf(path, sizeof path, "%s/plan", r->out_dir);
    if (!r->o->plan->kept && ffs_plan_save(r->o->plan, path) < 0)
      ffs_warn("cannot write %s: %s (a --resume of this run would plan again)", path,
               strerror(errno));
    ffs_results_set_plan(r->res, r->o->plan);
  }
  // written at every start, a resumed one too: the last checkpoints are its
  ffs_results_write_sets(r->out_dir, r->o->sets, r->o->n_sets);
  fflush(stdout);
  return 0;
}

// OUT/endpoints: a line per stage, "NAME HOST CHAN=ENDPOINT ...", where each
// stage's inputs were bound (for the user, and for tests that knock on them).
static void s_write_endpoints(s_run_t *r) {
  char path[FFS_PATH_MAX + 16];
  snprintf(path, sizeof path, "%s/endpoints", r->out_dir);
  FILE *f = fopen(path, "w");
  if (!f) return;
  for (int i = 0; i < r->t->n_stages; i++)
    fprintf(f, "%s %s %s\n", r->t->stages[i].name, r->wire.st[i].host, r->wire.st[i].eps);
  fclose(f);
}

// Starts every stage, wires them once all have bound their inputs (BOUND,
// WIRE) and waits until all are READY: nothing is streamed before.
// Returns 0 or -1.
static int s_start_all(s_run_t *r) {
  r->t0 = ffs_now();
  ffs_results_start(r->res, r->t0);
  if (r->sp->ops->start_all) {
    if (r->sp->ops->start_all(r->sp, r->o->resume, r->error, sizeof r->error) < 0) return -1;
    for (int i = 0; i < r->t->n_stages; i++)
      r->rep[i].core = r->cores[i], r->rep[i].pid = r->sp->ops->pid(r->sp, i);
  } else {
    for (int i = 0; i < r->t->n_stages; i++)
      if (s_start(r, i, r->o->resume) < 0) return -1;
  }
  for (;;) {
    s_pump_ctl(r, 50);
    s_reap(r);
    if (!r->wired && ffs_wire_all_bound(&r->wire) && !r->error[0]) {
      r->wired = 1;
      for (int i = 0; i < r->t->n_stages && !r->error[0]; i++) s_wire(r, i);
      s_write_endpoints(r);
    }
    int ready = 0;
    for (int i = 0; i < r->t->n_stages; i++) ready += r->st[i].ready;
    if (ready == r->t->n_stages || r->error[0] || ffs_interrupted) break;
    if (ffs_now() - r->t0 > S_READY_TIMEOUT_S) {
      char late[512] = "";
      for (int i = 0, n = 0; i < r->t->n_stages && n < (int)sizeof late; i++)
        if (!r->st[i].ready)
          n += snprintf(late + n, sizeof late - (size_t)n, "%s%s (%s)", n ? ", " : "",
                        r->t->stages[i].name, r->wire.st[i].bound ? "bound" : "not heard from");
      snprintf(r->error, sizeof r->error, "stages not ready after %.0f s: %s", S_READY_TIMEOUT_S,
               late);
      break;
    }
  }
  double now = ffs_now();
  for (int i = 0; i < r->t->n_stages; i++) r->last_rx[i] = now;
  return r->error[0] || ffs_interrupted ? -1 : 0;
}

// A remote stage that has sent nothing (not even its STATS, which it sends
// twice a second, also while it waits) for launch.silent_s is lost: its
// host went down, its link was cut, or it hangs. The run stops cleanly with
// an error naming the host (when all its stages fell silent: those quiet
// for over a second are named with the one past the limit) or the stages;
// --resume continues it.
static void s_check_silence(s_run_t *r) {
  const ffs_topo_t *t = r->t;
  if (!r->sp->ops->remote || r->error[0]) return;
  double now = ffs_now(), quiet[FFS_MAX_STAGES];
  int lost = -1;
  for (int i = 0; i < t->n_stages; i++) {
    int watched = r->st[i].ready && !r->st[i].await_ready && !r->st[i].bye;
    quiet[i] = watched ? now - r->last_rx[i] : 0;
    if (quiet[i] > t->silent_s && lost < 0) lost = i;
  }
  if (lost < 0) return;
  const char *host = r->rep[lost].host;
  char names[512] = "";
  int n_quiet = 0, n_host = 0;
  for (int j = 0, w = 0; j < t->n_stages; j++) {
    if (strcmp(r->rep[j].host, host)) continue;
    n_host++;
    if (quiet[j] <= 2 * FFS_CTL_STATS_EVERY_S) continue;
    n_quiet++;
    w += snprintf(names + w, sizeof names - (size_t)w, "%s%s", w ? ", " : "", t->stages[j].name);
    if (w >= (int)sizeof names) w = (int)sizeof names - 1;
  }
  char what[700];
  if (n_quiet == n_host)
    snprintf(what, sizeof what, "lost host '%s' (%s %s sent nothing for %.0f s)", host,
             n_quiet > 1 ? "stages" : "stage", names, quiet[lost]);
  else
    snprintf(what, sizeof what, "lost %s %s on host '%s' (nothing for %.0f s)",
             n_quiet > 1 ? "stages" : "stage", names, host, quiet[lost]);
  snprintf(r->error, sizeof r->error, "%.400s; launch.silent_s is %d: a host down, a link cut "
           "or a stage hung. The other stages write their checkpoints: `ffstream run %.200s "
           "--resume %.200s` continues the run", what, t->silent_s, r->o->topo_path, r->out_dir);
}

// Drives the phases until the last evaluation's RESULT, an error or an interrupt.
static void s_stream(s_run_t *r) {
  const ffs_topo_t *t = r->t;
  for (int i = 0; i < t->n_stages; i++) {
    printf("  stage %-8s %-9s pid %-7d core %d", t->stages[i].name,
           ffs_stage_kind_str(t->stages[i].kind), r->rep[i].pid, r->rep[i].core);
    if (r->networked) printf("  host %s", r->rep[i].host);
    putchar('\n');
  }
  if (r->networked)
    printf("ffstream: control on %s, %s\n", r->ctl_ep,
           r->zap ? "CURVE with the run's keys" : "plaintext (security.curve: false)");
  r->t_phase = ffs_now();
  r->streaming = 1;
  s_send_next_cmd(r);
  s_send_next_cmd(r); // one phase queued ahead keeps the pipeline full
  while (!r->finished && !r->error[0]) {
    if (ffs_interrupted && t->stream && !r->end_sent) {
      // a stream ends where it is, its learning kept: checkpoints, the test
      // after it (train.final_test), summary.json. A second Ctrl-C stops at once.
      ffs_interrupted = 0, r->end_sent = 1;
      fprintf(stderr, "\nffstream: ending the stream (Ctrl-C again stops at once)\n");
      if (s_send_checked(r, r->streamer, &(ffs_ctl_msg_t){.type = FFS_CTL_END}) < 0) break;
    }
    if (ffs_interrupted) break;
    s_pump_ctl(r, 100);
    s_reap(r);
    s_check_silence(r);
    ffs_results_progress(r->res, r->rep, r->last_epoch_done);
  }
}

int ffs_launch_run(const ffs_launch_opts_t *o, const ffs_topo_t *t) {
  s_run_t *r = calloc(1, sizeof *r);
  if (!r) return 1;
  r->o = o, r->t = t, r->last_epoch_done = -1;
  r->streamer = ffs_topo_streamer(t);
  ffs_wire_init(&r->wire, t);
  int rc = s_prepare(r);
  if (rc) {
    free(r);
    return rc;
  }
  if (s_create(r) < 0) {
    fprintf(stderr, "ffstream: out of memory\n");
    rc = 1;
  } else if ((!r->networked || s_open_keys(r) == 0) && s_open_ctl(r) == 0 && s_plan(r) == 0 &&
             s_start_all(r) == 0) {
    s_stream(r);
  }
  if (r->res) {
    ffs_results_end_progress(r->res);
    rc = ffs_interrupted ? 130 : r->error[0] ? 1 : 0;
    if (r->error[0]) fprintf(stderr, "ffstream: %s\n", r->error);
    if (ffs_interrupted) fprintf(stderr, "ffstream: interrupted; stopping stages\n");
    s_shutdown(r);
    if (!r->keep_summary) ffs_results_write_summary(r->res, r->rep, rc);
  }
  if (r->ctl) zmq_close(r->ctl);
  ffs_zap_destroy(&r->zap); // after the socket it served
  if (r->zctx) zmq_ctx_term(r->zctx);
  s_remove_run_dir(r);
  if (r->res) ffs_results_print_final(r->res);
  ffs_results_destroy(&r->res);
  if (r->sp) r->sp->ops->destroy(&r->sp);
  free(r->done_win);
  free(r);
  return rc;
}
