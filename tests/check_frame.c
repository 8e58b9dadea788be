// check_frame: Check suite for proto/ffs_frame (the protocol v1 codec).
// "core": round trips, every key's checks, unknown keys, truncations.
// Receiver limits, hostile counts and sizes and the fuzz loop are in
// check_frame_limits.c.
// Hostile frames are built by hand with msgpack-c's packer so that they can
// say things our encoder never would; each decode reads an exact-size copy
// so that AddressSanitizer / valgrind see any read past the end.
#include "t_frame_util.h"

#include "ffs_math.h"
#include <math.h>

// ---- core ----

START_TEST(test_round_trip) {
  uint8_t buf[512];
  size_t n = t_encode_full(buf, sizeof buf);
  ck_assert_uint_gt(n, sizeof t_payload);
  ck_assert_uint_le(n, ffs_frame_encoded_max(T_ROWS, T_COLS));

  ffs_frame_t f;
  char err[256];
  int rc = t_decode_bytes(&f, buf, n, NULL, err, sizeof err);
  ck_assert_msg(rc == 0, "decode failed: %s", err);
  ck_assert_uint_eq(f.h.kind, FFS_FRAME_REPORT);
  ck_assert_uint_eq(f.h.phase, FFS_PHASE_EVAL);
  ck_assert_mem_eq(f.roles, t_roles, T_ROWS);
  // one row of each role but positive, in runs: negative (row 0), neutral, candidate
  ck_assert_uint_eq(f.n_role[FFS_ROW_POSITIVE], 0);
  ck_assert_uint_eq(f.n_role[FFS_ROW_NEGATIVE], 1);
  ck_assert_uint_eq(f.n_role[FFS_ROW_NEUTRAL], 1);
  ck_assert_uint_eq(f.n_role[FFS_ROW_CANDIDATE], 1);
  ck_assert_uint_eq(ffs_frame_role_start(&f, FFS_ROW_NEUTRAL), 1);
  ck_assert_uint_eq(ffs_frame_role_start(&f, FFS_ROW_CANDIDATE), 2);
  ck_assert(f.h.seq == 0x123456789abcdefull);
  ck_assert_uint_eq(f.h.epoch, 7);
  ck_assert_uint_eq(f.h.tick, 300);
  ck_assert_uint_eq(f.h.stage, 70000);
  ck_assert_uint_eq(f.h.rows, T_ROWS);
  ck_assert_uint_eq(f.h.cols, T_COLS);
  ck_assert_uint_eq(f.h.aux, 1);
  ck_assert(f.h.ts == 0x1122334455667788ull);
  ck_assert(f.h.work_ns == 123456789);
  ck_assert_mem_eq(f.labels, t_labels, T_ROWS);
  ck_assert_mem_eq(f.cands, t_cands, T_ROWS);
  for (uint32_t i = 0; i < T_ROWS; i++) ck_assert_uint_eq(ffs_frame_id(&f, i), t_ids[i]);
  // payload bytes on the wire are the floats' bytes (host is little-endian)
  ck_assert_ptr_eq(f.payload, buf + n - sizeof t_payload);
  ck_assert_mem_eq(f.payload, t_payload, sizeof t_payload);
  float got[T_ROWS * T_COLS];
  ck_assert_int_eq(ffs_frame_copy_payload(got, &f), 0);
  ck_assert_mem_eq(got, t_payload, sizeof t_payload);
  // ids are little-endian on the wire
  const uint8_t id2[4] = {0xfe, 0xff, 0xff, 0xff};
  ck_assert_mem_eq(f.ids + 8, id2, 4);
}
END_TEST

START_TEST(test_slices) {
  // a shard's slice: shard, nshards and col0 travel, and limits apply to
  // the slice's end column
  uint8_t buf[256];
  const float v[2 * 3] = {1, 2, 3, 4, 5, 6};
  ffs_frame_hdr_t h = {.kind = FFS_FRAME_DATA, .seq = 9, .rows = 2, .cols = 3,
                       .shard = 2, .nshards = 3, .col0 = 5};
  size_t n = ffs_frame_encode(buf, sizeof buf, &h, NULL, v);
  ck_assert_uint_gt(n, 0);
  ffs_frame_t f;
  char err[256];
  ffs_frame_limits_t fits = {.cols = 8, .max_cols = 8}, over = {.cols = 7};
  ck_assert_msg(t_decode_bytes(&f, buf, n, &fits, err, sizeof err) == 0, "%s", err);
  ck_assert_uint_eq(f.h.shard, 2);
  ck_assert_uint_eq(f.h.nshards, 3);
  ck_assert_uint_eq(f.h.col0, 5);
  ck_assert_int_eq(t_decode_bytes(&f, buf, n, &over, err, sizeof err), -1);
  ck_assert_msg(strstr(err, "data frame with 8 cols (slice end), expected at most 7"), "%s", err);
  // a whole frame sends no slice keys and decodes with nshards 0
  h.nshards = 0, h.shard = 0, h.col0 = 0;
  n = ffs_frame_encode(buf, sizeof buf, &h, NULL, v);
  ck_assert_int_eq(t_decode_bytes(&f, buf, n, NULL, err, sizeof err), 0);
  ck_assert_uint_eq(f.h.nshards, 0);
  // inconsistent slice keys are refused
  t_msg_t m;
  t_hdr(&m, 2, FFS_PROTO_VERSION, FFS_FRAME_DATA, 1, 1);
  t_kv(&m, "shard", 3);
  t_kv(&m, "nshards", 3);
  t_floats(&m, 1);
  t_expect_fail(&m, NULL, "shard 3, col0 0 with nshards 3");
  t_end(&m);
  t_hdr(&m, 1, FFS_PROTO_VERSION, FFS_FRAME_DATA, 1, 1);
  t_kv(&m, "nshards", 17);
  t_floats(&m, 1);
  t_expect_fail(&m, NULL, "nshards 17, expected at most 16");
  t_end(&m);
  t_hdr(&m, 1, FFS_PROTO_VERSION, FFS_FRAME_DATA, 1, 1);
  t_kv(&m, "col0", 4); // a whole frame starts at column 0
  t_floats(&m, 1);
  t_expect_fail(&m, NULL, "shard 0, col0 4 with nshards 0");
  t_end(&m);
}
END_TEST

