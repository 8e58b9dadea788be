// check_curve: Check suite for common/ffs_curve (the run's CURVE keys and ZAP).
// "keys": the files a pair is written to, their modes, what load refuses and
// names (file, file:line), which client keys it allows; the `keys` command.
// "zap": a CURVE server over tcp on 127.0.0.1 lets the run's clients in and
// refuses a stranger's key, a plaintext peer and another server key, each
// counted and logged. Every wait is for a positive signal (a message, the
// refusal count), bounded by T_WAIT_MS, never a bare sleep.
#include "ffs_curve.h"

#include "ffs_check.h"
#include "ffs_log.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define T_WAIT_MS 30000 // the bound on any wait for something that must happen

// ---- helpers ----

static void t_write(const char *dir, const char *file, const char *text, mode_t mode) {
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/%s", dir, file);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
  ck_assert_msg(fd >= 0, "%s: %s", path, strerror(errno));
  ck_assert_int_eq(write(fd, text, strlen(text)), (int)strlen(text));
  ck_assert_int_eq(fchmod(fd, mode), 0);
  close(fd);
}

// Reads DIR/FILE (at most len - 1 bytes) into buf; returns buf.
static char *t_read(const char *dir, const char *file, char *buf, size_t len) {
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/%s", dir, file);
  FILE *f = fopen(path, "r");
  ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
  size_t n = fread(buf, 1, len - 1, f);
  buf[n] = 0;
  fclose(f);
  return buf;
}

static unsigned t_mode(const char *dir, const char *file) {
  char path[PATH_MAX];
  struct stat st;
  snprintf(path, sizeof path, "%s/%s", dir, file);
  ck_assert_msg(stat(path, &st) == 0, "%s: %s", path, strerror(errno));
  return (unsigned)(st.st_mode & 07777);
}

// Expects ffs_curve_load(dir, name) refused with a message that contains want.
static void t_load_refused(const char *dir, const char *name, const char *want) {
  ffs_curve_keys_t k;
  char err[1024] = "";
  ck_assert_int_eq(ffs_curve_load(dir, name, &k, err, sizeof err), -1);
  ck_assert_msg(strstr(err, want), "message '%s' does not say '%s'", err, want);
  ck_assert_msg(k.sec[0] == 0 && k.n_allowed == 0, "a refused load leaves a key behind");
}

static int t_allows(const ffs_curve_keys_t *k, const char *pub) {
  for (int i = 0; i < k->n_allowed; i++)
    if (!strcmp(k->allowed[i], pub)) return 1;
  return 0;
}

static double t_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

// Waits until z has refused more than `above` peers; returns the count.
static uint64_t t_wait_refused(const ffs_zap_t *z, uint64_t above) {
  double t0 = t_ms();
  while (ffs_zap_refused(z) <= above && t_ms() - t0 < T_WAIT_MS)
    usleep(10000);
  uint64_t n = ffs_zap_refused(z);
  ck_assert_msg(n > above, "no refusal counted within %d ms (count %llu)", T_WAIT_MS,
                (unsigned long long)n);
  return n;
}

// Waits until DIR/stderr.log holds want at least `times` times (a refusal's
// line is written before its count is stored); leaves the log in buf.
static void t_wait_logged(const char *dir, const char *want, int times, char *buf, size_t len) {
  double t0 = t_ms();
  for (;;) {
    int seen = 0;
    t_read(dir, "stderr.log", buf, len);
    for (const char *at = buf; (at = strstr(at, want)); at++)
      seen++;
    if (seen >= times) return;
    ck_assert_msg(t_ms() - t0 < T_WAIT_MS, "'%s' not logged %d times within %d ms; log: %s", want,
                  times, T_WAIT_MS, buf);
    usleep(10000);
  }
}

// A PUSH client in ctx, one connection attempt only (no reconnect), no linger.
static void *t_push(void *ctx) {
  void *s = zmq_socket(ctx, ZMQ_PUSH);
  int zero = 0, no_reconnect = -1;
  zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
  zmq_setsockopt(s, ZMQ_RECONNECT_IVL, &no_reconnect, sizeof no_reconnect);
  return s;
}

