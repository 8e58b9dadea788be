// fuzz_topo: libFuzzer harness for the topology loader (common/ffs_topo.c).
// Any file content must load or be refused with one line naming file:line,
// never a crash, a leak (LeakSanitizer) or undefined behaviour. The input is
// handed to the loader as a real file through memfd (no disk traffic).
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ffs_topo.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static ffs_topo_t t;
  int fd = memfd_create("topo", 0);
  if (fd < 0) return 0;
  size_t off = 0;
  while (off < size) {
    ssize_t w = write(fd, data + off, size - off);
    if (w <= 0) break;
    off += (size_t)w;
  }
  char path[64], err[1024];
  snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  const char *sets[] = {"train.epochs=2", "l1.units=7"};
  if (ffs_topo_load(&t, path, sets, (int)(size % 3), err, sizeof err) < 0) {
    if (!memchr(err, 0, sizeof err) || strchr(err, '\n')) abort(); // one terminated line
    if (strncmp(err, path, strlen(path)) != 0 && strncmp(err, "--set ", 6) != 0) abort();
  } else if (t.n_stages < 3 || t.n_stages > FFS_MAX_STAGES) {
    abort(); // a topology that loads is a valid one
  }
  close(fd);
  return 0;
}