START_TEST(test_round_trip_unaligned) {
  // the payload and ids may sit at any address: decode from an odd offset
  uint8_t store[600];
  uint8_t *buf = store + 3;
  size_t n = t_encode_full(buf, sizeof store - 3);
  ck_assert_uint_gt(n, 0);
  ffs_frame_t f;
  ck_assert_int_eq(ffs_frame_decode(&f, buf, n, NULL, NULL, 0), 0);
  float got[T_ROWS * T_COLS];
  ck_assert_int_eq(ffs_frame_copy_payload(got, &f), 0);
  ck_assert_mem_eq(got, t_payload, sizeof t_payload);
  ck_assert_uint_eq(ffs_frame_id(&f, 1), 59999);
}
END_TEST

START_TEST(test_round_trip_no_arrays) {
  ffs_frame_hdr_t h = {.kind = FFS_FRAME_DATA, .phase = FFS_PHASE_EVAL, .rows = 2, .cols = 3};
  float x[6] = {1, 2, 3, 4, 5, 6};
  uint8_t buf[256];
  size_t n = ffs_frame_encode(buf, sizeof buf, &h, NULL, x);
  ck_assert_uint_gt(n, 0);
  ffs_frame_t f;
  ck_assert_int_eq(t_decode_bytes(&f, buf, n, NULL, NULL, 0), 0);
  ck_assert_uint_eq(f.h.kind, FFS_FRAME_DATA);
  ck_assert_uint_eq(f.h.phase, FFS_PHASE_EVAL);
  ck_assert_ptr_null(f.roles); // no roles: every row neutral
  ck_assert_uint_eq(f.n_role[FFS_ROW_NEUTRAL], 2);
  ck_assert_uint_eq(f.n_role[FFS_ROW_POSITIVE] + f.n_role[FFS_ROW_CANDIDATE], 0);
  ck_assert_ptr_null(f.labels);
  ck_assert_ptr_null(f.cands);
  ck_assert_ptr_null(f.ids);
  ck_assert_uint_eq(ffs_frame_id(&f, 1), 0);
  ck_assert_mem_eq(f.payload, x, sizeof x);
}
END_TEST

START_TEST(test_defaults) {
  // only the required keys: everything else reads as 0 / absent
  t_msg_t m;
  t_hdr(&m, 0, FFS_PROTO_VERSION, FFS_FRAME_FEEDBACK, 1, 2);
  t_floats(&m, 2);
  ffs_frame_t f;
  char err[256];
  ck_assert_msg(t_decode(&f, &m, NULL, err, sizeof err) == 0, "%s", err);
  ck_assert_uint_eq(f.h.kind, FFS_FRAME_FEEDBACK);
  ck_assert_uint_eq(f.h.phase, FFS_PHASE_TRAIN);
  ck_assert_uint_eq(f.n_role[FFS_ROW_NEUTRAL], 1);
  ck_assert(f.h.seq == 0);
  ck_assert_uint_eq(f.h.epoch + f.h.tick + f.h.stage + f.h.aux, 0);
  ck_assert_ptr_null(f.labels);
  ck_assert_ptr_null(f.ids);
  ck_assert_ptr_nonnull(f.payload);
  t_end(&m);
}
END_TEST

START_TEST(test_mark_frame) {
  ffs_frame_hdr_t h = {.kind = FFS_FRAME_MARK, .seq = 99, .epoch = 3};
  uint8_t buf[256];
  size_t n = ffs_frame_encode(buf, sizeof buf, &h, NULL, NULL);
  ck_assert_uint_gt(n, 0);
  ffs_frame_t f;
  ck_assert_int_eq(t_decode_bytes(&f, buf, n, NULL, NULL, 0), 0);
  ck_assert_uint_eq(f.h.kind, FFS_FRAME_MARK);
  ck_assert_uint_eq(f.h.rows, 0);
  ck_assert_uint_eq(f.h.epoch, 3);
  ck_assert_ptr_null(f.payload);
  ck_assert_int_eq(ffs_frame_copy_payload(NULL, &f), 0);
  // a mark frame that carries rows is rejected
  t_msg_t m;
  t_hdr(&m, 0, FFS_PROTO_VERSION, FFS_FRAME_MARK, 1, 1);
  t_floats(&m, 1);
  t_expect_fail(&m, NULL, "mark frame with 1 rows");
  t_end(&m);
}
END_TEST

