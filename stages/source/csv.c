// csv: rows of numbers (see csv.h). Lines come in through read() into one
// buffer allocated by ffs_csv_new and are parsed in place, field by field
// with strtof on a small stack copy. Never allocates in ffs_csv_next or
// ffs_csv_row, never asserts on a byte of input: a bad row is counted and
// skipped (the reader) or refused with its reason (one row, one datagram).
#include "csv.h"
#include "ffs_log.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_NUM_CHARS 128                        // longest number text we parse, plus its NUL
#define S_BUF_BYTES (2 * FFS_CSV_LINE_MAX + 2) // a whole line plus room to read more
#define S_MSG_BYTES 512

// ---- one row ----

static int s_space(char ch) { return ch == ' ' || ch == '\t'; }

// The row without its trailing '\r' and '\n' characters.
static size_t s_cut_eol(const char *t, size_t n) {
  while (n && (t[n - 1] == '\n' || t[n - 1] == '\r')) n--;
  return n;
}

static int s_blank(const char *t, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!s_space(t[i])) return 0;
  return 1;
}

// Fields in a row: its commas plus one.
static long s_count(const char *t, size_t n) {
  long count = 1;
  const char *end = t + n;
  for (const char *p = t; (p = memchr(p, ',', (size_t)(end - p))) != NULL; p++) count++;
  return count;
}

enum { S_NUM_OK = 0, S_NUM_EMPTY, S_NUM_BAD, S_NUM_LONG, S_NUM_NAN, S_NUM_INF, S_NUM_RANGE };

// Trims spaces around the field t[0..n) in place (*t, *n).
static void s_trim(const char **t, size_t *n) {
  while (*n && s_space(**t)) (*t)++, (*n)--;
  while (*n && s_space((*t)[*n - 1])) (*n)--;
}

// Parses one field (spaces around it allowed) into *out: S_NUM_OK, or why not.
static int s_number(const char *t, size_t n, float *out) {
  s_trim(&t, &n);
  if (n == 0) return S_NUM_EMPTY;
  if (n >= S_NUM_CHARS) return S_NUM_LONG;
  char tmp[S_NUM_CHARS];
  memcpy(tmp, t, n);
  tmp[n] = '\0';
  char *end = NULL;
  errno = 0;
  float v = strtof(tmp, &end);
  if (end != tmp + n) return S_NUM_BAD;
  if (isnan(v)) return S_NUM_NAN;
  if (isinf(v)) return errno == ERANGE ? S_NUM_RANGE : S_NUM_INF;
  *out = v;
  return S_NUM_OK;
}

// Writes up to 32 bytes of the (trimmed) field as printable text into out.
static void s_show(char *out, size_t outlen, const char *t, size_t n) {
  s_trim(&t, &n);
  size_t k = 0, max = n < 32 ? n : 32;
  for (size_t i = 0; i < max && k + 4 < outlen; i++)
    out[k++] = t[i] >= 32 && t[i] < 127 ? t[i] : '?';
  if (max < n && k + 4 < outlen) out[k++] = '.', out[k++] = '.', out[k++] = '.';
  out[k] = '\0';
}

static void s_number_why(int rc, long col, const char *t, size_t n, char *why, size_t whylen) {
  char shown[48];
  s_show(shown, sizeof shown, t, n);
  switch (rc) {
  case S_NUM_EMPTY: ffs_errf(why, whylen, "column %ld: empty (expected a number)", col); break;
  case S_NUM_LONG:
    ffs_errf(why, whylen, "column %ld: '%s' is not a number (more than %d characters)", col,
             shown, S_NUM_CHARS - 1);
    break;
  case S_NUM_NAN: ffs_errf(why, whylen, "column %ld: NaN", col); break;
  case S_NUM_INF:
    ffs_errf(why, whylen, "column %ld: %sinf", col, shown[0] == '-' ? "-" : "");
    break;
  case S_NUM_RANGE:
    ffs_errf(why, whylen, "column %ld: '%s' overflows a float (non-finite values are refused)",
             col, shown);
    break;
  default: ffs_errf(why, whylen, "column %ld: '%s' is not a number", col, shown); break;
  }
}

