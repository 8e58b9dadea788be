// check_y4m: the source's YUV4MPEG2 reader. Hand-made streams go through a
// pipe or a temp file: every chroma layout's planes come out exact, a
// stream ends cleanly only at a frame boundary, and every malformed byte is
// refused with the input's name and the frame's index. Real streams come
// from ffmpeg (a project dependency) and are checked against its rawvideo.
#include "y4m.h"

#include "ffs_check.h"
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

// ---- helpers ----

// A stream being built: header, FRAME lines and frame bytes.
typedef struct {
  uint8_t b[60000]; // under a pipe's 64 KiB, so writing never blocks
  size_t n;
} s_stream_t;

static void s_put(s_stream_t *s, const void *p, size_t n) {
  ck_assert_uint_le(s->n + n, sizeof s->b);
  memcpy(s->b + s->n, p, n);
  s->n += n;
}

static void s_puts(s_stream_t *s, const char *text) { s_put(s, text, strlen(text)); }

// The byte at offset i of frame f: every value 0..255 shows up.
static uint8_t s_byte(int f, size_t i) { return (uint8_t)(f * 37 + i * 11 + i / 7); }

// Appends a FRAME line (line, e.g. "FRAME\n") and n bytes of frame f.
static void s_frame(s_stream_t *s, const char *line, int f, size_t n) {
  s_puts(s, line);
  for (size_t i = 0; i < n; i++) s->b[s->n + i] = s_byte(f, i);
  ck_assert_uint_le(s->n + n, sizeof s->b);
  s->n += n;
}

// A pipe holding the stream, its write end closed: returns the read end.
static int s_pipe(const s_stream_t *s) {
  int fds[2];
  ck_assert_int_eq(pipe(fds), 0);
  ck_assert_int_eq(write(fds[1], s->b, s->n), (ssize_t)s->n);
  close(fds[1]);
  return fds[0];
}

// Checks that x holds frame f's first n bytes / 255 exactly, at offset `from`.
static void s_expect_frame(const float *x, int f, size_t from, size_t n) {
  for (size_t i = 0; i < n; i++)
    ck_assert_msg(x[i] == (float)s_byte(f, from + i) / 255.0f, "frame %d byte %zu: %g vs %d", f,
                  from + i, (double)x[i], s_byte(f, from + i));
}

// Opens the stream through a pipe; the header must parse.
static ffs_y4m_t *s_open(const s_stream_t *s, int *fd, const char *what) {
  char err[512] = "";
  *fd = s_pipe(s);
  ffs_y4m_t *y = ffs_y4m_new(*fd, what, err, sizeof err);
  ck_assert_msg(y != NULL, "%s", err);
  return y;
}

// The header must be refused with a message holding both strings.
static void s_expect_header_fail(const char *bytes, size_t n, const char *want1,
                                 const char *want2) {
  s_stream_t s = {.n = 0};
  s_put(&s, bytes, n);
  int fd = s_pipe(&s);
  char err[512] = "";
  ffs_y4m_t *y = ffs_y4m_new(fd, "in.y4m", err, sizeof err);
  close(fd);
  ck_assert_msg(y == NULL, "accepted: %.*s", (int)n, bytes);
  ck_assert_msg(!strncmp(err, "in.y4m: header: ", 16), "%s", err);
  ck_assert_msg(strstr(err, want1), "'%s' lacks '%s'", err, want1);
  if (want2) ck_assert_msg(strstr(err, want2), "'%s' lacks '%s'", err, want2);
}

#define S_HEADER_FAIL(text, w1, w2) s_expect_header_fail(text, sizeof text - 1, w1, w2)

// Reads until an error; it must name the frame and say `want`, and repeat.
static void s_expect_read_fail(ffs_y4m_t *y, float *x, const char *want) {
  char err[512] = "", again[512] = "";
  int rc;
  while ((rc = ffs_y4m_read(y, x, 1, err, sizeof err)) == 1) continue;
  ck_assert_msg(rc == -1, "no error, want '%s'", want);
  ck_assert_msg(strstr(err, want), "'%s' lacks '%s'", err, want);
  ck_assert_int_eq(ffs_y4m_read(y, x, 1, again, sizeof again), -1); // final
  ck_assert_str_eq(again, err);
}

