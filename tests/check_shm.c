// check_shm: frames through shared memory (stages/ffs_shm.h). A frame
// written into a sender's buffer is read back, byte for byte, through its
// descriptor, in this process and in another one; the buffer comes free only
// when every reader has released it, and a waiting sender wakes when the
// last one does. Descriptors that are malformed, name a buffer that is not
// there or not the one they claim, overrun it, or are stale are refused with
// a reason, never followed.
#include "ffs_check.h"
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ffs_frame.h"
#include "ffs_shm.h"

static double s_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// A buffer holding bytes 0, 1, 2, ... (n of them), sent to the readers in
// slots 0 .. readers-1; desc is slot 0's descriptor (incarnation 0).
static void s_fill_and_send(ffs_shm_buf_t *b, size_t cap, size_t n, int readers, uint8_t *desc) {
  char err[256] = "";
  ck_assert_msg(ffs_shm_buf_open(b, cap, err, sizeof err) == 0, "%s", err);
  ck_assert_int_eq(ffs_shm_buf_idle(b), 1);
  for (size_t i = 0; i < n; i++)
    b->data[i] = (uint8_t)(i * 7 + 1);
  ffs_shm_buf_send(b, (1u << readers) - 1);
  ffs_shm_buf_desc(b, n, 0, 0, desc);
}

START_TEST(test_round_trip_and_release) {
  ffs_shm_buf_t b;
  uint8_t desc[FFS_SHM_DESC_LEN];
  s_fill_and_send(&b, 1 << 16, 5000, 2, desc);
  ck_assert_int_eq(ffs_shm_is_desc(desc, sizeof desc), 1);
  ck_assert_int_eq(ffs_shm_buf_idle(&b), 0);

  ffs_shm_maps_t *m = ffs_shm_maps_new();
  uint8_t *data;
  size_t len;
  ffs_shm_hdr_t *h;
  int slot = -1;
  char why[256] = "";
  ck_assert_msg(ffs_shm_resolve(m, desc, sizeof desc, 0, &data, &len, &h, &slot, why, sizeof why) ==
                    0,
                "%s", why);
  ck_assert_uint_eq(len, 5000);
  ck_assert_int_eq(slot, 0);
  ck_assert_ptr_ne(data, b.data); // a mapping of its own, the same bytes
  ck_assert_int_eq(memcmp(data, b.data, len), 0);
  ffs_shm_release(h, 0);
  ck_assert_int_eq(ffs_shm_buf_idle(&b), 0); // slot 1's reader still holds it
  ffs_shm_release(h, 0); // a second release of slot 0 takes nothing from slot 1
  ck_assert_int_eq(ffs_shm_buf_idle(&b), 0);
  ffs_shm_release(h, 1);
  ck_assert_int_eq(ffs_shm_buf_idle(&b), 1);
  ck_assert_int_eq(ffs_shm_buf_wait(&b, 10), 1);
  ffs_shm_release(h, 1); // one release too many leaves it free
  ck_assert_int_eq(ffs_shm_buf_idle(&b), 1);

  // the buffer is reused for the next frame; the old descriptor is stale
  uint8_t next[FFS_SHM_DESC_LEN];
  b.data[0] = 99;
  ffs_shm_buf_send(&b, 1u << 5);
  ffs_shm_buf_desc(&b, 10, 5, 0, next);
  ck_assert_msg(ffs_shm_resolve(m, desc, sizeof desc, 0, &data, &len, &h, &slot, why, sizeof why) <
                    0,
                "a stale descriptor was followed");
  ck_assert_ptr_nonnull(strstr(why, "stale"));
  ck_assert_int_eq(
      ffs_shm_resolve(m, next, sizeof next, 0, &data, &len, &h, &slot, why, sizeof why), 0);
  ck_assert_int_eq(data[0], 99);
  ck_assert_int_eq(slot, 5);
  ffs_shm_release(h, slot);
  ffs_shm_maps_free(m);
  ffs_shm_buf_close(&b);
}
END_TEST

// A descriptor and a frame can never be taken for each other.
START_TEST(test_descriptor_is_not_a_frame) {
  ffs_shm_buf_t b;
  uint8_t desc[FFS_SHM_DESC_LEN];
  s_fill_and_send(&b, 4096, 100, 1, desc);
  ffs_frame_t f;
  char why[256];
  ffs_frame_limits_t lim = {100, 0, 100};
  ck_assert_int_lt(ffs_frame_decode(&f, desc, sizeof desc, &lim, why, sizeof why), 0);
  uint8_t buf[4096];
  float row[3] = {1, 2, 3};
  ffs_frame_hdr_t hd = {.kind = FFS_FRAME_DATA, .rows = 1, .cols = 3};
  size_t n = ffs_frame_encode(buf, sizeof buf, &hd, NULL, row);
  ck_assert_uint_gt(n, 0);
  ck_assert_int_eq(ffs_shm_is_desc(buf, n), 0);
  ck_assert_int_eq(ffs_shm_is_desc(desc, sizeof desc - 1), 0);
  ffs_shm_buf_close(&b);
}
END_TEST