static void t_curve(void *s, const char *server, const char *pub, const char *sec) {
  ck_assert_int_eq(zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, server, FFS_CURVE_Z85), 0);
  ck_assert_int_eq(zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, pub, FFS_CURVE_Z85), 0);
  ck_assert_int_eq(zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, sec, FFS_CURVE_Z85), 0);
}

static void t_connect_send(void *s, const char *endpoint, const char *msg) {
  ck_assert_int_eq(zmq_connect(s, endpoint), 0);
  ck_assert_int_eq(zmq_send(s, msg, strlen(msg), ZMQ_DONTWAIT), (int)strlen(msg));
}

// The same for a peer the server is to refuse: its send may also find the
// pipe gone (EAGAIN), when the handshake already failed in zmq's I/O threads
// between connect and send (reconnecting is off); what the test then checks
// is the refusal and that nothing arrives.
static void t_connect_send_refused(void *s, const char *endpoint, const char *msg) {
  ck_assert_int_eq(zmq_connect(s, endpoint), 0);
  int n = zmq_send(s, msg, strlen(msg), ZMQ_DONTWAIT);
  ck_assert_msg(n == (int)strlen(msg) || (n == -1 && zmq_errno() == EAGAIN), "send: %s",
                zmq_strerror(zmq_errno()));
}

// Expects msg on pull within T_WAIT_MS.
static void t_received(void *pull, const char *msg) {
  char buf[64];
  int n = zmq_recv(pull, buf, sizeof buf - 1, 0);
  ck_assert_msg(n >= 0, "'%s' not received: %s", msg, zmq_strerror(zmq_errno()));
  buf[n] = 0;
  ck_assert_str_eq(buf, msg);
}

static void t_nothing_received(void *pull) {
  char buf[64];
  ck_assert_int_eq(zmq_recv(pull, buf, sizeof buf, ZMQ_DONTWAIT), -1);
  ck_assert_int_eq(zmq_errno(), EAGAIN);
}

// ---- keys ----

START_TEST(test_write_pair_files_and_modes) {
  char tmp[64], dir[96], text[512], again[512], err[1024];
  ffs_check_mkdtemp(tmp, sizeof tmp, "check_curve");
  snprintf(dir, sizeof dir, "%s/keys/", tmp); // missing, and a trailing slash
  ck_assert_int_eq(ffs_curve_available(), 1);
  ck_assert_msg(ffs_curve_write_pair(dir, "run", 0, err, sizeof err) == 0, "%s", err);
  ck_assert_uint_eq(t_mode(tmp, "keys"), 0700);
  ck_assert_uint_eq(t_mode(dir, "run.key"), 0600);
  ck_assert_uint_eq(t_mode(dir, "run.pub"), 0644);
  t_read(dir, "run.key", text, sizeof text);
  ck_assert_msg(!strncmp(text, "# ffstream CURVE key pair", 25), "%s", text);
  ck_assert_ptr_nonnull(strstr(text, "\npublic-key = "));
  ck_assert_ptr_nonnull(strstr(text, "\nsecret-key = "));

  // no overwrite without force: the message names the file, the file is kept
  ck_assert_int_eq(ffs_curve_write_pair(dir, "run", 0, err, sizeof err), -1);
  ck_assert_msg(strstr(err, "keys/run.key exists"), "%s", err);
  ck_assert_str_eq(t_read(dir, "run.key", again, sizeof again), text);
  ck_assert_msg(ffs_curve_write_pair(dir, "run", 1, err, sizeof err) == 0, "%s", err);
  ck_assert_str_ne(t_read(dir, "run.key", again, sizeof again), text);
  ck_assert_uint_eq(t_mode(dir, "run.key"), 0600);
  ck_assert_int_eq(ffs_curve_write_pair(dir, "../run", 0, err, sizeof err), -1);
  ck_assert_ptr_nonnull(strstr(err, "bad key pair name"));

  // load: the pair matches, its own key is allowed, the .pub holds the same key
  ffs_curve_keys_t k;
  char derived[FFS_CURVE_Z85], pub_line[64];
  ck_assert_msg(ffs_curve_load(dir, "run", &k, err, sizeof err) == 0, "%s", err);
  ck_assert_uint_eq(strlen(k.pub), 40);
  ck_assert_uint_eq(strlen(k.sec), 40);
  ck_assert_int_eq(zmq_curve_public(derived, k.sec), 0);
  ck_assert_str_eq(derived, k.pub);
  ck_assert_int_eq(k.n_allowed, 1);
  ck_assert_str_eq(k.allowed[0], k.pub);
  snprintf(pub_line, sizeof pub_line, "public-key = %s\n", k.pub);
  ck_assert_ptr_nonnull(strstr(t_read(dir, "run.pub", text, sizeof text), pub_line));
  ck_assert_ptr_null(strstr(text, "secret"));

  // its own key stays allowed without its .pub
  snprintf(text, sizeof text, "%s/run.pub", dir);
  ck_assert_int_eq(unlink(text), 0);
  ck_assert_msg(ffs_curve_load(dir, "run", &k, err, sizeof err) == 0, "%s", err);
  ck_assert_int_eq(k.n_allowed, 1);
  ck_assert_str_eq(k.allowed[0], k.pub);
  ffs_check_rmtree(tmp);
}
END_TEST

