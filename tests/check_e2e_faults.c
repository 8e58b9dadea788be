// check_e2e_faults: the whole system from the outside, through the
// `ffstream` binary, when things go wrong: SIGTERM mid-epoch, a stalled
// consumer, a layer killed with kill -9, thousands of epochs, a stopped run
// resumed, an endpoint already in use.
#include "t_e2e_util.h"
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <time.h>
#include <zmq.h>

#include "ffs_ckpt.h"
#include "ffs_topo.h"
#include "ffs_wiring.h"

// ---- faults ----

// A process's anonymous resident memory (kB): its heap and ZeroMQ's
// queues, without the shared frame buffers it maps (RssShmem) or files.
static long s_rss_anon_kb(pid_t pid) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  long kb = -1;
  while (fgets(line, sizeof line, f))
    if (!strncmp(line, "RssAnon:", 8)) kb = strtol(line + 8, NULL, 10);
  fclose(f);
  return kb;
}

// A process's CPU time so far (user + system, in clock ticks).
static long s_cpu_ticks(pid_t pid) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  const char *p = strrchr(buf, ')'); // the command name may hold spaces
  unsigned long ut = 0, st = 0;
  if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
    return -1;
  return (long)(ut + st);
}

static void s_wait_bound(pid_t launcher) {
  char path[128];
  snprintf(path, sizeof path, "/tmp/ffs-%d/out.rep3", (int)launcher);
  for (int i = 0; i < 200 && access(path, F_OK) != 0; i++) usleep(50000);
  ck_assert_msg(access(path, F_OK) == 0, "the readout never bound %s", path);
}

// SIGTERM mid-epoch: every stage ends within 2 s with its checkpoint
// written, no process or ipc file is left, and a new run starts cleanly.
START_TEST(test_sigterm_shuts_down_cleanly) {
  char out[300], log[300];
  snprintf(out, sizeof out, "%s/term", s_tmp);
  snprintf(log, sizeof log, "%s/term.log", s_tmp);
  const char *argv[] = {"", "run", "configs/mnist-ff.yaml", "--quiet", "--out", out,
                        "--epochs", "5", NULL};
  pid_t pid = s_start(argv, log);
  s_wait_bound(pid);
  usleep(1500000); // mid-epoch: frames are in flight, queues are full
  pid_t stages[5];
  const char *names[5] = {"src", "l1", "l2", "l3", "out"};
  for (int i = 0; i < 5; i++) {
    stages[i] = s_stage_pid(pid, names[i]);
    ck_assert_msg(stages[i] > 0, "no process for stage %s", names[i]);
  }
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  kill(pid, SIGTERM);
  int rc = s_wait(pid, 10);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double took = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
  ck_assert_msg(rc == 130, "launcher exited %d after SIGTERM:\n%s", rc, s_slurp(log));
  // the launcher gives stages 2 s and then kills and names them (asserted
  // below); this bound only catches a launcher that hangs itself
  ck_assert_msg(took < 20.0, "shutdown took %.2f s", took);
  for (int i = 0; i < 5; i++)
    ck_assert_msg(kill(stages[i], 0) < 0 && errno == ESRCH, "stage %s (pid %d) is still alive",
                  names[i], (int)stages[i]);
  ck_assert_msg(strstr(s_slurp(log), "did not stop") == NULL, "a stage had to be killed:\n%s",
                s_slurp(log));
  char path[400];
  snprintf(path, sizeof path, "/tmp/ffs-%d", (int)pid);
  ck_assert_msg(access(path, F_OK) != 0, "%s was left behind", path);
  for (int i = 0; i < 5; i++) {
    snprintf(path, sizeof path, "%s/ckpt/%s.safetensors", out, names[i]);
    if (i > 0) ck_assert_msg(access(path, R_OK) == 0, "no checkpoint %s", path); // src has none
  }
  snprintf(path, sizeof path, "%s/summary.json", out);
  const char *json = s_slurp(path);
  ck_assert(json && strstr(json, "\"status\": \"interrupted\""));
  // a second run right after starts cleanly
  snprintf(out, sizeof out, "%s/term2", s_tmp);
  const char *again[] = {"", "run", "configs/mnist-ff.yaml", "--quiet", "--out", out,
                         "--set", "data.train_limit=500", "--set", "data.test_limit=100",
                         "--epochs", "1", NULL};
  ck_assert_int_eq(s_wait(s_start(again, log), 60), 0);
}
END_TEST