START_TEST(test_kind_str) {
  ck_assert_str_eq(ffs_frame_kind_str(FFS_FRAME_DATA), "data");
  ck_assert_str_eq(ffs_frame_kind_str(FFS_FRAME_REPORT), "report");
  ck_assert_str_eq(ffs_frame_kind_str(FFS_FRAME_FEEDBACK), "feedback");
  ck_assert_str_eq(ffs_frame_kind_str(FFS_FRAME_MARK), "mark");
  ck_assert_str_eq(ffs_frame_kind_str(FFS_FRAME_PARTIAL), "partial");
  ck_assert_str_eq(ffs_frame_kind_str(0), "?");
  ck_assert_str_eq(ffs_frame_kind_str(6), "?");
  ck_assert_str_eq(ffs_frame_kind_str(-1), "?");
}
END_TEST

START_TEST(test_truncations) {
  // no proper prefix of a valid frame is a valid frame: either the header is
  // cut (its map declares more entries than follow) or the payload is short
  uint8_t buf[512];
  size_t n = t_encode_full(buf, sizeof buf);
  ck_assert_uint_gt(n, 0);
  for (size_t len = 0; len < n; len++) {
    ffs_frame_t f;
    char err[256];
    int rc = t_decode_bytes(&f, buf, len, NULL, err, sizeof err);
    ck_assert_msg(rc == -1, "prefix of %zu of %zu bytes decoded", len, n);
  }
  // the same with no error buffer
  for (size_t len = 0; len < n; len++) {
    ffs_frame_t f;
    ck_assert_int_eq(t_decode_bytes(&f, buf, len, NULL, NULL, 0), -1);
  }
  // a whole header followed by a short payload names both sizes
  ffs_frame_t f;
  char err[256];
  ck_assert_int_eq(t_decode_bytes(&f, buf, n - 1, NULL, err, sizeof err), -1);
  ck_assert_msg(strstr(err, "payload holds 59 bytes") && strstr(err, "3x5 floats = 60 bytes"),
                "%s", err);
  // a tiny error buffer is filled, truncated and terminated
  char small[8];
  ck_assert_int_eq(t_decode_bytes(&f, buf, n - 1, NULL, small, sizeof small), -1);
  ck_assert_uint_eq(strlen(small), sizeof small - 1);
}
END_TEST

START_TEST(test_encode_small_buffer) {
  uint8_t buf[512];
  size_t n = t_encode_full(buf, sizeof buf);
  ck_assert_uint_gt(n, 0);
  for (size_t cap = 0; cap < n; cap++) {
    uint8_t *small = malloc(cap ? cap : 1); // exact size: ASan sees any overflow
    ck_assert_uint_eq(t_encode_full(small, cap), 0);
    free(small);
  }
  uint8_t *exact = malloc(n);
  ck_assert_uint_eq(t_encode_full(exact, n), n);
  ck_assert_mem_eq(exact, buf, n);
  free(exact);
}
END_TEST

START_TEST(test_encoded_max) {
  // the largest header values the encoder can be asked to write
  enum { R = 4, C = 2 };
  ffs_frame_hdr_t h = {.kind = 255, .phase = 255, .seq = UINT64_MAX,
                       .epoch = UINT32_MAX, .tick = UINT32_MAX, .stage = UINT32_MAX,
                       .rows = R, .cols = C, .aux = UINT32_MAX, .ts = UINT64_MAX,
                       .work_ns = UINT64_MAX, .damp = 1e30f, .nshards = 16, .shard = 15,
                       .col0 = UINT32_MAX};
  uint8_t lab[R] = {0};
  uint32_t ids[R] = {0};
  float x[R * C] = {0};
  size_t max = ffs_frame_encoded_max(R, C);
  uint8_t *buf = malloc(max);
  ffs_frame_rows_t r = {lab, lab, lab, ids};
  size_t n = ffs_frame_encode(buf, max, &h, &r, x);
  ck_assert_uint_gt(n, 0);
  ck_assert_uint_le(n, max);
  free(buf);
  ck_assert_uint_ge(ffs_frame_encoded_max(0, 0), 131);
  // saturates instead of wrapping around
  ck_assert_uint_ge(ffs_frame_encoded_max(UINT32_MAX, UINT32_MAX), (size_t)UINT32_MAX * 4);
}
END_TEST

START_TEST(test_copy_payload_nonfinite) {
  const float bad[] = {NAN, -NAN, INFINITY, -INFINITY};
  for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
    float x[4] = {1, 2, 3, 4};
    x[k] = bad[k]; // a different position each time
    ffs_frame_hdr_t h = {.kind = FFS_FRAME_DATA, .rows = 2, .cols = 2};
    uint8_t buf[256];
    size_t n = ffs_frame_encode(buf, sizeof buf, &h, NULL, x);
    ffs_frame_t f;
    ck_assert_int_eq(ffs_frame_decode(&f, buf, n, NULL, NULL, 0), 0); // decode does not judge
    float got[4];
    ck_assert_msg(ffs_frame_copy_payload(got, &f) == -1, "value %zu not rejected", k);
  }
  // a signalling NaN bit pattern and the largest finite float
  uint32_t snan = 0x7f800001u, big = 0x7f7fffffu;
  float x[2];
  memcpy(&x[0], &big, 4);
  memcpy(&x[1], &snan, 4);
  ffs_frame_hdr_t h = {.kind = FFS_FRAME_DATA, .rows = 1, .cols = 1};
  uint8_t buf[256];
  ffs_frame_t f;
  float got[1];
  size_t n = ffs_frame_encode(buf, sizeof buf, &h, NULL, &x[0]);
  ck_assert_int_eq(ffs_frame_decode(&f, buf, n, NULL, NULL, 0), 0);
  ck_assert_int_eq(ffs_frame_copy_payload(got, &f), 0);
  ck_assert(got[0] == FLT_MAX);
  n = ffs_frame_encode(buf, sizeof buf, &h, NULL, &x[1]);
  ck_assert_int_eq(ffs_frame_decode(&f, buf, n, NULL, NULL, 0), 0);
  ck_assert_int_eq(ffs_frame_copy_payload(got, &f), -1);
}
END_TEST