// Parses the n fields of a row (line ending cut) in order: the label column
// (label_col, -1 for none) into *label, the others into x. Returns 0, or -1
// with why.
static int s_values(const char *text, size_t len, long n, int label_col, int classes, float *x,
                    int *label, char *why, size_t whylen) {
  const char *p = text, *end = text + len;
  int j = 0;
  for (long col = 0; col < n; col++) {
    const char *comma = memchr(p, ',', (size_t)(end - p));
    const char *fe = comma ? comma : end;
    size_t fn = (size_t)(fe - p);
    float v = 0.0f;
    int rc = s_number(p, fn, &v);
    if (rc != S_NUM_OK) {
      s_number_why(rc, col + 1, p, fn, why, whylen);
      return -1;
    }
    if (col == label_col) {
      if (v != floorf(v) || v < 0.0f || v >= (float)classes) {
        char shown[48];
        s_show(shown, sizeof shown, p, fn);
        ffs_errf(why, whylen, "column %ld: label '%s' is not an integer in 0..%d", col + 1,
                 shown, classes - 1);
        return -1;
      }
      *label = (int)v;
    } else {
      x[j++] = v;
    }
    p = fe + 1;
  }
  return 0;
}

int ffs_csv_parse(const char *text, size_t len, float *vals, int cap, char *why, size_t whylen) {
  assert((text || !len) && (vals || cap == 0) && cap >= 0);
  len = s_cut_eol(text, len);
  if (s_blank(text, len)) {
    ffs_errf(why, whylen, "empty row");
    return -1;
  }
  long n = s_count(text, len);
  if (n > cap) {
    ffs_errf(why, whylen, "more than %d columns (%ld)", cap, n);
    return -1;
  }
  if (s_values(text, len, n, -1, 0, vals, NULL, why, whylen) != 0) return -1;
  return (int)n;
}

int ffs_csv_cfg_check(const ffs_csv_cfg_t *cfg, char *why, size_t whylen) {
  assert(cfg);
  if (cfg->columns < 1 || cfg->columns > FFS_CSV_MAX_COLUMNS) {
    ffs_errf(why, whylen, "columns %d (expected 1..%d)", cfg->columns, FFS_CSV_MAX_COLUMNS);
    return -1;
  }
  if (cfg->label_col < -1 || cfg->label_col >= cfg->columns) {
    ffs_errf(why, whylen, "label column %d (expected -1 for none, or 0..%d: 0-based, within "
                          "the %d columns)",
             cfg->label_col, cfg->columns - 1, cfg->columns);
    return -1;
  }
  if (cfg->label_col >= 0 && cfg->columns < 2) {
    ffs_errf(why, whylen, "a label column and nothing else (expected columns >= 2 with a label)");
    return -1;
  }
  if (cfg->header < -1 || cfg->header > 1) {
    ffs_errf(why, whylen, "header %d (expected 1 = yes, 0 = no, -1 = auto)", cfg->header);
    return -1;
  }
  if (cfg->label_col >= 0 && cfg->classes < 1) {
    ffs_errf(why, whylen, "classes %d (expected >= 1 with a label column)", cfg->classes);
    return -1;
  }
  return 0;
}

// One row by cfg's rules, cfg already checked.
static int s_row(const ffs_csv_cfg_t *cfg, const char *text, size_t len, float *x, int *label,
                 char *why, size_t whylen) {
  len = s_cut_eol(text, len);
  if (s_blank(text, len)) {
    ffs_errf(why, whylen, "empty row (expected %d columns)", cfg->columns);
    return -1;
  }
  long n = s_count(text, len);
  if (n != cfg->columns) {
    ffs_errf(why, whylen, "%ld columns, expected %d", n, cfg->columns);
    return -1;
  }
  *label = -1;
  return s_values(text, len, n, cfg->label_col, cfg->classes, x, label, why, whylen);
}

int ffs_csv_row(const ffs_csv_cfg_t *cfg, const char *text, size_t len, float *x, int *label,
                char *why, size_t whylen) {
  assert(cfg && (text || !len) && x && label);
  if (ffs_csv_cfg_check(cfg, why, whylen) != 0) return -1;
  return s_row(cfg, text, len, x, label, why, whylen);
}

// Whether a line looks like a header: some field is not a number at all
// (NaN and inf are numbers, bad ones: such a line is a bad row).
static int s_is_header(const char *text, size_t len) {
  len = s_cut_eol(text, len);
  const char *p = text, *end = text + len;
  for (;;) {
    const char *comma = memchr(p, ',', (size_t)(end - p));
    const char *fe = comma ? comma : end;
    float v;
    int rc = s_number(p, (size_t)(fe - p), &v);
    if (rc == S_NUM_EMPTY || rc == S_NUM_BAD || rc == S_NUM_LONG) return 1;
    if (!comma) return 0;
    p = comma + 1;
  }
}

// ---- the reader ----

struct ffs_csv {
  int fd;               // not owned
  char *what;           // the input's name, for messages
  ffs_csv_cfg_t cfg;    // checked
  char *buf;            // (S_BUF_BYTES) bytes read, not yet used: [pos, len)
  size_t pos, len;      // the unused bytes
  size_t scanned;       // bytes after pos known to hold no '\n'
  int eof;              // read() returned 0
  int discarding;       // inside a line too long to keep: dropping bytes to its '\n'
  int failed;           // a read error was reported: msg is repeated from now on
  uint64_t lines;       // lines read, the header and bad ones included
  uint64_t skipped;     // bad rows
  char last[S_MSG_BYTES]; // the latest bad row's message
  char msg[S_MSG_BYTES];  // the read error
};

// One read() into the buffer's free space (moving what is left to the
// front first). Returns the bytes read, 0 at the end of the input, -1 on an
// error (errno set). EINTR is retried; EAGAIN waits for input.
static ssize_t s_fill(ffs_csv_t *c) {
  if (c->pos > 0) {
    memmove(c->buf, c->buf + c->pos, c->len - c->pos);
    c->len -= c->pos;
    c->pos = 0;
  }
  assert(c->len < S_BUF_BYTES);
  if (c->eof) return 0;
  for (;;) {
    ssize_t got = read(c->fd, c->buf + c->len, S_BUF_BYTES - c->len);
    if (got > 0) {
      c->len += (size_t)got;
      return got;
    }
    if (got == 0) {
      c->eof = 1;
      return 0;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      struct pollfd p = {.fd = c->fd, .events = POLLIN};
      if (poll(&p, 1, -1) >= 0 || errno == EINTR) continue;
    }
    return -1;
  }
}

enum { S_LINE_OK = 0, S_LINE_END, S_LINE_LONG, S_LINE_ERROR };

// The next line without its '\n' in *line / *n (valid until the next call):
// S_LINE_OK, S_LINE_END (no byte left), S_LINE_LONG (a line over
// FFS_CSV_LINE_MAX bytes, now consumed), S_LINE_ERROR (errno set).
static int s_line(ffs_csv_t *c, const char **line, size_t *n) {
  for (;;) {
    size_t avail = c->len - c->pos;
    char *start = c->buf + c->pos;
    char *nl = memchr(start + c->scanned, '\n', avail - c->scanned);
    if (nl) {
      size_t ln = (size_t)(nl - start);
      c->pos += ln + 1;
      c->scanned = 0;
      if (c->discarding || ln > FFS_CSV_LINE_MAX) {
        c->discarding = 0;
        return S_LINE_LONG;
      }
      *line = start;
      *n = ln;
      return S_LINE_OK;
    }
    c->scanned = avail;
    if (c->discarding || avail > FFS_CSV_LINE_MAX) { // drop it, remember the line is bad
      c->discarding = 1;
      c->pos = c->len;
      c->scanned = 0;
    }
    if (c->eof) {
      if (c->discarding) {
        c->discarding = 0;
        return S_LINE_LONG;
      }
      if (avail == 0) return S_LINE_END;
      *line = start; // the last line, without its '\n'
      *n = avail;
      c->pos = c->len;
      c->scanned = 0;
      return S_LINE_OK;
    }
    if (s_fill(c) < 0) return S_LINE_ERROR;
  }
}

ffs_csv_t *ffs_csv_new(int fd, const char *what, const ffs_csv_cfg_t *cfg, char *err,
                       size_t errlen) {
  assert(fd >= 0 && what && cfg);
  char why[S_MSG_BYTES];
  ffs_csv_t *c = NULL;
  if (ffs_csv_cfg_check(cfg, why, sizeof why) != 0) goto fail;
  c = calloc(1, sizeof *c);
  if (!c) goto oom;
  c->fd = fd;
  c->cfg = *cfg;
  c->what = strdup(what);
  c->buf = malloc(S_BUF_BYTES);
  if (!c->what || !c->buf) goto oom;
  return c;
oom:
  snprintf(why, sizeof why, "out of memory");
fail:
  ffs_errf(err, errlen, "%s: %s", what, why);
  ffs_csv_destroy(&c);
  return NULL;
}

