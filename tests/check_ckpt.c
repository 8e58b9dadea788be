// check_ckpt: tests for common/ffs_ckpt (safetensors save / load). Round trips
// real tensors through a temp dir, checks the bytes on disk against the
// safetensors layout, and feeds the loader hand-made broken files, each of
// which must be refused with a message naming the file (and the tensor).
#include "ffs_ckpt.h"

#include "ffs_check.h"
#include <dirent.h>
#include <float.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

// ---- fixture: one temp dir per test (a failing test leaves it for a look) ----

static char s_dir[64];

static void s_setup(void) {
  ffs_check_mkdtemp(s_dir, sizeof s_dir, "check_ckpt");
}

static void s_teardown(void) { ffs_check_rmtree(s_dir); }

// ---- helpers ----

static void s_join(char *out, size_t outlen, const char *name) {
  snprintf(out, outlen, "%s/%s", s_dir, name);
}

// Reads a whole file; *len gets its size. Caller frees.
static uint8_t *s_slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  ck_assert_ptr_nonnull(f);
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *buf = malloc((size_t)size + 1);
  ck_assert_ptr_nonnull(buf);
  ck_assert_uint_eq(fread(buf, 1, (size_t)size, f), (size_t)size);
  buf[size] = 0;
  fclose(f);
  *len = (size_t)size;
  return buf;
}

// Writes a hand-made safetensors file: hlen (LE) | json padded to 8 | data.
// hlen_override != 0 replaces the true header length.
static void s_write_st(const char *name, const char *json, const void *data, size_t data_len,
                       uint64_t hlen_override) {
  char path[512];
  s_join(path, sizeof path, name);
  size_t jlen = strlen(json), padded = (jlen + 7) / 8 * 8;
  uint64_t hlen = hlen_override ? hlen_override : padded;
  FILE *f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  for (int b = 0; b < 8; b++) fputc((int)((hlen >> (8 * b)) & 0xff), f);
  fwrite(json, 1, jlen, f);
  for (size_t k = jlen; k < padded; k++) fputc(' ', f);
  if (data_len) fwrite(data, 1, data_len, f);
  ck_assert_int_eq(fclose(f), 0);
}

// The example checkpoint: w (3, 4) and b (4), with awkward values.
enum { S_ROWS = 3, S_COLS = 4 };

static void s_fill(float *w, float *b, float seed) {
  for (int k = 0; k < S_ROWS * S_COLS; k++) w[k] = seed * ((float)k - 5.5f) / 3.0f;
  w[0] = -0.0f;
  w[1] = FLT_MAX;
  w[2] = 1e-40f; // subnormal
  for (int k = 0; k < S_COLS; k++) b[k] = seed + (float)k * 0.125f;
}

static const char *s_meta[] = {"step", "7", "note", "a \"quoted\" \\ line\nbreak\ttab \xc3\xa9"};

static void s_save_example(const char *path, float *w, float *b) {
  ffs_tensor_ref_t t[2] = {{"w", 2, {S_ROWS, S_COLS}, w}, {"b", 1, {S_COLS, 0}, b}};
  char err[512] = "";
  ck_assert_msg(ffs_ckpt_save(path, t, 2, s_meta, 2, err, sizeof err) == 0, "%s", err);
}

// Loads w and b with the given shapes and expects failure mentioning needles.
static void s_expect_fail(const char *name, const ffs_tensor_ref_t *t, int n,
                          const char *needle1, const char *needle2) {
  char path[512], err[512] = "";
  s_join(path, sizeof path, name);
  ck_assert_msg(ffs_ckpt_load(path, t, n, err, sizeof err) != 0, "%s loaded but should not", path);
  ck_assert_msg(strncmp(err, path, strlen(path)) == 0, "error does not start with the path: %s",
                err);
  ck_assert_msg(strstr(err, needle1), "error lacks \"%s\": %s", needle1, err);
  if (needle2) ck_assert_msg(strstr(err, needle2), "error lacks \"%s\": %s", needle2, err);
}