// ffs_frame_payload_rms is ffs_rms_normalize of the copied payload, bit for
// bit, from any address, for rows longer and shorter than its 16-wide sums;
// a NaN or Inf anywhere is refused.
START_TEST(test_payload_rms) {
  enum { R = 3, C = 37 };
  static float x[R * C], want[R * C], got[R * C];
  for (int i = 0; i < R * C; i++) x[i] = (float)((i * 7919) % 201 - 100) * 0.37f;
  for (int j = 0; j < C; j++) x[2 * C + j] = 0.0f; // an all-zero row: eps keeps it finite
  ffs_rms_normalize(want, x, R, C, 1e-8f);
  static uint8_t store[R * C * 4 + 512];
  for (int off = 0; off < 4; off++) {
    ffs_frame_hdr_t h = {.kind = FFS_FRAME_DATA, .rows = R, .cols = C};
    size_t n = ffs_frame_encode(store + off, sizeof store - 4, &h, NULL, x);
    ck_assert_uint_gt(n, 0);
    ffs_frame_t f;
    ck_assert_int_eq(ffs_frame_decode(&f, store + off, n, NULL, NULL, 0), 0);
    memset(got, 0xff, sizeof got);
    ck_assert_int_eq(ffs_frame_payload_rms(got, &f, 1e-8f), 0);
    ck_assert_mem_eq(got, want, sizeof want);
  }
  for (int k = 0; k < 2; k++) { // in the 16-wide part, and in the tail
    float y[R * C];
    memcpy(y, x, sizeof y);
    y[C + (k ? C - 1 : 5)] = k ? INFINITY : NAN;
    ffs_frame_hdr_t h = {.kind = FFS_FRAME_DATA, .rows = R, .cols = C};
    size_t n = ffs_frame_encode(store, sizeof store, &h, NULL, y);
    ffs_frame_t f;
    ck_assert_int_eq(ffs_frame_decode(&f, store, n, NULL, NULL, 0), 0);
    ck_assert_int_eq(ffs_frame_payload_rms(got, &f, 1e-8f), -1);
  }
}
END_TEST

START_TEST(test_unknown_keys_skipped) {
  t_msg_t m;
  t_hdr(&m, 21, FFS_PROTO_VERSION, FFS_FRAME_DATA, 2, 2);
  msgpack_packer *pk = &m.pk;
  t_key(&m, "nil"), msgpack_pack_nil(pk);
  t_key(&m, "t"), msgpack_pack_true(pk);
  t_key(&m, "f"), msgpack_pack_false(pk);
  t_key(&m, "nfix"), msgpack_pack_int8(pk, -5);
  t_key(&m, "i8"), t_raw(&m, "\xd0\x80", 2);
  t_key(&m, "i16"), t_raw(&m, "\xd1\x80\x00", 3);
  t_key(&m, "i32"), t_raw(&m, "\xd2\x80\x00\x00\x00", 5);
  t_key(&m, "i64"), t_raw(&m, "\xd3\x80\x00\x00\x00\x00\x00\x00\x00", 9);
  t_key(&m, "u64"), msgpack_pack_uint64(pk, UINT64_MAX);
  t_key(&m, "f32"), msgpack_pack_float(pk, 1.5f);
  t_key(&m, "f64"), msgpack_pack_double(pk, -2.5);
  t_key(&m, "s8"), t_raw(&m, "\xd9\x03" "abc", 5);
  t_key(&m, "s16"), t_raw(&m, "\xda\x00\x02" "ab", 5);
  t_key(&m, "s32"), t_raw(&m, "\xdb\x00\x00\x00\x01" "a", 6);
  t_key(&m, "b16"), t_raw(&m, "\xc5\x00\x01\x00", 4);
  t_key(&m, "b32"), t_raw(&m, "\xc6\x00\x00\x00\x00", 5);
  t_key(&m, "a16"), t_raw(&m, "\xdc\x00\x02\x01\xc0", 5);
  t_key(&m, "m32"), t_raw(&m, "\xdf\x00\x00\x00\x01\xa1k\x02", 8);
  // nested up to the depth limit: [[{"k": [1, "x"]}]]
  t_key(&m, "nest"), t_raw(&m, "\x91\x91\x81\xa1k\x92\x01\xa1x", 9);
  // a key in str8 form, and a 16-byte key (the longest allowed)
  t_raw(&m, "\xd9\x02zz", 4), msgpack_pack_uint8(pk, 1);
  t_key(&m, "sixteen_bytes_ok"), msgpack_pack_str(pk, 0);
  // and the known keys after the unknown ones still count
  t_floats(&m, 4);
  ffs_frame_t f;
  char err[256];
  ck_assert_msg(t_decode(&f, &m, NULL, err, sizeof err) == 0, "%s", err);
  ck_assert_uint_eq(f.h.rows, 2);
  ck_assert_uint_eq(f.h.cols, 2);
  float got[4];
  ck_assert_int_eq(ffs_frame_copy_payload(got, &f), 0);
  ck_assert(got[3] == 1.5f);
  t_end(&m);
}
END_TEST

