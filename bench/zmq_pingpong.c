// zmq_pingpong: ZeroMQ's own one-way latency on one transport (ipc or tcp),
// with nothing of the pipeline in the path. Two processes pinned to two cores
// bounce a --bytes message through a PUSH/PULL pair in each direction (the
// socket types the stages use); the timing side takes each round trip and
// halves it. This is the baseline the streaming bench compares its per-hop
// overhead against: what a hop costs beyond this is the stage's, not ZeroMQ's.
//   zmq_pingpong [--transport ipc|tcp] [--bytes N] [--iters N] [--warmup N]
//                [--core-a C] [--core-b C] [--gap-us N]
// --gap-us sleeps between round trips, so both sides go idle as the stages
// of a paced stream do; waking an idle core costs more than a busy one.
// Prints one line for scripts to grep:
//   zmq_pingpong transport=ipc bytes=3200 iters=20000 gap_us=0 rtt_p50_us=... rtt_p99_us=...
//     oneway_p50_us=... oneway_p99_us=... msgs_per_s=...
// No ZeroMQ context crosses the fork: each side makes its own after pinning
// (so its I/O thread starts on the same core), the parent binds and hands the
// endpoints to the child through a pipe.
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define ENDPOINT_MAX 256
#define MAX_BYTES (64L << 20)
#define MAX_ITERS 10000000L
#define MAX_CORE 65535L
#define MAX_GAP_US 1000000L
#define IO_TIMEOUT_MS 10000 // a side that hears nothing this long gives up instead of hanging

typedef struct {
  const char *transport; // "ipc" or "tcp"
  long bytes, iters, warmup, core_a, core_b, gap_us;
} options;

// What the parent bound, as the child must connect to it.
typedef struct {
  char a2b[ENDPOINT_MAX]; // parent PUSH -> child PULL
  char b2a[ENDPOINT_MAX]; // child PUSH -> parent PULL
} endpoints;

static void s_usage(FILE *f) {
  fprintf(f,
          "usage: zmq_pingpong [--transport ipc|tcp] [--bytes N] [--iters N] [--warmup N]\n"
          "                    [--core-a C] [--core-b C] [--gap-us N]\n"
          "  --transport  ipc (endpoints in a fresh /tmp folder) or tcp (127.0.0.1); default ipc\n"
          "  --bytes      message size, 1..%ld; default 3200\n"
          "  --iters      timed round trips, 1..%ld; default 20000\n"
          "  --warmup     untimed round trips before them, 0..%ld; default 2000\n"
          "  --core-a     CPU of the timing side, wrapped onto the online CPUs; default 0\n"
          "  --core-b     CPU of the echo side, wrapped likewise; default 1\n"
          "  --gap-us     sleep between round trips, 0..%ld us (a paced stream); default 0\n",
          MAX_BYTES, MAX_ITERS, MAX_ITERS, MAX_GAP_US);
}

// Decimal integer in [lo, hi] into *out; 0 on success.
static int s_parse_long(const char *flag, const char *text, long lo, long hi, long *out) {
  char *end;
  errno = 0;
  long v = strtol(text, &end, 10);
  if (text[0] < '0' || text[0] > '9' || errno || *end || v < lo || v > hi) {
    fprintf(stderr, "zmq_pingpong: bad value for %s: '%s' (want an integer in %ld..%ld)\n", flag,
            text, lo, hi);
    return -1;
  }
  *out = v;
  return 0;
}

// 0: run; 1: --help was printed; -1: bad command line (already reported).
static int s_parse(int argc, char **argv, options *o) {
  *o = (options){.transport = "ipc", .bytes = 3200, .iters = 20000, .warmup = 2000,
                 .core_a = 0, .core_b = 1};
  const struct { const char *name; long *dst; long lo, hi; } nums[] = {
      {"--bytes", &o->bytes, 1, MAX_BYTES},      {"--iters", &o->iters, 1, MAX_ITERS},
      {"--warmup", &o->warmup, 0, MAX_ITERS},    {"--core-a", &o->core_a, 0, MAX_CORE},
      {"--core-b", &o->core_b, 0, MAX_CORE},     {"--gap-us", &o->gap_us, 0, MAX_GAP_US},
  };
  for (int i = 1; i < argc; i++) {
    const char *flag = argv[i];
    if (!strcmp(flag, "--help") || !strcmp(flag, "-h")) {
      s_usage(stdout);
      return 1;
    }
    size_t k = 0;
    while (k < sizeof nums / sizeof nums[0] && strcmp(flag, nums[k].name)) k++;
    int is_transport = !strcmp(flag, "--transport");
    if (k == sizeof nums / sizeof nums[0] && !is_transport) {
      fprintf(stderr, "zmq_pingpong: unknown flag '%s' (see --help)\n", flag);
      return -1;
    }
    if (i + 1 == argc) {
      fprintf(stderr, "zmq_pingpong: %s needs a value (see --help)\n", flag);
      return -1;
    }
    const char *val = argv[++i];
    if (is_transport) {
      if (strcmp(val, "ipc") && strcmp(val, "tcp")) {
        fprintf(stderr, "zmq_pingpong: bad value for --transport: '%s' (want ipc or tcp)\n", val);
        return -1;
      }
      o->transport = strcmp(val, "ipc") ? "tcp" : "ipc";
    } else if (s_parse_long(flag, val, nums[k].lo, nums[k].hi, nums[k].dst)) {
      return -1;
    }
  }
  return 0;
}