// Each corruption of a good descriptor is refused with its reason.
START_TEST(test_bad_descriptors_are_refused) {
  ffs_shm_buf_t b;
  uint8_t good[FFS_SHM_DESC_LEN], d[FFS_SHM_DESC_LEN];
  s_fill_and_send(&b, 4096, 100, 1, good);
  ffs_shm_maps_t *m = ffs_shm_maps_new();
  uint8_t *data;
  size_t len;
  ffs_shm_hdr_t *h;
  char why[256];
  int null_fd = open("/dev/null", O_RDONLY);
  char tmpf[] = "/tmp/ffs_shm_file.XXXXXX"; // a regular file, not a memfd of ours
  int file_fd = mkstemp(tmpf);
  ck_assert_int_ge(file_fd, 0);
  uint8_t zeros[256] = {0};
  ck_assert_int_eq(write(file_fd, zeros, sizeof zeros), (int)sizeof zeros);
  struct {
    int at;     // byte to overwrite (-1: none)
    int nbytes; // with this many bytes of value
    uint64_t value;
    size_t n; // descriptor length given
    const char *why;
  } cases[] = {
      {-1, 0, 0, FFS_SHM_DESC_LEN - 1, "malformed"},
      {1, 1, 0xa4, FFS_SHM_DESC_LEN, "malformed"},         // not "shm"
      {6, 4, 0, FFS_SHM_DESC_LEN, "out of range"},         // pid 0
      {6, 4, 0x3ffffffe, FFS_SHM_DESC_LEN, "cannot open"}, // no such process
      {11, 4, 0xfff00, FFS_SHM_DESC_LEN, "cannot open"},   // no such fd
      {11, 4, (uint64_t)null_fd, FFS_SHM_DESC_LEN, "not a frame buffer"},
      {11, 4, (uint64_t)file_fd, FFS_SHM_DESC_LEN, "not a frame buffer"},
      {16, 8, 12345, FFS_SHM_DESC_LEN, "not the buffer"},   // token
      {25, 4, 77, FFS_SHM_DESC_LEN, "stale"},               // generation
      {30, 8, 4097, FFS_SHM_DESC_LEN, "bytes in a buffer"}, // beyond the buffer
      {39, 1, 32, FFS_SHM_DESC_LEN, "slot 32 out of range"},
      {39, 1, 3, FFS_SHM_DESC_LEN, "stale"},               // a slot it was not sent to
      {41, 4, 1, FFS_SHM_DESC_LEN, "incarnation 1"},        // meant for a later process
      {38, 1, 0xcd, FFS_SHM_DESC_LEN, "malformed"},        // slot not a uint8
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    memcpy(d, good, sizeof d);
    for (int k = 0; k < cases[i].nbytes; k++)
      d[cases[i].at + k] = (uint8_t)(cases[i].value >> (8 * (cases[i].nbytes - 1 - k)));
    why[0] = 0;
    int slot;
    ck_assert_msg(
        ffs_shm_resolve(m, d, cases[i].n, 0, &data, &len, &h, &slot, why, sizeof why) < 0,
        "case %zu was followed", i);
    ck_assert_msg(strstr(why, cases[i].why) != NULL, "case %zu: '%s', expected '%s'", i, why,
                  cases[i].why);
  }
  // the good one still works, and nothing above released it
  ck_assert_int_eq(ffs_shm_buf_idle(&b), 0);
  int slot;
  ck_assert_int_eq(
      ffs_shm_resolve(m, good, sizeof good, 0, &data, &len, &h, &slot, why, sizeof why), 0);
  ffs_shm_release(h, slot);
  ck_assert_int_eq(ffs_shm_buf_idle(&b), 1);
  close(null_fd), close(file_fd), unlink(tmpf);
  ffs_shm_maps_free(m);
  ffs_shm_buf_close(&b);
}
END_TEST

