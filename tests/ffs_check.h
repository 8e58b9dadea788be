// ffs_check: what the Check suites share: a temporary folder per test and
// the runner main(). Header-only (static inline) so each suite stays one file.
#ifndef FFS_CHECK_H
#define FFS_CHECK_H

#include <check.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>

// Makes a fresh folder /tmp/<name>.XXXXXX into dir (at least 32 bytes).
static inline void ffs_check_mkdtemp(char *dir, size_t len, const char *name) {
  snprintf(dir, len, "/tmp/%s.XXXXXX", name);
  ck_assert_ptr_nonnull(mkdtemp(dir));
}

static inline int ffs_check_rm_one(const char *path, const struct stat *sb, int flag,
                                   struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(path);
}

// Removes dir and everything under it (a failing test never reaches its
// teardown, so its folder stays for a look).
static inline void ffs_check_rmtree(const char *dir) {
  nftw(dir, ffs_check_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

// Runs one suite; the exit status is what ctest reads.
static inline int ffs_check_run(Suite *s) {
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif
