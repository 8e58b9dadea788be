// check_csv: the source's rows of numbers. One row parses exactly or is
// refused with its column and reason; the reader skips and counts bad rows
// (naming the latest one's line), finds a header by itself, takes the last
// line without its newline and lines cut into small writes; the sliding
// window hands out exactly the rows it should, oldest first.
#include "csv.h"

#include "ffs_check.h"
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

// ---- helpers ----

// A temp file holding n bytes, open for reading at its start (unlinked).
static int s_file(const char *bytes, size_t n) {
  char path[] = "/tmp/check_csv.XXXXXX";
  int fd = mkstemp(path);
  ck_assert_int_ge(fd, 0);
  unlink(path);
  for (size_t at = 0; at < n;) {
    ssize_t put = write(fd, bytes + at, n - at);
    ck_assert_int_gt(put, 0);
    at += (size_t)put;
  }
  ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
  return fd;
}

static int s_text(const char *text) { return s_file(text, strlen(text)); }

static ffs_csv_t *s_reader(int fd, const char *what, int columns, int label_col, int header,
                           int classes) {
  ffs_csv_cfg_t cfg = {
      .columns = columns, .label_col = label_col, .header = header, .classes = classes};
  char err[256] = "";
  ffs_csv_t *c = ffs_csv_new(fd, what, &cfg, err, sizeof err);
  ck_assert_msg(c != NULL, "%s", err);
  return c;
}

// The next row must be good and equal want (n floats) with label.
static void s_expect_row(ffs_csv_t *c, const float *want, int n, int label) {
  float x[16];
  int got_label = -2;
  char err[256] = "";
  ck_assert_msg(ffs_csv_next(c, x, &got_label, err, sizeof err) == 1, "%s", err);
  for (int i = 0; i < n; i++) ck_assert_msg(x[i] == want[i], "x[%d] %g vs %g", i, x[i], want[i]);
  ck_assert_int_eq(got_label, label);
}

static void s_expect_end(ffs_csv_t *c) {
  float x[16];
  int label;
  char err[256] = "";
  ck_assert_msg(ffs_csv_next(c, x, &label, err, sizeof err) == 0, "%s", err);
  ck_assert_int_eq(ffs_csv_next(c, x, &label, err, sizeof err), 0); // and stays ended
}

// ffs_csv_parse must refuse text with a message holding want.
static void s_parse_fail(const char *text, int cap, const char *want) {
  float vals[600];
  char why[256] = "";
  ck_assert_msg(ffs_csv_parse(text, strlen(text), vals, cap, why, sizeof why) == -1,
                "accepted '%s'", text);
  ck_assert_msg(strstr(why, want), "'%s': '%s' lacks '%s'", text, why, want);
}

// ---- one row ----

START_TEST(test_parse_ok) {
  float v[8];
  char why[256] = "";
  const char *t = "1,2.5, -3 ,\t4e2\r\n";
  ck_assert_int_eq(ffs_csv_parse(t, strlen(t), v, 8, why, sizeof why), 4);
  ck_assert(v[0] == 1.0f && v[1] == 2.5f && v[2] == -3.0f && v[3] == 400.0f);
  t = "  0.1 \n";
  ck_assert_int_eq(ffs_csv_parse(t, strlen(t), v, 1, why, sizeof why), 1);
  ck_assert(v[0] == 0.1f);
  // only len bytes are read: no NUL needed, nothing past it seen
  t = "7,8,9junk";
  ck_assert_int_eq(ffs_csv_parse(t, 5, v, 8, why, sizeof why), 3);
  ck_assert(v[0] == 7.0f && v[1] == 8.0f && v[2] == 9.0f);
  // tiny values underflow quietly, +signs and exponents are numbers
  t = "1e-50,+2,-0,3.4e38";
  ck_assert_int_eq(ffs_csv_parse(t, strlen(t), v, 8, why, sizeof why), 4);
  ck_assert(v[0] == 0.0f && v[1] == 2.0f && v[2] == 0.0f && v[3] == 3.4e38f);
  // exactly cap columns
  char row[2048];
  int at = 0;
  for (int i = 0; i < 512; i++) at += sprintf(row + at, "%s%d", i ? "," : "", i);
  float many[512];
  ck_assert_int_eq(ffs_csv_parse(row, (size_t)at, many, 512, why, sizeof why), 512);
  for (int i = 0; i < 512; i++) ck_assert(many[i] == (float)i);
}
END_TEST

START_TEST(test_parse_errors) {
  s_parse_fail("1,2,abc", 8, "column 3: 'abc' is not a number");
  s_parse_fail("1,nan", 8, "column 2: NaN");
  s_parse_fail("1,2,3,4,inf", 8, "column 5: inf");
  s_parse_fail("-Infinity,1", 8, "column 1: -inf");
  s_parse_fail("1e999", 8, "column 1: '1e999' overflows a float");
  s_parse_fail("1,,3", 8, "column 2: empty (expected a number)");
  s_parse_fail("1,2,", 8, "column 3: empty");
  s_parse_fail("1 2", 8, "column 1: '1 2' is not a number");
  s_parse_fail("\"1\",2", 8, "column 1: '\"1\"' is not a number");
  s_parse_fail("1;2", 8, "column 1: '1;2' is not a number");
  s_parse_fail("", 8, "empty row");
  s_parse_fail("  \r\n", 8, "empty row");
  s_parse_fail("1,2,3", 2, "more than 2 columns");
  char row[2048];
  int at = 0;
  for (int i = 0; i < 513; i++) at += sprintf(row + at, "%s1", i ? "," : "");
  s_parse_fail(row, 512, "more than 512 columns");
  char longer[300];
  memset(longer, '1', sizeof longer - 1);
  longer[sizeof longer - 1] = '\0';
  s_parse_fail(longer, 8, "column 1: '11111111111111111111111111111111...' is not a number");
}
END_TEST

START_TEST(test_row_datagram) {
  ffs_csv_cfg_t cfg = {.columns = 4, .label_col = 0, .header = 0, .classes = 10};
  float x[4] = {0};
  int label = -2;
  char why[256] = "";
  const char *t = "3,0.5,0.25,1\n";
  ck_assert_msg(ffs_csv_row(&cfg, t, strlen(t), x, &label, why, sizeof why) == 0, "%s", why);
  ck_assert_int_eq(label, 3);
  ck_assert(x[0] == 0.5f && x[1] == 0.25f && x[2] == 1.0f);
  t = "9.0,1,2,3"; // an integer written as a float is an integer
  ck_assert_msg(ffs_csv_row(&cfg, t, strlen(t), x, &label, why, sizeof why) == 0, "%s", why);
  ck_assert_int_eq(label, 9);
  static const struct {
    const char *text, *want;
  } bad[] = {
      {"3.5,1,2,3", "column 1: label '3.5' is not an integer in 0..9"},
      {"10,1,2,3", "column 1: label '10' is not an integer in 0..9"},
      {"-1,1,2,3", "column 1: label '-1' is not an integer in 0..9"},
      {"x,1,2,3", "column 1: 'x' is not a number"},
      {"3,1,2", "3 columns, expected 4"},
      {"3,1,2,3,4", "5 columns, expected 4"},
      {"3,1,nan,3", "column 3: NaN"},
      {"", "empty row"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    ck_assert_int_eq(ffs_csv_row(&cfg, bad[i].text, strlen(bad[i].text), x, &label, why,
                                 sizeof why),
                     -1);
    ck_assert_msg(strstr(why, bad[i].want), "'%s': '%s' lacks '%s'", bad[i].text, why,
                  bad[i].want);
  }
  // the label in the middle; no label at all
  cfg.label_col = 2;
  t = "0.5,0.25,7,1";
  ck_assert_msg(ffs_csv_row(&cfg, t, strlen(t), x, &label, why, sizeof why) == 0, "%s", why);
  ck_assert_int_eq(label, 7);
  ck_assert(x[0] == 0.5f && x[1] == 0.25f && x[2] == 1.0f);
  cfg.label_col = -1;
  cfg.classes = 0; // unused without a label
  ck_assert_msg(ffs_csv_row(&cfg, t, strlen(t), x, &label, why, sizeof why) == 0, "%s", why);
  ck_assert_int_eq(label, -1);
  ck_assert(x[0] == 0.5f && x[1] == 0.25f && x[2] == 7.0f && x[3] == 1.0f);
}
END_TEST

START_TEST(test_cfg_refused) {
  static const struct {
    ffs_csv_cfg_t cfg;
    const char *want;
  } bad[] = {
      {{.columns = 0, .label_col = -1}, "columns 0 (expected 1..32768)"},
      {{.columns = 40000, .label_col = -1}, "columns 40000"},
      {{.columns = 4, .label_col = 4, .classes = 2},
       "label column 4 (expected -1 for none, or 0..3"},
      {{.columns = 4, .label_col = -2}, "label column -2"},
      {{.columns = 1, .label_col = 0, .classes = 2}, "a label column and nothing else"},
      {{.columns = 4, .label_col = 0, .classes = 0}, "classes 0 (expected >= 1"},
      {{.columns = 4, .label_col = -1, .header = 2}, "header 2"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char why[256] = "", err[256] = "";
    float x[4];
    int label;
    ck_assert_int_eq(ffs_csv_row(&bad[i].cfg, "1", 1, x, &label, why, sizeof why), -1);
    ck_assert_msg(strstr(why, bad[i].want), "'%s' lacks '%s'", why, bad[i].want);
    ck_assert_ptr_null(ffs_csv_new(0, "cfg.yaml", &bad[i].cfg, err, sizeof err));
    ck_assert_msg(!strncmp(err, "cfg.yaml: ", 10) && strstr(err, bad[i].want), "%s", err);
  }
}
END_TEST

// ---- the reader ----

START_TEST(test_header_auto) {
  // a header row of names is skipped...
  int fd = s_text("\xEF\xBB\xBFtemp,hum,label\n20.5,0.4,1\r\n21,0.5,0\r\n");
  ffs_csv_t *c = s_reader(fd, "sensors.csv", 3, 2, -1, 2);
  s_expect_row(c, (float[]){20.5f, 0.4f}, 2, 1);
  s_expect_row(c, (float[]){21.0f, 0.5f}, 2, 0);
  s_expect_end(c);
  ck_assert_uint_eq(ffs_csv_lines(c), 3);
  ck_assert_uint_eq(ffs_csv_skipped(c), 0);
  ck_assert_str_eq(ffs_csv_last_error(c), "");
  ffs_csv_destroy(&c);
  ck_assert_ptr_null(c);
  ffs_csv_destroy(&c); // idempotent
  close(fd);
  // ... a numeric first row is data
  fd = s_text("1,2\n3,4\n");
  c = s_reader(fd, "n.csv", 2, -1, -1, 0);
  s_expect_row(c, (float[]){1, 2}, 2, -1);
  s_expect_row(c, (float[]){3, 4}, 2, -1);
  s_expect_end(c);
  ffs_csv_destroy(&c);
  close(fd);
  // ... a first row with a NaN is a bad row, not a header
  fd = s_text("1,nan\n3,4\n");
  c = s_reader(fd, "n.csv", 2, -1, -1, 0);
  s_expect_row(c, (float[]){3, 4}, 2, -1);
  ck_assert_uint_eq(ffs_csv_skipped(c), 1);
  ck_assert_str_eq(ffs_csv_last_error(c), "n.csv: line 1: column 2: NaN");
  ffs_csv_destroy(&c);
  close(fd);
  // header = 1 skips the first line whatever it holds; header = 0 never does
  fd = s_text("1,2\n3,4\n");
  c = s_reader(fd, "n.csv", 2, -1, 1, 0);
  s_expect_row(c, (float[]){3, 4}, 2, -1);
  s_expect_end(c);
  ck_assert_uint_eq(ffs_csv_lines(c), 2);
  ffs_csv_destroy(&c);
  close(fd);
  fd = s_text("a,b\n3,4\n");
  c = s_reader(fd, "n.csv", 2, -1, 0, 0);
  s_expect_row(c, (float[]){3, 4}, 2, -1);
  ck_assert_uint_eq(ffs_csv_skipped(c), 1);
  ck_assert_str_eq(ffs_csv_last_error(c), "n.csv: line 1: column 1: 'a' is not a number");
  ffs_csv_destroy(&c);
  close(fd);
}
END_TEST

START_TEST(test_bad_rows_skipped_and_named) {
  // 20 lines: a header, good rows, blank lines, and bad rows; line 17 is the last bad one
  char text[2048] = "t,a,b,label\n";
  const char *lines[] = {
      "0.5,1,2,0",     // 2
      "1,2,3,9",       // 3: label out of range
      "",              // 4: blank, not bad
      "0.25,1,2,1",    // 5
      "x,1,2,1",       // 6: not a number
      "1,inf,2,1",     // 7: inf
      "1,2,2.5",       // 8: 3 columns
      "0,0,0,2",       // 9
      "   ",           // 10: blank
      "1,2,3,1.5",     // 11: not an integer label
      "3,3,3,0",       // 12
      "4,4,4,1",       // 13
      "1,2,3,4,5",     // 14: 5 columns
      "5,5,5,2",       // 15
      "6,6,6,0",       // 16
      "1,2,3",         // 17: 3 columns
      "7,7,7,1",       // 18
      "",              // 19
      "8,8,8,2",       // 20 (no newline)
  };
  size_t n = sizeof lines / sizeof lines[0];
  for (size_t i = 0; i < n; i++) {
    strcat(text, lines[i]);
    if (i + 1 < n) strcat(text, "\n");
  }
  int fd = s_text(text);
  ffs_csv_t *c = s_reader(fd, "sensors.csv", 4, 3, -1, 3);
  s_expect_row(c, (float[]){0.5f, 1, 2}, 3, 0);
  ck_assert_uint_eq(ffs_csv_skipped(c), 0);
  s_expect_row(c, (float[]){0.25f, 1, 2}, 3, 1);
  ck_assert_uint_eq(ffs_csv_skipped(c), 1);
  ck_assert_str_eq(ffs_csv_last_error(c), "sensors.csv: line 3: column 4: label '9' is not an "
                                          "integer in 0..2");
  s_expect_row(c, (float[]){0, 0, 0}, 3, 2);
  ck_assert_uint_eq(ffs_csv_skipped(c), 4);
  ck_assert_str_eq(ffs_csv_last_error(c), "sensors.csv: line 8: 3 columns, expected 4");
  s_expect_row(c, (float[]){3, 3, 3}, 3, 0);
  ck_assert_str_eq(ffs_csv_last_error(c),
                   "sensors.csv: line 11: column 4: label '1.5' is not an integer in 0..2");
  s_expect_row(c, (float[]){4, 4, 4}, 3, 1);
  s_expect_row(c, (float[]){5, 5, 5}, 3, 2);
  s_expect_row(c, (float[]){6, 6, 6}, 3, 0);
  s_expect_row(c, (float[]){7, 7, 7}, 3, 1);
  ck_assert_str_eq(ffs_csv_last_error(c), "sensors.csv: line 17: 3 columns, expected 4");
  s_expect_row(c, (float[]){8, 8, 8}, 3, 2); // the last line, without its '\n'
  s_expect_end(c);
  ck_assert_uint_eq(ffs_csv_skipped(c), 7);
  ck_assert_uint_eq(ffs_csv_lines(c), 20);
  ffs_csv_destroy(&c);
  close(fd);
}
END_TEST

START_TEST(test_last_line_and_empty_input) {
  int fd = s_text("1,2\r\n3,4\r");
  ffs_csv_t *c = s_reader(fd, "a", 2, -1, 0, 0);
  s_expect_row(c, (float[]){1, 2}, 2, -1);
  s_expect_row(c, (float[]){3, 4}, 2, -1);
  s_expect_end(c);
  ck_assert_uint_eq(ffs_csv_lines(c), 2);
  ffs_csv_destroy(&c);
  close(fd);
  fd = s_text("");
  c = s_reader(fd, "empty", 2, -1, -1, 0);
  s_expect_end(c);
  ck_assert_uint_eq(ffs_csv_lines(c), 0);
  ffs_csv_destroy(&c);
  close(fd);
}
END_TEST

START_TEST(test_long_lines) {
  // the widest row that fits: 32768 columns in 65536 bytes (a trailing space)
  size_t cap = 5 * FFS_CSV_LINE_MAX;
  char *text = malloc(cap);
  ck_assert_ptr_nonnull(text);
  size_t n = 0;
  for (int i = 0; i < FFS_CSV_MAX_COLUMNS; i++) text[n++] = '0', text[n++] = ',';
  text[n - 1] = ' '; // "0,0,...,0 "
  ck_assert_uint_eq(n, FFS_CSV_LINE_MAX);
  text[n++] = '\n';
  // then a line one byte over, then a good row, then an endless last line
  memset(text + n, '1', FFS_CSV_LINE_MAX + 1);
  n += FFS_CSV_LINE_MAX + 1;
  text[n++] = '\n';
  for (size_t i = 0; i < FFS_CSV_MAX_COLUMNS; i++) text[n++] = i ? ',' : '1', text[n++] = '1';
  text[n++] = '\n';
  memset(text + n, '2', FFS_CSV_LINE_MAX + 100);
  n += FFS_CSV_LINE_MAX + 100;
  int fd = s_file(text, n);
  ffs_csv_t *c = s_reader(fd, "wide.csv", FFS_CSV_MAX_COLUMNS, -1, 0, 0);
  float *x = malloc(FFS_CSV_MAX_COLUMNS * sizeof *x);
  int label;
  char err[256] = "";
  ck_assert_msg(ffs_csv_next(c, x, &label, err, sizeof err) == 1, "%s", err);
  for (int i = 0; i < FFS_CSV_MAX_COLUMNS; i++) ck_assert(x[i] == 0.0f);
  ck_assert_msg(ffs_csv_next(c, x, &label, err, sizeof err) == 1, "%s", err);
  ck_assert_uint_eq(ffs_csv_lines(c), 3);
  ck_assert_str_eq(ffs_csv_last_error(c), "wide.csv: line 2: longer than 65536 bytes");
  for (int i = 0; i < FFS_CSV_MAX_COLUMNS; i++) ck_assert(x[i] == (i ? 1.0f : 11.0f));
  ck_assert_int_eq(ffs_csv_next(c, x, &label, err, sizeof err), 0);
  ck_assert_uint_eq(ffs_csv_skipped(c), 2);
  ck_assert_str_eq(ffs_csv_last_error(c), "wide.csv: line 4: longer than 65536 bytes");
  ffs_csv_destroy(&c);
  close(fd);
  free(x);
  free(text);
}
END_TEST

typedef struct {
  int fd;
  const char *text;
  size_t chunk;
} s_writer_t;

static void *s_writer(void *arg) {
  s_writer_t *w = arg;
  struct timespec tick = {0, 100 * 1000};
  size_t n = strlen(w->text);
  for (size_t at = 0; at < n;) {
    size_t k = n - at < w->chunk ? n - at : w->chunk;
    ssize_t put = write(w->fd, w->text + at, k);
    if (put < 0 && errno == EINTR) continue;
    if (put < 0) break;
    at += (size_t)put;
    nanosleep(&tick, NULL);
  }
  close(w->fd);
  return NULL;
}

START_TEST(test_pipe_small_chunks) {
  char text[8192] = "";
  for (int i = 0; i < 200; i++) {
    char row[64];
    snprintf(row, sizeof row, "%d.5, %d ,%d\n", i, -i, i % 4);
    strcat(text, row);
  }
  int fds[2];
  ck_assert_int_eq(pipe(fds), 0);
  s_writer_t w = {.fd = fds[1], .text = text, .chunk = 5};
  pthread_t t;
  ck_assert_int_eq(pthread_create(&t, NULL, s_writer, &w), 0);
  ffs_csv_t *c = s_reader(fds[0], "stdin", 3, 2, -1, 4);
  for (int i = 0; i < 200; i++) s_expect_row(c, (float[]){(float)i + 0.5f, (float)-i}, 2, i % 4);
  s_expect_end(c);
  ck_assert_uint_eq(ffs_csv_lines(c), 200);
  ck_assert_uint_eq(ffs_csv_skipped(c), 0);
  ck_assert_int_eq(pthread_join(t, NULL), 0);
  ffs_csv_destroy(&c);
  close(fds[0]);
}
END_TEST

START_TEST(test_read_error) {
  int fds[2];
  ck_assert_int_eq(pipe(fds), 0);
  ffs_csv_t *c = s_reader(fds[1], "wrong-end", 2, -1, 0, 0); // read() says EBADF
  float x[2];
  int label;
  char err[256] = "", again[256] = "";
  ck_assert_int_eq(ffs_csv_next(c, x, &label, err, sizeof err), -1);
  ck_assert_msg(strstr(err, "wrong-end: line 1: read error: "), "%s", err);
  ck_assert_int_eq(ffs_csv_next(c, x, &label, again, sizeof again), -1); // final
  ck_assert_str_eq(again, err);
  ffs_csv_destroy(&c);
  close(fds[0]);
  close(fds[1]);
}
END_TEST

// ---- sliding window ----

// Row r of a 2-column stream: {r, 100 + r}.
static void s_row(float *row, int r) {
  row[0] = (float)r;
  row[1] = 100.0f + (float)r;
}

// Pushes rows 0..rows-1 into a (k, hop) window; window j must hold rows
// first[j] .. first[j] + k - 1, and come right after its last row.
static void s_expect_windows(int k, int hop, int rows, const int *first, int nwin) {
  ffs_window_t *w = ffs_window_new(2, k, hop);
  ck_assert_ptr_nonnull(w);
  float row[2], out[64];
  int got = 0;
  for (int r = 0; r < rows; r++) {
    s_row(row, r);
    out[2 * k] = -7.0f;
    int ready = ffs_window_push(w, row, out);
    int want = got < nwin && r == first[got] + k - 1;
    ck_assert_msg(ready == want, "k %d hop %d row %d: ready %d", k, hop, r, ready);
    if (!ready) continue;
    for (int i = 0; i < k; i++) {
      s_row(row, first[got] + i);
      ck_assert(out[2 * i] == row[0] && out[2 * i + 1] == row[1]);
    }
    ck_assert_float_eq(out[2 * k], -7.0f); // nothing past k rows
    got++;
  }
  ck_assert_int_eq(got, nwin);
  ffs_window_destroy(&w);
  ck_assert_ptr_null(w);
  ffs_window_destroy(&w);
}

START_TEST(test_window) {
  // k = 3, hop = 2: after rows 2, 4, 6, 8: [0 1 2] [2 3 4] [4 5 6] [6 7 8]
  s_expect_windows(3, 2, 10, (const int[]){0, 2, 4, 6}, 4);
  s_expect_windows(1, 1, 4, (const int[]){0, 1, 2, 3}, 4);
  s_expect_windows(3, 3, 9, (const int[]){0, 3, 6}, 3);
  s_expect_windows(2, 3, 9, (const int[]){0, 3, 6}, 3); // hop > k leaves rows out
  s_expect_windows(4, 1, 6, (const int[]){0, 1, 2}, 3);
  // by hand, k = 3, hop = 2: the second window's exact contents
  ffs_window_t *w = ffs_window_new(2, 3, 2);
  float out[6] = {0}, row[2];
  for (int r = 0; r < 4; r++) {
    s_row(row, r);
    ck_assert_int_eq(ffs_window_push(w, row, out), r == 2);
  }
  s_row(row, 4);
  ck_assert_int_eq(ffs_window_push(w, row, out), 1);
  const float want[6] = {2, 102, 3, 103, 4, 104};
  for (int i = 0; i < 6; i++) ck_assert(out[i] == want[i]);
  ffs_window_destroy(&w);
  ck_assert_ptr_null(ffs_window_new(0, 3, 2));
  ck_assert_ptr_null(ffs_window_new(2, 0, 2));
  ck_assert_ptr_null(ffs_window_new(2, 3, 0));
  ck_assert_ptr_null(ffs_window_new(1 << 20, 1 << 12, 1));
}
END_TEST

// ---- suite ----

static Suite *s_suite(void) {
  Suite *s = suite_create("csv");
  TCase *row = tcase_create("row");
  tcase_add_test(row, test_parse_ok);
  tcase_add_test(row, test_parse_errors);
  tcase_add_test(row, test_row_datagram);
  tcase_add_test(row, test_cfg_refused);
  suite_add_tcase(s, row);

  TCase *reader = tcase_create("reader");
  tcase_add_test(reader, test_header_auto);
  tcase_add_test(reader, test_bad_rows_skipped_and_named);
  tcase_add_test(reader, test_last_line_and_empty_input);
  tcase_add_test(reader, test_long_lines);
  tcase_add_test(reader, test_pipe_small_chunks);
  tcase_add_test(reader, test_read_error);
  suite_add_tcase(s, reader);

  TCase *window = tcase_create("window");
  tcase_add_test(window, test_window);
  suite_add_tcase(s, window);
  return s;
}

int main(void) { return ffs_check_run(s_suite()); }
