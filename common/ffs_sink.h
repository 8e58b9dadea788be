// ffs_sink: a fixed-capacity byte sink for msgpack-c's packer that fails
// instead of growing, so the encoders of frames (proto/ffs_frame.c) and of
// control messages (common/ffs_ctl.c) never allocate: a message that does
// not fit the caller's buffer makes the packer return an error.
#ifndef FFS_SINK_H
#define FFS_SINK_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct {
  uint8_t *buf;
  size_t cap, len;
} ffs_sink_t;

// msgpack_packer_init(&pk, &sink, ffs_sink_write): 0, or -1 when full.
static inline int ffs_sink_write(void *data, const char *src, size_t n) {
  ffs_sink_t *s = data;
  if (n > s->cap - s->len) return -1;
  memcpy(s->buf + s->len, src, n);
  s->len += n;
  return 0;
}

#endif
