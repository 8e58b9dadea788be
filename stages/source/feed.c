// feed: a source's live input (feed.h). One reader thread per feed turns its
// input into samples in a bounded queue (block: the reader waits for room;
// drop_oldest: the oldest waiting sample is dropped and counted); an eventfd
// tells the source's poll loop that samples wait. A command's output is read
// through a pipe, and the command is terminated with the feed. Bad input is
// counted and its latest message kept; only a broken stream (a y4m error, a
// read error) ends the input early, with its reason.
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "csv.h"
#include "feed.h"
#include "ffs_frame.h"
#include "ffs_log.h"
#include "y4m.h"

#define S_ZMQ_MAX_ROWS 1000 // rows per frame a producer may PUSH

// ---- keys ----

static const char *const s_kind_names[] = {"idx", "y4m", "csv", "udp", "zmq", NULL};
static const char *const s_planes_names[] = {"luma", "all", NULL};
static const char *const s_overflow_names[] = {"block", "drop_oldest", NULL};
static const char *const s_header_names[] = {"false", "true", "auto", NULL};

const char *ffs_feed_kind_str(int kind) {
  return kind >= 0 && kind <= FFS_FEED_ZMQ ? s_kind_names[kind] : "?";
}

static int s_str_key(ffs_yaml_ctx_t *c, const ffs_yaml_node_t *item, const char *who,
                     const char *key, char *dst, size_t cap) {
  char label[96];
  const ffs_yaml_node_t *v = ffs_yaml_map_get(item, key);
  snprintf(label, sizeof label, "%s: %s", who, key);
  return v ? ffs_yaml_str(c, v, label, dst, cap) : 0;
}

static int s_int_key(ffs_yaml_ctx_t *c, const ffs_yaml_node_t *item, const char *who,
                     const char *key, long long lo, long long hi, int *dst) {
  char label[96];
  const ffs_yaml_node_t *v = ffs_yaml_map_get(item, key);
  snprintf(label, sizeof label, "%s: %s", who, key);
  return v ? ffs_yaml_int(c, v, label, lo, hi, dst) : 0;
}

// The keys a feed kind takes besides feed, overflow and queue.
static int s_key_applies(int kind, const char *key) {
  static const char *const per[][8] = {
      [FFS_FEED_IDX] = {NULL},
      [FFS_FEED_Y4M] = {"input", "command", "labels", "width", "height", "planes", NULL},
      [FFS_FEED_CSV] = {"input", "command", "columns", "label_column", "header", "window", "hop",
                        NULL},
      [FFS_FEED_UDP] = {"bind", "columns", "label_column", "window", "hop", NULL},
      [FFS_FEED_ZMQ] = {"bind", NULL},
  };
  return ffs_yaml_in_list(key, per[kind]);
}

