// check_soak: a live stream for 10 minutes (FFS_SOAK_S seconds): ffmpeg's
// test pattern played at 100 frames/s through a learning pipeline. Every
// stage's resident memory (and the launcher's) must stay flat once warm,
// nothing may be dropped at that rate, and Ctrl-C must end the stream with
// its summary. Runs in `make test` on the optimized build only (under the
// sanitizers the allocator's own bookkeeping is what would be measured).
#include "t_e2e_util.h"

#include <ctype.h>
#include <dirent.h>

#define S_MAX_PIDS 16
#define S_SAMPLE_S 5

// The pids of pid's children.
static int s_children(pid_t pid, pid_t *out, int cap) {
  DIR *d = opendir("/proc");
  struct dirent *e;
  int n = 0;
  while (d && (e = readdir(d)) && n < cap) {
    if (!isdigit((unsigned char)e->d_name[0])) continue;
    char path[300], buf[512];
    snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
    FILE *f = fopen(path, "r");
    if (!f) continue;
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = 0;
    const char *close_paren = strrchr(buf, ')');
    int ppid = 0;
    char state;
    if (close_paren && sscanf(close_paren + 1, " %c %d", &state, &ppid) == 2 && ppid == pid)
      out[n++] = (pid_t)atoi(e->d_name);
  }
  if (d) closedir(d);
  return n;
}

// VmRSS of pid in KiB (-1 when it is gone).
static long s_rss_kib(pid_t pid) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  FILE *f = fopen(path, "r");
  long kib = -1;
  while (f && fgets(line, sizeof line, f))
    if (sscanf(line, "VmRSS: %ld", &kib) == 1) break;
  if (f) fclose(f);
  return kib;
}

START_TEST(test_soak_memory_stays_flat) {
  const char *env = getenv("FFS_SOAK_S");
  int soak_s = env ? atoi(env) : 600;
  if (soak_s < 60) soak_s = 60;
  char topo[400], out[300], log[300], path[400];
  snprintf(topo, sizeof topo, "%s/soak.yaml", s_tmp);
  snprintf(out, sizeof out, "%s/soak", s_tmp);
  snprintf(log, sizeof log, "%s/soak.log", s_tmp);
  FILE *f = fopen(topo, "w");
  fprintf(f, "name: soak\ndata: {set: mnist}\n"
             "train: {mode: stream, batch: 1, negatives: hybrid, ckpt_every_s: 30}\n"
             "stages:\n"
             "  - {name: src, kind: source, feed: y4m, width: 28, height: 28, overflow: "
             "drop_oldest,\n     command: \"ffmpeg -v error -re -f lavfi -i "
             "testsrc=size=28x28:rate=100 -pix_fmt gray -f yuv4mpegpipe -\"}\n"
             "  - {name: l1, kind: ff_layer, units: 200}\n"
             "  - {name: l2, kind: ff_layer, units: 200}\n"
             "  - {name: out, kind: readout, energy: [], primary: softmax,"
             " publish: \"ipc://%s/pred\"}\n", s_tmp);
  fclose(f);
  const char *argv[] = {"", "run", topo, "--quiet", "--out", out, NULL};
  pid_t pid = s_start(argv, log);
  snprintf(path, sizeof path, "%s/metrics.csv", out);
  for (int i = 0; i < 1200 && !(s_slurp(path) && strstr(s_slurp(path), "wall_s")); i++)
    usleep(50000);
  pid_t pids[S_MAX_PIDS];
  int n = s_children(pid, pids + 1, S_MAX_PIDS - 1) + 1;
  pids[0] = pid;
  ck_assert_msg(n >= 5, "found %d processes (the launcher and its 4 stages)", n);
  // warm after the first fifth; flat: no sample of the last half above the
  // warm figure by more than 4 MiB + 5 %
  long warm[S_MAX_PIDS] = {0}, top[S_MAX_PIDS] = {0};
  int ticks = soak_s / S_SAMPLE_S;
  for (int k = 0; k <= ticks; k++) {
    for (int i = 0; i < n; i++) {
      long kib = s_rss_kib(pids[i]);
      if (kib < 0) continue; // (ffmpeg's shell may be among them)
      if (k == ticks / 5) warm[i] = kib;
      if (k >= ticks / 2 && kib > top[i]) top[i] = kib;
    }
    if (k < ticks) sleep(S_SAMPLE_S);
  }
  kill(pid, SIGINT); // the stream ends: checkpoints, summary
  int rc = s_wait(pid, 120);
  ck_assert_msg(rc == 0, "exit %d: %s", rc, s_slurp(log));
  for (int i = 0; i < n; i++) {
    if (!warm[i]) continue;
    ck_assert_msg(top[i] <= warm[i] + 4096 + warm[i] / 20,
                  "process %d grew from %ld KiB (warm) to %ld KiB over %d s", (int)pids[i],
                  warm[i], top[i], soak_s);
  }
  snprintf(path, sizeof path, "%s/summary.json", out);
  const char *json = s_slurp(path);
  ck_assert_msg(json != NULL, "no summary");
  double samples = s_json(json, "\"stream\"", "samples");
  ck_assert_msg(samples > 50.0 * soak_s, "%s", json); // 100/s played, half at least taken
  ck_assert_msg(s_json(json, "\"stream\"", "dropped") == 0, "%s", json);
  ck_assert_msg(s_json(json, "\"stream\"", "published") == samples, "%s", json);
}
END_TEST

static Suite *s_suite(void) {
  Suite *s = suite_create("soak");
  TCase *tc = s_tcase(s, "soak", 1000);
  tcase_add_test(tc, test_soak_memory_stays_flat);
  return s;
}

int main(void) { return ffs_check_run(s_suite()); }
