// y4m: YUV4MPEG2 reader (see y4m.h). Bytes come in through read() into one
// buffer allocated by ffs_y4m_new; header and FRAME lines are parsed in
// place and frame bytes are turned into floats straight out of the buffer.
// read() returns what a pipe holds, so a frame is handed out as soon as its
// last byte is in. Never allocates in ffs_y4m_read; never trusts a byte of
// the stream.
#include "y4m.h"
#include "ffs_log.h"

#include <assert.h>
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_LINE_MAX 256        // bytes of a header or FRAME line before its '\n'
#define S_BUF_BYTES (1 << 17) // the read buffer: two pipe-fulls
#define S_DIM_MAX 16384       // largest W or H
#define S_MAGIC "YUV4MPEG2"
#define S_SUPPORTED "supported: mono, 420jpeg, 420paldv, 420mpeg2, 420, 422, 444"
#define S_MSG_BYTES 512

struct ffs_y4m {
  int fd;                // not owned
  char *what;            // the input's name, for errors
  ffs_y4m_hdr_t hdr;     // the stream header
  uint8_t *buf;          // (S_BUF_BYTES) bytes read, not yet used: [pos, len)
  size_t pos, len;       // the unused bytes
  int eof;               // read() returned 0
  int failed;            // an error was reported: msg is repeated from now on
  uint64_t frames;       // frames read so far
  float lut[256];        // byte -> byte / 255
  char msg[S_MSG_BYTES]; // the final error
};

// ---- reading ----

// One read() into the buffer's free space (moving what is left to the
// front first). Returns the bytes read, 0 at the end of the input, -1 on an
// error (errno set). EINTR is retried; EAGAIN waits for input.
static ssize_t s_fill(ffs_y4m_t *y) {
  if (y->pos > 0) {
    memmove(y->buf, y->buf + y->pos, y->len - y->pos);
    y->len -= y->pos;
    y->pos = 0;
  }
  assert(y->len < S_BUF_BYTES);
  if (y->eof) return 0; // a terminal's ^D is an end too: never read past it
  for (;;) {
    ssize_t got = read(y->fd, y->buf + y->len, S_BUF_BYTES - y->len);
    if (got > 0) {
      y->len += (size_t)got;
      return got;
    }
    if (got == 0) {
      y->eof = 1;
      return 0;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      struct pollfd p = {.fd = y->fd, .events = POLLIN};
      if (poll(&p, 1, -1) >= 0 || errno == EINTR) continue;
    }
    return -1;
  }
}

enum { S_LINE_OK = 0, S_LINE_END, S_LINE_NO_NEWLINE, S_LINE_LONG, S_LINE_ERROR };

// The next line, without its '\n', in *line / *n (pointing into the buffer,
// valid until the next read). S_LINE_END: the input ended with no byte left;
// S_LINE_NO_NEWLINE: it ended inside a line; S_LINE_LONG: no '\n' within
// S_LINE_MAX + 1 bytes; S_LINE_ERROR: read error (errno set). On anything but
// S_LINE_OK the bytes stay in the buffer for the caller's message.
static int s_line(ffs_y4m_t *y, const char **line, size_t *n) {
  for (;;) {
    size_t avail = y->len - y->pos;
    size_t look = avail < S_LINE_MAX + 1 ? avail : S_LINE_MAX + 1;
    const uint8_t *nl = memchr(y->buf + y->pos, '\n', look);
    if (nl) {
      *line = (const char *)y->buf + y->pos;
      *n = (size_t)(nl - (y->buf + y->pos));
      y->pos += *n + 1;
      return S_LINE_OK;
    }
    if (avail > S_LINE_MAX) return S_LINE_LONG;
    if (y->eof) return avail ? S_LINE_NO_NEWLINE : S_LINE_END;
    if (s_fill(y) < 0) return S_LINE_ERROR;
  }
}