int ffs_feed_parse(ffs_yaml_ctx_t *c, const ffs_yaml_node_t *item, const char *who,
                   ffs_feed_cfg_t *cfg, int *dim) {
  static const char *const own[] = {"input", "command", "bind",   "labels", "width",
                                    "height", "planes", "columns", "label_column", "header",
                                    "window", "hop",    NULL};
  const ffs_yaml_node_t *v;
  char label[96];
  int e;
  memset(cfg, 0, sizeof *cfg);
  cfg->label_column = -1, cfg->header = -1, cfg->window = 1, cfg->hop = 1, cfg->queue = 64;
  *dim = 0;
  snprintf(label, sizeof label, "%s: feed", who);
  if ((v = ffs_yaml_map_get(item, "feed")) &&
      ffs_yaml_enum(c, v, label, s_kind_names, &cfg->kind) < 0)
    return -1;
  for (int k = 0; k + 1 < item->n; k += 2) { // a key of another feed is a mistake worth naming
    const char *key = item->kids[k]->str;
    if (ffs_yaml_in_list(key, own) && !s_key_applies(cfg->kind, key))
      return ffs_yaml_fail(c, item->kids[k], "%s: key '%s' does not apply to feed: %s", who, key,
                           s_kind_names[cfg->kind]);
  }
  cfg->overflow = cfg->kind == FFS_FEED_UDP ? FFS_OVERFLOW_DROP_OLDEST : FFS_OVERFLOW_BLOCK;
  snprintf(label, sizeof label, "%s: overflow", who);
  if ((v = ffs_yaml_map_get(item, "overflow")) &&
      ffs_yaml_enum(c, v, label, s_overflow_names, &cfg->overflow) < 0)
    return -1;
  if (s_int_key(c, item, who, "queue", 1, 65536, &cfg->queue) < 0) return -1;
  if (s_str_key(c, item, who, "input", cfg->input, sizeof cfg->input) < 0 ||
      s_str_key(c, item, who, "command", cfg->command, sizeof cfg->command) < 0 ||
      s_str_key(c, item, who, "bind", cfg->bind, sizeof cfg->bind) < 0 ||
      s_str_key(c, item, who, "labels", cfg->labels, sizeof cfg->labels) < 0)
    return -1;
  if (cfg->kind == FFS_FEED_Y4M || cfg->kind == FFS_FEED_CSV) {
    if (!!cfg->input[0] == !!cfg->command[0])
      return ffs_yaml_fail(c, item, "%s: feed %s reads one of input (a file, or - for standard "
                           "input) or command (expected exactly one of them)", who,
                           s_kind_names[cfg->kind]);
  }
  if ((cfg->kind == FFS_FEED_UDP || cfg->kind == FFS_FEED_ZMQ) && !cfg->bind[0])
    return ffs_yaml_fail(c, item, "%s: feed %s needs bind (expected e.g. %s)", who,
                         s_kind_names[cfg->kind],
                         cfg->kind == FFS_FEED_UDP ? "udp://127.0.0.1:9000"
                                                   : "tcp://127.0.0.1:5601");
  if (cfg->kind == FFS_FEED_UDP) {
    unsigned port;
    char host[64], tail;
    if (sscanf(cfg->bind, "udp://%63[^:]:%u%c", host, &port, &tail) != 2 || port > 65535 ||
        inet_addr(host) == INADDR_NONE)
      return ffs_yaml_fail(c, ffs_yaml_map_get(item, "bind"), "%s: bind: '%s' is not "
                           "udp://IPV4:PORT (expected e.g. udp://127.0.0.1:9000)", who, cfg->bind);
  }
  if (cfg->kind == FFS_FEED_Y4M) {
    if (!ffs_yaml_map_get(item, "width") || !ffs_yaml_map_get(item, "height"))
      return ffs_yaml_fail(c, item, "%s: feed y4m needs width and height (the frame size the "
                           "video's header must give)", who);
    if (s_int_key(c, item, who, "width", 1, 16384, &cfg->width) < 0 ||
        s_int_key(c, item, who, "height", 1, 16384, &cfg->height) < 0)
      return -1;
    snprintf(label, sizeof label, "%s: planes", who);
    if ((v = ffs_yaml_map_get(item, "planes")) &&
        ffs_yaml_enum(c, v, label, s_planes_names, &cfg->all_planes) < 0)
      return -1;
    long d = (long)cfg->width * cfg->height;
    if (cfg->all_planes) d += 2L * ((cfg->width + 1) / 2) * ((cfg->height + 1) / 2);
    if (d > (1 << 20))
      return ffs_yaml_fail(c, item, "%s: %dx%d frames make rows of %ld floats (expected at most "
                           "%d)", who, cfg->width, cfg->height, d, 1 << 20);
    *dim = (int)d; // 4:2:0 when all planes; the header is checked against it at start
  }
  if (cfg->kind == FFS_FEED_CSV || cfg->kind == FFS_FEED_UDP) {
    if (!ffs_yaml_map_get(item, "columns"))
      return ffs_yaml_fail(c, item, "%s: feed %s needs columns (numbers per row, the label "
                           "column included)", who, s_kind_names[cfg->kind]);
    if (s_int_key(c, item, who, "columns", 1, 512, &cfg->columns) < 0 ||
        s_int_key(c, item, who, "label_column", -1, cfg->columns - 1, &cfg->label_column) < 0 ||
        s_int_key(c, item, who, "window", 1, 4096, &cfg->window) < 0 ||
        s_int_key(c, item, who, "hop", 1, 4096, &cfg->hop) < 0)
      return -1;
    snprintf(label, sizeof label, "%s: header", who);
    if ((v = ffs_yaml_map_get(item, "header"))) {
      if (ffs_yaml_enum(c, v, label, s_header_names, &e) < 0) return -1;
      cfg->header = e == 2 ? -1 : e;
    }
    int width = cfg->columns - (cfg->label_column >= 0);
    if (width < 1)
      return ffs_yaml_fail(c, item, "%s: columns %d with a label column leaves no numbers", who,
                           cfg->columns);
    if ((long)width * cfg->window > (1 << 20))
      return ffs_yaml_fail(c, item, "%s: window %d x %d numbers is too wide", who, cfg->window,
                           width);
    *dim = width * cfg->window;
  }
  return 0;
}

