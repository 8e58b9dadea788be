// csv: rows of numbers for the source stage's live feeds: one text row, a
// reader of CSV lines on a file descriptor, one UDP datagram's row, and a
// sliding window that turns rows into samples of k rows. Pure input parsing:
// no threads, no sockets. A bad row is refused with a message naming its
// line and column, never asserted on; nothing allocates after its _new.
// Columns are counted from 1 in messages (a spreadsheet's numbering).
#ifndef FFS_CSV_H
#define FFS_CSV_H

#include <stddef.h>
#include <stdint.h>

#define FFS_CSV_LINE_MAX 65536 // bytes of one line, without its '\n'
#define FFS_CSV_MAX_COLUMNS (FFS_CSV_LINE_MAX / 2) // "0,0,...": no line holds more

// Parses one text row of comma-separated numbers (spaces and tabs around a
// number allowed, trailing '\r' and '\n' ignored) into vals (at most cap).
// Returns the count, or -1 with why, e.g. "column 3: 'abc' is not a number",
// "column 2: NaN", "column 5: inf" (non-finite values, overflow included,
// are refused), "column 4: empty (expected a number)", "more than 512
// columns" (cap 512), "empty row" (nothing but spaces).
int ffs_csv_parse(const char *text, size_t len, float *vals, int cap, char *why, size_t whylen);

typedef struct {
  int columns;   // numbers per row, label column included (1..FFS_CSV_MAX_COLUMNS)
  int label_col; // 0-based column holding the integer label, -1 = none
  int header;    // 1 = the first line is a header (skipped); -1 = auto: skipped
                 // when any field is not a number; 0 = none
  int classes;   // labels must be integers 0..classes-1 (>= 1; ignored without label_col)
} ffs_csv_cfg_t;

// Checks a configuration (it may come from a flag or a file). Returns 0, or
// -1 with why ("columns 0 (expected 1..32768)").
int ffs_csv_cfg_check(const ffs_csv_cfg_t *cfg, char *why, size_t whylen);

typedef struct ffs_csv ffs_csv_t;

// A reader of CSV lines from fd (which destroy does not close): short reads
// and EINTR are handled, lines hold up to FFS_CSV_LINE_MAX bytes, the last
// line may lack its '\n', "\r\n" endings and a UTF-8 byte order mark at the
// start are accepted. `what` names the input in messages. Returns NULL with
// "what: ..." in err for a bad cfg or no memory; reads nothing yet.
ffs_csv_t *ffs_csv_new(int fd, const char *what, const ffs_csv_cfg_t *cfg, char *err,
                       size_t errlen);

// Next good row: x gets columns (minus 1 when label_col >= 0) floats in
// column order, *label the label or -1. Returns 1, 0 at the end of the input
// (again on every later call), -1 on a read error (err names the input and
// the line). Bad rows (wrong column count, a non-number, NaN/inf, a label
// not an integer in 0..classes-1, a line over FFS_CSV_LINE_MAX) are skipped
// and counted; the latest one's message ("sensors.csv: line 17: 3 columns,
// expected 4") is kept for ffs_csv_last_error. Blank lines are skipped
// without counting them as bad.
int ffs_csv_next(ffs_csv_t *c, float *x, int *label, char *err, size_t errlen);

uint64_t ffs_csv_lines(const ffs_csv_t *c);         // lines read (header included)
uint64_t ffs_csv_skipped(const ffs_csv_t *c);       // bad rows skipped
const char *ffs_csv_last_error(const ffs_csv_t *c); // "" when none
void ffs_csv_destroy(ffs_csv_t **self_p);

// The same row rules applied to one datagram's text (UDP: one row per
// datagram; cfg->header is not used): returns 0 with x and *label filled as
// ffs_csv_next does, -1 with why ("3 columns, expected 4", "column 2: NaN",
// or what ffs_csv_cfg_check says of cfg).
int ffs_csv_row(const ffs_csv_cfg_t *cfg, const char *text, size_t len, float *x, int *label,
                char *why, size_t whylen);

// ---- sliding window ----

typedef struct ffs_window ffs_window_t;

// Windows of k rows of cols floats, one every hop rows once k rows have
// been seen: after row k, k + hop, k + 2 hop, ... (hop > k leaves rows out).
// NULL when cols, k or hop is below 1, k * cols is over INT_MAX, or no memory.
ffs_window_t *ffs_window_new(int cols, int k, int hop);

// Pushes a row (cols floats); returns 1 when a window is ready, written to
// out (k * cols floats, oldest row first), else 0 (out untouched).
int ffs_window_push(ffs_window_t *w, const float *row, float *out);

void ffs_window_destroy(ffs_window_t **self_p);

#endif
