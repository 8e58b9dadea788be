// check_frame_limits: Check suite for proto/ffs_frame (the protocol v1 codec).
// "limits": receiver limits, hostile counts and sizes, and a fuzz loop.
// Hostile frames are built by hand with msgpack-c's packer so that they can
// say things our encoder never would; each decode reads an exact-size copy
// so that AddressSanitizer / valgrind see any read past the end.
#include "t_frame_util.h"

#include <time.h>

static double t_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// ---- limits ----

START_TEST(test_max_rows) {
  ffs_frame_limits_t lim = {.max_rows = 4};
  t_msg_t m;
  t_hdr(&m, 0, FFS_PROTO_VERSION, FFS_FRAME_DATA, 4, 1);
  t_floats(&m, 4);
  t_expect_ok(&m, &lim);
  t_end(&m);
  t_hdr(&m, 0, FFS_PROTO_VERSION, FFS_FRAME_DATA, 5, 1);
  t_floats(&m, 5);
  t_expect_ok(&m, NULL);
  t_expect_fail(&m, &lim, "data frame with 5 rows, at most 4 accepted");
  t_end(&m);
}
END_TEST

START_TEST(test_cols_exact) {
  ffs_frame_limits_t lim = {.cols = 3};
  t_msg_t m;
  t_hdr(&m, 0, FFS_PROTO_VERSION, FFS_FRAME_DATA, 1, 3);
  t_floats(&m, 3);
  t_expect_ok(&m, &lim);
  t_end(&m);
  t_hdr(&m, 0, FFS_PROTO_VERSION, FFS_FRAME_DATA, 1, 4);
  t_floats(&m, 4);
  t_expect_fail(&m, &lim, "data frame with 4 cols, expected 3");
  t_end(&m);
  t_hdr(&m, 0, FFS_PROTO_VERSION, FFS_FRAME_FEEDBACK, 1, 2);
  t_floats(&m, 2);
  t_expect_fail(&m, &lim, "feedback frame with 2 cols, expected 3");
  t_end(&m);
  // report and mark frames are not held to the data width
  t_hdr(&m, 0, FFS_PROTO_VERSION, FFS_FRAME_REPORT, 1, 2);
  t_floats(&m, 2);
  t_expect_ok(&m, &lim);
  t_end(&m);
  t_hdr(&m, 0, FFS_PROTO_VERSION, FFS_FRAME_MARK, 0, 0);
  t_expect_ok(&m, &lim);
  t_end(&m);
}
END_TEST

START_TEST(test_max_cols) {
  ffs_frame_limits_t lim = {.max_cols = 8};
  t_msg_t m;
  t_hdr(&m, 0, FFS_PROTO_VERSION, FFS_FRAME_REPORT, 1, 8);
  t_floats(&m, 8);
  t_expect_ok(&m, &lim);
  t_end(&m);
  t_hdr(&m, 0, FFS_PROTO_VERSION, FFS_FRAME_REPORT, 1, 9);
  t_floats(&m, 9);
  t_expect_fail(&m, &lim, "report frame with 9 cols, at most 8 accepted");
  t_end(&m);
}
END_TEST