// ---- the queue ----

struct ffs_feed {
  ffs_feed_cfg_t cfg;
  int dim, classes;
  const ffs_dataset_t *train;
  char what[560];         // the input, for messages
  int fd;                 // y4m/csv input (-1 none); closed by the feed unless stdin
  pid_t child;            // a command's process (0 none)
  int udp;                // udp socket (-1 none)
  void *zctx, *zpull;     // zmq feed
  uint8_t *labels;        // y4m side file: (n_labels) labels
  size_t n_labels;
  pthread_t thread;
  int started;
  pthread_mutex_t mu;
  pthread_cond_t room;    // the reader waits here for room (block)
  int efd;                // eventfd: samples wait
  float *x;               // (queue, dim) the ring
  ffs_feed_meta_t *meta;  // (queue)
  int head, len;
  int ended;              // the reader is done: no more samples
  int stop;               // destroy asked the reader to stop
  char reason[1024];      // why the input ended ("" = cleanly)
  char last_skip[1024];
  uint64_t dropped, skipped, index;
  float *row, *win;       // reader scratch: (dim) one sample, (columns) one CSV row
  float *zrows;           // zmq: (S_ZMQ_MAX_ROWS, dim) a frame's rows
  ffs_window_t *window;
};

static void s_signal(ffs_feed_t *f) {
  uint64_t one = 1;
  ssize_t rc = write(f->efd, &one, sizeof one);
  (void)rc; // a full eventfd counter still polls readable
}

// Queues x with its label (the reader's thread). Returns 0, or -1 when the
// feed is stopping.
static int s_push(ffs_feed_t *f, const float *x, int label) {
  pthread_mutex_lock(&f->mu);
  while (f->len == f->cfg.queue && f->cfg.overflow == FFS_OVERFLOW_BLOCK && !f->stop)
    pthread_cond_wait(&f->room, &f->mu);
  if (f->stop) {
    pthread_mutex_unlock(&f->mu);
    return -1;
  }
  if (f->len == f->cfg.queue) { // drop_oldest
    f->head = (f->head + 1) % f->cfg.queue, f->len--;
    f->dropped++;
  }
  int at = (f->head + f->len) % f->cfg.queue;
  memcpy(f->x + (size_t)at * (size_t)f->dim, x, sizeof(float) * (size_t)f->dim);
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  f->meta[at] = (ffs_feed_meta_t){f->index++, (uint64_t)ts.tv_sec * 1000000000ull +
                                                  (uint64_t)ts.tv_nsec, label};
  f->len++;
  pthread_mutex_unlock(&f->mu);
  s_signal(f);
  return 0;
}

static void s_skip(ffs_feed_t *f, const char *why) {
  pthread_mutex_lock(&f->mu);
  f->skipped++;
  snprintf(f->last_skip, sizeof f->last_skip, "%s", why);
  pthread_mutex_unlock(&f->mu);
}

// ---- readers (the feed's thread) ----

static int s_stopping(ffs_feed_t *f) {
  pthread_mutex_lock(&f->mu);
  int stop = f->stop;
  pthread_mutex_unlock(&f->mu);
  return stop;
}

static void s_read_idx(ffs_feed_t *f) {
  for (int i = 0; i < f->train->n; i++)
    if (s_push(f, f->train->x + (size_t)i * (size_t)f->dim, f->train->y[i]) < 0) return;
}