// A stalled consumer (l3 stopped with SIGSTOP) makes the stages upstream
// wait. Measured from steady state (after the first evaluation, so every
// kind of frame and every shared buffer has been made): once the stall has
// reached them (their CPU time stands still: they wait instead of working,
// however long the queues took to fill on a loaded machine) their anonymous
// memory grows by no more than their queues can hold and no more after,
// nothing is lost (no bad frame, every report group joined), and the run
// completes with the usual error once l3 resumes.
START_TEST(test_stalled_consumer_backpressure) {
  char out[300], log[300], progress[400];
  snprintf(out, sizeof out, "%s/stall", s_tmp);
  snprintf(log, sizeof log, "%s/stall.log", s_tmp);
  snprintf(progress, sizeof progress, "%s/progress", out);
  // every training sample: epochs of seconds, so that the run is still
  // streaming when l3 stops, however fast the machine
  const char *argv[] = {"", "run", "configs/mnist-ff.yaml", "--quiet", "--out", out,
                        S_SMALL_SETS, "--set", "train.epochs=4",
                        "--set", "data.train_limit=60000", NULL};
#if defined(__SANITIZE_ADDRESS__)
  // ASan keeps freed blocks in a quarantine (256 MB by default) before
  // reusing them, so memory grows with every message freed whatever the
  // queues hold. Without the quarantine it shows the stages' own memory
  // again; ASan still checks every access. (Check runs each test in its own
  // fork.)
  setenv("ASAN_OPTIONS", "quarantine_size_mb=0", 1);
#endif
  pid_t pid = s_start(argv, log);
  // steady state: epoch 1's evaluation (the largest frames) has reached the
  // readout and epoch 2 streams
  ck_assert_msg(s_wait_first_eval(progress, 120), // slow under ASan on a busy machine
                "epoch 1 was never evaluated:\n%s", s_slurp(log));
  const char *up[3] = {"src", "l1", "l2"};
  pid_t l3 = s_stage_pid(pid, "l3"), ups[3];
  ck_assert(l3 > 0);
  long before[3] = {0}, peak[3], mid[3];
  for (int i = 0; i < 3; i++) {
    ups[i] = s_stage_pid(pid, up[i]);
    ck_assert(ups[i] > 0);
  }
  for (int k = 0; k < 10; k++) { // the baseline: the most of a second of streaming
    usleep(100000);
    for (int i = 0; i < 3; i++) {
      long kb = s_rss_anon_kb(ups[i]);
      before[i] = kb > before[i] ? kb : before[i];
    }
  }
  ck_assert_msg(kill(l3, SIGSTOP) == 0, "l3 was gone before the stall:\n%s", s_slurp(log));
  for (int i = 0; i < 3; i++) peak[i] = mid[i] = before[i];
  // wait (up to 120 s) until all three have used at most 3 ticks (30 ms)
  // of CPU in each of two half seconds in a row: blocked on l3, their
  // queues full (a working stage uses tens of ticks in that time)
  long ticks[3];
  for (int i = 0; i < 3; i++) ticks[i] = s_cpu_ticks(ups[i]);
  int still = 0; // half seconds in a row all three stood still
  for (int k = 0; k < 1200 && still < 2; k++) {
    usleep(100000);
    int all = 1;
    for (int i = 0; i < 3; i++) {
      long kb = s_rss_anon_kb(ups[i]), now = s_cpu_ticks(ups[i]);
      peak[i] = kb > peak[i] ? kb : peak[i];
      if (k % 5 == 4) all &= now >= 0 && now - ticks[i] <= 3, ticks[i] = now;
    }
    if (k % 5 == 4) still = all ? still + 1 : 0;
  }
  ck_assert_msg(still >= 2, "the stages upstream of the stopped l3 never stood still");
  for (int i = 0; i < 3; i++) mid[i] = peak[i]; // the queues are full
  for (int k = 0; k < 15; k++) { // 1.5 s more of the stall
    usleep(100000);
    for (int i = 0; i < 3; i++) {
      long kb = s_rss_anon_kb(ups[i]);
      peak[i] = kb > peak[i] ? kb : peak[i];
    }
  }
  kill(l3, SIGCONT);
  int rc = s_wait(pid, 300);
  ck_assert_msg(rc == 0, "run exited %d:\n%s", rc, s_slurp(log));
  for (int i = 0; i < 3; i++)
    fprintf(stderr, "stall: %s RssAnon %ld kB before, %ld once blocked, peak %ld kB 1.5 s later\n",
            up[i], before[i], mid[i], peak[i]);
  // Bound from the buffers: a sender whose shared buffers are all held goes
  // on by copy into its socket queues, hwm_frames (4) frames a side of each
  // outgoing socket: at most 8 x (1000 x 784 floats, 3.1 MB) for the source,
  // 8 x 1 MB (forward and report) for a layer: 32 MB covers each. An
  // unbounded queue would fill ~300 frames/s of 0.2-3 MB.
  for (int i = 0; i < 3; i++)
    ck_assert_msg(peak[i] - before[i] < 32 * 1024, "%s grew from %ld to %ld kB during the stall",
                  up[i], before[i], peak[i]);
  // ... and once the queues are full it grows no more: the rest of the
  // stall adds at most a few MB (allocator slack), not frames
  for (int i = 0; i < 3; i++)
    ck_assert_msg(peak[i] - mid[i] < 4 * 1024,
                  "%s still grew once blocked: %ld kB when it stood still, %ld kB 1.5 s later",
                  up[i], mid[i], peak[i]);
  const char *json = s_summary_learned(out, "after the stall");
  const char *p = json;
  while ((p = strstr(p, "\"bad_frames\": "))) {
    p += strlen("\"bad_frames\": ");
    ck_assert_msg(atoi(p) == 0, "a stage dropped frames across the stall:\n%s", json);
  }
  ck_assert_msg(!strstr(s_slurp(log), "could not be joined"), "report groups were lost:\n%s",
                s_slurp(log));
}
END_TEST