START_TEST(test_unknown_key_bad_types) {
  struct {
    const char *bytes;
    size_t n;
    const char *want;
  } cases[] = {
      {"\xc1", 1, "0xc1"},                                // never used
      {"\xd4\x01\x00", 3, "ext"},                         // fixext1
      {"\xc7\x01\x01\x00", 4, "ext"},                     // ext8
      {"\xd9\x05" "ab", 4, "\"x\": str declares 5 bytes"}, // str8 longer than the message
      {"\x92\x01", 2, "array of 2 entries"},              // array with a missing element
      {"\x91\x91\x91\x91\x91\x01", 6, "deeper than 4"},   // 5 nested arrays
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    t_msg_t m;
    t_hdr(&m, 1, FFS_PROTO_VERSION, FFS_FRAME_DATA, 0, 0);
    t_key(&m, "x");
    t_raw(&m, cases[i].bytes, cases[i].n);
    t_expect_fail(&m, NULL, cases[i].want);
    t_end(&m);
  }
  // 4 nested arrays are fine
  t_msg_t m;
  t_hdr(&m, 1, FFS_PROTO_VERSION, FFS_FRAME_DATA, 0, 0);
  t_key(&m, "x");
  t_raw(&m, "\x91\x91\x91\x91\x01", 5);
  t_expect_ok(&m, NULL);
  t_end(&m);
}
END_TEST

START_TEST(test_wrong_version) {
  t_msg_t m;
  t_hdr(&m, 0, 1, FFS_FRAME_DATA, 0, 0);
  t_expect_fail(&m, NULL, "protocol version 1, expected 2");
  t_end(&m);
  t_hdr(&m, 0, 0, FFS_FRAME_DATA, 0, 0);
  t_expect_fail(&m, NULL, "protocol version 0");
  t_end(&m);
  // "v" comes first, so a v3 frame is reported as such even when the rest
  // would not parse as v2
  t_hdr(&m, 1, 3, 99, 0, 0);
  t_key(&m, "rows");
  t_expect_fail(&m, NULL, "protocol version 3");
  t_end(&m);
}
END_TEST

// A frame with `roles` (rows bytes) after its 4 required keys.
static void t_roles_frame(t_msg_t *m, const uint8_t *roles, uint32_t n, uint32_t rows) {
  t_hdr(m, 1, FFS_PROTO_VERSION, FFS_FRAME_DATA, rows, 1);
  t_key(m, "roles");
  msgpack_pack_bin(&m->pk, n);
  msgpack_pack_bin_body(&m->pk, roles, n);
  t_floats(m, rows);
}

START_TEST(test_roles) {
  t_msg_t m;
  // a pair's positives, their negatives, then neutral rows: counted by run
  const uint8_t triple[6] = {0, 0, 1, 1, 2, 2};
  t_roles_frame(&m, triple, 6, 6);
  ffs_frame_t f;
  char err[256];
  ck_assert_msg(t_decode(&f, &m, NULL, err, sizeof err) == 0, "%s", err);
  ck_assert_uint_eq(f.n_role[FFS_ROW_POSITIVE], 2);
  ck_assert_uint_eq(f.n_role[FFS_ROW_NEGATIVE], 2);
  ck_assert_uint_eq(f.n_role[FFS_ROW_NEUTRAL], 2);
  ck_assert_uint_eq(f.n_role[FFS_ROW_CANDIDATE], 0);
  ck_assert_uint_eq(ffs_frame_role_start(&f, FFS_ROW_NEUTRAL), 4);
  ck_assert_uint_eq(ffs_frame_role_start(&f, FFS_ROW_CANDIDATE), 6);
  t_end(&m);
  // runs out of order: a positive row after a neutral one
  const uint8_t late[3] = {2, 0, 0};
  t_roles_frame(&m, late, 3, 3);
  t_expect_fail(&m, NULL, "roles: row 1 is positive after a neutral row");
  t_end(&m);
  // a role that does not exist
  const uint8_t bad[2] = {0, 4};
  t_roles_frame(&m, bad, 2, 2);
  t_expect_fail(&m, NULL, "roles: row 1 has role 4, expected 0..3");
  t_end(&m);
  // one byte per row
  t_roles_frame(&m, triple, 2, 3);
  t_expect_fail(&m, NULL, "roles holds 2 bytes, expected rows = 3");
  t_end(&m);
  // a str is not a bin
  t_hdr(&m, 1, FFS_PROTO_VERSION, FFS_FRAME_DATA, 0, 0);
  t_key(&m, "roles");
  msgpack_pack_str(&m.pk, 0);
  t_expect_fail(&m, NULL, "key \"roles\": value has type fixstr");
  t_end(&m);
  ck_assert_str_eq(ffs_frame_role_str(FFS_ROW_CANDIDATE), "candidate");
  ck_assert_str_eq(ffs_frame_role_str(7), "?");
}
END_TEST

