// fuzz_ctl: libFuzzer harness for the control-message decoder
// (common/ffs_ctl.c). Any bytes must decode or be refused with a one-line
// reason, never a crash, a leak or undefined behaviour; what decodes must
// encode again, and from then on a round trip changes nothing (the first
// encode may round figures to their printf precision, by design).
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ffs_ctl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static ffs_ctl_msg_t m, again;
  static uint8_t buf[FFS_CTL_MSG_MAX], buf2[FFS_CTL_MSG_MAX];
  char why[256];
  if (ffs_ctl_decode(&m, data, size, why, sizeof why) < 0) {
    if (!memchr(why, 0, sizeof why) || strchr(why, '\n') || !why[0]) abort(); // one line
    return 0;
  }
  size_t n = ffs_ctl_encode(buf, sizeof buf, &m);
  if (!n) abort(); // a message that decoded fits the largest message
  if (ffs_ctl_decode(&again, buf, n, why, sizeof why) < 0) abort();
  size_t n2 = ffs_ctl_encode(buf2, sizeof buf2, &again);
  if (n2 != n || memcmp(buf, buf2, n) != 0) abort(); // stable after one round trip
  return 0;
}