static float s_w[S_ROWS * S_COLS], s_b[S_COLS];
static const ffs_tensor_ref_t s_want[2] = {{"w", 2, {S_ROWS, S_COLS}, s_w},
                                           {"b", 1, {S_COLS, 0}, s_b}};

// ---- core ----

START_TEST(test_round_trip) {
  float w[S_ROWS * S_COLS], b[S_COLS], w2[S_ROWS * S_COLS], b2[S_COLS];
  s_fill(w, b, 1.0f);
  char path[512], err[512] = "";
  s_join(path, sizeof path, "stage.safetensors");
  s_save_example(path, w, b);
  ffs_tensor_ref_t t[2] = {{"w", 2, {S_ROWS, S_COLS}, w2}, {"b", 1, {S_COLS, 0}, b2}};
  ck_assert_msg(ffs_ckpt_load(path, t, 2, err, sizeof err) == 0, "%s", err);
  ck_assert_int_eq(memcmp(w, w2, sizeof w), 0); // bit-exact, -0.0 and subnormal included
  ck_assert_int_eq(memcmp(b, b2, sizeof b), 0);
  // a subset, in another order
  memset(b2, 0, sizeof b2);
  ck_assert_msg(ffs_ckpt_load(path, t + 1, 1, err, sizeof err) == 0, "%s", err);
  ck_assert_int_eq(memcmp(b, b2, sizeof b), 0);
}
END_TEST

// An optional group of tensors: all of it present loads all, none of it
// loads the required ones and says so, part of it is an error.
START_TEST(test_optional_tensors) {
  float w[S_ROWS * S_COLS], b[S_COLS], w2[S_ROWS * S_COLS], b2[S_COLS], x[S_COLS];
  s_fill(w, b, 1.0f);
  char path[512], err[512] = "";
  s_join(path, sizeof path, "opt.safetensors");
  s_save_example(path, w, b); // holds w and b
  int loaded = -1;
  ffs_tensor_ref_t t[3] = {{"w", 2, {S_ROWS, S_COLS}, w2}, {"b", 1, {S_COLS, 0}, b2},
                           {"x", 1, {S_COLS, 0}, x}};
  ck_assert_msg(ffs_ckpt_load_some(path, t, 3, 1, &loaded, err, sizeof err) < 0,
                "a group with b but not x loaded");
  ck_assert_msg(strstr(err, "tensor 'x' not found"), "%s", err);
  ck_assert_msg(ffs_ckpt_load_some(path, t, 2, 1, &loaded, err, sizeof err) == 0, "%s", err);
  ck_assert_int_eq(loaded, 2);
  ck_assert_int_eq(memcmp(b, b2, sizeof b), 0);
  t[1] = t[2]; // w required, x optional and absent
  memset(w2, 0, sizeof w2);
  ck_assert_msg(ffs_ckpt_load_some(path, t, 2, 1, &loaded, err, sizeof err) == 0, "%s", err);
  ck_assert_int_eq(loaded, 1);
  ck_assert_int_eq(memcmp(w, w2, sizeof w), 0);
  ck_assert_msg(ffs_ckpt_load(path, t, 2, err, sizeof err) < 0, "x is required there");
  // groups: w required, then {x} (absent: skipped), then {b} (present: read)
  ffs_tensor_ref_t g[3] = {{"w", 2, {S_ROWS, S_COLS}, w2}, {"x", 1, {S_COLS, 0}, x},
                           {"b", 1, {S_COLS, 0}, b2}};
  int ends[3] = {1, 2, 3};
  unsigned got = 0;
  memset(b2, 0, sizeof b2);
  ck_assert_msg(ffs_ckpt_load_groups(path, g, ends, 3, &got, err, sizeof err) == 0, "%s", err);
  ck_assert_uint_eq(got, 1u | 4u);
  ck_assert_int_eq(memcmp(b, b2, sizeof b), 0);
  // an empty group is never "loaded"; a group partly there is an error
  int ends_empty[3] = {1, 1, 3};
  ck_assert_msg(ffs_ckpt_load_groups(path, g, ends_empty, 3, &got, err, sizeof err) < 0,
                "the group {x, b} is partly there");
  ck_assert_msg(strstr(err, "tensor 'x' not found"), "%s", err);
}
END_TEST