START_TEST(test_missing_keys) {
  const char *names[] = {"v", "kind", "rows", "cols"};
  for (int skip = 0; skip < 4; skip++) {
    t_msg_t m;
    t_begin(&m, 3);
    const uint64_t vals[] = {FFS_PROTO_VERSION, FFS_FRAME_DATA, 0, 0};
    for (int k = 0; k < 4; k++)
      if (k != skip) t_kv(&m, names[k], vals[k]);
    char want[64];
    snprintf(want, sizeof want, "lacks required key \"%s\"", names[skip]);
    t_expect_fail(&m, NULL, want);
    t_end(&m);
  }
}
END_TEST

START_TEST(test_payload_mismatch) {
  t_msg_t m;
  t_hdr(&m, 0, FFS_PROTO_VERSION, FFS_FRAME_DATA, 2, 50);
  t_floats(&m, 99);
  t_expect_fail(&m, NULL, "payload holds 396 bytes, header declares 2x50 floats = 400 bytes");
  t_end(&m);
  t_hdr(&m, 0, FFS_PROTO_VERSION, FFS_FRAME_DATA, 2, 50);
  t_floats(&m, 101);
  t_expect_fail(&m, NULL, "payload holds 404 bytes");
  t_end(&m);
  t_hdr(&m, 0, FFS_PROTO_VERSION, FFS_FRAME_DATA, 2, 50);
  t_floats(&m, 100);
  t_raw(&m, "\x00", 1); // one stray byte
  t_expect_fail(&m, NULL, "payload holds 401 bytes");
  t_end(&m);
  t_hdr(&m, 0, FFS_PROTO_VERSION, FFS_FRAME_DATA, 0, 0);
  t_raw(&m, "\x00\x00\x00\x00", 4); // payload with rows = 0
  t_expect_fail(&m, NULL, "payload holds 4 bytes");
  t_end(&m);
}
END_TEST