// Training samples/s of each epoch of a run (from OUT/metrics.csv: the
// train_s column is cumulative); returns how many epochs it had.
static int s_epoch_rates(const char *out, double samples, double *rate, int max) {
  char path[400], line[1024];
  snprintf(path, sizeof path, "%s/metrics.csv", out);
  FILE *f = fopen(path, "r");
  ck_assert_msg(f != NULL, "no %s", path);
  int n = 0;
  double prev = 0;
  while (n < max && fgets(line, sizeof line, f)) {
    const char *c = strchr(line, ',');
    if (!c || !(c = strchr(c + 1, ','))) continue;
    double train_s = strtod(c + 1, NULL);
    if (train_s <= prev) continue; // the header, or a row without training
    rate[n++] = samples / (train_s - prev);
    prev = train_s;
  }
  fclose(f);
  return n;
}

// kill -9 of a layer mid-run, during epoch 2's evaluation (when the layer
// holds most of its upstream's shared frame buffers): the supervisor
// restarts it from its last checkpoint, the upstream stage gets those
// buffers back, the pipeline goes on at its speed (a loose bound: once it
// crawled at a tenth) and the run ends with a usual error.
START_TEST(test_kill9_layer_is_restarted) {
  char out[300], log[300], progress[400];
  snprintf(out, sizeof out, "%s/kill", s_tmp);
  snprintf(log, sizeof log, "%s/kill.log", s_tmp);
  snprintf(progress, sizeof progress, "%s/progress", out);
  const char *argv[] = {"", "run", "configs/mnist-ff.yaml", "--quiet", "--out", out,
                        S_SMALL_SETS, "--set", "layer.eval_average=0.9", "--set",
                        "train.epochs=6", "--set", "train.batch=100", NULL}; // 100 KB frames: shm
  pid_t pid = s_start(argv, log);
  s_wait_bound(pid);
  // epoch 2's training has reached the readout: its evaluation streams
  for (int i = 0; i < 6000; i++) { // up to 120 s: slow under ASan on a busy machine
    const char *p = s_slurp(progress);
    if (p && strstr(p, "trained 1")) break;
    usleep(2000);
  }
  pid_t l2 = s_stage_pid(pid, "l2");
  ck_assert(l2 > 0);
  kill(l2, SIGKILL);
  int rc = s_wait(pid, 300);
  const char *text = s_slurp(log);
  ck_assert_msg(rc == 0, "run exited %d:\n%s", rc, text);
  ck_assert_msg(strstr(text, "stage 'l2'") && strstr(text, "restarting it from its last checkpoint"),
                "%s", text);
  double rate[8];
  int n = s_epoch_rates(out, 10000, rate, 8);
  ck_assert_int_eq(n, 6);
  double before = fmax(rate[0], rate[1]), after = fmax(rate[3], fmax(rate[4], rate[5]));
  fprintf(stderr, "kill9: %.0f samples/s before the kill, %.0f after the restart\n", before, after);
  ck_assert_msg(after >= 0.4 * before,
                "after the restart the run went at %.0f samples/s, before it at %.0f:\n%s", after,
                before, text);
  const char *json = s_summary_learned(out, "after the restart");
  ck_assert(strstr(json, "\"status\": \"ok\""));
}
END_TEST

