// check_e2e: the whole system from the outside, through the `ffstream`
// binary: a small MNIST network trains in process mode and in thread mode
// and must beat a stated error bound; a malformed topology starts nothing;
// garbage bytes sent into a running stage are counted and dropped while it
// keeps learning; a feedback vector travels back from l2 to l1. Faults,
// cortical loops and sharded runs are in check_e2e_faults.c,
// check_e2e_loops.c and check_e2e_shards.c.
#include "t_e2e_util.h"
#include <zmq.h>

#include "ffs_frame.h"

static const char *s_run_small(const char *mode_flag, const char *out) {
  char log[300];
  snprintf(log, sizeof log, "%s.log", out);
  const char *argv[] = {"", "run", "configs/mnist-ff.yaml", "--quiet", "--out", out,
                        S_SMALL_SETS, mode_flag, NULL};
  if (!mode_flag[0]) argv[sizeof argv / sizeof argv[0] - 2] = NULL;
  int rc = s_wait(s_start(argv, log), 300);
  ck_assert_msg(rc == 0, "ffstream run exited %d; log %s:\n%s", rc, log, s_slurp(log));
  return s_summary_learned(out, mode_flag[0] ? "with --threads" : "with processes");
}

START_TEST(test_process_mode_learns_and_feedback_travels) {
  char out[300];
  snprintf(out, sizeof out, "%s/proc", s_tmp);
  const char *json = s_run_small("", out);
  ck_assert(strstr(json, "\"mode\": \"processes\""));
  // one process per stage: five distinct pids, none of them ours
  double pids[5];
  const char *names[5] = {"\"name\": \"src\"", "\"name\": \"l1\"", "\"name\": \"l2\"",
                          "\"name\": \"l3\"", "\"name\": \"out\""};
  for (int i = 0; i < 5; i++) {
    pids[i] = s_json(json, names[i], "pid");
    ck_assert(pids[i] > 0 && pids[i] != getpid());
    for (int j = 0; j < i; j++) ck_assert(pids[i] != pids[j]);
  }
  // the feedback edge l2 -> l1 carried vectors back
  ck_assert_msg(s_json(json, "\"name\": \"l2\"", "feedback_sent") > 0, "%s", json);
  ck_assert_msg(s_json(json, "\"name\": \"l1\"", "feedback_received") > 0, "%s", json);
  // per-epoch metrics and per-stage checkpoints
  char path[400];
  snprintf(path, sizeof path, "%s/metrics.csv", out);
  ck_assert(access(path, R_OK) == 0);
  snprintf(path, sizeof path, "%s/ckpt/l1.safetensors", out);
  ck_assert(access(path, R_OK) == 0);
}
END_TEST

// Thread mode learns too, and its stages run the kernels process mode's
// do: OpenBLAS picks them when it loads, so `run --threads` starts itself
// again with them (here against a machine-wide OPENBLAS_CORETYPE=Haswell,
// which on an AVX-512 CPU must give way to SkylakeX).
START_TEST(test_thread_mode_learns) {
  char out[300];
  snprintf(out, sizeof out, "%s/thr", s_tmp);
  setenv("OPENBLAS_CORETYPE", "Haswell", 1);
  unsetenv("FFS_BLAS_CORETYPE");
  const char *json = s_run_small("--threads", out);
  unsetenv("OPENBLAS_CORETYPE");
  ck_assert(strstr(json, "\"mode\": \"threads\""));
  __builtin_cpu_init();
  const char *want = __builtin_cpu_supports("avx512f") ? "\"blas\": \"SkylakeX\""
                                                       : "\"blas\": \"";
  const char *l1 = strstr(json, "\"name\": \"l1\"");
  ck_assert_msg(l1 && strstr(l1, want), "expected %s for l1:\n%s", want, json);
}
END_TEST