START_TEST(test_non_map_top) {
  struct {
    const char *bytes;
    size_t n;
    const char *want;
  } cases[] = {
      {"", 0, "empty message"},
      {"\x91\x01", 2, "header has type fixarray"},
      {"\x01", 1, "header has type positive fixint"},
      {"\xa1v", 2, "header has type fixstr"},
      {"\xc0", 1, "header has type nil"},
      {"\xdc\x00\x01\x01", 4, "header has type array"},
      {"\xde\x00", 2, "header truncated"},
      {"\x81", 1, "header truncated"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    ffs_frame_t f;
    char err[256];
    ck_assert_int_eq(t_decode_bytes(&f, cases[i].bytes, cases[i].n, NULL, err, sizeof err), -1);
    ck_assert_msg(strstr(err, cases[i].want), "case %zu: \"%s\"", i, err);
  }
}
END_TEST

START_TEST(test_duplicate_key) {
  t_msg_t m;
  t_hdr(&m, 1, FFS_PROTO_VERSION, FFS_FRAME_DATA, 0, 0);
  t_kv(&m, "rows", 0);
  t_expect_fail(&m, NULL, "duplicate header key \"rows\"");
  t_end(&m);
  t_hdr(&m, 2, FFS_PROTO_VERSION, FFS_FRAME_DATA, 1, 1);
  t_key(&m, "labels"), t_raw(&m, "\xc4\x01\x00", 3);
  t_key(&m, "labels"), t_raw(&m, "\xc4\x01\x00", 3);
  t_floats(&m, 1);
  t_expect_fail(&m, NULL, "duplicate header key \"labels\"");
  t_end(&m);
  // unknown keys may repeat: they are skipped
  t_hdr(&m, 2, FFS_PROTO_VERSION, FFS_FRAME_DATA, 0, 0);
  t_kv(&m, "x", 1);
  t_kv(&m, "x", 2);
  t_expect_ok(&m, NULL);
  t_end(&m);
}
END_TEST

START_TEST(test_bad_values) {
  t_msg_t m;
  t_hdr(&m, 0, FFS_PROTO_VERSION, 0, 0, 0);
  t_expect_fail(&m, NULL, "kind 0, expected 1..5");
  t_end(&m);
  t_hdr(&m, 0, FFS_PROTO_VERSION, 6, 0, 0);
  t_expect_fail(&m, NULL, "kind 6, expected 1..5");
  t_end(&m);
  t_hdr(&m, 0, FFS_PROTO_VERSION, 300, 0, 0);
  t_expect_fail(&m, NULL, "\"kind\" = 300");
  t_end(&m);
  t_hdr(&m, 1, FFS_PROTO_VERSION, FFS_FRAME_DATA, 0, 0);
  t_kv(&m, "phase", 2);
  t_expect_fail(&m, NULL, "phase 2, expected 0 (train) or 1 (eval)");
  t_end(&m);
  t_hdr(&m, 1, FFS_PROTO_VERSION, FFS_FRAME_REPORT, 1, 2);
  t_kv(&m, "aux", 3);
  t_floats(&m, 2);
  t_expect_fail(&m, NULL, "aux 3 exceeds cols 2");
  t_end(&m);
  t_hdr(&m, 1, FFS_PROTO_VERSION, FFS_FRAME_DATA, 0, 0);
  t_kv(&m, "epoch", (uint64_t)UINT32_MAX + 1);
  t_expect_fail(&m, NULL, "\"epoch\" = 4294967296");
  t_end(&m);
  t_hdr(&m, 0, FFS_PROTO_VERSION, FFS_FRAME_DATA, (uint64_t)UINT32_MAX + 1, 0);
  t_expect_fail(&m, NULL, "\"rows\" = 4294967296");
  t_end(&m);
  // negative numbers, strings, floats and nil are not unsigned ints
  t_hdr(&m, 1, FFS_PROTO_VERSION, FFS_FRAME_DATA, 0, 0);
  t_key(&m, "tick"), msgpack_pack_int8(&m.pk, -1);
  t_expect_fail(&m, NULL, "\"tick\": value has type negative fixint");
  t_end(&m);
  t_hdr(&m, 1, FFS_PROTO_VERSION, FFS_FRAME_DATA, 0, 0);
  t_key(&m, "seq"), t_raw(&m, "\xd3\x00\x00\x00\x00\x00\x00\x00\x01", 9); // int64 1
  t_expect_fail(&m, NULL, "\"seq\": value has type int");
  t_end(&m);
  t_hdr(&m, 1, FFS_PROTO_VERSION, FFS_FRAME_DATA, 0, 0);
  t_key(&m, "stage"), msgpack_pack_double(&m.pk, 1.0);
  t_expect_fail(&m, NULL, "expected an unsigned int");
  t_end(&m);
  t_hdr(&m, 1, FFS_PROTO_VERSION, FFS_FRAME_DATA, 0, 0);
  t_key(&m, "aux"), msgpack_pack_nil(&m.pk);
  t_expect_fail(&m, NULL, "\"aux\": value has type nil");
  t_end(&m);
  // arrays must be bin (not str, not a msgpack array)
  t_hdr(&m, 1, FFS_PROTO_VERSION, FFS_FRAME_DATA, 1, 1);
  t_key(&m, "labels"), t_raw(&m, "\xa1\x03", 2);
  t_floats(&m, 1);
  t_expect_fail(&m, NULL, "\"labels\": value has type fixstr (0xa1), expected a bin");
  t_end(&m);
  t_hdr(&m, 1, FFS_PROTO_VERSION, FFS_FRAME_DATA, 1, 1);
  t_key(&m, "ids"), t_raw(&m, "\x91\x03", 2);
  t_floats(&m, 1);
  t_expect_fail(&m, NULL, "expected a bin");
  t_end(&m);
  // keys: str of at most 16 bytes
  t_hdr(&m, 1, FFS_PROTO_VERSION, FFS_FRAME_DATA, 0, 0);
  t_key(&m, "seventeen_bytes_x"), msgpack_pack_uint8(&m.pk, 0);
  t_expect_fail(&m, NULL, "key of 17 bytes, at most 16");
  t_end(&m);
  t_hdr(&m, 1, FFS_PROTO_VERSION, FFS_FRAME_DATA, 0, 0);
  msgpack_pack_uint8(&m.pk, 1), msgpack_pack_uint8(&m.pk, 0);
  t_expect_fail(&m, NULL, "key has type positive fixint");
  t_end(&m);
  t_hdr(&m, 1, FFS_PROTO_VERSION, FFS_FRAME_DATA, 0, 0);
  t_raw(&m, "\xda\x00\x01x\x00", 5); // str16 key
  t_expect_fail(&m, NULL, "key has type str (0xda)");
  t_end(&m);
}
END_TEST

// damp: a float on a dp_layer's FEEDBACK frame; written only when not 0;
// float64 and ints are read too; on another kind, negative or not finite it
// is refused, naming the key.
START_TEST(test_damp) {
  float x[2] = {1.0f, -2.0f};
  ffs_frame_hdr_t h = {.kind = FFS_FRAME_FEEDBACK, .seq = 9, .rows = 1, .cols = 2, .damp = 1.25f};
  uint8_t buf[256];
  size_t n = ffs_frame_encode(buf, sizeof buf, &h, NULL, x);
  ck_assert_uint_gt(n, 0);
  ffs_frame_t f;
  char err[256];
  ck_assert_msg(t_decode_bytes(&f, buf, n, NULL, err, sizeof err) == 0, "%s", err);
  ck_assert_float_eq(f.h.damp, 1.25f);
  h.damp = 0.0f; // absent: 0, and no key written
  size_t n0 = ffs_frame_encode(buf, sizeof buf, &h, NULL, x);
  ck_assert_uint_eq(n0, n - 10); // "damp" (5 bytes) and a float32 (5)
  ck_assert_int_eq(t_decode_bytes(&f, buf, n0, NULL, err, sizeof err), 0);
  ck_assert_float_eq(f.h.damp, 0.0f);
  t_msg_t m;
  t_hdr(&m, 1, FFS_PROTO_VERSION, FFS_FRAME_FEEDBACK, 1, 1);
  t_key(&m, "damp");
  msgpack_pack_double(&m.pk, 0.5);
  t_floats(&m, 1);
  ck_assert_int_eq(t_decode(&f, &m, NULL, err, sizeof err), 0);
  ck_assert_float_eq(f.h.damp, 0.5f);
  t_end(&m);
  t_hdr(&m, 1, FFS_PROTO_VERSION, FFS_FRAME_FEEDBACK, 1, 1);
  t_kv(&m, "damp", 3);
  t_floats(&m, 1);
  ck_assert_int_eq(t_decode(&f, &m, NULL, err, sizeof err), 0);
  ck_assert_float_eq(f.h.damp, 3.0f);
  t_end(&m);
  t_hdr(&m, 1, FFS_PROTO_VERSION, FFS_FRAME_DATA, 1, 1);
  t_key(&m, "damp");
  msgpack_pack_float(&m.pk, 1.0f);
  t_floats(&m, 1);
  t_expect_fail(&m, NULL, "damp 1 on a data frame");
  t_end(&m);
  t_hdr(&m, 1, FFS_PROTO_VERSION, FFS_FRAME_FEEDBACK, 1, 1);
  t_key(&m, "damp");
  msgpack_pack_float(&m.pk, -0.5f);
  t_floats(&m, 1);
  t_expect_fail(&m, NULL, "damp -0.5 on a feedback frame");
  t_end(&m);
  t_hdr(&m, 1, FFS_PROTO_VERSION, FFS_FRAME_FEEDBACK, 1, 1);
  t_key(&m, "damp");
  msgpack_pack_float(&m.pk, NAN);
  t_floats(&m, 1);
  t_expect_fail(&m, NULL, "key \"damp\" is not a finite number");
  t_end(&m);
  t_hdr(&m, 1, FFS_PROTO_VERSION, FFS_FRAME_FEEDBACK, 1, 1);
  t_key(&m, "damp");
  msgpack_pack_str(&m.pk, 1);
  msgpack_pack_str_body(&m.pk, "x", 1);
  t_floats(&m, 1);
  t_expect_fail(&m, NULL, "key \"damp\": value has type");
  t_end(&m);
  t_hdr(&m, 1, FFS_PROTO_VERSION, FFS_FRAME_FEEDBACK, 1, 1);
  t_key(&m, "damp");
  t_raw(&m, "\xca\x3f", 2); // a float32 cut short
  t_expect_fail(&m, NULL, "damp");
  t_end(&m);
}
END_TEST

START_TEST(test_array_lengths) {
  t_msg_t m;
  t_hdr(&m, 1, FFS_PROTO_VERSION, FFS_FRAME_DATA, 2, 1);
  t_key(&m, "labels"), t_raw(&m, "\xc4\x01\x05", 3);
  t_floats(&m, 2);
  t_expect_fail(&m, NULL, "labels holds 1 bytes, expected rows = 2");
  t_end(&m);
  t_hdr(&m, 1, FFS_PROTO_VERSION, FFS_FRAME_DATA, 2, 1);
  t_key(&m, "cands"), t_raw(&m, "\xc4\x03\x05\x05\x05", 5);
  t_floats(&m, 2);
  t_expect_fail(&m, NULL, "cands holds 3 bytes, expected rows = 2");
  t_end(&m);
  t_hdr(&m, 1, FFS_PROTO_VERSION, FFS_FRAME_DATA, 2, 1);
  t_key(&m, "ids"), t_raw(&m, "\xc4\x02\x05\x05", 4);
  t_floats(&m, 2);
  t_expect_fail(&m, NULL, "ids holds 2 bytes, expected 4 x 2 rows = 8");
  t_end(&m);
  // bin16 form accepted
  t_hdr(&m, 1, FFS_PROTO_VERSION, FFS_FRAME_DATA, 2, 1);
  t_key(&m, "ids"), t_raw(&m, "\xc5\x00\x08\x01\x00\x00\x00\x00\x01\x00\x00", 11);
  t_floats(&m, 2);
  ffs_frame_t f;
  char err[256];
  ck_assert_msg(t_decode(&f, &m, NULL, err, sizeof err) == 0, "%s", err);
  ck_assert_uint_eq(ffs_frame_id(&f, 0), 1);
  ck_assert_uint_eq(ffs_frame_id(&f, 1), 256);
  t_end(&m);
}
END_TEST

// ---- suite ----

static Suite *frame_suite(void) {
  Suite *s = suite_create("frame");
  TCase *core = tcase_create("core");
  tcase_add_test(core, test_round_trip);
  tcase_add_test(core, test_slices);
  tcase_add_test(core, test_round_trip_unaligned);
  tcase_add_test(core, test_round_trip_no_arrays);
  tcase_add_test(core, test_defaults);
  tcase_add_test(core, test_mark_frame);
  tcase_add_test(core, test_kind_str);
  tcase_add_test(core, test_truncations);
  tcase_add_test(core, test_encode_small_buffer);
  tcase_add_test(core, test_encoded_max);
  tcase_add_test(core, test_copy_payload_nonfinite);
  tcase_add_test(core, test_payload_rms);
  tcase_add_test(core, test_unknown_keys_skipped);
  tcase_add_test(core, test_unknown_key_bad_types);
  tcase_add_test(core, test_wrong_version);
  tcase_add_test(core, test_missing_keys);
  tcase_add_test(core, test_payload_mismatch);
  tcase_add_test(core, test_non_map_top);
  tcase_add_test(core, test_duplicate_key);
  tcase_add_test(core, test_bad_values);
  tcase_add_test(core, test_roles);
  tcase_add_test(core, test_array_lengths);
  tcase_add_test(core, test_damp);
  suite_add_tcase(s, core);
  return s;
}

int main(void) { return ffs_check_run(frame_suite()); }