static void s_read_y4m(ffs_feed_t *f) {
  ffs_y4m_t *y = ffs_y4m_new(f->fd, f->what, f->reason, sizeof f->reason);
  if (!y) return;
  const ffs_y4m_hdr_t *h = ffs_y4m_header(y);
  if (h->width != f->cfg.width || h->height != f->cfg.height ||
      ffs_y4m_dim(h, f->cfg.all_planes) != f->dim) {
    snprintf(f->reason, sizeof f->reason, "%s: header: %dx%d frames (%d floats with planes: %s), "
             "but the source expects width %d, height %d (%d floats)", f->what, h->width,
             h->height, ffs_y4m_dim(h, f->cfg.all_planes), f->cfg.all_planes ? "all" : "luma",
             f->cfg.width, f->cfg.height, f->dim);
    ffs_y4m_destroy(&y);
    return;
  }
  ffs_info("feed: %s: %dx%d video at %d/%d frames/s", f->what, h->width, h->height, h->fps_num,
           h->fps_den);
  for (;;) {
    uint64_t k = ffs_y4m_frames(y);
    int rc = ffs_y4m_read(y, f->row, f->cfg.all_planes, f->reason, sizeof f->reason);
    if (rc <= 0) break;
    int label = k < f->n_labels ? f->labels[k] : -1;
    if (s_push(f, f->row, label) < 0) break;
  }
  ffs_y4m_destroy(&y);
}

// One CSV row (numbers without the label) through the window; queued when a
// window is complete.
static int s_row(ffs_feed_t *f, const float *numbers, int label) {
  if (!f->window) return s_push(f, numbers, label);
  if (!ffs_window_push(f->window, numbers, f->row)) return 0;
  return s_push(f, f->row, label); // a window's label is its last row's
}

static void s_read_csv(ffs_feed_t *f) {
  ffs_csv_cfg_t cc = {f->cfg.columns, f->cfg.label_column, f->cfg.header, f->classes};
  ffs_csv_t *c = ffs_csv_new(f->fd, f->what, &cc, f->reason, sizeof f->reason);
  if (!c) return;
  uint64_t skipped = 0;
  int label;
  char err[512];
  for (;;) {
    int rc = ffs_csv_next(c, f->win, &label, err, sizeof err);
    if (ffs_csv_skipped(c) != skipped) { // rows refused on the way: counted, the latest kept
      pthread_mutex_lock(&f->mu);
      f->skipped += ffs_csv_skipped(c) - skipped;
      snprintf(f->last_skip, sizeof f->last_skip, "%s", ffs_csv_last_error(c));
      pthread_mutex_unlock(&f->mu);
      skipped = ffs_csv_skipped(c);
    }
    if (rc < 0) snprintf(f->reason, sizeof f->reason, "%s", err);
    if (rc <= 0 || s_row(f, f->win, label) < 0) break;
  }
  ffs_csv_destroy(&c);
}

static void s_read_udp(ffs_feed_t *f) {
  char buf[65536], why[256];
  ffs_csv_cfg_t cc = {f->cfg.columns, f->cfg.label_column, 0, f->classes};
  while (!s_stopping(f)) {
    ssize_t n = recv(f->udp, buf, sizeof buf - 1, 0);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) continue; // the 100 ms tick
      snprintf(f->reason, sizeof f->reason, "%s: recv: %s", f->what, strerror(errno));
      return;
    }
    int label;
    buf[n] = 0;
    if (ffs_csv_row(&cc, buf, (size_t)n, f->win, &label, why, sizeof why) < 0) {
      char msg[320];
      snprintf(msg, sizeof msg, "datagram %llu: %s", (unsigned long long)(f->skipped + f->index),
               why);
      s_skip(f, msg);
      continue;
    }
    if (s_row(f, f->win, label) < 0) return;
  }
}

// DATA frames from a producer: each row is a sample, its label from the
// frame's labels (255 = none). A MARK frame ends the stream.
static void s_read_zmq(ffs_feed_t *f) {
  ffs_frame_limits_t lim = {S_ZMQ_MAX_ROWS, (uint32_t)f->dim, (uint32_t)f->dim};
  char why[256], msg[1024];
  while (!s_stopping(f)) {
    zmq_msg_t m;
    zmq_msg_init(&m);
    if (zmq_msg_recv(&m, f->zpull, 0) < 0) { // ZMQ_RCVTIMEO: the 100 ms tick
      zmq_msg_close(&m);
      if (zmq_errno() == EAGAIN || zmq_errno() == EINTR) continue;
      snprintf(f->reason, sizeof f->reason, "%s: %s", f->what, zmq_strerror(zmq_errno()));
      return;
    }
    ffs_frame_t fr;
    int rc = ffs_frame_decode(&fr, zmq_msg_data(&m), zmq_msg_size(&m), &lim, why, sizeof why);
    if (rc == 0 && fr.h.kind == FFS_FRAME_MARK) {
      zmq_msg_close(&m);
      return; // the producer says the stream ended
    }
    if (rc == 0 && fr.h.kind != FFS_FRAME_DATA)
      rc = -1, snprintf(why, sizeof why, "a %s frame (expected data or mark)",
                        ffs_frame_kind_str(fr.h.kind));
    if (rc == 0 && fr.h.rows && ffs_frame_copy_payload(f->zrows, &fr) < 0)
      rc = -1, snprintf(why, sizeof why, "a NaN or infinite value");
    for (uint32_t r = 0; rc == 0 && r < fr.h.rows; r++) {
      int label = fr.labels && fr.labels[r] < f->classes ? fr.labels[r] : -1;
      if (s_push(f, f->zrows + (size_t)r * (size_t)f->dim, label) < 0) {
        zmq_msg_close(&m);
        return;
      }
    }
    zmq_msg_close(&m);
    if (rc < 0) {
      snprintf(msg, sizeof msg, "%s: frame refused: %s", f->what, why);
      s_skip(f, msg);
    }
  }
}