START_TEST(test_layout_is_safetensors) {
  float w[S_ROWS * S_COLS], b[S_COLS];
  s_fill(w, b, 2.0f);
  char path[512];
  s_join(path, sizeof path, "x.safetensors");
  s_save_example(path, w, b);
  size_t len;
  uint8_t *buf = s_slurp(path, &len);
  uint64_t hlen = 0;
  for (int k = 7; k >= 0; k--) hlen = hlen << 8 | buf[k];
  ck_assert_uint_eq((8 + hlen) % 8, 0); // data section 8-byte aligned
  ck_assert_uint_eq(len, 8 + hlen + sizeof w + sizeof b);
  const char *json = (const char *)buf + 8;
  ck_assert_int_eq(json[0], '{');
  // the object closes, then only space padding up to the data
  size_t close = hlen;
  while (close > 0 && json[close - 1] == ' ') close--;
  ck_assert_int_eq(json[close - 1], '}');
  ck_assert_uint_lt(hlen - close, 8);
  char *hdr = strndup(json, close);
  ck_assert_ptr_nonnull(strstr(hdr, "\"__metadata__\":{\"step\":\"7\","));
  ck_assert_ptr_nonnull(
      strstr(hdr, "\"note\":\"a \\\"quoted\\\" \\\\ line\\nbreak\\ttab \xc3\xa9\""));
  ck_assert_ptr_nonnull(
      strstr(hdr, "\"w\":{\"dtype\":\"F32\",\"shape\":[3,4],\"data_offsets\":[0,48]}"));
  ck_assert_ptr_nonnull(
      strstr(hdr, "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[48,64]}"));
  for (size_t k = 0; k < close; k++) ck_assert_uint_ge((uint8_t)hdr[k], 0x20); // no raw control
  // raw data: w then b, little-endian F32 (this host is little-endian)
  const uint16_t one = 1;
  if (*(const uint8_t *)&one == 1) {
    ck_assert_int_eq(memcmp(buf + 8 + hlen, w, sizeof w), 0);
    ck_assert_int_eq(memcmp(buf + 8 + hlen + sizeof w, b, sizeof b), 0);
  }
  free(hdr);
  free(buf);
}
END_TEST

