// check_e2e_stream: train.mode: stream from the outside, through the
// `ffstream` binary: each feed (the training set, y4m video from a file and
// from ffmpeg, CSV rows, UDP datagrams, a Python producer) streams through a
// pipeline that scores every labelled sample before learning from it; bad
// input is refused and counted or ends the stream with its reason, and the
// run still ends with its checkpoints and summary; drop_oldest drops and
// counts when a layer is slow; published predictions reach a subscriber.
#include "t_e2e_util.h"

#include <arpa/inet.h>
#include <msgpack.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <zmq.h>

#include "ffs_idx.h"

#define S_UDP_PORT 39517 // loopback only

// Writes a stream topology to s_tmp/NAME.yaml: a 784-64-64 network at
// batch 1 with a softmax readout (labels overlaid in the first pixels),
// the source's entry `source` (after "kind: source, "), `train` keys added
// to the train block, `readout` keys added to the readout's entry; classes:
// data.classes (0 = MNIST's 10).
static const char *s_topology(const char *name, const char *source, const char *train,
                              const char *readout, int classes) {
  static char path[400];
  snprintf(path, sizeof path, "%s/%s.yaml", s_tmp, name);
  FILE *f = fopen(path, "w");
  ck_assert(f != NULL);
  fprintf(f,
          "name: %s\nseed: 1\ndata: {set: mnist, classes: %d}\n"
          "train: {mode: stream, batch: 1, eval_batch: 100, ckpt_every_s: 0%s%s}\n"
          "layer: {lr: 0.0003, optimizer: adam, peer_lambda: 0.03}\n"
          "stages:\n"
          "  - {name: src, kind: source%s%s}\n"
          "  - {name: l1, kind: ff_layer, units: 64}\n"
          "  - {name: l2, kind: ff_layer, units: 64}\n"
          "  - {name: out, kind: readout, softmax: [l1, l2], softmax_lr: 0.01%s%s}\n",
          name, classes ? classes : 10, train[0] ? ", " : "", train, source[0] ? ", " : "", source,
          readout[0] ? ", " : "", readout);
  fclose(f);
  return path;
}

// Runs `ffstream run TOPO --quiet --out s_tmp/NAME` to its end (120 s at
// most, exit status 0) and returns its summary.json.
static const char *s_run_topo(const char *name, const char *topo) {
  static const char *const none[] = {NULL};
  return s_run_named(name, topo, none, NULL, NULL, NULL, NULL);
}

// The number of [samples, accuracy] pairs in summary.json's stream.windows.
static int s_n_windows(const char *json) {
  const char *p = strstr(json, "\"windows\": [");
  int n = 0;
  for (p = p ? p + 12 : NULL; p && *p && *p != '}'; p++) n += *p == '[';
  return n;
}

// The first n MNIST training digits as a y4m file (mono 28x28) and their
// labels, one per line, in s_tmp/NAME.y4m and s_tmp/NAME.labels; cut bytes
// off the end of the video.
static void s_write_digits(const char *name, int n, int cut) {
  char err[256], path[400];
  snprintf(path, sizeof path, "%s/data/mnist", s_src());
  ffs_dataset_t *d = ffs_dataset_load(path, "train", n, 10, err, sizeof err);
  ck_assert_msg(d != NULL, "%s", err);
  snprintf(path, sizeof path, "%s/%s.y4m", s_tmp, name);
  FILE *v = fopen(path, "wb");
  snprintf(path, sizeof path, "%s/%s.labels", s_tmp, name);
  FILE *l = fopen(path, "w");
  ck_assert(v && l);
  fprintf(v, "YUV4MPEG2 W28 H28 F30:1 Ip A1:1 Cmono\n");
  for (int i = 0; i < d->n; i++) {
    uint8_t px[784];
    for (int k = 0; k < 784; k++)
      px[k] = (uint8_t)(d->x[(size_t)i * 784 + (size_t)k] * 255.0f + 0.5f);
    fprintf(v, "FRAME\n");
    fwrite(px, 1, i == d->n - 1 ? 784 - (size_t)cut : 784, v);
    fprintf(l, "%d\n", d->y[i]);
  }
  fclose(v), fclose(l);
  ffs_dataset_destroy(&d);
}

// ---- the training set, scored before learning ----

START_TEST(test_stream_scores_before_learning) {
  char ep[400], topo_keys[500];
  snprintf(ep, sizeof ep, "ipc://%s/pred", s_tmp);
  snprintf(topo_keys, sizeof topo_keys, "primary: softmax, publish: \"%s\"", ep);
  const char *topo = s_topology("idx", "", "window: 500, final_test: true", topo_keys, 0);
  // a subscriber, connected before the publisher binds (ZeroMQ reconnects)
  void *ctx = zmq_ctx_new(), *sub = zmq_socket(ctx, ZMQ_SUB);
  int tmo = 200;
  zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "", 0);
  zmq_setsockopt(sub, ZMQ_RCVTIMEO, &tmo, sizeof tmo);
  ck_assert_int_eq(zmq_connect(sub, ep), 0);
  char out[300], log[300];
  snprintf(out, sizeof out, "%s/idx", s_tmp);
  snprintf(log, sizeof log, "%s/idx.log", s_tmp);
  const char *argv[] = {"", "run", topo, "--quiet", "--out", out, "--set", "data.train_limit=2000",
                        "--set", "data.test_limit=500", NULL};
  pid_t pid = s_start(argv, log);
  int got = 0, good = 0, status = -1;
  while (waitpid(pid, &status, WNOHANG) == 0) { // read predictions while it runs
    char buf[4096];
    int n = zmq_recv(sub, buf, sizeof buf, 0);
    if (n <= 0 || n > (int)sizeof buf) continue;
    got++;
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    if (msgpack_unpack_next(&u, buf, (size_t)n, NULL) == MSGPACK_UNPACK_SUCCESS &&
        u.data.type == MSGPACK_OBJECT_MAP) {
      int keys = 0, ok = 1;
      for (uint32_t k = 0; k < u.data.via.map.size; k++) {
        msgpack_object_kv *kv = &u.data.via.map.ptr[k];
        const char *key = kv->key.via.str.ptr;
        int len = (int)kv->key.via.str.size;
        if (len == 4 && !memcmp(key, "pred", 4))
          keys++, ok &= kv->val.via.i64 >= 0 && kv->val.via.i64 < 10;
        if (len == 5 && !memcmp(key, "probs", 5))
          keys++, ok &= kv->val.type == MSGPACK_OBJECT_ARRAY && kv->val.via.array.size == 10;
        if (len == 5 && !memcmp(key, "label", 5))
          keys++, ok &= kv->val.via.i64 >= 0 && kv->val.via.i64 < 10;
        if (len == 5 && !memcmp(key, "index", 5)) keys++;
      }
      good += keys == 4 && ok;
    }
    msgpack_unpacked_destroy(&u);
  }
  zmq_close(sub), zmq_ctx_term(ctx);
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s", s_slurp(log));
  char path[400];
  snprintf(path, sizeof path, "%s/summary.json", out);
  const char *json = s_slurp(path);
  ck_assert_msg(json && s_json(json, "\"stream\"", "samples") == 2000, "%s", json);
  // every labelled sample was scored, with the weights it met, then learned
  ck_assert_msg(s_json(json, "\"stream\"", "scored") == 2000, "%s", json);
  ck_assert_msg(s_json(json, "\"stream\"", "prequential_accuracy") > 0.5, "%s", json);
  ck_assert_msg(s_n_windows(json) == 4, "%s", json);
  ck_assert_msg(s_json(json, "\"stream\"", "published") == 2000, "%s", json);
  ck_assert_msg(strstr(json, "\"input_error\": null") != NULL, "%s", json);
  // the test after the stream (train.final_test)
  double err = s_json(json, NULL, "test_error");
  ck_assert_msg(err >= 0 && err < 0.5, "%s", json);
  // the subscriber read well-formed predictions
  ck_assert_msg(got > 100 && good == got, "%d messages, %d well-formed", got, good);
}
END_TEST

// ---- video ----

START_TEST(test_stream_ffmpeg_testsrc) {
  // ffmpeg's own test pattern, unlabelled: learned with hybrid negatives
  const char *topo = s_topology(
      "testsrc",
      "feed: y4m, width: 32, height: 24, command: \"ffmpeg -v error -f lavfi -i "
      "testsrc=size=32x24:rate=30 -frames:v 300 -pix_fmt gray -f yuv4mpegpipe -\"",
      "negatives: hybrid", "energy: [], primary: softmax", 0);
  const char *json = s_run_topo("testsrc", topo);
  ck_assert_msg(s_json(json, "\"stream\"", "samples") == 300, "%s", json);
  ck_assert_msg(s_json(json, "\"stream\"", "scored") == 0, "%s", json); // no labels
  ck_assert_msg(strstr(json, "\"input_error\": null") != NULL, "%s", json);
  ck_assert_msg(s_json(json, "\"name\": \"l1\"", "bad_frames") == 0, "%s", json);
}
END_TEST

START_TEST(test_stream_mnist_video_with_labels) {
  s_write_digits("digits", 2000, 0);
  char src[900];
  snprintf(src, sizeof src, "feed: y4m, width: 28, height: 28, input: %s/digits.y4m, "
           "labels: %s/digits.labels", s_tmp, s_tmp);
  const char *json = s_run_topo("digits", s_topology("digits", src, "window: 1000", "", 0));
  ck_assert_msg(s_json(json, "\"stream\"", "samples") == 2000, "%s", json);
  ck_assert_msg(s_json(json, "\"stream\"", "scored") == 2000, "%s", json);
  ck_assert_msg(s_json(json, "\"stream\"", "prequential_accuracy") > 0.5, "%s", json);
}
END_TEST

START_TEST(test_stream_truncated_video_keeps_learning) {
  s_write_digits("cut", 300, 100); // the last frame lacks 100 bytes
  char src[900], ckpt[400];
  snprintf(src, sizeof src, "feed: y4m, width: 28, height: 28, input: %s/cut.y4m, "
           "labels: %s/cut.labels", s_tmp, s_tmp);
  const char *json = s_run_topo("cut", s_topology("cut", src, "", "", 0));
  ck_assert_msg(s_json(json, "\"stream\"", "samples") == 299, "%s", json);
  ck_assert_msg(strstr(json, "frame 299: truncated") != NULL, "%s", json);
  snprintf(ckpt, sizeof ckpt, "%s/cut/ckpt/l1.safetensors", s_tmp);
  ck_assert_msg(access(ckpt, R_OK) == 0, "no %s", ckpt); // what it learned is kept
}
END_TEST

START_TEST(test_stream_bad_header_and_dead_command) {
  char path[400], src[900];
  snprintf(path, sizeof path, "%s/bad.y4m", s_tmp);
  FILE *f = fopen(path, "w");
  fputs("YUV4MPEG2 W28 Hx\nFRAME\n", f);
  fclose(f);
  snprintf(src, sizeof src, "feed: y4m, width: 28, height: 28, input: %s", path);
  const char *json = s_run_topo("badhdr", s_topology("badhdr", src, "", "", 0));
  ck_assert_msg(s_json(json, "\"stream\"", "samples") == 0, "%s", json);
  ck_assert_msg(strstr(json, "bad.y4m: header") != NULL, "%s", json);
  ck_assert_msg(strstr(json, "\"status\": \"ok\"") != NULL, "%s", json);
  // a producer command that dies after 50 frames: the run ends cleanly
  s_write_digits("dies", 100, 0);
  snprintf(src, sizeof src, "feed: y4m, width: 28, height: 28, command: \"head -c %d "
           "%s/dies.y4m; exit 3\"", 38 + 50 * (6 + 784), s_tmp);
  json = s_run_topo("dies", s_topology("dies", src, "", "", 0));
  ck_assert_msg(s_json(json, "\"stream\"", "samples") == 50, "%s", json);
  ck_assert_msg(strstr(json, "exited with status 3") != NULL, "%s", json);
}
END_TEST

START_TEST(test_stream_video_on_stdin_changes_size) {
  // the video on the launcher's standard input, its 201st frame of another size
  s_write_digits("stdin", 200, 0);
  char video[400], src[600], out[300], log[300];
  snprintf(video, sizeof video, "%s/stdin.y4m", s_tmp);
  FILE *f = fopen(video, "a");
  fputs("YUV4MPEG2 W32 H32 F30:1 Cmono\nFRAME\n", f);
  for (int k = 0; k < 32 * 32; k++) fputc(0, f);
  fclose(f);
  snprintf(src, sizeof src, "feed: y4m, width: 28, height: 28, input: \"-\", labels: "
           "%s/stdin.labels", s_tmp);
  const char *topo = s_topology("stdin", src, "", "", 0);
  snprintf(out, sizeof out, "%s/stdin", s_tmp);
  snprintf(log, sizeof log, "%s/stdin.log", s_tmp);
  pid_t pid = fork();
  if (pid == 0) { // s_start with the video as standard input
    int in = open(video, O_RDONLY);
    if (in < 0 || dup2(in, 0) < 0) _exit(125);
    const char *argv[] = {"", "run", topo, "--quiet", "--out", out, NULL};
    s_start(argv, log); // (a grandchild; this child waits for it)
    int status;
    wait(&status);
    _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 126);
  }
  int rc = s_wait(pid, 120);
  ck_assert_msg(rc == 0, "exit %d: %s", rc, s_slurp(log));
  char path[400];
  snprintf(path, sizeof path, "%s/summary.json", out);
  const char *json = s_slurp(path);
  ck_assert_msg(json && s_json(json, "\"stream\"", "samples") == 200, "%s", json);
  ck_assert_msg(strstr(json, "standard input") && strstr(json, "frame 200"), "%s", json);
}
END_TEST

// ---- sensors ----

START_TEST(test_stream_csv_skips_bad_rows) {
  char path[400], src[900];
  snprintf(path, sizeof path, "%s/rows.csv", s_tmp);
  FILE *f = fopen(path, "w");
  fputs("a,b,c,d,e,f,g,h,label\n", f);
  for (int i = 0; i < 300; i++) {
    int y = i % 2;
    for (int k = 0; k < 8; k++) fprintf(f, "%.3f,", (y ? 1.0 : -1.0) * (0.5 + 0.1 * k));
    fprintf(f, "%d\n", y);
    if (i == 10) fputs("1,2,3\n", f);                      // too few columns
    if (i == 20) fputs("1,2,abc,4,5,6,7,8,0\n", f);        // not a number
    if (i == 30) fputs("1,2,3,4,nan,6,7,8,1\n", f);        // NaN
  }
  fclose(f);
  snprintf(src, sizeof src, "feed: csv, input: %s, columns: 9, label_column: 8, window: 4, hop: 1",
           path);
  char log[400];
  const char *json = s_run_topo("csv", s_topology("csv", src, "", "", 2));
  ck_assert_msg(s_json(json, "\"stream\"", "samples") == 297, "%s", json); // 300 - 3 (window)
  ck_assert_msg(s_json(json, "\"stream\"", "refused") == 3, "%s", json);
  snprintf(log, sizeof log, "%s/csv.log", s_tmp);
  ck_assert_msg(strstr(s_slurp(log), "line ") != NULL, "%s", s_slurp(log));
}
END_TEST

// Sends one datagram to the source's UDP address.
static void s_udp_send(int fd, const char *text) {
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(S_UDP_PORT)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ck_assert(sendto(fd, text, strlen(text), 0, (struct sockaddr *)&a, sizeof a) ==
            (ssize_t)strlen(text));
}

// Waits until the run in out is streaming (its metrics.csv has begun).
static void s_wait_started(const char *out, const char *log) {
  char path[400];
  snprintf(path, sizeof path, "%s/metrics.csv", out);
  for (int i = 0; i < 1200; i++) {
    const char *p = s_slurp(path);
    if (p && strstr(p, "wall_s,")) return;
    usleep(50000);
  }
  ck_abort_msg("the run did not start: %s", s_slurp(log));
}

// Waits until the run's metrics.csv shows `n` samples handled or dropped.
static void s_wait_handled(const char *out, double n) {
  char path[400];
  snprintf(path, sizeof path, "%s/metrics.csv", out);
  for (int i = 0; i < 1200; i++) {
    const char *p = s_slurp(path), *last = p ? strrchr(p, '\n') : NULL;
    while (last && last > p && last[-1] != '\n') last--; // the last complete row's start
    if (last && last > p) {
      const char *row = last - 1;
      while (row > p && row[-1] != '\n') row--;
      double wall, samples, rate, scored, acc, win, dropped;
      if (sscanf(row, "%lf,%lf,%lf,%lf,%lf,%lf,%lf", &wall, &samples, &rate, &scored, &acc, &win,
                 &dropped) == 7 && samples + dropped >= n)
        return;
    }
    usleep(50000);
  }
}

// A run over a UDP feed: starts it, sends n rows of a two-class sensor
// (and `garbage` malformed datagrams), waits until they are handled, ends
// the stream with Ctrl-C and returns the summary.
static const char *s_udp_run(const char *name, const char *extra, int n, int garbage,
                             const char *l1_delay) {
  char src[300], out[300], log[300], path[400];
  snprintf(src, sizeof src, "feed: udp, bind: \"udp://127.0.0.1:%d\", columns: 5, "
           "label_column: 4, window: 4, hop: 1%s", S_UDP_PORT, extra);
  const char *topo = s_topology(name, src, "window: 500", "", 2);
  snprintf(out, sizeof out, "%s/%s", s_tmp, name);
  snprintf(log, sizeof log, "%s/%s.log", s_tmp, name);
  const char *argv[] = {"", "run", topo, "--quiet", "--out", out, "--set", l1_delay, NULL};
  pid_t pid = s_start(argv, log);
  s_wait_started(out, log);
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  char row[128];
  for (int i = 0; i < n; i++) {
    int y = (i / 8) % 2; // the class holds for 8 rows: a window of 4 sees one class mostly
    snprintf(row, sizeof row, "%.2f,%.2f,%.2f,%.2f,%d", y ? 1.0 : -1.0, y ? 0.8 : -0.8,
             y ? -0.5 : 0.5, 0.1 * (i % 5), y);
    s_udp_send(fd, row);
    if (i % 50 == 0) s_udp_send(fd, garbage-- > 0 ? "1,2,zz,4,0" : "");
    if (i % 64 == 0) usleep(2000); // the kernel's queue is large, not endless
  }
  while (garbage-- > 0) s_udp_send(fd, "not,a,row");
  close(fd);
  s_wait_handled(out, n - 3);
  kill(pid, SIGINT); // the stream ends where it is, its learning kept
  int rc = s_wait(pid, 60);
  ck_assert_msg(rc == 0, "exit %d: %s", rc, s_slurp(log));
  snprintf(path, sizeof path, "%s/summary.json", out);
  const char *json = s_slurp(path);
  ck_assert_msg(json != NULL, "no %s", path);
  return json;
}

START_TEST(test_stream_udp_sensor_is_learned) {
  const char *json = s_udp_run("udp", ", queue: 8192", 3000, 40, "l1.delay_ms=0");
  // every row arrived (loopback, a queue that holds them all), windows of 4
  ck_assert_msg(s_json(json, "\"stream\"", "samples") == 2997, "%s", json);
  ck_assert_msg(s_json(json, "\"stream\"", "dropped") == 0, "%s", json);
  ck_assert_msg(s_json(json, "\"stream\"", "refused") >= 40, "%s", json); // + the empty ones
  ck_assert_msg(s_json(json, "\"stream\"", "window_accuracy") > 0.8, "%s", json);
}
END_TEST

START_TEST(test_stream_drop_oldest_with_slow_layer) {
  // l1 takes 5 ms a frame; the queue holds 8: the sender is never blocked,
  // the oldest waiting samples are dropped and counted
  const char *json = s_udp_run("drop", ", queue: 8, overflow: drop_oldest", 1000, 0,
                               "l1.delay_ms=5");
  double samples = s_json(json, "\"stream\"", "samples");
  double dropped = s_json(json, "\"stream\"", "dropped");
  ck_assert_msg(dropped > 0 && samples + dropped == 997, "%s", json);
}
END_TEST