// Pins the calling process to `core`, wrapped onto the online CPUs; only warns.
static void s_pin(const char *flag, long core) {
  long online = sysconf(_SC_NPROCESSORS_ONLN);
  if (online < 1) online = 1;
  long use = core % online;
  if (use != core)
    fprintf(stderr, "zmq_pingpong: warning: %s %ld is not an online CPU (%ld online), using %ld\n",
            flag, core, online, use);
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET((size_t)use, &set);
  if (sched_setaffinity(0, sizeof set, &set))
    fprintf(stderr, "zmq_pingpong: warning: %s: sched_setaffinity(CPU %ld): %s; running unpinned\n",
            flag, use, strerror(errno));
}

// Reports the failed ZeroMQ call; returns -1 so callers can `return s_zfail(..)`.
static int s_zfail(const char *call) {
  fprintf(stderr, "zmq_pingpong: %s: %s\n", call, zmq_strerror(zmq_errno()));
  return -1;
}

static uint64_t s_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

// A socket with linger 0 and a send (PUSH) or receive (PULL) timeout.
static void *s_socket(void *ctx, int type) {
  void *s = zmq_socket(ctx, type);
  if (!s) {
    s_zfail("zmq_socket");
    return NULL;
  }
  int zero = 0, timeout = IO_TIMEOUT_MS;
  if (zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero) ||
      zmq_setsockopt(s, type == ZMQ_PUSH ? ZMQ_SNDTIMEO : ZMQ_RCVTIMEO, &timeout, sizeof timeout)) {
    s_zfail("zmq_setsockopt");
    (void)zmq_close(s);
    return NULL;
  }
  return s;
}

// Closes whichever sockets exist, then terminates the context.
static int s_close_all(void *ctx, void *a, void *b) {
  int rc = 0;
  if (a && zmq_close(a)) rc = s_zfail("zmq_close");
  if (b && zmq_close(b)) rc = s_zfail("zmq_close");
  if (!ctx) return rc;
  int t;
  while ((t = zmq_ctx_term(ctx)) && zmq_errno() == EINTR) {
  }
  if (t) rc = s_zfail("zmq_ctx_term");
  return rc;
}

// Binds to ipc://dir/name, or to a free tcp port on loopback when dir is NULL,
// and writes the endpoint actually bound into `endpoint`.
static int s_bind(void *s, const char *dir, const char *name, char *endpoint) {
  char where[ENDPOINT_MAX];
  int n = dir ? snprintf(where, sizeof where, "ipc://%s/%s", dir, name)
              : snprintf(where, sizeof where, "tcp://127.0.0.1:*");
  if (n < 0 || (size_t)n >= sizeof where) {
    fprintf(stderr, "zmq_pingpong: endpoint for %s too long\n", name);
    return -1;
  }
  if (zmq_bind(s, where)) return s_zfail("zmq_bind");
  size_t len = ENDPOINT_MAX;
  if (zmq_getsockopt(s, ZMQ_LAST_ENDPOINT, endpoint, &len)) return s_zfail("zmq_getsockopt");
  return 0;
}

static int s_write_all(int fd, const void *p, size_t n) {
  for (const char *c = p; n;) {
    ssize_t w = write(fd, c, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      fprintf(stderr, "zmq_pingpong: write to echo side: %s\n", strerror(errno));
      return -1;
    }
    c += w, n -= (size_t)w;
  }
  return 0;
}