START_TEST(test_no_temp_file_left) {
  float w[S_ROWS * S_COLS], b[S_COLS];
  s_fill(w, b, 1.0f);
  char path[512];
  s_join(path, sizeof path, "c.safetensors");
  s_save_example(path, w, b);
  s_save_example(path, w, b); // over an existing file too
  DIR *d = opendir(s_dir);
  ck_assert_ptr_nonnull(d);
  struct dirent *e;
  int files = 0;
  while ((e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    ck_assert_msg(!strstr(e->d_name, ".tmp."), "temp file left behind: %s", e->d_name);
    files++;
  }
  closedir(d);
  ck_assert_int_eq(files, 1);
}
END_TEST

START_TEST(test_overwrite) {
  float w[S_ROWS * S_COLS], b[S_COLS], w2[S_ROWS * S_COLS], b2[S_COLS];
  char path[512], err[512];
  s_join(path, sizeof path, "c.safetensors");
  s_fill(w, b, 1.0f);
  s_save_example(path, w, b);
  s_fill(w, b, 3.0f);
  s_save_example(path, w, b);
  ffs_tensor_ref_t t[2] = {{"w", 2, {S_ROWS, S_COLS}, w2}, {"b", 1, {S_COLS, 0}, b2}};
  ck_assert_msg(ffs_ckpt_load(path, t, 2, err, sizeof err) == 0, "%s", err);
  ck_assert_int_eq(memcmp(w, w2, sizeof w), 0);
  ck_assert_int_eq(memcmp(b, b2, sizeof b), 0);
}
END_TEST

START_TEST(test_no_metadata) {
  float v[3] = {1, 2, 3}, v2[3];
  ffs_tensor_ref_t t[1] = {{"v", 1, {3, 0}, v}};
  ffs_tensor_ref_t t2[1] = {{"v", 1, {3, 0}, v2}};
  char path[512], err[512];
  s_join(path, sizeof path, "v.safetensors");
  ck_assert_msg(ffs_ckpt_save(path, t, 1, NULL, 0, err, sizeof err) == 0, "%s", err);
  size_t len;
  uint8_t *buf = s_slurp(path, &len);
  ck_assert_ptr_null(strstr((char *)buf + 8, "__metadata__"));
  free(buf);
  ck_assert_msg(ffs_ckpt_load(path, t2, 1, err, sizeof err) == 0, "%s", err);
  ck_assert_int_eq(memcmp(v, v2, sizeof v), 0);
}
END_TEST

START_TEST(test_foreign_header) {
  // A header as another writer might lay it out: whitespace, escaped names,
  // metadata last, an extra tensor of another dtype that nobody asks for.
  float data[4 + 2] = {1.5f, -2.5f, 3.5f, -4.5f, 0, 0};
  const char *json = "{ \"other\" : {\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[16,20]},\n"
                     "  \"\\u0077\\/x\": { \"data_offsets\" : [ 0 , 16 ], \"shape\": [2, 2],"
                     " \"dtype\": \"F32\" },\n"
                     "  \"__metadata__\": {\"k\\u00e9\\ud83d\\ude00\": \"v\\\"\"}\n}";
  s_write_st("f.safetensors", json, data, 24, 0);
  float got[4];
  ffs_tensor_ref_t t[1] = {{"w/x", 2, {2, 2}, got}};
  char path[512], err[512];
  s_join(path, sizeof path, "f.safetensors");
  ck_assert_msg(ffs_ckpt_load(path, t, 1, err, sizeof err) == 0, "%s", err);
  ck_assert_int_eq(memcmp(got, data, sizeof got), 0);
}
END_TEST

// ---- limits ----

START_TEST(test_wrong_shape) {
  float w[S_ROWS * S_COLS], b[S_COLS], w2[S_ROWS * S_COLS];
  s_fill(w, b, 1.0f);
  char path[512];
  s_join(path, sizeof path, "c.safetensors");
  s_save_example(path, w, b);
  ffs_tensor_ref_t t[1] = {{"w", 2, {S_COLS, S_ROWS}, w2}};
  s_expect_fail("c.safetensors", t, 1, "tensor 'w' has shape [3,4], expected [4,3]", NULL);
  ffs_tensor_ref_t flat[1] = {{"w", 1, {S_ROWS * S_COLS, 0}, w2}};
  s_expect_fail("c.safetensors", flat, 1, "'w' has shape [3,4], expected [12]", NULL);
  ffs_tensor_ref_t missing[1] = {{"theta", 1, {1, 0}, w2}};
  s_expect_fail("c.safetensors", missing, 1, "tensor 'theta' not found", "F32 [1]");
}
END_TEST

START_TEST(test_truncated) {
  float w[S_ROWS * S_COLS], b[S_COLS];
  s_fill(w, b, 1.0f);
  char path[512];
  s_join(path, sizeof path, "c.safetensors");
  s_save_example(path, w, b);
  struct stat st;
  ck_assert_int_eq(stat(path, &st), 0);
  // last float gone: b's offsets now run past the data section
  ck_assert_int_eq(truncate(path, st.st_size - 4), 0);
  s_expect_fail("c.safetensors", s_want, 2, "tensor 'b'", "outside the data section");
  // cut inside the JSON header
  ck_assert_int_eq(truncate(path, 40), 0);
  s_expect_fail("c.safetensors", s_want, 2, "truncated: header declares", NULL);
  // cut inside the length itself
  ck_assert_int_eq(truncate(path, 5), 0);
  s_expect_fail("c.safetensors", s_want, 2, "truncated", "too short");
  s_expect_fail("nonexistent", s_want, 2, "cannot open", NULL);
}
END_TEST

START_TEST(test_garbage_header) {
  uint8_t zeros[64] = {0};
  s_write_st("g1", "{not json}", zeros, 64, 0);
  s_expect_fail("g1", s_want, 2, "corrupt header", "expected a string at byte 1");
  s_write_st("g2", "[1,2,3]", zeros, 64, 0);
  s_expect_fail("g2", s_want, 2, "corrupt header", NULL);
  s_write_st("g3", "{\"w\":{\"dtype\":\"F32\",\"shape\":[3,4],\"data_offsets\":[0,48]}}xx", zeros,
             64, 0);
  s_expect_fail("g3", s_want, 2, "corrupt header", "space padding");
  s_write_st("g4", "{\"w\":{\"dtype\":\"F32\",\"shape\":[3,-4],\"data_offsets\":[0,48]}}", zeros,
             64, 0);
  s_expect_fail("g4", s_want, 2, "non-negative integer", NULL);
  s_write_st("g5", "{\"w\":{\"dtype\":\"F32\",\"shape\":[3,4.0],\"data_offsets\":[0,48]}}", zeros,
             64, 0);
  s_expect_fail("g5", s_want, 2, "no fraction", NULL);
  s_write_st("g6", "{\"w\":{\"dtype\":\"F32\",\"shape\":[3,4],\"data_offsets\":[0,48]", zeros, 64,
             0);
  s_expect_fail("g6", s_want, 2, "corrupt header", "found the end");
  s_write_st("g7", "{\"w\":{\"dtype\":\"F32", zeros, 64, 0);
  s_expect_fail("g7", s_want, 2, "closing '\"'", NULL);
  s_write_st("g8", "{\"w\":{\"dtype\":\"F32\",\"shape\":[3,4],\"data_offsets\":[0,48],\"x\":[]}}",
             zeros, 64, 0);
  s_expect_fail("g8", s_want, 2, "tensor 'w': unexpected or repeated key \"x\"", NULL);
  s_write_st("g9",
             "{\"w\":{\"dtype\":\"F32\",\"shape\":[3,4],"
             "\"data_offsets\":[0,18446744073709551616]}}",
             zeros, 64, 0);
  s_expect_fail("g9", s_want, 2, "below 2^64", NULL);
  s_write_st("g10", "{\"w\\x\":{}}", zeros, 64, 0);
  s_expect_fail("g10", s_want, 2, "valid escape", NULL);
  s_write_st("g11", "{\"\\ud800\":{}}", zeros, 64, 0);
  s_expect_fail("g11", s_want, 2, "low surrogate", NULL);
  s_write_st("g12", "", zeros, 64, 0);
  s_expect_fail("g12", s_want, 2, "'{' opening the header", NULL);
}
END_TEST

START_TEST(test_bad_offsets_and_dtype) {
  uint8_t zeros[64] = {0};
  const char *b_ok = "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[48,64]}";
  char json[512];
  snprintf(json, sizeof json,
           "{\"w\":{\"dtype\":\"F32\",\"shape\":[3,4],\"data_offsets\":[0,1000]},%s}", b_ok);
  s_write_st("past_end", json, zeros, 64, 0);
  s_expect_fail("past_end", s_want, 2, "tensor 'w': data_offsets [0,1000] lie outside",
                "64 bytes");
  snprintf(json, sizeof json,
           "{\"w\":{\"dtype\":\"F32\",\"shape\":[3,4],\"data_offsets\":[40,8]},%s}", b_ok);
  s_write_st("reversed", json, zeros, 64, 0);
  s_expect_fail("reversed", s_want, 2, "tensor 'w'", "outside");
  snprintf(json, sizeof json,
           "{\"w\":{\"dtype\":\"F32\",\"shape\":[3,4],\"data_offsets\":[0,44]},%s}", b_ok);
  s_write_st("short_span", json, zeros, 64, 0);
  s_expect_fail("short_span", s_want, 2, "tensor 'w'", "span 44 bytes, expected 48");
  snprintf(json, sizeof json,
           "{\"w\":{\"dtype\":\"F16\",\"shape\":[3,4],\"data_offsets\":[0,24]},%s}", b_ok);
  s_write_st("f16", json, zeros, 64, 0);
  s_expect_fail("f16", s_want, 2, "tensor 'w' has dtype F16, expected F32", NULL);
  snprintf(json, sizeof json,
           "{\"w\":{\"dtype\":\"F32\",\"shape\":[3,4],\"data_offsets\":[0,48]},%s,%s}", b_ok,
           b_ok);
  s_write_st("twice", json, zeros, 64, 0);
  s_expect_fail("twice", s_want, 2, "tensor 'b' appears twice", NULL);
  snprintf(json, sizeof json, "{\"w\":{\"dtype\":\"F32\",\"shape\":[3,4]},%s}", b_ok);
  s_write_st("no_offsets", json, zeros, 64, 0);
  s_expect_fail("no_offsets", s_want, 2, "tensor 'w': missing data_offsets", NULL);
}
END_TEST

START_TEST(test_bad_header_length) {
  uint8_t zeros[64] = {0};
  s_write_st("huge", "{}", zeros, 64, (uint64_t)1 << 40);
  s_expect_fail("huge", s_want, 2, "100 MB limit", NULL);
  s_write_st("long", "{}", zeros, 64, 200);
  s_expect_fail("long", s_want, 2, "truncated: header declares 200 bytes", NULL);
  s_write_st("empty_ok", "{}", NULL, 0, 0);
  s_expect_fail("empty_ok", s_want, 2, "tensor 'w' not found", NULL);
}
END_TEST

START_TEST(test_save_errors) {
  float w[S_ROWS * S_COLS], b[S_COLS];
  s_fill(w, b, 1.0f);
  char path[512], err[512] = "";
  s_join(path, sizeof path, "no/such/dir/c.safetensors");
  ffs_tensor_ref_t t[2] = {{"w", 2, {S_ROWS, S_COLS}, w}, {"b", 1, {S_COLS, 0}, b}};
  ck_assert_int_eq(ffs_ckpt_save(path, t, 2, NULL, 0, err, sizeof err), -1);
  ck_assert_msg(strncmp(err, path, strlen(path)) == 0 && strstr(err, "temp file"), "%s", err);
  s_join(path, sizeof path, "c.safetensors");
  ffs_tensor_ref_t dup[2] = {{"w", 2, {S_ROWS, S_COLS}, w}, {"w", 1, {S_COLS, 0}, b}};
  ck_assert_int_eq(ffs_ckpt_save(path, dup, 2, NULL, 0, err, sizeof err), -1);
  ck_assert_msg(strstr(err, "'w' given twice"), "%s", err);
  const char *bad_meta[] = {"k", "\xff\xfe"};
  ck_assert_int_eq(ffs_ckpt_save(path, t, 2, bad_meta, 1, err, sizeof err), -1);
  ck_assert_msg(strstr(err, "not valid UTF-8"), "%s", err);
  ck_assert_int_eq(access(path, F_OK), -1); // nothing written by the failures
}
END_TEST

// ---- suite ----

static Suite *s_suite(void) {
  Suite *s = suite_create("ffs_ckpt");
  TCase *core = tcase_create("core");
  tcase_add_checked_fixture(core, s_setup, s_teardown);
  tcase_add_test(core, test_round_trip);
  tcase_add_test(core, test_optional_tensors);
  tcase_add_test(core, test_layout_is_safetensors);
  tcase_add_test(core, test_no_temp_file_left);
  tcase_add_test(core, test_overwrite);
  tcase_add_test(core, test_no_metadata);
  tcase_add_test(core, test_foreign_header);
  suite_add_tcase(s, core);

  TCase *limits = tcase_create("limits");
  tcase_add_checked_fixture(limits, s_setup, s_teardown);
  tcase_add_test(limits, test_wrong_shape);
  tcase_add_test(limits, test_truncated);
  tcase_add_test(limits, test_garbage_header);
  tcase_add_test(limits, test_bad_offsets_and_dtype);
  tcase_add_test(limits, test_bad_header_length);
  tcase_add_test(limits, test_save_errors);
  suite_add_tcase(s, limits);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(s_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