START_TEST(test_bad_topology_starts_nothing) {
  char topo[300], log[300], out[300];
  snprintf(topo, sizeof topo, "%s/bad.yaml", s_tmp);
  snprintf(log, sizeof log, "%s/bad.log", s_tmp);
  snprintf(out, sizeof out, "%s/bad-out", s_tmp);
  FILE *f = fopen(topo, "w");
  fputs("name: bad\nstages:\n  - name: src\n    kind: source\n  - name: l1\n    kind: ff_layr\n"
        "    units: 10\n  - name: out\n    kind: readout\n", f);
  fclose(f);
  const char *cmds[2] = {"run", "check"};
  for (int c = 0; c < 2; c++) {
    const char *argv[] = {"", cmds[c], topo, "--out", out, NULL};
    if (c == 1) argv[3] = NULL;
    int rc = s_wait(s_start(argv, log), 30);
    ck_assert_int_eq(rc, 2);
    const char *text = s_slurp(log);
    char where[320];
    snprintf(where, sizeof where, "%s:6:", topo);
    ck_assert_msg(strstr(text, where) != NULL, "expected '%s' in:\n%s", where, text);
    ck_assert_msg(strstr(text, "ff_layr") != NULL, "%s", text);
    ck_assert(access(out, F_OK) != 0); // nothing was started or written
  }
}
END_TEST

// Sends junk into l1's input socket while a run is in flight.
START_TEST(test_garbage_frames_are_counted_and_dropped) {
  char out[300], log[300];
  snprintf(out, sizeof out, "%s/garbage", s_tmp);
  snprintf(log, sizeof log, "%s/garbage.log", s_tmp);
  const char *argv[] = {"", "run", "configs/mnist-ff.yaml", "--quiet", "--out", out, S_SMALL_SETS, NULL};
  pid_t pid = s_start(argv, log);
  char ep[400], path[320];
  snprintf(path, sizeof path, "/tmp/ffs-%d/l1.in", (int)pid);
  snprintf(ep, sizeof ep, "ipc://%s", path);
  for (int i = 0; i < 200 && access(path, F_OK) != 0; i++) usleep(50000);
  ck_assert_msg(access(path, F_OK) == 0, "l1 never bound %s", path);
  void *ctx = zmq_ctx_new();
  void *push = zmq_socket(ctx, ZMQ_PUSH);
  int linger = 2000;
  zmq_setsockopt(push, ZMQ_LINGER, &linger, sizeof linger);
  ck_assert_int_eq(zmq_connect(push, ep), 0);
  // 1: random bytes; 2: a valid header with a short payload; 3: wrong width;
  // 4: NaN in the payload; 5: a shard's slice where the source sends whole
  // frames; 6: a shared-memory descriptor naming a buffer that is not there
  unsigned char junk[256];
  srand(5);
  for (size_t i = 0; i < sizeof junk; i++) junk[i] = (unsigned char)rand();
  static uint8_t buf[1 << 16];
  float row[784];
  for (int i = 0; i < 784; i++) row[i] = 0.5f;
  ffs_frame_hdr_t h = {.kind = FFS_FRAME_DATA, .rows = 1, .cols = 784};
  size_t good = ffs_frame_encode(buf, sizeof buf, &h, NULL, row);
  ck_assert(good > 0);
  for (int k = 0; k < 5; k++) {
    zmq_send(push, junk, sizeof junk, 0);
    zmq_send(push, buf, good - 10, 0);
  }
  h.cols = 783;
  size_t wrong = ffs_frame_encode(buf, sizeof buf, &h, NULL, row);
  zmq_send(push, buf, wrong, 0);
  h.cols = 784;
  row[3] = 0.0f / 0.0f;
  size_t nan = ffs_frame_encode(buf, sizeof buf, &h, NULL, row);
  zmq_send(push, buf, nan, 0);
  row[3] = 0.5f;
  h.cols = 392, h.nshards = 2, h.shard = 1, h.col0 = 392;
  size_t slice = ffs_frame_encode(buf, sizeof buf, &h, NULL, row);
  zmq_send(push, buf, slice, 0);
  // pid 1, fd 200, slot 0, incarnation 0 (l1's): a descriptor in form, but
  // no frame buffer of ours there
  const uint8_t desc[45] = {0x98, 0xa3, 's', 'h', 'm', 0xce, 0, 0, 0, 1, 0xce, 0, 0, 0, 200,
                            0xcf, 1, 2, 3, 4, 5, 6, 7, 8, 0xce, 0, 0, 0, 1, 0xcf, 0, 0, 0, 0,
                            0, 0, 1, 0, 0xcc, 0, 0xce, 0, 0, 0, 0};
  zmq_send(push, desc, sizeof desc, 0);
  int rc = s_wait(pid, 300); // the socket stays open until the run is over
  zmq_close(push);
  zmq_ctx_term(ctx);
  ck_assert_msg(rc == 0, "run exited %d:\n%s", rc, s_slurp(log));
  const char *json = s_summary_learned(out, "with garbage on l1's input");
  double bad = s_json(json, "\"name\": \"l1\"", "bad_frames");
  ck_assert_msg(bad == 14, "l1 counted %g bad frames, expected 14\n%s\nlog:\n%s", bad, json,
                s_slurp(log));
  ck_assert_msg(strstr(s_slurp(log), "dropped a bad frame") != NULL, "%s", s_slurp(log));
}
END_TEST