// ---- core ----

START_TEST(test_mono) {
  s_stream_t s = {.n = 0};
  s_puts(&s, "YUV4MPEG2 W5 H3 F25:1 Ip A1:1 Cmono XCOLORRANGE=FULL\n");
  for (int f = 0; f < 3; f++) s_frame(&s, "FRAME\n", f, 15);
  int fd;
  ffs_y4m_t *y = s_open(&s, &fd, "stdin");
  const ffs_y4m_hdr_t *h = ffs_y4m_header(y);
  ck_assert_int_eq(h->width, 5);
  ck_assert_int_eq(h->height, 3);
  ck_assert_int_eq(h->fps_num, 25);
  ck_assert_int_eq(h->fps_den, 1);
  ck_assert_int_eq(h->chroma, FFS_Y4M_MONO);
  ck_assert_uint_eq(h->frame_bytes, 15);
  ck_assert_int_eq(ffs_y4m_dim(h, 0), 15);
  ck_assert_int_eq(ffs_y4m_dim(h, 1), 15);
  float x[16];
  char err[256] = "";
  for (int f = 0; f < 3; f++) {
    x[15] = -7.0f; // never written
    ck_assert_int_eq(ffs_y4m_read(y, x, f % 2, err, sizeof err), 1);
    s_expect_frame(x, f, 0, 15);
    ck_assert_float_eq(x[15], -7.0f);
    ck_assert_uint_eq(ffs_y4m_frames(y), (uint64_t)f + 1);
  }
  ck_assert_int_eq(ffs_y4m_read(y, x, 0, err, sizeof err), 0);
  ck_assert_int_eq(ffs_y4m_read(y, x, 0, err, sizeof err), 0); // and stays ended
  ck_assert_uint_eq(ffs_y4m_frames(y), 3);
  ffs_y4m_destroy(&y);
  ck_assert_ptr_null(y);
  ffs_y4m_destroy(&y); // idempotent
  ck_assert_int_eq(close(fd), 0); // destroy left the fd open
}
END_TEST

START_TEST(test_420_odd_all_planes) {
  // W5 H3: chroma planes 3 x 2 each, 15 + 2 * 6 = 27 bytes a frame
  s_stream_t s = {.n = 0};
  s_puts(&s, "YUV4MPEG2 W5 H3 F30000:1001 C420jpeg XYSCSS=420JPEG\n");
  for (int f = 0; f < 4; f++) s_frame(&s, "FRAME\n", f, 27);
  int fd;
  ffs_y4m_t *y = s_open(&s, &fd, "cam");
  const ffs_y4m_hdr_t *h = ffs_y4m_header(y);
  ck_assert_int_eq(h->chroma, FFS_Y4M_420);
  ck_assert_int_eq(h->fps_num, 30000);
  ck_assert_int_eq(h->fps_den, 1001);
  ck_assert_uint_eq(h->frame_bytes, 27);
  ck_assert_int_eq(ffs_y4m_dim(h, 0), 15);
  ck_assert_int_eq(ffs_y4m_dim(h, 1), 27);
  float x[28];
  char err[256] = "";
  // luma only skips the chroma bytes: the next frame still lines up
  for (int f = 0; f < 4; f++) {
    int all = f == 1 || f == 3;
    x[all ? 27 : 15] = -7.0f;
    ck_assert_msg(ffs_y4m_read(y, x, all, err, sizeof err) == 1, "%s", err);
    s_expect_frame(x, f, 0, all ? 27 : 15);
    ck_assert_float_eq(x[all ? 27 : 15], -7.0f);
  }
  ck_assert_int_eq(ffs_y4m_read(y, x, 1, err, sizeof err), 0);
  ffs_y4m_destroy(&y);
  close(fd);
}
END_TEST

