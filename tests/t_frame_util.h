// t_frame_util: what the frame suites (check_frame, check_frame_limits) share:
// a msgpack message built by hand, a decode of an exact-size copy with its
// pointers checked, and one full frame with every field and array set.
// Header-only (static inline), as ffs_check.h.
#ifndef T_FRAME_UTIL_H
#define T_FRAME_UTIL_H

#include "ffs_frame.h"

#include "ffs_check.h"
#include <float.h>
#include <msgpack.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

// A message under construction: header entries, then raw payload bytes.
typedef struct {
  msgpack_sbuffer sb;
  msgpack_packer pk;
} t_msg_t;

static inline void t_init(t_msg_t *m) {
  msgpack_sbuffer_init(&m->sb);
  msgpack_packer_init(&m->pk, &m->sb, msgpack_sbuffer_write);
}

static inline void t_begin(t_msg_t *m, uint32_t n_entries) {
  t_init(m);
  msgpack_pack_map(&m->pk, n_entries);
}

static inline void t_key(t_msg_t *m, const char *key) {
  msgpack_pack_str(&m->pk, strlen(key));
  msgpack_pack_str_body(&m->pk, key, strlen(key));
}

static inline void t_kv(t_msg_t *m, const char *key, uint64_t v) {
  t_key(m, key);
  msgpack_pack_uint64(&m->pk, v);
}

static inline void t_raw(t_msg_t *m, const void *bytes, size_t n) {
  msgpack_sbuffer_write(&m->sb, bytes, n);
}

// Header with v, kind, rows, cols (4 entries) plus n_extra entries the caller
// writes next.
static inline void t_hdr(t_msg_t *m, uint32_t n_extra, uint64_t v, uint64_t kind, uint64_t rows,
                         uint64_t cols) {
  t_begin(m, 4 + n_extra);
  t_kv(m, "v", v);
  t_kv(m, "kind", kind);
  t_kv(m, "rows", rows);
  t_kv(m, "cols", cols);
}

// Appends n floats 0, 0.5, 1, ...
static inline void t_floats(t_msg_t *m, size_t n) {
  for (size_t i = 0; i < n; i++) {
    float x = 0.5f * (float)i;
    t_raw(m, &x, 4);
  }
}

static inline void t_end(t_msg_t *m) { msgpack_sbuffer_destroy(&m->sb); }

// Decodes an exact-size heap copy of bytes[0..len) (so that a read past the
// end is caught by ASan/valgrind), checks that every pointer of a decoded
// frame lies inside the message, and rebases the pointers onto bytes.
static inline int t_decode_bytes(ffs_frame_t *out, const void *bytes, size_t len,
                                 const ffs_frame_limits_t *lim, char *err, size_t errlen) {
  uint8_t *copy = malloc(len ? len : 1);
  ck_assert_ptr_nonnull(copy);
  if (len) memcpy(copy, bytes, len);
  int rc = ffs_frame_decode(out, copy, len, lim, err, errlen);
  if (rc == 0) {
    size_t floats = (size_t)out->h.rows * out->h.cols;
    const uint8_t *end = copy + len;
    if (floats) ck_assert_ptr_eq(out->payload, end - floats * 4);
    else ck_assert_ptr_null(out->payload);
    if (out->roles) ck_assert(out->roles >= copy && out->roles + out->h.rows <= end);
    if (out->labels) ck_assert(out->labels >= copy && out->labels + out->h.rows <= end);
    if (out->cands) ck_assert(out->cands >= copy && out->cands + out->h.rows <= end);
    if (out->ids) ck_assert(out->ids >= copy && out->ids + (size_t)out->h.rows * 4 <= end);
    const uint8_t *base = bytes;
#define T_REBASE(p) if (p) p = base + ((p) - copy)
    T_REBASE(out->roles);
    T_REBASE(out->labels);
    T_REBASE(out->cands);
    T_REBASE(out->ids);
    T_REBASE(out->payload);
#undef T_REBASE
  } else {
    ck_assert_msg(!err || (err[0] && !strchr(err, '\n')), "need a one-line reason, got \"%s\"",
                  err ? err : "");
  }
  free(copy);
  return rc;
}

static inline int t_decode(ffs_frame_t *out, t_msg_t *m, const ffs_frame_limits_t *lim, char *err,
                           size_t errlen) {
  return t_decode_bytes(out, m->sb.data, m->sb.size, lim, err, errlen);
}

// Expects decoding m to fail with a reason containing want.
static inline void t_expect_fail(t_msg_t *m, const ffs_frame_limits_t *lim, const char *want) {
  ffs_frame_t f;
  char err[256];
  int rc = t_decode(&f, m, lim, err, sizeof err);
  ck_assert_msg(rc == -1, "decode succeeded, expected a failure about \"%s\"", want);
  ck_assert_msg(strstr(err, want), "reason \"%s\" does not mention \"%s\"", err, want);
}

static inline void t_expect_ok(t_msg_t *m, const ffs_frame_limits_t *lim) {
  ffs_frame_t f;
  char err[256];
  int rc = t_decode(&f, m, lim, err, sizeof err);
  ck_assert_msg(rc == 0, "decode failed: %s", err);
}

// A full frame with every field and array set: 3 rows x 5 cols.
enum { T_ROWS = 3, T_COLS = 5 };
static const ffs_frame_hdr_t t_full_hdr = {.kind = FFS_FRAME_REPORT,
                                           .phase = FFS_PHASE_EVAL,
                                           .seq = 0x123456789abcdefull,
                                           .epoch = 7,
                                           .tick = 300,
                                           .stage = 70000,
                                           .rows = T_ROWS,
                                           .cols = T_COLS,
                                           .aux = 1,
                                           .ts = 0x1122334455667788ull,
                                           .work_ns = 123456789};
static const uint8_t t_roles[T_ROWS] = {FFS_ROW_NEGATIVE, FFS_ROW_NEUTRAL, FFS_ROW_CANDIDATE};
static const uint8_t t_labels[T_ROWS] = {3, FFS_LABEL_NONE, 0};
static const uint8_t t_cands[T_ROWS] = {9, 1, 2};
static const uint32_t t_ids[T_ROWS] = {0, 59999, 0xfffffffeu};
static const float t_payload[T_ROWS * T_COLS] = {
    1.5f, -2.0f, 0.0f, -0.0f, FLT_MAX, FLT_MIN, 1e-40f /* subnormal */, 3.25f,
    -1e30f, 42.0f, 0.1f, 0.2f, 0.3f, 0.4f, 0.5f};

static inline size_t t_encode_full(uint8_t *buf, size_t cap) {
  ffs_frame_rows_t r = {t_roles, t_labels, t_cands, t_ids};
  return ffs_frame_encode(buf, cap, &t_full_hdr, &r, t_payload);
}

#endif