START_TEST(test_help_and_check) {
  char log[300];
  snprintf(log, sizeof log, "%s/help.log", s_tmp);
  const char *subs[] = {"run", "stage", "check"};
  for (int i = 0; i < 3; i++) {
    const char *argv[] = {"", subs[i], "--help", NULL};
    ck_assert_int_eq(s_wait(s_start(argv, log), 10), 0);
    ck_assert(strstr(s_slurp(log), "usage: ffstream") != NULL);
  }
  const char *argv[] = {"", "check", "configs/mnist-ff.yaml", NULL};
  ck_assert_int_eq(s_wait(s_start(argv, log), 10), 0);
  ck_assert(strstr(s_slurp(log), "ok") != NULL);
  const char *bad[] = {"", "run", "configs/mnist-ff.yaml", "--epochs", "zero", NULL};
  ck_assert_int_eq(s_wait(s_start(bad, log), 10), 2);
  ck_assert(strstr(s_slurp(log), "--epochs") != NULL);
}
END_TEST

// A tap (a kind added through the kind table alone) on a sharded layer
// records its activity while the run trains: numpy opens the files, one
// row per evaluated test sample and epoch, as wide as the layer, each row
// the layer's normalized activity (unit RMS), labels and epochs beside.
START_TEST(test_tap_records_a_layers_activity) {
  char cfg[300], out[300], log[300], cmd[1200];
  snprintf(cfg, sizeof cfg, "%s/tap.yaml", s_tmp);
  snprintf(out, sizeof out, "%s/tap", s_tmp);
  snprintf(log, sizeof log, "%s/tap.log", s_tmp);
  FILE *f = fopen(cfg, "w");
  ck_assert_ptr_nonnull(f);
  fputs("data: {set: mnist, dir: data/mnist}\n"
        "stages:\n"
        "  - {name: src, kind: source}\n"
        "  - {name: l1, kind: ff_layer, units: 256}\n"
        "  - {name: l2, kind: ff_layer, units: 256, shards: 2}\n"
        "  - {name: l3, kind: ff_layer, units: 256}\n"
        "  - {name: out, kind: readout}\n"
        "  - {name: t2, kind: tap, layer: l2}\n",
        f);
  fclose(f);
  const char *argv[] = {"", "run", cfg, "--quiet", "--out", out, S_SMALL_SETS, NULL};
  int rc = s_wait(s_start(argv, log), 300);
  ck_assert_msg(rc == 0, "run exited %d:\n%s", rc, s_slurp(log));
  snprintf(cmd, sizeof cmd,
           "/usr/bin/python3 -c \"import numpy as np; a = np.load('%s/tap/t2.npy'); "
           "m = np.load('%s/tap/t2.rows.npy'); rms = np.sqrt((a * a).mean(1)); "
           "print(a.shape, m.shape, sorted(set(m[:, 2].astype(int))), "
           "sorted(set(m[:, 0].astype(int))) == list(range(10)), set(m[:, 1].astype(int)), "
           "bool(abs(rms.mean() - 1) < 0.01))\" 2>&1",
           out, out);
  FILE *p = popen(cmd, "r");
  ck_assert_ptr_nonnull(p);
  char got[512] = "";
  size_t n = fread(got, 1, sizeof got - 1, p);
  got[n] = 0;
  pclose(p);
  ck_assert_msg(strstr(got, "(3000, 256) (3000, 3) [0, 1, 2] True {-1} True"), "numpy says: %s", got);
}
END_TEST

static Suite *s_suite(void) {
  Suite *s = suite_create("e2e");
  TCase *cli = s_tcase(s, "cli", 0);
  tcase_add_test(cli, test_help_and_check);
  tcase_add_test(cli, test_bad_topology_starts_nothing);
  TCase *run = s_tcase(s, "run", 400);
  tcase_add_test(run, test_process_mode_learns_and_feedback_travels);
  tcase_add_test(run, test_thread_mode_learns);
  tcase_add_test(run, test_garbage_frames_are_counted_and_dropped);
  tcase_add_test(run, test_tap_records_a_layers_activity);
  return s;
}

int main(void) { return ffs_check_run(s_suite()); }