START_TEST(test_other_layouts) {
  static const struct {
    const char *hdr;
    ffs_y4m_chroma_t chroma;
    size_t bytes;
  } cases[] = {
      {"YUV4MPEG2 W4 H2 C444\n", FFS_Y4M_444, 24},
      {"YUV4MPEG2 W5 H2 C422\n", FFS_Y4M_422, 10 + 2 * 6},
      {"YUV4MPEG2 H3 W5\n", FFS_Y4M_420, 15 + 2 * 6}, // no C: 420, no F: 0/0
      {"YUV4MPEG2 W7 H1 C420paldv\n", FFS_Y4M_420, 7 + 2 * 4},
      {"YUV4MPEG2 W2 H2 C420mpeg2 F0:0\n", FFS_Y4M_420, 6},
      {"YUV4MPEG2 W1 H1 C420\n", FFS_Y4M_420, 3},
      {"YUV4MPEG2 W3 H3  Q7 C444  \n", FFS_Y4M_444, 27}, // unknown tag, extra spaces
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    s_stream_t s = {.n = 0};
    s_puts(&s, cases[c].hdr);
    s_frame(&s, "FRAME\n", 0, cases[c].bytes);
    s_frame(&s, "FRAME Ixyz Xfoo=1\n", 1, cases[c].bytes); // parameters ignored
    int fd;
    ffs_y4m_t *y = s_open(&s, &fd, "x");
    const ffs_y4m_hdr_t *h = ffs_y4m_header(y);
    ck_assert_int_eq(h->chroma, cases[c].chroma);
    ck_assert_uint_eq(h->frame_bytes, cases[c].bytes);
    ck_assert_int_eq(ffs_y4m_dim(h, 1), (int)cases[c].bytes);
    ck_assert_int_eq(ffs_y4m_dim(h, 0), h->width * h->height);
    if (!strstr(cases[c].hdr, "F")) ck_assert(h->fps_num == 0 && h->fps_den == 0);
    float x[32];
    char err[256] = "";
    for (int f = 0; f < 2; f++) {
      ck_assert_msg(ffs_y4m_read(y, x, 1, err, sizeof err) == 1, "%s: %s", cases[c].hdr, err);
      s_expect_frame(x, f, 0, cases[c].bytes);
    }
    ck_assert_int_eq(ffs_y4m_read(y, x, 1, err, sizeof err), 0);
    ffs_y4m_destroy(&y);
    close(fd);
  }
}
END_TEST

START_TEST(test_file_input_and_largest_header) {
  char path[] = "/tmp/check_y4m.XXXXXX";
  int fd = mkstemp(path);
  ck_assert_int_ge(fd, 0);
  s_stream_t s = {.n = 0};
  s_puts(&s, "YUV4MPEG2 W64 H48 C444\n");
  for (int f = 0; f < 5; f++) s_frame(&s, "FRAME\n", f, 64 * 48 * 3);
  ck_assert_int_eq(write(fd, s.b, s.n), (ssize_t)s.n);
  ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
  char err[256] = "";
  ffs_y4m_t *y = ffs_y4m_new(fd, path, err, sizeof err);
  ck_assert_msg(y != NULL, "%s", err);
  static float x[64 * 48 * 3];
  for (int f = 0; f < 5; f++) {
    ck_assert_msg(ffs_y4m_read(y, x, 1, err, sizeof err) == 1, "%s", err);
    s_expect_frame(x, f, 0, sizeof x / sizeof x[0]);
  }
  ck_assert_int_eq(ffs_y4m_read(y, x, 1, err, sizeof err), 0);
  ffs_y4m_destroy(&y);
  close(fd);
  unlink(path);

  // the largest frame: 16384^2 * 3 floats still fit an int
  S_HEADER_FAIL("YUV4MPEG2 W16385 H16384 C444\n", "W16385: out of range", "expected W1..W16384");
  s_stream_t big = {.n = 0};
  s_puts(&big, "YUV4MPEG2 W16384 H16384 C444\n");
  ffs_y4m_t *yb = s_open(&big, &fd, "big");
  ck_assert_int_eq(ffs_y4m_dim(ffs_y4m_header(yb), 1), 3 * 16384 * 16384);
  ck_assert_int_eq(ffs_y4m_read(yb, x, 1, err, sizeof err), 0); // no frame: a clean end
  ffs_y4m_destroy(&yb);
  close(fd);
}
END_TEST

START_TEST(test_repeated_header_same_size) {
  // `cat a.y4m b.y4m`: the second header repeats the geometry, frames go on
  s_stream_t s = {.n = 0};
  s_puts(&s, "YUV4MPEG2 W4 H2 F25:1 C420jpeg\n");
  s_frame(&s, "FRAME\n", 0, 12);
  s_puts(&s, "YUV4MPEG2 W4 H2 F30:1 C420mpeg2 XCOLORRANGE=LIMITED\n");
  s_frame(&s, "FRAME\n", 1, 12);
  int fd;
  ffs_y4m_t *y = s_open(&s, &fd, "cat");
  float x[12];
  char err[256] = "";
  for (int f = 0; f < 2; f++) {
    ck_assert_msg(ffs_y4m_read(y, x, 1, err, sizeof err) == 1, "%s", err);
    s_expect_frame(x, f, 0, 12);
  }
  ck_assert_int_eq(ffs_y4m_read(y, x, 1, err, sizeof err), 0);
  ffs_y4m_destroy(&y);
  close(fd);
}
END_TEST

// ---- a live pipe: small chunks, signals, a non-blocking fd ----

typedef struct {
  int fd;
  const s_stream_t *s;
  size_t chunk;
} s_writer_t;

static void *s_writer(void *arg) {
  s_writer_t *w = arg;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGALRM);
  pthread_sigmask(SIG_BLOCK, &set, NULL); // the reader takes every SIGALRM
  struct timespec pause = {0, 30 * 1000 * 1000}, tick = {0, 200 * 1000};
  nanosleep(&pause, NULL); // the reader blocks on the header meanwhile
  for (size_t at = 0; at < w->s->n;) {
    size_t n = w->s->n - at < w->chunk ? w->s->n - at : w->chunk;
    ssize_t put = write(w->fd, w->s->b + at, n);
    if (put < 0 && errno == EINTR) continue;
    if (put < 0) break;
    at += (size_t)put;
    nanosleep(&tick, NULL);
  }
  close(w->fd);
  return NULL;
}

static volatile sig_atomic_t s_alarms;
static void s_on_alarm(int sig) {
  (void)sig;
  s_alarms++;
}

// _i = 0: a blocking pipe; 1: a non-blocking one (read says EAGAIN)
START_TEST(test_pipe_small_chunks) {
  s_stream_t s = {.n = 0};
  s_puts(&s, "YUV4MPEG2 W9 H7 F10:1 Ip A0:0 C420jpeg\n");
  size_t bytes = 63 + 2 * 5 * 4;
  for (int f = 0; f < 12; f++) s_frame(&s, f % 3 ? "FRAME\n" : "FRAME W9 H7\n", f, bytes);
  int fds[2];
  ck_assert_int_eq(pipe(fds), 0);
  if (_i) ck_assert_int_eq(fcntl(fds[0], F_SETFL, O_NONBLOCK), 0);
  // SIGALRM every ms, without SA_RESTART: reads get EINTR
  struct sigaction sa = {.sa_handler = s_on_alarm}, old;
  sigemptyset(&sa.sa_mask);
  ck_assert_int_eq(sigaction(SIGALRM, &sa, &old), 0);
  struct itimerval every = {{0, 1000}, {0, 1000}}, off = {{0, 0}, {0, 0}};
  ck_assert_int_eq(setitimer(ITIMER_REAL, &every, NULL), 0);
  s_writer_t w = {.fd = fds[1], .s = &s, .chunk = 7};
  pthread_t t;
  ck_assert_int_eq(pthread_create(&t, NULL, s_writer, &w), 0);

  char err[256] = "";
  ffs_y4m_t *y = ffs_y4m_new(fds[0], "ffmpeg -i cam", err, sizeof err);
  ck_assert_msg(y != NULL, "%s", err);
  float x[128];
  for (int f = 0; f < 12; f++) {
    ck_assert_msg(ffs_y4m_read(y, x, 1, err, sizeof err) == 1, "frame %d: %s", f, err);
    s_expect_frame(x, f, 0, bytes);
  }
  ck_assert_int_eq(ffs_y4m_read(y, x, 1, err, sizeof err), 0);
  ck_assert_int_eq(setitimer(ITIMER_REAL, &off, NULL), 0);
  ck_assert_int_eq(pthread_join(t, NULL), 0);
  sigaction(SIGALRM, &old, NULL);
  ck_assert_int_gt(s_alarms, 10); // the reader was interrupted while it waited
  ffs_y4m_destroy(&y);
  close(fds[0]);
}
END_TEST