// Counts a bad row and keeps "what: line N: why" as the latest message.
__attribute__((format(printf, 2, 3))) static void s_bad(ffs_csv_t *c, const char *fmt, ...) {
  c->skipped++;
  int k = snprintf(c->last, sizeof c->last, "%s: line %llu: ", c->what,
                   (unsigned long long)c->lines);
  if (k < 0 || (size_t)k >= sizeof c->last) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->last + k, sizeof c->last - (size_t)k, fmt, ap);
  va_end(ap);
}

int ffs_csv_next(ffs_csv_t *c, float *x, int *label, char *err, size_t errlen) {
  assert(c && x && label);
  if (c->failed) {
    ffs_errf(err, errlen, "%s", c->msg);
    return -1;
  }
  for (;;) {
    const char *line = NULL;
    size_t n = 0;
    int rc = s_line(c, &line, &n);
    if (rc == S_LINE_END) return 0;
    if (rc == S_LINE_ERROR) {
      snprintf(c->msg, sizeof c->msg, "%s: line %llu: read error: %s", c->what,
               (unsigned long long)c->lines + 1, strerror(errno));
      c->failed = 1;
      ffs_errf(err, errlen, "%s", c->msg);
      return -1;
    }
    c->lines++;
    if (rc == S_LINE_LONG) {
      s_bad(c, "longer than %d bytes", FFS_CSV_LINE_MAX);
      continue;
    }
    if (c->lines == 1) {
      if (n >= 3 && !memcmp(line, "\xEF\xBB\xBF", 3)) line += 3, n -= 3; // a UTF-8 BOM
      if (c->cfg.header == 1 || (c->cfg.header == -1 && s_is_header(line, n))) continue;
    }
    if (s_blank(line, s_cut_eol(line, n))) continue;
    char why[S_MSG_BYTES];
    if (s_row(&c->cfg, line, n, x, label, why, sizeof why) != 0) {
      s_bad(c, "%s", why);
      continue;
    }
    return 1;
  }
}

uint64_t ffs_csv_lines(const ffs_csv_t *c) {
  assert(c);
  return c->lines;
}

uint64_t ffs_csv_skipped(const ffs_csv_t *c) {
  assert(c);
  return c->skipped;
}

const char *ffs_csv_last_error(const ffs_csv_t *c) {
  assert(c);
  return c->last;
}

void ffs_csv_destroy(ffs_csv_t **self_p) {
  assert(self_p);
  ffs_csv_t *c = *self_p;
  if (!c) return;
  free(c->what);
  free(c->buf);
  free(c);
  *self_p = NULL;
}

// ---- sliding window ----

struct ffs_window {
  int cols, k, hop;
  float *ring;   // (k, cols): the latest k rows, the oldest at head once full
  int head;      // the slot the next row goes to
  uint64_t seen; // rows pushed
};

ffs_window_t *ffs_window_new(int cols, int k, int hop) {
  if (cols < 1 || k < 1 || hop < 1 || k > INT_MAX / cols) return NULL;
  ffs_window_t *w = calloc(1, sizeof *w);
  if (!w) return NULL;
  w->cols = cols;
  w->k = k;
  w->hop = hop;
  w->ring = malloc((size_t)k * (size_t)cols * sizeof *w->ring);
  if (!w->ring) {
    free(w);
    return NULL;
  }
  return w;
}

int ffs_window_push(ffs_window_t *w, const float *row, float *out) {
  assert(w && row && out);
  size_t cols = (size_t)w->cols;
  memcpy(w->ring + (size_t)w->head * cols, row, cols * sizeof *row);
  w->head = (w->head + 1) % w->k;
  w->seen++;
  if (w->seen < (uint64_t)w->k || (w->seen - (uint64_t)w->k) % (uint64_t)w->hop != 0) return 0;
  size_t older = (size_t)(w->k - w->head); // rows from head to the end: the oldest ones
  memcpy(out, w->ring + (size_t)w->head * cols, older * cols * sizeof *out);
  memcpy(out + older * cols, w->ring, (size_t)w->head * cols * sizeof *out);
  return 1;
}

void ffs_window_destroy(ffs_window_t **self_p) {
  assert(self_p);
  ffs_window_t *w = *self_p;
  if (!w) return;
  free(w->ring);
  free(w);
  *self_p = NULL;
}