static void *s_reader(void *arg) {
  ffs_feed_t *f = arg;
  switch (f->cfg.kind) {
  case FFS_FEED_IDX: s_read_idx(f); break;
  case FFS_FEED_Y4M: s_read_y4m(f); break;
  case FFS_FEED_CSV: s_read_csv(f); break;
  case FFS_FEED_UDP: s_read_udp(f); break;
  case FFS_FEED_ZMQ: s_read_zmq(f); break;
  }
  if (f->child > 0 && !f->reason[0] && !s_stopping(f)) { // the output ended: how did it?
    int status = 0;
    pid_t got = 0;
    for (int k = 0; k < 50 && (got = waitpid(f->child, &status, WNOHANG)) == 0; k++)
      usleep(20000); // a command that closed its output is given a second to exit
    if (got == f->child) {
      f->child = 0;
      if (WIFEXITED(status) && WEXITSTATUS(status))
        snprintf(f->reason, sizeof f->reason, "%s exited with status %d", f->what,
                 WEXITSTATUS(status));
      else if (WIFSIGNALED(status))
        snprintf(f->reason, sizeof f->reason, "%s was killed by signal %d", f->what,
                 WTERMSIG(status));
    }
  }
  pthread_mutex_lock(&f->mu);
  f->ended = 1;
  pthread_mutex_unlock(&f->mu);
  s_signal(f);
  return NULL;
}

// ---- opening inputs ----

// Starts cfg.command under /bin/sh with its standard output on a pipe.
static int s_spawn(ffs_feed_t *f, char *err, size_t errlen) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0) {
    snprintf(err, errlen, "pipe: %s", strerror(errno));
    return -1;
  }
  pid_t pid = fork();
  if (pid < 0) {
    close(p[0]), close(p[1]);
    snprintf(err, errlen, "fork: %s", strerror(errno));
    return -1;
  }
  if (pid == 0) {
    setpgid(0, 0); // its own group: terminated with all it started
    dup2(p[1], 1);
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    execl("/bin/sh", "sh", "-c", f->cfg.command, (char *)NULL);
    _exit(127);
  }
  setpgid(pid, pid); // (also in the child: whichever runs first)
  close(p[1]);
  f->child = pid, f->fd = p[0];
  return 0;
}

static int s_load_labels(ffs_feed_t *f, char *err, size_t errlen) {
  FILE *in = fopen(f->cfg.labels, "r");
  if (!in) {
    snprintf(err, errlen, "%s: %s", f->cfg.labels, strerror(errno));
    return -1;
  }
  size_t cap = 0;
  char line[64];
  int rc = 0;
  while (fgets(line, sizeof line, in)) {
    char *end;
    long v = strtol(line, &end, 10);
    while (*end == ' ' || *end == '\r' || *end == '\n') end++;
    if (end == line || *end || v < 0 || v >= f->classes) {
      snprintf(err, errlen, "%s: line %zu: '%.20s' is not a label 0..%d", f->cfg.labels,
               f->n_labels + 1, strtok(line, "\r\n") ? line : "", f->classes - 1);
      rc = -1;
      break;
    }
    if (f->n_labels == cap) {
      cap = cap ? 2 * cap : 4096;
      uint8_t *grown = realloc(f->labels, cap);
      if (!grown) {
        snprintf(err, errlen, "out of memory");
        rc = -1;
        break;
      }
      f->labels = grown;
    }
    f->labels[f->n_labels++] = (uint8_t)v;
  }
  fclose(in);
  return rc;
}