// Thousands of epochs (here 5 000 of one tiny batch, each evaluated): no
// count indexes a fixed array, the run ends with a summary of its last.
START_TEST(test_many_epochs_reach_a_summary) {
  char out[300], log[300], path[400];
  snprintf(out, sizeof out, "%s/many", s_tmp);
  snprintf(log, sizeof log, "%s/many.log", s_tmp);
  const char *argv[] = {"", "run", "configs/mnist-ff.yaml", "--quiet", "--out", out,
                        "--epochs", "5000", "--set", "data.train_limit=4", "--set",
                        "data.test_limit=2", "--set", "train.batch=4", "--set",
                        "train.eval_batch=2", "--set", "l1.units=4", "--set", "l2.units=4",
                        "--set", "l3.units=4", "--set", "train.ckpt_every_s=0", "--set",
                        "train.negatives=random", "--set", "feedback=[]", NULL};
  int rc = s_wait(s_start(argv, log), 1500);
  ck_assert_msg(rc == 0, "run exited %d:\n%s", rc, s_slurp(log));
  snprintf(path, sizeof path, "%s/summary.json", out);
  const char *json = s_slurp(path);
  ck_assert_msg(json && strstr(json, "\"status\": \"ok\""), "%s", json ? json : "no summary");
  ck_assert_int_eq((int)s_json(json, NULL, "epochs_completed"), 5000);
  snprintf(path, sizeof path, "%s/progress", out);
  FILE *f = fopen(path, "r");
  ck_assert(f != NULL);
  int lines = 0, c;
  while ((c = fgetc(f)) != EOF) lines += c == '\n';
  fclose(f);
  ck_assert_int_eq(lines, 10000); // every phase, trained and evaluated, once
}
END_TEST