START_TEST(test_stream_drop_oldest_never_blocks_a_command) {
  // ffmpeg writes 1 000 frames as fast as it can; l1 takes 5 ms a frame and
  // the queue holds 8: the reader drains the pipe whatever the pipeline does,
  // so the oldest frames are dropped (counted) rather than ffmpeg held back
  const char *topo = s_topology(
      "cmddrop",
      "feed: y4m, width: 28, height: 28, overflow: drop_oldest, queue: 8, command: \"ffmpeg "
      "-v error -f lavfi -i testsrc=size=28x28:rate=30 -frames:v 1000 -pix_fmt gray -f "
      "yuv4mpegpipe -\"",
      "negatives: hybrid", "energy: [], primary: softmax", 0);
  static const char *const slow[] = {"--set", "l1.delay_ms=5", NULL};
  const char *json = s_run_named("cmddrop", topo, slow, NULL, NULL, NULL, NULL);
  double samples = s_json(json, "\"stream\"", "samples");
  double dropped = s_json(json, "\"stream\"", "dropped");
  ck_assert_msg(dropped > 0 && samples + dropped == 1000, "%s", json);
  ck_assert_msg(strstr(json, "\"input_error\": null") != NULL, "%s", json);
}
END_TEST

// ---- any program ----

START_TEST(test_stream_python_producer) {
  char ep[400], src[600], cmd[1400], log[400];
  snprintf(ep, sizeof ep, "ipc://%s/feed", s_tmp);
  snprintf(src, sizeof src, "feed: zmq, bind: \"%s\"", ep);
  const char *topo = s_topology("producer", src, "", "", 0);
  char out[300];
  snprintf(out, sizeof out, "%s/producer", s_tmp);
  snprintf(log, sizeof log, "%s/producer.log", s_tmp);
  const char *argv[] = {"", "run", topo, "--quiet", "--out", out, NULL};
  pid_t pid = s_start(argv, log);
  s_wait_started(out, log);
  snprintf(cmd, sizeof cmd, "cd %s && /usr/bin/python3 proto/examples/producer.py --connect %s "
           "--limit 500 --bad 3 --mark > %s/py.log 2>&1", s_src(), ep, s_tmp);
  ck_assert_msg(system(cmd) == 0, "producer failed: %s", cmd);
  int rc = s_wait(pid, 120); // its end MARK ends the stream
  ck_assert_msg(rc == 0, "exit %d: %s", rc, s_slurp(log));
  char path[400];
  snprintf(path, sizeof path, "%s/summary.json", out);
  const char *json = s_slurp(path);
  ck_assert_msg(json && s_json(json, "\"stream\"", "samples") == 500, "%s", json);
  ck_assert_msg(s_json(json, "\"stream\"", "scored") == 500, "%s", json);
  ck_assert_msg(s_json(json, "\"stream\"", "refused") == 3, "%s", json);
}
END_TEST

static Suite *s_suite(void) {
  Suite *s = suite_create("e2e_stream");
  TCase *feeds = s_tcase(s, "feeds", 300);
  tcase_add_test(feeds, test_stream_scores_before_learning);
  tcase_add_test(feeds, test_stream_ffmpeg_testsrc);
  tcase_add_test(feeds, test_stream_mnist_video_with_labels);
  tcase_add_test(feeds, test_stream_truncated_video_keeps_learning);
  tcase_add_test(feeds, test_stream_bad_header_and_dead_command);
  tcase_add_test(feeds, test_stream_video_on_stdin_changes_size);
  tcase_add_test(feeds, test_stream_csv_skips_bad_rows);
  tcase_add_test(feeds, test_stream_udp_sensor_is_learned);
  tcase_add_test(feeds, test_stream_drop_oldest_with_slow_layer);
  tcase_add_test(feeds, test_stream_drop_oldest_never_blocks_a_command);
  tcase_add_test(feeds, test_stream_python_producer);
  return s;
}

int main(void) { return ffs_check_run(s_suite()); }