START_TEST(test_huge_counts) {
  // each declares gigabytes or billions of entries in a few bytes; a decoder
  // that trusted the count would allocate, loop for minutes or read past the end
  struct {
    int hdr; // 1: after a valid v/kind/rows/cols header (as key "x" or raw)
    const char *bytes;
    size_t n;
    const char *want;
  } cases[] = {
      {0, "\xdf\xff\xff\xff\xff\xa1v\x01", 8, "4294967295 entries, at most 32"},
      {0, "\xde\xff\xff", 3, "65535 entries"},
      {0, "\xdf\x00\x00\x00\x20", 5, "header truncated"}, // 32 entries declared, none there
      {1, "\xa6labels\xc6\xff\xff\xff\xff\x00", 13, "\"labels\": bin declares 4294967295 bytes"},
      {1, "\xa3ids\xc6\xff\xff\xff\xf0", 9, "declares 4294967280 bytes"},
      {1, "\xa1x\xc6\xff\xff\xff\xff\x00\x00", 9, "declares 4294967295 bytes"},
      {1, "\xa1x\xdb\xff\xff\xff\xff\x00", 8, "\"x\": str declares 4294967295 bytes"},
      {1, "\xa1x\xdd\xff\xff\xff\xff\x01\x01", 9, "array of 4294967295 entries"},
      {1, "\xa1x\xdf\xff\xff\xff\xff\x01\x01", 9, "map of 4294967295 entries"},
      {1, "\xa1x\x92\xdd\xff\xff\xff\xff\x01", 9, "array of 4294967295 entries"},
      {1, "\xa1x\xdc\xff\xff\xc0", 6, "array of 65535 entries"},
      {1, "\xd9\xff", 2, "key of 255 bytes"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    t_msg_t m;
    if (cases[i].hdr) t_hdr(&m, 1, FFS_PROTO_VERSION, FFS_FRAME_DATA, 0, 0);
    else t_init(&m); // raw bytes only
    t_raw(&m, cases[i].bytes, cases[i].n);
    double t0 = t_now();
    t_expect_fail(&m, NULL, cases[i].want);
    ck_assert_msg(t_now() - t0 < 0.5, "case %zu took %.3f s", i, t_now() - t0);
    t_end(&m);
  }
}
END_TEST

START_TEST(test_skip_budget) {
  // an unknown array of 1000 nils is skipped; one of 2000 exceeds the bound
  // on objects a frame may make the decoder walk
  for (int n = 1000; n <= 2000; n += 1000) {
    t_msg_t m;
    t_hdr(&m, 1, FFS_PROTO_VERSION, FFS_FRAME_DATA, 0, 0);
    t_key(&m, "x");
    msgpack_pack_array(&m.pk, (size_t)n);
    for (int i = 0; i < n; i++) msgpack_pack_nil(&m.pk);
    if (n == 1000) t_expect_ok(&m, NULL);
    else t_expect_fail(&m, NULL, "more than 1024 objects");
    t_end(&m);
  }
}
END_TEST

START_TEST(test_rows_cols_overflow) {
  t_msg_t m;
  t_hdr(&m, 0, FFS_PROTO_VERSION, FFS_FRAME_DATA, UINT32_MAX, UINT32_MAX);
  t_floats(&m, 4);
  t_expect_fail(&m, NULL, "overflows");
  t_end(&m);
  // large but representable: the byte count is computed in 64 bits
  t_hdr(&m, 0, FFS_PROTO_VERSION, FFS_FRAME_DATA, UINT32_MAX, 4);
  t_floats(&m, 4);
  t_expect_fail(&m, NULL, "4294967295x4 floats = 68719476720 bytes");
  t_end(&m);
  t_hdr(&m, 0, FFS_PROTO_VERSION, FFS_FRAME_DATA, 0x40000000u, 4); // x16 = 2^34, not 0 mod 2^32
  t_expect_fail(&m, NULL, "payload holds 0 bytes");
  t_end(&m);
}
END_TEST

// xorshift64*: a fixed-seed generator, so a failing case can be replayed
static uint64_t t_rand(uint64_t *s) {
  *s ^= *s >> 12;
  *s ^= *s << 25;
  *s ^= *s >> 27;
  return *s * 0x2545f4914f6cdd1dull;
}

START_TEST(test_fuzz) {
  enum { CAP = 1024, ITERS = 200000 };
  // seeds: a full frame, a mark, a frame with unknown keys
  uint8_t seeds[3][CAP];
  size_t seed_len[3];
  seed_len[0] = t_encode_full(seeds[0], CAP);
  ffs_frame_hdr_t mark = {.kind = FFS_FRAME_MARK, .seq = 1000};
  seed_len[1] = ffs_frame_encode(seeds[1], CAP, &mark, NULL, NULL);
  t_msg_t m;
  t_hdr(&m, 2, FFS_PROTO_VERSION, FFS_FRAME_DATA, 2, 2);
  t_key(&m, "x"), t_raw(&m, "\x92\x81\xa1k\xcb\x00\x00\x00\x00\x00\x00\x00\x00\xa2hi", 16);
  t_key(&m, "labels"), t_raw(&m, "\xc4\x02\x01\x02", 4);
  t_floats(&m, 4);
  memcpy(seeds[2], m.sb.data, m.sb.size);
  seed_len[2] = m.sb.size;
  t_end(&m);
  for (int i = 0; i < 3; i++) ck_assert_uint_gt(seed_len[i], 0);

  static const uint8_t special[] = {0x00, 0x01, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf,
                                    0xc0, 0xc1, 0xc4, 0xc5, 0xc6, 0xca, 0xcb, 0xcc, 0xcd,
                                    0xce, 0xcf, 0xd0, 0xd3, 0xd9, 0xda, 0xdb, 0xdc, 0xdd,
                                    0xde, 0xdf, 0xe0, 0xff};
  uint8_t *arena = malloc(CAP); // data sits at its end: reads past it hit ASan's redzone
  uint8_t work[CAP];
  uint64_t s = 0x9e3779b97f4a7c15ull;
  long ok = 0;
  for (long it = 0; it < ITERS; it++) {
    size_t len;
    uint64_t mode = t_rand(&s) % 4;
    if (mode == 0) { // random bytes, usually starting like a map
      len = t_rand(&s) % 96;
      for (size_t i = 0; i < len; i++) work[i] = (uint8_t)t_rand(&s);
      if (len && t_rand(&s) % 2) work[0] = special[t_rand(&s) % sizeof special];
    } else { // a mutated seed
      int k = (int)(t_rand(&s) % 3);
      len = seed_len[k];
      memcpy(work, seeds[k], len);
      int edits = 1 + (int)(t_rand(&s) % 4);
      for (int e = 0; e < edits && len; e++) {
        size_t at = t_rand(&s) % len;
        switch (t_rand(&s) % 5) {
        case 0: work[at] = (uint8_t)t_rand(&s); break;
        case 1: work[at] = special[t_rand(&s) % sizeof special]; break;
        case 2: work[at] ^= (uint8_t)(1u << (t_rand(&s) % 8)); break;
        case 3: len = at; break; // truncate
        case 4: // grow by up to 8 random bytes
          for (int g = (int)(t_rand(&s) % 8); g >= 0 && len < CAP; g--)
            work[len++] = (uint8_t)t_rand(&s);
          break;
        }
      }
    }
    uint8_t *buf = arena + CAP - len;
    memcpy(buf, work, len);
    ffs_frame_t f;
    char err[128];
    if (ffs_frame_decode(&f, buf, len, NULL, err, sizeof err) == 0) {
      ok++;
      size_t floats = (size_t)f.h.rows * f.h.cols;
      const uint8_t *end = f.payload ? f.payload + floats * 4 : buf + len;
      ck_assert_ptr_eq(end, buf + len);
      ck_assert(f.h.kind >= 1 && f.h.kind <= FFS_FRAME_PARTIAL && f.h.phase <= FFS_PHASE_EVAL);
      uint64_t counted = 0; // every row has one role, in runs
      for (int k = 0; k < FFS_N_ROW_ROLES; k++) counted += f.n_role[k];
      ck_assert_uint_eq(counted, f.h.rows);
      for (uint32_t r = 1; f.roles && r < f.h.rows; r++) ck_assert(f.roles[r] >= f.roles[r - 1]);
      ck_assert(f.h.nshards <= FFS_FRAME_MAX_SHARDS);
      ck_assert(f.h.nshards > 1 ? f.h.shard < f.h.nshards : f.h.shard == 0 && f.h.col0 == 0);
      ck_assert_uint_le(f.h.aux, f.h.cols);
      float dst[CAP / 4];
      ffs_frame_copy_payload(dst, &f);
      for (uint32_t r = 0; r < f.h.rows && f.ids; r++) (void)ffs_frame_id(&f, r);
    } else {
      ck_assert(err[0] && strlen(err) < sizeof err);
    }
  }
  free(arena);
  // the loop must reach the end of the decoder, not only its first checks
  ck_assert_int_gt(ok, 1000);
  ck_assert_int_lt(ok, ITERS / 2);
}
END_TEST

// ---- suite ----

static Suite *frame_limits_suite(void) {
  Suite *s = suite_create("frame_limits");
  TCase *limits = tcase_create("limits");
  tcase_set_timeout(limits, 120); // the fuzz loop under valgrind
  tcase_add_test(limits, test_max_rows);
  tcase_add_test(limits, test_cols_exact);
  tcase_add_test(limits, test_max_cols);
  tcase_add_test(limits, test_huge_counts);
  tcase_add_test(limits, test_skip_budget);
  tcase_add_test(limits, test_rows_cols_overflow);
  tcase_add_test(limits, test_fuzz);
  suite_add_tcase(s, limits);
  return s;
}

int main(void) { return ffs_check_run(frame_limits_suite()); }
