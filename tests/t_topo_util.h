// t_topo_util: what the topology suites (check_topo, check_topo_errors) share:
// a fresh temp folder under /tmp per test, YAML written into it and loaded,
// and the checks that an error is one line with the right prefix.
// Header-only (static inline), as ffs_check.h.
#ifndef T_TOPO_UTIL_H
#define T_TOPO_UTIL_H

#include "ffs_topo.h"
#include "ffs_wiring.h"

#include "ffs_check.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// ---- fixture: one temp folder per test ----

static char s_dir[64];
static char s_path[128]; // the last file written by s_write
static char s_err[1024];

static inline void s_setup(void) {
  ffs_check_mkdtemp(s_dir, sizeof s_dir, "check_topo");
  s_err[0] = 0;
}

static inline void s_teardown(void) { ffs_check_rmtree(s_dir); }

// Writes len bytes of text to DIR/name and returns its path.
static inline const char *s_write_n(const char *name, const char *text, size_t len) {
  snprintf(s_path, sizeof s_path, "%s/%s", s_dir, name);
  FILE *f = fopen(s_path, "wb");
  ck_assert_ptr_nonnull(f);
  ck_assert_uint_eq(fwrite(text, 1, len, f), len);
  fclose(f);
  return s_path;
}

static inline const char *s_write(const char *name, const char *text) {
  return s_write_n(name, text, strlen(text));
}

// Loads text (written to DIR/t.yaml) with overrides.
static inline int s_load(ffs_topo_t *t, const char *text, const char *const *ov, int n_ov) {
  const char *path = s_write("t.yaml", text);
  return ffs_topo_load(t, path, ov, n_ov, s_err, sizeof s_err);
}

// The message starts with prefix and contains phrase, and is one line.
static inline void s_expect_err(const char *prefix, const char *phrase) {
  ck_assert_msg(!strncmp(s_err, prefix, strlen(prefix)), "expected prefix '%s', got: %s", prefix,
                s_err);
  ck_assert_msg(strstr(s_err, phrase), "expected '%s' in: %s", phrase, s_err);
  ck_assert_msg(!strchr(s_err, '\n'), "message is not one line: %s", s_err);
}

// Loading text fails with "DIR/t.yaml:LINE:" and phrase.
static inline void s_expect_fail_at(const char *text, int line, const char *phrase) {
  ffs_topo_t t;
  ck_assert_int_eq(s_load(&t, text, NULL, 0), -1);
  char prefix[256];
  snprintf(prefix, sizeof prefix, "%s/t.yaml:%d: ", s_dir, line);
  s_expect_err(prefix, phrase);
}

// The smallest useful topology: src -> l1 (20) -> l2 (10) -> out.
static const char *s_min = "stages:\n"                       // 1
                           "  - {name: src, kind: source}\n" // 2
                           "  - name: l1\n"                  // 3
                           "    kind: ff_layer\n"            // 4
                           "    units: 20\n"                 // 5
                           "  - name: l2\n"                  // 6
                           "    kind: ff_layer\n"            // 7
                           "    units: 10\n"                 // 8
                           "  - name: out\n"                 // 9
                           "    kind: readout\n";            // 10

// Loading s_min with the one override ov fails with "--set OV: " and phrase.
static inline void s_expect_set_fail(const char *ov, const char *phrase) {
  ffs_topo_t t;
  ck_assert_int_eq(s_load(&t, s_min, &ov, 1), -1);
  char prefix[256];
  snprintf(prefix, sizeof prefix, "--set %s: ", ov);
  s_expect_err(prefix, phrase);
}

#endif
