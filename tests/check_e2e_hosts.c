// check_e2e_hosts: a run over several hosts, from the outside. Three network
// namespaces joined by a bridge act as three hosts (tests/net/hosts.sh);
// the launcher runs on the first and starts the stages with --launcher ssh
// through `ip netns exec {host} {cmd}`. Also a single-node Slurm the test
// starts itself (tests/net/slurm.sh), Open MPI's mpirun, peers that must not
// get in (tests/net/intruder.py), and a link cut mid-run. Needs root (the
// namespaces, the Slurm daemons); traffic goes only to loopback and to the
// addresses inside the namespaces the test makes.
#include "t_e2e_util.h"

#include <math.h>
#include <stdarg.h>
#include <time.h>

static double s_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#define S_PREFIX "ffh" // the hosts ffh1, ffh2, ffh3 (10.200.0.1-3)
#define S_HOSTS                                                                                  \
  "hosts=[{name: ffh1, address: 10.200.0.1}, {name: ffh2, address: 10.200.0.2}, "              \
  "{name: ffh3, address: 10.200.0.3}]"
#define S_SSH "launch.ssh=ip netns exec {host} {cmd}"
// src and l1 on the launcher's host, l2 alone, l3 and the readout on the third
#define S_SPREAD                                                                                 \
  "--set", S_HOSTS, "--set", "l2.host=ffh2", "--set", "l3.host=ffh3", "--set", "out.host=ffh3",  \
      "--set", S_SSH, "--launcher", "ssh"

// Runs a shell command from the source folder; its exit status.
static int s_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int s_sh(const char *fmt, ...) {
  char cmd[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  char full[2200];
  snprintf(full, sizeof full, "cd '%s' && %s", s_src(), cmd);
  int rc = system(full);
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static void s_hosts_up(void) {
  s_sh("bash tests/net/hosts.sh down " S_PREFIX " >/dev/null 2>&1");
  ck_assert_msg(s_sh("bash tests/net/hosts.sh up " S_PREFIX " 3 >/dev/null") == 0,
                "tests/net/hosts.sh up failed (root and iproute2 needed)");
}
static void s_hosts_down(void) { s_sh("bash tests/net/hosts.sh down " S_PREFIX " >/dev/null 2>&1"); }

// Starts `[ip netns exec ffh1] ffstream ARGS...` (argv NULL-terminated, from
// argv[1]) with its output in log. ns: run the launcher on host 1.
static pid_t s_start_on(int ns, const char **argv, const char *log) {
  const char *full[64] = {""};
  int n = 0;
  if (ns) full[n++] = "/usr/sbin/ip", full[n++] = "netns", full[n++] = "exec",
    full[n++] = S_PREFIX "1", full[n++] = s_exe();
  for (int k = 1; argv[k] && n < 62; k++) full[n++] = argv[k];
  full[n] = NULL;
  if (!ns) return s_start(full, log);
  pid_t pid = fork();
  if (pid == 0) {
    if (chdir(s_src()) != 0) _exit(126);
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) dup2(fd, 1), dup2(fd, 2);
    execv(full[0], (char *const *)full);
    _exit(127);
  }
  return pid;
}

// The last 3000 bytes of a log (a failure message must stay short).
static const char *s_tail(const char *path) {
  const char *text = s_slurp(path);
  if (!text) return "(no log)";
  size_t n = strlen(text);
  return n > 3000 ? text + n - 3000 : text;
}

static char *s_read(const char *dir, const char *file) {
  char path[400];
  snprintf(path, sizeof path, "%s/%s", dir, file);
  const char *text = s_slurp(path);
  return text ? strdup(text) : NULL;
}


// Waits until the file at path contains every one of the phrases (NULL-
// terminated), up to timeout_s. 1 when it does.
static int s_wait_for(const char *path, const char *const *phrases, int timeout_s) {
  for (int i = 0; i < timeout_s * 10; i++) {
    const char *text = s_slurp(path);
    int all = text != NULL;
    for (int k = 0; all && phrases[k]; k++) all = strstr(text, phrases[k]) != NULL;
    if (all) return 1;
    usleep(100000);
  }
  return 0;
}

// 2 epochs on 6000 samples, random negatives and no feedback: a pipeline
// whose frames and their order do not depend on timing
#define S_SMALL                                                                                  \
  "--set", "data.train_limit=6000", "--set", "data.test_limit=500", "--set", "feedback=[]",      \
      "--set", "train.negatives=random"

// The same run on one host and spread over three: the same test error (a
// free-running feed-forward pipeline streams the same frames in the same
// order); a lockstep recurrent run gives bit-identical checkpoints.
START_TEST(test_three_hosts_learn_as_one) {
  char one[300], three[300], log[300];
  s_hosts_up();
  snprintf(one, sizeof one, "%s/one", s_tmp);
  snprintf(three, sizeof three, "%s/three", s_tmp);
  snprintf(log, sizeof log, "%s/three.log", s_tmp);
  const char *a1[] = {"", "run", "configs/mnist-ff.yaml", "--quiet", "--out", one, S_SMALL,
                      "--epochs", "2", NULL};
  int rc = s_wait(s_start(a1, log), 120);
  ck_assert_msg(rc == 0, "one-host run exited %d:\n%s", rc, s_tail(log));
  const char *a3[] = {"", "run", "configs/mnist-ff.yaml", "--quiet", "--out", three, S_SMALL,
                      "--epochs", "2", S_SPREAD, NULL};
  rc = s_wait(s_start_on(1, a3, log), 120);
  ck_assert_msg(rc == 0, "three-host run exited %d:\n%s", rc, s_tail(log));
  char *j1 = s_read(one, "summary.json"), *j3 = s_read(three, "summary.json");
  ck_assert(j1 && j3);
  double e1 = s_json(j1, NULL, "test_error"), e3 = s_json(j3, NULL, "test_error");
  ck_assert_msg(e1 > 0 && e1 < 0.5 && fabs(e1 - e3) <= 0.001,
                "one host %.4f, three hosts %.4f", e1, e3);
  ck_assert_msg(strstr(j3, "\"host\": \"ffh2\"") && strstr(j3, "\"host\": \"ffh3\""), "%s", j3);
  ck_assert_msg(s_json(j3, "\"name\": \"l2\"", "bad_frames") == 0, "%s", j3);
  free(j1), free(j3);

  // lockstep recurrent: bit-identical weights, one host or three
  const char *loop[] = {"--set", "data.train_limit=1000", "--set", "data.test_limit=200",
                        "--set", "train.ticks=4", "--set", "train.ckpt_every_s=0",
                        "--set", "l1.units=64", "--set", "l2.units=64", "--set", "l3.units=64"};
  const char *r1[40] = {"", "run", "configs/mnist-recurrent.yaml", "--quiet", "--epochs", "1",
                        "--out", one};
  const char *r3[48] = {"", "run", "configs/mnist-recurrent.yaml", "--quiet", "--epochs", "1",
                        "--out", three, S_SPREAD};
  int n1 = 8, n3 = 8;
  while (r3[n3]) n3++;
  for (size_t k = 0; k < sizeof loop / sizeof *loop; k++) r1[n1++] = loop[k], r3[n3++] = loop[k];
  snprintf(one, sizeof one, "%s/loop1", s_tmp);
  snprintf(three, sizeof three, "%s/loop3", s_tmp);
  rc = s_wait(s_start(r1, log), 120);
  ck_assert_msg(rc == 0, "one-host lockstep run exited %d:\n%s", rc, s_tail(log));
  rc = s_wait(s_start_on(1, r3, log), 120);
  ck_assert_msg(rc == 0, "three-host lockstep run exited %d:\n%s", rc, s_tail(log));
  const char *layers[] = {"l1", "l2", "l3", "out"};
  for (int i = 0; i < 4; i++) {
    char a[400], b[400];
    snprintf(a, sizeof a, "%s/ckpt/%s.safetensors", one, layers[i]);
    snprintf(b, sizeof b, "%s/ckpt/%s.safetensors", three, layers[i]);
    ck_assert_msg(access(a, R_OK) == 0, "no %s", a);
    ck_assert_msg(s_same_bytes(a, b), "%s differs between one host and three", layers[i]);
  }
  s_hosts_down();
}
END_TEST

// A plaintext peer and one with a CURVE key of its own knock on a stage's
// tcp input while the run streams: neither gets a frame in (the stage counts
// none, not even as bad), both refusals are logged and counted.
START_TEST(test_intruders_are_refused) {
  char out[300], log[300], eps[400], cmd[1200];
  snprintf(out, sizeof out, "%s/guarded", s_tmp);
  snprintf(log, sizeof log, "%s/guarded.log", s_tmp);
  snprintf(eps, sizeof eps, "%s/endpoints", out);
  const char *argv[] = {"", "run", "configs/mnist-ff.yaml", "--quiet", "--out", out,
                        "--set", "transport=tcp", "--set", "data.train_limit=20000",
                        "--set", "data.test_limit=500", "--epochs", "100", NULL};
  pid_t pid = s_start(argv, log);
  const char *wired[] = {"l2 ", NULL};
  ck_assert_msg(s_wait_for(eps, wired, 120), "no endpoints:\n%s", s_tail(log));
  snprintf(cmd, sizeof cmd,
           "EP=$(awk '$1==\"l2\"{for(i=3;i<=NF;i++) if ($i ~ /^in=tcp/) print substr($i,4)}' "
           "'%s') && /usr/bin/python3 tests/net/intruder.py \"$EP\" wrongkey '%s/keys/run.pub' 2 "
           "&& /usr/bin/python3 tests/net/intruder.py \"$EP\" plaintext '' 2",
           eps, out);
  ck_assert_int_eq(s_sh("%s", cmd), 0);
  // (the first 10 refusals are logged one by one: the stranger's key first)
  const char *refused[] = {"refused the CURVE key", "(l2 in)",
                           "refused a peer that does not speak CURVE", NULL};
  ck_assert_msg(s_wait_for(log, refused, 60), "refusals not logged:\n%s", s_tail(log));
  kill(pid, SIGINT); // (the first Ctrl-C ends an epochs run at once)
  int rc = s_wait(pid, 60);
  ck_assert_msg(rc == 130, "run exited %d:\n%s", rc, s_tail(log));
  char *json = s_read(out, "summary.json");
  ck_assert(json);
  ck_assert_msg(s_json(json, "\"name\": \"l2\"", "bad_frames") == 0, "%s", json);
  ck_assert_msg(s_json(json, "\"name\": \"l2\"", "peers_refused") >= 2, "%s", json);
  free(json);
}
END_TEST

// Host 3's link is cut mid-run: the launcher names the host within 10 s
// (launch.silent_s 5), the run stops with every stage's checkpoint whole,
// and --resume (the link mended) finishes it.
START_TEST(test_cut_link_is_named_and_resumed) {
  char out[300], log[300], progress[400];
  s_hosts_up();
  snprintf(out, sizeof out, "%s/cut", s_tmp);
  snprintf(log, sizeof log, "%s/cut.log", s_tmp);
  snprintf(progress, sizeof progress, "%s/progress", out);
  const char *argv[] = {"", "run", "configs/mnist-ff.yaml", "--quiet", "--out", out,
                        "--set", "data.train_limit=20000", "--set", "data.test_limit=500",
                        "--epochs", "12", S_SPREAD, NULL};
  pid_t pid = s_start_on(1, argv, log);
  ck_assert_msg(s_wait_first_eval(progress, 120), "epoch 1 never evaluated:\n%s", s_tail(log));
  ck_assert_int_eq(s_sh("bash tests/net/hosts.sh cut " S_PREFIX " 3"), 0);
  double t0 = s_now();
  const char *named[] = {"lost host 'ffh3' (stages l3, out sent nothing for", NULL};
  int seen = s_wait_for(log, named, 30);
  double dt = s_now() - t0;
  ck_assert_msg(seen, "the cut was never named:\n%s", s_tail(log));
  ck_assert_msg(dt < 10.0, "the cut was named after %.1f s", dt);
  int rc = s_wait(pid, 60);
  ck_assert_msg(rc == 1, "run exited %d:\n%s", rc, s_tail(log));
  ck_assert_int_eq(s_sh("bash tests/net/hosts.sh mend " S_PREFIX " 3"), 0);
  const char *again[] = {"", "run", "configs/mnist-ff.yaml", "--quiet", "--resume", out,
                         "--set", "data.train_limit=20000", "--set", "data.test_limit=500",
                         "--epochs", "12", S_SPREAD, NULL};
  rc = s_wait(s_start_on(1, again, log), 600); // ~1 min; ASan on a busy machine: several
  ck_assert_msg(rc == 0, "resumed run exited %d:\n%s", rc, s_tail(log));
  char *json = s_read(out, "summary.json");
  ck_assert(json);
  ck_assert_msg(strstr(json, "\"epochs_completed\": 12"), "%s", json);
  free(json);
  s_hosts_down();
}
END_TEST

// Open MPI runs the stages: one MPMD mpirun line, each rank its stage.
START_TEST(test_mpi_launcher) {
  char out[300], log[300];
  snprintf(out, sizeof out, "%s/mpi", s_tmp);
  snprintf(log, sizeof log, "%s/mpi.log", s_tmp);
  const char *argv[] = {"", "run", "configs/mnist-ff.yaml", "--quiet", "--out", out, S_SMALL,
                        "--epochs", "2", "--launcher", "mpi", "--set",
                        "launch.mpirun=mpirun --allow-run-as-root --oversubscribe --bind-to none "
                        "--mca oob_tcp_if_include lo --mca btl_tcp_if_include lo",
                        NULL};
  int rc = s_wait(s_start(argv, log), 180);
  ck_assert_msg(rc == 0, "run exited %d:\n%s", rc, s_tail(log));
  char *json = s_read(out, "summary.json");
  ck_assert(json && strstr(json, "\"mode\": \"mpi\"") && strstr(json, "\"status\": \"ok\""));
  ck_assert_msg(s_json(json, NULL, "test_error") < 0.5, "%s", json);
  free(json);
}
END_TEST

// A single-node Slurm started here runs the script `ffstream slurm-script`
// prints: one srun --multi-prog step, each task its stage from SLURM_PROCID.
START_TEST(test_slurm_launcher) {
  char out[300], log[300], dir[300], job[300];
  snprintf(out, sizeof out, "%s/slurm", s_tmp);
  snprintf(log, sizeof log, "%s/slurm.log", s_tmp);
  snprintf(dir, sizeof dir, "%s/cluster", s_tmp);
  snprintf(job, sizeof job, "%s/job.sh", s_tmp);
  ck_assert_msg(s_sh("bash tests/net/slurm.sh up '%s' >'%s' 2>&1", dir, log) == 0,
                "tests/net/slurm.sh up failed:\n%s", s_tail(log));
  int rc = s_sh("'%s' slurm-script configs/mnist-ff.yaml --out '%s' --epochs 2 "
                "--set data.train_limit=6000 --set data.test_limit=500 "
                "--set 'launch.srun=srun --overcommit' --set tcp.host=127.0.0.1 > '%s' && "
                "SLURM_CONF='%s/slurm.conf' sbatch --wait --overcommit --output='%s' '%s' "
                ">/dev/null",
                s_exe(), out, job, dir, log, job);
  s_sh("bash tests/net/slurm.sh down '%s' >/dev/null 2>&1", dir);
  ck_assert_msg(rc == 0, "the Slurm job failed (%d):\n%s", rc, s_tail(log));
  char *json = s_read(out, "summary.json");
  ck_assert_msg(json && strstr(json, "\"mode\": \"slurm\"") && strstr(json, "\"status\": \"ok\""),
                "%s", s_tail(log));
  ck_assert_msg(s_json(json, NULL, "test_error") < 0.5, "%s", json);
  free(json);
}
END_TEST

static Suite *s_suite(void) {
  Suite *s = suite_create("e2e_hosts");
  TCase *hosts = s_tcase(s, "hosts", 900);
  tcase_add_test(hosts, test_three_hosts_learn_as_one);
  tcase_add_test(hosts, test_intruders_are_refused);
  tcase_add_test(hosts, test_cut_link_is_named_and_resumed);
  tcase_add_test(hosts, test_mpi_launcher);
  tcase_add_test(hosts, test_slurm_launcher);
  return s;
}

int main(void) { return ffs_check_run(s_suite()); }