// ---- ffmpeg ----

// Runs cmd, returning up to cap bytes of its output in buf; its status must be 0.
static size_t s_slurp(const char *cmd, uint8_t *buf, size_t cap) {
  FILE *p = popen(cmd, "r");
  ck_assert_ptr_nonnull(p);
  size_t n = fread(buf, 1, cap, p);
  ck_assert_int_eq(pclose(p), 0);
  return n;
}

#define S_TESTSRC "ffmpeg -v error -f lavfi -i testsrc=size=32x24:rate=10 -frames:v 5 -pix_fmt "

// Reads ffmpeg's 5-frame y4m stream in pix_fmt and compares it with the
// same frames as rawvideo.
static void s_check_ffmpeg(const char *pix_fmt, ffs_y4m_chroma_t chroma, int all_planes,
                           int dim) {
  static uint8_t raw[5 * 32 * 24 * 3 + 1];
  char cmd[512];
  snprintf(cmd, sizeof cmd, S_TESTSRC "%s -f rawvideo -", pix_fmt);
  size_t frame = (size_t)(chroma == FFS_Y4M_MONO ? 32 * 24 : 32 * 24 * 3 / 2);
  ck_assert_uint_eq(s_slurp(cmd, raw, sizeof raw), 5 * frame);

  snprintf(cmd, sizeof cmd, S_TESTSRC "%s -f yuv4mpegpipe -", pix_fmt);
  FILE *p = popen(cmd, "r");
  ck_assert_ptr_nonnull(p);
  char err[512] = "";
  ffs_y4m_t *y = ffs_y4m_new(fileno(p), cmd, err, sizeof err);
  ck_assert_msg(y != NULL, "%s", err);
  const ffs_y4m_hdr_t *h = ffs_y4m_header(y);
  ck_assert_int_eq(h->width, 32);
  ck_assert_int_eq(h->height, 24);
  ck_assert_int_eq(h->fps_num, 10);
  ck_assert_int_eq(h->fps_den, 1);
  ck_assert_int_eq(h->chroma, chroma);
  ck_assert_uint_eq(h->frame_bytes, frame);
  ck_assert_int_eq(ffs_y4m_dim(h, all_planes), dim);
  static float x[32 * 24 * 3];
  for (int f = 0; f < 5; f++) {
    ck_assert_msg(ffs_y4m_read(y, x, all_planes, err, sizeof err) == 1, "%s", err);
    int distinct = 0;
    for (int i = 0; i < dim; i++) {
      ck_assert_msg(x[i] == (float)raw[(size_t)f * frame + (size_t)i] / 255.0f,
                    "frame %d byte %d", f, i);
      distinct += i > 0 && x[i] != x[i - 1];
    }
    ck_assert_int_gt(distinct, 20); // a test pattern, not a blank frame
  }
  ck_assert_msg(ffs_y4m_read(y, x, all_planes, err, sizeof err) == 0, "%s", err);
  ck_assert_uint_eq(ffs_y4m_frames(y), 5);
  ffs_y4m_destroy(&y);
  ck_assert_int_eq(pclose(p), 0);
}

START_TEST(test_ffmpeg_gray) { s_check_ffmpeg("gray", FFS_Y4M_MONO, 0, 32 * 24); }
END_TEST