// A run stopped after its first epoch continues with --resume: the stages
// load their checkpoints (here with eval_average's averages among them) and
// the remaining epochs run; a second --resume of the finished run does
// nothing and leaves its results as they are.
START_TEST(test_resume_continues_a_stopped_run) {
  char out[300], log[300], progress[400];
  snprintf(out, sizeof out, "%s/resume", s_tmp);
  snprintf(log, sizeof log, "%s/resume.log", s_tmp);
  snprintf(progress, sizeof progress, "%s/progress", out);
  const char *argv[] = {"", "run", "configs/mnist-ff.yaml", "--quiet", "--out", out,
                        S_SMALL_SETS, "--set", "layer.eval_average=0.9", NULL};
  pid_t pid = s_start(argv, log);
  s_wait_first_eval(progress, 60); // slow under ASan on a busy machine; judged below
  kill(pid, SIGTERM);
  ck_assert_int_eq(s_wait(pid, 30), 130);
  const char *before = s_slurp(progress);
  ck_assert_msg(before && strstr(before, "evaluated 0") && !strstr(before, "evaluated 2"), "%s",
                before ? before : "(no progress file)");
  const char *again[] = {"", "run", "configs/mnist-ff.yaml", "--quiet", "--resume", out,
                         S_SMALL_SETS, "--set", "layer.eval_average=0.9", NULL};
  int rc = s_wait(s_start(again, log), 120);
  ck_assert_msg(rc == 0, "resume exited %d:\n%s", rc, s_slurp(log));
  ck_assert(strstr(s_slurp(log), "resuming"));
  ck_assert(strstr(s_slurp(progress), "evaluated 2"));
  ck_assert(strstr(s_summary_learned(out, "after resuming"), "\"epochs_completed\": 3"));
  char path[400];
  snprintf(path, sizeof path, "%s/summary.json", out);
  ck_assert_int_eq(s_wait(s_start(again, log), 60), 0);
  ck_assert(strstr(s_slurp(log), "nothing to resume"));
  ck_assert(strstr(s_slurp(path), "\"epochs_completed\": 3"));
}
END_TEST

// A run written without eval_average resumes with it turned on: its
// checkpoints have no averages, so they start from the loaded weights
// (instead of the load failing), and the run goes on learning.
START_TEST(test_resume_turns_eval_average_on) {
  char out[300], log[300];
  snprintf(out, sizeof out, "%s/resume_avg", s_tmp);
  snprintf(log, sizeof log, "%s/resume_avg.log", s_tmp);
  const char *first[] = {"", "run", "configs/mnist-ff.yaml", "--quiet", "--out", out, S_SMALL_SETS,
                         "--set", "train.epochs=1", "--set", "layer.eval_average=0", NULL};
  int rc = s_wait(s_start(first, log), 120);
  ck_assert_msg(rc == 0, "run exited %d:\n%s", rc, s_slurp(log));
  // the checkpoint carries the optimizer: l2's smoothed gradient (256 x 256)
  // and its step count, one step per training frame of an epoch
  static float m_w[256 * 256], state[4];
  char ckpt[400], err[512];
  snprintf(ckpt, sizeof ckpt, "%s/ckpt/l2.safetensors", out);
  ffs_tensor_ref_t t[2] = {{"sgd.m_w", 2, {256, 256}, m_w}, {"sgd.state", 1, {4, 0}, state}};
  ck_assert_msg(ffs_ckpt_load(ckpt, t, 2, err, sizeof err) == 0, "%s", err);
  double norm = 0.0;
  for (int i = 0; i < 256 * 256; i++) norm += fabs(m_w[i]);
  ck_assert_msg(norm > 0.0, "sgd.m_w is all zeros");
  ck_assert_msg(state[0] + state[1] * 1048576.0f >= 10000 / 50, "steps %g %g", (double)state[0],
                (double)state[1]);
  const char *again[] = {"", "run", "configs/mnist-ff.yaml", "--resume", out, S_SMALL_SETS,
                         "--set", "train.epochs=2", "--set", "layer.eval_average=0.9", NULL};
  rc = s_wait(s_start(again, log), 120);
  const char *text = s_slurp(log);
  ck_assert_msg(rc == 0, "resume exited %d:\n%s", rc, text);
  ck_assert_msg(strstr(text, "l2.safetensors has no moving averages") &&
                    strstr(text, "they start from its weights"),
                "%s", text);
  ck_assert_msg(!strstr(text, "no optimizer state"), "the optimizer started fresh:\n%s", text);
  ck_assert(strstr(s_summary_learned(out, "after resuming with eval_average"),
                   "\"epochs_completed\": 2"));
}
END_TEST

