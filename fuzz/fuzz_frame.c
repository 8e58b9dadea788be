// fuzz_frame: libFuzzer harness for the frame decoder (proto/ffs_frame.c).
// Any byte string must decode or be refused without a crash, an
// out-of-bounds read or undefined behaviour; what decodes must survive a
// re-encode and decode to the same header (the codec is its own inverse).
#include <stdint.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>

#include "ffs_frame.h"

#define S_MAX_ROWS 1000u
#define S_MAX_COLS 4096u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static float payload[S_MAX_ROWS * 64]; // copy only what fits; the rest is checked by decode
  static uint8_t again[1 << 20];
  static uint32_t ids[S_MAX_ROWS];
  ffs_frame_limits_t lim = {S_MAX_ROWS, 0, S_MAX_COLS};
  ffs_frame_t f;
  char err[256];
  if (ffs_frame_decode(&f, data, size, &lim, err, sizeof err) < 0) {
    if (!memchr(err, 0, sizeof err)) abort(); // the message is a terminated string
    return 0;
  }
  if (f.h.rows > S_MAX_ROWS || f.h.cols > S_MAX_COLS) abort(); // limits were honoured
  uint64_t n = (uint64_t)f.h.rows * f.h.cols;
  if (n && n <= sizeof payload / sizeof payload[0]) {
    // the in-place RMS read (any address, any values): finite rows in, a
    // finite or refused result out
    if (ffs_frame_payload_rms(payload, &f, 1e-8f) == 0)
      for (uint64_t i = 0; i < n; i++)
        if (!isfinite(payload[i])) abort();
    ffs_frame_copy_payload(payload, &f);
    for (uint32_t r = 0; r < f.h.rows && f.ids; r++) ids[r] = ffs_frame_id(&f, r);
    ffs_frame_rows_t r = {f.roles, f.labels, f.cands, f.ids ? ids : NULL};
    size_t len = ffs_frame_encode(again, sizeof again, &f.h, &r, payload);
    ffs_frame_t g;
    if (len == 0 || ffs_frame_decode(&g, again, len, &lim, err, sizeof err) < 0) {
      // a NaN payload encodes and decodes fine; only the header must match
      abort();
    }
    if (memcmp(&g.h, &f.h, sizeof g.h) != 0 || memcmp(g.n_role, f.n_role, sizeof g.n_role) != 0)
      abort();
  }
  return 0;
}