// Writes up to 24 bytes of p as printable text (others as '?') into out.
static void s_show(char *out, size_t outlen, const void *p, size_t n) {
  const unsigned char *b = p;
  size_t k = 0, max = n < 24 ? n : 24;
  for (size_t i = 0; i < max && k + 4 < outlen; i++)
    out[k++] = b[i] >= 32 && b[i] < 127 ? (char)b[i] : '?';
  if (max < n && k + 4 < outlen) out[k++] = '.', out[k++] = '.', out[k++] = '.';
  out[k] = '\0';
}

// ---- header ----

static const char *s_chroma_name(ffs_y4m_chroma_t c) {
  switch (c) {
  case FFS_Y4M_MONO: return "mono";
  case FFS_Y4M_420: return "420";
  case FFS_Y4M_422: return "422";
  case FFS_Y4M_444: return "444";
  }
  return "?";
}

// Whether t[0..n) equals the C string s.
static int s_is(const char *t, size_t n, const char *s) {
  return strlen(s) == n && !memcmp(t, s, n);
}

// Parses n decimal digits (no sign, no spaces) into *out, at most max.
// Returns 0, -1 for "not a number", -2 for "too large".
static int s_uint(const char *t, size_t n, long max, long *out) {
  if (n == 0) return -1;
  long v = 0;
  for (size_t i = 0; i < n; i++) {
    if (t[i] < '0' || t[i] > '9') return -1;
    if (v > (max - (t[i] - '0')) / 10) return -2;
    v = v * 10 + (t[i] - '0');
  }
  *out = v;
  return 0;
}

// A W or H value: 1..16384. tag is 'W' or 'H'.
static int s_dim(char tag, const char *t, size_t n, int *out, char *why, size_t whylen) {
  long v = 0;
  char shown[32];
  int rc = s_uint(t, n, S_DIM_MAX, &v);
  if (rc == 0 && v >= 1) {
    *out = (int)v;
    return 0;
  }
  s_show(shown, sizeof shown, t, n);
  ffs_errf(why, whylen, "%c%s: %s (expected %c1..%c%d)", tag, shown,
           rc == -1 ? "not a number" : "out of range", tag, tag, S_DIM_MAX);
  return -1;
}

static int s_chroma(const char *t, size_t n, ffs_y4m_chroma_t *out, char *why, size_t whylen) {
  static const struct {
    const char *name;
    ffs_y4m_chroma_t c;
  } known[] = {{"mono", FFS_Y4M_MONO},    {"420jpeg", FFS_Y4M_420}, {"420paldv", FFS_Y4M_420},
               {"420mpeg2", FFS_Y4M_420}, {"420", FFS_Y4M_420},     {"422", FFS_Y4M_422},
               {"444", FFS_Y4M_444}};
  for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
    if (s_is(t, n, known[i].name)) {
      *out = known[i].c;
      return 0;
    }
  // ffmpeg's deeper formats: mono16, 420p10, 444p12, ...
  int deep = (n > 4 && !memcmp(t, "mono", 4)) || (n > 4 && t[3] == 'p' && t[4] >= '0' &&
                                                   t[4] <= '9');
  char shown[32];
  s_show(shown, sizeof shown, t, n);
  ffs_errf(why, whylen, "C%s: %s (%s)", shown,
           deep ? "more than 8 bits per sample is not supported" : "unsupported chroma format",
           S_SUPPORTED);
  return -1;
}

// F: N:D with D > 0, or 0:0 for "unknown".
static int s_fps(const char *t, size_t n, int *num, int *den, char *why, size_t whylen) {
  const char *colon = memchr(t, ':', n);
  long a = 0, b = 0;
  if (colon && s_uint(t, (size_t)(colon - t), 0x7fffffff, &a) == 0 &&
      s_uint(colon + 1, n - (size_t)(colon - t) - 1, 0x7fffffff, &b) == 0 &&
      (b > 0 || a == 0)) {
    *num = (int)a;
    *den = (int)b;
    return 0;
  }
  char shown[32];
  s_show(shown, sizeof shown, t, n);
  ffs_errf(why, whylen, "F%s: bad frame rate (expected F<num>:<den>, e.g. F30000:1001)", shown);
  return -1;
}

// Parses a header line (without '\n') into *h. Returns 0, or -1 with why.
static int s_parse_header(const char *p, size_t n, ffs_y4m_hdr_t *h, char *why,
                          size_t whylen) {
  memset(h, 0, sizeof *h);
  h->chroma = FFS_Y4M_420;
  if (n < 9 || memcmp(p, S_MAGIC, 9) || (n > 9 && p[9] != ' ')) {
    char shown[32];
    s_show(shown, sizeof shown, p, n);
    ffs_errf(why, whylen, "starts with '%s' (expected '" S_MAGIC " ')", shown);
    return -1;
  }
  int seen_f = 0, seen_c = 0;
  size_t i = 9;
  while (i < n) {
    while (i < n && p[i] == ' ') i++;
    if (i == n) break;
    const char *t = p + i;
    while (i < n && p[i] != ' ') i++;
    size_t tn = (size_t)(p + i - t);
    const char *v = t + 1;
    size_t vn = tn - 1;
    int rc = 0;
    switch (t[0]) {
    case 'W':
      if (h->width) goto repeated;
      rc = s_dim('W', v, vn, &h->width, why, whylen);
      break;
    case 'H':
      if (h->height) goto repeated;
      rc = s_dim('H', v, vn, &h->height, why, whylen);
      break;
    case 'F':
      if (seen_f++) goto repeated;
      rc = s_fps(v, vn, &h->fps_num, &h->fps_den, why, whylen);
      break;
    case 'C':
      if (seen_c++) goto repeated;
      rc = s_chroma(v, vn, &h->chroma, why, whylen);
      break;
    default: break; // I (interlacing), A (aspect), X (comments), and tags to come
    }
    if (rc) return -1;
    continue;
  repeated:
    ffs_errf(why, whylen, "tag %c given twice (expected each of W, H, F, C at most once)", t[0]);
    return -1;
  }
  if (!h->width || !h->height) {
    ffs_errf(why, whylen, "no %c tag (expected W<width> and H<height>, e.g. W640 H480)",
             h->width ? 'H' : 'W');
    return -1;
  }
  size_t luma = (size_t)h->width * (size_t)h->height;
  size_t cw = ((size_t)h->width + 1) / 2, ch = ((size_t)h->height + 1) / 2;
  size_t chroma = h->chroma == FFS_Y4M_420   ? cw * ch
                  : h->chroma == FFS_Y4M_422 ? cw * (size_t)h->height
                  : h->chroma == FFS_Y4M_444 ? luma
                                             : 0;
  h->frame_bytes = luma + 2 * chroma;
  return 0;
}

// The message for a header line that s_line could not return.
static void s_header_line_error(const ffs_y4m_t *y, int rc, char *why, size_t whylen) {
  int saved = errno;
  const uint8_t *p = y->buf + y->pos;
  size_t avail = y->len - y->pos;
  size_t m = avail < 10 ? avail : 10;
  char shown[32];
  s_show(shown, sizeof shown, p, avail);
  if (rc == S_LINE_ERROR)
    ffs_errf(why, whylen, "read error: %s", strerror(saved));
  else if (rc == S_LINE_END)
    ffs_errf(why, whylen, "empty input (expected a YUV4MPEG2 stream, e.g. from "
                          "`ffmpeg -i IN -pix_fmt gray -f yuv4mpegpipe -`)");
  else if (memcmp(p, S_MAGIC " ", m))
    ffs_errf(why, whylen, "starts with '%s' (expected '" S_MAGIC " ')", shown);
  else if (rc == S_LINE_LONG)
    ffs_errf(why, whylen, "no newline within %d bytes (expected a header line of at most %d)",
             S_LINE_MAX + 1, S_LINE_MAX);
  else
    ffs_errf(why, whylen, "ends after %zu bytes without a newline (expected a whole header line)",
             avail);
}

// ---- public ----

ffs_y4m_t *ffs_y4m_new(int fd, const char *what, char *err, size_t errlen) {
  assert(fd >= 0 && what);
  char why[S_MSG_BYTES];
  ffs_y4m_t *y = calloc(1, sizeof *y);
  if (!y) goto oom;
  y->fd = fd;
  y->what = strdup(what);
  y->buf = malloc(S_BUF_BYTES);
  if (!y->what || !y->buf) goto oom;
  for (int i = 0; i < 256; i++) y->lut[i] = (float)i / 255.0f;
  const char *line = NULL;
  size_t n = 0;
  int rc = s_line(y, &line, &n);
  if (rc != S_LINE_OK) {
    s_header_line_error(y, rc, why, sizeof why);
    goto fail;
  }
  if (s_parse_header(line, n, &y->hdr, why, sizeof why) != 0) goto fail;
  return y;
oom:
  snprintf(why, sizeof why, "out of memory");
fail:
  ffs_errf(err, errlen, "%s: header: %s", what, why);
  ffs_y4m_destroy(&y);
  return NULL;
}

const ffs_y4m_hdr_t *ffs_y4m_header(const ffs_y4m_t *y) {
  assert(y);
  return &y->hdr;
}

int ffs_y4m_dim(const ffs_y4m_hdr_t *h, int all_planes) {
  assert(h && h->width >= 1 && h->width <= S_DIM_MAX && h->height >= 1 &&
         h->height <= S_DIM_MAX);
  // at most 3 * 16384^2 < 2^31
  return all_planes ? (int)h->frame_bytes : h->width * h->height;
}

uint64_t ffs_y4m_frames(const ffs_y4m_t *y) {
  assert(y);
  return y->frames;
}

// Records the final error "what: frame N: ..." and copies it to err.
__attribute__((format(printf, 4, 5))) static int s_fail(ffs_y4m_t *y, char *err, size_t errlen,
                                                        const char *fmt, ...) {
  int k = snprintf(y->msg, sizeof y->msg, "%s: frame %llu: ", y->what,
                   (unsigned long long)y->frames);
  if (k < 0 || (size_t)k >= sizeof y->msg) k = (int)sizeof y->msg - 1;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(y->msg + k, sizeof y->msg - (size_t)k, fmt, ap);
  va_end(ap);
  y->failed = 1;
  ffs_errf(err, errlen, "%s", y->msg);
  return -1;
}

// Checks one FRAME line's parameters (p points after "FRAME"). W and H must
// match the header; the rest are ignored.
static int s_frame_params(ffs_y4m_t *y, const char *p, size_t n, char *err, size_t errlen) {
  size_t i = 0;
  while (i < n) {
    while (i < n && p[i] == ' ') i++;
    if (i == n) break;
    const char *t = p + i;
    while (i < n && p[i] != ' ') i++;
    size_t tn = (size_t)(p + i - t);
    if (t[0] != 'W' && t[0] != 'H') continue;
    int v = 0, want = t[0] == 'W' ? y->hdr.width : y->hdr.height;
    char why[128];
    if (s_dim(t[0], t + 1, tn - 1, &v, why, sizeof why) != 0)
      return s_fail(y, err, errlen, "malformed FRAME line: %s", why);
    if (v != want)
      return s_fail(y, err, errlen,
                    "size change: FRAME says %c%d, the stream header %c%d "
                    "(expected every frame at the header's %dx%d)",
                    t[0], v, t[0], want, y->hdr.width, y->hdr.height);
  }
  return 0;
}

// A "YUV4MPEG2" line where a FRAME line belongs: fine if it repeats the
// geometry (concatenated streams), a size change otherwise.
static int s_second_header(ffs_y4m_t *y, const char *p, size_t n, char *err, size_t errlen) {
  ffs_y4m_hdr_t h;
  char why[S_MSG_BYTES / 2];
  if (s_parse_header(p, n, &h, why, sizeof why) != 0)
    return s_fail(y, err, errlen, "a second stream header, malformed: %s", why);
  const ffs_y4m_hdr_t *o = &y->hdr;
  if (h.width != o->width || h.height != o->height || h.chroma != o->chroma)
    return s_fail(y, err, errlen,
                  "size change: a second stream header says %dx%d C%s, the stream is "
                  "%dx%d C%s (expected one frame size per stream)",
                  h.width, h.height, s_chroma_name(h.chroma), o->width, o->height,
                  s_chroma_name(o->chroma));
  return 0;
}

int ffs_y4m_read(ffs_y4m_t *y, float *x, int all_planes, char *err, size_t errlen) {
  assert(y && x);
  if (y->failed) {
    ffs_errf(err, errlen, "%s", y->msg);
    return -1;
  }
  // the FRAME line (after any repeated stream headers)
  for (;;) {
    const char *line = NULL;
    size_t n = 0;
    char shown[32];
    int rc = s_line(y, &line, &n);
    if (rc == S_LINE_END) return 0;
    if (rc == S_LINE_ERROR) return s_fail(y, err, errlen, "read error: %s", strerror(errno));
    if (rc != S_LINE_OK) {
      s_show(shown, sizeof shown, y->buf + y->pos, y->len - y->pos);
      if (rc == S_LINE_LONG)
        return s_fail(y, err, errlen,
                      "malformed FRAME line: '%s' has no newline within %d bytes "
                      "(expected \"FRAME\", optional parameters, '\\n')",
                      shown, S_LINE_MAX + 1);
      return s_fail(y, err, errlen, "truncated: the input ends inside the FRAME line '%s'",
                    shown);
    }
    if (n >= 9 && !memcmp(line, S_MAGIC, 9)) {
      if (s_second_header(y, line, n, err, errlen) != 0) return -1;
      continue;
    }
    if (n < 5 || memcmp(line, "FRAME", 5) || (n > 5 && line[5] != ' ')) {
      s_show(shown, sizeof shown, line, n);
      return s_fail(y, err, errlen,
                    "malformed FRAME line '%s' (expected \"FRAME\", optional parameters, "
                    "'\\n')",
                    shown);
    }
    if (s_frame_params(y, line + 5, n - 5, err, errlen) != 0) return -1;
    break;
  }
  // the planes, converted straight out of the buffer
  size_t need = y->hdr.frame_bytes;
  size_t convert = all_planes ? need : (size_t)y->hdr.width * (size_t)y->hdr.height;
  size_t done = 0;
  while (done < need) {
    if (y->pos == y->len) {
      ssize_t got = s_fill(y);
      if (got < 0) return s_fail(y, err, errlen, "read error: %s", strerror(errno));
      if (got == 0)
        return s_fail(y, err, errlen, "truncated: %zu of %zu bytes", done, need);
    }
    size_t take = y->len - y->pos;
    if (take > need - done) take = need - done;
    if (done < convert) {
      size_t c = convert - done < take ? convert - done : take;
      const uint8_t *b = y->buf + y->pos;
      float *o = x + done;
      for (size_t i = 0; i < c; i++) o[i] = y->lut[b[i]];
    }
    y->pos += take;
    done += take;
  }
  y->frames++;
  return 1;
}

void ffs_y4m_destroy(ffs_y4m_t **self_p) {
  assert(self_p);
  ffs_y4m_t *y = *self_p;
  if (!y) return;
  free(y->what);
  free(y->buf);
  free(y);
  *self_p = NULL;
}
