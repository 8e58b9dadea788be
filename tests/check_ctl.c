// check_ctl: Check suite for common/ffs_ctl (the control messages).
// "core": a round trip of every message type, the rounding figures travel
// with, the text form, unknown keys skipped.
// "limits": truncated, garbage, ill-typed and out-of-range messages refused
// with a reason. Hostile messages are built by hand with msgpack-c's packer;
// each decode reads an exact-size copy so that ASan sees a read past the end.
#include "ffs_ctl.h"

#include "ffs_check.h"
#include <msgpack.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

// ---- helpers ----

// A sample of every message type, every field set to something not zero.
static ffs_ctl_msg_t t_sample(ffs_ctl_type_t type) {
  ffs_ctl_msg_t m;
  memset(&m, 0, sizeof m);
  m.type = type;
  switch (type) {
  case FFS_CTL_READY: m.ready.core = 3, m.ready.pid = 4242, strcpy(m.ready.blas, "SkylakeX"); break;
  case FFS_CTL_STATS:
    m.stats.frames = 1ULL << 40, m.stats.bad = 7, m.stats.samples = 60000, m.stats.fbr = 1;
    m.stats.fbs = 2, m.stats.fbd = 3, m.stats.tds = 4, m.stats.tdk = 5, m.stats.shm = 6;
    m.stats.busy = 1.25, m.stats.blocked = 0.5, m.stats.cpu = 1.125, m.stats.wall = 10.0625;
    m.stats.gpos = 12.5, m.stats.gneg = -3.25, m.stats.l50 = 100.5, m.stats.l99 = 900.5;
    m.stats.h50 = 20.5, m.stats.ln = 100, m.stats.e50 = 200.5, m.stats.e99 = 950.5;
    m.stats.eh50 = 30.5, m.stats.en = 200;
    break;
  case FFS_CTL_SENT: m.sent.epoch = 4, m.sent.mode = 1, m.sent.n = 10000; break;
  case FFS_CTL_TRAINED: m.trained.epoch = 2147483647; break;
  case FFS_CTL_RESULT:
    m.result.epoch = 13, m.result.n_energy = 10000, m.result.n_softmax = 9999;
    m.result.energy = 0.0189, m.result.softmax = -1.0, m.result.n_layers = 3;
    for (int i = 0; i < 3; i++) {
      snprintf(m.result.layers[i].name, sizeof m.result.layers[i].name, "l%d", i + 1);
      m.result.layers[i].energy = 0.25 * i, m.result.layers[i].softmax = i ? 0.5 : -1.0;
    }
    break;
  case FFS_CTL_ERROR: strcpy(m.error.text, "data/train: truncated (expected 47040016 bytes)"); break;
  case FFS_CTL_EPOCH: m.phase.epoch = 0, m.phase.mode = 0; break;
  case FFS_CTL_MARK: m.phase.epoch = 5, m.phase.mode = 1; break;
  case FFS_CTL_LOST: m.lost.stage = 2, m.lost.incarnation = 3; break;
  default: break; // BYE, CKPT, STOP: no fields
  }
  return m;
}

// Decodes an exact-size heap copy of buf[0..len); returns ffs_ctl_decode's result.
static int t_decode(ffs_ctl_msg_t *out, const void *buf, size_t len, char *why, size_t whylen) {
  uint8_t *copy = malloc(len ? len : 1);
  ck_assert_ptr_nonnull(copy);
  if (len) memcpy(copy, buf, len);
  why[0] = 0;
  int rc = ffs_ctl_decode(out, copy, len, why, whylen);
  free(copy);
  return rc;
}

typedef struct {
  msgpack_sbuffer sb;
  msgpack_packer pk;
} t_msg_t;

static void t_begin(t_msg_t *m, uint32_t n_entries, const char *type) {
  msgpack_sbuffer_init(&m->sb);
  msgpack_packer_init(&m->pk, &m->sb, msgpack_sbuffer_write);
  msgpack_pack_map(&m->pk, n_entries);
  if (!type) return;
  msgpack_pack_str_with_body(&m->pk, "type", 4);
  msgpack_pack_str_with_body(&m->pk, type, strlen(type));
}