START_TEST(test_ffmpeg_yuv420p_all_planes) {
  s_check_ffmpeg("yuv420p", FFS_Y4M_420, 1, 32 * 24 + 2 * 16 * 12);
}
END_TEST

// ---- limits ----

START_TEST(test_truncated_last_frame) {
  s_stream_t s = {.n = 0};
  s_puts(&s, "YUV4MPEG2 W7 H4 Cmono\n");
  for (int f = 0; f < 12; f++) s_frame(&s, "FRAME\n", f, 28);
  s_frame(&s, "FRAME\n", 12, 10);
  int fd;
  ffs_y4m_t *y = s_open(&s, &fd, "clip.y4m");
  float x[28];
  s_expect_read_fail(y, x, "clip.y4m: frame 12: truncated: 10 of 28 bytes");
  ck_assert_uint_eq(ffs_y4m_frames(y), 12);
  ffs_y4m_destroy(&y);
  close(fd);

  // cut inside the FRAME line, and right after it
  s.n = 0;
  s_puts(&s, "YUV4MPEG2 W7 H4 Cmono\n");
  s_frame(&s, "FRAME\n", 0, 28);
  s_puts(&s, "FRA");
  y = s_open(&s, &fd, "clip.y4m");
  s_expect_read_fail(y, x, "clip.y4m: frame 1: truncated: the input ends inside the FRAME line");
  ffs_y4m_destroy(&y);
  close(fd);
  s.n -= 3;
  s_puts(&s, "FRAME\n");
  y = s_open(&s, &fd, "clip.y4m");
  s_expect_read_fail(y, x, "clip.y4m: frame 1: truncated: 0 of 28 bytes");
  ffs_y4m_destroy(&y);
  close(fd);
}
END_TEST

START_TEST(test_malformed_header) {
  S_HEADER_FAIL("", "empty input", NULL);
  S_HEADER_FAIL("RIFF\x01\x02 WAVE fmt\n", "starts with 'RIFF?? WAVE fmt'", "YUV4MPEG2");
  S_HEADER_FAIL("YUV4MPEG2W4 H4\n", "starts with 'YUV4MPEG2W4 H4'", NULL);
  S_HEADER_FAIL("\x89PNG\r\n", "starts with '?PNG?'", NULL);
  S_HEADER_FAIL("YUV4MPEG2 W32\n", "no H tag", NULL);
  S_HEADER_FAIL("YUV4MPEG2 H32 F25:1\n", "no W tag", NULL);
  S_HEADER_FAIL("YUV4MPEG2\n", "no W tag", NULL);
  S_HEADER_FAIL("YUV4MPEG2 W0 H4\n", "W0: out of range", "W1..W16384");
  S_HEADER_FAIL("YUV4MPEG2 W4 H99999999999999999999\n", "H99999999999999999999: out", NULL);
  S_HEADER_FAIL("YUV4MPEG2 Wabc H4\n", "Wabc: not a number", NULL);
  S_HEADER_FAIL("YUV4MPEG2 W-4 H4\n", "W-4: not a number", NULL);
  S_HEADER_FAIL("YUV4MPEG2 W4 H4 W4\n", "tag W given twice", NULL);
  S_HEADER_FAIL("YUV4MPEG2 W4 H4 F25:0\n", "F25:0: bad frame rate", NULL);
  S_HEADER_FAIL("YUV4MPEG2 W4 H4 F25\n", "F25: bad frame rate", NULL);
  S_HEADER_FAIL("YUV4MPEG2 W4 H4 C411\n", "C411: unsupported chroma format",
                "supported: mono, 420jpeg, 420paldv, 420mpeg2, 420, 422, 444");
  S_HEADER_FAIL("YUV4MPEG2 W4 H4 C444alpha\n", "C444alpha: unsupported", NULL);
  S_HEADER_FAIL("YUV4MPEG2 W4 H4 C\n", "C: unsupported", NULL);
  S_HEADER_FAIL("YUV4MPEG2 W4 H4", "ends after 15 bytes without a newline", NULL);
  // binary input with no newline: the magic is checked before the line
  char bin[400];
  memset(bin, 0, sizeof bin);
  s_expect_header_fail(bin, sizeof bin, "starts with '????????", "YUV4MPEG2");
  // a 256-byte line is fine, 257 is not
  char line[300] = "YUV4MPEG2 W4 H4 X";
  size_t at = strlen(line);
  memset(line + at, 'x', 256 - at);
  line[256] = '\n';
  s_stream_t s = {.n = 0};
  s_put(&s, line, 257);
  int fd;
  ffs_y4m_t *y = s_open(&s, &fd, "ok");
  ffs_y4m_destroy(&y);
  close(fd);
  line[256] = 'x';
  line[257] = '\n';
  s_expect_header_fail(line, 258, "no newline within 257 bytes", "at most 256");
  // and a NULL error buffer is fine
  s.n = 0;
  fd = s_pipe(&s);
  ck_assert_ptr_null(ffs_y4m_new(fd, "x", NULL, 0));
  close(fd);
}
END_TEST