// Another process reads the frame and releases it; the sender, waiting on
// the buffer, wakes when it does (a futex shared between processes).
START_TEST(test_other_process_reads_and_wakes_the_sender) {
  ffs_shm_buf_t b;
  uint8_t desc[FFS_SHM_DESC_LEN];
  s_fill_and_send(&b, 1 << 20, 1 << 20, 1, desc);
  int fds[2];
  ck_assert_int_eq(pipe(fds), 0);
  pid_t pid = fork();
  if (pid == 0) {
    ffs_shm_maps_t *m = ffs_shm_maps_new();
    uint8_t *data;
    size_t len;
    ffs_shm_hdr_t *h;
    char why[256];
    int slot;
    uint32_t sum = 0;
    if (ffs_shm_resolve(m, desc, sizeof desc, 0, &data, &len, &h, &slot, why, sizeof why) < 0)
      _exit(2);
    for (size_t i = 0; i < len; i++)
      sum = sum * 31 + data[i];
    if (write(fds[1], &sum, sizeof sum) != (ssize_t)sizeof sum) _exit(3);
    // release once the parent sleeps in its futex wait (x86-64 syscall 202
    // in /proc/PID/syscall), however late the scheduler lets it get there
    char path[64], line[64];
    snprintf(path, sizeof path, "/proc/%d/syscall", (int)getppid());
    for (int tries = 0; tries < 60000; tries++) {
      FILE *f = fopen(path, "r");
      int in_futex = f && fgets(line, sizeof line, f) && !strncmp(line, "202 ", 4);
      if (f) fclose(f);
      if (in_futex) break;
      usleep(1000);
    }
    ffs_shm_release(h, slot);
    ffs_shm_maps_free(m);
    _exit(0);
  }
  uint32_t sum = 0, expect = 0;
  ck_assert_int_eq(read(fds[0], &sum, sizeof sum), (int)sizeof sum);
  for (size_t i = 0; i < (1u << 20); i++)
    expect = expect * 31 + b.data[i];
  ck_assert_uint_eq(sum, expect);
  ck_assert_int_eq(ffs_shm_buf_idle(&b), 0);
  // one wait of 60 s: it ends well before its timeout only if the release
  // woke it (the child releases once this thread sleeps in the futex)
  double t0 = s_now();
  int idle = ffs_shm_buf_wait(&b, 60000);
  double waited = s_now() - t0;
  ck_assert_msg(idle, "the buffer never came free");
  ck_assert_msg(waited < 50.0, "the release did not wake the sender (%.1f s)", waited);
  int status;
  waitpid(pid, &status, 0);
  ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  // nobody releases: the wait ends at its timeout
  ffs_shm_buf_send(&b, 1);
  t0 = s_now();
  ck_assert_int_eq(ffs_shm_buf_wait(&b, 50), 0);
  ck_assert(s_now() - t0 >= 0.04);
  close(fds[0]), close(fds[1]);
  ffs_shm_buf_close(&b);
}
END_TEST

// A reader that died holding a frame (its descriptor meant for incarnation
// 0 of its stage): the sender takes that slot back and the buffer is free,
// while another slot's reader still holds its own bit; the restarted stage
// (incarnation 1) refuses the old descriptor and releases nothing.
START_TEST(test_reclaim_a_dead_readers_slot) {
  ffs_shm_buf_t b;
  char err[256] = "", why[256] = "";
  ck_assert_msg(ffs_shm_buf_open(&b, 4096, err, sizeof err) == 0, "%s", err);
  ffs_shm_buf_send(&b, 1u << 2 | 1u << 16);
  uint8_t d2[FFS_SHM_DESC_LEN], d16[FFS_SHM_DESC_LEN];
  ffs_shm_buf_desc(&b, 100, 2, 0, d2);
  ffs_shm_buf_desc(&b, 100, 16, 7, d16);
  ffs_shm_maps_t *m = ffs_shm_maps_new();
  uint8_t *data;
  size_t len;
  ffs_shm_hdr_t *h;
  int slot;
  // slot 2's stage was restarted: incarnation 1 refuses the descriptor
  ck_assert_int_lt(ffs_shm_resolve(m, d2, sizeof d2, 1, &data, &len, &h, &slot, why, sizeof why), 0);
  ck_assert_ptr_nonnull(strstr(why, "incarnation 0"));
  ck_assert_int_eq(ffs_shm_buf_idle(&b), 0);
  ck_assert_int_eq(ffs_shm_buf_reclaim(&b, 2), 1);
  ck_assert_int_eq(ffs_shm_buf_reclaim(&b, 2), 0); // once
  ck_assert_int_eq(ffs_shm_buf_idle(&b), 0);       // slot 16 still reads
  ck_assert_int_eq(ffs_shm_resolve(m, d16, sizeof d16, 7, &data, &len, &h, &slot, why, sizeof why),
                   0);
  ck_assert_int_eq(slot, 16);
  ffs_shm_release(h, slot);
  ck_assert_int_eq(ffs_shm_buf_idle(&b), 1);
  ffs_shm_maps_free(m);
  ffs_shm_buf_close(&b);
}
END_TEST

// The launcher's check that a child can map its buffers passes here (the
// e2e runs depend on it) and names nothing when it does.
START_TEST(test_probe_passes_on_this_machine) {
  char why[256] = "";
  ck_assert_msg(ffs_shm_probe(why, sizeof why) == 0, "probe failed: %s", why);
  ck_assert_str_eq(why, "");
}
END_TEST

int main(void) {
  Suite *s = suite_create("shm");
  TCase *tc = tcase_create("shm");
  tcase_add_test(tc, test_round_trip_and_release);
  tcase_add_test(tc, test_descriptor_is_not_a_frame);
  tcase_add_test(tc, test_bad_descriptors_are_refused);
  tcase_add_test(tc, test_other_process_reads_and_wakes_the_sender);
  tcase_add_test(tc, test_reclaim_a_dead_readers_slot);
  tcase_add_test(tc, test_probe_passes_on_this_machine);
  suite_add_tcase(s, tc);
  return ffs_check_run(s);
}