static void t_str(t_msg_t *m, const char *s) { msgpack_pack_str_with_body(&m->pk, s, strlen(s)); }

// Expects the hand-built message refused, with a reason that contains want.
static void t_refused(t_msg_t *m, const char *want) {
  ffs_ctl_msg_t out;
  char why[256];
  ck_assert_int_eq(t_decode(&out, m->sb.data, m->sb.size, why, sizeof why), -1);
  ck_assert_msg(strstr(why, want), "reason '%s' does not say '%s'", why, want);
  msgpack_sbuffer_destroy(&m->sb);
}

// ---- core ----

START_TEST(test_round_trip_every_type) {
  for (int type = 0; type < FFS_CTL_N_TYPES; type++) {
    ffs_ctl_msg_t m = t_sample((ffs_ctl_type_t)type), out;
    uint8_t buf[FFS_CTL_MSG_MAX];
    char why[256];
    size_t len = ffs_ctl_encode(buf, sizeof buf, &m);
    ck_assert_msg(len > 0, "%s does not encode", ffs_ctl_type_str(type));
    ck_assert_msg(t_decode(&out, buf, len, why, sizeof why) == 0, "%s: %s",
                  ffs_ctl_type_str(type), why);
    ck_assert_int_eq(out.type, type);
    ck_assert_msg(!memcmp(&out, &m, sizeof m), "%s differs after a round trip",
                  ffs_ctl_type_str(type));
  }
}
END_TEST

START_TEST(test_figures_travel_rounded) {
  // the launcher writes what the text protocol carried: busy %.4f, goodness
  // %.4g, latency %.1f, test errors %.6f
  ffs_ctl_msg_t m = t_sample(FFS_CTL_STATS), out;
  m.stats.busy = 0.123456, m.stats.gpos = 1234.5678, m.stats.l50 = 12.34;
  uint8_t buf[1024];
  char why[256];
  size_t len = ffs_ctl_encode(buf, sizeof buf, &m);
  ck_assert_int_eq(t_decode(&out, buf, len, why, sizeof why), 0);
  ck_assert_double_eq(out.stats.busy, 0.1235);
  ck_assert_double_eq(out.stats.gpos, 1235.0);
  ck_assert_double_eq(out.stats.l50, 12.3);
  m = t_sample(FFS_CTL_RESULT);
  m.result.energy = 0.0123456789, m.result.layers[1].softmax = 0.98765432;
  len = ffs_ctl_encode(buf, sizeof buf, &m);
  ck_assert_int_eq(t_decode(&out, buf, len, why, sizeof why), 0);
  ck_assert_double_eq(out.result.energy, 0.012346);
  ck_assert_double_eq(out.result.layers[1].softmax, 0.987654);
  ck_assert_double_eq(out.result.softmax, -1.0);
}
END_TEST

START_TEST(test_text_form) {
  ffs_ctl_msg_t m = t_sample(FFS_CTL_MARK);
  char s[256];
  ck_assert_str_eq(ffs_ctl_str(&m, s, sizeof s), "MARK epoch=5 mode=eval");
  m = t_sample(FFS_CTL_STOP);
  ck_assert_str_eq(ffs_ctl_str(&m, s, sizeof s), "STOP");
  m = t_sample(FFS_CTL_RESULT);
  ck_assert_ptr_nonnull(strstr(ffs_ctl_str(&m, s, sizeof s), " layer=l2:0.25:0.5"));
  char tiny[8];
  ck_assert_str_eq(ffs_ctl_str(&m, tiny, sizeof tiny), "RESULT "); // cut, still a string
  ck_assert_str_eq(ffs_ctl_type_str(FFS_CTL_N_TYPES), "?");
}
END_TEST