START_TEST(test_load_refusals_name_the_file) {
  char dir[64], err[1024], path[PATH_MAX], text[512];
  ffs_check_mkdtemp(dir, sizeof dir, "check_curve");
  ck_assert_msg(ffs_curve_write_pair(dir, "run", 0, err, sizeof err) == 0, "%s", err);
  ck_assert_msg(ffs_curve_write_pair(dir, "two", 0, err, sizeof err) == 0, "%s", err);
  ffs_curve_keys_t run, two;
  ck_assert_msg(ffs_curve_load(dir, "run", &run, err, sizeof err) == 0, "%s", err);
  ck_assert_msg(ffs_curve_load(dir, "two", &two, err, sizeof err) == 0, "%s", err);

  // a key file group or others may read
  snprintf(path, sizeof path, "%s/run.key", dir);
  ck_assert_int_eq(chmod(path, 0644), 0);
  t_load_refused(dir, "run", path);
  t_load_refused(dir, "run", "chmod 600");
  ck_assert_int_eq(chmod(path, 0640), 0);
  t_load_refused(dir, "run", "mode 0640");
  ck_assert_int_eq(chmod(path, 0600), 0);

  // missing, malformed, mixed (bad.key is not a .pub: the other loads never see it)
  t_load_refused(dir, "none", "none.key");
  t_load_refused(dir, "../run", "bad key pair name");
  snprintf(text, sizeof text, "# hand-made\npublic-key = %.39s\nsecret-key = %s\n", run.pub,
           run.sec);
  t_write(dir, "bad.key", text, 0600);
  t_load_refused(dir, "bad", "bad.key:2: public-key is 39 characters long");
  snprintf(text, sizeof text, "public-key = %s\nsecret-key = %.39s,\n", run.pub, run.sec);
  t_write(dir, "bad.key", text, 0600);
  t_load_refused(dir, "bad", "bad.key:2: secret-key has a character outside Z85");
  ffs_curve_keys_t bad;
  ck_assert_int_eq(ffs_curve_load(dir, "bad", &bad, err, sizeof err), -1);
  ck_assert_ptr_null(strstr(err, "secret-key = ")); // never quotes a secret
  snprintf(text, sizeof text, "public-key = %s\n\n  colour = blue\nsecret-key = %s\n", run.pub,
           run.sec);
  t_write(dir, "bad.key", text, 0600);
  t_load_refused(dir, "bad", "bad.key:3: unknown line");
  snprintf(text, sizeof text, "public-key = %s\npublic-key = %s\n", run.pub, run.pub);
  t_write(dir, "bad.key", text, 0600);
  t_load_refused(dir, "bad", "bad.key:2: a second public-key");
  snprintf(text, sizeof text, "public-key = %s\n", run.pub);
  t_write(dir, "bad.key", text, 0600);
  t_load_refused(dir, "bad", "bad.key: no secret-key line");
  snprintf(text, sizeof text, "public-key = %s\nsecret-key = %s\n", run.pub, two.sec);
  t_write(dir, "bad.key", text, 0600);
  t_load_refused(dir, "bad", "bad.key: its public-key does not match its secret-key");
  t_write(dir, "bad.key", "public-key = ########################################\n", 0600);
  t_load_refused(dir, "bad", "bad.key:1: public-key does not decode");
  t_write(dir, "bad.key", "public-key = abc\n", 0600);
  t_load_refused(dir, "bad", "bad.key:1: public-key is 3 characters long");
  snprintf(path, sizeof path, "%s/bad.key", dir);
  FILE *f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  fwrite("public-key = \0\n", 1, 15, f);
  fclose(f);
  t_load_refused(dir, "bad", "bad.key: holds a NUL byte");

  // a .pub is read as carefully: every load of the folder refuses it
  snprintf(text, sizeof text, "public-key = %s\nsecret-key = %s\n", two.pub, two.sec);
  t_write(dir, "evil.pub", text, 0644);
  t_load_refused(dir, "run", "evil.pub:2: a .pub file holds a secret-key");
  t_write(dir, "evil.pub", "# only a comment\n", 0644);
  t_load_refused(dir, "run", "evil.pub: no public-key line");
  snprintf(path, sizeof path, "%s/evil.pub", dir);
  ck_assert_int_eq(unlink(path), 0);
  ck_assert_msg(ffs_curve_load(dir, "run", &run, err, sizeof err) == 0, "%s", err);
  ffs_check_rmtree(dir);
}
END_TEST

