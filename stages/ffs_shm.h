// ffs_shm: large frames between the processes of one host through shared
// memory (transport ipc, `shm: true`). The sender encodes a frame straight
// into one of its send buffers, each a memfd mapping of its own; ZeroMQ
// carries only a 38-byte descriptor naming the buffer (sender pid, fd, a
// random token, a generation and the length). The receiver maps the buffer
// once through /proc/<pid>/fd/<fd>, decodes the frame in place, and hands the
// buffer back by counting down its readers; the sender reuses a buffer only
// when no reader is left (and waits on a futex for that). What the kernel
// and ZeroMQ's I/O thread copied before (a 200-row frame is 0.8 MB, copied
// into the socket, out of it, and into a message) is no longer copied.
// Wire layout of the descriptor: proto/README.md, "Shared-memory frames".
// Part of the stage runtime; stage kinds never see it.
#ifndef FFS_SHM_H
#define FFS_SHM_H

#include <stddef.h>
#include <stdint.h>

#define FFS_SHM_DESC_LEN 38 // bytes of a descriptor on the wire

typedef struct ffs_shm_hdr ffs_shm_hdr_t; // the shared header before the data

// A sender's buffer. fd < 0: not open.
typedef struct {
  int fd;
  ffs_shm_hdr_t *h;
  size_t map_len;
  uint8_t *data; // cap bytes after the header
  size_t cap;
} ffs_shm_buf_t;

// Opens b as a fresh buffer of cap data bytes. 0, or -1 with a message.
int ffs_shm_buf_open(ffs_shm_buf_t *b, size_t cap, char *err, size_t errlen);
// Unmaps and closes b (receivers keep their own mappings alive).
void ffs_shm_buf_close(ffs_shm_buf_t *b);
// 1 when no receiver still reads the frame last sent from b.
int ffs_shm_buf_idle(const ffs_shm_buf_t *b);
// Waits at most timeout_ms for b to become idle; returns ffs_shm_buf_idle(b).
int ffs_shm_buf_wait(const ffs_shm_buf_t *b, int timeout_ms);
// Marks the len-byte frame in b as sent to `readers` receivers and writes
// its descriptor (FFS_SHM_DESC_LEN bytes) to desc.
void ffs_shm_buf_send(ffs_shm_buf_t *b, size_t len, int readers, uint8_t *desc);

// A receiver is done with the frame (or a send of its descriptor failed).
void ffs_shm_release(ffs_shm_hdr_t *h);

// 1 when msg (n bytes) has the shape of a descriptor, not of a frame.
int ffs_shm_is_desc(const void *msg, size_t n);

// A receiver's mapped buffers, kept until it closes.
typedef struct ffs_shm_maps ffs_shm_maps_t;
ffs_shm_maps_t *ffs_shm_maps_new(void);
void ffs_shm_maps_free(ffs_shm_maps_t *m);
// Resolves descriptor desc (n bytes) to the frame's bytes in the sender's
// buffer (*data, *len) and its header (*h, to release once decoded).
// 0, or -1 with why: a malformed descriptor, a buffer that cannot be mapped
// (its sender gone), a token or generation that does not match, a length
// beyond the buffer.
int ffs_shm_resolve(ffs_shm_maps_t *m, const void *desc, size_t n, uint8_t **data, size_t *len,
                    ffs_shm_hdr_t **h, char *why, size_t whylen);

// Checks that a child process can map a buffer of this one (what a stage
// does with its upstream's: /proc/<pid>/fd must be open to it). 0, or -1
// with why (the launcher then runs every frame through ZeroMQ).
int ffs_shm_probe(char *why, size_t whylen);

#endif