START_TEST(test_unknown_keys_ignored) {
  t_msg_t m;
  t_begin(&m, 6, "EPOCH");
  t_str(&m, "future"), msgpack_pack_array(&m.pk, 2), msgpack_pack_nil(&m.pk);
  msgpack_pack_map(&m.pk, 1), t_str(&m, "a"), msgpack_pack_bin_with_body(&m.pk, "xy", 2);
  t_str(&m, "epoch"), msgpack_pack_int(&m.pk, 7);
  t_str(&m, "note"), t_str(&m, "a newer launcher's key");
  t_str(&m, "mode"), t_str(&m, "eval");
  t_str(&m, "n"), msgpack_pack_double(&m.pk, 1.5); // SENT's key, not EPOCH's
  ffs_ctl_msg_t out;
  char why[256];
  ck_assert_msg(t_decode(&out, m.sb.data, m.sb.size, why, sizeof why) == 0, "%s", why);
  ck_assert_int_eq(out.type, FFS_CTL_EPOCH);
  ck_assert_int_eq(out.phase.epoch, 7);
  ck_assert_int_eq(out.phase.mode, 1);
  msgpack_sbuffer_destroy(&m.sb);
}
END_TEST

START_TEST(test_encode_small_buffer) {
  ffs_ctl_msg_t m = t_sample(FFS_CTL_RESULT);
  uint8_t buf[FFS_CTL_MSG_MAX];
  size_t len = ffs_ctl_encode(buf, sizeof buf, &m);
  for (size_t cap = 0; cap < len; cap++) ck_assert_uint_eq(ffs_ctl_encode(buf, cap, &m), 0);
  // the largest RESULT fits a control message with room to spare
  m.result.n_layers = FFS_MAX_STAGES;
  for (int i = 0; i < FFS_MAX_STAGES; i++) memset(m.result.layers[i].name, 'x', FFS_NAME_MAX - 1);
  ck_assert_uint_lt(ffs_ctl_encode(buf, sizeof buf, &m), 4096);
}
END_TEST

// ---- limits ----

// Bytes off the wire never break a log line: a key with newlines is
// refused with a one-line reason, and an ERROR text with control characters
// prints on one line (a peer cannot forge log lines). Found by fuzz_ctl.
START_TEST(test_reasons_and_text_stay_one_line) {
  const uint8_t bad[] = {0x81, 0xa4, 't', '\n', '\n', '\r', 0xa5, 'S', 'T', 'A', 'T', 'S'};
  ffs_ctl_msg_t m;
  char why[256], line[256];
  ck_assert_int_lt(ffs_ctl_decode(&m, bad, sizeof bad, why, sizeof why), 0);
  ck_assert_msg(!strchr(why, '\n') && !strchr(why, '\r'), "reason spans lines: %s", why);
  ffs_ctl_msg_t e = {.type = FFS_CTL_ERROR};
  snprintf(e.error.text, sizeof e.error.text, "line one\nERROR forged\x1b[31m");
  ffs_ctl_str(&e, line, sizeof line);
  for (const char *c = line; *c; c++) ck_assert_msg((unsigned char)*c >= 0x20, "control byte in: %s", line);
}
END_TEST

START_TEST(test_truncated_refused) {
  for (int type = 0; type < FFS_CTL_N_TYPES; type++) {
    ffs_ctl_msg_t m = t_sample((ffs_ctl_type_t)type), out;
    uint8_t buf[FFS_CTL_MSG_MAX];
    char why[256];
    size_t len = ffs_ctl_encode(buf, sizeof buf, &m);
    for (size_t cut = 0; cut < len; cut++) {
      ck_assert_msg(t_decode(&out, buf, cut, why, sizeof why) == -1, "%s cut at %zu accepted",
                    ffs_ctl_type_str(type), cut);
      ck_assert_msg(why[0], "%s cut at %zu: no reason", ffs_ctl_type_str(type), cut);
    }
    buf[len] = 0xc0; // a byte too many
    ck_assert_int_eq(t_decode(&out, buf, len + 1, why, sizeof why), -1);
    ck_assert_ptr_nonnull(strstr(why, "after the message"));
  }
}
END_TEST

START_TEST(test_garbage_refused) {
  ffs_ctl_msg_t out;
  char why[256];
  ck_assert_int_eq(t_decode(&out, "STATS frames=1 bad=0", 20, why, sizeof why), -1); // the old text
  ck_assert_ptr_nonnull(strstr(why, "expected a map"));
  t_msg_t m;
  t_begin(&m, 0, NULL);
  t_refused(&m, "0 entries");
  t_begin(&m, 2, NULL), t_str(&m, "epoch"), msgpack_pack_int(&m.pk, 1), t_str(&m, "type"), t_str(&m, "EPOCH");
  t_refused(&m, "expected 'type'");
  t_begin(&m, 1, "HELLO");
  t_refused(&m, "unknown message type 'HELLO'");
  t_begin(&m, 1, NULL), t_str(&m, "type"), msgpack_pack_int(&m.pk, 3);
  t_refused(&m, "expected a str");
  // a map that claims 2^32 - 1 entries, and an unknown key's array that
  // claims more objects than there are bytes
  uint8_t huge[] = {0xdf, 0xff, 0xff, 0xff, 0xff};
  ck_assert_int_eq(t_decode(&out, huge, sizeof huge, why, sizeof why), -1);
  t_begin(&m, 2, "STOP"), t_str(&m, "x"), msgpack_pack_array(&m.pk, 1000000);
  t_refused(&m, "entries in");
  // seeded random bytes, and random bytes after a valid start: refused or
  // decoded, never a crash (ASan builds check the reads)
  srand(7);
  uint8_t buf[256];
  for (int it = 0; it < 20000; it++) {
    size_t len = (size_t)(rand() % (int)sizeof buf);
    for (size_t i = 0; i < len; i++) buf[i] = (uint8_t)rand();
    if (it % 2 && len > 8) memcpy(buf, "\x83\xa4type\xa5STATS", 12 < len ? 12 : len);
    t_decode(&out, buf, len, why, sizeof why);
  }
}
END_TEST

START_TEST(test_wrong_types_refused) {
  t_msg_t m;
  t_begin(&m, 3, "EPOCH"), t_str(&m, "epoch"), t_str(&m, "3"), t_str(&m, "mode"), t_str(&m, "train");
  t_refused(&m, "expected an int");
  t_begin(&m, 3, "EPOCH"), t_str(&m, "epoch"), msgpack_pack_int(&m.pk, 3), t_str(&m, "mode"), t_str(&m, "test");
  t_refused(&m, "expected train or eval");
  t_begin(&m, 3, "MARK"), t_str(&m, "epoch"), msgpack_pack_int64(&m.pk, 1LL << 31), t_str(&m, "mode"), t_str(&m, "eval");
  t_refused(&m, "does not fit 32 bits");
  t_begin(&m, 2, "MARK"), t_str(&m, "epoch"), msgpack_pack_int(&m.pk, 1);
  t_refused(&m, "key 'mode' missing");
  t_begin(&m, 4, "MARK"), t_str(&m, "epoch"), msgpack_pack_int(&m.pk, 1), t_str(&m, "epoch"), msgpack_pack_int(&m.pk, 2);
  t_str(&m, "mode"), t_str(&m, "eval");
  t_refused(&m, "'epoch' twice");
  t_begin(&m, 2, "TRAINED"), t_str(&m, "epoch"), msgpack_pack_double(&m.pk, 1.0);
  t_refused(&m, "expected an int");
  t_begin(&m, 4, "READY"), t_str(&m, "core"), msgpack_pack_int(&m.pk, 1), t_str(&m, "pid"), msgpack_pack_int(&m.pk, 2);
  t_str(&m, "blas"), t_str(&m, "a kernel name far too long for sixteen bytes");
  t_refused(&m, "at most 15 allowed");
  t_begin(&m, 2, "ERROR"), t_str(&m, "text"), msgpack_pack_str_with_body(&m.pk, "a\0b", 3);
  t_refused(&m, "NUL");
}
END_TEST

// A RESULT whose fields are all right but for what f writes for "layers".
static void t_result(t_msg_t *m, void (*f)(t_msg_t *)) {
  t_begin(m, 7, "RESULT");
  t_str(m, "epoch"), msgpack_pack_int(&m->pk, 0);
  t_str(m, "n_energy"), msgpack_pack_uint64(&m->pk, 10);
  t_str(m, "energy"), msgpack_pack_double(&m->pk, 0.1);
  t_str(m, "n_softmax"), msgpack_pack_uint64(&m->pk, 10);
  t_str(m, "softmax"), msgpack_pack_float(&m->pk, 0.5f); // a float 32 is a float too
  t_str(m, "layers"), f(m);
}
static void t_layers_ok(t_msg_t *m) {
  msgpack_pack_array(&m->pk, 1), msgpack_pack_array(&m->pk, 3), t_str(m, "l1");
  msgpack_pack_double(&m->pk, 0.1), msgpack_pack_double(&m->pk, 0.2);
}
static void t_layers_too_many(t_msg_t *m) {
  msgpack_pack_array(&m->pk, FFS_MAX_STAGES + 1);
  for (int i = 0; i <= FFS_MAX_STAGES; i++) t_layers_ok(m);
}
static void t_layers_short(t_msg_t *m) {
  msgpack_pack_array(&m->pk, 1), msgpack_pack_array(&m->pk, 2), t_str(m, "l1");
  msgpack_pack_double(&m->pk, 0.1);
}
static void t_layers_not_array(t_msg_t *m) { t_str(m, "l1:0.1:0.2"); }
static void t_layers_int(t_msg_t *m) {
  msgpack_pack_array(&m->pk, 1), msgpack_pack_array(&m->pk, 3), t_str(m, "l1");
  msgpack_pack_int(&m->pk, 0), msgpack_pack_double(&m->pk, 0.2);
}

START_TEST(test_result_layers_checked) {
  t_msg_t m;
  t_result(&m, t_layers_ok);
  ffs_ctl_msg_t out;
  char why[256];
  ck_assert_msg(t_decode(&out, m.sb.data, m.sb.size, why, sizeof why) == 0, "%s", why);
  ck_assert_int_eq(out.result.n_layers, 1);
  ck_assert_str_eq(out.result.layers[0].name, "l1");
  ck_assert_double_eq(out.result.softmax, 0.5);
  msgpack_sbuffer_destroy(&m.sb);
  t_result(&m, t_layers_too_many), t_refused(&m, "at most 32 allowed");
  t_result(&m, t_layers_short), t_refused(&m, "expected [name, energy, softmax]");
  t_result(&m, t_layers_not_array), t_refused(&m, "expected an array");
  t_result(&m, t_layers_int), t_refused(&m, "expected a float");
  t_begin(&m, 2, "STATS"), t_str(&m, "frames"), msgpack_pack_int(&m.pk, -1);
  t_refused(&m, "negative");
}
END_TEST

static Suite *ctl_suite(void) {
  Suite *s = suite_create("ctl");
  TCase *core = tcase_create("core");
  tcase_add_test(core, test_round_trip_every_type);
  tcase_add_test(core, test_figures_travel_rounded);
  tcase_add_test(core, test_text_form);
  tcase_add_test(core, test_unknown_keys_ignored);
  tcase_add_test(core, test_encode_small_buffer);
  suite_add_tcase(s, core);
  TCase *limits = tcase_create("limits");
  tcase_add_test(limits, test_reasons_and_text_stay_one_line);
  tcase_add_test(limits, test_truncated_refused);
  tcase_add_test(limits, test_garbage_refused);
  tcase_add_test(limits, test_wrong_types_refused);
  tcase_add_test(limits, test_result_layers_checked);
  suite_add_tcase(s, limits);
  return s;
}

int main(void) { return ffs_check_run(ctl_suite()); }