START_TEST(test_16bit_refused) {
  static const char *deep[] = {"mono16", "420p10", "444p12", "422p16", "420p9"};
  for (size_t i = 0; i < sizeof deep / sizeof deep[0]; i++) {
    char hdr[128], want[64];
    int n = snprintf(hdr, sizeof hdr, "YUV4MPEG2 W32 H24 F10:1 Ip A1:1 C%s XYSCSS=X\n", deep[i]);
    snprintf(want, sizeof want, "C%s: more than 8 bits per sample", deep[i]);
    s_expect_header_fail(hdr, (size_t)n, want, "supported: mono, 420jpeg");
  }
}
END_TEST

START_TEST(test_malformed_frame_line) {
  static const struct {
    const char *line, *want;
  } cases[] = {
      {"FRAMEX\n", "frame 1: malformed FRAME line 'FRAMEX'"},
      {"FRAM\n", "frame 1: malformed FRAME line 'FRAM'"},
      {"\n", "frame 1: malformed FRAME line ''"},
      {"frame\n", "frame 1: malformed FRAME line 'frame'"},
      {"FRAME Wx\n", "frame 1: malformed FRAME line: Wx: not a number"},
      {"FRAME H0\n", "frame 1: malformed FRAME line: H0: out of range"},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    s_stream_t s = {.n = 0};
    s_puts(&s, "YUV4MPEG2 W4 H2 Cmono\n");
    s_frame(&s, "FRAME\n", 0, 8);
    s_frame(&s, cases[c].line, 1, 8);
    int fd;
    ffs_y4m_t *y = s_open(&s, &fd, "feed");
    float x[8];
    s_expect_read_fail(y, x, cases[c].want);
    ck_assert_uint_eq(ffs_y4m_frames(y), 1);
    ffs_y4m_destroy(&y);
    close(fd);
  }
  // frame bytes where a FRAME line belongs (a wrong W in the header, say)
  s_stream_t s = {.n = 0};
  s_puts(&s, "YUV4MPEG2 W4 H2 Cmono\n");
  s_frame(&s, "FRAME\n", 0, 8);
  for (int i = 0; i < 400; i++) s_puts(&s, "\x01");
  int fd;
  ffs_y4m_t *y = s_open(&s, &fd, "feed");
  float x[8];
  s_expect_read_fail(y, x, "feed: frame 1: malformed FRAME line: '????????");
  s_expect_read_fail(y, x, "has no newline within 257 bytes");
  ffs_y4m_destroy(&y);
  close(fd);
}
END_TEST

START_TEST(test_size_change) {
  float x[64];
  int fd;
  // a FRAME line with another W
  s_stream_t s = {.n = 0};
  s_puts(&s, "YUV4MPEG2 W4 H2 Cmono\n");
  s_frame(&s, "FRAME W4 H2\n", 0, 8);
  s_frame(&s, "FRAME W6\n", 1, 12);
  ffs_y4m_t *y = s_open(&s, &fd, "cam0");
  s_expect_read_fail(y, x, "cam0: frame 1: size change: FRAME says W6, the stream header W4");
  ffs_y4m_destroy(&y);
  close(fd);
  // ... and another H
  s.n = 0;
  s_puts(&s, "YUV4MPEG2 W4 H2 Cmono\n");
  s_frame(&s, "FRAME Ip H3\n", 0, 12);
  y = s_open(&s, &fd, "cam0");
  s_expect_read_fail(y, x, "cam0: frame 0: size change: FRAME says H3, the stream header H2");
  ffs_y4m_destroy(&y);
  close(fd);
  // a second header of another size
  s.n = 0;
  s_puts(&s, "YUV4MPEG2 W4 H2 C420jpeg\n");
  s_frame(&s, "FRAME\n", 0, 12);
  s_frame(&s, "FRAME\n", 1, 12);
  s_puts(&s, "YUV4MPEG2 W8 H8 C420jpeg\n");
  s_frame(&s, "FRAME\n", 2, 96);
  y = s_open(&s, &fd, "cam1");
  s_expect_read_fail(y, x,
                     "cam1: frame 2: size change: a second stream header says 8x8 C420, "
                     "the stream is 4x2 C420");
  ck_assert_uint_eq(ffs_y4m_frames(y), 2);
  ffs_y4m_destroy(&y);
  close(fd);
  // ... of the same size, another chroma
  s.n = 0;
  s_puts(&s, "YUV4MPEG2 W4 H2 C420jpeg\n");
  s_puts(&s, "YUV4MPEG2 W4 H2 C444\n");
  y = s_open(&s, &fd, "cam1");
  s_expect_read_fail(y, x, "cam1: frame 0: size change: a second stream header says 4x2 C444");
  ffs_y4m_destroy(&y);
  close(fd);
  // ... and a broken one
  s.n = 0;
  s_puts(&s, "YUV4MPEG2 W4 H2 C420jpeg\n");
  s_puts(&s, "YUV4MPEG2 W4 C420p10\n");
  y = s_open(&s, &fd, "cam1");
  s_expect_read_fail(y, x, "cam1: frame 0: a second stream header, malformed: C420p10");
  ffs_y4m_destroy(&y);
  close(fd);
}
END_TEST

START_TEST(test_read_error) {
  // a write-only fd: read() fails with EBADF
  int fds[2];
  ck_assert_int_eq(pipe(fds), 0);
  char err[256] = "";
  ck_assert_ptr_null(ffs_y4m_new(fds[1], "wrong-end", err, sizeof err));
  ck_assert_msg(strstr(err, "wrong-end: header: read error: "), "%s", err);
  close(fds[0]);
  close(fds[1]);
}
END_TEST

// ---- suite ----

static Suite *s_suite(void) {
  Suite *s = suite_create("y4m");
  TCase *core = tcase_create("core");
  tcase_add_test(core, test_mono);
  tcase_add_test(core, test_420_odd_all_planes);
  tcase_add_test(core, test_other_layouts);
  tcase_add_test(core, test_file_input_and_largest_header);
  tcase_add_test(core, test_repeated_header_same_size);
  tcase_add_loop_test(core, test_pipe_small_chunks, 0, 2);
  suite_add_tcase(s, core);

  TCase *ffmpeg = tcase_create("ffmpeg");
  tcase_add_test(ffmpeg, test_ffmpeg_gray);
  tcase_add_test(ffmpeg, test_ffmpeg_yuv420p_all_planes);
  tcase_set_timeout(ffmpeg, 60);
  suite_add_tcase(s, ffmpeg);

  TCase *limits = tcase_create("limits");
  tcase_add_test(limits, test_truncated_last_frame);
  tcase_add_test(limits, test_malformed_header);
  tcase_add_test(limits, test_16bit_refused);
  tcase_add_test(limits, test_malformed_frame_line);
  tcase_add_test(limits, test_size_change);
  tcase_add_test(limits, test_read_error);
  suite_add_tcase(s, limits);
  return s;
}

int main(void) { return ffs_check_run(s_suite()); }