static int s_open_udp(ffs_feed_t *f, char *err, size_t errlen) {
  char host[64];
  unsigned port;
  sscanf(f->cfg.bind, "udp://%63[^:]:%u", host, &port); // checked at load
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = inet_addr(host);
  f->udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct timeval tv = {0, 100000};
  int big = 4 << 20;
  if (f->udp < 0 || setsockopt(f->udp, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0 ||
      bind(f->udp, (struct sockaddr *)&a, sizeof a) < 0) {
    snprintf(err, errlen, "%s: %s", f->cfg.bind, strerror(errno));
    return -1;
  }
  setsockopt(f->udp, SOL_SOCKET, SO_RCVBUF, &big, sizeof big); // best effort
  return 0;
}

static int s_open_zmq(ffs_feed_t *f, char *err, size_t errlen) {
  f->zctx = zmq_ctx_new();
  f->zpull = f->zctx ? zmq_socket(f->zctx, ZMQ_PULL) : NULL;
  int64_t max = (int64_t)ffs_frame_encoded_max(S_ZMQ_MAX_ROWS, (uint32_t)f->dim);
  int tick = 100, linger = 0;
  if (!f->zpull || zmq_setsockopt(f->zpull, ZMQ_MAXMSGSIZE, &max, sizeof max) < 0 ||
      zmq_setsockopt(f->zpull, ZMQ_RCVTIMEO, &tick, sizeof tick) < 0 ||
      zmq_setsockopt(f->zpull, ZMQ_LINGER, &linger, sizeof linger) < 0 ||
      zmq_bind(f->zpull, f->cfg.bind) < 0) {
    snprintf(err, errlen, "%s: %s", f->cfg.bind, zmq_strerror(zmq_errno()));
    return -1;
  }
  return 0;
}

ffs_feed_t *ffs_feed_new(const ffs_feed_cfg_t *cfg, int dim, int classes,
                         const ffs_dataset_t *train, char *err, size_t errlen) {
  ffs_feed_t *f = calloc(1, sizeof *f);
  if (!f) return NULL;
  f->cfg = *cfg, f->dim = dim, f->classes = classes, f->train = train;
  f->fd = -1, f->udp = -1, f->efd = -1;
  pthread_mutex_init(&f->mu, NULL);
  pthread_cond_init(&f->room, NULL);
  if (cfg->command[0]) snprintf(f->what, sizeof f->what, "command '%s'", cfg->command);
  else if (cfg->input[0]) snprintf(f->what, sizeof f->what, "%s",
                                   strcmp(cfg->input, "-") ? cfg->input : "standard input");
  else snprintf(f->what, sizeof f->what, "%s", cfg->bind[0] ? cfg->bind : "the training set");
  int width = cfg->columns - (cfg->label_column >= 0);
  f->x = malloc(sizeof(float) * (size_t)cfg->queue * (size_t)dim);
  f->meta = malloc(sizeof *f->meta * (size_t)cfg->queue);
  f->row = malloc(sizeof(float) * (size_t)dim);
  f->win = malloc(sizeof(float) * (size_t)(width > 0 ? width : 1));
  f->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (!f->x || !f->meta || !f->row || !f->win || f->efd < 0) {
    snprintf(err, errlen, "out of memory");
    goto fail;
  }
  if ((cfg->kind == FFS_FEED_CSV || cfg->kind == FFS_FEED_UDP) && cfg->window > 1 &&
      !(f->window = ffs_window_new(width, cfg->window, cfg->hop))) {
    snprintf(err, errlen, "out of memory");
    goto fail;
  }
  if (cfg->kind == FFS_FEED_IDX && (!train || train->dim != dim)) {
    snprintf(err, errlen, "feed idx: no training set of %d floats per row", dim);
    goto fail;
  }
  if (cfg->labels[0] && s_load_labels(f, err, errlen) < 0) goto fail;
  if (cfg->command[0]) {
    // started with the stream (ffs_feed_start): a camera or a paced player
    // is not read into a full queue while the other stages start
  } else if (!strcmp(cfg->input, "-")) {
    f->fd = 0;
  } else if (cfg->input[0] && (f->fd = open(cfg->input, O_RDONLY | O_CLOEXEC)) < 0) {
    snprintf(err, errlen, "%s: %s", cfg->input, strerror(errno));
    goto fail;
  }
  if (cfg->kind == FFS_FEED_UDP && s_open_udp(f, err, errlen) < 0) goto fail;
  if (cfg->kind == FFS_FEED_ZMQ &&
      (!(f->zrows = malloc(sizeof(float) * S_ZMQ_MAX_ROWS * (size_t)dim)) ||
       s_open_zmq(f, err, errlen) < 0)) {
    if (!f->zrows) snprintf(err, errlen, "out of memory");
    goto fail;
  }
  ffs_info("feed %s: %s (overflow %s, queue %d)", ffs_feed_kind_str(cfg->kind), f->what,
           s_overflow_names[cfg->overflow], cfg->queue);
  return f;
fail:
  ffs_feed_destroy(&f);
  return NULL;
}

int ffs_feed_start(ffs_feed_t *f, char *err, size_t errlen) {
  if (f->started) return 0;
  if (f->cfg.command[0] && s_spawn(f, err, errlen) < 0) return -1;
  if (pthread_create(&f->thread, NULL, s_reader, f) != 0) {
    snprintf(err, errlen, "cannot start the feed's reader thread");
    return -1;
  }
  f->started = 1;
  return 0;
}

// ---- the source's side ----

int ffs_feed_fd(const ffs_feed_t *f) { return f->efd; }

int ffs_feed_pop(ffs_feed_t *f, float *x, ffs_feed_meta_t *m) {
  pthread_mutex_lock(&f->mu);
  if (!f->len) {
    int ended = f->ended;
    uint64_t drain;
    ssize_t rc = read(f->efd, &drain, sizeof drain); // nothing waits: stop polling readable
    (void)rc;
    pthread_mutex_unlock(&f->mu);
    if (ended) s_signal(f); // stay readable: the end is news too
    return ended ? -1 : 0;
  }
  memcpy(x, f->x + (size_t)f->head * (size_t)f->dim, sizeof(float) * (size_t)f->dim);
  *m = f->meta[f->head];
  f->head = (f->head + 1) % f->cfg.queue, f->len--;
  pthread_cond_signal(&f->room);
  pthread_mutex_unlock(&f->mu);
  return 1;
}

const char *ffs_feed_end_reason(const ffs_feed_t *f) { return f->reason; }

void ffs_feed_counts(ffs_feed_t *f, uint64_t *dropped, uint64_t *skipped) {
  pthread_mutex_lock(&f->mu);
  *dropped = f->dropped, *skipped = f->skipped;
  pthread_mutex_unlock(&f->mu);
}

const char *ffs_feed_last_skip(ffs_feed_t *f, char *buf, size_t cap) {
  pthread_mutex_lock(&f->mu);
  snprintf(buf, cap, "%s", f->last_skip);
  pthread_mutex_unlock(&f->mu);
  return buf;
}

void ffs_feed_destroy(ffs_feed_t **self_p) {
  ffs_feed_t *f = *self_p;
  if (!f) return;
  pthread_mutex_lock(&f->mu);
  f->stop = 1;
  pthread_cond_broadcast(&f->room);
  pthread_mutex_unlock(&f->mu);
  if (f->child > 0 && kill(-f->child, SIGTERM) < 0) // its pipe closes: the reader sees the end
    kill(f->child, SIGTERM);
  int detached = 0;
  if (f->started) {
    // a reader blocked on standard input cannot be woken: it is left behind
    // (the process is ending) rather than waited for
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 2;
    if (pthread_timedjoin_np(f->thread, NULL, &until) != 0) {
      pthread_detach(f->thread);
      detached = 1;
    }
  }
  if (f->child > 0) {
    int status;
    if (waitpid(f->child, &status, WNOHANG) == 0) {
      if (kill(-f->child, SIGKILL) < 0) kill(f->child, SIGKILL);
      waitpid(f->child, &status, 0);
    }
  }
  *self_p = NULL;
  if (detached) return; // its memory stays with the thread still using it
  if (f->fd > 0) close(f->fd);
  if (f->udp >= 0) close(f->udp);
  if (f->zpull) zmq_close(f->zpull);
  if (f->zctx) zmq_ctx_term(f->zctx);
  if (f->efd >= 0) close(f->efd);
  ffs_window_destroy(&f->window);
  pthread_mutex_destroy(&f->mu);
  pthread_cond_destroy(&f->room);
  free(f->x), free(f->meta), free(f->row), free(f->win), free(f->labels), free(f->zrows);
  free(f);
}