// A port already taken is never fatal: with transport tcp the stages bind
// the first free port of tcp.ports, so a squatter on the first one is
// skipped and the run completes; a range with no free port left is an
// error naming the range, and no stage is left.
START_TEST(test_port_in_use_is_skipped) {
  char out[300], log[300], ep[64], ports[64];
  snprintf(out, sizeof out, "%s/inuse", s_tmp);
  snprintf(log, sizeof log, "%s/inuse.log", s_tmp);
  const int port = 21000 + (int)(getpid() % 2000) * 2;
  snprintf(ep, sizeof ep, "tcp://127.0.0.1:%d", port);
  void *ctx = zmq_ctx_new();
  void *squatter = zmq_socket(ctx, ZMQ_PULL);
  ck_assert_msg(zmq_bind(squatter, ep) == 0, "test could not take %s", ep);
  snprintf(ports, sizeof ports, "tcp.ports=[%d, %d]", port, port + 60);
  const char *argv[] = {"", "run", "configs/mnist-ff.yaml", "--quiet", "--out", out, "--set",
                        "transport=tcp", "--set", ports, S_SMALL_SETS, NULL};
  int rc = s_wait(s_start(argv, log), 120);
  ck_assert_msg(rc == 0, "run exited %d:\n%s", rc, s_slurp(log));
  snprintf(out, sizeof out, "%s/inuse-full", s_tmp);
  snprintf(ports, sizeof ports, "tcp.ports=[%d, %d]", port, port);
  pid_t pid = s_start(argv, log);
  rc = s_wait(pid, 60);
  zmq_close(squatter);
  zmq_ctx_term(ctx);
  const char *text = s_slurp(log);
  ck_assert_msg(rc == 1, "run exited %d:\n%s", rc, text);
  char want[128];
  snprintf(want, sizeof want, "every port of tcp.ports %d..%d is in use", port, port);
  ck_assert_msg(strstr(text, want) != NULL, "expected '%s' in:\n%s", want, text);
  ck_assert(s_stage_pid(pid, "src") < 0 && s_stage_pid(pid, "l2") < 0);
}
END_TEST

// A layer resumed with other shards than its checkpoints were written with
// would start from scratch: the resume is refused, naming the layer, and the
// stopped run's summary.json is left as it was.
START_TEST(test_resume_refuses_other_shards) {
  char out[300], log[300], path[400];
  snprintf(out, sizeof out, "%s/reshard", s_tmp);
  snprintf(log, sizeof log, "%s/reshard.log", s_tmp);
  const char *argv[] = {"", "run", "configs/mnist-ff.yaml", "--quiet", "--out", out,
                        S_SMALL_SETS, "--set", "train.epochs=1", "--set", "feedback=[]",
                        "--set", "train.negatives=random",
                        "--set", "l1.shards=2", NULL};
  int rc = s_wait(s_start(argv, log), 120);
  ck_assert_msg(rc == 0, "run exited %d:\n%s", rc, s_slurp(log));
  snprintf(path, sizeof path, "%s/summary.json", out);
  char *before = strdup(s_slurp(path));
  const char *again[] = {"", "run", "configs/mnist-ff.yaml", "--quiet", "--resume", out,
                         S_SMALL_SETS, "--set", "train.epochs=2", "--set", "feedback=[]",
                         "--set", "train.negatives=random",
                         "--set", "l1.shards=1", NULL};
  rc = s_wait(s_start(again, log), 60);
  ck_assert_msg(rc == 1, "resume with other shards exited %d:\n%s", rc, s_slurp(log));
  ck_assert_msg(strstr(s_slurp(log), "holds l1.0.safetensors but no checkpoint for stage 'l1'"),
                "%s", s_slurp(log));
  ck_assert_str_eq(s_slurp(path), before);
  free(before);
}
END_TEST

static Suite *s_suite(void) {
  Suite *s = suite_create("e2e_faults");
  TCase *faults = s_tcase(s, "faults", 400);
  tcase_add_test(faults, test_sigterm_shuts_down_cleanly);
  tcase_add_test(faults, test_stalled_consumer_backpressure);
  tcase_add_test(faults, test_kill9_layer_is_restarted);
  tcase_add_test(faults, test_many_epochs_reach_a_summary);
  tcase_add_test(faults, test_resume_continues_a_stopped_run);
  tcase_add_test(faults, test_resume_turns_eval_average_on);
  tcase_add_test(faults, test_resume_refuses_other_shards);
  tcase_add_test(faults, test_port_in_use_is_skipped);
  return s;
}

int main(void) { return ffs_check_run(s_suite()); }
