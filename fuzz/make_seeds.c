// make_seeds: writes the frame fuzzer's seed corpus (fuzz/corpus/frame):
// one valid frame of each kind, with and without per-row arrays.
#include <stdio.h>

#include "ffs_frame.h"

static void s_write(const char *dir, int n, const uint8_t *buf, size_t len) {
  char path[512];
  snprintf(path, sizeof path, "%s/seed-%02d.bin", dir, n);
  FILE *f = fopen(path, "wb");
  if (f) fwrite(buf, 1, len, f), fclose(f);
}

int main(int argc, char **argv) {
  const char *dir = argc > 1 ? argv[1] : "fuzz/corpus/frame";
  static uint8_t buf[1 << 16];
  float x[3 * 4] = {0, 0.5f, 1, -2, 3, 4, 5, 6, 7, 8, 9, 10};
  uint8_t labels[3] = {1, 2, 3}, cands[3] = {255, 4, 9};
  uint8_t roles[3] = {FFS_ROW_POSITIVE, FFS_ROW_NEGATIVE, FFS_ROW_NEUTRAL};
  uint32_t ids[3] = {7, 70000, 4000000000u};
  ffs_frame_hdr_t h[] = {
      {.kind = FFS_FRAME_DATA, .seq = 5, .rows = 3, .cols = 4},
      {.kind = FFS_FRAME_REPORT, .phase = 1, .rows = 3, .cols = 4, .aux = 1},
      {.kind = FFS_FRAME_FEEDBACK, .seq = 1ull << 40, .epoch = 3, .tick = 2, .rows = 1, .cols = 4},
      {.kind = FFS_FRAME_MARK, .phase = 1, .epoch = 9},
      {.kind = FFS_FRAME_DATA, .phase = 1, .rows = 2, .cols = 2},
      {.kind = FFS_FRAME_FEEDBACK, .seq = 12, .rows = 2, .cols = 4, .damp = 1.5f},
  };
  int n = 0;
  for (size_t i = 0; i < sizeof h / sizeof h[0]; i++) {
    int with_arrays = h[i].rows > 0;
    ffs_frame_rows_t r = {roles, labels, cands, ids};
    size_t len = ffs_frame_encode(buf, sizeof buf, &h[i], with_arrays ? &r : NULL,
                                  h[i].rows ? x : NULL);
    s_write(dir, n++, buf, len);
    len = ffs_frame_encode(buf, sizeof buf, &h[i], NULL, h[i].rows ? x : NULL);
    s_write(dir, n++, buf, len);
  }
  printf("wrote %d seeds to %s\n", n, dir);
  return 0;
}