START_TEST(test_pub_files_are_the_allowed_keys) {
  char dir[64], err[1024], file[32], text[128];
  ffs_check_mkdtemp(dir, sizeof dir, "check_curve");
  ck_assert_msg(ffs_curve_write_pair(dir, "run", 0, err, sizeof err) == 0, "%s", err);
  ck_assert_msg(ffs_curve_write_pair(dir, "other", 0, err, sizeof err) == 0, "%s", err);
  ffs_curve_keys_t run, other;
  ck_assert_msg(ffs_curve_load(dir, "run", &run, err, sizeof err) == 0, "%s", err);
  ck_assert_msg(ffs_curve_load(dir, "other", &other, err, sizeof err) == 0, "%s", err);
  ck_assert_int_eq(run.n_allowed, 2);
  ck_assert(t_allows(&run, run.pub) && t_allows(&run, other.pub));
  ck_assert(t_allows(&other, run.pub) && t_allows(&other, other.pub));
  ck_assert_str_ne(run.pub, other.pub);

  // a hand-written .pub (a client with a pair of its own); hidden files are skipped
  char pub[FFS_CURVE_Z85], sec[FFS_CURVE_Z85];
  ck_assert_int_eq(zmq_curve_keypair(pub, sec), 0);
  snprintf(text, sizeof text, "# a client of its own\r\n  public-key=%s  \r\n", pub);
  t_write(dir, "client.pub", text, 0644);
  ck_assert_int_eq(zmq_curve_keypair(pub, sec), 0); // a new key, in a hidden file
  snprintf(text, sizeof text, "public-key = %s\n", pub);
  t_write(dir, ".hidden.pub", text, 0644);
  ck_assert_msg(ffs_curve_load(dir, "run", &run, err, sizeof err) == 0, "%s", err);
  ck_assert_int_eq(run.n_allowed, 3);
  ck_assert(!t_allows(&run, pub));

  // at most FFS_CURVE_MAX_ALLOWED .pub files
  for (int i = 0; i < FFS_CURVE_MAX_ALLOWED - 2; i++) {
    ck_assert_int_eq(zmq_curve_keypair(pub, sec), 0);
    snprintf(text, sizeof text, "public-key = %s\n", pub);
    snprintf(file, sizeof file, "c%02d.pub", i);
    t_write(dir, file, text, 0644);
  }
  t_load_refused(dir, "run", "more than 64 .pub files");
  snprintf(text, sizeof text, "%s/c00.pub", dir);
  ck_assert_int_eq(unlink(text), 0);
  ck_assert_msg(ffs_curve_load(dir, "run", &run, err, sizeof err) == 0, "%s", err);
  ck_assert_int_eq(run.n_allowed, FFS_CURVE_MAX_ALLOWED);
  ffs_check_rmtree(dir);
}
END_TEST

START_TEST(test_keys_command) {
  char dir[64], out[96];
  ffs_check_mkdtemp(dir, sizeof dir, "check_curve");
  snprintf(out, sizeof out, "%s/k", dir);
  char *no_dir[] = {"keys", NULL};
  char *three[] = {"keys", out, "run", "more", NULL};
  char *flag[] = {"keys", out, "--bogus", NULL};
  char *bad_name[] = {"keys", out, "a/b", NULL};
  ck_assert_int_eq(ffs_curve_cmd_keys(1, no_dir), 2);
  ck_assert_int_eq(ffs_curve_cmd_keys(4, three), 2);
  ck_assert_int_eq(ffs_curve_cmd_keys(3, flag), 2);
  ck_assert_int_eq(ffs_curve_cmd_keys(3, bad_name), 2);
  ck_assert_int_eq(access(out, F_OK), -1); // a usage error writes nothing

  char *ok[] = {"keys", out, NULL};
  char *force[] = {"keys", "--force", out, "run", NULL};
  ck_assert_int_eq(ffs_curve_cmd_keys(2, ok), 0);
  ck_assert_uint_eq(t_mode(out, "run.key"), 0600);
  ck_assert_uint_eq(t_mode(out, "run.pub"), 0644);
  ck_assert_int_eq(ffs_curve_cmd_keys(2, ok), 1); // exists
  ck_assert_int_eq(ffs_curve_cmd_keys(4, force), 0);
  ffs_check_rmtree(dir);
}
END_TEST

// ---- zap ----