static int s_read_all(int fd, void *p, size_t n) {
  for (char *c = p; n;) {
    ssize_t r = read(fd, c, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    c += r, n -= (size_t)r;
  }
  return 0;
}

// Echo side: echoes every message until a zero-length one ('stop').
static int s_echo_loop(void *in, void *out) {
  zmq_msg_t msg;
  if (zmq_msg_init(&msg)) return s_zfail("zmq_msg_init");
  int rc = 0;
  for (;;) {
    if (zmq_msg_recv(&msg, in, 0) < 0) {
      rc = s_zfail("zmq_msg_recv");
      break;
    }
    if (zmq_msg_size(&msg) == 0) break;
    if (zmq_msg_send(&msg, out, 0) < 0) { // hands the payload on without a copy
      rc = s_zfail("zmq_msg_send");
      break;
    }
  }
  if (zmq_msg_close(&msg)) rc = s_zfail("zmq_msg_close");
  return rc;
}

// Child: learns the endpoints from the pipe, connects, echoes.
static int s_echo(int pipe_r) {
  endpoints ep;
  int got = s_read_all(pipe_r, &ep, sizeof ep);
  close(pipe_r);
  if (got) { // the timing side failed before it could bind; it has reported why
    fprintf(stderr, "zmq_pingpong: echo side: no endpoints from the timing side\n");
    return -1;
  }
  void *ctx = zmq_ctx_new(), *in = NULL, *out = NULL;
  if (!ctx) return s_zfail("zmq_ctx_new");
  int rc = 0;
  if (!(in = s_socket(ctx, ZMQ_PULL)) || !(out = s_socket(ctx, ZMQ_PUSH))) rc = -1;
  if (!rc && zmq_connect(in, ep.a2b)) rc = s_zfail("zmq_connect");
  if (!rc && zmq_connect(out, ep.b2a)) rc = s_zfail("zmq_connect");
  if (!rc) rc = s_echo_loop(in, out);
  if (s_close_all(ctx, in, out)) rc = -1;
  return rc;
}

// One send and its echo; fails unless the echo has the length sent.
static int s_roundtrip(void *out, void *in, char *buf, size_t len) {
  if (zmq_send(out, buf, len, 0) < 0) return s_zfail("zmq_send");
  int got = zmq_recv(in, buf, len, 0);
  if (got < 0) return s_zfail("zmq_recv");
  if ((size_t)got != len) {
    fprintf(stderr, "zmq_pingpong: sent %zu bytes, echo came back with %d\n", len, got);
    return -1;
  }
  return 0;
}

// Parent: hello (sent and echoed before anything is timed, so both
// connections are up), warmup, then `iters` timed round trips into rtt_us,
// then 'stop'.
static int s_measure(void *out, void *in, const options *o, double *rtt_us) {
  char hello[] = "hello";
  if (s_roundtrip(out, in, hello, sizeof hello - 1)) return -1;
  char *buf = malloc((size_t)o->bytes);
  if (!buf) {
    fprintf(stderr, "zmq_pingpong: out of memory for a %ld-byte message\n", o->bytes);
    return -1;
  }
  memset(buf, 0xa5, (size_t)o->bytes);
  int rc = 0;
  for (long i = 0; !rc && i < o->warmup + o->iters; i++) {
    if (o->gap_us > 0) {
      struct timespec gap = {o->gap_us / 1000000, (o->gap_us % 1000000) * 1000};
      while (nanosleep(&gap, &gap) && errno == EINTR) {
      }
    }
    uint64_t t0 = s_now_ns();
    rc = s_roundtrip(out, in, buf, (size_t)o->bytes);
    uint64_t t1 = s_now_ns();
    if (i >= o->warmup) rtt_us[i - o->warmup] = (double)(t1 - t0) / 1e3;
  }
  free(buf);
  if (!rc && zmq_send(out, "", 0, 0) < 0) rc = s_zfail("zmq_send");
  return rc;
}

// Waits for the echo side; a bad exit is an error unless we killed it.
static int s_reap(pid_t child, int killed) {
  int st;
  while (waitpid(child, &st, 0) < 0) {
    if (errno != EINTR) {
      fprintf(stderr, "zmq_pingpong: waitpid: %s\n", strerror(errno));
      return -1;
    }
  }
  if (killed || (WIFEXITED(st) && WEXITSTATUS(st) == 0)) return 0;
  if (WIFEXITED(st))
    fprintf(stderr, "zmq_pingpong: echo side exited with status %d\n", WEXITSTATUS(st));
  else
    fprintf(stderr, "zmq_pingpong: echo side died of signal %d\n", WTERMSIG(st));
  return -1;
}

static int s_cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

// Nearest-rank percentile of n sorted samples.
static double s_percentile(const double *sorted, long n, int pct) {
  long long idx = ((long long)pct * n + 99) / 100 - 1;
  return sorted[idx < 0 ? 0 : idx];
}

static void s_report(const options *o, double *rtt_us) {
  long n = o->iters;
  double sum = 0;
  for (long i = 0; i < n; i++) sum += rtt_us[i];
  qsort(rtt_us, (size_t)n, sizeof *rtt_us, s_cmp_double);
  double p50 = s_percentile(rtt_us, n, 50), p99 = s_percentile(rtt_us, n, 99);
  double mean_oneway = sum / (double)n / 2;
  printf("zmq_pingpong transport=%s bytes=%ld iters=%ld gap_us=%ld rtt_p50_us=%.1f "
         "rtt_p99_us=%.1f oneway_p50_us=%.1f oneway_p99_us=%.1f msgs_per_s=%.0f\n",
         o->transport, o->bytes, n, o->gap_us, p50, p99, p50 / 2, p99 / 2, 1e6 / mean_oneway);
}

// Parent: binds, tells the child where, measures, stops and reaps the child
// (before closing, so 'stop' is not dropped by linger 0), reports.
static int s_time(const options *o, const char *dir, int pipe_w, pid_t child) {
  double *rtt_us = malloc(sizeof *rtt_us * (size_t)o->iters);
  void *ctx = NULL, *out = NULL, *in = NULL;
  endpoints ep;
  memset(&ep, 0, sizeof ep);
  int rc = 0;
  if (!rtt_us) {
    fprintf(stderr, "zmq_pingpong: out of memory for %ld samples\n", o->iters);
    rc = -1;
  }
  if (!rc && !(ctx = zmq_ctx_new())) rc = s_zfail("zmq_ctx_new");
  if (!rc && (!(out = s_socket(ctx, ZMQ_PUSH)) || !(in = s_socket(ctx, ZMQ_PULL)))) rc = -1;
  if (!rc) rc = s_bind(out, dir, "a2b", ep.a2b);
  if (!rc) rc = s_bind(in, dir, "b2a", ep.b2a);
  if (!rc) rc = s_write_all(pipe_w, &ep, sizeof ep);
  close(pipe_w);
  if (!rc) rc = s_measure(out, in, o, rtt_us);
  if (rc) kill(child, SIGKILL);
  int reaped = s_reap(child, rc != 0);
  if (!rc) rc = reaped;
  if (s_close_all(ctx, out, in)) rc = -1;
  if (!rc) s_report(o, rtt_us);
  free(rtt_us);
  return rc;
}

// Forks the echo side; the parent times. dir: the ipc folder, NULL for tcp.
static int s_run(const options *o, const char *dir) {
  int fds[2];
  if (pipe(fds)) {
    fprintf(stderr, "zmq_pingpong: pipe: %s\n", strerror(errno));
    return -1;
  }
  fflush(NULL); // nothing buffered may be written twice
  pid_t pid = fork();
  if (pid < 0) {
    fprintf(stderr, "zmq_pingpong: fork: %s\n", strerror(errno));
    close(fds[0]), close(fds[1]);
    return -1;
  }
  if (pid == 0) {
    close(fds[1]);
    s_pin("--core-b", o->core_b);
    _exit(s_echo(fds[0]) ? 1 : 0);
  }
  close(fds[0]);
  s_pin("--core-a", o->core_a);
  return s_time(o, dir, fds[1], pid);
}

// Removes the ipc folder (ZeroMQ normally unlinks its socket files itself).
static void s_remove_dir(const char *dir) {
  const char *names[] = {"a2b", "b2a"};
  char path[ENDPOINT_MAX];
  for (size_t i = 0; i < 2; i++)
    if (snprintf(path, sizeof path, "%s/%s", dir, names[i]) < (int)sizeof path) unlink(path);
  if (rmdir(dir))
    fprintf(stderr, "zmq_pingpong: warning: rmdir %s: %s\n", dir, strerror(errno));
}

int main(int argc, char **argv) {
  options o;
  int parsed = s_parse(argc, argv, &o);
  if (parsed) return parsed > 0 ? 0 : 2;
  signal(SIGPIPE, SIG_IGN); // a dead child shows up as a write error, not a silent exit
  int ipc = !strcmp(o.transport, "ipc");
  char dir[] = "/tmp/zmq_pingpong.XXXXXX";
  if (ipc && !mkdtemp(dir)) {
    fprintf(stderr, "zmq_pingpong: mkdtemp in /tmp: %s\n", strerror(errno));
    return 1;
  }
  int rc = s_run(&o, ipc ? dir : NULL);
  if (ipc) s_remove_dir(dir);
  return rc ? 1 : 0;
}