START_TEST(test_zap_lets_the_run_in_and_refuses_others) {
  char dir[64], err[1024], endpoint[256], log_path[PATH_MAX], log[16384];
  ffs_check_mkdtemp(dir, sizeof dir, "check_curve");
  ck_assert_msg(ffs_curve_write_pair(dir, "run", 0, err, sizeof err) == 0, "%s", err);
  ck_assert_msg(ffs_curve_write_pair(dir, "other", 0, err, sizeof err) == 0, "%s", err);
  ffs_curve_keys_t k, other;
  ck_assert_msg(ffs_curve_load(dir, "run", &k, err, sizeof err) == 0, "%s", err);
  ck_assert_msg(ffs_curve_load(dir, "other", &other, err, sizeof err) == 0, "%s", err);

  // the refusal lines go to a file (this forked test's stderr) to be read back
  snprintf(log_path, sizeof log_path, "%s/stderr.log", dir);
  int log_fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600), saved = dup(2);
  ck_assert_int_ge(log_fd, 0);
  ck_assert_int_eq(dup2(log_fd, 2), 2);
  ffs_log_set_level(FFS_LOG_INFO);

  // context A: the server
  void *a = zmq_ctx_new(), *b = zmq_ctx_new();
  ffs_zap_t *z = ffs_zap_start(a, &k, err, sizeof err);
  ck_assert_msg(z != NULL, "%s", err);
  ck_assert_ptr_null(ffs_zap_start(a, &k, err, sizeof err)); // one per context
  ck_assert_msg(strstr(err, "already runs"), "%s", err);
  void *pull = zmq_socket(a, ZMQ_PULL);
  int zero = 0, tmo = T_WAIT_MS;
  zmq_setsockopt(pull, ZMQ_LINGER, &zero, sizeof zero);
  zmq_setsockopt(pull, ZMQ_RCVTIMEO, &tmo, sizeof tmo);
  ck_assert_int_eq(ffs_zap_server(z, pull, "test input"), 0);
  ck_assert_int_eq(zmq_bind(pull, "tcp://127.0.0.1:0"), 0);
  size_t len = sizeof endpoint;
  ck_assert_int_eq(zmq_getsockopt(pull, ZMQ_LAST_ENDPOINT, endpoint, &len), 0);

  // context B: the run's client, then a client whose .pub is in the folder
  void *good = t_push(b), *mate = t_push(b);
  ck_assert_int_eq(ffs_curve_client(&k, good), 0);
  t_connect_send(good, endpoint, "from the run");
  t_received(pull, "from the run");
  t_curve(mate, k.pub, other.pub, other.sec);
  t_connect_send(mate, endpoint, "from a listed pair");
  t_received(pull, "from a listed pair");
  ck_assert_uint_eq(ffs_zap_refused(z), 0);

  // a stranger's pair: ZAP refuses it
  char pub[FFS_CURVE_Z85], sec[FFS_CURVE_Z85], want[512];
  ck_assert_int_eq(zmq_curve_keypair(pub, sec), 0);
  void *stranger = t_push(b);
  t_curve(stranger, k.pub, pub, sec);
  t_connect_send_refused(stranger, endpoint, "from a stranger");
  snprintf(want, sizeof want, "refused the CURVE key %.8s... of a peer at 127.0.0.1 (test input)",
           pub);
  t_wait_logged(dir, want, 1, log, sizeof log);
  uint64_t n = t_wait_refused(z, 0);
  t_nothing_received(pull);

  // a plaintext peer never reaches ZAP: the monitor sees its handshake fail
  void *plain = t_push(b);
  t_connect_send_refused(plain, endpoint, "in plain text");
  snprintf(want, sizeof want,
           "refused a peer that does not speak CURVE with the run's key on %s (test input)",
           endpoint);
  t_wait_logged(dir, want, 1, log, sizeof log);
  n = t_wait_refused(z, n);
  t_nothing_received(pull);

  // a CURVE client of another server key: its hello does not decrypt
  void *lost = t_push(b);
  t_curve(lost, other.pub, k.pub, k.sec);
  t_connect_send_refused(lost, endpoint, "to another server");
  t_wait_logged(dir, "its handshake does not decrypt", 1, log, sizeof log);
  t_wait_logged(dir, want, 2, log, sizeof log);
  t_wait_refused(z, n);
  t_nothing_received(pull);
  ck_assert_ptr_null(strstr(log, k.sec));

  // the run's client still gets through
  ck_assert_int_eq(zmq_send(good, "still there", 11, 0), 11);
  t_received(pull, "still there");

  // clean shutdown: sockets, the handler, the contexts (the test's timeout catches a hang)
  zmq_close(good), zmq_close(mate), zmq_close(stranger), zmq_close(plain), zmq_close(lost);
  ck_assert_int_eq(zmq_ctx_term(b), 0);
  zmq_close(pull);
  ffs_zap_destroy(&z);
  ck_assert_ptr_null(z);
  ffs_zap_destroy(&z); // idempotent
  ck_assert_int_eq(zmq_ctx_term(a), 0);
  dup2(saved, 2), close(saved), close(log_fd);
  ffs_check_rmtree(dir);
}
END_TEST

static Suite *s_suite(void) {
  Suite *s = suite_create("curve");
  TCase *keys = tcase_create("keys");
  tcase_add_test(keys, test_write_pair_files_and_modes);
  tcase_add_test(keys, test_load_refusals_name_the_file);
  tcase_add_test(keys, test_pub_files_are_the_allowed_keys);
  tcase_add_test(keys, test_keys_command);
  tcase_set_timeout(keys, 60);
  suite_add_tcase(s, keys);
  TCase *zap = tcase_create("zap");
  tcase_add_test(zap, test_zap_lets_the_run_in_and_refuses_others);
  tcase_set_timeout(zap, 4 * T_WAIT_MS / 1000 + 60);
  suite_add_tcase(s, zap);
  return s;
}

int main(void) { return ffs_check_run(s_suite()); }
